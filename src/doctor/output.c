/* SPDX-License-Identifier: MIT */
#include "doctor/output.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doctor.h"

const char *cf_doctor_verdict_name(int verdict)
{
	switch (verdict) {
	case CF_DOCTOR_READY:
		return "ready";
	case CF_DOCTOR_WARNINGS:
		return "ready with warnings";
	default:
		return "blocked";
	}
}

const char *cf_check_status_name(enum cf_check_status st)
{
	switch (st) {
	case CF_CHECK_OK:
		return "ok";
	case CF_CHECK_WARN:
		return "warn";
	case CF_CHECK_FAIL:
		return "fail";
	case CF_CHECK_SKIP:
		return "skip";
	}
	return "fail";
}

static const char *backend_name(enum cf_backend b)
{
	return b == CF_BACKEND_ROOTFUL ? "rootful" : "rootless-internal";
}

/* The text tag: failures in capitals, so they stand out in a column of [ok]. */
static const char *status_tag(enum cf_check_status st)
{
	switch (st) {
	case CF_CHECK_OK:
		return "[ok]";
	case CF_CHECK_WARN:
		return "[warn]";
	case CF_CHECK_FAIL:
		return "[FAIL]";
	case CF_CHECK_SKIP:
		return "[skip]";
	}
	return "[FAIL]";
}

int cf_doctor_print_text(const struct cf_doctor_report *rep, FILE *out)
{
	fprintf(out, "childflow doctor: %s backend, uid %u (euid %u)\n", backend_name(rep->backend),
		(unsigned)rep->uid, (unsigned)rep->euid);
	for (size_t i = 0; i < rep->table->n; i++) {
		const struct cf_check_def *d = &rep->table->defs[i];
		const struct cf_check *c = &rep->results[i];

		fprintf(out, "%-6s %-15s %s: %s", status_tag(c->status), d->key, d->label,
			c->detail);
		if (*c->hint && (c->status == CF_CHECK_WARN || c->status == CF_CHECK_FAIL))
			fprintf(out, " \u2014 hint: %s", c->hint);
		fputc('\n', out);
	}
	fprintf(out, "status: %s\n", cf_doctor_verdict_name(rep->verdict));
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}

/* A JSON string of @s; bytes that are not UTF-8 (a PATH, say) become '?'. */
static json_t *json_text(const char *s)
{
	json_t *j = json_string(s);
	char *copy;

	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (unsigned char *p = (unsigned char *)copy; *p; p++)
		if (*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* Set @key of @obj to @val (taking it); -ENOMEM when either failed. */
static int set(json_t *obj, const char *key, json_t *val)
{
	return val && json_object_set_new(obj, key, val) == 0 ? 0 : -ENOMEM;
}

static json_t *check_json(const struct cf_check_def *d, const struct cf_check *c)
{
	json_t *o = json_object();
	bool hint = *c->hint && (c->status == CF_CHECK_WARN || c->status == CF_CHECK_FAIL);
	int r;

	if (!o)
		return NULL;
	r = set(o, "key", json_string(d->key));
	if (r == 0)
		r = set(o, "label", json_text(d->label));
	if (r == 0)
		r = set(o, "status", json_string(cf_check_status_name(c->status)));
	if (r == 0)
		r = set(o, "detail", json_text(c->detail));
	if (r == 0)
		r = set(o, "hint", hint ? json_text(c->hint) : json_null());
	if (r < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *report_json(const struct cf_doctor_report *rep)
{
	json_t *o = json_object(), *checks = json_array();
	int r = o && checks ? 0 : -ENOMEM;

	if (r == 0)
		r = set(o, "schema_version", json_integer(1));
	if (r == 0)
		r = set(o, "backend", json_string(backend_name(rep->backend)));
	if (r == 0)
		r = set(o, "uid", json_integer(rep->uid));
	if (r == 0)
		r = set(o, "euid", json_integer(rep->euid));
	if (r == 0)
		r = set(o, "status", json_string(cf_doctor_verdict_name(rep->verdict)));
	if (r == 0)
		r = set(o, "exit_status", json_integer(cf_doctor_exit_status(rep->verdict)));
	for (size_t i = 0; r == 0 && i < rep->table->n; i++) {
		json_t *c = check_json(&rep->table->defs[i], &rep->results[i]);

		r = c && json_array_append_new(checks, c) == 0 ? 0 : -ENOMEM;
	}
	if (r == 0) {
		r = set(o, "checks", checks);
		checks = NULL;
	}
	json_decref(checks);
	if (r < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int cf_doctor_print_json(const struct cf_doctor_report *rep, FILE *out)
{
	json_t *o = report_json(rep);
	int r;

	if (!o)
		return -ENOMEM;
	r = json_dumpf(o, out, JSON_INDENT(2)) == 0 ? 0 : -EIO;
	json_decref(o);
	if (r == 0 && (fputc('\n', out) == EOF || fflush(out) != 0 || ferror(out)))
		r = -EIO;
	return r;
}
