"""Proxy variables cannot route around the forced proxy.

With --proxy, childflow removes http_proxy, HTTPS_PROXY, ALL_PROXY, ... (both
cases, and no_proxy) from the environment the tree inherits, so a program
that honours them is not proxied twice.  A tree can still set them itself
(`env http_proxy=... curl`): curl then connects to the proxy they name, but
that connection is itself a TCP connection of the tree, so childflow tunnels
it through the configured proxy, which is asked to CONNECT to the variable's
address and refuses (not in its ConnectPort list); curl fails, and the origin
never sees a connection.  Observed and asserted: no bypass and no double
proxying, only the forced proxy ever talks to the world."""

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    TINYPROXY_PORT, TINYPROXY_V4, assert_all_tcp_via_proxy, assert_tunnelled, connect_errors,
    flow_events, nginx_request_rx, proxy_world, run_with_flow_log, tinyproxy)

BOGUS_V4, BOGUS_PORT = "198.51.100.77", 8080  # nothing there
BOGUS = f"http://{BOGUS_V4}:{BOGUS_PORT}"
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
REMOVED_VARS = PROXY_VARS + ("ftp_proxy", "FTP_PROXY", "no_proxy", "NO_PROXY")
SHOW_ENV = "env | grep -i '_proxy=' | sort; echo env-end"


def _assert_origin_served_by_proxy(world, proxy, marks, path):
    line = world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None, world.since("nginx", marks["nginx"])
    assert line.split()[0] in proxy.egress, line


def test_proxy_variables_given_to_childflow_are_removed_from_the_tree(
        proxy_world, tinyproxy, childflow, userdir):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    env = {v: BOGUS for v in REMOVED_VARS}
    res, log = run_with_flow_log(
        childflow, userdir, ["-p", tinyproxy.url], "sh", "-c",
        f"{SHOW_ENV}; curl -sS --max-time 30 http://{T.ORIGIN_NAME}{path}", env=env)
    assert res.rc == 0, str(res)
    assert res.out == "env-end\n" + T.ORIGIN_BODY, str(res)
    assert_tunnelled(proxy_world, tinyproxy, marks, f"{T.ORIGIN_NAME}:80")
    assert f"CONNECT {BOGUS_V4}" not in proxy_world.since("tinyproxy", marks["tinyproxy"])
    _assert_origin_served_by_proxy(proxy_world, tinyproxy, marks, path)
    assert_all_tcp_via_proxy(log)


def test_proxy_variables_are_kept_without_proxy(childflow):
    # the control for the test above: only --proxy removes them
    env = {v: BOGUS for v in REMOVED_VARS}
    res = childflow.run("--", "sh", "-c", SHOW_ENV, env=env)
    assert res.rc == 0, str(res)
    assert res.out.splitlines() == sorted(f"{v}={BOGUS}" for v in REMOVED_VARS) + ["env-end"], \
        str(res)


@pytest.mark.parametrize("env_host, env_port", [
    (BOGUS_V4, BOGUS_PORT),
    (TINYPROXY_V4, TINYPROXY_PORT),
], ids=["bogus-proxy", "the-forced-proxy-itself"])
def test_proxy_variables_set_inside_the_tree_are_tunnelled_through_the_forced_proxy(
        proxy_world, tinyproxy, childflow, userdir, env_host, env_port):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    env = [f"{v}=http://{env_host}:{env_port}" for v in PROXY_VARS]
    res, log = run_with_flow_log(childflow, userdir, ["-p", tinyproxy.url],
                                 "env", *env, "curl", "-sS", "--max-time", "30",
                                 f"http://{T.ORIGIN_NAME}{path}")
    # curl went for the variable's proxy; the forced proxy refused that CONNECT
    assert res.rc == 7, str(res)
    target = f"{env_host}:{env_port}"
    assert_tunnelled(proxy_world, tinyproxy, marks, target)
    attempts = flow_events(log, "connect_attempt")
    assert attempts and all(e["remote_addr"] == target for e in attempts), attempts
    assert_all_tcp_via_proxy(log)
    assert connect_errors(log) == ["proxy: HTTP 403 Forbidden"], flow_events(log)
    assert path not in proxy_world.since("nginx", marks["nginx"])


@pytest.mark.parametrize("env, curl_flags", [
    ([f"HTTP_PROXY={BOGUS}"], []),
    ([f"{v}={BOGUS}" for v in PROXY_VARS], ["--noproxy", "*"]),
], ids=["uppercase-HTTP_PROXY-ignored-by-curl", "curl-noproxy-star"])
def test_curl_not_using_the_tree_variables_reaches_origin_through_the_forced_proxy(
        proxy_world, tinyproxy, childflow, userdir, env, curl_flags):
    # curl ignores HTTP_PROXY (upper case) for http:// URLs (httpoxy), and
    # --noproxy '*' ignores all of them: then the forced proxy alone applies.
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res, log = run_with_flow_log(childflow, userdir, ["-p", tinyproxy.url],
                                 "env", *env, "curl", "-sS", "--max-time", "30", *curl_flags,
                                 f"http://{T.ORIGIN_NAME}{path}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    assert_tunnelled(proxy_world, tinyproxy, marks, f"{T.ORIGIN_NAME}:80")
    assert f"CONNECT {BOGUS_V4}" not in proxy_world.since("tinyproxy", marks["tinyproxy"])
    _assert_origin_served_by_proxy(proxy_world, tinyproxy, marks, path)
    assert_all_tcp_via_proxy(log)
