/* SPDX-License-Identifier: MIT */
#include "engine/flows.h"

#include <errno.h>
#include <string.h>

#include "engine/ctx.h"
#include "util/log.h"

/* Flow ids are unique per run; the counter lives in the engine's stats. */
static uint64_t next_flow_id(struct cf_engine *e)
{
	return ++e->stats.flows_started;
}

int cf_flow_tcp_decide(struct cf_engine *e, struct cf_flow *f)
{
	const struct cf_ip *resolver;
	bool to_gateway = cf_engine_is_gateway(e, &f->dst);

	f->id = next_flow_id(e);
	f->start_ms = e->now_ms;
	f->target = f->dst;
	f->target_port = f->dport;
	if (f->dport == 53 && (to_gateway || e->cfg->dns_set)) {
		/* DNS over TCP: to the chosen resolver, whatever server the tree named. */
		resolver = cf_engine_resolver(e, 0);
		if (!resolver)
			return -ECONNREFUSED;
		f->target = *resolver;
	} else if (to_gateway) {
		/* The virtual gateway offers nothing but DNS. */
		return -ECONNREFUSED;
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
	(void)proto;
	f->id = next_flow_id(e);
	f->start_ms = e->now_ms;
	f->target = f->dst;
	f->target_port = f->dport;
	/* The virtual gateway answers DNS only (handled before this point). */
	if (cf_engine_is_gateway(e, &f->dst))
		return -EHOSTUNREACH;
	return 0;
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
