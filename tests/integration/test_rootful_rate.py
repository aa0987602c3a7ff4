"""--rate-limit on the rootful backend (--root, issue 21): the engine carries
every packet of the tree then, as in the rootless backend, so its token
buckets hold the sum of TCP, UDP and ICMP, v4 and v6, to RATE each way.

The download and upload checks are the rootless ones (test_rate_limit.py):
behaviour checks with a wide band, which the issue asks for, not speed
benchmarks.  The rest think like a tree that wants more than RATE: a flood
of UDP or of ICMP echo (ping sockets), and a socket bound to the veth."""

import json
import os

import pytest

import flowlog_v1
import topology as T
from proxies import proxy_args, proxy_world  # noqa: F401  (fixtures are used by name)
from test_rate_limit import RATE, SIZE, UDP_FLOOD, UPLOAD

CURL = ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-r", f"0-{SIZE - 1}",
        "-w", "%{size_download} %{time_total}"]

ORIGIN = {"v4": T.ORIGIN_V4, "v6": T.ORIGIN_V6}
FAR = {"v4": T.FAR_V4, "v6": T.FAR_V6}

# COUNT echo requests of 1400 bytes through an unprivileged ICMP socket, as
# fast as it takes them, then wait a little for replies: "sent N echoed M".
PING_FLOOD = r"""
import socket, sys, time
v6 = ":" in sys.argv[1]
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM,
                  socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
s.connect((sys.argv[1], 0))
s.setblocking(False)
n = int(sys.argv[2])
sent = echoed = 0
for i in range(n):
    try:
        s.send(bytes([128 if v6 else 8, 0, 0, 0, 0, 0, i >> 8 & 255, i & 255]) + b"p" * 1400)
        sent += 1
    except BlockingIOError:
        time.sleep(0.001)
end = time.monotonic() + 2
while time.monotonic() < end:
    try:
        s.recv(2000)
        echoed += 1
    except BlockingIOError:
        time.sleep(0.01)
print(f"sent {sent} echoed {echoed}")
"""

# test_rate_limit.py's UDP flood, for either family: "sent N echoed M".
UDP_FLOOD = UDP_FLOOD.replace("socket.socket(socket.AF_INET,", "socket.socket(socket.AF_INET6 "
                              "if ':' in sys.argv[1] else socket.AF_INET,")
assert "AF_INET6" in UDP_FLOOD

# The tree's way around a route: a UDP socket bound to the veth
# (SO_BINDTODEVICE needs no privilege on an unbound socket) sends COUNT
# datagrams of 1400 bytes: "sent N refused R echoed M".
BOUND_FLOOD = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.connect((sys.argv[1], int(sys.argv[2])))
s.setblocking(False)
sent = refused = echoed = 0
for i in range(int(sys.argv[3])):
    try:
        s.send(b"x" * 1400)
        sent += 1
    except BlockingIOError:
        time.sleep(0.001)
    except OSError:
        refused += 1
end = time.monotonic() + 2
while time.monotonic() < end:
    try:
        s.recv(2000)
        echoed += 1
    except BlockingIOError:
        time.sleep(0.01)
    except OSError:
        refused += 1
print(f"sent {sent} refused {refused} echoed {echoed}")
"""


def rootful(topo, childflow, *args, timeout=90):
    return topo.run_root(childflow.argv("--root", *args), env=childflow.env(None),
                         timeout=timeout)


def summary_of(res):
    return json.loads(res.err.strip().splitlines()[-1])


def download(topo, childflow, family, *extra):
    host = ORIGIN[family] if family == "v4" else f"[{ORIGIN[family]}]"
    res = rootful(topo, childflow, *extra, "--summary", "--summary-format", "json", "--",
                  *CURL, f"http://{host}:{T.HTTP_PORT}/big")
    assert res.rc == 0, str(res)
    got, seconds = res.out.split()
    assert int(got) == SIZE, str(res)
    return float(seconds), summary_of(res)


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_root_20mbit_limit_holds_a_download_to_the_time_it_implies(topo, childflow, family):
    implied = SIZE * 8 / RATE
    limited, summary = download(topo, childflow, family, "--rate-limit", "20M")
    assert 0.8 * implied <= limited <= 1.2 * implied, (limited, implied)
    assert summary["backend"] == "rootful", summary
    rate = summary["rate_limit"]
    assert rate["limit_bps"] == RATE, rate
    assert rate["burst_bytes"] == RATE // 8 // 10, rate
    assert rate["received"]["bytes"] >= SIZE, rate
    assert 0.8 * RATE <= rate["received"]["achieved_bps"] <= 1.2 * RATE, rate
    assert "--rate-limit 20M" in summary["controls"], summary["controls"]
    # lifting the limit gives the full speed (the kernel's path again)
    free, summary = download(topo, childflow, family)
    assert free < 0.8 * implied, (free, limited)
    assert summary["rate_limit"] is None


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_root_limit_holds_uploads_too(topo, childflow, family):
    implied = SIZE * 8 / RATE
    res = rootful(topo, childflow, "--rate-limit", "20M", "--summary", "--summary-format",
                  "json", "--", T.PYTHON, "-c", UPLOAD, ORIGIN[family], str(T.DISCARD_PORT),
                  str(SIZE))
    assert res.rc == 0, str(res)
    seconds = float(res.out.strip())
    assert 0.8 * implied <= seconds <= 1.2 * implied, (seconds, implied)
    rate = summary_of(res)["rate_limit"]
    assert rate["sent"]["bytes"] >= SIZE, rate
    assert 0.8 * RATE <= rate["sent"]["achieved_bps"] <= 1.2 * RATE, rate


@pytest.mark.parametrize("flood,family", [(UDP_FLOOD, "v4"), (UDP_FLOOD, "v6"),
                                          (PING_FLOOD, "v4"), (PING_FLOOD, "v6")],
                         ids=["udp-v4", "udp-v6", "ping-v4", "ping-v6"])
def test_root_datagrams_over_the_limit_are_dropped_and_counted(topo, childflow, flood, family):
    args = [FAR[family], str(T.UDP_ECHO_PORT), "2000"] if flood is UDP_FLOOD \
        else [FAR[family], "2000"]
    res = rootful(topo, childflow, "--rate-limit", "1M", "--summary", "--summary-format",
                  "json", "--", T.PYTHON, "-c", flood, *args)
    assert res.rc == 0, str(res)
    sent, echoed = int(res.out.split()[1]), int(res.out.split()[3])
    rate = summary_of(res)["rate_limit"]
    # 2.8 MB offered to a 125 kB/s limit with a 64 KiB burst: what passed is
    # the burst and the rate's share, the rest dropped (test_rate_limit.py)
    assert rate["sent"]["datagrams_dropped"] > 0, (rate, res.out)
    assert 0 < rate["sent"]["bytes"] <= 65536 + 3 * 125000, (rate, res.out)
    assert 0 < echoed < sent // 2, res.out


@pytest.mark.parametrize("kind", ["https", "socks5"])
def test_root_limit_holds_through_proxies(proxy_world, topo, childflow, kind):
    args, _ = proxy_args(proxy_world, kind)
    implied = SIZE * 8 / RATE
    res = rootful(topo, childflow, *args, "--rate-limit", "20M", "--summary",
                  "--summary-format", "json", "--", *CURL,
                  f"http://{T.ORIGIN_NAME}:{T.HTTP_PORT}/big")
    assert res.rc == 0, str(res)
    got, seconds = res.out.split()
    assert int(got) == SIZE, str(res)
    assert 0.8 * implied <= float(seconds) <= 1.2 * implied, (seconds, implied)
    assert summary_of(res)["rate_limit"]["received"]["bytes"] >= SIZE, str(res)


def test_root_a_socket_bound_to_the_veth_does_not_pass_the_limit(topo, childflow):
    res = rootful(topo, childflow, "--rate-limit", "1M", "--summary", "--summary-format",
                  "json", "--", T.PYTHON, "-c", BOUND_FLOOD, T.FAR_V4, str(T.UDP_ECHO_PORT),
                  "2000")
    assert res.rc == 0, str(res)
    echoed = int(res.out.split()[5])
    rate = summary_of(res)["rate_limit"]
    # the host's table forwards nothing from the veth under --rate-limit:
    # every datagram echoed passed the engine's bucket (without that rule
    # the kernel's path echoed some 200 the engine never saw)
    assert echoed * 1400 <= rate["sent"]["bytes"], (rate, res.out)


def test_root_limited_flows_are_the_engines_records_once(topo, childflow, userdir):
    log = os.path.join(userdir, "flows.jsonl")
    os.chmod(userdir, 0o777)
    script = (f"curl -sS -m15 -o /dev/null -w '%{{http_code}}\\n' http://{T.ORIGIN_V4}/; "
              f"ping -c2 -i0.2 -W2 {T.FAR_V4} >/dev/null; echo ping=$?")
    res = rootful(topo, childflow, "--rate-limit", "20M", "--flow-log", log, "--",
                  "sh", "-c", script)
    assert res.rc == 0, str(res)
    assert res.out.split() == ["200", "ping=0"], str(res)
    assert flowlog_v1.validate_file(log) == []
    with open(log) as f:
        ev = [json.loads(line) for line in f if line.strip()]
    tcp = [e for e in ev if e["event"] == "connect_result" and e["remote_ip"] == T.ORIGIN_V4]
    assert len(tcp) == 1 and tcp[0]["path"] != "kernel", ev  # relayed, not forwarded
    ends = [e for e in ev if e["event"] == "flow_end" and e["remote_ip"] == T.ORIGIN_V4]
    assert len(ends) == 1, ev
    pings = [e for e in ev if e["event"] == "datagram_flow_start"
             and e["protocol"] == "icmpv4"]
    assert len(pings) == 1 and pings[0]["remote_ip"] == T.FAR_V4, ev


def test_root_refuses_iface_with_the_limit_clearly(topo, childflow):
    # the engine's host sockets follow the host's routes, not --iface
    res = rootful(topo, childflow, "--rate-limit", "20M", "--iface", "lo", "--", "true")
    assert res.rc == 125, str(res)
    assert "--iface lo with --rate-limit" in res.err, str(res)
