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

/* What the tree's resolv.conf says: the virtual resolver, both families. */
static int prepare_dns(const struct cf_config *cfg, struct rootless *st)
{
	st->host_dns.n = 0;
	if (!cfg->dns_set) {
		int r = cf_resolvconf_read("/etc/resolv.conf", &st->host_dns);

		if (r < 0)
			log_warn(
			    "cannot read the host's /etc/resolv.conf (%s): the tree's DNS will "
			    "fail unless --dns is given",
			    strerror(-r));
	}
	return cf_resolvconf_render((const struct cf_ip[]){st->plan.gateway4, st->plan.gateway6}, 2,
				    st->resolv, sizeof(st->resolv)) < 0
		   ? -ENOSPC
		   : 0;
}

/* The proxy's own name is resolved here, on the host, never through the tree's DNS policy. */
static int resolve_proxy(const struct cf_config *cfg, struct rootless *st, struct cf_fail *fail)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *res = NULL;
	char port[8];
	int r;

	if (cfg->proxy.scheme == CF_PROXY_NONE)
		return 0;
	snprintf(port, sizeof(port), "%u", cfg->proxy.port);
	r = getaddrinfo(cfg->proxy.host, port, &hints, &res);
	if (r != 0 || !res)
		return cf_fail_set(fail, -EHOSTUNREACH, CF_FAIL_USAGE, NULL, NULL,
				   "--proxy: cannot resolve '%s': %s", cfg->proxy.host,
				   r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	memcpy(&st->proxy, res->ai_addr, res->ai_addrlen);
	st->proxy_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/*
 * Create the capture files before anything runs, so a bad path fails early
 * (never overwritten); no capture privilege for wire-egress is the host's
 * failure, anything else a usage error.
 */
static int open_capture(struct cf_run *run, struct cf_fail *fail)
{
	struct cf_capture_files *cf = &run->capture;
	int r = cf_capture_files_name(cf, run->cfg, fail->msg, sizeof(fail->msg));

	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_USAGE, NULL, NULL);
	r = cf_capture_files_probe(cf, fail->msg, sizeof(fail->msg));
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_SETUP, "preflight", "packet_capture_blocked");
	r = cf_capture_files_create(cf, run->cfg, BACKEND_NAME, fail->msg, sizeof(fail->msg));
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_USAGE, NULL, NULL);
	return 0;
}

/*
 * The files of this run the tree must neither read nor change (the flow log,
 * every capture file, the profile chain): all exist by now, so the sandbox
 * can bind an empty read-only file over each (cf_mounts_hide()).
 */
static int output_files(const struct cf_run *run, struct cf_strv *out)
{
	const struct cf_config *cfg = run->cfg;
	const char *const files[] = {cfg->flow_log, run->capture.child_path,
				     run->capture.egress_path};
	int r = 0;

	for (size_t i = 0; r == 0 && i < CF_ARRAY_SIZE(files); i++)
		if (files[i])
			r = cf_strv_push(out, files[i]);
	for (size_t i = 0; r == 0 && i < cfg->profile_files.n; i++)
		r = cf_strv_push(out, cfg->profile_files.v[i]);
	return r;
}

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
	r = resolve_proxy(cfg, st, fail);
	if (r == 0)
		r = open_capture(run, fail);
	if (r < 0)
		return r;
	cf_plan_default(&st->plan);
	r = prepare_dns(cfg, st);
	if (r < 0)
		return cf_fail_set(fail, r, CF_FAIL_RUNTIME, NULL, NULL,
				   "cannot render the tree's resolv.conf: %s", strerror(-r));
	if (output_files(run, &st->outputs) < 0)
		return cf_fail_set(fail, -ENOMEM, CF_FAIL_RUNTIME, NULL, NULL, "out of memory");
	return 0;
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
	};
	enum cf_sandbox_phase phase;
	int r;

	/* From here on teardown closes what the sandbox holds, even after a failed start. */
	st->sandbox_up = true;
	r = cf_sandbox_start(&so, &st->sb, &phase, fail->msg, sizeof(fail->msg));
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
	};
	int r;

	st->engine_ran = true;
	r = cf_engine_run(&eo, &st->sb, &run->result);
	if (r < 0) {
		/* The engine said why already. */
		cf_fail_set(fail, r, CF_FAIL_RUNTIME, "run", "engine_failure", "%s", strerror(-r));
		fail->said = true;
	}
	return r;
}

static void rootless_collect(struct cf_run *run)
{
	const struct cf_engine_result *res = &run->result;
	struct cf_capture_outcome child = {res->capture_err, res->capture_dropped};
	struct cf_capture_outcome egress = {res->egress_err, res->egress_dropped};

	cf_capture_files_finish(&run->capture, &child, &egress);
}

static void rootless_teardown(struct cf_run *run)
{
	struct rootless *st = run->state;

	if (!st)
		return;
	/* A helper still waiting for GO: no engine reaped it. */
	if (st->sandbox_up && !st->engine_ran && st->sb.helper > 0) {
		kill(st->sb.helper, SIGKILL);
		waitpid(st->sb.helper, NULL, 0);
	}
	/* What the engine did not take, and what a failed start left (its ctlfd and pidfd). */
	if (st->sandbox_up)
		cf_sandbox_close(&st->sb);
	if (!st->engine_ran)
		cf_capture_files_discard(&run->capture);
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
    .collect = rootless_collect,
    .teardown = rootless_teardown,
};
