"""The test network itself works (no childflow involved): when these fail,
the childflow tests' failures say nothing about childflow."""

import os
import pwd
import subprocess

import pytest

import support
import topology as T


def test_user_curl_by_name_reaches_origin_directly(topo):
    res = topo.run_user(["curl", "-sS", "--max-time", "10", f"http://{T.ORIGIN_NAME}/"])
    assert res.rc == 0 and res.out == T.ORIGIN_BODY, str(res)


def test_user_runs_unprivileged_with_home_and_sane_path(topo):
    res = topo.run_user(["sh", "-c", 'id -u; echo "$HOME"; echo "$PATH"; '
                         'grep CapEff /proc/self/status'])
    assert res.rc == 0, str(res)
    uid, home, path, capeff = res.out.splitlines()
    assert uid == str(topo.uid) and uid != "0"
    assert home == topo.home and os.path.isdir(home)
    assert "/usr/bin" in path.split(":") and "/usr/sbin" in path.split(":")
    assert int(capeff.split()[1], 16) == 0


@pytest.mark.parametrize("server, answer", [
    (T.DNS_A_V4, T.ORIGIN_V4), (T.DNS_A_V6, T.ORIGIN_V4),
    (T.DNS_B_V4, T.ORIGIN_B_V4), (T.DNS_B_V6, T.ORIGIN_B_V4),
])
def test_both_resolvers_answer_over_udp_and_tcp(topo, server, answer):
    for transport in ("+notcp", "+tcp"):
        res = topo.run_user(["dig", transport, "+short", "+time=2", "+tries=1",
                             f"@{server}", T.ORIGIN_NAME, "A"])
        assert res.rc == 0 and res.out.split() == [answer], str(res)


def test_resolver_logs_show_queries_from_host_address(topo):
    mark = topo.log_mark("dns-b")
    res = topo.run_user(["dig", "+short", f"@{T.DNS_B_V4}", T.ORIGIN_NAME])
    assert res.rc == 0, str(res)
    line = topo.wait_log("dns-b", mark, r"query\[A\] origin\.test from ")
    assert line is not None and line.split()[-1] == T.HOST_V4, line


def test_resolver_answers_nxdomain_and_nodata(topo):
    nx = topo.run_user(["dig", f"@{T.DNS_A_V4}", "no-such-name.test", "A"])
    assert "status: NXDOMAIN" in nx.out, str(nx)
    nodata = topo.run_user(["dig", "+short", f"@{T.DNS_A_V4}", T.V6ONLY_NAME, "A"])
    assert nodata.rc == 0 and nodata.out.strip() == "", str(nodata)
    v6 = topo.run_user(["dig", "+short", f"@{T.DNS_A_V4}", T.V6ONLY_NAME, "AAAA"])
    assert v6.out.split() == [T.ORIGIN_V6], str(v6)


def test_host_namespace_resolver_config_is_the_runs(topo):
    res = topo.run_user(["getent", "ahostsv4", T.ORIGIN_NAME])
    assert res.rc == 0 and res.out.split()[0] == T.ORIGIN_V4, str(res)
    res = topo.run_user(["cat", "/etc/resolv.conf"])
    assert support.nameservers(res.out) == [T.DNS_A_V4], str(res)


def test_origin_b_answers_on_its_address(topo):
    res = topo.run_user(["curl", "-sS", "--max-time", "10", f"http://{T.ORIGIN_B_V4}/"])
    assert res.out == T.ORIGIN_B_BODY, str(res)


def test_access_log_records_host_addresses(topo):
    mark = topo.log_mark("nginx")
    for flag, peer in (("-4", T.HOST_V4), ("-6", T.HOST_V6)):
        path = f"/?harness={support.new_token()}"
        res = topo.run_user(["curl", "-sS", flag, "--max-time", "10",
                             f"http://{T.ORIGIN_NAME}{path}"])
        assert res.rc == 0, str(res)
        line = topo.wait_log("nginx", mark, path.replace("?", r"\?"))
        assert line is not None and line.split()[0] == peer, line


def test_closed_port_refuses_and_blackhole_times_out(topo):
    for url in (f"http://{T.ORIGIN_V4}:{T.CLOSED_PORT}/",
                f"http://[{T.ORIGIN_V6}]:{T.CLOSED_PORT}/"):
        res = topo.run_user(["curl", "-sS", "--max-time", "10", url])
        assert res.rc == 7, str(res)
    for url in (f"http://{T.BLACKHOLE_V4}/", f"http://[{T.BLACKHOLE_V6}]/"):
        res = topo.run_user(["curl", "-sS", "--connect-timeout", "2", url])
        assert res.rc == 28, str(res)


def test_echo_and_discard_services(topo, userdir):
    payload = os.path.join(userdir, "p")
    with open(payload, "w") as f:
        f.write("x" * 100000)
    res = topo.run_user(["sh", "-c", f"nc -N {T.ORIGIN_V6} {T.ECHO_PORT} < {payload}"])
    assert res.rc == 0 and res.out == "x" * 100000, str(res)
    mark = topo.log_mark("echo")
    res = topo.run_user(["sh", "-c", f"nc -N {T.ORIGIN_V4} {T.DISCARD_PORT} < {payload}"])
    assert res.rc == 0, str(res)
    assert topo.wait_log("echo", mark, rf"^discard {T.HOST_V4} 100000$") is not None


def test_big_file_is_served_intact(topo):
    res = topo.run_user(["sh", "-c", f"curl -sS http://{T.ORIGIN_V4}/big | sha256sum"],
                        timeout=120)
    assert res.out.split()[0] == topo.files["big"]["sha256"], str(res)


def test_world_has_only_connected_routes_and_no_forwarding(topo):
    v4 = topo.run_world(["ip", "-4", "route", "show", "table", "main"])
    assert [ln.split()[0] for ln in v4.out.splitlines()] == ["203.0.113.0/24"], str(v4)
    v6 = topo.run_world(["ip", "-6", "route", "show", "table", "main"])
    dests = {ln.split()[0] for ln in v6.out.splitlines()}
    assert dests <= {"2001:db8:1::/64", "fe80::/64", "2001:db8:2::10", "2001:db8:2::11",
                     "2001:db8:2::53", "2001:db8:2::54"}, v6
    fwd = topo.run_world(["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"])
    assert fwd.out.split() == ["0", "0"], str(fwd)


def test_host_namespace_has_only_lo_and_eth0(topo):
    res = topo.run_host_root(["ip", "-o", "link"])
    assert sorted(support.link_names(res.out)) == ["eth0", "lo"], str(res)


def test_ping_group_range_is_open_in_host_namespace_only(topo):
    res = topo.run_user(["cat", "/proc/sys/net/ipv4/ping_group_range"])
    assert res.out.split() == ["0", "2147483647"], str(res)
    res = topo.run_user(["ping", "-c", "1", "-W", "5", T.ORIGIN_V4])
    assert res.rc == 0, str(res)


def test_command_timeout_kills_the_command(topo):
    with pytest.raises(T.CommandTimeout):
        topo.run_user(["sleep", "1000"], timeout=1)
    assert support.wait_for(lambda: not [p for p in topo.user_processes()
                                         if b"sleep" in open(f"/proc/{p}/cmdline", "rb").read()],
                            5)


def test_a_second_topology_comes_up_and_leaves_nothing(topo):
    """Build and tear down a second, small run next to the session's one."""
    prefix = f"cft-{os.getpid()}x"
    t = T.Topology(prefix, big_size=4096)
    bg = None
    try:
        t.up()
        res = t.run_user(["curl", "-sS", "--max-time", "10", f"http://{T.ORIGIN_NAME}/"])
        assert res.out == T.ORIGIN_BODY, str(res)
        bg = t.spawn_user(["sleep", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert support.wait_for(lambda: t.user_processes(), 5)
    finally:
        problems = t.down()
    assert problems == []
    assert bg is not None and bg.wait(timeout=10) == -9
    assert not os.path.exists(t.run_dir)
    assert {t.host_ns, t.world_ns}.isdisjoint(T._netns_list())
    assert {topo.host_ns, topo.world_ns} <= set(T._netns_list())
    with pytest.raises(KeyError):
        pwd.getpwnam(t.user)
    for path in ("/etc/subuid", "/etc/subgid", "/etc/group"):
        with open(path) as f:
            assert t.user not in f.read(), path
    assert not [p for p in T.all_pids() if T.proc_alive(p) and t.uid in T.proc_uids(p)]
    assert not [m for m in support.mountinfo() if prefix in m]
    # the session's own topology is untouched
    res = topo.run_user(["curl", "-sS", "--max-time", "10", f"http://{T.ORIGIN_NAME}/"])
    assert res.out == T.ORIGIN_BODY, str(res)
