/* SPDX-License-Identifier: MIT */
/*
 * A hand-written BPF program rather than libseccomp: four instructions, and
 * the helper links nothing it does not need. Only the native architecture's
 * connect() is sent to the engine; everything else, and connect() through
 * another ABI (x32, a 32-bit program's socketcall()), runs on, and takes the
 * relay path, which enforces the policy itself: the filter is an
 * acceleration, never the guard.
 */
#include "sandbox/connfilter.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/ctl.h"
#include "sandbox/fdpass.h"

#if defined(__x86_64__)
#define CF_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CF_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* The engine's notification structures must be the kernel's size: it copies its own. */
static int sizes_match(void)
{
	struct seccomp_notif_sizes sz;

	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
		return -errno;
	if (sz.seccomp_notif != sizeof(struct seccomp_notif) ||
	    sz.seccomp_notif_resp != sizeof(struct seccomp_notif_resp))
		return -ENOTSUP;
	return 0;
}

static int load_filter(void)
{
#ifdef CF_AUDIT_ARCH
	struct sock_filter insns[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CF_AUDIT_ARCH, 0, 3),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(insns) / sizeof(insns[0]), .filter = insns};
	long fd = sizes_match();

	if (fd < 0)
		return (int)fd;
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);

	return fd < 0 ? -errno : (int)fd;
#else
	return -ENOTSUP;
#endif
}

int cf_connfilter_install(int ctlfd)
{
	struct cf_ctl_msg m;
	int fd = load_filter(), r;

	memset(&m, 0, sizeof(m));
	m.type = CF_CTL_LISTENER;
	if (fd < 0) {
		m.err = -fd;
		(void)cf_fdpass_send(ctlfd, &m, sizeof(m), NULL, 0);
		return 0;
	}
	r = cf_fdpass_send(ctlfd, &m, sizeof(m), &fd, 1);
	/* The tree must never hold it: whoever reads it answers the tree's connects. */
	close(fd);
	return r;
}

int cf_connfilter_probe(bool *sync_wake_up)
{
	int fd;

	*sync_wake_up = false;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	fd = load_filter();
	if (fd < 0)
		return fd;
	*sync_wake_up = cf_connfilter_sync_wake_up(fd) == 0;
	close(fd);
	return 0;
}

/* Not in Debian 12's kernel headers (6.1). */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

int cf_connfilter_sync_wake_up(int listener)
{
	return ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) <
		       0
		   ? -errno
		   : 0;
}
