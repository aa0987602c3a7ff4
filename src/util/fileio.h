/* SPDX-License-Identifier: MIT */
/* Writes that put all of a buffer out: whole-file writes to /proc and /sys, and loops over short
 * writes. */
#ifndef CF_UTIL_FILEIO_H
#define CF_UTIL_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Write all @len bytes at @buf to @fd, continuing after short writes and EINTR. Return 0 or -errno.
 */
int cf_write_all(int fd, const void *buf, size_t len);

/* Write all of @text to the existing file @path in one write(). Return 0 or -errno. */
int cf_write_file(const char *path, const char *text);

/* cf_write_file() on /proc/@pid/@file (uid_map, gid_map, setgroups). */
int cf_write_proc(pid_t pid, const char *file, const char *text);

/*
 * Read the small file @path (a sysctl) into @buf (NUL-terminated, the
 * trailing newline removed). Return the length or -errno.
 */
int cf_read_small_file(const char *path, char *buf, size_t len);

#endif
