/* SPDX-License-Identifier: MIT */
/*
 * Cost: one sock_diag request per flow, and a walk of /proc only when the
 * inode is not yet known. A walk records every socket inode of every tree
 * process in a small cache, so a process opening many connections costs one
 * walk per new socket batch, not one per connection. When several processes
 * hold the socket (inherited over fork), the most recently started one is
 * named: that is the one that went on to use it in the common fork-and-exec
 * pattern.
 */
#include "engine/attrib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_SIZE 4096
#define RECALL_SIZE 8 /* processes remembered for cf_attrib_recall() */

struct cache_entry {
	unsigned long inode;
	int pid;
	unsigned long long start;
};

struct cf_attrib {
	int diag_fd;
	ino_t pidns;  /* inode of the sandbox's PID namespace */
	int last_pid; /* the process the previous lookup found */
	struct cache_entry cache[CACHE_SIZE];
	struct cf_attrib_proc recall[RECALL_SIZE]; /* the latest lookups' results */
	unsigned recall_next;
};

int cf_attrib_new(int diag_fd, pid_t helper, struct cf_attrib **out)
{
	char path[64];
	struct stat st;
	struct cf_attrib *a;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)helper);
	if (stat(path, &st) < 0)
		return -errno;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->diag_fd = diag_fd;
	a->pidns = st.st_ino;
	*out = a;
	return 0;
}

void cf_attrib_free(struct cf_attrib *a)
{
	if (!a)
		return;
	close(a->diag_fd);
	free(a);
}

static void put_addr(const struct cf_ip *ip, __be32 *dst)
{
	memset(dst, 0, 16);
	memcpy(dst, ip->b, ip->family == AF_INET ? 4 : 16);
}

/* sock_diag: the inode of the tree's socket with this exact 4-tuple. */
static int diag_inode(struct cf_attrib *a, uint8_t proto, const struct cf_ip *src, uint16_t sport,
		      const struct cf_ip *dst, uint16_t dport, unsigned long *inode)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg;
	char buf[1024];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.req.sdiag_family = src->family;
	msg.req.sdiag_protocol = proto;
	msg.req.idiag_states = ~0u;
	msg.req.id.idiag_sport = htons(sport);
	msg.req.id.idiag_dport = htons(dport);
	msg.req.id.idiag_cookie[0] = msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	put_addr(src, msg.req.id.idiag_src);
	put_addr(dst, msg.req.id.idiag_dst);
	if (send(a->diag_fd, &msg, sizeof(msg), 0) < 0)
		return -errno;
	n = recv(a->diag_fd, buf, sizeof(buf), 0);
	if (n < 0)
		return -errno;
	if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return -ENOENT;
	*inode = ((struct inet_diag_msg *)NLMSG_DATA(h))->idiag_inode;
	return *inode ? 0 : -ENOENT;
}

static unsigned long long start_time(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 2,
		       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
		       "%*d %*d %llu",
		       &start);
	fclose(f);
	return start;
}

static void cache_put(struct cf_attrib *a, unsigned long inode, int pid, unsigned long long start)
{
	struct cache_entry *c = &a->cache[inode % CACHE_SIZE];

	if (c->inode == inode && c->pid != pid && c->start > start)
		return; /* an inherited copy: keep the most recently started holder */
	c->inode = inode;
	c->pid = pid;
	c->start = start;
}

static bool in_sandbox(const struct cf_attrib *a, int pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
	return stat(path, &st) == 0 && st.st_ino == a->pidns;
}

/* Record every socket inode held by @pid. */
static void scan_fds(struct cf_attrib *a, int pid)
{
	char path[64], link[64];
	unsigned long long start = start_time(pid);
	struct dirent *d;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		char fdpath[384];
		unsigned long inode;
		ssize_t n;

		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, d->d_name);
		n = readlink(fdpath, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (sscanf(link, "socket:[%lu]", &inode) == 1)
			cache_put(a, inode, pid, start);
	}
	closedir(dir);
}

static void scan_tree(struct cf_attrib *a)
{
	struct dirent *d;
	DIR *proc = opendir("/proc");

	if (!proc)
		return;
	while ((d = readdir(proc))) {
		int pid = atoi(d->d_name);

		if (pid > 0 && in_sandbox(a, pid))
			scan_fds(a, pid);
	}
	closedir(proc);
}

static void fill_proc(int pid, struct cf_attrib_proc *out)
{
	char path[64];
	ssize_t n;
	FILE *f;

	memset(out, 0, sizeof(*out));
	out->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(out->comm, sizeof(out->comm), f))
			out->comm[strcspn(out->comm, "\n")] = '\0';
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, out->exe, sizeof(out->exe) - 1);
	out->exe[n > 0 ? n : 0] = '\0';
}

int cf_attrib_lookup(struct cf_attrib *a, uint8_t proto, const struct cf_ip *src, uint16_t sport,
		     const struct cf_ip *dst, uint16_t dport, struct cf_attrib_proc *out)
{
	unsigned long inode;
	struct cache_entry *c;

	/*
	 * TCP's exact lookup takes the socket's own address as "src"; UDP's is a
	 * receive-side lookup that takes the local address as "dst" (and so also
	 * finds unconnected and wildcard-bound sockets).
	 */
	if (proto == IPPROTO_UDP ? diag_inode(a, proto, dst, dport, src, sport, &inode) < 0
				 : diag_inode(a, proto, src, sport, dst, dport, &inode) < 0)
		return -ENOENT;
	c = &a->cache[inode % CACHE_SIZE];
	/*
	 * New sockets come in runs from one process (a client opening
	 * connection after connection): look at its descriptors before walking
	 * every process on the host (a stat each, to find the sandbox's).
	 */
	if (c->inode != inode && a->last_pid > 0 && in_sandbox(a, a->last_pid))
		scan_fds(a, a->last_pid);
	if (c->inode != inode)
		scan_tree(a);
	if (c->inode != inode)
		return -ENOENT;
	a->last_pid = c->pid;
	fill_proc(c->pid, out);
	a->recall[a->recall_next] = *out;
	a->recall_next = (a->recall_next + 1) % RECALL_SIZE;
	return 0;
}

/* The thread group of @tid, from /proc/TID/status; 0 when unknown. */
static int tgid_of(pid_t tid)
{
	char path[64], line[128];
	int tgid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid > 0 ? tgid : 0;
}

int cf_attrib_thread(struct cf_attrib *a, pid_t tid)
{
	struct cf_attrib_proc p;
	int pid = tgid_of(tid);

	if (pid <= 0)
		return 0;
	fill_proc(pid, &p); /* afresh: the same pid may have exec'd since */
	a->recall[a->recall_next] = p;
	a->recall_next = (a->recall_next + 1) % RECALL_SIZE;
	a->last_pid = pid;
	return pid;
}

int cf_attrib_recall(const struct cf_attrib *a, int pid, struct cf_attrib_proc *out)
{
	/* Newest first: a pid reused since holds the later process. */
	for (unsigned i = 1; i <= RECALL_SIZE; i++) {
		const struct cf_attrib_proc *p =
		    &a->recall[(a->recall_next + RECALL_SIZE - i) % RECALL_SIZE];

		if (p->pid > 0 && p->pid == pid) {
			*out = *p;
			return 0;
		}
	}
	return -ENOENT;
}
