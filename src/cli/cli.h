/* SPDX-License-Identifier: MIT */
/*
 * The command line: "childflow [OPTIONS] [--] [COMMAND]...". Parsing fills a
 * struct cf_config holding only what the command line set (cfg.set), checks
 * every value before anything runs, and leaves merging with profiles to
 * cf_config_overlay().
 */
#ifndef CF_CLI_CLI_H
#define CF_CLI_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

/* childflow's own exit statuses; any other status is the command's. */
enum cf_exit {
	CF_EXIT_LEAK = 122,	/* --fail-on-leak: exited 0 but traffic was blocked */
	CF_EXIT_RUNTIME = 123,	/* internal failure while running */
	CF_EXIT_SETUP = 124,	/* this host cannot run the sandbox */
	CF_EXIT_USAGE = 125,	/* usage or configuration error */
	CF_EXIT_NOEXEC = 126,	/* command found but not executable */
	CF_EXIT_NOTFOUND = 127, /* command not found */
};

enum cf_mode {
	CF_MODE_RUN,
	CF_MODE_DUMP_PROFILE,
	CF_MODE_DOCTOR,
	CF_MODE_REPORT,
	CF_MODE_HELP,
	CF_MODE_VERSION,
	CF_MODE_CLEANUP,
};

/* A password inside the argv strings: @len bytes at @at (cf_cli_scrub_argv()). */
struct cf_cli_secret {
	char *at;
	size_t len;
};

struct cf_cli {
	enum cf_mode mode;
	char *profile;		       /* --profile FILE, or NULL */
	char *report_path;	       /* --report FLOWLOG (the first) */
	struct cf_strv report_more;    /* the --report FLOWLOGs after the first */
	struct cf_config cfg;	       /* only what the CLI set explicitly (cfg.set mask) */
	struct cf_cli_secret *secrets; /* into the parsed argv, for cf_cli_scrub_argv() */
	size_t n_secrets;
};

/* Sections of the --help text, in print order. */
enum cf_cli_group {
	CF_CLI_GROUP_RUN,
	CF_CLI_GROUP_PROFILE,
	CF_CLI_GROUP_DNS,
	CF_CLI_GROUP_PROXY,
	CF_CLI_GROUP_POLICY,
	CF_CLI_GROUP_OBSERVABILITY,
	CF_CLI_GROUP_CAPTURE,
	CF_CLI_GROUP_ROOTFUL,
	CF_CLI_GROUP_SANDBOX,
	CF_CLI_GROUP_OTHER,
};

/*
 * One documented option, a row of config/settings.def; the parser, --help
 * and completions share this table.
 */
struct cf_cli_option {
	const char *name; /* long name without "--" */
	char short_name;  /* short flag, or 0 */
	const char *arg;  /* argument name for --help, or NULL for a flag */
	const char *help; /* one sentence, defaults and allowed values included */
	enum cf_cli_group group;
	enum cf_key key; /* the key it sets, or CF_KEY__COUNT (a mode, --root) */
};

/*
 * cf_cli_parse() - parse @argv into @out (initialised here; release with
 * cf_cli_free() whatever the result). Options stop at the first non-option or
 * "--"; the rest is the command. -h/-V return at once with CF_MODE_HELP /
 * CF_MODE_VERSION. Return 0, -EINVAL or -ENOMEM with a one-line message in
 * @err naming the option and the value (e.g. "--deny-cidr: invalid CIDR '10.0.0.1/33'").
 * Relative --capture, --flow-log and --hosts-file paths are made absolute.
 */
int cf_cli_parse(int argc, char *argv[], struct cf_cli *out, char *err, size_t errlen);

/*
 * cf_cli_scrub_argv() - overwrite every proxy password in the argv that
 * cf_cli_parse() parsed (the values of -P/--proxy-password and the password
 * of a -p/--proxy URI's userinfo) with '*', byte for byte, so that
 * /proc/PID/cmdline no longer shows them. Call it after a successful parse
 * (the configuration holds copies) and before any other process starts.
 */
void cf_cli_scrub_argv(struct cf_cli *cli);

/* cf_cli_free() - release everything @cli owns and reset it. */
void cf_cli_free(struct cf_cli *cli);

/* cf_cli_usage() - print the --help text to @f. */
void cf_cli_usage(FILE *f);

/* cf_cli_options() - the option table (@n gets its length). */
const struct cf_cli_option *cf_cli_options(size_t *n);

#endif
