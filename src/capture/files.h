/* SPDX-License-Identifier: MIT */
/*
 * The capture files of one run (docs/capture.md): their names, the pcapng
 * writers behind them, the wire-egress view's host packet socket, and what
 * is said about them when the run ends.
 *
 * Ownership: the set owns its writers from cf_capture_files_create() until
 * cf_capture_files_finish() or cf_capture_files_discard(), which are the only
 * places a writer is closed. The engine borrows them (struct
 * cf_engine_opts): it writes, flushes and stops writing, never closes.
 *
 * Like every module below the runner, these functions return -errno with a
 * one-line message in @err; only the end-of-run report logs, as warnings
 * and errors that do not change the exit status.
 */
#ifndef CF_CAPTURE_FILES_H
#define CF_CAPTURE_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct cf_pcapng;

/*
 * "child" and "egress" (synthesized) or "wire-egress" write --capture
 * itself; "both" writes NAME.child.pcapng and NAME.egress.pcapng, NAME being
 * --capture without a trailing ".pcapng". Zero-initialise before use.
 */
struct cf_capture_files {
	char *child_path, *egress_path;	  /* NULL: that view is off */
	struct cf_pcapng *child, *egress; /* open writers, owned by the set */
	bool wire;			  /* egress_path is the wire-egress view */
};

/* What the engine learnt about one view's file while it wrote it. */
struct cf_capture_outcome {
	int err;	  /* the first write error the engine saw (-errno), or 0 */
	uint64_t dropped; /* packets the kernel dropped before the engine read them */
};

/*
 * cf_capture_files_name() - Name the files of @cfg's capture, without
 * touching the disk (nothing to do without --capture). Return 0, or -ENOMEM
 * with @err set and no path kept.
 */
int cf_capture_files_name(struct cf_capture_files *cf, const struct cf_config *cfg, char *err,
			  size_t errlen);

/*
 * cf_capture_files_probe() - For the wire-egress view: whether its host
 * packet socket can be opened here (root or CAP_NET_RAW). Return 0, or
 * -errno with @err set and no path kept.
 */
int cf_capture_files_probe(struct cf_capture_files *cf, char *err, size_t errlen);

/*
 * cf_capture_files_create() - Create the named files (never overwriting one)
 * and write their section headers, naming @backend in them; the egress
 * views write from a thread of their own. Return 0, or -errno with @err set,
 * no file left on disk and no path kept.
 */
int cf_capture_files_create(struct cf_capture_files *cf, const struct cf_config *cfg,
			    const char *backend, char *err, size_t errlen);

/*
 * cf_capture_wire_socket() - Open a host packet socket for the wire-egress
 * view (needs CAP_NET_RAW in the host's user namespace). Return the fd or
 * -errno (-EPERM: no privilege).
 */
int cf_capture_wire_socket(void);

/*
 * cf_capture_files_wire_socket() - The wire-egress view's packet socket for
 * the run into *@fd (-1 when that view is off). Open it only once the
 * sandbox exists: the sandbox's helper inherits childflow's descriptors.
 * Return 0, or -errno with @err set.
 */
int cf_capture_files_wire_socket(const struct cf_capture_files *cf, int *fd, char *err,
				 size_t errlen);

/*
 * cf_capture_files_finish() - The run is over: close the writers (the
 * engine's error, else the close's, counts for each file) and report what
 * is incomplete or missed packets. The paths stay, for the summary.
 */
void cf_capture_files_finish(struct cf_capture_files *cf, const struct cf_capture_outcome *child,
			     const struct cf_capture_outcome *egress);

/*
 * cf_capture_files_discard() - A run that never started: close the open
 * writers, remove their files and forget the paths. Safe to call twice.
 */
void cf_capture_files_discard(struct cf_capture_files *cf);

/* cf_capture_files_free() - Forget the paths (the writers must be closed already). */
void cf_capture_files_free(struct cf_capture_files *cf);

#endif
