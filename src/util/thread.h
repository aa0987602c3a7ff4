/* SPDX-License-Identifier: MIT */
/* Helper threads that never take a signal: childflow's signals are read by the engine thread
 * (signalfd). */
#ifndef CF_UTIL_THREAD_H
#define CF_UTIL_THREAD_H

#include <pthread.h>

/* pthread_create() with every signal blocked in the new thread. Return 0 or -errno. */
int cf_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif
