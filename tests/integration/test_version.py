"""`childflow --version`: the version of meson.build, and the commit when the
binary was built from a git checkout (docs/install.md). A build without .git
(a tarball, the Debian package) says the version alone: tests/package/check-deb
checks that on the packaged binary."""

import os
import re
import subprocess

import pytest

from conftest import REPO, childflow_bin_path

pytestmark = pytest.mark.core


def project_version():
    with open(os.path.join(REPO, "meson.build")) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


def test_version_says_the_version_and_the_commit_of_the_checkout():
    if not os.path.exists(os.path.join(REPO, ".git")):
        pytest.skip("not a git checkout: the binary says only its version")
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    res = subprocess.run([childflow_bin_path(), "--version"], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0 and res.stderr == "", res
    m = re.fullmatch(r"childflow (\S+) \(git ([0-9a-f]{12})(-dirty)?\)\n", res.stdout)
    assert m, f"expected 'childflow VERSION (git COMMIT)', got {res.stdout!r}"
    assert m.group(1) == project_version()
    assert head.startswith(m.group(2)), \
        f"the binary says commit {m.group(2)}, the checkout is at {head} (rebuild: ninja -C build)"
