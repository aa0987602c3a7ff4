/* SPDX-License-Identifier: MIT */
/*
 * For unit test programs only (include from exactly one file per program).
 * A counting allocator that can fail the Nth allocation and tracks how many
 * blocks are live, so a test can check that every error path frees what it
 * took. A program whose library mishandles some allocation failures
 * defines ALLOC_SPARE_SITES before including this and then defines
 * alloc_spare_site(): true for an allocation that must not fail.
 */
#ifndef CF_TEST_ALLOC_COUNT_H
#define CF_TEST_ALLOC_COUNT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Without ASan, the binary replaces the allocator with a counting one that
 * can fail the Nth allocation; under ASan or valgrind (which own malloc) the
 * allocation-failure test is skipped.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_INJECT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define ALLOC_INJECT 0
#endif
#endif
#ifndef ALLOC_INJECT
#define ALLOC_INJECT 1
#endif

static long alloc_fail_at = -1; /* index of the allocation to fail, -1 for none */
static long alloc_seen;		/* allocations since arming */
static long alloc_live;		/* blocks currently allocated through us */
static bool alloc_reached;	/* the armed index was reached */
static bool alloc_fired;	/* ... and that allocation really failed */

/* Fail the allocation numbered @fail_at (0 = the next one). */
static void alloc_arm(long fail_at)
{
	alloc_fail_at = fail_at;
	alloc_seen = 0;
	alloc_reached = false;
	alloc_fired = false;
}

/* Stop failing; alloc_reached/alloc_fired still tell what happened. */
static void alloc_disarm(void)
{
	alloc_fail_at = -1;
}

#if ALLOC_INJECT
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void __libc_free(void *p);

#ifdef ALLOC_SPARE_SITES
static bool alloc_spare_site(void);
#endif

static bool alloc_should_fail(void)
{
	if (alloc_fail_at < 0 || alloc_seen++ != alloc_fail_at)
		return false;
	alloc_reached = true;
#ifdef ALLOC_SPARE_SITES
	if (alloc_spare_site())
		return false;
#endif
	alloc_fired = true;
	errno = ENOMEM;
	return true;
}

void *malloc(size_t size)
{
	void *p = alloc_should_fail() ? NULL : __libc_malloc(size);

	alloc_live += p != NULL;
	return p;
}

void *calloc(size_t n, size_t size)
{
	void *p = alloc_should_fail() ? NULL : __libc_calloc(n, size);

	alloc_live += p != NULL;
	return p;
}

void *realloc(void *old, size_t size)
{
	void *p;

	if (alloc_should_fail())
		return NULL;
	p = __libc_realloc(old, size);
	if (!old && p)
		alloc_live++;
	else if (old && !p && size == 0)
		alloc_live--;
	return p;
}

void free(void *p)
{
	alloc_live -= p != NULL;
	__libc_free(p);
}
#endif

/* Skip the calling test unless failures can really be injected (not under ASan or valgrind). */
static inline void require_alloc_injection(void)
{
	/* Through a volatile pointer, so the compiler cannot fold malloc()+free() away. */
	void *(*volatile do_malloc)(size_t) = malloc;
	void *p;

	alloc_arm(0);
	p = do_malloc(16);
	alloc_disarm();
	if (p) {
		free(p);
		skip();
	}
}

#endif
