"""The rootful backend (--root, issue #17): the tree in network, mount, PID,
UTS and IPC namespaces of its own with a veth to the host, whose kernel
forwards and masquerades its traffic under one owned nft table per run.

Every run is root's, in the harness's private "host" namespace (so the
forwarding switches it turns on, its veth and its table are that
namespace's). Each denial is paired with a control in the same run."""

import json
import os
import signal
import subprocess
import time

import pytest

import flowlog_v1
import support
import topology as T

pytestmark = pytest.mark.core

CURL = "curl -sS --max-time 15 -o /dev/null -w '%{http_code}\\n'"


def rootful(topo, childflow, *args, env=None, timeout=60):
    """childflow --root ARGS as root in the host namespace (topology.root_argv)."""
    return topo.run_root(childflow.argv("--root", *args), env=childflow.env(env),
                         timeout=timeout)


def spawn_rootful(topo, childflow, *args, env=None):
    return topo.spawn_root(childflow.argv("--root", *args), env=childflow.env(env))


def host_state(topo):
    """What a run may change in the host namespace, as text to compare."""
    parts = []
    for argv in (["nft", "list", "ruleset"], ["ip", "-o", "link"], ["ip", "-o", "addr"],
                 ["ip", "route"], ["ip", "-6", "route"], ["ip", "rule"], ["ip", "-6", "rule"],
                 ["sh", "-c", "grep -H . /proc/sys/net/ipv4/conf/*/forwarding "
                  "/proc/sys/net/ipv6/conf/*/force_forwarding "
                  "/proc/sys/net/ipv6/conf/*/forwarding /proc/sys/net/ipv4/ip_forward"]):
        parts.append(topo.run_host_root(argv, check=True).out)
    return "\n".join(parts)


def wait_state(topo, want, seconds=10):
    """The host's state once it equals @want (the reaper works after
    childflow is gone), or the last one seen."""
    deadline = time.monotonic() + seconds
    got = host_state(topo)
    while got != want and time.monotonic() < deadline:
        time.sleep(0.1)
        got = host_state(topo)
    return got


# --- the tree's network -------------------------------------------------------------------


def test_tree_sees_lo_tun0_and_its_veth_only(topo, childflow):
    res = rootful(topo, childflow, "--", "sh", "-c",
                  "ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | sort")
    assert res.rc == 0, str(res)
    assert res.out.split() == ["eth0", "lo", "tun0"], str(res)


@pytest.mark.parametrize("family,name", [("-4", T.ORIGIN_NAME), ("-6", T.ORIGIN_NAME)])
def test_tcp_by_name_goes_through_the_hosts_kernel(topo, childflow, family, name):
    mark = topo.log_mark("nginx")
    res = rootful(topo, childflow, "--", "sh", "-c", f"{CURL} {family} http://{name}/")
    assert res.rc == 0, str(res)
    assert res.out.strip() == "200", str(res)
    log = topo.log_since("nginx", mark)
    # Masqueraded by the host: the origin sees the host namespace's address.
    assert (T.HOST_V4 if family == "-4" else T.HOST_V6) in log, log


def test_ping_and_traceroute_see_the_host_then_every_router(topo, childflow):
    script = (f"ping -c1 -W5 {T.FAR_V4} && ping -6 -c1 -W5 {T.FAR_V6} && "
              f"traceroute -n -q 1 -w 5,0,0 -m 8 {T.FAR_V4} && "
              f"traceroute -6 -n -q 1 -w 5,0,0 -m 8 {T.FAR_V6} && "
              f"traceroute -I -N 1 -n -q 1 -w 5,0,0 -m 8 {T.FAR_V4}")
    res = rootful(topo, childflow, "--", "sh", "-c", script, timeout=120)
    assert res.rc == 0, str(res)
    assert "1 received" in res.out, str(res)
    traces = res.out.split("traceroute to ")[1:]
    v4, v6, icmp = [[ln.split()[1] for ln in t.splitlines()[1:] if ln.strip()] for t in traces]
    assert icmp == v4, str(res)
    # The host forwards, so it is the first hop (its end of the veth).
    assert v4[0].startswith("198.18.") and v4[1:] == list(T.TRACE_HOPS_V4), str(res)
    assert v6[0].startswith("fd63:6866:6c77:") and int(v6[0].split(":")[3], 16) >= 0x8000 and v6[1:] == list(T.TRACE_HOPS_V6), str(res)


def test_dns_and_hosts_file_work_as_in_the_rootless_backend(topo, childflow, userdir):
    hosts = os.path.join(userdir, "hosts")
    with open(hosts, "w") as f:
        f.write(f"{T.ORIGIN_B_V4} pinned.test\n")
    res = rootful(topo, childflow, "--dns", T.DNS_A_V4, "--hosts-file", hosts, "--", "sh", "-c",
                  f"getent hosts pinned.test; dig +short +time=5 {T.ORIGIN_NAME} A; "
                  f"dig +short +time=5 +tcp {T.ORIGIN_NAME} AAAA; {CURL} http://pinned.test/")
    assert res.rc == 0, str(res)
    lines = res.out.split("\n")
    assert lines[0].split() == [T.ORIGIN_B_V4, "pinned.test"], str(res)
    assert T.ORIGIN_V4 in lines[1] and T.ORIGIN_V6 in lines[2], str(res)
    assert lines[3] == "200", str(res)


# --- policy on the kernel's path ------------------------------------------------------------


def curl_both(target_denied, target_allowed, family="-4"):
    """Prints rc=N for the first (7: refused at once; a drop would time out
    with 28), then the second's HTTP status."""
    return (f"{CURL} {family} http://{target_denied}/ >/dev/null 2>&1; echo rc=$?; "
            f"{CURL} {family} http://{target_allowed}/")


def test_deny_cidr_refuses_at_once_and_the_control_passes(topo, childflow):
    mark = topo.log_mark("nginx")
    res = rootful(topo, childflow, "--deny-cidr", f"{T.ORIGIN_V4}/32", "--deny-cidr",
                  f"{T.ORIGIN_V6}/128", "--", "sh", "-c",
                  curl_both(T.ORIGIN_V4, T.ORIGIN_B_V4) + "; " +
                  curl_both(f"[{T.ORIGIN_V6}]", f"[{T.ORIGIN_B_V6}]", "-6"))
    assert res.rc == 0, str(res)
    # A reset, as the rootless engine answers a denied connection: refused, not a timeout.
    assert res.out.split() == ["rc=7", "200", "rc=7", "200"], str(res)
    log = topo.log_since("nginx", mark)
    assert f"{T.ORIGIN_B_V4} " in log and f"{T.ORIGIN_V4} " not in log.replace(
        f"{T.ORIGIN_B_V4} ", ""), log


def test_default_deny_with_a_longer_allow_inside_a_deny(topo, childflow):
    # Longest prefix wins: the /32 allow inside the denied /24.
    res = rootful(topo, childflow, "--default-policy", "deny", "--deny-cidr", "198.51.100.0/24",
                  "--allow-cidr", f"{T.ORIGIN_B_V4}/32", "--", "sh", "-c",
                  curl_both(T.ORIGIN_V4, T.ORIGIN_B_V4) + f"; ping -c1 -W2 {T.FAR_V4}; "
                  "echo ping=$?")
    assert res.rc == 0, str(res)
    out = res.out.split()
    assert out[:2] == ["rc=7", "200"], str(res)
    assert out[-1] == "ping=1" and "filtered" in res.out, str(res)


def test_deny_domain_refuses_the_names_addresses_on_the_kernels_path(topo, childflow, userdir):
    log = os.path.join(userdir, "flows.jsonl")
    os.chmod(userdir, 0o777)
    res = rootful(topo, childflow, "--flow-log", log, "--deny-domain", T.ORIGIN_NAME, "--",
                  "sh", "-c", f"{CURL} -4 http://{T.ORIGIN_NAME}/ >/dev/null 2>&1; echo rc=$?; "
                  f"{CURL} -6 http://{T.ORIGIN_NAME}/ >/dev/null 2>&1; echo rc=$?; "
                  f"{CURL} http://{T.ORIGIN_B_V4}/")
    assert res.rc == 0, str(res)
    # The name is not resolved at all (the engine answers empty), and its
    # addresses learned another way would be refused: see the allow test.
    assert res.out.split() == ["rc=6", "rc=6", "200"], str(res)


def test_default_deny_with_allow_domain_opens_only_that_names_addresses(topo, childflow,
                                                                      userdir):
    log = os.path.join(userdir, "flows.jsonl")
    os.chmod(userdir, 0o777)
    res = rootful(topo, childflow, "--flow-log", log, "--default-policy", "deny",
                  "--allow-domain", T.ORIGIN_NAME, "--", "sh", "-c",
                  f"{CURL} -4 http://{T.ORIGIN_NAME}/; {CURL} -6 http://{T.ORIGIN_NAME}/; "
                  f"{CURL} http://{T.ORIGIN_B_V4}/ >/dev/null 2>&1; echo rc=$?; "
                  f"ping -c1 -W2 {T.FAR_V4} >/dev/null 2>&1; echo ping=$?")
    assert res.rc == 0, str(res)
    assert res.out.split() == ["200", "200", "rc=7", "ping=1"], str(res)
    ev = flow_events(log)
    assert [e["reason_code"] for e in ev if e["event"] == "policy_violation"] == \
        ["default_deny", "default_deny"], ev
    assert len([e for e in ev if e["event"] == "connect_result" and e["status"] == "ok"]) == 2


@pytest.mark.parametrize("tls", [False, True], ids=["http-host", "tls-sni"])
def test_domain_rules_check_the_name_a_connection_sends(topo, childflow, userdir, tls):
    # With domain rules the tree's TCP goes through the engine, which reads
    # the first bytes: twin.test on origin.test's address is refused.
    if tls:
        ok = f"curl -sS -4 -k -m10 -o /dev/null -w '%{{http_code}}\\n' https://{T.ORIGIN_NAME}/"
        bad = (f"curl -sS -4 -k -m10 --resolve {T.TWIN_NAME}:{T.TLS_PORT}:{T.ORIGIN_V4} "
               f"https://{T.TWIN_NAME}/")
    else:
        ok = f"{CURL} -4 http://{T.ORIGIN_NAME}/"
        bad = f"curl -sS -4 -m10 -H 'Host: {T.TWIN_NAME}' http://{T.ORIGIN_NAME}/"
    res = rootful(topo, childflow, "--default-policy", "deny", "--allow-domain", T.ORIGIN_NAME,
                  "--", "sh", "-c", f"{ok}; {bad} >/dev/null 2>&1; echo rc=$?")
    assert res.rc == 0, str(res)
    out = res.out.split()
    assert out[0] == "200" and out[1] != "rc=0", str(res)
    assert f"denied tcp {T.ORIGIN_V4}:{443 if tls else 80}" in res.err, str(res)


def test_offline_denies_everything_and_dns_answers_empty(topo, childflow):
    res = rootful(topo, childflow, "--offline", "--dns", T.DNS_A_V4, "--", "sh", "-c",
                  f"dig +short +time=5 {T.ORIGIN_NAME}; echo dig=$?; {CURL} http://{T.ORIGIN_V4}/;"
                  f" echo rc=$?; ping -c1 -W2 {T.FAR_V4}; echo ping=$?")
    assert res.rc == 0, str(res)
    out = res.out.split()
    assert out[:1] == ["dig=0"], str(res)  # answered, with no address
    assert "rc=7" in out and "ping=1" in out, str(res)


# The host end's link-local address (EUI-64 from its MAC, which the tree's
# neighbour table holds once it has talked to its IPv6 gateway).
LINK_LOCAL_OF_GATEWAY = (
    "import subprocess\n"
    "out = subprocess.run(['ip', '-6', 'neigh'], capture_output=True, text=True).stdout\n"
    "mac = out.split('lladdr')[1].split()[0]\n"
    "b = bytearray(bytes.fromhex(mac.replace(':', '')))\n"
    "b[0] ^= 2\n"
    "w = bytes(b[:3]) + b'\\xff\\xfe' + bytes(b[3:])\n"
    "print('fe80::' + ':'.join('%x' % int.from_bytes(w[i:i + 2], 'big') "
    "for i in range(0, 8, 2)))")


def test_the_hosts_own_addresses_are_refused_and_the_origin_is_not(topo, childflow):
    listener = subprocess.Popen(["ip", "netns", "exec", topo.host_ns, T.PYTHON, "-c",
                                 "import socket,sys\n"
                                 "s=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET,"
                                 "socket.SO_REUSEADDR,1)\n"
                                 "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
                                 "s.bind(('::', 8099)); s.listen(8)\n"
                                 "print('up', flush=True)\n"
                                 "while True:\n c,_=s.accept(); c.sendall(b'HOST\\n'); c.close()\n"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "up"
        res = rootful(topo, childflow, "--", "sh", "-c",
                      f"curl -sS -m5 telnet://{T.HOST_V4}:8099 </dev/null 2>/dev/null; echo rc=$?; "
                      "gw=$(ip route | awk '/default/ {print $3}'); "
                      "curl -sS -m5 telnet://$gw:8099 </dev/null 2>/dev/null; echo rc=$?; "
                      f"curl -sS -m5 telnet://[{T.HOST_V6}]:8099 </dev/null 2>/dev/null; "
                      "echo rc=$?; gw6=$(ip -6 route | awk '/default/ {print $3}'); "
                      "curl -sS -m5 telnet://[$gw6]:8099 </dev/null 2>/dev/null; echo rc=$?; "
                      f"ll=$({T.PYTHON} -c \"{LINK_LOCAL_OF_GATEWAY}\"); "
                      "curl -sS -m5 \"telnet://[$ll%25eth0]:8099\" </dev/null 2>/dev/null; "
                      "echo rc=$? ll=${ll%%:*}; "
                      f"{CURL} http://{T.ORIGIN_V4}/")
    finally:
        listener.kill()
        listener.wait()
    assert res.rc == 0, str(res)
    assert "HOST" not in res.out, str(res)
    assert res.out.split() == ["rc=7"] * 5 + ["ll=fe80", "200"], str(res)


def test_a_root_tree_cannot_reach_the_run_records(topo, childflow):
    # uid 0 without capabilities still owns root's 0700 directory: it is masked.
    res = rootful(topo, childflow, "--user", "root", "--", "sh", "-c",
                  "ls -A /run/childflow; touch /run/childflow/x 2>/dev/null && echo ATTACK; "
                  f"{CURL} http://{T.ORIGIN_V4}/")
    assert res.rc == 0, str(res)
    assert res.out.split() == ["200"], str(res)


def test_one_runs_tree_cannot_reach_anothers(topo, childflow):
    server = spawn_rootful(topo, childflow, "--", "sh", "-c",
                           "ip -4 -o addr show eth0 | awk '{print $4}'; "
                           f"exec {T.PYTHON} -c \"import socket\n"
                           "s=socket.socket(); s.bind(('0.0.0.0', 8098)); s.listen(8)\n"
                           "while True:\n c,_=s.accept(); c.sendall(b'TREE\\n'); c.close()\"")
    try:
        addr = server.stdout.readline().decode().strip().split("/")[0]
        assert addr.startswith("198.18."), addr
        res = rootful(topo, childflow, "--", "sh", "-c",
                      f"curl -sS -m5 telnet://{addr}:8098 </dev/null 2>/dev/null; echo rc=$?; "
                      f"{CURL} http://{T.ORIGIN_V4}/")
        host = topo.run_host_root(["curl", "-sS", "-m5", f"telnet://{addr}:8098"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)
    assert res.rc == 0, str(res)
    assert res.out.split() == ["rc=7", "200"], str(res)
    # Nothing new reaches a tree, not even from the host.
    assert "TREE" not in host.out, str(host)


def test_block_private_and_metadata_are_in_the_runs_table(topo, childflow):
    p = spawn_rootful(topo, childflow, "--block-private", "--block-metadata", "--", "sleep", "30")
    try:
        text = ""
        for _ in range(100):
            text = topo.run_host_root(["nft", "list", "ruleset"], check=True).out
            if "169.254.169.254" in text:
                break
            time.sleep(0.1)
        assert "ip daddr 169.254.169.254 goto deny" in text, text
        assert "ip daddr 10.0.0.0/8 goto deny" in text, text
        assert "ip6 daddr fc00::/7 goto deny" in text, text
        assert "flags owner" in text, text
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.communicate(timeout=30)


# --- nothing left behind --------------------------------------------------------------------


def test_a_finished_run_leaves_the_host_as_it_was(topo, childflow):
    before = host_state(topo)
    res = rootful(topo, childflow, "--", "sh", "-c", f"{CURL} http://{T.ORIGIN_V4}/")
    assert res.rc == 0 and res.out.strip() == "200", str(res)
    # At once: childflow waits for its reaper to undo the run before it exits.
    assert host_state(topo) == before
    # The last run's records go with their lock file and directory.
    assert not os.path.exists(state_dir(topo)), os.listdir(state_dir(topo))


def test_during_a_run_forwarding_is_on_per_interface_only(topo, childflow):
    p = spawn_rootful(topo, childflow, "--", "sleep", "30")
    try:
        sysctl = lambda k: topo.run_host_root(["sysctl", "-n", k], check=True).out.strip()
        for _ in range(100):
            if sysctl("net.ipv4.conf.eth0.forwarding") == "1":
                break
            time.sleep(0.1)
        assert sysctl("net.ipv4.conf.eth0.forwarding") == "1"
        assert sysctl("net.ipv6.conf.eth0.force_forwarding") == "1"
        assert sysctl("net.ipv4.ip_forward") == "0"
        assert sysctl("net.ipv6.conf.all.forwarding") == "0"
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.communicate(timeout=30)


def state_dir(topo):
    """The run records of the host namespace (rootful/state.h)."""
    ino = os.stat(f"/run/netns/{topo.host_ns}").st_ino
    return os.path.join(topo.run_dir, "rootful-state", f"net-{ino}")


def wait_running(topo, p):
    """Until the run's table exists (the tree is about to start)."""
    for _ in range(200):
        if "table inet childflow-" in topo.run_host_root(["nft", "list", "tables"]).out:
            return
        assert p.poll() is None, p.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never loaded its table")


def childflow_pid(topo, p):
    """The prologue execs env, which execs childflow: the same pid."""
    return p.pid


def test_sigkill_of_childflow_leaves_nothing(topo, childflow):
    before = host_state(topo)
    p = spawn_rootful(topo, childflow, "--", "sleep", "60")
    try:
        wait_running(topo, p)
        assert host_state(topo) != before  # the run did change the host
        os.kill(childflow_pid(topo, p), signal.SIGKILL)
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=30)
    # The owned table dies with childflow's socket, the veth with the tree, the
    # switches with the reaper's restore: nothing else runs.
    assert wait_state(topo, before) == before
    assert not os.path.exists(state_dir(topo)), os.listdir(state_dir(topo))


def reaper_pid(topo):
    for name in os.listdir(state_dir(topo)):
        if name.endswith(".run"):
            with open(os.path.join(state_dir(topo), name)) as f:
                for line in f:
                    if line.startswith("reaper "):
                        return int(line.split()[1])
    raise AssertionError("no run record")


def test_cleanup_repairs_what_a_run_killed_with_its_reaper_left(topo, childflow):
    before = host_state(topo)
    p = spawn_rootful(topo, childflow, "--", "sleep", "60")
    try:
        wait_running(topo, p)
        os.kill(reaper_pid(topo), signal.SIGKILL)
        os.kill(childflow_pid(topo, p), signal.SIGKILL)
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=30)
    time.sleep(0.5)
    left = host_state(topo)
    assert "net/ipv4/conf/eth0/forwarding:1" in left, left  # the switch stayed on
    doctor = topo.run_root(childflow.argv("--doctor", "--root", "--doctor-format", "json"),
                           env=childflow.env())
    check = [c for c in json.loads(doctor.out)["checks"] if c["key"] == "leftovers"]
    assert check and check[0]["status"] == "warn", doctor.out
    assert "1 rootful run died" in check[0]["detail"], check
    res = topo.run_root(childflow.argv("--cleanup"), env=childflow.env())
    assert res.rc == 0, str(res)
    assert "restored net.ipv4.conf.eth0.forwarding = 0" in res.out, str(res)
    assert "1 dead run undone" in res.out, str(res)
    assert wait_state(topo, before) == before
    again = topo.run_root(childflow.argv("--cleanup"), env=childflow.env())
    assert again.rc == 0 and "0 dead runs undone" in again.out, str(again)
    doctor = topo.run_root(childflow.argv("--doctor", "--root", "--doctor-format", "json"),
                           env=childflow.env())
    check = [c for c in json.loads(doctor.out)["checks"] if c["key"] == "leftovers"]
    assert check[0]["status"] == "ok", doctor.out


def test_cleanup_removes_a_dead_runs_plain_table_and_nothing_else(topo, childflow):
    # A kernel without owned tables (before 5.12) leaves a plain table when
    # childflow and its reaper die together; --cleanup removes it by the
    # record's run id, and no table that is not a dead run's.
    before = host_state(topo)
    for name in ("childflow-0badc0de", "childflow-1badc0de"):
        res = topo.run_host_root(["sh", "-c", f"echo 'table inet {name} {{ }}' | nft -f -"])
        assert res.rc == 0, str(res)
    try:
        os.makedirs(state_dir(topo), mode=0o700, exist_ok=True)
        with open(os.path.join(state_dir(topo), "0badc0de.run"), "w") as f:
            f.write("pid 999999 1\nreaper 999998 1\nlink cf-0badc0de\n")
        res = topo.run_root(childflow.argv("--cleanup"), env=childflow.env())
        assert res.rc == 0, str(res)
        assert "removed the nft table inet childflow-0badc0de" in res.out, str(res)
        tables = topo.run_host_root(["nft", "list", "tables"], check=True).out
        assert "childflow-0badc0de" not in tables, tables
        assert "childflow-1badc0de" in tables, tables  # no record of a dead run names it
    finally:
        topo.run_host_root(["nft", "delete", "table", "inet", "childflow-1badc0de"])
        topo.run_host_root(["nft", "delete", "table", "inet", "childflow-0badc0de"])
    assert host_state(topo) == before


def test_two_runs_at_once_do_not_disturb_each_other(topo, childflow):
    before = host_state(topo)
    long_run = spawn_rootful(topo, childflow, "--", "sh", "-c",
                             f"sleep 3; {CURL} http://{T.ORIGIN_V4}/; sleep 2; "
                             f"{CURL} http://{T.ORIGIN_B_V4}/")
    try:
        wait_running(topo, long_run)
        short = rootful(topo, childflow, "--deny-cidr", f"{T.ORIGIN_V4}/32", "--", "sh", "-c",
                        curl_both(T.ORIGIN_V4, T.ORIGIN_B_V4))
        assert short.rc == 0 and short.out.split() == ["rc=7", "200"], str(short)
        # The first run's switches and table outlive the second run.
        out, err = long_run.communicate(timeout=60)
    finally:
        if long_run.poll() is None:
            os.killpg(long_run.pid, signal.SIGKILL)
            long_run.communicate(timeout=30)
    assert long_run.returncode == 0, err
    assert out.split() == [b"200", b"200"], (out, err)
    assert wait_state(topo, before) == before
    # The second run's end left the first's record and lock; the first's end removed them.
    assert not os.path.exists(state_dir(topo)), os.listdir(state_dir(topo))


# --- errors ---------------------------------------------------------------------------------


def test_root_as_a_user_is_a_usage_error(childflow):
    res = childflow.run("--root", "--", "true")
    assert res.rc == 125, str(res)
    assert "--root needs root" in res.err, str(res)


def test_a_profile_selects_the_rootful_backend(topo, childflow, userdir):
    path = os.path.join(userdir, "rootful.toml")
    with open(path, "w") as f:
        f.write('backend = "rootful"\n')
    res = topo.run_root(childflow.argv("--profile", path, "--summary", "--summary-format", "json",
                                       "--", "ip", "-o", "link", "show", "eth0"),
                        env=childflow.env())
    assert res.rc == 0, str(res)
    assert "eth0@" in res.out, str(res)
    assert json.loads(res.err[res.err.index("{"):])["backend"] == "rootful", str(res)


def test_dump_profile_with_the_rootful_backend(topo, childflow):
    res = rootful(topo, childflow, "--dump-profile")
    assert res.rc == 0, str(res)
    assert 'backend = "rootful"' in res.out, str(res)


# --- records --------------------------------------------------------------------------------


def flow_events(path):
    """The events of a flow log, each line checked against schema v1 first
    (the harness checks only the logs its unprivileged user wrote)."""
    problems = flowlog_v1.validate_file(path)
    assert problems == [], problems
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_flow_log_records_the_kernels_flows_with_their_processes(topo, childflow, userdir):
    log = os.path.join(userdir, "flows.jsonl")
    os.chmod(userdir, 0o777)
    script = (f"{CURL} -4 http://{T.ORIGIN_NAME}/; "
              f"curl -sS -m5 http://{T.ORIGIN_V4}:{T.CLOSED_PORT}/ 2>/dev/null; echo rc=$?; "
              f"curl -sS -m5 http://{T.ORIGIN_B_V4}/ >/dev/null 2>&1; echo rc=$?; "
              f"ping -c2 -i0.2 -W2 {T.FAR_V4} >/dev/null; echo ping=$?")
    res = rootful(topo, childflow, "--flow-log", log, "--deny-cidr", f"{T.ORIGIN_B_V4}/32",
                  "--", "sh", "-c", script)
    assert res.rc == 0, str(res)
    assert res.out.split() == ["200", "rc=7", "rc=7", "ping=0"], str(res)
    ev = flow_events(log)
    ok = [e for e in ev if e["event"] == "connect_result" and e["remote_ip"] == T.ORIGIN_V4
          and e["remote_port"] == 80]
    assert [e["status"] for e in ok] == ["ok"], ev
    assert ok[0]["path"] == "kernel", ok  # forwarded by the host, not relayed
    refused = [e for e in ev if e["event"] == "connect_result"
               and e["remote_port"] == T.CLOSED_PORT]
    assert [e["status"] for e in refused] == ["error"], ev
    denied = [e for e in ev if e["event"] == "policy_violation"]
    assert [(e["remote_ip"], e["reason_code"]) for e in denied] == \
        [(T.ORIGIN_B_V4, "deny_cidr")], ev
    ends = [e for e in ev if e["event"] == "flow_end" and e["remote_ip"] == T.ORIGIN_V4
            and e["remote_port"] == 80]
    assert len(ends) == 1 and ends[0]["bytes_received"] > len(T.ORIGIN_BODY), ev
    pings = [e for e in ev if e["event"] == "datagram_flow_end" and e["protocol"] == "icmpv4"]
    assert len(pings) == 1 and pings[0]["remote_ip"] == T.FAR_V4, ev
    # The resolver's answer is the engine's, as in the rootless backend.
    assert any(e["event"] == "dns_answer" and e["qname"] == T.ORIGIN_NAME for e in ev), ev


def test_a_flow_is_attributed_to_the_process_that_holds_its_socket(topo, childflow, userdir):
    # The engine reads the kernel's events after the fact: a process that
    # still holds its socket is found (one gone by then leaves pid null).
    log = os.path.join(userdir, "flows.jsonl")
    os.chmod(userdir, 0o777)
    client = ("import socket, time\n"
              f"s = socket.create_connection(('{T.ORIGIN_V4}', 80))\n"
              "time.sleep(1)\n"
              "s.close()\n")
    res = rootful(topo, childflow, "--flow-log", log, "--", T.PYTHON, "-c", client)
    assert res.rc == 0, str(res)
    ev = [e for e in flow_events(log) if e["event"] in ("connect_attempt", "connect_result")]
    assert [e["event"] for e in ev] == ["connect_attempt", "connect_result"], ev
    for e in ev:
        assert e["comm"].startswith("python3") and e["pid"] > 0, e
        assert e["exe"].startswith("/usr/bin/python3"), e


def test_fail_on_leak_and_the_summary_count_the_kernels_denials(topo, childflow):
    res = rootful(topo, childflow, "--fail-on-leak", "--summary", "--summary-format", "json",
                  "--deny-cidr", f"{T.ORIGIN_B_V4}/32", "--", "sh", "-c",
                  f"{CURL} http://{T.ORIGIN_V4}/; {CURL} http://{T.ORIGIN_B_V4}/; true")
    assert res.rc == 122, str(res)
    summary = json.loads(res.err[res.err.index("{"):])
    assert summary["backend"] == "rootful", summary
    text = json.dumps(summary)
    assert "deny_cidr" in text, summary


def test_capture_of_the_child_view_holds_each_of_the_trees_packets_once(topo, childflow, userdir):
    cap = os.path.join(userdir, "tree.pcapng")
    res = rootful(topo, childflow, "-c", cap, "--", "sh", "-c",
                  f"{CURL} -4 http://{T.ORIGIN_NAME}/; ping -c1 -W2 {T.FAR_V4} >/dev/null; "
                  "echo ping=$?")
    assert res.rc == 0 and res.out.split() == ["200", "ping=0"], str(res)
    fields = subprocess.run(["tshark", "-r", cap, "-T", "fields", "-e", "ip.dst", "-e",
                             "tcp.flags.str", "-e", "icmp.type", "-e", "dns.qry.name",
                             "-e", "dns.flags.response"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    rows = [ln.split("\t") for ln in fields]
    syns = [r for r in rows if r[0] == T.ORIGIN_V4 and r[1].strip("\u00b7") == "S"]
    assert len(syns) == 1, fields
    assert any(r[0] == T.FAR_V4 and r[2] == "8" for r in rows), fields   # echo request
    assert any(r[2] == "0" for r in rows), fields                          # echo reply
    assert any(r[3] == T.ORIGIN_NAME and r[4] in ("1", "True") for r in rows), fields


# --- --iface --------------------------------------------------------------------------------

ALT_HOST_V4, ALT_WORLD_V4 = "203.0.113.129", "203.0.113.130"
ALT_HOST_V6, ALT_WORLD_V6 = "2001:db8:99::1", "2001:db8:99::2"


@pytest.fixture
def second_path(topo):
    """A second link from the host namespace to the world (cfti0), whose
    next hop the main table knows only through one specific route: the
    host's own traffic keeps its default path."""
    sh = topo.run_host_root
    T.sh(["ip", "link", "add", "cfti0", "netns", topo.host_ns, "type", "veth", "peer",
          "name", "cfti1", "netns", topo.world_ns], check=True)
    try:
        for ns, dev, a4, a6 in ((topo.host_ns, "cfti0", ALT_HOST_V4, ALT_HOST_V6),
                                (topo.world_ns, "cfti1", ALT_WORLD_V4, ALT_WORLD_V6)):
            T.sh(["ip", "-n", ns, "addr", "add", f"{a4}/30", "dev", dev], check=True)
            T.sh(["ip", "-n", ns, "addr", "add", f"{a6}/64", "dev", dev, "nodad"], check=True)
            T.sh(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        sh(["ip", "route", "add", "203.0.113.250/32", "via", ALT_WORLD_V4], check=True)
        sh(["ip", "-6", "route", "add", "2001:db8:99:1::/64", "via", ALT_WORLD_V6], check=True)
        yield "cfti0"
    finally:
        T.sh(["ip", "-n", topo.host_ns, "link", "del", "cfti0"], check=False)


@pytest.mark.parametrize("family", ["-4", "-6"])
def test_iface_sends_the_trees_direct_traffic_out_of_that_interface(topo, childflow,
                                                                   second_path, family):
    before = host_state(topo)
    mark = topo.log_mark("nginx")
    res = rootful(topo, childflow, "--iface", second_path, "--", "sh", "-c",
                  f"{CURL} {family} http://{T.ORIGIN_NAME}/")
    assert res.rc == 0 and res.out.strip() == "200", str(res)
    log = topo.log_since("nginx", mark)
    assert (ALT_HOST_V4 if family == "-4" else ALT_HOST_V6) in log, log
    # The control: without --iface the same request leaves by the default path.
    mark = topo.log_mark("nginx")
    res = rootful(topo, childflow, "--", "sh", "-c", f"{CURL} {family} http://{T.ORIGIN_NAME}/")
    assert res.rc == 0, str(res)
    assert (T.HOST_V4 if family == "-4" else T.HOST_V6) in topo.log_since("nginx", mark)
    assert host_state(topo) == before


def test_iface_rules_and_routes_are_undone_after_sigkill(topo, childflow, second_path):
    before = host_state(topo)
    p = spawn_rootful(topo, childflow, "--iface", second_path, "--", "sleep", "60")
    try:
        wait_running(topo, p)
        during = topo.run_host_root(["ip", "rule"], check=True).out
        assert "lookup" in during and "iif cf-" in during, during
        os.kill(childflow_pid(topo, p), signal.SIGKILL)
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=30)
    assert wait_state(topo, before) == before


@pytest.mark.parametrize("iface,why", [("cf-nosuch0", "no such interface"),
                                       ("lo:down", "down")])
def test_iface_unknown_or_down_is_refused_before_anything_changes(topo, childflow, iface, why):
    if iface == "lo:down":
        T.sh(["ip", "-n", topo.host_ns, "link", "add", "cftdown0", "type", "veth", "peer",
              "name", "cftdown1"], check=True)
        iface = "cftdown0"
    try:
        before = host_state(topo)
        res = rootful(topo, childflow, "--iface", iface, "--", "true")
        assert res.rc == 125, str(res)
        assert f"--iface {iface}: " in res.err and why in res.err, str(res)
        assert host_state(topo) == before
    finally:
        T.sh(["ip", "-n", topo.host_ns, "link", "del", "cftdown0"], check=False)


def test_iface_without_root_backend_is_a_usage_error(childflow):
    res = childflow.run("--iface", "eth0", "--", "true")
    assert res.rc == 125, str(res)
    assert "--iface (iface) needs the rootful backend" in res.err, str(res)


def tshark_rows(path, *fields):
    out = subprocess.run(["tshark", "-r", path, "-T", "fields",
                          *[x for f in fields for x in ("-e", f)]],
                         capture_output=True, text=True, check=True).stdout
    return [ln.split("\t") for ln in out.splitlines()]


@pytest.mark.parametrize("view", ["egress", "wire-egress"])
def test_egress_capture_holds_what_left_the_host_after_its_masquerade(topo, childflow, userdir,
                                                                      view):
    cap = os.path.join(userdir, "egress.pcapng")
    res = rootful(topo, childflow, "-c", cap, "-C", view, "--deny-cidr", f"{T.ORIGIN_B_V4}/32",
                  "--", "sh", "-c",
                  f"{CURL} -4 http://{T.ORIGIN_NAME}/; {CURL} -6 http://{T.ORIGIN_NAME}/; "
                  f"{CURL} http://{T.ORIGIN_B_V4}/ >/dev/null 2>&1; "
                  f"ping -c1 -W2 {T.FAR_V4} >/dev/null; echo ping=$?")
    assert res.rc == 0 and res.out.split() == ["200", "200", "ping=0"], str(res)
    rows = tshark_rows(cap, "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.flags.str",
                       "icmp.type")
    srcs = {r[0] for r in rows} | {r[2] for r in rows}
    # As on the wire: the host's addresses, never the tree's, and the denied never left.
    assert not any(a.startswith(("198.18.", "fd63:")) for a in srcs | {r[1] for r in rows}), rows
    assert T.ORIGIN_B_V4 not in {r[1] for r in rows}, rows
    syn4 = [r for r in rows if r[0] == T.HOST_V4 and r[1] == T.ORIGIN_V4
            and r[4].replace("\u00b7", "") == "S"]
    synack4 = [r for r in rows if r[0] == T.ORIGIN_V4 and r[1] == T.HOST_V4
               and r[4].replace("\u00b7", "") == "AS"]
    syn6 = [r for r in rows if r[2] == T.HOST_V6 and r[3] == T.ORIGIN_V6
            and r[4].replace("\u00b7", "") == "S"]
    assert len(syn4) == 1 and len(synack4) == 1 and len(syn6) == 1, rows
    assert any(r[1] == T.FAR_V4 and r[5] == "8" for r in rows), rows
    assert any(r[0] == T.FAR_V4 and r[5] == "0" for r in rows), rows


def test_both_views_at_once(topo, childflow, userdir):
    base = os.path.join(userdir, "run.pcapng")
    res = rootful(topo, childflow, "-c", base, "-C", "both", "--", "sh", "-c",
                  f"{CURL} -4 http://{T.ORIGIN_V4}/")
    assert res.rc == 0, str(res)
    child = tshark_rows(os.path.join(userdir, "run.child.pcapng"), "ip.src")
    egress = tshark_rows(os.path.join(userdir, "run.egress.pcapng"), "ip.src")
    assert any(r[0].startswith("198.18.") for r in child), child
    assert any(r[0] == T.HOST_V4 for r in egress), egress


def test_the_summary_counts_tcp_connections_by_path(topo, childflow):
    # Kernel-forwarded on its own; through the engine's relay with a domain rule.
    for extra, want in (((), {"socket": 0, "relay": 0, "kernel": 1}),
                        (("--deny-domain", "tracker.test"), {"socket": 0, "relay": 1, "kernel": 0})):
        res = rootful(topo, childflow, "--summary", "--summary-format", "json", *extra, "--",
                      "sh", "-c", f"{CURL} http://{T.ORIGIN_V4}/")
        assert res.rc == 0 and res.out.strip() == "200", str(res)
        summary = json.loads(res.err[res.err.index("{"):])
        assert summary["connections"]["by_path"] == want, (extra, summary["connections"])
