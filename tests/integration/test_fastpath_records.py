"""Records of switched sockets (--tcp-path auto, issue 18): a run with a flow
log or a summary switches too, and a switched flow's flow_end carries the
bytes the kernel counted on its host socket (engine/sockend.c): the same
numbers the relay path writes for the same transfer, both ways, v4 and v6.
connect_result's "path" tells the paths apart ("socket" / "relay")."""

import contextlib
import json
import os
import subprocess

import pytest

import support
import topology as T

pytestmark = pytest.mark.core

# ADDR PORT SEND MODE: connect, send SEND bytes, then MODE "shut" (half-close,
# read until EOF, close), "close" (close at once, the discard service reads
# until EOF) or "die" (read SEND bytes back, then SIGKILL itself with the
# connection open). Prints what it read.
CLIENT = r"""
import os, signal, socket, sys
addr, port, size, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.create_connection((addr, port), timeout=20)
s.sendall(os.urandom(size))
got = 0
if mode == "shut":
    s.shutdown(socket.SHUT_WR)
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
elif mode == "die":
    while got < size:
        got += len(s.recv(65536))
    print("read", got, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
s.close()
print("read", got)
"""

# ADDR N: N connections to the echo service one after another, 10 bytes each way.
MANY = r"""
import socket, sys
for i in range(int(sys.argv[2])):
    s = socket.create_connection((sys.argv[1], 7), timeout=20)
    s.sendall(b"0123456789")
    got = b""
    while len(got) < 10:
        got += s.recv(10)
    s.close()
print("done")
"""


# A peer that accepts and then neither reads nor closes until it is stopped.
SILENT_PORT = 8099
SILENT = r"""
import socket, sys, time
held = []
for addr, fam in ((sys.argv[1], socket.AF_INET), (sys.argv[2], socket.AF_INET6)):
    ls = socket.socket(fam)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(sys.argv[3])))
    ls.listen(16)
    held.append(ls)
while True:
    time.sleep(3600)
"""


@pytest.fixture
def silent_peer(topo):
    """SILENT_PORT on the origin's addresses in the world, for one test."""
    out = open(os.path.join(topo.run_dir, "logs", "silent-peer.out"), "ab")
    p = None
    try:
        p = subprocess.Popen(["ip", "netns", "exec", topo.world_ns, T.PYTHON, "-c", SILENT,
                              T.ORIGIN_V4, T.ORIGIN_V6, str(SILENT_PORT)],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
        assert support.wait_for(lambda: f":{SILENT_PORT} " in topo.run_world(
            ["ss", "-Hltn"]).out), "the silent peer did not start"
        yield SILENT_PORT
    finally:
        out.close()
        if p is not None:
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)


REJECT_PORT = 82


@pytest.fixture
def rejecting_port(topo):
    """REJECT_PORT on the origin answers a SYN with ICMP host unreachable (an
    nft table in the world, for one test)."""
    w = topo.world_ns
    nft = ("table inet cft_sockend_reject {\n"
           "\tchain input {\n"
           "\t\ttype filter hook input priority filter; policy accept;\n"
           f"\t\ttcp dport {REJECT_PORT} reject with icmpx type host-unreachable\n"
           "\t}\n"
           "}\n")
    T.sh(["ip", "netns", "exec", w, "nft", "-f", "-"], input=nft)
    try:
        yield REJECT_PORT
    finally:
        T.sh(["ip", "netns", "exec", w, "nft", "delete", "table", "inet",
              "cft_sockend_reject"], check=False)


def _events(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _tcp_flows(events, port):
    """{flow id: {event name: event}} for the TCP connections to @port."""
    flows = {}
    for ev in events:
        if ev.get("event") in ("connect_attempt", "connect_result", "flow_end") and \
                ev.get("remote_port") == port:
            flows.setdefault(ev["flow_id"], {})[ev["event"]] = ev
    return flows


def _logged_run(childflow, topo, path, argv, name):
    log = os.path.join(topo.make_user_dir(f"test_fastpath_records-{name}"), "flows.jsonl")
    res = childflow.run("--tcp-path", path, "--flow-log", log, "--", *argv, timeout=60)
    return res, _events(log)


def _one_flow(events, port):
    flows = _tcp_flows(events, port)
    assert len(flows) == 1, flows
    return next(iter(flows.values()))


def _both_paths(childflow, topo, argv, port, name):
    """The one TCP flow to @port of @argv, switched and relayed."""
    got = {}
    for path in ("auto", "relay"):
        res, events = _logged_run(childflow, topo, path, argv, f"{name}-{path}")
        assert res.rc == 0, str(res)
        flow = _one_flow(events, port)
        assert set(flow) == {"connect_attempt", "connect_result", "flow_end"}, flow
        got[path] = flow
    assert got["auto"]["connect_result"]["path"] == "socket", got["auto"]
    assert got["relay"]["connect_result"]["path"] == "relay", got["relay"]
    return got


def _bytes(flow):
    return flow["flow_end"]["bytes_sent"], flow["flow_end"]["bytes_received"]


@pytest.mark.parametrize("addr", [T.ORIGIN_V4, T.ORIGIN_V6], ids=["ipv4", "ipv6"])
def test_a_switched_download_ends_with_the_relays_bytes(childflow, topo, addr):
    host = addr if ":" not in addr else f"[{addr}]"
    argv = ("curl", "-sS", "-o", "/dev/null", "--max-time", "20", f"http://{host}/64k.bin")
    got = _both_paths(childflow, topo, argv, T.HTTP_PORT, "download")
    sent, received = _bytes(got["auto"])
    assert received > topo.files["64k.bin"]["size"] > sent > 0, got["auto"]
    assert _bytes(got["auto"]) == _bytes(got["relay"]), got


@pytest.mark.parametrize("addr", [T.ORIGIN_V4, T.ORIGIN_V6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("port,mode,size", [(T.DISCARD_PORT, "close", 300000),
                                            (T.ECHO_PORT, "shut", 200000)],
                         ids=["discard", "echo"])
def test_a_switched_upload_ends_with_exact_bytes(childflow, topo, addr, port, mode, size):
    argv = ("/usr/bin/python3", "-c", CLIENT, addr, str(port), str(size), mode)
    got = _both_paths(childflow, topo, argv, port, f"upload-{port}")
    want = (size, size if port == T.ECHO_PORT else 0)
    assert _bytes(got["auto"]) == want == _bytes(got["relay"]), got


def test_a_switched_connection_open_when_the_tree_dies_gets_its_flow_end(childflow, topo):
    argv = ("/usr/bin/python3", "-c", CLIENT, T.ORIGIN_V4, str(T.ECHO_PORT), "1000", "die")
    res, events = _logged_run(childflow, topo, "auto", argv, "die")
    assert "read 1000" in res.out, str(res)
    flow = _one_flow(events, T.ECHO_PORT)
    assert flow["connect_result"]["path"] == "socket", flow
    assert "flow_end" in flow, flow
    assert _bytes(flow) == (1000, 1000), flow


@pytest.mark.parametrize("addr", [T.ORIGIN_V4, T.ORIGIN_V6], ids=["ipv4", "ipv6"])
def test_a_switched_connection_the_peer_keeps_open_ends_with_the_run(childflow, topo, addr,
                                                                       silent_peer):
    # The tree closes first and the peer never answers with its FIN: at the
    # run's end the host socket still waits in FIN_WAIT2 (a full socket: the
    # kernel has freed nothing yet), and the query by cookie gives the bytes.
    argv = ("/usr/bin/python3", "-c", CLIENT, addr, str(silent_peer), "10", "close")
    got = _both_paths(childflow, topo, argv, silent_peer, "silent")
    assert _bytes(got["auto"]) == (10, 0) == _bytes(got["relay"]), got


def _failed_connect(childflow, topo, addr, port, name):
    """curl's (non-blocking) connect to @addr:@port on both paths: the records
    must say the same error, and no flow_end follows."""
    host = addr if ":" not in addr else f"[{addr}]"
    argv = ("curl", "-sS", "--max-time", "20", f"http://{host}:{port}/")
    got = {}
    for path in ("auto", "relay"):
        res, events = _logged_run(childflow, topo, path, argv, f"{name}-{path}")
        assert res.rc == 7, str(res)  # curl: could not connect
        flow = _one_flow(events, port)
        assert set(flow) == {"connect_attempt", "connect_result"}, flow
        got[path] = flow["connect_result"]
    assert got["auto"]["path"] == "socket" and got["relay"]["path"] == "relay", got
    assert got["auto"]["status"] == got["relay"]["status"] == "error", got
    assert got["auto"]["error"] == got["relay"]["error"], got
    return got["auto"]["error"]


@pytest.mark.parametrize("addr", [T.ORIGIN_V4, T.ORIGIN_V6], ids=["ipv4", "ipv6"])
def test_a_refused_non_blocking_connect_is_recorded_as_on_the_relay(childflow, topo, addr):
    # The tree gets EINPROGRESS at once and the reset comes later: the record
    # says refused (without taking SO_ERROR from the tree), as the relay's does.
    assert _failed_connect(childflow, topo, addr, T.CLOSED_PORT, "refused") == \
        "Connection refused"


@pytest.mark.parametrize("addr", [T.ORIGIN_V4, T.ORIGIN_V6], ids=["ipv4", "ipv6"])
def test_an_icmp_error_to_a_non_blocking_connect_is_recorded_as_on_the_relay(
        childflow, topo, addr, rejecting_port):
    # The error is not read from the tree's socket (SO_ERROR would take it
    # from the tree): a failure with no reset before the SYN retries ran out
    # is host unreachable, which it is here.
    assert _failed_connect(childflow, topo, addr, rejecting_port, "rejected") == \
        "No route to host"


def test_many_short_switched_connections_all_end(childflow, topo):
    n = 200
    res, events = _logged_run(childflow, topo, "auto",
                              ("/usr/bin/python3", "-c", MANY, T.ORIGIN_V4, str(n)), "many")
    assert res.rc == 0 and "done" in res.out, str(res)
    flows = _tcp_flows(events, T.ECHO_PORT)
    assert len(flows) == n, len(flows)
    for flow in flows.values():
        assert flow["connect_result"]["path"] == "socket", flow
        assert "flow_end" in flow and _bytes(flow) == (10, 10), flow


def test_a_switched_flow_names_its_process(childflow, topo):
    argv = ("/usr/bin/python3", "-c", CLIENT, T.ORIGIN_V4, str(T.DISCARD_PORT), "10", "close")
    got = _both_paths(childflow, topo, argv, T.DISCARD_PORT, "attrib")
    for path, flow in got.items():
        for name in ("connect_attempt", "connect_result"):
            ev = flow[name]
            assert isinstance(ev["pid"], int) and ev["pid"] > 0, (path, ev)
            assert ev["comm"].startswith("python3"), (path, ev)
            assert ev["exe"].startswith("/usr/bin/python3"), (path, ev)

