/* SPDX-License-Identifier: MIT */
/*
 * Which process of the tree opened a flow's socket: the flow log's pid,
 * comm and exe. The socket is found by its addresses with sock_diag inside
 * the sandbox's network namespace (a NETLINK_SOCK_DIAG socket the helper
 * opened there), then its owner among the processes of the sandbox's PID
 * namespace by the socket inode in /proc/PID/fd.
 */
#ifndef CF_ENGINE_ATTRIB_H
#define CF_ENGINE_ATTRIB_H

#include <stdint.h>
#include <sys/types.h>

#include "net/addr.h"

struct cf_attrib;

struct cf_attrib_proc {
	int pid; /* in the host's PID namespace */
	char comm[16];
	char exe[256];
};

/* Take over the sock_diag socket @diag_fd; @helper is the sandbox's init. Return 0 or -errno. */
int cf_attrib_new(int diag_fd, pid_t helper, struct cf_attrib **out);

/* Free it (NULL is fine). */
void cf_attrib_free(struct cf_attrib *a);

/*
 * Find the process owning the tree's socket @proto (IPPROTO_TCP/UDP) from
 * @src:@sport to @dst:@dport. Return 0 with @out filled, or -ENOENT.
 */
int cf_attrib_lookup(struct cf_attrib *a, uint8_t proto, const struct cf_ip *src, uint16_t sport,
		     const struct cf_ip *dst, uint16_t dport, struct cf_attrib_proc *out);

/*
 * cf_attrib_thread() - the process of the tree's thread @tid (in the host's
 * PID namespace, e.g. a seccomp notification's caller, still in its system
 * call), remembered for cf_attrib_recall(). Return its pid, or 0 when
 * unknown.
 */
int cf_attrib_thread(struct cf_attrib *a, pid_t tid);

/*
 * The process a lookup found for @pid not long ago, without a system call:
 * a flow's later events name the process its first event named. Return 0
 * with @out filled, or -ENOENT when it has been forgotten (a small cache).
 */
int cf_attrib_recall(const struct cf_attrib *a, int pid, struct cf_attrib_proc *out);

#endif
