/* SPDX-License-Identifier: MIT */
#include "sandbox/treeuser.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A decimal id below (uid_t)-1, which the kernel reserves as "no id". */
static int parse_id(const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= 0xffffffffUL)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* @spec as a uid and its primary gid: a passwd name, or a UID (gid 65534 without an entry). */
static int lookup(const char *spec, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd *pw;
	unsigned id;

	if (parse_id(spec, &id) == 0) {
		pw = getpwuid((uid_t)id);
		*uid = (uid_t)id;
		*gid = pw ? pw->pw_gid : (id == 0 ? 0 : CF_TREE_NOBODY);
		return 0;
	}
	pw = getpwnam(spec);
	if (!pw) {
		snprintf(err, errlen,
			 "--user: unknown user '%s' (give a user name or a numeric UID)", spec);
		return -EINVAL;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* A root caller without --user: sudo's user, else nobody. */
static void pick_default(const char *sudo_uid, const char *sudo_gid, struct cf_tree_user *out)
{
	struct passwd *pw;
	unsigned uid, gid;

	if (parse_id(sudo_uid, &uid) < 0 || uid == 0) {
		out->uid = out->gid = CF_TREE_NOBODY;
		snprintf(out->note, sizeof(out->note),
			 "running the command as uid %u, gid %u (nobody: no SUDO_UID); use --user "
			 "to choose, --user root to keep root",
			 CF_TREE_NOBODY, CF_TREE_NOBODY);
		return;
	}
	out->uid = (uid_t)uid;
	if (parse_id(sudo_gid, &gid) == 0) {
		out->gid = (gid_t)gid;
	} else {
		pw = getpwuid((uid_t)uid);
		out->gid = pw ? pw->pw_gid : CF_TREE_NOBODY;
	}
	snprintf(out->note, sizeof(out->note),
		 "running the command as uid %u, gid %u (from SUDO_UID); use --user to choose, "
		 "--user root to keep root",
		 (unsigned)out->uid, (unsigned)out->gid);
}

int cf_tree_user_pick(const char *spec, bool host_root, uid_t caller_uid, gid_t caller_gid,
		      const char *sudo_uid, const char *sudo_gid, struct cf_tree_user *out,
		      char *err, size_t errlen)
{
	uid_t uid;
	gid_t gid;
	int r;

	memset(out, 0, sizeof(*out));
	out->uid = caller_uid;
	out->gid = caller_gid;
	if (host_root && !spec) {
		pick_default(sudo_uid, sudo_gid, out);
		return 0;
	}
	if (!spec)
		return 0;
	r = lookup(spec, &uid, &gid, err, errlen);
	if (r < 0)
		return r;
	if (!host_root) {
		if (uid == caller_uid)
			return 0; /* yourself: the caller's own ids, as without --user */
		snprintf(err, errlen,
			 "--user: only root can run the command as another user ('%s' is uid %u, "
			 "you are uid %u%s); drop --user or run childflow as root",
			 spec, (unsigned)uid, (unsigned)caller_uid,
			 caller_uid == 0 ? " in a user namespace" : "");
		return -EPERM;
	}
	out->uid = uid;
	out->gid = gid;
	out->root = uid == 0;
	if (out->root)
		snprintf(out->note, sizeof(out->note),
			 "warning: --user root: the command runs as root, the owner of root's "
			 "files; the policy cannot hold against it");
	return 0;
}

bool cf_is_host_root(void)
{
	unsigned inside, outside, count;
	char extra;
	char line[128];
	FILE *f;
	int n;

	if (getuid() != 0)
		return false;
	f = fopen("/proc/self/uid_map", "re");
	if (!f)
		return true;
	n = fgets(line, sizeof(line), f)
		? sscanf(line, "%u %u %u %c", &inside, &outside, &count, &extra)
		: 0;
	/* One more line means a map of several ranges: never the initial namespace's. */
	if (n == 3 && fgets(line, sizeof(line), f))
		n = 0;
	fclose(f);
	return n == 3 && inside == 0 && outside == 0 && count == 4294967295u;
}
