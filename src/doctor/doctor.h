/* SPDX-License-Identifier: MIT */
/*
 * `childflow --doctor`: can this host run the selected backend? Every check
 * tries the real operation (a user namespace, its id maps, tun0, the nft
 * table, ...) in a throwaway process and namespace, and says what blocks it
 * and how to fix it. The output formats are documented in
 * docs/doctor-schema.md.
 */
#ifndef CF_DOCTOR_DOCTOR_H
#define CF_DOCTOR_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

/* cf_doctor_run()'s verdicts (cf_doctor_exit_status() gives the exit status of each). */
enum cf_doctor_verdict {
	CF_DOCTOR_READY = 0,	/* every check passed */
	CF_DOCTOR_WARNINGS = 1, /* the backend runs, but something is degraded (e.g. ping) */
	CF_DOCTOR_BLOCKED = 2,	/* at least one check failed: a run would fail */
};

/*
 * Run every check for @backend and print the result to @out as text, or
 * as one JSON object when @json. Return the verdict (enum
 * cf_doctor_verdict), or -errno when the report could not be built or
 * written.
 */
int cf_doctor_run(enum cf_backend backend, bool json, FILE *out);

/*
 * cf_doctor_exit_status() - `childflow --doctor`'s exit status for @verdict:
 * 0 when runs work (ready, also with warnings: a warning is not a failure),
 * 1 when blocked, as the original's.
 */
int cf_doctor_exit_status(enum cf_doctor_verdict verdict);

/*
 * The cheap checks (a few ms) whose failure a run would otherwise report as
 * a bare errno. Return 0 when the host can run @backend, or -errno with a
 * one-line message in @err naming the failed check and its remedy.
 */
int cf_doctor_preflight(enum cf_backend backend, char *err, size_t errlen);

/*
 * Run @backend's check @key now, for a step of the run that failed: the
 * checks whose only test is that step itself (the namespaces' clone3()) are
 * not in the preflight, which would double their cost on every run. Return
 * -errno with the same message as the preflight's when the check fails; 0
 * when it passes (or @key is unknown), leaving @err as it was.
 */
int cf_doctor_explain(enum cf_backend backend, const char *key, char *err, size_t errlen);

#endif
