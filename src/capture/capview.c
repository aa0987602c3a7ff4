/* SPDX-License-Identifier: MIT */
/*
 * The set of views of one run, and the socket hooks every view shares:
 * opening (learning the socket's addresses once, for both egress views)
 * and closing. The rest of the socket hooks are the synthesized view's
 * (egress.c); the wire view only needs each socket's 4-tuple.
 */
#include "capture/capview.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/child.h"
#include "capture/egress.h"
#include "capture/hostview.h"
#include "capture/wire.h"
#include "util/log.h"

struct cf_capview {
	struct cf_child_view *child; /* each NULL when off */
	struct cf_egress *egress;
	struct cf_wire *wire;
	struct cf_hostview *host;
};

/* Start each view @o turns on, into @v; stop at the first failure, closing the fds not taken. */
static int start_views(struct cf_capview *v, const struct cf_capview_opts *o)
{
	int r = 0;

	if (o->child)
		r = cf_child_view_start(
		    o->child, o->child_fd,
		    (const struct cf_ip[]){o->tree4, o->tree6, o->link4, o->link6}, &v->child);
	if (r == 0 && o->egress)
		r = cf_egress_start(o->egress, &v->egress);
	if (r == 0 && o->host)
		return cf_hostview_start(o->host, o->host_fd, &v->host);
	if (o->host)
		close(o->host_fd);
	if (r == 0 && o->wire)
		return cf_wire_start(o->wire, o->wire_fd, &v->wire);
	if (o->wire)
		close(o->wire_fd);
	return r;
}

int cf_capview_start(const struct cf_capview_opts *o, struct cf_capview **out)
{
	struct cf_capview_stats ignored;
	struct cf_capview *v;
	int r;

	*out = NULL;
	if (!o->child && !o->egress && !o->wire && !o->host)
		return 0;
	v = calloc(1, sizeof(*v));
	if (!v) {
		if (o->child)
			close(o->child_fd);
		if (o->wire)
			close(o->wire_fd);
		if (o->host)
			close(o->host_fd);
		return -ENOMEM;
	}
	r = start_views(v, o);
	if (r < 0) {
		cf_capview_free(v, &ignored);
		return r;
	}
	*out = v;
	return 0;
}

/* One at most: the wire view is the rootless backend's, the host view the rootful one's. */
int cf_capview_poll_fd(const struct cf_capview *v)
{
	if (v && v->host)
		return cf_hostview_fd(v->host);
	return v && v->wire ? cf_wire_fd(v->wire) : -1;
}

void cf_capview_on_readable(struct cf_capview *v)
{
	if (v && v->host)
		cf_hostview_on_readable(v->host);
	if (v && v->wire)
		cf_wire_on_readable(v->wire);
}

void cf_capview_on_tick(struct cf_capview *v)
{
	if (!v)
		return;
	cf_egress_flush(v->egress);
	cf_hostview_on_tick(v->host);
	if (v->wire)
		cf_wire_on_tick(v->wire);
}

void cf_capview_wait_room(struct cf_capview *v)
{
	if (v)
		cf_child_view_wait_room(v->child);
}

void cf_capview_stop_child(struct cf_capview *v, struct cf_capview_stats *st)
{
	cf_child_view_stop(v ? v->child : NULL, st);
	if (v)
		v->child = NULL;
}

void cf_capview_free(struct cf_capview *v, struct cf_capview_stats *egress)
{
	struct cf_capview_stats child;

	*egress = (struct cf_capview_stats){0};
	if (!v)
		return;
	cf_capview_stop_child(v, &child);
	/* One file holds either egress view, never both (capture/files.h). */
	if (v->egress)
		cf_egress_stop(v->egress, egress);
	if (v->wire)
		cf_wire_stop(v->wire, egress);
	cf_hostview_stop(v->host, egress);
	free(v);
}

/* The local address of socket @fd. Return 0 or -errno. */
static int local_addr(int fd, struct cf_ip *ip, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	return cf_ip_from_sockaddr((struct sockaddr *)&ss, ip, port);
}

void cf_capview_sock_open(struct cf_capview *v, struct cf_capview_sock *s, int fd, uint8_t proto,
			  const struct sockaddr *peer)
{
	memset(s, 0, sizeof(*s));
	if (!v || (!v->egress && !v->wire))
		return;
	/* Not getpeername(): a ping socket has no peer port and reports ENOTCONN. */
	if (local_addr(fd, &s->local, &s->lport) < 0 ||
	    cf_ip_from_sockaddr(peer, &s->remote, &s->rport) < 0 ||
	    s->remote.family != s->local.family) {
		log_debug("capture: cannot learn a host socket's addresses; not recorded");
		return;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		s->rport = 0;
	s->proto = proto;
	s->open = true;
	s->wire = v->wire;
	s->eg = v->egress;
	if (s->wire)
		cf_wire_add(s->wire, s);
	cf_egress_sock_opened(s);
}

void cf_capview_sock_close(struct cf_capview_sock *s, bool reset)
{
	if (!s->open)
		return;
	if (s->proto == IPPROTO_TCP && s->established && !s->closed) {
		if (reset)
			cf_capview_tcp_rst(s, CF_CAPVIEW_OUT);
		else if (!s->fin[CF_CAPVIEW_OUT])
			cf_capview_tcp_fin(s, CF_CAPVIEW_OUT);
	}
	if (s->wire)
		cf_wire_remove(s->wire, s);
	s->open = false;
}

bool cf_capview_sock_taps(const struct cf_capview_sock *s)
{
	return s->eg != NULL;
}
