/* SPDX-License-Identifier: MIT */
/*
 * childflow: run one command tree in its own network context.
 *
 * main() is the only place that prints a fatal error and picks an exit
 * status (cli.h, enum cf_exit); everything below returns -errno.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/pcapng.h"
#include "cli/cli.h"
#include "config/config.h"
#include "dns/resolvconf.h"
#include "doctor/doctor.h"
#include "engine/engine.h"
#include "sandbox/launch.h"
#include "sandbox/plan.h"
#include "util/log.h"

/* A setting whose feature has not landed yet: refused, never ignored. */
struct unsupported {
	const char *option;
	bool (*is_set)(const struct cf_config *c);
};

static bool has_capture_view(const struct cf_config *c)
{
	return c->capture && c->capture_point != CF_CAPTURE_CHILD;
}
static bool has_proxy(const struct cf_config *c) { return c->proxy.scheme != CF_PROXY_NONE; }
static bool has_flow_log(const struct cf_config *c) { return c->flow_log != NULL; }
static bool has_summary(const struct cf_config *c) { return c->summary; }
static bool has_rootful(const struct cf_config *c) { return c->backend == CF_BACKEND_ROOTFUL; }
static bool has_iface(const struct cf_config *c) { return c->iface != NULL; }

static const struct unsupported not_yet[] = {
	{ "--capture-point egress, wire-egress or both", has_capture_view },
	{ "--proxy", has_proxy },
	{ "--flow-log", has_flow_log },
	{ "--summary", has_summary },
	{ "--root (backend = \"rootful\")", has_rootful },
	{ "--iface", has_iface },
};

static int check_supported(const struct cf_config *c)
{
	for (size_t i = 0; i < sizeof(not_yet) / sizeof(not_yet[0]); i++) {
		if (not_yet[i].is_set(c)) {
			log_error("%s is not supported yet by this build of childflow", not_yet[i].option);
			return -ENOTSUP;
		}
	}
	if ((c->proxy_user || c->proxy_password || c->proxy_insecure) &&
	    c->proxy.scheme == CF_PROXY_NONE) {
		log_error("--proxy-user, --proxy-password and --proxy-insecure need --proxy");
		return -EINVAL;
	}
	return 0;
}

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

/* Create the capture file before anything runs, so a bad path fails early (never overwritten). */
static int open_capture(const struct cf_config *cfg, struct cf_pcapng **out)
{
	const struct cf_pcapng_meta meta = {
		.view = "child",
		.backend = "rootless-internal",
		.kind = "sandbox packet socket (tun0 + lo)",
		.comment = "packets of the command tree only, as the tree saw them",
	};
	int r;

	*out = NULL;
	if (!cfg->capture)
		return 0;
	r = cf_pcapng_open(cfg->capture, false, &meta, out);
	if (r == -EEXIST)
		log_error("--capture: '%s' already exists; childflow never overwrites a capture "
			  "(remove it or choose another name)", cfg->capture);
	else if (r < 0)
		log_error("--capture: cannot create '%s': %s", cfg->capture, strerror(-r));
	return r;
}

static void report_capture(const struct cf_config *cfg, const struct cf_engine_result *res)
{
	if (!cfg->capture)
		return;
	if (res->capture_err)
		log_error("--capture: '%s' is incomplete: %s", cfg->capture,
			  strerror(-res->capture_err));
	if (res->capture_dropped)
		log_warn("--capture: the kernel dropped %llu packets (capture buffer full); '%s' "
			 "misses them", (unsigned long long)res->capture_dropped, cfg->capture);
}

static int run_rootless(const struct cf_config *cfg)
{
	struct cf_resolvconf host_dns = { .n = 0 };
	struct cf_sandbox sb;
	struct cf_engine_result res;
	enum cf_sandbox_phase phase;
	struct cf_plan plan;
	char resolv[512], err[512];
	sigset_t mask;
	int r;

	cf_plan_default(&plan);
	if (!cfg->dns_set) {
		r = cf_resolvconf_read("/etc/resolv.conf", &host_dns);
		if (r < 0)
			log_warn("cannot read the host's /etc/resolv.conf (%s): the tree's DNS will "
				 "fail unless --dns is given", strerror(-r));
	}
	if (cf_resolvconf_render((const struct cf_ip[]){ plan.gateway4, plan.gateway6 }, 2, resolv,
				 sizeof(resolv)) < 0)
		return CF_EXIT_RUNTIME;
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	struct cf_pcapng *capture;

	/* The doctor's cheap checks first: a clear remedy instead of a cryptic errno later. */
	if (cf_doctor_preflight(cfg->backend, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return CF_EXIT_SETUP;
	}
	if (open_capture(cfg, &capture) < 0)
		return CF_EXIT_USAGE;
	struct cf_sandbox_opts so = {
		.argv = cfg->command.v,
		.resolv_text = resolv,
		.hosts_path = cfg->hosts_file,
		.plan = &plan,
		.capture = capture != NULL,
	};
	r = cf_sandbox_start(&so, &sb, &phase, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		if (capture) {
			cf_pcapng_close(capture);
			unlink(cfg->capture);
		}
		return CF_EXIT_SETUP;
	}
	struct cf_engine_opts eo = {
		.cfg = cfg, .plan = &plan, .host_dns = &host_dns, .capture = capture,
	};
	r = cf_engine_run(&eo, &sb, &res);
	cf_sandbox_close(&sb);
	report_capture(cfg, &res);
	if (r < 0)
		return CF_EXIT_RUNTIME;
	r = exit_code_of(&res, cfg->command.v[0]);
	if (r == 0 && cfg->fail_on_leak && res.denials > 0) {
		log_error("--fail-on-leak: the command exited 0, but policy blocked %llu "
			  "connection%s or DNS quer%s", (unsigned long long)res.denials,
			  res.denials == 1 ? "" : "s", res.denials == 1 ? "y" : "ies");
		r = CF_EXIT_LEAK;
	}
	return r;
}

static int build_config(const struct cf_cli *cli, struct cf_config *cfg)
{
	if (cli->profile) {
		log_error("--profile is not supported yet by this build of childflow");
		return -ENOTSUP;
	}
	return cf_config_overlay(cfg, &cli->cfg);
}

int main(int argc, char *argv[])
{
	struct cf_cli cli;
	struct cf_config cfg;
	char err[512];
	int code = CF_EXIT_USAGE;

	if (getenv("CHILDFLOW_DEBUG"))
		cf_log_set_level(CF_LOG_DEBUG);
	cf_config_init(&cfg);
	if (cf_cli_parse(argc, argv, &cli, err, sizeof(err)) < 0) {
		log_error("%s", err);
		fprintf(stderr, "Try 'childflow --help' for more information.\n");
		goto out;
	}
	switch (cli.mode) {
	case CF_MODE_HELP:
		cf_cli_usage(stdout);
		code = 0;
		goto out;
	case CF_MODE_VERSION:
		printf("childflow %s\n", CF_VERSION);
		code = 0;
		goto out;
	case CF_MODE_DOCTOR:
		if (build_config(&cli, &cfg) < 0)
			goto out;
		code = cf_doctor_run(cfg.backend, cfg.doctor_format == CF_FORMAT_JSON, stdout);
		if (code < 0)
			code = CF_EXIT_RUNTIME;
		goto out;
	case CF_MODE_REPORT:
	case CF_MODE_DUMP_PROFILE:
		log_error("%s is not supported yet by this build of childflow",
			  cli.mode == CF_MODE_REPORT ? "--report" : "--dump-profile");
		goto out;
	case CF_MODE_RUN:
		break;
	}
	if (build_config(&cli, &cfg) < 0 || check_supported(&cfg) < 0)
		goto out;
	if (cfg.command.n == 0) {
		log_error("no command given: childflow [OPTIONS] -- COMMAND [ARGS]...");
		goto out;
	}
	code = run_rootless(&cfg);
out:
	cf_cli_free(&cli);
	cf_config_free(&cfg);
	return code;
}
