/* SPDX-License-Identifier: MIT */
/*
 * Streaming pcapng writer (one section, written in host byte order).
 *
 * Blocks are assembled into a fixed buffer and handed to the kernel only at
 * block boundaries, so a reader (or a file cut short by a crash after a
 * flush) never sees half a block. Memory use is bounded by the buffer,
 * whatever the length of the capture. The first write error is remembered:
 * every later call returns it, and cf_pcapng_close() reports it.
 *
 * Writing to a pipe or socket whose reader went away raises SIGPIPE; the
 * caller must ignore that signal to get -EPIPE back instead.
 */
#ifndef CF_CAPTURE_PCAPNG_H
#define CF_CAPTURE_PCAPNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Link types (tcpdump.org LINKTYPE_*) used by childflow. */
#define CF_PCAPNG_LINKTYPE_ETHERNET 1
#define CF_PCAPNG_LINKTYPE_RAW 101 /* raw IPv4/IPv6, what a tun device gives */

/* Snapshot length of every interface: longer packets are truncated to it. */
#define CF_PCAPNG_SNAPLEN 262144u

/* Size of the write buffer (the bound on the writer's memory). */
#define CF_PCAPNG_BUFFER_SIZE (256u * 1024u)

/* Buffers of the background writer (cf_pcapng_background()): their count and size. */
#define CF_PCAPNG_BG_BUFFERS 4u
#define CF_PCAPNG_BG_BUFFER_SIZE (1024u * 1024u)

struct cf_pcapng;

/*
 * What the file holds, written as section comments "view=...",
 * "backend=...", "kind=..." and a free-form comment. Any field may be NULL
 * or empty to leave that comment out.
 */
struct cf_pcapng_meta {
	const char *view;
	const char *backend;
	const char *kind;
	const char *comment;
};

enum cf_pcapng_dir {
	CF_PCAPNG_DIR_UNKNOWN,
	CF_PCAPNG_DIR_IN,
	CF_PCAPNG_DIR_OUT,
};

/*
 * cf_pcapng_open() - Create @path (mode 0600) and write the section header.
 * Without @overwrite an existing file is refused with -EEXIST; with it, an
 * existing file is truncated (a symlink as last component is refused, -ELOOP).
 * A file created here is removed again if writing the header fails.
 * Return: 0 and *@out set, or -errno (-EINVAL: a meta string over 65535 bytes).
 */
int cf_pcapng_open(const char *path, bool overwrite, const struct cf_pcapng_meta *meta,
		   struct cf_pcapng **out);

/*
 * cf_pcapng_open_fd() - Same on an already open @fd, which the writer owns
 * from now on (it is closed on failure too). Return: 0 or -errno.
 */
int cf_pcapng_open_fd(int fd, const struct cf_pcapng_meta *meta, struct cf_pcapng **out);

/*
 * cf_pcapng_add_interface() - Write an Interface Description Block (@linktype,
 * if_name @name, if_description @description, ns timestamps, snaplen
 * CF_PCAPNG_SNAPLEN). @name and @description may be NULL; each must be at
 * most 65535 bytes (-EINVAL). Return: the interface id (>= 0) to pass to
 * cf_pcapng_write_packet(), or -errno.
 */
int cf_pcapng_add_interface(struct cf_pcapng *w, uint16_t linktype, const char *name,
			    const char *description);

/*
 * cf_pcapng_write_packet() - Append one Enhanced Packet Block on interface
 * @iface, time-stamped @ts_ns (ns since the Unix epoch), captured length
 * min(@len, CF_PCAPNG_SNAPLEN), direction @dir as epb_flags unless unknown.
 * Return: 0 or -errno (-EINVAL for an unknown interface, the first write error).
 */
int cf_pcapng_write_packet(struct cf_pcapng *w, int iface, uint64_t ts_ns, const void *data,
			   size_t len, enum cf_pcapng_dir dir);

/*
 * cf_pcapng_write_packet_ref() - The same block as cf_pcapng_write_packet(),
 * without copying the packet: the writer refers to @data, which must stay
 * unchanged until the next cf_pcapng_flush() or cf_pcapng_close() (the
 * writer may also write it out within this call). For packets that sit in
 * memory the caller keeps anyway, such as a packet ring's block: their bytes
 * then reach the kernel once, by writev(). Worth it for large packets only;
 * the two calls can be mixed freely. With a background writer
 * (cf_pcapng_background()) the packet is copied, as by cf_pcapng_write_packet().
 */
int cf_pcapng_write_packet_ref(struct cf_pcapng *w, int iface, uint64_t ts_ns, const void *data,
			       size_t len, enum cf_pcapng_dir dir);

/*
 * cf_pcapng_packet_room() - For a caller that builds a packet in place, to
 * spare the copy cf_pcapng_write_packet() makes: room for up to @cap bytes
 * of packet in the write buffer. Put the packet there, then call
 * cf_pcapng_packet_commit(); until then the room is not part of the file,
 * and no other call may come in between. NULL when @cap exceeds the
 * snaplen or a buffer, or after a write error.
 */
uint8_t *cf_pcapng_packet_room(struct cf_pcapng *w, size_t cap);

/*
 * cf_pcapng_packet_commit() - Add the @len bytes (at most the @cap asked
 * for) put into the room as a packet block; the same block
 * cf_pcapng_write_packet() would write. Return 0 or -errno.
 */
int cf_pcapng_packet_commit(struct cf_pcapng *w, int iface, uint64_t ts_ns, size_t len,
			    enum cf_pcapng_dir dir);

/*
 * cf_pcapng_flush() - Hand every buffered (complete) block to the kernel.
 * Return: 0 or the first write error seen.
 */
int cf_pcapng_flush(struct cf_pcapng *w);

/*
 * cf_pcapng_close() - Flush, close the file and free @w (NULL is a no-op).
 * Return: 0 or the first error seen over the writer's life.
 */
int cf_pcapng_close(struct cf_pcapng *w);

/*
 * cf_pcapng_background() - From now on write from a thread of the writer's
 * own (util/bgwrite.h), so the caller never waits in write() unless all
 * CF_PCAPNG_BG_BUFFERS are full. The bytes are the same; a write error then
 * surfaces at a later call, at the latest at cf_pcapng_close(), and the file
 * is cut back to the end of the last buffer written whole (a block
 * boundary). Return 0 or -errno (the sticky error, -ENOMEM).
 */
int cf_pcapng_background(struct cf_pcapng *w);

/* cf_pcapng_packets() - Number of packets accepted by cf_pcapng_write_packet(). */
uint64_t cf_pcapng_packets(const struct cf_pcapng *w);

#endif
