"""What the proxy is asked for: the name the tree resolved through
childflow's resolver, else the address (a literal, a --hosts-file name), and
always the address with --proxy-send-ip.  Checked in each proxy's own log."""

import os
import re

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    PROXY_KINDS, assert_tunnelled, microsocks_connect_rx, nginx_request_rx, proxy_args,
    proxy_world, tinyproxy, tinyproxy_connect_rx)


def _asked(world, proxy, marks, target):
    """The lines of the proxy's log (the backend's for stunnel) asking for
    target since marks."""
    if proxy.name == "microsocks":
        name, rx = "microsocks", microsocks_connect_rx(T.HOST_V4, target)
    else:
        name, rx = proxy.backend or proxy.name, tinyproxy_connect_rx(target)
    return [ln for ln in world.since(name, marks[name]).splitlines() if re.search(rx, ln)]


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_proxy_send_ip_asks_the_proxy_for_the_address_of_a_resolved_name(
        proxy_world, childflow, kind):
    args, proxy = proxy_args(proxy_world, kind)
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res = childflow.run(*args, "--proxy-send-ip", "--",
                        "curl", "-sS", "-4", "--max-time", "30", f"http://{T.ORIGIN_NAME}{path}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    assert_tunnelled(proxy_world, proxy, marks, f"{T.ORIGIN_V4}:80")
    assert _asked(proxy_world, proxy, marks, f"{T.ORIGIN_NAME}:80") == []
    line = proxy_world.wait_log("nginx", marks["nginx"], nginx_request_rx(path) + "200 ")
    assert line is not None, proxy_world.since("nginx", marks["nginx"])
    # asked for the v4 address, the proxy connected over v4
    assert line.split()[:2] == [proxy.egress[0], T.ORIGIN_V4], line


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_name_from_hosts_file_is_sent_to_the_proxy_as_the_address(
        proxy_world, childflow, userdir, kind):
    args, proxy = proxy_args(proxy_world, kind)
    hosts = os.path.join(userdir, "hosts")
    with open(hosts, "w") as f:
        f.write(f"127.0.0.1 localhost\n{T.ORIGIN_V4} hostsonly.test\n")
    path = f"/?cft={support.new_token()}"
    marks = proxy_world.marks()
    res = childflow.run(*args, "--hosts-file", hosts, "--",
                        "curl", "-sS", "--max-time", "30", f"http://hostsonly.test{path}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    assert_tunnelled(proxy_world, proxy, marks, f"{T.ORIGIN_V4}:80")
    assert "hostsonly.test" not in proxy_world.since(proxy.backend or proxy.name,
                                                     marks[proxy.backend or proxy.name])


def test_proxy_is_asked_for_the_name_just_resolved_when_two_names_share_an_address(
        proxy_world, tinyproxy, childflow):
    marks = proxy_world.marks()
    res = childflow.run("-p", tinyproxy.url, "--", "sh", "-c",
                        f"curl -sS -6 --max-time 30 http://{T.ORIGIN_NAME}/ && "
                        f"curl -sS -6 --max-time 30 http://{T.V6ONLY_NAME}/")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY * 2, str(res)
    assert_tunnelled(proxy_world, tinyproxy, marks, f"{T.ORIGIN_NAME}:80")
    # both CONNECTs are logged; the second one's name is the one the tree had
    # just resolved for it
    connects = lambda: re.findall(r"Request \(file descriptor \d+\): CONNECT (\S+) ",  # noqa
                                  proxy_world.since("tinyproxy", marks["tinyproxy"]))
    assert support.wait_for(lambda: len(connects()) >= 2), connects()
    assert connects() == [f"{T.ORIGIN_NAME}:80", f"{T.V6ONLY_NAME}:80"]
