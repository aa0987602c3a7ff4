"""Invalid option values are rejected before anything runs: exit 125 and a
one-line message naming the option and the value (a GNU-style "Try
'childflow --help'" hint line may follow it; nothing else)."""

import os

import pytest

pytestmark = pytest.mark.core

BAD_VALUES = [
    ("--allow-cidr", "198.51.100.0/33"),
    ("--deny-cidr", "not-a-cidr"),
    ("--dns", "300.1.2.3"),
    ("--dns", "2001:db8::zz"),
    ("--proxy", "ftp://198.51.100.10:21"),
    ("--proxy", "http://[2001:db8:2::10:8080"),
    ("--hosts-file", "/nonexistent/cft-hosts"),
    ("--report-format", "yaml"),
]


@pytest.mark.parametrize("option, value", BAD_VALUES,
                         ids=[f"{o.lstrip('-')}={v}" for o, v in BAD_VALUES])
def test_invalid_value_exits_125_naming_option_and_value_and_runs_nothing(
        childflow, userdir, option, value):
    marker = os.path.join(userdir, "ran")
    res = childflow.run(option, value, "--", "touch", marker)
    assert res.rc == 125, str(res)
    lines = [ln for ln in res.err.strip().splitlines() if not ln.startswith("Try '")]
    assert len(lines) == 1, str(res)
    assert option in lines[0] and value in lines[0], str(res)
    assert not os.path.exists(marker), "the command ran"


def test_valid_values_run_the_command(childflow, userdir):
    # the control for the test above: the same shape of command line runs
    hosts = os.path.join(userdir, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n")
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--dns", "198.51.100.54", "--hosts-file", hosts, "--", "touch", marker)
    assert res.rc == 0, str(res)
    assert os.path.exists(marker)
