"""DNS inside the sandbox goes to childflow's virtual resolver, which relays
to the host's resolver (dnsmasq A) by default or to --dns (dnsmasq B),
over UDP and TCP; with --dns even queries to an explicit server are forced."""

import re

import pytest

import support
import topology as T

pytestmark = pytest.mark.core

QUERY_ORIGIN = r"query\[A\] origin\.test from "
FIRST_NAMESERVER = "awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf"
REAL_RESOLVERS = {T.DNS_A_V4, T.DNS_A_V6, T.DNS_B_V4, T.DNS_B_V6}


def _host_resolv_conf(topo):
    with open(f"{topo.run_dir}/host-etc/resolv.conf") as f:
        return f.read()


def test_resolv_conf_inside_points_at_virtual_resolver(topo, childflow):
    res = childflow.run("--", "cat", "/etc/resolv.conf")
    assert res.rc == 0, str(res)
    assert res.out != _host_resolv_conf(topo), str(res)
    servers = support.nameservers(res.out)
    assert servers, str(res)
    assert not REAL_RESOLVERS.intersection(servers), servers


def test_host_resolv_conf_is_unchanged_by_a_run(topo, childflow):
    before = _host_resolv_conf(topo)
    res = childflow.run("--", "true")
    assert res.rc == 0, str(res)
    assert _host_resolv_conf(topo) == before
    outside = topo.run_user(["cat", "/etc/resolv.conf"])
    assert outside.out == before, str(outside)


def test_getent_resolves_through_host_resolver_by_default(topo, childflow):
    mark_a, mark_b = topo.log_mark("dns-a"), topo.log_mark("dns-b")
    res = childflow.run("--", "getent", "ahostsv4", T.ORIGIN_NAME)
    assert res.rc == 0, str(res)
    assert res.out.split()[0] == T.ORIGIN_V4, str(res)
    line = topo.wait_log("dns-a", mark_a, QUERY_ORIGIN)
    assert line is not None, topo.log_since("dns-a", mark_a)
    # relayed from the host namespace, not from the sandbox's own addresses
    assert line.split()[-1] in (T.HOST_V4, T.HOST_V6), line
    assert "origin.test" not in topo.log_since("dns-b", mark_b)


def test_aaaa_only_name_resolves_to_ipv6(childflow):
    res = childflow.run("--", "getent", "ahostsv6", T.V6ONLY_NAME)
    assert res.rc == 0, str(res)
    assert res.out.split()[0] == T.ORIGIN_V6, str(res)


def test_unknown_name_is_not_found(childflow):
    res = childflow.run("--", "getent", "hosts", "no-such-name.test")
    assert res.rc == 2, str(res)
    assert res.out == "", str(res)


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"], ids=["udp", "tcp"])
def test_dig_at_virtual_resolver_answers(topo, childflow, transport):
    mark = topo.log_mark("dns-a")
    res = childflow.run("--", "sh", "-c",
                        f"ns=$({FIRST_NAMESERVER}); echo \"$ns\"; "
                        f"dig {transport} +short +time=5 +tries=1 @\"$ns\" {T.ORIGIN_NAME} A")
    assert res.rc == 0, str(res)
    server, *answer = res.out.split()
    assert server not in REAL_RESOLVERS, str(res)
    assert answer == [T.ORIGIN_V4], str(res)
    assert topo.wait_log("dns-a", mark, QUERY_ORIGIN) is not None


@pytest.mark.parametrize("server, peer", [(T.DNS_B_V4, T.HOST_V4), (T.DNS_B_V6, T.HOST_V6)],
                         ids=["ipv4-resolver", "ipv6-resolver"])
def test_dns_option_sends_queries_to_that_resolver_only(topo, childflow, server, peer):
    mark_a, mark_b = topo.log_mark("dns-a"), topo.log_mark("dns-b")
    res = childflow.run("--dns", server, "--", "getent", "ahostsv4", T.ORIGIN_NAME)
    assert res.rc == 0, str(res)
    assert res.out.split()[0] == T.ORIGIN_B_V4, str(res)
    line = topo.wait_log("dns-b", mark_b, QUERY_ORIGIN)
    assert line is not None, topo.log_since("dns-b", mark_b)
    assert line.split()[-1] == peer, line
    assert "origin.test" not in topo.log_since("dns-a", mark_a)


def test_dns_option_steers_http_to_the_address_it_answers(childflow):
    res = childflow.run("--dns", T.DNS_B_V4, "--", "curl", "-sS", "-4", "--max-time", "30",
                        f"http://{T.ORIGIN_NAME}/")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_B_BODY, str(res)


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"], ids=["udp", "tcp"])
def test_dns_option_forces_queries_to_an_explicit_server(topo, childflow, transport):
    mark_a, mark_b = topo.log_mark("dns-a"), topo.log_mark("dns-b")
    res = childflow.run("--dns", T.DNS_B_V4, "--", "dig", transport, "+short", "+time=5",
                        "+tries=1", f"@{T.DNS_A_V4}", T.ORIGIN_NAME, "A")
    assert res.rc == 0, str(res)
    assert res.out.split() == [T.ORIGIN_B_V4], str(res)
    assert topo.wait_log("dns-b", mark_b, QUERY_ORIGIN) is not None
    assert not re.search(r"origin\.test", topo.log_since("dns-a", mark_a))
