"""Issue #15, attack 6: the tree cannot erase or read the record of what it
did.  childflow's outputs (the flow log, every capture file, every profile
of the --profile chain) are the caller's files, and the tree runs as the
caller; inside the sandbox each is covered by a read-only empty file.  The
tree learns the paths from /proc/1/cmdline in a real attack; here they are
its arguments.  A control download before and after the tampering must be
in the flow log and the capture afterwards."""

import json
import os

import pytest

import featurelib as F
import topology as T

pytestmark = pytest.mark.core

URL = f"http://{T.ORIGIN_V4}/"

# Control download, then every way to read, empty, replace or move each
# file, then a second control download; prints one JSON object.
TAMPER = r"""
import json, os, subprocess, sys
url, paths = sys.argv[1], sys.argv[2:]

def curl():
    return subprocess.run(["curl", "-sS", "--max-time", "30", "-o", "/dev/null", url]).returncode

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return e.strerror

out = {"before": curl(), "files": {}}
for p in paths:
    r = {}
    try:
        with open(p, "rb") as f:
            r["read"] = f.read().decode("latin-1")
    except OSError as e:
        r["read"] = "error: " + e.strerror
    r["truncate"] = attempt(lambda: os.truncate(p, 0))
    r["overwrite"] = attempt(lambda: open(p, "w").write("tampered\n"))
    r["append"] = attempt(lambda: open(p, "a").write("tampered\n"))
    r["link"] = attempt(lambda: os.link(p, p + ".link"))
    r["rename"] = attempt(lambda: os.rename(p, p + ".moved"))
    r["unlink"] = attempt(lambda: os.unlink(p))
    out["files"][p] = r
out["after"] = curl()
print(json.dumps(out))
"""

ATTEMPTS = ("truncate", "overwrite", "append", "link", "rename", "unlink")


def _tamper(childflow, args, paths):
    res = childflow.run(*args, "--", "python3", "-c", TAMPER, URL, *paths)
    assert res.rc == 0, str(res)
    out = json.loads(res.out)
    # control: the tree's network worked before and after its attempts
    assert out["before"] == 0 and out["after"] == 0, out
    return out


def _assert_out_of_reach(out, path):
    seen = out["files"][path]
    assert seen["read"] == "", f"the tree read {path}: {seen['read'][:300]!r}"
    for a in ATTEMPTS:
        assert seen[a] != "ok", f"the tree could {a} {path}: {seen}"
    for suffix in (".link", ".moved"):
        assert not os.path.exists(path + suffix), path + suffix


def _origin_connects(log):
    events = []
    with open(log) as f:
        for line in f:
            events.append(json.loads(line))  # every line is whole JSON: nothing was cut
    return [e for e in events if e["event"] == "connect_attempt"
            and e["remote_ip"] == T.ORIGIN_V4 and e["remote_port"] == 80]


def test_flow_log_cannot_be_read_emptied_or_replaced(childflow, userdir):
    log = os.path.join(userdir, "flows.jsonl")
    out = _tamper(childflow, ["--flow-log", log], [log])
    _assert_out_of_reach(out, log)
    # the log is complete: both control connections are in it
    assert len(_origin_connects(log)) == 2, open(log).read()


def test_capture_files_cannot_be_read_emptied_or_replaced(childflow, userdir):
    base = os.path.join(userdir, "run.pcapng")
    files = [os.path.join(userdir, n) for n in ("run.child.pcapng", "run.egress.pcapng")]
    out = _tamper(childflow, ["-c", base, "-C", "both"], files)
    for path in files:
        _assert_out_of_reach(out, path)
        # still a valid capture, with both control connections' SYNs
        assert "pcapng" in F.capinfos(path), path
        syns = F.tshark_fields(path, ["frame.number"],
                               "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == 80")
        assert len(syns) >= 2, (path, syns)


def test_profile_chain_cannot_be_read_or_changed(childflow, userdir):
    base = os.path.join(userdir, "base.toml")
    child = os.path.join(userdir, "child.toml")
    texts = {base: "block_metadata = true\n",
             child: 'extends = "base.toml"\nsummary = false\n'}
    for path, text in texts.items():
        F.write_user_file(childflow.topo, path, text)
    out = _tamper(childflow, ["--profile", child], [child, base])
    for path, text in texts.items():
        _assert_out_of_reach(out, path)
        with open(path) as f:
            assert f.read() == text, path


def test_an_output_on_a_terminal_or_dev_null_is_left_alone(childflow, userdir):
    """Only regular files are covered: a flow log on /dev/null keeps
    /dev/null usable for the tree (the control)."""
    res = childflow.run("--flow-log", "/dev/null", "--", "sh", "-c",
                        "echo x > /dev/null && echo ok")
    assert res.rc == 0 and res.out.strip() == "ok", str(res)
