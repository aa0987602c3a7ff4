"""Small helpers shared by the integration tests (no fixtures here)."""

import os
import re
import time
import uuid

import topology


def wait_for(pred, timeout=10.0, interval=0.05):
    """Poll pred() until it is true or timeout seconds pass; returns its last
    value.  Used for things that happen asynchronously (a log line being
    written, the kernel reaping a dead tree), never to measure speed."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def new_token():
    """A unique marker value for CFT_MARK (see marked_pids)."""
    return "cft-" + uuid.uuid4().hex


def marked_pids(token):
    """Live pids whose environment has CFT_MARK=token: childflow itself and
    every process of its tree (the environment is inherited), found from
    outside whatever pid namespace the tree is in."""
    out = []
    for pid in topology.all_pids():
        if topology.proc_alive(pid) and topology.proc_environ(pid).get("CFT_MARK") == token:
            out.append(pid)
    return out


def alive(pids):
    """The subset of pids that still exist (zombies count as gone)."""
    return [p for p in pids if topology.proc_alive(p)]


def nameservers(resolv_conf_text):
    """nameserver addresses listed in a resolv.conf text."""
    return re.findall(r"^\s*nameserver\s+(\S+)", resolv_conf_text, re.M)


def link_names(ip_o_link_output):
    """Interface names from `ip -o link` output ("2: tun0: <...>")."""
    names = []
    for line in ip_o_link_output.splitlines():
        m = re.match(r"^\d+:\s+([^:@\s]+)", line)
        if m:
            names.append(m.group(1))
    return names


def status_field(proc_status_text, field):
    """A field of /proc/PID/status text, e.g. status_field(t, "CapEff")."""
    m = re.search(rf"^{re.escape(field)}:\s*(\S+)", proc_status_text, re.M)
    return m.group(1) if m else None


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def fd_links(pid):
    """Targets of every open fd of pid (empty if unreadable)."""
    out = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def namespace_holders(ns_links):
    """pids that are in, or hold an fd to, any of the namespaces given as
    links ("net:[4026...]", "user:[...]")."""
    ns_links = set(ns_links)
    holders = []
    for pid in topology.all_pids():
        if not topology.proc_alive(pid):
            continue
        mine = {topology.proc_ns(pid, k) for k in ("net", "user", "mnt")}
        if mine & ns_links or ns_links.intersection(fd_links(pid)):
            holders.append(pid)
    return holders


def mountinfo(pid="self"):
    with open(f"/proc/{pid}/mountinfo") as f:
        return f.read().splitlines()


def marked_script(token, script):
    """Prefix a shell script with a check that CFT_MARK reached the command
    (exit 99 otherwise), so marker-based survivor checks cannot pass
    vacuously."""
    return f'[ "$CFT_MARK" = "{token}" ] || exit 99; {script}'
