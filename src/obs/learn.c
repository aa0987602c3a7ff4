// SPDX-License-Identifier: MIT
/*
 * --report-format profile: a default-deny profile learned from flow logs.
 *
 * Theory of operation: each log is read line by line (as --report reads
 * it: malformed lines are named and skipped) and each event updates a few
 * jansson objects used as ordered hash maps (jansson keeps insertion
 * order, which is the order of first sighting the profile prints):
 *
 *   dns_answer        every answer IP -> the name asked (latest answer wins,
 *                     per log), the way the policy's name memory links a
 *                     connection to a name; the name is "resolved"
 *   connect_attempt   (TCP) a destination: the name its address came from
 *                     -> allow_domains_exact, else the address itself ->
 *                     allow_cidrs (/32, /128); refused and failed connects
 *                     count too, so the replay fails the same way
 *   UDP and ICMP      the same, from learn_dgram() (the one place that knows
 *                     which events carry datagram flows)
 *   dns_query         flow id -> name, to name a denied query
 *   policy_violation  a comment, never an allow entry
 *
 * Only names a domain rule can hold (config's cf_domain_normalise(), no
 * '*') become entries; any other is a comment. Every string from a log is
 * escaped before it reaches a comment, so the output is valid UTF-8 TOML
 * whatever the log holds.
 */
#include "obs/learn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "config/config.h"
#include "net/addr.h"
#include "obs/report.h"
#include "obs/text.h"
#include "util/cleanup.h"

struct cf_learn {
	json_t *domains;  /* allowed names -> provenance */
	json_t *cidrs;	  /* allowed "ip/32" -> provenance */
	json_t *resolved; /* every name with an answer -> provenance */
	json_t *unfit;	  /* names no domain rule can hold -> provenance */
	json_t *denied;	  /* "proto destination" -> the policy's reason */
	json_t *ip_names; /* this log: answer IP -> name */
	json_t *queries;  /* this log: DNS flow id -> name */
	json_t *logs;	  /* the logs read, in order */
	const char *log;  /* the log being read */
};

int cf_learn_new(struct cf_learn **out)
{
	struct cf_learn *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->domains = json_object();
	l->cidrs = json_object();
	l->resolved = json_object();
	l->unfit = json_object();
	l->denied = json_object();
	l->ip_names = json_object();
	l->queries = json_object();
	l->logs = json_array();
	if (!l->domains || !l->cidrs || !l->resolved || !l->unfit || !l->denied || !l->ip_names ||
	    !l->queries || !l->logs) {
		cf_learn_free(l);
		return -ENOMEM;
	}
	*out = l;
	return 0;
}

void cf_learn_free(struct cf_learn *l)
{
	if (!l)
		return;
	json_decref(l->domains);
	json_decref(l->cidrs);
	json_decref(l->resolved);
	json_decref(l->unfit);
	json_decref(l->denied);
	json_decref(l->ip_names);
	json_decref(l->queries);
	json_decref(l->logs);
	free(l);
}

/* --- events ------------------------------------------------------------------ */

static const char *str_of(const json_t *ev, const char *key)
{
	return json_string_value(json_object_get(ev, key));
}

/* Store @text under @key in @map unless @key is there already (first sighting wins). */
static int remember(json_t *map, const char *key, const char *text)
{
	if (json_object_get(map, key))
		return 0;
	return json_object_set_new(map, key, json_string(text)) < 0 ? -ENOMEM : 0;
}

/*
 * "first seen 2026-12-06T06:50:00.123Z in run.jsonl: tcp 198.51.100.10:80,
 * curl (pid 42)", with the parts the event has. Raw: escaped when printed.
 */
static void provenance(const struct cf_learn *l, const json_t *ev, const char *what, char *buf,
		       size_t len)
{
	char ts[32] = "", proc[96] = "";
	const json_t *t = json_object_get(ev, "ts_ms");
	const char *comm = str_of(ev, "comm");
	const json_t *pid = json_object_get(ev, "pid");

	if (json_is_integer(t))
		cf_format_ts_ms((int64_t)json_integer_value(t), ts, sizeof(ts));
	if (comm && json_is_integer(pid))
		snprintf(proc, sizeof(proc), ", %s (pid %" JSON_INTEGER_FORMAT ")", comm,
			 json_integer_value(pid));
	else if (comm)
		snprintf(proc, sizeof(proc), ", %s", comm);
	snprintf(buf, len, "first seen %s%sin %s: %s%s", ts, ts[0] ? " " : "", l->log, what, proc);
}

/* Whether @name can be an allow_domains_exact entry as it is. */
static bool fits_a_rule(const char *name)
{
	char copy[256];

	if (strlen(name) >= sizeof(copy) || strchr(name, '*'))
		return false;
	strcpy(copy, name);
	return cf_domain_normalise(copy) == 0 && strcmp(copy, name) == 0;
}

/* The tree reached @ip (a string of the log) with @proto: allow its name, or it. */
static int learn_destination(struct cf_learn *l, const json_t *ev, const char *proto,
			     const char *ip_text)
{
	char what[320], prov[512], cidr_text[CF_IP_STRLEN + 8];
	const char *addr = str_of(ev, "remote_addr");
	const char *name = json_string_value(json_object_get(l->ip_names, ip_text));
	struct cf_cidr c;

	snprintf(what, sizeof(what), "%s %s%s%s%s", proto, addr ? addr : ip_text,
		 name ? " (resolved from " : "", name ? name : "", name ? ")" : "");
	provenance(l, ev, what, prov, sizeof(prov));
	if (name)
		return remember(fits_a_rule(name) ? l->domains : l->unfit, name, prov);
	if (cf_ip_parse(ip_text, &c.ip) < 0)
		return 0; /* not an address: nothing a rule could hold */
	c.prefix = c.ip.family == AF_INET ? 32 : 128;
	return remember(l->cidrs, cf_cidr_format(&c, cidr_text, sizeof(cidr_text)), prov);
}

/*
 * A UDP or ICMP flow's start: 1 when @ev is one (learned), 0 when not, or
 * -ENOMEM. Today's logs carry them as connect_attempt with protocol udp,
 * icmpv4 or icmpv6; the datagram-flow events (datagram_flow_start) are
 * accepted too. This is the one place that knows how they are logged.
 */
static int learn_dgram(struct cf_learn *l, const char *event, const json_t *ev)
{
	const char *proto = str_of(ev, "protocol");
	const char *ip = str_of(ev, "remote_ip");

	if (strcmp(event, "connect_attempt") != 0 && strcmp(event, "datagram_flow_start") != 0)
		return 0;
	if (!proto || !ip ||
	    (strcmp(proto, "udp") != 0 && strcmp(proto, "icmpv4") != 0 &&
	     strcmp(proto, "icmpv6") != 0))
		return 0;
	return learn_destination(l, ev, proto, ip) < 0 ? -ENOMEM : 1;
}

static int learn_answer(struct cf_learn *l, const json_t *ev)
{
	const char *mode = str_of(ev, "mode"), *qname = str_of(ev, "qname");
	const json_t *ips = json_object_get(ev, "answer_ips"), *ip;
	char what[320], prov[512];
	size_t i;

	if (!qname || !mode || strcmp(mode, "synthetic_empty") == 0 || !json_array_size(ips))
		return 0;
	json_array_foreach(ips, i, ip)
	{
		if (json_is_string(ip) &&
		    json_object_set_new(l->ip_names, json_string_value(ip), json_string(qname)) < 0)
			return -ENOMEM;
	}
	snprintf(what, sizeof(what), "dns %s", qname);
	provenance(l, ev, what, prov, sizeof(prov));
	return remember(l->resolved, qname, prov);
}

static int learn_query(struct cf_learn *l, const json_t *ev)
{
	const json_t *id = json_object_get(ev, "flow_id");
	const char *qname = str_of(ev, "qname");
	char key[32];

	if (!json_is_integer(id) || !qname)
		return 0;
	snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
	return json_object_set_new(l->queries, key, json_string(qname)) < 0 ? -ENOMEM : 0;
}

static int learn_violation(struct cf_learn *l, const json_t *ev)
{
	const char *proto = str_of(ev, "protocol"), *remote = str_of(ev, "remote");
	const char *reason = str_of(ev, "reason"), *qname = NULL;
	const json_t *id = json_object_get(ev, "flow_id");
	char key[512], idk[32];

	if (proto && strcmp(proto, "dns") == 0 && json_is_integer(id)) {
		snprintf(idk, sizeof(idk), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
		qname = json_string_value(json_object_get(l->queries, idk));
	}
	snprintf(key, sizeof(key), "%s %s", proto ? proto : "?",
		 qname ? qname : (remote ? remote : "?"));
	return remember(l->denied, key, reason ? reason : "");
}

/* Learn from one event; 0 or -ENOMEM. Unknown events and fields are ignored. */
static int learn_event(struct cf_learn *l, const json_t *ev)
{
	const char *event = str_of(ev, "event"), *proto, *ip;
	int r;

	if (!event)
		return 0;
	r = learn_dgram(l, event, ev);
	if (r != 0)
		return r < 0 ? r : 0;
	if (strcmp(event, "dns_answer") == 0)
		return learn_answer(l, ev);
	if (strcmp(event, "dns_query") == 0)
		return learn_query(l, ev);
	if (strcmp(event, "policy_violation") == 0)
		return learn_violation(l, ev);
	if (strcmp(event, "connect_attempt") != 0)
		return 0;
	proto = str_of(ev, "protocol");
	ip = str_of(ev, "remote_ip");
	if (!proto || strcmp(proto, "tcp") != 0 || !ip)
		return 0;
	return learn_destination(l, ev, "tcp", ip);
}

/* --- reading ------------------------------------------------------------------- */

static void malformed(const struct cf_learn *l, FILE *err_out, uint64_t lineno, const char *what,
		      unsigned *said)
{
	if (!err_out || (*said)++ >= CF_REPORT_MAX_MESSAGES)
		return;
	cf_fput_escaped(err_out, l->log, strlen(l->log), CF_ESCAPE_TEXT);
	fprintf(err_out, ": line %" PRIu64 ": %s\n", lineno, what);
}

int cf_learn_stream(struct cf_learn *l, FILE *in, const char *name, FILE *err_out)
{
	cleanup_free char *line = NULL;
	size_t cap = 0;
	uint64_t lineno = 0;
	unsigned said = 0;
	ssize_t n;
	int r = 0;

	l->log = name;
	json_object_clear(l->ip_names);
	json_object_clear(l->queries);
	if (json_array_append_new(l->logs, json_string(name)) < 0)
		return -ENOMEM;
	errno = 0;
	while (r == 0 && (n = getline(&line, &cap, in)) >= 0) {
		json_error_t jerr;
		json_t *ev;

		lineno++;
		if ((size_t)n > CF_REPORT_MAX_LINE) {
			malformed(l, err_out, lineno, "too long", &said);
			continue;
		}
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue;
		ev = json_loadb(line, (size_t)n, JSON_DECODE_ANY, &jerr);
		if (!json_is_object(ev))
			malformed(l, err_out, lineno, "not a JSON object", &said);
		else
			r = learn_event(l, ev);
		json_decref(ev);
		errno = 0;
	}
	if (r == 0 && ferror(in))
		r = errno ? -errno : -EIO;
	if (said > CF_REPORT_MAX_MESSAGES && err_out) {
		cf_fput_escaped(err_out, name, strlen(name), CF_ESCAPE_TEXT);
		fprintf(err_out, ": %u more malformed lines not shown\n",
			said - CF_REPORT_MAX_MESSAGES);
	}
	l->log = NULL;
	return r;
}

/* --- printing ------------------------------------------------------------------- */

/* "# TEXT" on one line, TEXT escaped (a log's strings are the tree's). */
static void comment(FILE *f, const char *indent, const char *a, const char *b)
{
	fprintf(f, "%s# ", indent);
	cf_fput_escaped(f, a, strlen(a), CF_ESCAPE_TEXT);
	if (b) {
		fputs(": ", f);
		cf_fput_escaped(f, b, strlen(b), CF_ESCAPE_TEXT);
	}
	fputc('\n', f);
}

/* A TOML array of @map's keys (plain: names and CIDRs need no quoting), each under its comment. */
static void print_list(FILE *f, const char *key, const json_t *map)
{
	const char *k;
	json_t *v;

	if (!json_object_size(map)) {
		fprintf(f, "%s = []\n", key);
		return;
	}
	fprintf(f, "%s = [\n", key);
	json_object_foreach((json_t *)map, k, v)
	{
		comment(f, "  ", json_string_value(v), NULL);
		fprintf(f, "  \"%s\",\n", k);
	}
	fputs("]\n", f);
}

/* A block of comments: @title, then one "KEY: TEXT" line per entry of @map. */
static void print_comments(FILE *f, const char *title, const json_t *map, const json_t *skip)
{
	const char *k;
	json_t *v;
	bool first = true;

	json_object_foreach((json_t *)map, k, v)
	{
		if (skip && json_object_get(skip, k))
			continue;
		if (first)
			fprintf(f, "\n# %s\n", title);
		first = false;
		comment(f, "", k, json_string_value(v));
	}
}

int cf_learn_print(const struct cf_learn *l, FILE *out)
{
	size_t i;
	json_t *name;

	fprintf(out,
		"# childflow profile learned from %zu flow log%s "
		"(childflow --report LOG --report-format profile):\n",
		json_array_size(l->logs), json_array_size(l->logs) == 1 ? "" : "s");
	json_array_foreach(l->logs, i, name)
	{
		const char *s = json_string_value(name);

		fputs("#   ", out);
		cf_fput_escaped(out, s, strlen(s), CF_ESCAPE_TEXT);
		fputc('\n', out);
	}
	fputs("# It allows the names the tree resolved and then connected to, exactly as\n"
	      "# asked, and the addresses it connected to without a name; everything else\n"
	      "# is denied. Review it before use: it holds what the run did, not what it\n"
	      "# should do.\n\n"
	      "default_policy = \"deny\"\n\n",
	      out);
	print_list(out, "allow_domains_exact", l->domains);
	fputc('\n', out);
	print_list(out, "allow_cidrs", l->cidrs);
	print_comments(out,
		       "Reached, but no domain rule can hold the name (not allowed; add "
		       "allow_cidrs for its addresses if it must be):",
		       l->unfit, NULL);
	print_comments(out, "Resolved, never connected to (not allowed):", l->resolved, l->domains);
	print_comments(out, "Denied in the run (not allowed):", l->denied, NULL);
	return fflush(out) != 0 || ferror(out) ? -EIO : 0;
}

int cf_learn_run(const char *const *paths, size_t n, FILE *out, FILE *err_out, const char **failed)
{
	struct cf_learn *l;
	int r = cf_learn_new(&l);

	for (size_t i = 0; r == 0 && i < n; i++) {
		FILE *in = fopen(paths[i], "re");

		if (!in) {
			r = -errno;
		} else {
			r = cf_learn_stream(l, in, paths[i], err_out);
			fclose(in);
		}
		if (r < 0 && r != -ENOMEM && failed)
			*failed = paths[i];
	}
	if (r == 0)
		r = cf_learn_print(l, out);
	cf_learn_free(l);
	return r;
}
