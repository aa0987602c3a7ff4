// SPDX-License-Identifier: MIT
/*
 * The host's local routing table, read into the policy and kept current.
 *
 * Theory of operation
 * -------------------
 * The kernel decides "is this destination the host itself?" with its local
 * table (table 255): RTN_LOCAL routes for every address of every interface
 * and for local ranges (127.0.0.0/8, AnyIP routes), RTN_ANYCAST for IPv6
 * subnet-router anycast addresses, RTN_BROADCAST for the subnets' broadcast
 * addresses. Reading that table, rather than listing interface addresses,
 * gives exactly the kernel's answer. A notification socket subscribed to
 * address and route changes wakes the engine; it then drains every pending
 * notification and dumps the table once more on a short-lived socket, so a
 * burst of changes costs one dump. Between a change and its notification
 * the previous set is in force: an address added to the host is denied a
 * moment later than it exists.
 */
#include "engine/hostaddrs.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/addr.h"
#include "policy/policy.h"

/* Large enough for a dump message batch (the kernel fills up to 32 KiB per read). */
#define NL_DUMP_SIZE 32768

struct cf_hostaddrs {
	struct mnl_socket *events;
	/* dumps: opened at start, as the engine's seccomp filter allows no new netlink socket */
	struct mnl_socket *dump;
	struct cf_policy *policy;
};

/* What one dump found. */
struct local_table {
	struct cf_cidr *nets;
	size_t n_nets, cap_nets;
	struct cf_ip *bcast;
	size_t n_bcast, cap_bcast;
	int err;
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *nv;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	nv = reallocarray(*v, ncap, size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static int route_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, RTA_MAX) >= 0 && (type == RTA_DST || type == RTA_TABLE))
		tb[type] = attr;
	return MNL_CB_OK;
}

/* Add one route of the local table to @t; others are ignored. */
static void add_route(struct local_table *t, const struct rtmsg *rm, const struct nlattr **tb)
{
	uint32_t table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rm->rtm_table;
	size_t alen = rm->rtm_family == AF_INET ? 4 : 16;
	struct cf_cidr c = {.ip = {.family = rm->rtm_family}, .prefix = rm->rtm_dst_len};

	if (table != RT_TABLE_LOCAL || (rm->rtm_family != AF_INET && rm->rtm_family != AF_INET6))
		return;
	if (tb[RTA_DST] && mnl_attr_get_payload_len(tb[RTA_DST]) == alen)
		memcpy(c.ip.b, mnl_attr_get_payload(tb[RTA_DST]), alen);
	if (c.prefix > alen * 8)
		return;
	if (rm->rtm_type == RTN_LOCAL || rm->rtm_type == RTN_ANYCAST) {
		if (grow((void **)&t->nets, &t->cap_nets, t->n_nets, sizeof(*t->nets)) < 0)
			t->err = -ENOMEM;
		else
			t->nets[t->n_nets++] = c;
	} else if (rm->rtm_type == RTN_BROADCAST) {
		if (grow((void **)&t->bcast, &t->cap_bcast, t->n_bcast, sizeof(*t->bcast)) < 0)
			t->err = -ENOMEM;
		else
			t->bcast[t->n_bcast++] = c.ip;
	}
}

static int on_route(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RTA_MAX + 1] = {0};
	const struct rtmsg *rm = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWROUTE || mnl_attr_parse(nlh, sizeof(*rm), route_attr, tb) < 0)
		return MNL_CB_OK;
	add_route(data, rm, tb);
	return MNL_CB_OK;
}

/* Dump the routes of @family into @t. */
static int dump_family(struct mnl_socket *nl, int family, struct local_table *t)
{
	char buf[NL_DUMP_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	uint32_t seq = (uint32_t)time(NULL) + (uint32_t)family, portid = mnl_socket_get_portid(nl);
	struct rtmsg *rm;
	ssize_t n;
	int r;

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	rm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rm));
	rm->rtm_family = (unsigned char)family;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)n, seq, portid, on_route, t);
	} while (r > MNL_CB_STOP);
	return r < 0 ? -errno : t->err;
}

/* Read the local table of both families into the policy. */
static int read_local_table(struct cf_hostaddrs *h)
{
	struct local_table t = {0};
	int r = dump_family(h->dump, AF_INET, &t);

	if (r == 0)
		r = dump_family(h->dump, AF_INET6, &t);
	if (r == 0)
		r = cf_policy_set_host_local(h->policy, t.nets, t.n_nets, t.bcast, t.n_bcast);
	free(t.nets);
	free(t.bcast);
	return r;
}

int cf_hostaddrs_open(struct cf_policy *policy, struct cf_hostaddrs **out)
{
	struct cf_hostaddrs *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->policy = policy;
	h->events = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	h->dump = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!h->events || !h->dump || mnl_socket_bind(h->dump, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto fail;
	}
	/* Subscribed before the first read: a change in between is not missed. */
	if (mnl_socket_bind(h->events,
			    RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
				RTMGRP_IPV6_ROUTE,
			    MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto fail;
	}
	r = read_local_table(h);
	if (r < 0)
		goto fail;
	*out = h;
	return 0;
fail:
	cf_hostaddrs_close(h);
	return r;
}

int cf_hostaddrs_fd(const struct cf_hostaddrs *h)
{
	return mnl_socket_get_fd(h->events);
}

int cf_hostaddrs_on_event(struct cf_hostaddrs *h)
{
	char buf[NL_DUMP_SIZE];

	/* The content does not matter: any change means one fresh read. */
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(h->events, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		/* ENOBUFS: notifications were lost, which a fresh read makes good. */
		if (n < 0 && errno != ENOBUFS)
			break;
	}
	if (errno != EAGAIN)
		return -errno;
	return read_local_table(h);
}

void cf_hostaddrs_close(struct cf_hostaddrs *h)
{
	if (!h)
		return;
	if (h->events)
		mnl_socket_close(h->events);
	if (h->dump)
		mnl_socket_close(h->dump);
	free(h);
}
