"""The command runs in its own network namespace with only lo and tun0, and
without any capability: it cannot change routes or firewall rules."""

import pytest

import support

pytestmark = pytest.mark.core


def test_only_lo_and_tun0_are_visible(childflow):
    res = childflow.run("--", "ip", "-o", "link")
    assert res.rc == 0, str(res)
    assert sorted(support.link_names(res.out)) == ["lo", "tun0"], str(res)


def test_host_interfaces_are_not_visible(childflow):
    res = childflow.run("--", "cat", "/proc/net/dev")
    assert res.rc == 0, str(res)
    assert "eth0" not in res.out, str(res)


def test_route_change_is_refused_and_has_no_effect(childflow):
    res = childflow.run("--", "sh", "-c",
                        "ip route add 198.51.100.200/32 dev lo; echo rc=$?; ip route show")
    assert res.rc == 0, str(res)
    assert "rc=0" not in res.out, str(res)
    assert "198.51.100.200" not in res.out, str(res)
    assert "not permitted" in res.err.lower(), str(res)


def test_nft_table_creation_is_refused(childflow):
    res = childflow.run("--", "nft", "add", "table", "inet", "cft_escape")
    assert res.rc != 0, str(res)
    assert "not permitted" in res.err.lower(), str(res)


def test_command_has_no_effective_permitted_or_ambient_capabilities(childflow):
    res = childflow.run("--", "cat", "/proc/self/status")
    assert res.rc == 0, str(res)
    for field in ("CapEff", "CapPrm", "CapAmb"):
        assert int(support.status_field(res.out, field), 16) == 0, f"{field}\n{res.out}"


def test_command_runs_with_no_new_privs(childflow):
    res = childflow.run("--", "cat", "/proc/self/status")
    assert res.rc == 0, str(res)
    assert support.status_field(res.out, "NoNewPrivs") == "1", res.out


def test_command_runs_as_the_invoking_user(topo, childflow):
    res = childflow.run("--", "id", "-u")
    assert res.rc == 0, str(res)
    assert res.out.strip() == str(topo.uid), str(res)
