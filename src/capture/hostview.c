/* SPDX-License-Identifier: MIT */
/*
 * Each NFLOG message carries one packet (NFULA_PAYLOAD, from its IP
 * header), the kernel's time stamp and the rule's prefix (out or in).
 * The messages are walked with libmnl's attribute parser; their layout is
 * the kernel's (linux/netfilter/nfnetlink_log.h) and comes through a
 * socket only the engine holds. A full receive buffer loses packets
 * (ENOBUFS): counted as dropped, as the kernel's drops of the other views.
 */
#include "capture/hostview.h"

#include <endian.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capture/pcapng.h"

#define BUF_SIZE 262144u

struct cf_hostview {
	struct cf_pcapng *w;
	int fd, iface;
	int err;
	uint64_t packets, dropped;
	uint8_t buf[BUF_SIZE] __attribute__((aligned(8))); /* netlink messages are aligned */
};

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	unsigned type = mnl_attr_get_type(a);

	if (type <= NFULA_MAX)
		tb[type] = a;
	return MNL_CB_OK;
}

static uint64_t stamp(const struct nlattr *a)
{
	struct nfulnl_msg_packet_timestamp ts;
	struct timespec now;

	if (a && mnl_attr_get_payload_len(a) >= sizeof(ts)) {
		memcpy(&ts, mnl_attr_get_payload(a), sizeof(ts));
		return be64toh(ts.sec) * 1000000000ull + be64toh(ts.usec) * 1000ull;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static int on_msg(const struct nlmsghdr *nlh, void *data)
{
	struct cf_hostview *h = data;
	const struct nlattr *tb[NFULA_MAX + 1] = {0};
	enum cf_pcapng_dir dir = CF_PCAPNG_DIR_OUT;
	int r;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_ULOG ||
	    NFNL_MSG_TYPE(nlh->nlmsg_type) != NFULNL_MSG_PACKET ||
	    mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, tb) < 0 || !tb[NFULA_PAYLOAD])
		return MNL_CB_OK;
	if (tb[NFULA_PREFIX] && strncmp(mnl_attr_get_str(tb[NFULA_PREFIX]), CF_HOSTVIEW_PREFIX_IN,
					mnl_attr_get_payload_len(tb[NFULA_PREFIX])) == 0)
		dir = CF_PCAPNG_DIR_IN;
	r = cf_pcapng_write_packet(h->w, h->iface, stamp(tb[NFULA_TIMESTAMP]),
				   mnl_attr_get_payload(tb[NFULA_PAYLOAD]),
				   mnl_attr_get_payload_len(tb[NFULA_PAYLOAD]), dir);
	if (r < 0 && !h->err)
		h->err = r;
	else if (r == 0)
		h->packets++;
	return MNL_CB_OK;
}

void cf_hostview_on_readable(struct cf_hostview *h)
{
	if (!h)
		return;
	for (;;) {
		ssize_t n = recv(h->fd, h->buf, sizeof(h->buf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			h->dropped++;
			continue;
		}
		if (n <= 0)
			return;
		mnl_cb_run(h->buf, (size_t)n, 0, 0, on_msg, h);
	}
}

void cf_hostview_on_tick(struct cf_hostview *h)
{
	int r;

	if (!h)
		return;
	cf_hostview_on_readable(h);
	r = cf_pcapng_flush(h->w);
	if (r < 0 && !h->err)
		h->err = r;
}

int cf_hostview_start(struct cf_pcapng *w, int fd, struct cf_hostview **out)
{
	struct cf_hostview *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->w = w;
	h->fd = fd;
	h->iface = cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "host",
					   "the host's uplinks: the tree's packets after its "
					   "masquerade, replies before it is undone (NFLOG)");
	if (h->iface < 0) {
		int r = h->iface;

		close(fd);
		free(h);
		return r;
	}
	*out = h;
	return 0;
}

int cf_hostview_fd(const struct cf_hostview *h)
{
	return h ? h->fd : -1;
}

void cf_hostview_stop(struct cf_hostview *h, struct cf_capview_stats *st)
{
	if (!h)
		return;
	cf_hostview_on_readable(h);
	if (!h->err)
		h->err = cf_pcapng_flush(h->w);
	*st = (struct cf_capview_stats){h->err, h->packets, h->dropped};
	close(h->fd);
	free(h);
}
