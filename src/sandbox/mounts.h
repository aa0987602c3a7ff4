/* SPDX-License-Identifier: MIT */
/*
 * The child's private mount namespace: a /proc of its own PID namespace
 * (hidepid=invisible), read-only overlays of /etc/resolv.conf and
 * /etc/hosts, and read-only /proc/sys, /sys and friends. Nothing here is
 * visible outside the sandbox, and the kernel drops it all with the
 * namespace.
 */
#ifndef CF_SANDBOX_MOUNTS_H
#define CF_SANDBOX_MOUNTS_H

#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"
#include "sandbox/ctl.h"

/*
 * cf_mounts_setup() - make every mount private, mount /proc (hidepid=invisible;
 * for a @tree_uid other than 0 with a spare copy that lets a nested user
 * namespace mount a proc of its own), and bind @resolv_text over
 * /etc/resolv.conf and @hosts_path (if not NULL) over /etc/hosts, both
 * read-only. With @hosts_extra, /etc/hosts is instead a copy of @hosts_path
 * (or of the host's /etc/hosts) with @hosts_extra appended. *@step follows
 * the steps as they start (it names the failed one). Return 0 or -errno with
 * a one-line description in @err.
 */
int cf_mounts_setup(const char *resolv_text, const char *hosts_path, const char *hosts_extra,
		    uid_t tree_uid, enum cf_sandbox_step *step, char *err, size_t errlen);

/*
 * cf_mounts_hide() - bind a read-only empty file over each of @outputs that
 * is a regular file (flow log, captures, profiles: the tree can neither read
 * nor change them), then a read-only empty file or directory over each of
 * @masks that exists (sockets the tree must not reach). Symlinks are
 * resolved. Return 0 or -errno with a one-line description in @err.
 */
int cf_mounts_hide(const struct cf_strv *outputs, const struct cf_strv *masks, char *err,
		   size_t errlen);

/*
 * cf_mounts_harden() - cover /proc/sys, /proc/sysrq-trigger, /proc/bus,
 * /proc/fs, /proc/irq and /sys (recursively) with read-only binds; call it
 * after the last write to /proc/sys. Return 0 or -errno with a one-line
 * description in @err.
 */
int cf_mounts_harden(char *err, size_t errlen);

#endif
