"""--proxy https://: TLS to the proxy (stunnel in front of tinyproxy) with
CONNECT inside.  The certificate is checked (trust and name): a self-signed
one is refused unless a trust store names it (SSL_CERT_FILE), a trusted one
for another name is refused too; --proxy-insecure accepts any certificate,
like curl's, with one warning.  A refusal is said once on stderr (the name
expected, the error, the remedy) and once in the flow log (runtime_failure).
stunnel's log shows every TLS connection and its failure; tinyproxy's log
shows the CONNECT that arrived through the TLS tunnel from stunnel."""

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    STUNNEL_NAME_PORT, STUNNEL_V4, WRONG_CERT_NAME, assert_all_tcp_via_proxy, assert_tunnelled, connect_errors,
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


INSECURE_WARNING = "--proxy-insecure: the certificate of the proxy"


def _assert_refusal_said_once(res, log, expected_name, error_part):
    """One stderr line and one runtime_failure say which name was expected,
    which error, and what to do; nothing about --proxy-insecure's warning."""
    said = [ln for ln in res.err.splitlines() if "TLS certificate of the proxy" in ln]
    assert len(said) == 1, str(res)
    assert f"for {expected_name};" in said[0] and error_part in said[0], said[0]
    assert "use --proxy-insecure to accept" in said[0], said[0]
    assert INSECURE_WARNING not in res.err, str(res)
    failures = flow_events(log, "runtime_failure")
    assert [(f["phase"], f["reason_code"]) for f in failures] == \
        [("run", "proxy_tls_verify_failed")], failures
    assert failures[0]["detail"] == said[0].removeprefix("childflow: "), (failures, said)


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
    _assert_refusal_said_once(res, log, STUNNEL_V4, "self-signed certificate")


def test_https_proxy_certificate_for_another_name_is_refused_when_trusted(
        proxy_world, stunnel_wrong, childflow, userdir):
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res, log = run_with_flow_log(childflow, userdir, ["-p", stunnel_wrong.url],
                                 *_curl(path), env={"SSL_CERT_FILE": proxy_world.wrong_cert})
    _assert_tls_refused(proxy_world, stunnel_wrong, marks, res, log, path, "wrongname",
                        "hostname mismatch")
    _assert_refusal_said_once(res, log, STUNNEL_V4, "does not name the proxy")
    # the certificate's own name is shown, so a wrong host is told from a wrong CA
    assert f"CN = {WRONG_CERT_NAME}" in res.err, str(res)


def test_proxy_insecure_accepts_a_certificate_for_another_name_with_one_warning(
        proxy_world, stunnel_wrong, childflow, userdir):
    # like curl --proxy-insecure: no trust and no name check
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res, log = run_with_flow_log(childflow, userdir,
                                 ["-p", stunnel_wrong.url, "--proxy-insecure"], *_curl(path))
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    warnings = [ln for ln in res.err.splitlines() if INSECURE_WARNING in ln]
    assert len(warnings) == 1 and f"{STUNNEL_V4}:" in warnings[0], str(res)
    assert proxy_world.wait_log("stunnel", marks["stunnel"],
                                stunnel_accept_rx("wrongname", T.HOST_V4)), \
        proxy_world.since("stunnel", marks["stunnel"])
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None, proxy_world.since("nginx", marks["nginx"])
    assert not flow_events(log, "runtime_failure"), flow_events(log)
    assert_all_tcp_via_proxy(log)


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
    # the certificate is trusted, but names origin.test, not the address asked for
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res, log = run_with_flow_log(
        childflow, userdir, ["-p", f"https://{host}:{STUNNEL_NAME_PORT}"], *_curl(path),
        env={"SSL_CERT_FILE": proxy_world.name_cert})
    assert res.rc == 7, str(res)
    errors = connect_errors(log)
    assert errors and all(e == "proxy TLS: hostname mismatch" for e in errors), \
        flow_events(log)
    _assert_refusal_said_once(res, log, host.strip("[]"), "does not name the proxy")
    assert proxy_world.wait_log("stunnel", marks["stunnel"], r"SSL_accept: .*alert"), \
        proxy_world.since("stunnel", marks["stunnel"])
    assert "CONNECT" not in proxy_world.since("tinyproxy", marks["tinyproxy"])
    assert path not in proxy_world.since("nginx", marks["nginx"])


@pytest.mark.parametrize("host", [T.ORIGIN_V4, f"[{T.ORIGIN_V6}]"], ids=["ipv4", "ipv6"])
def test_proxy_insecure_accepts_a_proxy_by_address_whose_certificate_names_only_a_dns_name(
        proxy_world, childflow, userdir, host):
    path = f"/?cft={support.new_token()}"
    res, log = run_with_flow_log(
        childflow, userdir,
        ["-p", f"https://{host}:{STUNNEL_NAME_PORT}", "--proxy-insecure"], *_curl(path))
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    assert res.err.count(INSECURE_WARNING) == 1, str(res)
    assert not connect_errors(log), flow_events(log)
