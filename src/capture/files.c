/* SPDX-License-Identifier: MIT */
#include "capture/files.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture/pcapng.h"
#include "util/log.h"

/* The wire-egress socket's receive buffer: the view sees all host traffic, so give it room. */
#define WIRE_RCVBUF (32 << 20)

#define EGRESS_COMMENT                                                                             \
	"the command tree's flows as they leave the host: host addresses and ports of "            \
	"childflow's sockets, the proxy as the peer when proxying; the bytes are exact, TCP "      \
	"handshakes, sequence numbers and segment boundaries are synthesized"
#define EGRESS_HTTPS_COMMENT                                                                       \
	"; https:// proxy: the TLS layer to the proxy is not recorded, its connections carry "     \
	"the plaintext tunnel (the CONNECT handshake, then the tree's bytes)"

static struct cf_pcapng_meta child_meta(const char *backend)
{
	return (struct cf_pcapng_meta){
	    .view = "child",
	    .backend = backend,
	    .kind = "sandbox packet socket (tun0 + lo)",
	    .comment = "packets of the command tree only, as the tree saw them",
	};
}

static struct cf_pcapng_meta wire_meta(const char *backend)
{
	return (struct cf_pcapng_meta){
	    .view = "wire-egress",
	    .backend = backend,
	    .kind = "host packet socket (AF_PACKET, every interface, filtered on childflow's "
		    "socket 4-tuples)",
	    .comment = "a real capture on the host, limited to the command tree's flows (IP "
		       "packets, link-layer headers not kept)",
	};
}

static struct cf_pcapng_meta egress_meta(const struct cf_config *cfg, const char *backend)
{
	return (struct cf_pcapng_meta){
	    .view = "egress",
	    .backend = backend,
	    .kind = "engine-synthesized from childflow's host sockets",
	    .comment = cfg->proxy.scheme == CF_PROXY_HTTPS ? EGRESS_COMMENT EGRESS_HTTPS_COMMENT
							   : EGRESS_COMMENT,
	};
}

void cf_capture_files_free(struct cf_capture_files *cf)
{
	free(cf->child_path);
	free(cf->egress_path);
	cf->child_path = cf->egress_path = NULL;
}

void cf_capture_files_discard(struct cf_capture_files *cf)
{
	if (cf->child) {
		cf_pcapng_close(cf->child);
		unlink(cf->child_path);
	}
	if (cf->egress) {
		cf_pcapng_close(cf->egress);
		unlink(cf->egress_path);
	}
	cf->child = cf->egress = NULL;
	cf_capture_files_free(cf);
}

/* @out without a trailing ".pcapng", then @suffix; NULL when out of memory. */
static char *with_suffix(const char *out, const char *suffix)
{
	size_t n = strlen(out), ext = strlen(".pcapng");
	char *p;

	if (n > ext && strcmp(out + n - ext, ".pcapng") == 0)
		n -= ext;
	p = malloc(n + strlen(suffix) + 1);
	if (p) {
		memcpy(p, out, n);
		memcpy(p + n, suffix, strlen(suffix) + 1);
	}
	return p;
}

static int name_views(struct cf_capture_files *cf, const struct cf_config *cfg)
{
	switch (cfg->capture_point) {
	case CF_CAPTURE_CHILD:
		cf->child_path = strdup(cfg->capture);
		return cf->child_path ? 0 : -ENOMEM;
	case CF_CAPTURE_WIRE_EGRESS:
	case CF_CAPTURE_EGRESS:
		cf->wire = cfg->capture_point == CF_CAPTURE_WIRE_EGRESS;
		cf->egress_path = strdup(cfg->capture);
		return cf->egress_path ? 0 : -ENOMEM;
	case CF_CAPTURE_BOTH:
		cf->child_path = with_suffix(cfg->capture, ".child.pcapng");
		cf->egress_path = with_suffix(cfg->capture, ".egress.pcapng");
		return cf->child_path && cf->egress_path ? 0 : -ENOMEM;
	}
	return -EINVAL;
}

int cf_capture_files_name(struct cf_capture_files *cf, const struct cf_config *cfg, char *err,
			  size_t errlen)
{
	int r;

	if (!cfg->capture)
		return 0;
	r = name_views(cf, cfg);
	if (r < 0) {
		snprintf(err, errlen, "--capture: out of memory");
		cf_capture_files_free(cf);
	}
	return r;
}

int cf_capture_wire_socket(void)
{
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	int one = 1, size = WIRE_RCVBUF;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	/* Root may exceed rmem_max. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return fd;
}

int cf_capture_files_probe(struct cf_capture_files *cf, char *err, size_t errlen)
{
	int fd;

	if (!cf->wire)
		return 0;
	fd = cf_capture_wire_socket();
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (fd == -EPERM || fd == -EACCES)
		snprintf(err, errlen,
			 "--capture-point wire-egress needs capture privilege on the "
			 "host (run as root or grant CAP_NET_RAW)");
	else
		snprintf(err, errlen,
			 "--capture-point wire-egress: cannot open a packet socket on "
			 "the host: %s",
			 strerror(-fd));
	cf_capture_files_free(cf);
	return fd;
}

/*
 * With @background the writes are a thread's of the writer's own, for the
 * views the engine thread writes (egress); the child view has a thread
 * already, which writes from the packet ring without a copy (capdrain.c).
 */
static int open_one(const char *path, const struct cf_pcapng_meta *meta, bool background,
		    struct cf_pcapng **out, char *err, size_t errlen)
{
	int r = cf_pcapng_open(path, false, meta, out);

	if (r == 0 && background) {
		r = cf_pcapng_background(*out);
		if (r < 0) {
			cf_pcapng_close(*out);
			*out = NULL;
			unlink(path);
		}
	}
	if (r == -EEXIST)
		snprintf(err, errlen,
			 "--capture: '%s' already exists; childflow never overwrites a "
			 "capture (remove it or choose another name)",
			 path);
	else if (r < 0)
		snprintf(err, errlen, "--capture: cannot create '%s': %s", path, strerror(-r));
	return r;
}

int cf_capture_files_create(struct cf_capture_files *cf, const struct cf_config *cfg,
			    const char *backend, char *err, size_t errlen)
{
	struct cf_pcapng_meta cm = child_meta(backend), wm = wire_meta(backend),
			      em = egress_meta(cfg, backend);
	int r = 0;

	if (cf->child_path)
		r = open_one(cf->child_path, &cm, false, &cf->child, err, errlen);
	if (r == 0 && cf->egress_path)
		r = open_one(cf->egress_path, cf->wire ? &wm : &em, true, &cf->egress, err, errlen);
	if (r < 0)
		cf_capture_files_discard(cf);
	return r;
}

int cf_capture_files_wire_socket(const struct cf_capture_files *cf, int *fd, char *err,
				 size_t errlen)
{
	int r;

	*fd = -1;
	if (!cf->wire)
		return 0;
	r = cf_capture_wire_socket();
	if (r < 0) {
		snprintf(err, errlen,
			 "--capture-point wire-egress: cannot open a packet socket on the host: %s",
			 strerror(-r));
		return r;
	}
	*fd = r;
	return 0;
}

/* Close @w (NULL: the view is off); the engine's error counts before the close's. */
static int close_writer(struct cf_pcapng **w, int engine_err)
{
	int r = *w ? cf_pcapng_close(*w) : 0;

	*w = NULL;
	return engine_err ? engine_err : r;
}

static void report_one(const char *path, int err, uint64_t dropped, bool host)
{
	if (!path)
		return;
	if (err)
		log_error("--capture: '%s' is incomplete: %s", path, strerror(-err));
	if (dropped && host)
		log_warn("--capture: the kernel dropped %llu packets on the host capture socket "
			 "(buffer full); '%s' may miss some of them",
			 (unsigned long long)dropped, path);
	else if (dropped)
		log_warn("--capture: the kernel dropped %llu packets (capture buffer full); '%s' "
			 "misses them",
			 (unsigned long long)dropped, path);
}

void cf_capture_files_finish(struct cf_capture_files *cf, const struct cf_capture_outcome *child,
			     const struct cf_capture_outcome *egress)
{
	int child_err = close_writer(&cf->child, child->err);
	int egress_err = close_writer(&cf->egress, egress->err);

	report_one(cf->child_path, child_err, child->dropped, false);
	report_one(cf->egress_path, egress_err, egress->dropped, true);
}
