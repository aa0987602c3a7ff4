/* SPDX-License-Identifier: MIT */
/*
 * The rootless engine: one epoll loop in childflow's own process (the host's
 * namespaces) that decides and relays every flow of the sandboxed tree.
 */
#ifndef CF_ENGINE_ENGINE_H
#define CF_ENGINE_ENGINE_H

#include <sys/socket.h>

#include "config/config.h"
#include "dns/resolvconf.h"
#include "sandbox/launch.h"
#include "sandbox/plan.h"

struct cf_engine_opts {
	const struct cf_config *cfg;
	const struct cf_plan *plan;
	const struct cf_resolvconf *host_dns; /* upstream resolvers unless cfg->dns_set */
	/* The views' writers, borrowed: their owner closes them after the run (capture/files.h). */
	struct cf_pcapng *capture; /* child view, or NULL */
	struct cf_pcapng *egress;  /* egress view, or NULL */
	struct cf_pcapng *wire;	   /* wire-egress view, or NULL */
	int wire_fd;		   /* with wire: its host packet socket (the engine closes it) */
	struct cf_pcapng *host;	   /* rootful: the egress view from NFLOG, or NULL */
	int host_fd;		   /* with host: its NFLOG socket (the engine closes it) */
	struct cf_obs *obs;	   /* flow events go here (owned by the caller), or NULL */
	const struct sockaddr_storage *proxy_addr; /* --proxy, resolved on the host, or NULL */
	const struct cf_veth_plan *veth; /* rootful: the tree's link to the host, else NULL */
	/*
	 * Called when an answer of childflow's resolver taught the name memory
	 * @ip (@ttl seconds, clamped as the memory clamps it) and a domain rule
	 * covers one of its names (@verdict: cf_policy_names_verdict()), before
	 * the tree gets the answer; NULL: nobody outside the engine enforces
	 * domain rules.
	 */
	void (*learned)(void *arg, const struct cf_ip *ip, int verdict, uint32_t ttl);
	void *learned_arg;
	socklen_t proxy_addr_len;
	/* --publish: one listener per cfg->publish entry, in its order (borrowed) */
	const int *publish_fds;
	size_t n_publish;
	bool switch_tcp; /* the sandbox loads the tree's connect() filter (engine/switch.h) */
};

/* How the command ended, as the engine learnt it from the sandbox's init. */
struct cf_engine_result {
	int wait_status;  /* valid when exec_err == 0 */
	int exec_err;	  /* errno of a failed exec (ENOENT: not found) */
	int fatal_err;	  /* the engine itself failed (-errno), 0 otherwise */
	bool helper_lost; /* the sandbox ended without reporting a status */
	uint64_t denials; /* flows and queries policy refused */
	int capture_err;  /* the capture file could not be written (-errno) */
	uint64_t capture_packets, capture_dropped;
	int egress_err; /* the egress or wire-egress file could not be written (-errno) */
	uint64_t egress_packets, egress_dropped; /* dropped: wire-egress packet socket */
	/*
	 * --rate-limit (rate_bps 0: none), per direction (0: from the tree, 1: to
	 * it): bytes that passed, ms from the first to the last, UDP datagrams dropped.
	 */
	uint64_t rate_bps, rate_burst;
	uint64_t rate_bytes[2], rate_ms[2], rate_dropped[2];
};

/*
 * Take over @sb's fds, tell the helper to start the command, and run until
 * the command has exited. Return 0 with @res filled, or -errno if the engine
 * could not start (message already logged).
 */
int cf_engine_run(const struct cf_engine_opts *opts, struct cf_sandbox *sb,
		  struct cf_engine_result *res);

#endif
