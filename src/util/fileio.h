/* SPDX-License-Identifier: MIT */
/* Small whole-file writes to /proc and /sys, where a short write is a failure. */
#ifndef CF_UTIL_FILEIO_H
#define CF_UTIL_FILEIO_H

#include <sys/types.h>

/* Write all of @text to the existing file @path in one write(). Return 0 or -errno. */
int cf_write_file(const char *path, const char *text);

/* cf_write_file() on /proc/@pid/@file (uid_map, gid_map, setgroups). */
int cf_write_proc(pid_t pid, const char *file, const char *text);

#endif
