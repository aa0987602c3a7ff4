"""The flow log's schema v1 as a machine-readable contract, and a validator.

Two layers, kept apart so that one can see which promise a line breaks:

V1        the original's schema v1 (../shared/seed/upstream-docs/flow-log-schema.md)
          as REFERENCE.md fixes it: DNS over TCP is logged with protocol
          "tcp", and reason_code gained host_local, multicast, remote_dns.
          Every field it lists must be present with its type: a v1 consumer
          must be able to read every line it gets. In particular
          connect_attempt, connect_result and flow_end are TCP with integer
          ports; UDP and ICMP flows have event types of their own.
ADDITIVE  what docs/flow-log-schema.md adds within v1: new fields of v1 events
          (flow_id, pid/comm/exe, byte counts), new values of enumerated
          strings that only a new option produces, and new event types
          (datagram_flow_start / datagram_flow_end).

A field or an event type in neither layer fails validation too: extensions
are allowed by v1, but ours must be documented (and listed here) first.

validate_line() checks one line, validate_file() a whole log (a last line
without its newline is the one a crash may cut short, and is skipped).
conftest.py runs validate_file() on every flow log the integration tests make.
"""

import json
import re

STR, INT, BOOL, NULL, LIST = "string", "integer", "boolean", "null", "array"

ICMP = ("icmpv4", "icmpv6")
REASON_CODES = {"offline", "metadata", "private", "deny_cidr", "deny_domain",
                "deny_domain_exact", "default_deny", "proxy_only",
                # added since the original (REFERENCE.md)
                "host_local", "multicast", "remote_dns"}
PHASES = {"cli_validate", "preflight", "child_bootstrap", "run"}

# event -> [(field, allowed types, allowed values or None)], in file order.
_DNS = [("protocol", {STR}, {"udp", "tcp"}),
        ("server", {STR}, None),
        ("server_ip", {STR}, None),
        ("server_port", {INT}, None),
        ("qname", {STR, NULL}, None),
        ("qtype", {STR}, None)]
_TCP_REMOTE = [("protocol", {STR}, {"tcp"}),
               ("remote_addr", {STR}, None),
               ("remote_ip", {STR}, None),
               ("remote_port", {INT}, None)]
V1 = {
    "dns_query": _DNS,
    "dns_answer": _DNS + [("mode", {STR}, {"relayed", "synthetic_empty"}),
                          ("bytes", {INT}, None),
                          ("answer_ips", {LIST}, None)],
    "connect_attempt": _TCP_REMOTE + [("via_proxy", {BOOL}, None)],
    "connect_result": _TCP_REMOTE + [("via_proxy", {BOOL}, None),
                                     ("status", {STR}, {"ok", "error"}),
                                     ("error", {STR, NULL}, None)],
    "policy_violation": [("protocol", {STR}, {"tcp", "udp", "dns", *ICMP}),
                         ("remote", {STR}, None),
                         ("remote_ip", {STR, NULL}, None),
                         ("remote_port", {INT, NULL}, None),
                         ("action", {STR}, {"deny"}),
                         ("reason_code", {STR}, REASON_CODES),
                         ("control", {STR}, None),  # "built-in" for host_local, multicast
                         ("matched_cidr", {STR, NULL}, None),
                         ("matched_domain", {STR, NULL}, None),
                         ("reason", {STR}, None)],
    "flow_end": _TCP_REMOTE,
    "runtime_failure": [("phase", {STR}, PHASES),
                        ("reason_code", {STR}, None),
                        ("detail", {STR}, None)],
}

_PROC = [("pid", {INT, NULL}, None), ("comm", {STR, NULL}, None), ("exe", {STR, NULL}, None)]
_BYTES = [("bytes_sent", {INT}, None), ("bytes_received", {INT}, None)]
_DGRAM_REMOTE = [("protocol", {STR}, {"udp", *ICMP}),
                 ("remote_addr", {STR}, None),
                 ("remote_ip", {STR}, None),
                 ("remote_port", {INT, NULL}, None),  # null for ICMP, which has no ports
                 ("via_proxy", {BOOL}, None)]
# Our documented additions: fields after the v1 ones, in file order (flow_id
# comes right after "event", see COMMON), values added to v1 enumerations,
# and whole new event types.
# The last fields of every flow event (--publish): "direction", and for an
# inbound flow the mapping and the tree's port, which outbound ones leave out.
_DIRECTION = [("direction", {STR}, {"outbound", "inbound"}),
              ("published", {STR}, None),
              ("tree_port", {INT}, None)]
INBOUND_ONLY = {"published", "tree_port"}
ADDITIVE_FIELDS = {
    "connect_attempt": _PROC + _DIRECTION,
    # issue 18: "socket" for a switched socket, "relay" for a relayed flow,
    # "kernel" for a flow the rootful backend's host kernel forwarded
    "connect_result": _PROC + [("path", {STR}, {"socket", "relay", "kernel"})] + _DIRECTION,
    "flow_end": _BYTES + [("duration_ms", {INT}, None)] + _DIRECTION,
}
ADDITIVE_VALUES = {
    ("dns_answer", "mode"): {"synthetic_address"},  # only with --proxy-remote-dns
}
ADDITIVE_EVENTS = {
    "datagram_flow_start": _DGRAM_REMOTE + [("status", {STR}, {"ok", "error"}),
                                            ("error", {STR, NULL}, None)] + _PROC
    + _DIRECTION,
    "datagram_flow_end": _DGRAM_REMOTE + _BYTES + [("packets_sent", {INT}, None),
                                                   ("packets_received", {INT}, None),
                                                   ("duration_ms", {INT}, None)] + _PROC
    + _DIRECTION,
}

# Every event starts with these; flow_id (additive) is in every event but runtime_failure.
COMMON = [("schema_version", {INT}, {1}), ("ts_ms", {INT}, None), ("event", {STR}, None)]
FLOW_ID = ("flow_id", {INT}, None)


def fields(event):
    """The documented fields of @event after the common ones, in file order,
    as (name, types, values, layer) with layer "v1" or "additive"; None for
    an undocumented event type."""
    if event in V1:
        out = [] if event == "runtime_failure" else [(*FLOW_ID, "additive")]
        out += [(n, t, _values(event, n, v), "v1") for n, t, v in V1[event]]
        return out + [(n, t, v, "additive") for n, t, v in ADDITIVE_FIELDS.get(event, [])]
    if event in ADDITIVE_EVENTS:
        return [(*FLOW_ID, "additive")] + [(n, t, v, "additive")
                                           for n, t, v in ADDITIVE_EVENTS[event]]
    return None


def _values(event, name, v1_values):
    if v1_values is None:
        return None
    return v1_values | ADDITIVE_VALUES.get((event, name), set())


def json_type(v):
    if v is None:
        return NULL
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, int):
        return INT
    if isinstance(v, str):
        return STR
    if isinstance(v, list):
        return LIST
    return type(v).__name__


def _check_field(ev, name, types, values, where):
    if name not in ev:
        return [f"{where}: {name} missing"]
    v = ev[name]
    if json_type(v) not in types:
        return [f"{where}: {name} is {json_type(v)} {v!r}, must be "
                + " or ".join(sorted(types))]
    if values is not None and v is not None and v not in values:
        return [f"{where}: {name} {v!r} is not one of {sorted(values, key=str)}"]
    return []


def _addr_text(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _check_endpoint(ev, addr_key, ip_key, port_key):
    """ip:port text agrees with the ip and port fields; ICMP has no port."""
    addr, ip, port = ev.get(addr_key), ev.get(ip_key), ev.get(port_key)
    if not isinstance(addr, str) or not isinstance(ip, str):
        return []
    if ev.get("protocol") in ICMP:
        if port is not None or addr != ip:
            return [f"{addr_key} {addr!r} / {port_key} {port!r}: ICMP has a bare address "
                    "and a null port"]
        return []
    if json_type(port) != INT:
        return [f"{port_key} is {json_type(port)}, must be an integer for "
                f"{ev.get('protocol')!r}"]
    if addr != _addr_text(ip, port):
        return [f"{addr_key} {addr!r} is not {ip_key}:{port_key} {_addr_text(ip, port)!r}"]
    return []


def _check_semantics(ev):
    name, out = ev["event"], []
    if name in ("connect_result", "datagram_flow_start") and "status" in ev:
        if ev["status"] == "ok" and ev.get("error") is not None:
            out.append("status ok with an error")
        if ev["status"] == "error" and not isinstance(ev.get("error"), str):
            out.append("status error without an error text")
    if name in ("connect_attempt", "connect_result", "flow_end", "datagram_flow_start",
                "datagram_flow_end"):
        out += _check_endpoint(ev, "remote_addr", "remote_ip", "remote_port")
    if name == "policy_violation":
        out += _check_endpoint(ev, "remote", "remote_ip", "remote_port")
    if name in ("dns_query", "dns_answer"):
        out += _check_endpoint(ev, "server", "server_ip", "server_port")
    if name == "dns_answer" and isinstance(ev.get("answer_ips"), list):
        if not all(isinstance(ip, str) for ip in ev["answer_ips"]):
            out.append("answer_ips holds a non-string")
    for k in ("bytes", "bytes_sent", "bytes_received", "packets_sent", "packets_received",
              "duration_ms", "flow_id", "pid"):
        if json_type(ev.get(k)) == INT and ev[k] < 0:
            out.append(f"{k} is negative")
    return out


def validate_event(ev):
    """Problems of one parsed event (a dict in file order); [] when valid."""
    if not isinstance(ev, dict):
        return [f"not a JSON object: {json_type(ev)}"]
    out = []
    for n, t, v in COMMON:
        out += _check_field(ev, n, t, v, "v1")
    if out:
        return out
    name = ev["event"]
    spec = fields(name)
    if spec is None:
        return [f"event type {name!r} is neither v1 nor a documented extension "
                "(docs/flow-log-schema.md, tests/integration/flowlog_v1.py)"]
    inbound = ev.get("direction") == "inbound"
    for n, t, v, layer in spec:
        if n in INBOUND_ONLY and not inbound:
            if n in ev:
                out.append(f"{name}: {n} in a flow that is not inbound")
            continue
        out += [f"{name}: {p}" for p in _check_field(ev, n, t, v, layer)]
    known = [n for n, _, _ in COMMON] + [n for n, _, _, _ in spec]
    extra = [k for k in ev if k not in known]
    if extra:
        out.append(f"{name}: undocumented field(s) {extra} (document them first)")
    order = [k for k in ev if k in known]
    if not extra and order != [k for k in known if k in ev]:
        out.append(f"{name}: fields out of the documented order: {order}")
    if not out:
        out += [f"{name}: {p}" for p in _check_semantics(ev)]
    return out


def validate_line(raw):
    """Problems of one line of a flow log (bytes without its newline)."""
    if raw != raw.strip() or not raw:
        return ["blank line or surrounding whitespace"]
    try:
        ev = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return [f"not JSON ({e})"]
    return validate_event(ev)


def validate_file(path):
    """Problems of a flow log, each "PATH:LINE: problem: the line"; [] when valid."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    # The last element is b"" for a log that ends in a newline; otherwise it
    # is the line a crash may have cut short (docs/flow-log-schema.md).
    out = []
    for n, raw in enumerate(lines[:-1], 1):
        for p in validate_line(raw):
            shown = raw[:300].decode("utf-8", "replace")
            out.append(f"{path}:{n}: {p}: {shown}")
    return out


# The start of every line childflow writes (compact JSON, common fields first).
MARKER = re.compile(rb'\A\{"schema_version":\d+,"ts_ms":')


def looks_like_flow_log(path):
    """Whether @path starts like a flow log childflow wrote (a test's
    hand-made garbage for --report does not)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return bool(MARKER.match(head))
