"""A run that fails at any step of its set-up ends, says why, records it,
and leaves no capture file behind when the command never started.

The steps are made to fail one after the other by the only lever that
reaches all of them without privilege: the caller's descriptor limit
(`ulimit -n N`), which runs out in the control socket, the clone, the
sandbox's set-up, the engine's start or not at all as N grows."""

import os

import pytest

import featurelib as F
import topology as T

# Not in -m core: that pass runs the ASan build, whose reports need descriptors this test
# takes away (a sanitizer that cannot open its log file hangs or aborts the helper).

# Descriptor limits from "nothing works" to "everything does" on any host we know.
LIMITS = range(6, 41)

# The runtime_failure events a failed set-up (exit 124) may write: the step
# that failed, by the original's code where it has one (docs/flow-log-schema.md).
SETUP_EVENTS = {("preflight", code) for code in (
    "host_not_ready", "rootless_bootstrap_sync_failed", "namespace_unshare_failed",
    "user_namespace_mapping_failed")} | {("child_bootstrap", code) for code in (
        "rootless_bootstrap_sync_failed", "mount_propagation_blocked", "proc_mount_blocked",
        "resolv_conf_bind_blocked", "hosts_bind_blocked", "output_mask_blocked",
        "tap_create_blocked", "child_network_setup_failed", "sysctl_write_blocked",
        "tproxy_listener_blocked", "nftables_load_failed", "packet_capture_blocked",
        "sock_diag_blocked", "proc_harden_blocked")}


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


@pytest.mark.parametrize("name, code", [("hosts", "hosts_bind_blocked"),
                                        ("resolv.conf", "resolv_conf_bind_blocked")])
def test_a_failed_bind_over_etc_is_recorded_with_the_step_that_failed(topo, childflow, userdir,
                                                                      name, code):
    # /etc/NAME is a dangling symlink: the sandbox cannot place its file over it
    # (/etc/hosts is replaced only with --hosts-file or --allow-host-port)
    hosts = F.write_user_file(topo, os.path.join(userdir, "hosts"), "127.0.0.1 localhost\n")
    log = os.path.join(userdir, "flow.jsonl")
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--dns", T.DNS_A_V4, "--hosts-file", hosts, "--flow-log", log,
                        "--", "touch", marker, variant=f"dangling-{name}")
    assert res.rc == 124, str(res)
    lines = F.stderr_lines(res)
    assert len(lines) == 1 and f"/etc/{name}" in lines[0], str(res)
    failures = [e for e in F.read_flowlog(log) if e["event"] == "runtime_failure"]
    assert [(e["phase"], e["reason_code"]) for e in failures] == [("child_bootstrap", code)], \
        failures
    assert failures[0]["detail"] == lines[0].removeprefix("childflow: "), (failures, lines)
    assert not os.path.exists(marker), "the command ran"


def test_wire_egress_without_capture_privilege_is_recorded_as_packet_capture_blocked(
        childflow, userdir):
    # the user has no CAP_NET_RAW on the host: the wire view cannot open its socket
    log = os.path.join(userdir, "flow.jsonl")
    marker = os.path.join(userdir, "ran")
    res = childflow.run("-c", os.path.join(userdir, "wire.pcapng"), "-C", "wire-egress",
                        "--flow-log", log, "--", "touch", marker)
    assert res.rc == 124, str(res)
    lines = F.stderr_lines(res)
    assert len(lines) == 1, str(res)
    failures = [e for e in F.read_flowlog(log) if e["event"] == "runtime_failure"]
    assert [(e["phase"], e["reason_code"]) for e in failures] == \
        [("preflight", "packet_capture_blocked")], failures
    assert failures[0]["detail"] == lines[0].removeprefix("childflow: "), (failures, lines)
    assert sorted(os.listdir(userdir)) == ["flow.jsonl"], "a capture file or the command ran"
