// SPDX-License-Identifier: MIT
/*
 * Command-line parsing. One table (options[]) describes every option; the
 * getopt_long() array, the --help text and the option lookups are all built
 * from it, so an option cannot be parsed without being documented.
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
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/proxyuri.h"
#include "util/cleanup.h"

/* Index of each entry of options[]; keep both in the same order. */
enum opt_id {
	OPT_DOCTOR,
	OPT_DOCTOR_FORMAT,
	OPT_PROFILE,
	OPT_DUMP_PROFILE,
	OPT_DNS,
	OPT_HOSTS_FILE,
	OPT_PROXY,
	OPT_PROXY_USER,
	OPT_PROXY_PASSWORD,
	OPT_PROXY_INSECURE,
	OPT_PROXY_SEND_IP,
	OPT_PROXY_REMOTE_DNS,
	OPT_OFFLINE,
	OPT_BLOCK_PRIVATE,
	OPT_BLOCK_METADATA,
	OPT_DEFAULT_POLICY,
	OPT_ALLOW_CIDR,
	OPT_DENY_CIDR,
	OPT_ALLOW_DOMAIN,
	OPT_ALLOW_DOMAIN_EXACT,
	OPT_DENY_DOMAIN,
	OPT_DENY_DOMAIN_EXACT,
	OPT_PROXY_ONLY,
	OPT_FAIL_ON_LEAK,
	OPT_ALLOW_HOST_PORT,
	OPT_SUMMARY,
	OPT_SUMMARY_FORMAT,
	OPT_FLOW_LOG,
	OPT_REPORT,
	OPT_REPORT_FORMAT,
	OPT_CAPTURE,
	OPT_CAPTURE_POINT,
	OPT_ROOT,
	OPT_IFACE,
	OPT_HELP,
	OPT_VERSION,
	OPT_MASK,
	OPT_UNMASK,
	OPT__COUNT,
};

/* getopt_long() val of a long option: above every short option character. */
#define LONG_VAL_BASE 256

static const struct cf_cli_option options[OPT__COUNT] = {
    [OPT_DOCTOR] = {"doctor", 0, NULL,
		    "Diagnose whether this host can run the selected backend; run nothing.",
		    CF_CLI_GROUP_RUN},
    [OPT_DOCTOR_FORMAT] = {"doctor-format", 0, "FMT",
			   "Output of --doctor: text or json [default: text].", CF_CLI_GROUP_RUN},
    [OPT_PROFILE] = {"profile", 0, "FILE",
		     "Load defaults from a TOML profile; explicit options override it.",
		     CF_CLI_GROUP_PROFILE},
    [OPT_DUMP_PROFILE] = {"dump-profile", 0, NULL,
			  "Print the effective merged profile as TOML and exit, running nothing.",
			  CF_CLI_GROUP_PROFILE},
    [OPT_DNS] = {"dns", 'd', "IP",
		 "Send all of the tree's DNS to this IPv4 or IPv6 resolver "
		 "[default: the host's resolvers].",
		 CF_CLI_GROUP_DNS},
    [OPT_HOSTS_FILE] = {"hosts-file", 0, "FILE",
			"Show this /etc/hosts-format file as the tree's /etc/hosts.",
			CF_CLI_GROUP_DNS},
    [OPT_PROXY] = {"proxy", 'p', "URI",
		   "Send outbound TCP through this proxy: http://, https:// or "
		   "socks5://[USER[:PASS]@]HOST[:PORT], IPv6 hosts in brackets "
		   "[default ports: 80, 443, 1080].",
		   CF_CLI_GROUP_PROXY},
    [OPT_PROXY_USER] = {"proxy-user", 'U', "USER", "Proxy user name.", CF_CLI_GROUP_PROXY},
    [OPT_PROXY_PASSWORD] = {"proxy-password", 'P', "PASS",
			    "Proxy password (overwritten with '*' in the process list once "
			    "parsed; a profile keeps it out of shell history too).",
			    CF_CLI_GROUP_PROXY},
    [OPT_PROXY_INSECURE] = {"proxy-insecure", 0, NULL,
			    "For https:// proxies: accept an untrusted certificate, but "
			    "still check the host name.",
			    CF_CLI_GROUP_PROXY},
    [OPT_PROXY_SEND_IP] = {"proxy-send-ip", 0, NULL,
			   "Ask the proxy for the destination's IP address, even when the "
			   "tree resolved it from a name [default: the name].",
			   CF_CLI_GROUP_PROXY},
    [OPT_PROXY_REMOTE_DNS] = {"proxy-remote-dns", 0, NULL,
			      "Let the proxy resolve names: the tree's DNS queries are answered "
			      "with stand-in addresses (198.19.0.0/16, fd63:6866:6c77:53::/96) and "
			      "nothing is resolved on this host.",
			      CF_CLI_GROUP_PROXY},
    [OPT_OFFLINE] = {"offline", 0, NULL, "Block all outbound traffic, DNS forwarding included.",
		     CF_CLI_GROUP_POLICY},
    [OPT_BLOCK_PRIVATE] = {"block-private", 0, NULL,
			   "Block private, loopback, link-local and ULA destinations.",
			   CF_CLI_GROUP_POLICY},
    [OPT_BLOCK_METADATA] = {"block-metadata", 0, NULL,
			    "Block cloud metadata endpoints (169.254.169.254, "
			    "fd00:ec2::254, 100.100.100.200, ...).",
			    CF_CLI_GROUP_POLICY},
    [OPT_DEFAULT_POLICY] = {"default-policy", 0, "P",
			    "allow or deny destinations that no rule matches "
			    "[default: allow].",
			    CF_CLI_GROUP_POLICY},
    [OPT_ALLOW_CIDR] = {"allow-cidr", 0, "CIDR", "Allow an IPv4 or IPv6 range (repeatable).",
			CF_CLI_GROUP_POLICY},
    [OPT_DENY_CIDR] = {"deny-cidr", 0, "CIDR", "Deny an IPv4 or IPv6 range (repeatable).",
		       CF_CLI_GROUP_POLICY},
    [OPT_ALLOW_DOMAIN] = {"allow-domain", 0, "D",
			  "Allow addresses resolved from D or any subdomain of it "
			  "(repeatable).",
			  CF_CLI_GROUP_POLICY},
    [OPT_ALLOW_DOMAIN_EXACT] = {"allow-domain-exact", 0, "D",
				"Allow addresses resolved from exactly D (repeatable).",
				CF_CLI_GROUP_POLICY},
    [OPT_DENY_DOMAIN] = {"deny-domain", 0, "D",
			 "Deny D and its subdomains: the DNS query itself and the "
			 "addresses it resolved to (repeatable).",
			 CF_CLI_GROUP_POLICY},
    [OPT_DENY_DOMAIN_EXACT] = {"deny-domain-exact", 0, "D", "Deny exactly D (repeatable).",
			       CF_CLI_GROUP_POLICY},
    [OPT_PROXY_ONLY] = {"proxy-only", 0, NULL,
			"Outbound traffic must use the proxy; direct TCP, UDP, DNS and "
			"ICMP are blocked.",
			CF_CLI_GROUP_POLICY},
    [OPT_FAIL_ON_LEAK] = {"fail-on-leak", 0, NULL,
			  "Exit 122 when traffic was blocked but the command still "
			  "exited 0.",
			  CF_CLI_GROUP_POLICY},
    [OPT_ALLOW_HOST_PORT] = {"allow-host-port", 0, "PORT[/tcp|/udp]",
			     "Let the tree reach this port of the host's loopback (127.0.0.1 and "
			     "::1) at the name host.childflow.internal; every other address of "
			     "the host stays out of reach (repeatable; a bare PORT is TCP).",
			     CF_CLI_GROUP_POLICY},
    [OPT_SUMMARY] = {"summary", 0, NULL, "Print a summary to stderr after the run.",
		     CF_CLI_GROUP_OBSERVABILITY},
    [OPT_SUMMARY_FORMAT] = {"summary-format", 0, "FMT",
			    "Output of --summary: text or json [default: text].",
			    CF_CLI_GROUP_OBSERVABILITY},
    [OPT_FLOW_LOG] = {"flow-log", 0, "FILE", "Write flow events to FILE as JSON Lines.",
		      CF_CLI_GROUP_OBSERVABILITY},
    [OPT_REPORT] = {"report", 0, "FLOWLOG",
		    "Print a report of a saved flow log instead of running anything.",
		    CF_CLI_GROUP_OBSERVABILITY},
    [OPT_REPORT_FORMAT] = {"report-format", 0, "FMT",
			   "Output of --report: text, markdown or json [default: text].",
			   CF_CLI_GROUP_OBSERVABILITY},
    [OPT_CAPTURE] = {"capture", 'c', "OUT",
		     "Write the tree's packets, and only those, to OUT as pcapng.",
		     CF_CLI_GROUP_CAPTURE},
    [OPT_CAPTURE_POINT] = {"capture-point", 'C', "VIEW",
			   "child, egress, wire-egress or both (writes OUT.child.pcapng "
			   "and OUT.egress.pcapng) [default: child].",
			   CF_CLI_GROUP_CAPTURE},
    [OPT_ROOT] = {"root", 0, NULL,
		  "Use the rootful backend (needs root) [default: rootless-internal].",
		  CF_CLI_GROUP_ROOTFUL},
    [OPT_IFACE] = {"iface", 'i', "IFACE",
		   "Send direct traffic out of this host interface (rootful).",
		   CF_CLI_GROUP_ROOTFUL},
    [OPT_HELP] = {"help", 'h', NULL, "Print this help and exit.", CF_CLI_GROUP_OTHER},
    [OPT_VERSION] = {"version", 'V', NULL, "Print the version and exit.", CF_CLI_GROUP_OTHER},
    [OPT_MASK] = {"mask", 0, "PATH",
		  "Hide this absolute path (a UNIX socket, a file or a directory) from the "
		  "tree, besides the sockets hidden by default (repeatable).",
		  CF_CLI_GROUP_SANDBOX},
    [OPT_UNMASK] = {"unmask", 0, "PATH",
		    "Let the tree reach PATH, one of the sockets hidden by default: the D-Bus "
		    "session bus, the systemd user manager, Docker, Podman, containerd, tmux "
		    "and screen (repeatable; the list: SECURITY.md).",
		    CF_CLI_GROUP_SANDBOX},
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

/* A value parsed by name: the accepted names of one option. */
struct choice {
	const char *name;
	int value;
};

static const struct choice text_json[] = {
    {"text", CF_FORMAT_TEXT},
    {"json", CF_FORMAT_JSON},
    {NULL, 0},
};

static const struct choice report_formats[] = {
    {"text", CF_FORMAT_TEXT},
    {"markdown", CF_FORMAT_MARKDOWN},
    {"json", CF_FORMAT_JSON},
    {NULL, 0},
};

static const struct choice capture_points[] = {
    {"child", CF_CAPTURE_CHILD},
    {"egress", CF_CAPTURE_EGRESS},
    {"wire-egress", CF_CAPTURE_WIRE_EGRESS},
    {"both", CF_CAPTURE_BOTH},
    {NULL, 0},
};

static const struct choice policies[] = {
    {"allow", CF_POLICY_ALLOW},
    {"deny", CF_POLICY_DENY},
    {NULL, 0},
};

/* Look @arg up in @choices; on failure the message lists what is accepted. */
static int parse_choice(enum opt_id id, const char *arg, const struct choice *choices, int *value,
			char *err, size_t errlen)
{
	char list[128] = "";
	size_t pos = 0;

	for (const struct choice *c = choices; c->name; c++) {
		if (strcmp(arg, c->name) == 0) {
			*value = c->value;
			return 0;
		}
	}
	for (const struct choice *c = choices; c->name && pos < sizeof(list); c++) {
		int n = snprintf(list + pos, sizeof(list) - pos, "%s%s", pos ? ", " : "", c->name);

		if (n < 0)
			break;
		pos += (size_t)n;
	}
	return usage_error(err, errlen, "--%s: invalid value '%s' (expected one of: %s)",
			   options[id].name, arg, list);
}

/* Options whose value is one of a fixed set of names. */
static const struct {
	enum opt_id id;
	enum cf_key key;
	const struct choice *choices;
} choice_options[] = {
    {OPT_DOCTOR_FORMAT, CF_KEY_DOCTOR_FORMAT, text_json},
    {OPT_SUMMARY_FORMAT, CF_KEY_SUMMARY_FORMAT, text_json},
    {OPT_REPORT_FORMAT, CF_KEY_REPORT_FORMAT, report_formats},
    {OPT_CAPTURE_POINT, CF_KEY_CAPTURE_POINT, capture_points},
    {OPT_DEFAULT_POLICY, CF_KEY_DEFAULT_POLICY, policies},
};

static void set_choice(struct cf_config *cfg, enum cf_key key, int v)
{
	switch (key) {
	case CF_KEY_DOCTOR_FORMAT:
		cfg->doctor_format = (enum cf_format)v;
		break;
	case CF_KEY_SUMMARY_FORMAT:
		cfg->summary_format = (enum cf_format)v;
		break;
	case CF_KEY_REPORT_FORMAT:
		cfg->report_format = (enum cf_format)v;
		break;
	case CF_KEY_CAPTURE_POINT:
		cfg->capture_point = (enum cf_capture_point)v;
		break;
	default:
		cfg->default_policy = (enum cf_default_policy)v;
		break;
	}
	cfg->set |= CF_KEY_BIT(key);
}

/* Parse and store a named value; return 1 when @id is not such an option. */
static int handle_choice(struct cf_config *cfg, enum opt_id id, const char *arg, char *err,
			 size_t errlen)
{
	for (size_t i = 0; i < CF_ARRAY_SIZE(choice_options); i++) {
		int v = 0, r;

		if (choice_options[i].id != id)
			continue;
		r = parse_choice(id, arg, choice_options[i].choices, &v, err, errlen);
		if (r < 0)
			return r;
		set_choice(cfg, choice_options[i].key, v);
		return 0;
	}
	return 1;
}

/* On/off flags: which key they set and where the bool lives. */
static const struct {
	enum opt_id id;
	enum cf_key key;
	size_t offset;
} flags[] = {
    {OPT_PROXY_INSECURE, CF_KEY_PROXY_INSECURE, offsetof(struct cf_config, proxy_insecure)},
    {OPT_PROXY_SEND_IP, CF_KEY_PROXY_SEND_IP, offsetof(struct cf_config, proxy_send_ip)},
    {OPT_PROXY_REMOTE_DNS, CF_KEY_PROXY_REMOTE_DNS,
     offsetof(struct cf_config, proxy_remote_dns)},
    {OPT_OFFLINE, CF_KEY_OFFLINE, offsetof(struct cf_config, offline)},
    {OPT_BLOCK_PRIVATE, CF_KEY_BLOCK_PRIVATE, offsetof(struct cf_config, block_private)},
    {OPT_BLOCK_METADATA, CF_KEY_BLOCK_METADATA, offsetof(struct cf_config, block_metadata)},
    {OPT_PROXY_ONLY, CF_KEY_PROXY_ONLY, offsetof(struct cf_config, proxy_only)},
    {OPT_FAIL_ON_LEAK, CF_KEY_FAIL_ON_LEAK, offsetof(struct cf_config, fail_on_leak)},
    {OPT_SUMMARY, CF_KEY_SUMMARY, offsetof(struct cf_config, summary)},
};

/* Set the flag of @id; return whether @id is a flag at all. */
static bool handle_flag(struct cf_config *cfg, enum opt_id id)
{
	for (size_t i = 0; i < CF_ARRAY_SIZE(flags); i++) {
		if (flags[i].id == id) {
			*(bool *)((char *)cfg + flags[i].offset) = true;
			cfg->set |= CF_KEY_BIT(flags[i].key);
			return true;
		}
	}
	return false;
}

/* An input file: it must exist and be a readable regular file. */
static int check_input_file(enum opt_id id, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (!*path)
		return usage_error(err, errlen, "--%s: empty file name", options[id].name);
	if (stat(path, &st) < 0 || (S_ISREG(st.st_mode) && access(path, R_OK) < 0))
		return usage_error(err, errlen, "--%s: cannot read '%s': %s", options[id].name,
				   path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return usage_error(err, errlen, "--%s: '%s' is not a regular file",
				   options[id].name, path);
	return 0;
}

/* An output file: its directory must exist and be writable; it may exist as a file. */
static int check_output_file(enum opt_id id, const char *path, char *err, size_t errlen)
{
	cleanup_free char *dir = NULL;
	const char *slash;
	struct stat st;

	if (!*path)
		return usage_error(err, errlen, "--%s: empty file name", options[id].name);
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return usage_error(err, errlen, "--%s: '%s' is a directory",
					   options[id].name, path);
		if (access(path, W_OK) < 0)
			return usage_error(err, errlen, "--%s: cannot write '%s': %s",
					   options[id].name, path, strerror(errno));
		return 0;
	}
	slash = strrchr(path, '/');
	dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return oom(err, errlen);
	if (stat(dir, &st) < 0 || (S_ISDIR(st.st_mode) && access(dir, W_OK | X_OK) < 0))
		return usage_error(err, errlen, "--%s: cannot create '%s': directory '%s': %s",
				   options[id].name, path, dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return usage_error(err, errlen, "--%s: cannot create '%s': '%s' is not a directory",
				   options[id].name, path, dir);
	return 0;
}

/* Store @path in *dst, made absolute against the current directory. */
static int store_absolute(char **dst, const char *path, char *err, size_t errlen)
{
	cleanup_free char *cwd = NULL;
	char *abs;

	if (path[0] == '/') {
		abs = strdup(path);
	} else {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return usage_error(err, errlen, "cannot resolve '%s': %s", path,
					   strerror(errno));
		while (path[0] == '.' && path[1] == '/')
			path += 2 + strspn(path + 2, "/");
		if (asprintf(&abs, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", path) < 0)
			abs = NULL;
	}
	if (!abs)
		return oom(err, errlen);
	free(*dst);
	*dst = abs;
	return 0;
}

static int handle_path(struct cf_cli *cli, enum opt_id id, const char *arg, char *err,
		       size_t errlen)
{
	struct cf_config *cfg = &cli->cfg;
	char **dst;
	enum cf_key key;
	int r;

	if (id == OPT_PROFILE || id == OPT_REPORT) {
		r = check_input_file(id, arg, err, errlen);
		if (r < 0)
			return r;
		dst = id == OPT_PROFILE ? &cli->profile : &cli->report_path;
		free(*dst);
		*dst = strdup(arg);
		return *dst ? 0 : oom(err, errlen);
	}
	if (id == OPT_HOSTS_FILE) {
		r = check_input_file(id, arg, err, errlen);
		dst = &cfg->hosts_file;
		key = CF_KEY_HOSTS_FILE;
	} else {
		r = check_output_file(id, arg, err, errlen);
		dst = id == OPT_CAPTURE ? &cfg->capture : &cfg->flow_log;
		key = id == OPT_CAPTURE ? CF_KEY_CAPTURE : CF_KEY_FLOW_LOG;
	}
	if (r < 0)
		return r;
	r = store_absolute(dst, arg, err, errlen);
	if (r < 0)
		return r;
	cfg->set |= CF_KEY_BIT(key);
	return 0;
}

static int handle_cidr(struct cf_config *cfg, enum opt_id id, const char *arg, char *err,
		       size_t errlen)
{
	bool allow = id == OPT_ALLOW_CIDR;
	struct cf_cidr c;

	if (cf_cidr_parse(arg, &c) < 0)
		return usage_error(err, errlen, "--%s: invalid CIDR '%s'", options[id].name, arg);
	if (cf_cidrv_push(allow ? &cfg->allow_cidrs : &cfg->deny_cidrs, &c) < 0)
		return oom(err, errlen);
	cfg->set |= CF_KEY_BIT(allow ? CF_KEY_ALLOW_CIDRS : CF_KEY_DENY_CIDRS);
	return 0;
}

/* The list and key of a domain option, or NULL when @id is not one. */
static struct cf_strv *domain_list(struct cf_config *cfg, enum opt_id id, enum cf_key *key)
{
	switch (id) {
	case OPT_ALLOW_DOMAIN:
		*key = CF_KEY_ALLOW_DOMAINS;
		return &cfg->allow_domains;
	case OPT_ALLOW_DOMAIN_EXACT:
		*key = CF_KEY_ALLOW_DOMAINS_EXACT;
		return &cfg->allow_domains_exact;
	case OPT_DENY_DOMAIN:
		*key = CF_KEY_DENY_DOMAINS;
		return &cfg->deny_domains;
	case OPT_DENY_DOMAIN_EXACT:
		*key = CF_KEY_DENY_DOMAINS_EXACT;
		return &cfg->deny_domains_exact;
	default:
		return NULL;
	}
}

/* Normalise and append a domain; return 1 when @id is not a domain option. */
static int handle_domain(struct cf_config *cfg, enum opt_id id, const char *arg, char *err,
			 size_t errlen)
{
	cleanup_free char *name = NULL;
	enum cf_key key = CF_KEY__COUNT;
	struct cf_strv *list = domain_list(cfg, id, &key);

	if (!list)
		return 1;
	name = strdup(arg);
	if (!name)
		return oom(err, errlen);
	if (cf_domain_normalise(name) < 0)
		return usage_error(err, errlen, "--%s: invalid domain '%s'", options[id].name, arg);
	if (cf_strv_push(list, name) < 0)
		return oom(err, errlen);
	cfg->set |= CF_KEY_BIT(key);
	return 0;
}

static int handle_proxy(struct cf_config *cfg, const char *arg, char *err, size_t errlen)
{
	char why[512];
	struct cf_proxy p;
	int r;

	r = cf_proxy_parse(arg, &p, why, sizeof(why));
	if (r == -ENOMEM)
		return oom(err, errlen);
	if (r < 0)
		return usage_error(err, errlen, "--proxy: %s", why);
	cf_proxy_free(&cfg->proxy);
	cfg->proxy = p;
	cfg->set |= CF_KEY_BIT(CF_KEY_PROXY);
	return 0;
}

static bool has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* -U and -P. The password is never quoted back. */
static int handle_credential(struct cf_config *cfg, enum opt_id id, const char *arg, char *err,
			     size_t errlen)
{
	bool user = id == OPT_PROXY_USER;
	char *copy;

	if (user && !*arg)
		return usage_error(err, errlen, "--proxy-user: empty user name");
	if (has_control_char(arg))
		return user ? usage_error(err, errlen,
					  "--proxy-user: control characters in user name '%s'", arg)
			    : usage_error(err, errlen,
					  "--proxy-password: the password contains control "
					  "characters");
	copy = strdup(arg);
	if (!copy)
		return oom(err, errlen);
	if (user) {
		free(cfg->proxy_user);
		cfg->proxy_user = copy;
		cfg->set |= CF_KEY_BIT(CF_KEY_PROXY_USER);
	} else {
		if (cfg->proxy_password)
			explicit_bzero(cfg->proxy_password, strlen(cfg->proxy_password));
		free(cfg->proxy_password);
		cfg->proxy_password = copy;
		cfg->set |= CF_KEY_BIT(CF_KEY_PROXY_PASSWORD);
	}
	return 0;
}

/* --mask / --unmask: an absolute path, normalised, appended to its list. */
static int handle_mask(struct cf_config *cfg, enum opt_id id, const char *arg, char *err,
		       size_t errlen)
{
	bool mask = id == OPT_MASK;
	cleanup_free char *path = strdup(arg);

	if (!path)
		return oom(err, errlen);
	if (cf_mask_path_normalise(path) < 0)
		return usage_error(err, errlen,
				   "--%s: '%s' is not an absolute path other than '/' (write it "
				   "from the root, e.g. /run/user/1000/bus)",
				   options[id].name, has_control_char(arg) ? "?" : arg);
	if (cf_strv_push(mask ? &cfg->mask : &cfg->unmask, path) < 0)
		return oom(err, errlen);
	cfg->set |= CF_KEY_BIT(mask ? CF_KEY_MASK : CF_KEY_UNMASK);
	return 0;
}

/* An interface name the kernel would accept (dev_valid_name()). */
static int handle_iface(struct cf_config *cfg, const char *arg, char *err, size_t errlen)
{
	size_t n = strlen(arg);
	char *copy;

	if (n == 0 || n >= IFNAMSIZ || !strcmp(arg, ".") || !strcmp(arg, "..") ||
	    strpbrk(arg, "/: \t\n\v\f\r") || has_control_char(arg))
		return usage_error(err, errlen,
				   "--iface: invalid interface name '%s' (1-%d characters, "
				   "no '/', ':' or spaces)",
				   arg, IFNAMSIZ - 1);
	copy = strdup(arg);
	if (!copy)
		return oom(err, errlen);
	free(cfg->iface);
	cfg->iface = copy;
	cfg->set |= CF_KEY_BIT(CF_KEY_IFACE);
	return 0;
}

static int handle_host_port(struct cf_config *cfg, const char *arg, char *err, size_t errlen)
{
	char norm[CF_HOST_PORT_STRLEN];
	struct cf_host_port hp;

	if (cf_host_port_parse(arg, &hp) < 0)
		return usage_error(err, errlen,
				   "--allow-host-port: invalid port '%s' (expected PORT, PORT/tcp or "
				   "PORT/udp, PORT 1-65535)",
				   arg);
	if (cf_strv_push(&cfg->allow_host_ports, cf_host_port_format(&hp, norm, sizeof(norm))) < 0)
		return oom(err, errlen);
	cfg->set |= CF_KEY_BIT(CF_KEY_ALLOW_HOST_PORTS);
	return 0;
}

static int handle_dns(struct cf_config *cfg, const char *arg, char *err, size_t errlen)
{
	if (cf_ip_parse(arg, &cfg->dns) < 0)
		return usage_error(err, errlen, "--dns: invalid IP address '%s'", arg);
	cfg->dns_set = true;
	cfg->set |= CF_KEY_BIT(CF_KEY_DNS);
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
	struct cf_config *cfg = &cli->cfg;
	int r;

	if (handle_flag(cfg, id))
		return 0;
	r = handle_choice(cfg, id, arg, err, errlen);
	if (r <= 0)
		return r;
	r = handle_domain(cfg, id, arg, err, errlen);
	if (r <= 0)
		return r;
	switch (id) {
	case OPT_DOCTOR:
		return set_mode(cli, CF_MODE_DOCTOR, err, errlen);
	case OPT_DUMP_PROFILE:
		return set_mode(cli, CF_MODE_DUMP_PROFILE, err, errlen);
	case OPT_REPORT:
		r = set_mode(cli, CF_MODE_REPORT, err, errlen);
		return r < 0 ? r : handle_path(cli, id, arg, err, errlen);
	case OPT_PROFILE:
	case OPT_HOSTS_FILE:
	case OPT_CAPTURE:
	case OPT_FLOW_LOG:
		return handle_path(cli, id, arg, err, errlen);
	case OPT_ALLOW_CIDR:
	case OPT_DENY_CIDR:
		return handle_cidr(cfg, id, arg, err, errlen);
	case OPT_PROXY:
		return handle_proxy(cfg, arg, err, errlen);
	case OPT_PROXY_USER:
	case OPT_PROXY_PASSWORD:
		return handle_credential(cfg, id, arg, err, errlen);
	case OPT_DNS:
		return handle_dns(cfg, arg, err, errlen);
	case OPT_IFACE:
		return handle_iface(cfg, arg, err, errlen);
	case OPT_ALLOW_HOST_PORT:
		return handle_host_port(cfg, arg, err, errlen);
	case OPT_MASK:
	case OPT_UNMASK:
		return handle_mask(cfg, id, arg, err, errlen);
	case OPT_ROOT:
		cfg->backend = CF_BACKEND_ROOTFUL;
		cfg->set |= CF_KEY_BIT(CF_KEY_BACKEND);
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
	if (cli->mode == CF_MODE_DOCTOR || cli->mode == CF_MODE_REPORT)
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
		if (r == 0 && (id == OPT_PROXY || id == OPT_PROXY_PASSWORD))
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
	      "  127     the command was not found\n",
	      f);
}
