/* SPDX-License-Identifier: MIT */
#include "util/log.h"

#include <stdio.h>
#include <string.h>

/*
 * The log level is process-wide configuration set once at start-up, the one
 * piece of mutable state outside the engine context: every module may log.
 */
static enum cf_log_level max_level = CF_LOG_WARN;

void cf_log_set_level(enum cf_log_level level)
{
	max_level = level;
}

int cf_log_enabled(enum cf_log_level level)
{
	return level <= max_level;
}

__attribute__((format(printf, 3, 0))) static void vlog(enum cf_log_level level, int err,
						       const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	if (!cf_log_enabled(level))
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if (err)
		fprintf(stderr, "childflow: %s%s: %s\n", level == CF_LOG_DEBUG ? "debug: " : "",
			buf, strerror(err < 0 ? -err : err));
	else
		fprintf(stderr, "childflow: %s%s\n", level == CF_LOG_DEBUG ? "debug: " : "", buf);
}

void cf_log(enum cf_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, 0, fmt, ap);
	va_end(ap);
}

void cf_log_errno(enum cf_log_level level, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, err ? err : -1, fmt, ap);
	va_end(ap);
}
