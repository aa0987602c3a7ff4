// SPDX-License-Identifier: MIT
/*
 * Command-line parsing. The table of settings (config/settings.def) gives
 * options[], one entry per option; the getopt_long() array, the --help text
 * and the option lookups are all built from it, so an option cannot be
 * parsed without being documented. An option of a key is checked and stored
 * by the key's type (cf_setting_set(), shared with profiles); only the
 * modes, --profile, --report and --root are handled here.
 *
 * getopt_long() keeps its state in globals. Setting optind = 0 before the
 * first call makes glibc re-initialise that state completely, so parsing can
 * run any number of times in one process (the unit tests do). opterr = 0
 * turns glibc's own messages off; every message here names the option in its
 * long form and, except for --proxy-password, the offending value.
 *
 * getopt_long() also accepts unambiguous prefixes of long options ("--summ").
 * Those are rejected: a prefix that works today breaks as soon as another
 * option with the same prefix is added, and scripts would break with it.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config/proxyuri.h"
#include "config/settings.h"
#include "util/cleanup.h"

/* Index of each option: the rows of config/settings.def that have one. */
enum opt_id {
#define SETTING(id, ...) OPT_##id,
#define CLI_ONLY(id, ...) OPT_##id,
#define KEY_ONLY(...)
#define CHOICES(...)
#include "config/settings.def"
	OPT__COUNT,
};

/* getopt_long() val of a long option: above every short option character. */
#define LONG_VAL_BASE 256

#define SETTING(id, key, lng, shrt, type, field, choices, def, metavar, group, ctl, help)          \
	[OPT_##id] = {lng, shrt, metavar, help, CF_CLI_GROUP_##group, CF_KEY_##id},
#define CLI_ONLY(id, key, lng, shrt, type, field, choices, def, metavar, group, ctl, help)         \
	[OPT_##id] = {lng, shrt, metavar, help, CF_CLI_GROUP_##group, CF_KEY__COUNT},
#define KEY_ONLY(...)
#define CHOICES(...)
static const struct cf_cli_option options[OPT__COUNT] = {
#include "config/settings.def"
};

static const char *const group_titles[] = {
    [CF_CLI_GROUP_RUN] = "Run",		  [CF_CLI_GROUP_PROFILE] = "Profile",
    [CF_CLI_GROUP_DNS] = "DNS and hosts", [CF_CLI_GROUP_PROXY] = "Proxy",
    [CF_CLI_GROUP_POLICY] = "Policy",	  [CF_CLI_GROUP_OBSERVABILITY] = "Observability",
    [CF_CLI_GROUP_CAPTURE] = "Capture",	  [CF_CLI_GROUP_ROOTFUL] = "Rootful backend",
    [CF_CLI_GROUP_SANDBOX] = "Sandbox",	  [CF_CLI_GROUP_OTHER] = "Other",
};

const struct cf_cli_option *cf_cli_options(size_t *n)
{
	*n = OPT__COUNT;
	return options;
}

__attribute__((format(printf, 3, 4))) static int usage_error(char *err, size_t errlen,
							     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int oom(char *err, size_t errlen)
{
	if (errlen)
		snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* A path that is not a key (--profile, --report): checked as --hosts-file is, kept as given. */
static int handle_input_path(char **dst, enum opt_id id, const char *arg, char *err, size_t errlen)
{
	char why[PATH_MAX + 256];
	int r;

	if (!*arg)
		return usage_error(err, errlen, "--%s: empty file name", options[id].name);
	r = cf_setting_check_path(CF_T_PATH_IN, arg, why, sizeof(why));
	if (r == -ENOMEM)
		return oom(err, errlen);
	if (r < 0)
		return usage_error(err, errlen, "--%s: %s", options[id].name, why);
	free(*dst);
	*dst = strdup(arg);
	return *dst ? 0 : oom(err, errlen);
}

/* --report FLOWLOG: the first is report_path, later ones (merged into one profile) follow. */
static int handle_report_path(struct cf_cli *cli, enum opt_id id, const char *arg, char *err,
			      size_t errlen)
{
	cleanup_free char *path = NULL;
	int r;

	if (!cli->report_path)
		return handle_input_path(&cli->report_path, id, arg, err, errlen);
	r = handle_input_path(&path, id, arg, err, errlen);
	if (r < 0)
		return r;
	return cf_strv_push(&cli->report_more, path) < 0 ? oom(err, errlen) : 0;
}

/* An option of a key: a flag sets its bool, any other is checked and stored by its type. */
static int handle_key(struct cf_config *cfg, enum opt_id id, const char *arg, char *err,
		      size_t errlen)
{
	static const struct cf_value_src cli_src = {.cli = true};
	enum cf_key key = options[id].key;
	char why[PATH_MAX + 256];
	int r;

	if (cf_settings[key].type == CF_T_BOOL) {
		cf_setting_set_bool(cfg, key, true);
		return 0;
	}
	r = cf_setting_set(cfg, key, arg, &cli_src, why, sizeof(why));
	if (r == -ENOMEM)
		return oom(err, errlen);
	if (r < 0)
		return usage_error(err, errlen, "--%s: %s", options[id].name, why);
	return 0;
}

static const char *mode_option(enum cf_mode m)
{
	switch (m) {
	case CF_MODE_DOCTOR:
		return "--doctor";
	case CF_MODE_REPORT:
		return "--report";
	case CF_MODE_DUMP_PROFILE:
		return "--dump-profile";
	case CF_MODE_CLEANUP:
		return "--cleanup";
	default:
		return "";
	}
}

static int set_mode(struct cf_cli *cli, enum cf_mode m, char *err, size_t errlen)
{
	if (cli->mode != CF_MODE_RUN && cli->mode != m)
		return usage_error(err, errlen, "%s cannot be combined with %s", mode_option(m),
				   mode_option(cli->mode));
	cli->mode = m;
	return 0;
}

/* Apply option @id with argument @arg (NULL for flags). */
static int handle_option(struct cf_cli *cli, enum opt_id id, const char *arg, char *err,
			 size_t errlen)
{
	int r;

	if (options[id].key != CF_KEY__COUNT)
		return handle_key(&cli->cfg, id, arg, err, errlen);
	switch (id) {
	case OPT_DOCTOR:
		return set_mode(cli, CF_MODE_DOCTOR, err, errlen);
	case OPT_DUMP_PROFILE:
		return set_mode(cli, CF_MODE_DUMP_PROFILE, err, errlen);
	case OPT_CLEANUP:
		return set_mode(cli, CF_MODE_CLEANUP, err, errlen);
	case OPT_REPORT:
		r = set_mode(cli, CF_MODE_REPORT, err, errlen);
		return r < 0 ? r : handle_report_path(cli, id, arg, err, errlen);
	case OPT_PROFILE:
		return handle_input_path(&cli->profile, id, arg, err, errlen);
	case OPT_ROOT:
		cli->cfg.backend = CF_BACKEND_ROOTFUL;
		cli->cfg.set |= CF_KEY_BIT(CF_KEY_BACKEND);
		return 0;
	default:
		return usage_error(err, errlen, "--%s: not handled", options[id].name);
	}
}

/* Build the getopt_long() tables from options[]. */
static void build_getopt(struct option *longopts, char *shortopts, size_t shortlen)
{
	size_t pos = 0;

	/* "+": stop at the first non-option; ":": report a missing argument as ':' */
	shortopts[pos++] = '+';
	shortopts[pos++] = ':';
	for (size_t i = 0; i < OPT__COUNT; i++) {
		longopts[i] = (struct option){
		    .name = options[i].name,
		    .has_arg = options[i].arg ? required_argument : no_argument,
		    .flag = NULL,
		    .val = LONG_VAL_BASE + (int)i,
		};
		if (options[i].short_name && pos + 3 < shortlen) {
			shortopts[pos++] = options[i].short_name;
			if (options[i].arg)
				shortopts[pos++] = ':';
		}
	}
	longopts[OPT__COUNT] = (struct option){0};
	shortopts[pos] = '\0';
}

/* Map a getopt_long() result (short character or LONG_VAL_BASE + index) to an option. */
static int option_of(int c)
{
	if (c >= LONG_VAL_BASE && c < LONG_VAL_BASE + OPT__COUNT)
		return c - LONG_VAL_BASE;
	for (int i = 0; i < OPT__COUNT; i++)
		if (c && options[i].short_name == c)
			return i;
	return -1;
}

/* Length of a "--name[=value]" token's name part. */
static int token_name_len(const char *tok)
{
	return (int)strcspn(tok, "=");
}

/* Message for getopt_long()'s '?' or ':' on the token at argv[tok]. */
static int getopt_failure(int c, const char *tok, char *err, size_t errlen)
{
	int id = option_of(optopt);
	bool is_long = tok[0] == '-' && tok[1] == '-';

	if (c == ':' && id >= 0)
		return usage_error(err, errlen, "--%s: missing value (%s)", options[id].name,
				   options[id].arg);
	if (is_long && id >= 0 && optopt >= LONG_VAL_BASE)
		return usage_error(err, errlen, "--%s: takes no value", options[id].name);
	if (is_long)
		return usage_error(err, errlen, "unknown option '%.*s'", token_name_len(tok), tok);
	return usage_error(err, errlen, "unknown option '-%c'", optopt);
}

/* Reject an abbreviated long option that getopt_long() matched by prefix. */
static int check_full_name(int id, const char *tok, char *err, size_t errlen)
{
	const char *name = options[id].name;
	size_t n = strlen(name);

	if (tok[0] != '-' || tok[1] != '-' ||
	    (strncmp(tok + 2, name, n) == 0 && (tok[2 + n] == '\0' || tok[2 + n] == '=')))
		return 0;
	return usage_error(err, errlen, "unknown option '%.*s' (did you mean '--%s'?)",
			   token_name_len(tok), tok, name);
}

/* Take argv[first..] as the command; --doctor and --report run none. */
static int take_command(struct cf_cli *cli, int argc, char *argv[], int first, char *err,
			size_t errlen)
{
	if (first >= argc)
		return 0;
	if (cli->mode == CF_MODE_DOCTOR || cli->mode == CF_MODE_REPORT ||
	    cli->mode == CF_MODE_CLEANUP)
		return usage_error(err, errlen, "%s runs no command, but '%s' was given",
				   mode_option(cli->mode), argv[first]);
	for (int i = first; i < argc; i++)
		if (cf_strv_push(&cli->cfg.command, argv[i]) < 0)
			return oom(err, errlen);
	cli->cfg.set |= CF_KEY_BIT(CF_KEY_COMMAND);
	return 0;
}

/*
 * Remember where the password in @arg (getopt's optarg: a pointer into the
 * argv strings, whichever form the option took) lies, for cf_cli_scrub_argv().
 */
static int record_secret(struct cf_cli *cli, enum opt_id id, char *arg, char *err, size_t errlen)
{
	struct cf_cli_secret *v;
	size_t off = 0, len = strlen(arg);

	if (id == OPT_PROXY && !cf_proxy_password_span(arg, &off, &len))
		return 0;
	if (len == 0)
		return 0;
	v = reallocarray(cli->secrets, cli->n_secrets + 1, sizeof(*v));
	if (!v)
		return oom(err, errlen);
	cli->secrets = v;
	v[cli->n_secrets++] = (struct cf_cli_secret){.at = arg + off, .len = len};
	return 0;
}

/* An option whose value may hold a password (cf_cli_scrub_argv()). */
static bool is_secret(const struct cf_cli_option *o)
{
	return o->key != CF_KEY__COUNT && (cf_settings[o->key].type == CF_T_PROXY ||
					   cf_settings[o->key].type == CF_T_PASSWORD);
}

static int parse_options(int argc, char *argv[], struct cf_cli *out, char *err, size_t errlen)
{
	struct option longopts[OPT__COUNT + 1];
	char shortopts[2 * OPT__COUNT + 3];
	int c, r;

	build_getopt(longopts, shortopts, sizeof(shortopts));
	optind = 0;
	opterr = 0;
	for (;;) {
		int tok = optind ? optind : 1, longindex = -1, id;

		c = getopt_long(argc, argv, shortopts, longopts, &longindex);
		if (c == -1)
			break;
		if (c == '?' || c == ':')
			return getopt_failure(c, tok < argc ? argv[tok] : "", err, errlen);
		id = option_of(c);
		if (id < 0)
			return usage_error(err, errlen, "unknown option");
		if (longindex >= 0 && tok < argc) {
			r = check_full_name(id, argv[tok], err, errlen);
			if (r < 0)
				return r;
		}
		if (id == OPT_HELP || id == OPT_VERSION) {
			out->mode = id == OPT_HELP ? CF_MODE_HELP : CF_MODE_VERSION;
			return 0;
		}
		r = handle_option(out, (enum opt_id)id, optarg, err, errlen);
		if (r == 0 && is_secret(&options[id]))
			r = record_secret(out, (enum opt_id)id, optarg, err, errlen);
		if (r < 0)
			return r;
	}
	return take_command(out, argc, argv, optind, err, errlen);
}

int cf_cli_parse(int argc, char *argv[], struct cf_cli *out, char *err, size_t errlen)
{
	int r;

	memset(out, 0, sizeof(*out));
	out->mode = CF_MODE_RUN;
	cf_config_init(&out->cfg);
	if (errlen)
		err[0] = '\0';
	if (argc < 1 || !argv)
		return usage_error(err, errlen, "empty argument list");
	r = parse_options(argc, argv, out, err, errlen);
	if (r < 0)
		cf_cli_free(out);
	return r;
}

/*
 * '*' for every byte, in place: /proc/PID/cmdline reads these very bytes, and
 * the strings cannot shrink without NULs that would split them into more
 * arguments. The password's length stays visible (docs: SECURITY.md).
 */
void cf_cli_scrub_argv(struct cf_cli *cli)
{
	for (size_t i = 0; i < cli->n_secrets; i++)
		memset(cli->secrets[i].at, '*', cli->secrets[i].len);
}

void cf_cli_free(struct cf_cli *cli)
{
	free(cli->profile);
	free(cli->report_path);
	cf_strv_free(&cli->report_more);
	free(cli->secrets);
	cf_config_free(&cli->cfg);
	cli->profile = NULL;
	cli->report_path = NULL;
	cli->secrets = NULL;
	cli->n_secrets = 0;
	cli->mode = CF_MODE_RUN;
}

#define HELP_WIDTH 79
#define HELP_COLUMN 30

/* Length of the next word of @s; a "[...]" group counts as one word. */
static int word_len(const char *s)
{
	size_t n = 0;
	bool bracket = false;

	for (; s[n] && (bracket || s[n] != ' '); n++) {
		if (s[n] == '[')
			bracket = true;
		else if (s[n] == ']')
			bracket = false;
	}
	return (int)n;
}

/* Print @text word-wrapped from column @col (the cursor is already there). */
static void print_wrapped(FILE *f, const char *text, int col)
{
	int pos = col;

	while (*text) {
		int word = word_len(text);

		if (pos > col && pos + 1 + word > HELP_WIDTH) {
			fprintf(f, "\n%*s", col, "");
			pos = col;
		} else if (pos > col) {
			fputc(' ', f);
			pos++;
		}
		fprintf(f, "%.*s", word, text);
		pos += word;
		text += word;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

static void print_option(FILE *f, const struct cf_cli_option *o)
{
	int n;

	if (o->short_name)
		n = fprintf(f, "  -%c, --%s", o->short_name, o->name);
	else
		n = fprintf(f, "      --%s", o->name);
	if (o->arg)
		n += fprintf(f, " %s", o->arg);
	if (n + 2 > HELP_COLUMN)
		fprintf(f, "\n%*s", HELP_COLUMN, "");
	else
		fprintf(f, "%*s", HELP_COLUMN - n, "");
	print_wrapped(f, o->help, HELP_COLUMN);
}

void cf_cli_usage(FILE *f)
{
	fputs("Usage: childflow [OPTIONS] [--] COMMAND [ARG]...\n"
	      "       childflow --doctor [OPTIONS]\n"
	      "       childflow --report FLOWLOG [--report-format FMT]\n"
	      "       childflow --dump-profile [OPTIONS] [--] [COMMAND [ARG]...]\n"
	      "\n"
	      "Run COMMAND and every process it starts in a network sandbox that childflow\n"
	      "controls (DNS, hosts, proxy, allow/deny policy) and records (pcapng capture,\n"
	      "flow log, summary). Without COMMAND the profile's command runs. Options end\n"
	      "at the first argument that is not an option, or at \"--\".\n",
	      f);
	for (size_t g = 0; g < CF_ARRAY_SIZE(group_titles); g++) {
		fprintf(f, "\n%s:\n", group_titles[g]);
		for (size_t i = 0; i < OPT__COUNT; i++)
			if ((size_t)options[i].group == g)
				print_option(f, &options[i]);
	}
	fputs("\n"
	      "Exit status:\n"
	      "  0-255   the command's exit status; 128+N when it was killed by signal N\n"
	      "childflow's own failures:\n"
	      "  122     --fail-on-leak: the command exited 0 but traffic was blocked\n"
	      "  123     internal runtime failure\n"
	      "  124     this host cannot run the sandbox (setup failed; run\n"
	      "          'childflow --doctor')\n"
	      "  125     usage or configuration error\n"
	      "  126     the command was found but could not be executed\n"
	      "  127     the command was not found\n"
	      "--doctor exits 0 when runs work (also with warnings), 1 when blocked.\n",
	      f);
}
