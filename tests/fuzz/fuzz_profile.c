/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for profile loading with `extends` chains
 * (cf_profile_load): a profile may come from a repository the user does not
 * control, and so may the profiles it extends. Each input writes four
 * profiles p0.toml .. p3.toml into a scratch directory and loads p0.toml.
 *
 * Input: 4 bytes, one per profile: bit 7 adds an `extends` line naming
 * p(bits 0-1).toml, spelt as bits 2-4 say (plain, "./", absolute,
 * "sub/../", a missing file, a directory, a trailing '/', ""); then the
 * profiles' texts, separated by 0xff bytes (which TOML text never holds).
 * Properties, abort on violation:
 *
 * - the load succeeds or fails with -EINVAL, never anything else (every
 *   file of the chain exists or is named by a profile); a failure has a
 *   message of one line without control characters, a success none;
 * - a loaded chain dumped with its secrets loads back, and dumps again to
 *   the same text (but the `extends` comment: the chain is merged).
 *
 * The scratch directory is under $TMPDIR (or /tmp) and removed at exit.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

#define NPROFILES 4

static char dir[4096];

static void path_of(const char *name, char *out, size_t len)
{
	CHECK((size_t)snprintf(out, len, "%s/%s", dir, name) < len);
}

static void remove_dir(void)
{
	static const char *const names[] = {"p0.toml", "p1.toml",   "p2.toml",
					    "p3.toml", "dump.toml", "hosts"};
	char p[4200];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_of(names[i], p, sizeof(p));
		(void)unlink(p);
	}
	path_of("sub", p, sizeof(p));
	(void)rmdir(p);
	(void)rmdir(dir);
}

static void make_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char p[4200];
	FILE *f;

	CHECK((size_t)snprintf(dir, sizeof(dir), "%s/cf-fuzz-profile.XXXXXX",
			       tmp && *tmp ? tmp : "/tmp") < sizeof(dir));
	CHECK(mkdtemp(dir));
	atexit(remove_dir);
	path_of("sub", p, sizeof(p));
	CHECK(mkdir(p, 0700) == 0);
	path_of("hosts", p, sizeof(p)); /* for hosts_file = "hosts" */
	f = fopen(p, "w");
	CHECK(f && fputs("198.51.100.7 origin.test\n", f) >= 0 && fclose(f) == 0);
}

static void extends_line(uint8_t spec, char *out, size_t len)
{
	unsigned int to = spec & 3;

	switch ((spec >> 2) & 7) {
	case 0:
		snprintf(out, len, "extends = \"p%u.toml\"\n", to);
		break;
	case 1:
		snprintf(out, len, "extends = \"./p%u.toml\"\n", to);
		break;
	case 2:
		snprintf(out, len, "extends = \"%s/p%u.toml\"\n", dir, to);
		break;
	case 3:
		snprintf(out, len, "extends = \"sub/../p%u.toml\"\n", to);
		break;
	case 4:
		snprintf(out, len, "extends = \"missing.toml\"\n");
		break;
	case 5:
		snprintf(out, len, "extends = \"sub\"\n");
		break;
	case 6:
		snprintf(out, len, "extends = \"p%u.toml/\"\n", to);
		break;
	default:
		snprintf(out, len, "extends = \"\"\n");
		break;
	}
}

static void write_profile(unsigned int i, uint8_t spec, const uint8_t *text, size_t len)
{
	char name[16], p[4200], line[4300];
	FILE *f;

	snprintf(name, sizeof(name), "p%u.toml", i);
	path_of(name, p, sizeof(p));
	f = fopen(p, "w");
	CHECK(f);
	if (spec & 0x80) {
		extends_line(spec, line, sizeof(line));
		CHECK(fputs(line, f) >= 0);
	}
	CHECK(fwrite(text, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

static void check_message(int r, const char *err, size_t errlen)
{
	CHECK(memchr(err, '\0', errlen));
	/* One line, and nothing a terminal would act on (the profile wrote the paths it quotes). */
	for (const char *c = err; *c; c++)
		CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
	CHECK(r == 0 ? err[0] == '\0' : err[0] != '\0');
}

/* Dump @c with its secrets, minus the `extends` line; NULL when it cannot be dumped. */
static char *dump_text(const struct cf_config *c)
{
	char *buf = NULL, *line, *out;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	int r;

	CHECK(m);
	r = cf_profile_dump(c, true, m);
	CHECK(fclose(m) == 0);
	CHECK(r == 0 || r == -EILSEQ);
	if (r < 0) {
		free(buf);
		return NULL;
	}
	out = calloc(1, len + 1);
	CHECK(out);
	for (char *save = NULL, *s = buf; (line = strtok_r(s, "\n", &save)); s = NULL) {
		if (strstr(line, "extends"))
			continue;
		strcat(out, line);
		strcat(out, "\n");
	}
	free(buf);
	return out;
}

static void check_roundtrip(const struct cf_config *c)
{
	char p[4200], err[1024], *first = dump_text(c), *second;
	struct cf_config back;
	FILE *f;
	int r;

	if (!first)
		return;
	path_of("dump.toml", p, sizeof(p));
	f = fopen(p, "w");
	CHECK(f);
	r = cf_profile_dump(c, true, f);
	CHECK(fclose(f) == 0 && r == 0);
	r = cf_profile_load(p, &back, err, sizeof(err));
	if (r != 0) {
		fprintf(stderr, "dump does not load back: %s\n", err);
		abort();
	}
	second = dump_text(&back);
	CHECK(second);
	if (strcmp(first, second) != 0) {
		fprintf(stderr, "dump changed on reload:\n%s---\n%s", first, second);
		abort();
	}
	free(first);
	free(second);
	cf_config_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *text = data + NPROFILES, *end = data + size;
	char p0[4200], err[1024];
	struct cf_config c;
	int r;

	if (!dir[0])
		make_dir();
	if (size < NPROFILES)
		return 0;
	for (unsigned int i = 0; i < NPROFILES; i++) {
		const uint8_t *cut = memchr(text, 0xff, (size_t)(end - text));
		const uint8_t *stop = i + 1 < NPROFILES && cut ? cut : end;

		write_profile(i, data[i], text, (size_t)(stop - text));
		text = stop < end ? stop + 1 : end;
	}
	path_of("p0.toml", p0, sizeof(p0));
	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	r = cf_profile_load(p0, &c, err, sizeof(err));
	if (r != 0 && r != -EINVAL) {
		fprintf(stderr, "load: %d %s\n", r, err);
		abort();
	}
	check_message(r, err, sizeof(err));
	if (r == 0)
		check_roundtrip(&c);
	cf_config_free(&c);
	return 0;
}
