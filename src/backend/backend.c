/* SPDX-License-Identifier: MIT */
#include "backend/backend.h"

#include <stdio.h>

int cf_fail_set(struct cf_fail *fail, int err, enum cf_fail_kind kind, const char *phase,
		const char *reason, const char *fmt, ...)
{
	va_list ap;

	fail->kind = kind;
	fail->phase = phase;
	fail->reason = reason;
	fail->said = false;
	va_start(ap, fmt);
	vsnprintf(fail->msg, sizeof(fail->msg), fmt, ap);
	va_end(ap);
	return err;
}

int cf_fail_as(struct cf_fail *fail, int err, enum cf_fail_kind kind, const char *phase,
	       const char *reason)
{
	fail->kind = kind;
	fail->phase = phase;
	fail->reason = reason;
	fail->said = false;
	return err;
}
