"""Escapes through the tree's user and the kernel's knobs (issue #15, "root
callers"): run by root, the tree was uid 0 without capabilities, which still
owns root's files and writes /proc/sys (core_pattern runs code as real root).
Now a root caller's tree runs as SUDO_UID/SUDO_GID or nobody unless --user
chooses, and for every caller /proc/sys and /sys are read-only, the sandbox's
/proc has hidepid, and the tree has its own UTS and IPC namespaces.

Every attack is paired with a control in the same run: the tree still reaches
the origin (and, run by root, is still attributed in the flow log).

Runs as root go through `unshare --uts` with an empty environment: the old
binary's root tree could write /proc/sys/kernel/hostname, and must only ever
write a throwaway UTS namespace's. No test writes a /proc/sys key that is not
namespaced, whatever the binary."""

import fcntl
import json
import os
import select
import signal
import subprocess
import termios
import time

import pytest

import support
import topology as T

pytestmark = pytest.mark.core

ORIGIN_URL = f"http://{T.ORIGIN_V4}/"
CURL = f"curl -sS --max-time 20 {ORIGIN_URL}"
# One line per attempt that worked: the tests assert that none is printed.
ATTACKS = (
    "(echo pwned > /proc/sys/kernel/hostname) 2>/dev/null && echo ATTACK-hostname; "
    "(echo pwned >> {d}/rootfile) 2>/dev/null && echo ATTACK-rootfile; "
    "(echo pwned > {d}/new) 2>/dev/null && echo ATTACK-rootdir; "
)


def root_dir(topo, name):
    """A scratch directory owned by root (0755) holding root's file "rootfile" (0644)."""
    d = topo.make_user_dir(name)
    os.chown(d, 0, 0)
    os.chmod(d, 0o755)
    path = os.path.join(d, "rootfile")
    with open(path, "w") as f:
        f.write("root's\n")
    os.chmod(path, 0o644)
    return d


def run_as_root(topo, childflow, d, args, env=None):
    """childflow ARGS as root in the host namespace, in its own UTS namespace,
    with only PATH, the sanitizer options (reports go where the harness looks)
    and @env in its environment, from directory @d."""
    envs = {"PATH": T.SANE_PATH, "LANG": "C.UTF-8", "HOME": "/root", **childflow.env(env)}
    return topo.run_host_root(["unshare", "--uts", "--", "env", "-i", "-C", d,
                               *[f"{k}={v}" for k, v in envs.items()],
                               *childflow.argv(*args)], timeout=60)


def ids_and_attacks(d):
    return f"id -u; id -g; id -G; {ATTACKS.format(d=d)}{CURL}"


def assert_no_attack_worked(res, d):
    assert "ATTACK-" not in res.out, str(res)
    with open(os.path.join(d, "rootfile")) as f:
        assert f.read() == "root's\n"
    assert not os.path.exists(os.path.join(d, "new"))


def origin_fetched(res):
    return T.ORIGIN_BODY in res.out


def curl_attributed(flow_log):
    """The flow log's connection to the origin names curl (the engine reads the
    tree's /proc from the host's, whoever the tree runs as)."""
    with open(flow_log) as f:
        events = [json.loads(line) for line in f if line.strip()]
    return [e for e in events if e.get("event") == "connect_attempt"
            and e.get("remote_ip") == T.ORIGIN_V4 and e.get("comm") == "curl"
            and e.get("pid", 0) > 0 and (e.get("exe") or "").endswith("/curl")]


# --- root callers ------------------------------------------------------------------------


def test_root_caller_tree_runs_as_sudo_user_not_owning_roots_files_or_proc_sys(
        topo, childflow):
    d = root_dir(topo, "test_escape_root-sudo")
    log = os.path.join(d, "flows.jsonl")
    uid, gid = topo.uid, topo.state["gid"]
    res = run_as_root(topo, childflow, d,
                      ["--flow-log", log, "--", "sh", "-c", ids_and_attacks(d)],
                      env={"SUDO_UID": uid, "SUDO_GID": gid})
    assert res.rc == 0, str(res)
    assert origin_fetched(res), str(res)  # the control: the tree's network works
    assert res.out.splitlines()[:3] == [str(uid), str(gid), str(gid)], str(res)
    assert_no_attack_worked(res, d)
    notes = [ln for ln in res.err.splitlines() if "running the command as" in ln]
    assert notes == [f"childflow: running the command as uid {uid}, gid {gid} (from "
                     "SUDO_UID); use --user to choose, --user root to keep root"], str(res)
    assert curl_attributed(log), open(log).read()


def test_root_caller_without_sudo_runs_the_tree_as_nobody(topo, childflow):
    d = root_dir(topo, "test_escape_root-nobody")
    res = run_as_root(topo, childflow, d, ["--", "sh", "-c", ids_and_attacks(d)])
    assert res.rc == 0, str(res)
    assert origin_fetched(res), str(res)
    assert res.out.splitlines()[:3] == ["65534", "65534", "65534"], str(res)
    assert_no_attack_worked(res, d)
    assert "running the command as uid 65534, gid 65534 (nobody: no SUDO_UID)" in res.err, \
        str(res)


def test_root_caller_names_the_trees_user(topo, childflow):
    d = root_dir(topo, "test_escape_root-user")
    user = topo.state["user"]
    res = run_as_root(topo, childflow, d,
                      ["--user", user, "--", "sh", "-c", ids_and_attacks(d)],
                      env={"SUDO_UID": "1", "SUDO_GID": "1"})
    assert res.rc == 0, str(res)
    assert origin_fetched(res), str(res)
    assert res.out.splitlines()[:2] == [str(topo.uid), str(topo.state["gid"])], str(res)
    assert_no_attack_worked(res, d)
    assert "running the command as" not in res.err, str(res)


def test_root_caller_keeping_root_is_warned_and_proc_sys_stays_read_only(topo, childflow):
    d = root_dir(topo, "test_escape_root-keep")
    script = ("id -u; "
              "echo pwned > /proc/sys/kernel/hostname && echo ATTACK-hostname; "
              f"{CURL}")
    res = run_as_root(topo, childflow, d, ["--user", "root", "--", "sh", "-c", script])
    assert res.rc == 0, str(res)
    assert origin_fetched(res), str(res)
    assert res.out.splitlines()[0] == "0", str(res)
    assert "ATTACK-hostname" not in res.out, str(res)
    assert "Read-only file system" in res.err, str(res)
    warnings = [ln for ln in res.err.splitlines() if "--user root" in ln]
    assert len(warnings) == 1 and "policy cannot hold" in warnings[0], str(res)


def run_on_a_terminal(topo, childflow, d, args, env, marker, keys):
    """childflow ARGS as root on a new terminal (a pty that is its controlling
    terminal); once the output shows @marker, type @keys. Returns (rc, output)."""
    envs = {"PATH": T.SANE_PATH, "LANG": "C.UTF-8", "HOME": "/root", **childflow.env(env)}
    argv = ["ip", "netns", "exec", topo.host_ns, "unshare", "--uts", "--", "env", "-i", "-C", d,
            *[f"{k}={v}" for k, v in envs.items()], *childflow.argv(*args)]
    master, slave = os.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    out, typed = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every process holding the terminal is gone
                    break
                if not chunk:
                    break
                out += chunk
            if not typed and marker.encode() in out:
                os.write(master, keys)
                typed = True
            if p.poll() is not None and not ready:
                break
        rc = p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        os.close(master)
    return rc, out.decode(errors="replace")


TIOCSTI = ('python3 -c "import fcntl, termios; fcntl.ioctl(0, termios.TIOCSTI, b\'#\')" '
           "2>/dev/null && echo ATTACK-tiocsti")


def test_root_callers_tree_cannot_type_into_roots_terminal_and_ctrl_c_still_stops_it(
        topo, childflow):
    with open("/proc/sys/dev/tty/legacy_tiocsti") as f:
        if f.read().strip() == "0":
            pytest.skip("dev.tty.legacy_tiocsti = 0: no process may use TIOCSTI here")
    d = root_dir(topo, "test_escape_root-tty")
    # The marker comes from the process Ctrl-C must end, once it runs (no shell in between).
    script = (f"test -t 0 && echo tree-has-the-tty; {TIOCSTI}; id -u; exec python3 -c "
              "\"import time; print('tree-ready', flush=True); time.sleep(60)\"")
    rc, out = run_on_a_terminal(topo, childflow, d, ["--", "sh", "-c", script],
                                {"SUDO_UID": topo.uid, "SUDO_GID": topo.state["gid"]},
                                "tree-ready", b"\x03")
    assert "tree-has-the-tty" in out, out  # the tree had root's terminal on its fds
    assert f"{topo.uid}\r\ntree-ready" in out, out
    assert "ATTACK-tiocsti" not in out, out
    assert rc == 128 + signal.SIGINT, out  # the control: Ctrl-C on the terminal still ends it


# --- every caller --------------------------------------------------------------------------


def mounts_at(mountinfo_text, prefix):
    """(mount point, per-mount options, super options) of the visible mounts at
    or under prefix: a mount covered by another at the same point (or below a
    covered one) is left out."""
    m = {}
    for line in mountinfo_text.splitlines():
        f = line.split()
        if len(f) < 10 or "-" not in f[6:] or not f[0].isdigit():
            continue  # not a mountinfo line
        sep = f.index("-", 6)
        m[f[0]] = (f[1], f[4], f[5].split(","), f[sep + 3].split(","))
    covered = {parent for parent, point, _, _ in m.values()
               if parent in m and m[parent][1] == point}

    def visible(i):
        if i in covered:
            return False
        seen = set()
        while i in m and i not in seen:
            seen.add(i)
            parent = m[i][0]
            # a parent at another point must not be covered (by a mount other than i)
            if parent in m and m[parent][1] != m[i][1] and parent in covered:
                return False
            i = parent
        return True

    return [(point, opts, supers) for i, (_, point, opts, supers) in m.items()
            if (point == prefix or point.startswith(prefix.rstrip("/") + "/")) and visible(i)]


def test_proc_sys_is_read_only(childflow):
    res = childflow.run("--", "sh", "-c",
                        "cat /proc/sys/kernel/hostname; "
                        "echo 0 > /proc/sys/net/ipv4/tcp_syncookies; "
                        f"cat /proc/self/mountinfo; {CURL}")
    assert res.rc == 0, str(res)
    assert origin_fetched(res), str(res)
    assert res.out.splitlines()[0] == os.uname().nodename, str(res)  # readable
    assert "/proc/sys/net/ipv4/tcp_syncookies: Read-only file system" in res.err, str(res)
    sys_mounts = mounts_at(res.out, "/proc/sys")
    assert sys_mounts and all("ro" in opts for _, opts, _ in sys_mounts), sys_mounts


def test_sys_is_read_only(childflow):
    res = childflow.run("--", "sh", "-c", f"cat /proc/self/mountinfo; {CURL}")
    assert res.rc == 0, str(res)
    assert origin_fetched(res), str(res)
    mounts = mounts_at(res.out, "/sys")
    assert mounts, res.out
    assert all("ro" in opts for _, opts, _ in mounts), mounts


def test_tree_has_its_own_uts_and_ipc_namespaces(childflow):
    res = childflow.run("--", "sh", "-c",
                        "readlink /proc/self/ns/uts /proc/self/ns/ipc; uname -n; "
                        f"{CURL}")
    assert res.rc == 0, str(res)
    assert origin_fetched(res), str(res)
    uts, ipc, name = res.out.splitlines()[:3]
    assert uts.startswith("uts:[") and ipc.startswith("ipc:["), str(res)
    # The harness's host namespace shares this process's UTS and IPC namespaces.
    assert uts != os.readlink("/proc/self/ns/uts"), str(res)
    assert ipc != os.readlink("/proc/self/ns/ipc"), str(res)
    assert name == os.uname().nodename, str(res)  # the host's name, copied


def test_sandbox_proc_has_hidepid_and_hides_init(childflow):
    res = childflow.run("--", "sh", "-c",
                        "test -e /proc/1/cmdline && echo ATTACK-pid1-visible; "
                        "cat /proc/self/mountinfo; cat /proc/$$/comm; "
                        f"{CURL}")
    assert res.rc == 0, str(res)
    assert origin_fetched(res), str(res)
    assert "ATTACK-pid1-visible" not in res.out, str(res)
    assert "sh" in res.out.splitlines(), str(res)  # its own processes stay visible
    proc = [m for m in mounts_at(res.out, "/proc") if m[0] == "/proc"]
    assert len(proc) == 1, res.out
    supers = proc[0][2]
    assert "hidepid=invisible" in supers or "hidepid=2" in supers, proc


def test_user_other_than_the_caller_is_refused(topo, childflow, userdir):
    me = childflow.run("--user", topo.state["user"], "--", "id", "-u")
    assert me.rc == 0, str(me)  # the control: naming yourself is fine
    assert me.out.strip() == str(topo.uid), str(me)
    for other in ("root", "0", "nobody"):
        res = childflow.run("--user", other, "--", "id", "-u")
        assert res.rc == 125, str(res)
        assert "--user: only root can run the command as another user" in res.err, str(res)
        assert res.out == "", str(res)
    res = childflow.run("--user", "cft-no-such-user", "--", "id", "-u")
    assert res.rc == 125, str(res)
    assert "--user: unknown user 'cft-no-such-user'" in res.err, str(res)
    profile = os.path.join(userdir, "root.toml")
    with open(profile, "w") as f:
        f.write('user = "root"\n')
    os.chmod(profile, 0o644)
    res = childflow.run("--profile", profile, "--", "id", "-u")
    assert res.rc == 125, str(res)
    assert "--user: only root can run the command as another user" in res.err, str(res)
