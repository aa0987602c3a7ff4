"""A proxy that cannot be reached (its port is closed: RST): every connect of
the tree fails at once as refused, nothing reaches the origin, and
childflow says so on stderr exactly once however many connects fail."""

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    CLOSED_PORT, TINYPROXY_V4, connect_errors, flow_events, proxy_world, run_with_flow_log)

# nothing listens on 198.51.100.20:1; the address exists (the proxies' own)
CLOSED = CLOSED_PORT


@pytest.mark.parametrize("scheme", ["http", "socks5", "https"])
def test_unreachable_proxy_refuses_every_connect_and_is_reported_once(
        proxy_world, childflow, userdir, scheme):
    token = support.new_token()
    marks = proxy_world.marks()
    script = "; ".join(
        f"curl -sS -4 --max-time 30 http://{T.ORIGIN_NAME}/?cft={token}-{i}; echo rc=$?"
        for i in range(3))
    res, log = run_with_flow_log(childflow, userdir,
                                 ["-p", f"{scheme}://{TINYPROXY_V4}:{CLOSED}"], "sh", "-c", script)
    assert res.rc == 0, str(res)
    # 7 = refused at once (28 would be curl's own timeout: a hang)
    assert res.out.split() == ["rc=7"] * 3, str(res)
    lines = [ln for ln in res.err.splitlines() if "cannot connect to the proxy" in ln]
    assert len(lines) == 1, str(res)
    assert f"{TINYPROXY_V4}:{CLOSED}" in lines[0] and "Connection refused" in lines[0], lines
    errors = connect_errors(log)
    assert len(errors) == 3, flow_events(log)
    assert all(e == "Connection refused" for e in errors), errors
    assert all(e["via_proxy"] for e in flow_events(log, "connect_result")), flow_events(log)
    assert token not in proxy_world.since("nginx", marks["nginx"])
