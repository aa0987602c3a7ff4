// SPDX-License-Identifier: MIT
/*
 * The default masks. Each entry is a server that takes commands from any
 * process of the user that can connect(): the systemd user manager and the
 * session bus (systemd-run --user, D-Bus activation), the Docker, Podman and
 * containerd APIs (a container with the host's network), tmux and screen
 * (send-keys to a shell outside). Per-user entries follow the user's uid and
 * name and the variables those programs read themselves. Entries that do not
 * exist are skipped when the sandbox is built (cf_mounts_hide()).
 */
#include "sandbox/masks.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"

/* System-wide sockets (docs: SECURITY.md, "UNIX sockets"). */
static const char *const system_masks[] = {
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/podman/podman.sock",
    "/run/containerd/containerd.sock",
};

/* Below a runtime directory (/run/user/UID and $XDG_RUNTIME_DIR). */
static const char *const runtime_masks[] = {
    "bus", "systemd", "docker.sock", "podman/podman.sock", "containerd", "containerd-rootless",
};

/* @uid's passwd entry with its strings in @buf, or NULL. */
static struct passwd *passwd_of(uid_t uid, struct passwd *pwd, char *buf, size_t len)
{
	struct passwd *pw = NULL;

	return getpwuid_r(uid, pwd, buf, len, &pw) == 0 ? pw : NULL;
}

void cf_mask_env_tree_user(struct cf_mask_env *env, uid_t uid)
{
	struct passwd pwd, *pw;

	if (uid == env->uid)
		return;
	pw = passwd_of(uid, &pwd, env->tree_pwbuf, sizeof(env->tree_pwbuf));
	env->has_tree_user = true;
	env->tree_uid = uid;
	env->tree_user = pw ? pw->pw_name : NULL;
	env->tree_home = pw ? pw->pw_dir : NULL;
}

void cf_mask_env_current(struct cf_mask_env *env)
{
	struct passwd pwd, *pw;

	memset(env, 0, sizeof(*env));
	env->uid = getuid();
	pw = passwd_of(env->uid, &pwd, env->pwbuf, sizeof(env->pwbuf));
	env->user = pw ? pw->pw_name : NULL;
	env->home = getenv("HOME");
	if ((!env->home || !*env->home) && pw)
		env->home = pw->pw_dir;
	env->xdg_runtime_dir = getenv("XDG_RUNTIME_DIR");
	env->dbus_session_bus = getenv("DBUS_SESSION_BUS_ADDRESS");
	env->tmux_tmpdir = getenv("TMUX_TMPDIR");
	env->screendir = getenv("SCREENDIR");
}

static bool contains(const struct cf_strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

/* Append "@dir/@name" (or @dir alone when @name is NULL) if absolute and new. */
static int add(struct cf_strv *out, const char *dir, const char *name)
{
	char path[PATH_MAX];
	size_t n;
	int len;

	if (!dir || dir[0] != '/')
		return 0; /* unset, or relative: not a place these servers use */
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	len = name ? snprintf(path, sizeof(path), "%.*s/%s", (int)n, dir, name)
		   : snprintf(path, sizeof(path), "%.*s", (int)n, dir);
	if (len < 0 || (size_t)len >= sizeof(path) || contains(out, path))
		return 0;
	return cf_strv_push(out, path);
}

static int add_runtime_dir(struct cf_strv *out, const char *dir)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < CF_ARRAY_SIZE(runtime_masks); i++)
		r = add(out, dir, runtime_masks[i]);
	return r;
}

/* Every "unix:path=P" of a D-Bus address list ("a;b", "unix:path=P,guid=G"). */
static int add_dbus_paths(struct cf_strv *out, const char *addresses)
{
	static const char prefix[] = "unix:path=";
	char path[PATH_MAX];
	int r = 0;

	for (const char *a = addresses; a && *a && r == 0; a += strcspn(a, ";"), a += *a == ';') {
		size_t n;

		if (strncmp(a, prefix, sizeof(prefix) - 1) != 0)
			continue;
		a += sizeof(prefix) - 1;
		n = strcspn(a, ",;");
		if (n == 0 || n >= sizeof(path))
			continue;
		memcpy(path, a, n);
		path[n] = '\0';
		r = add(out, path, NULL);
	}
	return r;
}

/* The places of one user's servers that follow from its uid, name and home alone. */
static int add_user(struct cf_strv *out, uid_t uid, const char *user, const char *home)
{
	char buf[64];
	int r;

	snprintf(buf, sizeof(buf), "/run/user/%u", (unsigned)uid);
	r = add_runtime_dir(out, buf);
	snprintf(buf, sizeof(buf), "tmux-%u", (unsigned)uid);
	if (r == 0)
		r = add(out, "/tmp", buf);
	if (r == 0 && user && !strchr(user, '/') &&
	    snprintf(buf, sizeof(buf), "S-%s", user) < (int)sizeof(buf))
		r = add(out, "/run/screen", buf);
	if (r == 0)
		r = add(out, home, ".screen");
	return r;
}

int cf_masks_defaults(const struct cf_mask_env *env, struct cf_strv *out)
{
	char buf[64];
	int r = 0;

	for (size_t i = 0; r == 0 && i < CF_ARRAY_SIZE(system_masks); i++)
		r = add(out, system_masks[i], NULL);
	if (r == 0)
		r = add_user(out, env->uid, env->user, env->home);
	if (r == 0 && env->has_tree_user)
		r = add_user(out, env->tree_uid, env->tree_user, env->tree_home);
	if (r == 0)
		r = add_runtime_dir(out, env->xdg_runtime_dir);
	if (r == 0)
		r = add_dbus_paths(out, env->dbus_session_bus);
	snprintf(buf, sizeof(buf), "tmux-%u", (unsigned)env->uid);
	if (r == 0)
		r = add(out, env->tmux_tmpdir, buf);
	if (r == 0)
		r = add(out, env->screendir, NULL);
	return r;
}

/* Whether @a and @b name the same existing file (through symlinks). */
static bool same_file(const char *a, const char *b)
{
	cleanup_free char *ra = realpath(a, NULL);
	cleanup_free char *rb = ra ? realpath(b, NULL) : NULL;

	return rb && strcmp(ra, rb) == 0;
}

/* Whether @path is an entry of @list, by name or as the same file. */
static bool matches(const char *entry, const char *path)
{
	return strcmp(entry, path) == 0 || same_file(entry, path);
}

/* Remove from @list every entry that matches @path. */
static void remove_matches(struct cf_strv *list, const char *path)
{
	size_t j = 0;

	for (size_t i = 0; i < list->n; i++) {
		if (matches(list->v[i], path))
			free(list->v[i]);
		else
			list->v[j++] = list->v[i];
	}
	list->n = j;
	if (list->v)
		list->v[j] = NULL;
}

/* An --unmask path must name a default mask: a typo must not pass silently. */
static int check_unmask(const struct cf_strv *defaults, const char *path, char *err, size_t errlen)
{
	for (size_t i = 0; i < defaults->n; i++)
		if (matches(defaults->v[i], path))
			return 0;
	snprintf(err, errlen,
		 "--unmask: '%s' is not masked by default (the list: SECURITY.md, "
		 "\"UNIX sockets\"); remove it or fix the path",
		 path);
	return -EINVAL;
}

int cf_masks_build(const struct cf_config *cfg, const struct cf_mask_env *env, struct cf_strv *out,
		   char *err, size_t errlen)
{
	struct cf_strv list = {0};
	int r = cf_masks_defaults(env, &list);

	for (size_t i = 0; r == 0 && i < cfg->unmask.n; i++)
		r = check_unmask(&list, cfg->unmask.v[i], err, errlen);
	for (size_t i = 0; r == 0 && i < cfg->unmask.n; i++)
		remove_matches(&list, cfg->unmask.v[i]);
	for (size_t i = 0; r == 0 && i < cfg->mask.n; i++)
		r = contains(&list, cfg->mask.v[i]) ? 0 : cf_strv_push(&list, cfg->mask.v[i]);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		cf_strv_free(&list);
		return r;
	}
	*out = list;
	return 0;
}
