/* SPDX-License-Identifier: MIT */
#include "util/thread.h"

#include <signal.h>

int cf_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	/*
	 * The new thread inherits the mask it is created with; the caller's is put back.
	 * SIGSYS stays open: the engine's seccomp trap (engine/isolation.c) is delivered
	 * to the thread that made the call, and a blocked one would kill the process.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}
