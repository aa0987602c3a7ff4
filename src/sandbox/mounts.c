/* SPDX-License-Identifier: MIT */
/*
 * Where the generated resolv.conf lives: a tmpfs briefly mounted over /tmp
 * inside the private mount namespace. The file is written there, bound over
 * /etc/resolv.conf, and the tmpfs is detached again, so the tree sees its
 * own /tmp and the file stays reachable only through the bind mount. Nothing
 * is ever written to the host's file systems.
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

#define STAGING_DIR "/tmp"
#define STAGING_FILE STAGING_DIR "/childflow-resolv.conf"

static int write_file(const char *path, const char *text)
{
	cleanup_fd int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	size_t len = strlen(text);

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		return -errno;
	return 0;
}

/* Bind @src read-only over @target (which may be a symlink to the real file). */
static int bind_ro(const char *src, const char *target, char *err, size_t errlen)
{
	char real[PATH_MAX];

	if (!realpath(target, real)) {
		int r = -errno;

		snprintf(err, errlen, "cannot override %s: %s (a dangling symlink?)", target,
			 strerror(-r));
		return r;
	}
	if (mount(src, real, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, real, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
		  NULL) < 0) {
		int r = -errno;

		snprintf(err, errlen, "cannot bind %s over %s: %s", src, real, strerror(-r));
		return r;
	}
	return 0;
}

static int override_resolv(const char *text, char *err, size_t errlen)
{
	int r;

	if (mount("tmpfs", STAGING_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=64k,mode=0755") < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot mount a staging tmpfs: %s", strerror(-r));
		return r;
	}
	r = write_file(STAGING_FILE, text);
	if (r < 0)
		snprintf(err, errlen, "cannot write the sandbox's resolv.conf: %s", strerror(-r));
	else
		r = bind_ro(STAGING_FILE, "/etc/resolv.conf", err, errlen);
	if (umount2(STAGING_DIR, MNT_DETACH) < 0 && r == 0) {
		r = -errno;
		snprintf(err, errlen, "cannot detach the staging tmpfs: %s", strerror(-r));
	}
	return r;
}

int cf_mounts_setup(const char *resolv_text, const char *hosts_path, char *err, size_t errlen)
{
	int r;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot make the sandbox's mounts private: %s", strerror(-r));
		return r;
	}
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot mount /proc for the sandbox's PID namespace: %s",
			 strerror(-r));
		return r;
	}
	r = override_resolv(resolv_text, err, errlen);
	if (r < 0)
		return r;
	if (hosts_path)
		r = bind_ro(hosts_path, "/etc/hosts", err, errlen);
	return r;
}
