/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: the tree's kernel keeps a conntrack entry per flow
 * (its namespace's own table; the rule that sets CF_CT_MARK_ENGINE makes
 * the kernel track there at all), and tells subscribers when one is made
 * (NEW), changes (UPDATE) and goes (DESTROY). Entries are keyed by their
 * conntrack id. Parsing is libnetfilter_conntrack's (nfct_nlmsg_parse());
 * the messages come from the kernel through a socket the tree cannot
 * reach. A full receive buffer loses events (ENOBUFS): counted, said once,
 * and the flows it leaves open are ended at the run's end from a dump.
 */
#include "engine/ctrack.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/flows.h"
#include "util/log.h"

#define BUCKETS 4096u
#define BUF_SIZE 65536u

struct ct_flow {
	uint32_t id;
	bool denied;   /* policy refused it: the host's table drops it */
	bool resulted; /* its connect_result is logged */
	struct cf_flow f;
	struct ct_flow *next;
};

struct cf_ctrack {
	struct cf_watch w;
	int fd;
	struct cf_ip tree4, tree6;
	struct ct_flow *buckets[BUCKETS];
	uint64_t lost;
	bool final; /* cf_ctrack_finish(): every entry seen ends its flow */
	uint8_t buf[BUF_SIZE] __attribute__((aligned(8))); /* netlink messages are aligned */
};

/* What one message says about one entry. */
struct entry {
	uint32_t id, status, mark;
	uint8_t l4, tcp_state;
	struct cf_ip src, dst;
	uint16_t sport, dport;
	uint64_t bytes_out, bytes_in;
};

static struct ct_flow **slot(struct cf_ctrack *c, uint32_t id)
{
	struct ct_flow **p = &c->buckets[(id * 2654435761u) % BUCKETS];

	while (*p && (*p)->id != id)
		p = &(*p)->next;
	return p;
}

static void get_ip(const struct nf_conntrack *ct, uint8_t family, bool src, struct cf_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	ip->family = family;
	if (family == AF_INET) {
		uint32_t a = nfct_get_attr_u32(ct, src ? ATTR_ORIG_IPV4_SRC : ATTR_ORIG_IPV4_DST);

		memcpy(ip->b, &a, 4);
	} else {
		const void *a = nfct_get_attr(ct, src ? ATTR_ORIG_IPV6_SRC : ATTR_ORIG_IPV6_DST);

		if (a)
			memcpy(ip->b, a, 16);
	}
}

static uint64_t get_u64(const struct nf_conntrack *ct, enum nf_conntrack_attr a)
{
	return nfct_attr_is_set(ct, a) ? nfct_get_attr_u64(ct, a) : 0;
}

static int read_entry(const struct nf_conntrack *ct, struct entry *en)
{
	uint8_t family = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);

	memset(en, 0, sizeof(*en));
	if ((family != AF_INET && family != AF_INET6) || !nfct_attr_is_set(ct, ATTR_ID))
		return -EINVAL;
	en->id = nfct_get_attr_u32(ct, ATTR_ID);
	en->status = nfct_attr_is_set(ct, ATTR_STATUS) ? nfct_get_attr_u32(ct, ATTR_STATUS) : 0;
	en->mark = nfct_attr_is_set(ct, ATTR_MARK) ? nfct_get_attr_u32(ct, ATTR_MARK) : 0;
	en->l4 = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
	get_ip(ct, family, true, &en->src);
	get_ip(ct, family, false, &en->dst);
	if (en->l4 == IPPROTO_TCP || en->l4 == IPPROTO_UDP) {
		en->sport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
		en->dport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	} else if (en->l4 == IPPROTO_ICMP || en->l4 == IPPROTO_ICMPV6) {
		en->sport = ntohs(nfct_get_attr_u16(ct, ATTR_ICMP_ID));
	} else {
		return -EPROTONOSUPPORT;
	}
	if (en->l4 == IPPROTO_TCP && nfct_attr_is_set(ct, ATTR_TCP_STATE))
		en->tcp_state = nfct_get_attr_u8(ct, ATTR_TCP_STATE);
	en->bytes_out = get_u64(ct, ATTR_ORIG_COUNTER_BYTES);
	en->bytes_in = get_u64(ct, ATTR_REPL_COUNTER_BYTES);
	return 0;
}

/* The kernel's path only: from the tree's veth address, not carried by the engine. */
static bool ours(const struct cf_ctrack *c, const struct entry *en)
{
	if (en->mark == CF_CT_MARK_ENGINE)
		return false;
	return cf_ip_equal(&en->src, en->src.family == AF_INET ? &c->tree4 : &c->tree6);
}

static void on_new(struct cf_engine *e, struct cf_ctrack *c, const struct entry *en)
{
	struct ct_flow *cf = calloc(1, sizeof(*cf));
	int r;

	if (!cf) {
		e->stats.packets_dropped++;
		return;
	}
	cf->id = en->id;
	cf->f.src = en->src;
	cf->f.dst = en->dst;
	cf->f.sport = en->sport;
	cf->f.dport = en->dport;
	cf->f.kernel = true;
	r = en->l4 == IPPROTO_TCP ? cf_flow_tcp_decide(e, &cf->f)
				  : cf_flow_dgram_decide(e, &cf->f, en->l4);
	cf->denied = r < 0;
	/* A datagram flow is "connected" once allowed, as the engine's own are. */
	if (r == 0 && en->l4 != IPPROTO_TCP) {
		cf_flow_connect_result(e, &cf->f, 0, NULL);
		cf->resulted = true;
	}
	*slot(c, en->id) = cf;
}

/* TCP: the first reply decides, a reset being a refusal. */
static void on_update(struct cf_engine *e, struct ct_flow *cf, const struct entry *en)
{
	if (cf->denied || cf->resulted || !(en->status & IPS_SEEN_REPLY))
		return;
	cf->resulted = true;
	if (en->tcp_state == TCP_CONNTRACK_CLOSE)
		cf_flow_connect_result(e, &cf->f, ECONNREFUSED, NULL);
	else
		cf_flow_connect_result(e, &cf->f, 0, NULL);
}

/* Gone (or the run is over): a flow that never got a reply failed; one that connected ends. */
static void end_flow(struct cf_engine *e, struct ct_flow *cf, const struct entry *en)
{
	if (cf->denied)
		return;
	if (!cf->resulted) {
		cf->resulted = true;
		cf_flow_connect_result(
		    e, &cf->f,
		    en && en->tcp_state == TCP_CONNTRACK_CLOSE ? ECONNREFUSED : ETIMEDOUT, NULL);
	}
	if (en) {
		cf->f.bytes_sent = en->bytes_out;
		cf->f.bytes_received = en->bytes_in;
	}
	cf_flow_end(e, &cf->f); /* logs only a flow that connected */
}

static void on_destroy(struct cf_engine *e, struct cf_ctrack *c, const struct entry *en)
{
	struct ct_flow **p = slot(c, en->id), *cf = *p;

	if (!cf)
		return; /* made before the subscription, or its NEW was lost */
	end_flow(e, cf, en);
	*p = cf->next;
	free(cf);
}

static int on_msg(const struct nlmsghdr *nlh, void *data)
{
	struct cf_engine *e = data;
	struct cf_ctrack *c = e->ctrack;
	unsigned type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	struct nf_conntrack *ct;
	struct entry en;
	struct ct_flow *cf;
	int r;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_CTNETLINK)
		return MNL_CB_OK;
	/* A fresh object per message: parsing leaves attributes a message lacks as they were. */
	ct = nfct_new();
	if (!ct)
		return MNL_CB_OK;
	r = nfct_nlmsg_parse(nlh, ct) < 0 ? -EINVAL : read_entry(ct, &en);
	nfct_destroy(ct);
	if (r < 0 || !ours(c, &en))
		return MNL_CB_OK;
	cf = *slot(c, en.id);
	if (type == IPCTNL_MSG_CT_DELETE || (c->final && cf))
		on_destroy(e, c, &en);
	else if (!cf && (nlh->nlmsg_flags & NLM_F_CREATE))
		on_new(e, c, &en);
	else if (cf)
		on_update(e, cf, &en);
	return MNL_CB_OK;
}

void cf_ctrack_on_readable(struct cf_engine *e)
{
	struct cf_ctrack *c = e->ctrack;

	for (;;) {
		ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			if (c->lost++ == 0)
				log_warn(
				    "conntrack events were lost (the engine fell behind): the flow "
				    "log misses some of the tree's direct flows");
			continue;
		}
		if (n <= 0)
			return;
		mnl_cb_run(c->buf, (size_t)n, 0, 0, on_msg, e);
	}
}

int cf_ctrack_new(struct cf_engine *e, int fd, const struct cf_veth_plan *veth)
{
	struct cf_ctrack *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->w.kind = CF_W_CTRACK;
	c->tree4 = veth->tree4;
	c->tree6 = veth->tree6;
	e->ctrack = c;
	return cf_engine_watch(e, fd, EPOLLIN, &c->w);
}

/* Ask for every entry of the table; the answers arrive among the events. */
static int request_dump(struct cf_ctrack *c, uint32_t seq)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfh;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_UNSPEC;
	nfh->version = NFNETLINK_V0;
	return send(c->fd, nlh, nlh->nlmsg_len, 0) < 0 ? -errno : 0;
}

/* Read until the dump is done, for at most a second. */
static void read_dump(struct cf_engine *e, struct cf_ctrack *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	while (poll(&p, 1, 1000) == 1) {
		ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);

		if (n < 0 && (errno == EINTR || errno == ENOBUFS || errno == EAGAIN))
			continue;
		if (n <= 0 || mnl_cb_run(c->buf, (size_t)n, 0, 0, on_msg, e) <= MNL_CB_STOP)
			return;
	}
}

void cf_ctrack_finish(struct cf_engine *e)
{
	struct cf_ctrack *c = e->ctrack;

	if (!c)
		return;
	cf_ctrack_on_readable(e);
	c->final = true;
	if (request_dump(c, (uint32_t)time(NULL)) == 0)
		read_dump(e, c);
	for (size_t i = 0; i < BUCKETS; i++) {
		while (c->buckets[i]) {
			struct ct_flow *cf = c->buckets[i];

			c->buckets[i] = cf->next;
			end_flow(e, cf, NULL);
			free(cf);
		}
	}
	close(c->fd);
	free(c);
	e->ctrack = NULL;
}
