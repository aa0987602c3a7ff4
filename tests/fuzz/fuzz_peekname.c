/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the first-bytes name reader (src/net/peekname.c):
 * the engine runs it on whatever the tree sends first on a TCP connection.
 * Properties, abort on violation:
 *
 * - a NAME is 1-255 printable ASCII bytes (what reaches messages and the
 *   terminal), NUL-terminated, and is not a dotted IPv4 literal;
 * - at CF_PEEK_WINDOW bytes or more the answer is never MORE (the engine
 *   never waits for more than the window);
 * - an answer is final: once a prefix gives NAME or NONE, the whole input
 *   gives the same (with the same name), so what arrives later cannot
 *   change a decision the engine already made.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/peekname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static void check_name(const char *name)
{
	size_t n = strnlen(name, CF_PEEK_NAME_MAX);

	CHECK(n > 0 && n < CF_PEEK_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		CHECK(name[i] > 0x20 && name[i] < 0x7f);
	CHECK(strspn(name, "0123456789.") < n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char whole_name[CF_PEEK_NAME_MAX], name[CF_PEEK_NAME_MAX];
	enum cf_peek_kind whole_kind, kind;
	enum cf_peek whole = cf_peek_name(data, size, whole_name, &whole_kind), r;
	/* the last byte picks where the input is cut, as a slow sender would */
	size_t cut = size ? (size * data[size - 1]) / 256 : 0;

	if (whole == CF_PEEK_NAME)
		check_name(whole_name);
	if (size >= CF_PEEK_WINDOW)
		CHECK(whole != CF_PEEK_MORE);
	r = cf_peek_name(data, cut, name, &kind);
	if (r != CF_PEEK_MORE) {
		CHECK(r == whole);
		if (r == CF_PEEK_NAME)
			CHECK(kind == whole_kind && strcmp(name, whole_name) == 0);
	}
	return 0;
}
