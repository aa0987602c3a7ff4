/* SPDX-License-Identifier: MIT */
#include "backend/backend.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/cleanup.h"

#include "util/log.h"

int cf_fail_set(struct cf_fail *fail, int err, enum cf_fail_kind kind, const char *phase,
		const char *reason, const char *fmt, ...)
{
	va_list ap;

	fail->kind = kind;
	fail->phase = phase;
	fail->reason = reason;
	fail->said = false;
	va_start(ap, fmt);
	vsnprintf(fail->msg, sizeof(fail->msg), fmt, ap);
	va_end(ap);
	return err;
}

int cf_fail_as(struct cf_fail *fail, int err, enum cf_fail_kind kind, const char *phase,
	       const char *reason)
{
	fail->kind = kind;
	fail->phase = phase;
	fail->reason = reason;
	fail->said = false;
	return err;
}

int cf_backend_resolv(const struct cf_config *cfg, const struct cf_plan *plan,
		      struct cf_resolvconf *host_dns, char *text, size_t len)
{
	host_dns->n = 0;
	if (!cfg->dns_set) {
		int r = cf_resolvconf_read("/etc/resolv.conf", host_dns);

		if (r < 0)
			log_warn(
			    "cannot read the host's /etc/resolv.conf (%s): the tree's DNS will "
			    "fail unless --dns is given",
			    strerror(-r));
	}
	return cf_resolvconf_render((const struct cf_ip[]){plan->gateway4, plan->gateway6}, 2, text,
				    len) < 0
		   ? -ENOSPC
		   : 0;
}

int cf_backend_output_files(const struct cf_run *run, struct cf_strv *out)
{
	const struct cf_config *cfg = run->cfg;
	const char *const files[] = {cfg->flow_log, run->capture.child_path,
				     run->capture.egress_path};
	int r = 0;

	for (size_t i = 0; r == 0 && i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i])
			r = cf_strv_push(out, files[i]);
	for (size_t i = 0; r == 0 && i < cfg->profile_files.n; i++)
		r = cf_strv_push(out, cfg->profile_files.v[i]);
	return r;
}

int cf_backend_resolve_proxy(const struct cf_config *cfg, struct sockaddr_storage *addr,
			     socklen_t *len, struct cf_fail *fail)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *res = NULL;
	char port[8];
	int r;

	*len = 0;
	if (cfg->proxy.scheme == CF_PROXY_NONE)
		return 0;
	snprintf(port, sizeof(port), "%u", cfg->proxy.port);
	r = getaddrinfo(cfg->proxy.host, port, &hints, &res);
	if (r != 0 || !res)
		return cf_fail_set(fail, -EHOSTUNREACH, CF_FAIL_USAGE, NULL, NULL,
				   "--proxy: cannot resolve '%s': %s", cfg->proxy.host,
				   r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int cf_backend_open_capture(struct cf_run *run, const char *backend, struct cf_fail *fail)
{
	struct cf_capture_files *cf = &run->capture;
	int r = cf_capture_files_name(cf, run->cfg, fail->msg, sizeof(fail->msg));

	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_USAGE, NULL, NULL);
	r = cf_capture_files_probe(cf, fail->msg, sizeof(fail->msg));
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_SETUP, "preflight", "packet_capture_blocked");
	r = cf_capture_files_create(cf, run->cfg, backend, fail->msg, sizeof(fail->msg));
	if (r < 0)
		return cf_fail_as(fail, r, CF_FAIL_USAGE, NULL, NULL);
	return 0;
}

int cf_backend_run_engine(struct cf_run *run, const struct cf_engine_opts *eo,
			  struct cf_sandbox *sb, struct cf_fail *fail)
{
	int r = cf_engine_run(eo, sb, &run->result);

	if (r < 0) {
		/* The engine said why already. */
		cf_fail_set(fail, r, CF_FAIL_RUNTIME, "run", "engine_failure", "%s", strerror(-r));
		fail->said = true;
	}
	return r;
}

void cf_backend_collect(struct cf_run *run)
{
	const struct cf_engine_result *res = &run->result;
	struct cf_capture_outcome child = {res->capture_err, res->capture_dropped};
	struct cf_capture_outcome egress = {res->egress_err, res->egress_dropped};

	cf_capture_files_finish(&run->capture, &child, &egress);
}

void cf_backend_close_sandbox(struct cf_run *run, struct cf_sandbox *sb, bool up, bool engine_ran)
{
	/* A helper still waiting for GO: no engine reaped it. */
	if (up && !engine_ran && sb->helper > 0) {
		kill(sb->helper, SIGKILL);
		waitpid(sb->helper, NULL, 0);
	}
	/* What the engine did not take, and what a failed start left (its ctlfd and pidfd). */
	if (up)
		cf_sandbox_close(sb);
	if (!engine_ran)
		cf_capture_files_discard(&run->capture);
}

/*
 * One listener of @p. An IPv6 listener is IPv6 only, so "[::]" does not take
 * the IPv4 port as well. UDP gets no SO_REUSEADDR: with it, another UDP
 * socket that set it too could share the port unnoticed.
 */
static int publish_listen(const struct cf_publish *p)
{
	struct sockaddr_storage ss;
	socklen_t len = cf_ip_to_sockaddr(&p->host_addr, p->host_port, &ss);
	cleanup_fd int fd =
	    socket(p->host_addr.family,
		   (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	if (p->host_addr.family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		return -errno;
	if (!p->udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return -errno;
	if (!p->udp && listen(fd, 128) < 0)
		return -errno;
	return take_fd(&fd);
}

int cf_backend_publish_open(struct cf_run *run, struct cf_fail *fail)
{
	const struct cf_strv *pub = &run->cfg->publish;

	if (pub->n == 0)
		return 0;
	run->publish_fds = calloc(pub->n, sizeof(int));
	if (!run->publish_fds)
		return cf_fail_set(fail, -ENOMEM, CF_FAIL_RUNTIME, NULL, NULL, "out of memory");
	for (size_t i = 0; i < pub->n; i++) {
		struct cf_publish p;
		char a[CF_ADDRPORT_STRLEN];
		int fd;

		if (cf_publish_parse(pub->v[i], &p) < 0)
			return cf_fail_set(fail, -EINVAL, CF_FAIL_USAGE, NULL, NULL,
					   "--publish: invalid mapping '%s'", pub->v[i]);
		fd = publish_listen(&p);
		if (fd < 0)
			return cf_fail_set(
			    fail, fd, CF_FAIL_USAGE, NULL, NULL,
			    "--publish %s: cannot listen on %s/%s of the host: %s; pick a free "
			    "HOSTPORT or a HOSTADDR this host has",
			    pub->v[i], cf_addrport_format(&p.host_addr, p.host_port, a, sizeof(a)),
			    p.udp ? "udp" : "tcp", strerror(-fd));
		run->publish_fds[run->n_publish++] = fd;
	}
	return 0;
}

void cf_backend_publish_close(struct cf_run *run)
{
	for (size_t i = 0; i < run->n_publish; i++)
		close(run->publish_fds[i]);
	free(run->publish_fds);
	run->publish_fds = NULL;
	run->n_publish = 0;
}
