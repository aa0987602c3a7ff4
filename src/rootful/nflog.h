/* SPDX-License-Identifier: MIT */
/*
 * The NFLOG group the run's table copies the tree's egress packets to
 * (-C egress, wire-egress, both; capture/hostview.h writes them): a socket
 * bound to a group of the run's own, before the table names it.
 */
#ifndef CF_ROOTFUL_NFLOG_H
#define CF_ROOTFUL_NFLOG_H

#include <stddef.h>
#include <stdint.h>

/*
 * cf_nflog_open() - a NETLINK_NETFILTER socket bound to a free NFLOG group
 * (*@group), copying whole packets, each at once. Return the fd, or -errno
 * with @err set.
 */
int cf_nflog_open(uint16_t *group, char *err, size_t errlen);

#endif
