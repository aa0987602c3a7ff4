/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation
 *
 * Loading: the profile named on the command line is read and parsed into a
 * struct cf_config of its own (only the keys it sets, marked in ->set); if
 * it has `extends`, the parent is loaded the same way, and so on up the
 * chain. Files are identified by device and inode, so a chain that comes
 * back to a file it already holds is a cycle, reported with the names as
 * they were written. The chain is then merged root first with
 * cf_config_overlay(), so every child overrides its parents key by key
 * (lists replace, never append). The command line is overlaid later by the
 * caller the same way.
 *
 * Every key is described once in key_types[] (its TOML shape and how it is
 * checked); values are checked with the command line's validators
 * (cf_ip_parse, cf_cidr_parse, cf_domain_normalise, cf_proxy_parse), and
 * every error names the file, line, column and key.
 *
 * Dumping: every key in enum cf_key order, written through the TOML
 * module's string writer so that the dump reads back to the same values.
 * The dump is built in memory and written at once, so a failure (a string
 * TOML cannot hold) prints nothing, and the buffer is wiped afterwards
 * because it may hold a password.
 */
#include "config/profile.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/addr.h"
#include "config/toml.h"
#include "proxy/uri.h"
#include "util/cleanup.h"

enum key_type {
	T_EXTENDS,  /* path of the parent profile */
	T_PATH_IN,  /* a file to read: must exist */
	T_PATH_OUT, /* a file to write: its directory must exist */
	T_CHOICE,   /* a string from choices[] */
	T_BOOL,
	T_IP,
	T_PROXY,
	T_USER,
	T_PASSWORD,
	T_IFACE,
	T_COMMAND,
	T_CIDRS,
	T_DOMAINS,
};

struct key_type_desc {
	enum key_type type;
	size_t off; /* of the field in struct cf_config, where one field holds the value */
};

#define OFF(member) offsetof(struct cf_config, member)

static const struct key_type_desc key_types[CF_KEY__COUNT] = {
    [CF_KEY_EXTENDS] = {T_EXTENDS, OFF(extends)},
    [CF_KEY_BACKEND] = {T_CHOICE, 0},
    [CF_KEY_COMMAND] = {T_COMMAND, OFF(command)},
    [CF_KEY_CAPTURE] = {T_PATH_OUT, OFF(capture)},
    [CF_KEY_CAPTURE_POINT] = {T_CHOICE, 0},
    [CF_KEY_DNS] = {T_IP, 0},
    [CF_KEY_HOSTS_FILE] = {T_PATH_IN, OFF(hosts_file)},
    [CF_KEY_PROXY] = {T_PROXY, 0},
    [CF_KEY_PROXY_USER] = {T_USER, OFF(proxy_user)},
    [CF_KEY_PROXY_PASSWORD] = {T_PASSWORD, OFF(proxy_password)},
    [CF_KEY_PROXY_INSECURE] = {T_BOOL, OFF(proxy_insecure)},
    [CF_KEY_PROXY_SEND_IP] = {T_BOOL, OFF(proxy_send_ip)},
    [CF_KEY_PROXY_REMOTE_DNS] = {T_BOOL, OFF(proxy_remote_dns)},
    [CF_KEY_SUMMARY] = {T_BOOL, OFF(summary)},
    [CF_KEY_SUMMARY_FORMAT] = {T_CHOICE, 0},
    [CF_KEY_DOCTOR_FORMAT] = {T_CHOICE, 0},
    [CF_KEY_REPORT_FORMAT] = {T_CHOICE, 0},
    [CF_KEY_FLOW_LOG] = {T_PATH_OUT, OFF(flow_log)},
    [CF_KEY_OFFLINE] = {T_BOOL, OFF(offline)},
    [CF_KEY_BLOCK_PRIVATE] = {T_BOOL, OFF(block_private)},
    [CF_KEY_BLOCK_METADATA] = {T_BOOL, OFF(block_metadata)},
    [CF_KEY_DEFAULT_POLICY] = {T_CHOICE, 0},
    [CF_KEY_ALLOW_CIDRS] = {T_CIDRS, OFF(allow_cidrs)},
    [CF_KEY_DENY_CIDRS] = {T_CIDRS, OFF(deny_cidrs)},
    [CF_KEY_ALLOW_DOMAINS] = {T_DOMAINS, OFF(allow_domains)},
    [CF_KEY_ALLOW_DOMAINS_EXACT] = {T_DOMAINS, OFF(allow_domains_exact)},
    [CF_KEY_DENY_DOMAINS] = {T_DOMAINS, OFF(deny_domains)},
    [CF_KEY_DENY_DOMAINS_EXACT] = {T_DOMAINS, OFF(deny_domains_exact)},
    [CF_KEY_PROXY_ONLY] = {T_BOOL, OFF(proxy_only)},
    [CF_KEY_FAIL_ON_LEAK] = {T_BOOL, OFF(fail_on_leak)},
    [CF_KEY_IFACE] = {T_IFACE, OFF(iface)},
};

struct choice {
	enum cf_key key;
	const char *name;
	int value;
};

/* The values of the string-choice keys, in the order --help lists them. */
static const struct choice choices[] = {
    {CF_KEY_BACKEND, "rootless-internal", CF_BACKEND_ROOTLESS},
    {CF_KEY_BACKEND, "rootful", CF_BACKEND_ROOTFUL},
    {CF_KEY_CAPTURE_POINT, "child", CF_CAPTURE_CHILD},
    {CF_KEY_CAPTURE_POINT, "egress", CF_CAPTURE_EGRESS},
    {CF_KEY_CAPTURE_POINT, "wire-egress", CF_CAPTURE_WIRE_EGRESS},
    {CF_KEY_CAPTURE_POINT, "both", CF_CAPTURE_BOTH},
    {CF_KEY_SUMMARY_FORMAT, "text", CF_FORMAT_TEXT},
    {CF_KEY_SUMMARY_FORMAT, "json", CF_FORMAT_JSON},
    {CF_KEY_DOCTOR_FORMAT, "text", CF_FORMAT_TEXT},
    {CF_KEY_DOCTOR_FORMAT, "json", CF_FORMAT_JSON},
    {CF_KEY_REPORT_FORMAT, "text", CF_FORMAT_TEXT},
    {CF_KEY_REPORT_FORMAT, "markdown", CF_FORMAT_MARKDOWN},
    {CF_KEY_REPORT_FORMAT, "json", CF_FORMAT_JSON},
    {CF_KEY_DEFAULT_POLICY, "allow", CF_POLICY_ALLOW},
    {CF_KEY_DEFAULT_POLICY, "deny", CF_POLICY_DENY},
};

/* Unknown keys people are likely to write, with what to write instead. */
static const struct {
	const char *key;
	const char *hint;
} key_hints[] = {
    {"root", "the command line's --root is backend = \"rootful\" in a profile"},
    {"profile", "a profile names its parent with extends = \"FILE\""},
    {"dump_profile", "--dump-profile exists only on the command line"},
};

/* One file of an extends chain. */
struct link {
	char *abs;   /* absolute path */
	char *shown; /* as named: on the command line, or in the child's extends */
	dev_t dev;
	ino_t ino;
	struct cf_config cfg;	  /* the keys this file sets */
	char *extends_as_written; /* for cycle messages */
	unsigned ext_line, ext_col;
};

struct chain {
	struct link *v;
	size_t n;
};

/* The file being parsed: where its messages and relative paths point. */
struct source {
	const char *file; /* name in messages */
	char *dir;	  /* absolute directory of the file */
	struct link *link;
	char *err;
	size_t errlen;
};

/* ---- fields ------------------------------------------------------------- */

static char **str_field(struct cf_config *c, enum cf_key k)
{
	return (char **)(void *)((char *)c + key_types[k].off);
}

static bool *bool_field(struct cf_config *c, enum cf_key k)
{
	return (bool *)(void *)((char *)c + key_types[k].off);
}

static struct cf_strv *strv_field(struct cf_config *c, enum cf_key k)
{
	return (struct cf_strv *)(void *)((char *)c + key_types[k].off);
}

static struct cf_cidrv *cidrv_field(struct cf_config *c, enum cf_key k)
{
	return (struct cf_cidrv *)(void *)((char *)c + key_types[k].off);
}

static void choice_store(struct cf_config *c, enum cf_key k, int v)
{
	switch (k) {
	case CF_KEY_BACKEND:
		c->backend = (enum cf_backend)v;
		break;
	case CF_KEY_CAPTURE_POINT:
		c->capture_point = (enum cf_capture_point)v;
		break;
	case CF_KEY_SUMMARY_FORMAT:
		c->summary_format = (enum cf_format)v;
		break;
	case CF_KEY_DOCTOR_FORMAT:
		c->doctor_format = (enum cf_format)v;
		break;
	case CF_KEY_REPORT_FORMAT:
		c->report_format = (enum cf_format)v;
		break;
	case CF_KEY_DEFAULT_POLICY:
		c->default_policy = (enum cf_default_policy)v;
		break;
	default:
		break;
	}
}

static int choice_value(const struct cf_config *c, enum cf_key k)
{
	switch (k) {
	case CF_KEY_BACKEND:
		return (int)c->backend;
	case CF_KEY_CAPTURE_POINT:
		return (int)c->capture_point;
	case CF_KEY_SUMMARY_FORMAT:
		return (int)c->summary_format;
	case CF_KEY_DOCTOR_FORMAT:
		return (int)c->doctor_format;
	case CF_KEY_REPORT_FORMAT:
		return (int)c->report_format;
	case CF_KEY_DEFAULT_POLICY:
		return (int)c->default_policy;
	default:
		return -1;
	}
}

/* ---- messages ----------------------------------------------------------- */

/* @s (@slen bytes) for a message: control characters as '?', cut after 80 bytes. */
static const char *shown_bytes(const char *s, size_t slen, char *buf, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < slen && n + 4 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (n >= 80 && (c & 0xC0) != 0x80) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		buf[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	buf[n] = '\0';
	return buf;
}

static const char *shown_value(const char *s, char *buf, size_t len)
{
	return shown_bytes(s, strlen(s), buf, len);
}

/*
 * Control characters of @err as '?': messages quote paths as a profile wrote
 * them, and a newline or an escape sequence must not reach the terminal.
 */
static void printable(char *err)
{
	for (; *err; err++)
		if ((unsigned char)*err < 0x20 || *err == 0x7f)
			*err = '?';
}

static int say(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int say(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return code;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	printable(err);
	return code;
}

static int oom(char *err, size_t errlen)
{
	return say(err, errlen, -ENOMEM, "out of memory");
}

/* "FILE:LINE:COL: key 'k': MESSAGE" about value @v. */
static int key_error(const struct source *s, const struct cf_toml_value *v, enum cf_key k,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int key_error(const struct source *s, const struct cf_toml_value *v, enum cf_key k,
		     const char *fmt, ...)
{
	int n;

	if (s->errlen == 0)
		return -EINVAL;
	n = snprintf(s->err, s->errlen, "%s:%u:%u: key '%s': ", s->file, v->line, v->column,
		     cf_key_name(k));
	if (n >= 0 && (size_t)n < s->errlen) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	printable(s->err);
	return -EINVAL;
}

/* "key 'k': WHAT 'VALUE'SUFFIX", the value made printable. */
static int value_error(const struct source *s, const struct cf_toml_value *v, enum cf_key k,
		       const char *what, const char *value, const char *suffix)
{
	char shown[128];

	return key_error(s, v, k, "%s '%s'%s", what, shown_value(value, shown, sizeof(shown)),
			 suffix);
}

static const char *with_article(enum cf_toml_kind k)
{
	switch (k) {
	case CF_TOML_STRING:
		return "a string";
	case CF_TOML_INTEGER:
		return "an integer";
	case CF_TOML_BOOLEAN:
		return "a boolean";
	case CF_TOML_ARRAY:
		return "an array";
	case CF_TOML_TABLE:
		return "a table";
	}
	return "a value";
}

static int type_error(const struct source *s, const struct cf_toml_value *v, enum cf_key k,
		      const char *expected)
{
	return key_error(s, v, k, "expected %s, got %s", expected, with_article(v->kind));
}

/* Edit distance of two short strings, capped at 9. */
static unsigned edit_distance(const char *a, size_t na, const char *b)
{
	unsigned row[32];
	size_t nb = strlen(b);

	if (na >= CF_ARRAY_SIZE(row) || nb >= CF_ARRAY_SIZE(row))
		return 9;
	for (size_t j = 0; j <= nb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= na; i++) {
		unsigned prev_diag = row[0];

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= nb; j++) {
			unsigned best = prev_diag + (a[i - 1] != b[j - 1]), tmp;

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev_diag = tmp;
		}
	}
	return row[nb] > 9 ? 9 : row[nb];
}

static int unknown_key(const struct source *s, const struct cf_toml_entry *e)
{
	char shown[128], hint[160] = "";
	unsigned best = 3;

	for (size_t i = 0; i < CF_ARRAY_SIZE(key_hints); i++) {
		if (strcmp(e->key, key_hints[i].key) == 0)
			snprintf(hint, sizeof(hint), " (%s)", key_hints[i].hint);
	}
	for (unsigned k = 0; k < CF_KEY__COUNT && !hint[0]; k++) {
		char norm[32];
		size_t n = e->key_len < sizeof(norm) ? e->key_len : sizeof(norm) - 1;
		unsigned d;

		/* "allow-cidr" is the option's spelling of allow_cidrs */
		for (size_t i = 0; i < n; i++)
			norm[i] = e->key[i] == '-' ? '_' : e->key[i];
		d = edit_distance(norm, n, cf_key_name((enum cf_key)k));
		if (d < best) {
			best = d;
			snprintf(hint, sizeof(hint), " (did you mean '%s'?)",
				 cf_key_name((enum cf_key)k));
		}
	}
	return say(s->err, s->errlen, -EINVAL, "%s:%u:%u: unknown key '%s'%s", s->file, e->line,
		   e->column, shown_bytes(e->key, e->key_len, shown, sizeof(shown)), hint);
}

/* ---- paths -------------------------------------------------------------- */

/* @path made absolute against @dir (NULL: the current directory); NULL on ENOMEM or getcwd failure.
 */
static char *absolute(const char *dir, const char *path)
{
	cleanup_free char *cwd = NULL;
	char *abs;

	if (path[0] == '/')
		return strdup(path);
	if (!dir) {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return NULL;
		dir = cwd;
	}
	while (path[0] == '.' && path[1] == '/')
		path += 2 + strspn(path + 2, "/");
	if (asprintf(&abs, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "",
		     strcmp(path, ".") ? path : "") < 0)
		return NULL;
	return abs;
}

/* The directory of absolute path @abs. */
static char *dir_of(const char *abs)
{
	const char *slash = strrchr(abs, '/');

	return strndup(abs, slash == abs ? 1 : (size_t)(slash - abs));
}

static int check_input_file(const struct source *s, const struct cf_toml_value *v, enum cf_key k,
			    const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || (S_ISREG(st.st_mode) && access(path, R_OK) < 0))
		return key_error(s, v, k, "cannot read '%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return key_error(s, v, k, "'%s' is not a regular file", path);
	return 0;
}

static int check_output_file(const struct source *s, const struct cf_toml_value *v, enum cf_key k,
			     const char *path)
{
	cleanup_free char *dir = NULL;
	struct stat st;

	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return key_error(s, v, k, "'%s' is a directory", path);
		if (access(path, W_OK) < 0)
			return key_error(s, v, k, "cannot write '%s': %s", path, strerror(errno));
		return 0;
	}
	dir = dir_of(path);
	if (!dir)
		return oom(s->err, s->errlen);
	if (stat(dir, &st) < 0 || (S_ISDIR(st.st_mode) && access(dir, W_OK | X_OK) < 0))
		return key_error(s, v, k, "cannot create '%s': directory '%s': %s", path, dir,
				 strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return key_error(s, v, k, "cannot create '%s': '%s' is not a directory", path, dir);
	return 0;
}

/* ---- values ------------------------------------------------------------- */

static int want_string(const struct source *s, const struct cf_toml_value *v, enum cf_key k,
		       const char **out)
{
	if (v->kind != CF_TOML_STRING)
		return type_error(s, v, k, "a string");
	if (strlen(v->u.str.s) != v->u.str.len)
		return key_error(s, v, k, "the string contains a NUL character (\\u0000)");
	*out = v->u.str.s;
	return 0;
}

static bool has_control_char(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

static int set_path(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	struct cf_config *c = &s->link->cfg;
	char **dst = str_field(c, k);
	const char *path;
	char *abs;
	int r;

	r = want_string(s, v, k, &path);
	if (r < 0)
		return r;
	if (!*path)
		return key_error(s, v, k, "empty path");
	if (path[0] == '~')
		return key_error(s, v, k,
				 "'~' is not expanded: write an absolute path, or one relative "
				 "to the profile's directory");
	abs = absolute(s->dir, path);
	if (!abs)
		return oom(s->err, s->errlen);
	if (key_types[k].type == T_PATH_IN)
		r = check_input_file(s, v, k, abs);
	else if (key_types[k].type == T_PATH_OUT)
		r = check_output_file(s, v, k, abs);
	if (r == 0 && key_types[k].type == T_EXTENDS) {
		s->link->extends_as_written = strdup(path);
		s->link->ext_line = v->line;
		s->link->ext_col = v->column;
		if (!s->link->extends_as_written)
			r = oom(s->err, s->errlen);
	}
	if (r < 0) {
		free(abs);
		return r;
	}
	free(*dst);
	*dst = abs;
	return 0;
}

static int set_choice(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	char list[128] = "", shown[128];
	const char *name;
	size_t n = 0;
	int r;

	r = want_string(s, v, k, &name);
	if (r < 0)
		return r;
	for (size_t i = 0; i < CF_ARRAY_SIZE(choices); i++) {
		if (choices[i].key != k)
			continue;
		if (strcmp(name, choices[i].name) == 0) {
			choice_store(&s->link->cfg, k, choices[i].value);
			return 0;
		}
		if (n < sizeof(list))
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "",
					      choices[i].name);
	}
	return key_error(s, v, k, "invalid value '%s' (expected one of: %s)",
			 shown_value(name, shown, sizeof(shown)), list);
}

static int set_bool(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	if (v->kind != CF_TOML_BOOLEAN)
		return type_error(s, v, k, "a boolean (true or false)");
	*bool_field(&s->link->cfg, k) = v->u.boolean;
	return 0;
}

static int set_dns(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	struct cf_config *c = &s->link->cfg;
	const char *ip;
	int r;

	r = want_string(s, v, k, &ip);
	if (r < 0)
		return r;
	if (cf_ip_parse(ip, &c->dns) < 0)
		return value_error(s, v, k, "invalid IP address", ip, "");
	c->dns_set = true;
	return 0;
}

static int set_proxy(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	struct cf_config *c = &s->link->cfg;
	struct cf_proxy p;
	const char *uri;
	char why[512];
	int r;

	r = want_string(s, v, k, &uri);
	if (r < 0)
		return r;
	r = cf_proxy_parse(uri, &p, why, sizeof(why));
	if (r == -ENOMEM)
		return oom(s->err, s->errlen);
	if (r < 0)
		return key_error(s, v, k, "%s", why);
	cf_proxy_free(&c->proxy);
	c->proxy = p;
	return 0;
}

/* proxy_user and proxy_password; the password is never quoted back. */
static int set_credential(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	bool user = key_types[k].type == T_USER;
	char **dst = str_field(&s->link->cfg, k);
	const char *str;
	char *copy;
	int r;

	r = want_string(s, v, k, &str);
	if (r < 0)
		return r;
	if (user && !*str)
		return key_error(s, v, k, "empty user name");
	if (has_control_char(str))
		return user ? value_error(s, v, k, "control characters in user name", str, "")
			    : key_error(s, v, k, "the password contains control characters");
	copy = strdup(str);
	if (!copy)
		return oom(s->err, s->errlen);
	*dst = copy; /* the reader rejects duplicate keys: *dst was NULL */
	return 0;
}

_Static_assert(IFNAMSIZ == 16, "interface names are 1-15 characters");

/* An interface name the kernel would accept (dev_valid_name()), as for --iface. */
static int set_iface(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	char **dst = str_field(&s->link->cfg, k);
	const char *name;
	size_t n;
	int r;

	r = want_string(s, v, k, &name);
	if (r < 0)
		return r;
	n = strlen(name);
	if (n == 0 || n >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, "..") ||
	    strpbrk(name, "/: \t\n\v\f\r") || has_control_char(name))
		return value_error(s, v, k, "invalid interface name", name,
				   " (1-15 characters, no '/', ':' or spaces)");
	free(*dst);
	*dst = strdup(name);
	return *dst ? 0 : oom(s->err, s->errlen);
}

/* Check one element of a list key and append it to the key's field. */
static int add_element(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	struct cf_config *c = &s->link->cfg;
	cleanup_free char *name = NULL;
	char shown[128];
	struct cf_cidr cidr;
	const char *str;
	int r;

	if (v->kind != CF_TOML_STRING)
		return key_error(s, v, k, "expected an array of strings, found %s in it",
				 with_article(v->kind));
	r = want_string(s, v, k, &str);
	if (r < 0)
		return r;
	switch (key_types[k].type) {
	case T_CIDRS:
		if (cf_cidr_parse(str, &cidr) < 0)
			return key_error(s, v, k, "invalid CIDR '%s'",
					 shown_value(str, shown, sizeof(shown)));
		r = cf_cidrv_push(cidrv_field(c, k), &cidr);
		break;
	case T_DOMAINS:
		name = strdup(str);
		if (!name)
			return oom(s->err, s->errlen);
		if (cf_domain_normalise(name) < 0)
			return key_error(s, v, k, "invalid domain '%s'",
					 shown_value(str, shown, sizeof(shown)));
		r = cf_strv_push(strv_field(c, k), name);
		break;
	default:
		r = cf_strv_push(strv_field(c, k), str);
		break;
	}
	return r < 0 ? oom(s->err, s->errlen) : 0;
}

/* A list key: the reader rejects duplicate keys, so the field is still empty here. */
static int set_list(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	if (v->kind != CF_TOML_ARRAY)
		return type_error(s, v, k, "an array of strings");
	for (size_t i = 0; i < v->u.array.n; i++) {
		int r = add_element(s, v->u.array.v[i], k);

		if (r < 0)
			return r;
	}
	return 0;
}

static int set_key(struct source *s, const struct cf_toml_entry *e, enum cf_key k)
{
	int r;

	switch (key_types[k].type) {
	case T_EXTENDS:
	case T_PATH_IN:
	case T_PATH_OUT:
		r = set_path(s, e->value, k);
		break;
	case T_CHOICE:
		r = set_choice(s, e->value, k);
		break;
	case T_BOOL:
		r = set_bool(s, e->value, k);
		break;
	case T_IP:
		r = set_dns(s, e->value, k);
		break;
	case T_PROXY:
		r = set_proxy(s, e->value, k);
		break;
	case T_USER:
	case T_PASSWORD:
		r = set_credential(s, e->value, k);
		break;
	case T_IFACE:
		r = set_iface(s, e->value, k);
		break;
	case T_COMMAND:
	case T_CIDRS:
	case T_DOMAINS:
		r = set_list(s, e->value, k);
		break;
	default:
		r = -EINVAL;
		break;
	}
	if (r == 0)
		s->link->cfg.set |= CF_KEY_BIT(k);
	return r;
}

static int key_of(const struct cf_toml_entry *e, enum cf_key *k)
{
	for (unsigned i = 0; i < CF_KEY__COUNT; i++) {
		if (strlen(cf_key_name((enum cf_key)i)) == e->key_len &&
		    strcmp(e->key, cf_key_name((enum cf_key)i)) == 0) {
			*k = (enum cf_key)i;
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- loading ------------------------------------------------------------ */

/* Read the regular file @path (at most CF_PROFILE_MAX_SIZE bytes). */
static int read_profile(const char *path, char **text, size_t *len, struct stat *st)
{
	cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	cleanup_free char *buf = NULL;
	size_t n = 0;

	if (fd < 0 || fstat(fd, st) < 0)
		return -errno;
	if (S_ISDIR(st->st_mode))
		return -EISDIR;
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	if ((uint64_t)st->st_size > CF_PROFILE_MAX_SIZE)
		return -EFBIG;
	buf = malloc(CF_PROFILE_MAX_SIZE + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t got = read(fd, buf + n, CF_PROFILE_MAX_SIZE + 1 - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > CF_PROFILE_MAX_SIZE)
			return -EFBIG;
	}
	*text = take_ptr(&buf);
	*len = n;
	return 0;
}

static const char *read_error_text(int r)
{
	if (r == -EINVAL)
		return "not a regular file";
	if (r == -EFBIG)
		return "larger than 1 MiB, not a profile";
	return strerror(-r);
}

/* Overwrite the strings that may hold a password before the tree is freed. */
static void wipe_secrets(struct cf_toml_value *root)
{
	for (size_t i = 0; i < root->u.table.n; i++) {
		struct cf_toml_value *v = root->u.table.v[i].value;
		enum cf_key k;

		if (key_of(&root->u.table.v[i], &k) == 0 &&
		    (k == CF_KEY_PROXY || k == CF_KEY_PROXY_PASSWORD) && v->kind == CF_TOML_STRING)
			explicit_bzero(v->u.str.s, v->u.str.len);
	}
}

/* Parse @text into @l->cfg; @file names it in messages. */
static int parse_profile(struct link *l, const char *file, const char *text, size_t len, char *err,
			 size_t errlen)
{
	struct source s = {.file = file, .link = l, .err = err, .errlen = errlen};
	struct cf_toml_value *root = NULL;
	struct cf_toml_error te;
	int r;

	r = cf_toml_parse(text, len, &root, &te);
	if (r == -ENOMEM)
		return oom(err, errlen);
	if (r < 0)
		return say(err, errlen, -EINVAL, "%s:%u:%u: %s", file, te.line, te.column, te.msg);
	s.dir = dir_of(l->abs);
	if (!s.dir)
		r = oom(err, errlen);
	for (size_t i = 0; r == 0 && i < root->u.table.n; i++) {
		const struct cf_toml_entry *e = &root->u.table.v[i];
		enum cf_key k;

		r = key_of(e, &k) < 0 ? unknown_key(&s, e) : set_key(&s, e, k);
	}
	wipe_secrets(root);
	free(s.dir);
	cf_toml_free(root);
	return r;
}

static struct link *chain_add(struct chain *ch)
{
	struct link *v = reallocarray(ch->v, ch->n + 1, sizeof(*v));

	if (!v)
		return NULL;
	ch->v = v;
	v = &ch->v[ch->n++];
	memset(v, 0, sizeof(*v));
	cf_config_init(&v->cfg);
	return v;
}

static void chain_free(struct chain *ch)
{
	for (size_t i = 0; i < ch->n; i++) {
		free(ch->v[i].abs);
		free(ch->v[i].shown);
		free(ch->v[i].extends_as_written);
		cf_config_free(&ch->v[i].cfg);
	}
	free(ch->v);
	*ch = (struct chain){0};
}

/* The name of link @i in messages: as given for the first, absolute for parents. */
static const char *message_name(const struct chain *ch, size_t i)
{
	return i == 0 ? ch->v[0].shown : ch->v[i].abs;
}

static int cycle_error(const struct chain *ch, char *err, size_t errlen)
{
	const struct link *child = &ch->v[ch->n - 2];
	size_t n;

	n = (size_t)snprintf(err, errlen, "%s:%u:%u: extends cycle: ", message_name(ch, ch->n - 2),
			     child->ext_line, child->ext_col);
	for (size_t i = 0; i < ch->n && n < errlen; i++)
		n += (size_t)snprintf(err + n, errlen - n, "%s%s", i ? " -> " : "", ch->v[i].shown);
	printable(err);
	return -EINVAL;
}

/* Read link @ch->v[ch->n - 1] (abs and shown set) and check it closes no cycle. */
static int load_link(struct chain *ch, char *err, size_t errlen)
{
	size_t i = ch->n - 1;
	struct link *l = &ch->v[i];
	cleanup_free char *text = NULL;
	struct stat st;
	size_t len = 0;
	int r;

	r = read_profile(l->abs, &text, &len, &st);
	if (r < 0 && i == 0)
		return say(err, errlen, r == -ENOMEM ? -ENOMEM : r, "%s: cannot read profile: %s",
			   l->shown, read_error_text(r));
	if (r < 0)
		return say(err, errlen, r == -ENOMEM ? -ENOMEM : -EINVAL,
			   "%s:%u:%u: key 'extends': cannot read '%s': %s", message_name(ch, i - 1),
			   ch->v[i - 1].ext_line, ch->v[i - 1].ext_col, l->abs, read_error_text(r));
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	for (size_t j = 0; j < i; j++) {
		if (ch->v[j].dev == l->dev && ch->v[j].ino == l->ino)
			return errlen ? cycle_error(ch, err, errlen) : -EINVAL;
	}
	r = parse_profile(l, message_name(ch, i), text, len, err, errlen);
	if (text)
		explicit_bzero(text, len); /* it may hold a password */
	return r;
}

static int load_chain(const char *path, struct chain *ch, char *err, size_t errlen)
{
	const char *shown = path;
	char *abs = absolute(NULL, path);

	for (;;) {
		struct link *l;
		int r;

		if (!abs)
			return errno == ENOMEM
				   ? oom(err, errlen)
				   : say(err, errlen, -errno, "%s: cannot read profile: %s", path,
					 strerror(errno));
		l = chain_add(ch);
		if (!l) {
			free(abs);
			return oom(err, errlen);
		}
		l->abs = abs;
		l->shown = strdup(shown);
		if (!l->shown)
			return oom(err, errlen);
		r = load_link(ch, err, errlen);
		if (r < 0 || !l->cfg.extends)
			return r;
		abs = strdup(l->cfg.extends);
		shown = l->extends_as_written;
		if (!abs)
			errno = ENOMEM;
	}
}

int cf_profile_load(const char *path, struct cf_config *out, char *err, size_t errlen)
{
	struct chain ch = {0};
	int r;

	cf_config_init(out);
	if (errlen)
		err[0] = '\0';
	r = load_chain(path, &ch, err, errlen);
	for (size_t i = ch.n; r == 0 && i-- > 0;)
		r = cf_config_overlay(out, &ch.v[i].cfg) < 0 ? oom(err, errlen) : 0;
	chain_free(&ch);
	if (r < 0)
		cf_config_free(out);
	return r;
}

/* ---- dumping ------------------------------------------------------------ */

static int put_string(FILE *f, const char *s)
{
	return cf_toml_write_string(f, s, strlen(s));
}

static int dump_not_set(FILE *f, enum cf_key k, const char *why)
{
	return fprintf(f, "# %s: not set%s\n", cf_key_name(k), why) < 0 ? -EIO : 0;
}

static int dump_string(FILE *f, enum cf_key k, const char *value)
{
	int r;

	if (fprintf(f, "%s = ", cf_key_name(k)) < 0)
		return -EIO;
	r = put_string(f, value);
	if (r < 0)
		return r;
	return putc('\n', f) == EOF ? -EIO : 0;
}

/* "key = [" of a list of @n elements, one per line. */
static int dump_list_open(FILE *f, enum cf_key k, size_t n)
{
	return fprintf(f, "%s = [%s", cf_key_name(k), n ? "\n" : "") < 0 ? -EIO : 0;
}

static int dump_list_item(FILE *f, const char *s)
{
	int r;

	if (fputs("    ", f) == EOF)
		return -EIO;
	r = put_string(f, s);
	if (r == 0 && fputs(",\n", f) == EOF)
		r = -EIO;
	return r;
}

static int dump_cidrs(FILE *f, enum cf_key k, const struct cf_cidrv *cidrs)
{
	char buf[CF_IP_STRLEN + 8];
	int r = dump_list_open(f, k, cidrs->n);

	for (size_t i = 0; i < cidrs->n && r == 0; i++)
		r = dump_list_item(f, cf_cidr_format(&cidrs->v[i], buf, sizeof(buf)));
	if (r == 0 && fputs("]\n", f) == EOF)
		r = -EIO;
	return r;
}

static int dump_strings(FILE *f, enum cf_key k, const struct cf_strv *strv)
{
	int r = dump_list_open(f, k, strv->n);

	for (size_t i = 0; i < strv->n && r == 0; i++)
		r = dump_list_item(f, strv->v[i]);
	if (r == 0 && fputs("]\n", f) == EOF)
		r = -EIO;
	return r;
}

static int dump_command(FILE *f, const struct cf_strv *cmd)
{
	int r = 0;

	if (fprintf(f, "%s = [", cf_key_name(CF_KEY_COMMAND)) < 0)
		return -EIO;
	for (size_t i = 0; i < cmd->n && r == 0; i++) {
		if (i && fputs(", ", f) == EOF)
			return -EIO;
		r = put_string(f, cmd->v[i]);
	}
	if (r == 0 && fputs("]\n", f) == EOF)
		r = -EIO;
	return r;
}

static int dump_proxy(FILE *f, const struct cf_proxy *p, bool show_secrets)
{
	size_t len = 64 + strlen(p->host) +
		     3 * (strlen(p->user ? p->user : "") + strlen(p->password ? p->password : ""));
	cleanup_free char *buf = malloc(len);
	int r;

	if (!buf)
		return -ENOMEM;
	r = cf_proxy_format(p, !show_secrets, buf, len);
	if (r >= 0)
		r = dump_string(f, CF_KEY_PROXY, buf);
	explicit_bzero(buf, len);
	return r == -ENOSPC ? -ENOMEM : r;
}

static int dump_choice(FILE *f, const struct cf_config *c, enum cf_key k)
{
	int v = choice_value(c, k);

	for (size_t i = 0; i < CF_ARRAY_SIZE(choices); i++) {
		if (choices[i].key == k && choices[i].value == v)
			return dump_string(f, k, choices[i].name);
	}
	return -EINVAL;
}

static int dump_key(FILE *f, const struct cf_config *c, enum cf_key k, bool show_secrets)
{
	struct cf_config *m = (struct cf_config *)c; /* the field helpers only compute addresses */
	char buf[CF_IP_STRLEN];
	const char *s;
	int r;

	switch (key_types[k].type) {
	case T_EXTENDS:
		if (!c->extends)
			return dump_not_set(f, k, "");
		if (fputs("# extends = ", f) == EOF)
			return -EIO;
		r = put_string(f, c->extends);
		if (r < 0)
			return r;
		return fputs("  (already merged into the values below)\n", f) == EOF ? -EIO : 0;
	case T_PATH_IN:
	case T_PATH_OUT:
	case T_USER:
	case T_IFACE:
		s = *str_field(m, k);
		return s ? dump_string(f, k, s) : dump_not_set(f, k, "");
	case T_PASSWORD:
		s = *str_field(m, k);
		if (!s)
			return dump_not_set(f, k, "");
		return dump_string(f, k, show_secrets ? s : CF_PROFILE_MASK);
	case T_CHOICE:
		return dump_choice(f, c, k);
	case T_BOOL:
		return fprintf(f, "%s = %s\n", cf_key_name(k),
			       *bool_field(m, k) ? "true" : "false") < 0
			   ? -EIO
			   : 0;
	case T_IP:
		if (!c->dns_set)
			return dump_not_set(f, k, " (the host's resolvers)");
		return dump_string(f, k, cf_ip_format(&c->dns, buf, sizeof(buf)));
	case T_PROXY:
		if (c->proxy.scheme == CF_PROXY_NONE || !c->proxy.host)
			return dump_not_set(f, k, " (direct connections)");
		return dump_proxy(f, &c->proxy, show_secrets);
	case T_COMMAND:
		return dump_command(f, &c->command);
	case T_CIDRS:
		return dump_cidrs(f, k, cidrv_field(m, k));
	case T_DOMAINS:
		return dump_strings(f, k, strv_field(m, k));
	}
	return -EINVAL;
}

static int dump_header(FILE *f, const struct cf_config *c, bool show_secrets)
{
	bool secrets = c->proxy_password || c->proxy.password;
	int r;

	r = fputs("# childflow effective configuration (--dump-profile): every setting after\n"
		  "# merging profiles, command line and defaults; paths are absolute.\n"
		  "# Settings without a value are shown as comments.\n",
		  f);
	if (r != EOF && secrets && !show_secrets)
		r = fputs("# Passwords are masked (\"" CF_PROFILE_MASK
			  "\", \"***\" in the proxy URI): "
			  "loading this\n# dump does not give back the real password.\n",
			  f);
	if (r != EOF && secrets && show_secrets)
		r = fputs("# This dump contains passwords: keep it private.\n", f);
	return r == EOF ? -EIO : 0;
}

int cf_profile_dump(const struct cf_config *c, bool show_secrets, FILE *out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m;
	int r;

	m = open_memstream(&buf, &len);
	if (!m)
		return -ENOMEM;
	r = dump_header(m, c, show_secrets);
	for (unsigned k = 0; r == 0 && k < CF_KEY__COUNT; k++)
		r = dump_key(m, c, (enum cf_key)k, show_secrets);
	if (fclose(m) != 0 && r == 0)
		r = -ENOMEM;
	if (r == -EIO)
		r = -ENOMEM; /* so far, only writes into memory failed */
	if (r == 0 && fwrite(buf, 1, len, out) != len)
		r = -EIO;
	if (buf)
		explicit_bzero(buf, len);
	free(buf);
	return r;
}
