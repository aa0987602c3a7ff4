/* SPDX-License-Identifier: MIT */
/*
 * Handles on the tree's threads that call connect() (engine/switch.c): a
 * pidfd, to copy the caller's socket, and its /proc fdinfo directory, to
 * read the fd's close-on-exec flag, kept from one notification to the next.
 * Opening both costs more than the rest of a switch's checks together, and
 * a program's connects come from few threads.
 */
#ifndef CF_ENGINE_TREETASK_H
#define CF_ENGINE_TREETASK_H

#include <stdint.h>
#include <sys/types.h>

struct cf_treetasks;

/* cf_treetasks_new() - an empty cache. Return 0 or -ENOMEM. */
int cf_treetasks_new(struct cf_treetasks **out);

/* cf_treetasks_free() - close every handle (NULL is fine). */
void cf_treetasks_free(struct cf_treetasks *t);

/*
 * cf_treetasks_getfd() - a copy of thread @tid's fd @fd (pidfd_getfd), or
 * -errno: -EBADF when it has no such fd, -ESRCH when the thread is gone. A
 * handle left by a thread that ended is replaced, so a reused @tid is
 * never taken for the old thread. The caller checks afterwards that the
 * notification that named @tid is still waiting (the thread was that
 * caller).
 */
int cf_treetasks_getfd(struct cf_treetasks *t, pid_t tid, int fd);

/*
 * cf_treetasks_cloexec() - O_CLOEXEC when thread @tid's fd @fd is
 * close-on-exec, else 0, in @flags; from the directory opened by the last
 * cf_treetasks_getfd() for @tid, whose fdinfo files of the last few fd
 * numbers are kept open (read anew each time). Return 0 or -errno.
 */
int cf_treetasks_cloexec(struct cf_treetasks *t, pid_t tid, int fd, uint32_t *flags);

#endif
