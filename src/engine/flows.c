/* SPDX-License-Identifier: MIT */
#include "engine/flows.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "dns/message.h"

#include "engine/ctx.h"
#include "policy/policy.h"
#include "util/log.h"

/* Flow ids are unique per run; the counter lives in the engine's stats. */
static uint64_t next_flow_id(struct cf_engine *e)
{
	return ++e->stats.flows_started;
}

/* Record a denial: the one place every protocol's violations pass through. */
static void violation(struct cf_engine *e, enum cf_flow_proto proto, const struct cf_ip *ip,
		      uint16_t port, const struct cf_verdict *v)
{
	char a[CF_ADDRPORT_STRLEN];

	e->stats.denials++;
	log_debug("denied %s %s: %s (%s)", cf_flow_proto_name(proto),
		  ip ? cf_addrport_format(ip, port, a, sizeof(a)) : "-", v->reason_text,
		  cf_reason_code(v->reason));
}

/* Policy for a flow to @f->target; return 0 or -EACCES (answered with admin-prohibited). */
static int police(struct cf_engine *e, enum cf_flow_proto proto, const struct cf_flow *f)
{
	struct cf_verdict v;

	cf_policy_check_flow(e->policy, proto, &f->target, f->target_port, f->via_proxy,
			     e->now_ms, &v);
	if (v.allow)
		return 0;
	violation(e, proto, &f->target, f->target_port, &v);
	return -EACCES;
}

bool cf_flow_dns_redirected(const struct cf_engine *e, const struct cf_ip *server)
{
	return e->cfg->dns_set || cf_engine_is_gateway(e, server);
}

int cf_flow_dns_decide(struct cf_engine *e, const char *qname, const struct cf_ip *server,
		       uint16_t port)
{
	struct cf_verdict v;

	/* A server the tree chose itself is a destination like any other. */
	if (!cf_flow_dns_redirected(e, server)) {
		cf_policy_check_flow(e->policy, CF_PROTO_DNS, server, port, false, e->now_ms, &v);
		if (!v.allow) {
			violation(e, CF_PROTO_DNS, server, port, &v);
			return -EACCES;
		}
	}
	cf_policy_check_dns(e->policy, qname, &v);
	if (v.allow)
		return 0;
	violation(e, CF_PROTO_DNS, server, port, &v);
	return -EACCES;
}

void cf_flow_dns_learn(struct cf_engine *e, const uint8_t *msg, size_t len)
{
	struct cf_dns_answer a;

	if (cf_dns_parse_answer(msg, len, &a) < 0)
		return;
	for (size_t i = 0; i < a.n; i++) {
		const struct cf_dns_record *r = &a.rr[i];

		if (r->is_cname)
			cf_policy_learn_cname(e->policy, r->name, r->target, r->ttl, e->now_ms);
		else
			cf_policy_learn_address(e->policy, r->name, &r->ip, r->ttl, e->now_ms);
	}
	cf_dns_answer_free(&a);
}

int cf_flow_tcp_decide(struct cf_engine *e, struct cf_flow *f)
{
	const struct cf_ip *resolver;
	bool to_gateway = cf_engine_is_gateway(e, &f->dst);

	f->id = next_flow_id(e);
	f->start_ms = e->now_ms;
	f->target = f->dst;
	f->target_port = f->dport;
	if (f->dport == 53) {
		/*
		 * DNS over TCP: to the chosen resolver when redirected, else to the
		 * server the tree named; queries are policed one by one (dnsstream.c).
		 */
		f->is_dns = true;
		if (cf_flow_dns_redirected(e, &f->dst)) {
			resolver = cf_engine_resolver(e, 0);
			if (!resolver)
				return -ECONNREFUSED;
			f->target = *resolver;
		} else if (police(e, CF_PROTO_DNS, f) < 0) {
			return -EACCES;
		}
		if (e->cfg->offline)
			return police(e, CF_PROTO_DNS, f);
	} else if (to_gateway) {
		/* The virtual gateway offers nothing but DNS. */
		return -ECONNREFUSED;
	} else if (police(e, CF_PROTO_TCP, f) < 0) {
		return -EACCES;
	}
	if (cf_log_enabled(CF_LOG_DEBUG)) {
		char a[CF_ADDRPORT_STRLEN], b[CF_ADDRPORT_STRLEN];

		log_debug("flow %llu: tcp %s -> %s", (unsigned long long)f->id,
			  cf_addrport_format(&f->src, f->sport, a, sizeof(a)),
			  cf_addrport_format(&f->target, f->target_port, b, sizeof(b)));
	}
	return 0;
}

int cf_flow_dgram_decide(struct cf_engine *e, struct cf_flow *f, uint8_t proto)
{
	enum cf_flow_proto p = proto == IPPROTO_UDP ? CF_PROTO_UDP
			       : proto == IPPROTO_ICMP ? CF_PROTO_ICMPV4 : CF_PROTO_ICMPV6;

	f->id = next_flow_id(e);
	f->start_ms = e->now_ms;
	f->target = f->dst;
	f->target_port = f->dport;
	/* The virtual gateway answers DNS only (handled before this point). */
	if (cf_engine_is_gateway(e, &f->dst))
		return -EHOSTUNREACH;
	return police(e, p, f);
}

void cf_flow_connect_result(struct cf_engine *e, struct cf_flow *f, int err)
{
	(void)e;
	f->connected = err == 0;
	if (err)
		log_debug("flow %llu: connect failed: %s", (unsigned long long)f->id,
			  strerror(err));
}

void cf_flow_end(struct cf_engine *e, struct cf_flow *f)
{
	log_debug("flow %llu: end after %llu ms, %llu bytes out, %llu bytes in",
		  (unsigned long long)f->id, (unsigned long long)(e->now_ms - f->start_ms),
		  (unsigned long long)f->bytes_sent, (unsigned long long)f->bytes_received);
}
