/* SPDX-License-Identifier: MIT */
/*
 * Where the files the sandbox generates live: tmpfs mounts that are never
 * attached to any directory (fsopen/fsmount). A file (the resolv.conf, the
 * /etc/hosts copy of --allow-host-port, the empty file and directory that
 * cover outputs and masked sockets) is written through the mount's fd, a
 * detached bind of just that file is made with open_tree(), made read-only,
 * and moved over its target. So nothing is shadowed, even briefly (a
 * resolv.conf symlinked into /tmp stays reachable), and nothing is ever
 * written to the host's file systems.
 *
 * The sandbox's /proc is mounted with hidepid=invisible: the tree sees only
 * the processes it may ptrace, never pid 1 (the helper, which holds
 * capabilities) nor, for a root caller, anything that stays root. Once the
 * helper has set up the child network (which writes /proc/sys/net), the
 * kernel's knobs that file permissions alone guard are covered with
 * read-only binds: /proc/sys (core_pattern, hostname, ...), the
 * /proc/sysrq-trigger file, /proc/bus, /proc/fs, /proc/irq (the list
 * container runtimes use) and every mount under /sys. A tree that is not
 * root could not write most of them anyway; a tree that is root (--user
 * root) could, and a tree without capabilities cannot lift a mount flag. The
 * kernel also refuses a fresh proc or sysfs mount in a nested namespace
 * while these binds cover parts of the visible ones; for a tree that is
 * not uid 0 a spare, unreachable copy of the proc lifts that refusal for
 * proc (mount_proc_with_spare()), so that a nested childflow can run.
 */
#include "sandbox/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"

#define STAGED_NAME "resolv.conf"
#define COVER_FILE "empty-file"
#define COVER_DIR "empty-dir"
#define SPARE_PROC "proc"

static int write_at(int dirfd, const char *name, const char *text)
{
	cleanup_fd int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	size_t len = strlen(text);

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		return -errno;
	return 0;
}

/* Resolve @target through symlinks; the file must exist to be covered. */
static int real_target(const char *target, char *real, char *err, size_t errlen)
{
	if (realpath(target, real))
		return 0;
	snprintf(err, errlen, "cannot override %s: %s (a dangling symlink?)", target,
		 strerror(errno));
	return -errno;
}

/* Move the detached, read-only mount @tree over @target. */
static int attach_ro(int tree, const char *target, const char *what, char *err, size_t errlen)
{
	struct mount_attr attr = {
	    .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
	};
	char real[PATH_MAX];
	int r = real_target(target, real, err, errlen);

	if (r < 0)
		return r;
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0 ||
	    move_mount(tree, "", AT_FDCWD, real, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot place %s over %s: %s", what, real, strerror(-r));
	}
	return r;
}

/*
 * A detached tmpfs of at most @size (a limit, not an allocation) for the
 * sandbox's @what; its mount fd in *mnt.
 */
static int detached_tmpfs(const char *size, const char *what, int *mnt, char *err, size_t errlen)
{
	cleanup_fd int fs = -1;
	int r;

	fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create a tmpfs for the sandbox's %s: %s", what,
			 strerror(-r));
		return r;
	}
	*mnt =
	    fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (*mnt < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot mount a tmpfs for the sandbox's %s: %s", what,
			 strerror(-r));
		return r;
	}
	return 0;
}

/* Write @text as @name on the staging tmpfs @mnt and bind it read-only over @target. */
static int place_text(int mnt, const char *name, const char *text, const char *target,
		      const char *what, char *err, size_t errlen)
{
	cleanup_fd int tree = -1;
	int r = write_at(mnt, name, text);

	if (r == 0) {
		tree = open_tree(mnt, name, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (tree < 0)
			r = -errno;
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot write %s: %s", what, strerror(-r));
		return r;
	}
	return attach_ro(tree, target, what, err, errlen);
}

/* @path's whole text followed by @extra, in a new string. */
static char *text_with(const char *path, const char *extra, int *r)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");
	char *out = NULL;

	*r = 0;
	if (f) {
		FILE *m = open_memstream(&text, &len);
		char buf[4096];
		size_t n;

		while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, m);
		if (!m || ferror(f) || fclose(m) != 0)
			*r = -EIO;
		fclose(f);
	} else if (errno != ENOENT) {
		*r = -errno;
	}
	if (*r == 0 && asprintf(&out, "%s%s%s", text ? text : "",
				len && text[len - 1] != '\n' ? "\n" : "", extra) < 0) {
		out = NULL;
		*r = -ENOMEM;
	}
	return out;
}

/* The tree's /etc/hosts: the file it would see (--hosts-file or the host's), plus @extra. */
static int extend_hosts(int mnt, const char *hosts_path, const char *extra, char *err,
			size_t errlen)
{
	const char *src = hosts_path ? hosts_path : "/etc/hosts";
	cleanup_free char *text = NULL;
	int r;

	text = text_with(src, extra, &r);
	if (!text) {
		snprintf(err, errlen, "cannot read %s for the sandbox's /etc/hosts: %s", src,
			 strerror(-r));
		return r;
	}
	return place_text(mnt, "hosts", text, "/etc/hosts", "the sandbox's /etc/hosts", err,
			  errlen);
}

static int override_hosts(const char *hosts_path, char *err, size_t errlen)
{
	cleanup_fd int tree = open_tree(AT_FDCWD, hosts_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	int r;

	if (tree < 0) {
		r = -errno;
		snprintf(err, errlen, "--hosts-file: cannot use '%s': %s", hosts_path,
			 strerror(-r));
		return r;
	}
	return attach_ro(tree, "/etc/hosts", hosts_path, err, errlen);
}

/* hidepid=invisible is Linux 5.8's name of hidepid=2; the per-mount options came with it. */
static int mount_proc_at(const char *path)
{
	const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (mount("proc", path, "proc", flags, "hidepid=invisible") == 0)
		return 0;
	if (errno == EINVAL && mount("proc", path, "proc", flags, "hidepid=2") == 0)
		return 0;
	return -errno;
}

/*
 * The PID namespace's proc twice: a spare copy nothing covers, on a small
 * read-only tmpfs over the host's /proc, and over that tmpfs the tree's
 * /proc, a clone of the spare (cf_mounts_harden() covers parts of it
 * later). The spare is out of every path's reach (its tmpfs is covered), but
 * the kernel counts it when a nested user namespace mounts a fresh proc (a
 * nested childflow, unshare --mount-proc): that needs a proc of the mount
 * namespace that is "fully visible", no mount on it but over empty
 * directories, and the tree's /proc is not once hardened.
 */
static int mount_proc_with_spare(void)
{
	char scratch[256]; /* the caller's message names the step */
	cleanup_fd int tmp = -1, tree = -1;
	int r = detached_tmpfs("4k", "spare proc", &tmp, scratch, sizeof(scratch));

	if (r < 0)
		return r;
	if (mkdirat(tmp, SPARE_PROC, 0555) < 0)
		return -errno;
	r = attach_ro(tmp, "/proc", "a tmpfs", scratch, sizeof(scratch));
	if (r == 0)
		r = mount_proc_at("/proc/" SPARE_PROC);
	if (r < 0)
		return r;
	tree = open_tree(AT_FDCWD, "/proc/" SPARE_PROC, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0 || move_mount(tree, "", AT_FDCWD, "/proc", MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

/*
 * The tree's /proc. Only a tree that is not root gets the spare: a fresh
 * proc in a user namespace nested in the sandbox opens the kernel's own
 * knobs (/proc/sys/kernel/core_pattern, /proc/sysrq-trigger) to what the
 * files' owner and modes allow, which is nothing for any uid but the host's
 * root (the sandbox's network sysctls belong to the sandbox's root: the
 * host's root, or an unmapped uid); for a tree of uid 0 the refusal stays.
 */
static int mount_proc(bool spare)
{
	return spare ? mount_proc_with_spare() : mount_proc_at("/proc");
}

int cf_mounts_setup(const char *resolv_text, const char *hosts_path, const char *hosts_extra,
		    uid_t tree_uid, enum cf_sandbox_step *step, char *err, size_t errlen)
{
	cleanup_fd int mnt = -1;
	int r;

	*step = CF_STEP_MOUNT_PROPAGATION;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot make the sandbox's mounts private: %s", strerror(-r));
		return r;
	}
	*step = CF_STEP_PROC;
	r = mount_proc(tree_uid != 0);
	if (r < 0) {
		snprintf(err, errlen, "cannot mount /proc for the sandbox's PID namespace: %s",
			 strerror(-r));
		return r;
	}
	/* A copied /etc/hosts may be large (blocklists): the limit is generous. */
	*step = CF_STEP_RESOLV_CONF;
	r = detached_tmpfs(hosts_extra ? "64m" : "64k", "resolv.conf and hosts", &mnt, err, errlen);
	if (r == 0)
		r = place_text(mnt, STAGED_NAME, resolv_text, "/etc/resolv.conf",
			       "the sandbox's resolv.conf", err, errlen);
	if (r == 0 && (hosts_extra || hosts_path))
		*step = CF_STEP_HOSTS;
	if (r == 0 && hosts_extra)
		r = extend_hosts(mnt, hosts_path, hosts_extra, err, errlen);
	else if (r == 0 && hosts_path)
		r = override_hosts(hosts_path, err, errlen);
	return r;
}

/*
 * Covers: a detached tmpfs (like resolv.conf's) holding one empty file and
 * one empty directory. Every covered path gets its own read-only clone of
 * one of them, so the tree reads nothing, writes nothing and, since a
 * regular file is no socket, connect() there fails.
 */
static int make_covers(int *mnt_out, char *err, size_t errlen)
{
	cleanup_fd int mnt = -1, fd = -1;
	int r = detached_tmpfs("4k", "masks", &mnt, err, errlen);

	if (r < 0)
		return r;
	fd = openat(mnt, COVER_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0 || mkdirat(mnt, COVER_DIR, 0555) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create a tmpfs for the sandbox's masks: %s",
			 strerror(-r));
		return r;
	}
	*mnt_out = take_fd(&mnt);
	return 0;
}

/* Place a read-only empty file or directory (as @path is) over the existing @path. */
static int cover(int covers, const char *path, bool is_dir, char *err, size_t errlen)
{
	cleanup_fd int tree =
	    open_tree(covers, is_dir ? COVER_DIR : COVER_FILE, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	int r = -errno;

	if (tree < 0) {
		snprintf(err, errlen, "cannot mask %s: %s", path, strerror(-r));
		return r;
	}
	return attach_ro(tree, path, is_dir ? "an empty directory" : "an empty file", err, errlen);
}

int cf_mounts_hide(const struct cf_strv *outputs, const struct cf_strv *masks, char *err,
		   size_t errlen)
{
	cleanup_fd int covers = -1;
	struct stat st;
	int r;

	if (outputs->n == 0 && masks->n == 0)
		return 0;
	r = make_covers(&covers, err, errlen);
	/* Outputs first: a masked directory above one must not make it vanish. */
	for (size_t i = 0; r == 0 && i < outputs->n; i++) {
		/* a terminal, pipe or /dev/null given as output is not ours to hide */
		if (stat(outputs->v[i], &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		r = cover(covers, outputs->v[i], false, err, errlen);
	}
	for (size_t i = 0; r == 0 && i < masks->n; i++) {
		/* what does not exist (or cannot be reached) needs no mask */
		if (stat(masks->v[i], &st) < 0)
			continue;
		r = cover(covers, masks->v[i], S_ISDIR(st.st_mode), err, errlen);
	}
	return r;
}

/* Cover @path with a read-only copy of itself and everything mounted below it. */
static int bind_read_only(const char *path, char *err, size_t errlen)
{
	struct mount_attr attr = {
	    .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
	};
	cleanup_fd int tree =
	    open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	int r;

	if (tree < 0 && errno == ENOENT)
		return 0; /* a kernel without it: nothing to protect */
	if (tree < 0 ||
	    mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0 ||
	    move_mount(tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot make the sandbox's %s read-only: %s", path,
			 strerror(-r));
		return r;
	}
	return 0;
}

int cf_mounts_harden(char *err, size_t errlen)
{
	static const char *const read_only[] = {
	    "/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq", "/sys",
	};

	for (size_t i = 0; i < CF_ARRAY_SIZE(read_only); i++) {
		int r = bind_read_only(read_only[i], err, errlen);

		if (r < 0)
			return r;
	}
	return 0;
}
