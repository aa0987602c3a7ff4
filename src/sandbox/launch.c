/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation. childflow clone3()s the helper straight into new
 * user, mount, network, PID, UTS and IPC namespaces (so the helper is pid 1
 * there), with a pidfd for the engine's event loop and PDEATHSIG so the whole
 * sandbox dies with childflow. The engine writes the helper's uid/gid maps
 * (only the caller's own ids, mapped to themselves: the tree runs as the
 * user it was started by, with no capabilities), then sends MAPS_DONE. A
 * root caller's tree runs as another user (treeuser.h): the maps then hold
 * root and that user, each mapped to itself, so the helper keeps root's
 * powers for set-up and the command switches to the user before it drops
 * its capabilities (init.c); setgroups stays allowed for that switch. The
 * helper, still holding every capability in its new user namespace, builds
 * the mounts and the child network, sends READY with the tun and listener
 * fds, waits for GO and becomes init. Every step's failure comes back as
 * SETUP_FAILED with a one-line reason and the step it failed in (enum
 * cf_sandbox_step, sandbox/ctl.h), which the flow log names as its
 * runtime_failure reason_code (cf_sandbox_step_reason()).
 */
#include "sandbox/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/childnet.h"
#include "sandbox/ctl.h"
#include "sandbox/fdpass.h"
#include "sandbox/init.h"
#include "sandbox/mounts.h"
#include "util/cleanup.h"
#include "util/fileio.h"

extern char **environ;

static int send_ctl(int fd, uint32_t type, int err, const char *text, enum cf_sandbox_step step)
{
	struct cf_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.err = err;
	m.step = (uint32_t)step;
	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	return cf_fdpass_send(fd, &m, sizeof(m), NULL, 0);
}

static int recv_ctl(int fd, struct cf_ctl_msg *m, int *fds, size_t maxfds, size_t *nfds)
{
	ssize_t n = cf_fdpass_recv(fd, m, sizeof(*m), fds, maxfds, nfds);

	if (n < 0)
		return (int)n;
	if (n != (ssize_t)sizeof(*m)) {
		for (size_t i = 0; i < *nfds; i++)
			close(fds[i]);
		return -EPIPE;
	}
	return 0;
}

__attribute__((noreturn)) static void helper_main(const struct cf_sandbox_opts *opts, int ctlfd)
{
	struct cf_child_net net;
	struct cf_ctl_msg m;
	enum cf_sandbox_step step = CF_STEP_UNKNOWN;
	char err[400];
	size_t nfds;
	int r, fds[6];

	sigset_t none;

	/* childflow blocks the signals its engine reads and ignores SIGPIPE: undo both for the
	 * tree. */
	/* The host's listeners are the engine's: the tree's init must not hold them open. */
	for (size_t i = 0; i < opts->n_close_fds; i++)
		close(opts->close_fds[i]);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (recv_ctl(ctlfd, &m, NULL, 0, &nfds) < 0 || m.type != CF_CTL_MAPS_DONE)
		_exit(1);
	r = cf_mounts_setup(opts->resolv_text, opts->hosts_path, opts->hosts_extra, opts->uid,
			    &step, err, sizeof(err));
	if (r == 0) {
		step = CF_STEP_HIDE;
		r = cf_mounts_hide(opts->outputs, opts->masks, err, sizeof(err));
	}
	if (r == 0)
		r = cf_child_net_setup(opts->plan, opts->veth, opts->gid, opts->capture, &net,
				       &step, err, sizeof(err));
	/* Only now: the network set-up writes the sandbox's /proc/sys/net. */
	if (r == 0) {
		step = CF_STEP_HARDEN;
		r = cf_mounts_harden(err, sizeof(err));
	}
	if (r < 0) {
		send_ctl(ctlfd, CF_CTL_SETUP_FAILED, -r, err, step);
		_exit(1);
	}
	memset(&m, 0, sizeof(m));
	m.type = CF_CTL_READY;
	m.port4 = net.port4;
	m.port6 = net.port6;
	fds[0] = net.tun_fd;
	fds[1] = net.listen4;
	fds[2] = net.listen6;
	fds[3] = net.diag;
	nfds = 4;
	if (net.capture >= 0)
		fds[nfds++] = net.capture;
	if (net.ctrack >= 0)
		fds[nfds++] = net.ctrack;
	if (cf_fdpass_send(ctlfd, &m, sizeof(m), fds, nfds) < 0)
		_exit(1);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	if (recv_ctl(ctlfd, &m, NULL, 0, &nfds) < 0 || m.type != CF_CTL_GO)
		_exit(1);
	cf_init_run(opts->argv, ctlfd, opts->uid, opts->gid, opts->switch_tcp);
}

/* newuidmap/newgidmap PID ID ID 1, for kernels that refuse a direct write. */
static int run_idmap_tool(const char *tool, pid_t pid, unsigned id)
{
	char spid[16], sid[16];
	char *argv[] = {(char *)tool, spid, sid, sid, (char *)"1", NULL};
	pid_t child;
	int st;

	snprintf(spid, sizeof(spid), "%d", (int)pid);
	snprintf(sid, sizeof(sid), "%u", id);
	if (posix_spawnp(&child, tool, NULL, NULL, argv, environ) != 0)
		return -ENOENT;
	if (waitpid(child, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

/* "ID ID 1", and for a tree of another id also "TREE TREE 1". */
static void format_map(char *map, size_t len, unsigned id, unsigned tree)
{
	if (id == tree)
		snprintf(map, len, "%u %u 1\n", id, id);
	else
		snprintf(map, len, "%u %u 1\n%u %u 1\n", id, id, tree, tree);
}

static int write_id_maps(pid_t pid, const struct cf_sandbox_opts *opts, char *err, size_t errlen)
{
	char map[96];
	unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();
	bool switching = opts->uid != uid || opts->gid != gid;
	int r;

	format_map(map, sizeof(map), uid, (unsigned)opts->uid);
	r = cf_write_proc(pid, "uid_map", map);
	if (r < 0 && !switching)
		r = run_idmap_tool("newuidmap", pid, uid);
	if (r < 0) {
		snprintf(err, errlen,
			 "cannot write the sandbox's uid map: %s (install uidmap "
			 "and give this user a range in /etc/subuid)",
			 strerror(-r));
		return r;
	}
	/* A root caller's command drops root's groups as it switches users (init.c). */
	format_map(map, sizeof(map), gid, (unsigned)opts->gid);
	r = switching ? 0 : cf_write_proc(pid, "setgroups", "deny");
	if (r == 0)
		r = cf_write_proc(pid, "gid_map", map);
	if (r < 0 && !switching)
		r = run_idmap_tool("newgidmap", pid, gid);
	if (r < 0)
		snprintf(err, errlen,
			 "cannot write the sandbox's gid map: %s (install uidmap "
			 "and give this user a range in /etc/subgid)",
			 strerror(-r));
	return r;
}

static const char *userns_hint(int err)
{
	if (err == EPERM || err == EACCES)
		return " (unprivileged user namespaces are disabled: check "
		       "kernel.unprivileged_userns_clone, "
		       "kernel.apparmor_restrict_unprivileged_userns "
		       "or a seccomp policy; `childflow --doctor` tells which)";
	if (err == ENOSPC || err == EUSERS)
		return " (user.max_user_namespaces or another namespace limit is exhausted)";
	return "";
}

static int spawn_helper(const struct cf_sandbox_opts *opts, struct cf_sandbox *sb, int theirs,
			char *err, size_t errlen)
{
	struct clone_args args;
	int pidfd = -1;
	long pid;

	memset(&args, 0, sizeof(args));
	/* Root's tree gets no user namespace: its init drops every capability instead. */
	args.flags = (opts->veth ? CF_SANDBOX_NAMESPACES & ~(uint64_t)CLONE_NEWUSER
				 : CF_SANDBOX_NAMESPACES) |
		     CLONE_PIDFD;
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = SIGCHLD;
	fflush(NULL);
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		int r = -errno;

		snprintf(err, errlen, "cannot create the sandbox's namespaces: %s%s", strerror(-r),
			 userns_hint(-r));
		return r;
	}
	if (pid == 0) {
		close(sb->ctlfd);
		helper_main(opts, theirs);
	}
	sb->helper = (pid_t)pid;
	sb->pidfd = pidfd;
	return 0;
}

static int await_ready(struct cf_sandbox *sb, const struct cf_sandbox_opts *opts,
		       enum cf_sandbox_phase *phase, char *err, size_t errlen)
{
	struct cf_ctl_msg m;
	int fds[6];
	size_t nfds = 0, want = 4 + (opts->capture ? 1u : 0u) + (opts->veth ? 1u : 0u);
	int r = recv_ctl(sb->ctlfd, &m, fds, 6, &nfds);

	*phase = CF_SANDBOX_BOOTSTRAP;
	if (r < 0) {
		snprintf(err, errlen, "the sandbox helper died during set-up");
		return r;
	}
	if (m.type == CF_CTL_SETUP_FAILED) {
		snprintf(err, errlen, "%s", m.text);
		sb->step = m.step < CF_STEP__COUNT ? (enum cf_sandbox_step)m.step : CF_STEP_UNKNOWN;
		return m.err ? -m.err : -EIO;
	}
	if (m.type != CF_CTL_READY || nfds != want) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		snprintf(err, errlen, "the sandbox helper sent an unexpected message");
		return -EPROTO;
	}
	sb->tun_fd = fds[0];
	sb->listen4 = fds[1];
	sb->listen6 = fds[2];
	sb->diag_fd = fds[3];
	sb->capture_fd = opts->capture ? fds[4] : -1;
	sb->ctrack_fd = opts->veth ? fds[want - 1] : -1;
	sb->port4 = m.port4;
	sb->port6 = m.port6;
	return 0;
}

int cf_sandbox_start(const struct cf_sandbox_opts *opts, struct cf_sandbox *sb,
		     enum cf_sandbox_phase *phase, char *err, size_t errlen)
{
	int sp[2], r;

	memset(sb, 0, sizeof(*sb));
	sb->helper = -1;
	sb->pidfd = sb->ctlfd = sb->tun_fd = sb->listen4 = sb->listen6 = sb->capture_fd = -1;
	sb->diag_fd = sb->ctrack_fd = -1;
	*phase = CF_SANDBOX_PREFLIGHT;
	sb->step = CF_STEP_CONTROL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create the control socket: %s", strerror(-r));
		return r;
	}
	sb->ctlfd = sp[0];
	sb->step = CF_STEP_NAMESPACES;
	r = spawn_helper(opts, sb, sp[1], err, errlen);
	close(sp[1]);
	if (r == 0) {
		sb->step = opts->host_setup ? CF_STEP_VETH : CF_STEP_ID_MAPS;
		r = opts->host_setup ? opts->host_setup(sb->helper, opts->host_arg, err, errlen)
				     : write_id_maps(sb->helper, opts, err, errlen);
	}
	if (r == 0) {
		/* the helper's own steps come back in SETUP_FAILED */
		sb->step = CF_STEP_CONTROL;
		r = send_ctl(sb->ctlfd, CF_CTL_MAPS_DONE, 0, NULL, CF_STEP_UNKNOWN);
	}
	if (r == 0)
		r = await_ready(sb, opts, phase, err, errlen);
	if (r == 0)
		sb->step = CF_STEP_UNKNOWN;
	if (r < 0)
		cf_sandbox_abort(sb); /* the control socket and pidfd too, not just the helper */
	return r;
}

int cf_sandbox_go(int ctlfd)
{
	return send_ctl(ctlfd, CF_CTL_GO, 0, NULL, CF_STEP_UNKNOWN);
}

const char *cf_sandbox_step_reason(enum cf_sandbox_step step)
{
	/* The original's codes where it names the same failure; ours for steps it does not have. */
	static const char *const reasons[CF_STEP__COUNT] = {
	    [CF_STEP_UNKNOWN] = "unknown_runtime_failure",
	    [CF_STEP_CONTROL] = "rootless_bootstrap_sync_failed",
	    [CF_STEP_NAMESPACES] = "namespace_unshare_failed",
	    [CF_STEP_ID_MAPS] = "user_namespace_mapping_failed",
	    [CF_STEP_MOUNT_PROPAGATION] = "mount_propagation_blocked",
	    [CF_STEP_PROC] = "proc_mount_blocked",
	    [CF_STEP_RESOLV_CONF] = "resolv_conf_bind_blocked",
	    [CF_STEP_HOSTS] = "hosts_bind_blocked",
	    [CF_STEP_HIDE] = "output_mask_blocked",
	    [CF_STEP_TUN] = "tap_create_blocked",
	    [CF_STEP_LINKS] = "child_network_setup_failed",
	    [CF_STEP_SYSCTLS] = "sysctl_write_blocked",
	    [CF_STEP_TPROXY] = "tproxy_listener_blocked",
	    [CF_STEP_NFTABLES] = "nftables_load_failed",
	    [CF_STEP_CAPTURE] = "packet_capture_blocked",
	    [CF_STEP_SOCK_DIAG] = "sock_diag_blocked",
	    [CF_STEP_HARDEN] = "proc_harden_blocked",
	    [CF_STEP_VETH] = "veth_create_failed",
	    [CF_STEP_CTRACK] = "conntrack_events_blocked",
	};

	return (unsigned)step < CF_STEP__COUNT && reasons[step] ? reasons[step]
								: reasons[CF_STEP_UNKNOWN];
}

void cf_sandbox_abort(struct cf_sandbox *sb)
{
	if (sb->helper > 0) {
		kill(sb->helper, SIGKILL); /* PID 1 of its namespace: the tree dies with it */
		waitpid(sb->helper, NULL, 0);
	}
	sb->helper = -1;
	cf_sandbox_close(sb);
}

void cf_sandbox_close(struct cf_sandbox *sb)
{
	int *fds[] = {&sb->pidfd,   &sb->ctlfd,	     &sb->tun_fd,  &sb->listen4,
		      &sb->listen6, &sb->capture_fd, &sb->diag_fd, &sb->ctrack_fd};

	for (size_t i = 0; i < CF_ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}
