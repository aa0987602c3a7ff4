/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: the engine confines itself.
 *
 * The engine parses what a hostile tree sends (packets, DNS, TLS and proxy
 * replies), so once set-up is over (proxy name resolved, CA store and
 * profile loaded, output files open, the sandbox's helper cloned and its id
 * maps written) it gives up what it no longer needs, right before it lets the
 * command start (engine.c):
 *
 * - no_new_privs: nothing it could exec gains privileges (and seccomp
 *   without CAP_SYS_ADMIN requires it);
 * - dumpable 0: other processes of the user cannot ptrace it or read its
 *   memory (the proxy password), and it leaves no core file;
 * - a seccomp allowlist (the table below, each entry with the module that
 *   needs it), loaded with TSYNC so the capture threads already running are
 *   covered too, and inherited by those started later. execve, ptrace,
 *   mount, unshare, setns, bpf and the rest are simply not on it; clone is
 *   allowed for threads only (clone3 answers ENOSYS so that glibc falls back
 *   to clone, whose flags a filter can see), kill only towards the
 *   sandbox's init, socket only for IPv4 and IPv6.
 *
 * A call outside the list must not kill the run (the flows of a working
 * tree would die with it): the filter traps it, the SIGSYS handler writes
 * one line (CF_ISOLATION_BLOCKED, async-signal-safe) and makes the call
 * return -ENOSYS, which the caller handles like any failure. The test
 * harness fails every test whose childflow printed that line, so the whole
 * integration suite checks the list.
 *
 * The filter is built for x86_64 and aarch64 (where the handler knows the
 * return register); elsewhere the engine runs unconfined and says so.
 * Sanitizer builds do not load it: see cf_isolation_supported().
 */
#include "engine/isolation.h"

#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/log.h"

#if defined(__x86_64__) || defined(__aarch64__)
#define CF_ISOLATION_ARCH 1
#else
#define CF_ISOLATION_ARCH 0
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define CF_ISOLATION_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define CF_ISOLATION_SANITIZER 1
#endif
#endif
#ifndef CF_ISOLATION_SANITIZER
#define CF_ISOLATION_SANITIZER 0
#endif

/*
 * The system calls the engine makes once confined, and who makes them:
 * what strace -f showed of the engine and its threads after the filter was
 * loaded, over the integration suite's runs (docs/architecture.md,
 * "Confinement"), plus a few rare paths named in their reason. Names this
 * architecture lacks (readlink: aarch64 has only readlinkat) are skipped.
 * Calls with argument rules are in add_special_rules().
 */
static const struct cf_syscall_use {
	const char *name;
	const char *why;
} allowed_calls[] = {
    /* the event loop, engine.c */
    {"epoll_wait", "engine.c: the loop"},
    {"epoll_pwait", "engine.c: the loop (glibc's epoll_wait on aarch64)"},
    {"epoll_ctl", "engine.c, tcp.c, dgram.c, dnsfwd.c: watched fds"},
    {"read", "engine.c: tun0, signalfd, timerfd, control socket; tls.c; attrib.c"},
    {"pread64", "treetask.c: a kept /proc fdinfo file, read anew from offset 0"},
    {"write", "engine.c: tun0, GO; log.c, flowlog.c, pcapng.c, bgwrite.c; the SIGSYS line"},
    {"writev", "engine.c: IPv6 fragments into tun0; bgwrite.c, capdrain.c: capture blocks"},
    {"close", "every module"},
    {"clock_gettime",
     "engine.c, egress.c, wire.c: clocks (when the vDSO falls back to the kernel)"},
    {"wait4", "engine.c: waitpid() on the sandbox's init"},
    {"getpid", "attrib.c; glibc's raise() and abort()"},
    {"rt_sigreturn", "return from the SIGSYS handler (isolation.c)"},
    {"rt_sigprocmask", "thread.c: helper threads start with signals blocked"},
    {"rt_sigaction", "glibc's first pthread_create() (its internal signals), abort()"},
    {"restart_syscall", "a call interrupted by a signal handler resumes"},
    {"exit", "a helper thread ends (capdrain.c, bgwrite.c)"},
    {"exit_group", "childflow exits"},
    /* memory: malloc, thread stacks, the capture ring */
    {"brk", "malloc"},
    {"mmap", "malloc, thread stacks"},
    {"munmap", "free, thread stacks, pktring.c's capture ring"},
    {"mremap", "realloc() of a large block"},
    {"mprotect", "thread stack guards, malloc arenas of the helper threads"},
    {"madvise", "a helper thread's stack at its end, free()"},
    /* threads: bgwrite.c starts its writer with the first capture block */
    {"futex", "pthread mutexes and conditions (bgwrite.c, capdrain.c), stdio locks"},
    {"set_robust_list", "a new thread (glibc)"},
    {"rseq", "a new thread (glibc)"},
    {"sched_getaffinity", "glibc's malloc sizing its arenas the first time a thread allocates"},
    /* sockets: tcp.c, relay.c, dnsfwd.c, dnsstream.c, dgram.c, upstream.c, tlsrelay.c */
    {"connect", "tcp.c, upstream.c, dnsfwd.c, dgram.c: upstream sockets"},
    {"accept4", "tcp.c: the transparent listeners; publish.c: the host listeners"},
    {"setsockopt", "tcp.c, relay.c, dgram.c: TTL, RECVERR, LINGER; sockend.c: LINGER2, filter"},
    {"getsockopt", "tcp.c, upstream.c: SO_ERROR; dgram.c; sockend.c: SO_COOKIE"},
    {"getsockname", "tcp.c, capview.c, sockend.c: the host side of the tree's flows"},
    {"shutdown", "relay.c: half-close"},
    {"sendto", "dnsfwd.c, dgram.c, handshake.c, attrib.c, sockend.c: send(); publish.c: CONNECT, "
	       "datagrams"},
    {"recvfrom", "dnsfwd.c, dgram.c, handshake.c, attrib.c, sockend.c: recv(); tcp.c: MSG_PEEK; "
		 "publish.c"},
    {"sendmsg", "dgram.c"},
    {"recvmsg", "dgram.c: ICMP errors (MSG_ERRQUEUE); wire.c; engine.c: CONNECTED with its fd"},
    {"splice", "relay.c: the bulk path"},
    {"tee", "egress.c: the relayed bytes for the egress view"},
    {"pipe2", "relay.c: the pipe pool"},
    {"fcntl", "relay.c: F_SETPIPE_SZ; sockend.c: F_DUPFD_CLOEXEC"},
    {"ioctl", "wire.c: if_indextoname() (SIOCGIFNAME); switch.c: the seccomp listener, "
	      "SIOCGSKNS"},
    {"poll", "capdrain.c, pktring.c: the capture ring"},
    {"ppoll", "capdrain.c, pktring.c (glibc's poll on aarch64)"},
    {"pselect6", "libnftables' select() (rootful: the run's domain sets, hosttable.c)"},
    /* files: attrib.c walks /proc of the tree; pcapng.c, flowlog.c write the outputs */
    {"openat", "attrib.c: /proc of the tree (opendir, fopen)"},
    {"getdents64", "attrib.c: readdir of /proc"},
    {"readlink", "attrib.c: /proc/PID/fd/N"},
    {"readlinkat", "attrib.c: /proc/PID/fd/N (readlink on aarch64)"},
    {"newfstatat", "attrib.c; stdio"},
    {"lseek", "pcapng.c, stdio"},
    {"ftruncate", "pcapng.c: a block cut short by a write error is cut off"},
    {"sysinfo", "agg.c: glibc's qsort() of a large summary asks for the memory size"},
    {"getrandom", "OpenSSL (tls.c) reseeding its generator"},
    {"timerfd_settime",
     "ratelimit.c: the timer that wakes relays waiting for --rate-limit's tokens"},
};

/*
 * switch.c (--tcp-path auto), only in runs that expect the tree's connect()
 * listener: the address read once into the engine's memory, the thread that
 * called connect(), and a copy of its socket (the listener's ioctls are in
 * "ioctl"). These reach any process the engine's user could ptrace (the
 * kernel's check), not only the tree's: in a run that switches, a subverted
 * engine could read such a process's memory and take its fds.
 */
static const struct cf_syscall_use switch_calls[] = {
    {"process_vm_readv", "switch.c: the tree's connect() address"},
    {"pidfd_open", "switch.c: the thread that called connect()"},
    {"pidfd_getfd", "switch.c: a copy of the tree's socket (domain, type, options)"},
    {"bind", "switch.c: the tree's own TCP sockets, which its kernel binds to port 0 only"},
};

/* Names of this architecture's system calls, for the SIGSYS line; set once before loading. */
#define NAMES_MAX 512
static char syscall_names[NAMES_MAX][32];

static void fill_names(void)
{
	for (int nr = 0; nr < NAMES_MAX; nr++) {
		cleanup_free char *n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		if (n)
			strncpy(syscall_names[nr], n, sizeof(syscall_names[nr]) - 1);
	}
}

static size_t append(char *buf, size_t n, size_t size, const char *s)
{
	while (*s && n + 1 < size)
		buf[n++] = *s++;
	return n;
}

static size_t append_int(char *buf, size_t n, size_t size, long v)
{
	char digits[24];
	size_t k = 0;
	unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;

	do {
		digits[k++] = (char)('0' + u % 10);
		u /= 10;
	} while (u && k < sizeof(digits));
	if (v < 0 && n + 1 < size)
		buf[n++] = '-';
	while (k && n + 1 < size)
		buf[n++] = digits[--k];
	return n;
}

/* Async-signal-safe: one write(2) of a line built on the stack, then -ENOSYS as the result. */
static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	int saved = errno, nr = si->si_syscall;
	const char *name =
	    nr >= 0 && nr < NAMES_MAX && syscall_names[nr][0] ? syscall_names[nr] : "unknown";
	char line[160];
	size_t n = 0;

	(void)sig;
	n = append(line, n, sizeof(line), CF_ISOLATION_BLOCKED " ");
	n = append(line, n, sizeof(line), name);
	n = append(line, n, sizeof(line), " (nr ");
	n = append_int(line, n, sizeof(line), nr);
	n = append(line, n, sizeof(line), "); please report this\n");
	(void)!write(STDERR_FILENO, line, n);
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#else
	(void)uc;
#endif
	errno = saved;
}

static int install_handler(void)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigset_t sys;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;
	/* A trap while SIGSYS is blocked would kill the process instead. */
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	return -pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
}

static int add_special_rules(scmp_filter_ctx ctx, pid_t helper)
{
	int r;

	/* Threads only (capdrain.c, bgwrite.c): no new process, let alone one in new namespaces. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	/* clone3's flags are behind a pointer: ENOSYS makes glibc fall back to clone. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* engine.c forwards signals to the sandbox's init, and to nothing else. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
				     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)helper, 0));
	/* raise()/abort() signal the engine itself. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
	/* Upstream sockets are IP only: no UNIX socket (a D-Bus or Docker socket), no netlink. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, AF_INET, 0));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, AF_INET6, 0));
	/*
	 * wire.c's if_indextoname(): glibc tries a UNIX socket first, then IPv4;
	 * refused quietly, as the fallback works.
	 */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
	return r;
}

static int allow_all(scmp_filter_ctx ctx, const struct cf_syscall_use *calls, size_t n)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		int nr = seccomp_syscall_resolve_name(calls[i].name);

		if (nr != __NR_SCMP_ERROR)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
	return r;
}

static int build_filter(pid_t helper, bool switching, scmp_filter_ctx *out)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int r;

	if (!ctx)
		return -ENOMEM;
	/* Every thread, including the capture threads already running. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	/*
	 * A binary search over the calls rather than a list, as every call of
	 * the relay pays it (libseccomp 2.5; older ones keep the list).
	 */
	if (r == 0)
		(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (r == 0)
		r = allow_all(ctx, allowed_calls, CF_ARRAY_SIZE(allowed_calls));
	if (r == 0 && switching)
		r = allow_all(ctx, switch_calls, CF_ARRAY_SIZE(switch_calls));
	if (r == 0)
		r = add_special_rules(ctx, helper);
	if (r < 0) {
		seccomp_release(ctx);
		return r;
	}
	*out = ctx;
	return 0;
}

bool cf_isolation_supported(void)
{
	/*
	 * LeakSanitizer stops the world at exit from a clone() of the process
	 * that ptrace()s it, after prctl() calls: what the filter refuses (the
	 * run died of SIGSYS at exit when tried). Dumpable 0 is fine with it:
	 * LSan makes the process dumpable again for its check.
	 */
	return CF_ISOLATION_ARCH && !CF_ISOLATION_SANITIZER;
}

int cf_isolation_confine(pid_t helper, bool switching)
{
	scmp_filter_ctx ctx = NULL;
	int r;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	if (!cf_isolation_supported())
		return 1;
	fill_names();
	r = install_handler();
	if (r == 0)
		r = build_filter(helper, switching, &ctx);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}
