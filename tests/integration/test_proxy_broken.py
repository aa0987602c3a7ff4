"""A proxy that fails during the handshake, or a --proxy that is not a proxy
of that kind at all, refuses the tree's connects at once with a flow-log
error naming what went wrong, and nothing reaches the origin through it.

The "wrong kind of server" cases use the topology's own peers as the proxy:
the echo server (port 7) sends our own request back, nginx (port 80)
answers CONNECT or a SOCKS5 greeting with 400 and a TLS ClientHello with
plain HTTP; each server's log shows what childflow sent it."""

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    CLOSED_PORT, CONNECT_ERRNO, STUNNEL_DEADEND_PORT, STUNNEL_V4, TINYPROXY_V4, connect_errors,
    flow_events, proxy_world, run_with_flow_log, stunnel_accept_rx)


def test_tls_proxy_whose_backend_is_down_is_refused_in_the_child(
        proxy_world, childflow, userdir):
    marks = proxy_world.marks()
    res, log = run_with_flow_log(
        childflow, userdir,
        ["-p", f"https://{STUNNEL_V4}:{STUNNEL_DEADEND_PORT}", "--proxy-insecure"],
        "/usr/bin/python3", "-c", CONNECT_ERRNO, T.ORIGIN_V4, str(T.HTTP_PORT))
    assert res.rc == 0, str(res)
    assert res.out.strip() == "ECONNREFUSED", str(res)
    # TLS was up, then stunnel dropped the connection: a reset or a close
    errors = connect_errors(log)
    assert len(errors) == 1 and errors[0] in (
        "proxy: connection closed during handshake",
        "proxy: connection lost during the handshake"), flow_events(log)
    assert proxy_world.wait_log("stunnel", marks["stunnel"],
                                stunnel_accept_rx("deadend", T.HOST_V4)), \
        proxy_world.since("stunnel", marks["stunnel"])
    assert proxy_world.wait_log(
        "stunnel", marks["stunnel"],
        rf"s_connect: connect {TINYPROXY_V4}:{CLOSED_PORT}: Connection refused"), \
        proxy_world.since("stunnel", marks["stunnel"])


@pytest.mark.parametrize("proxy, error, peer_log, peer_rx", [
    # " reset": on the switched path the engine read only what the handshake
    # took, so closing the socket on the echo's unread rest resets it
    (f"http://{T.ORIGIN_V4}:{T.ECHO_PORT}", "proxy: malformed reply",
     "echo", rf"^echo {T.HOST_V4} \d+( reset)?$"),
    (f"socks5://{T.ORIGIN_V4}:{T.ECHO_PORT}", "proxy: malformed reply",
     "echo", rf"^echo {T.HOST_V4} 3( reset)?$"),
    (f"http://{T.ORIGIN_V4}:{T.HTTP_PORT}", "proxy: HTTP 400 Bad Request",
     "nginx", rf'^{T.HOST_V4} \S+ 80 "CONNECT {T.ORIGIN_NAME}:80 HTTP/1\.1" 400 '),
    (f"socks5://{T.ORIGIN_V4}:{T.HTTP_PORT}", "proxy: malformed reply",
     "nginx", rf'^{T.HOST_V4} \S+ 80 "\\x05\\x01\\x00" 400 '),
    (f"https://{T.ORIGIN_V4}:{T.HTTP_PORT}", "proxy TLS: wrong version number",
     "nginx", rf'^{T.HOST_V4} \S+ 80 "\\x16\\x03\\x01'),
], ids=["http-to-echo", "socks5-to-echo", "http-to-web-server", "socks5-to-web-server",
        "https-to-plain-http"])
def test_server_that_is_not_that_kind_of_proxy_is_refused_with_a_clear_error(
        proxy_world, childflow, userdir, proxy, error, peer_log, peer_rx):
    token = support.new_token()
    marks = proxy_world.marks()
    extra = ["--proxy-insecure"] if proxy.startswith("https:") else []
    res, log = run_with_flow_log(childflow, userdir, ["-p", proxy, *extra],
                                 "curl", "-sS", "-4", "--max-time", "30",
                                 f"http://{T.ORIGIN_NAME}/?cft={token}")
    assert res.rc == 7, str(res)
    assert connect_errors(log) == [error], flow_events(log)
    # the server saw childflow's handshake (and nothing of the tree's request)
    assert proxy_world.wait_log(peer_log, marks[peer_log], peer_rx), \
        proxy_world.since(peer_log, marks[peer_log])
    assert token not in proxy_world.since("nginx", marks["nginx"])
