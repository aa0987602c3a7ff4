/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation
 *
 * A hand-written recursive-descent reader that follows Python's tomllib
 * statement by statement, so that both accept and reject the same documents
 * (tests/toml/difftest.py checks this on a corpus and generated cases):
 *
 *   document  := { ws [ keyval | "[" key "]" ] ws [ comment ] newline }
 *   keyval    := key ws "=" ws value
 *   value     := string | integer | "true" | "false" | array
 *
 * The whole input is checked to be UTF-8 first; after that the parser works
 * on bytes, treating "\r\n" as a newline (and as "\n" inside multi-line
 * strings) and any other control character, a lone "\r" included, as an
 * error outside comments' tab.
 *
 * Which tables may be (re)opened is tomllib's rule, kept per table node:
 *  - a [header] defines its table once; defining it again is an error, but
 *    a table created implicitly (by [a.b.c] for a and a.b) may be defined
 *    later by its own header;
 *  - a dotted key (a.b.c = 1) creates or walks through a and a.b; they may be
 *    walked through again by dotted keys of the same section (the lines up
 *    to the next header), but once that section ends they are closed to
 *    both headers and dotted keys, and tables defined by a header are never
 *    open to dotted keys of another section.
 *
 * Valid TOML that this reader does not represent is detected where it starts
 * (the same regular expressions as tomllib's for numbers, dates and times)
 * and refused with -EOPNOTSUPP, never read as something else.
 *
 * Positions: byte offsets are turned into line and column (counted in
 * characters) on demand from a cursor that only moves forward in normal use,
 * so locating every value is linear in the input size.
 */
#include "config/toml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

/* A table plus the parser's bookkeeping of how it was defined. */
struct table_node {
	struct cf_toml_value v;
	unsigned depth;		 /* root is 0 */
	bool by_header;		 /* defined by a [header] */
	unsigned dotted_section; /* 1 + first section a dotted key went through it; 0: never */
};

struct key_part {
	char *s;
	size_t len;
	size_t off; /* byte offset of the part in the input */
};

struct key {
	struct key_part part[CF_TOML_MAX_DEPTH];
	size_t n;
};

struct strbuf {
	char *s;
	size_t len, cap;
};

struct parser {
	const char *src;
	size_t len;
	size_t pos;
	struct cf_toml_error *err;
	/* position cursor for locate() */
	size_t mark_off;
	unsigned mark_line, mark_col;
	struct table_node *root;
	struct table_node *cur; /* table of the current section */
	unsigned section;	/* number of headers seen */
};

_Static_assert(offsetof(struct table_node, v) == 0, "a table's value is its node's first member");

static struct table_node *as_node(struct cf_toml_value *v)
{
	return (struct table_node *)(void *)v;
}

/* ---- positions and errors ------------------------------------------------ */

static void locate(struct parser *p, size_t off, unsigned *line, unsigned *col)
{
	if (off < p->mark_off) {
		p->mark_off = 0;
		p->mark_line = 1;
		p->mark_col = 1;
	}
	if (off > p->len)
		off = p->len;
	for (size_t i = p->mark_off; i < off; i++) {
		unsigned char c = (unsigned char)p->src[i];

		if (c == '\n') {
			p->mark_line++;
			p->mark_col = 1;
		} else if ((c & 0xC0) != 0x80 &&
			   !(c == '\r' && i + 1 < p->len && p->src[i + 1] == '\n')) {
			p->mark_col++;
		}
	}
	p->mark_off = off;
	*line = p->mark_line;
	*col = p->mark_col;
}

static int fail(struct parser *p, size_t at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, size_t at, int code, const char *fmt, ...)
{
	va_list ap;
	size_t n = 0;

	if (!p->err)
		return code;
	locate(p, at, &p->err->line, &p->err->column);
	if (code == -EOPNOTSUPP)
		n = (size_t)snprintf(p->err->msg, sizeof(p->err->msg), "unsupported: ");
	va_start(ap, fmt);
	vsnprintf(p->err->msg + n, sizeof(p->err->msg) - n, fmt, ap);
	va_end(ap);
	return code;
}

static int fail_nomem(struct parser *p)
{
	return fail(p, p->pos, -ENOMEM, "out of memory");
}

/* Write @s as a key part for messages: bare if possible, else quoted and escaped. */
static size_t format_part(char *out, size_t outlen, const char *s, size_t len)
{
	bool bare = len > 0;
	size_t n = 0;

	for (size_t i = 0; i < len && bare; i++)
		bare = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		       (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-';
	if (bare)
		return (size_t)snprintf(out, outlen, "%.*s", (int)(len > 64 ? 64 : len), s);
	n += (size_t)snprintf(out, outlen, "\"");
	for (size_t i = 0; i < len && n < outlen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i >= 64 && (c & 0xC0) != 0x80)
			break;
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			n += (size_t)snprintf(out + n, outlen - n, "\\u%04X", c);
		else
			n += (size_t)snprintf(out + n, outlen - n, "%c", c);
	}
	if (n < outlen)
		n += (size_t)snprintf(out + n, outlen - n, "\"");
	return n;
}

/* The dotted name of @k's first @upto parts, for messages. */
static const char *key_text(char *buf, size_t buflen, const struct key *k, size_t upto)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < upto && n + 1 < buflen; i++) {
		if (i > 0)
			n += (size_t)snprintf(buf + n, buflen - n, ".");
		if (n + 1 < buflen)
			n += format_part(buf + n, buflen - n, k->part[i].s, k->part[i].len);
	}
	return buf;
}

/* ---- growable buffers ---------------------------------------------------- */

static int sb_put(struct strbuf *b, const char *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16;
		char *s;

		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s)
			return -ENOMEM;
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, data, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

static int sb_putc(struct strbuf *b, char c)
{
	return sb_put(b, &c, 1);
}

/* Make sure an empty string is still an allocated "" . */
static int sb_finish(struct strbuf *b)
{
	return b->s ? 0 : sb_put(b, "", 0);
}

static void key_release(struct key *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->part[i].s);
	k->n = 0;
}

/* ---- tree ---------------------------------------------------------------- */

static struct cf_toml_value *value_new(struct parser *p, enum cf_toml_kind kind, size_t off)
{
	struct cf_toml_value *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->kind = kind;
	locate(p, off, &v->line, &v->column);
	return v;
}

static struct table_node *table_new(struct parser *p, size_t off, unsigned depth)
{
	struct table_node *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->v.kind = CF_TOML_TABLE;
	t->depth = depth;
	if (p)
		locate(p, off, &t->v.line, &t->v.column);
	return t;
}

void cf_toml_free(struct cf_toml_value *v)
{
	if (!v)
		return;
	switch (v->kind) {
	case CF_TOML_STRING:
		free(v->u.str.s);
		break;
	case CF_TOML_ARRAY:
		for (size_t i = 0; i < v->u.array.n; i++)
			cf_toml_free(v->u.array.v[i]);
		free(v->u.array.v);
		break;
	case CF_TOML_TABLE:
		for (size_t i = 0; i < v->u.table.n; i++) {
			free(v->u.table.v[i].key);
			cf_toml_free(v->u.table.v[i].value);
		}
		free(v->u.table.v);
		free(as_node(v));
		return;
	case CF_TOML_INTEGER:
	case CF_TOML_BOOLEAN:
		break;
	}
	free(v);
}

static struct cf_toml_entry *table_find(struct cf_toml_value *t, const char *key, size_t len)
{
	for (size_t i = 0; i < t->u.table.n; i++) {
		struct cf_toml_entry *e = &t->u.table.v[i];

		if (e->key_len == len && memcmp(e->key, key, len) == 0)
			return e;
	}
	return NULL;
}

/* Arrays grow to 4, 8, 16, ... elements: holding @n, is one full? */
static bool is_full(size_t n)
{
	return n == 0 || (n >= 4 && (n & (n - 1)) == 0);
}

/* Add @value under a copy of @part's name to table @t. */
static int table_add(struct parser *p, struct cf_toml_value *t, const struct key_part *part,
		     struct cf_toml_value *value)
{
	size_t n = t->u.table.n;
	struct cf_toml_entry *e;
	char *key = malloc(part->len + 1);

	if (!key)
		return -ENOMEM;
	memcpy(key, part->s, part->len + 1);
	if (is_full(n)) {
		e = reallocarray(t->u.table.v, n ? n * 2 : 4, sizeof(*e));
		if (!e) {
			free(key);
			return -ENOMEM;
		}
		t->u.table.v = e;
	}
	e = &t->u.table.v[t->u.table.n++];
	e->key = key;
	e->key_len = part->len;
	locate(p, part->off, &e->line, &e->column);
	e->value = value;
	return 0;
}

static int array_add(struct cf_toml_value *a, struct cf_toml_value *value)
{
	size_t n = a->u.array.n;

	if (is_full(n)) {
		struct cf_toml_value **v = reallocarray(a->u.array.v, n ? n * 2 : 4, sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->u.array.v = v;
	}
	a->u.array.v[a->u.array.n++] = value;
	return 0;
}

/* ---- lexical helpers ----------------------------------------------------- */

static int peek(const struct parser *p, size_t ahead)
{
	return p->pos + ahead < p->len ? (unsigned char)p->src[p->pos + ahead] : -1;
}

static bool starts_with(const struct parser *p, const char *s)
{
	size_t n = strlen(s);

	return p->len - p->pos >= n && memcmp(p->src + p->pos, s, n) == 0;
}

/* Length of the newline at the cursor: 1 for "\n", 2 for "\r\n", else 0. */
static size_t newline_len(const struct parser *p)
{
	if (peek(p, 0) == '\n')
		return 1;
	if (peek(p, 0) == '\r' && peek(p, 1) == '\n')
		return 2;
	return 0;
}

static bool is_control(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_bare(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
	       c == '-';
}

static int hex_value(int c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void skip_ws(struct parser *p)
{
	while (peek(p, 0) == ' ' || peek(p, 0) == '\t')
		p->pos++;
}

static int control_error(struct parser *p, const char *where)
{
	int c = peek(p, 0);

	if (c == '\r')
		return fail(p, p->pos, -EINVAL, "carriage return not followed by a newline %s",
			    where);
	if (c == '\n')
		return fail(p, p->pos, -EINVAL, "line break %s", where);
	return fail(p, p->pos, -EINVAL, "control character U+%04X %s", (unsigned)c, where);
}

static int skip_comment(struct parser *p)
{
	if (peek(p, 0) != '#')
		return 0;
	for (p->pos++; p->pos < p->len && !newline_len(p); p->pos++) {
		if (is_control(peek(p, 0)))
			return control_error(p, "in a comment");
	}
	return 0;
}

/* Skip whitespace, newlines and comments between array elements. */
static int skip_array_space(struct parser *p)
{
	for (;;) {
		size_t nl;
		int r;

		skip_ws(p);
		nl = newline_len(p);
		if (nl) {
			p->pos += nl;
			continue;
		}
		if (peek(p, 0) != '#')
			return 0;
		r = skip_comment(p);
		if (r < 0)
			return r;
	}
}

/* Offset of the first byte that is not valid UTF-8 (as Python decodes it), or @len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t need;
		unsigned char lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			lo = c == 0xE0 ? 0xA0 : 0x80;
			hi = c == 0xED ? 0x9F : 0xBF;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			lo = c == 0xF0 ? 0x90 : 0x80;
			hi = c == 0xF4 ? 0x8F : 0xBF;
		} else {
			return i;
		}
		if (len - i <= need || s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= need; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
		}
		i += need + 1;
	}
	return len;
}

/* ---- strings ------------------------------------------------------------- */

static int put_utf8(struct strbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return sb_put(b, u, n);
}

/* \uXXXX or \UXXXXXXXX; the cursor is on the backslash. */
static int parse_unicode_escape(struct parser *p, size_t digits, struct strbuf *out)
{
	size_t start = p->pos;
	uint32_t cp = 0;

	for (size_t i = 0; i < digits; i++) {
		int h = hex_value(peek(p, 2 + i));

		if (h < 0)
			return fail(p, start, -EINVAL, "\\%c escape needs %zu hexadecimal digits",
				    digits == 4 ? 'u' : 'U', digits);
		cp = cp << 4 | (uint32_t)h;
	}
	if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return fail(
		    p, start, -EINVAL,
		    "escape \\%c%0*X is not a Unicode scalar value (surrogate or too large)",
		    digits == 4 ? 'u' : 'U', (int)digits, cp);
	p->pos += 2 + digits;
	return put_utf8(out, cp) < 0 ? fail_nomem(p) : 0;
}

/* A backslash at the end of a line in a multi-line basic string: trim. */
static int parse_line_ending_backslash(struct parser *p)
{
	size_t start = p->pos;

	p->pos++;
	skip_ws(p);
	if (p->pos >= p->len)
		return 0; /* reported as an unterminated string */
	if (!newline_len(p))
		return fail(p, start, -EINVAL,
			    "a backslash followed by whitespace must end the line");
	for (;;) {
		size_t nl = newline_len(p);

		if (nl)
			p->pos += nl;
		else if (peek(p, 0) == ' ' || peek(p, 0) == '\t')
			p->pos++;
		else
			return 0;
	}
}

static int parse_escape(struct parser *p, bool multiline, struct strbuf *out)
{
	static const char from[] = "btnfr\"\\";
	static const char to[] = "\b\t\n\f\r\"\\";
	int e = peek(p, 1);
	const char *hit;

	if (multiline && (e == ' ' || e == '\t' || e == '\n' || (e == '\r' && peek(p, 2) == '\n')))
		return parse_line_ending_backslash(p);
	if (e == 'u')
		return parse_unicode_escape(p, 4, out);
	if (e == 'U')
		return parse_unicode_escape(p, 8, out);
	hit = e > 0 ? strchr(from, e) : NULL;
	if (!hit) {
		if (e > 0x20 && e < 0x7f)
			return fail(p, p->pos, -EINVAL, "invalid escape sequence '\\%c'", e);
		return fail(p, p->pos, -EINVAL, "invalid escape sequence (backslash alone)");
	}
	p->pos += 2;
	return sb_putc(out, to[hit - from]) < 0 ? fail_nomem(p) : 0;
}

/* Basic string; the cursor is after the opening quote(s). */
static int parse_basic_body(struct parser *p, bool multiline, size_t start, struct strbuf *out)
{
	for (;;) {
		int c = peek(p, 0);
		size_t nl;
		int r;

		if (c < 0)
			return fail(p, start, -EINVAL, "unterminated string");
		if (c == '"') {
			if (!multiline) {
				p->pos++;
				return 0;
			}
			if (starts_with(p, "\"\"\"")) {
				p->pos += 3;
				return 0;
			}
		} else if (c == '\\') {
			r = parse_escape(p, multiline, out);
			if (r < 0)
				return r;
			continue;
		} else if (multiline && (nl = newline_len(p))) {
			p->pos += nl;
			if (sb_putc(out, '\n') < 0)
				return fail_nomem(p);
			continue;
		} else if (is_control(c)) {
			return control_error(p,
					     multiline ? "in a string" : "in a single-line string");
		}
		if (sb_putc(out, (char)c) < 0)
			return fail_nomem(p);
		p->pos++;
	}
}

/* Literal string; the cursor is after the opening quote(s). */
static int parse_literal_body(struct parser *p, bool multiline, size_t start, struct strbuf *out)
{
	for (;;) {
		int c = peek(p, 0);
		size_t nl;

		if (c < 0)
			return fail(p, start, -EINVAL, "unterminated string");
		if (c == '\'' && (!multiline || starts_with(p, "'''"))) {
			p->pos += multiline ? 3 : 1;
			return 0;
		}
		if (multiline && (nl = newline_len(p))) {
			p->pos += nl;
			if (sb_putc(out, '\n') < 0)
				return fail_nomem(p);
			continue;
		}
		if (is_control(c))
			return control_error(p,
					     multiline ? "in a string" : "in a single-line string");
		if (sb_putc(out, (char)c) < 0)
			return fail_nomem(p);
		p->pos++;
	}
}

/* Any string; the cursor is on the opening quote. @allow_multiline: values, not keys. */
static int parse_string(struct parser *p, bool allow_multiline, struct strbuf *out)
{
	size_t start = p->pos;
	char q = p->src[p->pos];
	bool multiline = allow_multiline && starts_with(p, q == '"' ? "\"\"\"" : "'''");
	int r;

	p->pos += multiline ? 3 : 1;
	if (multiline)
		p->pos += newline_len(p);
	r = q == '"' ? parse_basic_body(p, multiline, start, out)
		     : parse_literal_body(p, multiline, start, out);
	if (r < 0)
		return r;
	/* """a"""" ends in a quote: up to two quotes may precede the delimiter */
	for (int i = 0; multiline && i < 2 && peek(p, 0) == q; i++) {
		if (sb_putc(out, q) < 0)
			return fail_nomem(p);
		p->pos++;
	}
	return sb_finish(out) < 0 ? fail_nomem(p) : 0;
}

/* ---- keys ---------------------------------------------------------------- */

static int parse_key_part(struct parser *p, struct key_part *part)
{
	struct strbuf b = {0};
	int c = peek(p, 0);
	int r;

	part->off = p->pos;
	if (is_bare(c)) {
		size_t start = p->pos;

		while (is_bare(peek(p, 0)))
			p->pos++;
		r = sb_put(&b, p->src + start, p->pos - start) < 0 ? fail_nomem(p) : 0;
	} else if (c == '"' || c == '\'') {
		r = parse_string(p, false, &b);
	} else if (c < 0 || newline_len(p)) {
		r = fail(p, p->pos, -EINVAL, "expected a key before the end of the line");
	} else {
		r = fail(p, p->pos, -EINVAL,
			 "invalid character in a key (bare keys are A-Za-z0-9_-, others quoted)");
	}
	if (r < 0) {
		free(b.s);
		return r;
	}
	part->s = b.s;
	part->len = b.len;
	return 0;
}

/* key := part { ws "." ws part } ws */
static int parse_key(struct parser *p, struct key *k)
{
	for (;;) {
		int r;

		if (k->n == CF_TOML_MAX_DEPTH)
			return fail(p, p->pos, -EOPNOTSUPP, "keys of more than %d dotted parts",
				    CF_TOML_MAX_DEPTH);
		r = parse_key_part(p, &k->part[k->n]);
		if (r < 0)
			return r;
		k->n++;
		skip_ws(p);
		if (peek(p, 0) != '.')
			return 0;
		p->pos++;
		skip_ws(p);
	}
}

/* ---- numbers, dates, values ---------------------------------------------- */

/* Digits of @base separated by single underscores: [d](_?[d])*; 0 if none. */
static size_t scan_digits(const char *s, size_t n, unsigned base)
{
	size_t i = 0;

	while (i < n) {
		int h = hex_value((unsigned char)s[i]);

		if (h >= 0 && (unsigned)h < base && (i > 0 || s[i] != '_')) {
			i++;
		} else if (s[i] == '_' && i > 0 && i + 1 < n &&
			   hex_value((unsigned char)s[i + 1]) >= 0 &&
			   (unsigned)hex_value((unsigned char)s[i + 1]) < base) {
			i += 2;
		} else {
			break;
		}
	}
	return i;
}

/* Whether @s matches /D{n}/ with D in [lo,hi] per position (@pat like "0909"). */
static bool match_digits(const char *s, size_t avail, const char *pat)
{
	size_t n = strlen(pat) / 2;

	if (avail < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < pat[2 * i] || s[i] > pat[2 * i + 1])
			return false;
	}
	return true;
}

static bool match_2digit(const char *s, size_t avail, unsigned lo, unsigned hi)
{
	unsigned v;

	if (avail < 2 || !is_digit(s[0]) || !is_digit(s[1]))
		return false;
	v = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	return v >= lo && v <= hi;
}

/* tomllib's RE_DATETIME date part or RE_LOCALTIME at the cursor. */
static bool looks_like_date_or_time(const struct parser *p)
{
	const char *s = p->src + p->pos;
	size_t n = p->len - p->pos;

	if (match_digits(s, n, "09090909") && n >= 10 && s[4] == '-' &&
	    match_2digit(s + 5, n - 5, 1, 12) && s[7] == '-' && match_2digit(s + 8, n - 8, 1, 31))
		return true;
	return n >= 8 && match_2digit(s, n, 0, 23) && s[2] == ':' &&
	       match_2digit(s + 3, n - 3, 0, 59) && s[5] == ':' &&
	       match_2digit(s + 6, n - 6, 0, 59);
}

/* Accumulate digits of @base from s[0..n) (underscores skipped); false on overflow. */
static bool digits_value(const char *s, size_t n, unsigned base, uint64_t limit, uint64_t *out)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		int h = hex_value((unsigned char)s[i]);

		if (s[i] == '_')
			continue;
		if (v > (limit - (uint64_t)h) / base)
			return false;
		v = v * base + (uint64_t)h;
	}
	*out = v;
	return true;
}

/* Length of tomllib's float part ([.digits][e[+-]digits]) at @s, 0 if none. */
static size_t float_part(const char *s, size_t n)
{
	size_t i = 0;

	if (n > 1 && s[0] == '.' && is_digit(s[1]))
		i = 1 + scan_digits(s + 1, n - 1, 10);
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;

		if (j < n && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j < n && is_digit(s[j]))
			i = j + scan_digits(s + j, n - j, 10);
	}
	return i;
}

/*
 * Integer (or float, refused) at the cursor, the way tomllib's RE_NUMBER
 * reads it. Return 1 when nothing number-like is there, 0 with *out set, or
 * an error.
 */
static int parse_number(struct parser *p, struct cf_toml_value **out)
{
	const char *s = p->src + p->pos;
	size_t n = p->len - p->pos, start = p->pos, i = 0, d;
	unsigned base = 10;
	bool neg = false;
	uint64_t mag;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
		base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
		d = scan_digits(s + 2, n - 2, base);
		if (d > 0) {
			i = 2;
			goto got_digits;
		}
		base = 10;
	}
	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i = 1;
	}
	if (i >= n || !is_digit(s[i]))
		return 1;
	d = s[i] == '0' ? 1 : scan_digits(s + i, n - i, 10);
	if (float_part(s + i + d, n - i - d) > 0)
		return fail(p, start, -EOPNOTSUPP, "floating-point numbers");
got_digits:
	if (!digits_value(s + i, d, base, neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &mag))
		return fail(p, start, -EOPNOTSUPP, "integer does not fit in 64 bits");
	*out = value_new(p, CF_TOML_INTEGER, start);
	if (!*out)
		return fail_nomem(p);
	if (!neg)
		(*out)->u.integer = (int64_t)mag;
	else if (mag > (uint64_t)INT64_MAX)
		(*out)->u.integer = INT64_MIN;
	else
		(*out)->u.integer = -(int64_t)mag;
	p->pos += i + d;
	return 0;
}

static int parse_value(struct parser *p, unsigned depth, struct cf_toml_value **out);

static int parse_array(struct parser *p, unsigned depth, struct cf_toml_value **out)
{
	struct cf_toml_value *a;
	int r;

	if (depth > CF_TOML_MAX_DEPTH)
		return fail(p, p->pos, -EOPNOTSUPP, "nesting deeper than %d levels",
			    CF_TOML_MAX_DEPTH);
	a = value_new(p, CF_TOML_ARRAY, p->pos);
	if (!a)
		return fail_nomem(p);
	p->pos++;
	r = skip_array_space(p);
	while (r >= 0 && peek(p, 0) != ']') {
		struct cf_toml_value *v = NULL;

		r = parse_value(p, depth + 1, &v);
		if (r < 0)
			break;
		if (array_add(a, v) < 0) {
			cf_toml_free(v);
			r = fail_nomem(p);
			break;
		}
		r = skip_array_space(p);
		if (r < 0 || peek(p, 0) == ']')
			break;
		if (peek(p, 0) != ',') {
			r = fail(p, p->pos, -EINVAL,
				 peek(p, 0) < 0 ? "unterminated array"
						: "expected ',' or ']' after an array element");
			break;
		}
		p->pos++;
		r = skip_array_space(p);
	}
	if (r < 0) {
		cf_toml_free(a);
		return r;
	}
	p->pos++;
	*out = a;
	return 0;
}

static int parse_string_value(struct parser *p, struct cf_toml_value **out)
{
	struct cf_toml_value *v = value_new(p, CF_TOML_STRING, p->pos);
	struct strbuf b = {0};
	int r;

	if (!v)
		return fail_nomem(p);
	r = parse_string(p, true, &b);
	if (r < 0) {
		free(b.s);
		free(v);
		return r;
	}
	v->u.str.s = b.s;
	v->u.str.len = b.len;
	*out = v;
	return 0;
}

static int parse_bool(struct parser *p, bool b, struct cf_toml_value **out)
{
	*out = value_new(p, CF_TOML_BOOLEAN, p->pos);
	if (!*out)
		return fail_nomem(p);
	(*out)->u.boolean = b;
	p->pos += b ? 4 : 5;
	return 0;
}

static bool is_special_float(const struct parser *p)
{
	static const char *const names[] = {"inf", "nan", "+inf", "-inf", "+nan", "-nan"};

	for (size_t i = 0; i < CF_ARRAY_SIZE(names); i++) {
		if (starts_with(p, names[i]))
			return true;
	}
	return false;
}

/* A value at nesting @depth (a key of the root table holds depth 1). */
static int parse_value(struct parser *p, unsigned depth, struct cf_toml_value **out)
{
	int c = peek(p, 0);

	if (c == '"' || c == '\'')
		return parse_string_value(p, out);
	if (starts_with(p, "true"))
		return parse_bool(p, true, out);
	if (starts_with(p, "false"))
		return parse_bool(p, false, out);
	if (c == '[')
		return parse_array(p, depth, out);
	if (c == '{')
		return fail(p, p->pos, -EOPNOTSUPP, "inline tables ({...}); use a [table]");
	if (c >= 0 && looks_like_date_or_time(p))
		return fail(p, p->pos, -EOPNOTSUPP, "dates and times");
	if (c >= 0) {
		int r = parse_number(p, out);

		if (r <= 0)
			return r;
	}
	if (is_special_float(p))
		return fail(p, p->pos, -EOPNOTSUPP, "floating-point numbers");
	if (c < 0 || newline_len(p))
		return fail(p, p->pos, -EINVAL, "expected a value");
	return fail(p, p->pos, -EINVAL,
		    "invalid value (expected a string, integer, true, false or array)");
}

/* ---- statements ---------------------------------------------------------- */

static struct table_node *child_table(struct cf_toml_entry *e)
{
	return e && e->value->kind == CF_TOML_TABLE ? as_node(e->value) : NULL;
}

/* Create the table @k->part[i] in @parent. */
static int add_table(struct parser *p, struct table_node *parent, struct key *k, size_t i,
		     size_t def_off, struct table_node **out)
{
	struct table_node *t;

	if (parent->depth + 1 > CF_TOML_MAX_DEPTH)
		return fail(p, k->part[i].off, -EOPNOTSUPP, "nesting deeper than %d levels",
			    CF_TOML_MAX_DEPTH);
	t = table_new(p, def_off, parent->depth + 1);
	if (!t)
		return fail_nomem(p);
	if (table_add(p, &parent->v, &k->part[i], &t->v) < 0) {
		free(t);
		return fail_nomem(p);
	}
	*out = t;
	return 0;
}

static int not_a_table(struct parser *p, const struct key *k, size_t i,
		       const struct cf_toml_entry *e)
{
	char name[160];

	return fail(p, k->part[i].off, -EINVAL, "key '%s' is already %s %s, not a table",
		    key_text(name, sizeof(name), k, i + 1),
		    e->value->kind == CF_TOML_INTEGER ? "an"
		    : e->value->kind == CF_TOML_ARRAY ? "an"
						      : "a",
		    cf_toml_kind_name(e->value->kind));
}

/* "[" key "]": make its table the current one. The cursor is on "[". */
static int parse_header(struct parser *p)
{
	__attribute__((cleanup(key_release))) struct key k = {0};
	struct table_node *t = p->root;
	size_t start = p->pos;
	char name[160];
	int r;

	if (peek(p, 1) == '[')
		return fail(p, start, -EOPNOTSUPP, "arrays of tables ([[...]])");
	p->pos++;
	skip_ws(p);
	r = parse_key(p, &k);
	if (r < 0)
		return r;
	if (peek(p, 0) != ']')
		return fail(p, p->pos, -EINVAL, "expected ']' at the end of a table header");
	p->pos++;
	p->section++;
	for (size_t i = 0; i < k.n; i++) {
		struct cf_toml_entry *e = table_find(&t->v, k.part[i].s, k.part[i].len);
		struct table_node *next = child_table(e);

		if (e && !next)
			return not_a_table(p, &k, i, e);
		if (!e) {
			r = add_table(p, t, &k, i, start, &next);
			if (r < 0)
				return r;
		} else if (i + 1 == k.n && (next->by_header || next->dotted_section)) {
			return fail(p, start, -EINVAL, "table [%s] is defined more than once",
				    key_text(name, sizeof(name), &k, k.n));
		} else if (i + 1 == k.n) {
			locate(p, start, &next->v.line, &next->v.column);
		}
		t = next;
	}
	t->by_header = true;
	p->cur = t;
	return 0;
}

/* Walk (creating) the tables of a dotted key's leading parts from the current table. */
static int dotted_tables(struct parser *p, struct key *k, struct table_node **out)
{
	struct table_node *t = p->cur;
	char name[160];
	int r;

	for (size_t i = 0; i + 1 < k->n; i++) {
		struct cf_toml_entry *e = table_find(&t->v, k->part[i].s, k->part[i].len);
		struct table_node *next = child_table(e);

		if (e && !next)
			return not_a_table(p, k, i, e);
		if (!e) {
			r = add_table(p, t, k, i, k->part[0].off, &next);
			if (r < 0)
				return r;
		} else if (next->by_header ||
			   (next->dotted_section && next->dotted_section != p->section + 1)) {
			return fail(p, k->part[i].off, -EINVAL,
				    "table '%s' was defined elsewhere and cannot be extended with "
				    "dotted keys here",
				    key_text(name, sizeof(name), k, i + 1));
		}
		if (!next->dotted_section)
			next->dotted_section = p->section + 1;
		t = next;
	}
	*out = t;
	return 0;
}

/* key "=" value, into the current table. */
static int parse_keyval(struct parser *p)
{
	__attribute__((cleanup(key_release))) struct key k = {0};
	struct key_part *last;
	struct table_node *t = NULL;
	struct cf_toml_value *v = NULL;
	char name[160];
	int r;

	r = parse_key(p, &k);
	if (r < 0)
		return r;
	if (peek(p, 0) != '=')
		return fail(p, p->pos, -EINVAL, "expected '=' after key '%s'",
			    key_text(name, sizeof(name), &k, k.n));
	p->pos++;
	skip_ws(p);
	r = dotted_tables(p, &k, &t);
	if (r < 0)
		return r;
	last = &k.part[k.n - 1];
	if (table_find(&t->v, last->s, last->len))
		return fail(p, last->off, -EINVAL, "duplicate key '%s'",
			    key_text(name, sizeof(name), &k, k.n));
	r = parse_value(p, t->depth + 1, &v);
	if (r < 0)
		return r;
	if (table_add(p, &t->v, last, v) < 0) {
		cf_toml_free(v);
		return fail_nomem(p);
	}
	return 0;
}

static int parse_statement(struct parser *p)
{
	int c = peek(p, 0);
	int r = 0;

	if (is_bare(c) || c == '"' || c == '\'')
		r = parse_keyval(p);
	else if (c == '[')
		r = parse_header(p);
	else if (c != '#')
		return c == '\r' || is_control(c)
			   ? control_error(p, "outside a string or comment")
			   : fail(p, p->pos, -EINVAL, "expected a key, a [table] or a comment");
	if (r < 0)
		return r;
	skip_ws(p);
	r = skip_comment(p);
	if (r < 0)
		return r;
	if (p->pos < p->len && !newline_len(p))
		return fail(p, p->pos, -EINVAL, "expected the end of the line after a %s",
			    c == '[' ? "table header" : "value");
	p->pos += newline_len(p);
	return 0;
}

int cf_toml_parse(const char *text, size_t len, struct cf_toml_value **root,
		  struct cf_toml_error *err)
{
	struct parser p = {
	    .src = text ? text : "",
	    .len = text ? len : 0,
	    .err = err,
	    .mark_line = 1,
	    .mark_col = 1,
	};
	size_t bad;
	int r = 0;

	*root = NULL;
	if (err)
		*err = (struct cf_toml_error){0};
	bad = utf8_invalid_at((const unsigned char *)p.src, p.len);
	if (bad < p.len)
		return fail(&p, bad, -EINVAL, "invalid UTF-8");
	p.root = table_new(NULL, 0, 0);
	if (!p.root)
		return fail_nomem(&p);
	p.root->v.line = 1;
	p.root->v.column = 1;
	p.cur = p.root;
	while (r >= 0) {
		skip_ws(&p);
		if (p.pos >= p.len)
			break;
		if (newline_len(&p))
			p.pos += newline_len(&p);
		else
			r = parse_statement(&p);
	}
	if (r < 0) {
		cf_toml_free(&p.root->v);
		return r;
	}
	*root = &p.root->v;
	return 0;
}

const struct cf_toml_entry *cf_toml_table_find(const struct cf_toml_value *t, const char *key)
{
	if (!t || t->kind != CF_TOML_TABLE)
		return NULL;
	return table_find((struct cf_toml_value *)t, key, strlen(key));
}

const struct cf_toml_value *cf_toml_table_get(const struct cf_toml_value *t, const char *key)
{
	const struct cf_toml_entry *e = cf_toml_table_find(t, key);

	return e ? e->value : NULL;
}

const char *cf_toml_kind_name(enum cf_toml_kind kind)
{
	switch (kind) {
	case CF_TOML_STRING:
		return "string";
	case CF_TOML_INTEGER:
		return "integer";
	case CF_TOML_BOOLEAN:
		return "boolean";
	case CF_TOML_ARRAY:
		return "array";
	case CF_TOML_TABLE:
		return "table";
	}
	return "value";
}

int cf_toml_write_string(FILE *f, const char *s, size_t len)
{
	static const char from[] = "\b\t\n\f\r\"\\";
	static const char to[] = "btnfr\"\\";
	int r = 0;

	if (utf8_invalid_at((const unsigned char *)s, len) < len)
		return -EILSEQ;
	if (putc('"', f) == EOF)
		return -EIO;
	for (size_t i = 0; i < len && r >= 0; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *hit = c ? memchr(from, c, sizeof(from) - 1) : NULL;

		if (hit)
			r = fprintf(f, "\\%c", to[hit - from]);
		else if (is_control(c))
			r = fprintf(f, "\\u%04X", c);
		else
			r = putc(c, f) == EOF ? -1 : 0;
	}
	if (r < 0 || putc('"', f) == EOF)
		return -EIO;
	return 0;
}
