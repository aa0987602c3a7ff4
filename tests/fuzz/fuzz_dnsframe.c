/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for DNS-over-TCP framing (cf_dnsstream_want and
 * cf_dnsstream_got, the logic cf_dnsstream_progress() reads both directions
 * with): the tree and a resolver it picked send any byte stream, cut into
 * any reads.
 *
 * Input: byte 0 is N; the next N bytes are read sizes, used in turn (a size
 * byte b reads up to b + 1 bytes, 255 as much as asked); the rest is the
 * stream. Reads go into a buffer of exactly CF_DNSSTREAM_FRAME_MAX bytes, as
 * much as cf_dnsstream_want() asks for at most. Properties, abort on
 * violation:
 *
 * - cf_dnsstream_want() asks for at least one byte and never past the buffer;
 * - the frames handed on are exactly the stream's frames with a message
 *   (length prefix included, in order; empty frames dropped), whatever the
 *   read sizes;
 * - at the end of the stream, what the buffer holds is the incomplete frame
 *   the stream ends with.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dnsstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* The next frame with a message in @s from @*pos, as a plain parser sees it; 0 if none. */
static size_t next_frame(const uint8_t *s, size_t len, size_t *pos, size_t *start)
{
	while (*pos + 2 <= len) {
		size_t whole = 2 + ((size_t)s[*pos] << 8 | s[*pos + 1]);

		if (*pos + whole > len)
			return 0;
		*start = *pos;
		*pos += whole;
		if (whole > 2)
			return whole;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nsizes = size ? data[0] : 0, off, in_len = 0, ref = 0, ref_start = 0, k = 0;
	const uint8_t *sizes = data + 1, *stream;
	size_t stream_len;
	uint8_t *buf;

	if (size < 1 + nsizes)
		return 0;
	stream = data + 1 + nsizes;
	stream_len = size - 1 - nsizes;
	buf = malloc(CF_DNSSTREAM_FRAME_MAX); /* exact size: ASan sees a write past it */
	if (!buf)
		return 0;
	for (off = 0; off < stream_len;) {
		size_t want = cf_dnsstream_want(buf, in_len), n, whole;

		CHECK(want > 0 && in_len + want <= CF_DNSSTREAM_FRAME_MAX);
		n = want;
		if (nsizes && sizes[k % nsizes] != 255 && n > (size_t)sizes[k % nsizes] + 1)
			n = (size_t)sizes[k % nsizes] + 1;
		if (n > stream_len - off)
			n = stream_len - off;
		k++;
		memcpy(buf + in_len, stream + off, n);
		off += n;
		whole = cf_dnsstream_got(buf, &in_len, n);
		if (whole == 0)
			continue;
		/* The next frame with a message, byte for byte. */
		CHECK(next_frame(stream, stream_len, &ref, &ref_start) == whole);
		CHECK(memcmp(buf, stream + ref_start, whole) == 0);
		CHECK(in_len == 0 && ref == off);
	}
	/* No frame with a message left over; the buffer holds the incomplete rest. */
	CHECK(next_frame(stream, stream_len, &ref, &ref_start) == 0);
	CHECK(ref + in_len == stream_len || (in_len == 0 && ref == stream_len));
	CHECK(memcmp(buf, stream + ref, in_len) == 0);
	free(buf);
	return 0;
}
