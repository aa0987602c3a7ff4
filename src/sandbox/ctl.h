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
 *   helper -> engine  SETUP_FAILED  err + one-line text + the step that failed;
 *                                   the helper exits
 *   engine -> helper  GO            exec the command
 *   helper -> engine  EXEC_FAILED   err (ENOENT: not found, else not executable)
 *   helper -> engine  EXITED        wait status of the command; helper exits
 *   engine -> helper  CONNECT       (after GO; --publish) id, family, tcp/udp, tree port:
 *                                   open a socket in the tree's namespace to its
 *                                   loopback at that port
 *   helper -> engine  CONNECTED     id, err, and the socket when err is 0 (a TCP
 *                                   connect() may still be in progress)
 *   command -> engine LISTENER [+fd] --tcp-path auto: the tree's connect()
 *                                   listener (sandbox/connfilter.h), sent by
 *                                   the command's process before its exec;
 *                                   err instead of the fd when the kernel
 *                                   refused one (the relay path only)
 */
#ifndef CF_SANDBOX_CTL_H
#define CF_SANDBOX_CTL_H

#include <stdint.h>

/*
 * The steps of building the sandbox, in order: the one a failure happened
 * in becomes the flow log's runtime_failure reason_code
 * (cf_sandbox_step_reason(), sandbox/launch.h). The helper's steps travel in
 * SETUP_FAILED; the set-up functions advance a caller's cursor as they go.
 */
enum cf_sandbox_step {
	CF_STEP_UNKNOWN,
	CF_STEP_CONTROL,	   /* the control socket and its messages */
	CF_STEP_NAMESPACES,	   /* clone3() into the new namespaces */
	CF_STEP_ID_MAPS,	   /* the helper's uid/gid maps */
	CF_STEP_MOUNT_PROPAGATION, /* every mount private */
	CF_STEP_PROC,		   /* the PID namespace's /proc */
	CF_STEP_RESOLV_CONF,	   /* resolv.conf bound over /etc/resolv.conf */
	CF_STEP_HOSTS,		   /* --hosts-file (or the copy) over /etc/hosts */
	CF_STEP_HIDE,		   /* outputs and masks covered */
	CF_STEP_TUN,		   /* tun0 created */
	CF_STEP_LINKS,		   /* lo and tun0 up, addresses, routes, rules */
	CF_STEP_SYSCTLS,	   /* the sandbox's net sysctls */
	CF_STEP_TPROXY,		   /* the transparent listeners */
	CF_STEP_NFTABLES,	   /* the nft table */
	CF_STEP_CAPTURE,	   /* the child view's packet socket */
	CF_STEP_SOCK_DIAG,	   /* the sock_diag socket */
	CF_STEP_HARDEN,		   /* /proc/sys, /sys and friends read-only */
	CF_STEP_VETH,		   /* rootful: the veth pair and the host's end */
	CF_STEP_CTRACK,		   /* rootful: the tree's conntrack events */
	CF_STEP__COUNT,
};

enum cf_ctl_type {
	CF_CTL_MAPS_DONE = 1,
	CF_CTL_READY,
	CF_CTL_SETUP_FAILED,
	CF_CTL_GO,
	CF_CTL_EXEC_FAILED,
	CF_CTL_EXITED,
	CF_CTL_CONNECT,
	CF_CTL_CONNECTED,
	CF_CTL_LISTENER,
};

struct cf_ctl_msg {
	uint32_t type;
	int32_t err;	/* positive errno */
	int32_t status; /* wait status for EXITED */
	uint16_t port4, port6;
	char text[400];
	uint32_t step; /* SETUP_FAILED: enum cf_sandbox_step */
	/* CONNECT, CONNECTED: which request; CONNECT: where, on the tree's loopback */
	uint32_t id;
	uint16_t tree_port;
	uint8_t family; /* AF_INET: 127.0.0.1, AF_INET6: ::1 */
	uint8_t udp;	/* 0: TCP */
};

#endif
