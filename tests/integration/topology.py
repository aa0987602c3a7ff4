#!/usr/bin/python3
"""Private test network for childflow's integration tests.

Theory of operation
-------------------
Every run gets a unique name prefix ``cft-<id>`` (``cft-<pid>`` for a pytest
session, ``cft-demo`` for tools/demo) and builds, as root:

* two network namespaces, ``<prefix>-host`` (childflow runs there) and
  ``<prefix>-world`` (the peers), joined by one veth pair that is created
  directly inside them (no interface ever exists in the machine's own
  namespace).  Only documentation addresses are used; the world has no route
  but its connected 203.0.113.0/24 and 2001:db8:1::/64, and forwarding is off,
  so no packet can leave the two namespaces.
* peers in the world: nginx (origin + origin-b), two dnsmasq instances (A and
  B), a TCP echo/discard server (peers.py), an nft table that silently drops
  the "blackhole" addresses; port 81 on the origin is closed (RST).
* a chain of two routers behind the host, so traceroute has real hops:
  ``<prefix>-r1`` sits on the host–world link through a macvlan of the
  world's eth0 (the world itself neither routes nor forwards), links to
  ``<prefix>-r2``, which links to ``<prefix>-far``; far holds the targets
  198.51.100.250 and 2001:db8:6::1 with a UDP echo server (port 9999, bound to
  each target address) and nothing on UDP port 9998.  The host routes only
  198.51.100.240/28 and 2001:db8:4::/64, 2001:db8:5::/64, 2001:db8:6::/64 to
  r1; r1 and r2 forward between these links only, so every packet still
  stays inside the run's namespaces.  ICMP error rate limits are off in r1,
  r2 and far (consecutive traceroutes would lose hops otherwise).
* an unprivileged user ``cftu-<id>`` with its own /etc/subuid and /etc/subgid
  range, home in the run directory.
* the run directory ``/tmp/<prefix>/`` (configs, logs, served files, the
  host namespace's resolv.conf and hosts, per-test scratch directories).

Nothing else on the machine changes.  In particular the harness does NOT edit
/etc/netns/ and does NOT chmod /dev/net/tun: every command it runs in the host
namespace goes through a tiny root shell prologue (USER_PROLOGUE) executed in
the private mount namespace that ``ip netns exec`` creates for it.  There it
bind-mounts the run's resolv.conf and hosts over /etc/resolv.conf and
/etc/hosts, and bind-mounts a tun device node of the requested mode (0666 by
default, 0600 for the "no access to /dev/net/tun" test) over /dev/net/tun.
Those mounts disappear with the last process of the command, even on SIGKILL.

Teardown (``down``) kills the daemons it recorded (pid + start time, so a
recycled pid is never hit), every process owned by the run's user or its
subordinate ids, every process still inside the run's namespaces, deletes the
namespaces (host, world, r1, r2, far), the user, its subuid/subgid lines, the run directory, and
/run/netns if the run created it and it is empty.  ``sweep`` does the same for
runs whose owner process is gone (aborted runs); ``sweep --all`` for every run.

CLI (as root)::

    topology.py up --prefix cft-demo [--owner PID] [--big-size BYTES]
    topology.py exec --prefix cft-demo [--as-root] -- CMD...   # in host ns
    topology.py down --prefix cft-demo
    topology.py sweep [--all]
"""

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

# --- addresses (documentation ranges only: RFC 5737 / RFC 3849) -------------

HOST_V4 = "203.0.113.2"
WORLD_V4 = "203.0.113.1"
HOST_V6 = "2001:db8:1::2"
WORLD_V6 = "2001:db8:1::1"
ORIGIN_V4 = "198.51.100.10"
ORIGIN_V6 = "2001:db8:2::10"
ORIGIN_B_V4 = "198.51.100.11"
ORIGIN_B_V6 = "2001:db8:2::11"
DNS_A_V4 = "198.51.100.53"
DNS_A_V6 = "2001:db8:2::53"
DNS_B_V4 = "198.51.100.54"
DNS_B_V6 = "2001:db8:2::54"
BLACKHOLE_V4 = "198.51.100.99"
BLACKHOLE_V6 = "2001:db8:2::99"

# The router chain behind the host (traceroute's hops): host -> r1 -> r2 -> far.
# r1's upstream side is on the host-world subnet; the rest are small links of
# their own.  Each *_V4/_V6 pair names one interface's addresses.
R1_UP_V4 = "203.0.113.3"           # r1 eth0 (macvlan on the host-world link)
R1_UP_V6 = "2001:db8:1::3"
R1_DOWN_V4 = "198.51.100.241"      # r1 eth1, link r1-r2 198.51.100.240/30
R1_DOWN_V6 = "2001:db8:4::1"       #          link r1-r2 2001:db8:4::/64
R2_UP_V4 = "198.51.100.242"        # r2 eth0
R2_UP_V6 = "2001:db8:4::2"
R2_DOWN_V4 = "198.51.100.245"      # r2 eth1, link r2-far 198.51.100.244/30
R2_DOWN_V6 = "2001:db8:5::1"       #          link r2-far 2001:db8:5::/64
FAR_LINK_V4 = "198.51.100.246"     # far eth0
FAR_LINK_V6 = "2001:db8:5::2"
FAR_V4 = "198.51.100.250"          # far lo: the targets (UDP echo, ping, traceroute)
FAR_V6 = "2001:db8:6::1"
CHAIN_ROUTES_V4 = ("198.51.100.240/28",)
CHAIN_ROUTES_V6 = ("2001:db8:4::/64", "2001:db8:5::/64", "2001:db8:6::/64")
# What a traceroute from the host namespace to FAR_V4 / FAR_V6 shows, in order:
# each router answers from the address of the interface facing the host.
TRACE_HOPS_V4 = (R1_UP_V4, R2_UP_V4, FAR_V4)
TRACE_HOPS_V6 = (R1_UP_V6, R2_UP_V6, FAR_V6)
UDP_ECHO_PORT = 9999
UDP_CLOSED_PORT = 9998

HTTP_PORT = 80
CLOSED_PORT = 81
ECHO_PORT = 7
DISCARD_PORT = 9

ORIGIN_NAME = "origin.test"
V6ONLY_NAME = "v6only.test"
# Names under one allowed domain (test_escape_dns.py): A answers ALLOWED_NAME
# (origin), B answers POISON_NAME with origin-b, which only B knows.
ALLOWED_DOMAIN = "allowed.test"
ALLOWED_NAME = "ok.allowed.test"
POISON_NAME = "x.allowed.test"
ORIGIN_BODY = "hello from origin\n"
ORIGIN_B_BODY = "hello from origin-b\n"
BIG_SIZE = 100 * 1024 * 1024

# --- issue 20 (SNI/Host checks): one address answering two names -------------------
# dnsmasq A resolves TWIN_NAME to the origin's addresses too, so origin.test and
# twin.test are two names of one server. nginx serves them over TLS on
# TLS_PORT (one self-signed certificate naming both) and logs every request
# with the SNI and Host it got (log "nginx-tls": SNI HOST "REQUEST" STATUS);
# plain HTTP on HTTP_PORT answers any Host already.
TWIN_NAME = "twin.test"
TLS_PORT = 443
# --- end of issue 20's block ---------------------------------------------------------

RUN_ROOT = "/tmp"
PREFIX_RE = re.compile(r"^cft-[a-z0-9]{1,10}$")
USER_PREFIX = "cftu-"
SUBID_COUNT = 65536
SANE_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"

# Root prologue run in the private mount namespace of `ip netns exec`, then
# drops to the unprivileged user.  Arguments: RUN TUN_MODE VARIANT USER CMD...
# Root prologue for rootful runs, in the private mount namespace of `ip netns
# exec`: the host's resolv.conf and hosts, and the run's own directory over
# /run/childflow (where rootful runs keep their records), so that nothing is
# written to the machine's /run.  A machine without /run/childflow gets one in
# an overlay of /run, for this command only.  Arguments: RUN CMD...
ROOT_PROLOGUE = r"""
set -eu
run=$1
shift
mount --bind "$run/host-etc/resolv.conf" /etc/resolv.conf
mount --bind "$run/host-etc/hosts" /etc/hosts
if [ ! -d /run/childflow ]; then
	ovl=$(mktemp -d "$run/ovl.XXXXXX")
	mkdir "$ovl/upper" "$ovl/work" "$ovl/upper/childflow"
	mount -t overlay cft-run -o "lowerdir=/run,upperdir=$ovl/upper,workdir=$ovl/work" /run
fi
mount --bind "$run/rootful-state" /run/childflow
exec "$@"
"""

USER_PROLOGUE = r"""
set -eu
run=$1 tun_mode=$2 variant=$3 user=$4
shift 4
mount -t tmpfs -o size=64k,mode=0755 cft-dev "$run/dev"
mknod -m "$tun_mode" "$run/dev/net-tun" c 10 200
mount --bind "$run/dev/net-tun" /dev/net/tun
case $variant in
plain)
	mount --bind "$run/host-etc/resolv.conf" /etc/resolv.conf
	mount --bind "$run/host-etc/hosts" /etc/hosts
	;;
symlink-etc)
	# /etc/hosts and /etc/resolv.conf become symlinks into $run/etc-link/:
	# an overlay over /etc whose upper layer holds only the two symlinks.
	ovl=$(mktemp -d "$run/ovl.XXXXXX")
	mkdir "$ovl/upper" "$ovl/work"
	ln -s "$run/etc-link/hosts" "$ovl/upper/hosts"
	ln -s "$run/etc-link/resolv.conf" "$ovl/upper/resolv.conf"
	mount -t overlay cft-etc -o "lowerdir=/etc,upperdir=$ovl/upper,workdir=$ovl/work" /etc
	;;
dangling-hosts|dangling-resolv.conf)
	# plain, but one of the two is a symlink to a file that does not exist
	# (an overlay over /etc whose upper layer holds only that symlink)
	name=${variant#dangling-}
	ovl=$(mktemp -d "$run/ovl.XXXXXX")
	mkdir "$ovl/upper" "$ovl/work"
	ln -s "$run/etc-missing/$name" "$ovl/upper/$name"
	mount -t overlay cft-etc -o "lowerdir=/etc,upperdir=$ovl/upper,workdir=$ovl/work" /etc
	for f in hosts resolv.conf; do
		[ "$f" = "$name" ] || mount --bind "$run/host-etc/$f" "/etc/$f"
	done
	;;
run-user)
	# plain, and a private, empty /run/user with the user's own /run/user/UID
	# (the host namespace has none; nothing is written to the machine's /run).
	# A machine without /run/user (no logind) gets one in an overlay of /run,
	# for this command only: first, so the binds below land on top of it.
	if [ ! -d /run/user ]; then
		ovl=$(mktemp -d "$run/ovl.XXXXXX")
		mkdir "$ovl/upper" "$ovl/work" "$ovl/upper/user"
		mount -t overlay cft-run -o "lowerdir=/run,upperdir=$ovl/upper,workdir=$ovl/work" /run
	fi
	mount --bind "$run/host-etc/resolv.conf" /etc/resolv.conf
	mount --bind "$run/host-etc/hosts" /etc/hosts
	mount -t tmpfs -o size=1m,mode=0755 cft-run-user /run/user
	mkdir -m 0700 "/run/user/$(id -u "$user")"
	chown "$(id -u "$user"):$(id -g "$user")" "/run/user/$(id -u "$user")"
	;;
*)
	echo "unknown variant $variant" >&2
	exit 126
	;;
esac
exec setpriv --reuid="$user" --regid="$user" --init-groups --reset-env -- "$@"
"""


# UDP echo server for the far namespace: one socket per target address (a
# wildcard-bound socket would answer from whatever address routing picks), so
# every reply comes from the address the client sent to.  Arguments: LOG PORT
# ADDR...  Each datagram appends "udp <peer-ip> <peer-port> <bytes>" to LOG.
UDP_ECHO_SERVER = r"""
import selectors, signal, socket, sys
log = open(sys.argv[1], "a", buffering=1)
port = int(sys.argv[2])
sel = selectors.DefaultSelector()
for addr in sys.argv[3:]:
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, port))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        while True:
            try:
                data, peer = key.fileobj.recvfrom(65535)
            except BlockingIOError:
                break
            key.fileobj.sendto(data, peer)
            log.write(f"udp {peer[0]} {peer[1]} {len(data)}\n")
"""

# One UDP echo round trip, for the readiness probe: ADDR PORT.
UDP_ECHO_PROBE = r"""
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"cft-probe")
sys.exit(0 if s.recv(100) == b"cft-probe" else 1)
"""


class TopologyError(RuntimeError):
    """A step of building or tearing down the topology failed."""


class CommandTimeout(AssertionError):
    """A command run by the harness did not finish within its timeout."""


# The line childflow's engine prints when its seccomp filter refused a system
# call (src/engine/isolation.h). Every Result that contains one is recorded
# here, and the _hygiene fixture (conftest.py) fails the test that saw it: the
# whole suite checks that the filter allows every call the engine makes.
SECCOMP_BLOCKED = "childflow: seccomp: blocked system call"
seccomp_blocked = []


@dataclasses.dataclass(repr=False)
class Result:
    """Outcome of a command: exit status (128+N for signal N), output."""

    argv: list
    rc: int
    out: str
    err: str

    def __post_init__(self):
        for text in (self.err, self.out):
            for line in (text or "").splitlines():
                if SECCOMP_BLOCKED in line:
                    seccomp_blocked.append(f"{self.argv!r}: {line}")

    def __str__(self):
        return (f"command {self.argv!r} exited {self.rc}\n"
                f"--- stdout ---\n{self.out[-4000:]}\n"
                f"--- stderr ---\n{self.err[-4000:]}")

    __repr__ = __str__


# --- small /proc helpers -----------------------------------------------------


def proc_starttime(pid):
    """Start time (clock ticks since boot) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[19])


def proc_state(pid):
    """One-letter state of pid (R, S, Z, ...), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()[0].decode()


def proc_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X")


def proc_uids(pid):
    """Real, effective, saved and fs uid of pid, or () if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return tuple(int(x) for x in line.split()[1:5])
    except OSError:
        pass
    return ()


def proc_ns(pid, kind="net"):
    """The namespace link of pid ("net:[4026...]"), or None."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def proc_environ(pid):
    """Environment of pid as a dict (empty if unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def all_pids():
    """Every pid currently in /proc."""
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _protected_pids():
    """This process and its ancestors: never signalled."""
    pids = set()
    pid = os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            pid = int(data[data.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError):
            break
    pids.add(1)
    return pids


def kill_pids_matching(pred, rounds=100):
    """SIGKILL every live process for which pred(pid) is true, by pid, until
    none is left (bounded).  Returns the pids that were signalled."""
    protected = _protected_pids()
    hit = set()
    for _ in range(rounds):
        victims = [p for p in all_pids()
                   if p not in protected and proc_alive(p) and pred(p)]
        if not victims:
            return sorted(hit)
        for p in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
            hit.add(p)
        _reap_children()
        time.sleep(0.05)
    return sorted(hit)


def _reap_children():
    """Reap any of our own exited children (daemons we started)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def terminate_recorded(pids, grace=3.0):
    """SIGTERM then SIGKILL processes given as (pid, starttime) pairs; a pid
    whose start time differs was recycled and is left alone."""
    live = [(p, t) for p, t in pids if proc_starttime(p) == t]
    for p, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap_children()
        live = [(p, t) for p, t in live
                if proc_starttime(p) == t and proc_alive(p)]
        if not live:
            return
        time.sleep(0.05)
    for p, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    _reap_children()


# --- locking and shell helpers ------------------------------------------------


@contextlib.contextmanager
def global_lock():
    """Serialise user/subuid/namespace-directory changes between concurrent
    runs.  flock on /tmp itself: it needs no lock file that could be left."""
    fd = os.open(RUN_ROOT, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def sh(argv, check=True, timeout=60, input=None):
    """Run a root command in the machine's namespaces; return Result."""
    p = subprocess.run(argv, input=input, capture_output=True, text=True,
                       timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    res = Result(list(argv), p.returncode, p.stdout, p.stderr)
    if check and p.returncode != 0:
        raise TopologyError(str(res))
    return res


def _write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _netns_list():
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def _netns_inode(name):
    try:
        return f"net:[{os.stat(f'/run/netns/{name}').st_ino}]"
    except OSError:
        return None


def _is_mountpoint(path):
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == path for line in f)
    except OSError:
        return False


def _subid_ranges(path):
    ranges = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    ranges.append((parts[0], int(parts[1]), int(parts[2])))
    except FileNotFoundError:
        pass
    return ranges


def _free_subid_start():
    ends = [s + n for f in ("/etc/subuid", "/etc/subgid")
            for _, s, n in _subid_ranges(f)]
    start = max([100000] + ends)
    return (start + SUBID_COUNT - 1) // SUBID_COUNT * SUBID_COUNT


def _drop_subid_lines(user):
    """Remove user's lines from /etc/subuid and /etc/subgid (caller holds the
    global lock; usermod already did it unless the user was gone)."""
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path) as f:
                lines = f.readlines()
        except FileNotFoundError:
            continue
        keep = [ln for ln in lines if ln.split(":", 1)[0] != user]
        if keep != lines:
            st = os.stat(path)
            tmp = path + ".cft-tmp"
            with open(tmp, "w") as f:
                f.writelines(keep)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            os.chown(tmp, st.st_uid, st.st_gid)
            os.replace(tmp, path)


# --- the topology ----------------------------------------------------------------


class Topology:
    """One private test network, identified by its prefix."""

    def __init__(self, prefix, owner_pid=None, big_size=BIG_SIZE):
        if not PREFIX_RE.match(prefix):
            raise ValueError(f"prefix {prefix!r} must match {PREFIX_RE.pattern}")
        self.prefix = prefix
        self.suffix = prefix[len("cft-"):]
        self.run_dir = os.path.join(RUN_ROOT, prefix)
        self.host_ns = f"{prefix}-host"
        self.world_ns = f"{prefix}-world"
        self.r1_ns = f"{prefix}-r1"
        self.r2_ns = f"{prefix}-r2"
        self.far_ns = f"{prefix}-far"
        # every namespace of the run, in creation order
        self.namespaces = (self.host_ns, self.world_ns, self.r1_ns, self.r2_ns, self.far_ns)
        # the hops a traceroute from the host namespace to the far target sees
        self.trace_hops = {"ipv4": TRACE_HOPS_V4, "ipv6": TRACE_HOPS_V6}
        self.user = USER_PREFIX + self.suffix
        self.owner_pid = owner_pid if owner_pid is not None else os.getpid()
        self.big_size = big_size
        self.state = {}
        self._procs = []
        self.files = {}
        self.logs = {
            "nginx": os.path.join(self.run_dir, "logs", "nginx-access.log"),
            "nginx-error": os.path.join(self.run_dir, "logs", "nginx-error.log"),
            "dns-a": os.path.join(self.run_dir, "logs", "dnsmasq-a.log"),
            "dns-b": os.path.join(self.run_dir, "logs", "dnsmasq-b.log"),
            "echo": os.path.join(self.run_dir, "logs", "echo.log"),
            "udp-echo": os.path.join(self.run_dir, "logs", "udp-echo.log"),
            "nginx-tls": os.path.join(self.run_dir, "logs", "nginx-tls-access.log"),  # issue 20
        }

    # -- state file ---------------------------------------------------------

    @property
    def state_path(self):
        return os.path.join(self.run_dir, "state.json")

    def _save(self):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
        os.replace(tmp, self.state_path)

    def load(self):
        """Load the state of an existing run (for down/exec from the CLI)."""
        try:
            with open(self.state_path) as f:
                self.state = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            self.state = {}
        self.files = self.state.get("files", {})
        return self.state

    @property
    def uid(self):
        return self.state.get("uid")

    @property
    def home(self):
        return os.path.join(self.run_dir, "home")

    def owner_alive(self):
        """True if the process that owns this run still exists."""
        pid = self.state.get("owner_pid")
        return bool(pid) and proc_starttime(pid) == self.state.get("owner_start")

    # -- up --------------------------------------------------------------------

    def up(self):
        """Build the whole topology; on any failure tear down what was built."""
        if os.geteuid() != 0:
            raise TopologyError("the test topology must be built as root")
        if os.path.exists(self.run_dir):
            old = Topology(self.prefix)
            old.load()
            if old.state and old.owner_alive():
                raise TopologyError(f"{self.prefix} is already up (owner pid "
                                    f"{old.state.get('owner_pid')})")
            old.down()
        try:
            self._up()
        except BaseException:
            self.down()
            raise

    def _up(self):
        os.makedirs(self.run_dir, mode=0o755)
        os.chmod(self.run_dir, 0o755)
        self.state = {
            "prefix": self.prefix,
            "owner_pid": self.owner_pid,
            "owner_start": proc_starttime(self.owner_pid),
            "user": self.user,
            "pids": [],
            "netns": [],
        }
        self._save()
        for d in ("logs", "dev", "host-etc", "etc-link", "t", "bin", "sanitizer",
                  "www/origin", "www/origin-b", "nginx/tmp"):
            os.makedirs(os.path.join(self.run_dir, d), mode=0o755, exist_ok=True)
        self._make_user()
        self._make_namespaces()
        self._make_files()
        self._start_peers()
        self._wait_ready()

    def _make_user(self):
        with global_lock():
            start = _free_subid_start()
            self.state["subid"] = [start, SUBID_COUNT]
            self._save()
            sh(["useradd", "--system", "--no-log-init", "--user-group",
                "--home-dir", self.home, "--no-create-home",
                "--shell", "/usr/sbin/nologin", self.user])
            self.state["user_created"] = True
            self._save()
            end = start + SUBID_COUNT - 1
            sh(["usermod", "--add-subuids", f"{start}-{end}",
                "--add-subgids", f"{start}-{end}", self.user])
        pw = pwd.getpwnam(self.user)
        self.state["uid"], self.state["gid"] = pw.pw_uid, pw.pw_gid
        self._save()
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        os.chown(self.home, pw.pw_uid, pw.pw_gid)
        os.chmod(self.home, 0o700)
        # The sanitizer log directory must be writable by the user.
        san = os.path.join(self.run_dir, "sanitizer")
        os.chown(san, pw.pw_uid, pw.pw_gid)

    def _make_namespaces(self):
        h, w = self.host_ns, self.world_ns
        with global_lock():
            if "run_netns_preexisting" not in self.state:
                self.state["run_netns_preexisting"] = os.path.isdir("/run/netns")
            for ns in self.namespaces:
                sh(["ip", "netns", "add", ns])
                self.state["netns"].append(ns)
                self.state.setdefault("netns_inodes", {})[ns] = _netns_inode(ns)
                self._save()
        sh(["ip", "link", "add", "eth0", "netns", h, "type", "veth",
            "peer", "name", "eth0", "netns", w])
        for ns in (h, w):
            for k, v in (("net.ipv6.conf.eth0.accept_dad", "0"),
                         ("net.ipv6.conf.eth0.router_solicitations", "0"),
                         ("net.ipv4.ip_forward", "0"),
                         ("net.ipv6.conf.all.forwarding", "0")):
                sh(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{k}={v}"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        # host: where childflow runs
        sh(["ip", "netns", "exec", h, "sysctl", "-qw",
            "net.ipv4.ping_group_range=0 2147483647"])
        sh(["ip", "-n", h, "addr", "add", f"{HOST_V4}/24", "dev", "eth0"])
        sh(["ip", "-n", h, "addr", "add", f"{HOST_V6}/64", "dev", "eth0", "nodad"])
        sh(["ip", "-n", h, "link", "set", "eth0", "up"])
        sh(["ip", "-n", h, "route", "add", "default", "via", WORLD_V4])
        sh(["ip", "-n", h, "-6", "route", "add", "default", "via", WORLD_V6])
        # world: the peers; only connected routes
        sh(["ip", "-n", w, "addr", "add", f"{WORLD_V4}/24", "dev", "eth0"])
        sh(["ip", "-n", w, "addr", "add", f"{WORLD_V6}/64", "dev", "eth0", "nodad"])
        sh(["ip", "-n", w, "link", "set", "eth0", "up"])
        for a in (ORIGIN_V4, ORIGIN_B_V4, DNS_A_V4, DNS_B_V4):
            sh(["ip", "-n", w, "addr", "add", f"{a}/32", "dev", "lo"])
        for a in (ORIGIN_V6, ORIGIN_B_V6, DNS_A_V6, DNS_B_V6):
            sh(["ip", "-n", w, "addr", "add", f"{a}/128", "dev", "lo", "nodad"])
        nft = (
            "table inet cft_blackhole {\n"
            "\tchain prerouting {\n"
            "\t\ttype filter hook prerouting priority raw; policy accept;\n"
            f"\t\tip daddr {BLACKHOLE_V4} drop\n"
            f"\t\tip6 daddr {BLACKHOLE_V6} drop\n"
            "\t}\n"
            "}\n")
        sh(["ip", "netns", "exec", w, "nft", "-f", "-"], input=nft)
        self._make_router_chain()

    def _make_router_chain(self):
        """host -> r1 -> r2 -> far (see the module docstring).  r1's upstream
        interface is a macvlan of the world's eth0 created directly in r1, so
        the world's links, routes and sysctls stay exactly as above."""
        h, w, r1, r2, far = self.namespaces
        sh(["ip", "-n", w, "link", "add", "eth0", "link", "eth0", "netns", r1,
            "type", "macvlan", "mode", "bridge"])
        sh(["ip", "link", "add", "eth1", "netns", r1, "type", "veth",
            "peer", "name", "eth0", "netns", r2])
        sh(["ip", "link", "add", "eth1", "netns", r2, "type", "veth",
            "peer", "name", "eth0", "netns", far])
        links = {r1: ("eth0", "eth1"), r2: ("eth0", "eth1"), far: ("eth0",)}
        for ns, devs in links.items():
            forward = "0" if ns == far else "1"
            for k, v in (("net.ipv4.ip_forward", forward),
                         ("net.ipv6.conf.all.forwarding", forward),
                         ("net.ipv4.icmp_ratelimit", "0"),
                         ("net.ipv6.icmp.ratelimit", "0"),
                         *((f"net.ipv6.conf.{d}.{k2}", "0") for d in devs
                           for k2 in ("accept_dad", "router_solicitations"))):
                sh(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{k}={v}"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        for ns, dev, v4, v4len, v6 in (
                (r1, "eth0", R1_UP_V4, 24, R1_UP_V6), (r1, "eth1", R1_DOWN_V4, 30, R1_DOWN_V6),
                (r2, "eth0", R2_UP_V4, 30, R2_UP_V6), (r2, "eth1", R2_DOWN_V4, 30, R2_DOWN_V6),
                (far, "eth0", FAR_LINK_V4, 30, FAR_LINK_V6)):
            sh(["ip", "-n", ns, "addr", "add", f"{v4}/{v4len}", "dev", dev])
            sh(["ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad"])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
        sh(["ip", "-n", far, "addr", "add", f"{FAR_V4}/32", "dev", "lo"])
        sh(["ip", "-n", far, "addr", "add", f"{FAR_V6}/128", "dev", "lo", "nodad"])
        # Routes: specific prefixes only, both ways; no default route anywhere
        # in the chain, so nothing can be routed beyond it.
        for dst in CHAIN_ROUTES_V4:
            sh(["ip", "-n", h, "route", "add", dst, "via", R1_UP_V4])
        for dst in CHAIN_ROUTES_V6:
            sh(["ip", "-n", h, "-6", "route", "add", dst, "via", R1_UP_V6])
        for ns, dst, via in (
                (r1, "198.51.100.244/30", R2_UP_V4), (r1, f"{FAR_V4}/32", R2_UP_V4),
                (r1, "2001:db8:5::/64", R2_UP_V6), (r1, "2001:db8:6::/64", R2_UP_V6),
                (r2, f"{FAR_V4}/32", FAR_LINK_V4), (r2, "2001:db8:6::/64", FAR_LINK_V6),
                (r2, "203.0.113.0/24", R1_DOWN_V4), (r2, "2001:db8:1::/64", R1_DOWN_V6),
                (far, "198.51.100.240/30", R2_DOWN_V4), (far, "203.0.113.0/24", R2_DOWN_V4),
                (far, "2001:db8:4::/64", R2_DOWN_V6), (far, "2001:db8:1::/64", R2_DOWN_V6)):
            sh(["ip", "-n", ns, "route", "add", dst, "via", via])

    def _make_files(self):
        r = self.run_dir
        resolv = f"# {self.host_ns}: the test host's resolver (dnsmasq A)\nnameserver {DNS_A_V4}\n"
        hosts = (f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 f"{HOST_V4}\t{self.host_ns}\n")
        for d in ("host-etc", "etc-link"):
            _write(os.path.join(r, d, "resolv.conf"), resolv)
            _write(os.path.join(r, d, "hosts"), hosts)
        www = os.path.join(r, "www", "origin")
        _write(os.path.join(www, "index.html"), ORIGIN_BODY)
        _write(os.path.join(www, "small.txt"), "a small file\n")
        _write(os.path.join(r, "www", "origin-b", "index.html"), ORIGIN_B_BODY)
        files = {}
        for name, size in (("1k.bin", 1024), ("64k.bin", 65536), ("big", self.big_size)):
            h = hashlib.sha256()
            path = os.path.join(www, name)
            with open(path, "wb") as f:
                left = size
                while left:
                    chunk = os.urandom(min(left, 1 << 20))
                    h.update(chunk)
                    f.write(chunk)
                    left -= len(chunk)
            os.chmod(path, 0o644)
            files[name] = {"size": size, "sha256": h.hexdigest()}
        files["index.html"] = {"size": len(ORIGIN_BODY),
                               "sha256": hashlib.sha256(ORIGIN_BODY.encode()).hexdigest()}
        self.files = files
        self.state["files"] = files
        self._save()
        logs = os.path.join(r, "logs")
        nginx_conf = f"""
worker_processes 1;
daemon off;
master_process on;
user nobody nogroup;
pid {r}/nginx/nginx.pid;
error_log {logs}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format cft '$remote_addr $server_addr $server_port "$request" $status $body_bytes_sent';
    access_log {logs}/nginx-access.log cft;
    client_body_temp_path {r}/nginx/tmp/body;
    proxy_temp_path {r}/nginx/tmp/proxy;
    fastcgi_temp_path {r}/nginx/tmp/fastcgi;
    uwsgi_temp_path {r}/nginx/tmp/uwsgi;
    scgi_temp_path {r}/nginx/tmp/scgi;
    default_type application/octet-stream;
    types {{ text/plain txt; text/html html; }}
    sendfile on;
    keepalive_timeout 10;
    server {{
        listen {ORIGIN_V4}:{HTTP_PORT} default_server;
        listen [{ORIGIN_V6}]:{HTTP_PORT} default_server;
        server_name _;
        root {www};
        index index.html;
    }}
    server {{
        listen {ORIGIN_B_V4}:{HTTP_PORT};
        listen [{ORIGIN_B_V6}]:{HTTP_PORT};
        server_name _;
        root {r}/www/origin-b;
        index index.html;
    }}
{self._twin_tls_server(www, logs)}
}}
"""
        _write(os.path.join(r, "nginx", "nginx.conf"), nginx_conf)

    # --- issue 20: the TLS server of the two names (TWIN_NAME above) ---------------------

    def _twin_tls_server(self, www, logs):
        """Write the certificate naming ORIGIN_NAME and TWIN_NAME; return
        nginx's server block serving the origin's files over TLS."""
        d = os.path.join(self.run_dir, "nginx")
        sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", f"/CN={ORIGIN_NAME}",
            "-addext", f"subjectAltName=DNS:{ORIGIN_NAME},DNS:{TWIN_NAME}",
            "-keyout", f"{d}/twin.key", "-out", f"{d}/twin.pem"])
        return f"""    log_format cfttls '$ssl_server_name $host "$request" $status';
    server {{
        listen {ORIGIN_V4}:{TLS_PORT} ssl;
        listen [{ORIGIN_V6}]:{TLS_PORT} ssl;
        server_name _;
        ssl_certificate {d}/twin.pem;
        ssl_certificate_key {d}/twin.key;
        access_log {logs}/nginx-tls-access.log cfttls;
        root {www};
        index index.html;
    }}"""

    # --- end of issue 20's block ------------------------------------------------------

    def _spawn_world(self, name, argv):
        return self._spawn_in(self.world_ns, name, argv)

    def _spawn_in(self, ns, name, argv):
        out = open(os.path.join(self.run_dir, "logs", f"{name}.out"), "ab")
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
        out.close()
        self._procs.append(p)
        self.state["pids"].append([p.pid, proc_starttime(p.pid), name])
        self._save()
        return p

    def _dnsmasq_argv(self, log, v4, v6, records):
        argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                "--no-hosts", "--no-resolv", "--no-poll", "--bind-interfaces",
                f"--listen-address={v4},{v6}", "--port=53",
                "--user=nobody", "--group=nogroup", "--pid-file=",
                "--log-queries", f"--log-facility={log}", "--local=/#/"]
        argv += [f"--host-record={rec}" for rec in records]
        return argv

    def _start_peers(self):
        r = self.run_dir
        self._spawn_world("nginx", ["nginx", "-p", f"{r}/nginx/", "-e",
                                    self.logs["nginx-error"], "-c", f"{r}/nginx/nginx.conf"])
        self._spawn_world("dnsmasq-a", self._dnsmasq_argv(
            self.logs["dns-a"], DNS_A_V4, DNS_A_V6,
            [f"{ORIGIN_NAME},{ORIGIN_V4},{ORIGIN_V6}", f"{V6ONLY_NAME},{ORIGIN_V6}",
             f"{ALLOWED_NAME},{ORIGIN_V4}",
             f"{TWIN_NAME},{ORIGIN_V4},{ORIGIN_V6}"]))  # issue 20
        self._spawn_world("dnsmasq-b", self._dnsmasq_argv(
            self.logs["dns-b"], DNS_B_V4, DNS_B_V6,
            [f"{ORIGIN_NAME},{ORIGIN_B_V4},{ORIGIN_B_V6}",
             f"{POISON_NAME},{ORIGIN_B_V4},{ORIGIN_B_V6}"]))
        self._spawn_world("echo", [PYTHON, "-u", os.path.join(HERE, "peers.py"),
                                   "--log", self.logs["echo"], ORIGIN_V4, ORIGIN_V6])
        self._spawn_in(self.far_ns, "udp-echo", [
            PYTHON, "-u", "-c", UDP_ECHO_SERVER, self.logs["udp-echo"], str(UDP_ECHO_PORT),
            FAR_V4, FAR_V6])

    def _probe(self):
        """One readiness round from the host namespace; returns what failed."""
        checks = {
            f"http {ORIGIN_V4}": ["curl", "-sS", "--max-time", "2", f"http://{ORIGIN_V4}/"],
            f"http {ORIGIN_V6}": ["curl", "-sS", "--max-time", "2", f"http://[{ORIGIN_V6}]/"],
            f"http {ORIGIN_B_V4}": ["curl", "-sS", "--max-time", "2", f"http://{ORIGIN_B_V4}/"],
        }
        for a in (DNS_A_V4, DNS_A_V6, DNS_B_V4, DNS_B_V6):
            checks[f"dns {a}"] = ["dig", "+short", "+time=1", "+tries=1", f"@{a}", ORIGIN_NAME]
        for a in (ORIGIN_V4, ORIGIN_V6):
            for port in (ECHO_PORT, DISCARD_PORT):
                checks[f"tcp {a} {port}"] = ["nc", "-z", "-w", "2", a, str(port)]
        for a in (FAR_V4, FAR_V6):
            checks[f"udp echo {a}"] = [PYTHON, "-c", UDP_ECHO_PROBE, a, str(UDP_ECHO_PORT)]
        failed = []
        for what, argv in checks.items():
            res = sh(["ip", "netns", "exec", self.host_ns, *argv], check=False)
            if res.rc != 0 or (argv[0] not in ("nc", PYTHON) and not res.out.strip()):
                failed.append(what)
        return failed

    def _wait_ready(self, rounds=100):
        failed = []
        for _ in range(rounds):
            for p in self._procs:
                if p.poll() is not None:
                    name = next(n for pid, _, n in self.state["pids"] if pid == p.pid)
                    out = os.path.join(self.run_dir, "logs", f"{name}.out")
                    with open(out, errors="replace") as f:
                        raise TopologyError(f"{name} exited {p.returncode}:\n{f.read()}")
            failed = self._probe()
            if not failed:
                return
            time.sleep(0.1)
        raise TopologyError(f"peers not ready: {', '.join(failed)}")

    # -- down ------------------------------------------------------------------

    def _belongs(self, pid):
        """True if pid is this run's: owned by its user (or subordinate ids)
        or inside one of its namespaces."""
        uid = self.state.get("uid")
        sub = self.state.get("subid")
        uids = proc_uids(pid)
        if uid is not None and uid in uids:
            return True
        if sub and any(sub[0] <= u < sub[0] + sub[1] for u in uids):
            return True
        inodes = [i for i in self.state.get("netns_inodes", {}).values() if i]
        return bool(inodes) and proc_ns(pid) in inodes

    def kill_user_processes(self):
        """SIGKILL every process of the run's user (and subordinate ids);
        returns the pids that had to be killed."""
        uid = self.state.get("uid")
        sub = self.state.get("subid")
        if uid is None:
            return []

        def mine(pid):
            uids = proc_uids(pid)
            return uid in uids or bool(sub and any(sub[0] <= u < sub[0] + sub[1] for u in uids))

        return kill_pids_matching(mine)

    def down(self):
        """Remove everything of this run; returns a list of problems (empty
        when the machine is clean)."""
        if not self.state:
            self.load()
        problems = []

        def step(what, fn):
            try:
                fn()
            except Exception as e:  # keep going: remove as much as possible
                problems.append(f"{what}: {e}")

        step("daemons", lambda: terminate_recorded(
            [(p, t) for p, t, *_ in self.state.get("pids", [])]))
        step("processes", lambda: kill_pids_matching(self._belongs))
        for p in self._procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=5)
        self._procs = []
        step("namespaces", self._remove_namespaces)
        step("user", self._remove_user)
        step("run dir", self._remove_run_dir)
        return problems

    def _remove_namespaces(self):
        with global_lock():
            for ns in self.namespaces:
                if ns in _netns_list():
                    sh(["ip", "netns", "del", ns])
            # /run/netns is a mount point that `ip netns add` creates; undo it
            # if this run created it and nobody else uses it now.
            preexisting = self.state.get("run_netns_preexisting", True)
            if not preexisting and os.path.isdir("/run/netns") and not _netns_list():
                if _is_mountpoint("/run/netns"):
                    sh(["umount", "/run/netns"], check=False)
                if not _is_mountpoint("/run/netns"):
                    with contextlib.suppress(OSError):
                        os.rmdir("/run/netns")

    def _remove_user(self):
        with global_lock():
            try:
                pwd.getpwnam(self.user)
                exists = True
            except KeyError:
                exists = False
            if exists:
                sub = self.state.get("subid")
                if sub:
                    rng = f"{sub[0]}-{sub[0] + sub[1] - 1}"
                    sh(["usermod", "--del-subuids", rng, "--del-subgids", rng, self.user],
                       check=False)
                sh(["userdel", self.user])
            if sh(["getent", "group", self.user], check=False).rc == 0:
                sh(["groupdel", self.user], check=False)
            _drop_subid_lines(self.user)

    RUN_DIR_ENTRIES = {"state.json", "state.json.tmp", "logs", "dev", "host-etc", "etc-link",
                       "t", "bin", "sanitizer", "www", "nginx", "home", "demo.err",
                       "rootful-state"}

    def _remove_run_dir(self):
        if not os.path.isdir(self.run_dir):
            return
        entries = set(os.listdir(self.run_dir))
        strange = {e for e in entries - self.RUN_DIR_ENTRIES if not e.startswith("ovl.")}
        if "state.json" not in entries and strange:
            raise TopologyError(f"{self.run_dir} does not look like a test run "
                                f"({sorted(strange)[:5]}): not removed")
        # A private-mount-namespace tmpfs can never be seen here, but be safe:
        # never recurse into something mounted.
        with open("/proc/self/mountinfo") as f:
            mounted = [ln.split()[4] for ln in f]
        inside = [m for m in mounted if m == self.run_dir or m.startswith(self.run_dir + "/")]
        if inside:
            raise TopologyError(f"mounts under {self.run_dir}: {inside}")
        shutil.rmtree(self.run_dir)

    # -- running commands -------------------------------------------------------

    def user_env(self, extra=None):
        """The environment commands run with as the unprivileged user."""
        env = {
            "HOME": self.home,
            "USER": self.user,
            "LOGNAME": self.user,
            "PATH": SANE_PATH,
            "LANG": "C.UTF-8",
            "TMPDIR": self.home,
        }
        env.update(extra or {})
        return env

    def user_argv(self, argv, env=None, tun_mode="0666", variant="plain"):
        """argv that runs argv in the host namespace as the user."""
        if not self.state.get("uid"):
            raise TopologyError("topology is not up")
        if not re.fullmatch(r"0[0-7]{3}", tun_mode):
            raise ValueError(f"bad tun mode {tun_mode!r}")
        envs = [f"{k}={v}" for k, v in self.user_env(env).items()]
        return ["ip", "netns", "exec", self.host_ns, "/bin/sh", "-c", USER_PROLOGUE,
                "cft-prologue", self.run_dir, tun_mode, variant, self.user,
                "/usr/bin/env", "-i", *envs, *argv]

    def spawn_user(self, argv, env=None, tun_mode="0666", variant="plain",
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL):
        """Start argv as the user in the host namespace; returns the Popen.
        After the prologue the process keeps this pid (everything execs)."""
        return subprocess.Popen(self.user_argv(argv, env, tun_mode, variant),
                                stdin=stdin, stdout=stdout, stderr=stderr,
                                start_new_session=True, close_fds=True)

    def run_user(self, argv, timeout=60, env=None, input=None, tun_mode="0666",
                 variant="plain"):
        """Run argv as the user in the host namespace; returns Result.
        Raises CommandTimeout (an AssertionError) after timeout seconds."""
        p = self.spawn_user(argv, env, tun_mode, variant,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
        return communicate(p, argv, timeout, input)

    def root_argv(self, argv, env=None):
        """argv that runs argv as root in the host namespace, with the host's
        resolv.conf and hosts and a /run/childflow of the run's own (the
        rootful backend's run records; see ROOT_PROLOGUE), in a UTS
        namespace of its own, with only @env (and PATH) in its environment."""
        envs = {"PATH": SANE_PATH, "LANG": "C.UTF-8", "HOME": "/root", **(env or {})}
        os.makedirs(os.path.join(self.run_dir, "rootful-state"), mode=0o700, exist_ok=True)
        return ["ip", "netns", "exec", self.host_ns, "unshare", "--uts", "--", "/bin/sh", "-c",
                ROOT_PROLOGUE, "cft-root-prologue", self.run_dir,
                "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in envs.items()], *argv]

    def run_root(self, argv, env=None, timeout=60):
        """Run root_argv(argv); returns Result."""
        p = self.spawn_root(argv, env)
        return communicate(p, argv, timeout, None)

    def spawn_root(self, argv, env=None):
        """Start root_argv(argv) in a session of its own; returns the Popen
        (the prologue execs: its pid becomes the command's)."""
        return subprocess.Popen(self.root_argv(argv, env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, close_fds=True)

    def run_host_root(self, argv, timeout=60, check=False):
        """Run argv as root in the host namespace (no prologue)."""
        return sh(["ip", "netns", "exec", self.host_ns, *argv], check=check, timeout=timeout)

    def run_world(self, argv, timeout=60, check=False):
        """Run argv as root in the world namespace."""
        return sh(["ip", "netns", "exec", self.world_ns, *argv], check=check, timeout=timeout)

    def run_in(self, ns, argv, timeout=60, check=False):
        """Run argv as root in one of the run's namespaces (self.r1_ns, ...)."""
        if ns not in self.namespaces:
            raise ValueError(f"{ns!r} is not a namespace of {self.prefix}")
        return sh(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout)

    def user_processes(self):
        """Live pids owned by the run's user (or its subordinate ids)."""
        uid, sub = self.state.get("uid"), self.state.get("subid")
        out = []
        for p in all_pids():
            uids = proc_uids(p)
            if not uids or not proc_alive(p):
                continue
            if uid in uids or (sub and any(sub[0] <= u < sub[0] + sub[1] for u in uids)):
                out.append(p)
        return out

    def make_user_dir(self, name):
        """A fresh scratch directory under the run dir, owned by the user."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100]
        base = os.path.join(self.run_dir, "t", safe)
        path, n = base, 1
        while os.path.exists(path):
            n += 1
            path = f"{base}.{n}"
        os.mkdir(path, 0o755)
        os.chown(path, self.state["uid"], self.state["gid"])
        return path

    # -- peers' logs ----------------------------------------------------------------

    def log_mark(self, name):
        """Current size of a peer log: pass it to log_since()."""
        try:
            return os.path.getsize(self.logs[name])
        except FileNotFoundError:
            return 0

    def log_clear(self, name):
        """Empty a peer log (the peers append, so this is safe while they run)."""
        with open(self.logs[name], "r+b") as f:
            f.truncate(0)

    def log_since(self, name, mark):
        """Text appended to a peer log since mark."""
        try:
            with open(self.logs[name], "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, name, mark, pattern, timeout=10.0):
        """Wait until text matching regex pattern appears in a peer log after
        mark (peers write their logs asynchronously); returns the matching
        line, or None if it never appears."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_since(name, mark).splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)


def _decode(b):
    return b.decode(errors="replace") if b else ""


def communicate(p, argv, timeout, input=None):
    """Wait for Popen p (started with start_new_session) and collect its
    output.  On timeout its process group is killed and CommandTimeout is
    raised.  If the command exited but something it left running still holds
    its stdout/stderr open, the result is returned anyway (with a note in
    err) instead of waiting for that leftover."""
    data = input.encode() if isinstance(input, str) else input
    deadline = time.monotonic() + timeout
    exited_at = None
    partial = None
    while True:
        try:
            out, err = p.communicate(input=data, timeout=1.0)
            break
        except subprocess.TimeoutExpired as e:
            partial = e
            data = None  # already handed over; never sent twice
        now = time.monotonic()
        if p.poll() is not None:
            exited_at = exited_at or now
            if now - exited_at >= 3.0:
                out, err = _abandon(p, partial)
                note = "\n[harness: the command exited, but a leftover process kept its output open]\n"
                return Result(list(argv), _rc(p), _decode(out), _decode(err) + note)
        elif now >= deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            try:
                out, err = p.communicate(timeout=5)
            except subprocess.TimeoutExpired as e:
                out, err = _abandon(p, e)
            raise CommandTimeout(f"timed out after {timeout}s: {argv!r}\n"
                                 + str(Result(list(argv), -1, _decode(out), _decode(err))))
    return Result(list(argv), _rc(p), _decode(out), _decode(err))


def _rc(p):
    return p.returncode if p.returncode >= 0 else 128 - p.returncode


def _abandon(p, partial):
    """Stop reading p's pipes; returns the output collected so far."""
    out = (partial.output or b"") if partial else b""
    err = (partial.stderr or b"") if partial else b""
    for f in (p.stdin, p.stdout, p.stderr):
        if f:
            with contextlib.suppress(OSError):
                f.close()
    p.wait()
    return out, err


# --- sweep ------------------------------------------------------------------------


def sweep(everything=False):
    """Tear down runs whose owner is gone (all runs with everything=True);
    returns a list of (what, problems)."""
    report = []
    prefixes = set()
    for d in os.listdir(RUN_ROOT):
        if PREFIX_RE.match(d) and os.path.isdir(os.path.join(RUN_ROOT, d)):
            prefixes.add(d)
    for ns in _netns_list():
        m = re.match(r"^(cft-[a-z0-9]{1,10})-(host|world|r1|r2|far)$", ns)
        if m:
            prefixes.add(m.group(1))
    with contextlib.suppress(FileNotFoundError):
        for ent in pwd.getpwall():
            if ent.pw_name.startswith(USER_PREFIX):
                prefixes.add("cft-" + ent.pw_name[len(USER_PREFIX):])
    with contextlib.suppress(FileNotFoundError):
        for d in os.listdir("/etc/netns"):
            if d.startswith("cft-"):
                shutil.rmtree(os.path.join("/etc/netns", d), ignore_errors=True)
                report.append((f"/etc/netns/{d}", []))
    for prefix in sorted(prefixes):
        if not PREFIX_RE.match(prefix):
            continue
        t = Topology(prefix)
        t.load()
        if not everything and t.state and t.owner_alive():
            continue
        if not t.state:
            # no state file: the user and namespaces are still found by name
            try:
                pw = pwd.getpwnam(t.user)
                t.state["uid"] = pw.pw_uid
            except KeyError:
                pass
            t.state["netns_inodes"] = {ns: _netns_inode(ns) for ns in t.namespaces
                                       if _netns_inode(ns)}
            t.state["run_netns_preexisting"] = True
        report.append((prefix, t.down()))
    return report


# --- CLI --------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="build the topology")
    p_up.add_argument("--prefix", required=True)
    p_up.add_argument("--owner", type=int, default=None,
                      help="pid whose death makes the run sweepable (default: parent)")
    p_up.add_argument("--big-size", type=int, default=BIG_SIZE,
                      help="size in bytes of the origin's /big file (default 100 MiB)")
    p_down = sub.add_parser("down", help="tear the topology down")
    p_down.add_argument("--prefix", required=True)
    p_exec = sub.add_parser("exec", help="run a command in the host namespace")
    p_exec.add_argument("--prefix", required=True)
    p_exec.add_argument("--as-root", action="store_true")
    p_exec.add_argument("--timeout", type=float, default=300)
    p_exec.add_argument("command", nargs=argparse.REMAINDER)
    p_info = sub.add_parser("info", help="print the run's state as JSON")
    p_info.add_argument("--prefix", required=True)
    p_sweep = sub.add_parser("sweep", help="remove leftovers of dead runs")
    p_sweep.add_argument("--all", action="store_true", help="also runs whose owner is alive")
    a = ap.parse_args(argv)

    if a.cmd == "up":
        t = Topology(a.prefix, owner_pid=a.owner if a.owner else os.getppid(),
                     big_size=a.big_size)
        t.up()
        print(f"{a.prefix}: up (run dir {t.run_dir}, user {t.user}, "
              f"namespaces {' '.join(t.namespaces)})")
        return 0
    if a.cmd == "down":
        t = Topology(a.prefix)
        problems = t.down()
        for pr in problems:
            print(f"{a.prefix}: {pr}", file=sys.stderr)
        return 1 if problems else 0
    if a.cmd == "info":
        t = Topology(a.prefix)
        print(json.dumps(t.load(), indent=1))
        return 0
    if a.cmd == "exec":
        t = Topology(a.prefix)
        t.load()
        cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
        if not cmd:
            ap.error("exec needs a command")
        if a.as_root:
            argv2 = ["ip", "netns", "exec", t.host_ns, *cmd]
        else:
            argv2 = t.user_argv(cmd)
        p = subprocess.Popen(argv2, start_new_session=True)
        try:
            p.wait(timeout=a.timeout)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return 124
        return p.returncode if p.returncode >= 0 else 128 - p.returncode
    if a.cmd == "sweep":
        problems = 0
        for what, probs in sweep(everything=a.all):
            print(f"swept {what}" + ("" if not probs else ": " + "; ".join(probs)))
            problems += len(probs)
        return 1 if problems else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
