"""childflow --doctor: every check tries the real operation, a broken host
is reported as `blocked` with the check that fails and its remedy, and the
same host recovers to `ready` once it is fixed.  The JSON report is validated
against the JSON Schema in docs/doctor-schema.md; the text report is checked
line by line.  The failures are made the way a real host has them, but only
for this test's processes: /dev/net/tun at mode 0600 (a private bind mount
from the harness), user.max_user_namespaces=0 inside a user namespace made
for the run (the sysctl is per user namespace), the user's /etc/subuid line
removed (restored afterwards), a PATH without newuidmap/newgidmap, and
net.ipv4.ping_group_range closed in the test's own host namespace.

None of this needs the world network; the doctor leaves no process behind.
"""

import contextlib
import json
import os
import re

import pytest

import original_shapes
import topology

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_DOC = os.path.join(REPO, "docs", "doctor-schema.md")

ROOTLESS_KEYS = ["userns", "idmap", "uidmap_helpers", "tun", "tproxy", "nftables", "ping",
                 "capture", "sandbox", "tcp_switch"]
ROOTFUL_KEYS = ["root", "netns", "forwarding", "nftables", "tproxy", "policy_routing", "veth",
                "af_packet", "leftovers"]
# As the original: a warning is not a failure (docs/compatibility.md).
VERDICT_EXIT = {"ready": 0, "ready with warnings": 0, "blocked": 1}
TEXT_LINE = re.compile(r"^\[(ok|warn|FAIL|skip)\]\s+([a-z][a-z0-9_]*)\s+(.+)$")


# --- helpers -------------------------------------------------------------------


def documented_schema():
    """The JSON Schema block of docs/doctor-schema.md (the one with "$schema")."""
    with open(SCHEMA_DOC) as f:
        text = f.read()
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        if '"$schema"' in block:
            return json.loads(block)
    raise AssertionError(f"no JSON Schema block in {SCHEMA_DOC}")


def validate(report):
    import jsonschema

    jsonschema.validate(report, documented_schema())
    original_shapes.validate_doctor(report)  # and every field of the original's report
    # What the schema cannot say: the exit status goes with the verdict,
    # and a hint is given exactly for the checks that need one.
    assert report["exit_status"] == VERDICT_EXIT[report["status"]], report
    for c in report["checks"]:
        if c["status"] in ("ok", "skip"):
            assert c["hint"] is None, c
    statuses = {c["status"] for c in report["checks"]}
    expected = ("blocked" if "fail" in statuses
                else "ready with warnings" if "warn" in statuses else "ready")
    assert report["status"] == expected, report


def parse_json(res):
    try:
        report = json.loads(res.out)
    except json.JSONDecodeError as e:
        raise AssertionError(f"not JSON ({e}):\n{res}")
    validate(report)
    assert res.rc == report["exit_status"], str(res)
    return report


def by_key(report):
    return {c["key"]: c for c in report["checks"]}


def doctor_json(childflow, *args, **kw):
    res = childflow.run("--doctor", "--doctor-format", "json", *args, **kw)
    return res, parse_json(res)


def parse_text(res):
    """(header, [(tag, key, rest)], verdict) of a text report."""
    lines = res.out.rstrip("\n").split("\n")
    assert lines[0].startswith("childflow doctor: "), str(res)
    m = re.fullmatch(r"status: (ready|ready with warnings|blocked)", lines[-1])
    assert m, f"last line is not the verdict:\n{res}"
    checks = []
    for line in lines[1:-1]:
        lm = TEXT_LINE.match(line)
        assert lm, f"not a check line: {line!r}\n{res}"
        checks.append(lm.groups())
    return lines[0], checks, m.group(1)


def run_as_user_in_userns(childflow, script, *args):
    """Run `sh -c SCRIPT sh CHILDFLOW ARGS...` as the unprivileged user inside
    `unshare -Ur` (a user namespace of its own, where it is root)."""
    argv = ["unshare", "-Ur", "sh", "-c", script, "sh", childflow.argv()[0], *args]
    return childflow.topo.run_user(argv, env=childflow.env())


LIMIT_ZERO = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"'
NO_LIMIT = 'exec "$@"'


@contextlib.contextmanager
def without_subid_lines(user):
    """Remove user's lines from /etc/subuid and /etc/subgid; put them back
    after.  Other test sessions edit these files too, so both edits are
    done under the harness's lock and touch only this user's lines."""
    saved = {}
    with topology.global_lock():
        for path in ("/etc/subuid", "/etc/subgid"):
            with open(path) as f:
                lines = f.readlines()
            mine = [ln for ln in lines if ln.split(":", 1)[0] == user]
            assert mine, f"precondition: {user} has a line in {path}"
            saved[path] = mine
            _rewrite(path, [ln for ln in lines if ln not in mine])
    try:
        yield
    finally:
        with topology.global_lock():
            for path, mine in saved.items():
                with open(path) as f:
                    lines = f.readlines()
                if lines and not lines[-1].endswith("\n"):
                    lines[-1] += "\n"
                _rewrite(path, lines + [ln for ln in mine if ln not in lines])


def _rewrite(path, lines):
    st = os.stat(path)
    tmp = path + ".cft-doctor"
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, path)


# --- a working host -----------------------------------------------------------------


def test_rootless_doctor_on_a_working_host_is_ready_and_exits_0(childflow, topo):
    res, report = doctor_json(childflow)
    assert res.rc == 0, str(res)
    assert report["status"] == "ready", json.dumps(report, indent=1)
    assert report["backend"] == "rootless-internal"
    assert report["uid"] == report["euid"] == topo.uid
    assert [c["key"] for c in report["checks"]] == ROOTLESS_KEYS
    assert all(c["status"] == "ok" for c in report["checks"]), json.dumps(report, indent=1)
    checks = by_key(report)
    assert f"uid {topo.uid}" in checks["idmap"]["detail"]
    assert "tun0" in checks["tun"]["detail"]
    # everything it created lived in processes that are gone now
    assert topo.user_processes() == []


def _kernel_at_least(major, minor):
    got = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    return got >= (major, minor)


@pytest.mark.skipif(not _kernel_at_least(6, 6), reason="synchronous wake-ups came with Linux 6.6")
def test_switched_sockets_get_synchronous_wake_ups_where_the_kernel_has_them(childflow, topo):
    # SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP halves a switched connect() in a VM
    # (97 -> 41 us here): the doctor and the engine's debug log say it is on.
    res, report = doctor_json(childflow)
    assert "with synchronous wake-ups" in by_key(report)["tcp_switch"]["detail"], str(res)
    run = childflow.run("--tcp-path", "auto", "--", "true", env={"CHILDFLOW_DEBUG": "1"})
    assert run.rc == 0 and "seccomp listener: synchronous wake-ups" in run.err, str(run)


def test_text_report_has_one_line_per_check_and_the_verdict_last(childflow, topo):
    res = childflow.run("--doctor")
    assert res.rc == 0, str(res)
    header, checks, verdict = parse_text(res)
    assert "rootless-internal" in header and f"uid {topo.uid}" in header, header
    assert [k for _, k, _ in checks] == ROOTLESS_KEYS
    assert all(tag == "ok" for tag, _, _ in checks), res.out
    assert verdict == "ready"
    assert "hint:" not in res.out, "a hint on a passing check"


def test_text_and_json_reports_agree(childflow):
    _, report = doctor_json(childflow, tun_mode="0600")
    res = childflow.run("--doctor", tun_mode="0600")
    _, checks, verdict = parse_text(res)
    assert verdict == report["status"]
    tag = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}
    assert [(t, k) for t, k, _ in checks] == [(tag[c["status"]], c["key"])
                                              for c in report["checks"]]
    for (_, _, rest), c in zip(checks, report["checks"]):
        assert rest.startswith(f"{c['label']}: {c['detail']}"), (rest, c)
        if c["hint"]:
            assert rest.endswith(f" \u2014 hint: {c['hint']}"), (rest, c)


# --- /dev/net/tun -------------------------------------------------------------------


def test_tun_mode_0600_blocks_with_the_chmod_and_udev_hint_then_recovers(childflow):
    res, report = doctor_json(childflow, tun_mode="0600")
    assert res.rc == 1 and report["status"] == "blocked", str(res)
    tun = by_key(report)["tun"]
    assert tun["status"] == "fail", tun
    assert "Permission denied" in tun["detail"] and "0600" in tun["detail"], tun
    assert "chmod 0666 /dev/net/tun" in tun["hint"] and "udev" in tun["hint"], tun
    # only the check that depends on the device is skipped; the rest still ran
    checks = by_key(report)
    assert checks["sandbox"]["status"] == "skip" and '"tun"' in checks["sandbox"]["detail"]
    for key in ("userns", "idmap", "tproxy", "nftables"):
        assert checks[key]["status"] == "ok", checks[key]

    res, report = doctor_json(childflow, tun_mode="0666")
    assert res.rc == 0, str(res)
    assert by_key(report)["tun"]["status"] == "ok"


def test_tun_mode_0600_text_line_names_the_device_and_the_remedy(childflow):
    res = childflow.run("--doctor", tun_mode="0600")
    assert res.rc == 1, str(res)
    _, checks, verdict = parse_text(res)
    assert verdict == "blocked"
    line = next(f"[{t}] {k} {rest}" for t, k, rest in checks if k == "tun")
    assert line.startswith("[FAIL] tun"), line
    assert "/dev/net/tun" in line and "Permission denied" in line, line
    assert "\u2014 hint: as root: chmod 0666 /dev/net/tun" in line, line


def test_a_run_without_tun_access_stops_with_the_doctors_message(childflow, userdir):
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--", "touch", marker, tun_mode="0600")
    assert res.rc == 124, str(res)
    assert 'check "tun"' in res.err and "chmod 0666 /dev/net/tun" in res.err, str(res)
    assert len(res.err.strip().splitlines()) == 1, str(res)
    assert not os.path.exists(marker), "the command ran"


# --- user namespaces ------------------------------------------------------------------


def test_max_user_namespaces_zero_blocks_userns_naming_the_sysctl_then_recovers(childflow):
    res = run_as_user_in_userns(childflow, LIMIT_ZERO, "--doctor", "--doctor-format", "json")
    report = parse_json(res)
    assert res.rc == 1 and report["status"] == "blocked", str(res)
    checks = by_key(report)
    userns = checks["userns"]
    assert userns["status"] == "fail", userns
    assert "user.max_user_namespaces is 0" in userns["detail"], userns
    assert "sysctl -w user.max_user_namespaces=" in userns["hint"], userns
    for key in ("idmap", "tproxy", "nftables", "capture", "sandbox"):
        assert checks[key]["status"] == "skip", checks[key]
        assert '"userns"' in checks[key]["detail"], checks[key]

    # the same user namespace without the limit: namespaces work again
    res = run_as_user_in_userns(childflow, NO_LIMIT, "--doctor", "--doctor-format", "json")
    report = parse_json(res)
    checks = by_key(report)
    assert checks["userns"]["status"] == "ok", str(res)
    assert checks["idmap"]["status"] == "ok", str(res)
    assert checks["sandbox"]["status"] == "ok", str(res)


def test_max_user_namespaces_zero_text_report(childflow):
    res = run_as_user_in_userns(childflow, LIMIT_ZERO, "--doctor")
    assert res.rc == 1, str(res)
    _, checks, verdict = parse_text(res)
    assert verdict == "blocked"
    assert checks[0][:2] == ("FAIL", "userns"), res.out
    assert "user.max_user_namespaces is 0" in checks[0][2], res.out


def test_a_run_with_no_user_namespaces_left_stops_with_the_doctors_message(childflow):
    res = run_as_user_in_userns(childflow, LIMIT_ZERO, "--", "true")
    assert res.rc == 124, str(res)
    assert 'check "userns"' in res.err and "user.max_user_namespaces" in res.err, str(res)


# --- id maps: /etc/subuid and the uidmap helpers -----------------------------------------


def test_missing_subuid_range_is_reported_but_does_not_block(childflow, topo, userdir):
    # childflow maps only the user's own uid and gid, which needs no range:
    # the doctor says the range is missing, and a real run proves it harmless.
    with without_subid_lines(topo.user):
        res, report = doctor_json(childflow)
        helpers = by_key(report)["uidmap_helpers"]
        assert helpers["status"] == "ok", helpers
        assert "no /etc/subuid range" in helpers["detail"], helpers
        assert report["status"] == "ready", json.dumps(report, indent=1)
        marker = os.path.join(userdir, "ran")
        run = childflow.run("--", "touch", marker)
        assert run.rc == 0, str(run)
        assert os.path.exists(marker)
    # recovered: the range is back and shown
    res, report = doctor_json(childflow)
    helpers = by_key(report)["uidmap_helpers"]
    assert helpers["status"] == "ok" and "/etc/subuid: " in helpers["detail"], helpers


def test_missing_uidmap_helpers_warn_with_install_hint_then_recover(childflow, userdir):
    # PATH without newuidmap/newgidmap: direct map writes still work here,
    # so the fallback's absence is a warning, not a failure.
    res, report = doctor_json(childflow, env={"PATH": userdir})
    assert res.rc == 0 and report["status"] == "ready with warnings", str(res)
    checks = by_key(report)
    helpers = checks["uidmap_helpers"]
    assert helpers["status"] == "warn", helpers
    assert "not found in PATH" in helpers["detail"] and userdir in helpers["detail"], helpers
    assert "apt install uidmap" in helpers["hint"], helpers
    assert checks["idmap"]["status"] == "ok", checks["idmap"]
    assert [c["key"] for c in report["checks"] if c["status"] != "ok"] == ["uidmap_helpers"]

    res, report = doctor_json(childflow)
    assert res.rc == 0, str(res)
    helpers = by_key(report)["uidmap_helpers"]
    assert helpers["status"] == "ok" and "newuidmap" in helpers["detail"], helpers


# --- unprivileged ICMP ---------------------------------------------------------------


def test_closed_ping_group_range_warns_then_recovers(childflow, topo):
    key = "net.ipv4.ping_group_range"
    old = topo.run_host_root(["sysctl", "-n", key], check=True).out.split()
    topo.run_host_root(["sysctl", "-qw", f"{key}=1 0"], check=True)
    try:
        res, report = doctor_json(childflow)
    finally:
        topo.run_host_root(["sysctl", "-qw", f"{key}={' '.join(old)}"], check=True)
    assert res.rc == 0 and report["status"] == "ready with warnings", str(res)
    ping = by_key(report)["ping"]
    assert ping["status"] == "warn", ping
    assert '"1 0"' in ping["detail"], ping
    assert "ping_group_range" in ping["hint"], ping

    res, report = doctor_json(childflow)
    assert by_key(report)["ping"]["status"] == "ok", str(res)


# --- rootful -----------------------------------------------------------------------------


def test_rootful_doctor_as_root_is_ready(topo, childflow):
    res = topo.run_host_root(childflow.argv("--root", "--doctor", "--doctor-format", "json"))
    report = parse_json(res)
    assert res.rc == 0 and report["status"] == "ready", json.dumps(report, indent=1)
    assert report["backend"] == "rootful" and report["euid"] == 0
    assert [c["key"] for c in report["checks"]] == ROOTFUL_KEYS


def test_rootful_doctor_as_a_user_is_blocked_by_the_root_check(childflow, topo):
    res, report = doctor_json(childflow, "--root")
    assert res.rc == 1 and report["status"] == "blocked", str(res)
    checks = report["checks"]
    assert checks[0]["key"] == "root" and checks[0]["status"] == "fail", checks[0]
    assert f"uid {topo.uid}" in checks[0]["detail"] and "sudo" in checks[0]["hint"]
    assert all(c["status"] == "skip" for c in checks[1:]), json.dumps(checks, indent=1)

    res = childflow.run("--root", "--doctor")
    _, lines, verdict = parse_text(res)
    assert verdict == "blocked" and lines[0][:2] == ("FAIL", "root"), res.out
