/* SPDX-License-Identifier: MIT */
/*
 * toml_to_json FILE: parse FILE with childflow's TOML reader and print the
 * result for tests/toml/difftest.py, in the tagged form of toml-test:
 * scalars as {"type": "string"|"integer"|"bool", "value": "..."}, arrays as
 * JSON arrays, tables as JSON objects in definition order. On failure it
 * prints "REJECT: LINE:COL: MESSAGE" (exit 1) or "UNSUPPORTED: LINE:COL:
 * MESSAGE" (exit 2); I/O errors exit 3.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

static void print_json_string(const char *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_value(const struct cf_toml_value *v)
{
	switch (v->kind) {
	case CF_TOML_STRING:
		printf("{\"type\":\"string\",\"value\":");
		print_json_string(v->u.str.s, v->u.str.len);
		printf("}");
		break;
	case CF_TOML_INTEGER:
		printf("{\"type\":\"integer\",\"value\":\"%" PRId64 "\"}", v->u.integer);
		break;
	case CF_TOML_BOOLEAN:
		printf("{\"type\":\"bool\",\"value\":\"%s\"}", v->u.boolean ? "true" : "false");
		break;
	case CF_TOML_ARRAY:
		putchar('[');
		for (size_t i = 0; i < v->u.array.n; i++) {
			if (i)
				putchar(',');
			print_value(v->u.array.v[i]);
		}
		putchar(']');
		break;
	case CF_TOML_TABLE:
		putchar('{');
		for (size_t i = 0; i < v->u.table.n; i++) {
			if (i)
				putchar(',');
			print_json_string(v->u.table.v[i].key, v->u.table.v[i].key_len);
			putchar(':');
			print_value(v->u.table.v[i].value);
		}
		putchar('}');
		break;
	}
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (n == cap) {
			char *nb = realloc(buf, cap ? cap * 2 : 4096);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = cap ? cap * 2 : 4096;
		}
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	struct cf_toml_value *root;
	struct cf_toml_error err;
	size_t len = 0;
	char *text;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: toml_to_json FILE\n");
		return 3;
	}
	text = read_file(argv[1], &len);
	if (!text) {
		fprintf(stderr, "toml_to_json: %s: %s\n", argv[1], strerror(errno));
		return 3;
	}
	r = cf_toml_parse(text, len, &root, &err);
	free(text);
	if (r == -EINVAL || r == -EOPNOTSUPP) {
		printf("%s: %u:%u: %s\n", r == -EINVAL ? "REJECT" : "UNSUPPORTED", err.line,
		       err.column, err.msg);
		return r == -EINVAL ? 1 : 2;
	}
	if (r < 0) {
		fprintf(stderr, "toml_to_json: %s\n", strerror(-r));
		return 3;
	}
	print_value(root);
	putchar('\n');
	cf_toml_free(root);
	return 0;
}
