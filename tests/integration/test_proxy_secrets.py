"""Proxy passwords never show: not on childflow's stderr (errors, --summary),
not in the flow log, not in --dump-profile (masked), neither in clear nor as
the base64 of the Basic credentials, whether the proxy accepted or refused
them."""

import base64
import os

import pytest

import support
import topology as T
from proxies import (  # noqa: F401  (fixtures are used by name)
    CLOSED_PORT, HTTP_PASSWORD, HTTP_USER, SOCKS_PASSWORD, SOCKS_USER, TINYPROXY_V4,
    connect_errors, flow_events, microsocks, proxy_world, run_with_flow_log, tinyproxy_auth)

WRONG = "Zq9-wr0ng-Pw-Xv"  # distinctive: any occurrence is a leak


def _needles(user, password):
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [password, f"{user}:{password}", basic]


def _cases(world):
    tp = f"{world.tinyproxy_auth.host}:{world.tinyproxy_auth.port}"
    ms = f"{world.microsocks.host}:{world.microsocks.port}"
    return {
        # (childflow args, expected curl rc, needles; tinyproxy's password
        #  "pass" is too common a word to look for alone: its forms are)
        "http-options-accepted": (["-p", world.tinyproxy_auth.url, "-U", HTTP_USER,
                                   "-P", HTTP_PASSWORD], 0,
                                  _needles(HTTP_USER, HTTP_PASSWORD)[1:]),
        "http-uri-refused": (["-p", f"http://{HTTP_USER}:{WRONG}@{tp}"], 7,
                             _needles(HTTP_USER, WRONG)),
        "http-options-refused": (["-p", world.tinyproxy_auth.url, "-U", HTTP_USER, "-P", WRONG],
                                 7, _needles(HTTP_USER, WRONG)),
        "socks5-uri-accepted": (["-p", f"socks5://{SOCKS_USER}:{SOCKS_PASSWORD}@{ms}"], 0,
                                _needles(SOCKS_USER, SOCKS_PASSWORD)),
        "socks5-options-refused": (["-p", world.microsocks.url, "-U", SOCKS_USER, "-P", WRONG],
                                   7, _needles(SOCKS_USER, WRONG)),
        # the one case where childflow itself talks about the proxy on stderr
        "https-uri-unreachable": (["-p", f"https://{HTTP_USER}:{WRONG}@{TINYPROXY_V4}:"
                                         f"{CLOSED_PORT}"], 7, _needles(HTTP_USER, WRONG)),
    }


CASES = ["http-options-accepted", "http-uri-refused", "http-options-refused",
         "socks5-uri-accepted", "socks5-options-refused", "https-uri-unreachable"]


@pytest.mark.parametrize("case", CASES)
def test_password_is_absent_from_stderr_summary_and_flow_log(
        proxy_world, childflow, userdir, case):
    args, rc, needles = _cases(proxy_world)[case]
    res, log = run_with_flow_log(
        childflow, userdir, [*args, "--summary"],
        "curl", "-sS", "--max-time", "30", f"http://{T.ORIGIN_NAME}/?cft={support.new_token()}")
    assert res.rc == rc, str(res)
    with open(log) as f:
        flow = f.read()
    assert flow_events(log, "connect_attempt"), flow
    if rc:
        assert connect_errors(log), flow  # the failure was logged (without the password)
    for n in needles:
        assert n not in res.err, f"{n!r} leaked on stderr:\n{res.err}"
        assert n not in res.out, f"{n!r} leaked on stdout:\n{res.out}"
        assert n not in flow, f"{n!r} leaked into the flow log:\n{flow}"


def test_dump_profile_masks_uri_password_option_password_and_profile_password(
        childflow, userdir):
    uri_pw, opt_pw, prof_pw = "UriPw-" + WRONG, "OptPw-" + WRONG, "ProfPw-" + WRONG
    profile = os.path.join(userdir, "proxy.toml")
    with open(profile, "w") as f:
        f.write(f'proxy = "http://{HTTP_USER}:{prof_pw}@198.51.100.20:3129"\n'
                f'proxy_password = "{prof_pw}"\n')
    runs = {
        "cli": childflow.run("-p", f"http://{HTTP_USER}:{uri_pw}@198.51.100.20:3129",
                             "-U", HTTP_USER, "-P", opt_pw, "--dump-profile"),
        "profile": childflow.run("--profile", profile, "--dump-profile"),
    }
    for what, res in runs.items():
        assert res.rc == 0, str(res)
        for pw in (uri_pw, opt_pw, prof_pw):
            for n in _needles(HTTP_USER, pw):
                assert n not in res.out and n not in res.err, f"{what}: {n!r} leaked\n{res}"
        # the settings are still there, masked
        assert f'proxy = "http://{HTTP_USER}:***@198.51.100.20:3129"' in res.out, str(res)
        assert 'proxy_password = "********"' in res.out, str(res)
