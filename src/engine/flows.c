/* SPDX-License-Identifier: MIT */
/*
 * The engine's one decision point and one record point. Every TCP
 * connection, UDP or ICMP flow and DNS query passes cf_flow_*_decide()
 * (target selection, policy, the flow log's attempt or query event), and
 * every outcome passes the hooks below, so policy, the flow log and the
 * summary see the same events in the same order. Flow-log events are
 * written only when an observer exists (--flow-log or --summary).
 */
#include "engine/flows.h"

#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns/message.h"
#include "dns/synth.h"
#include "engine/attrib.h"
#include "engine/ctx.h"
#include "engine/socksudp.h"
#include "obs/flowlog.h"
#include "policy/namecache.h"
#include "policy/policy.h"
#include "util/log.h"
#include "util/siphash.h"

#define MAX_ANSWER_IPS 32

/* Flow ids are unique per run; the counter lives in the engine's stats. */
static uint64_t next_flow_id(struct cf_engine *e)
{
	return ++e->stats.flows_started;
}

static const char *proto_name(const struct cf_flow *f)
{
	return cf_flow_proto_name((enum cf_flow_proto)f->proto);
}

static enum cf_flow_proto dgram_proto(uint8_t ipproto)
{
	if (ipproto == IPPROTO_UDP)
		return CF_PROTO_UDP;
	return ipproto == IPPROTO_ICMP ? CF_PROTO_ICMPV4 : CF_PROTO_ICMPV6;
}

/*
 * Whether this is the first denial of @proto to @ip:@port (and @name) in the
 * run: a keyed hash of the destination in an open-addressed set of
 * CF_DENIED_SLOTS, allocated at the first denial. Once the set is full (or
 * cannot be allocated) every later destination counts as seen: the flow log
 * still has them all, stderr is not flooded.
 */
static bool first_denial(struct cf_engine *e, enum cf_flow_proto proto, const struct cf_ip *ip,
			 uint16_t port, const char *name)
{
	struct cf_denied *d = &e->denied;
	uint8_t buf[1 + sizeof(struct cf_ip) + 2 + 256];
	size_t len = 0, nlen = name ? strnlen(name, 255) : 0;
	uint64_t h;

	if (!d->slots && !d->full) {
		cf_hash_key(d->key, e);
		d->slots = calloc(CF_DENIED_SLOTS, sizeof(*d->slots));
	}
	if (!d->slots || d->full)
		return false;
	buf[len++] = (uint8_t)proto;
	if (ip) {
		memcpy(buf + len, ip, sizeof(*ip));
		len += sizeof(*ip);
	}
	buf[len++] = (uint8_t)(port >> 8);
	buf[len++] = (uint8_t)port;
	memcpy(buf + len, name ? name : "", nlen);
	len += nlen;
	h = cf_siphash24(d->key, buf, len) | 1; /* 0 marks a free slot */
	for (size_t i = 0, s = h % CF_DENIED_SLOTS; i < CF_DENIED_SLOTS;
	     i++, s = (s + 1) % CF_DENIED_SLOTS) {
		if (d->slots[s] == h)
			return false;
		if (d->slots[s])
			continue;
		d->slots[s] = h;
		if (++d->used >= CF_DENIED_SLOTS * 3 / 4)
			d->full = true;
		return true;
	}
	return false;
}

/*
 * The one line on stderr for a destination's first denial (not with
 * --quiet): protocol, destination, the name when one is known, and the
 * policy's reason text, the same words as the flow log's "reason".
 */
static void say_denial(struct cf_engine *e, enum cf_flow_proto proto, const struct cf_ip *ip,
		       uint16_t port, const char *name, const struct cf_verdict *v)
{
	char a[CF_ADDRPORT_STRLEN];
	const char *names[1];

	if (e->cfg->quiet)
		return;
	if (!name && ip && proto != CF_PROTO_DNS &&
	    cf_policy_names_for(e->policy, ip, e->now_ms, names, 1) == 1)
		name = names[0];
	if (!first_denial(e, proto, ip, port, name)) {
		if (e->denied.full && !e->denied.full_said) {
			e->denied.full_said = true;
			log_warn("denied more than %d destinations: further denials are only in "
				 "the flow log (--flow-log) and --summary",
				 CF_DENIED_SLOTS * 3 / 4);
		}
		return;
	}
	if (proto == CF_PROTO_DNS)
		log_warn("denied dns %s: %s", name ? name : "query", v->reason_text);
	else if (proto == CF_PROTO_ICMPV4 || proto == CF_PROTO_ICMPV6)
		log_warn("denied %s %s%s%s%s: %s", cf_flow_proto_name(proto),
			 ip ? cf_ip_format(ip, a, sizeof(a)) : "-", name ? " (" : "",
			 name ? name : "", name ? ")" : "", v->reason_text);
	else
		log_warn("denied %s %s%s%s%s: %s", cf_flow_proto_name(proto),
			 ip ? cf_addrport_format(ip, port, a, sizeof(a)) : "-", name ? " (" : "",
			 name ? name : "", name ? ")" : "", v->reason_text);
}

/*
 * Record a denial: the one place every protocol's violations pass through.
 * @name: the query name of a denied DNS query, else NULL.
 */
static void violation(struct cf_engine *e, uint64_t id, enum cf_flow_proto proto,
		      const struct cf_ip *ip, uint16_t port, const char *name,
		      const struct cf_verdict *v)
{
	char a[CF_ADDRPORT_STRLEN];

	e->stats.denials++;
	log_debug("denied %s %s: %s (%s)", cf_flow_proto_name(proto),
		  ip ? cf_addrport_format(ip, port, a, sizeof(a)) : "-", v->reason_text,
		  cf_reason_code(v->reason));
	say_denial(e, proto, ip, port, name, v);
	if (e->obs)
		cf_obs_policy_violation(e->obs, id, cf_flow_proto_name(proto), ip, port,
					cf_reason_code(v->reason), v->control, v->matched_cidr,
					v->matched_domain, v->reason_text);
}

/*
 * Policy for a flow to @f->target; return 0 or -EACCES (answered with
 * admin-prohibited). A flow to host.childflow.internal on a port
 * --allow-host-port opened goes to the host's loopback, never through the
 * proxy (whose loopback is not this host's).
 */
static int police(struct cf_engine *e, enum cf_flow_proto proto, struct cf_flow *f)
{
	struct cf_ip loopback;
	struct cf_verdict v;

	if (cf_engine_host_target(e, &f->target, &loopback))
		f->via_proxy = false;
	cf_policy_check_flow(e->policy, proto, &f->target, f->target_port, f->via_proxy, e->now_ms,
			     &v);
	if (!v.allow) {
		violation(e, f->id, proto, &f->target, f->target_port, NULL, &v);
		return -EACCES;
	}
	if (v.host_port)
		f->target = loopback;
	return 0;
}

bool cf_flow_tcp_names_checked(const struct cf_engine *e, const struct cf_flow *f)
{
	struct cf_ip loopback;

	return cf_policy_has_domain_rules(e->policy) && !f->is_dns &&
	       !cf_engine_host_target(e, &f->dst, &loopback);
}

int cf_flow_tcp_name(struct cf_engine *e, struct cf_flow *f, const char *name, const char *source)
{
	struct cf_verdict v;

	cf_policy_check_name(e->policy, name, source, &f->target, f->target_port, &v);
	if (v.allow)
		return 0;
	violation(e, f->id, CF_PROTO_TCP, &f->target, f->target_port, name, &v);
	return -EACCES;
}

bool cf_flow_dns_redirected(const struct cf_engine *e, const struct cf_ip *server)
{
	/* With remote DNS no server is asked at all: every query is the engine's. */
	return e->cfg->dns_set || e->synth || cf_engine_is_gateway(e, server);
}

bool cf_flow_dns_local(const struct cf_engine *e)
{
	return e->synth || e->cfg->offline;
}

/* A query for host.childflow.internal to childflow's resolver, with ports opened. */
static bool is_host_alias_query(const struct cf_engine *e, const struct cf_ip *server,
				const char *qname)
{
	return e->cfg->allow_host_ports.n && !e->cfg->offline && qname &&
	       cf_flow_dns_redirected(e, server) && strcasecmp(qname, CF_PLAN_HOST_NAME) == 0;
}

uint64_t cf_flow_dns_query(struct cf_engine *e, uint64_t id, bool tcp, const uint8_t *msg,
			   size_t len, const struct cf_ip *server, uint16_t port, int *verdict)
{
	struct cf_dns_query q;
	struct cf_verdict v;
	const char *qname = NULL, *proto = tcp ? "tcp" : "udp";
	char tb[16];

	if (!id)
		id = next_flow_id(e);
	*verdict = -EINVAL;
	if (cf_dns_parse_query(msg, len, &q) < 0 || q.is_response)
		return id;
	if (q.has_question)
		qname = q.qname;
	if (e->obs)
		cf_obs_dns_query(e->obs, id, proto, server, port, qname,
				 cf_dns_type_name(q.qtype, tb, sizeof(tb)));
	/*
	 * No single question that ldns could name: domain rules cannot judge it,
	 * so it is never forwarded (answered FORMERR).
	 */
	if (!q.has_question)
		return id;
	if (is_host_alias_query(e, server, qname)) {
		*verdict = 1; /* --allow-host-port opened it: the engine names it */
		return id;
	}
	/* A server the tree chose itself is a destination like any other. */
	if (!cf_flow_dns_redirected(e, server)) {
		cf_policy_check_flow(e->policy, CF_PROTO_DNS, server, port, false, e->now_ms, &v);
		if (!v.allow) {
			violation(e, id, CF_PROTO_DNS, server, port, qname, &v);
			*verdict = -EACCES;
			return id;
		}
	}
	cf_policy_check_dns(e->policy, qname, &v);
	if (!v.allow) {
		violation(e, id, CF_PROTO_DNS, server, port, qname, &v);
		*verdict = -EACCES;
		return id;
	}
	*verdict = e->synth ? 1 : 0;
	return id;
}

static size_t asked_slot(const struct cf_ip *ip)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < 16; i++)
		h = (h ^ ip->b[i]) * 16777619u;
	return h % CF_ASKED_SLOTS;
}

/* Remember that the tree's query in @msg (an answer) gave it @ip. */
static void remember_asked(struct cf_engine *e, const uint8_t *msg, size_t len,
			   const struct cf_ip *ip)
{
	struct cf_asked_name *slot;
	struct cf_dns_query q;

	if (!e->asked || cf_dns_parse_query(msg, len, &q) < 0 || !q.has_question || !q.qname[0])
		return;
	slot = &e->asked[asked_slot(ip)];
	slot->ip = *ip;
	snprintf(slot->name, sizeof(slot->name), "%s", q.qname);
}

const char *cf_flow_asked_name(const struct cf_engine *e, const struct cf_ip *ip)
{
	const struct cf_asked_name *slot;

	if (!e->asked)
		return NULL;
	slot = &e->asked[asked_slot(ip)];
	return cf_ip_equal(&slot->ip, ip) && slot->name[0] ? slot->name : NULL;
}

enum answer_mode {
	ANSWER_RELAYED,		  /* a resolver's */
	ANSWER_SYNTHETIC_EMPTY,	  /* the engine's, no records */
	ANSWER_SYNTHETIC_ADDRESS, /* the engine's, stand-in addresses (remote DNS) */
};

static const char *const answer_mode_name[] = {
    [ANSWER_RELAYED] = "relayed",
    [ANSWER_SYNTHETIC_EMPTY] = "synthetic_empty",
    [ANSWER_SYNTHETIC_ADDRESS] = "synthetic_address",
};

/* A backend that enforces domain rules itself hears of each address they cover. */
static void tell_learned(struct cf_engine *e, const struct cf_dns_record *r)
{
	uint32_t ttl = r->ttl < CF_NC_MIN_TTL_S	  ? CF_NC_MIN_TTL_S
		       : r->ttl > CF_NC_MAX_TTL_S ? CF_NC_MAX_TTL_S
						  : r->ttl;
	int v;

	if (r->is_cname)
		return;
	v = cf_policy_names_verdict(e->policy, &r->ip, e->now_ms);
	if (v != 0)
		e->learned(e->learned_arg, &r->ip, v, ttl);
}

/*
 * Teach policy's name memory (and the proxy's name choice) what answer @a
 * says about @msg's question: only its name and the CNAME chain from it, so
 * an extra record cannot bind a name nobody asked for.
 */
static void learn(struct cf_engine *e, const uint8_t *msg, size_t len, struct cf_dns_answer *a)
{
	struct cf_dns_query q;

	if (cf_dns_parse_query(msg, len, &q) < 0 || !q.has_question || !q.qname[0])
		return;
	cf_dns_answer_keep_chain(a, q.qname);
	for (size_t i = 0; i < a->n; i++) {
		const struct cf_dns_record *r = &a->rr[i];

		if (r->is_cname) {
			cf_policy_learn_cname(e->policy, r->name, r->target, r->ttl, e->now_ms);
		} else {
			cf_policy_learn_address(e->policy, r->name, &r->ip, r->ttl, e->now_ms);
			remember_asked(e, msg, len, &r->ip);
		}
	}
	for (size_t i = 0; e->learned && i < a->n; i++)
		tell_learned(e, &a->rr[i]);
}

/*
 * Log one answer with the addresses the tree got (all of them); learn from
 * it when @learns (the engine's own answers, and its resolver's).
 */
static void dns_answer(struct cf_engine *e, uint64_t id, bool tcp, const struct cf_ip *server,
		       uint16_t port, const uint8_t *msg, size_t len, enum answer_mode mode,
		       bool learns)
{
	struct cf_ip ips[MAX_ANSWER_IPS];
	struct cf_dns_answer a = {0};
	struct cf_dns_query q;
	size_t n = 0;
	char tb[16];
	bool parsed = cf_dns_parse_answer(msg, len, &a) == 0;

	for (size_t i = 0; parsed && i < a.n; i++)
		if (!a.rr[i].is_cname && n < MAX_ANSWER_IPS)
			ips[n++] = a.rr[i].ip;
	if (parsed && learns)
		learn(e, msg, len, &a);
	if (e->obs) {
		bool hasq = cf_dns_parse_query(msg, len, &q) == 0 && q.has_question;

		cf_obs_dns_answer(e->obs, id, tcp ? "tcp" : "udp", server, port,
				  hasq ? q.qname : NULL,
				  cf_dns_type_name(hasq ? q.qtype : 0, tb, sizeof(tb)),
				  answer_mode_name[mode], len, ips, n);
	}
	if (parsed)
		cf_dns_answer_free(&a);
}

void cf_flow_dns_relayed(struct cf_engine *e, uint64_t id, bool tcp, const struct cf_ip *server,
			 uint16_t port, const uint8_t *msg, size_t len)
{
	/*
	 * Only the resolver childflow forwards to teaches the name memory: a
	 * server the tree addressed itself (not redirected) may be the tree's own
	 * and answer anything.
	 */
	dns_answer(e, id, tcp, server, port, msg, len, ANSWER_RELAYED,
		   cf_flow_dns_redirected(e, server));
}

void cf_flow_dns_failed(struct cf_engine *e, uint64_t id, const struct cf_ip *server, uint16_t port,
			const uint8_t *msg, size_t len)
{
	struct cf_dns_query q;
	char detail[320];

	dns_answer(e, id, false, server, port, msg, len, ANSWER_SYNTHETIC_EMPTY, false);
	if (!e->obs)
		return;
	snprintf(detail, sizeof(detail),
		 "no resolver answered the query for %s; the tree got SERVFAIL",
		 cf_dns_parse_query(msg, len, &q) == 0 && q.has_question ? q.qname : "(no name)");
	cf_obs_runtime_failure(e->obs, "run", "dns_upstream_timeout", detail);
}

void cf_flow_dns_synthetic(struct cf_engine *e, uint64_t id, bool tcp, const struct cf_ip *server,
			   uint16_t port, const uint8_t *msg, size_t len)
{
	dns_answer(e, id, tcp, server, port, msg, len, ANSWER_SYNTHETIC_EMPTY, false);
}

static bool asks_for_addresses(const struct cf_dns_query *q)
{
	return q->qclass == 1 /* IN */ &&
	       (q->qtype == 1 /* A */ || q->qtype == 28 /* AAAA */ || q->qtype == 255 /* ANY */);
}

ssize_t cf_flow_dns_remote_answer(struct cf_engine *e, uint64_t id, bool tcp,
				  const struct cf_ip *server, uint16_t port, const uint8_t *msg,
				  size_t len, uint8_t *out, size_t cap)
{
	struct cf_dns_query q;
	struct cf_ip ips[2];
	uint8_t rcode = CF_DNS_RCODE_NOERROR;
	ssize_t n = -ENOENT;
	int r = -ENOENT;

	if (cf_dns_parse_query(msg, len, &q) < 0 || !q.has_question) {
		r = -EINVAL;
	} else if (strcasecmp(q.qname, CF_PLAN_HOST_NAME) == 0) {
		ips[0] = e->plan.host4;
		ips[1] = e->plan.host6;
		r = asks_for_addresses(&q) ? 0 : -ENOENT;
	} else if (asks_for_addresses(&q) && e->synth) {
		r = cf_synth_addrs(e->synth, q.qname, e->now_ms, &ips[0], &ips[1]);
	}
	if (r == 0)
		n = cf_dns_build_address_answer(msg, len, ips, 2, CF_SYNTH_TTL_S, out, cap);
	/* Never NODATA for a name that has addresses: say the failure. */
	if (r != -ENOENT && r != -EINVAL && n < 0)
		rcode = CF_DNS_RCODE_SERVFAIL;
	if (r == -ENOSPC && !e->synth_full_warned) {
		log_warn("remote DNS: all %u stand-in addresses were used in the last %u minutes; "
			 "new names get SERVFAIL until one is idle that long",
			 CF_SYNTH_DEFAULT_SLOTS, CF_SYNTH_MIN_IDLE_MS / 60000u);
		e->synth_full_warned = true;
	}
	if (n >= 0) {
		dns_answer(e, id, tcp, server, port, out, (size_t)n, ANSWER_SYNTHETIC_ADDRESS,
			   true);
		return n;
	}
	n = cf_dns_build_empty_answer(msg, len, rcode, out, cap);
	if (n > 0)
		dns_answer(e, id, tcp, server, port, out, (size_t)n, ANSWER_SYNTHETIC_EMPTY, false);
	return n;
}

/*
 * The process of the tree behind @f's socket, for the flow log (NULL when
 * unknown): looked up for the flow's first event, recalled for the next.
 */
static const struct cf_obs_proc *owner(struct cf_engine *e, struct cf_flow *f,
				       struct cf_attrib_proc *ap, struct cf_obs_proc *op)
{
	uint8_t proto = f->proto == CF_PROTO_TCP ? IPPROTO_TCP : IPPROTO_UDP;

	if (!e->attrib || (f->proto != CF_PROTO_TCP && f->proto != CF_PROTO_UDP))
		return NULL;
	if (f->owner_pid <= 0 || cf_attrib_recall(e->attrib, f->owner_pid, ap) < 0) {
		if (cf_attrib_lookup(e->attrib, proto, &f->src, f->sport, &f->dst, f->dport, ap) <
		    0)
			return NULL;
		f->owner_pid = ap->pid;
	}
	op->pid = ap->pid;
	op->comm = ap->comm;
	op->exe = ap->exe;
	return op;
}

static void attempt(struct cf_engine *e, struct cf_flow *f)
{
	struct cf_attrib_proc ap;
	struct cf_obs_proc op;

	if (cf_log_enabled(CF_LOG_DEBUG)) {
		char a[CF_ADDRPORT_STRLEN], b[CF_ADDRPORT_STRLEN];

		log_debug("flow %llu: %s %s -> %s", (unsigned long long)f->id, proto_name(f),
			  cf_addrport_format(&f->src, f->sport, a, sizeof(a)),
			  cf_addrport_format(&f->target, f->target_port, b, sizeof(b)));
	}
	/* A datagram flow's one start event comes once its socket is open
	 * (cf_flow_connect_result()). */
	if (e->obs && !f->is_dns && f->proto == CF_PROTO_TCP)
		cf_obs_connect_attempt(e->obs, f->id, &f->target, f->target_port, f->via_proxy,
				       owner(e, f, &ap, &op));
}

/*
 * TCP to port 53: answered by the engine itself (cf_flow_dns_local()), else
 * to the chosen resolver when redirected, else to the server the tree named.
 */
static int tcp_dns_target(struct cf_engine *e, struct cf_flow *f)
{
	const struct cf_ip *resolver;

	f->is_dns = true;
	if (cf_flow_dns_local(e))
		return 0; /* each query is decided and answered by dnsstream.c */
	if (cf_flow_dns_redirected(e, &f->dst)) {
		resolver = cf_engine_resolver(e, 0);
		if (!resolver)
			return -ECONNREFUSED;
		f->target = *resolver;
	} else if (police(e, CF_PROTO_DNS, f) < 0) {
		return -EACCES;
	}
	return 0; /* queries are policed one by one (dnsstream.c) */
}

/*
 * TCP to a remote-DNS stand-in address: decided by the name it stands for,
 * whose binding is refreshed for policy's name memory (it outlives the
 * answer's TTL as long as the tree uses it).
 */
static int tcp_synthetic_target(struct cf_engine *e, struct cf_flow *f)
{
	const char *name = cf_synth_name(e->synth, &f->dst, e->now_ms);
	char a[CF_IP_STRLEN];

	if (!name) {
		log_warn("the tree connected to %s, a remote-DNS stand-in address that stands for "
			 "no name (an answer from an earlier run?); refused",
			 cf_ip_format(&f->dst, a, sizeof(a)));
		return -ECONNREFUSED;
	}
	cf_policy_learn_address(e->policy, name, &f->dst, CF_SYNTH_TTL_S, e->now_ms);
	return police(e, CF_PROTO_TCP, f);
}

int cf_flow_tcp_decide(struct cf_engine *e, struct cf_flow *f)
{
	int r;

	f->id = next_flow_id(e);
	f->proto = CF_PROTO_TCP;
	f->start_ms = e->now_ms;
	f->target = f->dst;
	f->target_port = f->dport;
	/* Through the proxy: every TCP flow but DNS, which the engine's own resolver answers. */
	f->via_proxy = e->cfg->proxy.scheme != CF_PROXY_NONE && f->dport != 53;
	if (f->dport == 53)
		r = tcp_dns_target(e, f);
	else if (cf_engine_is_gateway(e, &f->dst))
		r = -ECONNREFUSED; /* the virtual gateway offers nothing but DNS */
	else if (e->synth && cf_synth_contains(&f->dst))
		r = tcp_synthetic_target(e, f);
	else
		r = police(e, CF_PROTO_TCP, f);
	if (r == 0)
		attempt(e, f);
	return r;
}

int cf_flow_dgram_decide(struct cf_engine *e, struct cf_flow *f, uint8_t ipproto)
{
	int r;

	f->id = next_flow_id(e);
	f->proto = (uint8_t)dgram_proto(ipproto);
	f->start_ms = e->now_ms;
	f->target = f->dst;
	f->target_port = f->dport;
	/* UDP through a socks5:// proxy's UDP ASSOCIATE (socksudp.c); never DNS, which the
	 * engine's resolver answers, nor ICMP, which no proxy carries, nor what the rootful
	 * backend's kernel carried past the engine (ctrack.c). */
	f->via_proxy =
	    ipproto == IPPROTO_UDP && f->dport != 53 && !f->kernel && cf_socksudp_enabled(e);
	/* The virtual gateway answers DNS only (handled before this point). */
	if (cf_engine_is_gateway(e, &f->dst))
		return -EHOSTUNREACH;
	r = police(e, dgram_proto(ipproto), f);
	if (r == 0)
		attempt(e, f);
	return r;
}

/* @f as the datagram-flow events name it, with @proc (may be NULL). */
static struct cf_obs_dgram obs_dgram(const struct cf_flow *f, const struct cf_obs_proc *proc)
{
	return (struct cf_obs_dgram){.protocol = proto_name(f),
				     .ip = &f->target,
				     .port = f->target_port,
				     .via_proxy = f->via_proxy,
				     .proc = proc};
}

/*
 * The process a flow's start event named, without a new lookup: at its end
 * the tree's socket may be gone or its port taken by another process.
 */
static const struct cf_obs_proc *recalled_owner(struct cf_engine *e, const struct cf_flow *f,
						struct cf_attrib_proc *ap, struct cf_obs_proc *op)
{
	if (!e->attrib || f->owner_pid <= 0 || cf_attrib_recall(e->attrib, f->owner_pid, ap) < 0)
		return NULL;
	op->pid = ap->pid;
	op->comm = ap->comm;
	op->exe = ap->exe;
	return op;
}

void cf_flow_connect_result(struct cf_engine *e, struct cf_flow *f, int err, const char *why)
{
	struct cf_attrib_proc ap;
	struct cf_obs_proc op;
	const char *error = err ? (why ? why : strerror(err)) : NULL;
	struct cf_obs_dgram d;

	f->connected = err == 0;
	if (err)
		log_debug("flow %llu: connect failed: %s", (unsigned long long)f->id, error);
	if (!e->obs || f->is_dns)
		return;
	if (f->proto == CF_PROTO_TCP) {
		cf_obs_connect_result(e->obs, f->id, &f->target, f->target_port, f->via_proxy,
				      error, owner(e, f, &ap, &op),
				      f->switched ? "socket"
				      : f->kernel ? "kernel"
						  : "relay");
		return;
	}
	d = obs_dgram(f, owner(e, f, &ap, &op));
	cf_obs_datagram_flow_start(e->obs, f->id, &d, error);
}

void cf_flow_end(struct cf_engine *e, struct cf_flow *f)
{
	struct cf_attrib_proc ap;
	struct cf_obs_proc op;
	struct cf_obs_traffic t = {.bytes_sent = f->bytes_sent,
				   .bytes_received = f->bytes_received,
				   .packets_sent = f->packets_sent,
				   .packets_received = f->packets_received,
				   .duration_ms = e->now_ms - f->start_ms};
	struct cf_obs_dgram d;

	log_debug("flow %llu: end after %llu ms, %llu bytes out, %llu bytes in",
		  (unsigned long long)f->id, (unsigned long long)t.duration_ms,
		  (unsigned long long)f->bytes_sent, (unsigned long long)f->bytes_received);
	if (!e->obs || !f->connected || f->is_dns)
		return;
	if (f->proto == CF_PROTO_TCP) {
		cf_obs_flow_end(e->obs, f->id, &f->target, f->target_port, f->bytes_sent,
				f->bytes_received, t.duration_ms);
		return;
	}
	d = obs_dgram(f, recalled_owner(e, f, &ap, &op));
	cf_obs_datagram_flow_end(e->obs, f->id, &d, &t);
}
