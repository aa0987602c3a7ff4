/* SPDX-License-Identifier: MIT */
/*
 * childflow: run one command tree in its own network context.
 *
 * main() and the runner (runner.c) are the only places that print a fatal
 * error and pick an exit status (cli.h, enum cf_exit); the modules below
 * return -errno with a one-line message (backends: struct cf_fail). Only
 * the engine logs while the tree runs, as things happen.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/profile.h"
#include "doctor/doctor.h"
#include "obs/learn.h"
#include "obs/report.h"
#include "rootful/rootful.h"
#include "runner.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/version.h"

static int check_supported(const struct cf_config *c)
{
	char err[256];

	if (cf_config_check(c, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -EINVAL;
	}
	return 0;
}

/* Defaults, then the profile chain, then what the command line set. */
static int build_config(const struct cf_cli *cli, struct cf_config *cfg)
{
	struct cf_config prof;
	char err[1024];
	int r;

	if (cli->profile) {
		r = cf_profile_load_files(cli->profile, &prof, &cfg->profile_files, err,
					  sizeof(err));
		if (r == 0)
			r = cf_config_overlay(cfg, &prof);
		else
			log_error("%s", err);
		cf_config_free(&prof);
		if (r < 0)
			return r;
	}
	return cf_config_overlay(cfg, &cli->cfg);
}

/* --report-format profile: one learned profile from every --report FLOWLOG. */
static int run_learn(const struct cf_cli *cli)
{
	cleanup_free const char **paths = calloc(cli->report_more.n + 1, sizeof(*paths));
	const char *failed = NULL;
	int r;

	if (!paths) {
		log_error("--report: out of memory");
		return CF_EXIT_USAGE;
	}
	paths[0] = cli->report_path;
	for (size_t i = 0; i < cli->report_more.n; i++)
		paths[i + 1] = cli->report_more.v[i];
	r = cf_learn_run(paths, cli->report_more.n + 1, stdout, stderr, &failed);
	if (r == -EIO)
		log_error("--report: cannot write the profile");
	else if (r < 0 && failed)
		log_error("--report: cannot read '%s': %s", failed, strerror(-r));
	else if (r < 0)
		log_error("--report: %s", strerror(-r));
	return r < 0 ? CF_EXIT_USAGE : 0;
}

static int run_report(const char *path, const struct cf_config *cfg)
{
	int format = cfg->report_format == CF_FORMAT_JSON	? CF_REPORT_JSON
		     : cfg->report_format == CF_FORMAT_MARKDOWN ? CF_REPORT_MARKDOWN
								: CF_REPORT_TEXT;
	int r = cf_report_run(path, format, stdout, stderr);

	if (r == -EIO)
		log_error("--report: cannot write the report");
	else if (r < 0)
		log_error("--report: cannot read '%s': %s", path, strerror(-r));
	return r < 0 ? CF_EXIT_USAGE : 0;
}

int main(int argc, char *argv[])
{
	struct cf_cli cli;
	struct cf_config cfg;
	char err[512];
	int code = CF_EXIT_USAGE;

	if (getenv("CHILDFLOW_DEBUG"))
		cf_log_set_level(CF_LOG_DEBUG);
	cf_config_init(&cfg);
	if (cf_cli_parse(argc, argv, &cli, err, sizeof(err)) < 0) {
		log_error("%s", err);
		fprintf(stderr, "Try 'childflow --help' for more information.\n");
		goto out;
	}
	/* Before anything else runs: the sandbox's helper is cloned from this image. */
	cf_cli_scrub_argv(&cli);
	switch (cli.mode) {
	case CF_MODE_HELP:
		cf_cli_usage(stdout);
		code = 0;
		goto out;
	case CF_MODE_VERSION:
		printf("childflow %s\n", cf_version());
		code = 0;
		goto out;
	case CF_MODE_DOCTOR:
		if (build_config(&cli, &cfg) < 0)
			goto out;
		code = cf_doctor_run(cfg.backend, cfg.doctor_format == CF_FORMAT_JSON, stdout);
		code = code < 0 ? CF_EXIT_RUNTIME : cf_doctor_exit_status(code);
		goto out;
	case CF_MODE_CLEANUP:
		code = cf_rootful_cleanup_run();
		goto out;
	case CF_MODE_REPORT:
		if (build_config(&cli, &cfg) < 0)
			goto out;
		if (cfg.report_format == CF_FORMAT_PROFILE) {
			code = run_learn(&cli);
		} else if (cli.report_more.n) {
			log_error("--report: several flow logs are merged only into a profile: add "
				  "--report-format profile, or give one --report");
		} else {
			code = run_report(cli.report_path, &cfg);
		}
		goto out;
	case CF_MODE_DUMP_PROFILE:
		if (build_config(&cli, &cfg) < 0 || check_supported(&cfg) < 0)
			goto out;
		/* Secrets are masked unless asked for explicitly (docs/profile-schema.md). */
		code = cf_profile_dump(&cfg, getenv("CHILDFLOW_SHOW_SECRETS") != NULL, stdout) < 0
			   ? CF_EXIT_RUNTIME
			   : 0;
		goto out;
	case CF_MODE_RUN:
		break;
	}
	if (build_config(&cli, &cfg) < 0 || check_supported(&cfg) < 0)
		goto out;
	if (cfg.command.n == 0) {
		log_error("no command given: childflow [OPTIONS] -- COMMAND [ARGS]...");
		goto out;
	}
	code = cf_run(&cfg);
out:
	cf_cli_free(&cli);
	cf_config_free(&cfg);
	return code;
}
