// SPDX-License-Identifier: MIT
/*
 * Tests of the capture views' hook API (capture/capview.c, egress.c): what
 * the engine's calls write into the synthesized egress view, and that every
 * hook is a no-op without views. The sockets are bound, never connected:
 * sock_open() only reads their addresses, so no packet is sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture/capview.h"
#include "capture/pcapng.h"

struct fixture {
	int memfd;		 /* the egress file's bytes */
	struct cf_pcapng *w;	 /* its writer */
	struct cf_capview *v;	 /* the egress view only */
	int sock;		 /* bound to 127.0.0.1, never connected */
	struct sockaddr_in peer; /* 127.0.0.1:9 */
	struct cf_capview_sock s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct cf_capview_opts o = {.child_fd = -1, .wire_fd = -1};

	if (!f)
		return -1;
	f->memfd = memfd_create("test_capview", MFD_CLOEXEC);
	f->sock = -1;
	if (f->memfd < 0 || cf_pcapng_open_fd(dup(f->memfd), NULL, &f->w) < 0)
		return -1;
	o.egress = f->w;
	if (cf_capview_start(&o, &f->v) < 0 || !f->v)
		return -1;
	f->peer = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(9)};
	f->peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct cf_capview_stats st;

	cf_capview_free(f->v, &st);
	if (f->w)
		cf_pcapng_close(f->w);
	if (f->sock >= 0)
		close(f->sock);
	close(f->memfd);
	free(f);
	return 0;
}

/* Bind a socket of @type to 127.0.0.1 (any port) and report it open with @proto. */
static void open_sock(struct fixture *f, int type, uint8_t proto)
{
	struct sockaddr_in local = {.sin_family = AF_INET};

	local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->sock = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	assert_true(f->sock >= 0);
	assert_int_equal(bind(f->sock, (struct sockaddr *)&local, sizeof(local)), 0);
	cf_capview_sock_open(f->v, &f->s, f->sock, proto, (struct sockaddr *)&f->peer);
}

/* Stop the view and return the packets it wrote (the writer stays open). */
static uint64_t stop(struct fixture *f)
{
	struct cf_capview_stats st;

	cf_capview_free(f->v, &st);
	f->v = NULL;
	assert_int_equal(st.err, 0);
	assert_int_equal(cf_pcapng_flush(f->w), 0);
	return st.packets;
}

/* Whether the file holds @len bytes equal to @data. */
static bool file_has(const struct fixture *f, const void *data, size_t len)
{
	off_t size = lseek(f->memfd, 0, SEEK_END);
	uint8_t *buf = malloc((size_t)size);
	bool found;

	assert_non_null(buf);
	assert_int_equal(pread(f->memfd, buf, (size_t)size, 0), size);
	found = memmem(buf, (size_t)size, data, len) != NULL;
	free(buf);
	return found;
}

/* Without views every hook is a no-op: the engine calls them unconditionally. */
static void test_no_views(void **state)
{
	struct cf_capview_opts o = {.child_fd = -1, .wire_fd = -1};
	struct cf_capview *v = (struct cf_capview *)(uintptr_t)1;
	struct cf_capview_sock s;
	struct cf_capview_stats st = {.err = 1};

	(void)state;
	assert_int_equal(cf_capview_start(&o, &v), 0);
	assert_null(v);
	assert_int_equal(cf_capview_poll_fd(NULL), -1);
	cf_capview_on_readable(NULL);
	cf_capview_on_tick(NULL);
	cf_capview_wait_room(NULL);
	memset(&s, 0xff, sizeof(s));
	cf_capview_sock_open(NULL, &s, -1, IPPROTO_TCP, NULL);
	assert_false(s.open);
	assert_false(cf_capview_sock_taps(&s));
	cf_capview_tcp_connected(&s);
	cf_capview_tcp_data(&s, CF_CAPVIEW_OUT, "x", 1);
	cf_capview_dgram(&s, CF_CAPVIEW_OUT, "x", 1, 64);
	cf_capview_sock_close(&s, true);
	cf_capview_stop_child(NULL, &st);
	assert_int_equal(st.err, 0);
	cf_capview_free(NULL, &st);
	assert_int_equal(st.packets, 0);
}

/* UDP: one packet per datagram each way, with the payload as sent. */
static void test_udp_datagrams(void **state)
{
	struct fixture *f = *state;

	open_sock(f, SOCK_DGRAM, IPPROTO_UDP);
	assert_true(f->s.open);
	assert_true(cf_capview_sock_taps(&f->s));
	assert_int_equal(f->s.rport, 9);
	cf_capview_dgram(&f->s, CF_CAPVIEW_OUT, "question", 8, 64);
	cf_capview_dgram(&f->s, CF_CAPVIEW_IN, "answer", 6, 64);
	cf_capview_sock_close(&f->s, false);
	/* Closed: recorded no more. */
	cf_capview_dgram(&f->s, CF_CAPVIEW_IN, "late", 4, 64);
	assert_int_equal(stop(f), 2);
	assert_true(file_has(f, "question", 8));
	assert_true(file_has(f, "answer", 6));
	assert_false(file_has(f, "late", 4));
}

/* An ICMP error without the offender's address comes from the socket's peer. */
static void test_icmp_error_from_peer(void **state)
{
	struct fixture *f = *state;
	struct cf_ip v6 = {.family = AF_INET6};

	open_sock(f, SOCK_DGRAM, IPPROTO_UDP);
	cf_capview_icmp_error(&f->s, NULL, 3, 3, 0, "quoted", 6);
	/* Another family than the socket's: not recorded. */
	cf_capview_icmp_error(&f->s, &v6, 1, 4, 0, "quoted", 6);
	assert_int_equal(stop(f), 1);
	assert_true(file_has(f, "quoted", 6));
}

/*
 * TCP: SYN at open; SYN-ACK and ACK when connected; a data segment and the
 * receiver's ACK; FIN and its ACK; nothing more at close, the FIN is out.
 */
static void test_tcp_exchange(void **state)
{
	struct fixture *f = *state;

	open_sock(f, SOCK_STREAM, IPPROTO_TCP);
	cf_capview_tcp_connected(&f->s);
	cf_capview_tcp_data(&f->s, CF_CAPVIEW_OUT, "GET / HTTP/1.0\r\n\r\n", 18);
	cf_capview_tcp_fin(&f->s, CF_CAPVIEW_OUT);
	cf_capview_sock_close(&f->s, false);
	assert_int_equal(stop(f), 1 + 2 + 2 + 2);
	assert_true(file_has(f, "GET / HTTP/1.0\r\n\r\n", 18));
}

/* TCP bytes from a pipe are read whole, written once, and the close resets. */
static void test_tcp_data_from_pipe(void **state)
{
	struct fixture *f = *state;
	int p[2];
	char rest;

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "payload", 7), 7);
	open_sock(f, SOCK_STREAM, IPPROTO_TCP);
	cf_capview_tcp_connected(&f->s);
	assert_int_equal(cf_capview_tcp_data_fd(&f->s, CF_CAPVIEW_IN, p[0], 7), 0);
	assert_int_equal(read(p[0], &rest, 1), -1);
	/* The pipe holds fewer bytes than announced. */
	assert_true(cf_capview_tcp_data_fd(&f->s, CF_CAPVIEW_IN, p[0], 1) < 0);
	cf_capview_sock_close(&f->s, true);
	close(p[0]);
	close(p[1]);
	assert_int_equal(stop(f), 1 + 2 + 2 + 1);
	assert_true(file_has(f, "payload", 7));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_views),
	    cmocka_unit_test_setup_teardown(test_udp_datagrams, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_icmp_error_from_peer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tcp_exchange, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tcp_data_from_pipe, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
