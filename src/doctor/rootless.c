/* SPDX-License-Identifier: MIT */
/*
 * The rootless backend's checks, in the order a run needs them
 * (DESIGN.md, rootless data path step 1): the launcher's namespaces, its id
 * maps (and the newuidmap/newgidmap fallback), then inside a throwaway
 * sandbox tun0, the transparent listeners and the nft table; on the host
 * the ICMP sockets the engine relays ping with; capture; and last the
 * sandbox's whole set-up, done by the sandbox's own code.
 */
#include "doctor/check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/childnet.h"
#include "sandbox/connfilter.h"
#include "sandbox/mounts.h"
#include "sandbox/netlink.h"
#include "sandbox/nftrules.h"
#include "sandbox/plan.h"
#include "util/cleanup.h"

#define TUN_PATH "/dev/net/tun"

enum {
	RL_USERNS,
	RL_IDMAP,
	RL_HELPERS,
	RL_TUN,
	RL_TPROXY,
	RL_NFTABLES,
	RL_PING,
	RL_CAPTURE,
	RL_SANDBOX,
	RL_SWITCH,
	RL__COUNT,
};

static bool passed(const struct cf_doctor_ctx *ctx, int i)
{
	return ctx->results[i].status == CF_CHECK_OK || ctx->results[i].status == CF_CHECK_WARN;
}

/* userns ---------------------------------------------------------------------------------- */

static void check_userns(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	int r = cf_doctor_try_clone(CF_DOCTOR_SANDBOX_NS);

	(void)ctx;
	if (r == 0)
		cf_check_set(c, CF_CHECK_OK,
			     "created user, mount, network, PID, UTS and IPC namespaces");
	else
		cf_doctor_explain_userns_error(c, -r, CF_DOCTOR_SANDBOX_NS);
}

/* idmap ----------------------------------------------------------------------------------- */

/* Inside the mapped namespaces: do the capabilities the helper relies on work? */
static void probe_capabilities(struct cf_check *c, void *arg)
{
	struct mnl_socket *nl = NULL;
	int r;

	(void)arg;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		r = errno;
		cf_check_set_err(c, CF_CHECK_FAIL, r,
				 "ids mapped, but capabilities inside the "
				 "namespace are refused: cannot make mounts private: %s",
				 strerror(r));
		cf_doctor_explain_denial(c, r);
		return;
	}
	r = cf_nl_open(&nl);
	if (r == 0)
		r = cf_nl_link_up(nl, if_nametoindex("lo"), 0);
	cf_nl_close(nl);
	if (r < 0) {
		cf_check_set_err(c, CF_CHECK_FAIL, r,
				 "ids mapped, but capabilities inside the "
				 "namespace are refused: cannot bring lo up: %s",
				 strerror(-r));
		cf_doctor_explain_denial(c, -r);
		return;
	}
	cf_check_set(c, CF_CHECK_OK, "capabilities work");
}

static void explain_map_failure(struct cf_check *c, const struct cf_idmap_result *m,
				const struct cf_doctor_ctx *ctx)
{
	cf_check_set_err(c, CF_CHECK_FAIL, m->direct_err ? m->direct_err : m->helper_err,
			 "cannot map uid %u and gid %u", (unsigned)ctx->uid, (unsigned)ctx->gid);
	if (m->direct_err)
		cf_check_append(c, ": writing /proc/PID/%s: %s", m->direct_file,
				strerror(m->direct_err));
	if (*m->helper_msg)
		cf_check_append(c, "; %s", m->helper_msg);
	if (m->helper_err == ENOENT)
		cf_check_hint(c, "install newuidmap/newgidmap: apt install uidmap (Debian, Ubuntu) "
				 "or dnf install shadow-utils (Fedora)");
	else
		cf_check_hint(c, "newuidmap/newgidmap must be setuid root: as root, apt install "
				 "--reinstall uidmap (or chmod u+s on both)");
	if (m->direct_err == EPERM || m->direct_err == EACCES) {
		struct cf_check why = {.status = CF_CHECK_FAIL};

		cf_doctor_explain_denial(&why, m->direct_err);
		if (*why.detail)
			cf_check_append(c, "%s", why.detail);
	}
}

static void check_idmap(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	struct cf_idmap_result m;
	int r = cf_doctor_in_sandbox(probe_capabilities, NULL, c, &m);

	if (r < 0) {
		if (m.direct_err || m.helper_err)
			explain_map_failure(c, &m, ctx);
		return;
	}
	if (c->status != CF_CHECK_OK)
		return;
	if (!m.via_helpers) {
		c->facts |= CF_FACT_DIRECT_MAPS;
		cf_check_set(c, CF_CHECK_OK,
			     "mapped uid %u and gid %u by writing /proc/PID/uid_map "
			     "and gid_map; capabilities work inside",
			     (unsigned)ctx->uid, (unsigned)ctx->gid);
	} else {
		cf_check_set(c, CF_CHECK_OK,
			     "mapped uid %u and gid %u with newuidmap/newgidmap "
			     "(writing /proc/PID/%s directly: %s); capabilities work inside",
			     (unsigned)ctx->uid, (unsigned)ctx->gid, m.direct_file,
			     strerror(m.direct_err));
	}
}

/* uidmap_helpers ------------------------------------------------------------------------- */

/* Inside a user namespace mapped by the helpers alone: are we really our own uid and gid? */
static void verify_mapped(struct cf_check *c, void *arg)
{
	const struct cf_doctor_ctx *ctx = arg;

	if (getuid() == ctx->uid && getgid() == ctx->gid)
		cf_check_set(c, CF_CHECK_OK, "mapped");
	else
		cf_check_set_err(c, CF_CHECK_FAIL, EPERM,
				 "the helpers reported success but the "
				 "namespace sees uid %u, gid %u",
				 (unsigned)getuid(), (unsigned)getgid());
}

/* The first /etc/subuid-style range of this user (by name or number), or false. */
static bool subid_range(const char *file, uid_t id, unsigned long *start, unsigned long *count)
{
	struct passwd *pw = getpwuid(id);
	char *line = NULL, num[16];
	size_t cap = 0;
	bool found = false;
	FILE *f = fopen(file, "re");

	if (!f)
		return false;
	snprintf(num, sizeof(num), "%u", (unsigned)id);
	while (!found && getline(&line, &cap, f) > 0) {
		char *owner = strtok(line, ":"), *s = strtok(NULL, ":"), *n = strtok(NULL, ":\n");

		if (!owner || !s || !n)
			continue;
		if (strcmp(owner, num) != 0 && (!pw || strcmp(owner, pw->pw_name) != 0))
			continue;
		*start = strtoul(s, NULL, 10);
		*count = strtoul(n, NULL, 10);
		found = true;
	}
	free(line);
	fclose(f);
	return found;
}

static void append_subid(struct cf_check *c, uid_t uid)
{
	unsigned long start, count;

	if (subid_range("/etc/subuid", uid, &start, &count))
		cf_check_append(c, "; /etc/subuid: %lu-%lu", start, start + count - 1);
	else
		cf_check_append(c,
				"; no /etc/subuid range for uid %u (not needed: childflow "
				"maps only your own uid and gid)",
				(unsigned)uid);
}

static void check_helpers(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	bool direct = ctx->results[RL_IDMAP].facts & CF_FACT_DIRECT_MAPS;
	enum cf_check_status bad = direct ? CF_CHECK_WARN : CF_CHECK_FAIL;
	const char *fallback = direct ? "; childflow needs them only where direct map writes "
					"are refused, and here they are not"
				      : "";
	char upath[PATH_MAX], gpath[PATH_MAX];
	struct cf_idmap_result m;
	int r;

	if (cf_doctor_which("newuidmap", upath, sizeof(upath)) < 0 ||
	    cf_doctor_which("newgidmap", gpath, sizeof(gpath)) < 0) {
		const char *path = getenv("PATH");

		cf_check_set_err(c, bad, ENOENT, "not found in PATH (%s)%s", path ? path : "unset",
				 fallback);
		cf_check_hint(c, "install them: apt install uidmap (Debian, Ubuntu) or dnf install "
				 "shadow-utils (Fedora)");
		append_subid(c, ctx->uid);
		return;
	}
	r = cf_doctor_in_userns(CLONE_NEWUSER, CF_IDMAP_HELPERS, verify_mapped, (void *)ctx, c, &m);
	if (r < 0 || c->status != CF_CHECK_OK) {
		if (r < 0 && *m.helper_msg)
			cf_check_set_err(c, bad, m.helper_err, "%s%s", m.helper_msg, fallback);
		else
			c->status = bad;
		cf_check_hint(c, "newuidmap/newgidmap must be setuid root: as root, apt install "
				 "--reinstall uidmap (or chmod u+s on both)");
		append_subid(c, ctx->uid);
		return;
	}
	cf_check_set(c, CF_CHECK_OK, "%s and %s mapped uid %u and gid %u in a test namespace",
		     upath, gpath, (unsigned)ctx->uid, (unsigned)ctx->gid);
	append_subid(c, ctx->uid);
}

/* tun ------------------------------------------------------------------------------------- */

/* Open /dev/net/tun as the launcher's helper does; on failure fill @c. */
static int tun_open(struct cf_check *c)
{
	int fd = open(TUN_PATH, O_RDWR | O_CLOEXEC | O_NONBLOCK), r;
	struct stat st;

	if (fd >= 0)
		return fd;
	r = errno;
	if (r == EACCES || r == EPERM) {
		if (stat(TUN_PATH, &st) == 0)
			cf_check_set_err(c, CF_CHECK_FAIL, r,
					 "cannot open " TUN_PATH ": %s (mode "
					 "%04o, owner uid %u gid %u; you are uid %u)",
					 strerror(r), (unsigned)(st.st_mode & 07777),
					 (unsigned)st.st_uid, (unsigned)st.st_gid,
					 (unsigned)geteuid());
		else
			cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot open " TUN_PATH ": %s",
					 strerror(r));
		cf_check_hint(c, "as root: chmod 0666 " TUN_PATH ", and keep it with a udev rule "
				 "KERNEL==\"tun\", MODE=\"0666\" (creating an interface still "
				 "needs CAP_NET_ADMIN, so this is safe)");
	} else if (r == ENOENT) {
		cf_check_set_err(c, CF_CHECK_FAIL, r, TUN_PATH " does not exist");
		cf_check_hint(
		    c, "as root: modprobe tun (or: mkdir -p /dev/net && mknod -m 0666 " TUN_PATH
		       " c 10 200)");
	} else if (r == ENODEV || r == ENXIO) {
		cf_check_set_err(c, CF_CHECK_FAIL, r,
				 "cannot open " TUN_PATH ": %s (the tun "
				 "driver is not loaded)",
				 strerror(r));
		cf_check_hint(c, "as root: modprobe tun (CONFIG_TUN)");
	} else {
		cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot open " TUN_PATH ": %s", strerror(r));
	}
	return -r;
}

/* In the sandbox: open the device again and create tun0, as the launcher's helper does. */
static void tun_create(struct cf_check *c, void *arg)
{
	cleanup_fd int fd = tun_open(c);
	struct ifreq ifr;

	(void)arg;
	if (fd < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", CF_PLAN_TUN_NAME);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int r = errno;

		cf_check_set_err(c, CF_CHECK_FAIL, r,
				 "opened " TUN_PATH " but cannot create %s in "
				 "the sandbox: %s",
				 CF_PLAN_TUN_NAME, strerror(r));
		cf_doctor_explain_denial(c, r);
		return;
	}
	cf_check_set(c, CF_CHECK_OK,
		     "opened " TUN_PATH " and created %s (IFF_TUN, IFF_NO_PI) in "
		     "a test sandbox",
		     CF_PLAN_TUN_NAME);
}

/* The open first, on the host, where the device's owner and mode read as they are. */
static void check_tun(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	int fd = tun_open(c);

	if (fd < 0)
		return;
	close(fd);
	if (passed(ctx, RL_IDMAP))
		cf_doctor_in_sandbox(tun_create, NULL, c, NULL);
	else
		cf_check_set(c, CF_CHECK_SKIP,
			     "opened " TUN_PATH "; creating %s was not tried (no "
			     "usable user namespace)",
			     CF_PLAN_TUN_NAME);
}

/* The preflight's form: only the open, in the caller's process. */
static void preflight_tun(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	int fd = tun_open(c);

	(void)ctx;
	if (fd >= 0) {
		close(fd);
		cf_check_set(c, CF_CHECK_OK, "opened " TUN_PATH);
	}
}

/* tproxy, nftables -------------------------------------------------------------------------- */

static void check_tproxy(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	(void)ctx;
	if (cf_doctor_in_sandbox(cf_probe_tproxy, NULL, c, NULL) == 0 && c->status == CF_CHECK_OK)
		cf_check_set(c, CF_CHECK_OK,
			     "IP_TRANSPARENT and IPV6_TRANSPARENT listeners open in "
			     "a test sandbox");
}

static void check_nftables(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	char ruleset[2048];
	struct cf_plan plan;

	(void)ctx;
	cf_plan_default(&plan);
	if (cf_nft_child_ruleset(ruleset, sizeof(ruleset), 40001, 40002, &plan, NULL) < 0) {
		cf_check_set_err(c, CF_CHECK_FAIL, ENOSPC, "cannot render the sandbox's table");
		return;
	}
	if (cf_doctor_in_sandbox(cf_probe_nft, ruleset, c, NULL) < 0)
		return;
	if (c->status == CF_CHECK_OK) {
		cf_check_set(c, CF_CHECK_OK,
			     "loaded the sandbox's table (fib, tproxy, marks) with "
			     "libnftables in a test sandbox");
	} else if (!*c->hint) {
		cf_check_hint(c,
			      "the kernel needs nf_tables with fib and TPROXY: as root, modprobe "
			      "nft_fib_inet nft_tproxy (CONFIG_NFT_FIB_INET, CONFIG_NFT_TPROXY)");
	}
}

/* ping ------------------------------------------------------------------------------------ */

static void check_ping(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	char range[64] = "?";
	int fd4, fd6, r;

	cf_doctor_read_sysctl("/proc/sys/net/ipv4/ping_group_range", range, sizeof(range));
	for (char *p = range; *p; p++)
		if (*p == '\t')
			*p = ' ';
	fd4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (fd4 < 0) {
		r = errno;
		cf_check_set_err(c, CF_CHECK_WARN, r,
				 "cannot open an ICMP echo socket: %s "
				 "(net.ipv4.ping_group_range = \"%s\", your gid is %u): ping from "
				 "the tree will fail, everything else works",
				 strerror(r), range, (unsigned)ctx->gid);
		cf_check_hint(c, "as root: sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" "
				 "(and put it in /etc/sysctl.d/ to keep it)");
		return;
	}
	close(fd4);
	fd6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	if (fd6 < 0 && errno != EAFNOSUPPORT) {
		r = errno;
		cf_check_set_err(c, CF_CHECK_WARN, r,
				 "ICMPv4 echo sockets work but ICMPv6 ones do "
				 "not: %s: ping -6 from the tree will fail",
				 strerror(r));
		return;
	}
	if (fd6 >= 0)
		close(fd6);
	cf_check_set(c, CF_CHECK_OK,
		     "ICMP echo sockets open for gid %u "
		     "(net.ipv4.ping_group_range = \"%s\")%s",
		     (unsigned)ctx->gid, range, fd6 < 0 ? "; IPv6 is disabled on this host" : "");
}

/* capture --------------------------------------------------------------------------------- */

static void capture_in_sandbox(struct cf_check *c, void *arg)
{
	int r = cf_probe_af_packet();

	(void)arg;
	if (r == 0) {
		cf_check_set(c, CF_CHECK_OK,
			     "AF_PACKET sockets open in a test sandbox (--capture)");
		return;
	}
	cf_check_set_err(c, CF_CHECK_WARN, r,
			 "cannot open an AF_PACKET socket in the sandbox: "
			 "%s: --capture will not work",
			 strerror(-r));
	if (r == -EAFNOSUPPORT)
		cf_check_hint(c, "as root: modprobe af_packet (CONFIG_PACKET)");
	else
		cf_doctor_explain_denial(c, -r);
}

static void check_capture(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	int host = cf_probe_af_packet();

	if (cf_doctor_in_sandbox(capture_in_sandbox, NULL, c, NULL) < 0)
		return;
	if (host == 0)
		cf_check_append(c, "; wire-egress view: available (CAP_NET_RAW on the host)");
	else
		cf_check_append(c,
				"; wire-egress view: needs CAP_NET_RAW on the host, which uid "
				"%u does not have (%s)",
				(unsigned)ctx->euid, strerror(-host));
}

/* sandbox --------------------------------------------------------------------------------- */

/* The launcher's own set-up code (sandbox/mounts.c, sandbox/childnet.c), in a test sandbox. */
static void sandbox_setup(struct cf_check *c, void *arg)
{
	struct cf_child_net net = {.tun_fd = -1, .listen4 = -1, .listen6 = -1, .capture = -1};
	struct cf_plan plan;
	enum cf_sandbox_step step = CF_STEP_UNKNOWN; /* the message names the step already */
	char err[400] = "";
	int r;

	(void)arg;
	r = cf_mounts_setup("nameserver " CF_PLAN_GATEWAY4 "\n", NULL, NULL, getuid(), &step, err,
			    sizeof(err));
	if (r == 0) {
		cf_plan_default(&plan);
		r = cf_child_net_setup(&plan, NULL, getgid(), false, &net, &step, err, sizeof(err));
	}
	if (r == 0)
		r = cf_mounts_harden(err, sizeof(err));
	if (r < 0) {
		cf_check_set_err(c, CF_CHECK_FAIL, r, "%s", *err ? err : strerror(-r));
		cf_doctor_explain_denial(c, -r);
		if (!*c->hint)
			cf_check_hint(c, "a real run stops at this step; if every other check "
					 "passes, report it with `childflow --doctor "
					 "--doctor-format json`");
		return;
	}
	close(net.tun_fd);
	close(net.listen4);
	close(net.listen6);
	if (net.capture >= 0)
		close(net.capture);
	cf_check_set(c, CF_CHECK_OK,
		     "the sandbox's own set-up (mounts, read-only /proc/sys and /sys, %s, "
		     "addresses, routes, "
		     "policy rules, sysctls, listeners, nft table) worked in a test sandbox",
		     CF_PLAN_TUN_NAME);
}

static void check_sandbox(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	(void)ctx;
	cf_doctor_in_sandbox(sandbox_setup, NULL, c, NULL);
}

/* tcp_switch ------------------------------------------------------------------------------ */

/* In a forked child: the filter stays loaded in the process that tried it. */
static void probe_switch(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	bool sync_wake_up;
	int landlock;
	int r = cf_connfilter_probe(&sync_wake_up, &landlock);

	(void)ctx;
	if (r == 0 && landlock < 0) {
		cf_check_set_err(
		    c, CF_CHECK_WARN, -landlock,
		    "Landlock cannot refuse the tree's own TCP connects (%s): without "
		    "that, host sockets in the tree are not safe, so every TCP connection "
		    "takes the relay (slower, otherwise the same)",
		    strerror(-landlock));
		cf_check_hint(c, "a kernel with Landlock's network rights (Linux 6.7 or later, "
				 "landlock in the lsm= list)");
		return;
	}
	if (r == 0) {
		cf_check_set(
		    c, CF_CHECK_OK,
		    "a seccomp filter with a user-notification listener and Landlock's TCP "
		    "connect control load: the tree's TCP connects can get switched host "
		    "sockets (--tcp-path auto)%s",
		    sync_wake_up ? ", with synchronous wake-ups"
				 : "; no synchronous wake-ups (Linux 6.6+): each switched "
				   "connect costs more");
		return;
	}
	cf_check_set_err(c, CF_CHECK_WARN, -r,
			 "cannot load a seccomp filter with a user-notification listener: %s: "
			 "every TCP connection takes the relay (slower, otherwise the same)",
			 strerror(-r));
	if (r == -EBUSY)
		cf_check_hint(c, "childflow runs under a filter that has a listener already "
				 "(a container runtime or another childflow); nothing to fix");
	else
		cf_check_hint(c, "a kernel with CONFIG_SECCOMP_FILTER, 5.9 or later");
}

static void check_switch(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	static const struct cf_check_def def = {.key = "tcp_switch", .run = probe_switch};

	cf_check_run_forked(&def, ctx, c, 5000);
}

/* The preflight's form of idmap: only where AppArmor may strip the namespace's capabilities. */
static void preflight_idmap(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	static const struct cf_check_def def = {.key = "idmap", .run = check_idmap};
	long v;

	if (cf_doctor_read_sysctl_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
				       &v) < 0 ||
	    v == 0) {
		cf_check_set(c, CF_CHECK_OK, "not restricted by AppArmor");
		return;
	}
	cf_check_run_forked(&def, ctx, c, 5000);
}

#define NEEDS_SANDBOX (CF_CHECK_BIT(RL_USERNS) | CF_CHECK_BIT(RL_IDMAP))

static const struct cf_check_def rootless_checks[RL__COUNT] = {
    [RL_USERNS] = {"userns", "user namespaces", check_userns, 0, check_userns, true},
    [RL_IDMAP] = {"idmap", "uid/gid maps", check_idmap, CF_CHECK_BIT(RL_USERNS), preflight_idmap,
		  false},
    [RL_HELPERS] = {"uidmap_helpers", "newuidmap/newgidmap", check_helpers, CF_CHECK_BIT(RL_USERNS),
		    NULL, false},
    [RL_TUN] = {"tun", TUN_PATH, check_tun, 0, preflight_tun, false},
    [RL_TPROXY] = {"tproxy", "transparent sockets", check_tproxy, NEEDS_SANDBOX, NULL, false},
    [RL_NFTABLES] = {"nftables", "nftables (fib, tproxy)", check_nftables, NEEDS_SANDBOX, NULL,
		     false},
    [RL_PING] = {"ping", "unprivileged ICMP", check_ping, 0, NULL, false},
    [RL_CAPTURE] = {"capture", "packet capture", check_capture, NEEDS_SANDBOX, NULL, false},
    [RL_SANDBOX] = {"sandbox", "sandbox set-up", check_sandbox,
		    NEEDS_SANDBOX | CF_CHECK_BIT(RL_TUN) | CF_CHECK_BIT(RL_TPROXY) |
			CF_CHECK_BIT(RL_NFTABLES),
		    NULL, false},
    [RL_SWITCH] = {"tcp_switch", "switched sockets (seccomp listener)", check_switch, 0, NULL,
		   false},
};

const struct cf_check_table *cf_doctor_rootless_table(void)
{
	static const struct cf_check_table t = {rootless_checks, RL__COUNT};

	return &t;
}
