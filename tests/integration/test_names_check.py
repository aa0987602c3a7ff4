"""Names checked where they travel (issue 20): with domain rules in force,
the name in a TCP flow's first bytes (TLS SNI, HTTP/1 Host) is checked
before anything is relayed.  The server is the origin, which answers two
names on one address (topology: origin.test and twin.test, plain HTTP on
port 80 and TLS on 443 with one certificate for both).  The allowed name
works; the other is refused (both sides reset), logged as a
policy_violation naming SNI or Host, and never reaches the server, which a
sentinel request sent afterwards from the host proves (nginx logs in
order).  Direct and through each proxy type; a first flight that comes
after the timeout falls back to the address rules."""

import os
import re

import pytest

import featurelib as F
import support
import topology as T
from proxies import (  # noqa: F401  (proxy_world is a fixture)
    BANNER, BANNER_PORT, BANNER_V4, PROXY_KINDS, proxy_args, proxy_world)

O4 = T.ORIGIN_V4
ORIGIN, TWIN = T.ORIGIN_NAME, T.TWIN_NAME
CURL = ["curl", "-sS", "-4", "--max-time", "20"]


def http_cmd(path, host=None):
    """curl of http://origin.test/PATH, with another Host header if given."""
    extra = f" -H 'Host: {host}'" if host else ""
    return " ".join(CURL) + extra + f" 'http://{ORIGIN}{path}'"


def tls_cmd(path, name):
    """curl of https://NAME/PATH: SNI and Host are NAME; origin.test is
    resolved through childflow's resolver (so policy knows the address's
    name), any other name is sent to the origin's address unresolved."""
    pin = f" --resolve {name}:{T.TLS_PORT}:{O4}" if name != ORIGIN else ""
    return " ".join(CURL) + f" -k{pin} 'https://{name}{path}'"


def sentinel(topo, log, tls):
    """Send a request from the host and wait until `log` shows it: every
    request nginx got before is logged by then.  Returns the log's text."""
    mark_path = f"/?sentinel={support.new_token()}"
    url = f"https://{O4}{mark_path}" if tls else f"http://{O4}{mark_path}"
    res = topo.run_host_root(["curl", "-sSk", "--max-time", "10", "-o", "/dev/null", url])
    assert res.rc == 0, str(res)
    assert topo.wait_log(log, 0, re.escape(mark_path)), topo.log_since(log, 0)
    return topo.log_since(log, 0)


def check_run(topo, childflow, userdir, options, tls, denied_name=TWIN, via=None):
    """One run: the allowed request, then the denied one.  Returns the
    violation events and the Result."""
    ok, bad = f"/?ok={support.new_token()}", f"/?bad={support.new_token()}"
    log = "nginx-tls" if tls else "nginx"
    if tls:
        commands = [tls_cmd(ok, ORIGIN), tls_cmd(bad, denied_name)]
    else:
        commands = [http_cmd(ok), http_cmd(bad, host=denied_name)]
    flows = os.path.join(userdir, f"flows-{support.new_token()}.jsonl")
    script = "".join(f"{c}\nprintf '\\n@@@ %d\\n' $?\n" for c in commands)
    res = childflow.run("--flow-log", flows, *options, "--", "sh", "-c", script)
    parts = re.split(r"\n@@@ (\d+)\n", res.out)
    assert len(parts) == 5, str(res)
    assert parts[0] == T.ORIGIN_BODY and parts[1] == "0", str(res)
    assert parts[3] != "0" and T.ORIGIN_BODY not in parts[2], str(res)
    text = sentinel(topo, log, tls)
    assert ok in text, text
    assert bad not in text, text  # never reached the server
    events = F.read_flowlog(flows)
    return F.violations(events), res


def assert_refused(violations, res, source, reason_code, matched):
    mine = [v for v in violations if v["remote_ip"] == O4]
    assert len(mine) == 1, violations
    v = mine[0]
    assert v["protocol"] == "tcp" and v["reason_code"] == reason_code, v
    assert v["matched_domain"] == matched and TWIN in v["reason"], v
    assert v["reason"].startswith(f"{source} {TWIN} of tcp to "), v
    port = T.TLS_PORT if source == "TLS SNI" else T.HTTP_PORT
    line = f"childflow: denied tcp {O4}:{port} ({TWIN}): {v['reason']}"
    assert line in res.err.splitlines(), str(res)


@pytest.mark.core
@pytest.mark.parametrize("tls", [False, True], ids=["http-host", "tls-sni"])
def test_denied_name_on_an_allowed_address_is_refused_before_reaching_the_server(
        topo, childflow, userdir, tls):
    violations, res = check_run(topo, childflow, userdir, ["--deny-domain", TWIN], tls)
    assert_refused(violations, res, "TLS SNI" if tls else "HTTP Host", "deny_domain", TWIN)


@pytest.mark.parametrize("tls", [False, True], ids=["http-host", "tls-sni"])
def test_default_deny_refuses_a_name_no_allow_rule_covers(topo, childflow, userdir, tls):
    options = ["--default-policy", "deny", "--allow-domain-exact", ORIGIN]
    violations, res = check_run(topo, childflow, userdir, options, tls)
    assert_refused(violations, res, "TLS SNI" if tls else "HTTP Host", "default_deny", TWIN)


def test_flow_allowed_by_an_address_rule_is_checked_against_deny_rules_only(
        topo, childflow, userdir):
    path = f"/?cidr={support.new_token()}"
    parts, res, events = F.steps_logged(
        childflow, userdir, ["--default-policy", "deny", "--allow-cidr", f"{O4}/32",
                             "--allow-domain", "unrelated.test"],
        [" ".join(CURL) + f" -H 'Host: {TWIN}' 'http://{O4}{path}'"])
    assert parts[0] == (T.ORIGIN_BODY, 0), str(res)
    assert F.violations(events) == []
    assert path in sentinel(topo, "nginx", False)


@pytest.mark.parametrize("kind", PROXY_KINDS)
@pytest.mark.parametrize("tls", [False, True], ids=["http-host", "tls-sni"])
def test_names_are_checked_through_each_proxy_before_any_byte_is_forwarded(
        topo, proxy_world, childflow, userdir, kind, tls):
    args, _ = proxy_args(proxy_world, kind)
    violations, res = check_run(topo, childflow, userdir, [*args, "--deny-domain", TWIN], tls)
    assert_refused(violations, res, "TLS SNI" if tls else "HTTP Host", "deny_domain", TWIN)


# A client that connects, waits, then sends a request naming Host: twin.test;
# prints the status line it gets, or the error.
LATE_CLIENT = r"""
import socket, sys, time
addr, port, delay, path, host = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
s = socket.create_connection((addr, port), timeout=20)
time.sleep(delay)
try:
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = s.recv(100)
    print(data.split(b"\r\n")[0].decode() if data else "eof")
except OSError as e:
    print("error", e.errno)
"""


def test_first_bytes_after_the_timeout_fall_back_to_the_address_rules(topo, childflow, userdir):
    """The check waits 2 s for the first bytes (docs/policy.md); a request
    sent at once is refused, the same request sent after 3 s is relayed."""
    now, late = f"/?now={support.new_token()}", f"/?late={support.new_token()}"
    client = f"/usr/bin/python3 -c {F.shquote(LATE_CLIENT)} {O4} {T.HTTP_PORT}"
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-domain", TWIN], [
        f"{client} 0 '{now}' {TWIN}", f"{client} 3 '{late}' {TWIN}"])
    assert parts[0][0].strip() in ("error 104", "eof"), str(res)
    assert parts[1][0].strip() == "HTTP/1.1 200 OK", str(res)
    text = sentinel(topo, "nginx", False)
    assert late in text and now not in text, text
    assert len(F.violations(events)) == 1, events


def test_no_name_or_an_ip_literal_keeps_the_address_rules(topo, childflow, userdir):
    path = f"/?literal={support.new_token()}"
    parts, res, events = F.steps_logged(childflow, userdir, ["--deny-domain", TWIN], [
        " ".join(CURL) + f" 'http://{O4}{path}'",
        " ".join(CURL) + f" -k 'https://{O4}{path}'",
        f"printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -q 5 {O4} {T.HTTP_PORT} | head -1"])
    assert [p[1] for p in parts] == [0, 0, 0], str(res)
    assert parts[0][0] == parts[1][0] == T.ORIGIN_BODY, str(res)
    assert parts[2][0].startswith("HTTP/1.1 200"), str(res)
    assert F.violations(events) == []


# Reads the banner, sends "ping", reads the echo; prints both (as
# test_proxy_transfer.py's client of the same server).
SERVER_FIRST = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
banner = b""
while not banner.endswith(b"\r\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    banner += chunk
s.sendall(b"ping\n")
echo = b""
while len(echo) < 5:
    chunk = s.recv(4096)
    if not chunk:
        break
    echo += chunk
print(banner, echo)
"""


@pytest.mark.parametrize("kind", ["direct", *PROXY_KINDS])
def test_a_server_that_speaks_first_is_relayed_under_domain_rules(proxy_world, childflow, kind):
    """SMTP-like: the tree sends nothing before the banner, so there is no
    name to wait for; the banner and the exchange after it go through."""
    args = proxy_args(proxy_world, kind)[0] if kind != "direct" else []
    res = childflow.run(*args, "--deny-domain", TWIN, "--", "/usr/bin/python3", "-c",
                        SERVER_FIRST, BANNER_V4, str(BANNER_PORT))
    assert res.rc == 0, str(res)
    assert res.out.strip() == f"{BANNER.encode() + bytes([13, 10])!r} {b'ping' + bytes([10])!r}", \
        str(res)
