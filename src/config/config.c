// SPDX-License-Identifier: MIT
/*
 * The configuration value type: defaults, deep copies and the overlay that
 * merges "parent profile, child profile, CLI" one source at a time. Every
 * source fills its own struct cf_config and marks what it set in ->set;
 * cf_config_overlay() copies exactly those keys, so a key nobody set keeps
 * its built-in default. Defaults, copies and freeing go by each key's type
 * in the table of settings (config/settings.def).
 *
 * String vectors keep a NULL after the last element (v[n] == NULL), so a
 * command can be handed to execvp() as it is.
 */
#include "config/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/settings.h"

void cf_config_init(struct cf_config *c)
{
	memset(c, 0, sizeof(*c));
	c->proxy.scheme = CF_PROXY_NONE;
	for (unsigned k = 0; k < CF_KEY__COUNT; k++) {
		if (cf_settings[k].type == CF_T_BOOL)
			*(bool *)cf_setting_field(c, (enum cf_key)k) = cf_settings[k].def;
		else if (cf_settings[k].type == CF_T_CHOICE)
			*(int *)cf_setting_field(c, (enum cf_key)k) = cf_settings[k].def;
	}
}

/* Free a string that may hold a secret, wiping it first. */
static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void cf_strv_free(struct cf_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

int cf_strv_push(struct cf_strv *sv, const char *s)
{
	char **v;
	char *copy;

	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	/* n elements, the new one and the terminating NULL */
	v = reallocarray(sv->v, sv->n + 2, sizeof(*v));
	if (!v) {
		free(copy);
		return -ENOMEM;
	}
	v[sv->n++] = copy;
	v[sv->n] = NULL;
	sv->v = v;
	return 0;
}

int cf_cidrv_push(struct cf_cidrv *cv, const struct cf_cidr *c)
{
	struct cf_cidr *v;

	v = reallocarray(cv->v, cv->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v[cv->n++] = *c;
	cv->v = v;
	return 0;
}

static void cidrv_free(struct cf_cidrv *cv)
{
	free(cv->v);
	cv->v = NULL;
	cv->n = 0;
}

void cf_proxy_free(struct cf_proxy *p)
{
	free(p->host);
	free(p->user);
	free_secret(p->password);
	memset(p, 0, sizeof(*p));
	p->scheme = CF_PROXY_NONE;
}

/* Release what key @k owns in @c. */
static void free_key(struct cf_config *c, enum cf_key k)
{
	void *field = cf_setting_field(c, k);

	switch (cf_settings[k].type) {
	case CF_T_EXTENDS:
	case CF_T_PATH_IN:
	case CF_T_PATH_OUT:
	case CF_T_USER:
	case CF_T_TREE_USER:
	case CF_T_IFACE:
		free(*(char **)field);
		break;
	case CF_T_PASSWORD:
		free_secret(*(char **)field);
		break;
	case CF_T_PROXY:
		cf_proxy_free(field);
		break;
	case CF_T_COMMAND:
	case CF_T_DOMAINS:
	case CF_T_HOST_PORTS:
	case CF_T_PATHS:
	case CF_T_PUBLISH:
		cf_strv_free(field);
		break;
	case CF_T_CIDRS:
		cidrv_free(field);
		break;
	case CF_T_BOOL:
	case CF_T_CHOICE:
	case CF_T_IP:
	case CF_T_RATE:
		break;
	}
}

void cf_config_free(struct cf_config *c)
{
	for (unsigned k = 0; k < CF_KEY__COUNT; k++)
		free_key(c, (enum cf_key)k);
	cf_strv_free(&c->profile_files);
	cf_config_init(c);
}

/* Replace *dst with a copy of @src (NULL stays NULL). */
static int copy_str(char **dst, const char *src, bool secret)
{
	char *copy = NULL;

	if (src) {
		copy = strdup(src);
		if (!copy)
			return -ENOMEM;
	}
	if (secret)
		free_secret(*dst);
	else
		free(*dst);
	*dst = copy;
	return 0;
}

static int copy_strv(struct cf_strv *dst, const struct cf_strv *src)
{
	struct cf_strv tmp = {0};

	for (size_t i = 0; i < src->n; i++) {
		if (cf_strv_push(&tmp, src->v[i]) < 0) {
			cf_strv_free(&tmp);
			return -ENOMEM;
		}
	}
	cf_strv_free(dst);
	*dst = tmp;
	return 0;
}

static int copy_cidrv(struct cf_cidrv *dst, const struct cf_cidrv *src)
{
	struct cf_cidr *v = NULL;

	if (src->n) {
		v = calloc(src->n, sizeof(*v));
		if (!v)
			return -ENOMEM;
		memcpy(v, src->v, src->n * sizeof(*v));
	}
	free(dst->v);
	dst->v = v;
	dst->n = src->n;
	return 0;
}

static int copy_proxy(struct cf_proxy *dst, const struct cf_proxy *src)
{
	struct cf_proxy tmp = {.scheme = src->scheme, .port = src->port};

	if (copy_str(&tmp.host, src->host, false) < 0 ||
	    copy_str(&tmp.user, src->user, false) < 0 ||
	    copy_str(&tmp.password, src->password, true) < 0) {
		cf_proxy_free(&tmp);
		return -ENOMEM;
	}
	cf_proxy_free(dst);
	*dst = tmp;
	return 0;
}

/* Copy the value of key @k from @over into @base. */
static int overlay_key(struct cf_config *base, const struct cf_config *over, enum cf_key k)
{
	void *dst = cf_setting_field(base, k);
	const void *src = cf_setting_field(over, k);

	switch (cf_settings[k].type) {
	case CF_T_BOOL:
		*(bool *)dst = *(const bool *)src;
		return 0;
	case CF_T_CHOICE:
		*(int *)dst = *(const int *)src;
		return 0;
	case CF_T_IP:
		base->dns_set = over->dns_set;
		base->dns = over->dns;
		return 0;
	case CF_T_EXTENDS:
	case CF_T_PATH_IN:
	case CF_T_PATH_OUT:
	case CF_T_USER:
	case CF_T_TREE_USER:
	case CF_T_IFACE:
		return copy_str(dst, *(char *const *)src, false);
	case CF_T_PASSWORD:
		return copy_str(dst, *(char *const *)src, true);
	case CF_T_RATE:
		*(uint64_t *)dst = *(const uint64_t *)src;
		return 0;
	case CF_T_PROXY:
		return copy_proxy(dst, src);
	case CF_T_COMMAND:
	case CF_T_DOMAINS:
	case CF_T_HOST_PORTS:
	case CF_T_PATHS:
	case CF_T_PUBLISH:
		return copy_strv(dst, src);
	case CF_T_CIDRS:
		return copy_cidrv(dst, src);
	}
	return 0;
}

int cf_config_overlay(struct cf_config *base, const struct cf_config *over)
{
	if (base == over)
		return 0;
	for (unsigned int k = 0; k < CF_KEY__COUNT; k++) {
		int r;

		if (!(over->set & CF_KEY_BIT(k)))
			continue;
		r = overlay_key(base, over, (enum cf_key)k);
		if (r < 0)
			return r;
		base->set |= CF_KEY_BIT(k);
	}
	return 0;
}

/* ASCII-only lower case: domain rules must not depend on the locale. */
static char ascii_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool domain_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

/*
 * Check a lower-cased name without its trailing dot: labels of 1..63 bytes
 * from [a-z0-9-_], and "*" allowed only as the whole leftmost label of a
 * longer name ("*.example.com").
 */
static int domain_check(const char *name, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char ch = ascii_lower(name[i]);

		if (ch == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
			continue;
		}
		if (ch == '*') {
			if (i != 0 || len < 3 || name[1] != '.')
				return -EINVAL;
		} else if (!domain_char_ok(ch)) {
			return -EINVAL;
		}
		if (++label > 63)
			return -EINVAL;
	}
	return label == 0 ? -EINVAL : 0;
}

int cf_domain_normalise(char *name)
{
	size_t len;
	int r;

	if (!name)
		return -EINVAL;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	r = domain_check(name, len);
	if (r < 0)
		return r;
	name[len] = '\0';
	for (size_t i = 0; i < len; i++)
		name[i] = ascii_lower(name[i]);
	return 0;
}

/*
 * --proxy-remote-dns: the proxy resolves the tree's names, so this host
 * never learns the addresses that address rules would judge, and settings
 * that need a resolver or an address cannot hold.
 */
static int check_remote_dns(const struct cf_config *c, char *err, size_t errlen)
{
	static const struct {
		const char *option;
		size_t off;
	} conflicts[] = {
	    {"--proxy-send-ip", offsetof(struct cf_config, proxy_send_ip)},
	    {"--dns", offsetof(struct cf_config, dns_set)},
	    {"--offline", offsetof(struct cf_config, offline)},
	    {"--block-private", offsetof(struct cf_config, block_private)},
	    {"--block-metadata", offsetof(struct cf_config, block_metadata)},
	};

	if (!c->proxy_remote_dns)
		return 0;
	if (c->proxy.scheme == CF_PROXY_NONE) {
		snprintf(err, errlen, "--proxy-remote-dns needs --proxy");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(conflicts) / sizeof(conflicts[0]); i++) {
		if (*(const bool *)((const char *)c + conflicts[i].off)) {
			snprintf(err, errlen,
				 "--proxy-remote-dns cannot be combined with %s: the proxy "
				 "resolves the names, so this host never sees their addresses",
				 conflicts[i].option);
			return -EINVAL;
		}
	}
	if (c->allow_cidrs.n || c->deny_cidrs.n) {
		snprintf(err, errlen,
			 "--proxy-remote-dns cannot be combined with --%s-cidr: the proxy "
			 "resolves the names, so this host never sees their addresses "
			 "(use --allow-domain/--deny-domain)",
			 c->allow_cidrs.n ? "allow" : "deny");
		return -EINVAL;
	}
	return 0;
}

/*
 * Settings that mean nothing without another one, refused like the
 * original refuses them (docs/compatibility.md): each message names both
 * settings, as an option and as a profile key, since either may have set it.
 */
static int check_dependencies(const struct cf_config *c, char *err, size_t errlen)
{
	bool proxy = c->proxy.scheme != CF_PROXY_NONE;
	const char *user = c->proxy_user ? c->proxy_user : c->proxy.user;
	const char *password = c->proxy_password ? c->proxy_password : c->proxy.password;

	if ((c->proxy_user || c->proxy_password || c->proxy_insecure) && !proxy) {
		snprintf(err, errlen,
			 "--proxy-user, --proxy-password and --proxy-insecure need --proxy "
			 "(profile key proxy)");
		return -EINVAL;
	}
	if (c->proxy_only && !proxy) {
		snprintf(err, errlen,
			 "--proxy-only (proxy_only) needs --proxy (proxy): without a proxy it "
			 "would block all traffic (use --offline for that)");
		return -EINVAL;
	}
	if (c->proxy_insecure && c->proxy.scheme != CF_PROXY_HTTPS) {
		snprintf(err, errlen,
			 "--proxy-insecure (proxy_insecure) is only for https:// proxies: the "
			 "--proxy %s:// has no certificate to accept",
			 c->proxy.scheme == CF_PROXY_SOCKS5 ? "socks5" : "http");
		return -EINVAL;
	}
	if (user && !password) {
		snprintf(err, errlen,
			 "--proxy-user (proxy_user) needs a password: give --proxy-password "
			 "(proxy_password) or user:password@ in the --proxy URI");
		return -EINVAL;
	}
	if (password && !user) {
		snprintf(err, errlen,
			 "--proxy-password (proxy_password) needs a user: give --proxy-user "
			 "(proxy_user) or user:password@ in the --proxy URI");
		return -EINVAL;
	}
	if (c->iface && c->backend != CF_BACKEND_ROOTFUL) {
		snprintf(err, errlen,
			 "--iface (iface) needs the rootful backend: add --root (backend = "
			 "\"rootful\"); the rootless backend leaves by the host's own routes");
		return -EINVAL;
	}
	if (c->capture_point != CF_CAPTURE_CHILD && !c->capture) {
		snprintf(err, errlen,
			 "--capture-point %s (capture_point) needs --capture FILE (capture)",
			 cf_setting_choice(CF_KEY_CAPTURE_POINT, (int)c->capture_point));
		return -EINVAL;
	}
	return 0;
}

int cf_config_check(const struct cf_config *c, char *err, size_t errlen)
{
	int r = check_dependencies(c, err, errlen);

	return r < 0 ? r : check_remote_dns(c, err, errlen);
}

int cf_host_port_parse(const char *s, struct cf_host_port *out)
{
	unsigned long port = 0;
	size_t digits = strspn(s, "0123456789");
	const char *proto = s + digits;

	if (digits == 0 || digits > 5 || s[0] == '0')
		return -EINVAL;
	for (size_t i = 0; i < digits; i++)
		port = port * 10 + (unsigned long)(s[i] - '0');
	if (port > 65535)
		return -EINVAL;
	if (*proto && strcmp(proto, "/tcp") != 0 && strcmp(proto, "/udp") != 0)
		return -EINVAL;
	out->port = (uint16_t)port;
	out->udp = strcmp(proto, "/udp") == 0;
	return 0;
}

const char *cf_host_port_format(const struct cf_host_port *hp, char *buf, size_t len)
{
	snprintf(buf, len, "%u/%s", hp->port, hp->udp ? "udp" : "tcp");
	return buf;
}

/* Parse a port of 1-65535 in decimal from the @len bytes at @s. */
static int parse_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long port = 0;

	if (len == 0 || len > 5 || s[0] == '0' || strspn(s, "0123456789") < len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		port = port * 10 + (unsigned long)(s[i] - '0');
	if (port > 65535)
		return -EINVAL;
	*out = (uint16_t)port;
	return 0;
}

/* The HOSTADDR of a --publish, @len bytes at @s: "A.B.C.D" or "[V6]". */
static int parse_publish_addr(const char *s, size_t len, struct cf_ip *out)
{
	char buf[CF_IP_STRLEN];

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
		if (len >= sizeof(buf) || !memchr(s, ':', len))
			return -EINVAL;
	} else if (len >= sizeof(buf) || memchr(s, ':', len)) {
		return -EINVAL;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	return cf_ip_parse(buf, out);
}

int cf_publish_parse(const char *s, struct cf_publish *out)
{
	const char *proto = strchr(s, '/');
	size_t end = proto ? (size_t)(proto - s) : strlen(s);
	const char *tree, *host;

	if (proto && strcmp(proto, "/tcp") != 0 && strcmp(proto, "/udp") != 0)
		return -EINVAL;
	tree = memrchr(s, ':', end);
	if (!tree || parse_port(tree + 1, end - (size_t)(tree - s) - 1, &out->tree_port) < 0)
		return -EINVAL;
	host = tree > s ? memrchr(s, ':', (size_t)(tree - s)) : NULL;
	/* a ':' inside "[v6]" is not the separator */
	if (host && memchr(host, ']', (size_t)(tree - host)))
		host = NULL;
	if (parse_port(host ? host + 1 : s, (size_t)(tree - (host ? host + 1 : s)),
		       &out->host_port) < 0)
		return -EINVAL;
	if (host) {
		if (parse_publish_addr(s, (size_t)(host - s), &out->host_addr) < 0)
			return -EINVAL;
	} else if (cf_ip_parse("127.0.0.1", &out->host_addr) < 0) {
		return -EINVAL;
	}
	out->udp = proto && strcmp(proto, "/udp") == 0;
	return 0;
}

const char *cf_publish_format(const struct cf_publish *p, char *buf, size_t len)
{
	char a[CF_IP_STRLEN];

	cf_ip_format(&p->host_addr, a, sizeof(a));
	snprintf(buf, len, "%s%s%s:%u:%u/%s", p->host_addr.family == AF_INET6 ? "[" : "", a,
		 p->host_addr.family == AF_INET6 ? "]" : "", p->host_port, p->tree_port,
		 p->udp ? "udp" : "tcp");
	return buf;
}

int cf_mask_path_normalise(char *path)
{
	size_t n = strlen(path);

	if (path[0] != '/')
		return -EINVAL;
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	/* masking the root would hide every file from the tree */
	return strcmp(path, "/") == 0 ? -EINVAL : 0;
}
