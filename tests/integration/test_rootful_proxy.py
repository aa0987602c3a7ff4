"""The rootful backend with --proxy (issue #17): the tree's TCP is intercepted
transparently (the tree-side TPROXY of the rootless backend, into the same
engine and proxy code) and carried through each kind of proxy; UDP and ICMP
take the host's kernel, and --proxy-only denies them there."""

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    PROXY_KINDS, assert_tunnelled, nginx_request_rx, proxy_args, proxy_world)
from test_rootful import rootful

pytestmark = pytest.mark.core


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_tcp_by_name_is_carried_through_the_proxy(proxy_world, childflow, topo, kind):
    args, proxy = proxy_args(proxy_world, kind)
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    # busybox wget ignores proxy variables: the interception is transparent.
    res = rootful(topo, childflow, *args, "--", "busybox", "wget", "-q", "-O", "-",
                  f"http://{T.ORIGIN_NAME}{path}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    assert_tunnelled(proxy_world, proxy, marks, f"{T.ORIGIN_NAME}:80")
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None and line.split()[0] in proxy.egress, line


def test_a_refused_port_stays_refused_through_the_proxy(proxy_world, childflow, topo):
    args, _ = proxy_args(proxy_world, "socks5")
    res = rootful(topo, childflow, *args, "--", "sh", "-c",
                  f"curl -sS -m10 http://{T.ORIGIN_V4}:{T.CLOSED_PORT}/ 2>/dev/null; echo rc=$?")
    assert res.rc == 0, str(res)
    assert res.out.split() == ["rc=7"], str(res)


def test_proxy_only_denies_udp_and_icmp_on_the_kernels_path(proxy_world, childflow, topo):
    args, _ = proxy_args(proxy_world, "http")
    res = rootful(topo, childflow, *args, "--proxy-only", "--", "sh", "-c",
                  f"ping -c1 -W2 {T.FAR_V4} >/dev/null 2>&1; echo ping=$?; "
                  f"dig +short +time=5 {T.ORIGIN_NAME}; "
                  f"curl -sS -m20 -o /dev/null -w '%{{http_code}}\\n' http://{T.ORIGIN_V4}/")
    assert res.rc == 0, str(res)
    assert res.out.split() == ["ping=1", T.ORIGIN_V4, "200"], str(res)
    # Without --proxy-only the same ping goes out: the control.
    res = rootful(topo, childflow, *args, "--", "sh", "-c",
                  f"ping -c1 -W2 {T.FAR_V4} >/dev/null 2>&1; echo ping=$?")
    assert res.out.split() == ["ping=0"], str(res)
