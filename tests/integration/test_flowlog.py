"""The flow log (docs/flow-log-schema.md), the summary
(docs/summary-schema.md) and the report (docs/report-schema.md) of a real
run: real clients (curl by name, dig, ping, an echo exchange, a denied and a
refused connection) write a log whose every line is schema-valid JSON, whose
events correlate (DNS answer -> connection, one flow_id per flow) and whose
byte counts are exact; the summary and the report count the same events;
damaged logs give clean, line-numbered errors."""

import collections
import json
import os
import re
import stat
import time

import pytest

import conftest
import featurelib as F
import flowlog_v1 as V1
import topology as T

O4, O6, B4 = T.ORIGIN_V4, T.ORIGIN_V6, T.ORIGIN_B_V4
ECHO_BYTES = 100_000

ECHO_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 7), timeout=30)
s.sendall(b"e" * int(sys.argv[2]))
s.shutdown(socket.SHUT_WR)
got = 0
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += len(chunk)
print(got)
"""

DGRAM_PROTOCOLS = ("udp", "icmpv4", "icmpv6")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_event(ev, t0, t1):
    """The v1 contract (flowlog_v1.py: every documented field present, typed
    as documented, in order), and what this run's events must also hold."""
    assert V1.validate_event(ev) == [], ev
    assert t0 - 1000 <= ev["ts_ms"] <= t1 + 1000, ev
    name = ev["event"]
    if name in ("dns_query", "dns_answer") and ev["qname"] is not None:
        assert ev["qname"] == ev["qname"].lower() and not ev["qname"].endswith(".") \
            or ev["qname"] == ".", ev
    if name == "dns_answer" and ev["mode"] == "synthetic_empty":
        assert ev["answer_ips"] == [], ev
    if name == "policy_violation":
        assert ev["control"].startswith("--"), ev
        assert ev["reason"], ev


def connections(events):
    """Every flow start, TCP (connect_attempt) and datagram (datagram_flow_start)."""
    return [e for e in events if e["event"] in ("connect_attempt", "datagram_flow_start")]


def results(events):
    """Every flow's result: connect_result, and datagram_flow_start (which is one too)."""
    return [e for e in events if e["event"] in ("connect_result", "datagram_flow_start")]


def ends(events):
    return [e for e in events if e["event"] in ("flow_end", "datagram_flow_end")]


# --- one rich run shared by the module ------------------------------------------------


class Run:
    pass


@pytest.fixture(scope="module")
def rich(topo, childflow_bin):
    """One run that does a bit of everything, with --flow-log and a JSON
    summary; the tests below read what it left."""
    cf = conftest.Childflow(topo, childflow_bin)
    d = topo.make_user_dir("test_flowlog-rich")
    r = Run()
    r.dir = d
    r.log = os.path.join(d, "run.jsonl")
    r.commands = [
        f"curl -sS -4 --max-time 30 -D {d}/hdr4 -o {d}/body4 http://{T.ORIGIN_NAME}/64k.bin",
        f"curl -sS -6 --max-time 30 -D {d}/hdr6 -o {d}/body6 http://{T.ORIGIN_NAME}/",
        f"dig +short +time=5 +tries=1 @{F.RESOLVER_V4} {T.ORIGIN_NAME} AAAA",
        f"dig +short +tcp +time=5 +tries=1 @{F.RESOLVER_V6} {T.ORIGIN_NAME} A",
        f"dig +short +time=5 +tries=1 @{F.RESOLVER_V4} {T.V6ONLY_NAME} AAAA",
        F.ping_cmd(O4),
        F.ping_cmd(O6),
        F.probe_cmd("tcp", B4, 80),                    # denied by --deny-cidr
        F.probe_cmd("tcp", O4, T.CLOSED_PORT),         # refused by the origin
        f"/usr/bin/python3 -c {F.shquote(ECHO_CLIENT)} {O6} {ECHO_BYTES}",
        F.probe_cmd("udp", O4, 7),                     # the origin's port unreachable
    ]
    r.options = ["--flow-log", r.log, "--deny-cidr", f"{B4}/32",
                 "--deny-domain", T.V6ONLY_NAME, "--summary", "--summary-format", "json"]
    r.t0 = int(time.time() * 1000)
    r.parts, r.res = F.steps(cf, r.options, r.commands)
    r.t1 = int(time.time() * 1000)
    r.events = F.read_flowlog(r.log)
    with open(r.log, "rb") as f:
        r.raw = f.read()
    return r


def test_rich_run_clients_saw_what_the_flow_log_will_describe(rich):
    out = [p[0] for p in rich.parts]
    rcs = [p[1] for p in rich.parts]
    assert rcs == [0] * 11, str(rich.res)
    assert out[2:5] == [f"{O6}\n", f"{O4}\n", ""], str(rich.res)
    assert out[7:] == [F.DENIED_ERRNO_V4 + "\n", "error ECONNREFUSED\n", f"{ECHO_BYTES}\n",
                       "error ECONNREFUSED\n"], str(rich.res)


@pytest.mark.core
def test_every_line_is_schema_valid_json(rich):
    assert rich.raw.endswith(b"\n") and b"\n\n" not in rich.raw
    assert len(rich.events) == rich.raw.count(b"\n")
    for line, ev in zip(rich.raw.split(b"\n"), rich.events):
        compact = json.dumps(ev, separators=(",", ":"), ensure_ascii=False)
        assert line.decode() == compact, "not compact JSON"
    for ev in rich.events:
        check_event(ev, rich.t0, rich.t1)
    assert not F.of_type(rich.events, "runtime_failure"), rich.events


def test_every_event_type_of_a_run_appears(rich):
    kinds = {e["event"] for e in rich.events}
    assert kinds == {"dns_query", "dns_answer", "connect_attempt", "connect_result",
                     "policy_violation", "flow_end", "datagram_flow_start",
                     "datagram_flow_end"}, kinds


@pytest.mark.core
def test_udp_and_icmp_flows_have_events_of_their_own_and_tcp_keeps_v1s(rich):
    """Schema v1: connect_attempt, connect_result and flow_end are TCP with
    integer ports; the datagram flows of the run (ping v4 and v6, a UDP
    probe) are datagram_flow_start and datagram_flow_end."""
    tcp_events = [e for e in rich.events
                  if e["event"] in ("connect_attempt", "connect_result", "flow_end")]
    assert tcp_events and all(e["protocol"] == "tcp" and is_int(e["remote_port"])
                              for e in tcp_events), tcp_events
    starts = F.of_type(rich.events, "datagram_flow_start")
    assert {(e["protocol"], e["remote_ip"]) for e in starts} == {
        ("icmpv4", O4), ("icmpv6", O6), ("udp", O4)}, starts
    for s in starts:
        assert s["status"] == "ok" and s["error"] is None and s["via_proxy"] is False, s
        (end,) = [e for e in F.of_type(rich.events, "datagram_flow_end")
                  if e["flow_id"] == s["flow_id"]]
        for k in ("protocol", "remote_addr", "remote_ip", "remote_port", "via_proxy"):
            assert end[k] == s[k], (s, end)
        assert rich.events.index(s) < rich.events.index(end)
    (udp,) = [e for e in starts if e["protocol"] == "udp"]
    assert (udp["remote_addr"], udp["remote_port"]) == (f"{O4}:7", 7), udp


def test_flow_log_is_created_mode_0600(rich):
    assert stat.S_IMODE(os.stat(rich.log).st_mode) == 0o600


def test_dns_answer_holds_the_address_curl_then_connected_to(rich):
    ev = rich.events
    for family_ip, port in ((O4, 80), (O6, 80)):
        (i, attempt), = [(i, e) for i, e in enumerate(ev) if e["event"] == "connect_attempt"
                         and e["remote_ip"] == family_ip and e["remote_port"] == port]
        answers = [e for e in ev[:i] if e["event"] == "dns_answer"
                   and e["qname"] == T.ORIGIN_NAME and family_ip in e["answer_ips"]]
        assert answers, f"no earlier answer for {family_ip}: {ev}"
        assert answers[-1]["ts_ms"] <= attempt["ts_ms"]
        assert answers[-1]["mode"] == "relayed"


def test_dns_query_and_answer_share_a_flow_id_and_their_fields(rich):
    queries = {e["flow_id"]: e for e in F.of_type(rich.events, "dns_query")}
    answers = {e["flow_id"]: e for e in F.of_type(rich.events, "dns_answer")}
    assert len(queries) == len(F.of_type(rich.events, "dns_query")), "flow_id reused"
    assert set(queries) == set(answers)
    for fid, q in queries.items():
        a = answers[fid]
        for k in [name for name, _, _ in V1.V1["dns_query"]]:
            assert a[k] == q[k], (q, a)
    seen = {(q["protocol"], q["server_ip"], q["qname"], q["qtype"]) for q in queries.values()}
    assert ("udp", F.RESOLVER_V4, T.ORIGIN_NAME, "AAAA") in seen, seen
    assert ("tcp", F.RESOLVER_V6, T.ORIGIN_NAME, "A") in seen, seen
    (denied,) = [a for a in answers.values() if a["qname"] == T.V6ONLY_NAME]
    assert denied["mode"] == "synthetic_empty" and denied["answer_ips"] == []
    (v,) = [v for v in F.violations(rich.events) if v["protocol"] == "dns"]
    assert v["flow_id"] == denied["flow_id"], v
    assert (v["reason_code"], v["matched_domain"]) == ("deny_domain", T.V6ONLY_NAME), v


@pytest.mark.core
def test_flow_id_ties_attempt_result_and_end_of_each_connection(rich):
    ev = rich.events
    attempts = F.of_type(ev, "connect_attempt")
    ids = [a["flow_id"] for a in attempts]
    assert len(ids) == len(set(ids)), "two connections share a flow_id"
    dns_ids = {e["flow_id"] for e in ev if e["event"].startswith("dns_")}
    assert not dns_ids.intersection(ids)
    for a in attempts:
        results = [e for e in ev if e["event"] == "connect_result" and e["flow_id"] == a["flow_id"]]
        assert len(results) == 1, (a, results)
        r = results[0]
        for k in ("protocol", "remote_addr", "remote_ip", "remote_port", "via_proxy"):
            assert r[k] == a[k], (a, r)
        assert ev.index(a) < ev.index(r)
        ends = [e for e in ev if e["event"] == "flow_end" and e["flow_id"] == a["flow_id"]]
        if r["status"] == "ok":
            assert len(ends) == 1, (a, ends)
            assert ends[0]["remote_addr"] == a["remote_addr"]
            assert ev.index(r) < ev.index(ends[0])
        else:
            assert ends == [], (a, ends)
    for e in F.of_type(ev, "flow_end"):
        assert e["flow_id"] in ids, e


def test_refused_connection_is_an_error_result(rich):
    (r,) = [e for e in F.of_type(rich.events, "connect_result")
            if e["remote_port"] == T.CLOSED_PORT]
    assert (r["status"], r["remote_addr"], r["via_proxy"]) == (
        "error", f"{O4}:{T.CLOSED_PORT}", False), r
    assert "refused" in r["error"].lower(), r


def test_denied_connection_is_a_violation_and_never_attempted(rich):
    (v,) = [v for v in F.violations(rich.events) if v["protocol"] == "tcp"]
    assert (v["remote"], v["remote_ip"], v["remote_port"]) == (f"{B4}:80", B4, 80), v
    assert (v["reason_code"], v["control"], v["matched_cidr"], v["matched_domain"]) == (
        "deny_cidr", "--deny-cidr", f"{B4}/32", None), v
    assert B4 in v["reason"], v
    assert not [a for a in F.of_type(rich.events, "connect_attempt") if a["remote_ip"] == B4]


@pytest.mark.core
def test_flow_end_counts_exact_payload_bytes(rich):
    ends = F.of_type(rich.events, "flow_end")
    (echo,) = [e for e in ends if e["remote_ip"] == O6 and e["remote_port"] == T.ECHO_PORT]
    assert (echo["protocol"], echo["bytes_sent"], echo["bytes_received"]) == (
        "tcp", ECHO_BYTES, ECHO_BYTES), echo
    with open(os.path.join(rich.dir, "hdr4"), "rb") as f:
        hdr = f.read()
    with open(os.path.join(rich.dir, "body4"), "rb") as f:
        body = f.read()
    assert len(body) == 65536
    (http,) = [e for e in ends if e["remote_ip"] == O4 and e["remote_port"] == 80]
    assert http["bytes_received"] == len(hdr) + len(body), http
    assert http["bytes_sent"] > 0


def test_ping_is_a_flow_without_ports_with_bytes_and_packets(rich):
    for ip, proto in ((O4, "icmpv4"), (O6, "icmpv6")):
        ends = [e for e in F.of_type(rich.events, "datagram_flow_end") if e["remote_ip"] == ip
                and e["protocol"] == proto]
        assert len(ends) == 1, rich.events
        e = ends[0]
        assert (e["remote_addr"], e["remote_port"]) == (ip, None), e
        assert e["bytes_sent"] > 0 and e["bytes_received"] > 0, e
        # F.ping_cmd sends one echo request and gets its reply
        assert (e["packets_sent"], e["packets_received"]) == (1, 1), e
        assert e["bytes_sent"] == e["bytes_received"], e


def test_udp_flow_end_counts_datagrams_and_payload_bytes(rich):
    (e,) = [e for e in F.of_type(rich.events, "datagram_flow_end") if e["protocol"] == "udp"]
    # the probe's one datagram (F.PROBE) met the origin's port unreachable: nothing came back
    assert (e["remote_addr"], e["packets_sent"], e["packets_received"], e["bytes_sent"],
            e["bytes_received"]) == (f"{O4}:7", 1, 0, len(b"childflow feature test datagram"),
                                     0), e


def test_pid_comm_and_exe_are_consistent_when_known(rich):
    for a in connections(rich.events):
        if a["protocol"] in ("icmpv4", "icmpv6"):
            assert a["pid"] is None, a
        if a["comm"] == "curl":
            assert a["exe"] is None or a["exe"].endswith("/curl"), a
    (udp,) = [e for e in F.of_type(rich.events, "datagram_flow_start") if e["protocol"] == "udp"]
    assert udp["comm"] in ("python3", None), udp


# --- summary ------------------------------------------------------------------------------


def ranked_ok(entries):
    keys = [(-e["count"], e["key"].encode()) for e in entries]
    return keys == sorted(keys)


@pytest.mark.core
def test_json_summary_is_the_last_stderr_line_and_counts_match_the_log(rich):
    lines = rich.res.err.strip().splitlines()
    summary = json.loads(lines[-1])
    ev = rich.events
    assert summary["schema_version"] == 2
    assert summary["backend"] == "rootless-internal"
    assert summary["exit_code"] == 0
    assert summary["flow_log"]["path"] == rich.log and summary["flow_log_error"] is None
    assert summary["dropped_events"] == 0
    assert summary["argv"][:2] == ["sh", "-c"]
    assert f"--deny-cidr {B4}/32" in summary["controls"], summary["controls"]
    assert summary["events"]["total"] == len(ev)
    counts = collections.Counter(e["event"] for e in ev)
    assert {x["key"]: x["count"] for x in summary["events"]["by_type"]} == dict(counts)
    assert ranked_ok(summary["events"]["by_type"])
    attempts = connections(ev)
    res = results(ev)
    assert summary["connections"] == {
        "attempts": len(attempts),
        "via_proxy": sum(a["via_proxy"] for a in attempts),
        "direct": sum(not a["via_proxy"] for a in attempts),
        "ok": sum(r["status"] == "ok" for r in res),
        "error": sum(r["status"] == "error" for r in res),
        "by_path": {p: sum(r.get("path") == p for r in res if r["protocol"] == "tcp")
                    for p in ("socket", "relay", "kernel")}}
    assert summary["violations"]["total"] == len(F.violations(ev))
    by_reason = collections.Counter(v["reason_code"] for v in F.violations(ev))
    assert {x["key"]: x["count"] for x in summary["violations"]["by_reason_code"]} == by_reason
    errors = [r for r in res if r["status"] == "error"]
    assert summary["connect_errors"]["total"] == len(errors)
    assert summary["runtime_failures"]["total"] == 0
    targets = collections.Counter(a["remote_addr"] for a in attempts)
    assert {x["key"]: x["count"] for x in summary["top_targets"]} == dict(targets)
    assert ranked_ok(summary["top_targets"])
    (o4,) = [x for x in summary["top_targets"] if x["key"] == f"{O4}:80"]
    assert T.ORIGIN_NAME in [n["key"] for n in o4["names"]], o4


def test_text_summary_goes_to_stderr_and_counts_match_the_log(childflow, userdir):
    log = os.path.join(userdir, "run.jsonl")
    res = childflow.run("--flow-log", log, "--summary", "--deny-cidr", f"{B4}/32", "--",
                        "sh", "-c", f"curl -sS --max-time 30 http://{T.ORIGIN_NAME}/; "
                        f"{F.probe_cmd('tcp', B4, 80)}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY + F.DENIED_ERRNO_V4 + "\n", str(res)
    ev = F.read_flowlog(log)
    text = res.err[res.err.index("childflow summary"):]
    assert re.search(rf"^\s+flow log\s+{re.escape(log)}$", text, re.M), text
    assert re.search(rf"^\s+events\s+{len(ev)}\s", text, re.M), text
    assert re.search(r"^\s+backend\s+rootless-internal$", text, re.M), text
    assert re.search(r"^\s+exit code\s+0$", text, re.M), text
    assert re.search(rf"^\s+policy violations\s+{len(F.violations(ev))}$", text, re.M), text
    n_attempts = len(connections(ev))
    assert re.search(rf"^\s+connections\s+{n_attempts} attempts", text, re.M), text


# --- the file ----------------------------------------------------------------------------------


def test_existing_flow_log_is_truncated_and_keeps_its_mode(topo, childflow, userdir):
    log = F.write_user_file(topo, os.path.join(userdir, "old.jsonl"), "stale\n" * 1000, 0o640)
    res = childflow.run("--flow-log", log, "--", "curl", "-sS", "--max-time", "30",
                        f"http://{O4}/")
    assert res.rc == 0, str(res)
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o640
    ev = F.read_flowlog(log)
    assert [e["event"] for e in ev] == ["connect_attempt", "connect_result", "flow_end"], ev


def test_flow_log_follows_a_symlink_so_dev_stderr_works(topo, childflow, userdir):
    err = os.path.join(userdir, "stderr.txt")
    script = (f'"$1" --flow-log /dev/stderr -- curl -sS -o /dev/null http://{O4}/ 2>"$2"; '
              'echo "rc=$?"')
    res = topo.run_user(["sh", "-c", script, "sh", childflow.binary, err], env=childflow.env())
    assert res.out == "rc=0\n", str(res)
    ev = F.read_flowlog(err)
    assert [e["event"] for e in ev] == ["connect_attempt", "connect_result", "flow_end"], ev
    target = os.path.join(userdir, "target.jsonl")
    link = os.path.join(userdir, "link.jsonl")
    os.symlink(target, link)
    os.lchown(link, topo.state["uid"], topo.state["gid"])
    res = childflow.run("--flow-log", link, "--", "curl", "-sS", "-o", "/dev/null",
                        f"http://{O4}/")
    assert res.rc == 0, str(res)
    assert os.path.islink(link) and len(F.read_flowlog(target)) == 3


def test_json_summary_of_a_run_killed_by_a_signal_with_a_capture(childflow, userdir):
    out = os.path.join(userdir, "run.pcapng")
    res = childflow.run("-c", out, "--summary", "--summary-format", "json", "--offline", "--",
                        "sh", "-c", "kill -TERM $$")
    assert res.rc == 128 + 15, str(res)
    summary = json.loads(res.err.strip().splitlines()[-1])
    assert summary["exit_code"] == 143, summary
    assert summary["captures"] == [out], summary
    assert summary["controls"] == ["--offline"], summary
    assert summary["flow_log"]["path"] is None and summary["events"]["total"] == 0, summary


# --- --report on the produced log ------------------------------------------------------------


def report(childflow, path, fmt=None):
    args = ["--report", path] + (["--report-format", fmt] if fmt else [])
    return childflow.run(*args)


def test_text_report_of_the_log(childflow, rich):
    res = report(childflow, rich.log)
    assert res.rc == 0 and res.err == "", str(res)
    n = len(rich.events)
    lines = res.out.splitlines()
    assert lines[0] == f"childflow report: {rich.log}", str(res)
    assert re.fullmatch(rf"\s+lines\s+{n} \({n} events, 0 unknown events, 0 malformed, "
                        r"0 blank\)", lines[1]), str(res)
    assert f"Events: {n}" in lines, str(res)
    assert f"Policy violations: {len(F.violations(rich.events))}" in lines, str(res)
    queries = len(F.of_type(rich.events, "dns_query"))
    assert any(ln.startswith(f"DNS: {queries} queries") for ln in lines), str(res)


@pytest.mark.core
def test_markdown_report_starts_with_highlights(childflow, rich):
    res = report(childflow, rich.log, "markdown")
    assert res.rc == 0 and res.err == "", str(res)
    lines = res.out.splitlines()
    assert lines[0] == "# childflow report", str(res)
    sections = [ln for ln in lines if ln.startswith("## ")]
    assert sections[0] == "## Highlights", sections
    first = lines.index("## Highlights")
    bullets = []
    for ln in lines[first + 1:]:
        if ln.startswith("## "):
            break
        if ln.startswith("- "):
            bullets.append(ln)
    assert bullets[0].startswith(f"- {len(rich.events)} events"), bullets
    assert any("policy violation" in b for b in bullets), bullets


@pytest.mark.core
def test_json_report_counts_match_the_log_and_the_summary(childflow, rich):
    res = report(childflow, rich.log, "json")
    assert res.rc == 0 and res.err == "", str(res)
    rep = json.loads(res.out)
    ev = rich.events
    n = len(ev)
    assert rep["schema_version"] == 2 and rep["source"] == rich.log
    assert rep["lines"] == {"total": n, "events": n, "unknown_events": 0, "malformed": 0,
                            "blank": 0}
    assert rep["time"]["first_ts_ms"] == min(e["ts_ms"] for e in ev)
    assert rep["time"]["last_ts_ms"] == max(e["ts_ms"] for e in ev)
    counts = collections.Counter(e["event"] for e in ev)
    assert {x["key"]: x["count"] for x in rep["events"]["by_type"]} == dict(counts)
    done = ends(ev)
    assert F.of_type(ev, "datagram_flow_end"), ev
    assert rep["traffic"] == {"flows_ended": len(done),
                              "bytes_sent": sum(e["bytes_sent"] for e in done),
                              "bytes_received": sum(e["bytes_received"] for e in done)}
    assert rep["dns"]["queries"] == counts["dns_query"]
    assert rep["dns"]["answers"] == counts["dns_answer"]
    assert rep["dns"]["synthetic_empty"] == sum(
        a["mode"] == "synthetic_empty" for a in F.of_type(ev, "dns_answer"))
    protocols = collections.Counter(e["protocol"] for e in ev if "protocol" in e)
    assert {x["key"]: x["count"] for x in rep["sorted_protocols"]} == dict(protocols)
    summary = json.loads(rich.res.err.strip().splitlines()[-1])
    assert rep["connections"] == summary["connections"]
    assert rep["violations"]["total"] == summary["violations"]["total"]
    assert rep["violations"]["by_reason_code"] == summary["violations"]["by_reason_code"]
    assert rep["connect_error_details"]["total"] == summary["connect_errors"]["total"]
    assert [t["key"] for t in rep["top_targets"]] == [t["key"] for t in summary["top_targets"]]
    for lst in (rep["events"]["by_type"], rep["sorted_protocols"], rep["top_targets"],
                rep["dns"]["top_names"], rep["correlations"]):
        assert ranked_ok(lst), lst
    corr = {c["key"]: [t["key"] for t in c["targets"]] for c in rep["correlations"]}
    assert f"{O4}:80" in corr.get(T.ORIGIN_NAME, []), corr


# --- damaged logs ----------------------------------------------------------------------------


def test_report_of_a_log_cut_short_reports_the_cut_line_and_goes_on(topo, childflow, rich,
                                                                    userdir):
    cut = rich.raw[:-25]             # the last line loses its end, as after a crash
    path = os.path.join(userdir, "cut.jsonl")
    with open(path, "wb") as f:
        f.write(cut)
    n = len(rich.events)
    res = report(childflow, path, "json")
    assert res.rc == 0, str(res)
    assert F.stderr_lines(res) == [f"{path}: line {n}: not JSON"], str(res)
    rep = json.loads(res.out)
    assert rep["lines"] == {"total": n, "events": n - 1, "unknown_events": 0, "malformed": 1,
                            "blank": 0}, rep["lines"]
    res = report(childflow, path, "markdown")
    assert res.rc == 0 and "**1 malformed line" in res.out, str(res)


@pytest.mark.core
def test_report_of_garbage_names_every_bad_line_and_does_not_crash(childflow, userdir):
    good = ('{"schema_version":1,"ts_ms":1714564800000,"event":"dns_query","flow_id":1,'
            '"protocol":"udp","server":"198.18.0.1:53","server_ip":"198.18.0.1",'
            '"server_port":53,"qname":"origin.test","qtype":"A"}')
    lines = [
        b"garbage",
        b"[1,2,3]",
        b'{"no":"event"}',
        b'{"event":5}',
        b"",
        b'{"schema_version":2,"event":"dns_query"}',
        b"\x00\xff\x1b[31m\x7f",
        good.encode(),
        b'{"schema_version":1,"ts_ms":1714564800001,"event":"from_the_future","flow_id":9}',
        b"{" + b'"x":"' + b"a" * (1048576 + 10) + b'"}',
        good.encode() + b"\r",
        b'{"event":"dns_answer","flow_id":1,"bytes":"many","answer_ips":7}',
    ]
    path = os.path.join(userdir, "garbage.jsonl")
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n" + b'{"event":"connect_attempt","remote_')
    res = report(childflow, path, "json")
    assert res.rc == 0, str(res)
    assert F.stderr_lines(res) == [
        f"{path}: line 1: not JSON",
        f"{path}: line 2: not a JSON object",
        f"{path}: line 3: no 'event' field",
        f"{path}: line 4: 'event' is not a string",
        f"{path}: line 6: unsupported 'schema_version' (expected 1)",
        f"{path}: line 7: not JSON",
        f"{path}: line 10: longer than 1048576 bytes",
        f"{path}: line 13: not JSON"], str(res)
    rep = json.loads(res.out)
    assert rep["lines"] == {"total": 13, "events": 3, "unknown_events": 1, "malformed": 8,
                            "blank": 1}, rep["lines"]
    assert rep["dns"]["queries"] == 2
    for fmt in ("text", "markdown"):
        res = report(childflow, path, fmt)
        assert res.rc == 0, str(res)
        assert "\x1b" not in res.out and "\x00" not in res.out, str(res)


def test_report_stops_listing_after_100_malformed_lines(childflow, userdir):
    path = os.path.join(userdir, "many.jsonl")
    with open(path, "w") as f:
        f.write("nope\n" * 150)
    res = report(childflow, path, "json")
    assert res.rc == 0, str(res)
    lines = F.stderr_lines(res)
    assert lines[:100] == [f"{path}: line {i}: not JSON" for i in range(1, 101)], str(res)
    assert lines[100:] == [f"{path}: 50 more malformed lines not shown"], str(res)
    assert json.loads(res.out)["lines"]["malformed"] == 150


@pytest.mark.core
def test_report_of_a_missing_file_exits_125(childflow, userdir):
    path = os.path.join(userdir, "missing.jsonl")
    res = report(childflow, path)
    assert res.rc == 125, str(res)
    assert res.out == "", str(res)
    (msg,) = F.stderr_lines(res)
    assert path in msg and "No such file" in msg, str(res)


def test_report_of_a_directory_exits_125(childflow, userdir):
    res = report(childflow, userdir)
    assert res.rc == 125 and res.out == "", str(res)
    assert userdir in res.err, str(res)


def test_report_of_an_empty_log_is_a_report_of_nothing(childflow, userdir):
    path = os.path.join(userdir, "empty.jsonl")
    open(path, "w").close()
    res = report(childflow, path, "json")
    assert res.rc == 0 and res.err == "", str(res)
    rep = json.loads(res.out)
    assert rep["lines"]["total"] == 0 and rep["events"]["total"] == 0
    assert rep["time"]["first_ts_ms"] is None



# --- a query no resolver answers ---------------------------------------------------------


def test_query_no_resolver_answers_is_accounted_for_in_the_log(childflow, userdir):
    # --dns at the blackholed address: the forwarder's query is dropped in
    # the world, so after its timeout childflow answers SERVFAIL itself.
    log = os.path.join(userdir, "run.jsonl")
    res = childflow.run("--flow-log", log, "--dns", T.BLACKHOLE_V4, "--",
                        "dig", "+time=15", "+tries=1", f"@{F.RESOLVER_V4}", T.ORIGIN_NAME, "A",
                        timeout=90)
    assert res.rc == 0, str(res)
    assert F.dig_status(res.out) == ("SERVFAIL", 0), str(res)
    ev = F.read_flowlog(log)
    for e in ev:
        check_event(e, 0, 2 ** 62)
    (q,) = F.of_type(ev, "dns_query")
    answered = [a for a in F.of_type(ev, "dns_answer") if a["flow_id"] == q["flow_id"]]
    failures = [f for f in F.of_type(ev, "runtime_failure")
                if f["reason_code"] == "dns_upstream_timeout"]
    assert answered or failures, ev


def test_each_connection_is_attributed_to_the_program_that_opened_it(childflow, userdir):
    """Two connections from curl, then one from python3: the lookup that
    starts with the previous connection's process must not stick to it."""
    # two hosts, so curl opens two connections
    parts, res, events = F.steps_logged(childflow, userdir, [], [
        f"curl -sS -o /dev/null http://{T.ORIGIN_V4}/ -o /dev/null http://[{T.ORIGIN_V6}]/",
        F.probe_cmd("tcp", T.ORIGIN_V4, 80),
    ])
    got = [(a["comm"], a["exe"]) for a in F.of_type(events, "connect_attempt")]
    assert [c for c, _ in got] == ["curl", "curl", "python3"], got
    assert got[0][1].endswith("/curl") and "python3" in got[2][1], got
