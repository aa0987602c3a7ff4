/* SPDX-License-Identifier: MIT */
/*
 * The doctor's driver: run a backend's table in order, each check in its own
 * forked process (check.c), skipping a check whose prerequisites did not
 * pass; reduce the results to one verdict; print. The preflight runs the
 * few checks marked cheap in the caller's process and stops at the first
 * failure.
 */
#include "doctor/doctor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "doctor/check.h"
#include "doctor/output.h"

/* Generous: a check is a few ms; only a hung operation gets near this. */
#define CHECK_TIMEOUT_MS 10000
#define MAX_CHECKS 32

static const struct cf_check_table *table_of(enum cf_backend backend)
{
	return backend == CF_BACKEND_ROOTFUL ? cf_doctor_rootful_table()
					     : cf_doctor_rootless_table();
}

static void ctx_init(struct cf_doctor_ctx *ctx, enum cf_backend backend,
		     const struct cf_check *results)
{
	ctx->backend = backend;
	ctx->uid = getuid();
	ctx->euid = geteuid();
	ctx->gid = getgid();
	ctx->results = results;
}

/* The first prerequisite of check @i that did not pass, or -1. */
static int unmet_need(const struct cf_check_table *t, const struct cf_check *results, size_t i)
{
	for (size_t j = 0; j < i; j++) {
		if (!(t->defs[i].needs & CF_CHECK_BIT(j)))
			continue;
		if (results[j].status == CF_CHECK_FAIL || results[j].status == CF_CHECK_SKIP)
			return (int)j;
	}
	return -1;
}

static int verdict_of(const struct cf_check *results, size_t n)
{
	int v = CF_DOCTOR_READY;

	for (size_t i = 0; i < n; i++) {
		if (results[i].status == CF_CHECK_FAIL)
			return CF_DOCTOR_BLOCKED;
		if (results[i].status == CF_CHECK_WARN)
			v = CF_DOCTOR_WARNINGS;
	}
	return v;
}

int cf_doctor_run(enum cf_backend backend, bool json, FILE *out)
{
	const struct cf_check_table *t = table_of(backend);
	struct cf_check results[MAX_CHECKS];
	struct cf_doctor_ctx ctx;
	struct cf_doctor_report rep;
	int r;

	if (t->n > MAX_CHECKS)
		return -E2BIG;
	memset(results, 0, sizeof(results));
	ctx_init(&ctx, backend, results);
	for (size_t i = 0; i < t->n; i++) {
		int need = unmet_need(t, results, i);

		if (need >= 0) {
			results[i].status = CF_CHECK_SKIP;
			snprintf(results[i].detail, sizeof(results[i].detail),
				 "not tried: it needs %s (check \"%s\" %s)", t->defs[need].label,
				 t->defs[need].key,
				 results[need].status == CF_CHECK_FAIL ? "failed"
								       : "was not tried");
			continue;
		}
		cf_check_run_forked(&t->defs[i], &ctx, &results[i], CHECK_TIMEOUT_MS);
	}
	rep = (struct cf_doctor_report){
	    .backend = backend,
	    .uid = ctx.uid,
	    .euid = ctx.euid,
	    .table = t,
	    .results = results,
	    .verdict = verdict_of(results, t->n),
	};
	r = json ? cf_doctor_print_json(&rep, out) : cf_doctor_print_text(&rep, out);
	return r < 0 ? r : rep.verdict;
}

/* @c failed: the one-line message that names the check and its remedy; return -errno. */
static int failure(const struct cf_check_def *d, const struct cf_check *c, char *err, size_t errlen)
{
	if (*c->hint)
		snprintf(err, errlen, "%s \u2014 %s (`childflow --doctor` check \"%s\")", c->detail,
			 c->hint, d->key);
	else
		snprintf(err, errlen, "%s (`childflow --doctor` check \"%s\")", c->detail, d->key);
	return c->err ? -c->err : -EPERM;
}

/*
 * Run the preflight's checks (@key NULL: each with a preflight form, but
 * not those run on failure only) or check @key alone (its preflight form,
 * else the full one); stop at the first that fails.
 */
static int run_checks(enum cf_backend backend, const char *key, char *err, size_t errlen)
{
	const struct cf_check_table *t = table_of(backend);
	struct cf_check results[MAX_CHECKS];
	struct cf_doctor_ctx ctx;

	if (t->n > MAX_CHECKS)
		return -E2BIG;
	memset(results, 0, sizeof(results));
	ctx_init(&ctx, backend, results);
	for (size_t i = 0; i < t->n; i++) {
		const struct cf_check_def *d = &t->defs[i];
		cf_check_fn fn = d->preflight;

		if (key ? strcmp(d->key, key) != 0 : !fn || d->on_failure)
			continue;
		(fn ? fn : d->run)(&results[i], &ctx);
		if (results[i].status == CF_CHECK_FAIL)
			return failure(d, &results[i], err, errlen);
	}
	return 0;
}

int cf_doctor_preflight(enum cf_backend backend, char *err, size_t errlen)
{
	return run_checks(backend, NULL, err, errlen);
}

int cf_doctor_explain(enum cf_backend backend, const char *key, char *err, size_t errlen)
{
	return run_checks(backend, key, err, errlen);
}

int cf_doctor_exit_status(enum cf_doctor_verdict verdict)
{
	return verdict == CF_DOCTOR_BLOCKED ? 1 : 0;
}
