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
#include "config/proxyuri.h"
#include "config/settings.h"
#include "dns/resolvconf.h"
#include "doctor/doctor.h"
#include "engine/engine.h"
#include "engine/wire.h"
#include "obs/flowlog.h"
#include "sandbox/launch.h"
#include "sandbox/masks.h"
#include "sandbox/plan.h"
#include "sandbox/treeuser.h"
#include "util/cleanup.h"
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

/*
 * The files of the capture views (docs/capture.md): "child" and "egress"
 * (synthesized) or "wire-egress" write OUT itself; "both" writes
 * NAME.child.pcapng and NAME.egress.pcapng, NAME being OUT without a
 * trailing ".pcapng".
 */
struct capture_files {
	char *child_path, *egress_path; /* NULL: that view is off */
	struct cf_pcapng *child, *egress;
	bool wire; /* egress_path is the wire-egress view */
};

static const struct cf_pcapng_meta child_meta = {
	.view = "child",
	.backend = "rootless-internal",
	.kind = "sandbox packet socket (tun0 + lo)",
	.comment = "packets of the command tree only, as the tree saw them",
};

static const struct cf_pcapng_meta wire_meta = {
	.view = "wire-egress",
	.backend = "rootless-internal",
	.kind = "host packet socket (AF_PACKET, every interface, filtered on childflow's socket "
		"4-tuples)",
	.comment = "a real capture on the host, limited to the command tree's flows (IP packets, "
		   "link-layer headers not kept)",
};

#define EGRESS_COMMENT                                                                         \
	"the command tree's flows as they leave the host: host addresses and ports of "         \
	"childflow's sockets, the proxy as the peer when proxying; the bytes are exact, TCP "   \
	"handshakes, sequence numbers and segment boundaries are synthesized"
#define EGRESS_HTTPS_COMMENT                                                                   \
	"; https:// proxy: the TLS layer to the proxy is not recorded, its connections carry "  \
	"the plaintext tunnel (the CONNECT handshake, then the tree's bytes)"

static struct cf_pcapng_meta egress_meta(const struct cf_config *cfg)
{
	return (struct cf_pcapng_meta){
		.view = "egress",
		.backend = "rootless-internal",
		.kind = "engine-synthesized from childflow's host sockets",
		.comment = cfg->proxy.scheme == CF_PROXY_HTTPS ? EGRESS_COMMENT EGRESS_HTTPS_COMMENT
							       : EGRESS_COMMENT,
	};
}

static void capture_files_free(struct capture_files *cf)
{
	free(cf->child_path);
	free(cf->egress_path);
	cf->child_path = cf->egress_path = NULL;
}

/* A run that never started: close the writers, remove their files, forget the paths. */
static void capture_files_discard(struct capture_files *cf)
{
	if (cf->child) {
		cf_pcapng_close(cf->child);
		unlink(cf->child_path);
	}
	if (cf->egress) {
		cf_pcapng_close(cf->egress);
		unlink(cf->egress_path);
	}
	cf->child = cf->egress = NULL;
	capture_files_free(cf);
}

static char *with_suffix(const char *out, const char *suffix)
{
	size_t n = strlen(out), ext = strlen(".pcapng");
	char *p;

	if (n > ext && strcmp(out + n - ext, ".pcapng") == 0)
		n -= ext;
	p = malloc(n + strlen(suffix) + 1);
	if (p) {
		memcpy(p, out, n);
		memcpy(p + n, suffix, strlen(suffix) + 1);
	}
	return p;
}

static int capture_paths(const struct cf_config *cfg, struct capture_files *cf)
{
	switch (cfg->capture_point) {
	case CF_CAPTURE_CHILD:
		cf->child_path = strdup(cfg->capture);
		return cf->child_path ? 0 : -ENOMEM;
	case CF_CAPTURE_WIRE_EGRESS:
	case CF_CAPTURE_EGRESS:
		cf->wire = cfg->capture_point == CF_CAPTURE_WIRE_EGRESS;
		cf->egress_path = strdup(cfg->capture);
		return cf->egress_path ? 0 : -ENOMEM;
	case CF_CAPTURE_BOTH:
		cf->child_path = with_suffix(cfg->capture, ".child.pcapng");
		cf->egress_path = with_suffix(cfg->capture, ".egress.pcapng");
		return cf->child_path && cf->egress_path ? 0 : -ENOMEM;
	}
	return -EINVAL;
}

/* Whether the wire-egress view can open its packet socket here (root or CAP_NET_RAW). */
static int check_wire_privilege(void)
{
	int fd = cf_wire_open_socket();

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (fd == -EPERM || fd == -EACCES)
		log_error("--capture-point wire-egress needs capture privilege on the host (run as "
			  "root or grant CAP_NET_RAW)");
	else
		log_error("--capture-point wire-egress: cannot open a packet socket on the "
			  "host: %s", strerror(-fd));
	return fd;
}

/*
 * With @background the writes are a thread's of the writer's own, for the
 * views the engine thread writes (egress); the child view has a thread
 * already, which writes from the packet ring without a copy (capdrain.c).
 */
static int open_one(const char *path, const struct cf_pcapng_meta *meta, bool background,
		    struct cf_pcapng **out)
{
	int r = cf_pcapng_open(path, false, meta, out);

	if (r == 0 && background) {
		r = cf_pcapng_background(*out);
		if (r < 0) {
			cf_pcapng_close(*out);
			*out = NULL;
			unlink(path);
		}
	}
	if (r == -EEXIST)
		log_error("--capture: '%s' already exists; childflow never overwrites a capture "
			  "(remove it or choose another name)", path);
	else if (r < 0)
		log_error("--capture: cannot create '%s': %s", path, strerror(-r));
	return r;
}

/*
 * Create the capture files before anything runs, so a bad path fails early
 * (never overwritten). Return 0, CF_EXIT_USAGE or CF_EXIT_SETUP (no capture
 * privilege for wire-egress), having printed why.
 */
static int open_capture(const struct cf_config *cfg, struct capture_files *cf)
{
	struct cf_pcapng_meta em = egress_meta(cfg);

	if (!cfg->capture)
		return 0;
	if (capture_paths(cfg, cf) < 0) {
		log_error("--capture: out of memory");
		capture_files_free(cf);
		return CF_EXIT_USAGE;
	}
	if (cf->wire && check_wire_privilege() < 0) {
		capture_files_free(cf);
		return CF_EXIT_SETUP;
	}
	if (cf->child_path && open_one(cf->child_path, &child_meta, false, &cf->child) < 0) {
		capture_files_free(cf);
		return CF_EXIT_USAGE;
	}
	if (cf->egress_path &&
	    open_one(cf->egress_path, cf->wire ? &wire_meta : &em, true, &cf->egress) < 0) {
		capture_files_discard(cf);
		return CF_EXIT_USAGE;
	}
	return 0;
}

static void report_one(const char *path, int err, uint64_t dropped, bool host)
{
	if (!path)
		return;
	if (err)
		log_error("--capture: '%s' is incomplete: %s", path, strerror(-err));
	if (dropped && host)
		log_warn("--capture: the kernel dropped %llu packets on the host capture socket "
			 "(buffer full); '%s' may miss some of them",
			 (unsigned long long)dropped, path);
	else if (dropped)
		log_warn("--capture: the kernel dropped %llu packets (capture buffer full); '%s' "
			 "misses them", (unsigned long long)dropped, path);
}

static void report_capture(const struct capture_files *cf, const struct cf_engine_result *res)
{
	report_one(cf->child_path, res->capture_err, res->capture_dropped, false);
	report_one(cf->egress_path, res->egress_err, res->egress_dropped, true);
}

static void print_summary(const struct cf_config *cfg, const struct capture_files *cf,
			  const struct cf_obs *obs, int code)
{
	struct cf_strv controls = { 0 };
	const char *captures[3] = { NULL, NULL, NULL };
	struct cf_run_info run = {
		.backend = "rootless-internal",
		.command = cfg->command.v,
		.exit_code = code,
		.captures = cf->child_path || cf->egress_path ? captures : NULL,
		.flow_log = cfg->flow_log,
	};

	captures[0] = cf->child_path ? cf->child_path : cf->egress_path;
	captures[1] = cf->child_path ? cf->egress_path : NULL;

	if (cf_config_controls(cfg, &controls) == 0)
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

/*
 * The wire-egress packet socket is opened again only now: the sandbox's
 * helper (the tree's init) inherits childflow's descriptors, and a host
 * capture socket has no business in there. Return 0 with *@fd the socket
 * (-1 without wire-egress), or -errno (logged).
 */
static int open_wire(const struct capture_files *cf, int *fd)
{
	int r;

	*fd = -1;
	if (!cf->wire)
		return 0;
	r = cf_wire_open_socket();
	if (r >= 0) {
		*fd = r;
		return 0;
	}
	log_error("--capture-point wire-egress: cannot open a packet socket on the host: %s",
		  strerror(-r));
	return r;
}

/*
 * The files of this run the tree must neither read nor change (the flow log,
 * every capture file, the profile chain): all exist by now, so the sandbox
 * can bind an empty read-only file over each (cf_mounts_hide()).
 */
static int output_files(const struct cf_config *cfg, const struct capture_files *cf,
			struct cf_strv *out)
{
	const char *const files[] = { cfg->flow_log, cf->child_path, cf->egress_path };
	int r = 0;

	for (size_t i = 0; r == 0 && i < CF_ARRAY_SIZE(files); i++)
		if (files[i])
			r = cf_strv_push(out, files[i]);
	for (size_t i = 0; r == 0 && i < cfg->profile_files.n; i++)
		r = cf_strv_push(out, cfg->profile_files.v[i]);
	return r;
}

static int run_sandboxed(const struct cf_config *cfg, const struct cf_tree_user *user,
			 struct cf_obs *obs, struct capture_files *cf, const struct cf_strv *masks,
			 const struct sockaddr_storage *proxy, socklen_t proxy_len)
{
	struct cf_strv outputs = { 0 };
	struct cf_resolvconf host_dns;
	struct cf_sandbox sb;
	struct cf_engine_result res;
	enum cf_sandbox_phase phase;
	struct cf_plan plan;
	char resolv[512], err[512];
	int r, wire_fd;

	cf_plan_default(&plan);
	if (prepare_dns(cfg, &plan, &host_dns, resolv, sizeof(resolv)) < 0) {
		capture_files_discard(cf);
		return CF_EXIT_RUNTIME;
	}
	struct cf_sandbox_opts so = {
		.argv = cfg->command.v,
		.resolv_text = resolv,
		.hosts_path = cfg->hosts_file,
		.hosts_extra = cfg->allow_host_ports.n ? CF_HOST_ALIAS_HOSTS : NULL,
		.plan = &plan,
		.capture = cf->child != NULL,
		.outputs = &outputs,
		.masks = masks,
		.uid = user->uid,
		.gid = user->gid,
	};
	if (output_files(cfg, cf, &outputs) < 0) {
		log_error("out of memory");
		cf_strv_free(&outputs);
		capture_files_discard(cf);
		return CF_EXIT_RUNTIME;
	}
	r = cf_sandbox_start(&so, &sb, &phase, err, sizeof(err));
	cf_strv_free(&outputs);
	if (r < 0) {
		log_error("%s", err);
		cf_obs_runtime_failure(obs,
				       phase == CF_SANDBOX_PREFLIGHT ? "preflight" : "child_bootstrap",
				       phase == CF_SANDBOX_PREFLIGHT ? "namespace_create_failed"
								     : "sandbox_setup_failed",
				       err);
		capture_files_discard(cf);
		return CF_EXIT_SETUP;
	}
	if (open_wire(cf, &wire_fd) < 0) {
		cf_sandbox_abort(&sb);
		capture_files_discard(cf);
		return CF_EXIT_SETUP;
	}
	struct cf_engine_opts eo = {
		.cfg = cfg, .plan = &plan, .host_dns = &host_dns, .capture = cf->child, .obs = obs,
		.egress = cf->wire ? NULL : cf->egress, .wire = cf->wire ? cf->egress : NULL,
		.wire_fd = wire_fd, .proxy_addr = proxy_len ? proxy : NULL,
		.proxy_addr_len = proxy_len,
	};
	/* The engine owns the writers from now on. */
	cf->child = cf->egress = NULL;
	r = cf_engine_run(&eo, &sb, &res);
	cf_sandbox_close(&sb);
	report_capture(cf, &res);
	if (r < 0 || res.fatal_err)
		cf_obs_runtime_failure(obs, "run", "engine_failure", strerror(-(r < 0 ? r : res.fatal_err)));
	if (r < 0)
		return CF_EXIT_RUNTIME;
	return final_code(cfg, &res);
}

int cf_run_rootless(const struct cf_config *cfg)
{
	struct capture_files capture = { 0 };
	struct cf_mask_env mask_env;
	struct cf_strv masks = { 0 };
	struct cf_obs *obs = NULL;
	struct sockaddr_storage proxy;
	socklen_t proxy_len = 0;
	struct cf_tree_user user;
	char err[512];
	int code, r;

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
		r = cf_obs_open(cfg->flow_log, &obs);
		if (r < 0) {
			log_error("--flow-log: cannot create '%s': %s", cfg->flow_log, strerror(-r));
			cf_strv_free(&masks);
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
	if (resolve_proxy(cfg, &proxy, &proxy_len) < 0) {
		code = CF_EXIT_USAGE;
		goto out;
	}
	code = open_capture(cfg, &capture);
	if (code)
		goto out;
	raise_fd_limit();
	drop_proxy_env(cfg);
	block_signals();
	code = run_sandboxed(cfg, &user, obs, &capture, &masks, &proxy, proxy_len);
out:
	if (obs && cf_obs_flow_log_error(obs))
		log_error("--flow-log: writing '%s' failed: %s; the log is incomplete",
			  cfg->flow_log, strerror(-cf_obs_flow_log_error(obs)));
	if (cfg->summary)
		print_summary(cfg, &capture, obs, code);
	cf_obs_close(obs);
	capture_files_free(&capture);
	cf_strv_free(&masks);
	return code;
}
