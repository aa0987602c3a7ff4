/* SPDX-License-Identifier: MIT */
#include "runner.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/pcapng.h"
#include "cli/cli.h"
#include "dns/resolvconf.h"
#include "doctor/doctor.h"
#include "engine/engine.h"
#include "obs/flowlog.h"
#include "sandbox/launch.h"
#include "sandbox/plan.h"
#include "util/log.h"

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

static int push_fmt(struct cf_strv *sv, const char *flag, const char *value)
{
	char buf[600];

	snprintf(buf, sizeof(buf), "%s%s%s", flag, value ? " " : "", value ? value : "");
	return cf_strv_push(sv, buf);
}

static int push_cidrs(struct cf_strv *sv, const char *flag, const struct cf_cidrv *cv)
{
	char buf[CF_IP_STRLEN + 4];
	int r = 0;

	for (size_t i = 0; r == 0 && i < cv->n; i++)
		r = push_fmt(sv, flag, cf_cidr_format(&cv->v[i], buf, sizeof(buf)));
	return r;
}

static int push_names(struct cf_strv *sv, const char *flag, const struct cf_strv *names)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < names->n; i++)
		r = push_fmt(sv, flag, names->v[i]);
	return r;
}

int cf_run_controls(const struct cf_config *c, struct cf_strv *out)
{
	char ip[CF_IP_STRLEN];
	int r = 0;

	if (c->dns_set)
		r = push_fmt(out, "--dns", cf_ip_format(&c->dns, ip, sizeof(ip)));
	if (r == 0 && c->hosts_file)
		r = push_fmt(out, "--hosts-file", c->hosts_file);
	if (r == 0 && c->offline)
		r = push_fmt(out, "--offline", NULL);
	if (r == 0 && c->block_private)
		r = push_fmt(out, "--block-private", NULL);
	if (r == 0 && c->block_metadata)
		r = push_fmt(out, "--block-metadata", NULL);
	if (r == 0 && c->default_policy == CF_POLICY_DENY)
		r = push_fmt(out, "--default-policy", "deny");
	if (r == 0)
		r = push_cidrs(out, "--allow-cidr", &c->allow_cidrs);
	if (r == 0)
		r = push_cidrs(out, "--deny-cidr", &c->deny_cidrs);
	if (r == 0)
		r = push_names(out, "--allow-domain", &c->allow_domains);
	if (r == 0)
		r = push_names(out, "--allow-domain-exact", &c->allow_domains_exact);
	if (r == 0)
		r = push_names(out, "--deny-domain", &c->deny_domains);
	if (r == 0)
		r = push_names(out, "--deny-domain-exact", &c->deny_domains_exact);
	if (r == 0 && c->proxy_only)
		r = push_fmt(out, "--proxy-only", NULL);
	if (r == 0 && c->fail_on_leak)
		r = push_fmt(out, "--fail-on-leak", NULL);
	return r;
}

static void print_summary(const struct cf_config *cfg, const struct cf_obs *obs, int code)
{
	struct cf_strv controls = { 0 };
	const char *captures[2] = { cfg->capture, NULL };
	struct cf_run_info run = {
		.backend = "rootless-internal",
		.command = cfg->command.v,
		.exit_code = code,
		.captures = cfg->capture ? captures : NULL,
		.flow_log = cfg->flow_log,
	};

	if (cf_run_controls(cfg, &controls) == 0)
		run.controls = (const char *const *)controls.v;
	if (cf_obs_print_summary(obs, &run, cfg->summary_format == CF_FORMAT_JSON, stderr) < 0)
		log_error("--summary: cannot print the summary");
	cf_strv_free(&controls);
}

/* What the tree's resolv.conf says: the virtual resolver, both families. */
static int prepare_dns(const struct cf_config *cfg, const struct cf_plan *plan,
		       struct cf_resolvconf *host_dns, char *resolv, size_t len)
{
	host_dns->n = 0;
	if (!cfg->dns_set) {
		int r = cf_resolvconf_read("/etc/resolv.conf", host_dns);

		if (r < 0)
			log_warn("cannot read the host's /etc/resolv.conf (%s): the tree's DNS will "
				 "fail unless --dns is given", strerror(-r));
	}
	return cf_resolvconf_render((const struct cf_ip[]){ plan->gateway4, plan->gateway6 }, 2,
				    resolv, len) < 0
		       ? -ENOSPC
		       : 0;
}

/* The proxy's own name is resolved here, on the host, never through the tree's DNS policy. */
static int resolve_proxy(const struct cf_config *cfg, struct sockaddr_storage *ss,
			 socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	char port[8];
	int r;

	if (cfg->proxy.scheme == CF_PROXY_NONE)
		return 0;
	snprintf(port, sizeof(port), "%u", cfg->proxy.port);
	r = getaddrinfo(cfg->proxy.host, port, &hints, &res);
	if (r != 0 || !res) {
		log_error("--proxy: cannot resolve '%s': %s", cfg->proxy.host,
			  r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -EHOSTUNREACH;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/*
 * With --proxy the engine forces every TCP connection through the proxy, so
 * a program that also honoured a proxy variable would be proxied twice (or
 * try a proxy only reachable from elsewhere). The tree gets no proxy
 * variables; which were removed is said once in debug output.
 */
static void drop_proxy_env(const struct cf_config *cfg)
{
	static const char *const vars[] = { "http_proxy", "HTTP_PROXY", "https_proxy",
					    "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
					    "ftp_proxy", "FTP_PROXY", "no_proxy", "NO_PROXY" };

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
			  "connection%s or DNS quer%s", (unsigned long long)res->denials,
			  res->denials == 1 ? "" : "s", res->denials == 1 ? "y" : "ies");
		code = CF_EXIT_LEAK;
	}
	return code;
}

static int run_sandboxed(const struct cf_config *cfg, struct cf_obs *obs,
			 struct cf_pcapng *capture, const struct sockaddr_storage *proxy,
			 socklen_t proxy_len)
{
	struct cf_resolvconf host_dns;
	struct cf_sandbox sb;
	struct cf_engine_result res;
	enum cf_sandbox_phase phase;
	struct cf_plan plan;
	char resolv[512], err[512];
	int r;

	cf_plan_default(&plan);
	if (prepare_dns(cfg, &plan, &host_dns, resolv, sizeof(resolv)) < 0) {
		cf_pcapng_close(capture);
		return CF_EXIT_RUNTIME;
	}
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
		cf_obs_runtime_failure(obs,
				       phase == CF_SANDBOX_PREFLIGHT ? "preflight" : "child_bootstrap",
				       phase == CF_SANDBOX_PREFLIGHT ? "namespace_create_failed"
								     : "sandbox_setup_failed",
				       err);
		if (capture) {
			cf_pcapng_close(capture);
			unlink(cfg->capture);
		}
		return CF_EXIT_SETUP;
	}
	struct cf_engine_opts eo = {
		.cfg = cfg, .plan = &plan, .host_dns = &host_dns, .capture = capture, .obs = obs,
		.proxy_addr = proxy_len ? proxy : NULL, .proxy_addr_len = proxy_len,
	};
	r = cf_engine_run(&eo, &sb, &res);
	cf_sandbox_close(&sb);
	report_capture(cfg, &res);
	if (r < 0 || res.fatal_err)
		cf_obs_runtime_failure(obs, "run", "engine_failure", strerror(-(r < 0 ? r : res.fatal_err)));
	if (r < 0)
		return CF_EXIT_RUNTIME;
	return final_code(cfg, &res);
}

int cf_run_rootless(const struct cf_config *cfg)
{
	struct cf_pcapng *capture = NULL;
	struct cf_obs *obs = NULL;
	struct sockaddr_storage proxy;
	socklen_t proxy_len = 0;
	char err[512];
	int code, r;

	if (cfg->flow_log || cfg->summary) {
		r = cf_obs_open(cfg->flow_log, &obs);
		if (r < 0) {
			log_error("--flow-log: cannot create '%s': %s", cfg->flow_log, strerror(-r));
			return CF_EXIT_USAGE;
		}
	}
	/* The doctor's cheap checks first: a clear remedy instead of a cryptic errno later. */
	if (cf_doctor_preflight(cfg->backend, err, sizeof(err)) < 0) {
		log_error("%s", err);
		cf_obs_runtime_failure(obs, "preflight", "host_not_ready", err);
		code = CF_EXIT_SETUP;
		goto out;
	}
	if (resolve_proxy(cfg, &proxy, &proxy_len) < 0 || open_capture(cfg, &capture) < 0) {
		code = CF_EXIT_USAGE;
		goto out;
	}
	raise_fd_limit();
	drop_proxy_env(cfg);
	block_signals();
	code = run_sandboxed(cfg, obs, capture, &proxy, proxy_len);
out:
	if (obs && cf_obs_flow_log_error(obs))
		log_error("--flow-log: writing '%s' failed: %s; the log is incomplete",
			  cfg->flow_log, strerror(-cf_obs_flow_log_error(obs)));
	if (cfg->summary)
		print_summary(cfg, obs, code);
	cf_obs_close(obs);
	return code;
}
