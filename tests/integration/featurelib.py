"""Helpers for the feature tests (test_policy, test_flowlog, test_capture,
test_profile): probes run inside the tree, flow-log readers, DNS-log
sentinels and tshark wrappers.  No fixtures here."""

import collections
import json
import os
import re
import subprocess

import support

# The tree's own addresses (docs/architecture.md, "Address plan").
TREE_V4 = "198.18.0.2"
TREE_V6 = "fd63:6866:6c77::2"
RESOLVER_V4 = "198.18.0.1"
RESOLVER_V6 = "fd63:6866:6c77::1"

# Private and metadata destinations: the tests only ever use them where
# childflow must block them, so that no packet to them leaves the engine.
PRIVATE_V4 = "10.1.2.3"
PRIVATE_V4_B = "192.168.1.1"
METADATA_V4 = "169.254.169.254"
METADATA_V6 = "fd00:ec2::254"

# Socket probe run inside the tree with `python3 -c PROBE KIND ADDR PORT`.
# Prints one line: "connected", "reply N", "timeout" or "error ERRNO-NAME".
# The timeouts only bound a broken run; no test asserts on elapsed time.
PROBE = r"""
import errno, socket, sys
kind, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
try:
    if kind == "tcp":
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect((addr, port))
        print("connected")
    else:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.connect((addr, port))
        s.send(b"childflow feature test datagram")
        print("reply", len(s.recv(65536)))
except (socket.timeout, TimeoutError):
    print("timeout")
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno))
"""

# What a denied TCP connect or UDP send fails with: childflow answers with
# ICMP "administratively prohibited", which Linux reports as EHOSTUNREACH
# for ICMPv4 (code 13) and as EACCES for ICMPv6 (code 1).
DENIED_ERRNO_V4 = "error EHOSTUNREACH"
DENIED_ERRNO_V6 = "error EACCES"


def denied_errno(addr):
    """The probe line a denied TCP/UDP flow to addr gives in the tree."""
    if ":" in addr and not addr.lower().startswith("::ffff:"):
        return DENIED_ERRNO_V6
    return DENIED_ERRNO_V4


def probe_cmd(kind, addr, port):
    """Shell words running the socket probe inside the tree."""
    return f"/usr/bin/python3 -c {shquote(PROBE)} {kind} {addr} {port}"


def shquote(s):
    return "'" + s.replace("'", "'\"'\"'") + "'"


def steps(childflow, options, commands, env=None):
    """Run shell commands one after the other in one childflow run; returns
    ([(stdout, exit status) per command], Result)."""
    script = "".join(f"{cmd}\nprintf '\\n@@@ %d\\n' $?\n" for cmd in commands)
    res = childflow.run(*options, "--", "sh", "-c", script, env=env)
    parts, rest = [], res.out
    for _ in commands:
        m = re.search(r"\n@@@ (\d+)\n", rest)
        assert m, str(res)
        parts.append((rest[:m.start()], int(m.group(1))))
        rest = rest[m.end():]
    assert rest == "" and res.rc == 0, str(res)
    return parts, res


def probes(childflow, checks, *options):
    """Run several socket probes in one childflow run.  checks: list of
    (kind, addr, port); returns {(kind, addr, port): line}."""
    parts, _ = steps(childflow, options, [probe_cmd(k, a, p) for k, a, p in checks])
    return {c: out.strip() for c, (out, _) in zip(checks, parts)}


def steps_logged(childflow, userdir, options, commands):
    """steps() with a flow log; returns (parts, Result, events)."""
    log = os.path.join(userdir, f"flows-{support.new_token()}.jsonl")
    parts, res = steps(childflow, ["--flow-log", log, *options], commands)
    return parts, res, read_flowlog(log)


def probes_logged(childflow, userdir, checks, *options):
    """probes() with a flow log; returns ({check: line}, events)."""
    log = os.path.join(userdir, f"flows-{support.new_token()}.jsonl")
    out = probes(childflow, checks, "--flow-log", log, *options)
    return out, read_flowlog(log)


def ping_cmd(addr):
    family = "-6" if ":" in addr else "-4"
    return f"ping {family} -n -c 1 -W 5 {addr}"


# --- DNS --------------------------------------------------------------------


def dig(*args):
    """dig words with bounded retries (a lost answer shows as a failure)."""
    return ["dig", "+time=5", "+tries=1", *args]


def dig_status(dig_output):
    """status and answer count of a full `dig` output: ("NOERROR", 0)."""
    m = re.search(r"status: (\w+),", dig_output)
    n = re.search(r"ANSWER: (\d+),", dig_output)
    return (m.group(1) if m else None, int(n.group(1)) if n else None)


def sentinel_name():
    """A unique name dnsmasq answers NXDOMAIN for: queried after the names a
    test expects to be absent from a dnsmasq log, so that its presence proves
    dnsmasq has logged everything it got before it."""
    return f"sentinel-{support.new_token()}.test"


def dnsmasq_queries(log_text):
    """(type, name) of every query line of a dnsmasq log text."""
    return re.findall(r"query\[(\w+)\] (\S+) from ", log_text)


def wait_sentinel(topo, log, mark, name):
    line = topo.wait_log(log, mark, rf"query\[\w+\] {re.escape(name)} from ")
    assert line is not None, f"{name} never reached {log}:\n" + topo.log_since(log, mark)
    return topo.log_since(log, mark)


# --- flow log ------------------------------------------------------------------


def read_flowlog(path):
    """Every line of a flow log as a dict (keys in file order)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), f"{path} does not end with a newline"
    events = []
    for n, raw in enumerate(data.split(b"\n")[:-1], 1):
        try:
            ev = json.loads(raw.decode("utf-8"), object_pairs_hook=collections.OrderedDict)
        except ValueError as e:
            raise AssertionError(f"{path}: line {n} is not JSON ({e}): {raw!r}") from None
        assert isinstance(ev, dict), f"{path}: line {n} is not an object: {raw!r}"
        events.append(ev)
    return events


def of_type(events, name):
    return [e for e in events if e.get("event") == name]


def violations(events):
    return of_type(events, "policy_violation")


def violation_reasons(events):
    """(protocol, remote_ip, reason_code, control) of every policy_violation."""
    return [(e["protocol"], e["remote_ip"], e["reason_code"], e["control"])
            for e in violations(events)]


# --- tshark ----------------------------------------------------------------------


def tshark_fields(path, fields, display_filter=None):
    """Rows (lists) of tshark -T fields for a capture file, read as root."""
    argv = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t",
            "-E", "occurrence=f"]
    if display_filter:
        argv += ["-Y", display_filter]
    for f in fields:
        argv += ["-e", f]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"tshark failed: {p.stderr}"
    return [line.split("\t") for line in p.stdout.splitlines()]


def tshark(path, *args):
    p = subprocess.run(["tshark", "-n", "-r", path, *args], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, f"tshark failed: {p.stderr}"
    return p.stdout


def tshark_notices(stderr):
    """tshark's stderr without the one notice it prints when run as root
    (docs/capture.md)."""
    return [ln for ln in stderr.splitlines()
            if ln.strip() and not ln.startswith("Running as user \"root\"")]


def follow_tcp_raw(path, stream):
    """Both directions of one TCP stream, reassembled by tshark:
    (bytes from the first sender, bytes from the other side)."""
    out = tshark(path, "-q", "-z", f"follow,tcp,raw,{stream}")
    client, server = bytearray(), bytearray()
    in_body = False
    for line in out.splitlines():
        if line.startswith("Node 1:"):
            in_body = True
            continue
        if not in_body or line.startswith("===="):
            continue
        if line.startswith("\t"):
            server += bytes.fromhex(line.strip())
        elif line.strip():
            client += bytes.fromhex(line.strip())
    return bytes(client), bytes(server)


def capinfos(path):
    p = subprocess.run(["capinfos", path], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


# --- files -------------------------------------------------------------------------


def write_user_file(topo, path, text, mode=0o644):
    """Write a file the test user owns (profiles, logs to report on)."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    os.chown(path, topo.state["uid"], topo.state["gid"])
    return path


def make_user_subdir(topo, *parts):
    """mkdir -p, every directory it creates owned by the test user."""
    path = os.path.join(*parts)
    missing = []
    d = path
    while not os.path.exists(d):
        missing.append(d)
        d = os.path.dirname(d)
    for d in reversed(missing):
        os.mkdir(d, 0o755)
        os.chown(d, topo.state["uid"], topo.state["gid"])
    return path


EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples")


def stderr_lines(res):
    """stderr lines without GNU's "Try 'childflow --help'" hint."""
    return [ln for ln in res.err.strip().splitlines() if not ln.startswith("Try '")]

