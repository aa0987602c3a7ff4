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

