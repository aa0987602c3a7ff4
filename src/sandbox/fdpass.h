/* SPDX-License-Identifier: MIT */
/* Messages with file descriptors over a SOCK_SEQPACKET socketpair (SCM_RIGHTS). */
#ifndef CF_SANDBOX_FDPASS_H
#define CF_SANDBOX_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define CF_FDPASS_MAX 8

/* Send @len bytes of @data with @nfds descriptors. Return 0 or -errno. */
int cf_fdpass_send(int sock, const void *data, size_t len, const int *fds, size_t nfds);

/*
 * Receive one message into @data (at most @len bytes) and up to @maxfds
 * descriptors (O_CLOEXEC). Return the byte count (0 on EOF) or -errno; *nfds
 * is set to the number of descriptors received.
 */
ssize_t cf_fdpass_recv(int sock, void *data, size_t len, int *fds, size_t maxfds, size_t *nfds);

#endif
