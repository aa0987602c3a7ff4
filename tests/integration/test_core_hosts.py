"""--hosts-file replaces /etc/hosts for the tree only, also when the host's
/etc/hosts and /etc/resolv.conf are symlinks."""

import os

import pytest

import topology as T

pytestmark = pytest.mark.core

HOSTS = f"127.0.0.1 localhost\n{T.ORIGIN_V4} viahosts.test\n"


def _hosts_file(userdir):
    path = os.path.join(userdir, "hosts")
    with open(path, "w") as f:
        f.write(HOSTS)
    os.chmod(path, 0o644)
    return path


def _read(path):
    with open(path) as f:
        return f.read()


def test_hosts_file_entries_resolve_inside(topo, childflow, userdir):
    res = childflow.run("--hosts-file", _hosts_file(userdir), "--",
                        "getent", "hosts", "viahosts.test")
    assert res.rc == 0, str(res)
    assert res.out.split()[0] == T.ORIGIN_V4, str(res)


def test_hosts_file_replaces_etc_hosts_inside(topo, childflow, userdir):
    res = childflow.run("--hosts-file", _hosts_file(userdir), "--", "cat", "/etc/hosts")
    assert res.rc == 0, str(res)
    assert res.out == HOSTS, str(res)


def test_curl_by_hosts_file_name_reaches_origin(topo, childflow, userdir):
    res = childflow.run("--hosts-file", _hosts_file(userdir), "--",
                        "curl", "-sS", "--max-time", "30", "http://viahosts.test/")
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)


def test_host_etc_hosts_is_unchanged_after_hosts_file_run(topo, childflow, userdir):
    host_hosts = f"{topo.run_dir}/host-etc/hosts"
    before = _read(host_hosts)
    res = childflow.run("--hosts-file", _hosts_file(userdir), "--", "true")
    assert res.rc == 0, str(res)
    assert _read(host_hosts) == before
    outside = topo.run_user(["cat", "/etc/hosts"])
    assert outside.rc == 0 and outside.out == before, str(outside)


def test_harness_symlink_variant_makes_etc_files_symlinks(topo):
    # precondition for the tests below: the host really has symlinks there
    res = topo.run_user(["readlink", "/etc/hosts", "/etc/resolv.conf"], variant="symlink-etc")
    assert res.rc == 0, str(res)
    assert res.out.split() == [f"{topo.run_dir}/etc-link/hosts",
                               f"{topo.run_dir}/etc-link/resolv.conf"], res


def test_hosts_file_works_when_etc_hosts_is_a_symlink(topo, childflow, userdir):
    link_dir = f"{topo.run_dir}/etc-link"
    before = {n: _read(f"{link_dir}/{n}") for n in ("hosts", "resolv.conf")}
    res = childflow.run("--hosts-file", _hosts_file(userdir), "--",
                        "getent", "hosts", "viahosts.test", variant="symlink-etc")
    assert res.rc == 0, str(res)
    assert res.out.split()[0] == T.ORIGIN_V4, str(res)
    assert {n: _read(f"{link_dir}/{n}") for n in ("hosts", "resolv.conf")} == before
    after = topo.run_user(["readlink", "/etc/hosts"], variant="symlink-etc")
    assert after.out.strip() == f"{link_dir}/hosts", str(after)


def test_dns_works_when_etc_resolv_conf_is_a_symlink(topo, childflow):
    link_dir = f"{topo.run_dir}/etc-link"
    before = _read(f"{link_dir}/resolv.conf")
    mark = topo.log_mark("dns-a")
    res = childflow.run("--", "sh", "-c",
                        f"cat /etc/resolv.conf; getent ahostsv4 {T.ORIGIN_NAME}",
                        variant="symlink-etc")
    assert res.rc == 0, str(res)
    assert before not in res.out, "the tree sees the host's resolv.conf"
    assert T.ORIGIN_V4 in res.out, str(res)
    assert topo.wait_log("dns-a", mark, r"query\[A\] origin\.test from ") is not None
    assert _read(f"{link_dir}/resolv.conf") == before
