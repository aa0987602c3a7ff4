// SPDX-License-Identifier: MIT
/*
 * DNS messages through ldns.
 *
 * Theory of operation: every message, from the child or from upstream, goes
 * through ldns_wire2pkt() first; this file only ever reads the resulting
 * ldns_pkt (and, for a message ldns rejected, the fixed header fields through
 * ldns's own LDNS_*_WIRE accessors). Names leave ldns as presentation strings
 * (ldns_rdf2str), so label contents are escaped before the engine sees them.
 * Answers are built as ldns_pkt and serialised by ldns into a buffer whose
 * status is checked (see pkt_emit()), then copied into the caller's buffer;
 * nothing here keeps state between calls.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <ldns/ldns.h>

#include "dns/message.h"
#include "util/cleanup.h"

/* Meta-types that ldns names in ldns_rr_type2str() but not in its descriptor table. */
static const struct {
	uint16_t type;
	const char *name;
} meta_type_names[] = {
    {251, "IXFR"}, {252, "AXFR"}, {253, "MAILB"}, {254, "MAILA"}, {255, "ANY"},
};

static void pkt_freep(ldns_pkt **p)
{
	ldns_pkt_free(*p);
}

static void rr_freep(ldns_rr **rr)
{
	ldns_rr_free(*rr);
}

#define cleanup_pkt __attribute__((cleanup(pkt_freep)))
#define cleanup_rr __attribute__((cleanup(rr_freep)))

/* Map an ldns status to -errno: only allocation failure is not the input's fault. */
static int status_to_errno(ldns_status s)
{
	return s == LDNS_STATUS_MEM_ERR ? -ENOMEM : -EINVAL;
}

/*
 * ldns_wire2pkt() (ldns 1.8.3) keeps only the last TSIG record of the
 * additional section and leaks the others. A message carries at most one
 * (RFC 8945, 5.1), so refuse more before ldns sees them, walking the records
 * with ldns's own parser. Return 0, -EINVAL (several TSIGs) or -ENOMEM.
 */
static int check_single_tsig(const uint8_t *msg, size_t len)
{
	const unsigned count[] = {LDNS_QDCOUNT(msg), LDNS_ANCOUNT(msg), LDNS_NSCOUNT(msg),
				  LDNS_ARCOUNT(msg)};
	unsigned tsig = 0;
	size_t pos = CF_DNS_HEADER_LEN;

	if (count[LDNS_SECTION_ADDITIONAL] < 2)
		return 0;
	for (int sec = LDNS_SECTION_QUESTION; sec <= LDNS_SECTION_ADDITIONAL; sec++) {
		for (unsigned i = 0; i < count[sec]; i++) {
			ldns_rr *rr = NULL;
			ldns_status s = ldns_wire2rr(&rr, msg, len, &pos, (ldns_pkt_section)sec);

			/* ldns_wire2pkt() reports a bad record too, after the TSIGs before it. */
			if (s == LDNS_STATUS_MEM_ERR)
				return -ENOMEM;
			if (s != LDNS_STATUS_OK)
				goto out;
			if (sec == LDNS_SECTION_ADDITIONAL &&
			    ldns_rr_get_type(rr) == LDNS_RR_TYPE_TSIG)
				tsig++;
			ldns_rr_free(rr);
		}
	}
out:
	return tsig > 1 ? -EINVAL : 0;
}

/* Run ldns over @msg; on success *pkt is owned by the caller. */
static int wire_to_pkt(const uint8_t *msg, size_t len, ldns_pkt **pkt)
{
	ldns_status s;
	int r;

	*pkt = NULL;
	if (!msg || len < CF_DNS_HEADER_LEN)
		return -EINVAL;
	r = check_single_tsig(msg, len);
	if (r < 0)
		return r;
	s = ldns_wire2pkt(pkt, msg, len);
	if (s != LDNS_STATUS_OK) {
		*pkt = NULL;
		return status_to_errno(s);
	}
	return 0;
}

/* The only question of @pkt, or NULL if it has none or several. */
static const ldns_rr *single_question(const ldns_pkt *pkt)
{
	const ldns_rr_list *q = ldns_pkt_question(pkt);

	if (ldns_pkt_qdcount(pkt) != 1 || !q || ldns_rr_list_rr_count(q) != 1)
		return NULL;
	return ldns_rr_list_rr(q, 0);
}

/*
 * Write the normalised form of domain name @rdf into @out (CF_DNS_NAMELEN):
 * ldns presentation form, ASCII lower case, trailing dot dropped. Return 0,
 * -EINVAL (not a name), -ENAMETOOLONG or -ENOMEM.
 */
static int dname_normalise(const ldns_rdf *rdf, char *out)
{
	char *s;
	size_t n;

	out[0] = '\0';
	if (!rdf || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
		return -EINVAL;
	s = ldns_rdf2str(rdf);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	/* Names from the wire are absolute: ldns ends every label, and the root, with '.'. */
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n >= CF_DNS_NAMELEN) {
		free(s);
		return -ENAMETOOLONG;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = c;
	}
	out[n] = '\0';
	free(s);
	return 0;
}

int cf_dns_parse_query(const uint8_t *msg, size_t len, struct cf_dns_query *out)
{
	cleanup_pkt ldns_pkt *pkt = NULL;
	const ldns_rr *q;
	int r;

	memset(out, 0, sizeof(*out));
	r = wire_to_pkt(msg, len, &pkt);
	if (r < 0)
		return r;
	out->id = ldns_pkt_id(pkt);
	out->is_response = ldns_pkt_qr(pkt);
	q = single_question(pkt);
	if (!q)
		return 0;
	r = dname_normalise(ldns_rr_owner(q), out->qname);
	if (r == -ENOMEM) {
		memset(out, 0, sizeof(*out));
		return r;
	}
	if (r < 0)
		return 0; /* a name the engine could not police: no question */
	out->has_question = true;
	out->qtype = (uint16_t)ldns_rr_get_type(q);
	out->qclass = (uint16_t)ldns_rr_get_class(q);
	return 0;
}

const char *cf_dns_type_name(uint16_t qtype, char *buf, size_t len)
{
	const ldns_rr_descriptor *d;

	(void)buf;
	(void)len;
	for (size_t i = 0; i < CF_ARRAY_SIZE(meta_type_names); i++)
		if (meta_type_names[i].type == qtype)
			return meta_type_names[i].name;
	/*
	 * ldns fills the gaps of its table with generic "TYPEnnn" entries (and
	 * a NULL name for type 0 and unknown codes); only true mnemonics count.
	 */
	d = ldns_rr_descript(qtype);
	if (!d || !d->_name || (uint16_t)d->_type != qtype || strncmp(d->_name, "TYPE", 4) == 0)
		return "unknown";
	return d->_name;
}

/* Fill @rec from an IN-class A/AAAA/CNAME record; return 0, -ENOENT (skip it) or -ENOMEM. */
static int record_from_rr(const ldns_rr *rr, struct cf_dns_record *rec)
{
	ldns_rr_type type = ldns_rr_get_type(rr);
	const ldns_rdf *rd = ldns_rr_rdf(rr, 0);
	int r;

	memset(rec, 0, sizeof(*rec));
	if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN || ldns_rr_rd_count(rr) != 1 || !rd)
		return -ENOENT;
	r = dname_normalise(ldns_rr_owner(rr), rec->name);
	if (r < 0)
		return r == -ENOMEM ? r : -ENOENT;
	rec->ttl = ldns_rr_ttl(rr);
	if (type == LDNS_RR_TYPE_CNAME) {
		rec->is_cname = true;
		r = dname_normalise(rd, rec->target);
		if (r < 0)
			return r == -ENOMEM ? r : -ENOENT;
	} else if (type == LDNS_RR_TYPE_A && ldns_rdf_get_type(rd) == LDNS_RDF_TYPE_A &&
		   ldns_rdf_size(rd) == 4) {
		rec->ip.family = AF_INET;
		memcpy(rec->ip.b, ldns_rdf_data(rd), 4);
	} else if (type == LDNS_RR_TYPE_AAAA && ldns_rdf_get_type(rd) == LDNS_RDF_TYPE_AAAA &&
		   ldns_rdf_size(rd) == 16) {
		rec->ip.family = AF_INET6;
		memcpy(rec->ip.b, ldns_rdf_data(rd), 16);
	} else {
		return -ENOENT;
	}
	return 0;
}

static bool is_wanted_type(ldns_rr_type t)
{
	return t == LDNS_RR_TYPE_A || t == LDNS_RR_TYPE_AAAA || t == LDNS_RR_TYPE_CNAME;
}

int cf_dns_parse_answer(const uint8_t *msg, size_t len, struct cf_dns_answer *out)
{
	cleanup_pkt ldns_pkt *pkt = NULL;
	const ldns_rr_list *an;
	size_t count, want = 0;
	int r;

	memset(out, 0, sizeof(*out));
	r = wire_to_pkt(msg, len, &pkt);
	if (r < 0)
		return r;
	out->rcode = (uint8_t)ldns_pkt_get_rcode(pkt);
	an = ldns_pkt_answer(pkt);
	count = an ? ldns_rr_list_rr_count(an) : 0;
	for (size_t i = 0; i < count; i++)
		want += is_wanted_type(ldns_rr_get_type(ldns_rr_list_rr(an, i)));
	if (want == 0)
		return 0;
	out->rr = calloc(want, sizeof(*out->rr));
	if (!out->rr)
		return -ENOMEM;
	for (size_t i = 0; i < count && out->n < want; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);

		if (!is_wanted_type(ldns_rr_get_type(rr)))
			continue;
		r = record_from_rr(rr, &out->rr[out->n]);
		if (r == -ENOMEM) {
			cf_dns_answer_free(out);
			return r;
		}
		if (r == 0)
			out->n++;
	}
	return 0;
}

void cf_dns_answer_free(struct cf_dns_answer *a)
{
	if (!a)
		return;
	free(a->rr);
	a->rr = NULL;
	a->n = 0;
}

static bool on_chain(char (*chain)[CF_DNS_NAMELEN], size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(chain[i], name) == 0)
			return true;
	return false;
}

/* Index of the first CNAME of @a owned by @owner, or @a->n. */
static size_t first_cname_of(const struct cf_dns_answer *a, const char *owner)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->rr[i].is_cname && strcasecmp(a->rr[i].name, owner) == 0)
			return i;
	return a->n;
}

static bool is_link(const size_t *link, size_t n_links, size_t i)
{
	for (size_t j = 0; j < n_links; j++)
		if (link[j] == i)
			return true;
	return false;
}

size_t cf_dns_answer_keep_chain(struct cf_dns_answer *a, const char *qname)
{
	/* Copies, not pointers into a->rr: compacting overwrites records. */
	char chain[CF_DNS_CHAIN_MAX + 1][CF_DNS_NAMELEN];
	size_t link[CF_DNS_CHAIN_MAX]; /* link[i]: the CNAME from chain[i] to chain[i + 1] */
	size_t n_chain = 1, kept = 0;

	snprintf(chain[0], sizeof(chain[0]), "%s", qname);
	/* Walk from the question's name, whatever the order of the records. */
	while (n_chain <= CF_DNS_CHAIN_MAX) {
		size_t i = first_cname_of(a, chain[n_chain - 1]);

		if (i == a->n || on_chain(chain, n_chain, a->rr[i].target))
			break;
		link[n_chain - 1] = i;
		snprintf(chain[n_chain++], sizeof(chain[0]), "%s", a->rr[i].target);
	}
	for (size_t i = 0; i < a->n; i++) {
		const struct cf_dns_record *r = &a->rr[i];
		/* The CNAMEs that make the chain, the addresses of any name on it. */
		bool keep =
		    r->is_cname ? is_link(link, n_chain - 1, i) : on_chain(chain, n_chain, r->name);

		if (!keep)
			continue;
		if (kept != i)
			a->rr[kept] = *r;
		kept++;
	}
	a->n = kept;
	return kept;
}

/*
 * Serialise @pkt into @out. Names are written uncompressed: ldns 1.8's
 * compressing writer (ldns_pkt2wire) ignores allocation failures and emits a
 * short packet, while this path only needs the one buffer and its status is
 * checked. Synthetic answers are small, so compression buys little.
 * Return the length, -ENOSPC or -ENOMEM.
 */
static ssize_t pkt_emit(const ldns_pkt *pkt, uint8_t *out, size_t cap)
{
	ldns_buffer *buf = ldns_buffer_new(512); /* grows as needed */
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	(void)ldns_pkt2buffer_wire_compress(buf, pkt, NULL);
	if (ldns_buffer_status(buf) != LDNS_STATUS_OK) {
		r = status_to_errno(ldns_buffer_status(buf));
	} else if (ldns_buffer_position(buf) > cap) {
		r = -ENOSPC;
	} else {
		memcpy(out, ldns_buffer_begin(buf), ldns_buffer_position(buf));
		r = (ssize_t)ldns_buffer_position(buf);
	}
	ldns_buffer_free(buf);
	return r;
}

/* A reply header for parsed query @q: id, opcode, RD, CD copied; QR and RA set. */
static ldns_pkt *reply_new(const ldns_pkt *q, uint8_t rcode)
{
	ldns_pkt *p = ldns_pkt_new();

	if (!p)
		return NULL;
	ldns_pkt_set_id(p, ldns_pkt_id(q));
	ldns_pkt_set_opcode(p, ldns_pkt_get_opcode(q));
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_rd(p, ldns_pkt_rd(q));
	ldns_pkt_set_cd(p, ldns_pkt_cd(q));
	ldns_pkt_set_rcode(p, rcode);
	return p;
}

/*
 * Copy the question @q into @p. Built by hand rather than with ldns_rr_clone(),
 * which leaves the owner NULL when its allocation fails. Return 0 or -ENOMEM.
 */
static int reply_add_question(ldns_pkt *p, const ldns_rr *q)
{
	cleanup_rr ldns_rr *copy = ldns_rr_new();
	ldns_rdf *owner;

	if (!copy)
		return -ENOMEM;
	owner = ldns_rdf_clone(ldns_rr_owner(q));
	if (!owner)
		return -ENOMEM;
	ldns_rr_set_owner(copy, owner);
	ldns_rr_set_question(copy, true);
	ldns_rr_set_type(copy, ldns_rr_get_type(q));
	ldns_rr_set_class(copy, ldns_rr_get_class(q));
	if (!ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, copy))
		return -ENOMEM;
	copy = NULL; /* owned by the packet now */
	return 0;
}

/* FORMERR for a query ldns rejected: the header's id and RD, read via ldns's accessors. */
static ssize_t build_formerr(const uint8_t *query, uint8_t *out, size_t cap)
{
	cleanup_pkt ldns_pkt *p = ldns_pkt_new();

	if (!p)
		return -ENOMEM;
	ldns_pkt_set_id(p, LDNS_ID_WIRE(query));
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_rd(p, LDNS_RD_WIRE(query) != 0);
	ldns_pkt_set_rcode(p, LDNS_RCODE_FORMERR);
	return pkt_emit(p, out, cap);
}

/* Checks shared by both builders: a whole header, and a query rather than a response. */
static int check_query_header(const uint8_t *query, size_t qlen, const uint8_t *out)
{
	if (!query || !out || qlen < CF_DNS_HEADER_LEN)
		return -EINVAL;
	if (LDNS_QR_WIRE(query))
		return -EINVAL;
	return 0;
}

ssize_t cf_dns_build_empty_answer(const uint8_t *query, size_t qlen, uint8_t rcode, uint8_t *out,
				  size_t cap)
{
	cleanup_pkt ldns_pkt *q = NULL;
	cleanup_pkt ldns_pkt *p = NULL;
	const ldns_rr *question;
	int r;

	r = check_query_header(query, qlen, out);
	if (r < 0)
		return r;
	if (rcode > 15)
		return -EINVAL;
	r = wire_to_pkt(query, qlen, &q);
	if (r == -ENOMEM)
		return r;
	question = r < 0 ? NULL : single_question(q);
	if (!question)
		return build_formerr(query, out, cap);
	p = reply_new(q, rcode);
	if (!p)
		return -ENOMEM;
	r = reply_add_question(p, question);
	if (r < 0)
		return r;
	return pkt_emit(p, out, cap);
}

/* Whether an address of @family answers a question of type @qtype. */
static bool family_answers(uint8_t family, ldns_rr_type qtype)
{
	if (qtype == LDNS_RR_TYPE_ANY)
		return true;
	return (family == AF_INET && qtype == LDNS_RR_TYPE_A) ||
	       (family == AF_INET6 && qtype == LDNS_RR_TYPE_AAAA);
}

/* Append an A or AAAA record for @ip owned by @owner to the answer section. */
static int reply_add_address(ldns_pkt *p, const ldns_rdf *owner, const struct cf_ip *ip,
			     uint32_t ttl)
{
	bool v4 = ip->family == AF_INET;
	cleanup_rr ldns_rr *rr = ldns_rr_new();
	ldns_rdf *name, *data;

	if (!rr)
		return -ENOMEM;
	name = ldns_rdf_clone(owner);
	if (!name)
		return -ENOMEM;
	ldns_rr_set_owner(rr, name);
	ldns_rr_set_type(rr, v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, ttl);
	data = ldns_rdf_new_frm_data(v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA, v4 ? 4 : 16, ip->b);
	if (!data)
		return -ENOMEM;
	if (!ldns_rr_push_rdf(rr, data)) {
		ldns_rdf_deep_free(data);
		return -ENOMEM;
	}
	if (!ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr))
		return -ENOMEM;
	rr = NULL; /* owned by the packet now */
	return 0;
}

ssize_t cf_dns_build_address_answer(const uint8_t *query, size_t qlen, const struct cf_ip *ips,
				    size_t n_ips, uint32_t ttl, uint8_t *out, size_t cap)
{
	cleanup_pkt ldns_pkt *q = NULL;
	cleanup_pkt ldns_pkt *p = NULL;
	const ldns_rr *question;
	ldns_rr_type qtype;
	int r;

	r = check_query_header(query, qlen, out);
	if (r < 0)
		return r;
	if (n_ips > 0 && !ips)
		return -EINVAL;
	for (size_t i = 0; i < n_ips; i++)
		if (ips[i].family != AF_INET && ips[i].family != AF_INET6)
			return -EINVAL;
	r = wire_to_pkt(query, qlen, &q);
	if (r < 0)
		return r;
	question = single_question(q);
	if (!question || ldns_rr_get_class(question) != LDNS_RR_CLASS_IN)
		return -EINVAL;
	p = reply_new(q, LDNS_RCODE_NOERROR);
	if (!p)
		return -ENOMEM;
	r = reply_add_question(p, question);
	if (r < 0)
		return r;
	qtype = ldns_rr_get_type(question);
	for (size_t i = 0; i < n_ips; i++) {
		if (!family_answers(ips[i].family, qtype))
			continue;
		r = reply_add_address(p, ldns_rr_owner(question), &ips[i], ttl);
		if (r < 0)
			return r;
	}
	return pkt_emit(p, out, cap);
}

int cf_dns_set_id(uint8_t *msg, size_t len, uint16_t id)
{
	if (!msg || len < CF_DNS_HEADER_LEN)
		return -EINVAL;
	LDNS_ID_SET(msg, id);
	return 0;
}
