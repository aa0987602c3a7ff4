"""Switched sockets through an http:// or socks5:// proxy (issue 18): the
engine connects a host socket to the proxy, runs the CONNECT or SOCKS5
handshake itself and hands the tree the socket only once the tunnel is open.
As in test_fastpath.py, getsockname() tells the paths apart: a switched
socket shows the host's address (HOST_V4, or v4-mapped in an AF_INET6
socket, the proxies being IPv4), a relayed one the sandbox's own.

Besides the proxies of proxies.py, this module starts FAKE proxies in the
world namespace (on the stunnel address, ports FAKE_*): an HTTP and a
SOCKS5 one that send their reply and a banner in ONE send() and then echo
(the engine must not read a byte past the reply), and a silent one that
accepts and never answers (the wait is bounded by the tree's SYN retries).
"""

import contextlib
import json
import os
import subprocess
import time

import pytest

import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    HTTP_PASSWORD, HTTP_USER, SOCKS_PASSWORD, SOCKS_USER, STUNNEL_V4, TINYPROXY_V4,
    assert_tunnelled, proxy_world)

pytestmark = pytest.mark.core

CHILD_V4 = "198.18.0.2"
CHILD_V6 = "fd63:6866:6c77::2"
SWITCHED = (T.HOST_V4, "::ffff:" + T.HOST_V4)

FAKE_HTTP, FAKE_SOCKS, FAKE_SILENT = 3460, 3461, 3462
FAKE_BANNER = "220 fake-origin ready"

# The fake proxies: ARGS ADDR BANNER. Each connection is served in a thread.
FAKE_PROXIES = r"""
import socket, sys, threading
addr, banner = sys.argv[1], sys.argv[2].encode() + b"\r\n"
HTTP, SOCKS, SILENT = 3460, 3461, 3462

def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b

def echo(c):
    while d := c.recv(65536):
        c.sendall(d)

def http(c):
    req = b""
    while b"\r\n\r\n" not in req:
        d = c.recv(4096)
        if not d:
            return
        req += d
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n" + banner)
    echo(c)

def socks(c):
    ver, n = recv_exact(c, 2)
    recv_exact(c, n)
    c.sendall(b"\x05\x00")
    _, _, _, atyp = recv_exact(c, 4)
    alen = {1: 4, 4: 16}.get(atyp) or recv_exact(c, 1)[0]
    recv_exact(c, alen + 2)
    c.sendall(b"\x05\x00\x00\x01" + bytes(6) + banner)
    echo(c)

def silent(c):
    while c.recv(4096):
        pass

def serve(port, fn):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(64)
    while True:
        c, _ = srv.accept()
        def run(c=c):
            with c:
                try:
                    fn(c)
                except (OSError, EOFError, ValueError):
                    pass
        threading.Thread(target=run, daemon=True).start()

for port, fn in ((HTTP, http), (SOCKS, socks)):
    threading.Thread(target=serve, args=(port, fn), daemon=True).start()
serve(SILENT, silent)
"""

# ADDR PORT MODE [SYNCNT]: connect (MODE block, nonblock: connect then poll up
# to 20 s, alarm: a SIGALRM after 1 s interrupts a blocking connect, restart:
# the same with SA_RESTART); then, when connected, the local address, what the
# peer said first when WANT_BANNER is set, and an echo of "ping".
PROBE = r"""
import errno, os, select, signal, socket, sys
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
if len(sys.argv) > 4 and sys.argv[4]:
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
            if not p.poll(20000):
                print("result timeout")
                sys.exit(0)
            r = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        s.setblocking(True)
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
except OSError as e:
    r = e.errno
print("result", name(r) if r else "ok")
if r:
    sys.exit(0)
print("local", s.getsockname()[0])
s.settimeout(10)
if os.environ.get("WANT_BANNER"):
    got = b""
    while not got.endswith(b"\r\n"):
        got += s.recv(100)
    print("banner", got.decode().strip())
s.sendall(b"ping\n")
got = b""
while not got.endswith(b"\n"):
    got += s.recv(100)
print("echo", got.decode().strip())
"""


def _fields(out):
    got = {}
    for line in out.splitlines():
        key, _, val = line.partition(" ")
        got[key] = val
    return got


def _probe(childflow, proxy, addr, port, mode="block", path="auto", syncnt=None, env=None):
    env = dict(env or {})
    env["CHILDFLOW_DEBUG"] = "1"
    res = childflow.run("--tcp-path", path, *proxy, "--", T.PYTHON, "-c", PROBE, addr, str(port),
                        mode, "" if syncnt is None else str(syncnt), env=env, timeout=60)
    assert res.rc == 0, str(res)
    got = _fields(res.out)
    # the engine's own account: how many connects its switch took through the proxy
    line = [l for l in res.err.splitlines() if "switch: " in l]
    got["proxied"] = line[0].rsplit(", ", 1)[1] if line else "no switch"
    # what the user is told (the proxy unreachable, a denial), debug lines aside
    got["said"] = [l for l in res.err.splitlines() if not l.startswith("childflow: debug:")]
    return got


@pytest.fixture(scope="module")
def fakes(proxy_world):
    """The fake proxies, running while this module does."""
    argv = ["ip", "netns", "exec", proxy_world.topo.world_ns, T.PYTHON, "-c", FAKE_PROXIES,
            STUNNEL_V4, FAKE_BANNER]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        want = {(STUNNEL_V4, port) for port in (FAKE_HTTP, FAKE_SOCKS, FAKE_SILENT)}
        for _ in range(200):
            if want <= proxy_world._listening() or p.poll() is not None:
                break
            time.sleep(0.05)
        assert want <= proxy_world._listening(), "the fake proxies did not start"
        yield
    finally:
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(timeout=5)


def _proxy(world, kind):
    if kind == "http":
        return ("-p", world.tinyproxy.url), world.tinyproxy
    if kind == "http-auth":
        return ("-p", world.tinyproxy_auth.url, "-U", HTTP_USER, "-P", HTTP_PASSWORD), \
            world.tinyproxy_auth
    if kind == "socks5-auth":
        return ("-p", world.microsocks.url, "-U", SOCKS_USER, "-P", SOCKS_PASSWORD), \
            world.microsocks
    if kind == "socks5":
        return ("-p", f"socks5://{STUNNEL_V4}:{FAKE_SOCKS}"), None
    raise ValueError(kind)


@pytest.mark.parametrize("kind,addr", [
    ("http", T.ORIGIN_V4), ("http", T.ORIGIN_V6), ("http-auth", T.ORIGIN_V4),
    ("socks5-auth", T.ORIGIN_V4), ("socks5", T.ORIGIN_V4), ("socks5", T.ORIGIN_V6)],
    ids=["http-v4", "http-v6", "http-auth-v4", "socks5-auth-v4", "socks5-v4", "socks5-v6"])
@pytest.mark.parametrize("mode", ["block", "nonblock"])
def test_connect_through_the_proxy_is_switched(childflow, proxy_world, fakes, kind, addr, mode):
    args, proxy = _proxy(proxy_world, kind)
    marks = proxy_world.marks()
    env = {"WANT_BANNER": "1"} if proxy is None else None
    got = _probe(childflow, args, addr, T.ECHO_PORT, mode, env=env)
    assert got["result"] == "ok" and got["local"] in SWITCHED, got
    assert got["echo"] == "ping" and got["proxied"] == "1 through the proxy", got
    if mode == "nonblock":
        assert got["first"] == "0", got  # the handshake is waited for: never EINPROGRESS
    if proxy is not None:
        target = f"[{addr}]:{T.ECHO_PORT}" if ":" in addr else f"{addr}:{T.ECHO_PORT}"
        assert_tunnelled(proxy_world, proxy, marks, target)
    else:
        assert got["banner"] == FAKE_BANNER, got


def test_relay_is_kept_on_request(childflow, proxy_world, fakes):
    got = _probe(childflow, _proxy(proxy_world, "http")[0], T.ORIGIN_V4, T.ECHO_PORT,
                 path="relay")
    assert got["result"] == "ok" and got["local"] == CHILD_V4 and got["echo"] == "ping", got


@pytest.mark.parametrize("port", [FAKE_HTTP, FAKE_SOCKS], ids=["http", "socks5"])
@pytest.mark.parametrize("mode", ["block", "nonblock"])
def test_a_banner_in_the_segment_of_the_reply_arrives_intact(childflow, proxy_world, fakes,
                                                             port, mode):
    # The fake proxy sends its reply and the origin's banner in one send():
    # the engine reads exactly the reply, the banner stays for the tree.
    scheme = "http" if port == FAKE_HTTP else "socks5"
    got = _probe(childflow, ("-p", f"{scheme}://{STUNNEL_V4}:{port}"), T.ORIGIN_V4, 25, mode,
                 env={"WANT_BANNER": "1"})
    assert got["result"] == "ok" and got["local"] in SWITCHED, got
    assert got["banner"] == FAKE_BANNER and got["echo"] == "ping", got


def test_a_stand_in_address_is_switched_and_sent_as_its_name(childflow, proxy_world, fakes):
    script = PROBE.replace("addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]",
                           "addr, port, mode = socket.getaddrinfo(sys.argv[1], None, "
                           "socket.AF_INET)[0][4][0], int(sys.argv[2]), sys.argv[3]")
    marks = proxy_world.marks()
    res = childflow.run("--tcp-path", "auto", "-p", proxy_world.tinyproxy.url,
                        "--proxy-remote-dns", "--", T.PYTHON, "-c", script, T.ORIGIN_NAME,
                        str(T.ECHO_PORT), "block", "", timeout=60)
    assert res.rc == 0, str(res)
    got = _fields(res.out)
    assert got["result"] == "ok" and got["local"] in SWITCHED and got["echo"] == "ping", got
    assert_tunnelled(proxy_world, proxy_world.tinyproxy, marks, f"{T.ORIGIN_NAME}:{T.ECHO_PORT}")


def _failure_cases(world):
    return {
        # tinyproxy allows CONNECT to a few ports only: 403
        "http-refuses-target": ((("-p", world.tinyproxy.url), T.ORIGIN_V4, 587)),
        # microsocks' connect to a closed port: SOCKS5 reply "connection refused"
        "socks5-refuses-target": ((_proxy(world, "socks5-auth")[0], T.ORIGIN_V4,
                                   T.CLOSED_PORT)),
        "http-down": ((("-p", f"http://{TINYPROXY_V4}:1"), T.ORIGIN_V4, T.ECHO_PORT)),
        "socks5-down": ((("-p", f"socks5://{TINYPROXY_V4}:1"), T.ORIGIN_V4, T.ECHO_PORT)),
        "http-auth-wrong": ((("-p", world.tinyproxy_auth.url, "-U", HTTP_USER, "-P", "nope"),
                             T.ORIGIN_V4, T.ECHO_PORT)),
        "socks5-auth-wrong": ((("-p", world.microsocks.url, "-U", SOCKS_USER, "-P", "nope"),
                               T.ORIGIN_V4, T.ECHO_PORT)),
    }


FAILURES = ["http-refuses-target", "socks5-refuses-target", "http-down", "socks5-down",
            "http-auth-wrong", "socks5-auth-wrong"]


@pytest.mark.parametrize("case", FAILURES)
@pytest.mark.parametrize("mode", ["block", "nonblock"])
def test_proxy_failures_give_the_relays_errno(childflow, proxy_world, fakes, case, mode):
    args, addr, port = _failure_cases(proxy_world)[case]
    got = _probe(childflow, args, addr, port, mode)
    relay = _probe(childflow, args, addr, port, mode, path="relay")
    assert got["result"] == relay["result"] == "ECONNREFUSED", (got, relay)
    assert got["proxied"] == "1 through the proxy", got
    assert got["said"] == relay["said"], (got, relay)
    if case.endswith("-down"):
        assert any("cannot connect to the proxy" in l for l in got["said"]), got
    if mode == "nonblock":
        assert got["first"] == "ECONNREFUSED" and relay["first"] == "EINPROGRESS", (got, relay)


@pytest.mark.parametrize("mode", ["block", "nonblock", "restart", "alarm"])
def test_a_silent_proxy_times_out_with_the_trees_syn_retries(childflow, proxy_world, fakes, mode):
    # TCP_SYNCNT 1: on the relay the tree's SYN waits unanswered and its
    # connect gives up after about 3 s; the switched wait ends then too. A
    # restarted connect starts over; an interrupted one ends with EINTR.
    args = ("-p", f"http://{STUNNEL_V4}:{FAKE_SILENT}")
    got = _probe(childflow, args, T.ORIGIN_V4, T.ECHO_PORT, mode, syncnt=1)
    relay = _probe(childflow, args, T.ORIGIN_V4, T.ECHO_PORT, mode, path="relay", syncnt=1)
    want = "EINTR" if mode == "alarm" else "ETIMEDOUT"
    assert got["result"] == relay["result"] == want, (got, relay)
    assert got["proxied"] in ("1 through the proxy", "2 through the proxy"), got


def test_an_https_proxy_keeps_the_relay(childflow, proxy_world, fakes):
    got = _probe(childflow, ("-p", proxy_world.stunnel.url, "--proxy-insecure"), T.ORIGIN_V4,
                 T.ECHO_PORT)
    assert got["result"] == "ok" and got["local"] == CHILD_V4 and got["echo"] == "ping", got
    assert got["proxied"] == "no switch", got


@pytest.mark.parametrize("mode", ["block", "nonblock"])
def test_a_policy_denial_through_the_proxy_matches_the_relay(childflow, proxy_world, fakes, mode):
    # Decided before the proxy is contacted, by the same code: same errno,
    # same denial line; the switch answered it (its account exists) and
    # contacted no proxy.
    args = ("-p", proxy_world.tinyproxy.url, "--deny-cidr", f"{T.ORIGIN_V4}/32")
    got = _probe(childflow, args, T.ORIGIN_V4, T.ECHO_PORT, mode)
    relay = _probe(childflow, args, T.ORIGIN_V4, T.ECHO_PORT, mode, path="relay")
    assert got["result"] == relay["result"] == "EHOSTUNREACH", (got, relay)
    assert got["said"] == relay["said"] and any(T.ORIGIN_V4 in l for l in got["said"]), \
        (got, relay)
    assert got["proxied"] == "0 through the proxy", got


def _flow_bytes(log, port):
    """(path, bytes_sent, bytes_received) of the one TCP flow to @port in the flow log @log."""
    with open(log) as f:
        events = [json.loads(line) for line in f if line.strip()]
    flows = {}
    for ev in events:
        if ev.get("protocol") == "tcp" and ev.get("remote_port") == port:
            flows.setdefault(ev["flow_id"], {})[ev["event"]] = ev
    assert len(flows) == 1, flows
    (flow,) = flows.values()
    assert flow["connect_result"]["via_proxy"] is True, flow
    return (flow["connect_result"]["path"], flow["flow_end"]["bytes_sent"],
            flow["flow_end"]["bytes_received"])


@pytest.mark.parametrize("kind", ["http-auth", "socks5-auth"])
@pytest.mark.parametrize("port,size", [(T.ECHO_PORT, 150000), (T.DISCARD_PORT, 90000)],
                         ids=["echo", "discard"])
def test_a_switched_tunnel_ends_with_the_relays_bytes(childflow, topo, proxy_world, kind, port,
                                                       size):
    # A flow log switches too (sockend.c): the tunnel's socket counted the
    # handshake besides the flow's own bytes, which flow_end must leave out.
    opts, _ = _proxy(proxy_world, kind)
    # Send SIZE bytes; read WANT back (proxies end a tunnel on a half-close), then close.
    client = ("import socket, sys\n"
              "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)\n"
              "s.sendall(b'x' * int(sys.argv[3]))\n"
              "n = 0\n"
              "while n < int(sys.argv[4]):\n"
              "    b = s.recv(65536)\n"
              "    if not b: break\n"
              "    n += len(b)\n"
              "s.close()\n"
              "print('read', n)\n")
    got = {}
    for path in ("auto", "relay"):
        log = os.path.join(topo.make_user_dir(f"fastpath-proxy-{kind}-{port}-{path}"),
                           "flows.jsonl")
        want = size if port == T.ECHO_PORT else 0
        res = childflow.run("--tcp-path", path, "--flow-log", log, *opts, "--",
                            "/usr/bin/python3", "-c", client, T.ORIGIN_V4, str(port), str(size),
                            str(want), timeout=60)
        assert res.rc == 0 and res.out.strip() == f"read {want}", str(res)
        got[path] = _flow_bytes(log, port)
    assert got["auto"] == ("socket", size, want), got
    assert got["relay"] == ("relay", size, want), got
