/* SPDX-License-Identifier: MIT */
/*
 * The run sequence: pick the backend, call its operations in order
 * (backend/backend.h), and turn what they return into the exit status and
 * the messages of a run. With main.c, the only place that prints a fatal
 * error or picks an exit status.
 */
#include "runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "config/settings.h"
#include "obs/flowlog.h"
#include "rootful/rootful.h"
#include "rootless/rootless.h"
#include "sandbox/masks.h"
#include "sandbox/treeuser.h"
#include "util/cleanup.h"
#include "util/log.h"

/* By enum cf_backend. */
static const struct cf_backend_ops *const backends[] = {
    [CF_BACKEND_ROOTLESS] = &cf_rootless_backend,
    [CF_BACKEND_ROOTFUL] = &cf_rootful_backend,
};

/* Many concurrent connections need many fds (six per relayed connection). */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int exit_code_of(const struct cf_engine_result *res, const char *cmd)
{
	if (res->fatal_err)
		return CF_EXIT_RUNTIME;
	if (res->exec_err == ENOENT) {
		log_error("%s: command not found", cmd);
		return CF_EXIT_NOTFOUND;
	}
	if (res->exec_err) {
		log_error("%s: cannot execute: %s", cmd, strerror(res->exec_err));
		return CF_EXIT_NOEXEC;
	}
	if (res->helper_lost) {
		log_error("the sandbox ended without reporting the command's status");
		return CF_EXIT_RUNTIME;
	}
	if (WIFSIGNALED(res->wait_status))
		return 128 + WTERMSIG(res->wait_status);
	return WEXITSTATUS(res->wait_status);
}

/* The --capture-point value, as the summary's capture.requested names it. */
static const char *capture_point_name(enum cf_capture_point p)
{
	switch (p) {
	case CF_CAPTURE_CHILD:
		return "child";
	case CF_CAPTURE_EGRESS:
		return "egress";
	case CF_CAPTURE_WIRE_EGRESS:
		return "wire-egress";
	case CF_CAPTURE_BOTH:
		return "both";
	}
	return "child";
}

static void print_summary(const struct cf_config *cfg, const char *backend,
			  const struct cf_capture_files *cf, const struct cf_obs *obs,
			  const struct cf_engine_result *res, int code)
{
	struct cf_run_rate rate = {
	    .limit_bps = res->rate_bps,
	    .burst_bytes = res->rate_burst,
	    .bytes = {res->rate_bytes[0], res->rate_bytes[1]},
	    .ms = {res->rate_ms[0], res->rate_ms[1]},
	    .dropped = {res->rate_dropped[0], res->rate_dropped[1]},
	};
	struct cf_strv controls = {0};
	const char *captures[3] = {NULL, NULL, NULL};
	struct cf_run_info run = {
	    .backend = backend,
	    .command = cfg->command.v,
	    .exit_code = code,
	    .captures = cf->child_path || cf->egress_path ? captures : NULL,
	    .flow_log = cfg->flow_log,
	    .capture_child = cf->child_path,
	    .capture_egress = cf->egress_path,
	    .rate = res->rate_bps ? &rate : NULL,
	};

	captures[0] = cf->child_path ? cf->child_path : cf->egress_path;
	captures[1] = cf->child_path ? cf->egress_path : NULL;
	if (run.captures) {
		run.capture_requested = capture_point_name(cfg->capture_point);
		run.capture_effective =
		    cfg->capture_point == CF_CAPTURE_BOTH ? "child+egress" : run.capture_requested;
	}

	if (cf_config_controls(cfg, &controls) == 0)
		run.controls = (const char *const *)controls.v;
	if (cf_obs_print_summary(obs, &run, cfg->summary_format == CF_FORMAT_JSON, stderr) < 0)
		log_error("--summary: cannot print the summary");
	cf_strv_free(&controls);
}

/*
 * With --proxy the engine forces every TCP connection through the proxy, so
 * a program that also honoured a proxy variable would be proxied twice (or
 * try a proxy only reachable from elsewhere). The tree gets no proxy
 * variables; which were removed is said once in debug output.
 */
static void drop_proxy_env(const struct cf_config *cfg)
{
	static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
					   "all_proxy",	 "ALL_PROXY",  "ftp_proxy",   "FTP_PROXY",
					   "no_proxy",	 "NO_PROXY"};

	if (cfg->proxy.scheme == CF_PROXY_NONE)
		return;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if (getenv(vars[i])) {
			log_debug("--proxy: removing %s from the tree's environment", vars[i]);
			unsetenv(vars[i]);
		}
	}
}

static void block_signals(void)
{
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
}

/* Exit status of a finished run, with --fail-on-leak applied. */
static int final_code(const struct cf_config *cfg, const struct cf_engine_result *res)
{
	int code = exit_code_of(res, cfg->command.v[0]);

	if (code == 0 && cfg->fail_on_leak && res->denials > 0) {
		log_error("--fail-on-leak: the command exited 0, but policy blocked %llu "
			  "connection%s or DNS quer%s",
			  (unsigned long long)res->denials, res->denials == 1 ? "" : "s",
			  res->denials == 1 ? "y" : "ies");
		code = CF_EXIT_LEAK;
	}
	return code;
}

/* Say why a run failed, record it in the flow log, and pick its exit status. */
static int failed(const struct cf_run *run, const struct cf_fail *fail)
{
	if (!fail->said)
		log_error("%s", fail->msg);
	if (fail->phase)
		cf_obs_runtime_failure(run->obs, fail->phase, fail->reason, fail->msg);
	switch (fail->kind) {
	case CF_FAIL_USAGE:
		return CF_EXIT_USAGE;
	case CF_FAIL_SETUP:
		return CF_EXIT_SETUP;
	case CF_FAIL_RUNTIME:
		break;
	}
	return CF_EXIT_RUNTIME;
}

/* prepare, start, run, collect, teardown (backend/backend.h); return the exit status. */
static int run_backend(const struct cf_backend_ops *b, struct cf_run *run)
{
	struct cf_fail fail = {.kind = CF_FAIL_RUNTIME}; /* a backend's omission: internal */
	bool ran = false;
	int r = cf_backend_publish_open(run, &fail);

	if (r < 0) {
		cf_backend_publish_close(run);
		return failed(run, &fail);
	}
	r = b->prepare(run, &fail);

	if (r == 0) {
		raise_fd_limit();
		drop_proxy_env(run->cfg);
		block_signals();
		r = b->start(run, &fail);
	}
	if (r == 0) {
		r = b->run(run, &fail);
		b->collect(run);
		ran = true;
	}
	b->teardown(run);
	cf_backend_publish_close(run);
	if (r < 0)
		return failed(run, &fail);
	if (ran && run->result.fatal_err)
		cf_obs_runtime_failure(run->obs, "run", "engine_failure",
				       strerror(-run->result.fatal_err));
	return final_code(run->cfg, &run->result);
}

int cf_run(const struct cf_config *cfg)
{
	const struct cf_backend_ops *b = backends[cfg->backend];
	struct cf_mask_env mask_env;
	struct cf_strv masks = {0};
	struct cf_tree_user user;
	struct cf_run run = {.cfg = cfg, .user = &user, .masks = &masks};
	struct cf_fail fail = {.kind = CF_FAIL_USAGE};
	char err[512];
	int code, r;

	if (b->check && b->check(cfg, &fail) < 0)
		return failed(&run, &fail);
	/* Who the tree runs as: before any file is created, as a usage error. */
	if (cf_tree_user_pick(cfg->user, cf_is_host_root(), getuid(), getgid(), getenv("SUDO_UID"),
			      getenv("SUDO_GID"), &user, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return CF_EXIT_USAGE;
	}
	/* The caller's sockets, and the tree's user's when that is another one. */
	cf_mask_env_current(&mask_env);
	cf_mask_env_tree_user(&mask_env, user.uid);
	if (cf_masks_build(cfg, &mask_env, &masks, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return CF_EXIT_USAGE;
	}
	if (user.note[0])
		log_warn("%s", user.note);
	if (cfg->flow_log || cfg->summary) {
		r = cf_obs_open(cfg->flow_log, &run.obs);
		if (r < 0) {
			log_error("--flow-log: cannot create '%s': %s", cfg->flow_log,
				  strerror(-r));
			cf_strv_free(&masks);
			return CF_EXIT_USAGE;
		}
	}
	code = run_backend(b, &run);
	if (run.obs && cf_obs_flow_log_error(run.obs))
		log_error("--flow-log: writing '%s' failed: %s; the log is incomplete",
			  cfg->flow_log, strerror(-cf_obs_flow_log_error(run.obs)));
	if (cfg->summary)
		print_summary(cfg, b->name, &run.capture, run.obs, &run.result, code);
	cf_obs_close(run.obs);
	cf_capture_files_free(&run.capture);
	cf_strv_free(&masks);
	return code;
}
