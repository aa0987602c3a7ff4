/* SPDX-License-Identifier: MIT */
/*
 * TOML profiles (--profile FILE): load a profile and its `extends` chain
 * into a struct cf_config, and print an effective configuration back as a
 * profile (--dump-profile). The keys, their types and the merge rules are
 * documented in docs/profile-schema.md.
 */
#ifndef CF_CONFIG_PROFILE_H
#define CF_CONFIG_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

/* Profiles larger than this are refused (they are a few hundred bytes). */
#define CF_PROFILE_MAX_SIZE ((size_t)1024 * 1024)

/* What a masked secret looks like in a dump. */
#define CF_PROFILE_MASK "********"

/*
 * cf_profile_load() - load the profile at @path and every profile it extends
 * @path: the profile file; relative to the current directory
 * @out: initialised here; on success holds the chain merged parent first,
 *       with out->set naming exactly the keys the chain set. Release it
 *       with cf_config_free() whatever the result.
 * @err: on failure a one-line message, "FILE:LINE:COLUMN: key 'x': ..." for
 *       problems inside a profile, "extends cycle: a.toml -> b.toml ->
 *       a.toml" for cycles; secrets are never quoted
 * @errlen: size of @err
 *
 * Every value is checked as the command line checks it. Relative `extends`,
 * `capture`, `hosts_file` and `flow_log` paths are made absolute against
 * the directory of the profile that names them.
 *
 * Return: 0; -EINVAL for an invalid profile; -ENOMEM; or the -errno of
 * reading @path itself.
 */
int cf_profile_load(const char *path, struct cf_config *out, char *err, size_t errlen);

/*
 * cf_profile_load_files() - cf_profile_load(), and append the absolute path
 * of every file of the chain (child first) to @files, for the sandbox to
 * hide them from the tree.
 */
int cf_profile_load_files(const char *path, struct cf_config *out, struct cf_strv *files, char *err,
			  size_t errlen);

/*
 * cf_profile_dump() - print @c as a complete TOML profile
 * @c: the effective configuration (every key is printed, in enum cf_key
 *     order; keys without a value, e.g. no proxy, as comments)
 * @show_secrets: print proxy passwords; otherwise they are CF_PROFILE_MASK
 *     ("***" inside the proxy URI), and the dump says so
 * @out: where to write; nothing is written on failure
 *
 * The dump loads back with cf_profile_load() to the same configuration
 * (passwords only with @show_secrets); `extends` is shown as a comment,
 * since the chain is already merged into the values.
 *
 * Return: 0; -EILSEQ when a string is not valid UTF-8 (TOML cannot hold it);
 * -ENOMEM; -EIO when writing to @out fails.
 */
int cf_profile_dump(const struct cf_config *c, bool show_secrets, FILE *out);

#endif
