"""A run that fails at any step of its set-up ends, says why, records it,
and leaves no capture file behind when the command never started.

The steps are made to fail one after the other by the only lever that
reaches all of them without privilege: the caller's descriptor limit
(`ulimit -n N`), which runs out in the control socket, the clone, the
sandbox's set-up, the engine's start or not at all as N grows."""

import os

import pytest

import featurelib as F

# Not in -m core: that pass runs the ASan build, whose reports need descriptors this test
# takes away (a sanitizer that cannot open its log file hangs or aborts the helper).

# Descriptor limits from "nothing works" to "everything does" on any host we know.
LIMITS = range(6, 41)

# The runtime_failure events a failed set-up (exit 124) may write.
SETUP_EVENTS = {("preflight", "namespace_create_failed"), ("preflight", "host_not_ready"),
                ("child_bootstrap", "sandbox_setup_failed")}


def test_every_descriptor_limit_ends_the_run_cleanly(topo, childflow, userdir):
    seen = {}
    for n in LIMITS:
        out = os.path.join(userdir, f"n{n}.pcapng")
        log = os.path.join(userdir, f"n{n}.jsonl")
        marker = os.path.join(userdir, f"n{n}.ran")
        # A run that hangs is killed by the harness after the timeout and fails the test.
        res = topo.run_user(["sh", "-c", f'ulimit -n {n} && exec "$@"', "sh",
                             *childflow.argv("-c", out, "-C", "both", "--flow-log", log,
                                             "--", "touch", marker)],
                            env=childflow.env(), timeout=30)
        files = {os.path.join(userdir, f"n{n}.{v}.pcapng") for v in ("child", "egress")}
        left = {f for f in files if os.path.exists(f)}
        events = [(e["phase"], e["reason_code"]) for e in F.read_flowlog(log)
                  if e["event"] == "runtime_failure"]
        seen.setdefault(res.rc, n)
        if res.rc == 0:
            assert os.path.exists(marker), f"ulimit -n {n}: {res}"
            assert left == files and events == [], f"ulimit -n {n}: {res}"
        elif res.rc == 124:
            # The command never started: its capture files are gone again.
            assert not os.path.exists(marker), f"ulimit -n {n}: {res}"
            assert left == set(), f"ulimit -n {n}: {left} left behind; {res}"
            assert len(events) == 1 and events[0] in SETUP_EVENTS, f"ulimit -n {n}: {events}"
            assert F.stderr_lines(res), f"ulimit -n {n}: no reason given; {res}"
        elif res.rc == 123:
            # The sandbox was up, the engine could not start: the files stay, as after a run.
            assert not os.path.exists(marker), f"ulimit -n {n}: {res}"
            assert events == [("run", "engine_failure")], f"ulimit -n {n}: {events}"
            assert "cannot start the engine" in res.err, f"ulimit -n {n}: {res}"
        else:
            pytest.fail(f"ulimit -n {n}: exit status {res.rc}: {res}")
    # Controls: the lever reaches both ends, so the loop above checked failures and successes.
    assert 124 in seen and 0 in seen, seen
