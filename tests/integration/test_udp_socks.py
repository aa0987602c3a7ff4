"""--proxy socks5://: the tree's UDP goes through the proxy's UDP ASSOCIATE
(RFC 1928 section 7), and a proxy without UDP refuses it at once without a
datagram leaving directly (issue 21).

dante (danted, UDP ASSOCIATE) runs here as root in the topology's HOST
namespace, where childflow runs, because only that namespace routes to the
far echo server.  It listens on DANTE_V4 (added to the host's lo) and sends
from DANTE_V4 / DANTE_V6 (DANTE_V6 is deprecated on the host's eth0, so the
host never picks it as a source itself): the echo server's log tells the
proxy's datagrams from direct ones (the host's own HOST_V4 / HOST_V6).  The
fixture removes the daemon (by pid), the addresses and its files.

microsocks (proxies.py, user/password) has no UDP: it answers UDP ASSOCIATE
with "command not supported".
"""

import contextlib
import os
import subprocess
import time

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    SOCKS_PASSWORD, SOCKS_USER, flow_events, microsocks, proxy_world, run_with_flow_log)

DANTE_V4 = "203.0.113.77"
DANTE_V6 = "2001:db8:1::77"
DANTE_PORT = 1080
TARGET = {"ipv4": T.FAR_V4, "ipv6": T.FAR_V6}
DANTE_EGRESS = {"ipv4": DANTE_V4, "ipv6": DANTE_V6}
HOST_ADDR = {"ipv4": T.HOST_V4, "ipv6": T.HOST_V6}
FAMILIES = pytest.mark.parametrize("family", ["ipv4", "ipv6"])

# One UDP round trip from a connected socket: ADDR PORT.  Prints "echoed",
# "refused ECONNREFUSED", "timeout" or "error NAME".
UDP_PROBE = r"""
import errno, os, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(20)
s.connect((sys.argv[1], int(sys.argv[2])))
data = os.urandom(100)
s.send(data)
try:
    got = s.recv(1000)
except ConnectionRefusedError as e:
    print(f"refused {errno.errorcode[e.errno]}")
except (socket.timeout, TimeoutError):
    print("timeout")
except OSError as e:
    print(f"error {errno.errorcode.get(e.errno, e.errno)}")
else:
    print("echoed" if got == data else "different")
"""

# Two sockets of the tree to the same destination, each gets its own echo back.
UDP_TWO_SOCKETS = r"""
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
a, b = socket.socket(fam, socket.SOCK_DGRAM), socket.socket(fam, socket.SOCK_DGRAM)
for s in (a, b):
    s.settimeout(20)
    s.connect((sys.argv[1], int(sys.argv[2])))
ok = 0
for i in range(3):
    a.send(b"a%d" % i)
    ok += a.recv(100) == b"a%d" % i
    b.send(b"b%d" % i)
    ok += b.recv(100) == b"b%d" % i
print(f"ok {ok}")
"""


class Dante:
    def __init__(self, topo):
        self.topo = topo
        self.dir = os.path.join(topo.run_dir, "t", "dante")
        self.log = os.path.join(self.dir, "danted.log")
        self.proc = None
        self.added = []

    def start(self):
        os.makedirs(self.dir, mode=0o755)
        ns = self.topo.host_ns
        for addr, dev, extra in ((f"{DANTE_V4}/32", "lo", []),
                                 (f"{DANTE_V6}/128", "eth0", ["nodad", "preferred_lft", "0"])):
            T.sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev, *extra])
            self.added.append((addr, dev))
        conf = os.path.join(self.dir, "danted.conf")
        with open(conf, "w") as f:
            f.write(f"""\
logoutput: {self.log}
internal: {DANTE_V4} port = {DANTE_PORT}
external: {DANTE_V4}
external: {DANTE_V6}
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
    from: 0/0 to: 0/0
}}
socks pass {{
    from: 0/0 to: 0/0
    command: udpassociate udpreply
    log: connect disconnect
}}
""")
        out = open(os.path.join(self.dir, "danted.out"), "ab")
        try:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, "danted", "-f", conf, "-N", "1"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        finally:
            out.close()
        for _ in range(200):
            if self.proc.poll() is not None:
                raise T.TopologyError(f"danted exited {self.proc.returncode}: {self.output()}")
            res = T.sh(["ip", "netns", "exec", ns, "ss", "-Hltn", "src", DANTE_V4],
                       check=False)
            if f":{DANTE_PORT}" in res.out:
                return
            time.sleep(0.05)
        raise T.TopologyError(f"danted not listening: {self.output()}")

    def output(self):
        text = []
        for p in (self.log, os.path.join(self.dir, "danted.out")):
            with contextlib.suppress(OSError), open(p, errors="replace") as f:
                text.append(f.read()[-3000:])
        return "\n".join(text)

    def stop(self):
        problems = []
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout=5)
        for addr, dev in self.added:
            res = T.sh(["ip", "-n", self.topo.host_ns, "addr", "del", addr, "dev", dev],
                       check=False)
            if res.rc != 0:
                problems.append(f"address {addr}: {res.err.strip()}")
        with contextlib.suppress(FileNotFoundError):
            import shutil
            shutil.rmtree(self.dir)
        return problems


@pytest.fixture(scope="module")
def dante(topo):
    d = Dante(topo)
    try:
        d.start()
        yield d
    finally:
        problems = d.stop()
        assert not problems, problems


def _echo_peers(topo, mark):
    """Peer addresses of the datagrams the far echo server got since mark."""
    return [line.split()[1] for line in topo.log_since("udp-echo", mark).splitlines()
            if line.startswith("udp ")]


def _udp_starts(log):
    return [e for e in flow_events(log, "datagram_flow_start") if e["protocol"] == "udp"]


@FAMILIES
@pytest.mark.parametrize("extra", [[], ["--proxy-only"]], ids=["plain", "proxy-only"])
def test_udp_echo_goes_through_dante_udp_associate(topo, dante, childflow, userdir, family,
                                                   extra):
    mark = topo.log_mark("udp-echo")
    res, log = run_with_flow_log(childflow, userdir,
                                 ["-p", f"socks5://{DANTE_V4}:{DANTE_PORT}", *extra],
                                 T.PYTHON, "-c", UDP_PROBE, TARGET[family], str(T.UDP_ECHO_PORT))
    assert res.rc == 0, str(res)
    assert res.out.strip() == "echoed", str(res) + dante.output()
    # the echo server saw the proxy, never the host itself
    peers = support.wait_for(lambda: _echo_peers(topo, mark))
    assert peers == [DANTE_EGRESS[family]], (peers, str(res))
    starts = _udp_starts(log)
    assert len(starts) == 1 and starts[0]["via_proxy"] is True, starts
    assert starts[0].get("error") in (None, ""), starts
    ends = [e for e in flow_events(log, "datagram_flow_end") if e["protocol"] == "udp"]
    assert len(ends) == 1 and ends[0]["via_proxy"] is True, ends


def test_replies_reach_the_right_socket_of_the_tree(topo, dante, childflow):
    mark = topo.log_mark("udp-echo")
    res = childflow.run("-p", f"socks5://{DANTE_V4}:{DANTE_PORT}", "--", T.PYTHON, "-c",
                        UDP_TWO_SOCKETS, T.FAR_V4, str(T.UDP_ECHO_PORT))
    assert res.rc == 0, str(res)
    assert res.out.strip() == "ok 6", str(res)
    peers = support.wait_for(lambda: len(_echo_peers(topo, mark)) == 6 and _echo_peers(topo, mark))
    assert peers == [DANTE_V4] * 6, peers


@FAMILIES
@pytest.mark.parametrize("extra", [[], ["--proxy-only"]], ids=["plain", "proxy-only"])
def test_proxy_without_udp_refuses_at_once_and_nothing_leaves(topo, proxy_world, microsocks,
                                                              childflow, userdir, family, extra):
    mark = topo.log_mark("udp-echo")
    res, log = run_with_flow_log(
        childflow, userdir, ["-p", microsocks.url, "-U", SOCKS_USER, "-P", SOCKS_PASSWORD,
                             *extra],
        T.PYTHON, "-c", UDP_PROBE, TARGET[family], str(T.UDP_ECHO_PORT))
    assert res.rc == 0, str(res)
    # ICMP port unreachable: a connected socket's recv() fails (no 20 s timeout)
    assert res.out.strip() == "refused ECONNREFUSED", str(res)
    assert "UDP ASSOCIATE" in res.err, str(res)
    # past the user/password authentication: microsocks refused the command itself
    assert "SOCKS5 reply 7 (command not supported)" in res.err, str(res)
    # a later run's datagrams would show by now; none came, from anyone
    time.sleep(0.5)
    assert _echo_peers(topo, mark) == [], topo.log_since("udp-echo", mark)
    starts = _udp_starts(log)
    assert starts and all(e["via_proxy"] is True for e in starts), starts
    assert not flow_events(log, "policy_violation"), flow_events(log, "policy_violation")


def test_proxy_down_refuses_udp_and_the_run_goes_on(topo, childflow):
    mark = topo.log_mark("udp-echo")
    # nothing listens on port 1 of the dante address's host
    res = childflow.run("-p", f"socks5://{T.WORLD_V4}:1", "--", "sh", "-c",
                        f"{T.PYTHON} -c '{UDP_PROBE}' {T.FAR_V4} {T.UDP_ECHO_PORT}; "
                        f"{T.PYTHON} -c '{UDP_PROBE}' {T.FAR_V4} {T.UDP_ECHO_PORT}")
    assert res.rc == 0, str(res)
    assert res.out.split("\n")[:2] == ["refused ECONNREFUSED"] * 2, str(res)
    time.sleep(0.5)
    assert _echo_peers(topo, mark) == [], topo.log_since("udp-echo", mark)


def test_the_proxy_own_address_is_no_destination_through_it(topo, proxy_world, microsocks,
                                                             childflow, userdir):
    # a datagram there would reach the proxy's services from the proxy itself
    res, log = run_with_flow_log(
        childflow, userdir, ["-p", microsocks.url, "-U", SOCKS_USER, "-P", SOCKS_PASSWORD],
        T.PYTHON, "-c", UDP_PROBE, microsocks.host, str(T.UDP_ECHO_PORT))
    assert res.rc == 0, str(res)
    assert res.out.strip() == "error EHOSTUNREACH", str(res)  # administratively prohibited
    starts = _udp_starts(log)
    assert len(starts) == 1 and starts[0]["status"] == "error", starts
    assert "proxy's own address" in starts[0]["error"], starts
