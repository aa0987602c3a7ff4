"""Settings that need another setting are refused before anything runs,
where the original refuses them (docs/compatibility.md): --capture-point
other than child without --capture, --proxy-insecure without an https://
proxy, --proxy-only without --proxy, a proxy user without a password and a
password without a user.  The check runs on the merged configuration, so
a profile's keys are judged like options, and a profile may leave the other
half to the command line.  Refused: exit 125, one line naming the option and
the profile key, and the command never starts."""

import os

import pytest

import featurelib as F
import topology as T

pytestmark = pytest.mark.core

HTTP = f"http://{T.ORIGIN_V4}:3128"  # never contacted: nothing here opens a connection
HTTPS = f"https://{T.ORIGIN_V4}:3443"
SOCKS = f"socks5://{T.ORIGIN_V4}:1080"

REFUSED = [
    ("capture-point-egress", ["-C", "egress"], ["--capture-point egress", "--capture"]),
    ("capture-point-both", ["--capture-point", "both"], ["--capture-point both", "--capture"]),
    ("proxy-insecure-http", ["-p", HTTP, "--proxy-insecure"],
     ["--proxy-insecure", "https://", "http://"]),
    ("proxy-insecure-socks5", ["-p", SOCKS, "--proxy-insecure"],
     ["--proxy-insecure", "https://", "socks5://"]),
    ("proxy-insecure-alone", ["--proxy-insecure"], ["--proxy-insecure", "need --proxy"]),
    ("proxy-only-alone", ["--proxy-only"], ["--proxy-only", "needs --proxy"]),
    ("user-without-password", ["-p", SOCKS, "-U", "alice"],
     ["--proxy-user", "needs a password", "--proxy-password"]),
    ("uri-user-without-password", ["-p", f"http://alice@{T.ORIGIN_V4}:3128"],
     ["--proxy-user", "needs a password"]),
    ("password-without-user", ["-p", SOCKS, "-P", "secret"],
     ["--proxy-password", "needs a user", "--proxy-user"]),
]


def _assert_refused(res, marker, parts):
    assert res.rc == 125, str(res)
    lines = F.stderr_lines(res)
    assert len(lines) == 1, str(res)
    for part in parts:
        assert part in lines[0], (part, str(res))
    assert "secret" not in res.err, str(res)
    assert not os.path.exists(marker), "the command ran"


@pytest.mark.parametrize("name, args, parts", REFUSED, ids=[c[0] for c in REFUSED])
def test_setting_without_the_one_it_needs_is_refused_before_anything_runs(
        childflow, userdir, name, args, parts):
    marker = os.path.join(userdir, "ran")
    res = childflow.run(*args, "--", "touch", marker)
    _assert_refused(res, marker, parts)


ACCEPTED = [
    ("capture-point-child", ["-C", "child"]),
    ("proxy-insecure-https", ["-p", HTTPS, "--proxy-insecure"]),
    ("proxy-only-with-proxy", ["-p", HTTP, "--proxy-only"]),
    ("user-and-password", ["-p", SOCKS, "-U", "alice", "-P", "secret"]),
    ("user-and-uri-password", ["-p", f"http://alice:secret@{T.ORIGIN_V4}:3128", "-U", "bob"]),
    ("uri-user-and-password", ["-p", f"http://alice@{T.ORIGIN_V4}:3128", "-P", "secret"]),
]


@pytest.mark.parametrize("name, args", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_setting_with_the_one_it_needs_runs(childflow, userdir, name, args):
    # the control: the same settings, completed, run the command
    marker = os.path.join(userdir, "ran")
    res = childflow.run(*args, "--", "touch", marker)
    assert res.rc == 0, str(res)
    assert os.path.exists(marker)


def _profile(topo, userdir, text):
    return F.write_user_file(topo, os.path.join(userdir, "p.toml"), text)


PROFILE_REFUSED = [
    ("proxy_only", "proxy_only = true\n", ["--proxy-only (proxy_only)", "(proxy)"]),
    ("capture_point", 'capture_point = "egress"\n', ["(capture_point)", "(capture)"]),
    ("proxy_insecure", f'proxy = "{HTTP}"\nproxy_insecure = true\n',
     ["(proxy_insecure)", "https://"]),
    ("proxy_user", f'proxy = "{SOCKS}"\nproxy_user = "alice"\n',
     ["(proxy_user)", "(proxy_password)"]),
]


@pytest.mark.parametrize("name, text, parts", PROFILE_REFUSED, ids=[c[0] for c in PROFILE_REFUSED])
def test_profile_key_without_the_one_it_needs_is_refused_like_the_option(
        topo, childflow, userdir, name, text, parts):
    path = _profile(topo, userdir, text)
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--profile", path, "--", "touch", marker)
    _assert_refused(res, marker, parts)


PROFILE_COMPLETED = [
    ("proxy_only", "proxy_only = true\n", ["-p", HTTP]),
    ("capture_point", 'capture_point = "both"\n', ["-c", "cap.pcapng"]),
    ("proxy_insecure", "proxy_insecure = true\n", ["-p", HTTPS]),
    ("proxy_user", 'proxy_user = "alice"\n', ["-p", SOCKS, "-P", "secret"]),
]


@pytest.mark.parametrize("name, text, args", PROFILE_COMPLETED,
                         ids=[c[0] for c in PROFILE_COMPLETED])
def test_profile_key_completed_on_the_command_line_runs(topo, childflow, userdir, name, text,
                                                       args):
    # judged after the overlay: the profile's half plus the command line's half
    path = _profile(topo, userdir, text)
    marker = os.path.join(userdir, "ran")
    args = [os.path.join(userdir, a) if a.endswith(".pcapng") else a for a in args]
    res = childflow.run("--profile", path, *args, "--", "touch", marker)
    assert res.rc == 0, str(res)
    assert os.path.exists(marker)
