/* SPDX-License-Identifier: MIT */
/*
 * The control protocol between childflow (the engine, in the host's
 * namespaces) and the helper (pid 1 of the sandbox), one fixed-size record
 * per SOCK_SEQPACKET message:
 *
 *   engine -> helper  MAPS_DONE     uid/gid maps are written (rootful: the veth
 *                                   exists), set up the sandbox
 *   helper -> engine  READY + fds   tun, listener v4, listener v6, sock_diag,
 *                                   [capture], [conntrack events (rootful)]
 *   helper -> engine  SETUP_FAILED  err + one-line text; the helper exits
 *   engine -> helper  GO            exec the command
 *   helper -> engine  EXEC_FAILED   err (ENOENT: not found, else not executable)
 *   helper -> engine  EXITED        wait status of the command; helper exits
 */
#ifndef CF_SANDBOX_CTL_H
#define CF_SANDBOX_CTL_H

#include <stdint.h>

enum cf_ctl_type {
	CF_CTL_MAPS_DONE = 1,
	CF_CTL_READY,
	CF_CTL_SETUP_FAILED,
	CF_CTL_GO,
	CF_CTL_EXEC_FAILED,
	CF_CTL_EXITED,
};

struct cf_ctl_msg {
	uint32_t type;
	int32_t err;	/* positive errno */
	int32_t status; /* wait status for EXITED */
	uint16_t port4, port6;
	char text[400];
};

#endif
