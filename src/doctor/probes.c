/* SPDX-License-Identifier: MIT */
/*
 * Operations both backends' checks try for real: the transparent listeners
 * that TPROXY delivers connections to, an AF_PACKET socket for capture, and
 * loading an nft ruleset with libnftables (sandbox/nftrules.h).
 */
#include "doctor/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/childnet.h"
#include "sandbox/nftrules.h"
#include "util/cleanup.h"

/* The sandbox's own TPROXY listener, opened and closed again. */
static int open_transparent(int family)
{
	uint16_t port;
	int fd = cf_tproxy_listener(family, 16, &port);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

void cf_probe_tproxy(struct cf_check *c, void *arg)
{
	static const int families[] = {AF_INET, AF_INET6};

	(void)arg;
	for (size_t i = 0; i < CF_ARRAY_SIZE(families); i++) {
		const char *opt = families[i] == AF_INET ? "IP_TRANSPARENT" : "IPV6_TRANSPARENT";

		int r = open_transparent(families[i]);

		if (r == -EAFNOSUPPORT) {
			cf_check_set_err(c, CF_CHECK_FAIL, r,
					 "cannot open an IPv6 socket: IPv6 is "
					 "disabled on this host");
			cf_check_hint(c, "childflow needs IPv6 in its namespaces: remove "
					 "ipv6.disable=1 from the kernel command line");
			return;
		}
		if (r == -ENOPROTOOPT) {
			cf_check_set_err(c, CF_CHECK_FAIL, r, "the kernel does not know %s", opt);
			cf_check_hint(c,
				      "use a kernel with transparent proxy support "
				      "(CONFIG_NETFILTER_XT_TARGET_TPROXY or CONFIG_NFT_TPROXY)");
			return;
		}
		if (r < 0) {
			cf_check_set_err(c, CF_CHECK_FAIL, r, "cannot open a %s listener: %s", opt,
					 strerror(-r));
			cf_doctor_explain_denial(c, -r);
			return;
		}
	}
	cf_check_set(c, CF_CHECK_OK, "IP_TRANSPARENT and IPV6_TRANSPARENT listeners open");
}

int cf_probe_af_packet(void)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

void cf_probe_nft(struct cf_check *c, void *arg)
{
	char err[256] = "";
	int r = cf_nft_load(arg, err, sizeof(err));

	if (r == 0) {
		cf_check_set(c, CF_CHECK_OK, "loaded");
		return;
	}
	cf_check_set_err(c, CF_CHECK_FAIL, r, "libnftables refused the table: %s",
			 *err ? err : strerror(-r));
	if (strstr(err, "Operation not permitted"))
		cf_doctor_explain_denial(c, EPERM);
}
