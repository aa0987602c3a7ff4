/* SPDX-License-Identifier: MIT */
/* The engine's DNS forwarder for the tree's UDP queries. */
#ifndef CF_ENGINE_DNSFWD_H
#define CF_ENGINE_DNSFWD_H

#include <stdbool.h>

#include "engine/ctx.h"

/* Create the forwarder's state. Return 0 or -ENOMEM. */
int cf_dnsfwd_init(struct cf_engine *e);

/* Drop every query in flight and free the state. */
void cf_dnsfwd_fini(struct cf_engine *e);

/* Whether a UDP packet is a query for the forwarder (the virtual resolver, or any server with
 * --dns). */
bool cf_dnsfwd_wants(const struct cf_engine *e, const struct cf_pkt *pkt);

/* Handle one UDP DNS query from the tree. */
void cf_dnsfwd_on_query(struct cf_engine *e, const struct cf_pkt *pkt);

/* An upstream socket is readable. */
void cf_dnsfwd_on_event(struct cf_engine *e, struct cf_watch *w);

/* Free queries finished during the last epoll batch. */
void cf_dnsfwd_reap(struct cf_engine *e);

/* Retry or fail queries whose upstream did not answer in time. */
void cf_dnsfwd_on_tick(struct cf_engine *e);

#endif
