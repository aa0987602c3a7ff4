// SPDX-License-Identifier: MIT
/*
 * The key table generated from settings.def, and the code every source of
 * values shares, one function per type: a CIDR is parsed, a domain
 * normalised and a path checked here only, for the command line and for
 * profiles alike. Messages are the same for both, except that the command
 * line quotes a value as typed while a profile's is made printable, and
 * that a few command-line messages carry a longer hint.
 */
#include "config/settings.h"

#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/proxyuri.h"
#include "net/addr.h"
#include "util/cleanup.h"

/* CHOICE fields are enums written through an int. */
_Static_assert(sizeof(enum cf_backend) == sizeof(int) &&
		   sizeof(enum cf_capture_point) == sizeof(int) &&
		   sizeof(enum cf_format) == sizeof(int) &&
		   sizeof(enum cf_default_policy) == sizeof(int) &&
		   sizeof(enum cf_tcp_path) == sizeof(int),
	       "choice fields are int-sized");
_Static_assert(CF_KEY__COUNT <= 64, "keys are bits of a uint64_t");
_Static_assert(IFNAMSIZ == 16, "interface names are 1-15 characters");

#define SETTING(...)
#define KEY_ONLY(...)
#define CLI_ONLY(...)
#define CHOICES(name, ...) static const struct cf_choice name[] = {__VA_ARGS__, {NULL, 0}};
#include "config/settings.def"

#define KEY_ROW(id, key, lng, type, field, choices, def, ctl, help)                                \
	[CF_KEY_##id] = {key,	  lng, CF_T_##type, offsetof(struct cf_config, field),             \
			 choices, def, ctl,	    help},
#define SETTING(id, key, lng, shrt, type, field, choices, def, metavar, group, ctl, help)          \
	KEY_ROW(id, key, lng, type, field, choices, def, ctl, help)
#define KEY_ONLY(id, key, lng, shrt, type, field, choices, def, metavar, group, ctl, help)         \
	KEY_ROW(id, key, NULL, type, field, choices, def, ctl, help)
#define CLI_ONLY(...)
#define CHOICES(...)
const struct cf_setting cf_settings[CF_KEY__COUNT] = {
#include "config/settings.def"
};
#undef KEY_ROW

const char *cf_key_name(enum cf_key k)
{
	if ((unsigned int)k >= CF_KEY__COUNT)
		return "?";
	return cf_settings[k].name;
}

/* ---- messages ----------------------------------------------------------- */

const char *cf_setting_shown(const char *s, size_t slen, char *buf, size_t len)
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

/* @v as a message quotes it: as typed on the command line, printable from a profile. */
static const char *shown(const struct cf_value_src *src, const char *v, char *buf, size_t len)
{
	return src->cli ? v : cf_setting_shown(v, strlen(v), buf, len);
}

__attribute__((format(printf, 3, 4))) static int invalid(char *why, size_t whylen, const char *fmt,
							 ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (whylen)
		vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* ---- paths -------------------------------------------------------------- */

/* @path made absolute against @dir (NULL: the current directory); NULL with errno on failure. */
char *cf_path_absolute(const char *dir, const char *path)
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
		     strcmp(path, ".") ? path : "") < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return abs;
}

static int check_input_file(const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (stat(path, &st) < 0 || (S_ISREG(st.st_mode) && access(path, R_OK) < 0))
		return invalid(why, whylen, "cannot read '%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return invalid(why, whylen, "'%s' is not a regular file", path);
	return 0;
}

/* An output file: its directory must exist and be writable; it may exist as a file. */
static int check_output_file(const char *path, char *why, size_t whylen)
{
	cleanup_free char *dir = NULL;
	const char *slash;
	struct stat st;

	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return invalid(why, whylen, "'%s' is a directory", path);
		if (access(path, W_OK) < 0)
			return invalid(why, whylen, "cannot write '%s': %s", path, strerror(errno));
		return 0;
	}
	slash = strrchr(path, '/');
	dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return -ENOMEM;
	if (stat(dir, &st) < 0 || (S_ISDIR(st.st_mode) && access(dir, W_OK | X_OK) < 0))
		return invalid(why, whylen, "cannot create '%s': directory '%s': %s", path, dir,
			       strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return invalid(why, whylen, "cannot create '%s': '%s' is not a directory", path,
			       dir);
	return 0;
}

int cf_setting_check_path(enum cf_setting_type type, const char *path, char *why, size_t whylen)
{
	if (type == CF_T_PATH_IN)
		return check_input_file(path, why, whylen);
	if (type == CF_T_PATH_OUT)
		return check_output_file(path, why, whylen);
	return 0;
}

/*
 * A path, stored absolute. The command line's paths are checked as typed
 * (so messages show them so) against the current directory; a profile's
 * are resolved against its directory first, and '~' is refused there
 * because no shell expanded it.
 */
static int set_path(struct cf_config *c, enum cf_key k, const char *value,
		    const struct cf_value_src *src, char *why, size_t whylen)
{
	char **dst = cf_setting_field(c, k);
	char *abs;
	int r;

	if (!*value)
		return invalid(why, whylen, src->cli ? "empty file name" : "empty path");
	if (!src->cli && value[0] == '~')
		return invalid(why, whylen,
			       "'~' is not expanded: write an absolute path, or one relative "
			       "to the profile's directory");
	abs = cf_path_absolute(src->cli ? NULL : src->dir, value);
	if (!abs)
		return errno == ENOMEM ? -ENOMEM
				       : invalid(why, whylen, "cannot resolve '%s': %s", value,
						 strerror(errno));
	r = cf_setting_check_path(cf_settings[k].type, src->cli ? value : abs, why, whylen);
	if (r < 0) {
		free(abs);
		return r;
	}
	free(*dst);
	*dst = abs;
	return 0;
}

/* ---- scalars ------------------------------------------------------------ */

static int set_choice(struct cf_config *c, enum cf_key k, const char *value,
		      const struct cf_value_src *src, char *why, size_t whylen)
{
	char list[128] = "", buf[128];
	size_t pos = 0;

	for (const struct cf_choice *ch = cf_settings[k].choices; ch->name; ch++) {
		if (strcmp(value, ch->name) == 0) {
			*(int *)cf_setting_field(c, k) = ch->value;
			return 0;
		}
	}
	for (const struct cf_choice *ch = cf_settings[k].choices; ch->name && pos < sizeof(list);
	     ch++) {
		int n = snprintf(list + pos, sizeof(list) - pos, "%s%s", pos ? ", " : "", ch->name);

		if (n < 0)
			break;
		pos += (size_t)n;
	}
	return invalid(why, whylen, "invalid value '%s' (expected one of: %s)",
		       shown(src, value, buf, sizeof(buf)), list);
}

const char *cf_setting_choice(enum cf_key k, int value)
{
	for (const struct cf_choice *ch = cf_settings[k].choices; ch && ch->name; ch++)
		if (ch->value == value)
			return ch->name;
	return NULL;
}

static int set_ip(struct cf_config *c, const char *value, const struct cf_value_src *src, char *why,
		  size_t whylen)
{
	char buf[128];

	if (cf_ip_parse(value, &c->dns) < 0)
		return invalid(why, whylen, "invalid IP address '%s'",
			       shown(src, value, buf, sizeof(buf)));
	c->dns_set = true;
	return 0;
}

static int set_proxy(struct cf_config *c, const char *value, char *why, size_t whylen)
{
	char reason[512];
	struct cf_proxy p;
	int r;

	r = cf_proxy_parse(value, &p, reason, sizeof(reason));
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return invalid(why, whylen, "%s", reason);
	cf_proxy_free(&c->proxy);
	c->proxy = p;
	return 0;
}

/* A user name or a password; the password is never quoted back. */
static int set_credential(struct cf_config *c, enum cf_key k, const char *value,
			  const struct cf_value_src *src, char *why, size_t whylen)
{
	bool user = cf_settings[k].type == CF_T_USER;
	char **dst = cf_setting_field(c, k);
	char buf[128], *copy;

	if (user && !*value)
		return invalid(why, whylen, "empty user name");
	if (has_control_char(value))
		return user ? invalid(why, whylen, "control characters in user name '%s'",
				      shown(src, value, buf, sizeof(buf)))
			    : invalid(why, whylen, "the password contains control characters");
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	if (user)
		free(*dst);
	else
		free_secret(*dst);
	*dst = copy;
	return 0;
}

/* --user: a name or a UID, looked up when the run starts (sandbox/treeuser.c); only its form here.
 */
static int set_tree_user(struct cf_config *c, enum cf_key k, const char *value, char *why,
			 size_t whylen)
{
	char **dst = cf_setting_field(c, k);
	char *copy;

	if (!*value)
		return invalid(why, whylen, "empty user name (give a name or a UID)");
	if (has_control_char(value))
		return invalid(why, whylen, "control characters in the user name");
	if (strlen(value) > 256)
		return invalid(why, whylen, "user name of over 256 bytes");
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

/* An interface name the kernel would accept (dev_valid_name()). */
static int set_iface(struct cf_config *c, enum cf_key k, const char *value,
		     const struct cf_value_src *src, char *why, size_t whylen)
{
	char **dst = cf_setting_field(c, k);
	size_t n = strlen(value);
	char buf[128], *copy;

	if (n == 0 || n >= IFNAMSIZ || !strcmp(value, ".") || !strcmp(value, "..") ||
	    strpbrk(value, "/: \t\n\v\f\r") || has_control_char(value))
		return invalid(why, whylen,
			       "invalid interface name '%s' (1-%d characters, no '/', ':' or "
			       "spaces)",
			       shown(src, value, buf, sizeof(buf)), IFNAMSIZ - 1);
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

int cf_rate_parse(const char *s, uint64_t *bps)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (!(*p >= '0' && *p <= '9'))
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > CF_RATE_MAX)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p == 'k')
		mul = 1000;
	else if (*p == 'M')
		mul = 1000000;
	else if (*p == 'G')
		mul = 1000000000;
	if (mul != 1)
		p++;
	if (*p || v > CF_RATE_MAX / mul || v * mul < CF_RATE_MIN)
		return -EINVAL;
	*bps = v * mul;
	return 0;
}

const char *cf_rate_format(uint64_t bps, char *buf, size_t len)
{
	if (bps && bps % 1000000000 == 0)
		snprintf(buf, len, "%" PRIu64 "G", bps / 1000000000);
	else if (bps && bps % 1000000 == 0)
		snprintf(buf, len, "%" PRIu64 "M", bps / 1000000);
	else if (bps && bps % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 "k", bps / 1000);
	else
		snprintf(buf, len, "%" PRIu64, bps);
	return buf;
}

/* Bits per second with an SI suffix. */
static int set_rate(struct cf_config *c, enum cf_key k, const char *value,
		    const struct cf_value_src *src, char *why, size_t whylen)
{
	char buf[128];

	if (cf_rate_parse(value, cf_setting_field(c, k)) < 0)
		return invalid(why, whylen,
			       "invalid rate '%s' (bits per second with an optional k, M or G, "
			       "e.g. 20M; at least 8k)",
			       shown(src, value, buf, sizeof(buf)));
	return 0;
}

/* ---- list elements ------------------------------------------------------ */

static int add_cidr(struct cf_config *c, enum cf_key k, const char *value,
		    const struct cf_value_src *src, char *why, size_t whylen)
{
	struct cf_cidr cidr;
	char buf[128];

	if (cf_cidr_parse(value, &cidr) < 0)
		return invalid(why, whylen, "invalid CIDR '%s'",
			       shown(src, value, buf, sizeof(buf)));
	return cf_cidrv_push(cf_setting_field(c, k), &cidr);
}

static int add_domain(struct cf_config *c, enum cf_key k, const char *value,
		      const struct cf_value_src *src, char *why, size_t whylen)
{
	cleanup_free char *name = strdup(value);
	char buf[128];

	if (!name)
		return -ENOMEM;
	if (cf_domain_normalise(name) < 0)
		return invalid(why, whylen, "invalid domain '%s'",
			       shown(src, value, buf, sizeof(buf)));
	return cf_strv_push(cf_setting_field(c, k), name);
}

static int add_host_port(struct cf_config *c, enum cf_key k, const char *value,
			 const struct cf_value_src *src, char *why, size_t whylen)
{
	char buf[128], norm[CF_HOST_PORT_STRLEN];
	struct cf_host_port hp;

	if (cf_host_port_parse(value, &hp) < 0)
		return invalid(
		    why, whylen, "invalid port '%s' (expected PORT, PORT/tcp or PORT/udp%s)",
		    shown(src, value, buf, sizeof(buf)), src->cli ? ", PORT 1-65535" : "");
	return cf_strv_push(cf_setting_field(c, k), cf_host_port_format(&hp, norm, sizeof(norm)));
}

static int add_publish(struct cf_config *c, enum cf_key k, const char *value,
		       const struct cf_value_src *src, char *why, size_t whylen)
{
	char buf[128], norm[CF_PUBLISH_STRLEN];
	struct cf_publish p;

	if (cf_publish_parse(value, &p) < 0)
		return invalid(
		    why, whylen,
		    "invalid mapping '%s' (expected [HOSTADDR:]HOSTPORT:TREEPORT[/tcp|/udp], "
		    "ports 1-65535, an IPv6 HOSTADDR in brackets)",
		    shown(src, value, buf, sizeof(buf)));
	return cf_strv_push(cf_setting_field(c, k), cf_publish_format(&p, norm, sizeof(norm)));
}

static int add_path(struct cf_config *c, enum cf_key k, const char *value,
		    const struct cf_value_src *src, char *why, size_t whylen)
{
	cleanup_free char *path = strdup(value);
	char buf[128];

	if (!path)
		return -ENOMEM;
	if (cf_mask_path_normalise(path) < 0)
		return src->cli
			   ? invalid(why, whylen,
				     "'%s' is not an absolute path other than '/' (write it "
				     "from the root, e.g. /run/user/1000/bus)",
				     has_control_char(value) ? "?" : value)
			   : invalid(why, whylen, "'%s' is not an absolute path other than '/'",
				     shown(src, value, buf, sizeof(buf)));
	return cf_strv_push(cf_setting_field(c, k), path);
}

/* ---- one value ---------------------------------------------------------- */

static int set_value(struct cf_config *c, enum cf_key k, const char *value,
		     const struct cf_value_src *src, char *why, size_t whylen)
{
	switch (cf_settings[k].type) {
	case CF_T_BOOL:
		*(bool *)cf_setting_field(c, k) = true;
		return 0;
	case CF_T_CHOICE:
		return set_choice(c, k, value, src, why, whylen);
	case CF_T_EXTENDS:
	case CF_T_PATH_IN:
	case CF_T_PATH_OUT:
		return set_path(c, k, value, src, why, whylen);
	case CF_T_IP:
		return set_ip(c, value, src, why, whylen);
	case CF_T_PROXY:
		return set_proxy(c, value, why, whylen);
	case CF_T_USER:
	case CF_T_PASSWORD:
		return set_credential(c, k, value, src, why, whylen);
	case CF_T_IFACE:
		return set_iface(c, k, value, src, why, whylen);
	case CF_T_TREE_USER:
		return set_tree_user(c, k, value, why, whylen);
	case CF_T_RATE:
		return set_rate(c, k, value, src, why, whylen);
	case CF_T_COMMAND:
		return cf_strv_push(cf_setting_field(c, k), value);
	case CF_T_CIDRS:
		return add_cidr(c, k, value, src, why, whylen);
	case CF_T_DOMAINS:
		return add_domain(c, k, value, src, why, whylen);
	case CF_T_HOST_PORTS:
		return add_host_port(c, k, value, src, why, whylen);
	case CF_T_PATHS:
		return add_path(c, k, value, src, why, whylen);
	case CF_T_PUBLISH:
		return add_publish(c, k, value, src, why, whylen);
	}
	return -EINVAL;
}

int cf_setting_set(struct cf_config *c, enum cf_key k, const char *value,
		   const struct cf_value_src *src, char *why, size_t whylen)
{
	int r = set_value(c, k, value, src, why, whylen);

	if (r == -ENOMEM && whylen)
		snprintf(why, whylen, "out of memory");
	if (r == 0)
		c->set |= CF_KEY_BIT(k);
	return r;
}

void cf_setting_set_bool(struct cf_config *c, enum cf_key k, bool v)
{
	*(bool *)cf_setting_field(c, k) = v;
	c->set |= CF_KEY_BIT(k);
}

/* ---- the summary's controls --------------------------------------------- */

static int push_control(struct cf_strv *sv, const char *option, const char *value)
{
	char *s = NULL;
	int r;

	if (asprintf(&s, "--%s%s%s", option, value ? " " : "", value ? value : "") < 0)
		return -ENOMEM;
	r = cf_strv_push(sv, s);
	free(s);
	return r;
}

/* "--proxy scheme://host:port": without user and password, which a summary must not show. */
static int push_proxy(struct cf_strv *out, const char *option, const struct cf_proxy *proxy)
{
	struct cf_proxy bare = *proxy;
	size_t len = strlen(proxy->host) + 32; /* scheme, "://", brackets, ":65535" */
	cleanup_free char *uri = malloc(len);
	int r;

	if (!uri)
		return -ENOMEM;
	bare.user = bare.password = NULL;
	r = cf_proxy_format(&bare, true, uri, len);
	if (r >= 0)
		r = push_control(out, option, uri);
	return r < 0 ? r : 0;
}

static int push_list(struct cf_strv *out, const char *option, const struct cf_strv *sv)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < sv->n; i++)
		r = push_control(out, option, sv->v[i]);
	return r;
}

static int push_cidrs(struct cf_strv *out, const char *option, const struct cf_cidrv *cv)
{
	char buf[CF_IP_STRLEN + 4];
	int r = 0;

	for (size_t i = 0; r == 0 && i < cv->n; i++)
		r = push_control(out, option, cf_cidr_format(&cv->v[i], buf, sizeof(buf)));
	return r;
}

/* Push key @k of @c when it is set (not its default). */
static int push_key(struct cf_strv *out, const struct cf_config *c, enum cf_key k)
{
	const struct cf_setting *s = &cf_settings[k];
	const void *field = cf_setting_field(c, k);
	char ip[CF_IP_STRLEN];
	int v;

	switch (s->type) {
	case CF_T_BOOL:
		return *(const bool *)field ? push_control(out, s->option, NULL) : 0;
	case CF_T_CHOICE:
		v = *(const int *)field;
		return v != s->def ? push_control(out, s->option, cf_setting_choice(k, v)) : 0;
	case CF_T_IP:
		return c->dns_set
			   ? push_control(out, s->option, cf_ip_format(field, ip, sizeof(ip)))
			   : 0;
	case CF_T_PROXY:
		return c->proxy.scheme != CF_PROXY_NONE ? push_proxy(out, s->option, field) : 0;
	case CF_T_CIDRS:
		return push_cidrs(out, s->option, field);
	case CF_T_COMMAND:
	case CF_T_DOMAINS:
	case CF_T_HOST_PORTS:
	case CF_T_PATHS:
	case CF_T_PUBLISH:
		return push_list(out, s->option, field);
	case CF_T_PASSWORD:
		return 0; /* never shown */
	case CF_T_RATE:
		v = *(const uint64_t *)field != 0;
		return v ? push_control(out, s->option,
					cf_rate_format(*(const uint64_t *)field, ip, sizeof(ip)))
			 : 0;
	case CF_T_EXTENDS:
	case CF_T_PATH_IN:
	case CF_T_PATH_OUT:
	case CF_T_USER:
	case CF_T_TREE_USER:
	case CF_T_IFACE:
		break;
	}
	return *(char *const *)field ? push_control(out, s->option, *(char *const *)field) : 0;
}

int cf_config_controls(const struct cf_config *c, struct cf_strv *out)
{
	int r = 0;

	for (unsigned k = 0; r == 0 && k < CF_KEY__COUNT; k++)
		if (cf_settings[k].controls && cf_settings[k].option)
			r = push_key(out, c, (enum cf_key)k);
	return r;
}
