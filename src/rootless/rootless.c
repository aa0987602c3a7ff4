/* SPDX-License-Identifier: MIT */
/*
 * One run of the rootless backend: the doctor's preflight, the proxy's
 * address, the capture files and the tree's resolv.conf (prepare); the
 * sandbox's helper up to GO and the wire-egress socket (start); the engine
 * until the command exited (run); the capture files closed and reported
 * (collect); the sandbox's fds and a never-started run's files (teardown).
 */
#include "rootless/rootless.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dns/resolvconf.h"
#include "doctor/doctor.h"
#include "sandbox/launch.h"
#include "sandbox/plan.h"
#include "util/cleanup.h"
#include "util/log.h"

#define BACKEND_NAME "rootless-internal"

struct rootless {
	struct cf_plan plan;
	struct cf_resolvconf host_dns;
	char resolv[512]; /* the tree's /etc/resolv.conf */
	struct sockaddr_storage proxy;
	socklen_t proxy_len;	/* 0: no proxy */
	struct cf_strv outputs; /* files the tree must neither read nor change */
	struct cf_sandbox sb;
	bool sandbox_up; /* sb holds a helper waiting for GO, or its fds */
	bool engine_ran; /* cf_engine_run() was called: it reaped the helper */
	int wire_fd;	 /* the wire-egress view's packet socket until the engine takes it */
};

static int rootless_prepare(struct cf_run *run, struct cf_fail *fail)
{
	const struct cf_config *cfg = run->cfg;
	struct rootless *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return cf_fail_set(fail, -ENOMEM, CF_FAIL_RUNTIME, NULL, NULL, "out of memory");
	st->wire_fd = -1;
	run->state = st;
	/* The doctor's cheap checks first: a clear remedy instead of a cryptic errno later. */
	r = cf_doctor_preflight(cfg->backend, fail->msg, sizeof(fail->msg));
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_SETUP, "preflight", "host_not_ready");
	r = cf_backend_resolve_proxy(cfg, &st->proxy, &st->proxy_len, fail);
	if (r == 0)
		r = cf_backend_open_capture(run, BACKEND_NAME, fail);
	if (r < 0)
		return r;
	cf_plan_default(&st->plan);
	r = cf_backend_resolv(cfg, &st->plan, &st->host_dns, st->resolv, sizeof(st->resolv));
	if (r < 0)
		return cf_fail_set(fail, r, CF_FAIL_RUNTIME, NULL, NULL,
				   "cannot render the tree's resolv.conf: %s", strerror(-r));
	if (cf_backend_output_files(run, &st->outputs) < 0)
		return cf_fail_set(fail, -ENOMEM, CF_FAIL_RUNTIME, NULL, NULL, "out of memory");
	return 0;
}

/*
 * --tcp-path auto, and nothing in the run needs every TCP byte to cross
 * tun0 and the relay: a capture (its packets), an https:// proxy (TLS ends
 * in the engine; http:// and socks5:// handshakes are switch.c's), a domain
 * rule (the SNI/Host check) or --rate-limit. Then the tree's connects come
 * to the engine first (engine/switch.c); the flow log and the summary get a
 * switched socket's flow_end from the kernel (engine/sockend.c).
 */
static bool switch_tcp(const struct cf_run *run)
{
	const struct cf_config *cfg = run->cfg;
	const struct cf_capture_files *cf = &run->capture;

	return cfg->tcp_path == CF_TCP_PATH_AUTO && !cf->child && !cf->egress && !cf->wire &&
	       cfg->proxy.scheme != CF_PROXY_HTTPS && !cfg->allow_domains.n &&
	       !cfg->allow_domains_exact.n && !cfg->deny_domains.n && !cfg->deny_domains_exact.n &&
	       !cfg->rate_limit; /* its token buckets must see every byte */
}

static int rootless_start(struct cf_run *run, struct cf_fail *fail)
{
	struct rootless *st = run->state;
	struct cf_sandbox_opts so = {
	    .argv = run->cfg->command.v,
	    .resolv_text = st->resolv,
	    .hosts_path = run->cfg->hosts_file,
	    .hosts_extra = run->cfg->allow_host_ports.n ? CF_HOST_ALIAS_HOSTS : NULL,
	    .plan = &st->plan,
	    .capture = run->capture.child != NULL,
	    .outputs = &st->outputs,
	    .masks = run->masks,
	    .uid = run->user->uid,
	    .gid = run->user->gid,
	    .close_fds = run->publish_fds,
	    .n_close_fds = run->n_publish,
	    .switch_tcp = switch_tcp(run),
	};
	enum cf_sandbox_phase phase;
	int r;

	/* From here on teardown closes what the sandbox holds, even after a failed start. */
	st->sandbox_up = true;
	r = cf_sandbox_start(&so, &st->sb, &phase, fail->msg, sizeof(fail->msg));
	if (r < 0 && st->sb.step == CF_STEP_NAMESPACES &&
	    cf_doctor_explain(run->cfg->backend, "userns", fail->msg, sizeof(fail->msg)) < 0)
		return cf_fail_as(fail, r, CF_FAIL_SETUP, "preflight", "host_not_ready");
	if (r < 0) {
		bool pre = phase == CF_SANDBOX_PREFLIGHT;

		return cf_fail_as(fail, r, CF_FAIL_SETUP, pre ? "preflight" : "child_bootstrap",
				  cf_sandbox_step_reason(st->sb.step));
	}
	r = cf_capture_files_wire_socket(&run->capture, &st->wire_fd, fail->msg, sizeof(fail->msg));
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_SETUP, "child_bootstrap",
				  "packet_capture_blocked");
	return 0;
}

static int rootless_run(struct cf_run *run, struct cf_fail *fail)
{
	struct rootless *st = run->state;
	const struct cf_capture_files *cf = &run->capture;
	struct cf_engine_opts eo = {
	    .cfg = run->cfg,
	    .plan = &st->plan,
	    .host_dns = &st->host_dns,
	    .capture = cf->child,
	    .egress = cf->wire ? NULL : cf->egress,
	    .wire = cf->wire ? cf->egress : NULL,
	    .wire_fd = take_fd_int(&st->wire_fd),
	    .obs = run->obs,
	    .proxy_addr = st->proxy_len ? &st->proxy : NULL,
	    .proxy_addr_len = st->proxy_len,
	    .publish_fds = run->publish_fds,
	    .n_publish = run->n_publish,
	    .switch_tcp = switch_tcp(run),
	};

	st->engine_ran = true;
	return cf_backend_run_engine(run, &eo, &st->sb, fail);
}

static void rootless_teardown(struct cf_run *run)
{
	struct rootless *st = run->state;

	if (!st)
		return;
	cf_backend_close_sandbox(run, &st->sb, st->sandbox_up, st->engine_ran);
	if (st->wire_fd >= 0)
		close(st->wire_fd);
	cf_strv_free(&st->outputs);
	free(st);
	run->state = NULL;
}

const struct cf_backend_ops cf_rootless_backend = {
    .name = BACKEND_NAME,
    .prepare = rootless_prepare,
    .start = rootless_start,
    .run = rootless_run,
    .collect = cf_backend_collect,
    .teardown = rootless_teardown,
};
