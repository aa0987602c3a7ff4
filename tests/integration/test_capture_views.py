"""--capture-point egress, wire-egress and both (docs/capture.md).

egress: the same flows as the child view, as they leave the host: the host
namespace's address (203.0.113.2 / 2001:db8:1::2) and the ports of
childflow's own sockets, the origin, resolver or proxy as the peer, never the
tree's 198.18.0.2; TCP reassembles to exactly the bytes curl received (with
a proxy: the CONNECT handshake first).  wire-egress: a real capture on the
host, so it needs capture privilege (the test user gets a clear error before
anything runs; root gets a capture holding the tree's flows and none of the
host's own traffic to the same servers).  both: NAME.child.pcapng and
NAME.egress.pcapng.  Every file names its view, backend, kind and interface;
existing files are never overwritten; SIGTERM leaves a complete file.  The
child view of IPv6 datagrams too big for tun0 holds their fragments, which
tshark reassembles without complaint."""

import os
import signal
import stat
import subprocess
import threading

import pytest

import conftest
import featurelib as F
import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    SOCKS_PASSWORD, SOCKS_USER, microsocks, proxy_world, stunnel, tinyproxy)

O4, O6, B4 = T.ORIGIN_V4, T.ORIGIN_V6, T.ORIGIN_B_V4
HOST4, HOST6 = T.HOST_V4, T.HOST_V6
TREE_ADDRS = (F.TREE_V4, F.TREE_V6, F.RESOLVER_V4, F.RESOLVER_V6)
NOT_ROOT_MSG = ("--capture-point wire-egress needs capture privilege on the host "
                "(run as root or grant CAP_NET_RAW)")


def comments(path):
    info = F.capinfos(path)
    return info, [ln.split(":", 1)[1].strip() for ln in info.splitlines()
                  if ln.startswith("Capture comment:")]


def ends(path, display_filter=None):
    """(src, dst) of every packet, v4 or v6."""
    rows = F.tshark_fields(path, ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst"], display_filter)
    return [(r[0], r[1]) if r[0] else (r[2], r[3]) for r in rows]


def peers_of(pairs, me):
    out = set()
    for src, dst in pairs:
        assert me & {src, dst}, (src, dst)
        out.add(dst if src in me else src)
    return out


def stream_of(path, display_filter):
    rows = F.tshark_fields(path, ["tcp.stream"], display_filter)
    assert rows, f"no packet matches {display_filter}"
    return rows[0][0]


def assert_reads_cleanly(path, l4_checksums=True):
    """tshark reads the file with checksum validation and finds nothing to
    warn about (no malformed packet, no expert warning)."""
    argv = ["tshark", "-n", "-r", path, "-o", "ip.check_checksum:TRUE",
            "-Y", "_ws.expert.severity >= warning || _ws.malformed"]
    if l4_checksums:
        argv[4:4] = ["-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert F.tshark_notices(p.stderr) == [], p.stderr
    assert p.stdout == "", p.stdout


class Run:
    pass


@pytest.fixture(scope="module")
def both(topo, childflow_bin):
    """One run with -C both: the tree fetches a page by name over v4 and v6,
    asks the resolver, pings and sends a UDP datagram to a closed port."""
    cf = conftest.Childflow(topo, childflow_bin)
    d = topo.make_user_dir("test_capture_views-both")
    r = Run()
    r.dir = d
    r.out = os.path.join(d, "run.pcapng")
    script = "\n".join([
        f"curl -sS -4 --max-time 30 -D {d}/hdr -o {d}/body http://{T.ORIGIN_NAME}/64k.bin"
        " || exit 10",
        f"curl -sS -6 --max-time 30 -o {d}/body6 http://{T.ORIGIN_NAME}/ || exit 11",
        f"dig +short +time=5 +tries=1 {T.ORIGIN_NAME} A || exit 12",
        f"ping -n -c 1 -W 5 {B4} >/dev/null || exit 13",
        F.probe_cmd("udp", O4, 7),
    ])
    r.res = cf.run("-c", r.out, "-C", "both", "--", "sh", "-c", script)
    r.child = os.path.join(d, "run.child.pcapng")
    r.egress = os.path.join(d, "run.egress.pcapng")
    with open(os.path.join(d, "hdr"), "rb") as f:
        r.hdr = f.read()
    with open(os.path.join(d, "body"), "rb") as f:
        r.body = f.read()
    return r


@pytest.mark.core
def test_both_writes_name_child_and_name_egress_beside_the_given_name(both):
    assert both.res.rc == 0, str(both.res)
    assert both.res.out.splitlines()[-1] == "error ECONNREFUSED", str(both.res)
    assert sorted(os.listdir(both.dir)) == ["body", "body6", "hdr", "run.child.pcapng",
                                            "run.egress.pcapng"]
    for path in (both.child, both.egress):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


@pytest.mark.core
def test_each_file_records_view_backend_kind_and_interface(both):
    info, c = comments(both.egress)
    assert "view=egress" in c and "backend=rootless-internal" in c, info
    assert "kind=engine-synthesized from childflow's host sockets" in c, info
    assert "Name = egress" in info and "Raw IP" in info, info
    assert "Description = childflow egress view" in info, info
    info, c = comments(both.child)
    assert "view=child" in c and "backend=rootless-internal" in c, info
    assert any(x.startswith("kind=") for x in c), info


@pytest.mark.core
def test_egress_shows_host_addresses_and_real_peers_never_the_tree(both):
    pairs = ends(both.egress)
    assert pairs, "empty egress capture"
    for src, dst in pairs:
        assert src not in TREE_ADDRS and dst not in TREE_ADDRS, (src, dst)
    assert peers_of(pairs, {HOST4, HOST6}) == {T.DNS_A_V4, O4, O6, B4}
    # the child view of the same run has the tree's own addresses
    assert {F.TREE_V4, F.TREE_V6} <= {a for p in ends(both.child) for a in p}


@pytest.mark.core
def test_egress_tcp_stream_reassembles_to_what_curl_received(both):
    stream = stream_of(both.egress, f"ip.dst == {O4} && tcp.dstport == 80 && tcp.flags.syn == 1")
    client, server = F.follow_tcp_raw(both.egress, stream)
    assert client.startswith(b"GET /64k.bin HTTP/1.1\r\n"), client[:200]
    assert server == both.hdr + both.body, (len(server), len(both.hdr) + len(both.body))


@pytest.mark.core
def test_egress_tcp_handshakes_use_the_host_sockets_ports(both):
    syns = F.tshark_fields(both.egress, ["tcp.stream", "tcp.flags.ack", "ip.src", "ipv6.src",
                                         "tcp.srcport", "tcp.dstport"], "tcp.flags.syn == 1")
    streams = {}
    for stream, ack, s4, s6, sport, dport in syns:
        streams.setdefault(stream, []).append((ack in ("1", "True"), s4 or s6, sport, dport))
    assert len(streams) == 2, streams          # curl -4 and curl -6
    for pkts in streams.values():
        (syn,) = [p for p in pkts if not p[0]]
        (synack,) = [p for p in pkts if p[0]]
        assert syn[1] in (HOST4, HOST6) and syn[3] == "80", pkts
        assert synack[2:] == (syn[3], syn[2]), pkts
        assert int(syn[2]) >= 1024, pkts       # an ephemeral port of the host, not the tree's


def test_egress_datagrams_are_the_host_sockets(both):
    dns = F.tshark_fields(both.egress, ["dns.qry.name", "ip.src", "ip.dst"], "dns")
    assert dns and all(r[0] == T.ORIGIN_NAME for r in dns), dns
    assert {(r[1], r[2]) for r in dns} == {(HOST4, T.DNS_A_V4), (T.DNS_A_V4, HOST4)}, dns
    echo = F.tshark_fields(both.egress, ["icmp.type", "ip.src", "ip.dst"],
                           "icmp.type == 8 || icmp.type == 0")
    assert sorted(tuple(r) for r in echo) == [("0", B4, HOST4), ("8", HOST4, B4)], echo
    udp = ends(both.egress, "udp.dstport == 7 && !icmp")
    assert udp == [(HOST4, O4)], udp
    unreach = ends(both.egress, "icmp.type == 3")
    assert unreach == [(O4, HOST4)], unreach


@pytest.mark.core
def test_egress_file_reads_without_warnings_and_correct_checksums(both):
    assert_reads_cleanly(both.egress)


# --- fragments on tun0 ----------------------------------------------------------------------

# One UDP round trip of SIZE random bytes to ADDR PORT; prints "echoed SIZE".
UDP_ROUND_TRIP = r"""
import os, socket, sys
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(20)
s.connect((addr, port))
data = os.urandom(size)
s.send(data)
got = s.recv(65536)
print(f"echoed {len(got)}" if got == data else f"different reply of {len(got)} bytes")
"""


def test_child_view_of_ipv6_datagrams_fragmented_on_tun0_reads_cleanly(childflow, userdir):
    """A 65,507-byte UDP datagram each way does not fit tun0's MTU as one IPv6
    packet: the tree's kernel fragments the request, the engine the reply.
    The child view holds the two fragments of each, and tshark puts each pair
    back together into the whole datagram, checksums checked, without a
    warning."""
    out = os.path.join(userdir, "fragments.pcapng")
    res = childflow.run("-c", out, "--", T.PYTHON, "-c", UDP_ROUND_TRIP, T.FAR_V6,
                        str(T.UDP_ECHO_PORT), "65507")
    assert res.rc == 0 and res.out.strip() == "echoed 65507", str(res)
    frags = [(src, offset, {"True": "1", "False": "0"}.get(more, more), plen)
             for src, offset, more, plen in F.tshark_fields(
                 out, ["ipv6.src", "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.plen"],
                 "ipv6.fraghdr")]
    # 65,515 bytes of UDP: 65,480 (the most that fits, a multiple of 8) + 35;
    # the offset in 8-byte units
    assert sorted(frags) == sorted([
        (F.TREE_V6, "0", "1", "65488"), (F.TREE_V6, "8185", "0", "43"),
        (T.FAR_V6, "0", "1", "65488"), (T.FAR_V6, "8185", "0", "43")]), frags
    whole = F.tshark_fields(out, ["ipv6.src", "udp.length", "ipv6.fragment.count"],
                            "udp.length == 65515")
    assert sorted(map(tuple, whole)) == sorted([(F.TREE_V6, "65515", "2"),
                                                (T.FAR_V6, "65515", "2")]), whole
    assert_reads_cleanly(out)


# --- with a proxy --------------------------------------------------------------------------


def run_egress(childflow, userdir, *options, script):
    out = os.path.join(userdir, f"egress-{support.new_token()}.pcapng")
    res = childflow.run("-c", out, "-C", "egress", *options, "--", "sh", "-c", script)
    assert res.rc == 0, str(res)
    return out


@pytest.mark.core
def test_egress_with_http_proxy_shows_the_proxy_as_peer_and_the_connect(
        proxy_world, tinyproxy, childflow, userdir):
    d = userdir
    out = run_egress(childflow, d, "-p", tinyproxy.url, script=(
        f"curl -sS -D {d}/hdr -o {d}/body http://{T.ORIGIN_NAME}/64k.bin"))
    tcp = ends(out, "tcp")
    assert set(tcp) == {(HOST4, tinyproxy.host), (tinyproxy.host, HOST4)}, set(tcp)
    assert not [p for p in ends(out) if O4 in p or O6 in p]
    client, server = F.follow_tcp_raw(out, stream_of(out, "tcp.flags.syn == 1"))
    assert client.startswith(f"CONNECT {T.ORIGIN_NAME}:80 HTTP/1.1\r\n".encode()), client[:200]
    request = client[client.index(b"\r\n\r\n") + 4:]
    assert request.startswith(b"GET /64k.bin HTTP/1.1\r\n"), client[:400]
    with open(os.path.join(d, "hdr"), "rb") as f, open(os.path.join(d, "body"), "rb") as g:
        received = f.read() + g.read()
    reply, tunnel = server.split(b"\r\n\r\n", 1)
    assert reply.split(b" ")[1] == b"200", server[:200]
    assert tunnel == received, (len(tunnel), len(received))
    assert_reads_cleanly(out)


def test_egress_with_socks5_proxy_has_the_socks_handshake_before_the_request(
        proxy_world, microsocks, childflow, userdir):
    out = run_egress(childflow, userdir, "-p", microsocks.url, "-U", SOCKS_USER,
                     "-P", SOCKS_PASSWORD, script=f"curl -sS -o /dev/null http://{O4}/")
    assert set(ends(out, "tcp")) == {(HOST4, microsocks.host), (microsocks.host, HOST4)}
    client, server = F.follow_tcp_raw(out, stream_of(out, "tcp.flags.syn == 1"))
    # greeting (no auth or user/password), RFC 1929 credentials, CONNECT 198.51.100.10:80
    hs = (b"\x05\x02\x00\x02" + b"\x01\x05alice\x06s3cret"
          + b"\x05\x01\x00\x01" + bytes([198, 51, 100, 10]) + b"\x00\x50")
    assert client.startswith(hs + b"GET / HTTP/1.1\r\n"), client[:60]
    assert server.startswith(b"\x05\x02\x01\x00\x05\x00"), server[:20]
    assert b"HTTP/1.1 200 OK\r\n" in server, server[:200]


def test_egress_with_https_proxy_says_it_records_the_plaintext_tunnel(
        proxy_world, stunnel, childflow, userdir):
    out = run_egress(childflow, userdir, "-p", stunnel.url, "--proxy-insecure",
                     script=f"curl -sS -o /dev/null http://{T.ORIGIN_NAME}/")
    info, c = comments(out)
    assert any("https:// proxy: the TLS layer to the proxy is not recorded" in x for x in c), info
    assert set(ends(out, "tcp")) == {(HOST4, stunnel.host), (stunnel.host, HOST4)}
    client, _ = F.follow_tcp_raw(out, stream_of(out, "tcp.flags.syn == 1"))
    assert client.startswith(b"CONNECT "), client[:200]


# --- wire-egress ---------------------------------------------------------------------------


@pytest.mark.core
def test_wire_egress_without_capture_privilege_fails_before_the_run(childflow, userdir):
    out = os.path.join(userdir, "wire.pcapng")
    marker = os.path.join(userdir, "ran")
    res = childflow.run("-c", out, "-C", "wire-egress", "--", "touch", marker)
    assert res.rc == 124, str(res)
    assert F.stderr_lines(res) == [f"childflow: {NOT_ROOT_MSG}"], str(res)
    assert os.listdir(userdir) == [], "something was created or the command ran"


def test_doctor_says_whether_wire_egress_is_available(childflow):
    res = childflow.run("--doctor")
    (line,) = [ln for ln in res.out.splitlines() if " capture " in f" {ln} "]
    assert "wire-egress view: needs CAP_NET_RAW on the host" in line, res.out


class HostTraffic(threading.Thread):
    """Root in the host namespace fetching from the same origin in a loop."""

    def __init__(self, topo, token):
        super().__init__(daemon=True)
        self.topo, self.token = topo, token
        self.stop = threading.Event()
        self.rounds = 0

    def run(self):
        while not self.stop.is_set():
            self.topo.run_host_root(["curl", "-sS", "-4", "--max-time", "10", "-o", "/dev/null",
                                     f"http://{O4}/64k.bin?host={self.token}"], timeout=30)
            self.rounds += 1


def test_wire_egress_as_root_holds_the_trees_flows_and_nothing_else(topo, childflow_bin):
    d = topo.make_user_dir("test_capture_views-wire")
    os.chown(d, 0, 0)  # --user root: the tree runs as root without capabilities, the owner here
    out = os.path.join(d, "wire.pcapng")
    tree = support.new_token()
    script = "\n".join([
        f"curl -sS -4 --max-time 30 -D {d}/hdr -o {d}/body "
        f"'http://{T.ORIGIN_NAME}/64k.bin?tree={tree}' || exit 10",
        f"ping -n -c 1 -W 5 {B4} >/dev/null || exit 11",
    ])
    host = HostTraffic(topo, support.new_token())
    host.start()
    try:
        support.wait_for(lambda: host.rounds >= 1, timeout=60)
        res = topo.run_host_root([childflow_bin, "--dns", T.DNS_A_V4, "-c", out,
                                  "-C", "wire-egress", "--user", "root", "--", "sh", "-c",
                                  script], timeout=60)
        rounds = host.rounds
    finally:
        host.stop.set()
        host.join(timeout=60)
    assert res.rc == 0, str(res)
    assert rounds >= 2
    info, c = comments(out)
    assert "view=wire-egress" in c and "backend=rootless-internal" in c, info
    assert any(x.startswith("kind=host packet socket") for x in c), info
    assert "Name = " in info and "Description = childflow wire-egress view" in info, info
    assert F.tshark_fields(out, ["frame.number"], 'http.request.uri contains "host="') == []
    assert len(F.tshark_fields(out, ["frame.number"],
                               f'http.request.uri contains "tree={tree}"')) == 1
    pairs = ends(out)
    assert peers_of(pairs, {HOST4, HOST6}) == {T.DNS_A_V4, O4, B4}, set(pairs)
    stream = stream_of(out, f"ip.dst == {O4} && tcp.dstport == 80 && tcp.flags.syn == 1")
    _, server = F.follow_tcp_raw(out, stream)
    with open(os.path.join(d, "hdr"), "rb") as f, open(os.path.join(d, "body"), "rb") as g:
        assert server == f.read() + g.read()
    # TCP and UDP checksums of packets the host sends (and of what the veth peer
    # sends) are left to "offload": a packet socket sees them unfilled, as tcpdump does
    assert_reads_cleanly(out, l4_checksums=False)


# --- files ---------------------------------------------------------------------------------


@pytest.mark.core
@pytest.mark.parametrize("view,existing", [("egress", "out.pcapng"),
                                           ("both", "out.egress.pcapng"),
                                           ("both", "out.child.pcapng")])
def test_an_existing_file_is_refused_and_nothing_runs(topo, childflow, userdir, view, existing):
    keep = F.write_user_file(topo, os.path.join(userdir, existing), "precious\n")
    marker = os.path.join(userdir, "ran")
    res = childflow.run("-c", os.path.join(userdir, "out.pcapng"), "-C", view, "--",
                        "touch", marker)
    assert res.rc == 125, str(res)
    (msg,) = F.stderr_lines(res)
    assert keep in msg and "already exists" in msg, str(res)
    with open(keep) as f:
        assert f.read() == "precious\n"
    assert os.listdir(userdir) == [existing], "a capture file was left behind or the command ran"


def test_both_derives_name_from_out_without_pcapng(childflow, userdir):
    res = childflow.run("-c", os.path.join(userdir, "trace"), "-C", "both", "--", "true")
    assert res.rc == 0, str(res)
    assert sorted(os.listdir(userdir)) == ["trace.child.pcapng", "trace.egress.pcapng"]


@pytest.mark.core
def test_sigterm_leaves_a_complete_egress_file(childflow, userdir):
    out = os.path.join(userdir, "term.pcapng")
    done = os.path.join(userdir, "fetched")
    p = childflow.spawn("-c", out, "-C", "egress", "--", "sh", "-c",
                        f"curl -sS -o {userdir}/body http://{T.ORIGIN_NAME}/64k.bin && "
                        f"touch {done} && sleep 60")
    assert support.wait_for(lambda: os.path.exists(done) or p.poll() is not None, 60)
    os.kill(p.pid, signal.SIGTERM)
    res = childflow.finish(p, timeout=30)
    assert res.rc == 128 + signal.SIGTERM, str(res)
    _, server = F.follow_tcp_raw(out, stream_of(out, "tcp.flags.syn == 1"))
    with open(os.path.join(userdir, "body"), "rb") as f:
        assert server.endswith(f.read())
    assert_reads_cleanly(out)
