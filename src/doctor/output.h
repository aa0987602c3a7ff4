/* SPDX-License-Identifier: MIT */
/*
 * Rendering a doctor report: the text form (one line per check, then the
 * verdict) and the JSON form (docs/doctor-schema.md).
 */
#ifndef CF_DOCTOR_OUTPUT_H
#define CF_DOCTOR_OUTPUT_H

#include <stdio.h>

#include "doctor/check.h"

/* A finished report: the table, its results and the verdict. */
struct cf_doctor_report {
	enum cf_backend backend;
	uid_t uid, euid;
	const struct cf_check_table *table;
	const struct cf_check *results;
	int verdict; /* enum cf_doctor_verdict */
};

/* The verdict's name: "ready", "ready with warnings" or "blocked". */
const char *cf_doctor_verdict_name(int verdict);

/* A check status's name: "ok", "warn", "fail" or "skip". */
const char *cf_check_status_name(enum cf_check_status st);

/* Print @rep as text. Return 0 or -errno. */
int cf_doctor_print_text(const struct cf_doctor_report *rep, FILE *out);

/* Print @rep as one JSON object and a newline. Return 0 or -errno. */
int cf_doctor_print_json(const struct cf_doctor_report *rep, FILE *out);

#endif
