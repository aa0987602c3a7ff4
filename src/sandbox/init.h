/* SPDX-License-Identifier: MIT */
/*
 * The helper's last job: pid 1 of the sandbox's PID namespace. It starts the
 * command without capabilities, forwards signals that childflow sends it,
 * reaps orphans, and when the command exits reports its wait status to the
 * engine and ends; the kernel then kills whatever is left of the tree.
 */
#ifndef CF_SANDBOX_INIT_H
#define CF_SANDBOX_INIT_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Run @argv as the sandbox's command, as @uid and @gid (a root caller's tree
 * user; the helper's own ids otherwise), and act as its init. With
 * @switch_tcp the command loads the connect() filter before its exec
 * (sandbox/connfilter.h). Never returns.
 */
__attribute__((noreturn)) void cf_init_run(char *const argv[], int ctlfd, uid_t uid, gid_t gid,
					   bool switch_tcp);

/* Drop every capability (ambient, effective, permitted, inheritable) and set no_new_privs. Return 0
 * or -errno. */
int cf_drop_all_caps(void);

#endif
