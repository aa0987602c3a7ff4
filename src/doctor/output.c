/* SPDX-License-Identifier: MIT */
#include "doctor/output.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doctor.h"
#include "util/cleanup.h"

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

/*
 * The original's capability keys (docs/doctor-schema.md, "Fields of the
 * original"), each filled from the one check of ours that tries the same
 * thing. The original's other keys have no check of ours that answers them
 * (docs/compatibility.md) and are left out, as it leaves out keys itself.
 */
static const struct capability {
	enum cf_backend backend;
	const char *check; /* our key */
	const char *key, *label;
} capabilities[] = {
    {CF_BACKEND_ROOTLESS, "userns", "unprivileged_user_namespaces", "unprivileged user namespaces"},
    {CF_BACKEND_ROOTLESS, "uidmap_helpers", "uidmap_helpers", "uidmap helpers"},
    {CF_BACKEND_ROOTLESS, "tun", "tun_tap_device", "TUN/TAP device"},
    {CF_BACKEND_ROOTLESS, "capture", "af_packet_capture", "AF_PACKET capture"},
    {CF_BACKEND_ROOTFUL, "root", "root_privileges", "root privileges"},
    {CF_BACKEND_ROOTFUL, "forwarding", "forwarding_sysctls", "forwarding sysctls"},
    {CF_BACKEND_ROOTFUL, "af_packet", "af_packet_capture", "AF_PACKET capture"},
};

/*
 * A capability's status: "limited" for a warning (it works, degraded);
 * "unavailable" for a failure and for a check not tried because one it
 * needs failed (its detail says so): a run cannot use it either way.
 */
static const char *capability_status(enum cf_check_status st)
{
	switch (st) {
	case CF_CHECK_OK:
		return "available";
	case CF_CHECK_WARN:
		return "limited";
	case CF_CHECK_FAIL:
	case CF_CHECK_SKIP:
		break;
	}
	return "unavailable";
}

/* A preflight entry's status, as the original names them. */
static const char *preflight_status(enum cf_check_status st)
{
	switch (st) {
	case CF_CHECK_OK:
	case CF_CHECK_SKIP:
		break;
	case CF_CHECK_WARN:
		return "warning";
	case CF_CHECK_FAIL:
		return "fatal";
	}
	return "ok";
}

/* The index of our check @key in @rep's table, or -1. */
static int check_index(const struct cf_doctor_report *rep, const char *key)
{
	for (size_t i = 0; i < rep->table->n; i++)
		if (strcmp(rep->table->defs[i].key, key) == 0)
			return (int)i;
	return -1;
}

/* {"key", "label", "status", "detail", "check"} of capability @cap. */
static json_t *capability_json(const struct capability *cap, const struct cf_check *c)
{
	json_t *o = json_object();
	int r = o ? 0 : -ENOMEM;

	if (r == 0)
		r = set(o, "key", json_string(cap->key));
	if (r == 0)
		r = set(o, "label", json_string(cap->label));
	if (r == 0)
		r = set(o, "status", json_string(capability_status(c->status)));
	if (r == 0)
		r = set(o, "detail", json_text(c->detail));
	if (r == 0)
		r = set(o, "check", json_string(cap->check));
	if (r < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The original's "capabilities" array. */
static json_t *capabilities_json(const struct cf_doctor_report *rep)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < CF_ARRAY_SIZE(capabilities); i++) {
		int idx = capabilities[i].backend == rep->backend
			      ? check_index(rep, capabilities[i].check)
			      : -1;

		if (idx >= 0 &&
		    json_array_append_new(
			arr, capability_json(&capabilities[i], &rep->results[idx])) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* {"label", "status", "detail", "hint", "check"} of preflight check @d. */
static json_t *preflight_json(const struct cf_check_def *d, const struct cf_check *c)
{
	json_t *o = json_object();
	bool hint = *c->hint && (c->status == CF_CHECK_WARN || c->status == CF_CHECK_FAIL);
	int r = o ? 0 : -ENOMEM;

	if (r == 0)
		r = set(o, "label", json_text(d->label));
	if (r == 0)
		r = set(o, "status", json_string(preflight_status(c->status)));
	if (r == 0)
		r = set(o, "detail", json_text(c->detail));
	if (r == 0)
		r = set(o, "hint", hint ? json_text(c->hint) : json_null());
	if (r == 0)
		r = set(o, "check", json_string(d->key));
	if (r < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * The original's "preflight" array: the checks a run makes before it
 * starts (those with a preflight form), as the doctor found them; a check
 * not tried is left out (the one that stopped it is there).
 */
static json_t *preflights_json(const struct cf_doctor_report *rep)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < rep->table->n; i++) {
		const struct cf_check_def *d = &rep->table->defs[i];

		if (!d->preflight || rep->results[i].status == CF_CHECK_SKIP)
			continue;
		if (json_array_append_new(arr, preflight_json(d, &rep->results[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
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
	if (r == 0)
		r = set(o, "capabilities", capabilities_json(rep));
	if (r == 0)
		r = set(o, "preflight", preflights_json(rep));
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
