"""Issue #15, attack 4: a proxy password given on the command line is not in
any /proc/PID/cmdline, neither of childflow (read from outside, as another
host user would) nor of the tree's processes (its pid 1, the sandbox helper,
shares childflow's argv memory).  The SOCKS5 proxy requires the credentials,
so the download through it in the same run proves they were still used."""

import os
import time

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    SOCKS_PASSWORD, SOCKS_USER, proxy_world)

WRONG = "Zq9-wr0ng-Pw-Xv"  # distinctive: any occurrence is a leak

# Inside the tree: every process's cmdline it can see (pid 1, the helper, is
# hidden by hidepid: then "hidden"; and the reading process's own), then a
# download through the proxy, then wait for the test to read childflow's
# and the helper's cmdlines from outside.
TREE_SCRIPT = r"""
d=$1 url=$2
cat /proc/1/cmdline > "$d/pid1" 2>/dev/null || echo hidden > "$d/pid1"
cat /proc/self/cmdline > "$d/self" || exit 91
for f in /proc/[0-9]*/cmdline; do cat "$f"; printf '\n'; done > "$d/all" 2>/dev/null
curl -sS --max-time 30 -o "$d/body" "$url" || exit 92
touch "$d/ready"
i=0
while [ ! -e "$d/go" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
"""


def _forms(world):
    ms = f"{world.microsocks.host}:{world.microsocks.port}"
    uri = f"socks5://{SOCKS_USER}:{SOCKS_PASSWORD}@{ms}"
    bare = world.microsocks.url
    return {
        "uri-separate": ["-p", uri],
        "uri-attached": [f"-p{uri}"],
        "uri-long": ["--proxy", uri],
        "uri-long-equals": [f"--proxy={uri}"],
        "password-separate": ["-p", bare, "-U", SOCKS_USER, "-P", SOCKS_PASSWORD],
        "password-attached": ["-p", bare, "-U", SOCKS_USER, f"-P{SOCKS_PASSWORD}"],
        "password-long": ["-p", bare, "-U", SOCKS_USER, "--proxy-password", SOCKS_PASSWORD],
        "password-long-equals": ["-p", bare, "-U", SOCKS_USER,
                                 f"--proxy-password={SOCKS_PASSWORD}"],
        "repeated": ["-p", f"socks5://{SOCKS_USER}:{WRONG}@{ms}", "-p", uri,
                     "-U", SOCKS_USER, "-P", WRONG, f"--proxy-password={SOCKS_PASSWORD}"],
    }


def _wait_for(path, proc):
    """Wait until the tree created path (or childflow ended)."""
    for _ in range(600):
        if os.path.exists(path) or proc.poll() is not None:
            return
        time.sleep(0.1)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _cmdlines(pids):
    out = {}
    for p in pids:
        try:
            out[p] = _read(f"/proc/{p}/cmdline")
        except OSError:
            pass
    return out


@pytest.mark.parametrize("form", ["uri-separate", "uri-attached", "uri-long", "uri-long-equals",
                                  "password-separate", "password-attached", "password-long",
                                  "password-long-equals", "repeated"])
def test_no_password_in_any_cmdline(proxy_world, topo, childflow, userdir, form):
    args = _forms(proxy_world)[form]
    url = f"http://{T.ORIGIN_NAME}/?cft={support.new_token()}"
    needles = [SOCKS_PASSWORD.encode(), WRONG.encode()]
    proc = childflow.spawn(*args, "--", "sh", "-c", TREE_SCRIPT, "tree", userdir, url)
    try:
        _wait_for(os.path.join(userdir, "ready"), proc)
        outside = _cmdlines([proc.pid, *topo.user_processes()])
    finally:
        with open(os.path.join(userdir, "go"), "w"):
            pass
        res = childflow.finish(proc)
    # control: the download through the proxy that needs the credentials worked
    assert res.rc == 0, str(res)
    assert os.path.getsize(os.path.join(userdir, "body")) > 0, str(res)
    # what was read is childflow's argv, scrubbed (not something else)
    assert proc.pid in outside, outside
    assert b"-p" in outside[proc.pid] and b"******" in outside[proc.pid], outside[proc.pid]
    pid1, own, every = (_read(os.path.join(userdir, n)) for n in ("pid1", "self", "all"))
    # pid 1 (the helper, a clone of childflow) is hidden from the tree; from
    # outside it is one of the user's processes with childflow's argv
    assert pid1 == b"hidden\n", pid1
    helpers = [pid for pid, text in outside.items()
               if pid != proc.pid and proxy_world.microsocks.host.encode() in text]
    assert helpers, outside
    assert b"/proc/self/cmdline" in own, own
    for n in needles:
        for pid, text in outside.items():
            assert n not in text, f"{form}: password in /proc/{pid}/cmdline: {text!r}"
        for what, text in (("/proc/1/cmdline", pid1), ("/proc/self/cmdline", own),
                           ("the tree's /proc/*/cmdline", every)):
            assert n not in text, f"{form}: password in {what} inside: {text!r}"


def test_the_proxy_refuses_without_the_credentials(proxy_world, childflow):
    """The control's premise: without the password the same download fails."""
    res = childflow.run("-p", proxy_world.microsocks.url, "--", "curl", "-sS", "--max-time",
                        "30", f"http://{T.ORIGIN_NAME}/?cft={support.new_token()}")
    assert res.rc != 0, str(res)
