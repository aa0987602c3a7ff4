/* SPDX-License-Identifier: MIT */
/*
 * One run of the rootful backend: root, the doctor's preflight, the run's
 * names and addresses, the tree's resolv.conf (prepare); the reaper, the
 * recorded forwarding switches, the owned nft table, the sandbox and its
 * veth (start); the engine until the command exited (run); then the tree,
 * the table and, through the reaper, the switches and the veth undone
 * (teardown).
 */
#include "rootful/rootful.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "doctor/doctor.h"
#include "rootful/hostplan.h"
#include "rootful/hosttable.h"
#include "rootful/nflog.h"
#include "rootful/reaper.h"
#include "rootful/state.h"
#include "sandbox/launch.h"
#include "sandbox/netlink.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/log.h"

#define BACKEND_NAME "rootful"
#define TABLE_TEXT_MAX 65536

struct rootful {
	struct cf_plan plan;
	struct cf_host_plan host;
	int v6_mode; /* cf_rootful_v6_mode() */
	struct cf_resolvconf host_dns;
	char resolv[512];
	struct sockaddr_storage proxy;
	socklen_t proxy_len; /* 0: no proxy */
	struct cf_strv outputs;
	struct cf_strv
	    masks; /* the run's masks, and the run records (a --user root tree owns them) */
	struct cf_reaper reaper;
	struct cf_rootful_state state;
	struct nft_ctx *nft; /* owns the run's table */
	bool learn_warned;
	struct cf_sandbox sb;
	int log_fd; /* the egress view's NFLOG socket until the engine takes it, or -1 */
	bool sandbox_up, engine_ran;
};

static int rootful_check(const struct cf_config *cfg, struct cf_fail *fail)
{
	if (geteuid() != 0)
		return cf_fail_set(
		    fail, -EPERM, CF_FAIL_USAGE, NULL, NULL,
		    "--root needs root: run childflow as root (sudo), or drop --root "
		    "to use the rootless backend");
	/* The engine's host sockets follow the host's routes: --iface would steer nothing. */
	if (cfg->rate_limit && cfg->iface)
		return cf_fail_set(fail, -EINVAL, CF_FAIL_USAGE, NULL, NULL,
				   "--iface %s with --rate-limit: the engine carries all of the "
				   "tree's traffic then, which --iface does not steer; drop one of "
				   "them",
				   cfg->iface);
	return 0;
}

static bool has_domain_rules(const struct cf_config *cfg)
{
	return cfg->allow_domains.n || cfg->allow_domains_exact.n || cfg->deny_domains.n ||
	       cfg->deny_domains_exact.n;
}

static int rootful_prepare(struct cf_run *run, struct cf_fail *fail)
{
	const struct cf_config *cfg = run->cfg;
	struct rootful *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return cf_fail_set(fail, -ENOMEM, CF_FAIL_RUNTIME, NULL, NULL, "out of memory");
	st->reaper.pid = -1;
	st->reaper.fd = -1;
	st->log_fd = -1;
	run->state = st;
	r = cf_doctor_preflight(cfg->backend, fail->msg, sizeof(fail->msg));
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_SETUP, "preflight", "host_not_ready");
	r = cf_backend_resolve_proxy(cfg, &st->proxy, &st->proxy_len, fail);
	if (r == 0)
		r = cf_backend_open_capture(run, BACKEND_NAME, fail);
	if (r < 0)
		return r;
	st->v6_mode = cf_rootful_v6_mode();
	if (st->v6_mode == 0)
		log_warn("--root: the tree gets IPv4 only: IPv6 forwarding needs Linux 6.17's "
			 "per-interface force_forwarding (or net.ipv6.conf.all.forwarding = 1)");
	r = cf_host_plan_make(&st->host, cfg->iface, st->v6_mode != 0, fail->msg,
			      sizeof(fail->msg));
	if (r == -ENODEV || r == -ENETDOWN)
		return cf_fail_as(fail, r, CF_FAIL_USAGE, NULL, NULL);
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_SETUP, "preflight", "host_not_ready");
	/*
	 * Every TCP connection is the engine's (through the tree-side TPROXY)
	 * with a proxy, and with domain rules, whose names the engine checks
	 * against the TLS SNI and HTTP Host a connection sends before a byte
	 * leaves; the kernel's path cannot read them.
	 */
	st->host.link.tcp_via_engine = st->proxy_len > 0 || has_domain_rules(cfg);
	/*
	 * A socks5:// proxy carries UDP too (its UDP ASSOCIATE, engine/socksudp.c):
	 * the tree's UDP goes to the engine as in the rootless backend, and the
	 * run's table refuses any that still reaches the kernel's path.
	 */
	st->host.link.udp_via_engine = st->proxy_len > 0 && cfg->proxy.scheme == CF_PROXY_SOCKS5;
	/*
	 * --rate-limit: the engine carries every packet, as in the rootless
	 * backend, so its two buckets hold the sum (docs/rootful.md says why not
	 * a kernel limiter on the veth); the kernel's path carries nothing.
	 */
	st->host.link.all_via_engine = cfg->rate_limit != 0;
	cf_plan_default(&st->plan);
	r = cf_backend_resolv(cfg, &st->plan, &st->host_dns, st->resolv, sizeof(st->resolv));
	if (r < 0)
		return cf_fail_set(fail, r, CF_FAIL_RUNTIME, NULL, NULL,
				   "cannot render the tree's resolv.conf: %s", strerror(-r));
	for (size_t i = 0; r == 0 && i < run->masks->n; i++)
		r = cf_strv_push(&st->masks, run->masks->v[i]);
	if (r == 0)
		r = cf_strv_push(&st->masks, CF_STATE_DIR);
	if (r < 0 || cf_backend_output_files(run, &st->outputs) < 0)
		return cf_fail_set(fail, -ENOMEM, CF_FAIL_RUNTIME, NULL, NULL, "out of memory");
	return 0;
}

/* The host's end of the veth: addresses, forwarding of its own, up. */
static int host_end(struct mnl_socket *nl, const struct rootful *st)
{
	const struct cf_host_plan *hp = &st->host;
	unsigned idx = if_nametoindex(hp->veth);
	char path[128];
	int r;

	if (!idx)
		return -ENODEV;
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", hp->veth);
	r = cf_write_file(path, "1");
	if (r == 0 && st->v6_mode == 1) {
		snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/force_forwarding",
			 hp->veth);
		r = cf_write_file(path, "1");
	}
	if (r == 0)
		r = cf_nl_addr_add(nl, idx, &hp->link.host4, 30);
	if (r == 0 && hp->link.host6.family)
		r = cf_nl_addr_add(nl, idx, &hp->link.host6, 64);
	if (r == 0)
		r = cf_nl_link_up(nl, idx, 0);
	return r;
}

/* Called by the sandbox once its helper exists: the veth, its tree end in the helper's netns. */
static int host_setup(pid_t helper, void *arg, char *err, size_t errlen)
{
	const struct rootful *st = arg;
	struct mnl_socket *nl = NULL;
	int r = cf_nl_open(&nl);

	if (r == 0)
		r = cf_nl_veth_add(nl, st->host.veth, CF_PLAN_VETH_NAME, helper);
	if (r < 0)
		snprintf(err, errlen, "cannot create the veth pair %s: %s", st->host.veth,
			 strerror(-r));
	if (r == 0) {
		r = host_end(nl, st);
		if (r < 0)
			snprintf(err, errlen, "cannot set up the host's end %s: %s", st->host.veth,
				 strerror(-r));
	}
	cf_nl_close(nl);
	return r;
}

static int start_host(struct cf_run *run, struct rootful *st, struct cf_fail *fail)
{
	bool owned;
	char *text;
	int r = cf_reaper_start(st->host.id, &st->reaper);

	if (r < 0)
		return cf_fail_set(fail, r, CF_FAIL_RUNTIME, NULL, NULL,
				   "cannot start the run's reaper: %s", strerror(-r));
	r = cf_rootful_state_begin(&st->host, getpid(), st->reaper.pid, st->v6_mode, &st->state,
				   fail->msg, sizeof(fail->msg));
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_SETUP, "preflight", "host_not_ready");
	/* Bound before the table names the group: no packet is logged to nobody. */
	if (run->capture.egress) {
		st->log_fd = cf_nflog_open(&st->host.log_group, fail->msg, sizeof(fail->msg));
		if (st->log_fd < 0)
			return cf_fail_as(fail, st->log_fd, CF_FAIL_SETUP, "preflight",
					  "packet_capture_blocked");
	}
	text = malloc(TABLE_TEXT_MAX);
	if (!text)
		return cf_fail_set(fail, -ENOMEM, CF_FAIL_RUNTIME, NULL, NULL, "out of memory");
	r = cf_host_table_render(run->cfg, &st->host, &st->state, text, TABLE_TEXT_MAX);
	if (r < 0)
		cf_fail_set(fail, r, CF_FAIL_RUNTIME, NULL, NULL,
			    "cannot render the run's nftables table: %s", strerror(-r));
	else if ((r = cf_host_table_load(text, &st->nft, &owned, fail->msg, sizeof(fail->msg))) < 0)
		cf_fail_as(fail, r, CF_FAIL_SETUP, "preflight", "host_not_ready");
	else if (!owned)
		log_warn(
		    "--root: this kernel has no owned nft tables (Linux 5.12): the run's table "
		    "%s is deleted by its reaper, or by `childflow --cleanup` after a crash of "
		    "both",
		    st->host.table);
	free(text);
	return r < 0 ? r : 0;
}

static int rootful_start(struct cf_run *run, struct cf_fail *fail)
{
	struct rootful *st = run->state;
	struct cf_sandbox_opts so = {
	    .argv = run->cfg->command.v,
	    .resolv_text = st->resolv,
	    .hosts_path = run->cfg->hosts_file,
	    .hosts_extra = run->cfg->allow_host_ports.n ? CF_HOST_ALIAS_HOSTS : NULL,
	    .plan = &st->plan,
	    .capture = run->capture.child != NULL,
	    .outputs = &st->outputs,
	    .masks = &st->masks,
	    .uid = run->user->uid,
	    .gid = run->user->gid,
	    .veth = &st->host.link,
	    .host_setup = host_setup,
	    .host_arg = st,
	    .close_fds = run->publish_fds,
	    .n_close_fds = run->n_publish,
	};
	enum cf_sandbox_phase phase;
	int r = start_host(run, st, fail);

	if (r < 0)
		return r;
	st->sandbox_up = true;
	r = cf_sandbox_start(&so, &st->sb, &phase, fail->msg, sizeof(fail->msg));
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_SETUP,
				  phase == CF_SANDBOX_PREFLIGHT ? "preflight" : "child_bootstrap",
				  cf_sandbox_step_reason(st->sb.step));
	return 0;
}

/* The engine learnt an address a domain rule covers: the host's table follows at once. */
static void learned(void *arg, const struct cf_ip *ip, int verdict, uint32_t ttl)
{
	struct rootful *st = arg;

	char a[CF_IP_STRLEN];

	if (cf_host_table_learn(st->nft, st->host.table, ip, verdict, ttl) == 0)
		return;
	/* Never silent: a missing deny element lets the kernel carry what the rules deny. */
	if (verdict < 0)
		log_error("--root: cannot add %s to the run's denied addresses: the host's kernel "
			  "does NOT block direct traffic to it",
			  cf_ip_format(ip, a, sizeof(a)));
	else if (!st->learn_warned)
		log_warn(
		    "--root: cannot add %s to the run's allowed addresses: direct traffic to it "
		    "is refused",
		    cf_ip_format(ip, a, sizeof(a)));
	st->learn_warned = st->learn_warned || verdict > 0;
}

static int rootful_run(struct cf_run *run, struct cf_fail *fail)
{
	struct rootful *st = run->state;
	struct cf_engine_opts eo = {
	    .cfg = run->cfg,
	    .plan = &st->plan,
	    .host_dns = &st->host_dns,
	    .capture = run->capture.child,
	    .wire_fd = -1,
	    .host = run->capture.egress,
	    .host_fd = take_fd_int(&st->log_fd),
	    .obs = run->obs,
	    .proxy_addr = st->proxy_len ? &st->proxy : NULL,
	    .proxy_addr_len = st->proxy_len,
	    .veth = &st->host.link,
	    .learned = learned,
	    .learned_arg = st,
	    .publish_fds = run->publish_fds,
	    .n_publish = run->n_publish,
	};

	st->engine_ran = true;
	return cf_backend_run_engine(run, &eo, &st->sb, fail);
}

static void rootful_teardown(struct cf_run *run)
{
	struct rootful *st = run->state;

	if (!st)
		return;
	cf_backend_close_sandbox(run, &st->sb, st->sandbox_up, st->engine_ran);
	if (st->log_fd >= 0)
		close(st->log_fd);
	cf_host_table_drop(st->nft);
	if (cf_reaper_finish(&st->reaper) < 0)
		log_warn(
		    "--root: the run's reaper did not answer; it undoes the run's changes when "
		    "it notices childflow is gone (or run `childflow --cleanup`)");
	cf_strv_free(&st->outputs);
	cf_strv_free(&st->masks);
	free(st);
	run->state = NULL;
}

const struct cf_backend_ops cf_rootful_backend = {
    .name = BACKEND_NAME,
    .check = rootful_check,
    .prepare = rootful_prepare,
    .start = rootful_start,
    .run = rootful_run,
    .collect = cf_backend_collect,
    .teardown = rootful_teardown,
};

int cf_rootful_cleanup_run(void)
{
	int n;

	if (geteuid() != 0) {
		log_error("--cleanup needs root: run it as root (sudo)");
		return CF_EXIT_USAGE;
	}
	n = cf_rootful_cleanup(stdout);
	if (n < 0) {
		log_error("--cleanup: cannot read %s: %s", CF_STATE_DIR, strerror(-n));
		return CF_EXIT_RUNTIME;
	}
	printf("childflow: --cleanup: %d dead run%s undone\n", n, n == 1 ? "" : "s");
	return 0;
}
