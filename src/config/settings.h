/* SPDX-License-Identifier: MIT */
/*
 * The table of settings (config/settings.def) as data, and the per-type
 * code that the command line and profiles share: checking, normalising and
 * storing one value, and the summary's list of active controls. The two
 * sources differ only in how they frame a message ("--deny-cidr: ..." or
 * "FILE:LINE:COL: key 'deny_cidrs': ...") and in what they read values from
 * (argv strings or TOML values).
 */
#ifndef CF_CONFIG_SETTINGS_H
#define CF_CONFIG_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* How a value is checked, stored, merged, freed, dumped and shown. */
enum cf_setting_type {
	CF_T_BOOL,	 /* bool; a flag on the command line */
	CF_T_CHOICE,	 /* an enum field, named by a CHOICES list */
	CF_T_EXTENDS,	 /* char *: the parent profile's absolute path */
	CF_T_PATH_IN,	 /* char *: absolute path of a readable regular file */
	CF_T_PATH_OUT,	 /* char *: absolute path of a file to write; its directory exists */
	CF_T_IP,	 /* struct cf_ip, and dns_set */
	CF_T_PROXY,	 /* struct cf_proxy: a proxy URI, maybe with credentials */
	CF_T_USER,	 /* char *: a user name (proxy), no control characters */
	CF_T_PASSWORD,	 /* char *: a secret: never quoted, wiped when freed, masked in dumps */
	CF_T_IFACE,	 /* char *: a network interface name */
	CF_T_COMMAND,	 /* struct cf_strv: argv of the command */
	CF_T_CIDRS,	 /* struct cf_cidrv */
	CF_T_DOMAINS,	 /* struct cf_strv of normalised domain rules */
	CF_T_HOST_PORTS, /* struct cf_strv of "PORT/tcp" or "PORT/udp" */
	CF_T_PATHS,	 /* struct cf_strv of absolute paths (cf_mask_path_normalise()) */
	CF_T_TREE_USER,	 /* char *: --user as written, a name or a UID (looked up by the runner) */
	CF_T_RATE,	 /* uint64_t: bits per second, SI suffixes k, M, G (0: not set) */
	CF_T_PUBLISH, /* struct cf_strv of "ADDR:HOSTPORT:TREEPORT/proto" (cf_publish_format()) */
};

/* One accepted name of a CHOICE setting. */
struct cf_choice {
	const char *name;
	int value;
};

/* One key of the table. */
struct cf_setting {
	const char *name;   /* TOML key */
	const char *option; /* long option without "--", or NULL */
	enum cf_setting_type type;
	size_t off;			 /* of the field in struct cf_config */
	const struct cf_choice *choices; /* CF_T_CHOICE: ends with a NULL name */
	int def;			 /* default of a BOOL or CHOICE */
	bool controls;			 /* the summary's controls list it when set */
	const char *help;
};

/* Every key, indexed by enum cf_key. */
extern const struct cf_setting cf_settings[CF_KEY__COUNT];

/* Where a value comes from: it decides how messages quote it and where relative paths point. */
struct cf_value_src {
	bool cli;	 /* the command line: values quoted as given, paths against the cwd */
	const char *dir; /* a profile's directory, against which relative paths resolve */
};

/*
 * cf_setting_set() - check and store one value of key @k in @c and mark @k
 * set: replace a scalar, append one element to a list (for a BOOL, any
 * value sets true). Return 0; -EINVAL with the message in @why, without the
 * option or key, which the caller puts in front; or -ENOMEM.
 */
int cf_setting_set(struct cf_config *c, enum cf_key k, const char *value,
		   const struct cf_value_src *src, char *why, size_t whylen);

/* cf_setting_set_bool() - store @v in the BOOL key @k of @c and mark @k set. */
void cf_setting_set_bool(struct cf_config *c, enum cf_key k, bool v);

/*
 * cf_setting_check_path() - for @type CF_T_PATH_IN: @path is a readable
 * regular file; CF_T_PATH_OUT: @path is not a directory and can be written
 * or created. Other types: 0. Return 0, -EINVAL with a message in @why, or -ENOMEM.
 */
int cf_setting_check_path(enum cf_setting_type type, const char *path, char *why, size_t whylen);

/*
 * cf_path_absolute() - @path made absolute against the directory @dir (NULL:
 * the current directory), "./" prefixes dropped. NULL with errno on failure.
 */
char *cf_path_absolute(const char *dir, const char *path);

/*
 * cf_setting_shown() - @s (@slen bytes) for a message: control characters as
 * '?', cut after 80 bytes. Return @buf.
 */
const char *cf_setting_shown(const char *s, size_t slen, char *buf, size_t len);

/*
 * cf_setting_field() - the address of key @k's field in @c. Like strchr(),
 * it takes a const struct and returns a pointer callers use as const when
 * @c is: one accessor for readers (dump, overlay source) and writers.
 */
static inline void *cf_setting_field(const struct cf_config *c, enum cf_key k)
{
	return (char *)(uintptr_t)c + cf_settings[k].off;
}

/*
 * cf_rate_parse() - @s as bits per second: digits with an optional SI suffix
 * k, M or G (x1000, x1000000, x1000000000), at least CF_RATE_MIN and at most
 * CF_RATE_MAX. Return 0 or -EINVAL.
 */
int cf_rate_parse(const char *s, uint64_t *bps);

/* cf_rate_format() - @bps the shortest way cf_rate_parse() reads back ("20M"). Return @buf. */
const char *cf_rate_format(uint64_t bps, char *buf, size_t len);

#define CF_RATE_MIN 8000ULL	     /* 1 kB/s */
#define CF_RATE_MAX 1000000000000ULL /* 1 Tbit/s */

/* cf_setting_choice() - the name of @value among @k's choices, or NULL. */
const char *cf_setting_choice(enum cf_key k, int value);

/*
 * cf_config_controls() - the active controls of @c as "--option value"
 * strings (the rows with ctl set), for the summary. Credentials of a proxy
 * URI are left out. Return 0 or -ENOMEM.
 */
int cf_config_controls(const struct cf_config *c, struct cf_strv *out);

#endif
