"""TCP through the engine: bulk data arrives byte-exact, half-close is
preserved in both directions, many connections can be open at once."""

import os
import subprocess

import pytest

import support
import topology as T

pytestmark = pytest.mark.core

ECHO_PAYLOAD = "".join(f"line {i:06d} of the half-close payload\n" for i in range(3000))


@pytest.mark.parametrize("family", ["-4", "-6"], ids=["ipv4", "ipv6"])
def test_100mib_download_arrives_byte_exact(topo, childflow, family):
    mark = topo.log_mark("nginx")
    res = childflow.run("--", "sh", "-c",
                        f"curl -sS {family} --max-time 300 http://{T.ORIGIN_NAME}/big | sha256sum",
                        timeout=360)
    assert res.rc == 0, str(res)
    assert res.out.split()[0] == topo.files["big"]["sha256"], str(res)
    line = topo.wait_log("nginx", mark, r'"GET /big HTTP/1\.1" 200 ')
    assert line is not None and line.split()[-1] == str(T.BIG_SIZE), line


def _payload_file(userdir):
    path = os.path.join(userdir, "payload")
    with open(path, "w") as f:
        f.write(ECHO_PAYLOAD)
    return path


@pytest.mark.parametrize("addr, peer", [(T.ORIGIN_V4, T.HOST_V4), (T.ORIGIN_V6, T.HOST_V6)],
                         ids=["ipv4", "ipv6"])
def test_half_close_echo_returns_all_data(topo, childflow, userdir, addr, peer):
    payload = _payload_file(userdir)
    mark = topo.log_mark("echo")
    res = childflow.run("--", "sh", "-c", f"nc -N {addr} {T.ECHO_PORT} < {payload}")
    assert res.rc == 0, str(res)
    assert res.out == ECHO_PAYLOAD, f"got {len(res.out)} of {len(ECHO_PAYLOAD)} bytes\n{res.err}"
    line = topo.wait_log("echo", mark, rf"^echo {peer} ")
    assert line == f"echo {peer} {len(ECHO_PAYLOAD)}", line


@pytest.mark.parametrize("addr, peer", [(T.ORIGIN_V4, T.HOST_V4), (T.ORIGIN_V6, T.HOST_V6)],
                         ids=["ipv4", "ipv6"])
def test_half_close_to_discard_delivers_every_byte_and_eof(topo, childflow, userdir, addr, peer):
    payload = _payload_file(userdir)
    mark = topo.log_mark("echo")
    res = childflow.run("--", "sh", "-c", f"nc -N {addr} {T.DISCARD_PORT} < {payload}")
    assert res.rc == 0, str(res)
    assert res.out == "", str(res)
    # the discard server logs only after it saw EOF: the FIN got through
    line = topo.wait_log("echo", mark, rf"^discard {peer} ")
    assert line == f"discard {peer} {len(ECHO_PAYLOAD)}", line


# Writes everything into the socket and exits at once: most of it is still in
# the kernel's buffers when the tree is gone.
WRITE_AND_EXIT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"x" * int(sys.argv[3]))
s.close()
"""
EXIT_UPLOAD = 16 << 20


@pytest.mark.parametrize("addr, peer", [(T.ORIGIN_V4, T.HOST_V4), (T.ORIGIN_V6, T.HOST_V6)],
                         ids=["ipv4", "ipv6"])
def test_data_written_just_before_the_tree_exits_arrives_with_a_clean_close(
        topo, childflow, addr, peer):
    mark = topo.log_mark("echo")
    res = childflow.run("--", "python3", "-c", WRITE_AND_EXIT, addr, str(T.DISCARD_PORT),
                        str(EXIT_UPLOAD))
    assert res.rc == 0, str(res)
    assert "resetting" not in res.err, res.err
    # every byte, then EOF (a reset would be logged with " reset")
    line = topo.wait_log("echo", mark, rf"^discard {peer} ")
    assert line == f"discard {peer} {EXIT_UPLOAD}", line


PARALLEL_CLIENT = r"""
import asyncio, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

async def one(i, reader, writer):
    msg = (f"connection {i} " * 200).encode()
    writer.write(msg)
    await writer.drain()
    writer.write_eof()
    data = await reader.read()
    writer.close()
    return data == msg

async def main():
    conns = await asyncio.gather(*[asyncio.open_connection(host, port) for _ in range(n)])
    # all n connections are established at the same time here
    ok = await asyncio.gather(*[one(i, r, w) for i, (r, w) in enumerate(conns)])
    print(f"{sum(ok)} of {len(ok)} echoed")

asyncio.run(asyncio.wait_for(main(), 120))
"""


@pytest.mark.parametrize("addr", [T.ORIGIN_V4, T.ORIGIN_V6], ids=["ipv4", "ipv6"])
def test_200_simultaneous_connections_all_complete(childflow, addr):
    res = childflow.run("--", "/usr/bin/python3", "-c", PARALLEL_CLIENT,
                        addr, str(T.ECHO_PORT), "200", timeout=180)
    assert res.rc == 0, str(res)
    assert res.out.strip() == "200 of 200 echoed", str(res)


def test_200_parallel_curl_transfers_all_succeed(topo, childflow):
    mark = topo.log_mark("nginx")
    res = childflow.run("--", "curl", "-sS", "--parallel", "--parallel-max", "200",
                        "--max-time", "120", "-o", "/dev/null", "-w", "%{http_code}\\n",
                        f"http://{T.ORIGIN_NAME}/small.txt?n=[1-200]", timeout=180)
    assert res.rc == 0, str(res)
    assert res.out.split() == ["200"] * 200, str(res)
    assert topo.wait_log("nginx", mark, r'"GET /small\.txt\?n=200 ') is not None
    served = [ln for ln in topo.log_since("nginx", mark).splitlines()
              if '"GET /small.txt?n=' in ln and '" 200 ' in ln]
    assert len(served) == 200, served


# Run as root inside the sandbox's network namespace: send the tree's kernel's
# way a TCP ACK to a remote address that belongs to no connection, and watch lo
# for the segment itself and for an RST coming back.
_STRAY_SEGMENT = r'''
import socket, struct, sys, time
fam = socket.AF_INET if sys.argv[1] == "4" else socket.AF_INET6
dst = sys.argv[2]
probe = socket.socket(fam, socket.SOCK_DGRAM)
probe.connect((dst, 80))
src = probe.getsockname()[0]
sport, seq, ack = 40123, 0x01020304, 0x05060708
hdr = struct.pack("!HHIIBBHHH", sport, 80, seq, ack, 5 << 4, 0x10, 65535, 0, 0)
raw = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
if fam == socket.AF_INET:
    pseudo = socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) + struct.pack("!BBH", 0, 6, len(hdr))
    data = pseudo + hdr
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    hdr = hdr[:16] + struct.pack("!H", ~s & 0xffff) + hdr[18:]
else:
    raw.setsockopt(socket.IPPROTO_IPV6, 7, 16)  # IPV6_CHECKSUM: the kernel sums at offset 16
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))
sniff.bind(("lo", 0))
sniff.settimeout(0.2)
for _ in range(3):
    raw.sendto(hdr, (dst, 0))
seen_ack = seen_rst = 0
end = time.time() + 1.5
while time.time() < end:
    try:
        pkt = sniff.recv(65535)
    except socket.timeout:
        continue
    if fam == socket.AF_INET and pkt[0] >> 4 == 4 and pkt[9] == 6:
        l4 = pkt[(pkt[0] & 15) * 4:]
    elif fam == socket.AF_INET6 and pkt[0] >> 4 == 6 and pkt[6] == 6:
        l4 = pkt[40:]
    else:
        continue
    ports = struct.unpack("!HH", l4[:4])
    if ports == (sport, 80) and l4[13] == 0x10:
        seen_ack += 1
    if ports == (80, sport) and l4[13] & 0x04:
        seen_rst += 1
print(f"ack={seen_ack} rst={seen_rst}")
'''


@pytest.mark.parametrize("family, addr", [("4", T.ORIGIN_V4), ("6", T.ORIGIN_V6)],
                         ids=["ipv4", "ipv6"])
def test_a_segment_of_no_connection_is_dropped_not_answered_with_rst(topo, childflow, userdir,
                                                                     family, addr):
    """The transparent listener only ever gets SYNs: the kernel can miss a
    connection for an instant while its handshake completes, and a segment
    sent into that instant must be retransmitted, not reset."""
    ready = os.path.join(userdir, "ready")
    p = childflow.spawn("--", "sh", "-c", f"touch {ready}; exec sleep 30")
    try:
        assert support.wait_for(lambda: os.path.exists(ready)), "the tree did not start"
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            helper = f.read().split()[0]
        res = subprocess.run(["nsenter", "-t", helper, "-n", "/usr/bin/python3", "-c",
                              _STRAY_SEGMENT, family, addr],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        counts = dict(kv.split("=") for kv in res.stdout.split())
        assert int(counts["ack"]) >= 3, res.stdout  # the segments went the tree's way
        assert counts["rst"] == "0", res.stdout
    finally:
        p.terminate()
        childflow.finish(p)


_SLOW_READERS = r'''
import socket, sys, threading, time
n, size = int(sys.argv[1]), int(sys.argv[2])
got = [0] * n
go = threading.Barrier(n)
def one(i):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # bytes pile up at childflow
    go.wait()
    s.connect((sys.argv[3], 80))
    s.sendall(b"GET /big HTTP/1.0\r\nHost: origin.test\r\nRange: bytes=0-%d\r\n\r\n" % (size - 1))
    parts = []
    while True:
        b = s.recv(4096)
        if not b:
            break
        parts.append(b)
        time.sleep(0.0005)
    got[i] = len(b"".join(parts).partition(b"\r\n\r\n")[2])
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sum(1 for g in got if g == size), "complete")
'''


def test_connections_wait_for_descriptors_instead_of_failing(topo, childflow):
    """With few file descriptors, a relay that finds none for a pipe waits
    until another connection gives one back: every transfer completes."""
    n, size = 36, 8 * 1024 * 1024
    # 100 descriptors: room for 37 connections (two sockets each), not for 36 pipes besides;
    # 8 MiB each, more than the sockets' buffers hold for a reader this slow; on the
    # relay path, which this is about (switched sockets need no pipes)
    res = topo.run_user(["sh", "-c", 'ulimit -n 100 && exec "$@"', "sh",
                         *childflow.argv("--tcp-path", "relay", "--", "python3", "-c", _SLOW_READERS, str(n),
                                         str(size), T.ORIGIN_V4)],
                        env=childflow.env(), timeout=120)
    assert res.rc == 0, str(res)
    assert res.out.strip() == f"{n} complete", str(res)
    assert "out of file descriptors for relay pipes" in res.err, str(res)
