"""--rate-limit RATE (issue 21): the tree's traffic is held to RATE in each
direction by the engine's token buckets, for any program.

The download checks are behaviour checks with a wide band, which the issue
asks for: a 20 Mbit/s limit holds a download to 0.8-1.2x of the time the
size implies (the burst, 100 ms of the rate, is well inside the band), and
without the limit the same download is faster.  The summary reports the
bytes and the achieved rate; UDP over the limit is dropped, counted."""

import json

import pytest

import topology as T
from proxies import proxy_args, proxy_world  # noqa: F401  (fixtures are used by name)

RATE = 20_000_000  # bits per second
SIZE = 6_000_000   # bytes: 2.4 s at RATE
URL = f"http://{T.ORIGIN_V4}:{T.HTTP_PORT}/big"

# curl prints "BYTES SECONDS" of the transfer
CURL = ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-r", f"0-{SIZE - 1}",
        "-w", "%{size_download} %{time_total}", URL]

# Upload SIZE bytes to the origin's discard server, half-close, wait for its
# close: prints the seconds that took.
UPLOAD = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
data = b"u" * int(sys.argv[3])
t = time.monotonic()
s.sendall(data)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print(f"{time.monotonic() - t:.3f}")
"""

# COUNT datagrams of 1400 bytes as fast as the socket takes them, then wait
# a little for echoes: prints "sent N echoed M".
UDP_FLOOD = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
s.setblocking(False)
n = int(sys.argv[3])
sent = echoed = 0
for i in range(n):
    try:
        s.send(b"x" * 1400)
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


def _download(childflow, *extra, url=URL):
    cmd = [*CURL[:-1], url]
    res = childflow.run(*extra, "--summary", "--summary-format", "json", "--", *cmd,
                        timeout=90)
    assert res.rc == 0, str(res)
    got, seconds = res.out.split()
    assert int(got) == SIZE, str(res)
    return float(seconds), json.loads(res.err.strip().splitlines()[-1])


def test_20mbit_limit_holds_a_download_to_the_time_it_implies(childflow):
    implied = SIZE * 8 / RATE
    limited, summary = _download(childflow, "--rate-limit", "20M")
    assert 0.8 * implied <= limited <= 1.2 * implied, (limited, implied)
    rate = summary["rate_limit"]
    assert rate["limit_bps"] == RATE, rate
    assert rate["burst_bytes"] == RATE // 8 // 10, rate
    assert rate["received"]["bytes"] >= SIZE, rate
    assert 0.8 * RATE <= rate["received"]["achieved_bps"] <= 1.2 * RATE, rate
    assert "--rate-limit 20M" in summary["controls"], summary["controls"]
    # lifting the limit gives the full speed: faster than the limit allows
    free, summary = _download(childflow)
    assert free < 0.8 * implied, (free, limited)
    assert summary["rate_limit"] is None


def test_limit_holds_uploads_too(childflow):
    implied = SIZE * 8 / RATE
    res = childflow.run("--rate-limit", "20M", "--summary", "--summary-format", "json", "--",
                        T.PYTHON, "-c", UPLOAD, T.ORIGIN_V4, str(T.DISCARD_PORT), str(SIZE),
                        timeout=90)
    assert res.rc == 0, str(res)
    seconds = float(res.out.strip())
    # the tree's socket buffers may hold the last bytes it wrote when the
    # close comes back late; a limit that did not hold would be far faster
    assert 0.8 * implied <= seconds <= 1.2 * implied, (seconds, implied)
    rate = json.loads(res.err.strip().splitlines()[-1])["rate_limit"]
    assert rate["sent"]["bytes"] >= SIZE, rate
    assert 0.8 * RATE <= rate["sent"]["achieved_bps"] <= 1.2 * RATE, rate


@pytest.mark.parametrize("kind", ["https", "socks5"])
def test_limit_holds_through_proxies(proxy_world, childflow, kind):
    args, _ = proxy_args(proxy_world, kind)
    implied = SIZE * 8 / RATE
    url = f"http://{T.ORIGIN_NAME}:{T.HTTP_PORT}/big"
    limited, summary = _download(childflow, *args, "--rate-limit", "20M", url=url)
    assert 0.8 * implied <= limited <= 1.2 * implied, (limited, implied)
    assert summary["rate_limit"]["received"]["bytes"] >= SIZE, summary["rate_limit"]


def test_udp_over_the_limit_is_dropped_and_counted(childflow):
    res = childflow.run("--rate-limit", "1M", "--summary", "--summary-format", "json", "--",
                        T.PYTHON, "-c", UDP_FLOOD, T.FAR_V4, str(T.UDP_ECHO_PORT), "2000")
    assert res.rc == 0, str(res)
    sent, echoed = int(res.out.split()[1]), int(res.out.split()[3])
    rate = json.loads(res.err.strip().splitlines()[-1])["rate_limit"]
    # 2.8 MB offered to a 125 kB/s limit with a 64 KiB burst, in well under 3 s: what
    # passed is the burst and the rate's share, the rest dropped (by the limit, counted,
    # or before it, when tun0's queue overflows)
    assert rate["sent"]["datagrams_dropped"] > 0, (rate, res.out)
    assert rate["sent"]["bytes"] <= 65536 + 3 * 125000, (rate, res.out)
    assert 0 < echoed < sent // 2, res.out



# --publish under the limit: the flows a client on the host opens to a
# server in the tree share the tree's two buckets (bytes the tree sends are
# "sent", bytes it receives "received"), on both backends.

PUB_HOST, PUB_TREE = 18010, 8000

# In the tree: serve one TCP client of 127.0.0.1:8000. "down": send argv[2]
# bytes and close; "up": greet with "r", read to EOF, answer the count, close.
# "udp": echo datagrams on 127.0.0.1:8000 until 1.5 s without one.
TREE_PEER = r"""
import socket, sys
mode = sys.argv[1]
if mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 8000))
    s.settimeout(60)
    try:
        while True:
            data, peer = s.recvfrom(2000)
            s.sendto(data, peer)
            s.settimeout(1.5)
    except socket.timeout:
        sys.exit(0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000))
s.listen(1)
c, _ = s.accept()
if mode == "down":
    left, chunk = int(sys.argv[2]), b"x" * 65536
    while left > 0:
        left -= c.send(chunk[:left])
else:
    c.sendall(b"r")
    n = 0
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        n += len(d)
    c.sendall(str(n).encode())
c.close()
"""

# On the host, to 127.0.0.1:argv[2]: "down" reads everything, "up" sends
# argv[3] bytes after the tree's greeting, half-closes and reads the answer;
# prints "BYTES SECONDS" (the bytes the client got, or the tree counted).
# Until the tree listens, childflow accepts and closes (nothing to connect
# to in the tree): such empty connections are retried.
HOST_PEER = r"""
import socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
deadline, n, seconds = time.monotonic() + 20, 0, 0.0
while n == 0 and time.monotonic() < deadline:
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=30)
        t = time.monotonic()
        if mode == "down":
            while True:
                d = c.recv(1 << 16)
                if not d:
                    break
                n += len(d)
        elif c.recv(1) == b"r":
            t = time.monotonic()
            c.sendall(b"u" * int(sys.argv[3]))
            c.shutdown(socket.SHUT_WR)
            answer = b""
            while True:
                d = c.recv(100)
                if not d:
                    break
                answer += d
            n = int(answer)
        seconds = time.monotonic() - t
        c.close()
    except (OSError, ValueError):
        n = 0
    if n == 0:
        time.sleep(0.1)
print(n, f"{seconds:.3f}")
"""

# On the host: send "p" to 127.0.0.1:argv[1] until the tree echoes it, then
# argv[2] datagrams of 1400 bytes as fast as the socket takes them, then
# wait a little for echoes: prints "sent N echoed M".
HOST_UDP_FLOOD = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.5)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        s.send(b"p")
        if s.recv(2000) == b"p":
            break
    except OSError:
        time.sleep(0.1)
s.setblocking(False)
sent = echoed = 0
for i in range(int(sys.argv[2])):
    try:
        s.send(b"x" * 1400)
        sent += 1
    except BlockingIOError:
        time.sleep(0.001)
end = time.monotonic() + 2
while time.monotonic() < end:
    try:
        if len(s.recv(2000)) == 1400:
            echoed += 1
    except BlockingIOError:
        time.sleep(0.01)
print(f"sent {sent} echoed {echoed}")
"""


def _published(topo, childflow, backend, host_argv, tree_argv, *extra):
    """childflow EXTRA --publish with the tree's TREE_PEER TREE_ARGV, while
    the host runs HOST_ARGV: returns (the host's output, the summary)."""
    proto = "/udp" if tree_argv[0] == "udp" else ""
    args = [*extra, "--summary", "--summary-format", "json",
            "--publish", f"{PUB_HOST}:{PUB_TREE}{proto}", "--",
            T.PYTHON, "-c", TREE_PEER, *tree_argv]
    if backend == "rootful":
        p = topo.spawn_root(childflow.argv("--root", *args), env=childflow.env())
    else:
        p = childflow.spawn(*args)
    try:
        got = topo.run_host_root([T.PYTHON, "-c", *host_argv], timeout=90)
    finally:
        res = childflow.finish(p, timeout=90)
    assert got.rc == 0 and res.rc == 0, (got, res)
    return got.out, json.loads(res.err.strip().splitlines()[-1])


def _published_transfer(topo, childflow, backend, mode, *extra):
    out, summary = _published(topo, childflow, backend,
                              [HOST_PEER, mode, str(PUB_HOST), str(SIZE)],
                              [mode, str(SIZE)], *extra)
    got, seconds = out.split()
    assert int(got) == SIZE, out
    return float(seconds), summary


@pytest.mark.parametrize("backend", ["rootless", "rootful"])
def test_limit_holds_a_download_from_a_published_port(topo, childflow, backend):
    implied = SIZE * 8 / RATE
    limited, summary = _published_transfer(topo, childflow, backend, "down",
                                           "--rate-limit", "20M")
    assert 0.8 * implied <= limited <= 1.2 * implied, (limited, implied)
    rate = summary["rate_limit"]
    # what the tree's server sent to the host's client is the tree's traffic out
    assert rate["sent"]["bytes"] >= SIZE, rate
    assert 0.8 * RATE <= rate["sent"]["achieved_bps"] <= 1.2 * RATE, rate
    free, summary = _published_transfer(topo, childflow, backend, "down")
    assert free < 0.8 * implied, (free, limited)
    assert summary["rate_limit"] is None


@pytest.mark.parametrize("backend", ["rootless", "rootful"])
def test_limit_holds_an_upload_to_a_published_port(topo, childflow, backend):
    implied = SIZE * 8 / RATE
    limited, summary = _published_transfer(topo, childflow, backend, "up",
                                           "--rate-limit", "20M")
    assert 0.8 * implied <= limited <= 1.2 * implied, (limited, implied)
    rate = summary["rate_limit"]
    assert rate["received"]["bytes"] >= SIZE, rate
    assert 0.8 * RATE <= rate["received"]["achieved_bps"] <= 1.2 * RATE, rate
    free, _ = _published_transfer(topo, childflow, backend, "up")
    assert free < 0.8 * implied, (free, limited)


@pytest.mark.parametrize("backend", ["rootless", "rootful"])
def test_published_udp_over_the_limit_is_dropped_and_counted(topo, childflow, backend):
    out, summary = _published(topo, childflow, backend,
                              [HOST_UDP_FLOOD, str(PUB_HOST), "2000"], ["udp"],
                              "--rate-limit", "1M")
    sent, echoed = int(out.split()[1]), int(out.split()[3])
    rate = summary["rate_limit"]
    # 2.8 MB offered to the tree at 125 kB/s with a 64 KiB burst: what
    # passed is the burst and the rate's share, the rest dropped, counted
    assert rate["received"]["datagrams_dropped"] > 0, (rate, out)
    assert rate["received"]["bytes"] <= 65536 + 3 * 125000, (rate, out)
    assert 0 < echoed < sent // 2, out
