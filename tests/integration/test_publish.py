"""--publish: a server in the tree reached from the host (issue 21).

The tree runs TREE_SERVER: TCP and UDP on its 127.0.0.1 and ::1, answering
each request with the address the request came from, until it has answered
as many as it was told to.  A client in the test's host namespace (where
childflow runs) reaches it through the host listeners childflow opened.
Each test is run on both backends: rootless as the topology's user, rootful
(--root) as root."""

import json
import os
import subprocess

import pytest

import topology as T

pytestmark = pytest.mark.core

TREE_TCP, TREE_UDP = 8000, 8001
HOST_TCP, HOST_UDP = 18000, 18001

# Serves argv[1] requests in all, then exits: TCP (port 8000) answers "tcp
# PEER-IP DATA" and closes, UDP (port 8001) "udp PEER-IP DATA", on 127.0.0.1
# and ::1 each.
TREE_SERVER = r"""
import selectors, socket, sys
left = int(sys.argv[1])
sel = selectors.DefaultSelector()
for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    for kind, port in ((socket.SOCK_STREAM, 8000), (socket.SOCK_DGRAM, 8001)):
        s = socket.socket(fam, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        if kind == socket.SOCK_STREAM:
            s.listen(16)
        sel.register(s, selectors.EVENT_READ, kind)
print("ready", flush=True)
while left > 0:
    for key, _ in sel.select():
        if key.data == socket.SOCK_STREAM:
            c, peer = key.fileobj.accept()
            data = c.recv(100)
            c.sendall(b"tcp " + peer[0].encode() + b" " + data)
            c.close()
        else:
            data, peer = key.fileobj.recvfrom(100)
            key.fileobj.sendto(b"udp " + peer[0].encode() + b" " + data, peer)
        left -= 1
"""

# Asks, for each argument PROTO:ADDR:PORT:DATA, until it gets an answer (the
# tree may not be up yet) or 20 s passed; prints one JSON list of the answers
# (null for none).
CLIENT = r"""
import json, socket, sys, time
out = []
for arg in sys.argv[1:]:
    proto, rest = arg.split(":", 1)
    addr, port, data = rest.rsplit(":", 2)
    addr = addr.strip("[]")
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    deadline, got = time.monotonic() + 20, None
    while got is None and time.monotonic() < deadline:
        try:
            if proto == "tcp":
                with socket.create_connection((addr, int(port)), timeout=2) as c:
                    c.sendall(data.encode())
                    got = c.recv(200).decode() or None
            else:
                with socket.socket(fam, socket.SOCK_DGRAM) as u:
                    u.settimeout(0.5)
                    u.sendto(data.encode(), (addr, int(port)))
                    got = u.recv(200).decode()
        except OSError:
            time.sleep(0.1)
    out.append(got)
print(json.dumps(out), flush=True)
"""

PUBLISH = ["--publish", f"{HOST_TCP}:{TREE_TCP}",
           "--publish", f"[::1]:{HOST_TCP}:{TREE_TCP}/tcp",
           "--publish", f"{HOST_UDP}:{TREE_UDP}/udp",
           "--publish", f"[::1]:{HOST_UDP}:{TREE_UDP}/udp"]
REQUESTS = ["tcp:127.0.0.1:%d:a" % HOST_TCP, "tcp:[::1]:%d:b" % HOST_TCP,
            "udp:127.0.0.1:%d:c" % HOST_UDP, "udp:[::1]:%d:d" % HOST_UDP]
ANSWERS = ["tcp 127.0.0.1 a", "tcp ::1 b", "udp 127.0.0.1 c", "udp ::1 d"]


def start(topo, childflow, backend, *args):
    """childflow ARGS on @backend in the background."""
    if backend == "rootful":
        return topo.spawn_root(childflow.argv("--root", *args), env=childflow.env())
    return childflow.spawn(*args)


def ask(topo, *requests):
    res = topo.run_host_root([T.PYTHON, "-c", CLIENT, *requests], timeout=120)
    assert res.rc == 0, res
    return json.loads(res.out)


def events(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(params=["rootless-internal", "rootful"])
def backend(request):
    return request.param


def test_tree_server_is_reached_over_tcp_and_udp_v4_and_v6_and_logged_inbound(
        topo, childflow, userdir, backend):
    log = os.path.join(userdir, "inbound.jsonl")  # root writes there too (rootful)
    p = start(topo, childflow, backend, "--flow-log", log, "--summary", "--summary-format",
              "json", *PUBLISH, T.PYTHON, "-c", TREE_SERVER, str(len(REQUESTS)))
    try:
        got = ask(topo, *REQUESTS)
    finally:
        res = childflow.finish(p, timeout=60)
    # the tree sees each flow come from its own loopback, as documented
    assert got == ANSWERS, res
    assert res.rc == 0, res
    inbound = [e for e in events(log) if e.get("direction") == "inbound"]
    starts = {(e["protocol"], e["remote_ip"], e["published"]) for e in inbound
              if e["event"] in ("connect_result", "datagram_flow_start")
              and e["status"] == "ok"}
    assert starts == {("tcp", "127.0.0.1", f"127.0.0.1:{HOST_TCP}:{TREE_TCP}/tcp"),
                      ("tcp", "::1", f"[::1]:{HOST_TCP}:{TREE_TCP}/tcp"),
                      ("udp", "127.0.0.1", f"127.0.0.1:{HOST_UDP}:{TREE_UDP}/udp"),
                      ("udp", "::1", f"[::1]:{HOST_UDP}:{TREE_UDP}/udp")}, inbound
    ends = [e for e in inbound if e["event"] in ("flow_end", "datagram_flow_end")]
    assert len(ends) == 4, inbound
    # bytes_received: what the tree received from the client ("a" ... "d")
    assert all(e["bytes_received"] == 1 and e["bytes_sent"] > 0 for e in ends), ends
    summary = json.loads(res.err[res.err.index("{"):])
    assert summary["inbound"]["flows"] == 4, summary["inbound"]
    assert sorted(m["mapping"] for m in summary["inbound"]["published"]) == sorted(
        e["published"] for e in ends)


def test_outbound_flows_say_outbound(topo, childflow, userdir):
    log = os.path.join(userdir, "outbound.jsonl")
    res = childflow.run("--flow-log", log, "curl", "-sS", "--max-time", "15", "-o",
                        "/dev/null", f"http://{T.ORIGIN_V4}/")
    assert res.rc == 0, res
    flows = [e for e in events(log) if e["event"] in ("connect_attempt", "flow_end")]
    assert flows and all(e["direction"] == "outbound" for e in flows), flows


def test_default_host_address_is_loopback_only(topo, childflow, backend):
    """127.0.0.1 unless written: nothing listens on the host's other
    addresses, so the world cannot reach the tree; 0.0.0.0 written opens it."""
    wide = 18002
    p = start(topo, childflow, backend, *PUBLISH, "--publish", f"0.0.0.0:{wide}:{TREE_TCP}",
              T.PYTHON, "-c", TREE_SERVER, "2")
    try:
        assert ask(topo, REQUESTS[0]) == [ANSWERS[0]]
        listening = topo.run_host_root(["ss", "-Hltn"], check=True).out
        blocked = topo.run_world([T.PYTHON, "-c", CLIENT.replace("+ 20", "+ 2"),
                                  f"tcp:{T.HOST_V4}:{HOST_TCP}:x"], timeout=60)
        opened = topo.run_world([T.PYTHON, "-c", CLIENT, f"tcp:{T.HOST_V4}:{wide}:y"],
                                timeout=60)
    finally:
        res = childflow.finish(p, timeout=60)
    ports = [line.split()[3] for line in listening.splitlines()]
    assert f"127.0.0.1:{HOST_TCP}" in ports and f"[::1]:{HOST_TCP}" in ports, ports
    assert not any(p.endswith(f":{HOST_TCP}") and not p.startswith(("127.0.0.1:", "[::1]:"))
                   for p in ports), ports
    assert json.loads(blocked.out) == [None], blocked
    # the control: an address written on purpose is reachable from the world
    assert json.loads(opened.out) == ["tcp 127.0.0.1 y"], (opened, res)


def test_host_port_in_use_is_a_usage_error_before_the_command_runs(topo, childflow,
                                                                    userdir, backend):
    marker = os.path.join(userdir, f"ran-{backend}")
    # ip netns exec execs: the Popen's pid is the blocker's own
    blocker = subprocess.Popen(
        ["ip", "netns", "exec", topo.host_ns, T.PYTHON, "-c",
         "import socket, time\n"
         "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         "s.bind(('127.0.0.1', %d)); s.listen()\n"
         "print('ready', flush=True); time.sleep(120)" % HOST_TCP],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert blocker.stdout.readline().strip() == b"ready", blocker.stderr.read()
        p = start(topo, childflow, backend, "--publish", f"{HOST_TCP}:{TREE_TCP}",
                  "touch", marker)
        res = childflow.finish(p, timeout=60)
    finally:
        blocker.kill()
        blocker.wait()
    assert res.rc == 125, res
    assert f"--publish 127.0.0.1:{HOST_TCP}:{TREE_TCP}/tcp" in res.err, res
    assert "Address already in use" in res.err, res
    assert len(res.err.strip().splitlines()) <= 2, res
    assert not os.path.exists(marker)


# Sends argv[1] bytes to the first TCP client of 127.0.0.1:8000, then exits.
BULK_SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000))
s.listen(1)
c, _ = s.accept()
left, chunk = int(sys.argv[1]), b"x" * 65536
while left > 0:
    left -= c.send(chunk[:left])
c.close()
"""

# Reads everything from 127.0.0.1:argv[1]; prints the count. Until the tree
# listens, childflow accepts and then closes (nothing to connect to in the
# tree): such empty connections are retried. It reads slowly, so that the
# tree has exited while megabytes it wrote still wait in the sockets.
BULK_CLIENT = r"""
import socket, sys, time
deadline = time.monotonic() + 20
n = 0
while n == 0 and time.monotonic() < deadline:
    try:
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
    except OSError:
        time.sleep(0.1)
        continue
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        n += len(d)
        time.sleep(0.002)
    c.close()
    if n == 0:
        time.sleep(0.1)
print(n)
"""


def test_bulk_download_from_the_tree_arrives_whole_and_is_counted(topo, childflow, userdir):
    size = 32 * 1024 * 1024
    log = os.path.join(userdir, "bulk.jsonl")
    p = childflow.spawn("--flow-log", log, "--publish", f"{HOST_TCP}:{TREE_TCP}",
                        T.PYTHON, "-c", BULK_SERVER, str(size))
    try:
        got = topo.run_host_root([T.PYTHON, "-c", BULK_CLIENT, str(HOST_TCP)], timeout=120)
    finally:
        res = childflow.finish(p, timeout=60)
    assert got.rc == 0 and int(got.out) == size, (got, res)
    ends = [e for e in events(log) if e["event"] == "flow_end"]
    assert [(e["direction"], e["bytes_sent"]) for e in ends] == [("inbound", size)], ends


# PORT: three connections to the host listener once it is up (until then the
# host refuses); each is accepted, then closed or reset without data. Prints
# what each read.
THREE_TRIES = r"""
import socket, sys, time
got, deadline = [], time.monotonic() + 20
while len(got) < 3 and time.monotonic() < deadline:
    try:
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    except ConnectionRefusedError:
        time.sleep(0.1)
        continue
    with c:
        try:
            c.sendall(b"z")
            got.append(c.recv(200).decode() or None)
        except ConnectionResetError:  # the tree refused: the engine resets the client
            got.append(None)
print(got)
"""


def test_nothing_listening_in_the_tree_is_a_logged_connect_error(topo, childflow, userdir):
    log = os.path.join(userdir, "refused.jsonl")
    # The tree outlives the client's tries: a try racing its end would fail otherwise.
    p = childflow.spawn("--flow-log", log, "--publish", f"{HOST_TCP}:{TREE_TCP}",
                        "sleep", "8")
    try:
        res = topo.run_host_root([T.PYTHON, "-c", THREE_TRIES, str(HOST_TCP)], timeout=60)
    finally:
        fin = childflow.finish(p, timeout=60)
    assert res.rc == 0 and res.out.strip() == "[None, None, None]", (res, fin)
    results = [e for e in events(log) if e["event"] == "connect_result"]
    assert results and all(e["direction"] == "inbound" and e["status"] == "error"
                           and e["error"] == "Connection refused" for e in results), results


def test_offline_and_default_deny_leave_inbound_alone(topo, childflow, userdir):
    """The mapping is the user's explicit allowance: outbound policy does not judge it."""
    log = os.path.join(userdir, "offline.jsonl")
    p = childflow.spawn("--flow-log", log, "--offline", "--default-policy", "deny", *PUBLISH,
                        T.PYTHON, "-c", TREE_SERVER, "2")
    try:
        got = ask(topo, REQUESTS[0], REQUESTS[2])
    finally:
        res = childflow.finish(p, timeout=60)
    assert got == [ANSWERS[0], ANSWERS[2]], res
    assert not [e for e in events(log) if e["event"] == "policy_violation"]
