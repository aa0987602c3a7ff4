"""pytest fixtures for childflow's integration tests.

Run as root with Debian's pytest:  /usr/bin/python3 -m pytest tests/integration
The session builds one private topology (see topology.py and docs/testing.md)
and tears it down at the end, on failure, on Ctrl-C and on SIGTERM/SIGHUP;
leftovers of runs that were SIGKILLed are swept at the next start.

Fixtures:
  topo       the session's topology.Topology (addresses, logs, run helpers)
  childflow  a Childflow runner: childflow.run(*argv) runs
             `childflow ARGV...` as the unprivileged user in the host
             namespace and returns topology.Result(rc, out, err)
  userdir    a fresh scratch directory owned by the unprivileged user

Every test is also checked (autouse, like the hygiene checks): every flow log
childflow wrote during it, named by --flow-log or found in the user's scratch
directories, must hold only lines of schema v1 as flowlog_v1.py states it.
"""

import atexit
import os
import shutil
import signal
import sys

import stat

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flowlog_v1  # noqa: E402
import topology  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANITIZER_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")

_session = {"topo": None}


def _teardown():
    t = _session["topo"]
    _session["topo"] = None
    if t is None:
        return []
    problems = t.down()
    for p in problems:
        print(f"topology teardown: {p}", file=sys.stderr)
    return problems


def _interrupt(signum, frame):
    # pytest unwinds on KeyboardInterrupt and runs every fixture finalizer.
    raise KeyboardInterrupt(f"signal {signum}")


def childflow_bin_path():
    """The binary under test: $CHILDFLOW_BIN or <repo>/build/childflow."""
    return os.path.abspath(os.environ.get("CHILDFLOW_BIN")
                           or os.path.join(REPO, "build", "childflow"))


@pytest.fixture(scope="session")
def topo():
    if os.geteuid() != 0:
        pytest.exit("integration tests build network namespaces: run them as root", 2)
    for what, problems in topology.sweep():
        print(f"swept leftovers of an earlier run: {what} {problems or ''}", file=sys.stderr)
    t = topology.Topology(f"cft-{os.getpid()}", owner_pid=os.getpid())
    _session["topo"] = t
    atexit.register(_teardown)
    old = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        t.up()
        yield t
    finally:
        problems = _teardown()
        for s, h in old.items():
            signal.signal(s, h)
        assert not problems, f"teardown left things behind: {problems}"


@pytest.fixture(scope="session")
def childflow_bin(topo):
    """Copy of the binary inside the run dir (so the unprivileged user can
    execute it wherever the checkout lives), or None if it does not exist."""
    src = childflow_bin_path()
    if not os.path.isfile(src):
        return None
    dst = os.path.join(topo.run_dir, "bin", "childflow")
    shutil.copy2(src, dst)
    os.chmod(dst, 0o755)
    return dst


class FlowLogs:
    """The flow logs the session's runs wrote, validated against schema v1
    (flowlog_v1.py) once per version of each file: right after the run that
    named it with --flow-log, and in a sweep of the scratch directories after
    each test (logs named by a profile or written by a childflow a test
    started another way)."""

    def __init__(self):
        self.named = set()
        self.seen = {}      # path -> (inode, mtime_ns, size) when last validated
        self.problems = []

    def note(self, args):
        """Remember the --flow-log paths among childflow's @args (absolute ones)."""
        paths = []
        args = [str(a) for a in args]
        for i, a in enumerate(args):
            if a == "--":
                break
            if a == "--flow-log" and i + 1 < len(args):
                paths.append(str(args[i + 1]))
            elif a.startswith("--flow-log="):
                paths.append(a.split("=", 1)[1])
        self.named.update(p for p in paths if os.path.isabs(p))

    def check(self, paths, uid=None):
        """Validate those of @paths that changed since their last check (and
        are owned by @uid, when given)."""
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                continue
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if not stat.S_ISREG(st.st_mode) or self.seen.get(p) == key:
                continue
            if uid is not None and st.st_uid != uid:
                continue
            self.seen[p] = key
            if flowlog_v1.looks_like_flow_log(p):
                self.problems += flowlog_v1.validate_file(p)

    def check_named(self):
        """check() every file named by --flow-log so far (unchanged ones cost a stat)."""
        self.check(sorted(self.named))

    def sweep(self, topo):
        """check() every file named so far, and every file of the scratch
        directories that childflow (run as the user) may have written: the
        user's files. The logs tests write by hand for --report (garbage, a
        log cut short) are root's."""
        self.check_named()
        paths = []
        for root, _, files in os.walk(os.path.join(topo.run_dir, "t")):
            paths += [os.path.join(root, f) for f in files]
        self.check(sorted(paths), uid=topo.state["uid"])

    def take_problems(self):
        out, self.problems = self.problems, []
        return out


flow_logs = FlowLogs()


class Childflow:
    """Runs the childflow binary as the topology's unprivileged user."""

    def __init__(self, topo, binary):
        self.topo = topo
        self.binary = binary
        self.san_dir = os.path.join(topo.run_dir, "sanitizer")

    def _bin(self):
        if self.binary is None:
            pytest.fail(f"childflow binary not found at {childflow_bin_path()} "
                        "(build it: ninja -C build, or set CHILDFLOW_BIN)")
        return self.binary

    def env(self, extra=None):
        """Environment for childflow: sanitizer options pass through, with
        their reports sent to files the harness checks after each test."""
        env = {}
        for var, name in (("ASAN_OPTIONS", "asan"), ("UBSAN_OPTIONS", "ubsan"),
                          ("LSAN_OPTIONS", "lsan")):
            opts = os.environ.get(var, "")
            log = f"log_path={self.san_dir}/{name}"
            env[var] = f"{opts}:{log}" if opts else log
        for var in ("ASAN_SYMBOLIZER_PATH",):
            if os.environ.get(var):
                env[var] = os.environ[var]
        env.update(extra or {})
        return env

    def argv(self, *args):
        flow_logs.note(args)
        # CHILDFLOW_TEST_TCP_PATH=relay runs every command run on the relay
        # path (issue 18: the core set runs both ways; docs/testing.md).
        path = os.environ.get("CHILDFLOW_TEST_TCP_PATH")
        if path and "--" in args and "--tcp-path" not in args:
            args = ("--tcp-path", path, *args)
        return [self._bin(), *args]

    def run(self, *args, timeout=60, env=None, input=None, tun_mode="0666",
            variant="plain"):
        """Run `childflow ARGS...`; returns topology.Result."""
        try:
            return self.topo.run_user(self.argv(*args), timeout=timeout, env=self.env(env),
                                      input=input, tun_mode=tun_mode, variant=variant)
        finally:
            flow_logs.check_named()

    def spawn(self, *args, env=None, tun_mode="0666", variant="plain"):
        """Start `childflow ARGS...` in the background; returns the Popen
        (its pid is childflow's own pid).  Finish it with finish()."""
        return self.topo.spawn_user(self.argv(*args), env=self.env(env),
                                    tun_mode=tun_mode, variant=variant)

    def finish(self, proc, timeout=60):
        """Wait for a spawned childflow; returns topology.Result."""
        try:
            return topology.communicate(proc, proc.args, timeout)
        finally:
            flow_logs.check_named()


@pytest.fixture
def childflow(topo, childflow_bin):
    return Childflow(topo, childflow_bin)


@pytest.fixture
def userdir(topo, request):
    return topo.make_user_dir(request.node.name)


@pytest.fixture(autouse=True)
def _hygiene(request):
    """After each test: kill what the test left running as the user, and fail
    the test if a sanitizer wrote a report during it or childflow's seccomp
    filter refused a system call (topology.SECCOMP_BLOCKED in any output)."""
    if "topo" not in request.fixturenames:
        yield
        return
    t = request.getfixturevalue("topo")
    san_dir = os.path.join(t.run_dir, "sanitizer")
    before = set(os.listdir(san_dir))
    blocked_before = len(topology.seccomp_blocked)
    yield
    leftovers = t.kill_user_processes()
    if leftovers:
        print(f"\nkilled processes left by {request.node.name}: {leftovers}", file=sys.stderr)
    new = sorted(set(os.listdir(san_dir)) - before)
    if new:
        text = []
        for name in new:
            with open(os.path.join(san_dir, name), errors="replace") as f:
                text.append(f"=== {name}\n{f.read()[-20000:]}")
        pytest.fail("sanitizer report(s) during this test:\n" + "\n".join(text), pytrace=False)
    blocked = topology.seccomp_blocked[blocked_before:]
    if blocked:
        pytest.fail("childflow's seccomp filter refused a system call the engine made (add it "
                    "to src/engine/isolation.c with the reason):\n" + "\n".join(blocked),
                    pytrace=False)


@pytest.fixture(autouse=True)
def _flow_logs_v1(request):
    """After each test: every flow log written so far is schema v1
    (flowlog_v1.py), or the test fails with the offending lines."""
    if "topo" not in request.fixturenames:
        yield
        return
    t = request.getfixturevalue("topo")
    yield
    flow_logs.sweep(t)
    problems = flow_logs.take_problems()
    if problems:
        pytest.fail(f"{len(problems)} flow-log line(s) break schema v1 "
                    "(tests/integration/flowlog_v1.py, docs/flow-log-schema.md):\n"
                    + "\n".join(problems[:20]), pytrace=False)
