"""Escapes through the host itself and through multicast (issue: the policy
holds against a hostile tree).

The engine connects from the host's network namespace, so before host_local
a destination that is one of the host's own addresses was a local
connection to the host's services: the tree reached listeners on 0.0.0.0,
:: and the NIC's address (also as ::ffff:a.b.c.d), with and without
--block-private.  Multicast (SSDP, RIPv2) was sent out on the LAN.  Each
attack below is paired with a control that must work in the same run.

The "host" here is the test's host namespace: its NIC addresses are
topology.HOST_V4 / HOST_V6, and a small root server started there listens on
the wildcard addresses and on its loopback."""

import contextlib
import json
import os
import subprocess
import time

import pytest

import featurelib as F
import support
import topology as T

pytestmark = pytest.mark.core

PORT = 8765          # the host's service: TCP and UDP on :: (dual stack: every address)
LOOP_PORT = 8766     # TCP and UDP on the host's 127.0.0.1 and ::1 only
OTHER_PORT = 8767    # also on the loopback, never opened by --allow-host-port
NEW_ADDR = "203.0.113.77"

# A root service in the host namespace: every TCP connection gets "host-service\n",
# every UDP datagram is echoed.  Arguments: (ADDR PORT)...
HOST_SERVICE = r"""
import selectors, signal, socket, sys
sel = selectors.DefaultSelector()
args = sys.argv[1:]
for addr, port in zip(args[::2], args[1::2]):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(fam, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6 and addr == "::":
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((addr, int(port)))
        if kind == socket.SOCK_STREAM:
            s.listen(64)
        sel.register(s, selectors.EVENT_READ, kind)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.data == socket.SOCK_STREAM:
            c, _ = key.fileobj.accept()
            c.sendall(b"host-service\n")
            c.close()
        else:
            data, peer = key.fileobj.recvfrom(65535)
            key.fileobj.sendto(data, peer)
"""

# Counts, on every interface of the namespace it runs in, the UDP datagrams to
# the given destination ports, per destination address; prints them as JSON
# when stdin closes.  Arguments: PORT...
SNIFFER = r"""
import json, select, socket, struct, sys
ports = {int(p) for p in sys.argv[1:]}
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
print("ready", flush=True)
seen = {}
while True:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in r:
        break
    frame, addr = s.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    etype = struct.unpack("!H", frame[12:14])[0]
    if etype == 0x0800 and frame[23] == 17:
        ihl = (frame[14] & 15) * 4
        dst = socket.inet_ntop(socket.AF_INET, frame[30:34])
        dport = struct.unpack("!H", frame[14 + ihl + 2:14 + ihl + 4])[0]
    elif etype == 0x86DD and frame[20] == 17:
        dst = socket.inet_ntop(socket.AF_INET6, frame[38:54])
        dport = struct.unpack("!H", frame[56:58])[0]
    else:
        continue
    if dport in ports:
        seen[dst] = seen.get(dst, 0) + 1
print(json.dumps(seen), flush=True)
"""


@contextlib.contextmanager
def started(argv):
    """Start a root helper that prints "ready"; end it (by pid) afterwards."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        assert p.stdout.readline().strip() == "ready", "helper did not start"
        yield p
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


@pytest.fixture(scope="module")
def host_service(topo):
    argv = ["ip", "netns", "exec", topo.host_ns, T.PYTHON, "-u", "-c", HOST_SERVICE,
            "::", str(PORT), "127.0.0.1", str(LOOP_PORT), "::1", str(LOOP_PORT),
            "127.0.0.1", str(OTHER_PORT)]
    with started(argv) as p:
        yield p


def tcp_read_cmd(addr, port):
    """Connect and print what the peer says (or the error), inside the tree."""
    script = ("import socket,sys\n"
              "a,p=sys.argv[1],int(sys.argv[2])\n"
              "try:\n"
              " s=socket.create_connection((a,p),timeout=10)\n"
              " print('read',s.recv(100).decode().strip())\n"
              "except OSError as e:\n"
              " print('error',type(e).__name__)\n")
    return f"/usr/bin/python3 -c {F.shquote(script)} {addr} {port}"


def host_local(events):
    return [v for v in F.violations(events) if v["reason_code"] == "host_local"]


@pytest.mark.parametrize("extra", [[], ["--block-private"]], ids=["default", "block-private"])
def test_the_hosts_own_addresses_are_refused_and_logged_as_host_local(
        childflow, userdir, host_service, extra):
    targets = [T.HOST_V4, T.HOST_V6, f"::ffff:{T.HOST_V4}"]
    checks = [("tcp", a, PORT) for a in targets] + [("udp", T.HOST_V4, PORT),
                                                    ("tcp", T.ORIGIN_V4, 80),
                                                    ("tcp", T.ORIGIN_V6, 80)]
    out, events = F.probes_logged(childflow, userdir, checks, *extra)
    for a in targets:
        assert out[("tcp", a, PORT)] == F.denied_errno(a), out
    assert out[("udp", T.HOST_V4, PORT)] == F.DENIED_ERRNO_V4, out
    # control: the world is reachable in the same run
    assert out[("tcp", T.ORIGIN_V4, 80)] == "connected", out
    assert out[("tcp", T.ORIGIN_V6, 80)] == "connected", out
    hl = host_local(events)
    # a v4-mapped destination leaves the tree's kernel as IPv4; a SYN the tree
    # sent again before the refusal reached it is refused (and logged) again
    assert {(v["protocol"], v["remote_ip"]) for v in hl} == {
        ("tcp", T.HOST_V4), ("tcp", T.HOST_V6), ("udp", T.HOST_V4)}, hl
    assert len(hl) >= 4, hl
    assert {v["reason_code"] for v in F.violations(events)} == {"host_local"}, events
    for v in hl:
        assert v["control"] == "built-in" and v["action"] == "deny", v
        assert "never reaches the host" in v["reason"], v
    # nothing of it was ever attempted on the host
    attempted = {e["remote_ip"] for e in F.of_type(events, "connect_attempt")
                 + F.of_type(events, "datagram_flow_start")}
    assert not attempted & set(targets), attempted


def test_an_allow_cidr_for_everything_does_not_open_the_host(childflow, userdir, host_service):
    out, events = F.probes_logged(childflow, userdir,
                                  [("tcp", T.HOST_V4, PORT), ("tcp", T.ORIGIN_V4, 80)],
                                  "--default-policy", "deny", "--allow-cidr", "0.0.0.0/0",
                                  "--allow-cidr", "::/0")
    assert out == {("tcp", T.HOST_V4, PORT): F.DENIED_ERRNO_V4,
                   ("tcp", T.ORIGIN_V4, 80): "connected"}, out
    assert [v["remote_ip"] for v in host_local(events)] == [T.HOST_V4]


def test_allow_host_port_reaches_the_hosts_loopback_by_name_and_nothing_else(
        childflow, userdir, host_service):
    log = os.path.join(userdir, "flows.jsonl")
    name = "host.childflow.internal"
    parts, _ = F.steps(childflow, ["--flow-log", log, "--allow-host-port", str(LOOP_PORT),
                                   "--allow-host-port", f"{LOOP_PORT}/udp"], [
        f"getent ahosts {name}",
        tcp_read_cmd(name, LOOP_PORT),                 # v4 first, by /etc/hosts
        tcp_read_cmd("fd63:6866:6c77::fe", LOOP_PORT),  # the v6 alias: the host's ::1
        F.probe_cmd("udp", "198.18.0.254", LOOP_PORT),
        tcp_read_cmd(name, OTHER_PORT),                 # listening, but not opened
        F.probe_cmd("tcp", T.HOST_V4, PORT),            # the host's other addresses stay shut
        tcp_read_cmd("127.0.0.1", LOOP_PORT),           # the tree's own loopback: nothing there
    ])
    outs = [o.strip() for o, _ in parts]
    assert "198.18.0.254" in outs[0] and "fd63:6866:6c77::fe" in outs[0], outs[0]
    assert outs[1] == "read host-service", outs
    assert outs[2] == "read host-service", outs
    assert outs[3] == "reply 31", outs
    assert outs[4].startswith("error"), outs
    assert outs[5] == F.DENIED_ERRNO_V4, outs
    assert outs[6] == "error ConnectionRefusedError", outs
    events = F.read_flowlog(log)
    # (by name, getaddrinfo may pick the v6 alias first: no v4 TCP here is required)
    ok = [e for e in F.of_type(events, "connect_result") if e["status"] == "ok"]
    assert {(e["remote_ip"], e["remote_port"]) for e in ok} >= {("::1", LOOP_PORT)}, ok
    udp = [e for e in F.of_type(events, "datagram_flow_start") if e["status"] == "ok"]
    assert [(e["protocol"], e["remote_ip"], e["remote_port"]) for e in udp] == [
        ("udp", "127.0.0.1", LOOP_PORT)], udp
    denied = [(v["remote_port"], v["reason_code"]) for v in F.violations(events)]
    assert (OTHER_PORT, "host_local") in denied and (PORT, "host_local") in denied, denied


def test_the_virtual_resolver_names_the_host_alias_only_with_allow_host_port(childflow):
    name = "host.childflow.internal"
    parts, _ = F.steps(childflow, ["--allow-host-port", "5432", "--default-policy", "deny"], [
        " ".join(F.dig("+short", name, "A")),
        " ".join(F.dig("+short", "+tcp", name, "AAAA")),
        " ".join(F.dig(name, "MX")),
    ])
    assert parts[0][0].split() == ["198.18.0.254"], parts
    assert parts[1][0].split() == ["fd63:6866:6c77::fe"], parts
    assert F.dig_status(parts[2][0]) == ("NOERROR", 0), parts
    # control: without the option the name is not childflow's (the resolver says so)
    parts, _ = F.steps(childflow, [], [" ".join(F.dig(name, "A"))])
    assert F.dig_status(parts[0][0])[0] == "NXDOMAIN", parts


def test_the_alias_is_added_to_the_hosts_file_the_tree_would_see(topo, childflow, userdir):
    hosts = os.path.join(userdir, "hosts")
    F.write_user_file(topo, hosts, "203.0.113.200 mine.test")  # no final newline
    parts, _ = F.steps(childflow, ["--hosts-file", hosts, "--allow-host-port", "5432"],
                       ["cat /etc/hosts"])
    lines = [ln for ln in parts[0][0].splitlines() if ln and not ln.startswith("#")]
    assert lines == ["203.0.113.200 mine.test", "198.18.0.254 host.childflow.internal",
                     "fd63:6866:6c77::fe host.childflow.internal"], parts
    # control: without the option the tree sees the file as it is
    parts, _ = F.steps(childflow, ["--hosts-file", hosts], ["cat /etc/hosts"])
    assert parts[0][0] == "203.0.113.200 mine.test", parts


def test_allow_host_port_rejects_a_bad_port_before_running(childflow):
    for bad in ("0", "65536", "80/sctp", "http"):
        res = childflow.run("--allow-host-port", bad, "--", "true")
        assert res.rc == 125, str(res)
        assert "--allow-host-port" in res.err and bad in res.err, res.err


def test_an_address_added_to_the_host_during_the_run_is_refused_at_once(
        topo, childflow, userdir, host_service):
    started_flag = os.path.join(userdir, "started")
    go_flag = os.path.join(userdir, "go")
    log = os.path.join(userdir, "flows.jsonl")
    script = (f"touch {started_flag}; while [ ! -e {go_flag} ]; do sleep 0.02; done; "
              f"{F.probe_cmd('tcp', NEW_ADDR, PORT)}; {F.probe_cmd('tcp', T.ORIGIN_V4, 80)}")
    proc = childflow.spawn("--flow-log", log, "--", "sh", "-c", script)
    added = False
    try:
        assert support.wait_for(lambda: os.path.exists(started_flag), 20), "tree did not start"
        topo.run_host_root(["ip", "addr", "add", f"{NEW_ADDR}/32", "dev", "lo"], check=True)
        added = True
        with open(go_flag, "w"):
            pass
        res = childflow.finish(proc)
    finally:
        if added:
            topo.run_host_root(["ip", "addr", "del", f"{NEW_ADDR}/32", "dev", "lo"])
    assert res.out.split("\n")[:2] == [F.DENIED_ERRNO_V4, "connected"], str(res)
    assert [v["remote_ip"] for v in host_local(F.read_flowlog(log))] == [NEW_ADDR]


def test_multicast_never_leaves_the_host(topo, childflow, userdir):
    sniff = ["ip", "netns", "exec", topo.world_ns, T.PYTHON, "-u", "-c", SNIFFER,
             "1900", "520", "9"]
    send = ("import socket,sys\n"
            "for a,p in (('239.255.255.250',1900),('224.0.0.9',520),('ff05::c',1900),"
            "(sys.argv[1],9)):\n"
            " s=socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET,socket.SOCK_DGRAM)\n"
            " try:\n"
            "  s.sendto(b'M-SEARCH * HTTP/1.1\\r\\n\\r\\n',(a,p)); print('sent',a)\n"
            " except OSError as e: print('error',a,e.errno)\n")
    log = os.path.join(userdir, "flows.jsonl")
    with started(sniff) as sniffer:
        res = childflow.run("--flow-log", log, "--block-private", "--block-metadata", "--",
                            "/usr/bin/python3", "-c", send, T.ORIGIN_V4)
        assert res.rc == 0, str(res)
        # frames cross the veth at once; this only lets the sniffer read the last one
        time.sleep(0.5)
        out, _ = sniffer.communicate(timeout=10)
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen.get(T.ORIGIN_V4, 0) >= 1, seen
    assert not {a for a in seen if a != T.ORIGIN_V4}, seen
    reasons = sorted((v["remote_ip"], v["reason_code"]) for v in F.violations(F.read_flowlog(log)))
    assert reasons == [("224.0.0.9", "multicast"), ("239.255.255.250", "multicast"),
                       ("ff05::c", "multicast")], reasons
