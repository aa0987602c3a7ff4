"""Issue #15, attack 7: the UNIX sockets whose servers run commands outside
the sandbox (the session bus and systemd user manager under /run/user/UID,
Docker, Podman, containerd, tmux, screen) are masked in the tree by default;
--mask adds a path, --unmask gives a default back.

The listeners run as the test user in the same mount namespace as
childflow: the topology's "run-user" variant gives that namespace a private
tmpfs on /run/user with the user's /run/user/UID, so nothing is created in
the machine's /run.  Each masked connect is paired with a control in the
same run: the same socket reached from outside, or through --unmask."""

import json
import os

import pytest

pytestmark = pytest.mark.core

# connect() to sys.argv[1]: prints "connected" (and the server's greeting)
# or the errno name.
CLIENT = r"""
import errno, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
else:
    print("connected", s.recv(16).decode())
"""

# Runs as the user: listens on every spec["listen"] path (greeting each
# client with "hello"), then runs each step: (label, childflow args or None
# for a connect from outside, socket path, extra environment).  Prints
# {label: {"rc", "out", "err"}}.
DRIVER = r"""
import json, os, socket, subprocess, sys, threading
spec = json.loads(sys.argv[1])
client = sys.argv[2]

def serve(s):
    while True:
        c, _ = s.accept()
        c.sendall(b"hello")
        c.close()

for path in spec["listen"]:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(16)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
out = {}
for label, args, path, env in spec["steps"]:
    cmd = [sys.executable, "-c", client, path]
    if args is not None:
        cmd = [spec["childflow"], *args, "--", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env={**os.environ, **env})
    out[label] = {"rc": p.returncode, "out": p.stdout.strip(), "err": p.stderr}
print(json.dumps(out))
"""

REFUSED = {"ECONNREFUSED", "EACCES", "ENOENT"}


def _drive(childflow, listen, steps, variant="run-user"):
    spec = {"childflow": childflow.argv()[0], "listen": listen, "steps": steps}
    res = childflow.topo.run_user([
        "/usr/bin/python3", "-c", DRIVER, json.dumps(spec), CLIENT],
        env=childflow.env(), variant=variant, timeout=120)
    assert res.rc == 0, str(res)
    return json.loads(res.out)


def _connected(step):
    assert step["rc"] == 0, step
    return step["out"] == "connected hello"


def _refused(step):
    assert step["rc"] == 0, step
    return step["out"] in REFUSED


def _uid(childflow):
    return childflow.topo.state["uid"]


def test_session_bus_is_masked_and_unmask_gives_it_back(childflow):
    bus = f"/run/user/{_uid(childflow)}/bus"
    out = _drive(childflow, [bus], [
        ("outside", None, bus, {}),
        ("default", [], bus, {}),
        ("unmasked", ["--unmask", bus], bus, {}),
    ])
    assert _connected(out["outside"]), out
    assert _refused(out["default"]), out
    assert _connected(out["unmasked"]), out


def test_systemd_user_manager_directory_is_masked(childflow):
    private = f"/run/user/{_uid(childflow)}/systemd/private"
    out = _drive(childflow, [private], [
        ("outside", None, private, {}),
        ("default", [], private, {}),
        ("unmasked", ["--unmask", os.path.dirname(private)], private, {}),
    ])
    assert _connected(out["outside"]), out
    assert _refused(out["default"]), out
    assert _connected(out["unmasked"]), out


def test_session_bus_named_by_dbus_session_bus_address_is_masked(childflow, userdir):
    sock = os.path.join(userdir, "session-bus")
    env = {"DBUS_SESSION_BUS_ADDRESS": f"unix:path={sock},guid=0123456789abcdef"}
    out = _drive(childflow, [sock], [
        ("plain", [], sock, {}),
        ("named", [], sock, env),
    ], variant="plain")
    assert _connected(out["plain"]), out
    assert _refused(out["named"]), out


def test_mask_hides_a_custom_socket(childflow, userdir):
    sock = os.path.join(userdir, "app.sock")
    out = _drive(childflow, [sock], [
        ("default", [], sock, {}),
        ("masked", ["--mask", sock], sock, {}),
    ], variant="plain")
    assert _connected(out["default"]), out
    assert _refused(out["masked"]), out


def test_profile_mask_and_unmask_keys(childflow, userdir):
    import featurelib as F
    sock = os.path.join(userdir, "app.sock")
    bus = f"/run/user/{_uid(childflow)}/bus"
    prof = F.write_user_file(childflow.topo, os.path.join(userdir, "p.toml"),
                             f'mask = ["{sock}"]\nunmask = ["{bus}"]\n')
    out = _drive(childflow, [sock, bus], [
        ("custom", ["--profile", prof], sock, {}),
        ("bus", ["--profile", prof], bus, {}),
    ])
    assert _refused(out["custom"]), out
    assert _connected(out["bus"]), out


def test_missing_default_paths_are_skipped(childflow):
    """In the plain host namespace none of the defaults exists (no
    /run/user/UID, no Docker): the run works; so does --unmask of one, and
    --mask of a path that does not exist."""
    uid = _uid(childflow)
    res = childflow.run("--mask", "/nonexistent/cft.sock", "--unmask", "/run/docker.sock",
                        "--unmask", f"/run/user/{uid}/bus", "--", "sh", "-c", "echo ran")
    assert res.rc == 0 and res.out.strip() == "ran", str(res)


def test_unmask_of_a_path_that_is_not_a_default_is_an_error(childflow):
    res = childflow.run("--unmask", "/run/not-a-default.sock", "--", "true")
    assert res.rc == 125, str(res)
    assert "--unmask: '/run/not-a-default.sock' is not masked by default" in res.err, str(res)


# A root caller's tree runs as SUDO_UID: that user's sockets are masked too,
# not only root's.  Runs as root in a mount namespace of its own (a private
# /run/user with the user's /run/user/UID); the listener runs as the user.
LISTENER = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(b"hello")
    c.close()
"""

ROOT_DRIVER = r"""
set -eu
uid=$1 gid=$2 cf=$3 listener=$4 client=$5 scratch=$6
shift 6
bus=/run/user/$uid/bus
if [ ! -d /run/user ]; then
	# no logind on this machine: /run/user in an overlay of /run, this namespace's only
	mkdir "$scratch/upper" "$scratch/work" "$scratch/upper/user"
	mount -t overlay cft-run -o "lowerdir=/run,upperdir=$scratch/upper,workdir=$scratch/work" /run
fi
mount -t tmpfs -o mode=0755 cft-run-user /run/user
mkdir -m 0700 /run/user/$uid
chown "$uid:$gid" /run/user/$uid
setpriv --reuid="$uid" --regid="$gid" --clear-groups /usr/bin/python3 -c "$listener" "$bus" &
lp=$!
n=0
while [ ! -S "$bus" ] && [ $n -lt 500 ]; do sleep 0.02; n=$((n + 1)); done
for extra in "" "--unmask $bus"; do
	# shellcheck disable=SC2086
	env -i "$@" SUDO_UID="$uid" SUDO_GID="$gid" "$cf" $extra -- /usr/bin/python3 -c "$client" "$bus" 2>/dev/null || echo failed
done
kill "$lp"
"""


def test_a_root_callers_tree_cannot_reach_its_users_session_bus(topo, childflow):
    uid, gid = topo.state["uid"], topo.state["gid"]
    scratch = topo.make_user_dir("root-driver-overlay")
    envs = [f"{k}={v}" for k, v in {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                     **childflow.env()}.items()]
    res = topo.run_host_root(["unshare", "-m", "--propagation", "private", "--",
                              "/bin/sh", "-c", ROOT_DRIVER, "cft-root-driver", str(uid),
                              str(gid), childflow.argv()[0], LISTENER, CLIENT, scratch, *envs],
                             timeout=120)
    assert res.rc == 0, str(res)
    masked, unmasked = res.out.splitlines()
    assert masked in REFUSED, res.out
    # control: the same run of root, with the default given back, connects as the user
    assert unmasked == "connected hello", res.out
