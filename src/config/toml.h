/* SPDX-License-Identifier: MIT */
/*
 * A strict reader for the subset of TOML 1.0 that childflow profiles use:
 * comments, bare/quoted/dotted keys, basic/literal/multi-line strings with
 * every escape, 64-bit integers (decimal, 0x, 0o, 0b, underscores, sign),
 * booleans, arrays (nested, multi-line, trailing comma) and [table] headers.
 *
 * The document becomes a small tree of cf_toml_value; tables keep their keys
 * in the order they were first defined, and every value and key records the
 * line and column (1-based, in characters) where it was defined.
 *
 * Anything invalid is an error, as Python's tomllib decides it (duplicate
 * keys, tables defined twice, bad escapes, control characters, invalid UTF-8,
 * leading zeros, ...). Valid TOML that the reader cannot represent (floats,
 * dates and times, inline tables, arrays of tables, integers outside int64,
 * nesting deeper than CF_TOML_MAX_DEPTH) is refused as "unsupported" rather
 * than misread. The reader keeps no global state.
 */
#ifndef CF_CONFIG_TOML_H
#define CF_CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Tables and arrays nested deeper than this are refused as unsupported. */
#define CF_TOML_MAX_DEPTH 64

enum cf_toml_kind {
	CF_TOML_STRING,
	CF_TOML_INTEGER,
	CF_TOML_BOOLEAN,
	CF_TOML_ARRAY,
	CF_TOML_TABLE,
};

struct cf_toml_value;

/* One key of a table. The key may contain NUL bytes (from "\u0000"), hence len. */
struct cf_toml_entry {
	char *key; /* UTF-8, NUL-terminated */
	size_t key_len;
	unsigned line, column; /* where the key (its last dotted part) was written */
	struct cf_toml_value *value;
};

struct cf_toml_value {
	enum cf_toml_kind kind;
	unsigned line, column; /* value start; for tables: header or first dotted key */
	union {
		struct {
			char *s; /* UTF-8, NUL-terminated; may contain NUL bytes */
			size_t len;
		} str;
		int64_t integer;
		bool boolean;
		struct {
			struct cf_toml_value **v;
			size_t n;
		} array;
		struct {
			struct cf_toml_entry *v; /* in definition order */
			size_t n;
		} table;
	} u;
};

/* Where and why parsing failed. line/column are 1-based; 0 when not about a position. */
struct cf_toml_error {
	unsigned line, column;
	char msg[256];
};

/*
 * cf_toml_parse() - parse a whole TOML document
 * @text: the document (need not be NUL-terminated)
 * @len: its length in bytes
 * @root: on success, the root table; free it with cf_toml_free()
 * @err: on failure, position and message (may be NULL)
 *
 * Return: 0; -EINVAL for invalid TOML; -EOPNOTSUPP for valid TOML outside the
 * supported subset (message starts with "unsupported: "); -ENOMEM.
 */
int cf_toml_parse(const char *text, size_t len, struct cf_toml_value **root,
		  struct cf_toml_error *err);

/* cf_toml_free() - release @v and everything below it; NULL is allowed. */
void cf_toml_free(struct cf_toml_value *v);

/* cf_toml_table_find() - the entry for @key (NUL-terminated) in table @t, or NULL. */
const struct cf_toml_entry *cf_toml_table_find(const struct cf_toml_value *t, const char *key);

/* cf_toml_table_get() - the value of @key in table @t, or NULL when absent. */
const struct cf_toml_value *cf_toml_table_get(const struct cf_toml_value *t, const char *key);

/* cf_toml_kind_name() - "string", "integer", "boolean", "array" or "table". */
const char *cf_toml_kind_name(enum cf_toml_kind kind);

/*
 * cf_toml_write_string() - write @s (@len bytes) to @f as a TOML basic string
 * ("..." with \", \\, \t, \n, ... and \uXXXX for other control characters),
 * which cf_toml_parse() reads back to the same bytes.
 *
 * Return: 0; -EILSEQ when @s is not valid UTF-8 (nothing is written); -EIO.
 */
int cf_toml_write_string(FILE *f, const char *s, size_t len);

#endif
