"""A hostile tree against the name memory (issue #15, attack 2): answers of a
DNS server the tree queries itself are forwarded to it but never learned, so
they can neither make an address reachable under a domain rule nor choose
the name the proxy is asked for.  Only answers of the resolver childflow
forwards to (the host's, dnsmasq A here, or --dns) teach names.

dnsmasq B (198.51.100.54) plays the tree's own server: it answers
x.allowed.test with origin-b's address, which no allowed name has."""

import contextlib
import os
import subprocess

import pytest

import featurelib as F
import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    assert_tunnelled, proxy_world, tinyproxy, tinyproxy_connect_rx)

# A resolver that adds a record about another name to every A answer: it
# answers QNAME with origin's address plus EXTRA_NAME with origin-b's.
# Arguments: ADDR EXTRA_NAME QNAME_ADDR EXTRA_ADDR.
LYING_V4 = "198.51.100.57"
EXTRA_NAME = "y.allowed.test"
LYING_RESOLVER = r"""
import socket, struct, sys
addr, extra, ip1, ip2 = sys.argv[1:5]
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 12:
        continue
    end = 12
    while end < len(q) and q[end]:
        end += q[end] + 1
    qtype = struct.unpack("!H", q[end + 1:end + 3])[0] if end + 3 <= len(q) else 0
    question = q[12:end + 5]
    rrs = []
    if qtype == 1:
        rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip1))
        rrs.append(name(extra) + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip2))
    hdr = q[:2] + struct.pack("!HHHHH", 0x8180 | (q[2] & 1) << 8, 1, len(rrs), 0, 0)
    s.sendto(hdr + question + b"".join(rrs), peer)
"""

POLICY = ["--default-policy", "deny", "--allow-domain", T.ALLOWED_DOMAIN,
          "--allow-cidr", f"{T.DNS_B_V4}/32"]


def _answers(events, qname, server):
    return [e for e in F.of_type(events, "dns_answer")
            if e["qname"] == qname and e["server_ip"] == server]


@pytest.mark.core
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"], ids=["udp", "tcp"])
def test_answer_of_the_trees_own_server_does_not_open_its_address(
        childflow, userdir, transport):
    b4 = T.ORIGIN_B_V4
    parts, res, events = F.steps_logged(childflow, userdir, POLICY, [
        " ".join(F.dig("+short", transport, f"@{T.DNS_B_V4}", T.POISON_NAME, "A")),
        f"curl -sS --max-time 20 http://{b4}/",
        F.probe_cmd("udp", b4, T.UDP_CLOSED_PORT),
        # control: a name the host's resolver answers, under the allowed domain
        f"curl -sS --max-time 30 http://{T.ALLOWED_NAME}/",
    ])
    (dig, dig_rc), (curl, curl_rc), (udp, _), (ctl, ctl_rc) = parts
    # the query went to the server the tree named, and its answer came back
    assert (dig.split(), dig_rc) == ([b4], 0), str(res)
    assert curl_rc != 0 and T.ORIGIN_B_BODY not in curl, str(res)
    assert udp.strip() == F.denied_errno(b4), str(res)
    assert (ctl, ctl_rc) == (T.ORIGIN_BODY, 0), str(res)
    got = {(v["protocol"], v["remote_ip"], v["reason_code"]) for v in F.violations(events)}
    assert got == {("tcp", b4, "default_deny"), ("udp", b4, "default_deny")}, events
    # the log still says what the tree was told, and by whom
    (ans,) = _answers(events, T.POISON_NAME, T.DNS_B_V4)
    assert (ans["mode"], ans["answer_ips"]) == ("relayed", [b4]), ans


@pytest.mark.core
def test_answer_redirected_to_the_resolver_by_dns_option_is_learned(childflow, userdir):
    # control for the rule above: with --dns B, B is the resolver childflow
    # forwards to, so the same answer (to a query addressed to B) is learned
    b4 = T.ORIGIN_B_V4
    parts, res, events = F.steps_logged(childflow, userdir, [*POLICY, "--dns", T.DNS_B_V4], [
        " ".join(F.dig("+short", f"@{T.DNS_B_V4}", T.POISON_NAME, "A")),
        f"curl -sS --max-time 30 http://{b4}/",
    ])
    assert parts == [(f"{b4}\n", 0), (T.ORIGIN_B_BODY, 0)], str(res)
    assert F.violations(events) == [], events


def test_proxy_is_not_asked_for_a_name_the_trees_own_server_gave(
        proxy_world, tinyproxy, childflow):
    marks = proxy_world.marks()
    parts, res = F.steps(childflow, ["-p", tinyproxy.url], [
        # control: a name from the host's resolver is sent to the proxy as a name
        f"curl -sS -4 --max-time 30 http://{T.ORIGIN_NAME}/",
        # B says origin.test is origin-b; the tree connects to that address
        " ".join(F.dig("+short", f"@{T.DNS_B_V4}", T.ORIGIN_NAME, "A")),
        f"curl -sS --max-time 30 http://{T.ORIGIN_B_V4}/",
    ])
    assert parts == [(T.ORIGIN_BODY, 0), (f"{T.ORIGIN_B_V4}\n", 0),
                     (T.ORIGIN_B_BODY, 0)], str(res)
    assert_tunnelled(proxy_world, tinyproxy, marks, f"{T.ORIGIN_NAME}:80")
    # the proxy is asked for the address the tree used, not for origin.test
    assert_tunnelled(proxy_world, tinyproxy, marks, f"{T.ORIGIN_B_V4}:80")


@pytest.fixture
def lying_resolver(topo):
    """LYING_V4:53 (UDP) in the world, for one test; removed after it."""
    w = topo.world_ns
    T.sh(["ip", "-n", w, "addr", "add", f"{LYING_V4}/32", "dev", "lo"])
    out = open(os.path.join(topo.run_dir, "logs", "lying-resolver.out"), "ab")
    p = None
    try:
        p = subprocess.Popen(["ip", "netns", "exec", w, T.PYTHON, "-c", LYING_RESOLVER,
                              LYING_V4, EXTRA_NAME, T.ORIGIN_V4, T.ORIGIN_B_V4],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
        assert support.wait_for(lambda: f"{LYING_V4}:53 " in topo.run_world(
            ["ss", "-Hlun"]).out), "the lying resolver did not start"
        yield LYING_V4
    finally:
        out.close()
        if p is not None:
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)
        T.sh(["ip", "-n", w, "addr", "del", f"{LYING_V4}/32", "dev", "lo"], check=False)


@pytest.mark.core
def test_record_of_another_name_in_the_resolvers_answer_is_not_learned(
        childflow, userdir, lying_resolver):
    b4 = T.ORIGIN_B_V4
    parts, res, events = F.steps_logged(
        childflow, userdir, ["--default-policy", "deny", "--allow-domain", T.ALLOWED_DOMAIN,
                             "--dns", lying_resolver], [
            # control: the question's own record is learned and reachable
            f"curl -sS -4 --max-time 30 http://{T.ALLOWED_NAME}/",
            # the same answer said y.allowed.test is origin-b
            f"curl -sS --max-time 20 http://{b4}/",
        ])
    (ctl, ctl_rc), (curl, curl_rc) = parts
    assert (ctl, ctl_rc) == (T.ORIGIN_BODY, 0), str(res)
    assert curl_rc != 0 and T.ORIGIN_B_BODY not in curl, str(res)
    got = {(v["protocol"], v["remote_ip"], v["reason_code"]) for v in F.violations(events)}
    assert got == {("tcp", b4, "default_deny")}, events
    # the log shows every address the tree was given, the extra one too
    answers = [e for e in F.of_type(events, "dns_answer")
               if e["qname"] == T.ALLOWED_NAME and e["qtype"] == "A"]
    assert answers and all(e["answer_ips"] == [T.ORIGIN_V4, b4] for e in answers), answers


# --- DNS over TCP is bounded (issue #15, attack 8) ---------------------------------------

DNS_TCP_MAX = 64  # CF_DNSSTREAM_MAX in src/engine/dnsstream.h

# Run in the tree: open N DNS-over-TCP connections to the virtual resolver
# one after the other, each with a partial query frame (prefix and 3 bytes
# of the message); then finish every frame that was accepted and read its
# answer.  Prints "held N", "refused N", "other [errors]", "answered N".
# Arguments: N.
STREAMS = r"""
import errno, socket, struct, sys
n = int(sys.argv[1])
ns = next(l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver"))
def frame(qid):
    msg = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    msg += b"".join(bytes([len(l)]) + l.encode() for l in "origin.test".split(".")) + b"\0"
    msg += struct.pack("!HH", 1, 1)
    return struct.pack("!H", len(msg)) + msg
def recv_all(s, k):
    data = b""
    while len(data) < k:
        chunk = s.recv(k - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
held, refused, other = [], 0, []
for i in range(n):
    s = socket.socket(socket.AF_INET6 if ":" in ns else socket.AF_INET)
    s.settimeout(20)
    try:
        s.connect((ns, 53))
        f = frame(i + 1)
        s.sendall(f[:5])
        held.append((s, f, i + 1))
    except ConnectionRefusedError:
        refused += 1
        s.close()
    except OSError as e:
        other.append(errno.errorcode.get(e.errno, str(e)))
        s.close()
print("held", len(held))
print("refused", refused)
print("other", other)
answered = 0
for s, f, qid in held:
    try:
        s.sendall(f[5:])
        (k,) = struct.unpack("!H", recv_all(s, 2))
        answer = recv_all(s, k)
        answered += struct.unpack("!H", answer[:2])[0] == qid and answer[2] & 0x80 != 0
    except (OSError, EOFError) as e:
        other.append(repr(e))
    s.close()
print("answered", answered)
print("other", other)
"""


def _stream_counts(out):
    lines = dict(ln.split(" ", 1) for ln in out.splitlines() if " " in ln)
    return {k: (int(v) if v.isdigit() else v) for k, v in lines.items()}


@pytest.mark.core
def test_dns_over_tcp_streams_past_the_cap_are_refused_and_earlier_ones_still_work(childflow):
    # --offline: the engine answers every query itself, so no resolver's own
    # connection limit is in the way
    extra = 16
    res = childflow.run("--offline", "--", T.PYTHON, "-c", STREAMS, str(DNS_TCP_MAX + extra))
    assert res.rc == 0, str(res)
    got = _stream_counts(res.out)
    # the streams past the cap are refused at once (a RST: ECONNREFUSED, no timeout)
    assert got == {"held": DNS_TCP_MAX, "refused": extra, "other": "[]",
                   "answered": DNS_TCP_MAX}, str(res)
    # said once, not per stream
    warned = [ln for ln in res.err.splitlines() if "DNS-over-TCP" in ln]
    assert len(warned) == 1, str(res)
