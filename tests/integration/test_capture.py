"""--capture (docs/capture.md), child view: the pcapng holds the command
tree's packets and only those, as the tree saw them (its own addresses),
while the host namespace talks to the same servers at the same time; TCP
handshakes appear once, the HTTP response reassembles to exactly what curl
received, and the file says what it is (view, backend).  An existing output
file or a symlink is never written through, and the other capture points are
never silently replaced by the child view."""

import os
import re
import stat
import subprocess
import threading

import pytest

import conftest
import featurelib as F
import support
import topology as T

O4, O6, B4, B6 = T.ORIGIN_V4, T.ORIGIN_V6, T.ORIGIN_B_V4, T.ORIGIN_B_V6
HOST_ADDRS = (T.HOST_V4, T.HOST_V6, T.WORLD_V4, T.WORLD_V6)
TREE_PEERS = {F.RESOLVER_V4, F.RESOLVER_V6, O4, O6, B4, B6}


class HostTraffic(threading.Thread):
    """Root in the host namespace (outside any sandbox) fetching from the
    same origin, asking the same resolver and pinging the same peer, in a
    loop until stopped.  Counts rounds; every command must succeed."""

    def __init__(self, topo, token):
        super().__init__(daemon=True)
        self.topo = topo
        self.commands = [
            ["curl", "-sS", "-4", "--max-time", "10", "-o", "/dev/null",
             f"http://{O4}/64k.bin?host={token}"],
            ["curl", "-sS", "-6", "--max-time", "10", "-o", "/dev/null",
             f"http://[{O6}]/?host={token}"],
            F.dig("+short", f"@{T.DNS_A_V4}", T.ORIGIN_NAME, "A"),
            ["ping", "-n", "-c", "1", "-W", "5", B4],
            ["ping", "-6", "-n", "-c", "1", "-W", "5", B6],
        ]
        self.stop = threading.Event()
        self.rounds = 0
        self.failures = []

    def run(self):
        while not self.stop.is_set():
            for argv in self.commands:
                res = self.topo.run_host_root(argv, timeout=30)
                if res.rc != 0:
                    self.failures.append(str(res))
            self.rounds += 1


class Capture:
    pass


@pytest.fixture(scope="module")
def cap(topo, childflow_bin):
    """One capture of a tree that fetches a page by name over v4 and v6,
    resolves a name at both virtual resolvers, pings v4 and v6 and sends UDP
    v4 and v6, while the host namespace generates the same kinds of traffic to
    the same servers."""
    cf = conftest.Childflow(topo, childflow_bin)
    d = topo.make_user_dir("test_capture-run")
    c = Capture()
    c.dir = d
    c.out = os.path.join(d, "run.pcapng")
    started, go = os.path.join(d, "tree-started"), os.path.join(d, "go")
    script = "\n".join([
        f"curl -sS -4 --max-time 30 -D {d}/hdr -o {d}/body http://{T.ORIGIN_NAME}/64k.bin"
        " || exit 10",
        f"touch {started}",
        # wait (bounded) until the harness has run host traffic meanwhile
        f"i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done",
        f"dig +short +time=5 +tries=1 @{F.RESOLVER_V6} {T.ORIGIN_NAME} AAAA || exit 11",
        f"curl -sS -6 --max-time 30 -o {d}/body6 http://{T.ORIGIN_NAME}/ || exit 12",
        f"ping -n -c 1 -W 5 {B4} >/dev/null || exit 13",
        f"ping -6 -n -c 1 -W 5 {B6} >/dev/null || exit 14",
        F.probe_cmd("udp", O4, 7),
        F.probe_cmd("udp", O6, 7),
    ])
    host = HostTraffic(topo, support.new_token())
    host.start()
    try:
        support.wait_for(lambda: host.rounds >= 1, timeout=60)
        proc = cf.spawn("-c", c.out, "--", "sh", "-c", script)
        support.wait_for(lambda: os.path.exists(started) or proc.poll() is not None, timeout=60)
        first = host.rounds
        support.wait_for(lambda: host.rounds >= first + 2 or proc.poll() is not None,
                         timeout=60)
        c.host_rounds_during = host.rounds - first
        with open(go, "w"):
            pass
        c.res = cf.finish(proc)
    finally:
        host.stop.set()
        host.join(timeout=120)
    c.host_failures = host.failures
    with open(os.path.join(d, "hdr"), "rb") as f:
        c.hdr = f.read()
    with open(os.path.join(d, "body"), "rb") as f:
        c.body = f.read()
    c.rows = F.tshark_fields(c.out, ["frame.number", "frame.packet_flags_direction", "ip.src",
                                     "ip.dst", "ipv6.src", "ipv6.dst"])
    return c


def test_tree_ran_while_the_host_talked_to_the_same_servers(cap):
    assert cap.res.rc == 0, str(cap.res)
    assert cap.res.out.splitlines() == [O6, "error ECONNREFUSED", "error ECONNREFUSED"], \
        str(cap.res)
    assert cap.host_rounds_during >= 2
    assert cap.host_failures == []
    assert len(cap.body) == 65536


def test_capture_is_pcapng_mode_0600_with_view_and_backend_comments(cap):
    assert stat.S_IMODE(os.stat(cap.out).st_mode) == 0o600
    info = F.capinfos(cap.out)
    assert "pcapng" in info, info
    comments = [ln.split(":", 1)[1].strip() for ln in info.splitlines()
                if ln.startswith("Capture comment:")]
    assert "view=child" in comments and "backend=rootless-internal" in comments, info
    assert any(c.startswith("kind=") for c in comments), info
    assert "Raw IP" in info, info


@pytest.mark.core
def test_every_packet_is_the_trees_own(cap):
    assert cap.rows, "empty capture"
    peers = set()
    for num, _direction, s4, d4, s6, d6 in cap.rows:
        src, dst = (s4, d4) if s4 else (s6, d6)
        assert F.TREE_V4 in (src, dst) or F.TREE_V6 in (src, dst), (num, src, dst)
        peers.add(dst if src in (F.TREE_V4, F.TREE_V6) else src)
    assert peers == TREE_PEERS, peers


@pytest.mark.core
def test_no_host_namespace_packet_is_in_the_capture(cap):
    flt = " || ".join(f"ip.addr == {a}" if ":" not in a else f"ipv6.addr == {a}"
                      for a in HOST_ADDRS)
    assert F.tshark_fields(cap.out, ["frame.number"], flt) == []
    # the host's own requests carried ?host=TOKEN; none of them is here
    assert F.tshark_fields(cap.out, ["frame.number"], 'http.request.uri contains "host="') == []


def test_direction_flags_agree_with_the_addresses(cap):
    for num, direction, s4, d4, s6, d6 in cap.rows:
        if not direction:
            continue
        src = s4 or s6
        want = 0x2 if src in (F.TREE_V4, F.TREE_V6) else 0x1
        assert int(direction, 16) & 0x3 == want, (num, direction, src)


@pytest.mark.core
def test_each_tcp_handshake_appears_once(cap):
    rows = F.tshark_fields(cap.out, ["tcp.stream", "tcp.flags.syn", "tcp.flags.ack",
                                     "ip.src", "ipv6.src"], "tcp.flags.syn == 1")
    streams = {}
    for stream, _syn, ack, s4, s6 in rows:
        streams.setdefault(stream, []).append(("syn-ack" if ack in ("1", "True") else "syn",
                                               s4 or s6))
    assert len(streams) == 2, streams       # curl -4 and curl -6
    for stream, pkts in streams.items():
        assert sorted(p[0] for p in pkts) == ["syn", "syn-ack"], (stream, pkts)
        assert dict(pkts)["syn"] in (F.TREE_V4, F.TREE_V6), (stream, pkts)
    retrans = F.tshark_fields(cap.out, ["frame.number"], "tcp.analysis.retransmission "
                              "|| tcp.analysis.duplicate_ack")
    assert retrans == [], "a packet is in the capture twice"


@pytest.mark.core
def test_http_response_reassembles_to_what_curl_received(cap):
    (stream,) = F.tshark_fields(cap.out, ["tcp.stream"],
                                f"ip.dst == {O4} && tcp.dstport == 80 && tcp.flags.syn == 1")
    client, server = F.follow_tcp_raw(cap.out, stream[0])
    assert client.startswith(b"GET /64k.bin HTTP/1.1\r\n"), client[:200]
    assert server == cap.hdr + cap.body, (len(server), len(cap.hdr) + len(cap.body))


def test_dns_icmp_and_udp_of_the_tree_are_captured_once_each(cap):
    dns = F.tshark_fields(cap.out, ["dns.qry.name", "dns.flags.response", "ip.dst", "ipv6.dst"],
                          "dns")
    assert all(r[0] == T.ORIGIN_NAME for r in dns), dns
    assert any(r[3] == F.RESOLVER_V6 for r in dns), dns     # the dig at the v6 resolver
    echo = F.tshark_fields(cap.out, ["icmp.type", "icmpv6.type", "ip.src", "ipv6.src"],
                           "icmp.type == 8 || icmp.type == 0 || icmpv6.type == 128 "
                           "|| icmpv6.type == 129")
    assert sorted(tuple(r) for r in echo) == sorted([
        ("8", "", F.TREE_V4, ""), ("0", "", B4, ""),
        ("", "128", "", F.TREE_V6), ("", "129", "", B6)]), echo
    udp = F.tshark_fields(cap.out, ["ip.dst", "ipv6.dst"], "udp.dstport == 7 && !icmp && !icmpv6")
    assert sorted(r[0] or r[1] for r in udp) == sorted([O4, O6]), udp
    unreach = F.tshark_fields(cap.out, ["ip.src", "ipv6.src"],
                              "icmp.type == 3 || icmpv6.type == 1")
    assert sorted(r[0] or r[1] for r in unreach) == sorted([O4, O6]), unreach


def test_tshark_reads_the_capture_without_complaint(cap):
    # TCP checksums are not checked: TCP after the SYN travels the sandbox's
    # lo, where Linux leaves checksums to "offload" (CHECKSUM_PARTIAL), so a
    # packet socket on lo sees them unfilled, as tcpdump on any lo does.
    p = subprocess.run(["tshark", "-n", "-r", cap.out, "-o", "ip.check_checksum:TRUE",
                        "-o", "udp.check_checksum:TRUE",
                        "-Y", "_ws.expert.severity >= warning || _ws.malformed"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert F.tshark_notices(p.stderr) == [], p.stderr
    assert p.stdout == "", p.stdout


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.core
def test_existing_output_file_is_refused_and_left_untouched(topo, childflow, userdir):
    out = F.write_user_file(topo, os.path.join(userdir, "keep.pcapng"), "precious\n", 0o644)
    before = os.stat(out)
    marker = os.path.join(userdir, "ran")
    res = childflow.run("-c", out, "--", "touch", marker)
    assert res.rc == 125, str(res)
    (msg,) = F.stderr_lines(res)
    assert out in msg, str(res)
    with open(out) as f:
        assert f.read() == "precious\n"
    after = os.stat(out)
    assert (after.st_mode, after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_mode, before.st_size, before.st_mtime_ns, before.st_ino)
    assert not os.path.exists(marker), "the command ran"


def test_symlink_at_output_path_is_refused_and_not_followed(topo, childflow, userdir):
    target = os.path.join(userdir, "elsewhere.pcapng")
    link = os.path.join(userdir, "link.pcapng")
    os.symlink(target, link)
    os.lchown(link, topo.state["uid"], topo.state["gid"])
    res = childflow.run("-c", link, "--", "true")
    assert res.rc == 125, str(res)
    assert not os.path.exists(target), "childflow followed the symlink"
    assert os.path.islink(link)


@pytest.mark.core
@pytest.mark.parametrize("view", ["egress", "wire-egress", "both"])
def test_capture_point_other_than_child_is_refused_or_honoured_never_ignored(childflow, userdir,
                                                                             view):
    # These views were "not supported yet" (exit 125) and are being built
    # now; whichever state a build is in, a view is never silently replaced
    # by another: refused before anything runs (125 "not supported yet", or
    # 124 when this host cannot capture there), or written as asked.
    out = os.path.join(userdir, "run.pcapng")
    marker = os.path.join(userdir, "ran")
    res = childflow.run("-c", out, "-C", view, "--", "touch", marker)
    if res.rc in (124, 125):
        msg = " ".join(F.stderr_lines(res))
        assert "not supported yet" in msg if res.rc == 125 else view in msg, str(res)
        assert os.listdir(userdir) == [], "something was created or ran"
        return
    assert res.rc == 0, str(res)
    assert os.path.exists(marker)
    if view == "both":
        assert not os.path.exists(out), "both writes NAME.child.pcapng and NAME.egress.pcapng"
        files = {"child": os.path.join(userdir, "run.child.pcapng"),
                 "egress": os.path.join(userdir, "run.egress.pcapng")}
    else:
        files = {view: out}
    for want, path in files.items():
        comments = [ln.split(":", 1)[1].strip() for ln in F.capinfos(path).splitlines()
                    if ln.startswith("Capture comment:")]
        assert f"view={want}" in comments, (path, comments)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_capture_point_child_is_accepted(childflow, userdir):
    out = os.path.join(userdir, "run.pcapng")
    res = childflow.run("-c", out, "-C", "child", "--", "true")
    assert res.rc == 0, str(res)
    assert "view=child" in F.capinfos(out)


def test_capture_of_a_quiet_tree_is_a_valid_empty_capture(childflow, userdir):
    out = os.path.join(userdir, "quiet.pcapng")
    res = childflow.run("-c", out, "--", "true")
    assert res.rc == 0, str(res)
    info = F.capinfos(out)
    assert "Number of packets:   0" in info, info


def test_capture_of_a_400mib_download_misses_no_packet(topo, childflow, userdir):
    """The ring and the relays' turns keep up with bulk traffic
    (docs/capture.md): the kernel drops nothing, so every byte is there."""
    out = os.path.join(userdir, "big.pcapng")
    url = f"http://{T.ORIGIN_NAME}/big"
    res = childflow.run("-c", out, "--", "sh", "-c",
                        f"curl -sS --max-time 120 -o /dev/null -o /dev/null -o /dev/null "
                        f"-o /dev/null {url} {url} {url} {url}",
                        timeout=180)
    assert res.rc == 0, str(res)
    assert "dropped" not in res.err, res.err
    # payload of the origin's segments towards the tree, summed by tshark
    p = subprocess.run(["tshark", "-n", "-r", out, "-q", "-z",
                        "io,stat,0,SUM(tcp.len)tcp.len && tcp.srcport == 80"],
                       capture_output=True, text=True, timeout=300)
    os.unlink(out)
    assert p.returncode == 0, p.stderr
    sums = [int(x) for x in re.findall(r"<>\s*[\d.]+\s*\|\s*(\d+)\s*\|", p.stdout)]
    assert sums and sums[-1] >= 4 * T.BIG_SIZE, p.stdout
