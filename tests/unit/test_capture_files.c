// SPDX-License-Identifier: MIT
/*
 * Tests of the capture files of a run (capture/files.c): the names of every
 * view, the files created with their section header, and every failure
 * leaving nothing on disk and no path behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/files.h"
#include "capture/pcapng.h"

struct fixture {
	char dir[64];
	char out[128]; /* DIR/run.pcapng */
	struct cf_config cfg;
	struct cf_capture_files cf;
	char err[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_capture_files.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->out, sizeof(f->out), "%s/run.pcapng", f->dir);
	cf_config_init(&f->cfg);
	*state = f;
	return 0;
}

/* Whatever a test left: every file of the directory, then the directory. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char p[400];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	cf_capture_files_discard(&f->cf);
	cf_config_free(&f->cfg);
	free(f);
	return 0;
}

static void set_capture(struct fixture *f, const char *path, enum cf_capture_point point)
{
	free(f->cfg.capture);
	f->cfg.capture = strdup(path);
	assert_non_null(f->cfg.capture);
	f->cfg.capture_point = point;
}

/* The number of entries in the fixture's directory. */
static int files_in_dir(const struct fixture *f)
{
	DIR *d = opendir(f->dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool file_has(const char *path, const char *needle)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n > 0);
	return memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
}

/* --- names -------------------------------------------------------------- */

static void assert_names(struct fixture *f, const char *capture, enum cf_capture_point point,
			 const char *child, const char *egress, bool wire)
{
	memset(&f->cf, 0, sizeof(f->cf));
	set_capture(f, capture, point);
	assert_int_equal(cf_capture_files_name(&f->cf, &f->cfg, f->err, sizeof(f->err)), 0);
	if (child)
		assert_string_equal(f->cf.child_path, child);
	else
		assert_null(f->cf.child_path);
	if (egress)
		assert_string_equal(f->cf.egress_path, egress);
	else
		assert_null(f->cf.egress_path);
	assert_int_equal(f->cf.wire, wire);
	assert_null(f->cf.child);
	assert_null(f->cf.egress);
	cf_capture_files_free(&f->cf);
}

static void test_each_view_names_its_files(void **state)
{
	struct fixture *f = *state;

	assert_names(f, "out.pcapng", CF_CAPTURE_CHILD, "out.pcapng", NULL, false);
	assert_names(f, "out.pcapng", CF_CAPTURE_EGRESS, NULL, "out.pcapng", false);
	assert_names(f, "out.pcapng", CF_CAPTURE_WIRE_EGRESS, NULL, "out.pcapng", true);
	assert_names(f, "d/out.pcapng", CF_CAPTURE_BOTH, "d/out.child.pcapng",
		     "d/out.egress.pcapng", false);
	/* Without the ".pcapng" ending the whole name is the stem. */
	assert_names(f, "out", CF_CAPTURE_BOTH, "out.child.pcapng", "out.egress.pcapng", false);
	assert_names(f, "out.pcap", CF_CAPTURE_BOTH, "out.pcap.child.pcapng",
		     "out.pcap.egress.pcapng", false);
	/* A name that is only the ending keeps it: no empty stem. */
	assert_names(f, ".pcapng", CF_CAPTURE_BOTH, ".pcapng.child.pcapng", ".pcapng.egress.pcapng",
		     false);
}

static void test_no_capture_names_nothing(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cf_capture_files_name(&f->cf, &f->cfg, f->err, sizeof(f->err)), 0);
	assert_null(f->cf.child_path);
	assert_null(f->cf.egress_path);
	assert_int_equal(cf_capture_files_create(&f->cf, &f->cfg, "b", f->err, sizeof(f->err)), 0);
	assert_int_equal(files_in_dir(f), 0);
}

/* --- create, finish, discard -------------------------------------------- */

static void create(struct fixture *f, enum cf_capture_point point)
{
	set_capture(f, f->out, point);
	assert_int_equal(cf_capture_files_name(&f->cf, &f->cfg, f->err, sizeof(f->err)), 0);
	assert_int_equal(cf_capture_files_probe(&f->cf, f->err, sizeof(f->err)), 0);
	assert_int_equal(
	    cf_capture_files_create(&f->cf, &f->cfg, "test-backend", f->err, sizeof(f->err)), 0);
}

static void test_both_creates_two_files_with_their_views(void **state)
{
	struct fixture *f = *state;
	struct cf_capture_outcome ok = {0, 0};
	char child[160], egress[160];

	create(f, CF_CAPTURE_BOTH);
	snprintf(child, sizeof(child), "%s/run.child.pcapng", f->dir);
	snprintf(egress, sizeof(egress), "%s/run.egress.pcapng", f->dir);
	assert_non_null(f->cf.child);
	assert_non_null(f->cf.egress);
	cf_capture_files_finish(&f->cf, &ok, &ok);
	/* Closed by the set, the paths kept for the summary. */
	assert_null(f->cf.child);
	assert_null(f->cf.egress);
	assert_string_equal(f->cf.child_path, child);
	assert_string_equal(f->cf.egress_path, egress);
	assert_int_equal(files_in_dir(f), 2);
	assert_true(file_has(child, "view=child"));
	assert_true(file_has(child, "backend=test-backend"));
	assert_true(file_has(egress, "view=egress"));
	assert_true(file_has(egress, "backend=test-backend"));
}

static void test_wire_egress_file_says_its_view(void **state)
{
	struct fixture *f = *state;
	struct cf_capture_outcome ok = {0, 0};

	/* No probe here: it needs CAP_NET_RAW, which the unit tests may lack. */
	set_capture(f, f->out, CF_CAPTURE_WIRE_EGRESS);
	assert_int_equal(cf_capture_files_name(&f->cf, &f->cfg, f->err, sizeof(f->err)), 0);
	assert_int_equal(cf_capture_files_create(&f->cf, &f->cfg, "b", f->err, sizeof(f->err)), 0);
	cf_capture_files_finish(&f->cf, &ok, &ok);
	assert_true(file_has(f->out, "view=wire-egress"));
}

static void test_discard_leaves_nothing(void **state)
{
	struct fixture *f = *state;

	create(f, CF_CAPTURE_BOTH);
	assert_int_equal(files_in_dir(f), 2);
	cf_capture_files_discard(&f->cf);
	assert_int_equal(files_in_dir(f), 0);
	assert_null(f->cf.child_path);
	assert_null(f->cf.egress_path);
	cf_capture_files_discard(&f->cf); /* twice is fine */
}

static void test_finish_with_an_engine_error_still_closes(void **state)
{
	struct fixture *f = *state;
	struct cf_capture_outcome bad = {-EIO, 3};

	create(f, CF_CAPTURE_CHILD);
	cf_capture_files_finish(&f->cf, &bad, &bad);
	assert_null(f->cf.child);
	assert_int_equal(files_in_dir(f), 1);
}

/* --- failures leave nothing behind --------------------------------------- */

static void test_existing_second_file_removes_the_first(void **state)
{
	struct fixture *f = *state;
	char egress[160], want[400];
	struct stat st;
	int fd;

	snprintf(egress, sizeof(egress), "%s/run.egress.pcapng", f->dir);
	fd = open(egress, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "mine", 4), 4);
	close(fd);
	set_capture(f, f->out, CF_CAPTURE_BOTH);
	assert_int_equal(cf_capture_files_name(&f->cf, &f->cfg, f->err, sizeof(f->err)), 0);
	assert_int_equal(cf_capture_files_create(&f->cf, &f->cfg, "b", f->err, sizeof(f->err)),
			 -EEXIST);
	snprintf(want, sizeof(want),
		 "--capture: '%s' already exists; childflow never overwrites a capture (remove it "
		 "or choose another name)",
		 egress);
	assert_string_equal(f->err, want);
	/* Only the file that was there before, untouched. */
	assert_int_equal(files_in_dir(f), 1);
	assert_int_equal(stat(egress, &st), 0);
	assert_int_equal(st.st_size, 4);
	assert_null(f->cf.child_path);
	assert_null(f->cf.egress_path);
	assert_null(f->cf.child);
}

static void test_missing_directory_creates_nothing(void **state)
{
	struct fixture *f = *state;
	char out[160], want[400];

	snprintf(out, sizeof(out), "%s/no/run.pcapng", f->dir);
	set_capture(f, out, CF_CAPTURE_BOTH);
	assert_int_equal(cf_capture_files_name(&f->cf, &f->cfg, f->err, sizeof(f->err)), 0);
	assert_int_equal(cf_capture_files_create(&f->cf, &f->cfg, "b", f->err, sizeof(f->err)),
			 -ENOENT);
	snprintf(want, sizeof(want), "--capture: cannot create '%s/no/run.child.pcapng': %s",
		 f->dir, strerror(ENOENT));
	assert_string_equal(f->err, want);
	assert_int_equal(files_in_dir(f), 0);
	assert_null(f->cf.child_path);
	assert_null(f->cf.egress_path);
}

static void test_wire_socket_is_none_without_the_wire_view(void **state)
{
	struct fixture *f = *state;
	int fd = 7;

	create(f, CF_CAPTURE_EGRESS);
	assert_int_equal(cf_capture_files_wire_socket(&f->cf, &fd, f->err, sizeof(f->err)), 0);
	assert_int_equal(fd, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_each_view_names_its_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_capture_names_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_both_creates_two_files_with_their_views, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_wire_egress_file_says_its_view, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_discard_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_finish_with_an_engine_error_still_closes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_existing_second_file_removes_the_first, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_missing_directory_creates_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_wire_socket_is_none_without_the_wire_view, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
