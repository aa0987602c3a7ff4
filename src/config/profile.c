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
 * Every key is a row of config/settings.def; its type says the TOML shape
 * (string, boolean, array of strings), and each value is checked and stored
 * by cf_setting_set(), the very code the command line uses. Every error
 * names the file, line, column and key.
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
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/proxyuri.h"
#include "config/settings.h"
#include "config/toml.h"
#include "net/addr.h"
#include "util/cleanup.h"

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

/* ---- messages ----------------------------------------------------------- */

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
		   e->column, cf_setting_shown(e->key, e->key_len, shown, sizeof(shown)), hint);
}

/* ---- paths -------------------------------------------------------------- */

/* The directory of absolute path @abs. */
static char *dir_of(const char *abs)
{
	const char *slash = strrchr(abs, '/');

	return strndup(abs, slash == abs ? 1 : (size_t)(slash - abs));
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

/* Check and store one string of key @k with the code the command line shares. */
static int set_string(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	struct cf_value_src src = {.cli = false, .dir = s->dir};
	char why[PATH_MAX + 256];
	const char *str = NULL;
	int r;

	r = want_string(s, v, k, &str);
	if (r < 0)
		return r;
	r = cf_setting_set(&s->link->cfg, k, str, &src, why, sizeof(why));
	if (r == -ENOMEM)
		return oom(s->err, s->errlen);
	return r < 0 ? key_error(s, v, k, "%s", why) : 0;
}

/* extends: also remember how it was written and where, for cycle messages. */
static int set_extends(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	struct link *l = s->link;
	int r = set_string(s, v, k);

	if (r < 0)
		return r;
	l->extends_as_written = strdup(v->u.str.s);
	l->ext_line = v->line;
	l->ext_col = v->column;
	return l->extends_as_written ? 0 : oom(s->err, s->errlen);
}

static int set_bool(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	if (v->kind != CF_TOML_BOOLEAN)
		return type_error(s, v, k, "a boolean (true or false)");
	cf_setting_set_bool(&s->link->cfg, k, v->u.boolean);
	return 0;
}

/* A list key: the reader rejects duplicate keys, so the field is still empty here. */
static int set_list(struct source *s, const struct cf_toml_value *v, enum cf_key k)
{
	if (v->kind != CF_TOML_ARRAY)
		return type_error(s, v, k, "an array of strings");
	for (size_t i = 0; i < v->u.array.n; i++) {
		const struct cf_toml_value *e = v->u.array.v[i];
		int r;

		if (e->kind != CF_TOML_STRING)
			return key_error(s, e, k, "expected an array of strings, found %s in it",
					 with_article(e->kind));
		r = set_string(s, e, k);
		if (r < 0)
			return r;
	}
	return 0;
}

static int set_key(struct source *s, const struct cf_toml_entry *e, enum cf_key k)
{
	int r;

	switch (cf_settings[k].type) {
	case CF_T_BOOL:
		r = set_bool(s, e->value, k);
		break;
	case CF_T_EXTENDS:
		r = set_extends(s, e->value, k);
		break;
	case CF_T_COMMAND:
	case CF_T_CIDRS:
	case CF_T_DOMAINS:
	case CF_T_HOST_PORTS:
	case CF_T_PATHS:
	case CF_T_PUBLISH:
		r = set_list(s, e->value, k);
		break;
	default:
		r = set_string(s, e->value, k);
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
		    (cf_settings[k].type == CF_T_PROXY || cf_settings[k].type == CF_T_PASSWORD) &&
		    v->kind == CF_TOML_STRING)
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
	char *abs = cf_path_absolute(NULL, path);

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
	return cf_profile_load_files(path, out, NULL, err, errlen);
}

int cf_profile_load_files(const char *path, struct cf_config *out, struct cf_strv *files, char *err,
			  size_t errlen)
{
	struct chain ch = {0};
	int r;

	cf_config_init(out);
	if (errlen)
		err[0] = '\0';
	r = load_chain(path, &ch, err, errlen);
	for (size_t i = ch.n; r == 0 && i-- > 0;)
		r = cf_config_overlay(out, &ch.v[i].cfg) < 0 ? oom(err, errlen) : 0;
	for (size_t i = 0; r == 0 && files && i < ch.n; i++)
		r = cf_strv_push(files, ch.v[i].abs) < 0 ? oom(err, errlen) : 0;
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
	const char *name = cf_setting_choice(k, *(const int *)cf_setting_field(c, k));

	return name ? dump_string(f, k, name) : -EINVAL;
}

static int dump_key(FILE *f, const struct cf_config *c, enum cf_key k, bool show_secrets)
{
	const void *field = cf_setting_field(c, k);
	char buf[CF_IP_STRLEN];
	const char *s;
	int r;

	switch (cf_settings[k].type) {
	case CF_T_EXTENDS:
		if (!c->extends)
			return dump_not_set(f, k, "");
		if (fputs("# extends = ", f) == EOF)
			return -EIO;
		r = put_string(f, c->extends);
		if (r < 0)
			return r;
		return fputs("  (already merged into the values below)\n", f) == EOF ? -EIO : 0;
	case CF_T_PATH_IN:
	case CF_T_PATH_OUT:
	case CF_T_USER:
	case CF_T_TREE_USER:
	case CF_T_IFACE:
		s = *(char *const *)field;
		if (!s && cf_settings[k].type == CF_T_TREE_USER)
			return dump_not_set(f, k, " (the caller; for root: SUDO_UID, else nobody)");
		return s ? dump_string(f, k, s) : dump_not_set(f, k, "");
	case CF_T_RATE:
		if (!*(const uint64_t *)field)
			return dump_not_set(f, k, " (no limit)");
		return dump_string(f, k,
				   cf_rate_format(*(const uint64_t *)field, buf, sizeof(buf)));
	case CF_T_PASSWORD:
		s = *(char *const *)field;
		if (!s)
			return dump_not_set(f, k, "");
		return dump_string(f, k, show_secrets ? s : CF_PROFILE_MASK);
	case CF_T_CHOICE:
		return dump_choice(f, c, k);
	case CF_T_BOOL:
		return fprintf(f, "%s = %s\n", cf_key_name(k),
			       *(const bool *)field ? "true" : "false") < 0
			   ? -EIO
			   : 0;
	case CF_T_IP:
		if (!c->dns_set)
			return dump_not_set(f, k, " (the host's resolvers)");
		return dump_string(f, k, cf_ip_format(&c->dns, buf, sizeof(buf)));
	case CF_T_PROXY:
		if (c->proxy.scheme == CF_PROXY_NONE || !c->proxy.host)
			return dump_not_set(f, k, " (direct connections)");
		return dump_proxy(f, &c->proxy, show_secrets);
	case CF_T_COMMAND:
		return dump_command(f, &c->command);
	case CF_T_CIDRS:
		return dump_cidrs(f, k, field);
	case CF_T_DOMAINS:
	case CF_T_HOST_PORTS:
	case CF_T_PATHS:
	case CF_T_PUBLISH:
		return dump_strings(f, k, field);
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
