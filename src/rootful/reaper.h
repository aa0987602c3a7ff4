/* SPDX-License-Identifier: MIT */
/*
 * The reaper of a rootful run: a small process forked before anything on
 * the host changes, in a session of its own, holding one end of a socket
 * pair. When childflow asks (the end of a run) or dies (the socket reads
 * end-of-file, even after SIGKILL), it undoes the run's record
 * (cf_rootful_state_release()) and exits.
 */
#ifndef CF_ROOTFUL_REAPER_H
#define CF_ROOTFUL_REAPER_H

#include <sys/types.h>

struct cf_reaper {
	pid_t pid; /* -1: none */
	int fd;
};

/*
 * cf_reaper_start() - fork the reaper for run @id. Call it while childflow
 * has no other thread. Return 0 or -errno.
 */
int cf_reaper_start(const char *id, struct cf_reaper *rp);

/*
 * cf_reaper_finish() - have the reaper undo the run now, wait until it has
 * (at most a few seconds), and reap it. Return 0, or -errno when it did not
 * answer (it then still undoes the run when it sees the socket close).
 */
int cf_reaper_finish(struct cf_reaper *rp);

#endif
