"""The man page and shell completions are generated from --help (tools/gen-docs):
the committed files must be exactly what the binary under test produces."""
import os
import re
import subprocess

from conftest import childflow_bin_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_man_page_and_completions_match_the_help_text():
    res = subprocess.run([os.path.join(ROOT, "tools", "gen-docs"), "--check", childflow_bin_path()],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_bash_completion_offers_every_long_option():
    help_text = subprocess.run([childflow_bin_path(), "--help"], capture_output=True,
                               text=True, check=True).stdout
    with open(os.path.join(ROOT, "completions", "childflow.bash")) as f:
        completion = f.read()
    longs = set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]*)", help_text, re.M))
    assert len(longs) > 30
    missing = sorted(o for o in longs if o not in completion)
    assert not missing, missing
