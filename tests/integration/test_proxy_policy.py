"""Policy with a proxy: the tree's connections are judged before anything is
asked of the proxy, so a denied destination never reaches it.

The proxy is asked for the NAME the tree resolved and resolves it again
itself; the address it then connects to can differ from the one the tree's
connect() was judged on.  Two tests show what follows: with --dns the
proxy's answer wins over the forced resolver's (documented: "the proxy
resolves it itself"; --proxy-send-ip keeps the tree's answer), and a CIDR
the policy denies is never reached through the proxy (the proxy is then asked for the address)."""

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    PROXY_KINDS, assert_tunnelled, flow_events, nginx_request_rx, proxy_args, proxy_world,
    run_with_flow_log, tinyproxy)


def _proxy_log(world, proxy, marks):
    name = proxy.backend or proxy.name
    return world.since(name, marks[name])


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_destination_denied_by_cidr_is_refused_before_the_proxy_is_asked(
        proxy_world, childflow, userdir, kind):
    args, proxy = proxy_args(proxy_world, kind)
    token = support.new_token()
    marks = proxy_world.marks()
    res, log = run_with_flow_log(
        childflow, userdir,
        [*args, "--deny-cidr", f"{T.ORIGIN_V4}/32", "--deny-cidr", f"{T.ORIGIN_V6}/128"],
        "curl", "-sS", "--max-time", "30", f"http://{T.ORIGIN_NAME}/?cft={token}")
    assert res.rc == 7, str(res)
    denied = flow_events(log, "policy_violation")
    assert {e["remote_ip"] for e in denied} == {T.ORIGIN_V4, T.ORIGIN_V6}, denied
    assert all(e["reason_code"] == "deny_cidr" for e in denied), denied
    assert flow_events(log, "connect_attempt") == [], flow_events(log)
    # give a late log line no chance to hide: the proxy's log is checked after
    # a second, allowed connection that it must log
    res2 = childflow.run(*args, "--", "curl", "-sS", "--max-time", "30", f"http://{T.ORIGIN_B_V4}/")
    assert res2.rc == 0 and res2.out == T.ORIGIN_B_BODY, str(res2)
    assert_tunnelled(proxy_world, proxy, marks, f"{T.ORIGIN_B_V4}:80")
    text = _proxy_log(proxy_world, proxy, marks)
    assert T.ORIGIN_NAME not in text and f"{T.ORIGIN_V4}:" not in text, text
    assert token not in proxy_world.since("nginx", marks["nginx"])


def test_default_deny_with_allowed_domain_goes_through_proxy_and_denies_the_rest(
        proxy_world, tinyproxy, childflow, userdir):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res, log = run_with_flow_log(
        childflow, userdir,
        ["-p", tinyproxy.url, "--default-policy", "deny", "--allow-domain", T.ORIGIN_NAME],
        "sh", "-c", f"curl -sS --max-time 30 http://{T.ORIGIN_NAME}{path}; echo rc=$?; "
                    f"curl -sS --max-time 30 http://{T.ORIGIN_B_V4}/; echo rc=$?")
    assert res.rc == 0, str(res)
    assert res.out.splitlines() == [T.ORIGIN_BODY.strip(), "rc=0", "rc=7"], str(res)
    assert_tunnelled(proxy_world, tinyproxy, marks, f"{T.ORIGIN_NAME}:80")
    assert f"CONNECT {T.ORIGIN_B_V4}" not in proxy_world.since("tinyproxy", marks["tinyproxy"])
    denied = flow_events(log, "policy_violation")
    assert [(e["remote_ip"], e["reason_code"]) for e in denied] == \
        [(T.ORIGIN_B_V4, "default_deny")], denied


@pytest.mark.parametrize("send_ip, body, target", [
    (False, T.ORIGIN_BODY, f"{T.ORIGIN_NAME}:80"),
    (True, T.ORIGIN_B_BODY, f"{T.ORIGIN_B_V4}:80"),
], ids=["by-name-proxy-resolves", "proxy-send-ip-keeps-the-tree-answer"])
def test_with_forced_dns_the_proxy_resolves_the_name_unless_send_ip(
        proxy_world, tinyproxy, childflow, send_ip, body, target):
    # --dns dnsmasq B: the tree resolves origin.test to origin-b (198.51.100.11);
    # tinyproxy resolves it through dnsmasq A to the origin (198.51.100.10)
    marks = proxy_world.marks()
    extra = ["--proxy-send-ip"] if send_ip else []
    res = childflow.run("-p", tinyproxy.url, *extra, "--dns", T.DNS_B_V4, "--",
                        "curl", "-sS", "-4", "--max-time", "30", f"http://{T.ORIGIN_NAME}/")
    assert res.rc == 0, str(res)
    assert res.out == body, str(res)
    assert_tunnelled(proxy_world, tinyproxy, marks, target)


@pytest.mark.parametrize("kind, denied, family", [
    ("http", T.ORIGIN_V6, "-4"),
    ("socks5", T.ORIGIN_V4, "-6"),
], ids=["tinyproxy-reaches-denied-ipv6", "microsocks-reaches-denied-ipv4"])
def test_address_denied_by_cidr_is_not_reached_through_the_proxy_resolving_the_name(
        proxy_world, childflow, kind, denied, family):
    args, proxy = proxy_args(proxy_world, kind)
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    prefix = f"{denied}/128" if ":" in denied else f"{denied}/32"
    res = childflow.run(*args, "--deny-cidr", prefix, "--",
                        "curl", "-sS", family, "--max-time", "30", f"http://{T.ORIGIN_NAME}{path}")
    assert res.rc in (0, 7), str(res)
    if res.rc == 0:
        line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path))
        assert line is not None, proxy_world.since("nginx", marks["nginx"])
        assert line.split()[1] != denied, f"the denied {denied} served the request: {line}"
