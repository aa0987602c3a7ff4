/* SPDX-License-Identifier: MIT */
#include "sandbox/plan.h"

#include <arpa/inet.h>
#include <string.h>

static void set_ip(struct cf_ip *ip, int family, const char *s)
{
	memset(ip, 0, sizeof(*ip));
	ip->family = (uint8_t)family;
	/* Constant literals above: inet_pton cannot fail on them. */
	(void)inet_pton(family, s, ip->b);
}

void cf_plan_default(struct cf_plan *plan)
{
	set_ip(&plan->child4, AF_INET, CF_PLAN_CHILD4);
	set_ip(&plan->gateway4, AF_INET, CF_PLAN_GATEWAY4);
	set_ip(&plan->child6, AF_INET6, CF_PLAN_CHILD6);
	set_ip(&plan->gateway6, AF_INET6, CF_PLAN_GATEWAY6);
	set_ip(&plan->host4, AF_INET, CF_PLAN_HOST4);
	set_ip(&plan->host6, AF_INET6, CF_PLAN_HOST6);
}
