/* SPDX-License-Identifier: MIT */
/*
 * Who the command tree runs as. A caller that is not root runs the tree as
 * itself, and so does "root" in a user namespace of its own (`unshare -Ur`,
 * a rootless container): that root is an ordinary user of the host, and its
 * namespace maps no other id the tree could become. The host's root is
 * different: its tree does not own the host's root files: it runs
 * as the user sudo names (SUDO_UID, SUDO_GID), else as nobody (65534:65534),
 * unless --user chooses; "--user root" keeps root, with a warning. Only the
 * primary group is kept: the tree has no supplementary groups.
 */
#ifndef CF_SANDBOX_TREEUSER_H
#define CF_SANDBOX_TREEUSER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The id a root caller's tree runs as when nothing names a user (nobody/nogroup). */
#define CF_TREE_NOBODY 65534u

struct cf_tree_user {
	uid_t uid;
	gid_t gid;
	bool root;	/* a root caller keeps root (--user root): warn */
	char note[160]; /* the line to print on stderr, or "" */
};

/*
 * cf_tree_user_pick() - the tree's user for a caller with @caller_uid and
 * @caller_gid, @host_root when it is the host's root (cf_is_host_root());
 * @spec is --user's value or NULL, @sudo_uid and @sudo_gid the environment's
 * SUDO_UID and SUDO_GID or NULL. Return 0, or -EINVAL (an unknown user) or
 * -EPERM (a caller that is not root naming another user) with a one-line
 * message in @err.
 */
int cf_tree_user_pick(const char *spec, bool host_root, uid_t caller_uid, gid_t caller_gid,
		      const char *sudo_uid, const char *sudo_gid, struct cf_tree_user *out,
		      char *err, size_t errlen);

/*
 * cf_is_host_root() - whether this process is uid 0 of the initial user
 * namespace (its uid_map is the identity "0 0 4294967295"); an unreadable
 * map counts as the host's, so that the stricter rules apply.
 */
bool cf_is_host_root(void);

#endif
