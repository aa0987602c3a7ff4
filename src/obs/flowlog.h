/* SPDX-License-Identifier: MIT */
/*
 * The flow log (JSON Lines, schema_version 1) and the live summary.
 *
 * The engine calls one cf_obs_*() hook per event at the one place where it
 * decides flows. Each hook builds the event as a jansson object, writes it
 * to the flow log (when one is open) as one write() of one whole line, and
 * feeds the same object to the aggregator behind --summary, so the summary
 * counts exactly what the log holds. The schema is docs/flow-log-schema.md.
 *
 * Strings from the tree (names, process names, errors) may hold any byte:
 * invalid UTF-8 becomes U+FFFD and the line is always valid JSON.
 *
 * A write error on the flow log (disk full, ...) is remembered: later events
 * are still aggregated but no longer written, and cf_obs_flow_log_error()
 * reports it (the summary mentions it too).
 */
#ifndef CF_OBS_FLOWLOG_H
#define CF_OBS_FLOWLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "net/addr.h"

#define CF_FLOW_LOG_SCHEMA_VERSION 1

/*
 * policy_violation's "control" for denials no option turns on (host_local,
 * multicast): v1 types "control" as a string, so it is never null.
 */
#define CF_OBS_CONTROL_BUILTIN "built-in"

/* Owns the optional flow-log file and the summary aggregator. */
struct cf_obs;

/* Per-process attribution when known (pid 0 / NULL strings when unknown: written as null). */
struct cf_obs_proc {
	int pid;
	const char *comm;
	const char *exe;
};

/*
 * cf_obs_open() - Start observing. @flow_log_path may be NULL (no file; the
 * aggregator still runs for --summary). The file is opened with
 * O_CREAT|O_TRUNC|O_CLOEXEC, mode 0600 when created.
 * Return: 0 with *@out set, or -errno.
 */
int cf_obs_open(const char *flow_log_path, struct cf_obs **out);

/* cf_obs_close() - Close the flow log and free @o (NULL ok). */
void cf_obs_close(struct cf_obs *o);

/*
 * cf_obs_dns_query() - A DNS query from the tree was received. @protocol is
 * "udp" or "tcp"; @server may be NULL (unknown); @qname is normalised here
 * (ASCII lower case, one trailing dot removed) and may be NULL; @qtype NULL
 * is written as "unknown".
 */
void cf_obs_dns_query(struct cf_obs *o, uint64_t flow_id, const char *protocol,
		      const struct cf_ip *server, uint16_t server_port, const char *qname,
		      const char *qtype);

/*
 * cf_obs_dns_answer() - A DNS answer was sent back to the tree. @mode is
 * "relayed" or "synthetic_empty"; @bytes is the size of the DNS message;
 * @answer_ips are the A/AAAA addresses it carried (@n_ips may be 0).
 */
void cf_obs_dns_answer(struct cf_obs *o, uint64_t flow_id, const char *protocol,
		       const struct cf_ip *server, uint16_t server_port, const char *qname,
		       const char *qtype, const char *mode, size_t bytes,
		       const struct cf_ip *answer_ips, size_t n_ips);

/* cf_obs_connect_attempt() - The engine starts an upstream TCP connection (@proc may be NULL). */
void cf_obs_connect_attempt(struct cf_obs *o, uint64_t flow_id, const struct cf_ip *ip,
			    uint16_t port, bool via_proxy, const struct cf_obs_proc *proc);

/*
 * cf_obs_connect_result() - The upstream TCP connection finished; @error NULL
 * means success; @path "socket" (switched, engine/switch.c) or "relay".
 */
void cf_obs_connect_result(struct cf_obs *o, uint64_t flow_id, const struct cf_ip *ip,
			   uint16_t port, bool via_proxy, const char *error,
			   const struct cf_obs_proc *proc, const char *path);

/*
 * cf_obs_policy_violation() - Policy denied a flow (action "deny").
 * @protocol: "tcp", "udp", "dns", "icmpv4" or "icmpv6" (for ICMP @port is
 * ignored: "remote" is the bare address and "remote_port" null).
 * NULL or "" @matched_cidr / @matched_domain are written as null; a NULL or
 * "" @control as CF_OBS_CONTROL_BUILTIN.
 */
void cf_obs_policy_violation(struct cf_obs *o, uint64_t flow_id, const char *protocol,
			     const struct cf_ip *ip, uint16_t port, const char *reason_code,
			     const char *control, const char *matched_cidr,
			     const char *matched_domain, const char *reason);

/* cf_obs_flow_end() - A relayed TCP connection ended. */
void cf_obs_flow_end(struct cf_obs *o, uint64_t flow_id, const struct cf_ip *ip, uint16_t port,
		     uint64_t bytes_sent, uint64_t bytes_received, uint64_t duration_ms);

/*
 * A datagram flow (UDP, ICMP echo) as its events name it. Schema v1 keeps
 * connect_attempt, connect_result and flow_end for TCP with integer ports, so
 * datagram flows have events of their own (docs/flow-log-schema.md).
 */
struct cf_obs_dgram {
	const char *protocol;	/* "udp", "icmpv4" or "icmpv6" */
	const struct cf_ip *ip; /* the destination (NULL: unknown) */
	uint16_t port;		/* its port; ignored for ICMP (written as null) */
	bool via_proxy;
	const struct cf_obs_proc *proc; /* NULL: unknown */
};

/* What a datagram flow carried, for its datagram_flow_end event. */
struct cf_obs_traffic {
	uint64_t bytes_sent, bytes_received;	 /* payload bytes */
	uint64_t packets_sent, packets_received; /* datagrams */
	uint64_t duration_ms;
};

/*
 * cf_obs_datagram_flow_start() - The engine opened (@error NULL) or failed to
 * open the upstream side of a new datagram flow @d.
 */
void cf_obs_datagram_flow_start(struct cf_obs *o, uint64_t flow_id, const struct cf_obs_dgram *d,
				const char *error);

/* cf_obs_datagram_flow_end() - A datagram flow that started ended, having carried @t. */
void cf_obs_datagram_flow_end(struct cf_obs *o, uint64_t flow_id, const struct cf_obs_dgram *d,
			      const struct cf_obs_traffic *t);

/*
 * An inbound flow (--publish): a client on the host reached a port of the
 * tree. Its events are the outbound ones (TCP: connect_attempt,
 * connect_result, flow_end; UDP: datagram_flow_start/_end) with "direction":
 * "inbound", the client as the remote, and the mapping and tree port.
 */
struct cf_obs_inbound {
	bool udp;
	const struct cf_ip *peer; /* the client on the host */
	uint16_t peer_port;
	const char *published; /* the mapping as normalised ("127.0.0.1:8080:80/tcp") */
	uint16_t tree_port;
};

/*
 * cf_obs_inbound_start() - TCP: the connection to the tree is being made
 * (@attempt) or was made (@error NULL) or failed; UDP: the flow started
 * (@attempt ignored).
 */
void cf_obs_inbound_start(struct cf_obs *o, uint64_t flow_id, const struct cf_obs_inbound *in,
			  bool attempt, const char *error);

/* cf_obs_inbound_end() - An inbound flow that started ended, having carried @t (sent: by the
 * tree). */
void cf_obs_inbound_end(struct cf_obs *o, uint64_t flow_id, const struct cf_obs_inbound *in,
			const struct cf_obs_traffic *t);

/* cf_obs_runtime_failure() - childflow itself failed in @phase (a stable @reason_code; NULL
 * @detail: ""). */
void cf_obs_runtime_failure(struct cf_obs *o, const char *phase, const char *reason_code,
			    const char *detail);

/* cf_obs_violations() - How many policy_violation events were recorded (for --fail-on-leak). */
uint64_t cf_obs_violations(const struct cf_obs *o);

/* cf_obs_flow_log_error() - The first flow-log write error (-errno), or 0. */
int cf_obs_flow_log_error(const struct cf_obs *o);

/* cf_obs_dropped_events() - Events lost because memory ran out while building them. */
uint64_t cf_obs_dropped_events(const struct cf_obs *o);

/* --rate-limit as the summary reports it; index 0: bytes the tree sent, 1: received. */
struct cf_run_rate {
	uint64_t limit_bps, burst_bytes;
	uint64_t bytes[2];   /* that passed the limit */
	uint64_t ms[2];	     /* from the first to the last of them */
	uint64_t dropped[2]; /* UDP datagrams the limit dropped */
};

/* Facts about the run that the summary prints next to the aggregated events. */
struct cf_run_info {
	const char *backend;  /* "rootless-internal" | "rootful" */
	char *const *command; /* NULL-terminated argv */
	int exit_code;
	const char *const *controls; /* NULL-terminated, e.g. "--dns 198.51.100.54"; NULL: none */
	const char *const *captures; /* NULL-terminated paths written; NULL: none */
	const char *flow_log;	     /* NULL: none */
	/* The capture as the original's summary names it (docs/summary-schema.md). */
	const char *capture_requested; /* --capture-point: "child", ..., "both"; NULL: no capture */
	const char *capture_effective; /* the views written: "child+egress" for "both" */
	const char *capture_child;     /* the child view's file, NULL: none */
	const char *capture_egress;    /* the egress (or wire-egress) view's file, NULL: none */
	const struct cf_run_rate *rate; /* --rate-limit, NULL: none */
};

/*
 * cf_obs_print_summary() - Print the post-run summary to @out: text, or one
 * line of JSON when @json (docs/summary-schema.md). @o may be NULL (no events),
 * @run NULL (no run facts).
 * Return: 0, -ENOMEM, or -EIO when writing @out failed.
 */
int cf_obs_print_summary(const struct cf_obs *o, const struct cf_run_info *run, bool json,
			 FILE *out);

#endif
