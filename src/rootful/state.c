/* SPDX-License-Identifier: MIT */
/*
 * Record format (one file per run, CF_STATE_DIR/<id>.run, root-only):
 *
 *   pid <pid> <start time>        childflow
 *   reaper <pid> <start time>     its reaper (rootful/reaper.h)
 *   link <name>                   the host's end of the veth
 *   sysctl <family> <iface> <original value> <path>
 *   iface <table> <veth>          --iface: "iif <veth> lookup <table>" rules and
 *                                 the default routes of <table>, both families
 *
 * A run is live while either process is (the start time, field 22 of
 * /proc/PID/stat, tells a reused pid apart; a zombie counts as dead). Written by hand: a few lines
 * of our own, in a directory only root can write.
 */
#include "rootful/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/netlink.h"
#include "util/cleanup.h"
#include "util/fileio.h"

struct record {
	pid_t pid, reaper;
	unsigned long long pstart, rstart;
	char link[IF_NAMESIZE];
	uint32_t table; /* --iface's routing table, or 0 */
	struct cf_sysctl_change ch[CF_STATE_MAX_CHANGES];
	size_t n;
};

/*
 * Sysctl paths name the switches of the current network namespace, so each
 * namespace keeps its own records: CF_STATE_DIR/net-<inode of the netns>.
 */
static int state_dir(char *buf, size_t len)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st) < 0)
		return -errno;
	snprintf(buf, len, CF_STATE_DIR "/net-%llu", (unsigned long long)st.st_ino);
	return 0;
}

static int lock_dir(void)
{
	char dir[64], path[80];
	int fd, r = state_dir(dir, sizeof(dir));

	if (r < 0)
		return r;
	if (mkdir(CF_STATE_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	cleanup_fd int fd = -1;
	ssize_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* A zombie is dead: its parent just has not reaped it (yet). */
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	/* After "comm)": state is field 3, starttime field 22. */
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		v = strtoull(p + 1, NULL, 10);
	return v;
}

static bool record_live(const struct record *rec)
{
	return (rec->pstart && start_time(rec->pid) == rec->pstart) ||
	       (rec->rstart && start_time(rec->reaper) == rec->rstart);
}

static void record_path(const char *id, char *buf, size_t len)
{
	char dir[64] = CF_STATE_DIR;

	state_dir(dir, sizeof(dir));
	snprintf(buf, len, "%s/%s.run", dir, id);
}

static void switch_path(int family, const char *iface, char *buf, size_t len)
{
	if (family == AF_INET)
		snprintf(buf, len, "/proc/sys/net/ipv4/conf/%s/forwarding", iface);
	else
		snprintf(buf, len, "/proc/sys/net/ipv6/conf/%s/force_forwarding", iface);
}

/*
 * A record is only as trustworthy as its directory; still, the one thing
 * the reaper writes as root is checked to be a forwarding switch with a
 * 0 or 1, whatever the file says.
 */
static bool change_valid(const struct cf_sysctl_change *c)
{
	char want[128];

	if ((c->family != AF_INET && c->family != AF_INET6) || strchr(c->iface, '/') ||
	    strcmp(c->iface, ".") == 0 || strcmp(c->iface, "..") == 0 ||
	    (strcmp(c->orig, "0") != 0 && strcmp(c->orig, "1") != 0))
		return false;
	switch_path(c->family, c->iface, want, sizeof(want));
	return strcmp(want, c->path) == 0;
}

static void parse_line(struct record *rec, const char *line)
{
	struct cf_sysctl_change *c = &rec->ch[rec->n];
	unsigned table;
	int pid;

	if (sscanf(line, "pid %d %llu", &pid, &rec->pstart) == 2)
		rec->pid = pid;
	else if (sscanf(line, "reaper %d %llu", &pid, &rec->rstart) == 2)
		rec->reaper = pid;
	else if (sscanf(line, "link %15s", rec->link) == 1)
		;
	else if (sscanf(line, "iface %u", &table) == 1 && table >= CF_HOST_TABLE_BASE &&
		 table <= (CF_HOST_TABLE_BASE | 0xffffu))
		rec->table = table;
	else if (rec->n < CF_STATE_MAX_CHANGES &&
		 sscanf(line, "sysctl %d %15s %7s %127s", &c->family, c->iface, c->orig, c->path) ==
		     4 &&
		 change_valid(c))
		rec->n++;
}

static int record_read(const char *id, struct record *rec)
{
	char path[160], line[256];
	FILE *f;

	memset(rec, 0, sizeof(*rec));
	record_path(id, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		parse_line(rec, line);
	fclose(f);
	return 0;
}

static int record_write(const char *id, const struct record *rec)
{
	char path[160], tmp[168];
	FILE *f;
	int r = 0;

	record_path(id, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "pid %d %llu\nreaper %d %llu\nlink %s\n", (int)rec->pid, rec->pstart,
		(int)rec->reaper, rec->rstart, rec->link);
	if (rec->table)
		fprintf(f, "iface %u %s\n", (unsigned)rec->table, rec->link);
	for (size_t i = 0; i < rec->n; i++)
		fprintf(f, "sysctl %d %s %s %s\n", rec->ch[i].family, rec->ch[i].iface,
			rec->ch[i].orig, rec->ch[i].path);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0)
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* The id of a record file name "<id>.run", or false. */
static bool record_id(const char *name, char id[9])
{
	char full[32];

	if (strlen(name) != 12 || strcmp(name + 8, ".run") != 0)
		return false;
	snprintf(full, sizeof(full), "%s%.8s", CF_HOST_TABLE_PREFIX, name);
	if (!cf_host_name_is_ours(full, CF_HOST_TABLE_PREFIX))
		return false;
	memcpy(id, name, 8);
	id[8] = '\0';
	return true;
}

/*
 * Whether a live run other than @self relies on the switch at @path; its
 * recorded original value goes to @orig.
 */
static DIR *open_state_dir(void)
{
	char dir[64];
	int r = state_dir(dir, sizeof(dir));

	if (r < 0) {
		errno = -r;
		return NULL;
	}
	return opendir(dir);
}

static bool others_rely(const char *path, const char *self, char orig[8])
{
	DIR *d = open_state_dir();
	struct dirent *de;
	bool found = false;

	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		struct record rec;
		char id[9];

		if (!record_id(de->d_name, id) || strcmp(id, self) == 0 ||
		    record_read(id, &rec) < 0 || !record_live(&rec))
			continue;
		for (size_t i = 0; i < rec.n && !found; i++) {
			if (strcmp(rec.ch[i].path, path) == 0) {
				memcpy(orig, rec.ch[i].orig, 8);
				found = true;
			}
		}
	}
	closedir(d);
	return found;
}

int cf_rootful_v6_mode(void)
{
	char v[8] = "";

	if (cf_read_small_file("/proc/sys/net/ipv6/conf/all/forwarding", v, sizeof(v)) < 0)
		return 0;
	if (v[0] == '1')
		return 2;
	return access("/proc/sys/net/ipv6/conf/all/force_forwarding", F_OK) == 0 ? 1 : 0;
}

/* Plan the switch at @path for @iface: record it if it is off, or on by another live run. */
static void plan_switch(struct record *rec, const char *id, int family, const char *iface,
			const char *path, bool *write)
{
	struct cf_sysctl_change *c = &rec->ch[rec->n];
	char v[8] = "";

	*write = false;
	if (rec->n >= CF_STATE_MAX_CHANGES || cf_read_small_file(path, v, sizeof(v)) < 0)
		return;
	memset(c, 0, sizeof(*c));
	if (strcmp(v, "0") == 0) {
		snprintf(c->orig, sizeof(c->orig), "0");
		*write = true;
	} else if (!others_rely(path, id, c->orig)) {
		return; /* on by itself: not childflow's to restore */
	}
	c->family = family;
	snprintf(c->iface, sizeof(c->iface), "%s", iface);
	snprintf(c->path, sizeof(c->path), "%s", path);
	rec->n++;
}

static void plan_switches(struct record *rec, const struct cf_host_plan *hp, int v6_mode,
			  bool write[CF_STATE_MAX_CHANGES])
{
	char path[128];

	for (size_t i = 0; i < hp->n_up4; i++) {
		switch_path(AF_INET, hp->up4[i], path, sizeof(path));
		plan_switch(rec, hp->id, AF_INET, hp->up4[i], path, &write[rec->n]);
	}
	for (size_t i = 0; v6_mode == 1 && i < hp->n_up6; i++) {
		switch_path(AF_INET6, hp->up6[i], path, sizeof(path));
		plan_switch(rec, hp->id, AF_INET6, hp->up6[i], path, &write[rec->n]);
	}
}

/*
 * --iface: the run's table sends everything out of the interface (via its
 * next hop, or on-link), and the veth's traffic looks that table up first.
 * The table before the rule, so the rule never points at an empty one.
 */
static int add_routing(const struct cf_host_plan *hp, char *err, size_t errlen)
{
	const struct cf_ip *gw[] = {&hp->iface_gw4, &hp->iface_gw6};
	static const int families[] = {AF_INET, AF_INET6};
	struct mnl_socket *nl = NULL;
	int r = cf_nl_open(&nl);

	for (size_t i = 0; r == 0 && i < 2; i++) {
		if (families[i] == AF_INET6 && !hp->link.tree6.family)
			break;
		r = cf_nl_route_table_default(nl, true, families[i], hp->rt_table,
					      gw[i]->family ? gw[i] : NULL, hp->iface_index);
		if (r == 0)
			r = cf_nl_rule_iif(nl, true, families[i], hp->veth, hp->rt_table,
					   CF_HOST_RULE_PRIORITY);
	}
	if (r < 0)
		snprintf(err, errlen, "--iface %s: cannot route the tree's traffic out of it: %s",
			 hp->iface, strerror(-r));
	cf_nl_close(nl);
	return r;
}

/* Undo add_routing(): whatever of it exists. */
static void remove_routing(const struct record *rec, FILE *say)
{
	static const int families[] = {AF_INET, AF_INET6};
	struct mnl_socket *nl = NULL;
	bool any = false;

	if (!rec->table || !cf_host_name_is_ours(rec->link, CF_HOST_VETH_PREFIX) ||
	    cf_nl_open(&nl) < 0)
		return;
	for (size_t i = 0; i < 2; i++) {
		any |= cf_nl_rule_iif(nl, false, families[i], rec->link, rec->table,
				      CF_HOST_RULE_PRIORITY) == 0;
		any |= cf_nl_route_table_default(nl, false, families[i], rec->table, NULL, 0) == 0;
	}
	if (any && say)
		fprintf(say, "childflow: removed the rules and routes of table %u (--iface)\n",
			(unsigned)rec->table);
	cf_nl_close(nl);
}

int cf_rootful_state_begin(const struct cf_host_plan *hp, pid_t self, pid_t reaper, int v6_mode,
			   struct cf_rootful_state *st, char *err, size_t errlen)
{
	bool write[CF_STATE_MAX_CHANGES + 1] = {false};
	struct record rec = {.pid = self, .reaper = reaper};
	int lock = lock_dir(), r;

	memset(st, 0, sizeof(*st));
	snprintf(st->id, sizeof(st->id), "%s", hp->id);
	if (lock < 0) {
		snprintf(err, errlen, "cannot lock the run records in %s: %s", CF_STATE_DIR,
			 strerror(-lock));
		return lock;
	}
	rec.pstart = start_time(self);
	rec.rstart = start_time(reaper);
	snprintf(rec.link, sizeof(rec.link), "%s", hp->veth);
	rec.table = hp->iface ? hp->rt_table : 0;
	plan_switches(&rec, hp, v6_mode, write);
	/* Written down before anything changes: a crash from here on leaves a record. */
	r = record_write(hp->id, &rec);
	if (r < 0)
		snprintf(err, errlen, "cannot write the run record %s.run in %s: %s", hp->id,
			 CF_STATE_DIR, strerror(-r));
	for (size_t i = 0; r == 0 && i < rec.n; i++) {
		if (write[i])
			r = cf_write_file(rec.ch[i].path, "1");
		if (r < 0)
			snprintf(err, errlen, "cannot turn on %s: %s", rec.ch[i].path,
				 strerror(-r));
	}
	if (r == 0 && hp->iface)
		r = add_routing(hp, err, errlen);
	memcpy(st->ch, rec.ch, sizeof(st->ch));
	st->n = rec.n;
	close(lock);
	return r;
}

static void say_sysctl(FILE *say, const char *verb, const struct cf_sysctl_change *c,
		       const char *tail)
{
	if (say)
		fprintf(say, "childflow: %s net.%s.conf.%s.%s = %s%s\n", verb,
			c->family == AF_INET ? "ipv4" : "ipv6", c->iface,
			c->family == AF_INET ? "forwarding" : "force_forwarding", c->orig, tail);
}

static void restore_switches(const char *id, const struct record *rec, FILE *say)
{
	char other[8];

	for (size_t i = 0; i < rec->n; i++) {
		const struct cf_sysctl_change *c = &rec->ch[i];
		int r;

		if (others_rely(c->path, id, other)) {
			say_sysctl(say, "left on (another run uses it):", c, "");
			continue;
		}
		r = cf_write_file(c->path, c->orig);
		if (r == -ENOENT)
			continue; /* the interface is gone, and its switch with it */
		if (r < 0 && say)
			fprintf(say, "childflow: cannot restore %s: %s\n", c->path, strerror(-r));
		else
			say_sysctl(say, "restored", c, "");
	}
}

static void remove_link(const char *name, FILE *say)
{
	struct mnl_socket *nl = NULL;

	if (!cf_host_name_is_ours(name, CF_HOST_VETH_PREFIX) || cf_nl_open(&nl) < 0)
		return;
	if (cf_nl_link_del(nl, name) == 0 && say)
		fprintf(say, "childflow: removed the veth %s\n", name);
	cf_nl_close(nl);
}

int cf_rootful_state_release(const char *id, FILE *say)
{
	char path[160];
	struct record rec;
	int lock = lock_dir(), r;

	if (lock < 0)
		return lock;
	r = record_read(id, &rec);
	if (r == 0) {
		restore_switches(id, &rec, say);
		remove_routing(&rec, say);
		remove_link(rec.link, say);
		record_path(id, path, sizeof(path));
		if (unlink(path) < 0)
			r = -errno;
	}
	close(lock);
	return r == -ENOENT ? 0 : r;
}

int cf_rootful_cleanup(FILE *say)
{
	DIR *d = open_state_dir();
	struct dirent *de;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct record rec;
		char id[9];

		if (!record_id(de->d_name, id) || record_read(id, &rec) < 0 || record_live(&rec))
			continue;
		if (say)
			fprintf(say,
				"childflow: run %s (pid %d) died without undoing its changes\n", id,
				(int)rec.pid);
		if (cf_rootful_state_release(id, say) == 0)
			n++;
	}
	closedir(d);
	return n;
}
