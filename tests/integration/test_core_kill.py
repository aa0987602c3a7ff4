"""SIGKILL of childflow in the middle of a transfer leaves nothing: no process
of the tree, no namespace, no mount."""

import os
import signal

import pytest

import support
import topology as T

pytestmark = pytest.mark.core


def test_sigkill_mid_transfer_leaves_no_process_namespace_or_mount(topo, childflow, userdir):
    token = support.new_token()
    out = os.path.join(userdir, "partial")
    mounts_before = set(support.mountinfo())
    p = childflow.spawn("--", "curl", "-sS", "--limit-rate", "1M", "-o", out,
                        f"http://{T.ORIGIN_NAME}/big", env={"CFT_MARK": token})
    support.wait_for(lambda: support.file_size(out) > 256 * 1024 or p.poll() is not None, 60)
    if support.file_size(out) <= 256 * 1024:
        p.kill()
        pytest.fail(f"the transfer never got going:\n{childflow.finish(p)}")
    tree = support.marked_pids(token)
    assert p.pid in tree and len(tree) >= 2, tree
    host_ns = {T.proc_ns(p.pid, k) for k in ("net", "user", "mnt")}
    sandbox_ns = {T.proc_ns(x, k) for x in tree for k in ("net", "user", "mnt")} - host_ns - {None}
    assert any(n.startswith("net:") for n in sandbox_ns), "the tree is not in its own netns"

    os.kill(p.pid, signal.SIGKILL)
    res = childflow.finish(p, timeout=30)
    assert res.rc == 128 + signal.SIGKILL, str(res)

    assert support.wait_for(lambda: not support.alive(tree), 10), \
        f"survivors: {support.alive(tree)}"
    assert support.wait_for(lambda: not topo.user_processes(), 10), topo.user_processes()
    assert support.wait_for(lambda: not support.namespace_holders(sandbox_ns), 10), \
        f"namespaces still held by {support.namespace_holders(sandbox_ns)}"
    inodes = {n.split(":", 1)[1] for n in sandbox_ns}
    new_mounts = set(support.mountinfo()) - mounts_before
    suspicious = [m for m in new_mounts
                  if topo.run_dir in m or any(i in m for i in inodes)]
    assert not suspicious, suspicious
    assert not [m for m in support.mountinfo() if any(i in m for i in inodes)]
