/* SPDX-License-Identifier: MIT */
/*
 * Switched sockets (--tcp-path auto): the tree's connect() reaches the
 * engine as a seccomp user notification (sandbox/connfilter.h); a TCP
 * connect the relay is not needed for is vetted by the same policy code,
 * made on a host socket and that socket installed in place of the tree's
 * (SECCOMP_IOCTL_NOTIF_ADDFD); everything else continues into the tree's
 * kernel and takes the relay path.
 */
#ifndef CF_ENGINE_SWITCH_H
#define CF_ENGINE_SWITCH_H

#include <stdint.h>

struct cf_engine;
struct cf_watch;

/*
 * cf_switch_start() - take @listener (the tree's connect() listener) and
 * watch it; @netns_probe is a socket of the tree's network namespace (only
 * connects of sockets of that namespace are switched); @landlock_err is 0
 * when the tree's own TCP connects are refused by Landlock
 * (cf_connfilter_deny_tcp()), else its errno: then nothing is
 * switched. Return 0 or -errno (@listener is closed then).
 */
int cf_switch_start(struct cf_engine *e, int listener, int netns_probe, int landlock_err);

/* cf_switch_on_event() - the listener or a pending host connect is ready. */
void cf_switch_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events);

/* cf_switch_on_tick() - forget pending connects whose tree call was interrupted. */
void cf_switch_on_tick(struct cf_engine *e);

/* cf_switch_reap() - free what this epoll batch finished with. */
void cf_switch_reap(struct cf_engine *e);

/* cf_switch_fini() - close the listener and every pending host socket. */
void cf_switch_fini(struct cf_engine *e);

#endif
