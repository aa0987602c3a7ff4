"""Connects the tree's connect() filter never sees (issue 18): an io_uring
IORING_OP_CONNECT runs in the kernel without a connect(2) system call. On
the relay path it takes the relay (the local address is the sandbox's own,
not the host's) and the relay's policy. Under --tcp-path auto the tree holds
host sockets, on which a ring's operations would act unseen: io_uring_setup
is refused there (sandbox/connfilter.c). The program
makes the raw io_uring_setup/io_uring_enter calls with ctypes and mmap (no
liburing needed)."""

import pytest

import topology as T

pytestmark = pytest.mark.core

CHILD = {T.ORIGIN_V4: "198.18.0.2", T.ORIGIN_V6: "fd63:6866:6c77::2"}
DENIED = {T.ORIGIN_V4: "EHOSTUNREACH", T.ORIGIN_V6: "EACCES"}


def _io_uring_disabled():
    """Why io_uring cannot run here, or None."""
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            value = f.read().strip()
    except OSError:
        return None  # a kernel without the knob: io_uring_setup itself says
    if value != "0":
        return f"io_uring is disabled on this kernel (kernel.io_uring_disabled = {value})"
    return None


# ADDR PORT: connects with one IORING_OP_CONNECT; prints "connect ok", "local
# ADDR" and the echo of a line, or "connect ERRNO" (or "setup ERRNO" when
# io_uring_setup fails).
URING_CONNECT = r"""
import ctypes, errno, mmap, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_io_uring_setup, SYS_io_uring_enter = 425, 426  # the same on every architecture
IORING_OP_CONNECT, IORING_ENTER_GETEVENTS = 16, 1
OFF_SQ_RING, OFF_CQ_RING, OFF_SQES = 0, 0x8000000, 0x10000000
def name(e):
    return errno.errorcode.get(e, str(e))
params = ctypes.create_string_buffer(120)  # struct io_uring_params
ring = libc.syscall(SYS_io_uring_setup, 4, params)
if ring < 0:
    print("setup", name(ctypes.get_errno()))
    sys.exit(0)
sq_entries, cq_entries = struct.unpack_from("II", params, 0)
sq = struct.unpack_from("IIIIIII", params, 40)   # head tail mask entries flags dropped array
cq = struct.unpack_from("IIIIII", params, 80)    # head tail mask entries overflow cqes
def ring_map(size, off):
    return mmap.mmap(ring, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=off)
sqm = ring_map(sq[6] + sq_entries * 4, OFF_SQ_RING)
cqm = ring_map(cq[5] + cq_entries * 16, OFF_CQ_RING)
sqes = ring_map(sq_entries * 64, OFF_SQES)
addr, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
if fam == socket.AF_INET:
    sa = struct.pack("=H", fam) + struct.pack("!H", port) + socket.inet_pton(fam, addr) + bytes(8)
else:
    sa = struct.pack("=H", fam) + struct.pack("!HI", port, 0) + socket.inet_pton(fam, addr) + bytes(4)
sabuf = ctypes.create_string_buffer(sa, len(sa))
# one SQE: opcode, flags, ioprio, fd, off (= addrlen), addr (= the sockaddr), len, op flags, user_data
struct.pack_into("=BBHiQQIIQ", sqes, 0, IORING_OP_CONNECT, 0, 0, s.fileno(), len(sa),
                 ctypes.addressof(sabuf), 0, 0, 1)
tail = struct.unpack_from("I", sqm, sq[1])[0]
struct.pack_into("I", sqm, sq[6] + (tail & sq[2]) * 4, 0)
struct.pack_into("I", sqm, sq[1], tail + 1)
n = libc.syscall(SYS_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, None, 0)
if n < 0:
    print("enter", name(ctypes.get_errno()))
    sys.exit(0)
head = struct.unpack_from("I", cqm, cq[0])[0]
_, res, _ = struct.unpack_from("=QiI", cqm, cq[5] + (head & cq[2]) * 16)
struct.pack_into("I", cqm, cq[0], head + 1)
if res < 0:
    print("connect", name(-res))
    sys.exit(0)
print("connect ok")
print("local", s.getsockname()[0])
s.sendall(b"hello\n")
s.settimeout(10)
print("echo", s.recv(100).decode().strip())
"""


def _run(childflow, addr, opts=(), path="relay"):
    res = childflow.run("--tcp-path", path, *opts, "--", "/usr/bin/python3", "-c",
                        URING_CONNECT, addr, str(T.ECHO_PORT), timeout=60)
    assert res.rc == 0, str(res)
    got = dict(line.partition(" ")[::2] for line in res.out.splitlines())
    if "setup" in got and path == "relay":
        pytest.skip(f"io_uring_setup fails in the tree here: {got['setup']}")
    return got


@pytest.mark.parametrize("addr", [T.ORIGIN_V4, T.ORIGIN_V6], ids=["ipv4", "ipv6"])
def test_io_uring_connect_takes_the_relay_and_its_policy(childflow, addr):
    why = _io_uring_disabled()
    if why:
        pytest.skip(why)
    got = _run(childflow, addr)
    assert got == {"connect": "ok", "local": CHILD[addr], "echo": "hello"}, got
    prefix = "32" if ":" not in addr else "128"
    got = _run(childflow, addr, ("--deny-cidr", f"{addr}/{prefix}"))
    assert got == {"connect": DENIED[addr]}, got


def test_io_uring_is_refused_where_sockets_are_switched(childflow):
    # A ring's operations run unseen by the tree's filter: on a host socket
    # (a switched one) IORING_OP_CONNECT reached the host's loopback
    # (test_escape_switched.py). Under --tcp-path auto no ring is made.
    got = _run(childflow, T.ORIGIN_V4, path="auto")
    assert got == {"setup": "EPERM"}, got
