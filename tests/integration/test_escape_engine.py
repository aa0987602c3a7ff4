"""The engine is confined (issue #15, "a confined engine", "the engine not
dumpable"): once the tree runs, childflow's own process has no_new_privs and a
seccomp filter, and another process of the same user cannot read its memory
or environment (it is not dumpable), while the tree's traffic goes on working
in the same run.

The seccomp test is not marked core: sanitizer builds load no filter
(LeakSanitizer clones and ptraces the process at exit; docs/architecture.md,
"Confinement"), and the -m core run uses the ASan build. They are not
dumpable either, so that test is core.
"""

import os

import pytest

import support
import topology as T


def _status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


@pytest.fixture
def running(childflow, userdir):
    """A run whose tree fetches from the origin, then waits for a stop file;
    yields (Popen, userdir) while the tree waits; the run must end with 0."""
    body = os.path.join(userdir, "body")
    ready = os.path.join(userdir, "ready")
    stop = os.path.join(userdir, "stop")
    # The tree's own status goes to "ready": it must not have inherited the filter.
    script = ('curl -sS --max-time 30 -o "$1" "$2" && cat /proc/self/status > "$3" && '
              'while [ ! -e "$4" ]; do sleep 0.1; done')
    # Both capture views: the capture threads (one started before the filter
    # was loaded, one after) must run under it as well.
    p = childflow.spawn("-c", os.path.join(userdir, "cap.pcapng"), "-C", "both",
                        "--", "sh", "-c", script, "sh", body, f"http://{T.ORIGIN_NAME}/",
                        ready, stop)
    try:
        if not support.wait_for(lambda: os.path.exists(ready) or p.poll() is not None, 60) \
                or p.poll() is not None:
            p.kill()
            pytest.fail(f"the tree never got its page:\n{childflow.finish(p)}")
        yield p, userdir
    finally:
        with open(stop, "w"):
            pass
        res = childflow.finish(p)
    assert res.rc == 0, str(res)
    with open(body) as f:
        assert f.read() == T.ORIGIN_BODY  # control: the tree's traffic worked, filter on


def test_engine_runs_with_no_new_privs_and_a_seccomp_filter(running):
    p, userdir = running
    tasks = os.listdir(f"/proc/{p.pid}/task")
    assert len(tasks) >= 2, tasks  # the engine and its capture threads
    for tid in tasks:
        status = _status(f"{p.pid}/task/{tid}")
        assert status["NoNewPrivs"].strip() == "1", (tid, status)
        assert status["Seccomp"].strip() == "2", (tid, status)  # 2: SECCOMP_MODE_FILTER
    # Control: the tree (cloned before the filter was loaded) is not under it.
    with open(os.path.join(userdir, "ready")) as f:
        tree = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    assert tree["Seccomp"].strip() == "0", tree


@pytest.mark.core
def test_same_user_cannot_read_the_engines_environment_or_memory(topo, running):
    p, userdir = running
    attack = topo.run_user(["sh", "-c", 'cat "/proc/$1/environ" >/dev/null', "sh", str(p.pid)])
    assert attack.rc != 0 and "Permission denied" in attack.err, str(attack)
    # The engine is not dumpable: its /proc files (not the world-readable
    # directories) belong to root, not to the user.
    assert os.stat(f"/proc/{p.pid}/environ").st_uid == 0
    assert os.stat(f"/proc/{p.pid}/mem").st_uid == 0
    # Control: the same user reads its own files and its own processes' environment.
    control = topo.run_user(["sh", "-c", 'cat "/proc/$$/environ" >/dev/null && cat "$1"',
                             "sh", os.path.join(userdir, "body")])
    assert control.rc == 0 and control.out == T.ORIGIN_BODY, str(control)
