/* SPDX-License-Identifier: MIT */
/*
 * DNS messages for the engine's forwarder. Everything that comes from the
 * child (and from upstream) is parsed by ldns, never by hand: this module
 * turns ldns packets into the few plain fields the engine logs and polices,
 * and builds the synthetic answers childflow sends instead of forwarding.
 *
 * Names are "normalised" the same way everywhere: ldns's presentation form
 * ('.', ';', '(', ')' and '\\' inside a label escaped with a backslash, space
 * and non-printable octets as \DDD), ASCII lower case, without the trailing
 * dot; the root is "". An escaped dot therefore never looks like a label
 * separator to the domain policy.
 */
#ifndef CF_DNS_MESSAGE_H
#define CF_DNS_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/addr.h"

/* Size of a normalised name buffer (a presentation name longer than 255 chars is rejected). */
#define CF_DNS_NAMELEN 256

/* Response codes the engine passes to the builders (RFC 1035 / 6895 values). */
#define CF_DNS_RCODE_NOERROR 0
#define CF_DNS_RCODE_FORMERR 1
#define CF_DNS_RCODE_SERVFAIL 2
#define CF_DNS_RCODE_NXDOMAIN 3
#define CF_DNS_RCODE_NOTIMP 4
#define CF_DNS_RCODE_REFUSED 5

/* Query types the engine looks at. */
#define CF_DNS_TYPE_A 1
#define CF_DNS_TYPE_CNAME 5
#define CF_DNS_TYPE_AAAA 28
#define CF_DNS_TYPE_ANY 255

/* Size of the fixed DNS header; anything shorter is not a DNS message. */
#define CF_DNS_HEADER_LEN 12

/* What the engine needs to log and police one query. */
struct cf_dns_query {
	uint16_t id;
	bool is_response;	    /* QR bit */
	bool has_question;	    /* exactly one question parsed */
	char qname[CF_DNS_NAMELEN]; /* normalised; "" if none */
	uint16_t qtype;		    /* 0 if none */
	uint16_t qclass;	    /* 0 if none */
};

/* One address record or CNAME from an answer, for the engine's name->address memory. */
struct cf_dns_record {
	char name[CF_DNS_NAMELEN]; /* owner, normalised */
	uint32_t ttl;
	bool is_cname;
	struct cf_ip ip;	     /* A / AAAA; zero for a CNAME */
	char target[CF_DNS_NAMELEN]; /* CNAME target, normalised; "" for A / AAAA */
};

struct cf_dns_answer {
	uint8_t rcode;
	struct cf_dns_record *rr; /* A, AAAA and CNAME records of the answer section, in order */
	size_t n;
};

/**
 * cf_dns_parse_query() - Parse a DNS message (query or response) into the fields the engine logs.
 * @msg:	message bytes (UDP payload, or a TCP message without its 2-byte length)
 * @len:	length of @msg
 * @out:	filled on success; zeroed on failure
 *
 * A message with no or several questions parses with has_question false; so
 * does one whose question name is longer than 255 characters in presentation
 * form (binary labels escaped as \DDD): the engine must treat "no question"
 * as unpoliceable, not as harmless.
 *
 * Return: 0, -EINVAL if ldns rejects the message (or it is shorter than a
 * header), or -ENOMEM.
 */
int cf_dns_parse_query(const uint8_t *msg, size_t len, struct cf_dns_query *out);

/**
 * cf_dns_type_name() - Name of a query type as the flow log prints it.
 * @qtype:	the type code
 * @buf:	caller scratch space; not written by this version (kept so the API can
 *		grow a "TYPEnnn" form without changing callers); may be NULL
 * @len:	size of @buf
 *
 * ldns's own names ("A", "AAAA", "CNAME", "MX", "TXT", "HTTPS", "ANY", "AXFR", ...).
 * Type 0 and every code ldns has no mnemonic for (e.g. 65280, private use)
 * give "unknown", never "TYPE65280": the flow log contract says "other type
 * names, or unknown". Pure, no allocation.
 *
 * Return: a pointer to a static string; never NULL.
 */
const char *cf_dns_type_name(uint16_t qtype, char *buf, size_t len);

/**
 * cf_dns_parse_answer() - Collect the A, AAAA and CNAME records of a response's answer section.
 * @msg:	response bytes
 * @len:	length of @msg
 * @out:	filled on success (out->rr owned by the caller); zeroed on failure
 *
 * Records of other types or classes than IN, records whose rdata has the
 * wrong size and records whose names do not fit CF_DNS_NAMELEN are skipped.
 *
 * Return: 0, -EINVAL if ldns rejects the message, or -ENOMEM.
 */
int cf_dns_parse_answer(const uint8_t *msg, size_t len, struct cf_dns_answer *out);

/**
 * cf_dns_answer_free() - Release the records of an answer filled by cf_dns_parse_answer().
 * @a:		the answer; reset to empty, safe to call twice or on a zeroed struct
 */
void cf_dns_answer_free(struct cf_dns_answer *a);

/* Most CNAME links cf_dns_answer_keep_chain() follows from the question's name. */
#define CF_DNS_CHAIN_MAX 16

/**
 * cf_dns_answer_keep_chain() - Drop the records of @a that are not about @qname.
 * @a:		an answer filled by cf_dns_parse_answer(); compacted in place, order kept
 * @qname:	the question's name (normalised)
 *
 * Kept: the CNAME chain that starts at @qname (for each name on it, the
 * first CNAME owned by that name; at most CF_DNS_CHAIN_MAX links; a CNAME
 * back to a name already on the chain ends it and is dropped) and the A/AAAA
 * records owned by a name on that chain. Names compare case-insensitively.
 * Everything else (records for other names, a second CNAME of one owner) is
 * dropped: an answer must not teach anything about names nobody asked for.
 * Pure, no allocation.
 *
 * Return: the number of records kept (the new @a->n).
 */
size_t cf_dns_answer_keep_chain(struct cf_dns_answer *a, const char *qname);

/**
 * cf_dns_build_empty_answer() - Build the answer sent instead of forwarding (mode
 * "synthetic_empty").
 * @query:	the child's query
 * @qlen:	length of @query
 * @rcode:	CF_DNS_RCODE_NOERROR (NODATA, for "blocked"), _REFUSED, _SERVFAIL, ... (0..15)
 * @out:	where the answer is written
 * @cap:	size of @out
 *
 * Same id and opcode, the question copied byte for byte (case kept), QR=1,
 * RA=1, RD and CD copied, no records, no EDNS. If @query has no parsable
 * question (ldns rejects it, or it has zero or several questions) the answer
 * is FORMERR with the query's id and RD only. Responses (QR=1) are never
 * answered, so two forwarders cannot ping-pong.
 *
 * Return: length written to @out, -ENOSPC if @cap is too small, -EINVAL if
 * @query is shorter than a header, is a response, or @rcode is out of range;
 * -ENOMEM.
 */
ssize_t cf_dns_build_empty_answer(const uint8_t *query, size_t qlen, uint8_t rcode, uint8_t *out,
				  size_t cap);

/**
 * cf_dns_build_address_answer() - Build a NOERROR response carrying the given addresses.
 * @query:	the child's query; must have exactly one question, class IN
 * @qlen:	length of @query
 * @ips:	addresses to answer with (may be NULL if @n_ips is 0)
 * @n_ips:	number of @ips
 * @ttl:	TTL of every record
 * @out:	where the answer is written
 * @cap:	size of @out
 *
 * Header as cf_dns_build_empty_answer(). Only addresses matching the
 * question's type become records (AF_INET for A, AF_INET6 for AAAA, both for
 * ANY), owned by the question name as asked; any other type, or no matching
 * address, gives NODATA. TC is never set: the caller keeps @n_ips small
 * enough for the transport.
 *
 * Return: length written to @out, -ENOSPC, -EINVAL (no usable question, a
 * response, bad family in @ips), or -ENOMEM.
 */
ssize_t cf_dns_build_address_answer(const uint8_t *query, size_t qlen, const struct cf_ip *ips,
				    size_t n_ips, uint32_t ttl, uint8_t *out, size_t cap);

/**
 * cf_dns_set_id() - Rewrite the 16-bit message ID in place.
 * @msg:	a DNS message
 * @len:	its length
 * @id:		the new ID (host byte order)
 *
 * Return: 0, or -EINVAL if @len is shorter than a DNS header.
 */
int cf_dns_set_id(uint8_t *msg, size_t len, uint16_t id);

#endif
