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


# ADDR PORT: a host socket in the tree is unbound once its switched connect
# failed, or once connect(AF_UNSPEC) dissolved it; bound to a chosen port by
# the kernel it would hold that port of the host's (a host server then gets
# EADDRINUSE, SO_REUSEADDR or not). Prints each bind's result and whether
# the socket holds PORT.
HOLD_HOST_PORT = r"""
import ctypes, errno, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
name = lambda e: errno.errorcode.get(e, e) if e else "ok"
port = int(sys.argv[2])
refused = socket.socket()
print("refused", name(refused.connect_ex((sys.argv[1], int(sys.argv[3])))))
dissolved = socket.socket()
print("connected", name(dissolved.connect_ex((sys.argv[1], 80))))
r = libc.connect(dissolved.fileno(), ctypes.create_string_buffer(16), 16)
print("dissolved", name(ctypes.get_errno()) if r else "ok")
for label, s in (("refused", refused), ("dissolved", dissolved)):
    try:
        s.bind(("0.0.0.0", port))
        print(label + "-bind", "ok")
    except OSError as e:
        print(label + "-bind", name(e.errno))
    print(label + "-holds", s.getsockname()[1] == port)
"""


def test_a_host_socket_in_the_tree_cannot_hold_a_port_of_the_host(childflow):
    res = childflow.run("--tcp-path", "auto", "--", "/usr/bin/python3", "-c", HOLD_HOST_PORT,
                        T.ORIGIN_V4, "18080", str(T.CLOSED_PORT), timeout=60)
    assert res.rc == 0, str(res)
    got = dict(line.partition(" ")[::2] for line in res.out.splitlines())
    assert got == {"refused": "ECONNREFUSED", "connected": "ok", "dissolved": "ok",
                   "refused-bind": "EINVAL", "refused-holds": "False",
                   "dissolved-bind": "EINVAL", "dissolved-holds": "False"}, str(res)


# ADDR PORT REFUSED SECONDS: as FD_SWAP, but the main thread bind()s
# descriptor 100 (a UDP socket or, when the other thread wins, the host
# socket) to PORT: the engine lets a UDP socket's bind() through to the
# kernel, which binds whatever the descriptor is when it runs the call.
# Prints "held PORT" when the host socket got the port, then the tries.
BIND_SWAP = r"""
import ctypes, os, socket, struct, sys, threading, time
port, seconds = int(sys.argv[2]), float(sys.argv[4])
h = socket.socket()
print("refused", h.connect_ex((sys.argv[1], int(sys.argv[3]))))
N = 100
stop = False
def swap():
    while not stop:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a fresh, unbound one
        os.dup2(h.fileno(), N)
        os.dup2(u.fileno(), N)
        u.close()
t = threading.Thread(target=swap)
t.start()
libc = ctypes.CDLL(None, use_errno=True)
sa = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + bytes(12)
buf = ctypes.create_string_buffer(sa, len(sa))
tries, end = 0, time.time() + seconds
try:
    while time.time() < end:
        tries += 1
        libc.bind(N, buf, len(sa))
        if h.getsockname()[1] == port:
            print("held", port)
            break
finally:
    stop = True
    t.join()
print("tries", tries)
"""


def test_a_host_socket_swapped_in_under_a_bind_the_kernel_runs_holds_nothing(childflow):
    res = childflow.run("--tcp-path", "auto", "--", "/usr/bin/python3", "-c", BIND_SWAP,
                        T.ORIGIN_V4, "18086", str(T.CLOSED_PORT), "3", timeout=60)
    assert res.rc == 0, str(res)
    lines = dict(line.partition(" ")[::2] for line in res.out.splitlines())
    assert lines.get("refused") == "111", str(res)  # the tree holds a host socket
    assert "held" not in lines, str(res)
    assert int(lines["tries"]) > 1000, str(res)


# The tree's own TCP binds, which its kernel may not make any more (but to
# port 0): the engine makes them, exactly as the kernel would have.
TREE_BINDS = r"""
import errno, socket
name = lambda e: errno.errorcode.get(e, e)
def bind(label, fam, addr, s=None):
    s = s or socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind(addr)
        print(label, "ok")
    except OSError as e:
        print(label, name(e.errno))
    return s
a = bind("specific", socket.AF_INET, ("127.0.0.1", 18081))
a.listen()
bind("in-use", socket.AF_INET, ("127.0.0.1", 18081))
bind("twice", socket.AF_INET, ("127.0.0.1", 18082), a)
bind("any-port", socket.AF_INET, ("0.0.0.0", 0))
bind("privileged", socket.AF_INET, ("0.0.0.0", 80))
bind("not-local", socket.AF_INET, ("192.0.2.1", 18083))
bind("v6", socket.AF_INET6, ("::1", 18084))
bind("v6-privileged", socket.AF_INET6, ("::", 443))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 18085))
print("udp ok")
c = socket.create_connection(("127.0.0.1", 18081))
x, _ = a.accept()
x.sendall(b"hi")
print("served", c.recv(2).decode())
"""


@pytest.mark.parametrize("path", ["auto", "relay"])
def test_the_trees_own_tcp_binds_are_made_for_it_exactly(childflow, path):
    res = childflow.run("--tcp-path", path, "--", "/usr/bin/python3", "-c", TREE_BINDS,
                        timeout=60)
    assert res.rc == 0, str(res)
    got = dict(line.partition(" ")[::2] for line in res.out.splitlines())
    assert got == {"specific": "ok", "in-use": "EADDRINUSE", "twice": "EINVAL",
                   "any-port": "ok", "privileged": "EACCES", "not-local": "EADDRNOTAVAIL",
                   "v6": "ok", "v6-privileged": "EACCES", "udp": "ok", "served": "hi"}, str(res)
