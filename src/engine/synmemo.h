/* SPDX-License-Identifier: MIT */
/*
 * The tree's SYNs the relay path answered with a failure (a policy denial,
 * a refusal, an unreachable destination, silence), remembered by their
 * 4-tuple and initial sequence number. The tree's kernel sends the same SYN
 * again when the answer came while connect() still held the socket (an ICMP
 * error then only sets a soft error) or was lost: that retransmission is the
 * same connection attempt, and gets the same answer without a second
 * connect_attempt, connect_result or policy_violation record.
 *
 * Direct-mapped and bounded: a slot holds the latest failure whose 4-tuple
 * hashes to it, for CF_SYNMEMO_KEEP_MS. A failure pushed out of its slot (or
 * older than that) is forgotten, and its retransmission is decided again as
 * a new attempt, which is what the engine did before it had this memory.
 */
#ifndef CF_ENGINE_SYNMEMO_H
#define CF_ENGINE_SYNMEMO_H

#include <stdint.h>

#include "net/packet.h"

#define CF_SYNMEMO_SLOTS 256
/* The tree's own SYN retries (tcp_syn_retries 6) end after 127 s. */
#define CF_SYNMEMO_KEEP_MS 135000

struct cf_synmemo_slot {
	struct cf_ip src, dst;
	uint16_t sport, dport;
	uint32_t isn;
	int err; /* 0: the slot is empty */
	uint64_t expires_ms;
};

struct cf_synmemo {
	struct cf_synmemo_slot slot[CF_SYNMEMO_SLOTS];
};

/* Remember that @syn was answered with positive errno @err at @now_ms. */
void cf_synmemo_add(struct cf_synmemo *m, const struct cf_pkt *syn, int err, uint64_t now_ms);

/* The errno @syn (the same 4-tuple and sequence number) was answered with, or 0. */
int cf_synmemo_find(const struct cf_synmemo *m, const struct cf_pkt *syn, uint64_t now_ms);

#endif
