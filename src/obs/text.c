// SPDX-License-Identifier: MIT
/*
 * String hygiene: strict UTF-8 decoding, JSON strings that jansson accepts
 * whatever the input bytes, and escaping for terminals and Markdown.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/text.h"
#include "util/cleanup.h"

static bool is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

size_t cf_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c;
	unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	size_t len;

	if (n == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		*cp = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		*cp = c & 0x0fu;
		if (c == 0xe0)
			lo = 0xa0; /* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f; /* no UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		*cp = c & 0x07u;
		if (c == 0xf0)
			lo = 0x90; /* no overlong forms */
		else if (c == 0xf4)
			hi = 0x8f; /* nothing above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (!is_cont(s[i]))
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3fu);
	}
	return len;
}

json_t *cf_json_stringn_sane(const char *s, size_t len)
{
	static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *u = (const unsigned char *)s;
	cleanup_free char *buf = NULL;
	size_t i = 0, o = 0;
	uint32_t cp;

	if (!s)
		return json_null();
	while (i < len) {
		size_t l = cf_utf8_next(u + i, len - i, &cp);

		if (l == 0)
			break;
		i += l;
	}
	if (i == len)
		return json_stringn(s, len);

	/* At most three output bytes per input byte. */
	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	buf = malloc(len * 3 + 1);
	if (!buf)
		return NULL;
	memcpy(buf, s, i);
	o = i;
	while (i < len) {
		size_t l = cf_utf8_next(u + i, len - i, &cp);

		if (l == 0) {
			memcpy(buf + o, replacement, 3);
			o += 3;
			i++;
		} else {
			memcpy(buf + o, s + i, l);
			o += l;
			i += l;
		}
	}
	return json_stringn(buf, o);
}

json_t *cf_json_string_sane(const char *s)
{
	return cf_json_stringn_sane(s, s ? strlen(s) : 0);
}

/* Characters that can change how the surrounding text is displayed. */
static bool is_format_control(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

static bool is_markdown_special(uint32_t cp)
{
	return cp < 0x80 && cp != 0 && strchr("\\`*_[]<>|~", (int)cp) != NULL;
}

/* Write (when @f is not NULL) and count one escaped code point or invalid byte. */
static size_t put_one(FILE *f, const char *s, size_t l, uint32_t cp, enum cf_escape mode)
{
	if (l == 0 || cp < 0x20 || cp == 0x7f) {
		if (f)
			fprintf(f, "\\x%02x", l == 0 ? (unsigned char)s[0] : (unsigned int)cp);
		return 4;
	}
	if (is_format_control(cp)) {
		if (f)
			fprintf(f, "\\u%04x", (unsigned int)cp);
		return 6;
	}
	if (mode == CF_ESCAPE_MARKDOWN && cp == '&') {
		if (f)
			fputs("&amp;", f);
		return 1;
	}
	if (mode == CF_ESCAPE_MARKDOWN && is_markdown_special(cp)) {
		if (f) {
			fputc('\\', f);
			fputc((int)cp, f);
		}
		return 2;
	}
	if (f)
		fwrite(s, 1, l, f);
	return 1;
}

static size_t escape(FILE *f, const char *s, size_t len, enum cf_escape mode)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, width = 0;

	while (i < len) {
		uint32_t cp = 0;
		size_t l = cf_utf8_next(u + i, len - i, &cp);

		width += put_one(f, s + i, l, cp, mode);
		i += l ? l : 1;
	}
	return width;
}

size_t cf_fput_escaped(FILE *f, const char *s, size_t len, enum cf_escape mode)
{
	return escape(f, s, len, mode);
}

size_t cf_escaped_width(const char *s, enum cf_escape mode)
{
	return escape(NULL, s, strlen(s), mode);
}

const char *cf_format_ts_ms(int64_t ts_ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ts_ms / 1000);
	int64_t ms = ts_ms % 1000;
	struct tm tm;

	if (ms < 0) {
		ms += 1000;
		secs--;
	}
	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, len, "%lld", (long long)ts_ms);
		return buf;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
	return buf;
}
