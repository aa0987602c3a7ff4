/* SPDX-License-Identifier: MIT */
/*
 * The launcher's id-map procedure (sandbox/launch.c: write_id_maps), redone
 * here with a record of what worked: childflow maps only the caller's own
 * uid and gid, first by writing /proc/PID/uid_map, setgroups and gid_map
 * itself, and for each map that is refused by running newuidmap/newgidmap
 * from PATH. (Mapping one's own id needs no /etc/subuid range, with or
 * without the helpers.)
 */
#include "doctor/check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fileio.h"

extern char **environ;

int cf_doctor_which(const char *name, char *buf, size_t len)
{
	/* posix_spawnp()'s default when PATH is unset (glibc: confstr _CS_PATH). */
	const char *path = getenv("PATH");
	struct stat st;

	if (!path)
		path = "/bin:/usr/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		int w = snprintf(buf, len, "%.*s%s%s", (int)n, path, n ? "/" : "", name);

		if (w > 0 && (size_t)w < len && stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(buf, X_OK) == 0)
			return 0;
		path += n;
		if (*path == ':')
			path++;
	}
	return -ENOENT;
}

/* Neither set-user-ID root nor file capabilities: the helper cannot map anything. */
static bool lacks_privilege(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return false;
	if ((st.st_mode & S_ISUID) && st.st_uid == 0)
		return false;
	return getxattr(path, "security.capability", NULL, 0) <= 0;
}

/* Read what the helper printed (it exits right after); keep the first line. */
static void read_first_line(int fd, char *buf, size_t len)
{
	size_t used = 0;
	ssize_t n;

	while (used + 1 < len && (n = read(fd, buf + used, len - 1 - used)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* Run "@tool PID ID ID 1" as the launcher does; on failure say why in @res. */
static int run_tool(const char *tool, pid_t pid, unsigned id, struct cf_idmap_result *res)
{
	char path[PATH_MAX], spid[16], sid[16], out[160] = "";
	char *argv[] = {path, spid, sid, sid, (char *)"1", NULL};
	posix_spawn_file_actions_t fa;
	cleanup_fd int rd = -1;
	int p[2], r, st = 0;
	pid_t child;

	res->helper_err = ENOENT;
	if (cf_doctor_which(tool, path, sizeof(path)) < 0) {
		snprintf(res->helper_msg, sizeof(res->helper_msg), "%s not found in PATH", tool);
		return -ENOENT;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	rd = p[0];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	snprintf(sid, sizeof(sid), "%u", id);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDERR_FILENO);
	r = posix_spawn(&child, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (r != 0) {
		res->helper_err = r;
		snprintf(res->helper_msg, sizeof(res->helper_msg), "cannot run %.100s: %s", path,
			 strerror(r));
		return -r;
	}
	read_first_line(rd, out, sizeof(out));
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		res->helper_err = 0;
		return 0;
	}
	res->helper_err = EPERM;
	snprintf(res->helper_msg, sizeof(res->helper_msg), "%.60s failed: %.70s%s", path,
		 *out ? out : "(no message)",
		 lacks_privilege(path) ? " (it is neither setuid root nor has file capabilities)"
				       : "");
	return -EPERM;
}

static void note_direct(struct cf_idmap_result *res, int r, const char *file)
{
	if (res->direct_err == 0) {
		res->direct_err = -r;
		res->direct_file = file;
	}
}

/* One map: the direct write(s) first, then the helper, as the launcher does. */
static int map_one(pid_t pid, bool is_uid, unsigned id, unsigned how, struct cf_idmap_result *res)
{
	char map[64];
	int r = -EINVAL;

	snprintf(map, sizeof(map), "%u %u 1\n", id, id);
	if (how & CF_IDMAP_DIRECT) {
		if (is_uid) {
			r = cf_write_proc(pid, "uid_map", map);
			if (r < 0)
				note_direct(res, r, "uid_map");
		} else {
			r = cf_write_proc(pid, "setgroups", "deny");
			if (r < 0)
				note_direct(res, r, "setgroups");
			else if ((r = cf_write_proc(pid, "gid_map", map)) < 0)
				note_direct(res, r, "gid_map");
		}
	}
	if (r < 0 && (how & CF_IDMAP_HELPERS)) {
		r = run_tool(is_uid ? "newuidmap" : "newgidmap", pid, id, res);
		if (r == 0)
			res->via_helpers = true;
	}
	return r;
}

int cf_idmap_write(pid_t pid, uid_t uid, gid_t gid, unsigned how, struct cf_idmap_result *res)
{
	int r;

	memset(res, 0, sizeof(*res));
	r = map_one(pid, true, (unsigned)uid, how, res);
	if (r == 0)
		r = map_one(pid, false, (unsigned)gid, how, res);
	return r;
}
