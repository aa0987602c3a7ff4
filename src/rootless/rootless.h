/* SPDX-License-Identifier: MIT */
/*
 * The rootless backend ("rootless-internal"): user, network, mount, PID,
 * UTS and IPC namespaces built by an unprivileged helper (sandbox/), and the
 * engine (engine/) relaying every flow of the tree through host sockets.
 */
#ifndef CF_ROOTLESS_ROOTLESS_H
#define CF_ROOTLESS_ROOTLESS_H

#include "backend/backend.h"

/* The rootless backend's operations (backend/backend.h). */
extern const struct cf_backend_ops cf_rootless_backend;

#endif
