// SPDX-License-Identifier: MIT
/*
 * The floor of a switched connect() (not a test): what one seccomp user
 * notification costs the calling thread when the supervisor does nothing
 * but answer, as the engine's loop waits for it (epoll, synchronous
 * wake-ups). A child traps its connect() calls; the parent answers each at
 * once (SECCOMP_IOCTL_NOTIF_SEND), or first installs a socket in place of
 * the child's (SECCOMP_IOCTL_NOTIF_ADDFD with SETFD), as a switch does.
 * Prints microseconds per call for both: no engine can answer a switched
 * connect() faster, whatever else it leaves out.
 *
 * Built by Meson as build/notify_floor; bench/run reports its figures
 * beside the request rows. Usage: notify_floor [CALLS]
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/connfilter.h"

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int send_fd(int via, int fd)
{
	char byte = 0, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	memset(ctl, 0, sizeof(ctl));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(via, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int via)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(via, &m, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The child: trap connect(), hand over the listener, time @calls connects. */
static void trapped_calls(int via, long calls)
{
	struct sock_filter insns[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(insns) / sizeof(insns[0]), .filter = insns};
	int sock = socket(AF_INET, SOCK_STREAM, 0);
	uint64_t start, ns;
	long listener;

	if (sock < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(1);
	listener =
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (listener < 0 || send_fd(via, (int)listener) < 0)
		_exit(1);
	close((int)listener);
	start = now_ns();
	for (long i = 0; i < calls; i++)
		if (connect(sock, NULL, 0) < 0)
			_exit(1);
	ns = now_ns() - start;
	_exit(write(via, &ns, sizeof(ns)) == sizeof(ns) ? 0 : 1);
}

/* Answer one notification; with @install >= 0, put that socket in place of the caller's fd. */
static int answer(int listener, int install)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	struct seccomp_notif_addfd add;

	memset(&req, 0, sizeof(req));
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
		return -1;
	if (install >= 0) {
		memset(&add, 0, sizeof(add));
		add.id = req.id;
		add.flags = SECCOMP_ADDFD_FLAG_SETFD;
		add.srcfd = (uint32_t)install;
		add.newfd = (uint32_t)req.data.args[0];
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0)
			return -1;
	}
	memset(&resp, 0, sizeof(resp));
	resp.id = req.id;
	return ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/* Microseconds per trapped call, or a negative number when the kernel would not. */
static double round_trip(long calls, int switched)
{
	int pair[2], listener = -1, ep = -1, install = -1, status;
	struct epoll_event ev = {.events = EPOLLIN};
	double us = -1;
	uint64_t ns;
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return -1;
	child = fork();
	if (child == 0) {
		close(pair[0]);
		trapped_calls(pair[1], calls);
	}
	close(pair[1]);
	if (child < 0)
		goto out;
	listener = recv_fd(pair[0]);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (switched)
		install = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 || ep < 0 || (switched && install < 0) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) < 0)
		goto reap;
	/* As the engine: a kernel without the flag wakes the caller on any CPU. */
	(void)cf_connfilter_sync_wake_up(listener);
	for (long i = 0; i < calls; i++)
		if (epoll_wait(ep, &ev, 1, -1) != 1 || answer(listener, install) < 0)
			goto reap;
	if (read(pair[0], &ns, sizeof(ns)) == sizeof(ns))
		us = (double)ns / 1000.0 / (double)calls;
reap:
	if (us < 0)
		kill(child, SIGKILL);
	waitpid(child, &status, 0);
out:
	if (install >= 0)
		close(install);
	if (ep >= 0)
		close(ep);
	if (listener >= 0)
		close(listener);
	close(pair[0]);
	return us;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	double plain, switched;

	if (calls <= 0) {
		fprintf(stderr, "usage: notify_floor [CALLS]\n");
		return 2;
	}
	(void)round_trip(calls / 10 + 1, 1); /* warm-up */
	plain = round_trip(calls, 0);
	switched = round_trip(calls, 1);
	if (plain < 0 || switched < 0) {
		fprintf(stderr, "notify_floor: seccomp user notification failed: %s\n",
			strerror(errno));
		return 1;
	}
	printf("answered %.2f us\nswitched %.2f us\n", plain, switched);
	return 0;
}
