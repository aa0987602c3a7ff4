/* SPDX-License-Identifier: MIT */
/*
 * Why a user namespace (or an operation inside one) was refused. The kernel
 * only says EPERM or ENOSPC; the cause is one of a handful of host settings,
 * each with its own remedy, so this file reads them and names the one that
 * applies:
 *
 *   ENOSPC  user.max_<type>_namespaces (per user namespace; an ancestor's
 *           limit or the nesting depth of 32 can also be what ran out)
 *   EPERM   kernel.unprivileged_userns_clone = 0 (Debian and older Ubuntu
 *           kernels), kernel.apparmor_restrict_unprivileged_userns = 1
 *           (Ubuntu 23.10+: creation works, capabilities inside are denied),
 *           a seccomp filter (containers), another LSM
 *   ENOSYS  no clone3() (Linux < 5.3, or hidden by seccomp)
 *   EINVAL  a namespace type the kernel was built without
 */
#include "doctor/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"

#define USERNS_CLONE_SYSCTL "/proc/sys/kernel/unprivileged_userns_clone"
#define APPARMOR_SYSCTL "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"

#define APPARMOR_HINT                                                                              \
	"give childflow an AppArmor profile that allows `userns,` (docs/doctor-schema.md shows "   \
	"one), or as root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
#define SECCOMP_HINT                                                                               \
	"run childflow outside the container, or allow clone3/unshare with CLONE_NEWUSER in the "  \
	"container's seccomp profile"
#define LSM_HINT                                                                                   \
	"look for a denial in `dmesg` or the audit log (AppArmor, SELinux, a container's "         \
	"seccomp profile)"

struct ns_type {
	uint64_t flag;
	const char *name;  /* as in "a network namespace" */
	const char *limit; /* the user.max_*_namespaces sysctl */
};

static const struct ns_type ns_types[] = {
    {CLONE_NEWUSER, "user", "max_user_namespaces"}, {CLONE_NEWNET, "network", "max_net_namespaces"},
    {CLONE_NEWNS, "mount", "max_mnt_namespaces"},   {CLONE_NEWPID, "PID", "max_pid_namespaces"},
    {CLONE_NEWUTS, "UTS", "max_uts_namespaces"},    {CLONE_NEWIPC, "IPC", "max_ipc_namespaces"},
};

static bool sysctl_is(const char *path, long value)
{
	long v;

	return cf_doctor_read_sysctl_long(path, &v) == 0 && v == value;
}

/* The "Seccomp:" mode of this process (0 none, 1 strict, 2 filter), or -1. */
static int seccomp_mode(void)
{
	char *line = NULL;
	size_t cap = 0;
	int mode = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "Seccomp:", strlen("Seccomp:")) == 0) {
			mode = (int)strtol(line + strlen("Seccomp:"), NULL, 10);
			break;
		}
	}
	free(line);
	fclose(f);
	return mode;
}

/* The first namespace type of @flags that cannot be created along with a user namespace. */
static const struct ns_type *failing_type(uint64_t flags)
{
	if (cf_doctor_try_clone(CLONE_NEWUSER) < 0)
		return &ns_types[0];
	for (size_t i = 1; i < CF_ARRAY_SIZE(ns_types); i++) {
		if ((flags & ns_types[i].flag) &&
		    cf_doctor_try_clone(CLONE_NEWUSER | ns_types[i].flag) < 0)
			return &ns_types[i];
	}
	return NULL;
}

static void explain_limit(struct cf_check *c, const struct ns_type *t)
{
	char path[96];
	long v;

	snprintf(path, sizeof(path), "/proc/sys/user/%s", t->limit);
	if (cf_doctor_read_sysctl_long(path, &v) == 0 && v == 0) {
		cf_check_append(c, ": user.%s is 0", t->limit);
		cf_check_hint(c,
			      "as root: sysctl -w user.%s=15000 (and put it in /etc/sysctl.d/ "
			      "to keep it)",
			      t->limit);
		return;
	}
	if (cf_doctor_read_sysctl_long(path, &v) == 0)
		cf_check_append(c,
				": the limit is used up (user.%s = %ld here; a parent user "
				"namespace may set a lower one, and user namespaces nest at most "
				"32 deep)",
				t->limit, v);
	else
		cf_check_append(c, ": a namespace limit is used up (user.%s)", t->limit);
	cf_check_hint(c,
		      "as root: raise user.%s (sysctl -w user.%s=15000), or end the "
		      "processes that hold namespaces",
		      t->limit, t->limit);
}

static void explain_eperm(struct cf_check *c, const struct ns_type *t)
{
	if (t == &ns_types[0] && geteuid() != 0 && sysctl_is(USERNS_CLONE_SYSCTL, 0)) {
		cf_check_append(c, ": unprivileged user namespaces are disabled "
				   "(kernel.unprivileged_userns_clone = 0)");
		cf_check_hint(c, "as root: sysctl -w kernel.unprivileged_userns_clone=1 (and put "
				 "it in /etc/sysctl.d/ to keep it)");
	} else if (sysctl_is(APPARMOR_SYSCTL, 1)) {
		cf_check_append(c, ": AppArmor restricts unprivileged user namespaces "
				   "(kernel.apparmor_restrict_unprivileged_userns = 1)");
		cf_check_hint(c, "%s", APPARMOR_HINT);
	} else if (seccomp_mode() == 2) {
		cf_check_append(c, ": a seccomp filter on this process refuses it (inside a "
				   "container?)");
		cf_check_hint(c, "%s", SECCOMP_HINT);
	} else {
		cf_check_append(c, ": the kernel or a security module refuses it");
		cf_check_hint(c, "%s", LSM_HINT);
	}
}

void cf_doctor_explain_userns_error(struct cf_check *c, int err, uint64_t flags)
{
	const struct ns_type *t;

	if (err == ENOSYS) {
		cf_check_set_err(c, CF_CHECK_FAIL, err,
				 "cannot create namespaces: clone3() is not "
				 "available (Linux older than 5.3, or hidden by a seccomp filter)");
		cf_check_hint(c, "childflow needs Linux 5.3 or later; in a container, allow clone3 "
				 "in its seccomp profile");
		return;
	}
	t = failing_type(flags);
	if (!t)
		t = &ns_types[0];
	if (t == &ns_types[0])
		cf_check_set_err(c, CF_CHECK_FAIL, err, "cannot create a user namespace: %s",
				 strerror(err));
	else
		cf_check_set_err(c, CF_CHECK_FAIL, err,
				 "cannot create a %s namespace inside a new "
				 "user namespace: %s",
				 t->name, strerror(err));
	switch (err) {
	case ENOSPC:
	case EUSERS:
		explain_limit(c, t);
		break;
	case EPERM:
	case EACCES:
		explain_eperm(c, t);
		break;
	case EINVAL:
		cf_check_append(c, ": the kernel was built without %s namespaces", t->name);
		cf_check_hint(c, "use a kernel with user, network, mount and PID namespaces "
				 "(CONFIG_USER_NS, CONFIG_NET_NS, ...)");
		break;
	default:
		cf_check_hint(c, "%s", LSM_HINT);
		break;
	}
}

void cf_doctor_explain_denial(struct cf_check *c, int err)
{
	if (err != EPERM && err != EACCES)
		return;
	if (sysctl_is(APPARMOR_SYSCTL, 1)) {
		cf_check_append(c, " (AppArmor denies capabilities in new user namespaces: "
				   "kernel.apparmor_restrict_unprivileged_userns = 1)");
		cf_check_hint(c, "%s", APPARMOR_HINT);
	} else if (seccomp_mode() == 2) {
		cf_check_append(c, " (a seccomp filter on this process may refuse it)");
		cf_check_hint(c, "%s", SECCOMP_HINT);
	} else {
		cf_check_hint(c, "%s", LSM_HINT);
	}
}
