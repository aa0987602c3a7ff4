/* SPDX-License-Identifier: MIT */
/*
 * String hygiene for the observability module. Names in the flow log come
 * from the sandboxed tree (DNS names, process names, error text) and are
 * hostile input: they may hold any byte. Two rules follow:
 *
 * - JSON written by childflow is always valid: bytes that are not valid
 *   UTF-8 become U+FFFD, control characters are escaped by jansson.
 * - Text and Markdown written to a terminal never carry a control sequence:
 *   C0/C1 controls, DEL and bidirectional overrides are shown as \xNN or
 *   \uNNNN, so a log cannot move the cursor or reorder what a reader sees.
 */
#ifndef CF_OBS_TEXT_H
#define CF_OBS_TEXT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * cf_utf8_next() - Decode the UTF-8 sequence at @s (@n bytes available),
 * strictly (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF). Return: its length (1-4) with *@cp set, or 0 if @s does not
 * start a valid sequence (or @n is 0).
 */
size_t cf_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/*
 * cf_json_stringn_sane() - A JSON string holding @len bytes of @s, each byte
 * that is not part of valid UTF-8 replaced by U+FFFD. NUL bytes are kept
 * (jansson writes them as \u0000). @s NULL gives JSON null.
 * Return: a new reference, or NULL when out of memory.
 */
json_t *cf_json_stringn_sane(const char *s, size_t len);

/* cf_json_string_sane() - cf_json_stringn_sane() of a C string (NULL gives JSON null). */
json_t *cf_json_string_sane(const char *s);

/* How cf_fput_escaped() quotes characters beyond the control characters. */
enum cf_escape {
	CF_ESCAPE_TEXT,	    /* plain terminal text */
	CF_ESCAPE_MARKDOWN, /* also \ ` * _ [ ] < > | ~ and & (for table cells and inline text) */
};

/*
 * cf_fput_escaped() - Write @len bytes of @s to @f with C0 controls, DEL and
 * invalid bytes as \xNN, C1 controls and bidi/format controls as \uNNNN, and
 * (in Markdown mode) Markdown punctuation backslash-escaped.
 * Return: the number of characters (code points) written, for column alignment.
 */
size_t cf_fput_escaped(FILE *f, const char *s, size_t len, enum cf_escape mode);

/* cf_escaped_width() - The number of characters cf_fput_escaped() would write for @s. */
size_t cf_escaped_width(const char *s, enum cf_escape mode);

/*
 * cf_format_ts_ms() - Format Unix milliseconds as "2024-05-01T12:00:00.250Z"
 * (UTC) into @buf (at least 32 bytes). Return: @buf.
 */
const char *cf_format_ts_ms(int64_t ts_ms, char *buf, size_t len);

#endif
