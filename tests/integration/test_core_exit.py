"""childflow exits with its command's status, forwards termination to the
tree, and never lets a process of the tree outlive it."""

import os
import signal

import pytest

import support

pytestmark = pytest.mark.core


@pytest.mark.parametrize("script, expected", [
    ("exit 0", 0),
    ("exit 7", 7),
    ("kill -TERM $$", 128 + signal.SIGTERM),
    ("kill -KILL $$", 128 + signal.SIGKILL),
], ids=["exit-0", "exit-7", "killed-by-sigterm-143", "killed-by-sigkill-137"])
def test_exit_status_is_the_commands(childflow, script, expected):
    res = childflow.run("--", "sh", "-c", script)
    assert res.rc == expected, str(res)


def _spawn_tree(childflow, userdir, token, script):
    """Start `childflow -- sh -c SCRIPT` (marked with token) whose tree
    signals readiness by creating $READY; returns (popen, pids of childflow
    and its tree)."""
    ready = os.path.join(userdir, "ready")
    p = childflow.spawn("--", "sh", "-c", support.marked_script(token, script),
                        env={"CFT_MARK": token, "READY": ready})
    support.wait_for(lambda: os.path.exists(ready) or p.poll() is not None, 30)
    if not os.path.exists(ready):
        p.kill()
        pytest.fail(f"the tree never became ready:\n{childflow.finish(p)}")

    def whole_tree():  # childflow, sh and the two sleeps at least
        pids = support.marked_pids(token)
        return pids if len(pids) >= 4 else None

    return p, support.wait_for(whole_tree, 10) or support.marked_pids(token)


TREE = 'sleep 1000 & sleep 1000 & echo up > "$READY"; wait'


def test_sigterm_to_childflow_terminates_tree_and_exits_143(childflow, userdir):
    token = support.new_token()
    p, tree = _spawn_tree(childflow, userdir, token, TREE)
    assert p.pid in tree and len(tree) >= 4, f"tree {tree}, childflow {p.pid}"
    os.kill(p.pid, signal.SIGTERM)
    res = childflow.finish(p, timeout=30)
    assert res.rc == 128 + signal.SIGTERM, str(res)
    assert support.wait_for(lambda: not support.alive(tree), 10), \
        f"survivors: {support.alive(tree)}"
    assert not support.marked_pids(token)


def test_sigterm_handled_by_command_gives_its_exit_code(childflow, userdir):
    token = support.new_token()
    p, tree = _spawn_tree(childflow, userdir, token, "trap 'exit 42' TERM; " + TREE)
    assert p.pid in tree and len(tree) >= 4, f"tree {tree}, childflow {p.pid}"
    os.kill(p.pid, signal.SIGTERM)
    res = childflow.finish(p, timeout=30)
    assert res.rc == 42, str(res)
    assert support.wait_for(lambda: not support.alive(tree), 10), \
        f"survivors: {support.alive(tree)}"


def test_background_processes_do_not_outlive_childflow(childflow, userdir):
    token = support.new_token()
    pidfile = os.path.join(userdir, "bg")
    res = childflow.run("--", "sh", "-c",
                        support.marked_script(token, f"sleep 1000 & echo $! > {pidfile}; exit 0"),
                        env={"CFT_MARK": token}, timeout=30)
    assert res.rc == 0, str(res)
    assert os.path.exists(pidfile), "the background process never started"
    assert support.wait_for(lambda: not support.marked_pids(token), 10), \
        f"survivors: {support.marked_pids(token)}"


def test_double_forked_daemon_in_new_session_does_not_outlive_childflow(childflow, userdir):
    token = support.new_token()
    pidfile = os.path.join(userdir, "daemon")
    res = childflow.run("--", "sh", "-c", support.marked_script(
        token, f"setsid sh -c 'sleep 1000 & echo $! > {pidfile}'; exit 0"),
        env={"CFT_MARK": token}, timeout=30)
    assert res.rc == 0, str(res)
    assert os.path.exists(pidfile), "the daemon never started"
    assert support.wait_for(lambda: not support.marked_pids(token), 10), \
        f"survivors: {support.marked_pids(token)}"
