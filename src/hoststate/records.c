/* SPDX-License-Identifier: MIT */
/*
 * The rootful backend's run records (docs/rootful.md), one file per run in
 * CF_STATE_DIR/net-<inode>/<id>.run, root-only:
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
#include "hoststate/records.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"

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

/* Whether @fd is still the file at @path: an unlock may have removed it meanwhile. */
static bool still_linked(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

int cf_records_lock(void)
{
	char dir[64], path[80];
	int fd, r = state_dir(dir, sizeof(dir));

	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/lock", dir);
	/* Retried while the lock we got was removed by the run that held it (cf_records_unlock). */
	for (int tries = 0; tries < 16; tries++) {
		if (mkdir(CF_STATE_DIR, 0700) < 0 && errno != EEXIST)
			return -errno;
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		if (still_linked(fd, path))
			return fd;
		close(fd);
	}
	return -EAGAIN;
}

/* Whether the records directory @dir holds anything but its lock. */
static bool only_the_lock(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool only = d != NULL;

	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, "lock"))
			only = false;
	if (d)
		closedir(d);
	return only;
}

void cf_records_unlock(int fd)
{
	char dir[64], path[80];

	if (fd < 0)
		return;
	/* No record left: nothing of ours stays in /run either (a waiter sees it gone and retries).
	 */
	if (state_dir(dir, sizeof(dir)) == 0 && only_the_lock(dir)) {
		snprintf(path, sizeof(path), "%s/lock", dir);
		if (unlink(path) == 0 && rmdir(dir) == 0)
			(void)rmdir(CF_STATE_DIR); /* fails while another namespace has records */
	}
	close(fd);
}

unsigned long long cf_proc_start_time(pid_t pid)
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

bool cf_record_live(const struct cf_run_record *rec)
{
	return (rec->pstart && cf_proc_start_time(rec->pid) == rec->pstart) ||
	       (rec->rstart && cf_proc_start_time(rec->reaper) == rec->rstart);
}

static void record_path(const char *id, char *buf, size_t len)
{
	char dir[64] = CF_STATE_DIR;

	state_dir(dir, sizeof(dir));
	snprintf(buf, len, "%s/%s.run", dir, id);
}

void cf_switch_path(int family, const char *iface, char *buf, size_t len)
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
	cf_switch_path(c->family, c->iface, want, sizeof(want));
	return strcmp(want, c->path) == 0;
}

static void parse_line(struct cf_run_record *rec, const char *line)
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

int cf_record_read(const char *id, struct cf_run_record *rec)
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

int cf_record_write(const char *id, const struct cf_run_record *rec)
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
bool cf_record_id(const char *name, char id[9])
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

DIR *cf_records_open_dir(void)
{
	char dir[64];
	int r = state_dir(dir, sizeof(dir));

	if (r < 0) {
		errno = -r;
		return NULL;
	}
	return opendir(dir);
}

bool cf_host_name_is_ours(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(name, prefix, n) != 0 || strlen(name) != n + 8)
		return false;
	for (size_t i = n; i < n + 8; i++)
		if (!isxdigit((unsigned char)name[i]) || isupper((unsigned char)name[i]))
			return false;
	return true;
}

int cf_record_remove(const char *id)
{
	char path[160];

	record_path(id, path, sizeof(path));
	return unlink(path) < 0 ? -errno : 0;
}

int cf_records_each_dead(int (*fn)(const char *id, const struct cf_run_record *rec, void *arg),
			 void *arg)
{
	DIR *d = cf_records_open_dir();
	struct dirent *de;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct cf_run_record rec;
		char id[9];

		if (cf_record_id(de->d_name, id) && cf_record_read(id, &rec) == 0 &&
		    !cf_record_live(&rec) && (!fn || fn(id, &rec, arg) == 0))
			n++;
	}
	closedir(d);
	return n;
}

int cf_records_dead(void)
{
	return cf_records_each_dead(NULL, NULL);
}
