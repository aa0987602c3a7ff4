/* SPDX-License-Identifier: MIT */
/*
 * The rootful backend's checks (DESIGN.md, rootful data path): root with
 * the capabilities it needs, network namespaces, the forwarding sysctls,
 * the host's nft table (NAT masquerade, DNS redirect, TPROXY, CIDR sets),
 * transparent listeners, fwmark policy routing, veth pairs and AF_PACKET.
 * Everything that would change the host is tried in a throwaway network
 * namespace instead; on the host itself the checks only open things.
 */
#include "doctor/check.h"

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hoststate/records.h"
#include "sandbox/netlink.h"
#include "util/cleanup.h"
#include "util/fileio.h"

/* The per-interface switches a run turns on (docs/rootful.md); lo's stand for every interface's. */
#define FWD4 "/proc/sys/net/ipv4/conf/lo/forwarding"
#define FWD6 "/proc/sys/net/ipv6/conf/lo/force_forwarding"
#define FWD6_ALL "/proc/sys/net/ipv6/conf/all/forwarding"

enum {
	RF_ROOT,
	RF_NETNS,
	RF_FORWARDING,
	RF_NFTABLES,
	RF_TPROXY,
	RF_ROUTING,
	RF_VETH,
	RF_AF_PACKET,
	RF_LEFTOVERS,
	RF__COUNT,
};

/* root ------------------------------------------------------------------------------------ */

struct needed_cap {
	int cap;
	const char *name;
};

static const struct needed_cap needed_caps[] = {
    {CAP_NET_ADMIN, "CAP_NET_ADMIN"},
    {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
    {CAP_NET_RAW, "CAP_NET_RAW"},
};

static void check_root(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	if (ctx->euid != 0) {
		cf_check_set_err(c, CF_CHECK_FAIL, EPERM,
				 "running as uid %u (euid %u): the rootful "
				 "backend needs root",
				 (unsigned)ctx->uid, (unsigned)ctx->euid);
		cf_check_hint(c, "run it as root (sudo childflow --root ...), or leave out --root: "
				 "the default backend needs no privileges");
		return;
	}
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0) {
		int r = errno;

		cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot read this process's capabilities: %s",
				 strerror(r));
		return;
	}
	cf_check_set(c, CF_CHECK_OK,
		     "running as root with CAP_NET_ADMIN, CAP_SYS_ADMIN and "
		     "CAP_NET_RAW");
	for (size_t i = 0; i < CF_ARRAY_SIZE(needed_caps); i++) {
		unsigned cap = (unsigned)needed_caps[i].cap;

		if (data[cap / 32].effective & (1u << (cap % 32)))
			continue;
		cf_check_set_err(c, CF_CHECK_FAIL, EPERM,
				 "root, but without %s (a restricted "
				 "container?)",
				 needed_caps[i].name);
		cf_check_hint(c, "run childflow with full capabilities (a privileged container), "
				 "or leave out --root to use the rootless backend");
		return;
	}
}

/* netns ----------------------------------------------------------------------------------- */

static void check_netns(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	int r = cf_doctor_try_clone(CLONE_NEWNET);

	(void)ctx;
	if (r == 0) {
		cf_check_set(c, CF_CHECK_OK, "created a network namespace");
		return;
	}
	cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot create a network namespace: %s",
			 strerror(-r));
	if (r == -EINVAL)
		cf_check_hint(c, "use a kernel with network namespaces (CONFIG_NET_NS)");
	else
		cf_doctor_explain_denial(c, -r);
}

/* forwarding ------------------------------------------------------------------------------ */

/* In a throwaway namespace: the writes the backend makes on the host. */
static void forwarding_write(struct cf_check *c, void *arg)
{
	static const char *const files[] = {FWD4, FWD6};

	(void)arg;
	for (size_t i = 0; i < CF_ARRAY_SIZE(files); i++) {
		int r = cf_write_file(files[i], "1");

		if (r < 0) {
			cf_check_set_err(c, CF_CHECK_FAIL, r,
					 "cannot write %s in a test namespace: %s", files[i],
					 strerror(-r));
			return;
		}
	}
	cf_check_set(c, CF_CHECK_OK, "written");
}

/* On the host: can the files be opened for writing? (Nothing is written.) */
static int forwarding_open(struct cf_check *c)
{
	static const char *const files[] = {FWD4, FWD6};

	for (size_t i = 0; i < CF_ARRAY_SIZE(files); i++) {
		int fd = open(files[i], O_WRONLY | O_CLOEXEC), r;

		if (fd >= 0) {
			close(fd);
			continue;
		}
		r = errno;
		if (r == ENOENT && i == 1) {
			cf_check_set_err(c, CF_CHECK_WARN, r,
					 "%s does not exist: rootful runs have IPv4 only unless "
					 "net.ipv6.conf.all.forwarding is on (per-interface IPv6 "
					 "forwarding needs Linux 6.17; or IPv6 is disabled)",
					 files[i]);
			return -r;
		}
		cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot open %s for writing: %s%s", files[i],
				 strerror(r),
				 r == EROFS ? " (/proc/sys is read-only: a container?)" : "");
		cf_check_hint(c, "childflow --root must be able to turn forwarding on for the run: "
				 "run it as root on the host, or in a container with a writable "
				 "/proc/sys");
		return -r;
	}
	return 0;
}

static void check_forwarding(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	char v4[16] = "?", v6[16] = "?";

	(void)ctx;
	if (forwarding_open(c) < 0)
		return;
	if (cf_doctor_in_netns(forwarding_write, NULL, c) < 0 || c->status != CF_CHECK_OK)
		return;
	cf_doctor_read_sysctl("/proc/sys/net/ipv4/ip_forward", v4, sizeof(v4));
	cf_doctor_read_sysctl(FWD6_ALL, v6, sizeof(v6));
	cf_check_set(c, CF_CHECK_OK,
		     "the per-interface forwarding switches (IPv4 forwarding, IPv6 "
		     "force_forwarding) are writable (tried in a test namespace); a run turns "
		     "them on for its veth and uplinks only and restores them; the global "
		     "net.ipv4.ip_forward and net.ipv6.conf.all.forwarding (%s and %s now) are "
		     "never changed",
		     v4, v6);
}

static void preflight_forwarding(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	(void)ctx;
	if (forwarding_open(c) == 0)
		cf_check_set(c, CF_CHECK_OK, "writable");
}

/* nftables, tproxy ------------------------------------------------------------------------ */

/*
 * What the rootful table holds (DESIGN.md): CIDR sets for the forward
 * policy, the DNS redirect to the engine's forwarder, TPROXY of the tree's
 * TCP with a mark, and masquerade of the tree's private addresses.
 */
static const char host_ruleset[] =
    "table inet childflow_doctor {\n"
    "  set deny4 { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }\n"
    "  set deny6 { type ipv6_addr; flags interval; elements = { 2001:db8::/32 } }\n"
    "  chain dns {\n"
    "    type nat hook prerouting priority dstnat; policy accept;\n"
    "    iifname \"cfdoctor0\" udp dport 53 redirect to :5353\n"
    "    iifname \"cfdoctor0\" tcp dport 53 redirect to :5353\n"
    "  }\n"
    "  chain intercept {\n"
    "    type filter hook prerouting priority mangle; policy accept;\n"
    "    iifname \"cfdoctor0\" meta nfproto ipv4 meta l4proto tcp tproxy ip to :40001 "
    "meta mark set 1 accept\n"
    "    iifname \"cfdoctor0\" meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :40001 "
    "meta mark set 1 accept\n"
    "  }\n"
    "  chain forward {\n"
    "    type filter hook forward priority filter; policy accept;\n"
    "    iifname \"cfdoctor0\" ip daddr @deny4 reject\n"
    "    iifname \"cfdoctor0\" ip6 daddr @deny6 reject\n"
    "    iifname \"cfdoctor0\" meta mark set 2\n"
    "  }\n"
    "  chain postrouting {\n"
    "    type nat hook postrouting priority srcnat; policy accept;\n"
    "    ip saddr 10.213.0.0/30 masquerade\n"
    "    ip6 saddr fd63:6866:6c77:1::/64 masquerade\n"
    "  }\n"
    "}\n";

static void check_nftables(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	(void)ctx;
	if (cf_doctor_in_netns(cf_probe_nft, (void *)host_ruleset, c) < 0)
		return;
	if (c->status == CF_CHECK_OK)
		cf_check_set(c, CF_CHECK_OK,
			     "loaded a table like the rootful one (masquerade, DNS "
			     "redirect, tproxy, CIDR sets, marks) in a test namespace");
	else if (!*c->hint)
		cf_check_hint(c,
			      "the kernel needs nf_tables with NAT, masquerade, redirect, reject "
			      "and TPROXY: as root, modprobe nft_nat nft_masq nft_redir "
			      "nft_reject_inet nft_tproxy");
}

static void check_tproxy(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	(void)ctx;
	if (cf_doctor_in_netns(cf_probe_tproxy, NULL, c) == 0 && c->status == CF_CHECK_OK)
		cf_check_set(c, CF_CHECK_OK,
			     "IP_TRANSPARENT and IPV6_TRANSPARENT listeners open in "
			     "a test namespace");
}

/* policy routing -------------------------------------------------------------------------- */

static void routing_probe(struct cf_check *c, void *arg)
{
	static const int families[] = {AF_INET, AF_INET6};
	struct mnl_socket *nl = NULL;
	unsigned lo = if_nametoindex("lo");
	int r;

	(void)arg;
	r = cf_nl_open(&nl);
	if (r == 0)
		r = cf_nl_link_up(nl, lo, 0);
	for (size_t i = 0; r == 0 && i < CF_ARRAY_SIZE(families); i++) {
		r = cf_nl_rule_add(nl, families[i], 0x100, 200, 200);
		if (r == 0)
			r = cf_nl_route_add(nl, families[i], 200, RTN_UNICAST, NULL, 0, lo);
		if (r < 0)
			cf_check_set_err(c, CF_CHECK_FAIL, r,
					 "cannot add an %s fwmark rule and "
					 "route in a test namespace: %s",
					 families[i] == AF_INET ? "IPv4" : "IPv6", strerror(-r));
	}
	cf_nl_close(nl);
	if (r == 0)
		cf_check_set(c, CF_CHECK_OK,
			     "added fwmark rules and routes in their own table "
			     "(IPv4 and IPv6) in a test namespace");
	else if (!*c->detail)
		cf_check_set_err(c, CF_CHECK_FAIL, r,
				 "cannot use rtnetlink in a test namespace: %s", strerror(-r));
}

static void check_routing(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	(void)ctx;
	if (cf_doctor_in_netns(routing_probe, NULL, c) == 0 && c->status != CF_CHECK_OK)
		cf_check_hint(c, "the kernel needs policy routing (CONFIG_IP_MULTIPLE_TABLES, "
				 "CONFIG_IPV6_MULTIPLE_TABLES) for --iface");
}

/* veth ------------------------------------------------------------------------------------ */

/* RTM_NEWLINK for a veth pair @a <-> @b; one request, one ACK. */
static int veth_add(struct mnl_socket *nl, const char *a, const char *b)
{
	char buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	struct nlattr *info, *data, *peer;
	uint32_t seq = (uint32_t)time(NULL);
	ssize_t n;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	nlh->nlmsg_seq = seq;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, a);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, b);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	if (mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(nl), NULL, NULL) < 0)
		return -errno;
	return 0;
}

static void veth_probe(struct cf_check *c, void *arg)
{
	struct mnl_socket *nl = NULL;
	int r;

	(void)arg;
	r = cf_nl_open(&nl);
	if (r == 0)
		r = veth_add(nl, "cfdoctor0", "cfdoctor1");
	cf_nl_close(nl);
	if (r == 0) {
		cf_check_set(c, CF_CHECK_OK, "created a veth pair in a test namespace");
		return;
	}
	cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot create a veth pair in a test namespace: %s",
			 strerror(-r));
	if (r == -EOPNOTSUPP)
		cf_check_hint(c, "as root: modprobe veth (CONFIG_VETH)");
}

static void check_veth(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	(void)ctx;
	cf_doctor_in_netns(veth_probe, NULL, c);
}

/* af_packet ------------------------------------------------------------------------------- */

static void check_af_packet(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	int r = cf_probe_af_packet();

	(void)ctx;
	if (r == 0) {
		cf_check_set(c, CF_CHECK_OK,
			     "AF_PACKET sockets open on the host (--capture, all "
			     "views)");
		return;
	}
	cf_check_set_err(c, CF_CHECK_WARN, r,
			 "cannot open an AF_PACKET socket: %s: --capture "
			 "will not work",
			 strerror(-r));
	if (r == -EAFNOSUPPORT)
		cf_check_hint(c, "as root: modprobe af_packet (CONFIG_PACKET)");
	else
		cf_doctor_explain_denial(c, -r);
}

/* leftovers ------------------------------------------------------------------------------- */

/* Runs that died with their reaper leave switches on (and --iface's routes): say so. */
static void check_leftovers(struct cf_check *c, const struct cf_doctor_ctx *ctx)
{
	int n = cf_records_dead();

	(void)ctx;
	if (n < 0) {
		cf_check_set_err(c, CF_CHECK_WARN, -n, "cannot read the run records in %s: %s",
				 CF_STATE_DIR, strerror(-n));
		return;
	}
	if (n == 0) {
		cf_check_set(c, CF_CHECK_OK, "no rootful run left changes behind");
		return;
	}
	cf_check_set(c, CF_CHECK_WARN,
		     "%d rootful run%s died without undoing %s changes (forwarding switches, "
		     "--iface's rules and routes)",
		     n, n == 1 ? "" : "s", n == 1 ? "its" : "their");
	cf_check_hint(c, "run `childflow --cleanup` as root: it undoes them and names each one");
}

#define NEEDS_ROOT CF_CHECK_BIT(RF_ROOT)
#define NEEDS_NETNS (CF_CHECK_BIT(RF_ROOT) | CF_CHECK_BIT(RF_NETNS))

static const struct cf_check_def rootful_checks[RF__COUNT] = {
    [RF_ROOT] = {"root", "root privileges", check_root, 0, check_root, false},
    [RF_NETNS] = {"netns", "network namespaces", check_netns, NEEDS_ROOT, NULL, false},
    [RF_FORWARDING] = {"forwarding", "forwarding sysctls", check_forwarding, NEEDS_NETNS,
		       preflight_forwarding, false},
    [RF_NFTABLES] = {"nftables", "nftables (masquerade, tproxy)", check_nftables, NEEDS_NETNS, NULL,
		     false},
    [RF_TPROXY] = {"tproxy", "transparent sockets", check_tproxy, NEEDS_NETNS, NULL, false},
    [RF_ROUTING] = {"policy_routing", "policy routing", check_routing, NEEDS_NETNS, NULL, false},
    [RF_VETH] = {"veth", "veth pairs", check_veth, NEEDS_NETNS, NULL, false},
    [RF_AF_PACKET] = {"af_packet", "AF_PACKET capture", check_af_packet, NEEDS_ROOT, NULL, false},
    [RF_LEFTOVERS] = {"leftovers", "changes of runs that died", check_leftovers, NEEDS_ROOT, NULL,
		      false},
};

const struct cf_check_table *cf_doctor_rootful_table(void)
{
	static const struct cf_check_table t = {rootful_checks, RF__COUNT};

	return &t;
}
