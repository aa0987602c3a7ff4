/* SPDX-License-Identifier: MIT */
/*
 * The tree's connect() filter (--tcp-path auto): a seccomp filter that
 * sends every connect() and bind() of the tree to the engine as a user notification,
 * so that the engine can hand the tree a vetted host socket instead of
 * relaying the connection (engine/switch.c). Installed by the command's
 * process itself, after no_new_privs and right before its exec, so that
 * the whole tree inherits it and nothing in it can remove it.
 */
#ifndef CF_SANDBOX_CONNFILTER_H
#define CF_SANDBOX_CONNFILTER_H

#include <stdbool.h>

/*
 * cf_connfilter_install() - load the filter with a new listener and send the
 * listener to the engine on @ctlfd (CF_CTL_LISTENER, sandbox/ctl.h), with
 * cf_connfilter_deny_tcp()'s errno in the message's err (0: in force;
 * else the engine switches nothing). When the
 * kernel refuses the listener (EBUSY: a filter of an enclosing sandbox has
 * one; EINVAL/ENOSYS: too old) nothing is loaded and LISTENER carries the
 * errno instead of a descriptor: the tree then uses the relay only.
 * Return: 0, or -errno when the filter is loaded but the engine could not be
 * told (the command must not run then: its connects would fail).
 */
int cf_connfilter_install(int ctlfd);

/*
 * cf_connfilter_deny_tcp() - Landlock (ABI 4, Linux 6.7+) for this process
 * and its descendants: every TCP connect() their own kernel would run is
 * refused (EACCES), and every TCP bind() but to port 0, whatever the path
 * (a call the engine lets through, io_uring, another ABI). With it, a host
 * socket that reaches a descriptor the engine let a call through on can be
 * neither connected nor bound to a port of the host's choosing by the
 * kernel; the engine runs the tree's other TCP connects and binds itself
 * (engine/switch.c). Return 0, -ENOTSUP (an older ABI)
 * or -errno.
 */
int cf_connfilter_deny_tcp(void);

/*
 * cf_connfilter_probe() - for --doctor, in a throwaway process (it sets
 * no_new_privs and loads the filter for good): whether the filter and its
 * listener load here, in @sync_wake_up whether the listener takes
 * cf_connfilter_sync_wake_up(), and in @landlock what
 * cf_connfilter_deny_tcp() returned. Return 0 or -errno (EBUSY: an enclosing
 * filter has a listener; EINVAL, ENOSYS: the kernel is too old or has no
 * seccomp).
 */
int cf_connfilter_probe(bool *sync_wake_up, int *landlock);

/*
 * cf_connfilter_sync_wake_up() - ask the kernel (6.6+) for synchronous
 * wake-ups on @listener: the tree's thread, which blocks until the answer,
 * wakes the engine on its own CPU, and the answer wakes it on the engine's,
 * so a switched connect() wakes no idle CPU (an IPI, tens of microseconds in
 * a VM) either way. Return 0 or -errno (EINVAL: an older kernel; the
 * wake-ups are then as before).
 */
int cf_connfilter_sync_wake_up(int listener);

#endif
