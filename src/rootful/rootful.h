/* SPDX-License-Identifier: MIT */
/*
 * The rootful backend ("rootful", --root): network, mount, PID, UTS and IPC
 * namespaces without a user namespace, a veth pair to the host whose
 * traffic the host's kernel forwards and masquerades under one owned nft
 * table (rootful/hosttable.h), and the engine answering the tree's DNS
 * through tun0 as in the rootless backend. docs/rootful.md describes it.
 */
#ifndef CF_ROOTFUL_ROOTFUL_H
#define CF_ROOTFUL_ROOTFUL_H

#include "backend/backend.h"

/* The rootful backend's operations (backend/backend.h). */
extern const struct cf_backend_ops cf_rootful_backend;

/* cf_rootful_cleanup_run() - `childflow --cleanup`: undo what dead runs left. Return an exit
 * status. */
int cf_rootful_cleanup_run(void);

#endif
