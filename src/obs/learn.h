/* SPDX-License-Identifier: MIT */
/*
 * --report FLOWLOG --report-format profile: learn a default-deny profile
 * from saved flow logs. The profile allows exactly what the logged runs
 * reached, so that the same runs under it are allowed the same flows:
 *
 * - every name the tree resolved and then connected to, as it was asked
 *   (allow_domains_exact; never a parent domain);
 * - every address it connected to that no name it resolved gave
 *   (allow_cidrs, /32 or /128);
 * - each entry with a comment saying where it was first seen (log, time,
 *   protocol and destination, process);
 * - what the runs were denied, and names resolved but never connected to,
 *   as comments only.
 *
 * Several logs merge into one profile (the union; provenance is the first
 * sighting). The output is TOML that --profile loads as it is.
 */
#ifndef CF_OBS_LEARN_H
#define CF_OBS_LEARN_H

#include <stddef.h>
#include <stdio.h>

/* What the logs taught so far. */
struct cf_learn;

/* cf_learn_new() - An empty learner. Return: 0 with *@out set, or -ENOMEM. */
int cf_learn_new(struct cf_learn **out);

/* cf_learn_free() - Release @l (NULL is fine). */
void cf_learn_free(struct cf_learn *l);

/*
 * cf_learn_stream() - Learn from the flow log read from @in, named @name in
 * the provenance comments and in "NAME: line N: WHAT" messages to @err_out
 * for malformed lines (skipped). Names resolved in one log never explain an
 * address connected to in another.
 * Return: 0, -errno when reading failed, -ENOMEM.
 */
int cf_learn_stream(struct cf_learn *l, FILE *in, const char *name, FILE *err_out);

/*
 * cf_learn_print() - Print the learned profile to @out as TOML.
 * Return: 0, or -EIO when writing failed.
 */
int cf_learn_print(const struct cf_learn *l, FILE *out);

/*
 * cf_learn_run() - Learn from the @n flow logs at @paths and print the
 * profile to @out. On an open or read error, *@failed names the path.
 * Return: 0, -errno, -EIO (writing @out), -ENOMEM.
 */
int cf_learn_run(const char *const *paths, size_t n, FILE *out, FILE *err_out, const char **failed);

#endif
