"""A fresh proc in a user namespace nested in the sandbox (issue 18): the
sandbox keeps a spare, unreachable copy of the tree's proc so that a nested
childflow (or `unshare --mount-proc`) can mount a proc of its own, but only
for a tree that is not uid 0. Such a proc must open none of the kernel's
knobs to the tree: every /proc/sys file and /proc/sysrq-trigger is only
opened for writing, never written. A tree of uid 0 would own the host's
knobs (core_pattern runs code as real root): for it the kernel's refusal
stays."""

import pytest

import test_escape_root as er
import topology as T

pytestmark = pytest.mark.core

# Run as pid 1 of a new user, mount and PID namespace with a fresh /proc:
# prints "self 1" (the proc is the new namespace's) and, for each knob,
# "ATTACK PATH" when it opens for writing or "denied PATH ERRNO".
KNOBS = r"""
import errno, os
print("self", os.readlink("/proc/self"))
for p in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname",
          "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/tcp_syncookies",
          "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger"):
    if not os.path.exists(p):
        continue
    try:
        os.close(os.open(p, os.O_WRONLY))
        print("ATTACK", p)
    except OSError as e:
        print("denied", p, errno.errorcode.get(e.errno, e.errno))
"""
NESTED = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
          "--mount-proc", "/usr/bin/python3", "-c", KNOBS]
# Root cannot map the host's uid 0 into a namespace of its own without
# CAP_SETFCAP, but needs no map at all: it keeps kuid 0 there, and every
# capability of the new namespace.
UNMAPPED = [w for w in NESTED if w != "--map-root-user"]


def assert_fresh_proc_opens_nothing(res):
    assert res.rc == 0, str(res)
    assert er.origin_fetched(res), str(res)
    lines = res.out.splitlines()
    assert lines[0] == "self 1", str(res)
    assert not [ln for ln in lines if ln.startswith("ATTACK")], str(res)
    assert any(ln.startswith("denied /proc/sys/kernel/core_pattern") for ln in lines), str(res)


def test_a_fresh_proc_in_a_nested_namespace_opens_no_knob_to_the_tree(childflow):
    res = childflow.run("--", "sh", "-c", "\"$@\"; " + er.CURL, "sh", *NESTED)
    assert_fresh_proc_opens_nothing(res)


def test_a_root_callers_tree_of_another_user_gets_a_fresh_proc_that_opens_nothing(
        topo, childflow):
    d = er.root_dir(topo, "test_escape_nested-nobody")
    res = er.run_as_root(topo, childflow, d, ["--", "sh", "-c", "\"$@\"; " + er.CURL, "sh",
                                              *NESTED])
    assert_fresh_proc_opens_nothing(res)


def test_a_tree_of_uid_0_still_cannot_mount_a_fresh_proc(topo, childflow):
    d = er.root_dir(topo, "test_escape_nested-root")
    script = "\"$@\"; echo rc=$?; " + er.CURL
    res = er.run_as_root(topo, childflow, d, ["--user", "root", "--", "sh", "-c", script,
                                              "sh", *UNMAPPED])
    assert res.rc == 0, str(res)
    assert er.origin_fetched(res), str(res)
    assert "self 1" not in res.out and "ATTACK" not in res.out, str(res)
    assert "rc=1" in res.out and "mount /proc failed" in res.err, str(res)
