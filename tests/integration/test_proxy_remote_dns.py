"""--proxy-remote-dns: the tree's DNS is answered by childflow with stand-in
addresses (198.19.0.0/16, fd63:6866:6c77:53::/96), the proxy is asked for
the name, and the host resolves nothing (dnsmasq A's log shows queries from
the proxies only, never from the host's addresses)."""

import ipaddress
import json
import re

import pytest

import featurelib as F
import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    PROXY_KINDS, SOCKS_PASSWORD, SOCKS_USER, assert_tunnelled, flow_events, microsocks, nginx_request_rx, proxy_args,
    proxy_world, run_with_flow_log, tinyproxy)

SYNTH4 = ipaddress.ip_network("198.19.0.0/16")
SYNTH6 = ipaddress.ip_network("fd63:6866:6c77:53::/96")
HOST_ADDRS = (T.HOST_V4, T.HOST_V6)


def is_synthetic(addr):
    a = ipaddress.ip_address(addr)
    return a in (SYNTH4 if a.version == 4 else SYNTH6)


def host_queries(topo, mark):
    """dnsmasq A's query lines since mark that came from the host itself."""
    return [ln for ln in topo.log_since("dns-a", mark).splitlines()
            if re.search(r"query\[", ln) and ln.split()[-1] in HOST_ADDRS]


@pytest.mark.core
@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_the_proxy_resolves_the_name_and_the_host_resolves_nothing(
        topo, proxy_world, childflow, userdir, kind):
    args, proxy = proxy_args(proxy_world, kind)
    path = f"/?cft={support.new_token()}"
    marks, dns_mark = proxy_world.marks(), topo.log_mark("dns-a")
    res, log = run_with_flow_log(childflow, userdir, [*args, "--proxy-remote-dns"],
                                 "curl", "-sS", "--max-time", "30",
                                 f"http://{T.ORIGIN_NAME}{path}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    assert_tunnelled(proxy_world, proxy, marks, f"{T.ORIGIN_NAME}:80")
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None and line.split()[0] in proxy.egress, line
    # the proxy asked dnsmasq A for the name; the host never did
    assert host_queries(topo, dns_mark) == [], topo.log_since("dns-a", dns_mark)
    answers = flow_events(log, "dns_answer")
    assert answers and {a["mode"] for a in answers} <= {"synthetic_address",
                                                        "synthetic_empty"}, answers
    ips = [ip for a in answers for ip in a["answer_ips"]]
    assert ips and all(is_synthetic(ip) for ip in ips), answers
    attempts = flow_events(log, "connect_attempt")
    assert [a["remote_ip"] in ips and a["via_proxy"] for a in attempts] == [True], attempts


def test_each_name_keeps_one_address_per_family(proxy_world, tinyproxy, childflow):
    script = (f"getent ahostsv4 {T.ORIGIN_NAME} | head -1; "
              f"getent ahostsv4 {T.ORIGIN_NAME} | head -1; "
              f"getent ahostsv6 {T.ORIGIN_NAME} | head -1; "
              f"getent ahostsv4 other.test | head -1")
    res = childflow.run("-p", tinyproxy.url, "--proxy-remote-dns", "--", "sh", "-c", script)
    assert res.rc == 0, str(res)
    first, again, six, other = [ln.split()[0] for ln in res.out.splitlines()]
    assert first == again and is_synthetic(first) and ":" not in first, res.out
    assert is_synthetic(six) and ":" in six, res.out
    assert int(ipaddress.ip_address(six)) & 0xffffffff == \
        int(ipaddress.ip_address(first)) & 0xffff, res.out
    # a name nobody could resolve still gets an address: only the proxy can tell
    assert is_synthetic(other) and other != first, res.out


@pytest.mark.core
def test_other_types_get_no_records_and_dns_over_tcp_is_answered_too(
        topo, proxy_world, tinyproxy, childflow):
    mark = topo.log_mark("dns-a")
    parts, res = F.steps(childflow, ["-p", tinyproxy.url, "--proxy-remote-dns"], [
        " ".join(F.dig(f"@{F.RESOLVER_V4}", T.ORIGIN_NAME, "MX")),
        " ".join(F.dig("+tcp", f"@{F.RESOLVER_V6}", T.ORIGIN_NAME, "A")),
        " ".join(F.dig("+short", f"@{T.DNS_A_V4}", T.ORIGIN_NAME, "A")),
    ])
    assert F.dig_status(parts[0][0]) == ("NOERROR", 0), parts[0][0]
    assert F.dig_status(parts[1][0]) == ("NOERROR", 1), parts[1][0]
    tcp_ip = re.search(rf"^{re.escape(T.ORIGIN_NAME)}\.\s+\d+\s+IN\s+A\s+(\S+)$",
                       parts[1][0], re.M).group(1)
    # even a query to a real resolver the tree names is answered by childflow
    assert parts[2][0].split() == [tcp_ip] and is_synthetic(tcp_ip), parts
    assert host_queries(topo, mark) == [], topo.log_since("dns-a", mark)


@pytest.mark.core
def test_udp_and_ping_to_a_stand_in_address_are_refused_and_logged(
        proxy_world, tinyproxy, childflow, userdir):
    lookup = f"A=$(getent ahostsv4 {T.ORIGIN_NAME} | awk '{{print $1; exit}}')"
    parts, res, events = F.steps_logged(childflow, userdir,
                                        ["-p", tinyproxy.url, "--proxy-remote-dns"], [
        f"{lookup}; {F.probe_cmd('udp', '$A', 7)}",
        f"{lookup}; {F.ping_cmd('$A')} >/dev/null 2>&1; echo ping=$?",
    ])
    assert parts[0][0].strip() == F.DENIED_ERRNO_V4, parts
    assert parts[1][0].strip() == "ping=1", parts
    denied = F.violations(events)
    assert {(v["protocol"], v["reason_code"], v["control"]) for v in denied} == {
        ("udp", "remote_dns", "--proxy-remote-dns"),
        ("icmpv4", "remote_dns", "--proxy-remote-dns")}, denied
    assert all(is_synthetic(v["remote_ip"]) for v in denied), denied


def test_an_address_never_handed_out_is_refused_with_a_warning(
        proxy_world, tinyproxy, childflow):
    marks = proxy_world.marks()
    res = childflow.run("-p", tinyproxy.url, "--proxy-remote-dns", "--",
                        "curl", "-sS", "--max-time", "30", "http://198.19.200.1/")
    assert res.rc == 7, str(res)  # curl: failed to connect
    assert "198.19.200.1, a remote-DNS stand-in address that stands for no name" in res.err, \
        res.err
    assert "CONNECT" not in proxy_world.since("tinyproxy", marks["tinyproxy"])


@pytest.mark.core
def test_domain_rules_decide_by_the_name(proxy_world, tinyproxy, childflow, userdir):
    curl = "curl -sS -o /dev/null --max-time 30 http://{}/; echo rc=$?"
    parts, res, events = F.steps_logged(
        childflow, userdir,
        ["-p", tinyproxy.url, "--proxy-remote-dns", "--default-policy", "deny",
         "--allow-domain", T.ORIGIN_NAME],
        [curl.format(T.ORIGIN_NAME), curl.format(T.V6ONLY_NAME)])
    assert parts[0][0].strip().endswith("rc=0"), parts
    assert parts[1][0].strip().endswith("rc=6"), parts  # could not resolve host
    assert {(v["protocol"], v["reason_code"]) for v in F.violations(events)} == \
        {("dns", "default_deny")}, F.violations(events)


def test_proxy_only_lets_remote_dns_through(proxy_world, microsocks, childflow):
    args, _ = proxy_args(proxy_world, "socks5")
    res = childflow.run(*args, "--proxy-remote-dns", "--proxy-only", "--",
                        "curl", "-sS", "--max-time", "30", f"http://{T.ORIGIN_NAME}/")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)


@pytest.mark.parametrize("extra, option", [
    ([], "--proxy-remote-dns needs --proxy"),
    (["-p", "http://198.51.100.20:3128", "--block-private"], "--block-private"),
    (["-p", "http://198.51.100.20:3128", "--deny-cidr", "203.0.113.0/24"], "--deny-cidr"),
    (["-p", "http://198.51.100.20:3128", "--dns", T.DNS_B_V4], "--dns"),
    (["-p", "http://198.51.100.20:3128", "--proxy-send-ip"], "--proxy-send-ip"),
], ids=["no-proxy", "block-private", "deny-cidr", "dns", "send-ip"])
def test_contradicting_settings_are_refused_before_anything_runs(childflow, extra, option):
    res = childflow.run(*extra, "--proxy-remote-dns", "--", "sh", "-c", "echo ran")
    assert res.rc == 125, str(res)
    assert res.out == "", str(res)
    assert option in res.err, res.err


def test_summary_names_the_proxy_without_credentials_and_remote_dns(
        proxy_world, microsocks, childflow):
    args, proxy = proxy_args(proxy_world, "socks5")
    res = childflow.run(*args, "--proxy-remote-dns", "--summary", "--summary-format", "json",
                        "--", "curl", "-sS", "-o", "/dev/null", f"http://{T.ORIGIN_NAME}/")
    assert res.rc == 0, str(res)
    summary = json.loads(res.err.strip().splitlines()[-1])
    assert summary["controls"] == [f"--proxy socks5://{proxy.host}:{proxy.port}",
                                   "--proxy-remote-dns"], summary
    assert SOCKS_USER not in res.err and SOCKS_PASSWORD not in res.err, res.err
