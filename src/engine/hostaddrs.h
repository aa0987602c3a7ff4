/* SPDX-License-Identifier: MIT */
/*
 * The host's own addresses, for the policy's host_local denial. The engine
 * connects from the host's network namespace, so a destination that is one
 * of the host's addresses would be a local connection to the host's own
 * services. Which destinations those are is what the kernel's "local"
 * routing table says (every address of every interface, local routes such
 * as 127.0.0.0/8 or an AnyIP range, IPv6 anycast, and the subnets'
 * broadcast addresses); this module reads it and keeps it current from
 * rtnetlink's address and route notifications.
 */
#ifndef CF_ENGINE_HOSTADDRS_H
#define CF_ENGINE_HOSTADDRS_H

struct cf_policy;
struct cf_hostaddrs;

/*
 * cf_hostaddrs_open() - subscribe to address and route changes and give
 * @policy the host's current local table (cf_policy_set_host_local()).
 * Return: 0, or -errno (the engine must not run without it).
 */
int cf_hostaddrs_open(struct cf_policy *policy, struct cf_hostaddrs **out);

/* cf_hostaddrs_fd() - the notification socket, readable when something changed. */
int cf_hostaddrs_fd(const struct cf_hostaddrs *h);

/*
 * cf_hostaddrs_on_event() - drain the notifications and read the local table
 * again. Return: 0, or -errno when it could not be read (the previous set
 * stays in force; the caller warns).
 */
int cf_hostaddrs_on_event(struct cf_hostaddrs *h);

/* cf_hostaddrs_close() - release @h (NULL is fine). */
void cf_hostaddrs_close(struct cf_hostaddrs *h);

#endif
