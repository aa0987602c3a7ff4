/* SPDX-License-Identifier: MIT */
/*
 * The effective configuration of one run: what the CLI, a profile chain and
 * the built-in defaults say, merged. Every field a user can set has a key in
 * enum cf_key; cf_config.set records which keys a source set explicitly, so
 * that "parent profile, child profile, CLI, then defaults" is one overlay
 * function (cf_config_overlay) and --dump-profile can tell what was chosen.
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
};

enum cf_default_policy {
	CF_POLICY_ALLOW,
	CF_POLICY_DENY,
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

/* One bit per user-settable key; order is the --dump-profile order. */
enum cf_key {
	CF_KEY_EXTENDS,
	CF_KEY_BACKEND,
	CF_KEY_COMMAND,
	CF_KEY_CAPTURE,
	CF_KEY_CAPTURE_POINT,
	CF_KEY_DNS,
	CF_KEY_HOSTS_FILE,
	CF_KEY_PROXY,
	CF_KEY_PROXY_USER,
	CF_KEY_PROXY_PASSWORD,
	CF_KEY_PROXY_INSECURE,
	CF_KEY_PROXY_SEND_IP,
	CF_KEY_PROXY_REMOTE_DNS,
	CF_KEY_SUMMARY,
	CF_KEY_SUMMARY_FORMAT,
	CF_KEY_DOCTOR_FORMAT,
	CF_KEY_REPORT_FORMAT,
	CF_KEY_FLOW_LOG,
	CF_KEY_OFFLINE,
	CF_KEY_BLOCK_PRIVATE,
	CF_KEY_BLOCK_METADATA,
	CF_KEY_DEFAULT_POLICY,
	CF_KEY_ALLOW_CIDRS,
	CF_KEY_DENY_CIDRS,
	CF_KEY_ALLOW_DOMAINS,
	CF_KEY_ALLOW_DOMAINS_EXACT,
	CF_KEY_DENY_DOMAINS,
	CF_KEY_DENY_DOMAINS_EXACT,
	CF_KEY_PROXY_ONLY,
	CF_KEY_FAIL_ON_LEAK,
	CF_KEY_IFACE,
	CF_KEY_ALLOW_HOST_PORTS,
	CF_KEY_MASK,
	CF_KEY_UNMASK,
	CF_KEY__COUNT,
};

#define CF_KEY_BIT(k) (UINT64_C(1) << (k))

struct cf_config {
	uint64_t set; /* CF_KEY_BIT()s explicitly set by this source */

	char *extends;
	enum cf_backend backend;
	struct cf_strv command;
	char *capture;
	enum cf_capture_point capture_point;
	bool dns_set;
	struct cf_ip dns;
	char *hosts_file;
	struct cf_proxy proxy; /* scheme CF_PROXY_NONE when unset */
	char *proxy_user;
	char *proxy_password;
	bool proxy_insecure;
	bool proxy_send_ip; /* ask the proxy for the IP even when the tree resolved a name */
	bool proxy_remote_dns; /* answer DNS with synthetic addresses; the proxy resolves */
	bool summary;
	enum cf_format summary_format;	/* text or json */
	enum cf_format doctor_format;	/* text or json */
	enum cf_format report_format;	/* text, markdown or json */
	char *flow_log;
	bool offline;
	bool block_private;
	bool block_metadata;
	enum cf_default_policy default_policy;
	struct cf_cidrv allow_cidrs;
	struct cf_cidrv deny_cidrs;
	struct cf_strv allow_domains; /* normalised: lower case, no trailing dot */
	struct cf_strv allow_domains_exact;
	struct cf_strv deny_domains;
	struct cf_strv deny_domains_exact;
	bool proxy_only;
	bool fail_on_leak;
	char *iface;
	struct cf_strv allow_host_ports; /* normalised "PORT/tcp" or "PORT/udp" */
	struct cf_strv mask;   /* absolute paths hidden from the tree, beside the defaults */
	struct cf_strv unmask; /* default masks given back (absolute, from the default list) */
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
/*
 * cf_mask_path_normalise() - check and normalise a --mask/--unmask path in
 * place: trailing '/' removed. Return 0, or -EINVAL for a path that is not
 * absolute, is "/" itself or holds control characters.
 */
int cf_mask_path_normalise(char *path);

/* Key name as written in profiles ("allow_cidrs"), for messages and dumps. */
const char *cf_key_name(enum cf_key k);

#endif
