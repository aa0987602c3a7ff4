"""The tree holds host sockets under --tcp-path auto (issue 18): every way
to aim one somewhere the engine did not vet must fail. Found by trying them
(each of these reached a service on the host's 127.0.0.1 before its fix):

- a connect() the engine lets through to the kernel (a UDP socket's, say)
  while another thread puts a host socket at that descriptor: the kernel
  connects whatever the descriptor is when it runs the call. Closed by
  Landlock: the tree's own kernel may make no TCP connection at all
  (sandbox/connfilter.c), and the engine makes the tree's other TCP
  connects itself (engine/switch.c);
- io_uring's IORING_OP_CONNECT, which no seccomp filter sees: io_uring_setup
  is refused (test_io_uring.py);
- sendto(MSG_FASTOPEN), which connects from inside the send: refused.

Each test here could reach the host's loopback on the code before its fix."""

import pytest

import test_escape_hostlocal as hl
import topology as T
from test_escape_hostlocal import host_service  # noqa: F401 (a fixture)

pytestmark = pytest.mark.core

# ADDR PORT SECONDS: a refused switched connect leaves the tree a host socket;
# one thread swaps it and a UDP socket at descriptor 100 as fast as it can,
# the main thread connect()s descriptor 100 to ADDR:PORT meanwhile. Prints
# "reached BYTES" when a connection got the service's greeting, then the
# number of tries.
FD_SWAP = r"""
import ctypes, os, socket, struct, sys, threading, time
addr, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
h = socket.socket()
print("refused", h.connect_ex((sys.argv[4], int(sys.argv[5]))))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
N = 100
os.dup2(u.fileno(), N)
stop = False
def swap():
    while not stop:
        os.dup2(h.fileno(), N)
        os.dup2(u.fileno(), N)
t = threading.Thread(target=swap)
t.start()
libc = ctypes.CDLL(None, use_errno=True)
sa = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(addr) + bytes(8)
buf = ctypes.create_string_buffer(sa, len(sa))
tries, end = 0, time.time() + seconds
try:
    while time.time() < end:
        tries += 1
        if libc.connect(N, buf, len(sa)) != 0:
            continue
        probe = socket.socket(fileno=os.dup(h.fileno()))
        probe.settimeout(0.3)
        try:
            data = probe.recv(100)
        except OSError:
            data = b""
        probe.close()
        if data:
            print("reached", data.decode().strip())
            break
finally:
    stop = True
    t.join()
print("tries", tries)
"""


def test_a_host_socket_swapped_in_under_a_connect_the_kernel_runs_reaches_nothing(
        childflow, host_service):
    res = childflow.run("--tcp-path", "auto", "--", "/usr/bin/python3", "-c", FD_SWAP,
                        "127.0.0.1", str(hl.LOOP_PORT), "3", T.ORIGIN_V4, str(T.CLOSED_PORT),
                        timeout=60)
    assert res.rc == 0, str(res)
    lines = dict(line.partition(" ")[::2] for line in res.out.splitlines())
    assert lines.get("refused") == "111", str(res)  # the tree holds a host socket
    assert "reached" not in lines, str(res)
    # the race was run, not skipped: the code before the fix lost it within ten tries
    assert int(lines["tries"]) > 1000, str(res)


# ADDR PORT: after a refused switched connect, a TCP Fast Open send on that
# host socket to ADDR:PORT; prints its errno or what came back.
FASTOPEN_ON_HOST_SOCKET = r"""
import errno, socket, sys
s = socket.socket()
s.connect_ex((sys.argv[3], int(sys.argv[4])))
try:
    s.sendto(b"x", socket.MSG_FASTOPEN, (sys.argv[1], int(sys.argv[2])))
    s.settimeout(2)
    print("reached", s.recv(100).decode().strip())
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno))
"""


def test_fast_open_on_a_host_socket_is_refused(childflow, host_service):
    res = childflow.run("--tcp-path", "auto", "--", "/usr/bin/python3", "-c",
                        FASTOPEN_ON_HOST_SOCKET, "127.0.0.1", str(hl.LOOP_PORT), T.ORIGIN_V4,
                        str(T.CLOSED_PORT), timeout=60)
    assert res.rc == 0 and res.out.strip() == "error ENOTSUP", str(res)


# The tree's own TCP, which its kernel may not connect any more: the engine
# connects it (blocking, non-blocking, refused, AF_UNSPEC), exactly as the
# kernel would have.
TREE_TCP = r"""
import errno, select, socket, struct, sys, time
def name(e):
    return errno.errorcode.get(e, str(e)) if e else "ok"
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(8)
port = l.getsockname()[1]
s = socket.socket()
print("blocking", name(s.connect_ex(("127.0.0.1", port))))
c, _ = l.accept()
c.sendall(b"hi")
print("read", s.recv(10).decode())
print("again", name(s.connect_ex(("127.0.0.1", port))))
n = socket.socket()
n.setblocking(False)
print("nonblocking", name(n.connect_ex(("127.0.0.1", port))))
select.select([], [n], [], 5)
print("so_error", name(n.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
r = socket.socket()
l.close()
print("refused", name(r.connect_ex(("127.0.0.1", port))))
l2 = socket.socket()
l2.bind(("127.0.0.1", 0))
l2.listen(8)
print("retry", name(r.connect_ex(l2.getsockname())))
v6 = socket.socket(socket.AF_INET6)
print("v6-refused", name(v6.connect_ex(("::1", port))))
# A blocking connect with a send timeout gives up then (EINPROGRESS) and
# goes on connecting; the address drops every packet.
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 400000))
a = time.monotonic()
print("sndtimeo", name(t.connect_ex((sys.argv[1], 80))))
print("sndtimeo-fast", time.monotonic() - a < 3)
print("sndtimeo-again", name(t.connect_ex((sys.argv[1], 80))))
"""


@pytest.mark.parametrize("path", ["auto", "relay"])
def test_the_trees_own_tcp_connects_are_made_for_it_exactly(childflow, path):
    """The engine makes them under auto (Landlock keeps the tree's kernel
    from it); relay is the kernel's own answer, which auto must equal."""
    res = childflow.run("--tcp-path", path, "--", "/usr/bin/python3", "-c", TREE_TCP,
                        T.BLACKHOLE_V4, timeout=60)
    assert res.rc == 0, str(res)
    got = dict(line.partition(" ")[::2] for line in res.out.splitlines())
    assert got == {"blocking": "ok", "read": "hi", "again": "EISCONN",
                   "nonblocking": "EINPROGRESS", "so_error": "ok", "refused": "ECONNREFUSED",
                   "retry": "ok", "v6-refused": "ECONNREFUSED", "sndtimeo": "EINPROGRESS",
                   "sndtimeo-fast": "True", "sndtimeo-again": "EALREADY"}, str(res)
