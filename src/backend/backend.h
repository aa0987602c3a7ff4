/* SPDX-License-Identifier: MIT */
/*
 * The interface every backend implements (docs/architecture.md, "Backends"),
 * and what the runner shares with it for one run.
 *
 * The runner (runner.c) calls, in this order and each only if the one
 * before succeeded: check, prepare, start, run; then collect if run was called;
 * then teardown, always. A failing operation returns -errno and describes
 * itself in a struct cf_fail (one line, and the class the runner maps to an
 * exit status); backends never print a fatal error or pick an exit status.
 */
#ifndef CF_BACKEND_BACKEND_H
#define CF_BACKEND_BACKEND_H

#include <stdarg.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "capture/files.h"
#include "config/config.h"
#include "dns/resolvconf.h"
#include "engine/engine.h"
#include "obs/flowlog.h"
#include "sandbox/launch.h"
#include "sandbox/plan.h"
#include "sandbox/treeuser.h"

/* Which exit status a failure means (cli.h, enum cf_exit). */
enum cf_fail_kind {
	CF_FAIL_USAGE,	 /* the configuration cannot work here: CF_EXIT_USAGE */
	CF_FAIL_SETUP,	 /* this host cannot run the sandbox: CF_EXIT_SETUP */
	CF_FAIL_RUNTIME, /* childflow itself failed: CF_EXIT_RUNTIME */
};

/* Why an operation failed. */
struct cf_fail {
	enum cf_fail_kind kind;
	/* The flow log's runtime_failure event (phase, reason code), or NULL for none. */
	const char *phase, *reason;
	bool said;     /* msg was logged already (by the engine), or there is none to print */
	char msg[512]; /* one line for the user, also the event's detail */
};

/* One run, as the runner and the backend share it. */
struct cf_run {
	const struct cf_config *cfg;
	const struct cf_tree_user *user; /* whom the tree runs as */
	const struct cf_strv *masks;	 /* paths hidden from the tree (sandbox/masks.h) */
	struct cf_obs *obs;		 /* flow log and summary, or NULL */
	struct cf_capture_files capture; /* opened by the backend; the summary names them */
	struct cf_engine_result result;	 /* filled by run() */
	void *state;			 /* the backend's own, from prepare() to teardown() */
	/* --publish: the host listeners, one per cfg->publish entry (the runner's) */
	int *publish_fds;
	size_t n_publish;
};

struct cf_backend_ops {
	const char *name; /* as the summary and the capture files name it */
	/*
	 * Refuse a configuration this backend cannot run, before anything is
	 * created or said (NULL: it runs every valid one). Return 0 or -errno.
	 */
	int (*check)(const struct cf_config *cfg, struct cf_fail *fail);
	/*
	 * Checks and resources that need no sandbox: the host's readiness,
	 * the proxy's address, the capture files. Return 0 or -errno.
	 */
	int (*prepare)(struct cf_run *run, struct cf_fail *fail);
	/* Build the sandbox up to the point where the command would start. Return 0 or -errno. */
	int (*start)(struct cf_run *run, struct cf_fail *fail);
	/*
	 * Start the command and run the engine until it exited, filling
	 * run->result. Return 0 (the result says how the command ended) or
	 * -errno when the engine could not run.
	 */
	int (*run)(struct cf_run *run, struct cf_fail *fail);
	/* After run(), whatever it returned: close and report the records (capture files). */
	void (*collect)(struct cf_run *run);
	/*
	 * Release what prepare() and start() took; a run that never started
	 * leaves no capture file. Called once, after any of the above failed or
	 * after collect().
	 */
	void (*teardown)(struct cf_run *run);
};

/* cf_fail_set() - Fill @fail (kind, event or NULL, printf-style message); return @err. */
__attribute__((format(printf, 6, 7))) int cf_fail_set(struct cf_fail *fail, int err,
						      enum cf_fail_kind kind, const char *phase,
						      const char *reason, const char *fmt, ...);

/* cf_fail_as() - Classify @fail, whose msg a module filled already; return @err. */
int cf_fail_as(struct cf_fail *fail, int err, enum cf_fail_kind kind, const char *phase,
	       const char *reason);

/*
 * cf_backend_publish_open() - bind and listen on every --publish host address,
 * before anything else of the run exists: a port in use or an address the
 * host does not have is a usage error naming the mapping. Return 0 or -errno.
 */
int cf_backend_publish_open(struct cf_run *run, struct cf_fail *fail);

/* cf_backend_publish_close() - close the --publish listeners. */
void cf_backend_publish_close(struct cf_run *run);

/*
 * cf_backend_resolv() - read the host's resolvers into @host_dns (unless
 * --dns) and render the tree's resolv.conf, which names @plan's virtual
 * resolver, into @text. Return 0 or -ENOSPC.
 */
int cf_backend_resolv(const struct cf_config *cfg, const struct cf_plan *plan,
		      struct cf_resolvconf *host_dns, char *text, size_t len);

/*
 * cf_backend_resolve_proxy() - resolve --proxy's host on the host, never
 * through the tree's DNS policy, into @addr/@len (*len 0 without a proxy).
 * Return 0 or -errno with @fail set.
 */
int cf_backend_resolve_proxy(const struct cf_config *cfg, struct sockaddr_storage *addr,
			     socklen_t *len, struct cf_fail *fail);

/*
 * cf_backend_open_capture() - name and create @run's capture files (as
 * @backend) before anything runs, so a bad path fails early (never
 * overwritten); no capture privilege for wire-egress is the host's
 * failure, anything else a usage error. Return 0 or -errno with @fail set.
 */
int cf_backend_open_capture(struct cf_run *run, const char *backend, struct cf_fail *fail);

/*
 * cf_backend_output_files() - the files of @run the tree must neither read
 * nor change (the flow log, every capture file, the profile chain): all
 * exist by the time the sandbox starts, so it can bind an empty read-only
 * file over each (cf_mounts_hide()). Return 0 or -ENOMEM.
 */
int cf_backend_output_files(const struct cf_run *run, struct cf_strv *out);

/*
 * cf_backend_run_engine() - a backend's run(): the engine until the command
 * exited, filling run->result. Return 0 or -errno with @fail set (said).
 */
int cf_backend_run_engine(struct cf_run *run, const struct cf_engine_opts *eo,
			  struct cf_sandbox *sb, struct cf_fail *fail);

/* cf_backend_collect() - a backend's collect(): close the capture files and report on them. */
void cf_backend_collect(struct cf_run *run);

/*
 * cf_backend_close_sandbox() - the sandbox's part of a backend's teardown:
 * kill a helper no engine reaped (@up: the sandbox was started), close what
 * it still holds, discard the capture files of a run whose engine never ran.
 */
void cf_backend_close_sandbox(struct cf_run *run, struct cf_sandbox *sb, bool up, bool engine_ran);

#endif
