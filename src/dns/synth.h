/* SPDX-License-Identifier: MIT */
/*
 * Synthetic addresses for remote DNS (--proxy-remote-dns): the engine answers
 * the tree's A and AAAA queries itself, with an address from a reserved range
 * that stands for the name, and asks the proxy for the name when the tree
 * connects to that address. The host never resolves the tree's names.
 *
 * Each name gets one slot; slot i stands for 198.19.0.0 + 1 + i and for
 * fd63:6866:6c77:53:: + 1 + i: the upper half of the benchmarking range whose
 * lower half holds the tree's own addresses, and a /96 of the sandbox's ULA
 * prefix (docs/architecture.md, "Address plan"). A name keeps its slot (and addresses) for the
 * whole run while it is used; when the table is full, the slot idle longest
 * is given to a new name, but only once it has been idle for min_idle_ms,
 * so an address the tree may still hold never silently changes meaning.
 * docs/proxy.md ("Remote DNS") documents the ranges and limits.
 *
 * Pure data structure: no I/O, no clocks (callers pass now_ms), not
 * thread-safe (the engine loop owns it).
 */
#ifndef CF_DNS_SYNTH_H
#define CF_DNS_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

#define CF_SYNTH_V4_TEXT "198.19.0.0/16"
#define CF_SYNTH_V6_TEXT "fd63:6866:6c77:53::/96"
/* 198.19.0.0/16 without its first and last address. */
#define CF_SYNTH_MAX_SLOTS 65534u
#define CF_SYNTH_DEFAULT_SLOTS CF_SYNTH_MAX_SLOTS
/* TTL of the answers: short, so a tree's cache follows the table. */
#define CF_SYNTH_TTL_S 60u
/* A slot is reused for another name only after this long without use. */
#define CF_SYNTH_MIN_IDLE_MS (10u * 60u * 1000u)

struct cf_synth;

/*
 * cf_synth_new() - an empty table of @slots names (1..CF_SYNTH_MAX_SLOTS).
 * Return: 0, -EINVAL or -ENOMEM.
 */
int cf_synth_new(size_t slots, uint64_t min_idle_ms, struct cf_synth **out);

/* cf_synth_free() - release @s (NULL is fine). */
void cf_synth_free(struct cf_synth *s);

/* cf_synth_contains() - whether @ip is in one of the synthetic ranges. */
bool cf_synth_contains(const struct cf_ip *ip);

/*
 * cf_synth_addrs() - the IPv4 and IPv6 address standing for @name, giving it
 * a slot if it has none; marks the slot used at @now_ms.
 * @name: normalised (lower case, no trailing dot), 1..253 characters
 * Return: 0, -EINVAL (bad name), -ENOSPC (every slot used within
 * min_idle_ms) or -ENOMEM.
 */
int cf_synth_addrs(struct cf_synth *s, const char *name, uint64_t now_ms, struct cf_ip *v4,
		   struct cf_ip *v6);

/*
 * cf_synth_name() - the name @ip stands for, or NULL (not synthetic, or a
 * slot no name holds); marks the slot used at @now_ms. Valid until the next
 * cf_synth_addrs() or cf_synth_free().
 */
const char *cf_synth_name(struct cf_synth *s, const struct cf_ip *ip, uint64_t now_ms);

/* cf_synth_count() - names holding a slot. */
size_t cf_synth_count(const struct cf_synth *s);

#endif
