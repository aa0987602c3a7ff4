"""A childflow run inside a childflow tree (issue 18): the inner run applies
its own policy and writes its own records, and the outer policy still holds
for everything the inner tree does (the inner engine's upstream connects and
DNS queries are the outer tree's). The outer run takes each TCP path: with
`auto` the inner run gets EBUSY for its connect() listener and relays its own
tree's TCP; with `relay` the inner run switches its tree's sockets itself.
The inner binary is the outer one: its build path is reachable in the tree."""

import os

import pytest

import featurelib as F
import support
import topology as T

pytestmark = pytest.mark.core

O4, B4 = T.ORIGIN_V4, T.ORIGIN_B_V4

# Connects to ADDR:80, sends a request, prints "reply <first bytes>" (or
# "reply closed"), or "error ERRNO".
GET = r"""
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(20)
try:
    s.connect((sys.argv[1], 80))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = s.recv(12)
    print("reply", data.decode() if data else "closed")
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno))
"""


def _nested(childflow, path, outer, inner, script):
    """childflow --tcp-path PATH OUTER -- childflow INNER -- sh -c SCRIPT"""
    return childflow.run("--tcp-path", path, *outer, "--", childflow.binary, *inner, "--",
                         "sh", "-c", script, timeout=90)


def _get(addr):
    return f"/usr/bin/python3 -c {F.shquote(GET)} {addr}"


def _fields(text):
    return dict(line.partition(" ")[::2] for line in text.splitlines() if line)


@pytest.mark.parametrize("path", ["auto", "relay"])
def test_inner_run_resolves_reaches_the_world_and_exits_with_the_commands_status(
        childflow, path):
    res = _nested(childflow, path, (), (),
                  f"curl -sS --max-time 20 http://{T.ORIGIN_NAME}/ && exit 7")
    assert res.rc == 7 and res.out == T.ORIGIN_BODY, str(res)


@pytest.mark.parametrize("path", ["auto", "relay"])
@pytest.mark.parametrize("where", ["outer", "inner"])
def test_a_deny_rule_of_either_run_holds_for_the_inner_tree(childflow, path, where):
    rule = ("--deny-cidr", f"{B4}/32")
    outer, inner = (rule, ()) if where == "outer" else ((), rule)
    res = _nested(childflow, path, outer, inner,
                  f"{_get(O4)}; echo ---; {_get(B4)}")
    assert res.rc == 0, str(res)
    allowed, _, denied = res.out.partition("---\n")
    assert _fields(allowed).get("reply", "").startswith("HTTP/1."), str(res)
    # the denial the relay gives the tree, from whichever run holds the rule
    assert _fields(denied) == {"error": "EHOSTUNREACH"}, str(res)


@pytest.mark.parametrize("path", ["auto", "relay"])
def test_the_outer_runs_domain_rule_holds_for_the_inner_trees_dns(childflow, path):
    res = _nested(childflow, path, ("--deny-domain", T.ORIGIN_NAME), (),
                  f"getent hosts {T.ORIGIN_NAME}; echo rc=$?; "
                  f"curl -sS --max-time 20 http://{T.ORIGIN_V4}/")
    assert res.rc == 0 and res.out == "rc=2\n" + T.ORIGIN_BODY, str(res)


@pytest.mark.parametrize("path", ["auto", "relay"])
def test_inner_flow_log_is_written(childflow, userdir, path):
    log = os.path.join(userdir, f"inner-{support.new_token()}.jsonl")
    res = _nested(childflow, path, (), ("--flow-log", log, "--deny-cidr", f"{B4}/32"),
                  f"{_get(O4)}; {_get(B4)}")
    assert res.rc == 0, str(res)
    events = F.read_flowlog(log)
    (v,) = F.violations(events)
    assert (v["remote_ip"], v["reason_code"]) == (B4, "deny_cidr"), v
    results = [e for e in F.of_type(events, "connect_result") if e["remote_ip"] == O4]
    # The inner run switches only when the outer one left the listener to it (outer relay);
    # under an outer auto it gets EBUSY for its own and relays.
    inner = "socket" if path == "relay" else "relay"
    assert [(e["status"], e["path"]) for e in results] == [("ok", inner)], results
