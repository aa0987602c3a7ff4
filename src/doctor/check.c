/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation. cf_check_run_forked() forks a check process (its own
 * process group, PDEATHSIG so it never outlives the doctor), which runs the
 * check and writes its struct cf_check into a pipe; the doctor polls that
 * pipe against a deadline and kills the group when it passes. Checks that
 * need the sandbox's namespaces call cf_doctor_in_sandbox() from the check
 * process: it clone3()s a helper into the launcher's namespaces, maps the
 * ids from outside exactly as the launcher does (cf_idmap_write), lets the
 * helper run the body, and reads the helper's outcome back. Nothing a check
 * creates outlives its process.
 */
#include "doctor/check.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fileio.h"

__attribute__((format(printf, 3, 0))) static void vformat(char *buf, size_t len, const char *fmt,
							  va_list ap)
{
	vsnprintf(buf, len, fmt, ap);
}

void cf_check_set(struct cf_check *c, enum cf_check_status st, const char *fmt, ...)
{
	va_list ap;

	c->status = st;
	c->err = 0;
	va_start(ap, fmt);
	vformat(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
}

void cf_check_set_err(struct cf_check *c, enum cf_check_status st, int err, const char *fmt, ...)
{
	va_list ap;

	c->status = st;
	c->err = err < 0 ? -err : err;
	va_start(ap, fmt);
	vformat(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
}

void cf_check_hint(struct cf_check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vformat(c->hint, sizeof(c->hint), fmt, ap);
	va_end(ap);
}

void cf_check_append(struct cf_check *c, const char *fmt, ...)
{
	size_t used = strlen(c->detail);
	va_list ap;

	if (used + 1 >= sizeof(c->detail))
		return;
	va_start(ap, fmt);
	vformat(c->detail + used, sizeof(c->detail) - used, fmt, ap);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Read exactly @len bytes from @fd before @deadline (monotonic ms, or -1 for
 * none). Return 0, -ETIMEDOUT, or -EPIPE when the writer went away early.
 */
static int read_full(int fd, void *buf, size_t len, int64_t deadline)
{
	char *p = buf;

	while (len > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int wait = -1;
		ssize_t n;

		if (deadline >= 0) {
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			wait = (int)left;
		}
		n = poll(&pfd, 1, wait);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A check starts as a failure: a body that never sets a verdict must not read as "ok". */
static void check_init(struct cf_check *c)
{
	memset(c, 0, sizeof(*c));
	cf_check_set_err(c, CF_CHECK_FAIL, EIO, "the check ended without a verdict");
}

static void describe_death(struct cf_check *c, const char *what, int status)
{
	if (WIFSIGNALED(status))
		cf_check_set_err(c, CF_CHECK_FAIL, EIO,
				 "%s died of signal %d (%s) before reporting", what,
				 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		cf_check_set_err(c, CF_CHECK_FAIL, EIO, "%s exited %d before reporting", what,
				 WEXITSTATUS(status));
}

__attribute__((noreturn)) static void check_child(const struct cf_check_def *def,
						  const struct cf_doctor_ctx *ctx, int out)
{
	struct cf_check c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	setpgid(0, 0);
	check_init(&c);
	def->run(&c, ctx);
	_exit(cf_write_all(out, &c, sizeof(c)) < 0 ? 1 : 0);
}

void cf_check_run_forked(const struct cf_check_def *def, const struct cf_doctor_ctx *ctx,
			 struct cf_check *c, int timeout_ms)
{
	cleanup_fd int rd = -1;
	int p[2], r, status = 0;
	pid_t pid;

	memset(c, 0, sizeof(*c));
	if (pipe2(p, O_CLOEXEC) < 0) {
		cf_check_set_err(c, CF_CHECK_FAIL, errno, "cannot run the check: pipe: %s",
				 strerror(errno));
		return;
	}
	rd = p[0];
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = errno;
		close(p[1]);
		cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot run the check: fork: %s",
				 strerror(r));
		return;
	}
	if (pid == 0) {
		close(rd);
		check_child(def, ctx, p[1]);
	}
	close(p[1]);
	setpgid(pid, pid); /* also done by the child: whichever runs first wins */
	r = read_full(rd, c, sizeof(*c), now_ms() + timeout_ms);
	if (r < 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == -ETIMEDOUT) {
		memset(c, 0, sizeof(*c));
		cf_check_set_err(c, CF_CHECK_FAIL, ETIMEDOUT,
				 "the check did not finish within %d ms and was stopped",
				 timeout_ms);
		cf_check_hint(c, "the operation hung: run `childflow --doctor` again, and if it "
				 "hangs again, report it with the output of `childflow --doctor "
				 "--doctor-format json`");
	} else if (r < 0) {
		memset(c, 0, sizeof(*c));
		describe_death(c, "the check", status);
	}
	/* A child's strings came through a pipe: make sure they end. */
	c->detail[sizeof(c->detail) - 1] = '\0';
	c->hint[sizeof(c->hint) - 1] = '\0';
}

static long clone3_flags(uint64_t flags)
{
	struct clone_args args;

	memset(&args, 0, sizeof(args));
	args.flags = flags;
	args.exit_signal = SIGCHLD;
	fflush(NULL);
	return syscall(SYS_clone3, &args, sizeof(args));
}

static void reap(pid_t pid, int *status)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (status)
		*status = st;
}

int cf_doctor_try_clone(uint64_t flags)
{
	long pid = clone3_flags(flags);

	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(0);
	reap((pid_t)pid, NULL);
	return 0;
}

__attribute__((noreturn)) static void sandbox_child(cf_sandbox_body body, void *arg, int go,
						    int out)
{
	struct cf_check c;
	char b = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (go >= 0 && (read(go, &b, 1) != 1 || b != 'g'))
		_exit(1);
	check_init(&c);
	body(&c, arg);
	_exit(cf_write_all(out, &c, sizeof(c)) < 0 ? 1 : 0);
}

/* Collect the outcome of a body running in @pid; kill it if it did not report. */
static int collect(pid_t pid, int rd, struct cf_check *c, const char *what)
{
	int status = 0, r = read_full(rd, c, sizeof(*c), -1);

	if (r < 0)
		kill(pid, SIGKILL);
	reap(pid, &status);
	if (r < 0) {
		memset(c, 0, sizeof(*c));
		describe_death(c, what, status);
		return -EIO;
	}
	return 0;
}

int cf_doctor_in_userns(uint64_t ns_flags, unsigned how, cf_sandbox_body body, void *arg,
			struct cf_check *c, struct cf_idmap_result *maps)
{
	struct cf_idmap_result local;
	cleanup_fd int go_rd = -1, go_wr = -1, res_rd = -1, res_wr = -1;
	int p[2], r;
	long pid;

	if (!maps)
		maps = &local;
	memset(maps, 0, sizeof(*maps));
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	go_rd = p[0];
	go_wr = p[1];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	res_rd = p[0];
	res_wr = p[1];
	pid = clone3_flags(ns_flags);
	if (pid < 0) {
		r = -errno;
		cf_doctor_explain_userns_error(c, -r, ns_flags);
		return r;
	}
	if (pid == 0) {
		close(go_wr);
		close(res_rd);
		sandbox_child(body, arg, go_rd, res_wr);
	}
	close(take_fd(&go_rd));
	close(take_fd(&res_wr));
	r = cf_idmap_write((pid_t)pid, getuid(), getgid(), how, maps);
	if (r < 0) {
		kill((pid_t)pid, SIGKILL);
		reap((pid_t)pid, NULL);
		cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot map ids into the test sandbox: %s",
				 strerror(-r));
		return r;
	}
	if (cf_write_all(go_wr, "g", 1) < 0) {
		r = -errno;
		kill((pid_t)pid, SIGKILL);
		reap((pid_t)pid, NULL);
		cf_check_set_err(c, CF_CHECK_FAIL, r, "the test sandbox went away: %s",
				 strerror(-r));
		return r;
	}
	return collect((pid_t)pid, res_rd, c, "the test sandbox");
}

int cf_doctor_in_sandbox(cf_sandbox_body body, void *arg, struct cf_check *c,
			 struct cf_idmap_result *maps)
{
	return cf_doctor_in_userns(CF_DOCTOR_SANDBOX_NS, CF_IDMAP_DIRECT | CF_IDMAP_HELPERS, body,
				   arg, c, maps);
}

int cf_doctor_in_netns(cf_sandbox_body body, void *arg, struct cf_check *c)
{
	cleanup_fd int rd = -1;
	int p[2];
	long pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	rd = p[0];
	pid = clone3_flags(CLONE_NEWNET);
	if (pid < 0) {
		int r = -errno;

		close(p[1]);
		cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot create a network namespace: %s",
				 strerror(-r));
		return r;
	}
	if (pid == 0) {
		close(rd);
		sandbox_child(body, arg, -1, p[1]);
	}
	close(p[1]);
	return collect((pid_t)pid, rd, c, "the test namespace");
}

int cf_doctor_read_sysctl(const char *path, char *buf, size_t len)
{
	int r = cf_read_small_file(path, buf, len);

	return r < 0 ? r : 0;
}

int cf_doctor_read_sysctl_long(const char *path, long *out)
{
	char buf[64], *end;
	int r = cf_doctor_read_sysctl(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	errno = 0;
	*out = strtol(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}
