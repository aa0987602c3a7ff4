// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/capture/capdrain.c: a real packet socket on lo, in a
 * network namespace of the test's own (as root, or in a user namespace of
 * its own otherwise), so only the test's packets are seen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture/pcapng.h"
#include "capture/capdrain.h"
#include "capture/pktring.h"

#define PORT 5555
#define BIG 60000 /* a datagram's payload in the load tests */

/* --- a namespace with lo up -------------------------------------------------- */

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int enter_private_netns(void)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();

	if (unshare(CLONE_NEWNET) < 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
			return -1;
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
		if (write_text("/proc/self/uid_map", map) < 0 ||
		    write_text("/proc/self/setgroups", "deny") < 0)
			return -1;
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
		if (write_text("/proc/self/gid_map", map) < 0)
			return -1;
	}
	return 0;
}

static int bring_lo_up(void)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (s < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	r = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (r == 0)
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return r;
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (enter_private_netns() < 0 || bring_lo_up() < 0) {
		fprintf(stderr, "cannot make a network namespace with lo up: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

/* --- fixtures -------------------------------------------------------------- */

struct fix {
	int pkt;      /* packet socket on lo */
	int rx, tx;   /* UDP: the receiver on PORT, the sender */
	int out_read; /* the capture file, to read back */
	struct cf_pcapng *w;
	int iface;
	struct sockaddr_in to;
};

static int packet_socket_on_lo(void)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = (int)if_nametoindex("lo")};
	int one = 1;
	int s = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));

	assert_true(s >= 0);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)), 0);
	/* without a ring the socket's queue is all there is: as large as allowed */
	if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &(int){16 << 20}, sizeof(int)) < 0)
		assert_int_equal(
		    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &(int){16 << 20}, sizeof(int)), 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return s;
}

static void udp_pair(struct fix *f)
{
	f->to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(PORT)};
	f->to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	f->tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(f->rx >= 0 && f->tx >= 0);
	/* a failed test leaves its receiver open: the next one binds all the same */
	assert_int_equal(setsockopt(f->rx, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int)), 0);
	assert_int_equal(bind(f->rx, (struct sockaddr *)&f->to, sizeof(f->to)), 0);
}

/* A fixture writing to @out_fd (owned by the writer from now on). */
static void fix_open(struct fix *f, int out_fd)
{
	assert_int_equal(cf_pcapng_open_fd(out_fd, NULL, &f->w), 0);
	f->iface = cf_pcapng_add_interface(f->w, CF_PCAPNG_LINKTYPE_RAW, "lo", NULL);
	assert_int_equal(f->iface, 0);
	f->pkt = packet_socket_on_lo();
	udp_pair(f);
}

static void fix_close(struct fix *f)
{
	close(f->pkt);
	close(f->rx);
	close(f->tx);
}

/* lo shows each packet twice: keep the copy going out, as the child view does. */
static bool keep_outgoing(void *arg, const uint8_t *pkt, size_t len, int ifindex, uint8_t pkttype,
			  enum cf_pcapng_dir *dir)
{
	unsigned *calls = arg;

	(void)pkt;
	(void)len;
	(void)ifindex;
	__atomic_add_fetch(calls, 1, __ATOMIC_RELAXED);
	*dir = CF_PCAPNG_DIR_OUT;
	return pkttype == PACKET_OUTGOING;
}

static struct cf_capdrain *start(struct fix *f, size_t ring_blocks, unsigned *calls)
{
	struct cf_capdrain_opts o = {.fd = f->pkt,
				     .out = f->w,
				     .iface = f->iface,
				     .ring_blocks = ring_blocks,
				     .keep = keep_outgoing,
				     .keep_arg = calls};
	struct cf_capdrain *d = NULL;

	assert_int_equal(cf_capdrain_start(&o, &d), 0);
	assert_non_null(d);
	return d;
}

/* Datagram @seq: its number, then a pattern, @len bytes in all. */
static void send_seq(struct fix *f, uint32_t seq, size_t len)
{
	static uint8_t buf[BIG];

	memset(buf, (int)(seq & 0xff), len);
	memcpy(buf, &seq, sizeof(seq));
	assert_int_equal(sendto(f->tx, buf, len, 0, (struct sockaddr *)&f->to, sizeof(f->to)),
			 (ssize_t)len);
}

/* --- reading the file back --------------------------------------------------- */

static uint32_t u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Check that @buf holds SHB, IDB and then exactly @n packets: the datagrams
 * sent, in order, each whole (IPv4 + UDP headers, 28 bytes, before them).
 */
static void assert_datagrams_in_order(const uint8_t *buf, size_t len, uint32_t n,
				      size_t (*size_of)(uint32_t))
{
	size_t off = 0;
	uint32_t blocks = 0, seq = 0;

	while (off + 12 <= len) {
		uint32_t type = u32(buf + off), blen = u32(buf + off + 4);

		assert_true(blen >= 12 && off + blen <= len);
		if (type == 6) {
			uint32_t caplen = u32(buf + off + 20), got;
			const uint8_t *ip = buf + off + 28;

			assert_int_equal(caplen, 28 + size_of(seq));
			memcpy(&got, ip + 28, sizeof(got));
			assert_int_equal(got, seq);
			assert_int_equal(ip[caplen - 1], seq & 0xff);
			seq++;
		}
		off += blen;
		blocks++;
	}
	assert_int_equal(off, len);
	assert_int_equal(seq, n);
	assert_int_equal(blocks, 2 + n);
}

static uint8_t *read_fd_all(int fd, size_t *len)
{
	size_t cap = 1 << 20, n = 0;
	uint8_t *buf = malloc(cap);

	assert_non_null(buf);
	for (;;) {
		ssize_t r;

		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		r = read(fd, buf + n, cap - n);
		assert_true(r >= 0);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return buf;
}

/* --- tests ------------------------------------------------------------------- */

static size_t mixed_size(uint32_t seq)
{
	return seq % 3 == 0 ? 3000 : 100 + seq % 50; /* written from the ring, and copied */
}

static size_t big_size(uint32_t seq)
{
	(void)seq;
	return BIG;
}

static void every_packet_once_in_order(size_t ring_blocks)
{
	const uint32_t n = 2000;
	struct fix f;
	unsigned calls = 0;
	uint64_t dropped = 1;
	int mfd = memfd_create("capdrain", MFD_CLOEXEC);
	struct cf_capdrain *d;
	size_t len;
	uint8_t *buf;

	assert_true(mfd >= 0);
	f.out_read = dup(mfd);
	fix_open(&f, mfd);
	d = start(&f, ring_blocks, &calls);
	for (uint32_t i = 0; i < n; i++) {
		cf_capdrain_wait_room(d);
		send_seq(&f, i, mixed_size(i));
		if (!ring_blocks && i % 16 == 15)
			usleep(1000); /* one at a time is slow: let the socket's queue drain */
	}
	assert_int_equal(cf_capdrain_stop(d, &dropped), 0);
	assert_int_equal(dropped, 0);
	assert_int_equal(calls, 2 * n); /* seen going out and coming in */
	assert_int_equal(cf_pcapng_packets(f.w), n);
	assert_int_equal(cf_pcapng_close(f.w), 0);
	assert_true(lseek(f.out_read, 0, SEEK_SET) == 0);
	buf = read_fd_all(f.out_read, &len);
	assert_datagrams_in_order(buf, len, n, mixed_size);
	free(buf);
	close(f.out_read);
	fix_close(&f);
}

static void test_every_kept_packet_is_written_once_in_order(void **state)
{
	(void)state;
	every_packet_once_in_order(CF_PKTRING_BLOCKS);
}

static void test_without_a_ring_packets_are_read_one_at_a_time(void **state)
{
	(void)state;
	every_packet_once_in_order(0);
}

struct slow_reader {
	int fd;
	uint8_t *buf;
	size_t len;
};

static void *read_later(void *arg)
{
	struct slow_reader *s = arg;

	usleep(300 * 1000);
	s->buf = read_fd_all(s->fd, &s->len);
	return NULL;
}

/*
 * The output stalls for 300 ms while ten times the ring's worth of packets
 * is sent: the producer is held back, and nothing is dropped.
 */
static void test_a_stalled_output_holds_the_producer_back_instead_of_dropping(void **state)
{
	const uint32_t n = 10 * CF_PKTRING_BLOCKS * (CF_PKTRING_BLOCK_SIZE / BIG) / 2;
	struct slow_reader s = {0};
	struct fix f;
	unsigned calls = 0;
	uint64_t dropped = 1;
	pthread_t t;
	int p[2];
	uint8_t hdr[4096];
	struct cf_capdrain *d;

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fix_open(&f, p[1]);
	assert_true(read(p[0], hdr, sizeof(hdr)) > 0); /* the SHB, written at open */
	d = start(&f, CF_PKTRING_BLOCKS, &calls);
	s.fd = p[0];
	assert_int_equal(pthread_create(&t, NULL, read_later, &s), 0);
	for (uint32_t i = 0; i < n; i++) {
		cf_capdrain_wait_room(d);
		send_seq(&f, i, BIG);
	}
	assert_int_equal(cf_capdrain_stop(d, &dropped), 0);
	assert_int_equal(cf_pcapng_close(f.w), 0); /* closes p[1]: the reader sees the end */
	pthread_join(t, NULL);
	assert_int_equal(dropped, 0);
	/* what the reader got starts after the SHB: prepend one of the same size */
	{
		uint8_t *all = malloc(s.len + 28);

		assert_non_null(all);
		memset(all, 0, 28);
		memcpy(all + 4, &(uint32_t){28}, 4);
		memcpy(all + 24, &(uint32_t){28}, 4);
		memcpy(all + 28, s.buf, s.len);
		assert_datagrams_in_order(all, s.len + 28, n, big_size);
		free(all);
	}
	free(s.buf);
	close(p[0]);
	fix_close(&f);
}

static void on_alarm(int sig)
{
	(void)sig;
	fprintf(stderr, "the producer was held by a capture that failed\n");
	_exit(1);
}

static void test_a_write_error_is_reported_and_never_holds_the_producer(void **state)
{
	const uint32_t n = 4 * CF_PKTRING_BLOCKS * (CF_PKTRING_BLOCK_SIZE / BIG);
	struct fix f;
	unsigned calls = 0;
	struct cf_capdrain *d;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fix_open(&f, p[1]);
	close(p[0]);
	d = start(&f, CF_PKTRING_BLOCKS, &calls);
	signal(SIGALRM, on_alarm);
	alarm(30);
	for (uint32_t i = 0; i < n; i++) {
		cf_capdrain_wait_room(d);
		send_seq(&f, i, BIG);
	}
	alarm(0);
	assert_int_equal(cf_capdrain_stop(d, NULL), -EPIPE);
	assert_int_equal(cf_pcapng_close(f.w), -EPIPE);
	fix_close(&f);
}

/* --- the ring's order, on a ring of the test's own making ----------------------------- */

#define FAKE_BLOCKS 4u
#define FAKE_BLOCK_SIZE 4096u

struct fake {
	struct cf_pktring ring;
	unsigned packets, ends;
};

static struct tpacket_block_desc *fake_block(struct fake *f, size_t i)
{
	return (struct tpacket_block_desc *)(void *)(f->ring.map + i * FAKE_BLOCK_SIZE);
}

/* Block @i as the kernel hands it over: one 20-byte packet, status TP_STATUS_USER. */
static void fake_fill(struct fake *f, size_t i)
{
	struct tpacket_block_desc *b = fake_block(f, i);
	struct tpacket3_hdr *h;
	struct sockaddr_ll *sll;

	memset(b, 0, FAKE_BLOCK_SIZE);
	b->hdr.bh1.num_pkts = 1;
	b->hdr.bh1.offset_to_first_pkt = 64;
	h = (struct tpacket3_hdr *)(void *)((uint8_t *)b + 64);
	h->tp_snaplen = h->tp_len = 20;
	h->tp_mac = h->tp_net = 128;
	sll = (struct sockaddr_ll *)(void *)((uint8_t *)h + TPACKET_ALIGN(sizeof(*h)));
	sll->sll_ifindex = 1;
	b->hdr.bh1.block_status = TP_STATUS_USER;
}

static void fake_packet(void *arg, const struct cf_pktring_pkt *pkt)
{
	struct fake *f = arg;

	assert_int_equal(pkt->len, 20);
	f->packets++;
}

/* What refers to a block's packets is done before the block goes back to the kernel. */
static void fake_block_end(void *arg)
{
	struct fake *f = arg;
	size_t cur = f->ring.cur;

	assert_true(fake_block(f, cur)->hdr.bh1.block_status & TP_STATUS_USER);
	assert_int_equal(f->ends, f->packets - 1);
	f->ends++;
}

static void test_a_block_goes_back_only_after_its_end_and_backlog_is_half_a_ring(void **state)
{
	struct fake f = {0};

	(void)state;
	f.ring.fd = -1;
	f.ring.block_size = FAKE_BLOCK_SIZE;
	f.ring.nblocks = FAKE_BLOCKS;
	f.ring.map = mmap(NULL, FAKE_BLOCK_SIZE * FAKE_BLOCKS, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(f.ring.map != MAP_FAILED);
	assert_false(cf_pktring_backlogged(&f.ring));
	for (size_t i = 0; i < 3; i++)
		fake_fill(&f, i);
	assert_true(cf_pktring_backlogged(&f.ring)); /* block 2, half a ring ahead, is full */
	assert_int_equal(cf_pktring_read(&f.ring, 2, fake_packet, fake_block_end, &f), 2);
	assert_int_equal(f.ends, 2);
	assert_int_equal(fake_block(&f, 0)->hdr.bh1.block_status, TP_STATUS_KERNEL);
	assert_int_equal(fake_block(&f, 1)->hdr.bh1.block_status, TP_STATUS_KERNEL);
	assert_false(cf_pktring_backlogged(&f.ring)); /* reader at 2: block 0 is the kernel's */
	assert_int_equal(cf_pktring_read(&f.ring, 10, fake_packet, fake_block_end, &f), 1);
	assert_int_equal(f.packets, 3);
	assert_int_equal(f.ring.cur, 3);
	cf_pktring_close(&f.ring);
	assert_null(f.ring.map);
}

static void test_start_checks_its_arguments(void **state)
{
	struct fix f;
	unsigned calls = 0;
	struct cf_capdrain *d = NULL;
	struct cf_capdrain_opts o;

	(void)state;
	fix_open(&f, memfd_create("capdrain", MFD_CLOEXEC));
	o = (struct cf_capdrain_opts){
	    .fd = f.pkt, .out = f.w, .keep = keep_outgoing, .keep_arg = &calls};
	assert_int_equal(cf_capdrain_start(NULL, &d), -EINVAL);
	assert_int_equal(cf_capdrain_start(&o, NULL), -EINVAL);
	o.fd = -1;
	assert_int_equal(cf_capdrain_start(&o, &d), -EINVAL);
	o.fd = f.pkt;
	o.out = NULL;
	assert_int_equal(cf_capdrain_start(&o, &d), -EINVAL);
	o.out = f.w;
	o.keep = NULL;
	assert_int_equal(cf_capdrain_start(&o, &d), -EINVAL);
	assert_null(d);
	cf_capdrain_wait_room(NULL);
	assert_int_equal(cf_capdrain_stop(NULL, NULL), 0);
	assert_int_equal(cf_pcapng_close(f.w), 0);
	fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_kept_packet_is_written_once_in_order),
	    cmocka_unit_test(test_without_a_ring_packets_are_read_one_at_a_time),
	    cmocka_unit_test(test_a_stalled_output_holds_the_producer_back_instead_of_dropping),
	    cmocka_unit_test(test_a_write_error_is_reported_and_never_holds_the_producer),
	    cmocka_unit_test(test_start_checks_its_arguments),
	    cmocka_unit_test(test_a_block_goes_back_only_after_its_end_and_backlog_is_half_a_ring),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
