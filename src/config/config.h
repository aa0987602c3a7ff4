/* SPDX-License-Identifier: MIT */
/*
 * The effective configuration of one run: what the CLI, a profile chain and
 * the built-in defaults say, merged. Every field a user can set has a key in
 * enum cf_key; both come from the key's row in config/settings.def, the one
 * table of settings. cf_config.set records which keys a source set
 * explicitly, so that "parent profile, child profile, CLI, then defaults" is
 * one overlay function (cf_config_overlay) and --dump-profile can tell what
 * was chosen.
 */
#ifndef CF_CONFIG_CONFIG_H
#define CF_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

enum cf_backend {
	CF_BACKEND_ROOTLESS,
	CF_BACKEND_ROOTFUL,
};

enum cf_capture_point {
	CF_CAPTURE_CHILD,
	CF_CAPTURE_EGRESS,
	CF_CAPTURE_WIRE_EGRESS,
	CF_CAPTURE_BOTH,
};

enum cf_format {
	CF_FORMAT_TEXT,
	CF_FORMAT_JSON,
	CF_FORMAT_MARKDOWN,
	CF_FORMAT_PROFILE, /* --report-format profile: a learned profile (obs/learn.h) */
};

enum cf_default_policy {
	CF_POLICY_ALLOW,
	CF_POLICY_DENY,
};

/* --tcp-path: switched host sockets where possible, or always the relay (engine/switch.c). */
enum cf_tcp_path {
	CF_TCP_PATH_AUTO,
	CF_TCP_PATH_RELAY,
};

enum cf_proxy_scheme {
	CF_PROXY_NONE,
	CF_PROXY_HTTP,
	CF_PROXY_HTTPS,
	CF_PROXY_SOCKS5,
};

/* A parsed proxy URI. host is a name or a literal (without brackets). */
struct cf_proxy {
	enum cf_proxy_scheme scheme;
	char *host;
	uint16_t port;
	char *user;	/* from the URI's userinfo, or NULL */
	char *password; /* from the URI's userinfo, or NULL */
};

/* A growable list of owned strings. */
struct cf_strv {
	char **v;
	size_t n;
};

struct cf_cidrv {
	struct cf_cidr *v;
	size_t n;
};

/*
 * One bit per user-settable key, one row each in config/settings.def (the
 * table every key comes from); order is the --dump-profile order.
 */
enum cf_key {
#define SETTING(id, ...) CF_KEY_##id,
#define KEY_ONLY(id, ...) CF_KEY_##id,
#define CLI_ONLY(...)
#define CHOICES(...)
#include "config/settings.def"
	CF_KEY__COUNT,
};

#define CF_KEY_BIT(k) (UINT64_C(1) << (k))

/*
 * The C type of a setting's field, by the type column of its row
 * (config/settings.def; what each type holds: config/settings.h). A CHOICE
 * field has its own enum type, so it is declared by hand in struct cf_config.
 */
#define CF_MEMBER_BOOL(field) bool field;
#define CF_MEMBER_CHOICE(field)
#define CF_MEMBER_EXTENDS(field) char *field;
#define CF_MEMBER_PATH_IN(field) char *field;
#define CF_MEMBER_PATH_OUT(field) char *field;
#define CF_MEMBER_IP(field) struct cf_ip field;
#define CF_MEMBER_PROXY(field) struct cf_proxy field; /* scheme CF_PROXY_NONE when unset */
#define CF_MEMBER_USER(field) char *field;
#define CF_MEMBER_PASSWORD(field) char *field;
#define CF_MEMBER_IFACE(field) char *field;
#define CF_MEMBER_TREE_USER(field) char *field;
#define CF_MEMBER_RATE(field) uint64_t field;
#define CF_MEMBER_COMMAND(field) struct cf_strv field;
#define CF_MEMBER_CIDRS(field) struct cf_cidrv field;
#define CF_MEMBER_DOMAINS(field) struct cf_strv field;
#define CF_MEMBER_HOST_PORTS(field) struct cf_strv field;
#define CF_MEMBER_PATHS(field) struct cf_strv field;
#define CF_MEMBER_PUBLISH(field) struct cf_strv field;

struct cf_config {
	uint64_t set; /* CF_KEY_BIT()s explicitly set by this source */

	/* the CHOICE settings */
	enum cf_backend backend;
	enum cf_capture_point capture_point;
	enum cf_format summary_format; /* text or json */
	enum cf_format doctor_format;  /* text or json */
	enum cf_format report_format;  /* text, markdown or json */
	enum cf_default_policy default_policy;
	enum cf_tcp_path tcp_path;

	/* every other setting: one member per row of config/settings.def */
#define SETTING(id, key, lng, shrt, type, field, ...) CF_MEMBER_##type(field)
#define KEY_ONLY(id, key, lng, shrt, type, field, ...) CF_MEMBER_##type(field)
#define CLI_ONLY(...)
#define CHOICES(...)
#include "config/settings.def"

	bool dns_set; /* whether dns holds a resolver (the IP key's own flag) */
	/* Not a key: the --profile chain as loaded (absolute paths), hidden from the tree. */
	struct cf_strv profile_files;
};

/* Fill @c with the built-in defaults and an empty set mask. */
void cf_config_init(struct cf_config *c);

/* Release everything @c owns; @c is left in its init state. */
void cf_config_free(struct cf_config *c);

/*
 * For every key set in @over, replace @base's value with a copy of @over's
 * (lists are replaced, not appended) and mark it set. Return 0 or -ENOMEM.
 */
int cf_config_overlay(struct cf_config *base, const struct cf_config *over);

/*
 * Settings that contradict each other once merged (profile and command
 * line): write a message naming the options into @err and return -EINVAL;
 * 0 when @c is consistent.
 */
int cf_config_check(const struct cf_config *c, char *err, size_t errlen);

/* Append a copy of @s to @sv. Return 0 or -ENOMEM. */
int cf_strv_push(struct cf_strv *sv, const char *s);

/* Free all strings of @sv and the array. */
void cf_strv_free(struct cf_strv *sv);

/* Append @c to @cv. Return 0 or -ENOMEM. */
int cf_cidrv_push(struct cf_cidrv *cv, const struct cf_cidr *c);

/* Release @p's strings and reset it to CF_PROXY_NONE. */
void cf_proxy_free(struct cf_proxy *p);

/*
 * Normalise a domain rule in place: lower case, one trailing dot removed.
 * Return 0, or -EINVAL for an empty name, a label over 63 bytes, a name over
 * 253 bytes, empty labels or characters outside [a-z0-9-_.*].
 */
int cf_domain_normalise(char *name);

/* One port of the host's loopback that --allow-host-port opens to the tree. */
struct cf_host_port {
	uint16_t port;
	bool udp; /* false: TCP */
};

/*
 * cf_host_port_parse() - parse "PORT", "PORT/tcp" or "PORT/udp" (a bare port is TCP,
 * as in other tools' port publishing). PORT is 1-65535 in decimal.
 * Return: 0, or -EINVAL.
 */
int cf_host_port_parse(const char *s, struct cf_host_port *out);

/* cf_host_port_format() - "5432/tcp"; @buf of at least CF_HOST_PORT_STRLEN bytes. */
#define CF_HOST_PORT_STRLEN 10
const char *cf_host_port_format(const struct cf_host_port *hp, char *buf, size_t len);
/* One --publish: a host listener carried to a port of the tree's loopback. */
struct cf_publish {
	struct cf_ip host_addr; /* where childflow listens: 127.0.0.1 unless written */
	uint16_t host_port, tree_port;
	bool udp; /* false: TCP */
};

/*
 * cf_publish_parse() - parse "[HOSTADDR:]HOSTPORT:TREEPORT[/tcp|/udp]"; HOSTADDR
 * is an IPv4 address or an IPv6 one in brackets ("[::1]"), 127.0.0.1 when
 * left out; ports are 1-65535; a bare mapping is TCP. Return: 0, or -EINVAL.
 */
int cf_publish_parse(const char *s, struct cf_publish *out);

/* cf_publish_format() - "127.0.0.1:8080:80/tcp"; @buf of at least CF_PUBLISH_STRLEN bytes. */
#define CF_PUBLISH_STRLEN (CF_ADDRPORT_STRLEN + 12)
const char *cf_publish_format(const struct cf_publish *p, char *buf, size_t len);

/*
 * cf_mask_path_normalise() - check and normalise a --mask/--unmask path in
 * place: trailing '/' removed. Return 0, or -EINVAL for a path that is not
 * absolute, is "/" itself or holds control characters.
 */
int cf_mask_path_normalise(char *path);

/* Key name as written in profiles ("allow_cidrs"), for messages and dumps. */
const char *cf_key_name(enum cf_key k);

#endif
