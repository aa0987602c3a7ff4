/* SPDX-License-Identifier: MIT */
/*
 * Confinement of the engine (childflow's own process) once set-up is done:
 * no_new_privs, not dumpable, and a seccomp allowlist of the system calls
 * the engine makes from then on (the table in isolation.c). A call outside
 * the list is not fatal: it fails with ENOSYS and one line on stderr.
 */
#ifndef CF_ENGINE_ISOLATION_H
#define CF_ENGINE_ISOLATION_H

#include <stdbool.h>
#include <sys/types.h>

/* The line a blocked system call writes on stderr starts with this. */
#define CF_ISOLATION_BLOCKED "childflow: seccomp: blocked system call"

/*
 * cf_isolation_confine() - set no_new_privs and dumpable 0, then load the
 * seccomp filter on every thread of the process. @helper is the only
 * process the engine may signal (the sandbox's init). With @switching
 * (--tcp-path auto, the tree's connect() listener expected) the calls of
 * engine/switch.c are allowed too, and only then. Return 0; 1 when this
 * build loads no filter (cf_isolation_supported()); -errno when it could not
 * be loaded (no_new_privs and dumpable are set regardless; the caller warns
 * and goes on).
 */
int cf_isolation_confine(pid_t helper, bool switching);

/* cf_isolation_supported() - whether this build can filter on this architecture. */
bool cf_isolation_supported(void);

#endif
