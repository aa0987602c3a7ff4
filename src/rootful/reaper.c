/* SPDX-License-Identifier: MIT */
#include "rootful/reaper.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rootful/state.h"

#define ANSWER_TIMEOUT_MS 5000
#define REAPER_FD 3

/* The reaper itself: nothing of childflow's but its socket and stderr stays open. */
__attribute__((noreturn)) static void reaper_main(const char *id, int fd)
{
	char c = 0;
	ssize_t n;

	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "childflow-reap");
	if (fd != REAPER_FD && dup2(fd, REAPER_FD) < 0)
		_exit(1);
	/* Above all the nft socket: the owned table must die with childflow, not with us. */
	close_range(REAPER_FD + 1, ~0U, 0);
	close(0);
	close(1);
	do
		n = read(REAPER_FD, &c, 1);
	while (n < 0 && errno == EINTR);
	cf_rootful_state_release(id, n == 1 ? NULL : stderr);
	c = 'K';
	(void)!write(REAPER_FD, &c, 1);
	_exit(0);
}

int cf_reaper_start(const char *id, struct cf_reaper *rp)
{
	int sp[2];
	pid_t pid;

	rp->pid = -1;
	rp->fd = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int r = -errno;

		close(sp[0]);
		close(sp[1]);
		return r;
	}
	if (pid == 0) {
		close(sp[0]);
		reaper_main(id, sp[1]);
	}
	close(sp[1]);
	rp->pid = pid;
	rp->fd = sp[0];
	return 0;
}

int cf_reaper_finish(struct cf_reaper *rp)
{
	struct pollfd p = {.fd = rp->fd, .events = POLLIN};
	char c = 'R';
	int r = 0;

	if (rp->pid <= 0)
		return 0;
	if (write(rp->fd, &c, 1) != 1 || poll(&p, 1, ANSWER_TIMEOUT_MS) != 1 ||
	    read(rp->fd, &c, 1) != 1)
		r = -ETIMEDOUT;
	close(rp->fd);
	rp->fd = -1;
	if (r == 0)
		waitpid(rp->pid, NULL, 0);
	rp->pid = -1;
	return r;
}
