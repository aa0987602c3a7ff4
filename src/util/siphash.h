/* SPDX-License-Identifier: MIT */
/*
 * Keyed hashing for tables whose keys come from the command tree or its
 * resolvers (names, addresses): with a random key, nobody outside can aim
 * bucket collisions.
 */
#ifndef CF_UTIL_SIPHASH_H
#define CF_UTIL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 (Aumasson, Bernstein) of @len bytes at @src under @key. */
uint64_t cf_siphash24(const uint8_t key[16], const void *src, size_t len);

/*
 * A random hash key from getrandom(); before the kernel has entropy (early
 * boot), one derived from the address-space layout and @salt.
 */
void cf_hash_key(uint8_t key[16], const void *salt);

#endif
