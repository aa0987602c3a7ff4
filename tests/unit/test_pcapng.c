// SPDX-License-Identifier: MIT
/*
 * Tests of the pcapng writer: exact bytes of every block type against
 * hand-computed references, padding, snaplen truncation, streaming at block
 * boundaries, refusal to overwrite, write-error propagation, and a file that
 * tshark and capinfos (the real readers) must read without a warning.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/pcapng.h"

#ifndef CF_VERSION
#define CF_VERSION "dev"
#endif

#define USERAPPL "childflow " CF_VERSION
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define TS_NS 1700000000123456789ull /* 0x17979cfe3d85cd15 */

/* The only line tshark/capinfos may print on stderr (they say it whenever run as root). */
#define ROOT_WARNING "Running as user \"root\" and group \"root\". This could be dangerous.\n"

struct fixture {
	char dir[64];
	char path[128];
};

static const struct cf_pcapng_meta child_meta = {
    .view = "child",
    .backend = "rootless-internal",
    .kind = "tun",
};

/* --- helpers ------------------------------------------------------------ */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_pcapng.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/out.pcapng", f->dir);
	*state = f;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static uint8_t *read_all(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	FILE *fp = fopen(path, "rb");

	assert_non_null(fp);
	assert_int_equal(fstat(fileno(fp), &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, *len, fp), *len);
	fclose(fp);
	return buf;
}

static size_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (size_t)st.st_size;
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Count the blocks of @buf, requiring it to be a sequence of whole blocks:
 * lengths multiples of 4, trailer equal to header. Return -1 otherwise.
 */
static int count_whole_blocks(const uint8_t *buf, size_t len)
{
	size_t off = 0;
	int n = 0;

	while (off < len) {
		uint32_t blen;

		if (len - off < 12)
			return -1;
		blen = get_u32(buf + off + 4);
		if (blen < 12 || blen % 4 || blen > len - off)
			return -1;
		if (get_u32(buf + off + blen - 4) != blen)
			return -1;
		off += blen;
		n++;
	}
	return n;
}

/* Offset of block @index (0 = SHB) in @buf, which must hold that many whole blocks. */
static size_t block_offset(const uint8_t *buf, size_t len, int index)
{
	size_t off = 0;

	for (int i = 0; i < index; i++) {
		assert_true(off + 8 <= len);
		off += get_u32(buf + off + 4);
	}
	assert_true(off < len);
	return off;
}

/* Append option @code with @value (padded) to @p, the way the pcapng spec lays it out. */
static size_t put_option(uint8_t *p, uint16_t code, const char *value)
{
	uint16_t vlen = (uint16_t)strlen(value);
	size_t padded = (vlen + 3u) & ~3u;

	memcpy(p, &code, 2);
	memcpy(p + 2, &vlen, 2);
	memset(p + 4, 0, padded);
	memcpy(p + 4, value, vlen);
	return 4 + padded;
}

static bool host_is_little_endian(void)
{
	const uint16_t one = 1;

	return *(const uint8_t *)&one == 1;
}

#define SKIP_UNLESS_LITTLE_ENDIAN()                                                                \
	do {                                                                                       \
		if (!host_is_little_endian()) {                                                    \
			print_message(                                                             \
			    "reference bytes are little-endian; skipped on this host\n");          \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static struct cf_pcapng *open_ok(const char *path, const struct cf_pcapng_meta *meta)
{
	struct cf_pcapng *w = NULL;

	assert_int_equal(cf_pcapng_open(path, false, meta, &w), 0);
	assert_non_null(w);
	return w;
}

/* --- exact bytes ---------------------------------------------------------- */

static void test_section_header_bytes_match_reference(void **state)
{
	struct fixture *f = *state;
	/* clang-format off */
	static const uint8_t head[] = {
		0x0a, 0x0d, 0x0d, 0x0a, /* block type SHB */
		0x00, 0x00, 0x00, 0x00, /* total length, patched below */
		0x4d, 0x3c, 0x2b, 0x1a, /* byte-order magic */
		0x01, 0x00, 0x00, 0x00, /* version 1.0 */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* section length: unknown */
		/* opt_comment "view=child" (10 bytes + 2 padding) */
		0x01, 0x00, 0x0a, 0x00, 'v', 'i', 'e', 'w', '=', 'c', 'h', 'i', 'l', 'd', 0, 0,
		/* opt_comment "backend=rootless-internal" (25 bytes + 3 padding) */
		0x01, 0x00, 0x19, 0x00, 'b', 'a', 'c', 'k', 'e', 'n', 'd', '=', 'r', 'o', 'o', 't',
		'l', 'e', 's', 's', '-', 'i', 'n', 't', 'e', 'r', 'n', 'a', 'l', 0, 0, 0,
		/* opt_comment "kind=tun" (8 bytes, no padding) */
		0x01, 0x00, 0x08, 0x00, 'k', 'i', 'n', 'd', '=', 't', 'u', 'n',
	};
	/* clang-format on */
	uint8_t expected[1024];
	struct utsname uts;
	char os[sizeof(uts.sysname) + sizeof(uts.release)];
	size_t off = 0, len;
	uint32_t total;
	uint8_t *got;

	SKIP_UNLESS_LITTLE_ENDIAN();
	assert_int_equal(uname(&uts), 0);
	snprintf(os, sizeof(os), "%s %s", uts.sysname, uts.release);

	memcpy(expected, head, sizeof(head));
	off = sizeof(head);
	off += put_option(expected + off, 2, uts.machine); /* shb_hardware */
	off += put_option(expected + off, 3, os);	   /* shb_os */
	off += put_option(expected + off, 4, USERAPPL);	   /* shb_userappl */
	memset(expected + off, 0, 4);			   /* opt_endofopt */
	off += 4;
	total = (uint32_t)(off + 4);
	memcpy(expected + 4, &total, 4);
	memcpy(expected + off, &total, 4);
	off += 4;

	assert_int_equal(cf_pcapng_close(open_ok(f->path, &child_meta)), 0);
	got = read_all(f->path, &len);
	assert_int_equal(len, off);
	assert_memory_equal(got, expected, off);
	free(got);
}

static void test_section_header_carries_free_comment_and_skips_empty_fields(void **state)
{
	struct fixture *f = *state;
	const struct cf_pcapng_meta meta = {.view = "", .kind = "dns", .comment = "run 42"};
	/* clang-format off */
	static const uint8_t comments[] = {
		0x01, 0x00, 0x08, 0x00, 'k', 'i', 'n', 'd', '=', 'd', 'n', 's',
		0x01, 0x00, 0x06, 0x00, 'r', 'u', 'n', ' ', '4', '2', 0, 0,
		0x02, 0x00, /* next: shb_hardware */
	};
	/* clang-format on */
	size_t len;
	uint8_t *got;

	SKIP_UNLESS_LITTLE_ENDIAN();
	assert_int_equal(cf_pcapng_close(open_ok(f->path, &meta)), 0);
	got = read_all(f->path, &len);
	assert_true(len > 24 + sizeof(comments));
	assert_memory_equal(got + 24, comments, sizeof(comments));
	free(got);
}

static void test_interface_blocks_match_reference(void **state)
{
	struct fixture *f = *state;
	/* clang-format off */
	static const uint8_t expected[] = {
		/* IDB 0: raw IP, "tun0", "child view" */
		0x01, 0x00, 0x00, 0x00, /* block type IDB */
		0x38, 0x00, 0x00, 0x00, /* total length 56 */
		0x65, 0x00, 0x00, 0x00, /* LINKTYPE_RAW (101), reserved */
		0x00, 0x00, 0x04, 0x00, /* snaplen 262144 */
		0x02, 0x00, 0x04, 0x00, 't', 'u', 'n', '0', /* if_name */
		0x03, 0x00, 0x0a, 0x00, 'c', 'h', 'i', 'l', 'd', ' ', 'v', 'i', 'e', 'w', 0, 0,
		0x09, 0x00, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00, /* if_tsresol = 9 (ns) */
		0x00, 0x00, 0x00, 0x00, /* opt_endofopt */
		0x38, 0x00, 0x00, 0x00, /* total length */
		/* IDB 1: Ethernet, no name, no description */
		0x01, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, /* IDB, length 32 */
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, /* LINKTYPE_ETHERNET, snaplen */
		0x09, 0x00, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00, /* if_tsresol */
		0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00,
	};
	/* clang-format on */
	struct cf_pcapng *w;
	size_t shb_len, len;
	uint8_t *got;

	SKIP_UNLESS_LITTLE_ENDIAN();
	w = open_ok(f->path, NULL);
	shb_len = file_size(f->path); /* the SHB is flushed at open */
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", "child view"),
			 0);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_ETHERNET, NULL, ""), 1);
	assert_int_equal(cf_pcapng_close(w), 0);

	got = read_all(f->path, &len);
	assert_int_equal(count_whole_blocks(got, len), 3);
	assert_int_equal(len, shb_len + sizeof(expected));
	assert_memory_equal(got + shb_len, expected, sizeof(expected));
	free(got);
}

static void test_packet_blocks_match_reference(void **state)
{
	struct fixture *f = *state;
	static const uint8_t data[] = {0xde, 0xad, 0xbe, 0xef, 0x01};
	/* clang-format off */
	static const uint8_t expected[] = {
		/* outbound, 5 bytes */
		0x06, 0x00, 0x00, 0x00, /* block type EPB */
		0x34, 0x00, 0x00, 0x00, /* total length 52 */
		0x00, 0x00, 0x00, 0x00, /* interface 0 */
		0xfe, 0x9c, 0x97, 0x17, /* timestamp high */
		0x15, 0xcd, 0x85, 0x3d, /* timestamp low */
		0x05, 0x00, 0x00, 0x00, /* captured length */
		0x05, 0x00, 0x00, 0x00, /* original length */
		0xde, 0xad, 0xbe, 0xef, 0x01, 0x00, 0x00, 0x00, /* data + 3 padding */
		0x02, 0x00, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00, /* epb_flags: outbound */
		0x00, 0x00, 0x00, 0x00, /* opt_endofopt */
		0x34, 0x00, 0x00, 0x00,
		/* inbound, 4 bytes, timestamp + 1 ns, interface 1 */
		0x06, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0xfe, 0x9c, 0x97, 0x17, 0x16, 0xcd, 0x85, 0x3d,
		0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
		0xde, 0xad, 0xbe, 0xef,
		0x02, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, /* epb_flags: inbound */
		0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00,
		/* unknown direction: no options at all */
		0x06, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, /* timestamp 7 ns */
		0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
		0xde, 0xad, 0x00, 0x00,
		0x24, 0x00, 0x00, 0x00,
	};
	/* clang-format on */
	struct cf_pcapng *w;
	size_t before, len;
	uint8_t *got;

	SKIP_UNLESS_LITTLE_ENDIAN();
	w = open_ok(f->path, NULL);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, NULL, NULL), 0);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, NULL, NULL), 1);
	assert_int_equal(cf_pcapng_flush(w), 0);
	before = file_size(f->path);
	assert_int_equal(cf_pcapng_write_packet(w, 0, TS_NS, data, 5, CF_PCAPNG_DIR_OUT), 0);
	assert_int_equal(cf_pcapng_write_packet(w, 1, TS_NS + 1, data, 4, CF_PCAPNG_DIR_IN), 0);
	assert_int_equal(cf_pcapng_write_packet(w, 0, 7, data, 2, CF_PCAPNG_DIR_UNKNOWN), 0);
	assert_int_equal(cf_pcapng_packets(w), 3);
	assert_int_equal(cf_pcapng_close(w), 0);

	got = read_all(f->path, &len);
	assert_int_equal(len, before + sizeof(expected));
	assert_memory_equal(got + before, expected, sizeof(expected));
	free(got);
}

static void test_packet_data_is_padded_to_32_bits(void **state)
{
	struct fixture *f = *state;
	static const uint8_t data[] = {0x11, 0x22, 0x33, 0x44, 0x55};
	/* data length -> padded length */
	static const size_t cases[][2] = {{0, 0}, {1, 4}, {2, 4}, {3, 4}, {4, 4}, {5, 8}};
	struct cf_pcapng *w;
	size_t len;
	uint8_t *got;

	w = open_ok(f->path, NULL);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, NULL, NULL), 0);
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		assert_int_equal(
		    cf_pcapng_write_packet(w, 0, i, data, cases[i][0], CF_PCAPNG_DIR_UNKNOWN), 0);
	assert_int_equal(cf_pcapng_close(w), 0);

	got = read_all(f->path, &len);
	assert_int_equal(count_whole_blocks(got, len), 2 + (int)N_ELEMENTS(cases));
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const uint8_t *b = got + block_offset(got, len, 2 + (int)i);
		size_t n = cases[i][0], padded = cases[i][1];

		assert_int_equal(get_u32(b), 6);
		assert_int_equal(get_u32(b + 4), 32 + padded);
		assert_int_equal(get_u32(b + 20), n); /* captured */
		assert_int_equal(get_u32(b + 24), n); /* original */
		assert_memory_equal(b + 28, data, n);
		for (size_t k = n; k < padded; k++)
			assert_int_equal(b[28 + k], 0);
	}
	free(got);
}

/* --- snaplen, streaming ----------------------------------------------------- */

static void fill_pattern(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + 3);
}

static void test_packet_longer_than_snaplen_is_truncated(void **state)
{
	struct fixture *f = *state;
	const size_t big = CF_PCAPNG_SNAPLEN + 5;
	/* packet lengths in file order; the big ones do not fit in the write buffer */
	const size_t lens[] = {20, big, CF_PCAPNG_SNAPLEN, 21};
	uint8_t *data = malloc(big);
	struct cf_pcapng *w;
	size_t len;
	uint8_t *got;

	assert_non_null(data);
	fill_pattern(data, big);
	w = open_ok(f->path, NULL);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, NULL, NULL), 0);
	for (size_t i = 0; i < N_ELEMENTS(lens); i++)
		assert_int_equal(cf_pcapng_write_packet(w, 0, i, data, lens[i], CF_PCAPNG_DIR_OUT),
				 0);
	assert_int_equal(cf_pcapng_close(w), 0);

	got = read_all(f->path, &len);
	assert_int_equal(count_whole_blocks(got, len), 2 + (int)N_ELEMENTS(lens));
	for (size_t i = 0; i < N_ELEMENTS(lens); i++) {
		const uint8_t *b = got + block_offset(got, len, 2 + (int)i);
		size_t caplen = lens[i] < CF_PCAPNG_SNAPLEN ? lens[i] : CF_PCAPNG_SNAPLEN;

		assert_int_equal(get_u32(b + 16), i); /* timestamp low: file order kept */
		assert_int_equal(get_u32(b + 20), caplen);
		assert_int_equal(get_u32(b + 24), lens[i]);
		assert_memory_equal(b + 28, data, caplen);
	}
	free(got);
	free(data);
}

static void test_file_holds_only_whole_blocks_while_streaming(void **state)
{
	struct fixture *f = *state;
	enum { PACKET = 1500, COUNT = 2000 };
	const size_t block = 32 + PACKET + 12; /* EPB with epb_flags */
	const size_t idb = 40;		       /* IDB with if_name "tun0" */
	uint8_t data[PACKET];
	struct cf_pcapng *w;
	size_t shb_len, len;
	uint8_t *got;

	fill_pattern(data, sizeof(data));
	w = open_ok(f->path, &child_meta);
	shb_len = file_size(f->path);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", NULL), 0);
	for (int i = 1; i <= COUNT; i++) {
		assert_int_equal(
		    cf_pcapng_write_packet(w, 0, (uint64_t)i, data, sizeof(data), CF_PCAPNG_DIR_IN),
		    0);
		if (i % 100)
			continue;
		got = read_all(f->path, &len);
		assert_true(count_whole_blocks(got, len) >= 1);
		/* the buffer is bounded: whatever does not fit is already out */
		assert_true(len + CF_PCAPNG_BUFFER_SIZE >= shb_len + idb + (size_t)i * block);
		free(got);
	}
	assert_int_equal(cf_pcapng_packets(w), COUNT);
	assert_int_equal(cf_pcapng_close(w), 0);
	got = read_all(f->path, &len);
	assert_int_equal(count_whole_blocks(got, len), 2 + COUNT);
	assert_int_equal(len, shb_len + idb + COUNT * block);
	free(got);
}

/* --- opening ---------------------------------------------------------------- */

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static void test_open_refuses_existing_file_with_eexist(void **state)
{
	struct fixture *f = *state;
	struct cf_pcapng *w = NULL;
	size_t len;
	uint8_t *got;

	write_text(f->path, "precious");
	assert_int_equal(cf_pcapng_open(f->path, false, &child_meta, &w), -EEXIST);
	assert_null(w);
	got = read_all(f->path, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(got, "precious", 8);
	free(got);
}

static void test_open_with_overwrite_replaces_existing_file(void **state)
{
	struct fixture *f = *state;
	struct cf_pcapng *w = NULL;
	size_t len;
	uint8_t *got;

	write_text(f->path, "old contents that are longer than nothing");
	assert_int_equal(cf_pcapng_open(f->path, true, NULL, &w), 0);
	assert_int_equal(cf_pcapng_close(w), 0);
	got = read_all(f->path, &len);
	assert_int_equal(count_whole_blocks(got, len), 1);
	assert_int_equal(get_u32(got), 0x0a0d0d0a);
	free(got);
}

static void test_open_creates_file_with_mode_0600(void **state)
{
	struct fixture *f = *state;
	mode_t old_umask = umask(0);
	struct cf_pcapng *w = NULL;
	struct stat st;
	int r;

	r = cf_pcapng_open(f->path, false, NULL, &w);
	umask(old_umask);
	assert_int_equal(r, 0);
	assert_int_equal(cf_pcapng_close(w), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_open_does_not_follow_symlink(void **state)
{
	struct fixture *f = *state;
	char target[160];
	struct cf_pcapng *w = NULL;
	size_t len;
	uint8_t *got;

	snprintf(target, sizeof(target), "%s/target", f->dir);
	write_text(target, "keep");
	assert_int_equal(symlink(target, f->path), 0);
	assert_int_equal(cf_pcapng_open(f->path, true, NULL, &w), -ELOOP);
	assert_int_equal(cf_pcapng_open(f->path, false, NULL, &w), -EEXIST);
	assert_null(w);
	got = read_all(target, &len);
	assert_int_equal(len, 4);
	free(got);
}

static void test_failed_open_removes_the_file_it_created(void **state)
{
	struct fixture *f = *state;
	const size_t n = UINT16_MAX + 1; /* one byte more than an option can hold */
	char *comment = malloc(n + 1);
	struct cf_pcapng_meta meta = {.view = "child"};
	struct cf_pcapng *w = NULL;
	size_t len;
	uint8_t *got;

	assert_non_null(comment);
	memset(comment, 'c', n);
	comment[n] = '\0';
	meta.comment = comment;
	assert_int_equal(cf_pcapng_open(f->path, false, &meta, &w), -EINVAL);
	assert_null(w);
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(errno, ENOENT);

	/*
	 * The longest strings that fit are written, and four of them make a
	 * section header bigger than the write buffer.
	 */
	comment[n - 1] = '\0';
	meta = (struct cf_pcapng_meta){
	    .view = comment + strlen("view="),
	    .backend = comment + strlen("backend="),
	    .kind = comment + strlen("kind="),
	    .comment = comment,
	};
	assert_int_equal(cf_pcapng_open(f->path, false, &meta, &w), 0);
	assert_int_equal(cf_pcapng_close(w), 0);
	assert_true(file_size(f->path) > CF_PCAPNG_BUFFER_SIZE);
	got = read_all(f->path, &len);
	assert_int_equal(count_whole_blocks(got, len), 1);
	assert_int_equal(get_u32(got + 24), 0xffff0001u); /* opt_comment, 65535 bytes */
	free(got);
	free(comment);
}

static void test_open_rejects_invalid_arguments(void **state)
{
	struct fixture *f = *state;
	struct cf_pcapng *w = NULL;
	int fd;

	assert_int_equal(cf_pcapng_open(NULL, false, NULL, &w), -EINVAL);
	assert_int_equal(cf_pcapng_open(f->path, false, NULL, NULL), -EINVAL);
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(cf_pcapng_open_fd(-1, NULL, &w), -EINVAL);
	assert_null(w);

	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(cf_pcapng_open_fd(fd, NULL, NULL), -EINVAL);
	/* the writer owned the fd, so it closed it */
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
}

static void test_open_in_missing_directory_returns_enoent(void **state)
{
	struct fixture *f = *state;
	char path[160];
	struct cf_pcapng *w = NULL;

	snprintf(path, sizeof(path), "%s/no/such/dir.pcapng", f->dir);
	assert_int_equal(cf_pcapng_open(path, false, NULL, &w), -ENOENT);
	assert_null(w);
}

/* --- argument checks ---------------------------------------------------- */

static void test_packets_need_a_known_interface_and_data(void **state)
{
	struct fixture *f = *state;
	const uint8_t data[4] = {0};
	struct cf_pcapng *w = open_ok(f->path, NULL);

	assert_int_equal(cf_pcapng_write_packet(w, 0, 1, data, 4, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", NULL), 0);
	assert_int_equal(cf_pcapng_write_packet(w, 1, 1, data, 4, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_write_packet(w, -1, 1, data, 4, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_write_packet(w, 0, 1, NULL, 4, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_write_packet(NULL, 0, 1, data, 4, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_packets(w), 0);
	/* an empty packet is a packet */
	assert_int_equal(cf_pcapng_write_packet(w, 0, 1, NULL, 0, CF_PCAPNG_DIR_IN), 0);
	assert_int_equal(cf_pcapng_packets(w), 1);
	assert_int_equal(cf_pcapng_close(w), 0);

	assert_int_equal(cf_pcapng_add_interface(NULL, 1, NULL, NULL), -EINVAL);
	assert_int_equal(cf_pcapng_flush(NULL), -EINVAL);
	assert_int_equal(cf_pcapng_packets(NULL), 0);
	assert_int_equal(cf_pcapng_close(NULL), 0);
}

static void test_interface_description_too_long_is_rejected_without_side_effect(void **state)
{
	struct fixture *f = *state;
	const size_t n = UINT16_MAX + 1;
	char *desc = malloc(n + 1);
	struct cf_pcapng *w = open_ok(f->path, NULL);
	size_t len;
	uint8_t *got;

	assert_non_null(desc);
	memset(desc, 'd', n);
	desc[n] = '\0';
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", desc), -EINVAL);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, desc, NULL), -EINVAL);
	/* the writer is still usable and the failed calls used no interface id */
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", NULL), 0);
	assert_int_equal(cf_pcapng_close(w), 0);
	got = read_all(f->path, &len);
	assert_int_equal(count_whole_blocks(got, len), 2);
	free(got);
	free(desc);
}

/* --- write errors ----------------------------------------------------------- */

static void test_open_on_full_device_returns_enospc(void **state)
{
	struct cf_pcapng *w = NULL;
	int fd;

	(void)state;
	assert_int_equal(cf_pcapng_open("/dev/full", true, NULL, &w), -ENOSPC);
	assert_null(w);
	fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(cf_pcapng_open_fd(fd, &child_meta, &w), -ENOSPC);
	assert_null(w);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
}

static void test_closed_pipe_gives_epipe_on_every_later_call(void **state)
{
	const uint8_t data[8] = {0x45};
	uint8_t shb[4096];
	struct cf_pcapng *w = NULL;
	int p[2];
	ssize_t n;

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(cf_pcapng_open_fd(p[1], &child_meta, &w), 0);
	n = read(p[0], shb, sizeof(shb));
	assert_true(n > 0);
	assert_int_equal(count_whole_blocks(shb, (size_t)n), 1);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", NULL), 0);
	close(p[0]);

	/* buffered: accepted until the flush meets the closed reader */
	assert_int_equal(cf_pcapng_write_packet(w, 0, 1, data, 8, CF_PCAPNG_DIR_OUT), 0);
	assert_int_equal(cf_pcapng_flush(w), -EPIPE);
	assert_int_equal(cf_pcapng_write_packet(w, 0, 2, data, 8, CF_PCAPNG_DIR_OUT), -EPIPE);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "lo", NULL), -EPIPE);
	assert_int_equal(cf_pcapng_flush(w), -EPIPE);
	assert_int_equal(cf_pcapng_packets(w), 1);
	assert_int_equal(cf_pcapng_close(w), -EPIPE);
}

static void test_oversized_packet_reports_write_error_at_once(void **state)
{
	const size_t big = CF_PCAPNG_BUFFER_SIZE + 100;
	uint8_t *data = calloc(1, big);
	struct cf_pcapng *w = NULL;
	uint8_t shb[4096];
	int p[2];

	(void)state;
	assert_non_null(data);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(cf_pcapng_open_fd(p[1], NULL, &w), 0);
	assert_true(read(p[0], shb, sizeof(shb)) > 0);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, NULL, NULL), 0);
	close(p[0]);
	/* too big for the buffer: written directly, so the error comes back now */
	assert_int_equal(cf_pcapng_write_packet(w, 0, 1, data, big, CF_PCAPNG_DIR_OUT), -EPIPE);
	assert_int_equal(cf_pcapng_packets(w), 0);
	assert_int_equal(cf_pcapng_close(w), -EPIPE);
	free(data);
}

static volatile sig_atomic_t alarms;

static void count_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* Child: wait until the writer is blocked on the full pipe @rfd, then copy it to @path. */
static void exec_slow_reader(int rfd, const char *path)
{
	if (dup2(rfd, STDIN_FILENO) < 0)
		_exit(127);
	execl("/bin/sh", "sh", "-c", "sleep 0.1 && exec cat >\"$0\"", path, (char *)NULL);
	_exit(127);
}

static void test_interrupted_writes_resume_where_they_stopped(void **state)
{
	struct fixture *f = *state;
	const size_t big = CF_PCAPNG_SNAPLEN + 5; /* written straight from the caller's data */
	const struct sigaction sa = {.sa_handler = count_alarm}; /* no SA_RESTART */
	const struct itimerval every_ms = {{0, 1000}, {0, 1000}}, off = {0};
	struct cf_pcapng *w = NULL;
	uint8_t *data = malloc(big), *got;
	int p[2], status, r;
	size_t len;
	pid_t pid;

	assert_non_null(data);
	fill_pattern(data, big);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		exec_slow_reader(p[0], f->path);
	}
	close(p[0]);

	alarms = 0;
	/* The handler stays installed: a last tick may still be pending after the timer stops. */
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &every_ms, NULL), 0);
	r = cf_pcapng_open_fd(p[1], &child_meta, &w);
	if (r == 0)
		r = cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", NULL);
	for (size_t i = 0; i < 3 && r == 0; i++)
		r = cf_pcapng_write_packet(w, 0, i, data, i == 1 ? big : 100, CF_PCAPNG_DIR_OUT);
	if (r == 0)
		r = cf_pcapng_close(w);
	setitimer(ITIMER_REAL, &off, NULL);
	assert_int_equal(r, 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0); /* the reader exited 0 */
	assert_true(alarms > 0);     /* the writer really was interrupted while blocked */

	got = read_all(f->path, &len);
	assert_int_equal(count_whole_blocks(got, len), 5);
	assert_int_equal(get_u32(got + block_offset(got, len, 3) + 20), CF_PCAPNG_SNAPLEN);
	assert_memory_equal(got + block_offset(got, len, 3) + 28, data, CF_PCAPNG_SNAPLEN);
	assert_memory_equal(got + block_offset(got, len, 4) + 28, data, 100);
	free(got);
	free(data);
}

/* --- the real readers --------------------------------------------------------- */

static bool have_tool(const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

#define SKIP_UNLESS_WIRESHARK_TOOLS()                                                              \
	do {                                                                                       \
		if (!have_tool("tshark") || !have_tool("capinfos")) {                              \
			print_message("SKIP: tshark/capinfos not installed (Debian: tshark); "     \
				      "the files were not checked by a real reader\n");            \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* Remove every occurrence of @needle from @s. */
static void strip_all(char *s, const char *needle)
{
	size_t n = strlen(needle);
	char *p;

	while ((p = strstr(s, needle)))
		memmove(p, p + n, strlen(p + n) + 1);
}

/*
 * Run @cmd (a shell command line) and return its stdout. It must exit 0 and
 * print nothing on stderr except tshark's notice about running as root.
 */
static char *run_tool(const struct fixture *f, const char *cmd)
{
	char full[1024], errpath[160];
	size_t cap = 65536, used = 0, n;
	char *out = malloc(cap), *err;
	FILE *p;
	int status;

	assert_non_null(out);
	snprintf(errpath, sizeof(errpath), "%s/stderr.txt", f->dir);
	snprintf(full, sizeof(full), "LC_ALL=C %s 2>%s", cmd, errpath);
	p = popen(full, "r");
	assert_non_null(p);
	while ((n = fread(out + used, 1, cap - 1 - used, p)) > 0)
		used += n;
	out[used] = '\0';
	status = pclose(p);
	err = (char *)read_all(errpath, &n);
	err[n] = '\0';
	strip_all(err, ROOT_WARNING);
	if (status != 0 || err[0])
		print_message("command: %s\nstatus: %d\nstdout:\n%s\nstderr:\n%s\n", full, status,
			      out, err);
	assert_int_equal(status, 0);
	assert_string_equal(err, "");
	free(err);
	return out;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		print_message("missing \"%s\" in:\n%s\n", needle, haystack);
	assert_non_null(strstr(haystack, needle));
}

/* UDP DNS query for example.com A, 10.0.2.100:40000 -> 198.51.100.7:53, checksums valid. */
/* clang-format off */
static const uint8_t udp4_packet[57] = {
	0x45, 0x00, 0x00, 0x39, 0x12, 0x34, 0x40, 0x00, /* IPv4, len 57, DF */
	0x40, 0x11, 0xf1, 0xe1, 0x0a, 0x00, 0x02, 0x64, /* ttl 64, UDP, csum, src */
	0xc6, 0x33, 0x64, 0x07, 0x9c, 0x40, 0x00, 0x35, /* dst; sport 40000, dport 53 */
	0x00, 0x25, 0x4a, 0xee, 0x12, 0x34, 0x01, 0x00, /* UDP len 37, csum; DNS id, RD */
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 1 question */
	0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
	0x03, 'c', 'o', 'm', 0x00, 0x00, 0x01, 0x00, /* type A, */
	0x01,					/* class IN */
};
/* clang-format on */

/* UDP DNS query for example.com AAAA, [fd00::100]:40001 -> [2001:db8::7]:53. */
/* clang-format off */
static const uint8_t udp6_packet[77] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x25, 0x11, 0x40, /* IPv6, payload 37, UDP, hop 64 */
	0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* src fd00::100 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, /* dst 2001:db8::7 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
	0x9c, 0x41, 0x00, 0x35, 0x00, 0x25, 0xf6, 0x86, /* sport 40001, dport 53, len, csum */
	0x56, 0x78, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, /* DNS id, RD, 1 question */
	0x00, 0x00, 0x00, 0x00, 0x07, 'e', 'x', 'a',
	'm', 'p', 'l', 'e', 0x03, 'c', 'o', 'm',
	0x00, 0x00, 0x1c, 0x00, 0x01, /* type AAAA, class IN */
};
/* clang-format on */

#define CHILD_DESCRIPTION "childflow child view: tun0+lo of the sandbox"

static void write_sample_capture(const char *path)
{
	const struct cf_pcapng_meta meta = {
	    .view = "child",
	    .backend = "rootless-internal",
	    .kind = "tun",
	    .comment = "childflow test capture",
	};
	struct cf_pcapng *w = open_ok(path, &meta);

	assert_int_equal(
	    cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", CHILD_DESCRIPTION), 0);
	assert_int_equal(cf_pcapng_write_packet(w, 0, TS_NS, udp4_packet, sizeof(udp4_packet),
						CF_PCAPNG_DIR_OUT),
			 0);
	assert_int_equal(cf_pcapng_write_packet(w, 0, TS_NS + 1000, udp6_packet,
						sizeof(udp6_packet), CF_PCAPNG_DIR_IN),
			 0);
	assert_int_equal(cf_pcapng_close(w), 0);
}

static void test_tshark_reads_v4_and_v6_packets_with_direction(void **state)
{
	struct fixture *f = *state;
	char cmd[512];
	char *out;

	SKIP_UNLESS_WIRESHARK_TOOLS();
	write_sample_capture(f->path);
	snprintf(cmd, sizeof(cmd),
		 "tshark -n -r %s -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE "
		 "-T fields -E separator=, -e ip.src -e ipv6.src -e udp.checksum.status "
		 "-e frame.packet_flags_direction -e dns.qry.name -e frame.time_epoch "
		 "-e _ws.expert",
		 f->path);
	out = run_tool(f, cmd);
	/* udp.checksum.status 1 = good; direction 2 = outbound, 1 = inbound; no expert info */
	assert_string_equal(out, "10.0.2.100,,1,0x00000002,example.com,1700000000.123456789,\n"
				 ",fd00::100,1,0x00000001,example.com,1700000000.123457789,\n");
	free(out);
}

static void test_capinfos_shows_section_comments_and_interface(void **state)
{
	struct fixture *f = *state;
	char cmd[512];
	char *out;

	SKIP_UNLESS_WIRESHARK_TOOLS();
	write_sample_capture(f->path);
	snprintf(cmd, sizeof(cmd), "capinfos %s", f->path);
	out = run_tool(f, cmd);
	assert_contains(out, "File type:           Wireshark/... - pcapng\n");
	assert_contains(out, "File encapsulation:  Raw IP\n");
	assert_contains(out, "Number of packets:   2\n");
	assert_contains(out, "Capture application: " USERAPPL "\n");
	assert_contains(out, "Capture comment:     view=child\n");
	assert_contains(out, "Capture comment:     backend=rootless-internal\n");
	assert_contains(out, "Capture comment:     kind=tun\n");
	assert_contains(out, "Capture comment:     childflow test capture\n");
	assert_contains(out, "Name = tun0\n");
	assert_contains(out, "Description = " CHILD_DESCRIPTION "\n");
	assert_contains(out, "Time precision = nanoseconds (9)\n");
	assert_contains(out, "Capture length = 262144\n");
	free(out);
}

/* Set the soft RLIMIT_FSIZE to @limit; return the limits to put back. */
static struct rlimit limit_file_size(rlim_t limit)
{
	struct rlimit old, lim;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = (struct rlimit){.rlim_cur = limit, .rlim_max = old.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	return old;
}

/*
 * Under a file size limit of @limit, write up to 100 packets of @len bytes
 * (by reference or copied), flushing after every @per_flush; put the limit
 * back and return the first error.
 */
static int write_past_limit(struct cf_pcapng *w, rlim_t limit, const uint8_t *data, size_t len,
			    int per_flush, bool by_ref)
{
	struct rlimit old = limit_file_size(limit);
	int r = 0;

	for (int i = 0; i < 100 && r == 0; i++) {
		r = by_ref ? cf_pcapng_write_packet_ref(w, 0, (uint64_t)i, data, len,
							CF_PCAPNG_DIR_OUT)
			   : cf_pcapng_write_packet(w, 0, (uint64_t)i, data, len, CF_PCAPNG_DIR_IN);
		if (r == 0 && i % per_flush == per_flush - 1)
			r = cf_pcapng_flush(w);
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	return r;
}

static void test_write_error_leaves_file_cut_at_a_block_boundary(void **state)
{
	struct fixture *f = *state;
	const rlim_t limit = 10000;
	uint8_t data[1000];
	struct cf_pcapng *w;
	int blocks;
	size_t len;
	uint8_t *got;
	char cmd[256];
	char *out;

	fill_pattern(data, sizeof(data));
	w = open_ok(f->path, &child_meta);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", NULL), 0);
	/* three blocks per write: the limit cuts one */
	assert_int_equal(write_past_limit(w, limit, data, sizeof(data), 3, false), -EFBIG);
	assert_int_equal(cf_pcapng_write_packet(w, 0, 0, data, 10, CF_PCAPNG_DIR_IN), -EFBIG);
	assert_int_equal(cf_pcapng_close(w), -EFBIG);

	got = read_all(f->path, &len);
	assert_true(len <= limit);
	blocks = count_whole_blocks(got, len);
	assert_true(blocks > 2); /* SHB, IDB and the packets written before the limit */
	free(got);

	if (!have_tool("capinfos")) {
		print_message("SKIP (part): capinfos not installed\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "capinfos -c %s", f->path);
	out = run_tool(f, cmd);
	snprintf(cmd, sizeof(cmd), "Number of packets:   %d\n", blocks - 2);
	assert_contains(out, cmd);
	free(out);
}

/* --- background writer ---------------------------------------------------- */

/* Packets of many sizes, up to past the snaplen, with flushes between some. */
static void write_mixed(struct cf_pcapng *w, const uint8_t *data)
{
	static const size_t sizes[] = {1, 40, 1500, 65536, 200000, CF_PCAPNG_SNAPLEN + 7, 3};

	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", "d"), 0);
	for (int round = 0; round < 12; round++) {
		for (size_t i = 0; i < N_ELEMENTS(sizes); i++)
			assert_int_equal(
			    cf_pcapng_write_packet(w, 0, TS_NS + i, data, sizes[i],
						   i % 2 ? CF_PCAPNG_DIR_IN : CF_PCAPNG_DIR_OUT),
			    0);
		if (round % 5 == 4)
			assert_int_equal(cf_pcapng_flush(w), 0);
	}
}

static void test_background_writes_the_same_bytes(void **state)
{
	struct fixture *f = *state;
	const size_t dlen = CF_PCAPNG_SNAPLEN + 7;
	uint8_t *data = malloc(dlen), *a, *b;
	char path_b[160];
	struct cf_pcapng *w;
	size_t la, lb;

	assert_non_null(data);
	fill_pattern(data, dlen);
	w = open_ok(f->path, &child_meta);
	write_mixed(w, data);
	assert_int_equal(cf_pcapng_close(w), 0);

	snprintf(path_b, sizeof(path_b), "%s/bg.pcapng", f->dir);
	w = open_ok(path_b, &child_meta);
	assert_int_equal(cf_pcapng_background(w), 0);
	assert_int_equal(cf_pcapng_background(w), 0); /* once is enough, twice is harmless */
	write_mixed(w, data);
	assert_int_equal(cf_pcapng_packets(w), 12 * 7);
	assert_int_equal(cf_pcapng_close(w), 0);

	a = read_all(f->path, &la);
	b = read_all(path_b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	assert_int_equal(count_whole_blocks(b, lb), 2 + 12 * 7);
	free(a);
	free(b);
	free(data);
	unlink(path_b);
}

static void test_background_write_error_surfaces_and_cuts_at_a_block_boundary(void **state)
{
	struct fixture *f = *state;
	const rlim_t limit = 3 * CF_PCAPNG_BG_BUFFER_SIZE + 5000;
	struct rlimit old;
	uint8_t data[50000];
	struct cf_pcapng *w;
	int i, r = 0, blocks;
	size_t len;
	uint8_t *got;

	fill_pattern(data, sizeof(data));
	w = open_ok(f->path, &child_meta);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", NULL), 0);
	assert_int_equal(cf_pcapng_background(w), 0);
	old = limit_file_size(limit);
	/* 200 packets of 50 kB: 10 MB against a 3 MiB limit */
	for (i = 0; i < 200 && r == 0; i++)
		r = cf_pcapng_write_packet(w, 0, (uint64_t)i, data, sizeof(data), CF_PCAPNG_DIR_IN);
	/* later, from the thread: at a later call, at the latest when closing */
	if (r == 0)
		r = cf_pcapng_close(w);
	else
		assert_int_equal(cf_pcapng_close(w), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(r, -EFBIG);

	got = read_all(f->path, &len);
	assert_true(len <= limit);
	assert_true(len + CF_PCAPNG_BG_BUFFER_SIZE >= limit); /* cut to the last whole buffer */
	blocks = count_whole_blocks(got, len);
	assert_true(blocks > 2);
	free(got);
}

/* A writer with one interface whose output is a pipe nobody reads any more. */
static struct cf_pcapng *open_on_closed_pipe(bool background)
{
	struct cf_pcapng *w = NULL;
	uint8_t shb[4096];
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(cf_pcapng_open_fd(p[1], &child_meta, &w), 0);
	assert_true(read(p[0], shb, sizeof(shb)) > 0);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "tun0", NULL), 0);
	if (background)
		assert_int_equal(cf_pcapng_background(w), 0);
	close(p[0]);
	return w;
}

static void test_background_closed_pipe_gives_epipe_by_close(void **state)
{
	const uint8_t data[8] = {0x45};
	struct cf_pcapng *w = open_on_closed_pipe(true);

	(void)state;
	assert_int_equal(cf_pcapng_write_packet(w, 0, 1, data, 8, CF_PCAPNG_DIR_OUT), 0);
	assert_int_equal(cf_pcapng_close(w), -EPIPE);
}

/* --- packets built in place ---------------------------------------------- */

/* Files @a and @b hold the same bytes (and @blocks whole blocks, unless -1); both are removed. */
static void assert_same_file_and_remove(const char *a, const char *b, int blocks)
{
	size_t la, lb;
	uint8_t *da = read_all(a, &la), *db = read_all(b, &lb);

	assert_int_equal(la, lb);
	assert_memory_equal(da, db, la);
	if (blocks >= 0)
		assert_int_equal(count_whole_blocks(db, lb), blocks);
	free(da);
	free(db);
	unlink(a);
	unlink(b);
}

static const size_t inplace_sizes[] = {0, 1, 3, 4, 5, 1500, 65535, 200000};

static void write_inplace_or_copied(struct cf_pcapng *w, const uint8_t *data, bool inplace)
{
	static const enum cf_pcapng_dir dirs[] = {CF_PCAPNG_DIR_IN, CF_PCAPNG_DIR_OUT,
						  CF_PCAPNG_DIR_UNKNOWN};

	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "egress", NULL), 0);
	for (int round = 0; round < 9; round++) {
		for (size_t i = 0; i < N_ELEMENTS(inplace_sizes); i++) {
			size_t n = inplace_sizes[i];
			enum cf_pcapng_dir dir = dirs[(round + i) % 3];
			uint8_t *room;

			if (!inplace) {
				assert_int_equal(
				    cf_pcapng_write_packet(w, 0, TS_NS + i, data, n, dir), 0);
				continue;
			}
			/* asked for more than it then holds, as the egress view does */
			room = cf_pcapng_packet_room(w, n + 16);
			assert_non_null(room);
			memcpy(room, data, n);
			assert_int_equal(cf_pcapng_packet_commit(w, 0, TS_NS + i, n, dir), 0);
		}
	}
}

static void test_packet_built_in_place_is_the_same_block(void **state)
{
	struct fixture *f = *state;
	uint8_t *data = malloc(200000);
	char path_b[160];

	assert_non_null(data);
	fill_pattern(data, 200000);
	for (int bg = 0; bg < 2; bg++) {
		struct cf_pcapng *w = open_ok(f->path, &child_meta);

		write_inplace_or_copied(w, data, false);
		assert_int_equal(cf_pcapng_close(w), 0);
		snprintf(path_b, sizeof(path_b), "%s/inplace.pcapng", f->dir);
		w = open_ok(path_b, &child_meta);
		if (bg)
			assert_int_equal(cf_pcapng_background(w), 0);
		write_inplace_or_copied(w, data, true);
		assert_int_equal(cf_pcapng_packets(w), 9 * N_ELEMENTS(inplace_sizes));
		assert_int_equal(cf_pcapng_close(w), 0);

		assert_same_file_and_remove(f->path, path_b, -1);
	}
	free(data);
}

static void test_packet_room_is_refused_when_it_cannot_be_a_packet(void **state)
{
	struct fixture *f = *state;
	struct cf_pcapng *w = open_ok(f->path, &child_meta);
	uint8_t *room;

	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "egress", NULL), 0);
	assert_null(cf_pcapng_packet_room(NULL, 10));
	assert_null(cf_pcapng_packet_room(w, CF_PCAPNG_SNAPLEN + 1));
	/* a commit needs its own room, no bigger than asked, and a known interface */
	assert_int_equal(cf_pcapng_packet_commit(w, 0, 1, 0, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_non_null(cf_pcapng_packet_room(w, 10));
	assert_int_equal(cf_pcapng_packet_commit(w, 0, 1, 11, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_non_null(cf_pcapng_packet_room(w, 10));
	assert_int_equal(cf_pcapng_packet_commit(w, 1, 1, 10, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_packet_commit(w, 0, 1, 10, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_packet_commit(NULL, 0, 1, 10, CF_PCAPNG_DIR_IN), -EINVAL);
	room = cf_pcapng_packet_room(w, 10);
	assert_non_null(room);
	memset(room, 0x45, 10);
	assert_int_equal(cf_pcapng_packet_commit(w, 0, 1, 10, CF_PCAPNG_DIR_IN), 0);
	assert_int_equal(cf_pcapng_packets(w), 1);
	assert_int_equal(cf_pcapng_close(w), 0);
}

static void test_packet_room_is_refused_after_a_write_error(void **state)
{
	const uint8_t data[8] = {0x45};
	struct cf_pcapng *w = open_on_closed_pipe(false);

	(void)state;
	assert_int_equal(cf_pcapng_write_packet(w, 0, 1, data, 8, CF_PCAPNG_DIR_OUT), 0);
	assert_int_equal(cf_pcapng_flush(w), -EPIPE);
	assert_null(cf_pcapng_packet_room(w, 8));
	assert_int_equal(cf_pcapng_close(w), -EPIPE);
}

/* --- packets by reference -------------------------------------------------- */

enum how { COPIED, BY_REF, IN_PLACE };

/*
 * Many small packets (more pieces than one writev() takes), large ones, and
 * every way of adding one, mixed: by reference, copied, built in place.
 */
static void write_by_ref_or_copied(struct cf_pcapng *w, const uint8_t *data, bool by_ref)
{
	static const size_t sizes[] = {0, 3, 1500, 65535, 200000, CF_PCAPNG_SNAPLEN + 7};

	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "sandbox", NULL), 0);
	for (int i = 0; i < 3000; i++) {
		size_t n = i % 50 == 49 ? sizes[(i / 50) % N_ELEMENTS(sizes)] : (size_t)(i % 97);
		enum cf_pcapng_dir dir = (enum cf_pcapng_dir)(i % 3);
		enum how how = !by_ref	     ? COPIED
			       : i % 7 == 3  ? COPIED
			       : i % 11 == 5 ? IN_PLACE
					     : BY_REF;
		uint8_t *room;

		if (how == IN_PLACE && n <= 65535) {
			room = cf_pcapng_packet_room(w, n);
			assert_non_null(room);
			memcpy(room, data + i, n);
			assert_int_equal(cf_pcapng_packet_commit(w, 0, TS_NS + (uint64_t)i, n, dir),
					 0);
		} else if (how == BY_REF) {
			assert_int_equal(
			    cf_pcapng_write_packet_ref(w, 0, TS_NS + (uint64_t)i, data + i, n, dir),
			    0);
		} else {
			assert_int_equal(
			    cf_pcapng_write_packet(w, 0, TS_NS + (uint64_t)i, data + i, n, dir), 0);
		}
		/* 1,500 packets between flushes: more pieces than one writev() takes */
		if (i % 1500 == 1499)
			assert_int_equal(cf_pcapng_flush(w), 0);
	}
}

static void test_packet_by_reference_is_the_same_block(void **state)
{
	struct fixture *f = *state;
	const size_t dlen = CF_PCAPNG_SNAPLEN + 3007;
	uint8_t *data = malloc(dlen);
	char path_b[160];

	assert_non_null(data);
	fill_pattern(data, dlen);
	for (int bg = 0; bg < 2; bg++) {
		struct cf_pcapng *w = open_ok(f->path, &child_meta);

		write_by_ref_or_copied(w, data, false);
		assert_int_equal(cf_pcapng_close(w), 0);
		snprintf(path_b, sizeof(path_b), "%s/byref.pcapng", f->dir);
		w = open_ok(path_b, &child_meta);
		if (bg) /* the background writer copies: the same bytes all the same */
			assert_int_equal(cf_pcapng_background(w), 0);
		write_by_ref_or_copied(w, data, true);
		assert_int_equal(cf_pcapng_packets(w), 3000);
		assert_int_equal(cf_pcapng_close(w), 0);

		assert_same_file_and_remove(f->path, path_b, 2 + 3000);
	}
	free(data);
}

static void test_packet_by_reference_needs_a_known_interface_and_data(void **state)
{
	struct fixture *f = *state;
	struct cf_pcapng *w = open_ok(f->path, &child_meta);
	const uint8_t data[4] = {0x45};

	assert_int_equal(cf_pcapng_write_packet_ref(NULL, 0, 1, data, 4, CF_PCAPNG_DIR_IN),
			 -EINVAL);
	assert_int_equal(cf_pcapng_write_packet_ref(w, 0, 1, data, 4, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "sandbox", NULL), 0);
	assert_int_equal(cf_pcapng_write_packet_ref(w, 1, 1, data, 4, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_write_packet_ref(w, -1, 1, data, 4, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_write_packet_ref(w, 0, 1, NULL, 4, CF_PCAPNG_DIR_IN), -EINVAL);
	assert_int_equal(cf_pcapng_write_packet_ref(w, 0, 1, NULL, 0, CF_PCAPNG_DIR_IN), 0);
	assert_int_equal(cf_pcapng_packets(w), 1);
	assert_int_equal(cf_pcapng_close(w), 0);
}

static void test_packet_by_reference_write_error_cuts_at_a_block_boundary(void **state)
{
	struct fixture *f = *state;
	const rlim_t limit = 300000;
	uint8_t data[20000];
	struct cf_pcapng *w;
	int blocks;
	size_t len;
	uint8_t *got;

	fill_pattern(data, sizeof(data));
	w = open_ok(f->path, &child_meta);
	assert_int_equal(cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "sandbox", NULL), 0);
	/* flushed every 7 packets of 20 kB: the limit falls inside a packet */
	assert_int_equal(write_past_limit(w, limit, data, sizeof(data), 7, true), -EFBIG);
	assert_int_equal(cf_pcapng_write_packet_ref(w, 0, 0, data, 10, CF_PCAPNG_DIR_IN), -EFBIG);
	assert_int_equal(cf_pcapng_close(w), -EFBIG);

	got = read_all(f->path, &len);
	assert_true(len <= limit);
	blocks = count_whole_blocks(got, len);
	/* SHB, IDB and the packets of the writes that went through whole */
	assert_int_equal(blocks, 2 + 14);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_section_header_bytes_match_reference, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_section_header_carries_free_comment_and_skips_empty_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_interface_blocks_match_reference, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_packet_by_reference_is_the_same_block, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_packet_by_reference_needs_a_known_interface_and_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_packet_by_reference_write_error_cuts_at_a_block_boundary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_packet_blocks_match_reference, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_packet_data_is_padded_to_32_bits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_packet_longer_than_snaplen_is_truncated, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_file_holds_only_whole_blocks_while_streaming,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_refuses_existing_file_with_eexist, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_open_with_overwrite_replaces_existing_file, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_open_creates_file_with_mode_0600, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_does_not_follow_symlink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_open_removes_the_file_it_created, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_open_rejects_invalid_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_in_missing_directory_returns_enoent, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_packets_need_a_known_interface_and_data, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_interface_description_too_long_is_rejected_without_side_effect, setup,
		teardown),
	    cmocka_unit_test(test_open_on_full_device_returns_enospc),
	    cmocka_unit_test(test_closed_pipe_gives_epipe_on_every_later_call),
	    cmocka_unit_test(test_oversized_packet_reports_write_error_at_once),
	    cmocka_unit_test_setup_teardown(test_interrupted_writes_resume_where_they_stopped,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tshark_reads_v4_and_v6_packets_with_direction,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capinfos_shows_section_comments_and_interface,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_background_writes_the_same_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_background_write_error_surfaces_and_cuts_at_a_block_boundary, setup, teardown),
	    cmocka_unit_test(test_background_closed_pipe_gives_epipe_by_close),
	    cmocka_unit_test_setup_teardown(test_packet_built_in_place_is_the_same_block, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_packet_room_is_refused_when_it_cannot_be_a_packet,
					    setup, teardown),
	    cmocka_unit_test(test_packet_room_is_refused_after_a_write_error),
	    cmocka_unit_test_setup_teardown(test_write_error_leaves_file_cut_at_a_block_boundary,
					    setup, teardown),
	};

	/* Write errors must come back as -EPIPE / -EFBIG, not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
