"""UDP and ICMP through the sandbox, rootless, IPv4 and IPv6: traceroute sees
every real router of the topology's chain (host -> r1 -> r2 -> far) with UDP
and ICMP probes, ping works, DNS to a resolver the tree names itself works,
big datagrams arrive whole (also when they cross tun0 as fragments, either
way, and when a router on the real path makes the tree fragment smaller
ones), a closed UDP port is refused, many concurrent flows lose nothing, and
a host without unprivileged ICMP sockets gives one clear hint instead of a
hanging ping."""

import os
import re

import pytest

import featurelib as F
import support
import topology as T

FAMILIES = pytest.mark.parametrize("family", ["ipv4", "ipv6"])
TARGET = {"ipv4": T.FAR_V4, "ipv6": T.FAR_V6}
FAMILY_FLAG = {"ipv4": "-4", "ipv6": "-6"}
HOST_ADDR = {"ipv4": T.HOST_V4, "ipv6": T.HOST_V6}

# One UDP round trip of SIZE random bytes: ADDR PORT SIZE.  Prints "echoed
# SIZE" when the reply is byte for byte what was sent.
UDP_ROUND_TRIP = r"""
import os, socket, sys
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(20)
s.connect((addr, port))
data = os.urandom(size)
assert s.send(data) == size
try:
    got = s.recv(65536)
except (socket.timeout, TimeoutError):
    print("timeout")
else:
    print(f"echoed {len(got)}" if got == data else f"different reply of {len(got)} bytes")
"""

# A connected UDP socket sends to ADDR PORT and waits for the answer.
UDP_CLOSED_PROBE = r"""
import errno, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(20)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"anyone there?")
try:
    s.recv(100)
except ConnectionRefusedError as e:
    print(f"refused {errno.errorcode[e.errno]}")
except (socket.timeout, TimeoutError):
    print("timeout")
except OSError as e:
    print(f"error {errno.errorcode.get(e.errno, e.errno)}")
else:
    print("answered")
"""

# COUNT connected UDP sockets, all open at once; BATCH of them send one
# datagram each, then wait for those echoes (up to 20 s per batch) before the
# next batch.  Prints "sockets N ports N lost N wrong N" (ports: distinct
# local ports, i.e. distinct flows).
UDP_MANY_FLOWS = r"""
import select, socket, sys, time
addr, port, count, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
socks = []
for i in range(count):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect((addr, port))
    socks.append(s)
ports = {s.getsockname()[1] for s in socks}
lost = wrong = 0
for start in range(0, count, batch):
    pending = {}
    for i in range(start, min(start + batch, count)):
        socks[i].send(b"flow-%d" % i)
        pending[socks[i].fileno()] = i
    deadline = time.monotonic() + 20
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(list(pending), [], [], left)
        for fd in ready:
            i = pending.pop(fd)
            if socks[i].recv(100) != b"flow-%d" % i:
                wrong += 1
    lost += len(pending)
print(f"sockets {len(socks)} ports {len(ports)} lost {lost} wrong {wrong}")
"""

# Like UDP_ROUND_TRIP, but up to 5 attempts of 3 s each: the first datagram
# may be lost to a path MTU the tree does not know yet.  Prints "echoed SIZE"
# when a reply is byte for byte what that attempt sent.
UDP_ROUND_TRIP_RETRY = r"""
import os, socket, sys
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((addr, port))
for attempt in range(5):
    data = os.urandom(size)
    try:
        s.send(data)
        got = s.recv(65536)
    except OSError:  # a timeout, or EMSGSIZE from "packet too big"
        continue
    print(f"echoed {len(got)}" if got == data else f"different reply of {len(got)} bytes")
    break
else:
    print("timeout")
"""

PING_HINT = "net.ipv4.ping_group_range"


def trace_hops(res):
    """Hop addresses of `traceroute -n -q 1` output, in order ("*" for a
    hop that did not answer)."""
    hops = []
    for line in res.out.splitlines()[1:]:
        m = re.match(r"^\s*(\d+)\s+(\S+)", line)
        assert m, f"unexpected traceroute line {line!r}\n{res}"
        assert int(m.group(1)) == len(hops) + 1, str(res)
        hops.append(m.group(2))
    return hops


def traceroute_argv(family, icmp):
    # -w 5,0,0: wait up to 5 s for every probe, and only that: traceroute's
    # default HERE/NEAR factors would cut the wait for a hop to 10 times the
    # round trip of a later hop that already answered, i.e. turn a slow but
    # present reply into "*" (a timing check).  -m 8: a missing last hop
    # fails within seconds, with the output, instead of probing 30 hops.
    argv = ["traceroute", "-n", "-q", "1", "-w", "5,0,0", "-m", "8"]
    if family == "ipv6":
        argv.append("-6")
    if icmp:
        # One probe at a time: with parallel probes, traceroute -I over
        # unprivileged ICMP sockets loses hops even without childflow.
        argv += ["-I", "-N", "1"]
    return [*argv, TARGET[family]]


def ping_times(res):
    """The time=X values (ms) of ping's reply lines."""
    return [float(t) for t in re.findall(r"\btime=([0-9.]+) ms", res.out)]


def udp_log_since(topo, mark, peer):
    """(peer-port, size) of each datagram the far echo server got from peer."""
    out = []
    for line in topo.log_since("udp-echo", mark).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "udp" and parts[1] == peer:
            out.append((int(parts[2]), int(parts[3])))
    return out


# --- the topology itself (no childflow): when these fail, the childflow
# tests below say nothing about childflow -------------------------------------


@FAMILIES
@pytest.mark.parametrize("icmp", [False, True], ids=["udp", "icmp"])
def test_harness_traceroute_without_childflow_sees_the_router_chain(topo, family, icmp):
    res = topo.run_user(traceroute_argv(family, icmp), timeout=120)
    assert res.rc == 0, str(res)
    assert trace_hops(res) == list(topo.trace_hops[family]), str(res)


def test_harness_router_chain_hops_are_distinct_and_end_at_the_target(topo):
    for family in ("ipv4", "ipv6"):
        hops = topo.trace_hops[family]
        assert len(hops) >= 3 and len(set(hops)) == len(hops)
        assert hops[-1] == TARGET[family]


# --- traceroute ------------------------------------------------------------------


@pytest.mark.core
@FAMILIES
def test_traceroute_udp_probes_show_every_router_then_the_target(topo, childflow, family):
    res = childflow.run("--", *traceroute_argv(family, icmp=False), timeout=120)
    assert res.rc == 0, str(res)
    assert trace_hops(res) == list(topo.trace_hops[family]), str(res)


@pytest.mark.core
@FAMILIES
def test_traceroute_icmp_probes_show_every_router_then_the_target(topo, childflow, family):
    res = childflow.run("--", *traceroute_argv(family, icmp=True), timeout=120)
    assert res.rc == 0, str(res)
    assert trace_hops(res) == list(topo.trace_hops[family]), str(res)


# --- ping --------------------------------------------------------------------------


@pytest.mark.core
@FAMILIES
def test_ping_far_target_gets_every_reply(childflow, family):
    res = childflow.run("--", "ping", FAMILY_FLAG[family], "-n", "-c", "3", "-i", "0.2",
                        "-W", "10", TARGET[family])
    assert res.rc == 0, str(res)
    assert re.search(r"\b3 packets transmitted, 3 received, 0% packet loss", res.out), str(res)
    times = ping_times(res)
    assert len(times) == 3 and all(t > 0 for t in times), str(res)
    # every reply is from the target itself
    assert len(re.findall(rf"bytes from {re.escape(TARGET[family])}: icmp_seq=", res.out)) == 3, \
        str(res)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_ping_without_host_icmp_sockets_fails_at_once_with_one_hint(topo, childflow, family):
    """The host namespace stops allowing ICMP sockets for every group (for this
    test only): the tree's pings get an ICMP error each, so ping ends on its
    own long before -W, and childflow says once what to change."""
    key = "net.ipv4.ping_group_range"
    old = topo.run_host_root(["sysctl", "-n", key], check=True).out.split()
    assert len(old) == 2, old
    try:
        topo.run_host_root(["sysctl", "-qw", f"{key}=1 0"], check=True)
        res = childflow.run("--", "ping", FAMILY_FLAG[family], "-n", "-c", "3", "-i", "0.2",
                            "-W", "60", TARGET[family], timeout=120)
    finally:
        topo.run_host_root(["sysctl", "-qw", f"{key}={old[0]} {old[1]}"], check=True)
    assert topo.run_host_root(["sysctl", "-n", key]).out.split() == old
    assert res.rc == 1, str(res)
    # each echo request was answered with an error at once (not silence until -W)
    assert re.search(r"\b3 packets transmitted, 0 received, \+3 errors", res.out), str(res)
    hints = [ln for ln in res.err.splitlines() if PING_HINT in ln]
    assert len(hints) == 1 and "ping" in hints[0].replace(PING_HINT, ""), str(res)


# --- DNS over UDP to a server the tree names ------------------------------------------


@pytest.mark.parametrize("server, log, answer, peer", [
    (T.DNS_A_V4, "dns-a", T.ORIGIN_V4, T.HOST_V4),
    (T.DNS_B_V4, "dns-b", T.ORIGIN_B_V4, T.HOST_V4),
    (T.DNS_B_V6, "dns-b", T.ORIGIN_B_V4, T.HOST_V6),
], ids=["resolver-a-ipv4", "resolver-b-ipv4", "resolver-b-ipv6"])
def test_dig_over_udp_at_a_resolver_the_tree_names_gets_its_answer(topo, childflow, server,
                                                                       log, answer, peer):
    mark = topo.log_mark(log)
    res = childflow.run("--", "dig", "+notcp", "+short", "+time=5", "+tries=1", f"@{server}",
                        T.ORIGIN_NAME, "A")
    assert res.rc == 0, str(res)
    assert res.out.split() == [answer], str(res)
    line = topo.wait_log(log, mark, r"query\[A\] origin\.test from ")
    assert line is not None and line.split()[-1] == peer, topo.log_since(log, mark)


# --- big datagrams -------------------------------------------------------------------------


def _round_trip(topo, childflow, family, size):
    mark = topo.log_mark("udp-echo")
    res = childflow.run("--", T.PYTHON, "-c", UDP_ROUND_TRIP, TARGET[family],
                        str(T.UDP_ECHO_PORT), str(size))
    assert res.rc == 0, str(res)
    assert res.out.strip() == f"echoed {size}", str(res)
    # one datagram of that size reached the echo server, from the host
    got = support.wait_for(lambda: udp_log_since(topo, mark, HOST_ADDR[family]))
    assert [n for _, n in got] == [size], topo.log_since("udp-echo", mark)


@pytest.mark.core
@FAMILIES
def test_udp_60000_byte_datagram_round_trips_whole(topo, childflow, family):
    _round_trip(topo, childflow, family, 60000)


def test_udp_65507_byte_datagram_round_trips_whole_ipv4(topo, childflow):
    _round_trip(topo, childflow, "ipv4", 65507)


def test_udp_65507_byte_datagram_round_trips_whole_ipv6(topo, childflow):
    _round_trip(topo, childflow, "ipv6", 65507)


def test_udp_65487_byte_datagram_round_trips_whole_ipv6(topo, childflow):
    # the largest IPv6 datagram that fits tun0's MTU unfragmented
    _round_trip(topo, childflow, "ipv6", 65487)


def test_udp_65488_byte_datagram_round_trips_whole_ipv6(topo, childflow):
    # the smallest that does not: 65,480 bytes of UDP in the first fragment each
    # way, 16 in the second
    _round_trip(topo, childflow, "ipv6", 65488)


def test_udp_65527_byte_datagram_the_ipv6_maximum_round_trips_whole(topo, childflow):
    # UDP length 65,535: the most an IPv6 payload carries (no jumbograms);
    # the packet is 65,575 bytes, fragmented on tun0 both ways
    _round_trip(topo, childflow, "ipv6", 65527)


@FAMILIES
def test_ping_with_65500_bytes_of_data_gets_every_reply(childflow, family):
    # v6: 40 + 8 + 65,500 bytes do not fit tun0's MTU, so the request reaches
    # the engine in fragments and the reply goes back to the tree in fragments
    res = childflow.run("--", "ping", FAMILY_FLAG[family], "-n", "-c", "2", "-i", "0.2",
                        "-s", "65500", "-W", "10", TARGET[family])
    assert res.rc == 0, str(res)
    assert re.search(r"\b2 packets transmitted, 2 received, 0% packet loss", res.out), str(res)
    assert len(re.findall(rf"^65508 bytes from {re.escape(TARGET[family])}: icmp_seq=",
                          res.out, re.M)) == 2, str(res)


# --- a smaller MTU on the real path -------------------------------------------------------

SMALL_MTU = 1400
# Fits the host's 1500-byte links in one packet, but not r2's link to far at
# SMALL_MTU: so r2 answers "fragmentation needed" (the host sends it with DF)
# / "packet too big", the engine passes that on to the tree, and the tree's
# kernel from then on fragments such datagrams on tun0.
PMTU_DATAGRAM = 1450
TREE_FRAGMENTS = {
    "ipv4": f"ip.src == {F.TREE_V4} && ip.flags.mf == 1",
    "ipv6": f"ipv6.src == {F.TREE_V6} && ipv6.fraghdr.more == 1",
}
TREE_DATAGRAMS = {
    "ipv4": f"ip.src == {F.TREE_V4} && udp.length == {PMTU_DATAGRAM + 8}",
    "ipv6": f"ipv6.src == {F.TREE_V6} && udp.length == {PMTU_DATAGRAM + 8}",
}


def _flush_host_path_mtus(topo):
    for family in ("-4", "-6"):
        topo.run_host_root(["ip", family, "route", "flush", "cache"], check=True)


@pytest.fixture
def far_link_small_mtu(topo):
    """r2's link to far at SMALL_MTU for one test; the host forgets the path
    MTUs it learnt, before and after."""
    links = [(topo.r2_ns, "eth1"), (topo.far_ns, "eth0")]
    old = {}
    for ns, dev in links:
        out = topo.run_in(ns, ["cat", f"/sys/class/net/{dev}/mtu"], check=True).out
        old[(ns, dev)] = out.strip()
    _flush_host_path_mtus(topo)
    try:
        for ns, dev in links:
            topo.run_in(ns, ["ip", "link", "set", dev, "mtu", str(SMALL_MTU)], check=True)
        yield
    finally:
        for (ns, dev), mtu in old.items():
            topo.run_in(ns, ["ip", "link", "set", dev, "mtu", mtu], check=True)
        _flush_host_path_mtus(topo)


@FAMILIES
def test_after_a_router_reports_a_smaller_mtu_the_trees_fragments_are_relayed_whole(
        topo, childflow, userdir, far_link_small_mtu, family):
    cap = os.path.join(userdir, "pmtu.pcapng")
    res = childflow.run("-c", cap, "--", T.PYTHON, "-c", UDP_ROUND_TRIP_RETRY,
                        TARGET[family], str(T.UDP_ECHO_PORT), str(PMTU_DATAGRAM), timeout=120)
    assert res.rc == 0, str(res)
    assert res.out.strip() == f"echoed {PMTU_DATAGRAM}", str(res)
    # the tree's kernel did fragment on tun0 (so the echo went through reassembly),
    # and tshark puts those fragments together into the tree's datagram
    assert F.tshark_fields(cap, ["frame.number"], TREE_FRAGMENTS[family]), \
        F.tshark(cap)
    assert F.tshark_fields(cap, ["frame.number"], TREE_DATAGRAMS[family]), F.tshark(cap)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.core
@FAMILIES
def test_connected_udp_socket_to_closed_port_gets_econnrefused(childflow, family):
    res = childflow.run("--", T.PYTHON, "-c", UDP_CLOSED_PROBE, TARGET[family],
                        str(T.UDP_CLOSED_PORT))
    assert res.rc == 0, str(res)
    assert res.out.strip() == "refused ECONNREFUSED", str(res)


def test_connected_udp_socket_to_open_port_gets_an_answer(childflow):
    # the positive control for the probe above
    res = childflow.run("--", T.PYTHON, "-c", UDP_CLOSED_PROBE, T.FAR_V4,
                        str(T.UDP_ECHO_PORT))
    assert res.rc == 0 and res.out.strip() == "answered", str(res)


# --- many flows ----------------------------------------------------------------------------


@FAMILIES
def test_500_concurrent_udp_flows_lose_no_reply(topo, childflow, family):
    mark = topo.log_mark("udp-echo")
    res = childflow.run("--", T.PYTHON, "-c", UDP_MANY_FLOWS, TARGET[family],
                        str(T.UDP_ECHO_PORT), "500", "50", timeout=300)
    assert res.rc == 0, str(res)
    assert res.out.split() == ["sockets", "500", "ports", "500", "lost", "0", "wrong", "0"], \
        str(res)
    # the echo server saw 500 flows from the host: one datagram from each of
    # 500 different host ports
    got = support.wait_for(lambda: len(udp_log_since(topo, mark, HOST_ADDR[family])) >= 500)
    assert got, topo.log_since("udp-echo", mark)[-2000:]
    ports = [p for p, _ in udp_log_since(topo, mark, HOST_ADDR[family])]
    assert len(ports) == 500 and len(set(ports)) == 500, ports
