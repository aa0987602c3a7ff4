/* SPDX-License-Identifier: MIT */
/*
 * A hand-written BPF program rather than libseccomp: a few instructions,
 * and the helper links nothing it does not need. The native ABI's
 * connect() and bind() are sent to the engine (bind(): a host socket whose
 * connect failed is unbound, and bound to a chosen port it would hold that
 * port of the host's against the host's own servers). Once the engine has handed the tree host
 * sockets, every way to act on one without the engine seeing it is a way
 * around the policy (a host socket whose connect failed, or that
 * connect(AF_UNSPEC) dissolved, connects anywhere on the host, its loopback
 * included), so the filter also closes those it can name:
 *  - io_uring_setup(): EPERM. A ring's IORING_OP_CONNECT and
 *    IORING_OP_SENDMSG run in the kernel without a system call any filter
 *    sees (tried: a ring reconnected a refused switched socket to a
 *    service on the host's 127.0.0.1).
 *  - sendto()/sendmsg()/sendmmsg() with MSG_FASTOPEN: EOPNOTSUPP, what a
 *    host without TCP Fast Open answers (programs then connect() first).
 *    TFO connects from inside sendmsg(), past connect()'s filter and LSM
 *    hooks alike.
 *  - the x32 ABI (ENOSYS for every call, as a kernel without x32) and the
 *    32-bit ABI's socket calls (ENOSYS): their numbers and layouts are not
 *    the engine's.
 * The relay path (--tcp-path relay) loads no filter and keeps all of them.
 */
#include "sandbox/connfilter.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

/*
 * The syscall numbers of the compat ABI (a 32-bit program): its connect(),
 * listen(), sendto(), sendmsg(), sendmmsg(), io_uring_setup() and
 * socketcall(), which the engine cannot read (other layouts). Refused with
 * ENOSYS: through them a 32-bit program could act on a host socket
 * unseen (see the theory above).
 */
#if defined(__x86_64__)
#define CF_COMPAT_ARCH AUDIT_ARCH_I386
static const uint32_t compat_socket_calls[] = {102, 362, 363, 369, 370, 345, 425};
#elif defined(__aarch64__)
#define CF_COMPAT_ARCH AUDIT_ARCH_ARM
static const uint32_t compat_socket_calls[] = {283, 284, 290, 296, 374, 425, 425};
#endif

#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
/* A jump to label @t (or @f) from the instruction at label @at. */
#define JEQ(k, at, t, f)                                                                           \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (uint8_t)((t) - (at)-1), (uint8_t)((f) - (at)-1))
#define LOW_ARG(i) (offsetof(struct seccomp_data, args) + 8 * (i))

#ifdef CF_AUDIT_ARCH
/* Instruction indices: each jump names where it goes. */
enum {
	L_ARCH,
	L_IS_NATIVE,
	L_NR,
	L_CONNECT,
	L_BIND,
	L_IO_URING,
	L_SENDTO,
	L_SENDMMSG,
	L_SENDMSG,
	L_X32,
	L_NATIVE_ALLOW,
	L_ARG3,
	L_FASTOPEN3,
	L_ARG2,
	L_FASTOPEN2,
	L_IS_COMPAT,
	L_COMPAT_NR,
	L_COMPAT_0,
	L_COMPAT_LAST = L_COMPAT_0 + 6,
	L_COMPAT_ALLOW,
	L_NOTIFY,
	L_EPERM,
	L_ENOSYS,
	L_EOPNOTSUPP,
	L_ALLOW,
	L__COUNT
};
#endif

static int load_filter(void)
{
#ifdef CF_AUDIT_ARCH
	struct sock_filter insns[L__COUNT] = {
		[L_ARCH] = BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		[L_IS_NATIVE] = JEQ(CF_AUDIT_ARCH, L_IS_NATIVE, L_NR, L_IS_COMPAT),
		[L_NR] = BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		[L_CONNECT] = JEQ(SYS_connect, L_CONNECT, L_NOTIFY, L_BIND),
		[L_BIND] = JEQ(SYS_bind, L_BIND, L_NOTIFY, L_IO_URING),
		/* io_uring's operations run unseen by any filter: no ring, no unseen connect. */
		[L_IO_URING] = JEQ(SYS_io_uring_setup, L_IO_URING, L_EPERM, L_SENDTO),
		/* A TCP Fast Open send connects without connect(): refused as where it is off. */
		[L_SENDTO] = JEQ(SYS_sendto, L_SENDTO, L_ARG3, L_SENDMMSG),
		[L_SENDMMSG] = JEQ(SYS_sendmmsg, L_SENDMMSG, L_ARG3, L_SENDMSG),
		[L_SENDMSG] = JEQ(SYS_sendmsg, L_SENDMSG, L_ARG2, L_X32),
#if defined(__x86_64__)
		/* The x32 ABI's numbers have bit 30 set: all refused, as a kernel without x32. */
		[L_X32] = BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, L_ENOSYS - L_X32 - 1, 0),
#else
		[L_X32] = BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0),
#endif
		[L_NATIVE_ALLOW] = RET(SECCOMP_RET_ALLOW),
		[L_ARG3] = BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LOW_ARG(3)),
		[L_FASTOPEN3] = BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MSG_FASTOPEN,
					 L_EOPNOTSUPP - L_FASTOPEN3 - 1, L_ALLOW - L_FASTOPEN3 - 1),
		[L_ARG2] = BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LOW_ARG(2)),
		[L_FASTOPEN2] = BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MSG_FASTOPEN,
					 L_EOPNOTSUPP - L_FASTOPEN2 - 1, L_ALLOW - L_FASTOPEN2 - 1),
		/* Another ABI than these two cannot run here: the kernel's own verdict stands. */
		[L_IS_COMPAT] = JEQ(CF_COMPAT_ARCH, L_IS_COMPAT, L_COMPAT_NR, L_ALLOW),
		[L_COMPAT_NR] =
		    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		[L_COMPAT_ALLOW] = RET(SECCOMP_RET_ALLOW),
		[L_NOTIFY] = RET(SECCOMP_RET_USER_NOTIF),
		[L_EPERM] = RET(SECCOMP_RET_ERRNO | EPERM),
		[L_ENOSYS] = RET(SECCOMP_RET_ERRNO | ENOSYS),
		[L_EOPNOTSUPP] = RET(SECCOMP_RET_ERRNO | EOPNOTSUPP),
		[L_ALLOW] = RET(SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = L__COUNT, .filter = insns};
	long fd;

	for (int i = 0; i <= L_COMPAT_LAST - L_COMPAT_0; i++)
		insns[L_COMPAT_0 + i] = (struct sock_filter)JEQ(
		    compat_socket_calls[i], L_COMPAT_0 + i, L_ENOSYS, L_COMPAT_0 + i + 1);
	fd = sizes_match();
	if (fd < 0)
		return (int)fd;
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);

	return fd < 0 ? -errno : (int)fd;
#else
	return -ENOTSUP;
#endif
}

/* Linux 6.7's Landlock network rights: not in Debian 12's headers. */
#define CF_LANDLOCK_NET_ABI 4
#define CF_LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define CF_LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#define CF_LANDLOCK_RULE_NET_PORT 2
struct cf_landlock_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
};
struct cf_landlock_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

int cf_connfilter_deny_tcp(void)
{
	struct cf_landlock_ruleset_attr attr = {.handled_access_net =
						    CF_LANDLOCK_ACCESS_NET_CONNECT_TCP |
						    CF_LANDLOCK_ACCESS_NET_BIND_TCP};
	/* Port 0: the kernel picks an ephemeral port, which nobody can choose to hold. */
	struct cf_landlock_net_port_attr any_port = {
	    .allowed_access = CF_LANDLOCK_ACCESS_NET_BIND_TCP, .port = 0};
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	long fd;
	int r;

	if (abi < 0)
		return -errno;
	if (abi < CF_LANDLOCK_NET_ABI)
		return -ENOTSUP;
	/* No connect rule: every TCP connect() the tree's own kernel would make is refused. */
	fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		return -errno;
	r = syscall(SYS_landlock_add_rule, (int)fd, CF_LANDLOCK_RULE_NET_PORT, &any_port, 0) < 0
		? -errno
		: 0;
	if (r == 0)
		r = syscall(SYS_landlock_restrict_self, (int)fd, 0) < 0 ? -errno : 0;
	close((int)fd);
	return r;
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
	/*
	 * After the filter loaded, never before: Landlock without a listener
	 * would leave the tree no TCP at all. Without Landlock the engine
	 * still serves the listener but hands out no host socket (m.err).
	 */
	r = cf_connfilter_deny_tcp();
	m.err = r < 0 ? -r : 0;
	r = cf_fdpass_send(ctlfd, &m, sizeof(m), &fd, 1);
	/* The tree must never hold it: whoever reads it answers the tree's connects. */
	close(fd);
	return r;
}

int cf_connfilter_probe(bool *sync_wake_up, int *landlock)
{
	int fd;

	*sync_wake_up = false;
	*landlock = -ENOTSUP;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	fd = load_filter();
	if (fd < 0)
		return fd;
	*sync_wake_up = cf_connfilter_sync_wake_up(fd) == 0;
	*landlock = cf_connfilter_deny_tcp();
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
