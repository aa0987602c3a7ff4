/* SPDX-License-Identifier: MIT */
/* Unit tests of the TOML reader: every construct, every error with its position. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

static struct cf_toml_value *parse_ok(const char *text)
{
	struct cf_toml_value *root = NULL;
	struct cf_toml_error err;
	int r = cf_toml_parse(text, strlen(text), &root, &err);

	if (r != 0)
		fail_msg("parse failed (%d) at %u:%u: %s\n--- document:\n%s", r, err.line,
			 err.column, err.msg, text);
	assert_non_null(root);
	assert_int_equal(root->kind, CF_TOML_TABLE);
	return root;
}

struct bad_case {
	const char *text;
	int code;
	unsigned line, column;
	const char *msg; /* substring of the message */
};

static void check_bad(const struct bad_case *c, size_t len)
{
	struct cf_toml_value *root = (struct cf_toml_value *)0x1;
	struct cf_toml_error err;
	int r = cf_toml_parse(c->text, len, &root, &err);

	if (r != c->code || err.line != c->line || err.column != c->column ||
	    !strstr(err.msg, c->msg))
		fail_msg(
		    "document %s\n  expected %d at %u:%u with '%s'\n  got      %d at %u:%u: %s",
		    c->text, c->code, c->line, c->column, c->msg, r, err.line, err.column, err.msg);
	assert_null(root);
}

static void check_bad_cases(const struct bad_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_bad(&cases[i], strlen(cases[i].text));
}

static const struct cf_toml_value *get(const struct cf_toml_value *t, const char *key)
{
	const struct cf_toml_value *v = cf_toml_table_get(t, key);

	if (!v)
		fail_msg("key '%s' missing", key);
	return v;
}

static void assert_str(const struct cf_toml_value *v, const char *s, size_t len)
{
	assert_int_equal(v->kind, CF_TOML_STRING);
	assert_int_equal(v->u.str.len, len);
	assert_memory_equal(v->u.str.s, s, len);
	assert_int_equal(v->u.str.s[len], '\0');
}

static void assert_int(const struct cf_toml_value *v, int64_t i)
{
	assert_int_equal(v->kind, CF_TOML_INTEGER);
	assert_true(v->u.integer == i);
}

/* ---- accepted documents ------------------------------------------------- */

static void empty_and_blank_documents_are_empty_tables(void **state)
{
	const char *docs[] = {"", "\n", "  \t\n\r\n", "# only a comment", "# c\n\n# d\n"};
	struct cf_toml_value *root = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		root = parse_ok(docs[i]);
		assert_int_equal(root->u.table.n, 0);
		cf_toml_free(root);
	}
	assert_int_equal(cf_toml_parse(NULL, 0, &root, NULL), 0);
	assert_int_equal(root->u.table.n, 0);
	cf_toml_free(root);
	cf_toml_free(NULL);
}

static void bare_quoted_and_dotted_keys_name_nested_tables(void **state)
{
	struct cf_toml_value *root =
	    parse_ok("bare-key_1 = 1\n1234 = 2\n\"quoted key\" = 3\n'lit \"k\"' = 4\n"
		     "\"\" = 5\na . b\t.\t\"c.d\" = 6\na.e = 7\ntrue = 8\n");
	const struct cf_toml_value *a;

	(void)state;
	assert_int(get(root, "bare-key_1"), 1);
	assert_int(get(root, "1234"), 2);
	assert_int(get(root, "quoted key"), 3);
	assert_int(get(root, "lit \"k\""), 4);
	assert_int(get(root, ""), 5);
	assert_int(get(root, "true"), 8);
	a = get(root, "a");
	assert_int_equal(a->kind, CF_TOML_TABLE);
	assert_int(get(get(a, "b"), "c.d"), 6);
	assert_int(get(a, "e"), 7);
	assert_null(cf_toml_table_get(root, "c.d"));
	cf_toml_free(root);
}

static void keys_and_values_record_their_line_and_column(void **state)
{
	struct cf_toml_value *root = parse_ok("# c\n  key = \"v\"\n[t]\n\t\"é\" = [1,\n  2]\n");
	const struct cf_toml_entry *e = cf_toml_table_find(root, "key");
	const struct cf_toml_value *t, *arr;

	(void)state;
	assert_non_null(e);
	assert_int_equal(e->line, 2);
	assert_int_equal(e->column, 3);
	assert_int_equal(e->value->line, 2);
	assert_int_equal(e->value->column, 9);
	t = get(root, "t");
	assert_int_equal(t->line, 3);
	assert_int_equal(t->column, 1);
	e = cf_toml_table_find(t, "é");
	assert_non_null(e);
	assert_int_equal(e->line, 4);
	assert_int_equal(e->column, 2);
	/* columns count characters: "é" is two bytes but one column */
	arr = e->value;
	assert_int_equal(arr->column, 8);
	assert_int_equal(arr->u.array.v[1]->line, 5);
	assert_int_equal(arr->u.array.v[1]->column, 3);
	cf_toml_free(root);
}

static void tables_keep_keys_in_definition_order(void **state)
{
	struct cf_toml_value *root = parse_ok("z = 1\na = 2\nm.x = 3\n[b]\n[0]\n");
	const char *order[] = {"z", "a", "m", "b", "0"};

	(void)state;
	assert_int_equal(root->u.table.n, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(root->u.table.v[i].key, order[i]);
	cf_toml_free(root);
}

static void basic_string_escapes_are_decoded(void **state)
{
	struct cf_toml_value *root = parse_ok("s = \"\\b\\t\\n\\f\\r\\\"\\\\ \\u0041\\u00e9"
					      "\\u20AC\\U0001F600\"\n");

	(void)state;
	assert_str(get(root, "s"), "\b\t\n\f\r\"\\ A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 18);
	cf_toml_free(root);
}

static void unicode_escape_of_nul_keeps_the_length(void **state)
{
	struct cf_toml_value *root = parse_ok("\"k\\u0000x\" = \"a\\u0000b\"\n");

	(void)state;
	assert_int_equal(root->u.table.v[0].key_len, 3);
	assert_memory_equal(root->u.table.v[0].key, "k\0x", 4);
	assert_str(root->u.table.v[0].value, "a\0b", 3);
	cf_toml_free(root);
}

static void literal_strings_keep_backslashes_and_utf8(void **state)
{
	struct cf_toml_value *root = parse_ok("a = 'C:\\new\\t \"q\" é'\nb = ''\nc = \"\"\n");

	(void)state;
	assert_str(get(root, "a"), "C:\\new\\t \"q\" \xc3\xa9", 15);
	assert_str(get(root, "b"), "", 0);
	assert_str(get(root, "c"), "", 0);
	cf_toml_free(root);
}

static void multiline_basic_strings_trim_the_first_newline_and_escaped_line_ends(void **state)
{
	struct cf_toml_value *root =
	    parse_ok("a = \"\"\"\nline1\nline2\"\"\"\n"
		     "b = \"\"\"\\\n   The quick \\\n\n   fox.\\\n   \"\"\"\n"
		     "c = \"\"\"x \\  \t\n  y\"\"\"\n"
		     "d = \"\"\"two \"\" quotes and \\\"\"\" escaped\"\"\"\n");

	(void)state;
	assert_str(get(root, "a"), "line1\nline2", 11);
	assert_str(get(root, "b"), "The quick fox.", 14);
	assert_str(get(root, "c"), "x y", 3);
	assert_str(get(root, "d"), "two \"\" quotes and \"\"\" escaped", 29);
	cf_toml_free(root);
}

static void multiline_strings_may_end_with_one_or_two_quotes(void **state)
{
	struct cf_toml_value *root = parse_ok("a = \"\"\"x\"\"\"\"\nb = \"\"\"x\"\"\"\"\"\n"
					      "c = '''y''''\nd = '''y'''''\ne = \"\"\"\"\"\"\n"
					      "f = '''\n'''\n");

	(void)state;
	assert_str(get(root, "a"), "x\"", 2);
	assert_str(get(root, "b"), "x\"\"", 3);
	assert_str(get(root, "c"), "y'", 2);
	assert_str(get(root, "d"), "y''", 3);
	assert_str(get(root, "e"), "", 0);
	assert_str(get(root, "f"), "", 0);
	cf_toml_free(root);
}

static void multiline_literal_strings_keep_everything_but_the_first_newline(void **state)
{
	struct cf_toml_value *root = parse_ok("a = '''\n \\n \"\"\" \t\n# not a comment\n'''\n");

	(void)state;
	assert_str(get(root, "a"), " \\n \"\"\" \t\n# not a comment\n", 26);
	cf_toml_free(root);
}

static void crlf_is_a_newline_and_becomes_lf_inside_strings(void **state)
{
	struct cf_toml_value *root = parse_ok("a = 1\r\nb = \"\"\"\r\nx\r\ny\\\r\n  z\"\"\"\r\n"
					      "c = '''p\r\nq'''\r\n# c\r\nd = [\r\n1,\r\n]\r\n");
	const struct cf_toml_entry *e;

	(void)state;
	assert_int(get(root, "a"), 1);
	assert_str(get(root, "b"), "x\nyz", 4);
	assert_str(get(root, "c"), "p\nq", 3);
	e = cf_toml_table_find(root, "d");
	assert_non_null(e);
	assert_int_equal(e->line, 9);
	assert_int_equal(e->column, 1);
	assert_int(e->value->u.array.v[0], 1);
	cf_toml_free(root);
}

static void integers_are_read_in_every_base_with_underscores_and_sign(void **state)
{
	struct cf_toml_value *root =
	    parse_ok("a = 0\nb = +99\nc = -17\nd = 1_000_000\ne = -0\nf = +0\ng = 0xDEAD_beef\n"
		     "h = 0o755\ni = 0b1101_0110\nj = 0x00ff\nk = 0o0\nl = 53_49_221\n");

	(void)state;
	assert_int(get(root, "a"), 0);
	assert_int(get(root, "b"), 99);
	assert_int(get(root, "c"), -17);
	assert_int(get(root, "d"), 1000000);
	assert_int(get(root, "e"), 0);
	assert_int(get(root, "f"), 0);
	assert_int(get(root, "g"), 0xdeadbeef);
	assert_int(get(root, "h"), 0755);
	assert_int(get(root, "i"), 0xd6);
	assert_int(get(root, "j"), 255);
	assert_int(get(root, "k"), 0);
	assert_int(get(root, "l"), 5349221);
	cf_toml_free(root);
}

static void integers_reach_the_int64_limits(void **state)
{
	struct cf_toml_value *root =
	    parse_ok("max = 9223372036854775807\nmin = -9223372036854775808\n"
		     "hex = 0x7FFFFFFFFFFFFFFF\noct = 0o777777777777777777777\n"
		     "bin = 0b111111111111111111111111111111111111111111111111111111111111111\n");

	(void)state;
	assert_int(get(root, "max"), INT64_MAX);
	assert_int(get(root, "min"), INT64_MIN);
	assert_int(get(root, "hex"), INT64_MAX);
	assert_int(get(root, "oct"), INT64_MAX);
	assert_int(get(root, "bin"), INT64_MAX);
	cf_toml_free(root);
}

static void booleans_are_read(void **state)
{
	struct cf_toml_value *root = parse_ok("t = true\nf = false # c\n");

	(void)state;
	assert_int_equal(get(root, "t")->kind, CF_TOML_BOOLEAN);
	assert_true(get(root, "t")->u.boolean);
	assert_false(get(root, "f")->u.boolean);
	cf_toml_free(root);
}

static void arrays_nest_span_lines_hold_comments_and_a_trailing_comma(void **state)
{
	struct cf_toml_value *root = parse_ok("e = []\nm = [ 1, \"two\", true, [ 'x', [] ] ]\n"
					      "l = [\n  1, # one\n  # alone\n  2,\n]\n"
					      "c = [ # open\n]\n");
	const struct cf_toml_value *m, *l;

	(void)state;
	assert_int_equal(get(root, "e")->kind, CF_TOML_ARRAY);
	assert_int_equal(get(root, "e")->u.array.n, 0);
	m = get(root, "m");
	assert_int_equal(m->u.array.n, 4);
	assert_int(m->u.array.v[0], 1);
	assert_str(m->u.array.v[1], "two", 3);
	assert_true(m->u.array.v[2]->u.boolean);
	assert_int_equal(m->u.array.v[3]->kind, CF_TOML_ARRAY);
	assert_str(m->u.array.v[3]->u.array.v[0], "x", 1);
	assert_int_equal(m->u.array.v[3]->u.array.v[1]->u.array.n, 0);
	l = get(root, "l");
	assert_int_equal(l->u.array.n, 2);
	assert_int(l->u.array.v[1], 2);
	assert_int_equal(get(root, "c")->u.array.n, 0);
	cf_toml_free(root);
}

static void arrays_grow_past_their_first_allocations(void **state)
{
	char doc[4096] = "a = [";
	struct cf_toml_value *root;
	const struct cf_toml_value *a;

	(void)state;
	for (int i = 0; i < 300; i++)
		snprintf(doc + strlen(doc), sizeof(doc) - strlen(doc), "%d,", i);
	strcat(doc, "]\n");
	root = parse_ok(doc);
	a = get(root, "a");
	assert_int_equal(a->u.array.n, 300);
	for (int i = 0; i < 300; i++)
		assert_int(a->u.array.v[i], i);
	cf_toml_free(root);
}

static void headers_define_tables_and_subtables_in_any_order(void **state)
{
	struct cf_toml_value *root =
	    parse_ok("[a.b.c]\nx = 1\n[a]\ny = 2\nb.d = 3\n"
		     "[ sp . 'q.k' ]\nz = 4\n"
		     "[fruit]\napple.color = 'red'\n[fruit.apple.texture]\n"
		     "smooth = true\n");
	const struct cf_toml_value *a, *apple;

	(void)state;
	a = get(root, "a");
	assert_int_equal(a->line, 3); /* defined by [a], created by [a.b.c] */
	assert_int(get(get(get(a, "b"), "c"), "x"), 1);
	assert_int(get(a, "y"), 2);
	assert_int(get(get(a, "b"), "d"), 3);
	assert_int(get(get(get(root, "sp"), "q.k"), "z"), 4);
	apple = get(get(root, "fruit"), "apple");
	assert_str(get(apple, "color"), "red", 3);
	assert_true(get(get(apple, "texture"), "smooth")->u.boolean);
	cf_toml_free(root);
}

static void dotted_keys_extend_their_tables_within_one_section(void **state)
{
	struct cf_toml_value *root = parse_ok("a.b = 1\na.c = 2\na.d.e = 3\n[t]\nx.y = 4\n"
					      "x.z = 5\n");

	(void)state;
	assert_int(get(get(root, "a"), "c"), 2);
	assert_int(get(get(get(root, "a"), "d"), "e"), 3);
	assert_int(get(get(get(root, "t"), "x"), "z"), 5);
	cf_toml_free(root);
}

static void nesting_up_to_the_limit_is_accepted(void **state)
{
	char doc[1024];
	size_t n = 0;
	struct cf_toml_value *root;

	(void)state;
	/* 64 dotted parts: 63 tables and a value at depth 64 */
	for (int i = 0; i < CF_TOML_MAX_DEPTH; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%sk", i ? "." : "");
	snprintf(doc + n, sizeof(doc) - n, " = 1\n");
	root = parse_ok(doc);
	cf_toml_free(root);
	/* arrays nested 64 deep under a root key */
	n = (size_t)snprintf(doc, sizeof(doc), "a = ");
	for (int i = 0; i < CF_TOML_MAX_DEPTH; i++)
		doc[n++] = '[';
	for (int i = 0; i < CF_TOML_MAX_DEPTH; i++)
		doc[n++] = ']';
	doc[n] = '\0';
	root = parse_ok(doc);
	cf_toml_free(root);
}

static void lookup_helpers_handle_missing_keys_and_non_tables(void **state)
{
	struct cf_toml_value *root = parse_ok("a = 1\n");

	(void)state;
	assert_null(cf_toml_table_get(root, "b"));
	assert_null(cf_toml_table_find(root, "b"));
	assert_null(cf_toml_table_get(get(root, "a"), "a"));
	assert_null(cf_toml_table_get(NULL, "a"));
	assert_string_equal(cf_toml_kind_name(CF_TOML_STRING), "string");
	assert_string_equal(cf_toml_kind_name(CF_TOML_INTEGER), "integer");
	assert_string_equal(cf_toml_kind_name(CF_TOML_BOOLEAN), "boolean");
	assert_string_equal(cf_toml_kind_name(CF_TOML_ARRAY), "array");
	assert_string_equal(cf_toml_kind_name(CF_TOML_TABLE), "table");
	assert_string_equal(cf_toml_kind_name((enum cf_toml_kind)99), "value");
	cf_toml_free(root);
}

/* ---- rejected documents ------------------------------------------------- */

static void invalid_strings_are_rejected_at_their_position(void **state)
{
	static const struct bad_case cases[] = {
	    {"a = \"\\q\"\n", -EINVAL, 1, 6, "invalid escape sequence '\\q'"},
	    {"a = \"\\e\"\n", -EINVAL, 1, 6, "invalid escape"},
	    {"a = \"\\x41\"\n", -EINVAL, 1, 6, "invalid escape"},
	    {"a = \"\\", -EINVAL, 1, 6, "backslash alone"},
	    {"a = \"\\u12\"\n", -EINVAL, 1, 6, "\\u escape needs 4 hexadecimal digits"},
	    {"a = \"\\U0001F60\"\n", -EINVAL, 1, 6, "\\U escape needs 8"},
	    {"a = \"\\uD800\"\n", -EINVAL, 1, 6, "not a Unicode scalar value"},
	    {"a = \"\\U00110000\"\n", -EINVAL, 1, 6, "not a Unicode scalar value"},
	    {"a = \"a\\ b\"\n", -EINVAL, 1, 7, "invalid escape"},
	    {"a = \"\"\"x\\  y\n\"\"\"\n", -EINVAL, 1, 9, "must end the line"},
	    {"a = \"x\n", -EINVAL, 1, 7, "line break in a single-line string"},
	    {"a = 'x\ny'\n", -EINVAL, 1, 7, "line break in a single-line string"},
	    {"a = \"\x01\"\n", -EINVAL, 1, 6, "control character U+0001"},
	    {"a = \"\x7f\"\n", -EINVAL, 1, 6, "control character U+007F"},
	    {"a = '''\x1b'''\n", -EINVAL, 1, 8, "control character U+001B"},
	    {"a = \"\"\"x\ry\"\"\"\n", -EINVAL, 1, 9, "carriage return"},
	    {"a = '''x\ry'''\n", -EINVAL, 1, 9, "carriage return"},
	    {"a = \"abc", -EINVAL, 1, 5, "unterminated string"},
	    {"a = 'abc", -EINVAL, 1, 5, "unterminated string"},
	    {"\n\na = \"\"\"abc\n\n", -EINVAL, 3, 5, "unterminated string"},
	    {"a = '''abc\n", -EINVAL, 1, 5, "unterminated string"},
	    {"a = \"\"\"x\"\"\"\"\"\"\n", -EINVAL, 1, 14, "end of the line"},
	};

	(void)state;
	check_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void nul_bytes_in_the_input_are_rejected(void **state)
{
	static const struct bad_case in_string = {"a = \"\0\"\n", -EINVAL, 1, 6, "U+0000"};
	static const struct bad_case statement = {"\0", -EINVAL, 1, 1, "U+0000"};

	(void)state;
	check_bad(&in_string, 8);
	check_bad(&statement, 1);
}

static void invalid_integers_are_rejected_at_their_position(void **state)
{
	static const struct bad_case cases[] = {
	    {"a = 01\n", -EINVAL, 1, 6, "end of the line after a value"},
	    {"a = -01\n", -EINVAL, 1, 7, "end of the line"},
	    {"a = 1__0\n", -EINVAL, 1, 6, "end of the line"},
	    {"a = 1_\n", -EINVAL, 1, 6, "end of the line"},
	    {"a = _1\n", -EINVAL, 1, 5, "invalid value"},
	    {"a = 0x_1\n", -EINVAL, 1, 6, "end of the line"},
	    {"a = 0X1\n", -EINVAL, 1, 6, "end of the line"},
	    {"a = +0x1\n", -EINVAL, 1, 7, "end of the line"},
	    {"a = 0x\n", -EINVAL, 1, 6, "end of the line"},
	    {"a = 0o8\n", -EINVAL, 1, 6, "end of the line"},
	    {"a = 0b12\n", -EINVAL, 1, 8, "end of the line"},
	    {"a = +\n", -EINVAL, 1, 5, "invalid value"},
	    {"a = 1.\n", -EINVAL, 1, 6, "end of the line"},
	    {"a = .5\n", -EINVAL, 1, 5, "invalid value"},
	    {"a = 1e\n", -EINVAL, 1, 6, "end of the line"},
	    {"a = truee\n", -EINVAL, 1, 9, "end of the line"},
	    {"a = True\n", -EINVAL, 1, 5, "invalid value"},
	    {"a = hello\n", -EINVAL, 1, 5, "invalid value"},
	};

	(void)state;
	check_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void invalid_syntax_is_rejected_at_its_position(void **state)
{
	static const struct bad_case cases[] = {
	    {"a =\n", -EINVAL, 1, 4, "expected a value"},
	    {"a = ", -EINVAL, 1, 5, "expected a value"},
	    {"a 1\n", -EINVAL, 1, 3, "expected '=' after key 'a'"},
	    {"a", -EINVAL, 1, 2, "expected '='"},
	    {"= 1\n", -EINVAL, 1, 1, "expected a key, a [table] or a comment"},
	    {"a@b = 1\n", -EINVAL, 1, 2, "expected '='"},
	    {"a.@ = 1\n", -EINVAL, 1, 3, "invalid character in a key"},
	    {"a. = 1\n", -EINVAL, 1, 4, "invalid character in a key"},
	    {"a..b = 1\n", -EINVAL, 1, 3, "invalid character in a key"},
	    {"a.\n", -EINVAL, 1, 3, "expected a key before the end of the line"},
	    {"\"\"\"a\"\"\" = 1\n", -EINVAL, 1, 3, "expected '='"},
	    {"\"a\nb\" = 1\n", -EINVAL, 1, 3, "line break"},
	    {"a = 1 b = 2\n", -EINVAL, 1, 7, "end of the line after a value"},
	    {"[a] b = 1\n", -EINVAL, 1, 5, "end of the line after a table header"},
	    {"[]\n", -EINVAL, 1, 2, "invalid character in a key"},
	    {"[a.]\n", -EINVAL, 1, 4, "invalid character in a key"},
	    {"[a\nb = 1\n", -EINVAL, 1, 3, "expected ']'"},
	    {"a = # c\n1\n", -EINVAL, 1, 5, "invalid value"},
	    {"a = [1, 2\n", -EINVAL, 2, 1, "unterminated array"},
	    {"a = [1,", -EINVAL, 1, 8, "expected a value"},
	    {"a = [1 2]\n", -EINVAL, 1, 8, "expected ',' or ']'"},
	    {"a = [1,,2]\n", -EINVAL, 1, 8, "invalid value"},
	    {"a = [,1]\n", -EINVAL, 1, 6, "invalid value"},
	    {"a = [1, # \x01\n]\n", -EINVAL, 1, 11, "in a comment"},
	    {"\xef\xbb\xbf"
	     "a = 1\n",
	     -EINVAL, 1, 1, "expected a key"},
	};

	(void)state;
	check_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void control_characters_and_invalid_utf8_are_rejected(void **state)
{
	static const struct bad_case cases[] = {
	    {"# \x01\n", -EINVAL, 1, 3, "control character U+0001 in a comment"},
	    {"a = 1 # \x7f\n", -EINVAL, 1, 9, "U+007F in a comment"},
	    {"# a\rb\n", -EINVAL, 1, 4, "carriage return not followed by a newline in a comment"},
	    {"a = 1\rb = 2\n", -EINVAL, 1, 6, "end of the line"},
	    {"\ra = 1\n", -EINVAL, 1, 1, "carriage return"},
	    {"\x02", -EINVAL, 1, 1, "control character U+0002 outside"},
	    {"a = \"\xff\"\n", -EINVAL, 1, 6, "invalid UTF-8"},
	    {"é = 1\n# \xc3\x28\n", -EINVAL, 2, 3, "invalid UTF-8"},
	    {"a = \"\xc0\xaf\"\n", -EINVAL, 1, 6, "invalid UTF-8"},
	    {"a = \"\xed\xa0\x80\"\n", -EINVAL, 1, 6, "invalid UTF-8"},
	    {"a = \"\xe6\x97\"\n", -EINVAL, 1, 6, "invalid UTF-8"},
	    {"a = \"\xe6\x97", -EINVAL, 1, 6, "invalid UTF-8"},
	    {"a = \"\xf4\x90\x80\x80\"\n", -EINVAL, 1, 6, "invalid UTF-8"},
	    {"a = \"\xf0\x9f\x98\x28\"\n", -EINVAL, 1, 6, "invalid UTF-8"},
	    {"a = \"\xf8\x88\x80\x80\x80\"\n", -EINVAL, 1, 6, "invalid UTF-8"},
	    {"a = \"\x80\"\n", -EINVAL, 1, 6, "invalid UTF-8"},
	};

	(void)state;
	check_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void redefinitions_are_rejected_at_the_second_definition(void **state)
{
	static const struct bad_case cases[] = {
	    {"a = 1\na = 2\n", -EINVAL, 2, 1, "duplicate key 'a'"},
	    {"a = 1\n\"a\" = 2\n", -EINVAL, 2, 1, "duplicate key 'a'"},
	    {"\"é\" = 1\n\"\\u00e9\" = 2\n", -EINVAL, 2, 1, "duplicate key"},
	    {"a.b = 1\na = 2\n", -EINVAL, 2, 1, "duplicate key 'a'"},
	    {"[t]\nx.\"y z\" = 1\nx.\"y z\" = 2\n", -EINVAL, 3, 3, "duplicate key 'x.\"y z\"'"},
	    {"[a]\n[a]\n", -EINVAL, 2, 1, "table [a] is defined more than once"},
	    {"[a.b]\nx = 1\n[a]\n[a.b]\n", -EINVAL, 4, 1, "table [a.b] is defined more"},
	    {"a.b = 1\n[a]\n", -EINVAL, 2, 1, "table [a] is defined more than once"},
	    {"a.b.c = 1\n[a.b]\n", -EINVAL, 2, 1, "table [a.b] is defined more"},
	    {"[a.b]\n[a]\nb.c = 1\n", -EINVAL, 3, 1, "table 'b' was defined elsewhere"},
	    {"a = 1\n[a]\n", -EINVAL, 2, 2, "key 'a' is already an integer, not a table"},
	    {"a = 'x'\n[a.b]\n", -EINVAL, 2, 2, "key 'a' is already a string"},
	    {"a = true\na.b = 2\n", -EINVAL, 2, 1, "already a boolean"},
	    {"a = [1]\n[a]\n", -EINVAL, 2, 2, "already an array"},
	    {"a = [1]\n[a.b]\n", -EINVAL, 2, 2, "already an array"},
	    {"[t]\nx.y = 1\nx.y.z = 2\n", -EINVAL, 3, 3, "key 'x.y' is already an integer"},
	    {"[a.b]\n[a]\nb = 1\n", -EINVAL, 3, 1, "duplicate key 'b'"},
	};

	(void)state;
	check_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void unsupported_toml_is_refused_as_unsupported(void **state)
{
	static const struct bad_case cases[] = {
	    {"a = 3.14\n", -EOPNOTSUPP, 1, 5, "unsupported: floating-point numbers"},
	    {"a = 5e+22\n", -EOPNOTSUPP, 1, 5, "floating-point"},
	    {"a = -0.0\n", -EOPNOTSUPP, 1, 5, "floating-point"},
	    {"a = 1_0.0_1\n", -EOPNOTSUPP, 1, 5, "floating-point"},
	    {"a = inf\n", -EOPNOTSUPP, 1, 5, "floating-point"},
	    {"a = -nan\n", -EOPNOTSUPP, 1, 5, "floating-point"},
	    {"a = [1,\n 2.5]\n", -EOPNOTSUPP, 2, 2, "floating-point"},
	    {"a = 1979-05-27\n", -EOPNOTSUPP, 1, 5, "unsupported: dates and times"},
	    {"a = 1979-05-27T07:32:00Z\n", -EOPNOTSUPP, 1, 5, "dates and times"},
	    {"a = 07:32:00\n", -EOPNOTSUPP, 1, 5, "dates and times"},
	    {"a = { b = 1 }\n", -EOPNOTSUPP, 1, 5, "unsupported: inline tables"},
	    {"x = 1\n[[a]]\n", -EOPNOTSUPP, 2, 1, "unsupported: arrays of tables"},
	    {"a = 9223372036854775808\n", -EOPNOTSUPP, 1, 5, "does not fit in 64 bits"},
	    {"a = -9223372036854775809\n", -EOPNOTSUPP, 1, 5, "does not fit in 64 bits"},
	    {"a = 0x8000000000000000\n", -EOPNOTSUPP, 1, 5, "does not fit in 64 bits"},
	    {"a = 0o1000000000000000000000\n", -EOPNOTSUPP, 1, 5, "does not fit"},
	    {"a = 99999999999999999999999\n", -EOPNOTSUPP, 1, 5, "does not fit"},
	};

	(void)state;
	check_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void nesting_beyond_the_limit_is_unsupported(void **state)
{
	char doc[1024];
	size_t n;
	struct bad_case c = {doc, -EOPNOTSUPP, 1, 0, "nesting deeper than 64 levels"};

	(void)state;
	n = (size_t)snprintf(doc, sizeof(doc), "a = ");
	for (int i = 0; i <= CF_TOML_MAX_DEPTH; i++)
		doc[n++] = '[';
	doc[n] = '\0';
	c.column = 5 + CF_TOML_MAX_DEPTH; /* the 65th '[' */
	check_bad(&c, n);

	/* a 40-part header holding a 30-part dotted key: the 25th part is one too deep */
	n = 0;
	doc[n++] = '[';
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%sh", i ? "." : "");
	n += (size_t)snprintf(doc + n, sizeof(doc) - n, "]\n");
	for (int i = 0; i < 30; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%sd", i ? "." : "");
	snprintf(doc + n, sizeof(doc) - n, " = 1\n");
	c.line = 2;
	c.column = 49; /* "d." x 24, then the 25th d */
	check_bad(&c, strlen(doc));

	n = 0;
	for (int i = 0; i <= CF_TOML_MAX_DEPTH; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%sk", i ? "." : "");
	snprintf(doc + n, sizeof(doc) - n, " = 1\n");
	c.line = 1;
	c.column = 129;
	c.msg = "keys of more than 64 dotted parts";
	check_bad(&c, strlen(doc));
}

static void errors_without_an_error_struct_still_fail(void **state)
{
	struct cf_toml_value *root = NULL;

	(void)state;
	assert_int_equal(cf_toml_parse("a = \n", 5, &root, NULL), -EINVAL);
	assert_null(root);
	assert_int_equal(cf_toml_parse("a = 1.5\n", 8, &root, NULL), -EOPNOTSUPP);
	assert_int_equal(cf_toml_parse("a = \"\xff\"", 7, &root, NULL), -EINVAL);
}

static void long_and_odd_keys_are_quoted_and_cut_in_messages(void **state)
{
	char doc[512];
	struct cf_toml_value *root = NULL;
	struct cf_toml_error err;
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 2; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "\"%0100d\\u0001\" = 1\n", 7);
	assert_int_equal(cf_toml_parse(doc, strlen(doc), &root, &err), -EINVAL);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.msg, "duplicate key '\"0000"));
	assert_null(strstr(err.msg, "\x01"));
	assert_true(strlen(err.msg) < sizeof(err.msg));
}

static char *write_to_string(const char *s, size_t len, int *r)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);

	assert_non_null(m);
	*r = cf_toml_write_string(m, s, len);
	assert_int_equal(fclose(m), 0);
	return buf;
}

static void written_strings_are_escaped_and_read_back_unchanged(void **state)
{
	static const char value[] = "q\"b\\s\b\t\n\f\r\x01\x1f\x7f\0 \xc3\xa9\xf0\x9f\x98\x80";
	struct cf_toml_value *root;
	char doc[256];
	char *text;
	int r;

	(void)state;
	text = write_to_string(value, sizeof(value) - 1, &r);
	assert_int_equal(r, 0);
	assert_string_equal(text, "\"q\\\"b\\\\s\\b\\t\\n\\f\\r\\u0001\\u001F\\u007F\\u0000 "
				  "\xc3\xa9\xf0\x9f\x98\x80\"");
	snprintf(doc, sizeof(doc), "k = %s\n", text);
	root = parse_ok(doc);
	assert_str(get(root, "k"), value, sizeof(value) - 1);
	cf_toml_free(root);
	free(text);
}

static void writing_invalid_utf8_is_refused_and_writes_nothing(void **state)
{
	char *text;
	int r;

	(void)state;
	text = write_to_string("ok\xff", 3, &r);
	assert_int_equal(r, -EILSEQ);
	assert_string_equal(text, "");
	free(text);
	text = write_to_string("\xed\xa0\x80", 3, &r); /* an encoded surrogate */
	assert_int_equal(r, -EILSEQ);
	free(text);
}

static void writing_to_a_failing_stream_reports_eio(void **state)
{
	FILE *full = fopen("/dev/full", "w");

	(void)state;
	if (!full)
		skip();
	setvbuf(full, NULL, _IONBF, 0);
	assert_int_equal(cf_toml_write_string(full, "x", 1), -EIO);
	fclose(full);
}

static void control_characters_in_keys_are_escaped_in_messages(void **state)
{
	static const struct bad_case c = {"\"a\\u0001\" = 1\n\"a\\u0001\" = 2\n", -EINVAL, 2, 1,
					  "duplicate key '\"a\\u0001\"'"};

	(void)state;
	check_bad(&c, strlen(c.text));
}

static void a_line_ending_backslash_at_the_end_of_input_is_an_unterminated_string(void **state)
{
	static const struct bad_case c = {"a = \"\"\"x\\  ", -EINVAL, 1, 5, "unterminated string"};

	(void)state;
	check_bad(&c, strlen(c.text));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_and_blank_documents_are_empty_tables),
	    cmocka_unit_test(bare_quoted_and_dotted_keys_name_nested_tables),
	    cmocka_unit_test(keys_and_values_record_their_line_and_column),
	    cmocka_unit_test(tables_keep_keys_in_definition_order),
	    cmocka_unit_test(basic_string_escapes_are_decoded),
	    cmocka_unit_test(unicode_escape_of_nul_keeps_the_length),
	    cmocka_unit_test(literal_strings_keep_backslashes_and_utf8),
	    cmocka_unit_test(multiline_basic_strings_trim_the_first_newline_and_escaped_line_ends),
	    cmocka_unit_test(multiline_strings_may_end_with_one_or_two_quotes),
	    cmocka_unit_test(multiline_literal_strings_keep_everything_but_the_first_newline),
	    cmocka_unit_test(crlf_is_a_newline_and_becomes_lf_inside_strings),
	    cmocka_unit_test(integers_are_read_in_every_base_with_underscores_and_sign),
	    cmocka_unit_test(integers_reach_the_int64_limits),
	    cmocka_unit_test(booleans_are_read),
	    cmocka_unit_test(arrays_nest_span_lines_hold_comments_and_a_trailing_comma),
	    cmocka_unit_test(arrays_grow_past_their_first_allocations),
	    cmocka_unit_test(headers_define_tables_and_subtables_in_any_order),
	    cmocka_unit_test(dotted_keys_extend_their_tables_within_one_section),
	    cmocka_unit_test(nesting_up_to_the_limit_is_accepted),
	    cmocka_unit_test(lookup_helpers_handle_missing_keys_and_non_tables),
	    cmocka_unit_test(invalid_strings_are_rejected_at_their_position),
	    cmocka_unit_test(nul_bytes_in_the_input_are_rejected),
	    cmocka_unit_test(invalid_integers_are_rejected_at_their_position),
	    cmocka_unit_test(invalid_syntax_is_rejected_at_its_position),
	    cmocka_unit_test(control_characters_and_invalid_utf8_are_rejected),
	    cmocka_unit_test(redefinitions_are_rejected_at_the_second_definition),
	    cmocka_unit_test(unsupported_toml_is_refused_as_unsupported),
	    cmocka_unit_test(nesting_beyond_the_limit_is_unsupported),
	    cmocka_unit_test(errors_without_an_error_struct_still_fail),
	    cmocka_unit_test(long_and_odd_keys_are_quoted_and_cut_in_messages),
	    cmocka_unit_test(written_strings_are_escaped_and_read_back_unchanged),
	    cmocka_unit_test(writing_invalid_utf8_is_refused_and_writes_nothing),
	    cmocka_unit_test(writing_to_a_failing_stream_reports_eio),
	    cmocka_unit_test(control_characters_in_keys_are_escaped_in_messages),
	    cmocka_unit_test(a_line_ending_backslash_at_the_end_of_input_is_an_unterminated_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
