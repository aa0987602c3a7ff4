/* SPDX-License-Identifier: MIT */
/*
 * Why these ranges: 198.18.0.0/15 is for benchmarks (RFC 2544), so no real
 * service lives there; the sandbox's tun0 uses 198.18.0.0/24 inside the
 * tree and --proxy-remote-dns's stand-ins 198.19.0.0/16 (dns/synth.h), the
 * veths of runs take /30s of 198.18.128.0/17 (8,192 of them). The IPv6 side
 * is a /64 of childflow's ULA prefix fd63:6866:6c77::/48 from its upper
 * half (subnet 0 is tun0's, subnet 0x53 the stand-ins'). A
 * candidate that overlaps any route of the host's main table (another run's
 * veth, a VPN, a LAN that happens to use the range) is skipped.
 */
#include "rootful/hostplan.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/netlink.h"
#include "util/cleanup.h"

#define TRIES 64

struct dump {
	struct cf_host_plan *hp;
	const struct cf_cidr *cand; /* the candidate to test, or NULL: collect uplinks */
	bool overlap;
};

static bool cidr_overlap(const struct cf_cidr *a, const struct cf_ip *dst, unsigned prefix)
{
	struct cf_cidr wide = {.ip = *dst, .prefix = (uint8_t)prefix};
	const struct cf_cidr *shorter = prefix < a->prefix ? &wide : a;
	const struct cf_ip *other = prefix < a->prefix ? &a->ip : dst;

	if (a->ip.family != dst->family)
		return false;
	/* Compare the network bits of the shorter prefix. */
	for (unsigned bit = 0; bit < shorter->prefix; bit++) {
		unsigned byte = bit / 8, mask = 0x80u >> (bit % 8);

		if ((shorter->ip.b[byte] & mask) != (other->b[byte] & mask))
			return false;
	}
	return true;
}

static void add_uplink(char (*list)[IF_NAMESIZE], size_t *n, unsigned oif)
{
	char name[IF_NAMESIZE];

	if (!oif || !if_indextoname(oif, name) || strcmp(name, "lo") == 0 ||
	    strncmp(name, CF_HOST_VETH_PREFIX, strlen(CF_HOST_VETH_PREFIX)) == 0)
		return;
	for (size_t i = 0; i < *n; i++)
		if (strcmp(list[i], name) == 0)
			return;
	if (*n < CF_HOST_MAX_UPLINKS)
		snprintf(list[(*n)++], IF_NAMESIZE, "%s", name);
}

/* --iface: its next hop, a default route's first (the dump lists those first). */
static void iface_gateway(struct cf_host_plan *hp, const struct cf_nl_route *r)
{
	struct cf_ip *gw = r->dst.family == AF_INET ? &hp->iface_gw4 : &hp->iface_gw6;

	if (r->oif == hp->iface_index && r->gw.family && !gw->family)
		*gw = r->gw;
}

static void on_route(const struct cf_nl_route *r, void *arg)
{
	struct dump *d = arg;

	if (d->cand) {
		if (r->prefix > 0 && cidr_overlap(d->cand, &r->dst, r->prefix))
			d->overlap = true;
		return;
	}
	if (r->type != RTN_UNICAST)
		return;
	if (d->hp->iface)
		iface_gateway(d->hp, r);
	else if (r->dst.family == AF_INET)
		add_uplink(d->hp->up4, &d->hp->n_up4, r->oif);
	else
		add_uplink(d->hp->up6, &d->hp->n_up6, r->oif);
}

static int overlaps(struct mnl_socket *nl, const struct cf_cidr *cand, bool *out)
{
	struct dump d = {.cand = cand};
	int r = cf_nl_route_dump(nl, cand->ip.family, RT_TABLE_MAIN, on_route, &d);

	*out = d.overlap;
	return r;
}

/* The host's end is .1 (::1), the tree's .2 (::2). */
static void fill_link(struct cf_veth_plan *l, const uint8_t rnd[4], bool v6)
{
	memset(l, 0, sizeof(*l));
	l->host4.family = l->tree4.family = AF_INET;
	l->host4.b[0] = l->tree4.b[0] = 198;
	l->host4.b[1] = l->tree4.b[1] = 18;
	l->host4.b[2] = l->tree4.b[2] = (uint8_t)(0x80 | rnd[0]);
	l->host4.b[3] = (uint8_t)((rnd[1] & 0xfc) | 1);
	l->tree4.b[3] = (uint8_t)((rnd[1] & 0xfc) | 2);
	if (!v6)
		return;
	static const uint8_t ula[6] = {0xfd, 0x63, 0x68, 0x66, 0x6c, 0x77};

	l->host6.family = l->tree6.family = AF_INET6;
	memcpy(l->host6.b, ula, sizeof(ula));
	l->host6.b[6] = (uint8_t)(0x80 | rnd[2]);
	l->host6.b[7] = rnd[3];
	l->tree6 = l->host6;
	l->host6.b[15] = 1;
	l->tree6.b[15] = 2;
}

static int pick_link(struct mnl_socket *nl, struct cf_host_plan *hp, bool v6)
{
	for (int t = 0; t < TRIES; t++) {
		uint8_t rnd[4];
		struct cf_cidr c4, c6;
		bool o4 = false, o6 = false;
		int r;

		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		fill_link(&hp->link, rnd, v6);
		c4 = (struct cf_cidr){.ip = hp->link.host4, .prefix = 30};
		c4.ip.b[3] &= 0xfc;
		r = overlaps(nl, &c4, &o4);
		if (r == 0 && v6) {
			c6 = (struct cf_cidr){.ip = hp->link.host6, .prefix = 64};
			memset(c6.ip.b + 8, 0, 8);
			r = overlaps(nl, &c6, &o6);
		}
		if (r < 0)
			return r;
		if (!o4 && !o6)
			return 0;
	}
	return -EADDRINUSE;
}

static int make_id(struct cf_host_plan *hp)
{
	uint8_t rnd[4];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	snprintf(hp->id, sizeof(hp->id), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	snprintf(hp->veth, sizeof(hp->veth), CF_HOST_VETH_PREFIX "%s", hp->id);
	snprintf(hp->table, sizeof(hp->table), CF_HOST_TABLE_PREFIX "%s", hp->id);
	return 0;
}

static void count_route(const struct cf_nl_route *r, void *arg)
{
	(void)r;
	++*(size_t *)arg;
}

/* A routing table of the run's own: one no route uses yet. */
static int pick_table(struct mnl_socket *nl, struct cf_host_plan *hp)
{
	for (int t = 0; t < TRIES; t++) {
		uint16_t rnd;
		size_t n4 = 0, n6 = 0;
		int r;

		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		hp->rt_table = CF_HOST_TABLE_BASE | rnd;
		r = cf_nl_route_dump(nl, AF_INET, hp->rt_table, count_route, &n4);
		if (r == 0)
			r = cf_nl_route_dump(nl, AF_INET6, hp->rt_table, count_route, &n6);
		if (r < 0 || n4 + n6 == 0)
			return r;
	}
	return -EADDRINUSE;
}

/* --iface: it exists and is up; it alone carries the tree's traffic. */
static int check_iface(struct cf_host_plan *hp, const char *iface, char *err, size_t errlen)
{
	struct ifreq ifr = {0};
	cleanup_fd int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	hp->iface = iface;
	hp->iface_index = if_nametoindex(iface);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	if (!hp->iface_index || fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		snprintf(err, errlen, "--iface %s: no such interface on this host", iface);
		return -ENODEV;
	}
	if (!(ifr.ifr_flags & IFF_UP)) {
		snprintf(err, errlen, "--iface %s: the interface is down (ip link set %s up)",
			 iface, iface);
		return -ENETDOWN;
	}
	snprintf(hp->up4[0], IF_NAMESIZE, "%s", iface);
	snprintf(hp->up6[0], IF_NAMESIZE, "%s", iface);
	hp->n_up4 = hp->n_up6 = 1;
	return 0;
}

int cf_host_plan_make(struct cf_host_plan *hp, const char *iface, bool v6, char *err, size_t errlen)
{
	struct mnl_socket *nl = NULL;
	struct dump d = {.hp = hp};
	int r;

	memset(hp, 0, sizeof(*hp));
	if (errlen)
		err[0] = '\0';
	if (iface) {
		r = check_iface(hp, iface, err, errlen);
		if (r < 0)
			return r;
	}
	r = make_id(hp);
	if (r == 0)
		r = cf_nl_open(&nl);
	if (r < 0) {
		snprintf(err, errlen, "cannot open rtnetlink: %s", strerror(-r));
		return r;
	}
	r = pick_link(nl, hp, v6);
	if (r == -EADDRINUSE)
		snprintf(err, errlen,
			 "no free /30 in 198.18.128.0/17 for the run's veth after %d tries: host "
			 "routes cover the range",
			 TRIES);
	else if (r < 0)
		snprintf(err, errlen, "cannot read the host's routes: %s", strerror(-r));
	if (r == 0)
		r = cf_nl_route_dump(nl, AF_INET, RT_TABLE_MAIN, on_route, &d);
	if (r == 0 && v6)
		r = cf_nl_route_dump(nl, AF_INET6, RT_TABLE_MAIN, on_route, &d);
	if (r == 0 && iface)
		r = pick_table(nl, hp);
	if (r < 0 && !*err)
		snprintf(err, errlen, "cannot read the host's routes: %s", strerror(-r));
	cf_nl_close(nl);
	return r;
}
