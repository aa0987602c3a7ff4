"""Switched sockets (--tcp-path auto, issue 18): the tree's TCP connect() is
trapped by a seccomp user notification and the engine hands the tree a vetted
host socket. A switched socket shows the host's address in getsockname()
(HOST_V4 / HOST_V6), a relayed one the sandbox's own (198.18.0.2 /
fd63:6866:6c77::2): that is how these tests tell the paths apart. Every
result must be the one the relay path gives, errors and policy included."""

import json
import os

import pytest

import test_escape_hostlocal as hl
import topology as T
from test_escape_hostlocal import host_service  # noqa: F401 (a fixture)

pytestmark = pytest.mark.core

CHILD_V4 = "198.18.0.2"
CHILD_V6 = "fd63:6866:6c77::2"
NO_ROUTE_V6 = "2001:db8:ffff::1"  # the world has no route to it
NO_HOST_V4 = "203.0.113.200"  # on the host-world link, where nobody answers ARP

# ADDR PORT MODE [SYNCNT]: MODE "block" (a blocking connect), "nonblock" (connect, then
# poll for up to 3 s, then SO_ERROR) or "alarm" (a blocking connect that a
# SIGALRM after 1 s interrupts; then whether the socket is still connecting,
# as the kernel leaves it) or "restart" (the same SIGALRM with SA_RESTART: the
# kernel restarts the connect, which goes on waiting). SYNCNT sets TCP_SYNCNT
# (1: a connect to silence times out after 3 s). Prints the result, then the
# local address.
PROBE = r"""
import errno, os, select, signal, socket, sys
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
if len(sys.argv) > 4:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, int(sys.argv[4]))
def name(e):
    return errno.errorcode.get(e, str(e))
try:
    if mode == "nonblock":
        s.setblocking(False)
        r = s.connect_ex((addr, port))
        print("first", name(r) if r else "0")
        if r == errno.EINPROGRESS:
            p = select.poll()
            p.register(s, select.POLLOUT)
            if not p.poll(3000):
                print("result timeout")
                sys.exit(0)
            r = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        print("result", name(r) if r else "ok")
    else:
        if mode == "alarm":
            def on_alarm(*a):
                raise InterruptedError(errno.EINTR, "alarm")
            signal.signal(signal.SIGALRM, on_alarm)
            signal.alarm(1)
        if mode == "restart":
            signal.signal(signal.SIGALRM, lambda *a: None)
            signal.siginterrupt(signal.SIGALRM, False)
            signal.alarm(1)
        r = s.connect_ex((addr, port))
        print("result", name(r) if r else "ok")
except OSError as e:
    print("result", name(e.errno))
    if mode == "alarm":
        p = select.poll()
        p.register(s, select.POLLOUT)
        print("after", "ready" if p.poll(2000) else "connecting")
print("local", s.getsockname()[0])
"""

# Connects, then tries to re-aim the socket: a second connect() elsewhere and
# a sendto() with another address; the echo server must answer on the first.
REAIM = r"""
import errno, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.connect((sys.argv[1], int(sys.argv[2])))
try:
    s.connect((sys.argv[3], int(sys.argv[2])))
    print("second connected")
except OSError as e:
    print("second", errno.errorcode.get(e.errno, e.errno))
try:
    n = s.sendto(b"hello\n", (sys.argv[3], int(sys.argv[2])))
    print("sendto", n)
except OSError as e:
    print("sendto", errno.errorcode.get(e.errno, e.errno))
s.settimeout(10)
print("echo", s.recv(100).decode().strip())
print("peer", s.getpeername()[0])
"""

# A program that installs its own seccomp filter (allow everything) before it
# connects, as browsers and sandboxes do.
OWN_FILTER = r"""
import ctypes, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
insn = struct.pack("HBBI", 0x06, 0, 0, 0x7fff0000)  # BPF_RET|BPF_K SECCOMP_RET_ALLOW
buf = ctypes.create_string_buffer(insn)
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(1, ctypes.addressof(buf))
assert libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
r = libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)
print("filter", r, ctypes.get_errno())
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
print("reply", s.recv(12).decode())
print("local", s.getsockname()[0])
"""


def _run(childflow, script, *args, opts=(), timeout=30):
    # Always an explicit path: CHILDFLOW_TEST_TCP_PATH=relay must not turn these around.
    if "--tcp-path" not in opts:
        opts = ("--tcp-path", "auto", *opts)
    res = childflow.run(*opts, "--", "/usr/bin/python3", "-c", script, *args, timeout=timeout)
    return res


def _fields(out):
    got = {}
    for line in out.splitlines():
        key, _, val = line.partition(" ")
        got[key] = val
    return got


def _probe(childflow, addr, port, mode, opts=(), syncnt=None):
    extra = () if syncnt is None else (str(syncnt),)
    res = _run(childflow, PROBE, addr, str(port), mode, *extra, opts=opts)
    assert res.rc == 0, str(res)
    return _fields(res.out)


@pytest.mark.parametrize("addr,host,child", [(T.ORIGIN_V4, T.HOST_V4, CHILD_V4),
                                             (T.ORIGIN_V6, T.HOST_V6, CHILD_V6)],
                         ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("mode", ["block", "nonblock"])
def test_connect_is_switched_and_relay_is_kept_on_request(childflow, addr, host, child, mode):
    got = _probe(childflow, addr, T.HTTP_PORT, mode)
    assert got["result"] == "ok" and got["local"] == host, got
    if mode == "nonblock":
        assert got["first"] in ("EINPROGRESS", "0"), got
    relay = _probe(childflow, addr, T.HTTP_PORT, mode, opts=("--tcp-path", "relay"))
    assert relay["result"] == "ok" and relay["local"] == child, relay


@pytest.mark.parametrize("addr", [T.ORIGIN_V4, T.ORIGIN_V6], ids=["ipv4", "ipv6"])
def test_http_through_a_switched_socket(childflow, addr):
    url = f"http://{addr}/" if ":" not in addr else f"http://[{addr}]/"
    res = childflow.run("--tcp-path", "auto", "--", "curl", "-sS", "--max-time", "20", url)
    assert res.rc == 0 and res.out == T.ORIGIN_BODY, str(res)


@pytest.mark.parametrize("addr,port,mode,want", [
    (T.ORIGIN_V4, T.CLOSED_PORT, "block", "ECONNREFUSED"),
    (T.ORIGIN_V6, T.CLOSED_PORT, "block", "ECONNREFUSED"),
    (T.ORIGIN_V4, T.CLOSED_PORT, "nonblock", "ECONNREFUSED"),
    (T.BLACKHOLE_V4, T.HTTP_PORT, "nonblock", "timeout"),
    (T.BLACKHOLE_V6, T.HTTP_PORT, "nonblock", "timeout"),
    (T.BLACKHOLE_V4, T.HTTP_PORT, "alarm", "EINTR"),
    # the world has no route there (ICMPv6 no route), nobody answers ARP there
    (NO_ROUTE_V6, T.HTTP_PORT, "block", "ENETUNREACH"),
    (NO_ROUTE_V6, T.HTTP_PORT, "nonblock", "ENETUNREACH"),
    (NO_HOST_V4, T.HTTP_PORT, "block", "EHOSTUNREACH"),
], ids=["refused-v4", "refused-v6", "refused-nonblock", "timeout-v4", "timeout-v6",
        "interrupted", "net-unreachable", "net-unreachable-nonblock", "host-unreachable"])
def test_connect_results_match_the_relay(childflow, addr, port, mode, want):
    got = _probe(childflow, addr, port, mode)
    relay = _probe(childflow, addr, port, mode, opts=("--tcp-path", "relay"))
    assert got["result"] == want, got
    assert got["result"] == relay["result"], (got, relay)
    if mode == "alarm":
        assert got["after"] == relay["after"] == "connecting", (got, relay)


@pytest.mark.parametrize("addr,want", [(T.ORIGIN_V4, "EHOSTUNREACH"), (T.ORIGIN_V6, "EACCES")],
                         ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("mode", ["block", "nonblock"])
def test_policy_denial_matches_the_relay(childflow, addr, want, mode):
    cidr = f"{addr}/32" if ":" not in addr else f"{addr}/128"
    opts = ("--deny-cidr", cidr, "--fail-on-leak")
    outs = {}
    for path in ("auto", "relay"):
        res = _run(childflow, PROBE, addr, str(T.HTTP_PORT), mode, opts=(*opts, "--tcp-path", path))
        # the command exited 0 but traffic was blocked: --fail-on-leak's status
        assert res.rc == 122, str(res)
        outs[path] = (_fields(res.out)["result"],
                      [l for l in res.err.splitlines() if addr in l])
    assert outs["auto"][0] == want, outs
    assert outs["auto"] == outs["relay"], outs


def test_switched_socket_cannot_be_reaimed(childflow):
    res = _run(childflow, REAIM, T.ORIGIN_V4, str(T.ECHO_PORT), T.ORIGIN_B_V4)
    assert res.rc == 0, str(res)
    got = _fields(res.out)
    assert got["second"] == "EISCONN", got
    # TCP ignores sendto()'s address: the bytes went to the vetted peer
    assert got["sendto"] == "6", got
    assert got["echo"] == "hello" and got["peer"] == T.ORIGIN_V4, got


@pytest.mark.parametrize("target", ["127.0.0.1", "0.0.0.0", "::1", "::ffff:127.0.0.1"])
def test_tree_local_destinations_stay_in_the_tree(childflow, target):
    # The tree listens on its own loopback; the host has nothing there. A
    # switched 127.0.0.1 or 0.0.0.0 would have reached the host's loopback.
    script = r"""
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
srv = socket.socket(fam, socket.SOCK_STREAM)
srv.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
srv.listen(1)
c = socket.create_connection((sys.argv[1], srv.getsockname()[1]), timeout=5)
a, _ = srv.accept()
print("peer", a.getpeername()[0])
"""
    res = _run(childflow, script, target)
    assert res.rc == 0 and "peer" in res.out, str(res)
    assert T.HOST_V4 not in res.out and T.HOST_V6 not in res.out, str(res)


def test_tree_with_its_own_seccomp_filter(childflow):
    res = _run(childflow, OWN_FILTER, T.ORIGIN_V4, str(T.HTTP_PORT))
    assert res.rc == 0, str(res)
    got = _fields(res.out)
    assert got["filter"] == "0 0" and got["reply"].startswith("HTTP/1."), got
    assert got["local"] == T.HOST_V4, got


# A program that asks for a seccomp user-notification listener of its own
# (a nested childflow does, and container runtimes): prints the errno name or
# "fd".
OWN_LISTENER = r"""
import ctypes, errno, struct
libc = ctypes.CDLL(None, use_errno=True)
SYS_seccomp, SECCOMP_SET_MODE_FILTER, FLAG_NEW_LISTENER = 317, 1, 1 << 3
insn = struct.pack("HBBI", 0x06, 0, 0, 0x7fff0000)
buf = ctypes.create_string_buffer(insn)
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(1, ctypes.addressof(buf))
libc.prctl(38, 1, 0, 0, 0)
r = libc.syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, FLAG_NEW_LISTENER, ctypes.byref(prog))
print("listener", "fd" if r >= 0 else errno.errorcode[ctypes.get_errno()])
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the probe uses x86_64's syscall number")
def test_a_second_listener_gets_ebusy_and_relay_is_the_way_out(childflow):
    # The kernel allows one user-notification listener per filter chain: under
    # --tcp-path auto the tree's is childflow's (a nested childflow then uses
    # the relay for its own tree); --tcp-path relay installs none.
    res = _run(childflow, OWN_LISTENER)
    assert res.rc == 0 and _fields(res.out)["listener"] == "EBUSY", str(res)
    res = _run(childflow, OWN_LISTENER, opts=("--tcp-path", "relay"))
    assert res.rc == 0 and _fields(res.out)["listener"] == "fd", str(res)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the probe uses x86_64's syscall number")
def test_no_listener_when_the_run_needs_the_relay(childflow, topo):
    # A capture needs every packet to cross tun0: the whole run takes the
    # relay, and the tree has no listener. A flow log no longer does
    # (engine/sockend.c gives switched sockets their flow_end).
    d = topo.make_user_dir("test_fastpath-log")
    res = _run(childflow, OWN_LISTENER, opts=("--capture", os.path.join(d, "c.pcapng")))
    assert res.rc == 0 and _fields(res.out)["listener"] == "fd", str(res)
    res = _run(childflow, OWN_LISTENER, opts=("--flow-log", os.path.join(d, "flows.jsonl")))
    assert res.rc == 0 and _fields(res.out)["listener"] == "EBUSY", str(res)


# After a failed connect the tree holds the engine's host socket: connecting it
# again must be vetted again, never passed to the kernel (which would connect
# it in the host's namespace, loopback included).
RECONNECT = r"""
import errno, socket, sys
s = socket.socket()
for addr, port in zip(sys.argv[1::2], sys.argv[2::2]):
    r = s.connect_ex((addr, int(port)))
    print("connect", addr, errno.errorcode.get(r, r) if r else "ok")
    if r == 0:
        s.settimeout(5)
        print("read", s.recv(100).decode().strip() or "eof")
"""


def test_a_switched_socket_reconnected_cannot_reach_the_hosts_loopback(childflow, host_service):
    res = _run(childflow, RECONNECT, T.ORIGIN_V4, str(T.CLOSED_PORT), "127.0.0.1",
               str(hl.LOOP_PORT), "0.0.0.0", str(hl.PORT))
    assert res.rc == 0, str(res)
    assert "host-service" not in res.out, str(res)
    lines = res.out.splitlines()
    assert lines[0] == f"connect {T.ORIGIN_V4} ECONNREFUSED", str(res)
    assert lines[1] == "connect 127.0.0.1 ECONNREFUSED", str(res)
    assert lines[2] == "connect 0.0.0.0 ECONNREFUSED", str(res)


# A connected socket: connect() with an address it cannot read is EFAULT, as
# the kernel reads the address first; connect(AF_UNSPEC) dissolves it; the
# dissolved host socket's next connect() is vetted anew: the host's loopback
# stays out of reach, the origin is switched again.
DISSOLVE = r"""
import ctypes, errno, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
name = lambda r: errno.errorcode.get(r, r) if r else "ok"
s = socket.socket()
print("first", name(s.connect_ex((sys.argv[1], 80))))
r = libc.connect(s.fileno(), None, 16)  # the address is read before the state is looked at
print("fault", name(ctypes.get_errno()) if r else "ok")
unspec = ctypes.create_string_buffer(16)  # sa_family 0: AF_UNSPEC
r = libc.connect(s.fileno(), unspec, 16)
print("dissolve", name(ctypes.get_errno()) if r else "ok")
print("loopback", name(s.connect_ex(("127.0.0.1", int(sys.argv[2])))))
print("again", name(s.connect_ex((sys.argv[1], 80))))
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
s.settimeout(10)
print("reply", s.recv(12).decode())
print("local", s.getsockname()[0])
"""


def test_a_dissolved_switched_socket_is_vetted_again(childflow, host_service):
    got = {}
    for path in ("auto", "relay"):
        res = _run(childflow, DISSOLVE, T.ORIGIN_V4, str(hl.LOOP_PORT),
                   opts=("--tcp-path", path))
        assert res.rc == 0 and "host-service" not in res.out, str(res)
        got[path] = _fields(res.out)
    want = {"first": "ok", "fault": "EFAULT", "dissolve": "ok", "loopback": "ECONNREFUSED", "again": "ok",
            "reply": "HTTP/1.1 200"}
    assert {k: got["auto"].get(k) for k in want} == want, got
    assert {k: got["relay"].get(k) for k in want} == want, got
    assert got["auto"]["local"] == T.HOST_V4 and got["relay"]["local"] == CHILD_V4, got


@pytest.mark.parametrize("addr", [T.HOST_V4, T.HOST_V6], ids=["ipv4", "ipv6"])
def test_the_hosts_own_addresses_are_denied_on_the_switched_path(childflow, host_service, addr):
    outs = {}
    for path in ("auto", "relay"):
        res = _run(childflow, PROBE, addr, str(hl.PORT), "block", opts=("--tcp-path", path))
        assert res.rc == 0 and "host-service" not in res.out, str(res)
        outs[path] = (_fields(res.out)["result"], [l for l in res.err.splitlines() if addr in l])
    assert outs["auto"][0] == ("EHOSTUNREACH" if ":" not in addr else "EACCES"), outs
    assert outs["auto"] == outs["relay"], outs


# Options set before connect() are the host socket's too.
OPTIONS = r"""
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 11)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 12345)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x28)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 3))
s.connect((sys.argv[1], int(sys.argv[2])))
print("local", s.getsockname()[0])
print("opts", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
      s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
      s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
      s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
      s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
      s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
      s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS),
      struct.unpack("ii", s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)))
"""


def test_options_set_before_connect_are_copied(childflow):
    res = _run(childflow, OPTIONS, T.ORIGIN_V4, str(T.HTTP_PORT))
    assert res.rc == 0, str(res)
    got = _fields(res.out)
    assert got["local"] == T.HOST_V4, got
    assert got["opts"] == "1 1 77 11 4 12345 40 (1, 3)", got


# connect() on what is not a socket: the kernel's own errors, on both paths.
NOT_A_SOCKET = r"""
import ctypes, errno, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
sa = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 80) + socket.inet_aton(sys.argv[1]) + bytes(8)
r, w = os.pipe()
for name, fd in (("pipe", r), ("closed", 999)):
    rc = libc.connect(fd, sa, len(sa))
    print(name, errno.errorcode[ctypes.get_errno()] if rc < 0 else "ok")
"""


def test_connect_on_what_is_not_a_socket_gets_the_kernels_errors(childflow):
    for path in ("auto", "relay"):
        res = _run(childflow, NOT_A_SOCKET, T.ORIGIN_V4, opts=("--tcp-path", path))
        assert res.rc == 0, str(res)
        got = _fields(res.out)
        assert got == {"pipe": "ENOTSOCK", "closed": "EBADF"}, (path, got)


@pytest.mark.parametrize("addr,mode", [(T.BLACKHOLE_V4, "block"), (T.BLACKHOLE_V6, "block"),
                                       (T.BLACKHOLE_V4, "restart")],
                         ids=["ipv4", "ipv6", "restarted-by-a-signal"])
def test_blocking_connect_to_silence_times_out_with_the_trees_syn_retries(childflow, addr, mode):
    # TCP_SYNCNT 1: the tree's connect gives up after about 3 s, on the host
    # socket too (it is copied); a connect restarted after a signal goes on
    # waiting for the same result.
    got = _probe(childflow, addr, T.HTTP_PORT, mode, syncnt=1)
    relay = _probe(childflow, addr, T.HTTP_PORT, mode, opts=("--tcp-path", "relay"), syncnt=1)
    assert got["result"] == relay["result"] == "ETIMEDOUT", (got, relay)


# sendto(MSG_FASTOPEN) connects without connect(): the filter never sees it,
# so it takes the relay, whose policy holds.
FASTOPEN = r"""
import errno, socket, sys
s = socket.socket()
try:
    s.sendto(b"hello\n", socket.MSG_FASTOPEN, (sys.argv[1], int(sys.argv[2])))
    s.settimeout(10)
    print("echo", s.recv(100).decode().strip())
    print("local", s.getsockname()[0])
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno))
"""


def test_tcp_fast_open_is_refused_where_sockets_are_switched_and_relayed_elsewhere(childflow):
    # sendto(MSG_FASTOPEN) connects without connect(): under --tcp-path auto
    # the tree's filter answers EOPNOTSUPP (a host without TFO's answer:
    # programs then connect() first), since on a host socket it would connect
    # past the engine (test_escape_switched.py). The relay path keeps TFO,
    # through the relay and its policy.
    res = _run(childflow, FASTOPEN, T.ORIGIN_V4, str(T.ECHO_PORT))
    assert res.rc == 0 and _fields(res.out) == {"error": "ENOTSUP"}, str(res)
    relay = ("--tcp-path", "relay")
    res = _run(childflow, FASTOPEN, T.ORIGIN_V4, str(T.ECHO_PORT), opts=relay)
    assert res.rc == 0, str(res)
    got = _fields(res.out)
    assert got.get("echo") == "hello" and got.get("local") == CHILD_V4, got
    res = _run(childflow, FASTOPEN, T.ORIGIN_V4, str(T.ECHO_PORT),
               opts=(*relay, "--deny-cidr", f"{T.ORIGIN_V4}/32"))
    assert res.rc == 0 and _fields(res.out) == {"error": "EHOSTUNREACH"}, str(res)


def test_a_run_with_a_summary_switches_and_counts_its_connections_by_path(childflow):
    # A summary no longer keeps connections on the relay (engine/sockend.c
    # gives a switched socket its flow_end): the one connection is switched,
    # and counted so; under --tcp-path relay it is relayed.
    for path, want in (("auto", {"socket": 1, "relay": 0, "kernel": 0}),
                       ("relay", {"socket": 0, "relay": 1, "kernel": 0})):
        res = childflow.run("--tcp-path", path, "--summary", "--summary-format", "json", "--",
                            "curl", "-sS", "-o", "/dev/null", "--max-time", "20",
                            f"http://{T.ORIGIN_V4}/")
        assert res.rc == 0, str(res)
        summary = json.loads(res.err[res.err.index("{"):])
        assert summary["connections"]["by_path"] == want, (path, summary)


def test_the_engine_stops_reading_the_listener_once_the_tree_is_gone(childflow, topo):
    # When the last task that holds the filter exits, the listener reports
    # HUP for good (level-triggered): an engine that went on reading it spun
    # until the run ended, 2 ms of CPU on every start-up and the whole of a
    # relay's flush. strace counts its reads: one per connect, none failed.
    d = topo.make_user_dir("test_fastpath-hup")
    trace = os.path.join(d, "ioctl.trace")
    script = f"import socket; socket.create_connection(('{T.ORIGIN_V4}', 80)).close()"
    env = childflow.env()
    # LeakSanitizer cannot run under ptrace (the sanitizer build's run)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    res = topo.run_user(["strace", "-f", "-qq", "-e", "trace=ioctl", "-o", trace,
                         *childflow.argv("--tcp-path", "auto", "--", "/usr/bin/python3", "-c",
                                         script)],
                        env=env, timeout=60)
    assert res.rc == 0, str(res)
    with open(trace) as f:
        lines = f.read().splitlines()
    # (with -f a call may print as "<unfinished ...>" and "<... ioctl resumed>")
    reads = [line for line in lines if "SECCOMP_IOCTL_NOTIF_RECV" in line]
    assert len(reads) == 1, reads
    assert not [line for line in lines if "ENOENT" in line], lines


# A blocking connect refused, then the same socket connected elsewhere: the
# kernel lets a socket whose connect failed try again.
RETRY = r"""
import errno, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
for i, port in enumerate(sys.argv[2:]):
    r = s.connect_ex((sys.argv[1], int(port)))
    print(i, errno.errorcode.get(r, r) if r else "ok")
print("local", s.getsockname()[0])
"""


@pytest.mark.parametrize("addr,host", [(T.ORIGIN_V4, T.HOST_V4), (T.ORIGIN_V6, T.HOST_V6)],
                         ids=["ipv4", "ipv6"])
def test_a_refused_switched_socket_connects_again_as_the_relay_path_lets_it(childflow, addr,
                                                                           host):
    ports = (str(T.CLOSED_PORT), str(T.HTTP_PORT), str(T.HTTP_PORT))
    got = _fields(_run(childflow, RETRY, addr, *ports).out)
    relay = _fields(_run(childflow, RETRY, addr, *ports, opts=("--tcp-path", "relay")).out)
    want = {"0": "ECONNREFUSED", "1": "ok", "2": "EISCONN"}
    assert {k: got.get(k) for k in want} == want and got["local"] == host, got
    assert {k: relay.get(k) for k in want} == want, relay


# A non-blocking connect, a poll, then connect() twice more, a poll and one
# more: the kernel says 0 the first time after the connection is made (as ab
# and APR rely on), then EISCONN. A refused one says ECONNREFUSED the first
# time (its pending error, no new attempt), then starts anew (EINPROGRESS).
AGAIN = r"""
import errno, select, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setblocking(False)
name = lambda r: errno.errorcode.get(r, r) if r else "ok"
print("first", name(s.connect_ex((sys.argv[1], int(sys.argv[2])))))
select.select([], [s], [], 5)
print("second", name(s.connect_ex((sys.argv[1], int(sys.argv[2])))))
print("third", name(s.connect_ex((sys.argv[1], int(sys.argv[2])))))
select.select([], [s], [], 5)
print("fourth", name(s.connect_ex((sys.argv[1], int(sys.argv[2])))))
print("local", s.getsockname()[0])
"""


@pytest.mark.parametrize("addr,host", [(T.ORIGIN_V4, T.HOST_V4), (T.ORIGIN_V6, T.HOST_V6)],
                         ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("port,want", [
    (T.HTTP_PORT, ("EINPROGRESS", "ok", "EISCONN", "EISCONN")),
    (T.CLOSED_PORT, ("EINPROGRESS", "ECONNREFUSED", "EINPROGRESS", "ECONNREFUSED"))],
    ids=["connected", "refused"])
def test_connect_after_a_non_blocking_one_answers_as_the_kernel(childflow, addr, host, port,
                                                                want):
    res = _run(childflow, AGAIN, addr, str(port), opts=("--summary", "--summary-format", "json"))
    got = _fields(res.out)
    relay = _fields(_run(childflow, AGAIN, addr, str(port), opts=("--tcp-path", "relay")).out)
    want = dict(zip(("first", "second", "third", "fourth"), want))
    assert {k: got.get(k) for k in want} == want, got
    assert {k: relay.get(k) for k in want} == want, relay
    # Every attempt switched: one connection, or the refused one's two.
    by_path = json.loads(res.err[res.err.index("{"):])["connections"]["by_path"]
    assert by_path["socket"] == (1 if port == T.HTTP_PORT else 2), by_path
    assert by_path["relay"] == 0, by_path
    if port == T.HTTP_PORT:
        assert got["local"] == host, got
