/* SPDX-License-Identifier: MIT */
/*
 * What a rootful run changes outside its owned table, and its undoing;
 * the records themselves are hoststate/records.h's.
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

#include "rootful/hosttable.h"
#include "sandbox/netlink.h"
#include "util/cleanup.h"
#include "util/fileio.h"

/*
 * Whether a live run other than @self relies on the switch at @path; its
 * recorded original value goes to @orig.
 */
static bool others_rely(const char *path, const char *self, char orig[8])
{
	DIR *d = cf_records_open_dir();
	struct dirent *de;
	bool found = false;

	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		struct cf_run_record rec;
		char id[9];

		if (!cf_record_id(de->d_name, id) || strcmp(id, self) == 0 ||
		    cf_record_read(id, &rec) < 0 || !cf_record_live(&rec))
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
static void plan_switch(struct cf_run_record *rec, const char *id, int family, const char *iface,
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

static void plan_switches(struct cf_run_record *rec, const struct cf_host_plan *hp, int v6_mode,
			  bool write[CF_STATE_MAX_CHANGES])
{
	char path[128];

	for (size_t i = 0; i < hp->n_up4; i++) {
		cf_switch_path(AF_INET, hp->up4[i], path, sizeof(path));
		plan_switch(rec, hp->id, AF_INET, hp->up4[i], path, &write[rec->n]);
	}
	for (size_t i = 0; v6_mode == 1 && i < hp->n_up6; i++) {
		cf_switch_path(AF_INET6, hp->up6[i], path, sizeof(path));
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
static void remove_routing(const struct cf_run_record *rec, FILE *say)
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
	struct cf_run_record rec = {.pid = self, .reaper = reaper};
	int lock = cf_records_lock(), r;

	memset(st, 0, sizeof(*st));
	snprintf(st->id, sizeof(st->id), "%s", hp->id);
	if (lock < 0) {
		snprintf(err, errlen, "cannot lock the run records in %s: %s", CF_STATE_DIR,
			 strerror(-lock));
		return lock;
	}
	rec.pstart = cf_proc_start_time(self);
	rec.rstart = cf_proc_start_time(reaper);
	snprintf(rec.link, sizeof(rec.link), "%s", hp->veth);
	rec.table = hp->iface ? hp->rt_table : 0;
	plan_switches(&rec, hp, v6_mode, write);
	/* Written down before anything changes: a crash from here on leaves a record. */
	r = cf_record_write(hp->id, &rec);
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
	cf_records_unlock(lock);
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

static void restore_switches(const char *id, const struct cf_run_record *rec, FILE *say)
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

/* A plain table (a kernel without owned ones), or one a crash left: gone in any case. */
static void remove_table(const char *id, FILE *say)
{
	char table[32];

	snprintf(table, sizeof(table), CF_HOST_TABLE_PREFIX "%s", id);
	if (cf_host_table_delete(table) == 0 && say)
		fprintf(say, "childflow: removed the nft table inet %s\n", table);
}

int cf_rootful_state_release(const char *id, FILE *say)
{
	struct cf_run_record rec;
	int lock = cf_records_lock(), r;

	if (lock < 0)
		return lock;
	r = cf_record_read(id, &rec);
	if (r == 0) {
		restore_switches(id, &rec, say);
		remove_routing(&rec, say);
		remove_table(id, say);
		remove_link(rec.link, say);
		r = cf_record_remove(id);
	}
	cf_records_unlock(lock);
	return r == -ENOENT ? 0 : r;
}

static int cleanup_one(const char *id, const struct cf_run_record *rec, void *arg)
{
	FILE *say = arg;

	if (say)
		fprintf(say, "childflow: run %s (pid %d) died without undoing its changes\n", id,
			(int)rec->pid);
	return cf_rootful_state_release(id, say);
}

int cf_rootful_cleanup(FILE *say)
{
	return cf_records_each_dead(cleanup_one, say);
}
