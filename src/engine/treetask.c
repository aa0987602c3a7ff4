/* SPDX-License-Identifier: MIT */
#include "engine/treetask.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CF_PIDFD_THREAD
#define CF_PIDFD_THREAD O_EXCL /* PIDFD_THREAD, Linux 6.9 */
#endif

/* Direct-mapped by thread id: a collision only costs the handles' reopening. */
#define TREETASK_SLOTS 64

/*
 * Open /proc/<tid>/fdinfo/<fd> files, by fd number: the kernel makes the
 * text anew from the thread's fd table at each read from offset 0, so one
 * pread() stands for openat(), read() and close() (2 us a connect here).
 */
#define FDINFO_KEPT 4

struct fdinfo_file {
	int fd;	  /* the tree's fd number */
	int file; /* -1: none */
};

struct slot {
	pid_t tid; /* 0: empty */
	int pidfd;
	int fdinfo; /* /proc/<tid>/fdinfo */
	struct fdinfo_file kept[FDINFO_KEPT];
	unsigned int next; /* the one to replace next */
};

struct cf_treetasks {
	struct slot slot[TREETASK_SLOTS];
};

int cf_treetasks_new(struct cf_treetasks **out)
{
	struct cf_treetasks *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < TREETASK_SLOTS; i++) {
		t->slot[i].pidfd = t->slot[i].fdinfo = -1;
		for (size_t j = 0; j < FDINFO_KEPT; j++)
			t->slot[i].kept[j].file = -1;
	}
	*out = t;
	return 0;
}

static void slot_close(struct slot *s)
{
	if (s->pidfd >= 0)
		close(s->pidfd);
	if (s->fdinfo >= 0)
		close(s->fdinfo);
	for (size_t i = 0; i < FDINFO_KEPT; i++) {
		if (s->kept[i].file >= 0)
			close(s->kept[i].file);
		s->kept[i].file = -1;
	}
	s->pidfd = s->fdinfo = -1;
	s->tid = 0;
}

void cf_treetasks_free(struct cf_treetasks *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < TREETASK_SLOTS; i++)
		slot_close(&t->slot[i]);
	free(t);
}

static struct slot *slot_of(struct cf_treetasks *t, pid_t tid)
{
	return &t->slot[(size_t)tid % TREETASK_SLOTS];
}

/* Open @s's handles for @tid. Return 0 or -errno (-ESRCH: no such thread). */
static int slot_open(struct slot *s, pid_t tid)
{
	char path[48];
	int pidfd = (int)syscall(SYS_pidfd_open, tid, CF_PIDFD_THREAD);

	if (pidfd < 0 && errno == EINVAL) /* before Linux 6.9: thread-group leaders only */
		pidfd = (int)syscall(SYS_pidfd_open, tid, 0);
	if (pidfd < 0)
		return errno == EMFILE || errno == ENFILE || errno == ENOMEM ? -errno : -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)tid);
	s->fdinfo = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->fdinfo < 0) {
		int r = errno == EMFILE || errno == ENFILE || errno == ENOMEM ? -errno : -ESRCH;

		close(pidfd);
		return r;
	}
	s->pidfd = pidfd;
	s->tid = tid;
	return 0;
}

int cf_treetasks_getfd(struct cf_treetasks *t, pid_t tid, int fd)
{
	struct slot *s = slot_of(t, tid);
	int r;

	if (tid <= 0)
		return -ESRCH;
	if (s->tid == tid) {
		r = (int)syscall(SYS_pidfd_getfd, s->pidfd, fd, 0);
		if (r >= 0 || errno != ESRCH)
			return r >= 0 ? r : -errno;
		/* That thread ended: @tid is another one now, or nobody. */
	}
	slot_close(s);
	r = slot_open(s, tid);
	if (r < 0)
		return r;
	r = (int)syscall(SYS_pidfd_getfd, s->pidfd, fd, 0);
	return r >= 0 ? r : -errno;
}

/* The open fdinfo file of @s's fd @fd, opened now if none is kept; -errno. */
static int fdinfo_file(struct slot *s, int fd)
{
	struct fdinfo_file *k;
	char name[16];
	int file;

	for (size_t i = 0; i < FDINFO_KEPT; i++)
		if (s->kept[i].file >= 0 && s->kept[i].fd == fd)
			return s->kept[i].file;
	snprintf(name, sizeof(name), "%d", fd);
	file = openat(s->fdinfo, name, O_RDONLY | O_CLOEXEC);
	if (file < 0)
		return -errno;
	k = &s->kept[s->next++ % FDINFO_KEPT];
	if (k->file >= 0)
		close(k->file);
	k->fd = fd;
	k->file = file;
	return file;
}

int cf_treetasks_cloexec(struct cf_treetasks *t, pid_t tid, int fd, uint32_t *flags)
{
	struct slot *s = slot_of(t, tid);
	char buf[256], *f;
	ssize_t n;
	int file;

	if (s->tid != tid)
		return -ESRCH;
	file = fdinfo_file(s, fd);
	if (file < 0)
		return file;
	n = pread(file, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return n < 0 ? -errno : -EIO; /* ENOENT: the fd is closed now */
	buf[n] = '\0';
	/* "flags:" holds the file's flags in octal, O_CLOEXEC among them. */
	f = strstr(buf, "flags:");
	if (!f)
		return -EIO;
	*flags = strtoul(f + 6, NULL, 8) & O_CLOEXEC ? O_CLOEXEC : 0;
	return 0;
}
