"""Plain HTTP through childflow's rootless engine reaches the real origin, and
the origin sees the host namespace's address (the tree's own addresses never
leave the sandbox)."""

import re

import pytest

import support
import topology as T

pytestmark = pytest.mark.core


def _access_line(topo, mark, path):
    """The origin's access-log line for a request of path, or None."""
    return topo.wait_log("nginx", mark, rf'"GET {re.escape(path)} HTTP/1\.1" 200 ')


@pytest.mark.parametrize("family_flag, peer", [
    (None, (T.HOST_V4, T.HOST_V6)),
    ("-4", (T.HOST_V4,)),
    ("-6", (T.HOST_V6,)),
], ids=["default", "ipv4", "ipv6"])
def test_curl_by_name_prints_origin_body_and_origin_sees_host_address(
        topo, childflow, family_flag, peer):
    path = f"/?cft={support.new_token()}"
    mark = topo.log_mark("nginx")
    flags = [family_flag] if family_flag else []
    res = childflow.run("--", "curl", "-sS", "--max-time", "30", *flags,
                        f"http://{T.ORIGIN_NAME}{path}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    line = _access_line(topo, mark, path)
    assert line is not None, topo.log_since("nginx", mark)
    assert line.split()[0] in peer, line


@pytest.mark.parametrize("url_host, peer, server", [
    (f"[{T.ORIGIN_V6}]", T.HOST_V6, T.ORIGIN_V6),
    (T.ORIGIN_V4, T.HOST_V4, T.ORIGIN_V4),
], ids=["ipv6-literal", "ipv4-literal"])
def test_curl_by_address_literal_reaches_origin_from_host_address(
        topo, childflow, url_host, peer, server):
    path = f"/?cft={support.new_token()}"
    mark = topo.log_mark("nginx")
    res = childflow.run("--", "curl", "-sS", "--max-time", "30", f"http://{url_host}{path}")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)
    line = _access_line(topo, mark, path)
    assert line is not None, topo.log_since("nginx", mark)
    remote, local = line.split()[:2]
    assert (remote, local) == (peer, server), line


def test_small_file_arrives_byte_exact(topo, childflow):
    res = childflow.run("--", "sh", "-c",
                        f"curl -sS --max-time 30 http://{T.ORIGIN_NAME}/64k.bin | sha256sum")
    assert res.rc == 0, str(res)
    assert res.out.split()[0] == topo.files["64k.bin"]["sha256"], str(res)
