/* SPDX-License-Identifier: MIT */
/*
 * Signals: the command shares childflow's process group, so a terminal's
 * Ctrl-C reaches it directly; init forwards only signals sent to it with
 * kill() (si_code SI_USER), which is how childflow passes on SIGTERM and
 * friends. A root caller's command has a session of its own (see
 * become_tree_user()): then init also forwards the terminal's, to its group.
 * Init installs no-op handlers and keeps the signals blocked for
 * sigwaitinfo(): pid 1 of a namespace would otherwise never receive them.
 *
 * Init also serves the engine's CONNECT requests (--publish): the engine
 * lives in the host's namespaces and cannot make a socket in the tree's, so
 * init opens one to the tree's loopback, never anywhere else, at the port
 * asked, and passes it back. The connect() is non-blocking, so a tree that
 * never accepts cannot stall init (the engine waits for the result).
 *
 * Init keeps its capabilities in the sandbox's user namespace (it reaps and
 * ends the tree) and, for a root caller, root's uid, so it is made
 * non-dumpable: the tree can neither ptrace it nor open its /proc entries
 * (/proc/1/root, fd, mem), which would give those powers back.
 */
#include "sandbox/init.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/connfilter.h"
#include "sandbox/ctl.h"
#include "sandbox/fdpass.h"

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/*
 * The bounding set is left alone on purpose: emptying it makes execve() of
 * binaries with "forced" file capabilities (ping: cap_net_raw+ep) fail with
 * EPERM, while no_new_privs already guarantees that file capabilities and
 * set-id bits grant nothing. Nor does execve() give a root tree (--user
 * root) root's capabilities: under no_new_privs it keeps what it had, none.
 */
int cf_drop_all_caps(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

static void noop(int sig)
{
	(void)sig;
}

static void send_msg(int ctlfd, uint32_t type, int err, int status)
{
	struct cf_ctl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.err = err;
	m.status = status;
	(void)!write(ctlfd, &m, sizeof(m));
}

/*
 * execvp() with a shell's error semantics: a PATH entry we may not search
 * is skipped rather than reported, so a missing command is ENOENT ("not
 * found", 127) and only a file that exists but cannot run is EACCES (126).
 */
static int exec_search(char *const argv[])
{
	const char *path = getenv("PATH");
	char buf[4096];
	int err = ENOENT;

	if (strchr(argv[0], '/') || !path) {
		execv(argv[0], argv);
		return errno;
	}
	while (*path) {
		size_t len = strcspn(path, ":");

		if (snprintf(buf, sizeof(buf), "%.*s%s%s", (int)len, path, len ? "/" : "",
			     argv[0]) < (int)sizeof(buf)) {
			execv(buf, argv);
			if (errno != ENOENT && errno != ENOTDIR &&
			    (errno != EACCES || access(buf, F_OK) == 0))
				err = errno;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return err;
}

/*
 * A root caller's command becomes the tree's user (sandbox/treeuser.h): no
 * supplementary groups, then the gid, then the uid, which clears every
 * capability. The maps hold only root and that user, so nothing in the tree
 * can switch back. A caller that is not root is already the tree's user.
 *
 * The switched tree also gets a session of its own, without a controlling
 * terminal: on root's terminal, TIOCSTI would let it type commands into
 * root's shell for after childflow exits (su(1)'s old hole). It still
 * reads and writes the terminal through the fds it inherits. The terminal's
 * signals (Ctrl-C, a hang-up, a resize) now reach childflow's process group
 * only, init included: init passes those on too (si_code SI_KERNEL), to the
 * command's whole process group, as the terminal would have.
 */
static int become_tree_user(uid_t uid, gid_t gid)
{
	if (getuid() == uid && getgid() == gid)
		return 0;
	if (setsid() < 0 || setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return -errno;
	return 0;
}

__attribute__((noreturn)) static void exec_command(char *const argv[], int errpipe, int ctlfd,
						   const sigset_t *oldmask, uid_t uid, gid_t gid,
						   bool switch_tcp)
{
	int err;

	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		signal(forwarded[i], SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	err = become_tree_user(uid, gid);
	if (err == 0)
		err = cf_drop_all_caps();
	/* After no_new_privs, which an unprivileged filter needs; the tree cannot undo it. */
	if (err == 0 && switch_tcp)
		err = cf_connfilter_install(ctlfd);
	close(ctlfd);
	err = err < 0 ? -err : exec_search(argv);
	(void)!write(errpipe, &err, sizeof(err));
	_exit(127);
}

/* Wait for the exec to succeed (pipe closed by CLOEXEC) or fail (errno written). */
static int exec_result(int errpipe)
{
	int err = 0;
	ssize_t n;

	do
		n = read(errpipe, &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(err) ? err : 0;
}

/* A socket to the tree's loopback at @m's port, connecting; or -errno. */
static int tree_socket(const struct cf_ctl_msg *m)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET};
	bool v6 = m->family == AF_INET6;
	int fd, err;

	a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a4.sin_port = a6.sin6_port = htons(m->tree_port);
	fd = socket(v6 ? AF_INET6 : AF_INET,
		    (m->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, v6 ? (const struct sockaddr *)&a6 : (const struct sockaddr *)&a4,
		    v6 ? sizeof(a6) : sizeof(a4)) < 0 &&
	    errno != EINPROGRESS) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

/* Serve one message of the engine; return false when the control socket is gone. */
static bool serve_ctl(int ctlfd)
{
	struct cf_ctl_msg m, r;
	ssize_t n;
	int fd;

	n = recv(ctlfd, &m, sizeof(m), MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n != (ssize_t)sizeof(m))
		return false;
	if (m.type != CF_CTL_CONNECT || m.tree_port == 0)
		return true;
	fd = tree_socket(&m);
	memset(&r, 0, sizeof(r));
	r.type = CF_CTL_CONNECTED;
	r.id = m.id;
	r.err = fd < 0 ? -fd : 0;
	(void)cf_fdpass_send(ctlfd, &r, sizeof(r), &fd, fd < 0 ? 0 : 1);
	if (fd >= 0)
		close(fd);
	return true;
}

/* Reap every exited child; return 1 and set *status when @cmd was among them. */
static int reap(pid_t cmd, int *status)
{
	int found = 0, st;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == cmd) {
			*status = st;
			found = 1;
		}
	}
	return found;
}

__attribute__((noreturn)) void cf_init_run(char *const argv[], int ctlfd, uid_t uid, gid_t gid,
					   bool switch_tcp)
{
	sigset_t mask, oldmask;
	int pipefd[2], status = 0, err, sfd;
	struct signalfd_siginfo si;
	struct pollfd pfd[2];
	pid_t cmd, target;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		send_msg(ctlfd, CF_CTL_EXEC_FAILED, errno, 0);
		_exit(1);
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
		signal(forwarded[i], noop);
		sigaddset(&mask, forwarded[i]);
	}
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		send_msg(ctlfd, CF_CTL_EXEC_FAILED, errno, 0);
		_exit(1);
	}
	cmd = fork();
	if (cmd < 0) {
		send_msg(ctlfd, CF_CTL_EXEC_FAILED, errno, 0);
		_exit(1);
	}
	if (cmd == 0) {
		close(pipefd[0]);
		exec_command(argv, pipefd[1], ctlfd, &oldmask, uid, gid, switch_tcp);
	}
	close(pipefd[1]);
	err = exec_result(pipefd[0]);
	close(pipefd[0]);
	if (err) {
		waitpid(cmd, NULL, 0);
		send_msg(ctlfd, CF_CTL_EXEC_FAILED, err, 0);
		_exit(1);
	}
	/* A switched command leads its own session and group since before its exec. */
	target = getuid() == uid && getgid() == gid ? cmd : -cmd;
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		kill(-1, SIGKILL);
		send_msg(ctlfd, CF_CTL_EXEC_FAILED, errno, 0);
		_exit(1);
	}
	pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = ctlfd, .events = POLLIN};
	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			continue;
		if (pfd[1].revents && !serve_ctl(ctlfd))
			pfd[1].fd = -1; /* the engine is gone; PDEATHSIG follows */
		if (!(pfd[0].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGCHLD) {
			if (reap(cmd, &status))
				break;
		} else if (si.ssi_code == SI_USER || (target < 0 && si.ssi_code == SI_KERNEL)) {
			kill(target, (int)si.ssi_signo);
		}
	}
	close(sfd);
	/* The command is gone: end the rest of its tree, then report. */
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	send_msg(ctlfd, CF_CTL_EXITED, 0, status);
	_exit(0);
}
