// SPDX-License-Identifier: MIT
/*
 * Tests of the profile learner (--report-format profile, obs/learn.c): a
 * name resolved then connected to becomes allow_domains_exact, an address
 * without a name allow_cidrs, names of one log never explain addresses of
 * another, names no rule can hold and hostile strings stay in escaped
 * comments, denials are comments, malformed lines are named and skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/learn.h"

#define EV "{\"schema_version\":1,\"ts_ms\":1714564800000,"
#define ANSWER(name, ip)                                                                           \
	EV "\"event\":\"dns_answer\",\"flow_id\":1,\"protocol\":\"udp\",\"qname\":\"" name         \
	   "\",\"qtype\":\"A\",\"mode\":\"relayed\",\"bytes\":50,\"answer_ips\":[\"" ip "\"]}\n"
#define CONNECT(proto, ip, port)                                                                   \
	EV "\"event\":\"connect_attempt\",\"flow_id\":2,\"protocol\":\"" proto                     \
	   "\",\"remote_addr\":\"" ip ":" port "\",\"remote_ip\":\"" ip "\",\"remote_port\":" port \
	   ",\"via_proxy\":false,\"pid\":7,\"comm\":\"curl\",\"exe\":null}\n"

/* Learn from the logs @logs (NULL-terminated, each a string of JSON lines); return the profile. */
static char *learn(const char *const *logs, char **errs)
{
	struct cf_learn *l;
	char *out = NULL, *err = NULL;
	size_t olen = 0, elen = 0;
	FILE *o = open_memstream(&out, &olen), *e = open_memstream(&err, &elen);

	assert_int_equal(cf_learn_new(&l), 0);
	for (size_t i = 0; logs[i]; i++) {
		FILE *in = fmemopen((void *)logs[i], strlen(logs[i]), "r");
		char name[32];

		snprintf(name, sizeof(name), "log%zu", i + 1);
		assert_int_equal(cf_learn_stream(l, in, name, e), 0);
		fclose(in);
	}
	assert_int_equal(cf_learn_print(l, o), 0);
	cf_learn_free(l);
	fclose(o);
	fclose(e);
	if (errs)
		*errs = err;
	else
		free(err);
	return out;
}

static void names_connected_to_become_exact_rules_and_literals_cidrs(void **state)
{
	const char *logs[] = {
	    ANSWER("www.example.com", "198.51.100.7") CONNECT("tcp", "198.51.100.7", "443")
		CONNECT("tcp", "203.0.113.9", "80") ANSWER("only.example.org", "198.51.100.8"),
	    NULL};
	char *p = learn(logs, NULL);

	(void)state;
	assert_non_null(strstr(p, "default_policy = \"deny\"\n"));
	assert_non_null(strstr(p, "allow_domains_exact = [\n  # first seen "
				  "2024-05-01T12:00:00.000Z in log1: tcp 198.51.100.7:443 "
				  "(resolved from www.example.com), curl (pid 7)\n"
				  "  \"www.example.com\",\n]\n"));
	assert_non_null(strstr(p, "  \"203.0.113.9/32\",\n]\n"));
	assert_null(strstr(p, "\"example.com\""));
	assert_non_null(strstr(p, "# Resolved, never connected to (not allowed):\n"
				  "# only.example.org: "));
	free(p);
}

static void a_name_from_one_log_never_explains_an_address_in_another(void **state)
{
	const char *logs[] = {ANSWER("a.example", "198.51.100.7"),
			      CONNECT("tcp", "198.51.100.7", "443"), NULL};
	char *p = learn(logs, NULL);

	(void)state;
	assert_non_null(strstr(p, "allow_domains_exact = []\n"));
	assert_non_null(strstr(p, "in log2: tcp 198.51.100.7:443, curl (pid 7)\n"
				  "  \"198.51.100.7/32\",\n"));
	free(p);
}

static void udp_icmp_and_ipv6_literals_are_learned_as_host_cidrs(void **state)
{
	const char *logs[] = {CONNECT("udp", "198.51.100.9", "53") EV
			      "\"event\":\"datagram_flow_start\",\"flow_id\":3,\"protocol\":"
			      "\"icmpv6\",\"remote_addr\":\"2001:db8::9\",\"remote_ip\":"
			      "\"2001:db8::9\",\"remote_port\":null}\n",
			      NULL};
	char *p = learn(logs, NULL);

	(void)state;
	assert_non_null(strstr(p, "  \"198.51.100.9/32\",\n"));
	assert_non_null(strstr(p, "  \"2001:db8::9/128\",\n"));
	free(p);
}

static void hostile_names_stay_escaped_comments_and_denials_are_comments(void **state)
{
	const char *logs[] = {
	    ANSWER("bad\\u001b[2Jname\\\"x", "198.51.100.7") CONNECT("tcp", "198.51.100.7", "443")
		EV "\"event\":\"dns_query\",\"flow_id\":5,\"qname\":\"evil.example\"}\n" EV
		   "\"event\":\"policy_violation\",\"flow_id\":5,\"protocol\":\"dns\",\"remote\":"
		   "\"198.18.0.1:53\",\"reason\":\"evil.example matches --deny-domain "
		   "evil.example\"}\n"
		   "not json\n",
	    NULL};
	char *errs = NULL;
	char *p = learn(logs, &errs);

	(void)state;
	assert_non_null(strstr(p, "allow_domains_exact = []\n"));
	assert_non_null(strstr(p, "# bad\\x1b[2Jname\"x: first seen"));
	assert_null(strchr(p, '\x1b'));
	assert_non_null(
	    strstr(p, "# Denied in the run (not allowed):\n"
		      "# dns evil.example: evil.example matches --deny-domain evil.example\n"));
	assert_string_equal(errs, "log1: line 5: not a JSON object\n");
	free(errs);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(names_connected_to_become_exact_rules_and_literals_cidrs),
	    cmocka_unit_test(a_name_from_one_log_never_explains_an_address_in_another),
	    cmocka_unit_test(udp_icmp_and_ipv6_literals_are_learned_as_host_cidrs),
	    cmocka_unit_test(hostile_names_stay_escaped_comments_and_denials_are_comments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
