"""TCP through the engine: bulk data arrives byte-exact, half-close is
preserved in both directions, many connections can be open at once."""

import os

import pytest

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
