"""The rootful backend with --proxy (issue #17): the tree's TCP is intercepted
transparently (the tree-side TPROXY of the rootless backend, into the same
engine and proxy code) and carried through each kind of proxy; ICMP, and UDP
but with a socks5:// proxy, take the host's kernel, and --proxy-only denies
them there.

With a socks5:// proxy the tree's UDP goes to the engine and through the
proxy's UDP ASSOCIATE, as in the rootless backend (issue 21,
test_udp_socks.py has the rootless tests and the dante they share): the far
echo server's log tells the proxy's datagrams (DANTE_V4 / DANTE_V6) from
direct ones (the host's masquerade, HOST_V4 / HOST_V6)."""

import os
import time

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    SOCKS_PASSWORD, SOCKS_USER, PROXY_KINDS, assert_tunnelled, microsocks, nginx_request_rx,
    proxy_args, proxy_world)
from test_rootful import flow_events, rootful
from test_udp_socks import (  # noqa: F401  (dante is a fixture, used by name)
    DANTE_EGRESS, DANTE_PORT, DANTE_V4, UDP_PROBE, UDP_TWO_SOCKETS, dante)

pytestmark = pytest.mark.core


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_tcp_by_name_is_carried_through_the_proxy(proxy_world, childflow, topo, kind):
    args, proxy = proxy_args(proxy_world, kind)
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    # busybox wget ignores proxy variables: the interception is transparent.
    res = rootful(topo, childflow, *args, "--", "busybox", "wget", "-q", "-O", "-",
                  f"http://{T.ORIGIN_NAME}{path}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    assert_tunnelled(proxy_world, proxy, marks, f"{T.ORIGIN_NAME}:80")
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None and line.split()[0] in proxy.egress, line


def test_a_refused_port_stays_refused_through_the_proxy(proxy_world, childflow, topo):
    args, _ = proxy_args(proxy_world, "socks5")
    res = rootful(topo, childflow, *args, "--", "sh", "-c",
                  f"curl -sS -m10 http://{T.ORIGIN_V4}:{T.CLOSED_PORT}/ 2>/dev/null; echo rc=$?")
    assert res.rc == 0, str(res)
    assert res.out.split() == ["rc=7"], str(res)


def test_proxy_only_denies_udp_and_icmp_on_the_kernels_path(proxy_world, childflow, topo):
    args, _ = proxy_args(proxy_world, "http")
    res = rootful(topo, childflow, *args, "--proxy-only", "--", "sh", "-c",
                  f"ping -c1 -W2 {T.FAR_V4} >/dev/null 2>&1; echo ping=$?; "
                  f"dig +short +time=5 {T.ORIGIN_NAME}; "
                  f"curl -sS -m20 -o /dev/null -w '%{{http_code}}\\n' http://{T.ORIGIN_V4}/")
    assert res.rc == 0, str(res)
    assert res.out.split() == ["ping=1", T.ORIGIN_V4, "200"], str(res)
    # Without --proxy-only the same ping goes out: the control.
    res = rootful(topo, childflow, *args, "--", "sh", "-c",
                  f"ping -c1 -W2 {T.FAR_V4} >/dev/null 2>&1; echo ping=$?")
    assert res.out.split() == ["ping=0"], str(res)


# --- UDP through a socks5:// proxy (issue 21) ---------------------------------------

UDP_TARGET = {"ipv4": T.FAR_V4, "ipv6": T.FAR_V6}
FAMILIES = pytest.mark.parametrize("family", ["ipv4", "ipv6"])
PROXY_ONLY = pytest.mark.parametrize("extra", [[], ["--proxy-only"]], ids=["plain", "proxy-only"])

# UDP_PROBE from a socket bound to the tree's eth0 (SO_BINDTODEVICE needs no
# privilege on an unbound socket): the route of the tree's mark for tun0 does
# not apply to it, so only the host's table can stop it.
UDP_PROBE_ON_ETH0 = UDP_PROBE.replace(
    "s.settimeout(20)\n", "s.settimeout(20)\ns.setsockopt(socket.SOL_SOCKET, 25, b'eth0')\n")


def echo_peers(topo, mark):
    """Peer addresses of the datagrams the far echo server got since mark."""
    return [line.split()[1] for line in topo.log_since("udp-echo", mark).splitlines()
            if line.startswith("udp ")]


def flow_log(userdir, name):
    os.chmod(userdir, 0o777)
    return os.path.join(userdir, name)


def udp_events(log, event):
    return [e for e in flow_events(log) if e["event"] == event and e["protocol"] == "udp"]


@FAMILIES
@PROXY_ONLY
def test_udp_goes_through_dante_udp_associate_and_ping_stays_on_the_kernels_path(
        topo, dante, childflow, userdir, family, extra):
    log = flow_log(userdir, "udp.jsonl")
    mark = topo.log_mark("udp-echo")
    res = rootful(topo, childflow, "--flow-log", log, "-p",
                  f"socks5://{DANTE_V4}:{DANTE_PORT}", *extra, "--", "sh", "-c",
                  f"ping -c1 -W2 {UDP_TARGET[family]} >/dev/null 2>&1; echo ping=$?; "
                  f"{T.PYTHON} -c '{UDP_PROBE}' {UDP_TARGET[family]} {T.UDP_ECHO_PORT}")
    assert res.rc == 0, str(res)
    # no proxy carries ICMP: the kernel's path does, and --proxy-only denies it there
    assert res.out.split("\n")[:2] == ["ping=1" if extra else "ping=0", "echoed"], \
        str(res) + dante.output()
    # the echo server saw the proxy, never the host's masquerade
    peers = support.wait_for(lambda: echo_peers(topo, mark))
    assert peers == [DANTE_EGRESS[family]], (peers, str(res))
    # one record, the engine's: the tree's conntrack entry of the flow is not counted again
    starts = udp_events(log, "datagram_flow_start")
    assert len(starts) == 1 and starts[0]["via_proxy"] is True, starts
    assert starts[0].get("error") in (None, ""), starts
    assert starts[0]["remote_ip"] == UDP_TARGET[family], starts
    ends = udp_events(log, "datagram_flow_end")
    assert len(ends) == 1 and ends[0]["via_proxy"] is True, ends
    # the ping: the kernel's, never proxied; denied by --proxy-only
    icmp = "icmpv4" if family == "ipv4" else "icmpv6"
    ev = flow_events(log)
    if extra:
        denied = [e for e in ev if e["event"] == "policy_violation"]
        assert [(e["protocol"], e["reason_code"]) for e in denied] == [(icmp, "proxy_only")], ev
    else:
        pings = [e for e in ev if e["event"] == "datagram_flow_start" and e["protocol"] == icmp]
        assert len(pings) == 1 and pings[0]["via_proxy"] is False, ev


def test_udp_replies_reach_the_right_socket_of_the_tree(topo, dante, childflow):
    mark = topo.log_mark("udp-echo")
    res = rootful(topo, childflow, "-p", f"socks5://{DANTE_V4}:{DANTE_PORT}", "--", T.PYTHON,
                  "-c", UDP_TWO_SOCKETS, T.FAR_V4, str(T.UDP_ECHO_PORT))
    assert res.rc == 0, str(res)
    assert res.out.strip() == "ok 6", str(res)
    peers = support.wait_for(lambda: len(echo_peers(topo, mark)) == 6 and echo_peers(topo, mark))
    assert peers == [DANTE_V4] * 6, peers


@FAMILIES
@PROXY_ONLY
def test_a_proxy_without_udp_refuses_at_once_and_nothing_leaves(topo, proxy_world, microsocks,
                                                                childflow, userdir, family,
                                                                extra):
    log = flow_log(userdir, "refused.jsonl")
    mark = topo.log_mark("udp-echo")
    res = rootful(topo, childflow, "--flow-log", log, "-p", microsocks.url, "-U", SOCKS_USER,
                  "-P", SOCKS_PASSWORD, *extra, "--", T.PYTHON, "-c", UDP_PROBE,
                  UDP_TARGET[family], str(T.UDP_ECHO_PORT))
    assert res.rc == 0, str(res)
    # ICMP port unreachable: a connected socket's recv() fails (no 20 s timeout)
    assert res.out.strip() == "refused ECONNREFUSED", str(res)
    assert "SOCKS5 reply 7 (command not supported)" in res.err, str(res)
    # a later run's datagrams would show by now; none came, from anyone
    time.sleep(0.5)
    assert echo_peers(topo, mark) == [], topo.log_since("udp-echo", mark)
    starts = udp_events(log, "datagram_flow_start")
    assert len(starts) == 1 and starts[0]["via_proxy"] is True, starts
    assert not [e for e in flow_events(log) if e["event"] == "policy_violation"], \
        flow_events(log)


def test_a_proxy_that_is_down_refuses_udp_and_the_run_goes_on(topo, childflow):
    mark = topo.log_mark("udp-echo")
    # nothing listens on port 1 of the world's address
    res = rootful(topo, childflow, "-p", f"socks5://{T.WORLD_V4}:1", "--", "sh", "-c",
                  f"{T.PYTHON} -c '{UDP_PROBE}' {T.FAR_V4} {T.UDP_ECHO_PORT}; "
                  f"{T.PYTHON} -c '{UDP_PROBE}' {T.FAR_V4} {T.UDP_ECHO_PORT}")
    assert res.rc == 0, str(res)
    assert res.out.split("\n")[:2] == ["refused ECONNREFUSED"] * 2, str(res)
    time.sleep(0.5)
    assert echo_peers(topo, mark) == [], topo.log_since("udp-echo", mark)


def test_udp_that_slips_past_the_trees_steering_is_refused_by_the_hosts_table(topo, dante,
                                                                                childflow):
    mark = topo.log_mark("udp-echo")
    res = rootful(topo, childflow, "-p", f"socks5://{DANTE_V4}:{DANTE_PORT}", "--", "sh", "-c",
                  f'"$0" -c "$1" {T.FAR_V4} {T.UDP_ECHO_PORT}; '
                  f'"$0" -c "$2" {T.FAR_V4} {T.UDP_ECHO_PORT}',
                  T.PYTHON, UDP_PROBE_ON_ETH0, UDP_PROBE)
    assert res.rc == 0, str(res)
    # administratively prohibited at the host; the control goes through the proxy
    assert res.out.split("\n")[:2] == ["error EHOSTUNREACH", "echoed"], str(res)
    peers = support.wait_for(lambda: echo_peers(topo, mark))
    assert peers == [DANTE_V4], peers


def test_tcp_that_slips_past_the_trees_interception_is_refused_by_the_hosts_table(
        proxy_world, childflow, topo):
    # curl --interface binds its socket to eth0 (SO_BINDTODEVICE): the route
    # of the tree's mark for tun0 does not apply to it, so only the host's
    # table keeps it from leaving around the proxy.
    args, proxy = proxy_args(proxy_world, "socks5")
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res = rootful(topo, childflow, *args, "--", "sh", "-c",
                  f"curl -sS -m10 --interface eth0 -o /dev/null http://{T.ORIGIN_V4}{path} "
                  f"2>/dev/null; echo rc=$?; "
                  f"curl -sS -m10 -o /dev/null -w '%{{http_code}}\\n' http://{T.ORIGIN_V4}{path}")
    assert res.rc == 0, str(res)
    # refused at once (a reset from the host); the control goes through the proxy
    assert res.out.split() == ["rc=7", "200"], str(res)
    assert_tunnelled(proxy_world, proxy, marks, f"{T.ORIGIN_V4}:80")
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None and line.split()[0] in proxy.egress, line
