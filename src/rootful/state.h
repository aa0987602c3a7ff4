/* SPDX-License-Identifier: MIT */
/*
 * What a rootful run changes outside its owned nft table, written down
 * before it changes it, so that the run itself, its reaper (after a crash)
 * or `childflow --cleanup` (after both died) can undo it.
 *
 * The changes are per-interface forwarding switches: IPv4 decides
 * forwarding on the interface a packet arrives on, so the uplinks that
 * replies come in by need conf/IF/forwarding; IPv6 needs conf/IF/
 * force_forwarding (Linux 6.17) unless conf/all/forwarding is on already.
 * The global switches are never touched. Several runs may need the same
 * switch: each records the value from before the first of them changed it,
 * and only the last live one restores it. One record file per run in
 * CF_STATE_DIR/net-<inode of the network namespace> (the switches a path
 * names are the current namespace's), read and written under an exclusive
 * lock.
 */
#ifndef CF_ROOTFUL_STATE_H
#define CF_ROOTFUL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "hoststate/records.h"
#include "rootful/hostplan.h"

struct cf_rootful_state {
	char id[9];
	struct cf_sysctl_change ch[CF_STATE_MAX_CHANGES];
	size_t n; /* switches this run relies on childflow having turned on */
};

/*
 * cf_rootful_v6_mode() - how the tree can get IPv6 here: 1 by per-interface
 * force_forwarding, 2 because conf/all/forwarding is on already, 0 not at
 * all (IPv6 disabled, or a kernel before 6.17 with forwarding off).
 */
int cf_rootful_v6_mode(void);

/*
 * cf_rootful_state_begin() - record run @hp (childflow @self, its @reaper),
 * then turn forwarding on for its uplinks where it is off, filling @st.
 * Return 0, or -errno with @err set (what was recorded stays for release).
 */
int cf_rootful_state_begin(const struct cf_host_plan *hp, pid_t self, pid_t reaper, int v6_mode,
			   struct cf_rootful_state *st, char *err, size_t errlen);

/*
 * cf_rootful_state_release() - undo run @id's record: restore each switch
 * no other live run relies on, delete its veth if it still exists, remove
 * the record. Say each thing undone on @say (or NULL). Return 0 or -errno.
 */
int cf_rootful_state_release(const char *id, FILE *say);

/*
 * cf_rootful_cleanup() - release every record whose run and reaper are both
 * gone, naming each thing on @say. Return the number of runs released, or
 * -errno.
 */
int cf_rootful_cleanup(FILE *say);

#endif
