/* SPDX-License-Identifier: MIT */
/*
 * The rootful backend's run records: what a run changes outside its owned
 * nft table, written down before it changes it (docs/rootful.md, "Leaving
 * nothing behind"), and the names a run's host-side things carry. Below
 * the doctor, which reports the records of runs that died, and the rootful
 * backend, which writes and undoes them.
 */
#ifndef CF_HOSTSTATE_RECORDS_H
#define CF_HOSTSTATE_RECORDS_H

#include <dirent.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CF_STATE_DIR "/run/childflow"
/* Every host-side name of a run starts so, followed by the 8 hex digits of its id. */
#define CF_HOST_VETH_PREFIX "cf-"
#define CF_HOST_TABLE_PREFIX "childflow-"
/* Run routing tables (--iface) are numbered from here, plus 16 random bits. */
#define CF_HOST_TABLE_BASE 0x63660000u
#define CF_HOST_MAX_UPLINKS 16
#define CF_STATE_MAX_CHANGES (2 * CF_HOST_MAX_UPLINKS)

struct cf_sysctl_change {
	char path[128];
	char iface[IF_NAMESIZE];
	int family;   /* AF_INET (forwarding) or AF_INET6 (force_forwarding) */
	char orig[8]; /* the value before childflow turned it on */
};

struct cf_run_record {
	pid_t pid, reaper;
	unsigned long long pstart, rstart; /* their start times (0: none) */
	char link[IF_NAMESIZE];		   /* the host's end of the veth */
	uint32_t table;			   /* --iface's routing table, or 0 */
	struct cf_sysctl_change ch[CF_STATE_MAX_CHANGES];
	size_t n;
};

/* cf_host_name_is_ours() - whether @name is "<prefix><8 hex digits>" (nothing broader). */
bool cf_host_name_is_ours(const char *name, const char *prefix);

/* cf_records_lock() - take the records' exclusive lock (made if need be). Return its fd or -errno.
 */
int cf_records_lock(void);

/*
 * cf_records_unlock() - give back cf_records_lock()'s @fd; when no record is
 * left, its lock file and directory (and CF_STATE_DIR, if empty) go too.
 */
void cf_records_unlock(int fd);

/* cf_records_open_dir() - the current network namespace's records directory, or NULL (errno). */
DIR *cf_records_open_dir(void);

/* cf_record_id() - the run id of record file @name ("<id>.run") into @id; false if it is none. */
bool cf_record_id(const char *name, char id[9]);

/* cf_record_read() - read run @id's record; a line that does not check out is skipped. Return 0 or
 * -errno. */
int cf_record_read(const char *id, struct cf_run_record *rec);

/* cf_record_write() - write run @id's record (atomically, synced). Return 0 or -errno. */
int cf_record_write(const char *id, const struct cf_run_record *rec);

/* cf_record_remove() - remove run @id's record. Return 0 or -errno. */
int cf_record_remove(const char *id);

/* cf_record_live() - whether the run's childflow or its reaper still runs. */
bool cf_record_live(const struct cf_run_record *rec);

/*
 * cf_records_each_dead() - call @fn (NULL: none) for each record of a run
 * that is gone; return how many there were (for which @fn returned 0), or
 * -errno.
 */
int cf_records_each_dead(int (*fn)(const char *id, const struct cf_run_record *rec, void *arg),
			 void *arg);

/* cf_records_dead() - how many records name runs that are gone (the doctor). Return it or -errno.
 */
int cf_records_dead(void);

/* cf_proc_start_time() - field 22 of /proc/@pid/stat; 0 for none or a zombie. */
unsigned long long cf_proc_start_time(pid_t pid);

/* cf_switch_path() - the /proc/sys path of @iface's forwarding switch for @family. */
void cf_switch_path(int family, const char *iface, char *buf, size_t len);

#endif
