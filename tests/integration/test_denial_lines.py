"""One line on stderr per denied destination (issue 20): the first denial of
a destination in a run prints `childflow: denied PROTO DEST: REASON`, with
the same reason text as the flow log's policy_violation; later denials of
the same destination print nothing; --quiet (profile `quiet = true`)
silences them all."""

import os

import pytest

import featurelib as F
import topology as T

O4, O6 = T.ORIGIN_V4, T.ORIGIN_V6
B4 = T.ORIGIN_B_V4


def denial_lines(res):
    return [ln for ln in res.err.splitlines() if ln.startswith("childflow: denied ")]


def dig_cmd(name, qtype="A"):
    return " ".join(F.dig(f"@{F.RESOLVER_V4}", name, qtype))


# Two connects to the same denied destination, one to a second denied port,
# two queries of a denied name (A and AAAA), and an allowed neighbour.
COMMANDS = [
    F.probe_cmd("tcp", O4, T.HTTP_PORT),
    F.probe_cmd("tcp", O4, T.HTTP_PORT),
    F.probe_cmd("tcp", O4, T.CLOSED_PORT),
    F.probe_cmd("tcp", B4, T.HTTP_PORT),
    dig_cmd(T.V6ONLY_NAME, "A"),
    dig_cmd(T.V6ONLY_NAME, "AAAA"),
]
OPTIONS = ["--deny-cidr", f"{O4}/32", "--deny-domain", T.V6ONLY_NAME]


@pytest.mark.core
def test_each_denied_destination_is_said_once_with_the_flow_logs_reason(childflow, userdir):
    parts, res, events = F.steps_logged(childflow, userdir, OPTIONS, COMMANDS)
    assert [p[0].strip() for p in parts[:4]] == [F.DENIED_ERRNO_V4] * 3 + ["connected"], \
        str(res)
    reasons = {}
    for v in F.violations(events):
        key = (v["protocol"], v["remote"] if v["protocol"] != "dns" else None)
        reasons.setdefault(key, v["reason"])
    lines = denial_lines(res)
    cidr_reason = reasons[("tcp", f"{O4}:{T.HTTP_PORT}")]
    dns_reason = reasons[("dns", None)]
    assert lines == [
        f"childflow: denied tcp {O4}:{T.HTTP_PORT}: {cidr_reason}",
        f"childflow: denied tcp {O4}:{T.CLOSED_PORT}: {reasons[('tcp', f'{O4}:{T.CLOSED_PORT}')]}",
        f"childflow: denied dns {T.V6ONLY_NAME}: {dns_reason}",
    ], str(res)
    assert f"--deny-cidr {O4}/32" in cidr_reason and "--deny-domain" in dns_reason
    # the flow log still has every denial, the repeated ones too
    assert len(F.violations(events)) == 5, events


@pytest.mark.core
def test_quiet_prints_no_denial_line(childflow, userdir):
    parts, res, events = F.steps_logged(childflow, userdir, ["--quiet", *OPTIONS], COMMANDS)
    assert parts[0][0].strip() == F.DENIED_ERRNO_V4, str(res)
    assert len(F.violations(events)) == 5, events
    assert denial_lines(res) == [] and "denied" not in res.err, str(res)


def test_profile_quiet_true_prints_no_denial_line(topo, childflow, userdir):
    path = os.path.join(userdir, "quiet.toml")
    F.write_user_file(topo, path, f'quiet = true\ndeny_cidrs = ["{O4}/32"]\n')
    parts, res = F.steps(childflow, ["--profile", path], [F.probe_cmd("tcp", O4, T.HTTP_PORT)])
    assert parts[0][0].strip() == F.DENIED_ERRNO_V4, str(res)
    assert denial_lines(res) == [], str(res)
    dump = childflow.run("--profile", path, "--dump-profile")
    assert dump.rc == 0 and "quiet = true" in dump.out, str(dump)


def test_denied_ipv6_destination_and_name_of_a_default_deny_are_said(childflow, userdir):
    parts, res = F.steps(childflow, ["--default-policy", "deny", "--allow-cidr", f"{B4}/32"],
                         [F.probe_cmd("tcp", O6, T.HTTP_PORT), dig_cmd(T.ORIGIN_NAME)])
    assert parts[0][0].strip() == F.DENIED_ERRNO_V6, str(res)
    lines = denial_lines(res)
    assert len(lines) == 2, str(res)
    assert lines[0].startswith(f"childflow: denied tcp [{O6}]:{T.HTTP_PORT}: "), lines
    assert "--default-policy deny" in lines[0], lines
    assert lines[1].startswith(f"childflow: denied dns {T.ORIGIN_NAME}: "), lines
