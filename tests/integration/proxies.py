"""Real upstream proxies in the test world, for childflow's --proxy tests.

Theory of operation
-------------------
The proxies run as root in the topology's WORLD namespace, on addresses this
module adds to the world's ``lo`` (198.51.100.20-22 and 2001:db8:2::20,
documentation ranges only) and removes again at teardown:

==================== ============================================ ===============
listens on           what                                         the origin sees
                                                                  it connect from
==================== ============================================ ===============
198.51.100.20:3128   tinyproxy, open                              198.51.100.20 or
                                                                  2001:db8:2::20
[2001:db8:2::20]:3128  a second open tinyproxy, v6 only (one      (same)
                     process on both families once logged a
                     garbled v6 client address)
198.51.100.20:3129   tinyproxy, ``BasicAuth user pass``           (same)
198.51.100.21:1080   microsocks ``-u alice -P s3cret -b`` itself  198.51.100.21
                                                                  (v4 targets)
198.51.100.22:3443   stunnel [good]: TLS in front of the open     tinyproxy's
                     tinyproxy, self-signed, SAN IP:198.51.100.22
198.51.100.22:3444   stunnel [wrongname]: same backend, cert for  tinyproxy's
                     DNS:wrong.test, IP:198.51.100.23
198.51.100.22:3445   stunnel [deadend]: TLS, then its backend     -
                     198.51.100.20:1 refuses
198.51.100.10:3446,  stunnel [byname]/[byname6] on the origin's   tinyproxy's
[2001:db8:2::10]:3446  own addresses, so ``https://origin.test:
                     3446`` names a proxy; cert SAN DNS:origin.test
==================== ============================================ ===============

198.51.100.22:25 and :587 are not proxies but a target: a server that speaks
first (BANNER_SERVER; log ``banner PORT PEER BYTES`` after each connection).
Nothing listens on port 1 (CLOSED_PORT) of these addresses: an unreachable
proxy.  Stunnel connects to tinyproxy from 198.51.100.22 (``local``).

All three tinyproxy instances allow CONNECT to ports 80, 81, 7, 9, 25 and 443 only, and accept
clients from 203.0.113.0/24 (the host namespace), 198.51.100.0/24 (stunnel)
and 2001:db8::/32.  tinyproxy and microsocks resolve names themselves, so
each runs in a private mount namespace inside the world namespace where
/etc/resolv.conf is bind-mounted from a file naming dnsmasq A
(``unshare -m sh -c 'mount --bind F /etc/resolv.conf; exec DAEMON ...'``;
``ip netns exec``, ``unshare`` and ``sh`` all exec, so the pid we started is
the daemon's).  Outgoing connections are bound to the proxy's own address
(tinyproxy ``Bind``, microsocks ``-b``), so the origin's access log names
the proxy that connected.

Every daemon writes a log in this run's directory (``<run>/t/proxies/``):
tinyproxy (``Connect (file descriptor N): CLIENT`` and ``Request (file
descriptor N): CONNECT HOST:PORT HTTP/1.1`` lines), microsocks (``client[N]
CLIENT: connected to HOST:PORT``, successful connects only), stunnel
(``Service [good] accepted connection from ...`` and TLS errors).

Fixtures (import them into a test module: ``from proxies import
proxy_world, tinyproxy, ...``; pytest_plugins is not allowed outside the
root conftest).  proxy_world is module-scoped: the daemons and addresses
exist only while a module that uses them runs (starting them takes well
under a second), so every other test sees the world exactly as the
topology built it.  Teardown stops what it started, by pid, removes the
addresses and files; the topology's teardown would kill anything left in
its namespaces anyway.

  proxy_world      the ProxyWorld (addresses, logs, cert paths)
  tinyproxy        Proxy: the open tinyproxy (http://198.51.100.20:3128)
  tinyproxy_v6     Proxy: the open tinyproxy on http://[2001:db8:2::20]:3128
  tinyproxy_auth   Proxy: the BasicAuth tinyproxy (port 3129, no userinfo)
  microsocks       Proxy: the SOCKS5 proxy (socks5://198.51.100.21:1080)
  stunnel          Proxy: https://198.51.100.22:3443 (self-signed)
  stunnel_wrong    Proxy: https://198.51.100.22:3444 (cert for another name)
  (ProxyWorld.stunnel_by_name is https://origin.test:3446)

Helpers: assert_tunnelled() (the proxy's own log shows the tunnel),
run_with_flow_log(), flow_events(), connect_errors(), proxy_args() (one
working configuration per kind: http, socks5, https), CONNECT_ERRNO (a
client printing the errno its connect() got).
"""

import contextlib
import dataclasses
import json
import os
import pwd
import re
import shutil
import subprocess
import time

import pytest

import topology as T

TINYPROXY_V4 = "198.51.100.20"
TINYPROXY_V6 = "2001:db8:2::20"
SOCKS_V4 = "198.51.100.21"
STUNNEL_V4 = "198.51.100.22"
WRONG_CERT_IP = "198.51.100.23"  # only named in the wrong certificate; not assigned
WRONG_CERT_NAME = "wrong.test"

TINYPROXY_PORT = 3128
TINYPROXY_AUTH_PORT = 3129
SOCKS_PORT = 1080
STUNNEL_PORT = 3443
STUNNEL_WRONG_PORT = 3444
STUNNEL_DEADEND_PORT = 3445  # TLS accepted, then the backend connect fails
# on the origin's own addresses, so that the proxy can be named origin.test
# (the host resolves it through dnsmasq A); its certificate names only that
STUNNEL_NAME_PORT = 3446
# stunnel's service names by port (the name-addressed one listens twice)
STUNNEL_SERVICES = {STUNNEL_PORT: ("good",), STUNNEL_WRONG_PORT: ("wrongname",),
                    STUNNEL_DEADEND_PORT: ("deadend",), STUNNEL_NAME_PORT: ("byname", "byname6")}
CLOSED_PORT = 1  # nothing listens there on the proxies' addresses

HTTP_USER, HTTP_PASSWORD = "user", "pass"
SOCKS_USER, SOCKS_PASSWORD = "alice", "s3cret"
# a server that speaks first (like SMTP or SSH), on the stunnel address
BANNER_V4, BANNER_PORT = STUNNEL_V4, 25
# the same server on a port the tinyproxies do not allow CONNECT to
BANNER_REFUSED_PORT = 587
BANNER = "220 cft-banner ready"
CONNECT_PORTS = (T.HTTP_PORT, T.CLOSED_PORT, T.ECHO_PORT, T.DISCARD_PORT, BANNER_PORT,
                 T.TLS_PORT)  # TLS_PORT: issue 20's SNI checks through the proxies

ADDED_ADDRESSES = (f"{TINYPROXY_V4}/32", f"{SOCKS_V4}/32", f"{STUNNEL_V4}/32",
                   f"{TINYPROXY_V6}/128")

# The banner server: on accept it sends BANNER + CRLF at once, then echoes
# until EOF; each finished connection appends "banner <port> <peer-ip>
# <bytes-in>".  Arguments: LOG ADDR BANNER PORT...
BANNER_SERVER = r"""
import asyncio, signal, sys
log = open(sys.argv[1], "a", buffering=1)

async def serve(reader, writer):
    n = 0
    writer.write(sys.argv[3].encode() + b"\r\n")
    try:
        await writer.drain()
        while data := await reader.read(65536):
            n += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        port = writer.get_extra_info("sockname")[1]
        log.write(f"banner {port} {writer.get_extra_info('peername')[0]} {n}\n")
        writer.close()

async def main():
    servers = [await asyncio.start_server(serve, sys.argv[2], int(p)) for p in sys.argv[4:]]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for server in servers:
        server.close()

asyncio.run(main())
"""

# Runs as root in a new private mount namespace inside the world namespace.
# Arguments: RESOLV_CONF DAEMON ARGS...
RESOLV_PROLOGUE = 'mount --bind "$1" /etc/resolv.conf; shift; exec "$@"'


@dataclasses.dataclass(frozen=True)
class Proxy:
    """One proxy as the tests see it."""

    name: str        # its log's key in ProxyWorld.logs
    url: str         # the -p URI, without credentials
    host: str        # address in the URI
    port: int
    egress: tuple    # addresses the origin sees this proxy (or its backend) connect from
    backend: str = ""  # log key of the proxy behind it (stunnel -> tinyproxy), if any


class ProxyWorld:
    """The proxies of one topology: start(), stop(), logs."""

    def __init__(self, topo):
        self.topo = topo
        self.dir = os.path.join(topo.run_dir, "t", "proxies")
        self.procs = {}
        self.added = []
        self.logs = {name: os.path.join(self.dir, f"{name}.log")
                     for name in ("tinyproxy", "tinyproxy-v6", "tinyproxy-auth", "microsocks",
                                  "stunnel", "banner")}
        self.resolv_conf = os.path.join(self.dir, "resolv.conf")
        self.cert = os.path.join(self.dir, "tls-good.pem")
        self.wrong_cert = os.path.join(self.dir, "tls-wrong.pem")
        self.name_cert = os.path.join(self.dir, "tls-name.pem")
        egress_tp = (TINYPROXY_V4, TINYPROXY_V6)
        self.tinyproxy = Proxy("tinyproxy", f"http://{TINYPROXY_V4}:{TINYPROXY_PORT}",
                               TINYPROXY_V4, TINYPROXY_PORT, egress_tp)
        self.tinyproxy_v6 = Proxy("tinyproxy-v6", f"http://[{TINYPROXY_V6}]:{TINYPROXY_PORT}",
                                  TINYPROXY_V6, TINYPROXY_PORT, egress_tp)
        self.tinyproxy_auth = Proxy("tinyproxy-auth",
                                    f"http://{TINYPROXY_V4}:{TINYPROXY_AUTH_PORT}",
                                    TINYPROXY_V4, TINYPROXY_AUTH_PORT, egress_tp)
        self.microsocks = Proxy("microsocks", f"socks5://{SOCKS_V4}:{SOCKS_PORT}",
                                SOCKS_V4, SOCKS_PORT, (SOCKS_V4,))
        self.stunnel = Proxy("stunnel", f"https://{STUNNEL_V4}:{STUNNEL_PORT}",
                             STUNNEL_V4, STUNNEL_PORT, egress_tp, backend="tinyproxy")
        self.stunnel_by_name = Proxy("stunnel", f"https://{T.ORIGIN_NAME}:{STUNNEL_NAME_PORT}",
                                     T.ORIGIN_NAME, STUNNEL_NAME_PORT, egress_tp,
                                     backend="tinyproxy")
        self.stunnel_wrong = Proxy("stunnel", f"https://{STUNNEL_V4}:{STUNNEL_WRONG_PORT}",
                                   STUNNEL_V4, STUNNEL_WRONG_PORT, egress_tp,
                                   backend="tinyproxy")

    # -- start -------------------------------------------------------------------

    def start(self):
        """Add the addresses, write configs and certificates, start the
        daemons and wait until every port listens; on failure stop what
        was started and raise."""
        try:
            self._start()
        except BaseException:
            problems = self.stop()
            if problems:
                print(f"proxy teardown after a failed start: {problems}")
            raise

    def _start(self):
        os.makedirs(self.dir, mode=0o755)
        for addr in ADDED_ADDRESSES:
            extra = ["nodad"] if ":" in addr else []
            T.sh(["ip", "-n", self.topo.world_ns, "addr", "add", addr, "dev", "lo", *extra])
            self.added.append(addr)
        self._write(self.resolv_conf, f"nameserver {T.DNS_A_V4}\n")
        for name in self.logs:
            self._write(self.logs[name], "")
        nobody = pwd.getpwnam("nobody")
        for name in ("tinyproxy", "tinyproxy-v6", "tinyproxy-auth"):
            os.chown(self.logs[name], nobody.pw_uid, nobody.pw_gid)
        self._make_cert("tls-good", f"/CN={STUNNEL_V4}", f"IP:{STUNNEL_V4}")
        self._make_cert("tls-wrong", f"/CN={WRONG_CERT_NAME}",
                        f"DNS:{WRONG_CERT_NAME},IP:{WRONG_CERT_IP}")
        self._make_cert("tls-name", f"/CN={T.ORIGIN_NAME}", f"DNS:{T.ORIGIN_NAME}")
        self._write_configs()
        cfg = lambda name: os.path.join(self.dir, f"{name}.conf")  # noqa: E731
        self._spawn("tinyproxy", ["tinyproxy", "-d", "-c", cfg("tinyproxy")], resolv=True)
        for name in ("tinyproxy-v6", "tinyproxy-auth"):
            self._spawn(name, ["tinyproxy", "-d", "-c", cfg(name)], resolv=True)
        self._spawn("microsocks", ["microsocks", "-i", SOCKS_V4, "-p", str(SOCKS_PORT),
                                   "-u", SOCKS_USER, "-P", SOCKS_PASSWORD, "-b", SOCKS_V4],
                    resolv=True, log=self.logs["microsocks"])
        self._spawn("stunnel", ["stunnel4", cfg("stunnel")], resolv=False)
        self._spawn("banner", [T.PYTHON, "-c", BANNER_SERVER, self.logs["banner"], BANNER_V4,
                               BANNER, str(BANNER_PORT), str(BANNER_REFUSED_PORT)],
                    resolv=False)
        self._wait_listening({
            (TINYPROXY_V4, TINYPROXY_PORT), (TINYPROXY_V6, TINYPROXY_PORT),
            (TINYPROXY_V4, TINYPROXY_AUTH_PORT), (SOCKS_V4, SOCKS_PORT),
            (STUNNEL_V4, STUNNEL_PORT), (STUNNEL_V4, STUNNEL_WRONG_PORT),
            (STUNNEL_V4, STUNNEL_DEADEND_PORT), (T.ORIGIN_V4, STUNNEL_NAME_PORT),
            (T.ORIGIN_V6, STUNNEL_NAME_PORT), (BANNER_V4, BANNER_PORT),
            (BANNER_V4, BANNER_REFUSED_PORT)})

    @staticmethod
    def _write(path, text, mode=0o644):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def _make_cert(self, name, subject, san):
        pem = os.path.join(self.dir, f"{name}.pem")
        key = os.path.join(self.dir, f"{name}.key")
        T.sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
              "-keyout", key, "-out", pem, "-subj", subject,
              "-addext", f"subjectAltName={san}"])
        os.chmod(key, 0o600)
        os.chmod(pem, 0o644)  # the unprivileged user may trust it (SSL_CERT_FILE)

    def _tinyproxy_conf(self, port, listen, log, auth):
        lines = ["User nobody", "Group nogroup", f"Port {port}", f"Listen {listen}"]
        lines += [f"Bind {TINYPROXY_V4}", f"Bind {TINYPROXY_V6}",
                  "Timeout 120", f'LogFile "{log}"', "LogLevel Info", "MaxClients 300",
                  "DisableViaHeader Yes",
                  "Allow 203.0.113.0/24", "Allow 198.51.100.0/24", "Allow 2001:db8::/32"]
        lines += [f"ConnectPort {p}" for p in CONNECT_PORTS]
        if auth:
            lines.append(f"BasicAuth {HTTP_USER} {HTTP_PASSWORD}")
        return "\n".join(lines) + "\n"

    def _write_configs(self):
        d = self.dir
        self._write(os.path.join(d, "tinyproxy.conf"), self._tinyproxy_conf(
            TINYPROXY_PORT, TINYPROXY_V4, self.logs["tinyproxy"], False))
        self._write(os.path.join(d, "tinyproxy-v6.conf"), self._tinyproxy_conf(
            TINYPROXY_PORT, TINYPROXY_V6, self.logs["tinyproxy-v6"], False))
        self._write(os.path.join(d, "tinyproxy-auth.conf"), self._tinyproxy_conf(
            TINYPROXY_AUTH_PORT, TINYPROXY_V4, self.logs["tinyproxy-auth"], True))
        backend = f"{TINYPROXY_V4}:{TINYPROXY_PORT}"
        self._write(os.path.join(d, "stunnel.conf"), f"""\
foreground = yes
pid =
syslog = no
debug = info
output = {self.logs["stunnel"]}

[good]
accept = {STUNNEL_V4}:{STUNNEL_PORT}
connect = {backend}
local = {STUNNEL_V4}
cert = {d}/tls-good.pem
key = {d}/tls-good.key

[wrongname]
accept = {STUNNEL_V4}:{STUNNEL_WRONG_PORT}
connect = {backend}
local = {STUNNEL_V4}
cert = {d}/tls-wrong.pem
key = {d}/tls-wrong.key

[byname]
accept = {T.ORIGIN_V4}:{STUNNEL_NAME_PORT}
connect = {backend}
local = {STUNNEL_V4}
cert = {d}/tls-name.pem
key = {d}/tls-name.key

[byname6]
accept = {T.ORIGIN_V6}:{STUNNEL_NAME_PORT}
connect = {backend}
local = {STUNNEL_V4}
cert = {d}/tls-name.pem
key = {d}/tls-name.key

[deadend]
accept = {STUNNEL_V4}:{STUNNEL_DEADEND_PORT}
connect = {TINYPROXY_V4}:{CLOSED_PORT}
local = {STUNNEL_V4}
cert = {d}/tls-good.pem
key = {d}/tls-good.key
""")

    def _spawn(self, name, argv, resolv, log=None):
        """Start argv as root in the world namespace (with the private
        resolv.conf if resolv); its output goes to log or NAME.out."""
        if resolv:
            argv = ["unshare", "-m", "sh", "-c", RESOLV_PROLOGUE, "cft-proxy",
                    self.resolv_conf, *argv]
        out = open(log or os.path.join(self.dir, f"{name}.out"), "ab")
        try:
            p = subprocess.Popen(["ip", "netns", "exec", self.topo.world_ns, *argv],
                                 stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 close_fds=True)
        finally:
            out.close()
        self.procs[name] = p

    def _listening(self):
        res = self.topo.run_world(["ss", "-Hltn"])
        found = set()
        for line in res.out.splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            addr, _, port = parts[3].rpartition(":")
            found.add((addr.strip("[]"), int(port)))
        return found

    def _wait_listening(self, wanted, rounds=200):
        missing = wanted
        for _ in range(rounds):
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise T.TopologyError(f"{name} exited {p.returncode}:\n"
                                          + self.daemon_output(name))
            missing = wanted - self._listening()
            if not missing:
                return
            time.sleep(0.05)
        raise T.TopologyError(f"proxies not listening: {sorted(missing)}")

    def daemon_output(self, name):
        """What a daemon wrote (its log and its captured output)."""
        text = []
        for path in (self.logs.get(name), os.path.join(self.dir, f"{name}.out")):
            if path and os.path.exists(path):
                with open(path, errors="replace") as f:
                    text.append(f.read()[-4000:])
        return "\n".join(text)

    # -- stop --------------------------------------------------------------------

    def stop(self):
        """Stop the daemons we started (by pid), remove our addresses and
        files; returns a list of problems (empty when all is gone)."""
        problems = []
        for name, p in self.procs.items():
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    problems.append(f"{name} (pid {p.pid}) did not die")
        self.procs = {}
        for addr in self.added:
            res = T.sh(["ip", "-n", self.topo.world_ns, "addr", "del", addr, "dev", "lo"],
                       check=False)
            if res.rc != 0:
                problems.append(f"address {addr}: {res.err.strip()}")
        self.added = []
        try:
            shutil.rmtree(self.dir)
        except FileNotFoundError:
            pass
        except OSError as e:
            problems.append(f"{self.dir}: {e}")
        return problems

    # -- logs --------------------------------------------------------------------

    def mark(self, name):
        """Current size of a proxy log: pass it to since() / wait_log()."""
        try:
            return os.path.getsize(self.logs[name])
        except FileNotFoundError:
            return 0

    def marks(self):
        """A mark of every proxy log and of the topology's peer logs."""
        m = {name: self.mark(name) for name in self.logs}
        for name in ("nginx", "echo", "dns-a"):
            m[name] = self.topo.log_mark(name)
        return m

    def since(self, name, mark):
        """Text appended to a proxy log (or a topology peer log) since mark."""
        if name not in self.logs:
            return self.topo.log_since(name, mark)
        with open(self.logs[name], "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def wait_log(self, name, mark, pattern, timeout=10.0):
        """The first line matching regex pattern appended to a log since
        mark, waiting for it (daemons log asynchronously); None if it never
        appears."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.since(name, mark).splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)


# --- log patterns -------------------------------------------------------------------


def tinyproxy_connect_rx(target):
    """tinyproxy's line for a CONNECT request of target ("origin.test:80")."""
    return rf"Request \(file descriptor \d+\): CONNECT {re.escape(target)} HTTP/1\.1$"


def tinyproxy_client_rx(client):
    """tinyproxy's line for a client connection from address client."""
    return rf"Connect \(file descriptor \d+\): {re.escape(client)}$"


def microsocks_connect_rx(client, target):
    """microsocks' line for a successful connect of client to target."""
    return rf"^client\[\d+\] {re.escape(client)}: connected to {re.escape(target)}$"


def stunnel_accept_rx(service, client):
    """stunnel's line for a new connection of client to a service."""
    return rf"Service \[{re.escape(service)}\] accepted connection from {re.escape(client)}:\d+$"


def nginx_request_rx(path):
    """nginx's access-log line for a GET of path."""
    return rf'"GET {re.escape(path)} HTTP/1\.1" '


# --- flow log -----------------------------------------------------------------------


def flow_events(path, event=None):
    """Events of a --flow-log file (only those named event, if given)."""
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                ev = json.loads(line)
                if event is None or ev["event"] == event:
                    out.append(ev)
    return out


# --- fixtures -----------------------------------------------------------------------

_shared = {"world": None}


@pytest.fixture(scope="module")
def proxy_world(topo):
    """The running proxies, for the duration of one test module: the tests of
    other modules see the world exactly as the topology built it (its own
    checks list the world's addresses and routes)."""
    if _shared["world"] is not None:
        # a module is only set up after the previous one was torn down
        raise T.TopologyError("proxy_world is already running")
    w = ProxyWorld(topo)
    w.start()
    _shared["world"] = w
    try:
        yield w
    finally:
        _shared["world"] = None
        problems = w.stop()
        assert not problems, f"proxy teardown left things behind: {problems}"


@pytest.fixture
def tinyproxy(proxy_world):
    return proxy_world.tinyproxy


@pytest.fixture
def tinyproxy_v6(proxy_world):
    return proxy_world.tinyproxy_v6


@pytest.fixture
def tinyproxy_auth(proxy_world):
    return proxy_world.tinyproxy_auth


@pytest.fixture
def microsocks(proxy_world):
    return proxy_world.microsocks


@pytest.fixture
def stunnel(proxy_world):
    return proxy_world.stunnel


@pytest.fixture
def stunnel_wrong(proxy_world):
    return proxy_world.stunnel_wrong


# --- helpers for the tests --------------------------------------------------------------

# Prints the errno name connect() failed with, or "connected".
CONNECT_ERRNO = r"""
import errno, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
else:
    print("connected")
"""


def run_with_flow_log(childflow, userdir, proxy_args, *command, timeout=60, env=None):
    """Run `childflow --flow-log F PROXY_ARGS -- COMMAND`; returns (Result,
    flow-log path).  The flow log lives in the test's user directory."""
    log = os.path.join(userdir, "flow.jsonl")
    n = 1
    while os.path.exists(log):
        n += 1
        log = os.path.join(userdir, f"flow.{n}.jsonl")
    res = childflow.run("--flow-log", log, *proxy_args, "--", *command, timeout=timeout, env=env)
    return res, log


def assert_all_tcp_via_proxy(log):
    """Every TCP connect attempt in the flow log went through the proxy; at
    least one was made."""
    attempts = [e for e in flow_events(log, "connect_attempt") if e["protocol"] == "tcp"]
    assert attempts, flow_events(log)
    assert all(e["via_proxy"] is True for e in attempts), attempts


def connect_errors(log):
    """The error texts of every failed connect in the flow log."""
    return [e["error"] for e in flow_events(log, "connect_result") if e["status"] == "error"]


def assert_tunnelled(world, proxy, marks, target, client=T.HOST_V4):
    """The proxy's own log shows a tunnel from client to target ("HOST:PORT",
    a name or an address as the proxy was asked); for stunnel, its log shows
    the TLS connection and the backend tinyproxy's log the CONNECT."""
    name = proxy.name
    if name == "microsocks":
        rx = microsocks_connect_rx(client, target)
    elif name == "stunnel":
        service = STUNNEL_SERVICES[proxy.port]
        clients = (client,) if proxy.host != T.ORIGIN_NAME else (T.HOST_V4, T.HOST_V6)
        rxs = [stunnel_accept_rx(sv, c) for sv in service for c in clients]
        assert world.wait_log(name, marks[name], "|".join(rxs)), world.since(name, marks[name])
        name, client = proxy.backend, STUNNEL_V4
        rx = tinyproxy_connect_rx(target)
    else:
        rx = tinyproxy_connect_rx(target)
    if name != "microsocks":
        assert world.wait_log(name, marks[name], tinyproxy_client_rx(client)), \
            world.since(name, marks[name])
    assert world.wait_log(name, marks[name], rx) is not None, world.since(name, marks[name])


def proxy_args(world, kind):
    """(childflow arguments, Proxy) for one working proxy of each kind."""
    if kind == "http":
        return ["-p", world.tinyproxy.url], world.tinyproxy
    if kind == "socks5":
        return (["-p", world.microsocks.url, "-U", SOCKS_USER, "-P", SOCKS_PASSWORD],
                world.microsocks)
    if kind == "https":
        return ["-p", world.stunnel.url, "--proxy-insecure"], world.stunnel
    raise ValueError(kind)


PROXY_KINDS = ("http", "socks5", "https")
