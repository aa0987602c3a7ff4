"""--proxy https://: TLS to the proxy (stunnel in front of tinyproxy) with
CONNECT inside.  The certificate is checked: a self-signed one is refused
unless --proxy-insecure (or a trust store naming it, SSL_CERT_FILE), and a
certificate for another name is refused even with --proxy-insecure.
stunnel's log shows every TLS connection and its failure; tinyproxy's log
shows the CONNECT that arrived through the TLS tunnel from stunnel."""

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    STUNNEL_NAME_PORT, STUNNEL_V4, assert_all_tcp_via_proxy, assert_tunnelled, connect_errors,
    flow_events, nginx_request_rx, proxy_world, run_with_flow_log, stunnel, stunnel_accept_rx,
    stunnel_wrong, tinyproxy_client_rx, tinyproxy_connect_rx)


def _curl(path):
    return ("curl", "-sS", "--max-time", "30", f"http://{T.ORIGIN_NAME}{path}")


def _trust(how, world):
    """childflow arguments and environment for a way of accepting the cert."""
    if how == "proxy-insecure":
        return ["--proxy-insecure"], None
    return [], {"SSL_CERT_FILE": world.cert}


@pytest.mark.parametrize("how", ["proxy-insecure", "ssl-cert-file"])
def test_https_proxy_with_accepted_certificate_tunnels_to_origin(
        proxy_world, stunnel, childflow, userdir, how):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    extra, env = _trust(how, proxy_world)
    res, log = run_with_flow_log(childflow, userdir, ["-p", stunnel.url, *extra],
                                 *_curl(path), env=env)
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    assert proxy_world.wait_log("stunnel", marks["stunnel"],
                                stunnel_accept_rx("good", T.HOST_V4)), \
        proxy_world.since("stunnel", marks["stunnel"])
    tp = stunnel.backend
    # the CONNECT arrived at tinyproxy from stunnel, i.e. it travelled inside TLS
    assert proxy_world.wait_log(tp, marks[tp], tinyproxy_client_rx(STUNNEL_V4)), \
        proxy_world.since(tp, marks[tp])
    assert proxy_world.wait_log(tp, marks[tp], tinyproxy_connect_rx(f"{T.ORIGIN_NAME}:80")), \
        proxy_world.since(tp, marks[tp])
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None, proxy_world.since("nginx", marks["nginx"])
    assert line.split()[0] in stunnel.egress, line
    assert_all_tcp_via_proxy(log)


def _assert_tls_refused(world, proxy, marks, res, log, path, service, error_part):
    assert res.rc == 7, str(res)
    errors = connect_errors(log)
    assert errors and all(error_part in e and e.startswith("proxy TLS: ") for e in errors), \
        flow_events(log)
    # stunnel saw the connection and the TLS handshake fail: childflow aborted it
    assert world.wait_log("stunnel", marks["stunnel"], stunnel_accept_rx(service, T.HOST_V4)), \
        world.since("stunnel", marks["stunnel"])
    assert world.wait_log("stunnel", marks["stunnel"], r"SSL_accept: .*alert"), \
        world.since("stunnel", marks["stunnel"])
    assert "CONNECT" not in world.since(proxy.backend, marks[proxy.backend])
    assert path not in world.since("nginx", marks["nginx"])


def test_https_proxy_with_self_signed_certificate_is_refused_without_proxy_insecure(
        proxy_world, stunnel, childflow, userdir):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res, log = run_with_flow_log(childflow, userdir, ["-p", stunnel.url], *_curl(path))
    _assert_tls_refused(proxy_world, stunnel, marks, res, log, path, "good",
                        "certificate verify failed")


@pytest.mark.parametrize("how", ["proxy-insecure", "ssl-cert-file"])
def test_https_proxy_certificate_for_another_name_is_refused_even_when_trusted(
        proxy_world, stunnel_wrong, childflow, userdir, how):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    extra, env = _trust(how, proxy_world)
    if env:
        env = {"SSL_CERT_FILE": proxy_world.wrong_cert}
    res, log = run_with_flow_log(childflow, userdir, ["-p", stunnel_wrong.url, *extra],
                                 *_curl(path), env=env)
    _assert_tls_refused(proxy_world, stunnel_wrong, marks, res, log, path, "wrongname",
                        "hostname mismatch")


@pytest.mark.parametrize("how", ["proxy-insecure", "ssl-cert-file"])
def test_https_proxy_named_by_dns_name_is_resolved_on_the_host_and_checked_by_name(
        proxy_world, childflow, userdir, how):
    # https://origin.test:3446: the host resolves the proxy's name (dnsmasq A),
    # the certificate carries only DNS:origin.test
    proxy = proxy_world.stunnel_by_name
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    extra, env = _trust(how, proxy_world)
    if env:
        env = {"SSL_CERT_FILE": proxy_world.name_cert}
    res, log = run_with_flow_log(childflow, userdir, ["-p", proxy.url, *extra],
                                 *_curl(path), env=env)
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    assert_tunnelled(proxy_world, proxy, marks, f"{T.ORIGIN_NAME}:80")
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None and line.split()[0] in proxy.egress, \
        proxy_world.since("nginx", marks["nginx"])
    assert_all_tcp_via_proxy(log)


@pytest.mark.parametrize("host", [T.ORIGIN_V4, f"[{T.ORIGIN_V6}]"], ids=["ipv4", "ipv6"])
def test_https_proxy_by_address_with_a_certificate_naming_only_a_dns_name_is_refused(
        proxy_world, childflow, userdir, host):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res, log = run_with_flow_log(
        childflow, userdir,
        ["-p", f"https://{host}:{STUNNEL_NAME_PORT}", "--proxy-insecure"], *_curl(path))
    assert res.rc == 7, str(res)
    errors = connect_errors(log)
    assert errors and all(e == "proxy TLS: hostname mismatch" for e in errors), \
        flow_events(log)
    assert proxy_world.wait_log("stunnel", marks["stunnel"], r"SSL_accept: .*alert"), \
        proxy_world.since("stunnel", marks["stunnel"])
    assert "CONNECT" not in proxy_world.since("tinyproxy", marks["tinyproxy"])
    assert path not in proxy_world.since("nginx", marks["nginx"])
