/* SPDX-License-Identifier: MIT */
/*
 * Reassembly of the IPv4 and IPv6 fragments the tree's kernel writes into
 * tun0 (RFC 791, RFC 8200 4.5, RFC 5722, RFC 6946), in bounded memory.
 * Pure logic: no fds, no clock of its own (the caller passes the time).
 */
#ifndef CF_ENGINE_REASM_H
#define CF_ENGINE_REASM_H

#include <stddef.h>
#include <stdint.h>

#include "net/packet.h"

/* The engine's bounds (docs/architecture.md says why these). */
#define CF_REASM_MAX_DATAGRAMS 64
#define CF_REASM_MAX_BYTES (4u << 20)
#define CF_REASM_TIMEOUT_MS 10000u

struct cf_reasm_limits {
	size_t max_datagrams; /* datagrams being reassembled at once, >= 1 */
	size_t max_bytes;     /* bytes held for them: pieces, headers and piece lists */
	uint64_t timeout_ms;  /* from a datagram's first fragment to giving it up */
};

/* Counters since cf_reasm_new(), and what is held now. */
struct cf_reasm_stats {
	uint64_t completed; /* whole packets handed out (atomic fragments included) */
	uint64_t timed_out; /* datagrams given up after timeout_ms */
	uint64_t evicted;   /* datagrams dropped, oldest first, to stay within a bound */
	uint64_t discarded; /* for an overlap (RFC 5722) or fragments that disagree */
	uint64_t dropped;   /* fragments refused (every negative return of cf_reasm_add()) */
	size_t datagrams;   /* held now, discarded ones (kept until their timeout) included */
	size_t bytes;	    /* held now; at most max_bytes */
};

struct cf_reasm;

/**
 * cf_reasm_new() - Create an empty reassembler
 * @lim:	its bounds; NULL for the engine's (CF_REASM_*)
 * @out:	the new reassembler, owned by the caller (cf_reasm_free())
 *
 * Return: 0; -EINVAL for a limit of 0; -ENOMEM.
 */
int cf_reasm_new(const struct cf_reasm_limits *lim, struct cf_reasm **out);

/* Free @r and every fragment it holds. NULL is allowed. */
void cf_reasm_free(struct cf_reasm *r);

/**
 * cf_reasm_add() - Take one fragment; hand out its packet once it is whole
 * @r:		the reassembler
 * @frag:	a fragment as cf_pkt_parse() returned it (fragment true); its bytes
 *		are copied, the buffer may be reused after the call
 * @now_ms:	the caller's monotonic clock
 * @out:	set to the whole packet, allocated, owned by the caller (free());
 *		NULL unless 1 is returned
 * @out_len:	its length
 *
 * The whole packet is the first fragment's headers (v6: those before the
 * Fragment header, which is left out) and the reassembled payload, with the
 * lengths, v6 Next Header, v4 flags/offset and v4 header checksum fixed. An
 * IPv6 atomic fragment (offset 0, M clear) is whole at once (RFC 6946).
 *
 * Return: 1 with @out set; 0 when the fragment is held for more;
 * -EINVAL for a fragment reassembly must refuse (not a fragment, no data, M
 * set on a length that is not a multiple of 8); -EMSGSIZE when the packet
 * would exceed 65,535 bytes (v4) or a v6 payload of 65,535 bytes; -EEXIST
 * for an exact duplicate of a held fragment (the datagram is kept);
 * -EBADMSG when the fragment overlaps a held one or disagrees with the end
 * already known, or its datagram was discarded for that (RFC 5722: the
 * datagram and its later fragments are dropped until the timeout);
 * -ENOBUFS when one datagram alone would exceed max_bytes; -ENOMEM.
 * Every negative return drops this fragment and nothing else, except
 * -EBADMSG, -EMSGSIZE found at completion and -ENOMEM at completion, which
 * drop its datagram.
 */
int cf_reasm_add(struct cf_reasm *r, const struct cf_pkt *frag, uint64_t now_ms, uint8_t **out,
		 size_t *out_len);

/* Give up every datagram whose first fragment came timeout_ms or more before @now_ms. */
void cf_reasm_expire(struct cf_reasm *r, uint64_t now_ms);

/* The counters of @r. */
struct cf_reasm_stats cf_reasm_stats(const struct cf_reasm *r);

#endif
