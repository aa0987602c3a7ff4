/* SPDX-License-Identifier: MIT */
/*
 * Starting the rootless sandbox: a helper process in new user, network,
 * mount, PID, UTS and IPC namespaces (uid/gid mapped to the caller, and for
 * a root caller also to the tree's user), which sets up the
 * child network and mounts, hands the engine its fds and, on GO, becomes the
 * tree's init (sandbox/init.h).
 */
#ifndef CF_SANDBOX_LAUNCH_H
#define CF_SANDBOX_LAUNCH_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "sandbox/ctl.h"
#include "sandbox/plan.h"

/* The namespaces the helper is clone3()d into (the doctor probes the same). */
#define CF_SANDBOX_NAMESPACES                                                                      \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC)

struct cf_sandbox_opts {
	char *const *argv;	 /* the command */
	const char *resolv_text; /* the tree's /etc/resolv.conf */
	const char *hosts_path;	 /* or NULL */
	const char *hosts_extra; /* lines added to the tree's /etc/hosts, or NULL */
	const struct cf_plan *plan;
	bool capture;		       /* open a capture socket in the sandbox */
	const struct cf_strv *outputs; /* files the tree must not read or write (cf_mounts_hide) */
	const struct cf_strv *masks;   /* paths (UNIX sockets) hidden from the tree */
	uid_t uid;		       /* the tree's user and group (sandbox/treeuser.h): */
	gid_t gid;		       /* the caller's own ids unless the caller is root */
	/*
	 * The rootful backend: no user namespace, and instead of the id maps
	 * @host_setup(helper pid, @host_arg) creates the veth pair whose tree
	 * end @veth configures. NULL for the rootless backend.
	 */
	const struct cf_veth_plan *veth;
	int (*host_setup)(pid_t helper, void *arg, char *err, size_t errlen);
	void *host_arg;
	/* Descriptors of childflow the helper closes first (the --publish host listeners). */
	const int *close_fds;
	size_t n_close_fds;
	/* --tcp-path auto where nothing needs the relay: the tree's connect() filter */
	bool switch_tcp;
};

struct cf_sandbox {
	pid_t helper;
	int pidfd; /* readable when the helper has exited */
	int ctlfd;
	int tun_fd, listen4, listen6, diag_fd;
	int capture_fd; /* -1 without capture */
	int ctrack_fd;	/* rootful: the tree's conntrack events (NETLINK_NETFILTER), else -1 */
	uint16_t port4, port6;
	enum cf_sandbox_step step; /* after a failed cf_sandbox_start(): the step that failed */
};

/* Failure classes, so main() can pick the documented exit code. */
enum cf_sandbox_phase {
	CF_SANDBOX_PREFLIGHT, /* namespaces could not be created or mapped */
	CF_SANDBOX_BOOTSTRAP, /* set-up inside the sandbox failed */
};

/*
 * Create the sandbox up to the point where it waits for GO. Return 0, or
 * -errno with @err describing the problem, *phase and @sb->step set; on
 * failure the helper is killed and reaped and every fd of @sb is closed (-1).
 */
int cf_sandbox_start(const struct cf_sandbox_opts *opts, struct cf_sandbox *sb,
		     enum cf_sandbox_phase *phase, char *err, size_t errlen);

/*
 * cf_sandbox_step_reason() - the flow log's runtime_failure reason_code for a
 * failure in @step (docs/flow-log-schema.md lists them all).
 */
const char *cf_sandbox_step_reason(enum cf_sandbox_step step);

/* Tell the helper behind @ctlfd to run the command. Return 0 or -errno. */
int cf_sandbox_go(int ctlfd);

/* Close the sandbox's fds that the engine did not take over (set to -1 when taken). */
void cf_sandbox_close(struct cf_sandbox *sb);

/*
 * cf_sandbox_abort() - kill and reap a started sandbox's helper (and with it
 * the tree) before the engine took it over, then cf_sandbox_close() it.
 */
void cf_sandbox_abort(struct cf_sandbox *sb);

#endif
