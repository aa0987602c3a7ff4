"""Outbound policy (docs/policy.md) through the real binary: every control
blocks what it should and only that, for TCP, UDP, DNS and ICMP, v4 and v6,
and the precedence rows decide as documented.

How a denial looks from inside the tree (docs/architecture.md): a TCP
connect fails at once with an ICMP "administratively prohibited" error
(EHOSTUNREACH for IPv4; EACCES for IPv6, which is how Linux reports ICMPv6
"administratively prohibited"), a UDP socket gets that error, ping prints
"Packet filtered" (v4) or "Administratively prohibited" (v6), and a denied
DNS query gets an empty NOERROR answer that never reached the resolver.
Every check has a control in the same run: the neighbouring destination
still works (for UDP: the world's real "port unreachable", ECONNREFUSED,
proves the datagram left).

Private and metadata destinations (10.1.2.3, 192.168.1.1, 169.254.169.254,
fd00:ec2::254) are only ever used where childflow must block them, so no
packet to them leaves the engine."""

import os
import re
import subprocess

import pytest

import featurelib as F
import support
import topology as T

O4, O6 = T.ORIGIN_V4, T.ORIGIN_V6
B4, B6 = T.ORIGIN_B_V4, T.ORIGIN_B_V6
ORIGIN = T.ORIGIN_NAME
V6ONLY = T.V6ONLY_NAME
DENIED4, DENIED6 = F.DENIED_ERRNO_V4, F.DENIED_ERRNO_V6


def digq(server, name, qtype, *flags):
    """A full dig command line (its header shows status and answer count)."""
    return " ".join(F.dig(*flags, f"@{server}", name, qtype))


def assert_never_queried(topo, log, mark, names):
    """Prove that none of names reached dnsmasq `log` since mark: a sentinel
    query sent afterwards from the host namespace is logged, so everything
    dnsmasq received before it is in the log too.  Returns the names asked."""
    sentinel = F.sentinel_name()
    server = T.DNS_A_V4 if log == "dns-a" else T.DNS_B_V4
    res = topo.run_host_root(F.dig(f"@{server}", sentinel, "A"))
    assert res.rc == 0, str(res)
    text = F.wait_sentinel(topo, log, mark, sentinel)
    asked = {name.lower().rstrip(".") for _, name in F.dnsmasq_queries(text)}
    leaked = sorted(asked.intersection(n.lower() for n in names))
    assert not leaked, f"{leaked} reached {log}:\n{text}"
    return asked


def url_host(addr):
    return f"[{addr}]" if ":" in addr else addr


def reasons(events):
    return F.violation_reasons(events)


# --- TCP, UDP and ICMP against --deny-cidr -----------------------------------------------


@pytest.mark.core
@pytest.mark.parametrize("denied, allowed, rule", [
    (O4, B4, f"{O4}/32"),
    (O6, B6, f"{O6}/128"),
], ids=["ipv4", "ipv6"])
def test_deny_cidr_fails_tcp_connect_at_once_and_leaves_neighbour_reachable(
        childflow, userdir, denied, allowed, rule):
    out, events = F.probes_logged(childflow, userdir, [("tcp", denied, 80), ("tcp", allowed, 80)],
                                  "--deny-cidr", rule)
    assert out == {("tcp", denied, 80): F.denied_errno(denied),
                   ("tcp", allowed, 80): "connected"}, out
    (v,) = F.violations(events)
    assert (v["protocol"], v["remote_ip"], v["remote_port"]) == ("tcp", denied, 80), v
    assert (v["action"], v["reason_code"], v["control"], v["matched_cidr"]) == (
        "deny", "deny_cidr", "--deny-cidr", rule), v
    # the denied flow never got an upstream connection attempt
    assert denied not in {e["remote_ip"] for e in F.of_type(events, "connect_attempt")}


# Run as root in the sandbox's network namespace: send raw SYNs from one port
# with the given initial sequence numbers (a repeat is what the tree's kernel
# sends when the answer to its first SYN came too early or was lost), then
# count the answers the engine wrote to tun0 (ICMP errors or RSTs to that port).
_SYNS = r"""
import socket, struct, sys, time
dst, dport, isns = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")]
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
probe = socket.socket(fam, socket.SOCK_DGRAM)
probe.connect((dst, dport))
src, sport = probe.getsockname()[0], 40555
raw = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
if fam == socket.AF_INET6:
    raw.setsockopt(socket.IPPROTO_IPV6, 7, 16)  # IPV6_CHECKSUM: the kernel sums at offset 16
def syn(isn):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, isn, 0, 5 << 4, 0x02, 65535, 0, 0)
    if fam == socket.AF_INET6:
        return hdr
    data = socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) + struct.pack("!BBH", 0, 6, 20) + hdr
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return hdr[:16] + struct.pack("!H", ~s & 0xffff) + hdr[18:]
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))
sniff.bind(("tun0", 0))
sniff.settimeout(0.2)
for isn in isns:
    raw.sendto(syn(isn), (dst, 0))
    time.sleep(0.5)  # the refused case: the engine's own connect must end first
answers = 0
end = time.time() + 1.0
while time.time() < end:
    try:
        pkt = sniff.recv(65535)
    except socket.timeout:
        continue
    v4 = pkt[0] >> 4 == 4
    l4 = pkt[(pkt[0] & 15) * 4:] if v4 else pkt[40:]
    proto = pkt[9] if v4 else pkt[6]
    if proto in (1, 58):
        answers += 1
    elif proto == 6 and struct.unpack("!H", l4[2:4])[0] == sport and l4[13] & 0x04:
        answers += 1
print(answers)
"""


def _raw_syns(childflow, topo, userdir, dst, port, isns, *options):
    """Send _SYNS from the tree's namespace; returns (answers, flow-log events)."""
    log = f"{userdir}/syns-{support.new_token()}.jsonl"
    ready = f"{userdir}/ready-{support.new_token()}"
    p = childflow.spawn("--flow-log", log, *options, "--", "sh", "-c",
                        f"touch {ready}; exec sleep 30")
    try:
        assert support.wait_for(lambda: os.path.exists(ready)), "the tree did not start"
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            helper = f.read().split()[0]
        res = subprocess.run(["nsenter", "-t", helper, "-n", "/usr/bin/python3", "-c", _SYNS,
                              dst, str(port), ",".join(map(str, isns))],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
    finally:
        p.terminate()
        childflow.finish(p)
    return int(res.stdout), F.read_flowlog(log)


@pytest.mark.core
@pytest.mark.parametrize("dst", [O4, O6], ids=["ipv4", "ipv6"])
def test_a_retransmitted_denied_syn_is_answered_again_but_recorded_once(
        childflow, topo, userdir, dst):
    # The tree's kernel repeats a SYN whose ICMP error came while connect()
    # still held the socket (then only a soft error): the same attempt, so
    # the same answer and one policy_violation, not two. A new ISN from the
    # same port is a new attempt, recorded again.
    answers, events = _raw_syns(childflow, topo, userdir, dst, 80, [1000, 1000, 5000],
                                "--deny-cidr", dst)
    assert answers == 3, answers
    assert [(v["remote_ip"], v["remote_port"]) for v in F.violations(events)] == [(dst, 80)] * 2


@pytest.mark.core
def test_a_retransmitted_refused_syn_is_answered_again_without_a_second_attempt(
        childflow, topo, userdir):
    answers, events = _raw_syns(childflow, topo, userdir, O4, T.CLOSED_PORT, [7, 7, 9])
    assert answers == 3, answers
    attempts = [e for e in F.of_type(events, "connect_attempt") if e["remote_ip"] == O4]
    results = [e["status"] for e in F.of_type(events, "connect_result") if e["remote_ip"] == O4]
    assert len(attempts) == 2 and len(results) == 2, events


@pytest.mark.parametrize("denied, allowed", [(O4, B4), (O6, B6)], ids=["ipv4", "ipv6"])
def test_deny_cidr_request_never_reaches_the_origin(topo, childflow, denied, allowed):
    token = support.new_token()
    mark = topo.log_mark("nginx")
    parts, res = F.steps(childflow, ["--deny-cidr", denied], [
        f"curl -sS --max-time 30 http://{url_host(denied)}/?cft={token}",
        f"curl -sS --max-time 30 http://{url_host(allowed)}/?cft={token}-b"])
    assert parts == [("", 7), (T.ORIGIN_B_BODY, 0)], str(res)
    # nginx logs requests in order: origin-b's is there, the denied one never came
    assert topo.wait_log("nginx", mark, rf"cft={token}-b ") is not None
    assert f"cft={token} " not in topo.log_since("nginx", mark)


@pytest.mark.core
@pytest.mark.parametrize("denied, allowed", [(O4, B4), (O6, B6)], ids=["ipv4", "ipv6"])
def test_deny_cidr_udp_gets_icmp_prohibited_while_neighbour_gets_real_port_unreachable(
        childflow, userdir, denied, allowed):
    # Nothing listens on UDP port 7 in the world: a datagram that really
    # leaves comes back as the peer's "port unreachable" (ECONNREFUSED).
    out, events = F.probes_logged(childflow, userdir, [("udp", denied, 7), ("udp", allowed, 7)],
                                  "--deny-cidr", denied)
    assert out == {("udp", denied, 7): F.denied_errno(denied),
                   ("udp", allowed, 7): "error ECONNREFUSED"}, out
    assert reasons(events) == [("udp", denied, "deny_cidr", "--deny-cidr")]


@pytest.mark.parametrize("denied, allowed, text", [
    (O4, B4, "Packet filtered"),
    (O6, B6, "Administratively prohibited"),
], ids=["ipv4", "ipv6"])
def test_deny_cidr_ping_is_filtered_while_neighbour_answers(childflow, userdir, denied,
                                                             allowed, text):
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-cidr", denied],
                                        [F.ping_cmd(denied), F.ping_cmd(allowed)])
    (out_denied, rc_denied), (out_allowed, rc_allowed) = parts
    assert rc_denied == 1 and f"From {denied}" in out_denied and text in out_denied, str(res)
    assert rc_allowed == 0 and "1 received" in out_allowed, str(res)
    proto = "icmpv6" if ":" in denied else "icmpv4"
    (v,) = F.violations(events)
    assert (v["protocol"], v["remote"], v["remote_ip"], v["remote_port"]) == (
        proto, denied, denied, None), v
    assert v["reason_code"] == "deny_cidr", v


# --- CIDR precedence -------------------------------------------------------------------------


@pytest.mark.parametrize("deny, allow, inside, outside", [
    ("198.51.100.0/24", f"{B4}/32", B4, O4),
    ("2001:db8:2::/64", f"{B6}/128", B6, O6),
], ids=["ipv4", "ipv6"])
def test_longer_allow_cidr_punches_through_shorter_deny_cidr(childflow, userdir, deny, allow,
                                                              inside, outside):
    out, events = F.probes_logged(childflow, userdir, [("tcp", inside, 80), ("tcp", outside, 80)],
                                  "--deny-cidr", deny, "--allow-cidr", allow)
    assert out == {("tcp", inside, 80): "connected",
                   ("tcp", outside, 80): F.denied_errno(outside)}, out
    (v,) = F.violations(events)
    assert (v["remote_ip"], v["reason_code"], v["matched_cidr"]) == (outside, "deny_cidr", deny)


@pytest.mark.parametrize("allow, deny, ok, denied, other", [
    ("198.51.100.0/24", f"{O4}/32", B4, O4, T.WORLD_V4),
    ("2001:db8:2::/64", f"{O6}/128", B6, O6, T.WORLD_V6),
], ids=["ipv4", "ipv6"])
def test_longer_deny_cidr_wins_inside_allowed_range_under_default_deny(
        childflow, userdir, allow, deny, ok, denied, other):
    checks = [("tcp", ok, 80), ("tcp", denied, 80), ("tcp", other, 80)]
    out, events = F.probes_logged(childflow, userdir, checks, "--default-policy", "deny",
                                  "--allow-cidr", allow, "--deny-cidr", deny)
    assert out == {("tcp", ok, 80): "connected", ("tcp", denied, 80): F.denied_errno(denied),
                   ("tcp", other, 80): F.denied_errno(other)}, out
    got = {v["remote_ip"]: (v["reason_code"], v["control"], v["matched_cidr"])
           for v in F.violations(events)}
    assert got == {denied: ("deny_cidr", "--deny-cidr", deny),
                   other: ("default_deny", "--default-policy", None)}, got


def test_same_prefix_in_allow_and_deny_cidr_is_denied(childflow, userdir):
    out, events = F.probes_logged(childflow, userdir, [("tcp", O4, 80), ("tcp", B4, 80)],
                                  "--allow-cidr", f"{O4}/32", "--deny-cidr", f"{O4}/32")
    assert out == {("tcp", O4, 80): DENIED4, ("tcp", B4, 80): "connected"}, out
    assert reasons(events) == [("tcp", O4, "deny_cidr", "--deny-cidr")]


def test_v4_mapped_ipv6_literal_of_a_denied_v4_address_is_denied(childflow, userdir):
    mapped, mapped_b = f"::ffff:{O4}", f"::ffff:{B4}"
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-cidr", f"{O4}/32"], [
        F.probe_cmd("tcp", mapped, 80),
        F.probe_cmd("tcp", mapped_b, 80),
        f"curl -sS --max-time 30 http://[{mapped}]/",
        f"curl -sS --max-time 30 http://[{mapped_b}]/"])
    assert parts == [(DENIED4 + "\n", 0), ("connected\n", 0), ("", 7),
                     (T.ORIGIN_B_BODY, 0)], str(res)
    vs = F.violations(events)
    assert len(vs) == 2, vs
    for v in vs:
        assert (v["reason_code"], v["matched_cidr"]) == ("deny_cidr", f"{O4}/32"), v
        assert v["remote_ip"] in (O4, mapped), v


# --- --offline ---------------------------------------------------------------------------------


@pytest.mark.core
def test_offline_lets_nothing_leave_and_answers_dns_empty(topo, childflow, userdir):
    mark_a, mark_nginx = topo.log_mark("dns-a"), topo.log_mark("nginx")
    token = support.new_token()
    parts, res, events = F.steps_logged(childflow, userdir, ["--offline"], [
        F.probe_cmd("tcp", O4, 80),
        F.probe_cmd("tcp", O6, 80),
        F.probe_cmd("udp", O4, 7),
        F.probe_cmd("udp", O6, 7),
        digq(F.RESOLVER_V4, ORIGIN, "A"),
        digq(F.RESOLVER_V6, ORIGIN, "AAAA"),
        f"getent hosts {ORIGIN}",
        f"curl -sS --max-time 30 http://{ORIGIN}/?cft={token}",
        F.ping_cmd(B4),
        F.ping_cmd(B6)])
    assert [p[0].strip() for p in parts[:4]] == [DENIED4, DENIED6, DENIED4, DENIED6], str(res)
    assert [F.dig_status(p[0]) for p in parts[4:6]] == [("NOERROR", 0)] * 2, str(res)
    assert [rc for _, rc in parts[6:]] == [2, 6, 1, 1], str(res)
    assert "Packet filtered" in parts[8][0], str(res)
    assert "Administratively prohibited" in parts[9][0], str(res)
    assert events and all(e["event"] in ("policy_violation", "dns_query", "dns_answer")
                          for e in events), events
    assert {v["reason_code"] for v in F.violations(events)} == {"offline"}
    assert {v["control"] for v in F.violations(events)} == {"--offline"}
    assert {v["protocol"] for v in F.violations(events)} == {
        "tcp", "udp", "dns", "icmpv4", "icmpv6"}
    assert {a["mode"] for a in F.of_type(events, "dns_answer")} == {"synthetic_empty"}
    assert_never_queried(topo, "dns-a", mark_a, {ORIGIN})
    assert f"cft={token}" not in topo.log_since("nginx", mark_nginx)


@pytest.mark.parametrize("resolver", [F.RESOLVER_V4, F.RESOLVER_V6], ids=["ipv4", "ipv6"])
def test_offline_answers_dns_over_tcp_at_the_virtual_resolver_empty_too(childflow, resolver):
    parts, res = F.steps(childflow, ["--offline"], [digq(resolver, ORIGIN, "A", "+tcp")])
    assert F.dig_status(parts[0][0]) == ("NOERROR", 0), str(res)


def test_offline_beats_allow_rules(childflow, userdir):
    out, events = F.probes_logged(childflow, userdir, [("tcp", O4, 80)], "--offline",
                                  "--allow-cidr", f"{O4}/32", "--allow-domain", ORIGIN)
    assert out == {("tcp", O4, 80): DENIED4}, out
    assert reasons(events) == [("tcp", O4, "offline", "--offline")]


# --- --default-policy deny with allow rules ----------------------------------------------------


def test_default_deny_with_allow_cidr_reaches_only_those_ranges_and_resolves_nothing(
        topo, childflow, userdir):
    mark = topo.log_mark("dns-a")
    checks = [("tcp", B4, 80), ("tcp", B6, 80), ("tcp", O4, 80), ("tcp", O6, 80),
              ("udp", B4, 7), ("udp", O4, 7)]
    parts, res, events = F.steps_logged(
        childflow, userdir,
        ["--default-policy", "deny", "--allow-cidr", f"{B4}/32", "--allow-cidr", f"{B6}/128"],
        [F.probe_cmd(*c) for c in checks] + [digq(F.RESOLVER_V4, ORIGIN, "A")])
    assert [p[0].strip() for p in parts[:6]] == [
        "connected", "connected", DENIED4, DENIED6, "error ECONNREFUSED", DENIED4], str(res)
    # --allow-cidr does not make names resolvable under default deny
    assert F.dig_status(parts[6][0]) == ("NOERROR", 0), str(res)
    assert {v["reason_code"] for v in F.violations(events)} == {"default_deny"}
    assert {(v["protocol"], v["remote_ip"]) for v in F.violations(events)} == {
        ("tcp", O4), ("tcp", O6), ("udp", O4), ("dns", F.RESOLVER_V4)}
    assert_never_queried(topo, "dns-a", mark, {ORIGIN})


@pytest.mark.core
def test_default_deny_with_allow_domain_allows_the_name_and_subdomains_only(
        topo, childflow, userdir):
    mark = topo.log_mark("dns-a")
    sub = f"sub-{support.new_token()}.{ORIGIN}"
    parts, res, events = F.steps_logged(
        childflow, userdir, ["--default-policy", "deny", "--allow-domain", ORIGIN], [
            f"curl -sS -4 --max-time 30 http://{ORIGIN}/",
            f"curl -sS -6 --max-time 30 http://{ORIGIN}/",
            f"getent hosts {sub}",
            f"getent hosts {V6ONLY}",
            F.probe_cmd("tcp", B4, 80)])
    assert parts == [(T.ORIGIN_BODY, 0), (T.ORIGIN_BODY, 0), ("", 2), ("", 2),
                     (DENIED4 + "\n", 0)], str(res)
    # the subdomain was allowed: forwarded, and dnsmasq answered NXDOMAIN
    assert topo.wait_log("dns-a", mark, rf"query\[A+\] {re.escape(sub)} from ") is not None
    asked = assert_never_queried(topo, "dns-a", mark, {V6ONLY})
    assert ORIGIN in asked
    got = {(v["protocol"], v["reason_code"]) for v in F.violations(events)}
    assert got == {("dns", "default_deny"), ("tcp", "default_deny")}, F.violations(events)


def test_default_deny_with_allow_domain_exact_allows_only_that_name(topo, childflow, userdir):
    mark = topo.log_mark("dns-a")
    sub = f"sub-{support.new_token()}.{ORIGIN}"
    parts, res, events = F.steps_logged(
        childflow, userdir, ["--default-policy", "deny", "--allow-domain-exact", ORIGIN],
        [f"curl -sS --max-time 30 http://{ORIGIN}/", digq(F.RESOLVER_V4, sub, "A")])
    assert parts[0] == (T.ORIGIN_BODY, 0), str(res)
    assert F.dig_status(parts[1][0]) == ("NOERROR", 0), str(res)
    assert_never_queried(topo, "dns-a", mark, {sub})
    (v,) = F.violations(events)
    assert (v["protocol"], v["reason_code"]) == ("dns", "default_deny"), v
    assert sub in v["reason"], v


def test_literal_ip_of_a_name_the_policy_refused_is_denied_under_default_deny(childflow,
                                                                             userdir):
    # The tree looks origin.test up (refused: empty answer), then uses the
    # addresses it knows anyway: no allowed name covers them, so default deny
    # refuses them.  v6only.test (allowed) resolves to origin's v6 address,
    # and through that name the same address works.
    parts, res, events = F.steps_logged(
        childflow, userdir, ["--default-policy", "deny", "--allow-domain", V6ONLY], [
            f"getent hosts {ORIGIN}",
            F.probe_cmd("tcp", O4, 80),
            F.probe_cmd("tcp", O6, 80),
            f"curl -sS -6 --max-time 30 http://{V6ONLY}/",
            F.probe_cmd("tcp", O6, 80)])
    assert parts == [("", 2), (DENIED4 + "\n", 0), (DENIED6 + "\n", 0), (T.ORIGIN_BODY, 0),
                     ("connected\n", 0)], str(res)
    got = [(v["protocol"], v["remote_ip"], v["reason_code"]) for v in F.violations(events)]
    assert [g for g in got if g[0] == "tcp"] == [("tcp", O4, "default_deny"),
                                                 ("tcp", O6, "default_deny")], got
    assert {g[2] for g in got} == {"default_deny"}, got


# --- domain rules at the resolver --------------------------------------------------------------


@pytest.mark.core
@pytest.mark.parametrize("resolver, qtype", [(F.RESOLVER_V4, "A"), (F.RESOLVER_V6, "AAAA")],
                         ids=["ipv4-resolver", "ipv6-resolver"])
def test_deny_domain_gives_empty_noerror_for_name_and_subdomains_without_asking_resolver(
        topo, childflow, userdir, resolver, qtype):
    mark = topo.log_mark("dns-a")
    sub = f"sub-{support.new_token()}.{ORIGIN}"
    bad = f"bad{ORIGIN}"       # "origin.test" must not match "badorigin.test"
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-domain", ORIGIN],
                                        [digq(resolver, n, qtype) for n in (ORIGIN, sub, bad)])
    assert [F.dig_status(p[0]) for p in parts] == [
        ("NOERROR", 0), ("NOERROR", 0), ("NXDOMAIN", 0)], str(res)
    asked = assert_never_queried(topo, "dns-a", mark, {ORIGIN, sub})
    assert bad in asked, asked
    got = [(v["protocol"], v["reason_code"], v["control"], v["matched_domain"])
           for v in F.violations(events)]
    assert got == [("dns", "deny_domain", "--deny-domain", ORIGIN)] * 2, got
    answers = {a["qname"]: a["mode"] for a in F.of_type(events, "dns_answer")}
    assert answers == {ORIGIN: "synthetic_empty", sub: "synthetic_empty",
                       bad: "relayed"}, answers


def test_deny_domain_makes_getent_and_curl_fail_to_resolve(childflow):
    parts, res = F.steps(childflow, ["--deny-domain", ORIGIN], [
        f"getent hosts {ORIGIN}", f"curl -sS --max-time 30 http://{ORIGIN}/"])
    assert parts == [("", 2), ("", 6)], str(res)


def test_deny_domain_is_case_and_trailing_dot_insensitive(topo, childflow, userdir):
    mark = topo.log_mark("dns-a")
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-domain", "Origin.TEST."],
                                        [digq(F.RESOLVER_V4, "ORIGIN.test.", "A")])
    assert F.dig_status(parts[0][0]) == ("NOERROR", 0), str(res)
    assert_never_queried(topo, "dns-a", mark, {ORIGIN})
    (v,) = F.violations(events)
    assert (v["reason_code"], v["matched_domain"]) == ("deny_domain", ORIGIN), v
    assert [q["qname"] for q in F.of_type(events, "dns_query")] == [ORIGIN]   # normalised


def test_deny_domain_exact_denies_only_that_name(topo, childflow, userdir):
    mark = topo.log_mark("dns-a")
    sub = f"sub-{support.new_token()}.{ORIGIN}"
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-domain-exact", ORIGIN], [
        digq(F.RESOLVER_V4, ORIGIN, "A"),
        digq(F.RESOLVER_V4, sub, "A"),
        digq(F.RESOLVER_V6, V6ONLY, "AAAA", "+short")])
    assert F.dig_status(parts[0][0]) == ("NOERROR", 0), str(res)
    assert F.dig_status(parts[1][0]) == ("NXDOMAIN", 0), str(res)   # forwarded
    assert parts[2] == (O6 + "\n", 0), str(res)
    asked = assert_never_queried(topo, "dns-a", mark, {ORIGIN})
    assert sub in asked and V6ONLY in asked, asked
    (v,) = F.violations(events)
    assert (v["reason_code"], v["control"], v["matched_domain"]) == (
        "deny_domain_exact", "--deny-domain-exact", ORIGIN), v


def test_wildcard_deny_domain_matches_names_below_but_not_the_name_itself(topo, childflow,
                                                                           userdir):
    mark = topo.log_mark("dns-a")
    sub = f"sub-{support.new_token()}.{ORIGIN}"
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-domain", f"*.{ORIGIN}"], [
        digq(F.RESOLVER_V4, ORIGIN, "A", "+short"),
        digq(F.RESOLVER_V4, sub, "A")])
    assert parts[0] == (f"{O4}\n", 0), str(res)
    assert F.dig_status(parts[1][0]) == ("NOERROR", 0), str(res)
    assert_never_queried(topo, "dns-a", mark, {sub})
    (v,) = F.violations(events)
    assert (v["reason_code"], v["matched_domain"]) == ("deny_domain", f"*.{ORIGIN}"), v


@pytest.mark.parametrize("rule", ["a.*.test", "origin*.test", "*"])
def test_wildcard_other_than_leftmost_label_is_rejected(childflow, userdir, rule):
    marker = f"{userdir}/ran"
    res = childflow.run("--deny-domain", rule, "--", "touch", marker)
    assert res.rc == 125, str(res)
    assert "--deny-domain" in res.err and rule in res.err, str(res)


@pytest.mark.parametrize("rules, origin_ok, v6only_ok, reason", [
    (["--deny-domain", "test", "--allow-domain-exact", ORIGIN], True, False, "deny_domain"),
    (["--allow-domain", "test", "--deny-domain", ORIGIN], False, True, "deny_domain"),
    (["--allow-domain", ORIGIN, "--deny-domain", ORIGIN], False, True, "deny_domain"),
    (["--allow-domain-exact", ORIGIN, "--deny-domain-exact", ORIGIN], False, True,
     "deny_domain_exact"),
], ids=["exact-beats-suffix", "longer-suffix-wins", "suffix-tie-denies", "exact-tie-denies"])
def test_most_specific_domain_rule_decides(childflow, userdir, rules, origin_ok, v6only_ok,
                                           reason):
    parts, res, events = F.steps_logged(childflow, userdir, rules, [
        digq(F.RESOLVER_V4, ORIGIN, "A", "+short"),
        digq(F.RESOLVER_V4, V6ONLY, "AAAA", "+short")])
    assert parts == [(f"{O4}\n" if origin_ok else "", 0),
                     (f"{O6}\n" if v6only_ok else "", 0)], str(res)
    (v,) = F.violations(events)
    assert (v["protocol"], v["reason_code"]) == ("dns", reason), v
    assert v["reason"].startswith(V6ONLY if origin_ok else ORIGIN), v


# --- DNS bypass attempts --------------------------------------------------------------------


@pytest.mark.core
@pytest.mark.parametrize("server", [T.DNS_B_V4, T.DNS_B_V6], ids=["ipv4", "ipv6"])
def test_denied_name_asked_directly_of_another_resolver_udp_and_tcp_is_answered_empty(
        topo, childflow, userdir, server):
    mark = topo.log_mark("dns-b")
    sub = f"sub-{support.new_token()}.{ORIGIN}"
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-domain", ORIGIN], [
        digq(server, ORIGIN, "A", "+notcp"),
        digq(server, ORIGIN, "A", "+tcp"),
        digq(server, sub, "AAAA", "+tcp")])
    assert [F.dig_status(p[0]) for p in parts] == [("NOERROR", 0)] * 3, str(res)
    assert_never_queried(topo, "dns-b", mark, {ORIGIN, sub})
    got = [(q["protocol"], q["server_ip"]) for q in F.of_type(events, "dns_query")]
    assert got == [("udp", server), ("tcp", server), ("tcp", server)], got
    assert [v["reason_code"] for v in F.violations(events)] == ["deny_domain"] * 3


@pytest.mark.parametrize("server", [T.DNS_B_V4, T.DNS_B_V6], ids=["ipv4", "ipv6"])
def test_deny_cidr_of_a_dns_server_answers_udp_empty_and_fails_tcp_without_reaching_it(
        topo, childflow, userdir, server):
    mark = topo.log_mark("dns-b")
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-cidr", server], [
        digq(server, ORIGIN, "A", "+notcp"),
        digq(server, ORIGIN, "A", "+tcp")])
    assert F.dig_status(parts[0][0]) == ("NOERROR", 0), str(res)
    assert parts[1][1] != 0 and F.dig_status(parts[1][0]) == (None, None), str(res)
    assert_never_queried(topo, "dns-b", mark, {ORIGIN})
    got = [(v["protocol"], v["remote_ip"], v["remote_port"], v["reason_code"], v["matched_cidr"])
           for v in F.violations(events)]
    prefix = f"{server}/128" if ":" in server else f"{server}/32"
    assert got == [("dns", server, 53, "deny_cidr", prefix)] * 2, got


def test_allowed_name_asked_directly_of_another_resolver_gets_its_answer(childflow):
    # the control for the bypass test: the same direct queries do get through
    parts, res = F.steps(childflow, ["--deny-domain", V6ONLY], [
        digq(T.DNS_B_V4, ORIGIN, "A", "+short", "+notcp"),
        digq(T.DNS_B_V6, ORIGIN, "A", "+short", "+tcp")])
    assert parts == [(f"{B4}\n", 0), (f"{B4}\n", 0)], str(res)


# --- domain rules and CIDR rules at connections ------------------------------------------------


def test_deny_cidr_beats_allowed_domain_for_its_addresses_only(childflow, userdir):
    parts, res, events = F.steps_logged(
        childflow, userdir, ["--allow-domain", ORIGIN, "--deny-cidr", f"{O4}/32"],
        [f"curl -sS -4 --max-time 30 http://{ORIGIN}/",
         f"curl -sS -6 --max-time 30 http://{ORIGIN}/"])
    assert parts == [("", 7), (T.ORIGIN_BODY, 0)], str(res)
    (v,) = F.violations(events)
    assert (v["remote_ip"], v["reason_code"], v["matched_cidr"]) == (O4, "deny_cidr", f"{O4}/32")


def test_literal_ip_of_a_denied_domain_carries_no_name_and_is_not_denied_by_it(childflow,
                                                                              userdir):
    # docs/policy.md, "Limits that follow from enforcing names at the address
    # level": a domain rule reaches a connection only through names the tree
    # resolved through the forwarder; a denied name never resolves, so a
    # hard-coded address of it carries no name.  (--default-policy deny is the
    # fail-closed way, tested above.)
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-domain", ORIGIN], [
        f"getent hosts {ORIGIN}", f"curl -sS --max-time 30 http://{O4}/"])
    assert parts == [("", 2), (T.ORIGIN_BODY, 0)], str(res)
    assert {v["protocol"] for v in F.violations(events)} == {"dns"}


# --- --block-private and --block-metadata (blocked addresses only) ---------------------------


def test_block_private_blocks_private_ranges_and_not_public_ones(childflow, userdir):
    mapped = f"::ffff:{F.PRIVATE_V4}"
    checks = [("tcp", F.PRIVATE_V4, 80), ("tcp", F.PRIVATE_V4_B, 443),
              ("udp", F.PRIVATE_V4_B, 7), ("tcp", F.METADATA_V6, 80), ("tcp", mapped, 80),
              ("tcp", O4, 80), ("tcp", O6, 80), ("udp", O6, 7)]
    out, events = F.probes_logged(childflow, userdir, checks, "--block-private")
    assert out == {
        ("tcp", F.PRIVATE_V4, 80): DENIED4, ("tcp", F.PRIVATE_V4_B, 443): DENIED4,
        ("udp", F.PRIVATE_V4_B, 7): DENIED4, ("tcp", F.METADATA_V6, 80): DENIED6,
        ("tcp", mapped, 80): DENIED4, ("tcp", O4, 80): "connected",
        ("tcp", O6, 80): "connected", ("udp", O6, 7): "error ECONNREFUSED"}, out
    got = [(v["protocol"], v["remote_ip"], v["reason_code"], v["control"], v["matched_cidr"])
           for v in F.violations(events)]
    assert got[:4] == [
        ("tcp", F.PRIVATE_V4, "private", "--block-private", "10.0.0.0/8"),
        ("tcp", F.PRIVATE_V4_B, "private", "--block-private", "192.168.0.0/16"),
        ("udp", F.PRIVATE_V4_B, "private", "--block-private", "192.168.0.0/16"),
        ("tcp", F.METADATA_V6, "private", "--block-private", "fc00::/7")], got
    assert len(got) == 5 and got[4][1] in (F.PRIVATE_V4, mapped), got
    assert got[4][2:] == ("private", "--block-private", "10.0.0.0/8"), got


def test_block_private_cannot_be_punched_through_with_allow_cidr(childflow, userdir):
    out, events = F.probes_logged(childflow, userdir, [("tcp", F.PRIVATE_V4, 80)],
                                  "--block-private", "--allow-cidr", f"{F.PRIVATE_V4}/32")
    assert out == {("tcp", F.PRIVATE_V4, 80): DENIED4}, out
    assert reasons(events) == [("tcp", F.PRIVATE_V4, "private", "--block-private")]


def test_block_private_blocks_ping_and_dns_to_a_private_server(childflow, userdir):
    parts, res, events = F.steps_logged(childflow, userdir, ["--block-private"], [
        F.ping_cmd(F.PRIVATE_V4),
        digq(F.PRIVATE_V4_B, ORIGIN, "A", "+notcp"),
        digq(F.PRIVATE_V4_B, ORIGIN, "A", "+tcp")])
    assert parts[0][1] == 1 and "Packet filtered" in parts[0][0], str(res)
    assert F.dig_status(parts[1][0]) == ("NOERROR", 0), str(res)
    assert parts[2][1] != 0 and "host unreachable" in parts[2][0], str(res)
    got = [(v["protocol"], v["remote_ip"], v["reason_code"]) for v in F.violations(events)]
    assert got == [("icmpv4", F.PRIVATE_V4, "private"), ("dns", F.PRIVATE_V4_B, "private"),
                   ("dns", F.PRIVATE_V4_B, "private")], got


@pytest.mark.core
def test_block_metadata_blocks_metadata_endpoints_and_wins_over_block_private(childflow,
                                                                             userdir):
    parts, res, events = F.steps_logged(
        childflow, userdir, ["--block-metadata", "--block-private"],
        [F.probe_cmd("tcp", F.METADATA_V4, 80), F.probe_cmd("tcp", F.METADATA_V6, 80),
         F.probe_cmd("tcp", O4, 80), F.ping_cmd(F.METADATA_V4)])
    assert [p[0].strip() for p in parts[:3]] == [DENIED4, DENIED6, "connected"], str(res)
    assert parts[3][1] == 1 and "Packet filtered" in parts[3][0], str(res)
    got = [(v["protocol"], v["remote_ip"], v["reason_code"], v["control"], v["matched_cidr"])
           for v in F.violations(events)]
    assert got == [
        ("tcp", F.METADATA_V4, "metadata", "--block-metadata", "169.254.169.254/32"),
        ("tcp", F.METADATA_V6, "metadata", "--block-metadata", "fd00:ec2::254/128"),
        ("icmpv4", F.METADATA_V4, "metadata", "--block-metadata", "169.254.169.254/32")], got


def test_block_metadata_alone_leaves_public_destinations_alone(childflow, userdir):
    out, events = F.probes_logged(childflow, userdir, [
        ("tcp", F.METADATA_V4, 80), ("tcp", O4, 80), ("udp", O6, 7)], "--block-metadata")
    assert out == {("tcp", F.METADATA_V4, 80): DENIED4, ("tcp", O4, 80): "connected",
                   ("udp", O6, 7): "error ECONNREFUSED"}, out
    assert reasons(events) == [("tcp", F.METADATA_V4, "metadata", "--block-metadata")]


# --- --proxy-only is checked last ---------------------------------------------------------------


def test_deny_rule_is_reported_before_proxy_only(childflow, userdir):
    # --proxy-only needs a proxy; UDP never goes through an http:// one, so
    # it meets --proxy-only unless a deny rule refused it first.
    out, events = F.probes_logged(childflow, userdir, [("udp", O4, 7), ("udp", B4, 7)],
                                  "-p", f"http://{T.BLACKHOLE_V4}:3128", "--proxy-only",
                                  "--deny-cidr", f"{O4}/32")
    assert out == {("udp", O4, 7): DENIED4, ("udp", B4, 7): DENIED4}, out
    assert reasons(events) == [("udp", O4, "deny_cidr", "--deny-cidr"),
                               ("udp", B4, "proxy_only", "--proxy-only")]


# --- --fail-on-leak ---------------------------------------------------------------------------


@pytest.mark.core
def test_fail_on_leak_exits_122_when_something_was_blocked_and_command_succeeded(childflow):
    res = childflow.run("--fail-on-leak", "--deny-cidr", f"{O4}/32", "--", "/usr/bin/python3",
                        "-c", F.PROBE, "tcp", O4, "80")
    assert res.rc == 122, str(res)
    assert res.out.strip() == DENIED4, str(res)
    assert "--fail-on-leak" in res.err, str(res)


def test_fail_on_leak_counts_a_denied_dns_query(childflow):
    res = childflow.run("--fail-on-leak", "--deny-domain", ORIGIN, "--",
                        *F.dig("+short", f"@{F.RESOLVER_V4}", ORIGIN, "A"))
    assert res.rc == 122, str(res)
    assert res.out == "", str(res)


def test_fail_on_leak_keeps_exit_status_when_nothing_was_blocked(childflow):
    res = childflow.run("--fail-on-leak", "--deny-cidr", f"{O4}/32", "--", "curl", "-sS",
                        "--max-time", "30", f"http://{B4}/")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_B_BODY, str(res)
    assert "--fail-on-leak" not in res.err, str(res)


@pytest.mark.parametrize("status", [1, 3])
def test_fail_on_leak_keeps_the_commands_failure_status(childflow, status):
    res = childflow.run("--fail-on-leak", "--deny-cidr", f"{O4}/32", "--", "sh", "-c",
                        f"{F.probe_cmd('tcp', O4, 80)}; exit {status}")
    assert res.rc == status, str(res)
    assert res.out.strip() == DENIED4, str(res)


def test_without_fail_on_leak_a_blocked_flow_does_not_change_exit_status(childflow):
    res = childflow.run("--deny-cidr", f"{O4}/32", "--", "/usr/bin/python3", "-c", F.PROBE,
                        "tcp", O4, "80")
    assert res.rc == 0, str(res)
    assert res.out.strip() == DENIED4, str(res)
