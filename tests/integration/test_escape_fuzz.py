"""What the fuzz targets of tests/fuzz/ found, through the real binary:

- a profile (which may come from a repository the user does not control)
  could put a newline or a terminal escape sequence on the user's terminal
  through a path it names: the load error quoted the path as written;
- a proxy URI with an empty password ("socks5://u:@...") was masked over and
  over in its error message, which then lost the reason.

Each attack is paired with a control that must succeed in the same run."""

import os

import pytest

import featurelib as F

pytestmark = pytest.mark.core

ESC = "\x1b"


def profile(topo, path, text):
    F.make_user_subdir(topo, os.path.dirname(path))
    return F.write_user_file(topo, path, text)


def test_profile_paths_put_no_control_characters_on_the_terminal(topo, childflow, userdir):
    # control: a chain that loads runs its command
    base = profile(topo, os.path.join(userdir, "base.toml"), "summary = false\n")
    ok = profile(topo, os.path.join(userdir, "ok.toml"),
                 f'extends = "{os.path.basename(base)}"\n')
    res = childflow.run("--profile", ok, "--", "true")
    assert res.rc == 0, str(res)

    # attack: an escape sequence (clear screen) and a newline in the parent's path
    bad = profile(topo, os.path.join(userdir, "bad.toml"),
                  'extends = "gone\\u001b[2J\\nchildflow: all fine.toml"\n')
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--profile", bad, "--", "touch", marker)
    assert res.rc == 125, str(res)
    assert ESC not in res.err, repr(res.err)
    (msg,) = F.stderr_lines(res)
    assert f"{bad}:1:11: key 'extends': cannot read" in msg, msg
    assert "gone?[2J?childflow: all fine.toml" in msg, msg
    assert not os.path.exists(marker)


def test_proxy_uri_with_an_empty_password_is_refused_with_its_reason(childflow):
    # control: with a password, the message masks it and gives the reason
    res = childflow.run("-p", "socks5://u:pw@203.0.113.1:99999", "--", "true")
    assert res.rc == 125, str(res)
    assert "socks5://u:***@203.0.113.1:99999" in res.err, str(res)
    assert "port 99999 out of range 1-65535" in res.err, str(res)

    # attack: an empty password used to fill the message with asterisks
    res = childflow.run("-p", "socks5://u:@203.0.113.1:99999", "--", "true")
    assert res.rc == 125, str(res)
    assert "socks5://u:***@203.0.113.1:99999" in res.err, str(res)
    assert "port 99999 out of range 1-65535" in res.err, str(res)
    assert "****" not in res.err, str(res)
