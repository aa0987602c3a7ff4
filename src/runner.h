/* SPDX-License-Identifier: MIT */
/*
 * One run of the rootless backend, end to end: preflight, capture file,
 * observer, sandbox, engine, summary. Returns the exit status main() exits
 * with (the command's, or one of enum cf_exit), having printed any error.
 */
#ifndef CF_RUNNER_H
#define CF_RUNNER_H

#include "config/config.h"

/* Run cfg->command under the rootless backend; return the exit status. */
int cf_run_rootless(const struct cf_config *cfg);

#endif
