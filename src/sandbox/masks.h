/* SPDX-License-Identifier: MIT */
/*
 * Which paths the tree must not reach: the well-known UNIX sockets (and the
 * directories that hold them) whose servers run commands or containers
 * outside the sandbox, on the host's network. The list is documented in
 * SECURITY.md; --mask adds to it, --unmask takes an entry out.
 */
#ifndef CF_SANDBOX_MASKS_H
#define CF_SANDBOX_MASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"

/* What the per-user entries are computed from (NULL: not set). */
struct cf_mask_env {
	uid_t uid;
	const char *user;	      /* login name, for screen's S-USER */
	const char *home;	      /* for ~/.screen */
	const char *xdg_runtime_dir;  /* $XDG_RUNTIME_DIR */
	const char *dbus_session_bus; /* $DBUS_SESSION_BUS_ADDRESS */
	const char *tmux_tmpdir;      /* $TMUX_TMPDIR */
	const char *screendir;	      /* $SCREENDIR */
	/*
	 * A root caller's tree runs as another user (sandbox/treeuser.h): that
	 * user's own sockets are masked too. tree_user and tree_home may be NULL.
	 */
	bool has_tree_user;
	uid_t tree_uid;
	const char *tree_user;
	const char *tree_home;
	char pwbuf[1024], tree_pwbuf[1024]; /* the passwd strings, owned here */
};

/*
 * cf_mask_env_current() - fill @env for this process: getuid(), its passwd
 * entry (name, home; $HOME wins when set) and the environment variables.
 * The strings point into the environment and @env's own buffers.
 */
void cf_mask_env_current(struct cf_mask_env *env);

/*
 * cf_mask_env_tree_user() - the tree runs as @uid (a root caller's tree): add
 * that user, with its passwd name and home, to @env. Nothing when @uid is
 * the caller's.
 */
void cf_mask_env_tree_user(struct cf_mask_env *env, uid_t uid);

/*
 * cf_masks_defaults() - append the default masks for @env to @out: absolute
 * paths, each once, whether they exist or not. Return 0 or -ENOMEM.
 */
int cf_masks_defaults(const struct cf_mask_env *env, struct cf_strv *out);

/*
 * cf_masks_build() - the masks of a run: the defaults for @env without
 * @cfg->unmask, then @cfg->mask. Return 0, -ENOMEM, or -EINVAL with a
 * one-line message in @err when an --unmask path is not a default mask.
 */
int cf_masks_build(const struct cf_config *cfg, const struct cf_mask_env *env, struct cf_strv *out,
		   char *err, size_t errlen);

#endif
