/* SPDX-License-Identifier: MIT */
/*
 * One run, end to end: the tree's user and masks, the observer, then the
 * configured backend's operations (backend/backend.h), the capture report
 * and the summary. Returns the exit status main() exits with (the
 * command's, or one of enum cf_exit), having printed any error.
 */
#ifndef CF_RUNNER_H
#define CF_RUNNER_H

#include "config/config.h"

/* Run cfg->command under the backend cfg->backend names; return the exit status. */
int cf_run(const struct cf_config *cfg);

#endif
