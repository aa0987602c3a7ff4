"""Profiles (docs/profile-schema.md) through the real binary: the example
profiles in examples/ run against the test topology and do what their
comments say; command-line options override them as documented (a list
option replaces the profile's list, a command after -- replaces `command`,
--root overrides `backend`); `extends` and relative paths resolve against the
profile's own directory; --dump-profile prints TOML that loads back to the
same configuration, with passwords masked unless CHILDFLOW_SHOW_SECRETS=1;
errors name file:line:col and stop everything before the command runs."""

import json
import os
import re
import shutil

import pytest

import featurelib as F
import topology as T

O4, O6, B4 = T.ORIGIN_V4, T.ORIGIN_V6, T.ORIGIN_B_V4
EXAMPLES = ["offline-build.toml", "default-deny-allowlist.toml", "proxy-flow-log.toml"]


def example(topo, userdir, name):
    """A copy of examples/NAME in userdir, owned by the test user (relative
    paths in it then point into userdir, which the user may write)."""
    src = os.path.join(F.EXAMPLES_DIR, name)
    assert os.path.isfile(src), f"{src} is missing"
    dst = os.path.join(userdir, name)
    shutil.copyfile(src, dst)
    os.chown(dst, topo.state["uid"], topo.state["gid"])
    return dst


def profile(topo, path, text):
    F.make_user_subdir(topo, os.path.dirname(path))
    return F.write_user_file(topo, path, text)


def dump(childflow, *args, env=None):
    res = childflow.run(*args, "--dump-profile", env=env)
    assert res.rc == 0, str(res)
    return res.out


def settings(dump_text):
    """The non-comment lines of a dump."""
    return [ln for ln in dump_text.splitlines() if ln and not ln.startswith("#")]


def without_extends_comment(dump_text):
    return "\n".join(ln for ln in dump_text.splitlines() if not ln.startswith("# extends"))


# --- the examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_profile_loads_and_dumps(topo, childflow, userdir, name):
    out = dump(childflow, "--profile", example(topo, userdir, name))
    assert out.splitlines()[0].startswith("#"), out
    assert 'backend = "rootless-internal"' in settings(out), out


def test_offline_build_example_lets_nothing_out_and_fails_a_leaky_command(topo, childflow,
                                                                         userdir):
    path = example(topo, userdir, "offline-build.toml")
    out = settings(dump(childflow, "--profile", path))
    assert {"offline = true", "fail_on_leak = true", 'command = ["make"]'} <= set(out), out
    mark = topo.log_mark("dns-a")
    res = childflow.run("--profile", path, "--", "sh", "-c",
                        f"getent hosts {T.ORIGIN_NAME}; echo \"getent $?\"; "
                        f"{F.probe_cmd('tcp', O4, 80)}")
    assert res.rc == 122, str(res)                     # fail_on_leak
    assert res.out == f"getent 2\n{F.DENIED_ERRNO_V4}\n", str(res)
    assert "childflow summary" in res.err, str(res)   # summary = true
    sentinel = F.sentinel_name()
    assert topo.run_host_root(F.dig(f"@{T.DNS_A_V4}", sentinel)).rc == 0
    text = F.wait_sentinel(topo, "dns-a", mark, sentinel)
    assert T.ORIGIN_NAME not in text, text


def test_offline_build_example_runs_its_command_without_one_on_the_command_line(
        topo, childflow, userdir):
    path = example(topo, userdir, "offline-build.toml")
    with open(os.path.join(userdir, "Makefile"), "w") as f:
        f.write("all:\n\t@echo built offline\n")
    res = topo.run_user(["sh", "-c", 'cd "$1" && exec "$2" --profile "$3"', "sh", userdir,
                         childflow.binary, path], env=childflow.env())
    assert res.rc == 0, str(res)                       # nothing blocked: status kept
    assert res.out == "built offline\n", str(res)


@pytest.mark.core
def test_default_deny_allowlist_example_reaches_origin_test_only(topo, childflow, userdir):
    path = example(topo, userdir, "default-deny-allowlist.toml")
    parts, res = F.steps(childflow, ["--profile", path], [
        f"curl -sS --max-time 30 http://{T.ORIGIN_NAME}/",
        f"curl -sS -6 --max-time 30 http://{T.ORIGIN_NAME}/",
        F.probe_cmd("tcp", B4, 80),
        f"getent hosts {T.V6ONLY_NAME}",
        F.probe_cmd("tcp", F.PRIVATE_V4, 80)])
    assert parts == [(T.ORIGIN_BODY, 0), (T.ORIGIN_BODY, 0), (F.DENIED_ERRNO_V4 + "\n", 0),
                     ("", 2), (F.DENIED_ERRNO_V4 + "\n", 0)], str(res)
    assert "childflow summary" in res.err, str(res)


@pytest.mark.core
def test_command_line_list_replaces_the_profiles_list(topo, childflow, userdir):
    path = example(topo, userdir, "default-deny-allowlist.toml")
    out = settings(dump(childflow, "--profile", path, "--allow-domain", T.V6ONLY_NAME))
    i = out.index("allow_domains = [")
    assert out[i:i + 3] == ["allow_domains = [", f'    "{T.V6ONLY_NAME}",', "]"], out
    parts, res = F.steps(childflow, ["--profile", path, "--allow-domain", T.V6ONLY_NAME], [
        f"getent hosts {T.ORIGIN_NAME}",
        f"curl -sS -6 --max-time 30 http://{T.V6ONLY_NAME}/"])
    assert parts == [("", 2), (T.ORIGIN_BODY, 0)], str(res)


@pytest.mark.core
def test_proxy_flow_log_example_runs_its_command_and_logs_beside_the_profile(topo, childflow,
                                                                            userdir):
    path = example(topo, userdir, "proxy-flow-log.toml")
    log = os.path.join(userdir, "proxy-flow-log.jsonl")
    # run from another directory: the relative flow_log is the profile's
    res = topo.run_user(["sh", "-c", 'cd / && exec "$1" --profile "$2"', "sh",
                         childflow.binary, path], env=childflow.env())
    assert res.rc == 0, str(res)
    assert res.out == T.ORIGIN_BODY, str(res)          # the profile's command
    summary = json.loads(res.err.strip().splitlines()[-1])
    assert summary["flow_log"]["path"] == log, summary
    assert summary["argv"] == ["curl", "-sS", f"http://{T.ORIGIN_NAME}/"], summary
    events = F.read_flowlog(log)
    assert [e["remote_addr"] for e in F.of_type(events, "connect_attempt")] in (
        [f"{O4}:80"], [f"[{O6}]:80"]), events


def test_command_after_dashdash_replaces_the_profiles_command(topo, childflow, userdir):
    path = example(topo, userdir, "proxy-flow-log.toml")
    res = childflow.run("--profile", path, "--", "echo", "replaced")
    assert res.rc == 0, str(res)
    assert res.out == "replaced\n", str(res)
    summary = json.loads(res.err.strip().splitlines()[-1])
    assert summary["argv"] == ["echo", "replaced"], summary
    assert F.read_flowlog(os.path.join(userdir, "proxy-flow-log.jsonl")) == []


@pytest.mark.core
def test_root_overrides_the_profiles_backend_and_needs_root(topo, childflow, userdir):
    path = example(topo, userdir, "default-deny-allowlist.toml")
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--profile", path, "--root", "--", "touch", marker)
    assert res.rc == 125, str(res)
    assert "--root needs root" in res.err, str(res)
    assert not os.path.exists(marker), "the command ran"


def test_rootful_backend_in_a_profile_selects_it_and_needs_root(topo, childflow, userdir):
    path = profile(topo, os.path.join(userdir, "rootful.toml"), 'backend = "rootful"\n')
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--profile", path, "--", "touch", marker)
    assert res.rc == 125, str(res)
    assert "--root needs root" in res.err, str(res)
    assert not os.path.exists(marker), "the command ran"


# --- extends and relative paths ------------------------------------------------------------


def extends_tree(topo, userdir):
    """conf/base.toml <- conf/team/mid.toml <- conf/team/leaf/leaf.toml."""
    conf = os.path.join(userdir, "conf")
    F.make_user_subdir(topo, conf, "logs")
    profile(topo, os.path.join(conf, "base.toml"),
            f'flow_log = "logs/base.jsonl"\ndeny_cidrs = ["{O4}/32"]\nsummary = true\n')
    profile(topo, os.path.join(conf, "team", "mid.toml"),
            f'extends = "../base.toml"\nhosts_file = "hosts"\ndeny_cidrs = ["{B4}/32"]\n'
            'summary_format = "json"\n')
    F.write_user_file(topo, os.path.join(conf, "team", "hosts"),
                      f"127.0.0.1 localhost\n{O4} alias.test\n")
    leaf = profile(topo, os.path.join(conf, "team", "leaf", "leaf.toml"),
                   'extends = "../mid.toml"\n'
                   'command = ["sh", "-c", "getent hosts alias.test"]\n')
    return conf, leaf


@pytest.mark.core
def test_extends_chain_resolves_relative_paths_against_each_profiles_directory(
        topo, childflow, userdir):
    conf, leaf = extends_tree(topo, userdir)
    # --profile given relative to a directory that is not the profile's
    script = 'cd "$1" && exec "$2" --profile conf/team/leaf/leaf.toml -- sh -c "$3"'
    tree = (f"getent hosts alias.test; {F.probe_cmd('tcp', O4, 80)}; "
            f"{F.probe_cmd('tcp', B4, 80)}")
    res = topo.run_user(["sh", "-c", script, "sh", userdir, childflow.binary, tree],
                        env=childflow.env())
    assert res.rc == 0, str(res)
    lines = res.out.splitlines()
    assert lines[0].split() == [O4, "alias.test"], str(res)     # mid's hosts_file
    # mid's deny_cidrs replaced base's: origin is reachable, origin-b is not
    assert lines[1:] == ["connected", F.DENIED_ERRNO_V4], str(res)
    summary = json.loads(res.err.strip().splitlines()[-1])     # base summary, mid format
    log = summary["flow_log"]["path"]
    assert os.path.realpath(log) == os.path.join(conf, "logs", "base.jsonl"), log
    assert os.path.isabs(log)
    assert F.violation_reasons(F.read_flowlog(log)) == [("tcp", B4, "deny_cidr", "--deny-cidr")]


def test_dump_of_an_extends_chain_is_absolute_and_merged(topo, childflow, userdir):
    conf, leaf = extends_tree(topo, userdir)
    out = dump(childflow, "--profile", leaf)
    values = {}
    for ln in settings(out):
        if " = " in ln:
            k, v = ln.split(" = ", 1)
            values[k] = v
    assert values["summary"] == "true" and values["summary_format"] == '"json"', out
    flow_log = json.loads(values["flow_log"])
    hosts = json.loads(values["hosts_file"])
    assert os.path.isabs(flow_log) and os.path.isabs(hosts), out
    assert os.path.realpath(flow_log) == os.path.join(conf, "logs", "base.jsonl")
    assert os.path.realpath(hosts) == os.path.join(conf, "team", "hosts")
    i = settings(out).index("deny_cidrs = [")
    assert settings(out)[i:i + 3] == ["deny_cidrs = [", f'    "{B4}/32",', "]"], out
    assert any(ln.startswith("# extends") for ln in out.splitlines()), out
    assert not any(ln.startswith("extends") for ln in out.splitlines()), out


def test_extends_cycle_is_an_error_showing_the_chain(topo, childflow, userdir):
    a = profile(topo, os.path.join(userdir, "a.toml"), 'extends = "b.toml"\n')
    profile(topo, os.path.join(userdir, "b.toml"), 'extends = "./a.toml"\n')
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--profile", a, "--", "touch", marker)
    assert res.rc == 125, str(res)
    (msg,) = F.stderr_lines(res)
    assert "b.toml:1:" in msg and "extends cycle" in msg, msg
    assert "a.toml -> b.toml -> ./a.toml" in msg, msg
    assert not os.path.exists(marker)


# --- --dump-profile round trip and secrets --------------------------------------------------


RICH = r"""# every kind of value, with awkward strings
dns = "2001:db8:2::54"
hosts_file = "hosts"
flow_log = "flows.jsonl"
capture = "out.pcapng"
# (proxy_insecure needs an https:// proxy: docs/compatibility.md)
proxy = "https://alice:pa%40ss@[2001:db8:2::10]:1080"
proxy_password = "s3cret \"quoted\" \\ back"
proxy_insecure = true
summary = true
summary_format = "json"
report_format = "markdown"
block_private = true
default_policy = "deny"
allow_cidrs = ["198.51.100.0/24", "2001:db8::/32"]
deny_cidrs = ["198.51.100.10/32"]
allow_domains = ["Origin.TEST.", "*.example.org"]
allow_domains_exact = ["v6only.test"]
deny_domains = ['ads.example.org']
deny_domains_exact = ["*.example.net"]
fail_on_leak = true
command = ["sh", "-c", "echo \"$1\" 'it''s' \\ tab\there ünïcödé ✓", "x"]
"""


def rich_profile(topo, userdir):
    d = os.path.join(userdir, "rich")
    F.make_user_subdir(topo, d)
    F.write_user_file(topo, os.path.join(d, "hosts"), "127.0.0.1 localhost\n")
    return profile(topo, os.path.join(d, "rich.toml"), RICH)


@pytest.mark.core
@pytest.mark.parametrize("show_secrets", [False, True], ids=["masked", "shown"])
def test_dump_loads_back_to_the_same_configuration(topo, childflow, userdir, show_secrets):
    env = {"CHILDFLOW_SHOW_SECRETS": "1"} if show_secrets else None
    first = dump(childflow, "--profile", rich_profile(topo, userdir), "--offline", env=env)
    saved = F.write_user_file(topo, os.path.join(userdir, "dumped.toml"), first)
    second = dump(childflow, "--profile", saved, env=env)
    assert second == first
    # and once more from a dump of a dump
    saved2 = F.write_user_file(topo, os.path.join(userdir, "dumped2.toml"), second)
    assert dump(childflow, "--profile", saved2, env=env) == first


def test_dump_lists_every_key_in_the_documented_order(topo, childflow, userdir):
    out = dump(childflow, "--profile", rich_profile(topo, userdir))
    keys = [m.group(1) for m in (re.match(r"^(?:# )?([a-z_]+)(?: = |: )", ln)
                                 for ln in out.splitlines()) if m]
    documented = ["extends", "backend", "command", "capture", "capture_point", "dns",
                  "hosts_file", "proxy", "proxy_user", "proxy_password", "proxy_insecure",
                  "summary", "summary_format", "doctor_format", "report_format", "flow_log",
                  "offline", "block_private", "block_metadata", "default_policy", "allow_cidrs",
                  "deny_cidrs", "allow_domains", "allow_domains_exact", "deny_domains",
                  "deny_domains_exact", "proxy_only", "fail_on_leak", "iface"]
    present = [k for k in keys if k in documented]
    assert present == documented, present
    assert 'allow_domains = [' in out and '    "origin.test",' in out, out


@pytest.mark.core
def test_passwords_are_masked_unless_childflow_show_secrets_is_set(topo, childflow, userdir):
    path = rich_profile(topo, userdir)
    masked = dump(childflow, "--profile", path, "-P", "cli-pass-123")
    assert 'proxy_password = "********"' in masked, masked
    assert "https://alice:***@[2001:db8:2::10]:1080" in masked, masked
    for secret in ("cli-pass-123", "pa%40ss", "pa@ss", "s3cret"):
        assert secret not in masked, secret
    assert "masked" in masked.split("\n\n")[0].lower() or "Passwords are masked" in masked
    shown = dump(childflow, "--profile", path, "-P", "cli-pass-123",
                 env={"CHILDFLOW_SHOW_SECRETS": "1"})
    assert 'proxy_password = "cli-pass-123"' in shown, shown       # -P replaces it
    assert "https://alice:pa%40ss@[2001:db8:2::10]:1080" in shown, shown
    assert "contains passwords" in shown, shown
    assert "********" not in shown


def test_profile_password_is_shown_exactly_with_show_secrets(topo, childflow, userdir):
    out = dump(childflow, "--profile", rich_profile(topo, userdir),
               env={"CHILDFLOW_SHOW_SECRETS": "1"})
    assert 'proxy_password = "s3cret \\"quoted\\" \\\\ back"' in settings(out), out


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.core
@pytest.mark.parametrize("text, where, what", [
    ("offline = true\nsumary = true\n", "2:1", "unknown key 'sumary' (did you mean 'summary'?)"),
    ('summary = "yes"\n', "1:11", "key 'summary': expected a boolean"),
    ('allow_cidrs = [\n  "10.0.0.1/33",\n]\n', "2:3", "key 'allow_cidrs'"),
    ("offline = true\noffline = false\n", "2:1", "duplicate key 'offline'"),
    ("summary = 1.5\n", "1:11", "unsupported"),
    ('command = "make"\n', "1:11", "key 'command'"),
], ids=["unknown-key", "wrong-type", "bad-cidr", "duplicate", "float", "command-not-array"])
def test_profile_error_names_file_line_column_and_nothing_runs(topo, childflow, userdir, text,
                                                               where, what):
    path = profile(topo, os.path.join(userdir, "bad.toml"), text)
    marker = os.path.join(userdir, "ran")
    log = os.path.join(userdir, "flows.jsonl")
    res = childflow.run("--profile", path, "--flow-log", log, "--", "touch", marker)
    assert res.rc == 125, str(res)
    (msg,) = F.stderr_lines(res)
    assert f"{path}:{where}: " in msg and what in msg, msg
    assert not os.path.exists(marker), "the command ran"
    assert not os.path.exists(log), "the flow log was created"


def test_error_in_a_parent_profile_names_the_parent(topo, childflow, userdir):
    parent = profile(topo, os.path.join(userdir, "parent.toml"),
                     "# parent\nblock_private = true\nblock_metadta = true\n")
    child = profile(topo, os.path.join(userdir, "child", "child.toml"),
                    'extends = "../parent.toml"\n')
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--profile", child, "--", "touch", marker)
    assert res.rc == 125, str(res)
    (msg,) = F.stderr_lines(res)
    assert ("parent.toml:3:1: unknown key 'block_metadta' (did you mean "
            "'block_metadata'?)") in msg, msg
    assert os.path.basename(parent) in msg
    assert not os.path.exists(marker)


def test_error_messages_never_quote_a_password(topo, childflow, userdir):
    path = profile(topo, os.path.join(userdir, "pw.toml"),
                   'proxy = "http://bob:uri-secret-77@203.0.113.1:3128"\n'
                   'proxy_password = "hunter2-secret"\nproxy_user = 5\n')
    res = childflow.run("--profile", path, "--", "true")
    assert res.rc == 125, str(res)
    assert f"{path}:3:14: " in res.err, str(res)
    assert "hunter2" not in res.err and "uri-secret" not in res.err, str(res)


def test_missing_profile_and_missing_parent_are_errors(topo, childflow, userdir):
    gone = os.path.join(userdir, "gone.toml")
    res = childflow.run("--profile", gone, "--", "true")
    assert res.rc == 125 and gone in res.err, str(res)
    child = profile(topo, os.path.join(userdir, "orphan.toml"), 'extends = "gone.toml"\n')
    res = childflow.run("--profile", child, "--", "true")
    assert res.rc == 125, str(res)
    (msg,) = F.stderr_lines(res)
    assert f"{child}:1:11: key 'extends': cannot read" in msg and "gone.toml" in msg, msg


def test_profile_without_command_and_none_given_is_an_error(topo, childflow, userdir):
    path = example(topo, userdir, "default-deny-allowlist.toml")
    res = childflow.run("--profile", path)
    assert res.rc == 125, str(res)
    assert res.out == "", str(res)


def test_profile_capture_naming_an_existing_file_is_refused_like_the_option(topo, childflow,
                                                                           userdir):
    # docs/capture.md: an existing capture is never overwritten, whoever names it
    old = F.write_user_file(topo, os.path.join(userdir, "old.pcapng"), "precious\n")
    path = profile(topo, os.path.join(userdir, "cap.toml"), 'capture = "old.pcapng"\n')
    marker = os.path.join(userdir, "ran")
    res = childflow.run("--profile", path, "--", "touch", marker)
    assert res.rc == 125, str(res)
    assert old in res.err, str(res)
    with open(old) as f:
        assert f.read() == "precious\n"
    assert not os.path.exists(marker)


def test_tilde_path_in_a_profile_is_an_error(topo, childflow, userdir):
    path = profile(topo, os.path.join(userdir, "tilde.toml"), 'flow_log = "~/x.jsonl"\n')
    res = childflow.run("--profile", path, "--", "true")
    assert res.rc == 125, str(res)
    assert f"{path}:1:12: " in res.err and "flow_log" in res.err, str(res)

