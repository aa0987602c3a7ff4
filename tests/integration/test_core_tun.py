"""Without access to /dev/net/tun childflow fails cleanly with exit 124 and a
message that names the device, and runs nothing."""

import os

import pytest

pytestmark = pytest.mark.core


def test_harness_tun_mode_0600_denies_the_user(topo):
    # precondition: the user really cannot open the device in this setup
    denied = topo.run_user(["sh", "-c", "exec 3<>/dev/net/tun"], tun_mode="0600")
    assert denied.rc != 0, str(denied)
    allowed = topo.run_user(["sh", "-c", "exec 3<>/dev/net/tun"], tun_mode="0666")
    assert allowed.rc == 0, str(allowed)


def test_unusable_dev_net_tun_exits_124_naming_it(childflow, userdir):
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--", "touch", marker, tun_mode="0600")
    assert res.rc == 124, str(res)
    assert "/dev/net/tun" in res.err, str(res)
    assert not os.path.exists(marker), "the command ran"
