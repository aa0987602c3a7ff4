"""The original childflow's documented JSON shapes (release 0.8.1:
summary-schema.md, report-schema.md, doctor-schema.md in
../shared/seed/upstream-docs/), as JSON Schema (draft 2020-12).

Every field the original documents is required here, with its documented
type and, where the documents list them, its values.  Objects allow other
members: our JSON is a superset (consumers of the original ignore fields
they do not know), so these schemas check that a tool written for the
original finds everything it reads, typed as it expects.  They say nothing
of our own fields (docs/*-schema.md do).

Besides the schemas, check_ranked() and check_map_matches() state what a
schema cannot: ranked lists are sorted as documented, and each report map
holds the same counts as its sorted_* list.
"""

import jsonschema

INT = {"type": "integer", "minimum": 0}
STR = {"type": "string"}
STR_OR_NULL = {"type": ["string", "null"]}
STRINGS = {"type": "array", "items": STR}

# {"key", "count"}: "a common ranked entry shape" (summary, report, observability).
RANKED = {
    "type": "array",
    "items": {"type": "object", "required": ["key", "count"],
              "properties": {"key": STR, "count": INT}},
}

COUNT_MAP = {"type": "object", "additionalProperties": INT}

EVENT_COUNT_KEYS = ["total", "dns_query", "dns_answer", "connect_attempt", "connect_result",
                    "policy_violation", "flow_end", "runtime_failure", "unknown_event"]
EVENT_COUNTS = {"type": "object", "required": EVENT_COUNT_KEYS,
                "properties": {k: INT for k in EVENT_COUNT_KEYS}}

TARGET_COUNTS = {"connect_attempts": INT, "connect_ok": INT, "connect_error": INT,
                 "flow_end": INT}


def obj(props, extra_required=()):
    """An object with every one of @props required (and others allowed)."""
    return {"type": "object", "required": list(props) + list(extra_required),
            "properties": props}


# A target correlated to a DNS name (top_dns_name.targets, dns_*_correlations[].targets).
# The summary's top_dns_name example leaves matched_domains out of a target,
# its table lists it: required here, we always emit it.
NAME_TARGET = obj({"target": STR, **TARGET_COUNTS, "matched_domains": RANKED})
# top_target (summary), top_connection_targets[] (report).
TARGET = obj({"target": STR, **TARGET_COUNTS, "dns_names": STRINGS, "matched_domains": RANKED})
NAME_BASE = {"qname": STR, "queries": INT, "answers": INT, "answer_ips": STRINGS}
DNS_POLICY_ROW = obj({**NAME_BASE, "target": STR_OR_NULL, "target_ip": STR_OR_NULL,
                      **TARGET_COUNTS, "matched_domains": RANKED})
DNS_TARGET_CORRELATION = obj({**NAME_BASE, "targets": {"type": "array", "items": NAME_TARGET}})
DNS_POLICY_CORRELATION = obj({**NAME_BASE, "matched_domains": RANKED,
                              "targets": {"type": "array", "items": NAME_TARGET}})


def nullable(schema):
    return {"anyOf": [{"type": "null"}, schema]}


SUMMARY = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "the original's summary (summary-schema.md)",
    **obj({
        "backend": {"enum": ["rootless-internal", "rootful"]},
        "command": STR,
        "exit_code": {"type": "integer"},
        "sandbox_controls": STRINGS,
        "capture": obj({
            "status": {"enum": ["disabled", "enabled"]},
            "requested": STR_OR_NULL,
            "effective": STR_OR_NULL,
            "output": STR_OR_NULL,
            "child_output": STR_OR_NULL,
            "egress_output": STR_OR_NULL,
        }),
        "flow_log": obj({
            "status": {"enum": ["disabled", "available", "unavailable"]},
            "path": STR_OR_NULL,
            "event_counts": nullable(EVENT_COUNTS),
            "top_dns_name": nullable(DNS_TARGET_CORRELATION),
            "dns_policy_rows": {"type": "array", "items": DNS_POLICY_ROW},
            "top_dns_policy_correlation": nullable(DNS_POLICY_CORRELATION),
            "top_target": nullable(TARGET),
            "policy_violations": RANKED,
            "policy_controls": RANKED,
            "policy_matched_domains": RANKED,
            "connect_errors": RANKED,
            "runtime_failures": RANKED,
            "runtime_failure_phases": RANKED,
        }),
    }),
}

REPORT_MAPS = ["protocols", "policy_violations", "policy_controls", "policy_matched_domains",
               "connect_errors", "runtime_failures", "runtime_failure_phases"]

REPORT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "the original's report (report-schema.md)",
    **obj({
        "flow_log": STR,
        "schema_versions": {"type": "array", "items": {"type": "integer"}},
        "event_counts": EVENT_COUNTS,
        **{m: COUNT_MAP for m in REPORT_MAPS},
        **{"sorted_" + m: RANKED for m in REPORT_MAPS},
        "top_dns_names": {"type": "array", "items": obj(NAME_BASE)},
        "dns_target_correlations": {"type": "array", "items": DNS_TARGET_CORRELATION},
        "dns_policy_correlations": {"type": "array", "items": DNS_POLICY_CORRELATION},
        "dns_policy_rows": {"type": "array", "items": DNS_POLICY_ROW},
        "proxy_usage": obj({"proxied_connect_attempts": INT, "direct_connect_attempts": INT}),
        "top_connection_targets": {"type": "array", "items": TARGET},
    }),
}

CAPABILITY_KEYS = ["root_privileges", "external_commands", "forwarding_sysctls",
                   "af_packet_capture", "namespace_handles", "user_namespace_quota",
                   "unprivileged_user_namespaces", "apparmor_userns_policy", "uidmap_helpers",
                   "subuid_subgid_entries", "tun_tap_device"]

DOCTOR = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "the original's doctor report (doctor-schema.md)",
    **obj({
        "backend": {"enum": ["rootless-internal", "rootful"]},
        "uid": INT,
        "euid": INT,
        "status": {"enum": ["ready", "ready with warnings", "blocked"]},
        "capabilities": {"type": "array", "items": obj({
            # "Stable machine-readable capability key": the documented ones.
            "key": {"enum": CAPABILITY_KEYS},
            "label": STR,
            "status": {"enum": ["available", "limited", "unavailable"]},
            "detail": STR,
        })},
        "preflight": {"type": "array", "items": obj({
            "label": STR,
            "status": {"enum": ["ok", "warning", "fatal"]},
            "detail": STR,
            "hint": STR_OR_NULL,
        })},
    }),
}


def check_ranked(lst, where):
    """A ranked list is sorted by count descending, then key ascending."""
    order = [(-e["count"], e["key"].encode()) for e in lst]
    assert order == sorted(order), f"{where} is not ranked: {lst}"


def check_target_order(targets, where):
    """Targets: connect_attempts, connect_error, connect_ok descending, then target."""
    order = [(-t["connect_attempts"], -t["connect_error"], -t["connect_ok"], t["target"].encode())
             for t in targets]
    assert order == sorted(order), f"{where} is not ranked: {targets}"


def validate_summary(summary):
    jsonschema.validate(summary, SUMMARY)
    fl = summary["flow_log"]
    for k in ("policy_violations", "policy_controls", "policy_matched_domains",
              "connect_errors", "runtime_failures", "runtime_failure_phases"):
        check_ranked(fl[k], f"flow_log.{k}")


def validate_report(report):
    jsonschema.validate(report, REPORT)
    for m in REPORT_MAPS:
        check_ranked(report["sorted_" + m], "sorted_" + m)
        assert report[m] == {e["key"]: e["count"] for e in report["sorted_" + m]}, m
    check_target_order(report["top_connection_targets"], "top_connection_targets")
    names = [(-n["queries"], -n["answers"], n["qname"].encode()) for n in report["top_dns_names"]]
    assert names == sorted(names), report["top_dns_names"]
    for k in ("dns_target_correlations", "dns_policy_correlations"):
        assert [n["qname"] for n in report[k]] == [n["qname"] for n in report["top_dns_names"]], k
        for n in report[k]:
            check_target_order(n["targets"], f"{k}[{n['qname']}].targets")


def validate_doctor(report):
    jsonschema.validate(report, DOCTOR)
