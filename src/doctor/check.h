/* SPDX-License-Identifier: MIT */
/*
 * The doctor's machinery, shared by the rootless and rootful check tables:
 * one check's outcome (struct cf_check), the runner that executes a check in
 * a forked child with a timeout, the throwaway sandbox that reproduces the
 * launcher's namespaces and id maps, and small helpers for sysctls and the
 * usual causes of a refusal inside a user namespace.
 *
 * Every check tries the real operation, in a process of its own: whatever
 * it creates (namespaces, nft tables, interfaces) dies with that process,
 * and a crash or a hang costs one "fail" line, never the caller.
 */
#ifndef CF_DOCTOR_CHECK_H
#define CF_DOCTOR_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sched.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "sandbox/launch.h"

enum cf_check_status {
	CF_CHECK_OK,
	CF_CHECK_WARN,
	CF_CHECK_FAIL,
	CF_CHECK_SKIP,
};

/* Facts a check learns that later checks use (struct cf_check.facts). */
#define CF_FACT_DIRECT_MAPS 0x1u /* writing /proc/PID/{uid,gid}_map directly works */

/* One check's outcome: a plain struct, so a forked check sends it back through a pipe. */
struct cf_check {
	enum cf_check_status status;
	int err;	/* the errno behind a failure, 0 if none */
	unsigned facts; /* CF_FACT_* */
	char detail[512];
	char hint[384];
};

/* What the checks may look at: who runs them and what earlier checks found. */
struct cf_doctor_ctx {
	enum cf_backend backend;
	uid_t uid, euid;
	gid_t gid;
	const struct cf_check *results; /* the table's results so far, by index */
};

typedef void (*cf_check_fn)(struct cf_check *c, const struct cf_doctor_ctx *ctx);

struct cf_check_def {
	const char *key;   /* stable, documented in docs/doctor-schema.md */
	const char *label; /* what is checked, for people */
	cf_check_fn run;
	uint32_t needs; /* bit i: not tried when check i of the table failed or was skipped */
	/*
	 * The cheap form of the check that cf_doctor_preflight() runs in the
	 * caller's process (it must be safe there: no state left behind), or
	 * NULL when the preflight leaves the check out.
	 */
	cf_check_fn preflight;
	/*
	 * The run's own step is the same test (userns: the launcher's clone3()):
	 * the preflight leaves it out, and cf_doctor_explain() runs it when that
	 * step fails, so that a working host does not pay for it twice.
	 */
	bool on_failure;
};

#define CF_CHECK_BIT(i) (UINT32_C(1) << (i))

/* A backend's checks, in the order they run and print. */
struct cf_check_table {
	const struct cf_check_def *defs;
	size_t n;
};

/* The rootless (user namespace) checks. */
const struct cf_check_table *cf_doctor_rootless_table(void);

/* The rootful (root on the host) checks. */
const struct cf_check_table *cf_doctor_rootful_table(void);

/* Set @c's status and detail (printf-style) and clear its errno; an earlier detail is replaced. */
void cf_check_set(struct cf_check *c, enum cf_check_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Set @c's status, errno and detail; "fail" and "warn" carry the errno in c->err. */
void cf_check_set_err(struct cf_check *c, enum cf_check_status st, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Set @c's hint (printf-style); an earlier hint is replaced. */
void cf_check_hint(struct cf_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append to @c's detail (printf-style), truncating at its size. */
void cf_check_append(struct cf_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Run @def in a forked child and put its outcome in @c; a check that does
 * not finish within @timeout_ms is killed and fails. Never fails itself.
 */
void cf_check_run_forked(const struct cf_check_def *def, const struct cf_doctor_ctx *ctx,
			 struct cf_check *c, int timeout_ms);

/* The namespaces the launcher clone3()s its helper into (sandbox/launch.c). */
#define CF_DOCTOR_SANDBOX_NS CF_SANDBOX_NAMESPACES

/* clone3() a child into @flags namespaces that exits at once; return 0 or -errno. */
int cf_doctor_try_clone(uint64_t flags);

/* How the launcher's id-map procedure went (cf_idmap_write). */
struct cf_idmap_result {
	int direct_err;		 /* 0: the direct writes worked; else the errno */
	const char *direct_file; /* the /proc/PID file that refused, or NULL */
	bool via_helpers;	 /* newuidmap/newgidmap did (part of) the job */
	int helper_err;		 /* 0, or the errno of the helper path */
	char helper_msg[256];	 /* why the helper path failed, one line */
};

#define CF_IDMAP_DIRECT 0x1u
#define CF_IDMAP_HELPERS 0x2u

/*
 * Map @uid and @gid to themselves in @pid's user namespace the way the
 * launcher does: a direct write of uid_map, setgroups "deny" and gid_map,
 * each falling back to newuidmap/newgidmap found in PATH. @how limits the
 * methods tried (CF_IDMAP_*). Return 0 or -errno; @res says what happened.
 */
int cf_idmap_write(pid_t pid, uid_t uid, gid_t gid, unsigned how, struct cf_idmap_result *res);

/* Find @name in $PATH the way posix_spawnp() would; 0 and the path in @buf, or -ENOENT. */
int cf_doctor_which(const char *name, char *buf, size_t len);

/* The body of a check that runs inside the throwaway sandbox. */
typedef void (*cf_sandbox_body)(struct cf_check *c, void *arg);

/*
 * Run @body in a child clone3()d into @ns_flags namespaces (CLONE_NEWUSER
 * among them) whose uid and gid are mapped to themselves by @how
 * (CF_IDMAP_*). Return 0 when @body ran (its outcome is in @c), or -errno
 * when the child could not be made or mapped (@c says why, status fail).
 * @maps, if not NULL, receives how the ids were mapped.
 */
int cf_doctor_in_userns(uint64_t ns_flags, unsigned how, cf_sandbox_body body, void *arg,
			struct cf_check *c, struct cf_idmap_result *maps);

/*
 * Run @body inside a throwaway copy of the rootless sandbox: the launcher's
 * namespaces, ids mapped the way the launcher maps them. As cf_doctor_in_userns().
 */
int cf_doctor_in_sandbox(cf_sandbox_body body, void *arg, struct cf_check *c,
			 struct cf_idmap_result *maps);

/* Run @body in a child in a new network namespace (rootful checks). Return as above. */
int cf_doctor_in_netns(cf_sandbox_body body, void *arg, struct cf_check *c);

/* Sandbox body: open IP_TRANSPARENT and IPV6_TRANSPARENT listeners, as the TPROXY targets. */
void cf_probe_tproxy(struct cf_check *c, void *arg);

/* Open an AF_PACKET socket that receives nothing (protocol 0); return 0 or -errno. */
int cf_probe_af_packet(void);

/* Sandbox body: load the nft ruleset @arg (a string) with libnftables. */
void cf_probe_nft(struct cf_check *c, void *arg);

/* Read a sysctl (or any small file) into @buf without the trailing newline. Return 0 or -errno. */
int cf_doctor_read_sysctl(const char *path, char *buf, size_t len);

/* Read a sysctl as an integer. Return 0 or -errno (-EINVAL when it is not a number). */
int cf_doctor_read_sysctl_long(const char *path, long *out);

/*
 * After an EPERM/EACCES inside a fresh user namespace, append the likely
 * cause to @c's detail and set a matching hint (AppArmor's
 * kernel.apparmor_restrict_unprivileged_userns, a seccomp filter, or an LSM).
 */
void cf_doctor_explain_denial(struct cf_check *c, int err);

/*
 * Explain why creating the namespaces in @flags failed with @err (a sysctl
 * that disables or limits them, AppArmor, seccomp, an old kernel): fill @c
 * with status fail, a detail and a hint.
 */
void cf_doctor_explain_userns_error(struct cf_check *c, int err, uint64_t flags);

#endif
