// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/engine/isolation.c: in a forked child that confines
 * itself, a call outside the allowlist fails with ENOSYS, is logged on
 * stderr and does not kill the process; the calls the engine needs still
 * work, threads included; forks, sockets other than IP and signals to
 * anyone but the sandbox's init are refused. Where the kernel refuses the
 * filter, confining is an error (the engine warns) and the rest still holds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/isolation.h"
#include "util/thread.h"

/* Bits of the child's exit status: each names a check that failed. */
enum {
	BAD_CONFINE = 1 << 0,
	BAD_BLOCKED = 1 << 1,
	BAD_ALLOWED = 1 << 2,
	BAD_STATUS = 1 << 3,
	BAD_THREAD = 1 << 4,
	BAD_FORK = 1 << 5,
	BAD_SOCKET = 1 << 6,
};

static void *thread_main(void *arg)
{
	/* A thread started after confinement runs under the filter as well. */
	long r = syscall(SYS_getppid);

	*(int *)arg = r == -1 && errno == ENOSYS;
	return NULL;
}

static int check_status(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return BAD_STATUS;
	buf[n] = '\0';
	/* (prctl() is not on the list: dumpable is checked by test_escape_engine.py) */
	if (!strstr(buf, "NoNewPrivs:\t1") || !strstr(buf, "Seccomp:\t2"))
		return BAD_STATUS;
	return 0;
}

static int check_thread(void)
{
	pthread_t t;
	int ok = 0;

	if (cf_thread_start(&t, thread_main, &ok) != 0 || pthread_join(t, NULL) != 0)
		return BAD_THREAD;
	return ok ? 0 : BAD_THREAD;
}

static int check_refusals(pid_t helper)
{
	int bad = 0, fd;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid != -1 || errno != ENOSYS)
		bad |= BAD_FORK;
	if (pid > 0)
		waitpid(pid, NULL, 0);
	fd = socket(AF_NETLINK, SOCK_RAW, 0);
	if (fd >= 0 || errno != ENOSYS)
		bad |= BAD_SOCKET;
	/* refused without a line: glibc's if_indextoname() falls back to IPv4 */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd >= 0 || errno != EAFNOSUPPORT)
		bad |= BAD_SOCKET;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		bad |= BAD_SOCKET;
	else
		close(fd);
	/* Signal 0 only checks: allowed towards the helper, refused towards anyone else. */
	if (kill(helper, 0) != 0 || kill(1, 0) != -1 || errno != ENOSYS)
		bad |= BAD_ALLOWED;
	return bad;
}

/* The child: confine, then try; the exit status is the set of failed checks. */
static int confined_child(pid_t helper)
{
	int bad = 0;
	long r;

	if (cf_isolation_confine(helper, false) != 0)
		return BAD_CONFINE;
	r = syscall(SYS_getppid);
	if (r != -1 || errno != ENOSYS)
		bad |= BAD_BLOCKED;
	if (getpid() <= 0 || write(STDOUT_FILENO, "", 0) != 0)
		bad |= BAD_ALLOWED;
	bad |= check_status();
	bad |= check_thread();
	bad |= check_refusals(helper);
	return bad;
}

static void run_child(int *status, char *err, size_t len)
{
	int pipefd[2];
	pid_t helper, pid;
	size_t got = 0;
	ssize_t n;

	/* A stand-in for the sandbox's init, the one process the engine may signal. */
	helper = fork();
	assert_true(helper >= 0);
	if (helper == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		_exit(confined_child(helper));
	}
	close(pipefd[1]);
	while (got + 1 < len && (n = read(pipefd[0], err + got, len - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = '\0';
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, status, 0), pid);
	kill(helper, SIGKILL);
	waitpid(helper, NULL, 0);
}

static void test_blocked_call_fails_logged_and_the_process_lives_on(void **state)
{
	char err[4096];
	int status;

	(void)state;
	if (!cf_isolation_supported())
		skip(); /* sanitizer builds and other architectures load no filter */
	run_child(&status, err, sizeof(err));
	print_message("%s", err);
	assert_true(WIFEXITED(status)); /* not killed by SIGSYS */
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_non_null(strstr(err, CF_ISOLATION_BLOCKED " getppid (nr "));
	assert_non_null(strstr(err, "please report this\n"));
	/* one line per refusal: getppid twice (main thread, thread), fork, socket, kill */
	assert_non_null(strstr(err, CF_ISOLATION_BLOCKED " clone (nr "));
	assert_non_null(strstr(err, CF_ISOLATION_BLOCKED " socket (nr "));
	assert_non_null(strstr(err, CF_ISOLATION_BLOCKED " kill (nr "));
}

/* A kernel that refuses filters: what a child of a seccomp(2)-refusing filter sees. */
static int refuse_seccomp(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = ctx ? 0 : -ENOMEM;

	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(seccomp), 0);
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(prctl), 1,
				     SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP, 0));
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

static void test_no_filter_possible_is_an_error_and_the_rest_holds(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	if (!cf_isolation_supported())
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int bad = refuse_seccomp() != 0;

		/* an error to warn about, no filter; no_new_privs and dumpable 0 all the same */
		bad |= (cf_isolation_confine(getppid(), false) >= 0) << 1;
		bad |= (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) << 2;
		bad |= (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) << 3;
		bad |= (syscall(SYS_getppid) != getppid()) << 4; /* no filter: it just works */
		_exit(bad);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blocked_call_fails_logged_and_the_process_lives_on),
	    cmocka_unit_test(test_no_filter_possible_is_an_error_and_the_rest_holds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
