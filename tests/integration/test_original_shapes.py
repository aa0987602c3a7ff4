"""The summary, report and doctor JSON carry every field the original
childflow documents (release 0.8.1), with its name, type and meaning, beside
ours: tools written for the original read them unchanged.  The original's
shapes are stated in original_shapes.py; here real runs, reports and doctor
reports are validated against them, and their counts against the flow log
they describe (docs/summary-schema.md, docs/report-schema.md,
docs/doctor-schema.md, "Fields of the original")."""

import collections
import json
import os
import shutil

import pytest

import conftest
import featurelib as F
import original_shapes as S
import topology as T

O4, O6, B4 = T.ORIGIN_V4, T.ORIGIN_V6, T.ORIGIN_B_V4
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

START = ("connect_attempt", "datagram_flow_start")
RESULT = ("connect_result", "datagram_flow_start")
END = ("flow_end", "datagram_flow_end")


def summary_of(res):
    return json.loads(res.err.strip().splitlines()[-1])


def expected_targets(events):
    """{remote_addr: [attempts, ok, error, end]} of a flow log: TCP and
    datagram flows alike (docs/report-schema.md)."""
    t = collections.defaultdict(lambda: [0, 0, 0, 0])
    for e in events:
        name, addr = e["event"], e.get("remote_addr")
        if name in START:
            t[addr][0] += 1
        if name in RESULT:
            t[addr][1 if e["status"] == "ok" else 2] += 1
        if name in END:
            t[addr][3] += 1
    return dict(t)


class Run:
    pass


@pytest.fixture(scope="module")
def run(topo, childflow_bin):
    """One run with a flow log, a capture of both views and a JSON summary:
    a name looked up and fetched, a denied and a refused connection, a ping,
    a UDP exchange and a denied DNS name."""
    cf = conftest.Childflow(topo, childflow_bin)
    d = topo.make_user_dir("test_original_shapes-run")
    r = Run()
    r.log = os.path.join(d, "run.jsonl")
    r.cap = os.path.join(d, "run.pcapng")
    commands = [
        f"curl -sS -4 --max-time 30 -o /dev/null http://{T.ORIGIN_NAME}/",
        F.probe_cmd("tcp", B4, 80),                    # denied by --deny-cidr
        F.probe_cmd("tcp", O4, T.CLOSED_PORT),         # refused
        F.ping_cmd(O4),
        F.probe_cmd("udp", O4, 7),
        f"dig +short +time=5 +tries=1 @{F.RESOLVER_V4} {T.V6ONLY_NAME} AAAA",  # denied name
    ]
    options = ["--flow-log", r.log, "-c", r.cap, "-C", "both", "--deny-cidr", f"{B4}/32",
               "--deny-domain", T.V6ONLY_NAME, "--summary", "--summary-format", "json"]
    r.parts, r.res = F.steps(cf, options, commands)
    r.events = F.read_flowlog(r.log)
    r.summary = summary_of(r.res)
    r.report_res = cf.run("--report", r.log, "--report-format", "json")
    assert r.report_res.rc == 0, str(r.report_res)
    r.report = json.loads(r.report_res.out)
    return r


# --- summary ---------------------------------------------------------------------------


@pytest.mark.core
def test_summary_of_a_run_has_every_field_of_the_originals_summary(run):
    S.validate_summary(run.summary)
    s = run.summary
    assert s["backend"] == "rootless-internal" and s["exit_code"] == 0, s
    assert s["command"].startswith("sh -c '"), s["command"]
    assert s["sandbox_controls"] == s["controls"], s
    base = run.cap[:-len(".pcapng")]
    assert s["capture"] == {"status": "enabled", "requested": "both",
                            "effective": "child+egress", "output": None,
                            "child_output": base + ".child.pcapng",
                            "egress_output": base + ".egress.pcapng"}, s["capture"]
    assert s["flow_log"]["status"] == "available" and s["flow_log"]["path"] == run.log, s


def test_summary_flow_log_counts_are_the_logs(run):
    fl = run.summary["flow_log"]
    by_type = collections.Counter(e["event"] for e in run.events)
    assert fl["event_counts"]["total"] == len(run.events), fl["event_counts"]
    for k, v in fl["event_counts"].items():
        if k not in ("total", "unknown_event"):
            assert v == by_type.get(k, 0), (k, fl["event_counts"])
    assert by_type["datagram_flow_start"] >= 2, by_type   # the ping and the UDP exchange
    reasons = collections.Counter(e["reason_code"] for e in F.violations(run.events))
    assert {x["key"]: x["count"] for x in fl["policy_violations"]} == dict(reasons)
    assert {x["key"]: x["count"] for x in fl["policy_matched_domains"]} == {T.V6ONLY_NAME: 1}
    errors = collections.Counter(e["error"] for e in run.events
                                 if e["event"] in RESULT and e["status"] == "error")
    assert {x["key"]: x["count"] for x in fl["connect_errors"]} == dict(errors)
    top = fl["top_target"]
    assert top == run.report["top_connection_targets"][0], (top, run.report)
    want = expected_targets(run.events)
    assert [top["connect_attempts"], top["connect_ok"], top["connect_error"],
            top["flow_end"]] == want[top["target"]], (top, want)


def test_summary_dns_policy_views_name_the_denied_name(run):
    fl = run.summary["flow_log"]
    rows = [r for r in fl["dns_policy_rows"] if r["qname"] == T.V6ONLY_NAME]
    assert len(rows) == 1 and rows[0]["target"] is None, fl["dns_policy_rows"]
    assert rows[0]["matched_domains"] == [{"key": T.V6ONLY_NAME, "count": 1}], rows
    top = fl["top_dns_policy_correlation"]
    assert top["qname"] == T.V6ONLY_NAME, top
    assert top["matched_domains"] == [{"key": T.V6ONLY_NAME, "count": 1}], top
    name = fl["top_dns_name"]
    assert name["qname"] == T.ORIGIN_NAME and O4 in name["answer_ips"], name
    # every target at an answer IP, whichever name the tree used to reach it
    at_o4 = {e["remote_addr"] for e in run.events if e["event"] in START
             and e["remote_ip"] == O4}
    assert {t["target"] for t in name["targets"]} == at_o4, name
    S.check_target_order(name["targets"], "top_dns_name.targets")


def test_summary_without_a_flow_log_or_capture(childflow):
    res = childflow.run("--summary", "--summary-format", "json", "--", "true")
    assert res.rc == 0, str(res)
    s = summary_of(res)
    S.validate_summary(s)
    assert s["command"] == "true", s
    assert s["capture"] == {"status": "disabled", "requested": None, "effective": None,
                            "output": None, "child_output": None, "egress_output": None}, s
    assert s["flow_log"]["status"] == "disabled" and s["flow_log"]["path"] is None, s
    assert s["flow_log"]["event_counts"]["total"] == 0, s


def test_summary_of_a_single_view_capture_names_its_file(childflow, userdir):
    cap = os.path.join(userdir, "one.pcapng")
    res = childflow.run("-c", cap, "-C", "egress", "--summary", "--summary-format", "json",
                        "--", "true")
    assert res.rc == 0, str(res)
    s = summary_of(res)
    S.validate_summary(s)
    assert s["capture"] == {"status": "enabled", "requested": "egress", "effective": "egress",
                            "output": cap, "child_output": None, "egress_output": None}, s


# --- report ----------------------------------------------------------------------------


@pytest.mark.core
def test_report_of_a_run_has_every_field_of_the_originals_report(run):
    S.validate_report(run.report)
    r = run.report
    assert r["flow_log"] == run.log and r["schema_versions"] == [1], r
    by_type = collections.Counter(e["event"] for e in run.events)
    assert r["event_counts"] == {**{k: by_type.get(k, 0) for k in S.EVENT_COUNT_KEYS[1:]},
                                 "total": len(run.events), "unknown_event": 0,
                                 "datagram_flow_start": by_type["datagram_flow_start"],
                                 "datagram_flow_end": by_type["datagram_flow_end"]}, r
    protocols = collections.Counter(e["protocol"] for e in run.events if "protocol" in e)
    assert r["protocols"] == dict(protocols), r["protocols"]
    attempts = [e for e in run.events if e["event"] in START]
    assert r["proxy_usage"] == {"proxied_connect_attempts": 0,
                                "direct_connect_attempts": len(attempts)}, r["proxy_usage"]


def test_report_targets_count_tcp_and_datagram_flows(run):
    want = expected_targets(run.events)
    got = {t["target"]: [t["connect_attempts"], t["connect_ok"], t["connect_error"],
                         t["flow_end"]] for t in run.report["top_connection_targets"]}
    assert got == want, (got, want)
    ping = [t for t in run.report["top_connection_targets"] if t["target"] == O4]
    assert ping and ping[0]["connect_attempts"] == 1, run.report["top_connection_targets"]
    origin = [t for t in run.report["top_connection_targets"] if t["target"] == f"{O4}:80"]
    assert origin[0]["dns_names"] == [T.ORIGIN_NAME], origin


def test_report_and_summary_agree(run):
    r, fl = run.report, run.summary["flow_log"]
    assert r["event_counts"] == fl["event_counts"]
    assert r["sorted_policy_violations"] == fl["policy_violations"]
    assert r["sorted_connect_errors"] == fl["connect_errors"]
    assert r["dns_policy_rows"] == fl["dns_policy_rows"]


@pytest.mark.parametrize("name", ["basic", "messy"])
def test_report_of_the_golden_logs_has_every_field_of_the_originals(childflow, userdir, name):
    # A copy the test's user can read: the checkout may be root's alone (/root/...).
    path = os.path.join(userdir, f"{name}.jsonl")
    shutil.copyfile(os.path.join(REPO, "tests", "report", f"{name}.jsonl"), path)
    os.chmod(path, 0o644)
    res = childflow.run("--report", path, "--report-format", "json")
    assert res.rc == 0, str(res)
    S.validate_report(json.loads(res.out))


# --- doctor ----------------------------------------------------------------------------

ROOTLESS_CAPABILITIES = {"unprivileged_user_namespaces": "userns",
                         "uidmap_helpers": "uidmap_helpers", "tun_tap_device": "tun",
                         "af_packet_capture": "capture"}
ROOTFUL_CAPABILITIES = {"root_privileges": "root", "forwarding_sysctls": "forwarding",
                        "af_packet_capture": "af_packet"}
CAPABILITY_STATUS = {"ok": "available", "warn": "limited", "fail": "unavailable",
                     "skip": "unavailable"}
PREFLIGHT_STATUS = {"ok": "ok", "warn": "warning", "fail": "fatal"}


def check_doctor(report, capabilities, preflight_checks):
    S.validate_doctor(report)
    checks = {c["key"]: c for c in report["checks"]}
    assert {c["key"]: c["check"] for c in report["capabilities"]} == capabilities, report
    for cap in report["capabilities"]:
        c = checks[cap["check"]]
        assert cap["status"] == CAPABILITY_STATUS[c["status"]], (cap, c)
        assert cap["detail"] == c["detail"], (cap, c)
    ran = [k for k in preflight_checks if checks[k]["status"] != "skip"]
    assert [p["check"] for p in report["preflight"]] == ran, report["preflight"]
    for p in report["preflight"]:
        c = checks[p["check"]]
        assert p["status"] == PREFLIGHT_STATUS[c["status"]], (p, c)
        assert (p["label"], p["detail"], p["hint"]) == (c["label"], c["detail"], c["hint"])


@pytest.mark.core
def test_rootless_doctor_as_a_user_has_every_field_of_the_originals(childflow):
    res = childflow.run("--doctor", "--doctor-format", "json")
    report = json.loads(res.out)
    assert report["backend"] == "rootless-internal" and report["uid"] != 0, report
    check_doctor(report, ROOTLESS_CAPABILITIES, ["userns", "idmap", "tun"])


def test_rootless_doctor_with_a_closed_tun_device_says_so_in_the_originals_fields(childflow):
    res = childflow.run("--doctor", "--doctor-format", "json", tun_mode="0600")
    report = json.loads(res.out)
    check_doctor(report, ROOTLESS_CAPABILITIES, ["userns", "idmap", "tun"])
    caps = {c["key"]: c for c in report["capabilities"]}
    assert caps["tun_tap_device"]["status"] == "unavailable", caps
    (tun,) = [p for p in report["preflight"] if p["check"] == "tun"]
    assert tun["status"] == "fatal" and tun["hint"], tun
    assert report["status"] == "blocked", report


def test_rootful_doctor_as_root_has_every_field_of_the_originals(topo, childflow):
    res = topo.run_host_root(childflow.argv("--root", "--doctor", "--doctor-format", "json"))
    report = json.loads(res.out)
    assert report["backend"] == "rootful" and report["euid"] == 0, str(res)
    check_doctor(report, ROOTFUL_CAPABILITIES, ["root", "forwarding"])


def test_rootful_doctor_as_a_user_is_blocked_in_the_originals_fields(childflow):
    res = childflow.run("--root", "--doctor", "--doctor-format", "json")
    report = json.loads(res.out)
    check_doctor(report, ROOTFUL_CAPABILITIES, ["root", "forwarding"])
    caps = {c["key"]: c for c in report["capabilities"]}
    assert caps["root_privileges"]["status"] == "unavailable", caps
    assert caps["forwarding_sysctls"]["status"] == "unavailable", caps   # not tried
    assert [p["status"] for p in report["preflight"]] == ["fatal"], report["preflight"]
