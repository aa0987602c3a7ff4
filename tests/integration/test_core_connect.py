"""connect() inside the sandbox behaves as it would on the host: a closed
port is refused (never "connected, then reset"), an unreachable destination
times out (never accepted early by the engine)."""

import pytest

import topology as T

pytestmark = pytest.mark.core

CONNECT_PROBE = r"""
import errno, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except ConnectionRefusedError as e:
    print(f"refused {errno.errorcode[e.errno]}")
except (socket.timeout, TimeoutError):
    print("timeout")
except OSError as e:
    print(f"error {errno.errorcode.get(e.errno, e.errno)}")
else:
    print("connected")
"""


def _probe(childflow, addr, port, timeout):
    res = childflow.run("--", "/usr/bin/python3", "-c", CONNECT_PROBE, addr, str(port),
                        str(timeout), timeout=timeout + 60)
    assert res.rc == 0, str(res)
    return res.out.strip()


@pytest.mark.parametrize("family", ["-4", "-6"], ids=["ipv4", "ipv6"])
def test_curl_to_closed_port_fails_with_couldnt_connect(childflow, family):
    res = childflow.run("--", "curl", "-sS", family, "--max-time", "30",
                        f"http://{T.ORIGIN_NAME}:{T.CLOSED_PORT}/")
    assert res.rc == 7, str(res)


@pytest.mark.parametrize("addr", [T.ORIGIN_V4, T.ORIGIN_V6], ids=["ipv4", "ipv6"])
def test_connect_to_closed_port_raises_econnrefused(childflow, addr):
    assert _probe(childflow, addr, T.CLOSED_PORT, 10) == "refused ECONNREFUSED"


@pytest.mark.parametrize("addr", [T.BLACKHOLE_V4, f"[{T.BLACKHOLE_V6}]"], ids=["ipv4", "ipv6"])
def test_curl_to_blackholed_address_times_out(childflow, addr):
    res = childflow.run("--", "curl", "-sS", "--connect-timeout", "3", f"http://{addr}/")
    assert res.rc == 28, str(res)


@pytest.mark.parametrize("addr", [T.BLACKHOLE_V4, T.BLACKHOLE_V6], ids=["ipv4", "ipv6"])
def test_connect_to_blackholed_address_is_never_accepted(childflow, addr):
    assert _probe(childflow, addr, T.HTTP_PORT, 3) == "timeout"


def test_connect_to_open_port_succeeds(childflow):
    # the positive control for the probe above
    assert _probe(childflow, T.ORIGIN_V4, T.HTTP_PORT, 10) == "connected"
