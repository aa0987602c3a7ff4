// SPDX-License-Identifier: MIT
/*
 * Streaming pcapng writer.
 *
 * Theory of operation
 *
 * A file is one section: a Section Header Block (SHB), then Interface
 * Description Blocks (IDB) and Enhanced Packet Blocks (EPB) in the order the
 * caller adds them. Each block is first described as a short list of pieces
 * (struct block): fixed-size fields are copied into a small scratch area,
 * variable data (option strings, packet bytes) is referenced in place. The
 * finished block is then either copied whole into the writer's fixed buffer,
 * or, if it is bigger than the buffer, written with writev() right after a
 * flush. The buffer is therefore always a sequence of whole blocks, and the
 * kernel only ever receives whole blocks.
 *
 * Errors: the first failure of write() (ENOSPC, EPIPE, EFBIG, EIO, ...) is
 * kept in w->error; nothing is written after it and every call returns it.
 * When the output is a regular file, a block that was only partly written
 * when the error hit is cut off again (ftruncate to the end of the last
 * whole block), so the file stays readable up to its last complete packet.
 *
 * Byte order is the host's, which pcapng allows: readers detect it from the
 * SHB's byte-order magic.
 */
#include "capture/pcapng.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "util/bgwrite.h"
#include "util/cleanup.h"

#ifndef CF_VERSION
#define CF_VERSION "dev"
#endif

/* Block types and option codes (draft-ietf-opsawg-pcapng). */
#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 0x00000001u
#define BT_EPB 0x00000006u
#define BYTE_ORDER_MAGIC 0x1A2B3C4Du

#define OPT_ENDOFOPT 0
#define OPT_COMMENT 1
#define OPT_SHB_HARDWARE 2
#define OPT_SHB_OS 3
#define OPT_SHB_USERAPPL 4
#define OPT_IF_NAME 2
#define OPT_IF_DESCRIPTION 3
#define OPT_IF_TSRESOL 9
#define OPT_EPB_FLAGS 2

#define EPB_FLAG_INBOUND 1u
#define EPB_FLAG_OUTBOUND 2u
#define TSRESOL_NANOSECONDS 9

/* Enough for the largest block's pieces: SHB with all options. */
#define BLOCK_MAX_IOV 32
#define BLOCK_SCRATCH 160
/* Pieces one writev() takes (IOV_MAX on Linux). */
#define GATHER_IOV 1024

struct cf_pcapng {
	int fd;
	int error;	/* first error (-errno), sticky */
	off_t good_end; /* file offset after the last whole block, -1: not a regular file */
	int n_interfaces;
	uint64_t packets;
	size_t used;  /* bytes of whole blocks waiting in buf */
	size_t cap;   /* size of buf */
	uint8_t *buf; /* own, or the background writer's current buffer */
	struct cf_bgwrite *bg;
	off_t bg_base;	/* with bg: good_end when it started, plus bytes written past it */
	size_t room;	/* bytes of packet room handed out by cf_pcapng_packet_room() */
	bool room_open; /* ... and not committed yet */
	/*
	 * What the next flush writes once cf_pcapng_write_packet_ref() was
	 * used: pieces of buf and the caller's packets, in file order. Empty
	 * otherwise (buf[0, used) is then all there is).
	 */
	struct iovec gather[GATHER_IOV];
	size_t n_gather, gather_len;
	uint8_t own[CF_PCAPNG_BUFFER_SIZE];
};

/* One block being assembled: pieces to be written in order. */
struct block {
	struct iovec iov[BLOCK_MAX_IOV];
	size_t n_iov;
	size_t len;
	size_t scratch_used;
	bool overflow;
	uint8_t scratch[BLOCK_SCRATCH];
};

static void block_add_ref(struct block *b, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (b->n_iov == BLOCK_MAX_IOV) {
		b->overflow = true;
		return;
	}
	b->iov[b->n_iov++] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
	b->len += len;
}

/* Copy @len bytes into the scratch area, merging with the previous piece when adjacent. */
static void block_add_copy(struct block *b, const void *data, size_t len)
{
	uint8_t *dst = b->scratch + b->scratch_used;
	struct iovec *last = b->n_iov ? &b->iov[b->n_iov - 1] : NULL;

	if (len > BLOCK_SCRATCH - b->scratch_used) {
		b->overflow = true;
		return;
	}
	memcpy(dst, data, len);
	b->scratch_used += len;
	if (last && (uint8_t *)last->iov_base + last->iov_len == dst) {
		last->iov_len += len;
		b->len += len;
		return;
	}
	block_add_ref(b, dst, len);
}

static void block_add_u16(struct block *b, uint16_t v)
{
	block_add_copy(b, &v, sizeof(v));
}

static void block_add_u32(struct block *b, uint32_t v)
{
	block_add_copy(b, &v, sizeof(v));
}

/* Pad with zero bytes to the next 32-bit boundary. */
static void block_add_pad(struct block *b)
{
	static const uint8_t zeros[3];
	size_t pad = (4 - b->len % 4) % 4;

	block_add_copy(b, zeros, pad);
}

/* Start a block of @type; its total length is filled in by block_finish(). */
static void block_start(struct block *b, uint32_t type)
{
	b->n_iov = 0;
	b->len = 0;
	b->scratch_used = 0;
	b->overflow = false;
	block_add_u32(b, type);
	block_add_u32(b, 0);
}

/*
 * Add option @code whose value is @prefix followed by @value (either may be
 * NULL); nothing is added when the value is empty.
 */
static int block_add_option(struct block *b, uint16_t code, const char *prefix, const char *value)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	size_t vlen = value ? strlen(value) : 0;

	if (vlen == 0)
		return 0;
	if (plen + vlen > UINT16_MAX)
		return -EINVAL;
	block_add_u16(b, code);
	block_add_u16(b, (uint16_t)(plen + vlen));
	block_add_ref(b, prefix, plen);
	block_add_ref(b, value, vlen);
	block_add_pad(b);
	return 0;
}

static void block_add_end_of_options(struct block *b)
{
	block_add_u16(b, OPT_ENDOFOPT);
	block_add_u16(b, 0);
}

/* Write the trailing and leading total length. */
static int block_finish(struct block *b)
{
	uint32_t total;

	if (b->len + 4 > UINT32_MAX)
		return -EMSGSIZE;
	total = (uint32_t)(b->len + 4);
	block_add_u32(b, total);
	if (b->overflow)
		return -ENOBUFS;
	memcpy(b->scratch + 4, &total, sizeof(total));
	return 0;
}

/* Write all of @iov; on a short write continue where it stopped. */
static int write_iov_all(int fd, struct iovec *iov, size_t n_iov)
{
	while (n_iov > 0) {
		ssize_t r = writev(fd, iov, (int)n_iov);
		size_t done;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		done = (size_t)r;
		while (n_iov > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			n_iov--;
		}
		if (n_iov > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

/* Remember the first error and cut a partly written block off a regular file. */
static int record_error(struct cf_pcapng *w, int err)
{
	uint64_t written = 0;

	if (w->error == 0)
		w->error = err;
	if (w->bg) {
		/* Only the buffers written whole count: each ends at a block boundary. */
		(void)cf_bgwrite_sync(w->bg, &written);
		if (w->good_end >= 0)
			w->good_end = w->bg_base + (off_t)written;
	}
	if (w->good_end >= 0 && ftruncate(w->fd, w->good_end) < 0)
		w->good_end = -1; /* best effort: the error itself is what is reported */
	return w->error;
}

/* Add @len bytes at @p to what the next flush writes, merged with the last piece when adjacent. */
static void gather_add(struct cf_pcapng *w, const void *p, size_t len)
{
	struct iovec *last = w->n_gather ? &w->gather[w->n_gather - 1] : NULL;

	if (len == 0)
		return;
	w->gather_len += len;
	if (last && (const uint8_t *)last->iov_base + last->iov_len == p) {
		last->iov_len += len;
		return;
	}
	w->gather[w->n_gather++] = (struct iovec){.iov_base = (void *)p, .iov_len = len};
}

/* buf grew from @from to used: in gather mode that is a piece of the output too. */
static void buffered(struct cf_pcapng *w, size_t from)
{
	if (w->n_gather)
		gather_add(w, w->buf + from, w->used - from);
}

/* Write whole blocks (@len bytes in @iov) to the file, after what the thread still has. */
static int output(struct cf_pcapng *w, struct iovec *iov, size_t n_iov, size_t len)
{
	int r = w->bg ? cf_bgwrite_sync(w->bg, NULL) : 0;

	if (r == 0)
		r = write_iov_all(w->fd, iov, n_iov);
	if (r < 0)
		return record_error(w, r);
	if (w->good_end >= 0)
		w->good_end += (off_t)len;
	w->bg_base += (off_t)len;
	return 0;
}

/* Write out the buffered blocks, or return the sticky error. */
static int flush_buffer(struct cf_pcapng *w)
{
	struct iovec iov = {.iov_base = w->buf, .iov_len = w->used};
	int r;

	if (w->error) {
		w->n_gather = w->gather_len =
		    0; /* nothing is written any more: let go of the caller's bytes */
		return w->error;
	}
	if (w->n_gather) {
		r = output(w, w->gather, w->n_gather, w->gather_len);
		w->n_gather = w->gather_len = w->used = 0;
		return r;
	}
	if (w->used == 0)
		return 0;
	if (w->bg) {
		r = cf_bgwrite_submit(w->bg, w->used);
		w->buf = cf_bgwrite_buffer(w->bg);
		w->used = 0;
		return r < 0 ? record_error(w, r) : 0;
	}
	r = output(w, &iov, 1, w->used);
	w->used = 0;
	return r;
}

int cf_pcapng_flush(struct cf_pcapng *w)
{
	if (!w)
		return -EINVAL;
	return flush_buffer(w);
}

/* Queue a finished block: into the buffer, or straight out if it is bigger. */
static int emit(struct cf_pcapng *w, struct block *b)
{
	size_t from;

	if (w->error)
		return w->error;
	if (b->len > w->cap - w->used) {
		int r = flush_buffer(w);

		if (r < 0)
			return r;
	}
	if (b->len > w->cap)
		return output(w, b->iov, b->n_iov, b->len);
	from = w->used;
	for (size_t i = 0; i < b->n_iov; i++) {
		memcpy(w->buf + w->used, b->iov[i].iov_base, b->iov[i].iov_len);
		w->used += b->iov[i].iov_len;
	}
	buffered(w, from);
	return 0;
}

/* Add the section comments describing the capture ("view=child", ...). */
static int add_meta_comments(struct block *b, const struct cf_pcapng_meta *meta)
{
	const struct {
		const char *prefix;
		const char *value;
	} comments[] = {
	    {"view=", meta->view},
	    {"backend=", meta->backend},
	    {"kind=", meta->kind},
	    {NULL, meta->comment},
	};

	for (size_t i = 0; i < CF_ARRAY_SIZE(comments); i++) {
		int r = block_add_option(b, OPT_COMMENT, comments[i].prefix, comments[i].value);

		if (r < 0)
			return r;
	}
	return 0;
}

/* Add shb_hardware and shb_os from uname(2); @os is storage that outlives the block. */
static int add_system_options(struct block *b, struct utsname *uts, char *os, size_t os_size)
{
	int r;

	if (uname(uts) < 0)
		return 0; /* both options are optional */
	r = block_add_option(b, OPT_SHB_HARDWARE, NULL, uts->machine);
	if (r < 0)
		return r;
	snprintf(os, os_size, "%s %s", uts->sysname, uts->release);
	return block_add_option(b, OPT_SHB_OS, NULL, os);
}

static int write_section_header(struct cf_pcapng *w, const struct cf_pcapng_meta *meta)
{
	const uint64_t section_length = UINT64_MAX; /* -1: not known while streaming */
	struct utsname uts;
	char os[sizeof(uts.sysname) + sizeof(uts.release)];
	struct block b;
	int r;

	block_start(&b, BT_SHB);
	block_add_u32(&b, BYTE_ORDER_MAGIC);
	block_add_u16(&b, 1); /* major version */
	block_add_u16(&b, 0); /* minor version */
	block_add_copy(&b, &section_length, sizeof(section_length));
	r = meta ? add_meta_comments(&b, meta) : 0;
	if (r < 0)
		return r;
	r = add_system_options(&b, &uts, os, sizeof(os));
	if (r < 0)
		return r;
	r = block_add_option(&b, OPT_SHB_USERAPPL, NULL, "childflow " CF_VERSION);
	if (r < 0)
		return r;
	block_add_end_of_options(&b);
	r = block_finish(&b);
	if (r < 0)
		return r;
	r = emit(w, &b);
	if (r < 0)
		return r;
	/* Put the header out now, so an unusable output fails at open. */
	return flush_buffer(w);
}

/* Offset from which this writer's bytes start, or -1 when @fd is not a regular file. */
static off_t start_offset(int fd)
{
	struct stat st;
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	if (flags & O_APPEND)
		return st.st_size;
	return lseek(fd, 0, SEEK_CUR);
}

int cf_pcapng_open_fd(int fd, const struct cf_pcapng_meta *meta, struct cf_pcapng **out)
{
	cleanup_fd int owned_fd = fd;
	struct cf_pcapng *w;
	int r;

	if (fd < 0 || !out)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = take_fd(&owned_fd);
	w->buf = w->own;
	w->cap = sizeof(w->own);
	w->good_end = start_offset(w->fd);
	r = write_section_header(w, meta);
	if (r < 0) {
		cf_pcapng_close(w);
		return r;
	}
	*out = w;
	return 0;
}

int cf_pcapng_open(const char *path, bool overwrite, const struct cf_pcapng_meta *meta,
		   struct cf_pcapng **out)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
	int fd, r;

	if (!path || !out)
		return -EINVAL;
	flags |= overwrite ? O_TRUNC : O_EXCL;
	fd = open(path, flags, 0600);
	if (fd < 0)
		return -errno;
	r = cf_pcapng_open_fd(fd, meta, out);
	/* Do not leave an empty file behind; one we were told to overwrite is gone anyway. */
	if (r < 0 && !overwrite)
		unlink(path);
	return r;
}

int cf_pcapng_add_interface(struct cf_pcapng *w, uint16_t linktype, const char *name,
			    const char *description)
{
	const uint8_t tsresol = TSRESOL_NANOSECONDS;
	struct block b;
	int r;

	if (!w)
		return -EINVAL;
	if (w->error)
		return w->error;
	if (w->n_interfaces == INT_MAX)
		return -EOVERFLOW;
	block_start(&b, BT_IDB);
	block_add_u16(&b, linktype);
	block_add_u16(&b, 0); /* reserved */
	block_add_u32(&b, CF_PCAPNG_SNAPLEN);
	r = block_add_option(&b, OPT_IF_NAME, NULL, name);
	if (r < 0)
		return r;
	r = block_add_option(&b, OPT_IF_DESCRIPTION, NULL, description);
	if (r < 0)
		return r;
	block_add_u16(&b, OPT_IF_TSRESOL);
	block_add_u16(&b, 1);
	block_add_copy(&b, &tsresol, 1);
	block_add_pad(&b);
	block_add_end_of_options(&b);
	r = block_finish(&b);
	if (r < 0)
		return r;
	r = emit(w, &b);
	if (r < 0)
		return r;
	return w->n_interfaces++;
}

/* Check a packet's arguments; 0 or -errno. */
static int check_packet(const struct cf_pcapng *w, int iface, const void *data, size_t len)
{
	if (!w || iface < 0 || (!data && len > 0))
		return -EINVAL;
	if (w->error)
		return w->error;
	if (iface >= w->n_interfaces)
		return -EINVAL;
	return len > UINT32_MAX ? -EMSGSIZE : 0;
}

/* Assemble the Enhanced Packet Block of a checked packet (@data referenced). */
static int epb_block(struct block *b, int iface, uint64_t ts_ns, const void *data, size_t len,
		     enum cf_pcapng_dir dir)
{
	size_t caplen = len < CF_PCAPNG_SNAPLEN ? len : CF_PCAPNG_SNAPLEN;

	block_start(b, BT_EPB);
	block_add_u32(b, (uint32_t)iface);
	block_add_u32(b, (uint32_t)(ts_ns >> 32));
	block_add_u32(b, (uint32_t)ts_ns);
	block_add_u32(b, (uint32_t)caplen);
	block_add_u32(b, (uint32_t)len);
	block_add_ref(b, data, caplen);
	block_add_pad(b);
	if (dir == CF_PCAPNG_DIR_IN || dir == CF_PCAPNG_DIR_OUT) {
		block_add_u16(b, OPT_EPB_FLAGS);
		block_add_u16(b, 4);
		block_add_u32(b, dir == CF_PCAPNG_DIR_IN ? EPB_FLAG_INBOUND : EPB_FLAG_OUTBOUND);
		block_add_end_of_options(b);
	}
	return block_finish(b);
}

int cf_pcapng_write_packet(struct cf_pcapng *w, int iface, uint64_t ts_ns, const void *data,
			   size_t len, enum cf_pcapng_dir dir)
{
	struct block b;
	int r = check_packet(w, iface, data, len);

	if (r == 0)
		r = epb_block(&b, iface, ts_ns, data, len, dir);
	if (r == 0)
		r = emit(w, &b);
	if (r < 0)
		return r;
	w->packets++;
	return 0;
}

/* Room for @b's own pieces (all but the packet) and its pieces in the gather list. */
static int gather_room(struct cf_pcapng *w, const struct block *b)
{
	/* An EPB refers to nothing but the packet: the rest is in its scratch area. */
	if (w->n_gather + b->n_iov + 1 > GATHER_IOV || b->scratch_used > w->cap - w->used) {
		int r = flush_buffer(w);

		if (r < 0)
			return r;
	}
	if (w->n_gather == 0 && w->used > 0)
		gather_add(w, w->buf, w->used); /* what was buffered before goes first */
	return 0;
}

int cf_pcapng_write_packet_ref(struct cf_pcapng *w, int iface, uint64_t ts_ns, const void *data,
			       size_t len, enum cf_pcapng_dir dir)
{
	struct block b;
	int r;

	if (w && w->bg)
		return cf_pcapng_write_packet(w, iface, ts_ns, data, len, dir);
	r = check_packet(w, iface, data, len);
	if (r == 0)
		r = epb_block(&b, iface, ts_ns, data, len, dir);
	if (r == 0)
		r = gather_room(w, &b);
	if (r < 0)
		return r;
	for (size_t i = 0; i < b.n_iov; i++) {
		const struct iovec *v = &b.iov[i];
		size_t from = w->used;

		if (v->iov_base == data) {
			gather_add(w, data, v->iov_len);
			continue;
		}
		memcpy(w->buf + w->used, v->iov_base, v->iov_len);
		w->used += v->iov_len;
		gather_add(w, w->buf + from, v->iov_len);
	}
	w->packets++;
	return 0;
}

/* Bytes of an EPB around @caplen bytes of packet: header, data, padding, flags, trailer. */
static size_t epb_size(size_t caplen, enum cf_pcapng_dir dir)
{
	size_t n = 28 + ((caplen + 3) & ~(size_t)3) + 4;

	return dir == CF_PCAPNG_DIR_IN || dir == CF_PCAPNG_DIR_OUT ? n + 12 : n;
}

uint8_t *cf_pcapng_packet_room(struct cf_pcapng *w, size_t cap)
{
	size_t need = epb_size(cap, CF_PCAPNG_DIR_OUT);

	if (!w || w->error || cap > CF_PCAPNG_SNAPLEN || need > w->cap)
		return NULL;
	if (need > w->cap - w->used && flush_buffer(w) < 0)
		return NULL;
	w->room = cap;
	w->room_open = true;
	return w->buf + w->used + 28;
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
	return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return p + 4;
}

int cf_pcapng_packet_commit(struct cf_pcapng *w, int iface, uint64_t ts_ns, size_t len,
			    enum cf_pcapng_dir dir)
{
	size_t total = epb_size(len, dir), pad = ((len + 3) & ~(size_t)3) - len;
	uint8_t *p;
	bool open;

	if (!w)
		return -EINVAL;
	open = w->room_open;
	w->room_open = false;
	if (!open || iface < 0 || iface >= w->n_interfaces || len > w->room)
		return -EINVAL;
	if (w->error)
		return w->error;
	/* The same fields, in the same order, as block_start()..block_finish() write. */
	p = w->buf + w->used;
	p = put_u32(p, BT_EPB);
	p = put_u32(p, (uint32_t)total);
	p = put_u32(p, (uint32_t)iface);
	p = put_u32(p, (uint32_t)(ts_ns >> 32));
	p = put_u32(p, (uint32_t)ts_ns);
	p = put_u32(p, (uint32_t)len);
	p = put_u32(p, (uint32_t)len);
	p += len;
	memset(p, 0, pad);
	p += pad;
	if (dir == CF_PCAPNG_DIR_IN || dir == CF_PCAPNG_DIR_OUT) {
		p = put_u16(p, OPT_EPB_FLAGS);
		p = put_u16(p, 4);
		p = put_u32(p, dir == CF_PCAPNG_DIR_IN ? EPB_FLAG_INBOUND : EPB_FLAG_OUTBOUND);
		p = put_u32(p, OPT_ENDOFOPT);
	}
	put_u32(p, (uint32_t)total);
	w->used += total;
	buffered(w, w->used - total);
	w->packets++;
	return 0;
}

int cf_pcapng_close(struct cf_pcapng *w)
{
	int r;

	if (!w)
		return 0;
	r = flush_buffer(w);
	if (w->bg && r == 0) {
		r = cf_bgwrite_sync(w->bg, NULL);
		if (r < 0)
			r = record_error(w, r);
	}
	cf_bgwrite_free(w->bg, NULL);
	if (close(w->fd) < 0 && r == 0)
		r = -errno;
	free(w);
	return r;
}

int cf_pcapng_background(struct cf_pcapng *w)
{
	int r;

	if (!w)
		return -EINVAL;
	if (w->bg)
		return 0;
	r = flush_buffer(w);
	if (r < 0)
		return r;
	r = cf_bgwrite_new(w->fd, CF_PCAPNG_BG_BUFFER_SIZE, CF_PCAPNG_BG_BUFFERS, &w->bg);
	if (r < 0)
		return r;
	w->bg_base = w->good_end;
	w->buf = cf_bgwrite_buffer(w->bg);
	w->cap = cf_bgwrite_size(w->bg);
	return 0;
}

uint64_t cf_pcapng_packets(const struct cf_pcapng *w)
{
	return w ? w->packets : 0;
}
