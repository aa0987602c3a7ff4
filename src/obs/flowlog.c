// SPDX-License-Identifier: MIT
/*
 * The flow-log writer. Theory of operation: every hook builds one event as a
 * jansson object in the order of docs/flow-log-schema.md (schema_version,
 * ts_ms, event, flow_id, then the event's fields, then additive fields),
 * feeds it to the aggregator, and serialises it compactly into one buffer
 * that ends in '\n' and goes to the kernel in one write(). There is no
 * user-space buffering: an event is on disk (in the page cache) when its
 * hook returns, so a crash of childflow loses no complete line.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "obs/agg.h"
#include "obs/flowlog.h"
#include "obs/render.h"
#include "obs/text.h"
#include "util/cleanup.h"
#include "util/fileio.h"

/* Most events serialise into this much stack; longer ones get a heap buffer. */
#define LINE_STACK_SIZE 2048

struct cf_obs {
	int fd;		  /* flow log, or -1 */
	int write_err;	  /* first write error (-errno), or 0 */
	uint64_t dropped; /* events lost to out-of-memory */
	/* Counted apart from the aggregator, so --fail-on-leak holds even when memory runs out. */
	uint64_t violations;
	struct cf_agg *agg;
};

/* An event under construction: a failure anywhere makes the whole event fail. */
struct event {
	json_t *obj;
	bool failed;
};

int cf_obs_open(const char *flow_log_path, struct cf_obs **out)
{
	struct cf_obs *o = calloc(1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	o->fd = -1;
	r = cf_agg_new(&o->agg);
	if (r < 0) {
		free(o);
		return r;
	}
	if (flow_log_path) {
		/*
		 * O_APPEND: should anyone truncate the log during the run (the tree
		 * cannot: cf_mounts_hide()), later events land at its new end
		 * instead of after a hole of NULs.
		 */
		o->fd = open(flow_log_path,
			     O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
		if (o->fd < 0) {
			r = -errno;
			cf_obs_close(o);
			return r;
		}
	}
	*out = o;
	return 0;
}

void cf_obs_close(struct cf_obs *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	cf_agg_free(o->agg);
	free(o);
}

const struct cf_agg *cf_obs_agg(const struct cf_obs *o)
{
	return o ? o->agg : NULL;
}

uint64_t cf_obs_violations(const struct cf_obs *o)
{
	return o ? o->violations : 0;
}

int cf_obs_flow_log_error(const struct cf_obs *o)
{
	return o ? o->write_err : 0;
}

uint64_t cf_obs_dropped_events(const struct cf_obs *o)
{
	return o ? o->dropped : 0;
}

/* --- building events ---------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set(struct event *e, const char *key, json_t *v)
{
	if (!e->obj) {
		json_decref(v);
		e->failed = true;
		return;
	}
	if (cf_obj_set(e->obj, key, v) < 0)
		e->failed = true;
}

static void set_str(struct event *e, const char *key, const char *s)
{
	set(e, key, cf_json_string_sane(s));
}

/* Empty strings count as unknown too. */
static void set_str_or_null(struct event *e, const char *key, const char *s)
{
	set_str(e, key, s && *s ? s : NULL);
}

static struct event event_start(const char *name)
{
	struct event e = {.obj = json_object()};

	set(&e, "schema_version", json_integer(CF_FLOW_LOG_SCHEMA_VERSION));
	set(&e, "ts_ms", json_integer(now_ms()));
	set(&e, "event", json_string(name));
	return e;
}

static struct event flow_event_start(const char *name, uint64_t flow_id, const char *protocol)
{
	struct event e = event_start(name);

	set(&e, "flow_id", cf_json_u64(flow_id));
	set_str(&e, "protocol", protocol);
	return e;
}

/* ICMP has no ports: its addresses are written bare and its port fields are null. */
static bool has_ports(const char *protocol)
{
	return !protocol || strncmp(protocol, "icmp", 4) != 0;
}

/* Set @addr_key ("ip:port"), @ip_key and @port_key from @ip/@port (all null without @ip). */
static void set_addr(struct event *e, const char *addr_key, const char *ip_key,
		     const char *port_key, const struct cf_ip *ip, uint16_t port, bool with_port)
{
	char a[CF_ADDRPORT_STRLEN], b[CF_IP_STRLEN];

	if (!ip) {
		set(e, addr_key, json_null());
		set(e, ip_key, json_null());
		set(e, port_key, json_null());
		return;
	}
	cf_ip_format(ip, b, sizeof(b));
	if (with_port)
		cf_addrport_format(ip, port, a, sizeof(a));
	set_str(e, addr_key, with_port ? a : b);
	set_str(e, ip_key, b);
	set(e, port_key, with_port ? json_integer(port) : json_null());
}

static void set_proc(struct event *e, const struct cf_obs_proc *proc)
{
	set(e, "pid", proc && proc->pid > 0 ? json_integer(proc->pid) : json_null());
	set_str_or_null(e, "comm", proc ? proc->comm : NULL);
	set_str_or_null(e, "exe", proc ? proc->exe : NULL);
}

/*
 * Set "qname" to @qname normalised as domain rules are: ASCII lower case,
 * one trailing dot removed (the root "." stays ".").
 */
static void set_qname(struct event *e, const char *qname)
{
	cleanup_free char *n = NULL;
	size_t len;

	if (!qname) {
		set(e, "qname", json_null());
		return;
	}
	len = strlen(qname);
	n = malloc(len + 1);
	if (!n) {
		e->failed = true;
		return;
	}
	for (size_t i = 0; i < len; i++)
		n[i] = (char)tolower((unsigned char)qname[i]);
	if (len > 1 && n[len - 1] == '.')
		len--;
	set(e, "qname", cf_json_stringn_sane(n, len));
}

static void set_dns_common(struct event *e, const struct cf_ip *server, uint16_t server_port,
			   const char *qname, const char *qtype)
{
	set_addr(e, "server", "server_ip", "server_port", server, server_port, true);
	set_qname(e, qname);
	set_str(e, "qtype", qtype ? qtype : "unknown");
}

/* --- writing ------------------------------------------------------------ */

static int write_line(int fd, const json_t *obj)
{
	char stack[LINE_STACK_SIZE];
	cleanup_free char *heap = NULL;
	char *buf = stack;
	size_t n = json_dumpb(obj, stack, sizeof(stack) - 1, JSON_COMPACT);

	if (n == 0)
		return -ENOMEM;
	if (n > sizeof(stack) - 1) {
		heap = malloc(n + 1);
		if (!heap)
			return -ENOMEM;
		if (json_dumpb(obj, heap, n, JSON_COMPACT) != n)
			return -ENOMEM;
		buf = heap;
	}
	buf[n] = '\n';
	return cf_write_all(fd, buf, n + 1);
}

/* Aggregate and write the event, then release it. */
static void emit(struct cf_obs *o, struct event *e)
{
	if (!o) {
		json_decref(e->obj);
		return;
	}
	if (e->failed) {
		o->dropped++;
		json_decref(e->obj);
		return;
	}
	cf_agg_add(o->agg, e->obj);
	if (o->fd >= 0 && o->write_err == 0) {
		int r = write_line(o->fd, e->obj);

		if (r == -ENOMEM)
			o->dropped++;
		else if (r < 0)
			o->write_err = r;
	}
	json_decref(e->obj);
}

/* --- the hooks ---------------------------------------------------------- */

void cf_obs_dns_query(struct cf_obs *o, uint64_t flow_id, const char *protocol,
		      const struct cf_ip *server, uint16_t server_port, const char *qname,
		      const char *qtype)
{
	struct event e = flow_event_start("dns_query", flow_id, protocol);

	set_dns_common(&e, server, server_port, qname, qtype);
	emit(o, &e);
}

void cf_obs_dns_answer(struct cf_obs *o, uint64_t flow_id, const char *protocol,
		       const struct cf_ip *server, uint16_t server_port, const char *qname,
		       const char *qtype, const char *mode, size_t bytes,
		       const struct cf_ip *answer_ips, size_t n_ips)
{
	struct event e = flow_event_start("dns_answer", flow_id, protocol);
	json_t *ips = json_array();

	set_dns_common(&e, server, server_port, qname, qtype);
	set_str(&e, "mode", mode);
	set(&e, "bytes", cf_json_u64(bytes));
	for (size_t i = 0; ips && answer_ips && i < n_ips; i++) {
		char b[CF_IP_STRLEN];

		if (json_array_append_new(
			ips, json_string(cf_ip_format(&answer_ips[i], b, sizeof(b)))) < 0)
			e.failed = true;
	}
	set(&e, "answer_ips", ips);
	emit(o, &e);
}

/*
 * The last fields of every flow event: its direction, and for an inbound
 * flow (@in) the mapping that carried it and the tree's port.
 */
static void set_direction(struct event *e, const struct cf_obs_inbound *in)
{
	set_str(e, "direction", in ? "inbound" : "outbound");
	if (!in)
		return;
	set_str(e, "published", in->published);
	set(e, "tree_port", json_integer(in->tree_port));
}

/* The fields every TCP connection event starts with: connect_* and flow_end are TCP (schema v1). */
static struct event tcp_event_start(const char *name, uint64_t flow_id, const struct cf_ip *ip,
				    uint16_t port)
{
	struct event e = flow_event_start(name, flow_id, "tcp");

	set_addr(&e, "remote_addr", "remote_ip", "remote_port", ip, port, true);
	return e;
}

void cf_obs_connect_attempt(struct cf_obs *o, uint64_t flow_id, const struct cf_ip *ip,
			    uint16_t port, bool via_proxy, const struct cf_obs_proc *proc)
{
	struct event e = tcp_event_start("connect_attempt", flow_id, ip, port);

	set(&e, "via_proxy", json_boolean(via_proxy));
	set_proc(&e, proc);
	set_direction(&e, NULL);
	emit(o, &e);
}

void cf_obs_connect_result(struct cf_obs *o, uint64_t flow_id, const struct cf_ip *ip,
			   uint16_t port, bool via_proxy, const char *error,
			   const struct cf_obs_proc *proc, const char *path)
{
	struct event e = tcp_event_start("connect_result", flow_id, ip, port);

	set(&e, "via_proxy", json_boolean(via_proxy));
	set_str(&e, "status", error ? "error" : "ok");
	set_str(&e, "error", error);
	set_proc(&e, proc);
	set_str(&e, "path", path);
	set_direction(&e, NULL);
	emit(o, &e);
}

void cf_obs_policy_violation(struct cf_obs *o, uint64_t flow_id, const char *protocol,
			     const struct cf_ip *ip, uint16_t port, const char *reason_code,
			     const char *control, const char *matched_cidr,
			     const char *matched_domain, const char *reason)
{
	struct event e = flow_event_start("policy_violation", flow_id, protocol);

	if (o)
		o->violations++;
	set_addr(&e, "remote", "remote_ip", "remote_port", ip, port, has_ports(protocol));
	set_str(&e, "action", "deny");
	set_str(&e, "reason_code", reason_code);
	set_str(&e, "control", control && *control ? control : CF_OBS_CONTROL_BUILTIN);
	set_str_or_null(&e, "matched_cidr", matched_cidr);
	set_str_or_null(&e, "matched_domain", matched_domain);
	set_str(&e, "reason", reason);
	emit(o, &e);
}

void cf_obs_flow_end(struct cf_obs *o, uint64_t flow_id, const struct cf_ip *ip, uint16_t port,
		     uint64_t bytes_sent, uint64_t bytes_received, uint64_t duration_ms)
{
	struct event e = tcp_event_start("flow_end", flow_id, ip, port);

	set(&e, "bytes_sent", cf_json_u64(bytes_sent));
	set(&e, "bytes_received", cf_json_u64(bytes_received));
	set(&e, "duration_ms", cf_json_u64(duration_ms));
	set_direction(&e, NULL);
	emit(o, &e);
}

/* The fields both datagram-flow events start with (ICMP: bare address, null port). */
static struct event dgram_event_start(const char *name, uint64_t flow_id,
				      const struct cf_obs_dgram *d)
{
	struct event e = flow_event_start(name, flow_id, d->protocol);

	set_addr(&e, "remote_addr", "remote_ip", "remote_port", d->ip, d->port,
		 has_ports(d->protocol));
	set(&e, "via_proxy", json_boolean(d->via_proxy));
	return e;
}

void cf_obs_datagram_flow_start(struct cf_obs *o, uint64_t flow_id, const struct cf_obs_dgram *d,
				const char *error)
{
	struct event e = dgram_event_start("datagram_flow_start", flow_id, d);

	set_str(&e, "status", error ? "error" : "ok");
	set_str(&e, "error", error);
	set_proc(&e, d->proc);
	set_direction(&e, NULL);
	emit(o, &e);
}

void cf_obs_datagram_flow_end(struct cf_obs *o, uint64_t flow_id, const struct cf_obs_dgram *d,
			      const struct cf_obs_traffic *t)
{
	struct event e = dgram_event_start("datagram_flow_end", flow_id, d);

	set(&e, "bytes_sent", cf_json_u64(t->bytes_sent));
	set(&e, "bytes_received", cf_json_u64(t->bytes_received));
	set(&e, "packets_sent", cf_json_u64(t->packets_sent));
	set(&e, "packets_received", cf_json_u64(t->packets_received));
	set(&e, "duration_ms", cf_json_u64(t->duration_ms));
	set_proc(&e, d->proc);
	set_direction(&e, NULL);
	emit(o, &e);
}

/*
 * The fields of every inbound event: the remote is the host-side client, the
 * tree's end is its loopback at @in->tree_port; never proxied, no process.
 */
static struct event inbound_event_start(const char *name, uint64_t flow_id,
					const struct cf_obs_inbound *in)
{
	struct event e = flow_event_start(name, flow_id, in->udp ? "udp" : "tcp");

	set_addr(&e, "remote_addr", "remote_ip", "remote_port", in->peer, in->peer_port, true);
	/* v1's flow_end has no via_proxy */
	if (in->udp || strcmp(name, "flow_end") != 0)
		set(&e, "via_proxy", json_false());
	return e;
}

void cf_obs_inbound_start(struct cf_obs *o, uint64_t flow_id, const struct cf_obs_inbound *in,
			  bool attempt, const char *error)
{
	const char *name = in->udp   ? "datagram_flow_start"
			   : attempt ? "connect_attempt"
				     : "connect_result";
	struct event e = inbound_event_start(name, flow_id, in);

	if (!attempt || in->udp) {
		set_str(&e, "status", error ? "error" : "ok");
		set_str(&e, "error", error);
	}
	set_proc(&e, NULL);
	if (!attempt && !in->udp)
		set_str(&e, "path", "relay"); /* an inbound connection is always relayed */
	set_direction(&e, in);
	emit(o, &e);
}

void cf_obs_inbound_end(struct cf_obs *o, uint64_t flow_id, const struct cf_obs_inbound *in,
			const struct cf_obs_traffic *t)
{
	struct event e =
	    inbound_event_start(in->udp ? "datagram_flow_end" : "flow_end", flow_id, in);

	set(&e, "bytes_sent", cf_json_u64(t->bytes_sent));
	set(&e, "bytes_received", cf_json_u64(t->bytes_received));
	if (in->udp) {
		set(&e, "packets_sent", cf_json_u64(t->packets_sent));
		set(&e, "packets_received", cf_json_u64(t->packets_received));
	}
	set(&e, "duration_ms", cf_json_u64(t->duration_ms));
	if (in->udp)
		set_proc(&e, NULL);
	set_direction(&e, in);
	emit(o, &e);
}

void cf_obs_runtime_failure(struct cf_obs *o, const char *phase, const char *reason_code,
			    const char *detail)
{
	struct event e = event_start("runtime_failure");

	set_str(&e, "phase", phase);
	set_str(&e, "reason_code", reason_code);
	set_str(&e, "detail", detail ? detail : ""); /* a string in v1, never null */
	emit(o, &e);
}
