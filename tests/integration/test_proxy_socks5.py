"""--proxy socks5://: the tree's TCP connections go through a real microsocks
that requires user/password authentication (RFC 1929).  microsocks logs
only successful connects (``client[N] CLIENT: connected to HOST:PORT``), so
a refusal is checked by the flow log, the child's errno and the absence of
that line; the origin's access log shows who connected."""

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    CONNECT_ERRNO, connect_errors, flow_events, microsocks, microsocks_connect_rx, nginx_request_rx,
    proxy_world, run_with_flow_log, assert_all_tcp_via_proxy, SOCKS_PASSWORD, SOCKS_USER)


def _credentials(proxy, how):
    host = f"{proxy.host}:{proxy.port}"
    return {
        "options": ["-p", proxy.url, "-U", SOCKS_USER, "-P", SOCKS_PASSWORD],
        "uri-userinfo": ["-p", f"socks5://{SOCKS_USER}:{SOCKS_PASSWORD}@{host}"],
    }[how]


@pytest.mark.parametrize("how", ["options", "uri-userinfo"])
@pytest.mark.parametrize("url_host, target, egress", [
    (T.ORIGIN_NAME, f"{T.ORIGIN_NAME}:80", None),
    (T.ORIGIN_V4, f"{T.ORIGIN_V4}:80", None),
    # ATYP 4; microsocks binds only v4 (-b), so the world's kernel picks the
    # origin's own address as the source of its v6 connection
    (f"[{T.ORIGIN_V6}]", f"{T.ORIGIN_V6}:80", (T.ORIGIN_V6,)),
], ids=["by-name", "by-ipv4-literal", "by-ipv6-literal"])
def test_socks5_with_user_password_reaches_origin_from_the_proxy_address(
        proxy_world, microsocks, childflow, userdir, how, url_host, target, egress):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res, log = run_with_flow_log(childflow, userdir, _credentials(microsocks, how),
                                 "curl", "-sS", "--max-time", "30", f"http://{url_host}{path}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    line = proxy_world.wait_log("microsocks", marks["microsocks"],
                                microsocks_connect_rx(T.HOST_V4, target))
    assert line is not None, proxy_world.since("microsocks", marks["microsocks"])
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None, proxy_world.since("nginx", marks["nginx"])
    assert line.split()[0] in (egress or microsocks.egress), line
    assert_all_tcp_via_proxy(log)


@pytest.mark.parametrize("args, error", [
    (lambda p: ["-p", p.url, "-U", SOCKS_USER, "-P", "Wr0ng-pw"],
     "proxy: SOCKS5 authentication failed"),
    (lambda p: ["-p", p.url],
     "proxy: SOCKS5 no acceptable authentication method (credentials required?)"),
], ids=["wrong-password", "no-credentials"])
def test_socks5_authentication_failure_is_refused_at_once_in_the_child(
        proxy_world, microsocks, childflow, userdir, args, error):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    # two connects (curl tries the A and the AAAA address): each refused, none hangs
    res, log = run_with_flow_log(childflow, userdir, args(microsocks),
                                 "curl", "-sS", "--max-time", "30", f"http://{T.ORIGIN_NAME}{path}")
    assert res.rc == 7, str(res)
    errors = connect_errors(log)
    assert errors and all(e == error for e in errors), flow_events(log)
    assert "connected to" not in proxy_world.since("microsocks", marks["microsocks"])
    assert path not in proxy_world.since("nginx", marks["nginx"])


def test_socks5_refused_target_port_is_econnrefused_in_the_child(
        proxy_world, microsocks, childflow, userdir):
    marks = proxy_world.marks()
    res, log = run_with_flow_log(childflow, userdir, _credentials(microsocks, "options"),
                                 "/usr/bin/python3", "-c", CONNECT_ERRNO,
                                 T.ORIGIN_V4, str(T.CLOSED_PORT))
    assert res.rc == 0, str(res)
    assert res.out.strip() == "ECONNREFUSED", str(res)
    assert connect_errors(log) == ["proxy: SOCKS5 reply 5 (connection refused)"], \
        flow_events(log)
    assert "connected to" not in proxy_world.since("microsocks", marks["microsocks"])
