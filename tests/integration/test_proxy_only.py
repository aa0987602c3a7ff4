"""--proxy-only with a proxy: TCP still works (through the proxy), but direct
DNS (UDP and TCP) to a server the tree names itself, other UDP (unless a
socks5:// proxy carries it) and ICMP echo (v4 and v6) are blocked
and logged as policy violations with reason_code "proxy_only".  Names still
resolve through childflow's own resolver (the tree needs them to ask the
proxy)."""

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    PROXY_KINDS, assert_tunnelled, flow_events, nginx_request_rx, proxy_args, proxy_world,
    run_with_flow_log)


UDP_PORT = 5000  # nothing listens there; the datagram is blocked before it matters
UDP_SEND = ("import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.sendto(b\"x\", (sys.argv[1], int(sys.argv[2])))")


def _violations(log, proto, ip):
    return [e for e in flow_events(log, "policy_violation")
            if e["protocol"] == proto and e["remote_ip"] == ip]


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_proxy_only_allows_proxied_tcp_and_blocks_direct_dns_and_ping(
        proxy_world, childflow, userdir, kind):
    args, proxy = proxy_args(proxy_world, kind)
    token = support.new_token()
    path = f"/?cft={token}"
    qname = f"{token}.{T.ORIGIN_NAME}"
    marks = proxy_world.marks()
    script = (f"curl -sS --max-time 30 http://{T.ORIGIN_NAME}{path}; echo curl=$?; "
              f"dig +short +time=2 +tries=1 @{T.DNS_A_V4} {qname} A; echo dig=$?; "
              f"dig +tcp +short +time=2 +tries=1 @{T.DNS_A_V4} tcp-{qname} A >/dev/null; "
              f"echo dig-tcp=$?; "
              f"/usr/bin/python3 -c '{UDP_SEND}' {T.ORIGIN_V4} {UDP_PORT}; echo udp=$?; "
              f"ping -c 1 -W 10 {T.ORIGIN_V4} >/dev/null 2>&1; echo ping=$?; "
              f"ping -6 -c 1 -W 10 {T.ORIGIN_V6} >/dev/null 2>&1; echo ping6=$?")
    res, log = run_with_flow_log(childflow, userdir, [*args, "--proxy-only"], "sh", "-c", script)
    assert res.rc == 0, str(res)
    # the blocked UDP query is answered empty (NOERROR, no records); the TCP
    # one cannot connect (dig: 9, no server reached); the datagram leaves the
    # socket but goes nowhere; pings fail
    assert res.out.splitlines() == [T.ORIGIN_BODY.strip(), "curl=0", "dig=0", "dig-tcp=9",
                                    "udp=0", "ping=1", "ping6=1"], str(res)
    assert_tunnelled(proxy_world, proxy, marks, f"{T.ORIGIN_NAME}:80")
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None and line.split()[0] in proxy.egress, \
        proxy_world.since("nginx", marks["nginx"])
    # through a socks5:// proxy UDP is proxied (its UDP ASSOCIATE; microsocks has none, so
    # nothing leaves: test_udp_socks.py), not a violation
    checked = (("dns", T.DNS_A_V4), ("icmpv4", T.ORIGIN_V4), ("icmpv6", T.ORIGIN_V6))
    if kind == "socks5":
        assert not _violations(log, "udp", T.ORIGIN_V4), flow_events(log, "policy_violation")
        starts = [e for e in flow_events(log, "datagram_flow_start") if e["protocol"] == "udp"]
        assert starts and all(e["via_proxy"] is True for e in starts), starts
    else:
        checked += (("udp", T.ORIGIN_V4),)
    for proto, ip in checked:
        found = _violations(log, proto, ip)
        assert found, flow_events(log, "policy_violation")
        assert all(e["reason_code"] == "proxy_only" and e["control"] == "--proxy-only"
                   for e in found), found
    # the UDP and the TCP DNS query are two violations
    assert len(_violations(log, "dns", T.DNS_A_V4)) == 2, flow_events(log, "policy_violation")
    if kind != "socks5":
        assert [e["remote_port"] for e in _violations(log, "udp", T.ORIGIN_V4)] == [UDP_PORT]
    # the direct query never reached dnsmasq A
    assert token not in proxy_world.since("dns-a", marks["dns-a"])
