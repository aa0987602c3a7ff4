/* SPDX-License-Identifier: MIT */
/*
 * Why these settings: a group number nobody else holds (a bind to a group
 * another socket holds fails with EBUSY, so another is tried), whole
 * packets (a capture of headers only would say less than the child view),
 * and a queue threshold of one, so a packet reaches the view when it is
 * logged, not when a batch fills or a second passed, and none is left in
 * the kernel when the run ends.
 */
#include "rootful/nflog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"

#define TRIES 32
#define RCVBUF (16 << 20)

/* Send one NFULNL_MSG_CONFIG for @group with the attribute @put adds, and wait for its ACK. */
static int config(struct mnl_socket *nl, uint16_t group, uint16_t type, const void *val, size_t len)
{
	char buf[8192];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;
	uint32_t seq = (uint32_t)time(NULL);
	ssize_t n;

	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(group);
	mnl_attr_put(nlh, type, len, val);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	return mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(nl), NULL, NULL) < 0 ? -errno
											  : 0;
}

static int setup(struct mnl_socket *nl, uint16_t group)
{
	struct nfulnl_msg_config_cmd bind = {.command = NFULNL_CFG_CMD_BIND};
	struct nfulnl_msg_config_mode mode = {.copy_range = htonl(0xffff),
					      .copy_mode = NFULNL_COPY_PACKET};
	uint32_t qthresh = htonl(1);
	int r = config(nl, group, NFULA_CFG_CMD, &bind, sizeof(bind));

	if (r == 0)
		r = config(nl, group, NFULA_CFG_MODE, &mode, sizeof(mode));
	if (r == 0)
		r = config(nl, group, NFULA_CFG_QTHRESH, &qthresh, sizeof(qthresh));
	return r;
}

int cf_nflog_open(uint16_t *group, char *err, size_t errlen)
{
	int r = -EBUSY, size = RCVBUF;

	for (int t = 0; t < TRIES && r == -EBUSY; t++) {
		struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
		uint16_t g;

		if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
			r = -errno;
			if (nl)
				mnl_socket_close(nl);
			break;
		}
		if (getrandom(&g, sizeof(g), 0) != (ssize_t)sizeof(g))
			g = (uint16_t)(t * 7919u);
		g = (uint16_t)(g | 1u); /* never group 0, which some tools use by default */
		r = setup(nl, g);
		if (r == 0) {
			int fd = fcntl(mnl_socket_get_fd(nl), F_DUPFD_CLOEXEC, 0);

			if (fd < 0)
				r = -errno;
			else if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) <
				 0)
				setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
			mnl_socket_close(nl);
			if (r < 0)
				break;
			*group = g;
			return fd;
		}
		mnl_socket_close(nl);
	}
	snprintf(err, errlen, "cannot open an NFLOG group for the egress capture: %s%s",
		 strerror(-r), r == -ENOENT || r == -EOPNOTSUPP ? " (load nfnetlink_log)" : "");
	return r;
}
