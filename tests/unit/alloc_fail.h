/* SPDX-License-Identifier: MIT */
#ifndef CF_TEST_ALLOC_FAIL_H
#define CF_TEST_ALLOC_FAIL_H
/*
 * For unit test programs only (include from exactly one file per program).
 *
 * Allocation failure injection: the test program replaces malloc and friends
 * (glibc supports this) and makes the Nth allocation from now fail. Not under
 * AddressSanitizer, which owns the allocator there. Under valgrind, run with
 * --soname-synonyms=somalloc=nouserintercepts to keep these and check the
 * error paths for leaks; otherwise those tests skip.
 */
#if defined(__SANITIZE_ADDRESS__)
#define CF_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CF_TEST_ASAN 1
#endif
#endif

#ifndef CF_TEST_ASAN
#include <stdbool.h>
#include <stddef.h>

#define CF_TEST_ALLOC_FAIL 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t n);
extern void __libc_free(void *ptr);

static unsigned int alloc_countdown; /* 0: never fail; N: the Nth allocation from now fails */
static bool alloc_failed;

static bool alloc_should_fail(void)
{
	if (alloc_countdown == 0 || --alloc_countdown > 0)
		return false;
	alloc_failed = true;
	return true;
}

void *malloc(size_t n)
{
	return alloc_should_fail() ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	return alloc_should_fail() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t n)
{
	return alloc_should_fail() ? NULL : __libc_realloc(ptr, n);
}

void free(void *ptr)
{
	__libc_free(ptr);
}

static void fail_nth_allocation(unsigned int n)
{
	alloc_failed = false;
	alloc_countdown = n;
}

/* Stop injecting; return whether an injected failure happened. */
static bool stop_failing(void)
{
	alloc_countdown = 0;
	return alloc_failed;
}

/*
 * Whether this process really uses the malloc above: valgrind replaces it
 * unless run with --soname-synonyms=somalloc=nouserintercepts.
 */
static bool injection_works(void)
{
	void *(*volatile alloc)(size_t) = malloc; /* keeps the compiler from eliding the call */
	void *p;

	fail_nth_allocation(1);
	p = alloc(1);
	stop_failing();
	free(p);
	return p == NULL;
}
#endif

#endif
