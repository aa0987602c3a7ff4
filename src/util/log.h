/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics on stderr, prefixed "childflow: ". Library-style code returns
 * -errno and leaves printing to its caller; log_* is for the top level and
 * for the engine's one-time warnings.
 */
#ifndef CF_UTIL_LOG_H
#define CF_UTIL_LOG_H

#include <stdarg.h>

enum cf_log_level {
	CF_LOG_ERROR,
	CF_LOG_WARN,
	CF_LOG_INFO,
	CF_LOG_DEBUG,
};

/* Set the most verbose level printed (default CF_LOG_WARN; CHILDFLOW_DEBUG=1 in the environment
 * gives debug). */
void cf_log_set_level(enum cf_log_level level);

/* Whether messages of @level are printed. */
int cf_log_enabled(enum cf_log_level level);

/* Print one line at @level. */
void cf_log(enum cf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print one line at @level, followed by ": " and strerror(@err) (err may be negative). */
void cf_log_errno(enum cf_log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) cf_log(CF_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) cf_log(CF_LOG_WARN, __VA_ARGS__)
#define log_info(...) cf_log(CF_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (cf_log_enabled(CF_LOG_DEBUG))                                                  \
			cf_log(CF_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)

#endif
