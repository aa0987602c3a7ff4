/* SPDX-License-Identifier: MIT */
/*
 * --report FLOWLOG: read a saved flow log and print a report of it as text,
 * Markdown or JSON (docs/report-schema.md). The log is read line by line
 * through the same aggregator as the live --summary, in bounded memory
 * whatever its length. Malformed lines are reported with their line numbers
 * and skipped: a damaged log still gives a report of what it holds.
 */
#ifndef CF_OBS_REPORT_H
#define CF_OBS_REPORT_H

#include <stdio.h>

/* Output formats; the values are those of enum cf_format (config/config.h). */
#define CF_REPORT_TEXT 0
#define CF_REPORT_JSON 1
#define CF_REPORT_MARKDOWN 2

/* Lines longer than this are reported as malformed and skipped. */
#define CF_REPORT_MAX_LINE ((size_t)1024 * 1024)

/* At most this many "line N: ..." messages; the rest are counted in one last message. */
#define CF_REPORT_MAX_MESSAGES 100u

/*
 * cf_report_run() - Read the flow log at @path and print its report to @out
 * in @format (CF_REPORT_*). Malformed lines are reported to @err_out as
 * "PATH: line N: WHAT" and skipped.
 * Return: 0; -EINVAL for an unknown @format; -errno when @path cannot be
 * opened or read; -EIO when writing @out failed; -ENOMEM.
 */
int cf_report_run(const char *path, int format, FILE *out, FILE *err_out);

/*
 * cf_report_stream() - cf_report_run() on an open stream @in, named @name
 * in messages and in the report.
 */
int cf_report_stream(FILE *in, const char *name, int format, FILE *out, FILE *err_out);

#endif
