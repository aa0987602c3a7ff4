/* SPDX-License-Identifier: MIT */
/*
 * Where the generated resolv.conf lives: a tmpfs that is never attached to
 * any directory (fsopen/fsmount). The file is written through the mount's
 * fd, a detached bind of just that file is made with open_tree(), made
 * read-only, and moved over /etc/resolv.conf. So nothing is shadowed, even
 * briefly (a resolv.conf symlinked into /tmp stays reachable), and nothing is
 * ever written to the host's file systems.
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
 * while these binds cover parts of the visible ones.
 */
#include "sandbox/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "util/cleanup.h"

#define STAGED_NAME "resolv.conf"

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

static int override_resolv(const char *text, char *err, size_t errlen)
{
	cleanup_fd int fs = -1, mnt = -1, tree = -1;
	int r;

	fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "size", "64k", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create a tmpfs for the sandbox's resolv.conf: %s",
			 strerror(-r));
		return r;
	}
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	r = mnt < 0 ? -errno : write_at(mnt, STAGED_NAME, text);
	if (r == 0) {
		tree = open_tree(mnt, STAGED_NAME, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (tree < 0)
			r = -errno;
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot write the sandbox's resolv.conf: %s", strerror(-r));
		return r;
	}
	return attach_ro(tree, "/etc/resolv.conf", "the sandbox's resolv.conf", err, errlen);
}

static int override_hosts(const char *hosts_path, char *err, size_t errlen)
{
	cleanup_fd int tree = open_tree(AT_FDCWD, hosts_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	int r;

	if (tree < 0) {
		r = -errno;
		snprintf(err, errlen, "--hosts-file: cannot use '%s': %s", hosts_path, strerror(-r));
		return r;
	}
	return attach_ro(tree, "/etc/hosts", hosts_path, err, errlen);
}

/* hidepid=invisible is Linux 5.8's name of hidepid=2; the per-mount options came with it. */
static int mount_proc(void)
{
	const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (mount("proc", "/proc", "proc", flags, "hidepid=invisible") == 0)
		return 0;
	if (errno == EINVAL && mount("proc", "/proc", "proc", flags, "hidepid=2") == 0)
		return 0;
	return -errno;
}

int cf_mounts_setup(const char *resolv_text, const char *hosts_path, char *err, size_t errlen)
{
	int r;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot make the sandbox's mounts private: %s", strerror(-r));
		return r;
	}
	r = mount_proc();
	if (r < 0) {
		snprintf(err, errlen, "cannot mount /proc for the sandbox's PID namespace: %s",
			 strerror(-r));
		return r;
	}
	r = override_resolv(resolv_text, err, errlen);
	if (r == 0 && hosts_path)
		r = override_hosts(hosts_path, err, errlen);
	return r;
}

/* Cover @path with a read-only copy of itself and everything mounted below it. */
static int bind_read_only(const char *path, char *err, size_t errlen)
{
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
	};
	cleanup_fd int tree = open_tree(AT_FDCWD, path,
					OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
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
