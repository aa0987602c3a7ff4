"""Learn a profile from a flow log (issue 20): `--report LOG --report-format
profile` prints a default-deny profile that replays the logged run.  The
run is repeated under the learned profile with --fail-on-leak: it must give
the same output and exit 0, while a destination the first run never used
is denied."""

import os

import featurelib as F
import topology as T

O4, O6 = T.ORIGIN_V4, T.ORIGIN_V6
B4, B6 = T.ORIGIN_B_V4, T.ORIGIN_B_V6

# A name resolved then connected to, an address literal connected to, a
# refused connect (the origin's closed port), a UDP datagram and a ping.
COMMANDS = [
    f"curl -sS -4 --max-time 30 http://{T.ORIGIN_NAME}/",
    f"curl -sS --max-time 30 http://[{B6}]/",
    F.probe_cmd("tcp", B4, T.CLOSED_PORT),
    F.probe_cmd("udp", B4, 7),
    F.ping_cmd(B4) + " >/dev/null",
]


def learn(childflow, topo, userdir, *logs):
    args = []
    for log in logs:
        args += ["--report", log]
    res = childflow.run(*args, "--report-format", "profile")
    assert res.rc == 0 and res.err == "", str(res)
    path = os.path.join(userdir, f"learned-{len(logs)}.toml")
    F.write_user_file(topo, path, res.out)
    return res.out, path


def entries(text, key):
    """The strings of a list key of the learned TOML (one per line)."""
    lines = text.splitlines()
    start = lines.index(f"{key} = [")
    out = []
    for ln in lines[start + 1:]:
        if ln == "]":
            return out
        if not ln.lstrip().startswith("#"):
            out.append(ln.strip().rstrip(",").strip('"'))
    raise AssertionError(text)


def test_learned_profile_replays_the_run_and_denies_anything_new(topo, childflow, userdir):
    parts, res, events = F.steps_logged(childflow, userdir, [], COMMANDS)
    assert [p[1] for p in parts] == [0] * 5, str(res)
    assert F.violations(events) == []
    log = [e for e in os.listdir(userdir) if e.startswith("flows-")][0]
    text, profile = learn(childflow, topo, userdir, os.path.join(userdir, log))

    assert 'default_policy = "deny"' in text.splitlines(), text
    assert entries(text, "allow_domains_exact") == [T.ORIGIN_NAME], text
    # the literals (a refused connect counts too), never a parent domain
    assert entries(text, "allow_cidrs") == [f"{B6}/128", f"{B4}/32"], text
    assert "first seen " in text and "curl (pid " in text, text

    again, res2 = F.steps(childflow, ["--profile", profile, "--fail-on-leak"], COMMANDS)
    assert res2.rc == 0, str(res2)
    assert again == parts, (again, parts)
    assert "denied" not in res2.err, str(res2)

    # what the first run never reached stays out
    new, res3 = F.steps(childflow, ["--profile", profile], [
        F.probe_cmd("tcp", O6, T.HTTP_PORT),
        F.probe_cmd("tcp", B4, T.HTTP_PORT),
        " ".join(F.dig("+short", f"@{F.RESOLVER_V4}", T.V6ONLY_NAME, "AAAA"))])
    assert [p[0].strip() for p in new] == [F.DENIED_ERRNO_V6, "connected", ""], str(res3)
    assert f"childflow: denied tcp [{O6}]:{T.HTTP_PORT}" in res3.err, str(res3)
    assert f"childflow: denied dns {T.V6ONLY_NAME}" in res3.err, str(res3)


def test_denials_become_comments_and_several_logs_merge(topo, childflow, userdir):
    _, _, ev1 = F.steps_logged(childflow, userdir, ["--deny-cidr", f"{B4}/32"], [
        f"curl -sS -4 --max-time 30 http://{T.ORIGIN_NAME}/",
        F.probe_cmd("tcp", B4, T.HTTP_PORT)])
    _, _, ev2 = F.steps_logged(childflow, userdir, [], [
        f"curl -sS --max-time 30 http://[{B6}]/"])
    logs = sorted((os.path.join(userdir, e) for e in os.listdir(userdir)
                   if e.startswith("flows-")), key=os.path.getmtime)
    text, profile = learn(childflow, topo, userdir, *logs)
    assert entries(text, "allow_domains_exact") == [T.ORIGIN_NAME], text
    assert entries(text, "allow_cidrs") == [f"{B6}/128"], text
    denied = [ln for ln in text.splitlines() if ln.startswith(f"# tcp {B4}:{T.HTTP_PORT}: ")]
    assert len(denied) == 1 and f"--deny-cidr {B4}/32" in denied[0], text
    assert all(f"#   {log}" in text.splitlines() for log in logs), text
    dump = childflow.run("--profile", profile, "--dump-profile")
    assert dump.rc == 0, str(dump)


def test_several_logs_without_profile_format_are_refused(childflow, userdir):
    path = os.path.join(userdir, "empty.jsonl")
    open(path, "w").close()
    res = childflow.run("--report", path, "--report", path)
    assert res.rc == 125 and res.out == "", str(res)
    assert "--report-format profile" in res.err, str(res)
