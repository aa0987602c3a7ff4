/* SPDX-License-Identifier: MIT */
/*
 * --publish (see publish.h). The engine cannot make a socket in the tree's
 * network namespace, and its seccomp filter would refuse one that is not
 * AF_INET/AF_INET6 anyway; the tree's init can, so it makes each and passes
 * it over the control socket. The tree sees every inbound connection and
 * datagram come from its own loopback (127.0.0.1, or ::1 for an IPv6
 * listener), which is what init's socket is bound to; the client's real
 * address is in the flow log.
 *
 * What the tree can do with this path: answer on the socket init gave, and
 * nothing else. Init only ever connects to the tree's own loopback, the
 * listener's address and port are fixed before the command starts, and the
 * engine relays between exactly two sockets per flow.
 */
#include "engine/publish.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/ctx.h"
#include "engine/ratelimit.h"
#include "engine/relay.h"
#include "obs/flowlog.h"
#include "sandbox/ctl.h"
#include "util/log.h"

/* At most this many inbound flows at once: each holds two descriptors. */
#define PUB_FLOWS_MAX 1024
/* Datagrams of a client kept while init opens the tree's socket. */
#define PUB_QUEUE 8
/* A UDP flow without a datagram for this long ends, as dgram.c's do. */
#define PUB_UDP_IDLE_MS 60000
/* Datagrams moved per event, so one busy flow cannot hold the loop. */
#define PUB_UDP_BATCH 64

struct pub_listener {
	struct cf_watch w;
	int fd; /* borrowed from the runner */
	struct cf_publish map;
	char published[CF_PUBLISH_STRLEN];
};

enum pub_state {
	PUB_ASKED,	/* CONNECT sent, init has not answered */
	PUB_CONNECTING, /* TCP: init's socket connects to the tree */
	PUB_RELAY,	/* carrying data */
};

struct pub_dgram {
	size_t len;
	uint8_t *data;
};

struct pub_flow {
	struct cf_watch w_host, w_tree;
	struct pub_flow *prev, *next;
	struct pub_listener *l;
	enum pub_state state;
	bool ready;   /* the relay used its turn with data still moving */
	bool limited; /* the relay waits for --rate-limit's tokens: the timer wakes it */
	bool dead;    /* ended: events of this loop turn may still name it; freed by reap */
	bool started; /* logged as started (UDP) or connected (TCP): an end is logged */
	int host_fd;  /* TCP: the accepted client; UDP: -1, the listener sends */
	int tree_fd;  /* init's socket, or -1 */
	uint32_t id;  /* of the CONNECT request */
	uint64_t flow_id;
	struct cf_ip peer;
	uint16_t peer_port;
	struct sockaddr_storage peer_sa;
	socklen_t peer_len;
	uint64_t start_ms, last_ms;
	struct cf_relay relay;
	bool relay_init;
	struct cf_obs_traffic t; /* UDP: sent = by the tree */
	struct pub_dgram queue[PUB_QUEUE];
	size_t queued;
};

struct cf_publish_set {
	struct pub_listener *l;
	size_t n;
	struct pub_flow *flows;
	size_t nflows;
	uint32_t next_id;
};

static struct cf_obs_inbound inbound_of(const struct pub_flow *f)
{
	return (struct cf_obs_inbound){
	    .udp = f->l->map.udp,
	    .peer = &f->peer,
	    .peer_port = f->peer_port,
	    .published = f->l->published,
	    .tree_port = f->l->map.tree_port,
	};
}

int cf_publish_init(struct cf_engine *e, const int *fds, size_t n)
{
	struct cf_publish_set *s;

	if (n == 0)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	e->publish = s;
	s->l = calloc(n, sizeof(*s->l));
	if (!s->l)
		return -ENOMEM;
	for (size_t i = 0; i < n && i < e->cfg->publish.n; i++) {
		struct pub_listener *l = &s->l[i];
		int r;

		if (cf_publish_parse(e->cfg->publish.v[i], &l->map) < 0)
			return -EINVAL;
		cf_publish_format(&l->map, l->published, sizeof(l->published));
		l->fd = fds[i];
		l->w.kind = CF_W_PUB_LISTEN;
		r = cf_engine_watch(e, l->fd, EPOLLIN, &l->w);
		if (r < 0)
			return r;
		s->n++;
	}
	return 0;
}

/*
 * Log the end of @f when it started (a TCP flow that never connected: its
 * failed connect_result, @why) and close its sockets; cf_publish_reap() frees
 * it once no event of this loop turn can name it any more.
 */
static void flow_end(struct cf_engine *e, struct pub_flow *f, const char *why)
{
	struct cf_obs_inbound in = inbound_of(f);

	if (f->dead)
		return;

	if (f->started) {
		if (f->relay_init) {
			f->t.bytes_sent = f->relay.dir[0].bytes;
			f->t.bytes_received = f->relay.dir[1].bytes;
		}
		f->t.duration_ms = e->now_ms - f->start_ms;
		cf_obs_inbound_end(e->obs, f->flow_id, &in, &f->t);
	} else if (!in.udp && why) {
		cf_obs_inbound_start(e->obs, f->flow_id, &in, false, why);
	}
	if (f->relay_init)
		cf_relay_fini(&f->relay, NULL);
	if (f->host_fd >= 0)
		close(f->host_fd);
	if (f->tree_fd >= 0)
		close(f->tree_fd);
	for (size_t i = 0; i < f->queued; i++)
		free(f->queue[i].data);
	f->queued = 0;
	f->host_fd = f->tree_fd = -1;
	f->relay_init = f->ready = f->limited = false;
	f->dead = true;
	e->publish->nflows--;
}

void cf_publish_reap(struct cf_engine *e)
{
	struct cf_publish_set *s = e->publish;
	struct pub_flow *f, *next;

	if (!s)
		return;
	for (f = s->flows; f; f = next) {
		next = f->next;
		if (!f->dead)
			continue;
		if (f->prev)
			f->prev->next = f->next;
		else
			s->flows = f->next;
		if (f->next)
			f->next->prev = f->prev;
		free(f);
	}
}

/* A new flow of @l from the client @sa; the CONNECT to init is sent. NULL: refused. */
static struct pub_flow *flow_new(struct cf_engine *e, struct pub_listener *l,
				 const struct sockaddr_storage *sa, socklen_t salen)
{
	struct cf_publish_set *s = e->publish;
	struct pub_flow *f;
	struct cf_ctl_msg m;
	struct cf_obs_inbound in;

	if (s->nflows >= PUB_FLOWS_MAX)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->l = l;
	f->host_fd = f->tree_fd = -1;
	f->w_host.kind = CF_W_PUB_HOST;
	f->w_tree.kind = CF_W_PUB_TREE;
	f->peer_sa = *sa;
	f->peer_len = salen;
	(void)cf_ip_from_sockaddr((const struct sockaddr *)sa, &f->peer, &f->peer_port);
	f->flow_id = ++e->stats.flows_started;
	f->id = ++s->next_id;
	f->start_ms = f->last_ms = e->now_ms;
	f->next = s->flows;
	if (s->flows)
		s->flows->prev = f;
	s->flows = f;
	s->nflows++;
	in = inbound_of(f);
	if (!in.udp)
		cf_obs_inbound_start(e->obs, f->flow_id, &in, true, NULL);
	memset(&m, 0, sizeof(m));
	m.type = CF_CTL_CONNECT;
	m.id = f->id;
	m.tree_port = l->map.tree_port;
	m.family = l->map.host_addr.family;
	m.udp = l->map.udp;
	if (send(e->ctlfd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
		if (in.udp)
			cf_obs_inbound_start(e->obs, f->flow_id, &in, false, strerror(errno));
		flow_end(e, f, strerror(errno));
		return NULL;
	}
	return f;
}

static void on_accept(struct cf_engine *e, struct pub_listener *l)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct pub_flow *f;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN; EMFILE and friends: the backlog waits */
		}
		f = flow_new(e, l, &ss, len);
		if (!f) {
			close(fd);
			continue;
		}
		f->host_fd = fd;
	}
}

static struct pub_flow *find_peer(struct cf_publish_set *s, const struct pub_listener *l,
				  const struct sockaddr_storage *sa, socklen_t len)
{
	for (struct pub_flow *f = s->flows; f; f = f->next)
		if (!f->dead && f->l == l && f->peer_len == len &&
		    memcmp(&f->peer_sa, sa, len) == 0)
			return f;
	return NULL;
}

/* Hand one datagram of the client to the tree, or keep it until init answered. */
static void udp_to_tree(struct pub_flow *f, const uint8_t *buf, size_t n)
{
	if (f->state == PUB_ASKED) {
		uint8_t *copy;

		if (f->queued >= PUB_QUEUE || !(copy = malloc(n ? n : 1)))
			return; /* dropped, as a full socket buffer would */
		memcpy(copy, buf, n);
		f->queue[f->queued++] = (struct pub_dgram){n, copy};
		return;
	}
	if (send(f->tree_fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n) {
		f->t.packets_received++;
		f->t.bytes_received += n;
	}
}

static void on_udp_listener(struct cf_engine *e, struct pub_listener *l)
{
	for (int i = 0; i < PUB_UDP_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		ssize_t n = recvfrom(l->fd, e->rxbuf, sizeof(e->rxbuf), MSG_DONTWAIT,
				     (struct sockaddr *)&ss, &len);
		struct pub_flow *f;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		f = find_peer(e->publish, l, &ss, len);
		if (!f)
			f = flow_new(e, l, &ss, len);
		if (!f)
			continue;
		f->last_ms = e->now_ms;
		/* --rate-limit: what the tree receives; over it, lost as on a full link */
		if (!cf_ratelimit_datagram(e, 1, (size_t)n)) {
			e->stats.packets_dropped++;
			continue;
		}
		udp_to_tree(f, e->rxbuf, (size_t)n);
	}
}

/* The tree answered the client: pass it on from the listener's address. */
static void on_udp_tree(struct cf_engine *e, struct pub_flow *f)
{
	for (int i = 0; i < PUB_UDP_BATCH; i++) {
		ssize_t n = recv(f->tree_fd, e->rxbuf, sizeof(e->rxbuf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue; /* ECONNREFUSED: nothing listened in the tree; later ones may */
		}
		f->last_ms = e->now_ms;
		if (!cf_ratelimit_datagram(e, 0, (size_t)n)) {
			e->stats.packets_dropped++;
			continue;
		}
		if (sendto(f->l->fd, e->rxbuf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (struct sockaddr *)&f->peer_sa, f->peer_len) == n) {
			f->t.packets_sent++;
			f->t.bytes_sent += (uint64_t)n;
		}
	}
}

/*
 * Run @f's relay once; end the flow when it is over. A relay short of
 * --rate-limit's tokens left bytes in a socket that no edge-triggered event
 * will report again: the limit's timer gives it its next turn
 * (cf_publish_wake_throttled()), as tcp.c's relays get theirs.
 */
static void relay_turn(struct cf_engine *e, struct pub_flow *f)
{
	enum cf_relay_state st = cf_relay_progress(&f->relay);
	unsigned dirs = f->relay.throttled;

	f->ready = st == CF_RELAY_MORE;
	f->limited = dirs != 0;
	if (dirs)
		cf_ratelimit_wait(e, (dirs & 1) ? 0 : 1);
	if (st == CF_RELAY_DONE || st == CF_RELAY_RESET)
		flow_end(e, f, NULL);
}

/* TCP: init's connect() finished; on success the relay starts. */
static void on_tree_connected(struct cf_engine *e, struct pub_flow *f)
{
	struct cf_obs_inbound in = inbound_of(f);
	int err = 0, r;
	socklen_t len = sizeof(err);

	if (getsockopt(f->tree_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	if (err) {
		flow_end(e, f, strerror(err));
		return;
	}
	r = cf_relay_init(&f->relay, f->tree_fd, f->host_fd, NULL);
	/* fd[0] is the tree's side, as in tcp.c: direction 0 is what the tree sends */
	f->relay.limit[0] = cf_ratelimit_bucket(e, 0);
	f->relay.limit[1] = cf_ratelimit_bucket(e, 1);
	if (r == 0)
		r = cf_engine_watch(e, f->host_fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				    &f->w_host);
	if (r < 0) {
		flow_end(e, f, strerror(-r));
		return;
	}
	f->relay_init = true;
	f->state = PUB_RELAY;
	f->started = true;
	cf_obs_inbound_start(e->obs, f->flow_id, &in, false, NULL);
	relay_turn(e, f);
}

void cf_publish_on_connected(struct cf_engine *e, const struct cf_ctl_msg *m, int fd)
{
	struct pub_flow *f = NULL;
	struct cf_obs_inbound in;
	int r;

	if (e->publish)
		for (f = e->publish->flows; f && (f->dead || f->id != m->id); f = f->next)
			;
	if (!f || f->state != PUB_ASKED) {
		if (fd >= 0)
			close(fd);
		return;
	}
	in = inbound_of(f);
	if (fd < 0) {
		const char *why = strerror(m->err ? m->err : EIO);

		if (in.udp)
			cf_obs_inbound_start(e->obs, f->flow_id, &in, false, why);
		flow_end(e, f, why);
		return;
	}
	f->tree_fd = fd;
	if (in.udp) {
		r = cf_engine_watch(e, fd, EPOLLIN, &f->w_tree);
		cf_obs_inbound_start(e->obs, f->flow_id, &in, false, r < 0 ? strerror(-r) : NULL);
		if (r < 0) {
			flow_end(e, f, NULL);
			return;
		}
		f->started = true;
		f->state = PUB_RELAY;
		for (size_t i = 0; i < f->queued; i++) {
			udp_to_tree(f, f->queue[i].data, f->queue[i].len);
			free(f->queue[i].data);
		}
		f->queued = 0;
		return;
	}
	/* One registration for connecting and relaying: EPOLLOUT says connected. */
	r = cf_engine_watch(e, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, &f->w_tree);
	if (r < 0) {
		flow_end(e, f, strerror(-r));
		return;
	}
	f->state = PUB_CONNECTING;
}

void cf_publish_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events)
{
	struct pub_flow *f;

	(void)events;
	if (w->kind == CF_W_PUB_LISTEN) {
		struct pub_listener *l = cf_container_of(w, struct pub_listener, w);

		/*
		 * The tree is gone (the engine flushes its last connections):
		 * init answers no CONNECT any more. Leave the clients in the
		 * backlog, reset when the runner closes the listener, rather
		 * than log failures that are the run's end.
		 */
		if (e->command_done) {
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, l->fd, NULL);
			return;
		}
		if (l->map.udp)
			on_udp_listener(e, l);
		else
			on_accept(e, l);
		return;
	}
	f = w->kind == CF_W_PUB_HOST ? cf_container_of(w, struct pub_flow, w_host)
				     : cf_container_of(w, struct pub_flow, w_tree);
	if (f->dead)
		return;
	if (f->l->map.udp)
		on_udp_tree(e, f);
	else if (f->state == PUB_CONNECTING)
		on_tree_connected(e, f);
	else if (f->state == PUB_RELAY)
		relay_turn(e, f);
}

size_t cf_publish_unflushed(const struct cf_engine *e)
{
	size_t n = 0;

	if (!e->publish)
		return 0;
	for (const struct pub_flow *f = e->publish->flows; f; f = f->next)
		if (!f->dead && f->relay_init && !cf_relay_sent_eof(&f->relay))
			n++;
	return n;
}

bool cf_publish_has_ready(const struct cf_engine *e)
{
	if (!e->publish)
		return false;
	for (const struct pub_flow *f = e->publish->flows; f; f = f->next)
		if (f->ready)
			return true;
	return false;
}

void cf_publish_run_ready(struct cf_engine *e)
{
	struct pub_flow *f;

	if (!e->publish)
		return;
	for (f = e->publish->flows; f; f = f->next)
		if (f->ready && !f->dead)
			relay_turn(e, f);
}

void cf_publish_wake_throttled(struct cf_engine *e)
{
	if (!e->publish)
		return;
	for (struct pub_flow *f = e->publish->flows; f; f = f->next)
		if (f->limited && !f->dead)
			f->ready = true;
}

void cf_publish_on_tick(struct cf_engine *e)
{
	struct pub_flow *f;

	if (!e->publish)
		return;
	for (f = e->publish->flows; f; f = f->next) {
		if (!f->dead && f->l->map.udp && e->now_ms - f->last_ms >= PUB_UDP_IDLE_MS)
			flow_end(e, f, "idle");
	}
}

void cf_publish_fini(struct cf_engine *e)
{
	struct cf_publish_set *s = e->publish;

	if (!s)
		return;
	for (struct pub_flow *f = s->flows; f; f = f->next)
		flow_end(e, f, "the command exited");
	cf_publish_reap(e);
	free(s->l);
	free(s);
	e->publish = NULL;
}
