/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the TOML reader (hostile profiles): parse, check the
 * tree's invariants and the error report, and that every string read back
 * through cf_toml_write_string() parses to the same bytes; free. Crashes,
 * sanitizer reports, leaks and broken invariants are findings.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "k = <s written by cf_toml_write_string>" must read back as @s. */
static void check_writer(const char *s, size_t len)
{
	struct cf_toml_value *root = NULL;
	const struct cf_toml_value *v;
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);

	if (!m)
		return;
	fputs("k = ", m);
	if (cf_toml_write_string(m, s, len) != 0)
		__builtin_trap(); /* the reader only produces valid UTF-8 */
	fclose(m);
	if (cf_toml_parse(buf, n, &root, NULL) != 0)
		__builtin_trap();
	v = cf_toml_table_get(root, "k");
	if (!v || v->kind != CF_TOML_STRING || v->u.str.len != len ||
	    memcmp(v->u.str.s, s, len) != 0)
		__builtin_trap();
	cf_toml_free(root);
	free(buf);
}

static void check(const struct cf_toml_value *v, unsigned depth)
{
	if (depth > CF_TOML_MAX_DEPTH + 1 || v->line == 0 || v->column == 0)
		__builtin_trap();
	switch (v->kind) {
	case CF_TOML_STRING:
		if (v->u.str.s[v->u.str.len] != '\0')
			__builtin_trap();
		check_writer(v->u.str.s, v->u.str.len);
		break;
	case CF_TOML_ARRAY:
		for (size_t i = 0; i < v->u.array.n; i++)
			check(v->u.array.v[i], depth + 1);
		break;
	case CF_TOML_TABLE:
		for (size_t i = 0; i < v->u.table.n; i++) {
			const struct cf_toml_entry *e = &v->u.table.v[i];

			if (e->key[e->key_len] != '\0' || e->line == 0)
				__builtin_trap();
			check_writer(e->key, e->key_len);
			/* keys are unique within a table */
			for (size_t j = 0; j < i; j++) {
				if (v->u.table.v[j].key_len == e->key_len &&
				    memcmp(v->u.table.v[j].key, e->key, e->key_len) == 0)
					__builtin_trap();
			}
			check(e->value, depth + 1);
		}
		break;
	case CF_TOML_INTEGER:
	case CF_TOML_BOOLEAN:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cf_toml_value *root = NULL;
	struct cf_toml_error err;
	int r = cf_toml_parse((const char *)data, size, &root, &err);

	if (r == 0) {
		if (!root || root->kind != CF_TOML_TABLE)
			__builtin_trap();
		check(root, 0);
		cf_toml_free(root);
	} else if (root || (r != -EINVAL && r != -EOPNOTSUPP && r != -ENOMEM) || err.line == 0 ||
		   err.column == 0 || err.msg[0] == '\0' ||
		   memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
		__builtin_trap();
	}
	return 0;
}
