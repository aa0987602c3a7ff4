#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# How fast --report reads a large flow log, and in how much memory.
#
# Usage: bench/report_bench.sh [BUILD_DIR] [EVENTS]
#   BUILD_DIR  a configured and built meson build directory (default: ./build)
#   EVENTS     number of events in the generated log (default: 1000000)
#
# Generates a flow log of EVENTS events (a realistic mix: DNS queries and
# answers, connection attempts and results, flow ends, policy violations and
# the odd runtime failure, with more distinct targets than the aggregator's
# 10,000-key cap, so the "(other)" path is exercised), then times
# `childflow --report` in each format and prints events/second and the peak
# resident memory. If this build's childflow does not handle --report yet,
# a tiny driver calling cf_report_run() is linked against libchildflow.a.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
events=${2:-1000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/report_bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/flow.jsonl

python3 - "$log" "$events" <<'EOF'
import random, sys

path, total = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
ts = 1714564800000
head = '{"schema_version":1,"ts_ms":%d,"event":"%s","flow_id":%d,'
names = ["host%d.example.com" % i for i in range(3000)]
n = 0
flow = 0
with open(path, "w", buffering=1 << 20) as f:
    w = f.write
    while n < total:
        flow += 1
        ts += rnd.randint(0, 3)
        name = names[rnd.randrange(len(names))]
        ip = "198.51.%d.%d" % (rnd.randrange(256), rnd.randrange(1, 255))
        dns = '"protocol":"udp","server":"10.0.2.3:53","server_ip":"10.0.2.3","server_port":53,"qname":"%s","qtype":"A"' % name
        w(head % (ts, "dns_query", flow) + dns + "}\n")
        w(head % (ts + 9, "dns_answer", flow) + dns +
          ',"mode":"relayed","bytes":61,"answer_ips":["%s"]}\n' % ip)
        flow += 1
        port = rnd.choice((443, 443, 443, 80, 8080))
        proxy = "true" if rnd.random() < 0.7 else "false"
        addr = '"protocol":"tcp","remote_addr":"%s:%d","remote_ip":"%s","remote_port":%d,"via_proxy":%s' % (ip, port, ip, port, proxy)
        proc = ',"pid":%d,"comm":"curl","exe":"/usr/bin/curl"' % (1000 + flow % 50)
        w(head % (ts + 10, "connect_attempt", flow) + addr + proc + "}\n")
        if rnd.random() < 0.1:
            w(head % (ts + 50, "connect_result", flow) + addr +
              ',"status":"error","error":"connection refused"' + proc + "}\n")
            n += 4
        else:
            w(head % (ts + 50, "connect_result", flow) + addr + ',"status":"ok","error":null' + proc + "}\n")
            w(head % (ts + 900, "flow_end", flow) + '"protocol":"tcp","remote_addr":"%s:%d","remote_ip":"%s","remote_port":%d' % (ip, port, ip, port) +
              ',"bytes_sent":%d,"bytes_received":%d,"duration_ms":%d}\n' % (rnd.randrange(10000), rnd.randrange(1000000), 890))
            n += 5
        if rnd.random() < 0.05:
            w(head % (ts + 1, "policy_violation", flow) +
              '"protocol":"tcp","remote":"169.254.169.254:80","remote_ip":"169.254.169.254","remote_port":80,'
              '"action":"deny","reason_code":"metadata","control":"--block-metadata",'
              '"matched_cidr":"169.254.169.254/32","matched_domain":null,"reason":"cloud metadata endpoint"}\n')
            n += 1
        if rnd.random() < 0.0001:
            w('{"schema_version":1,"ts_ms":%d,"event":"runtime_failure","phase":"run",'
              '"reason_code":"dns_upstream_timeout","detail":"no reply"}\n' % ts)
            n += 1
EOF
lines=$(wc -l <"$log")
size=$(du -m "$log" | cut -f1)

runner=("$build/childflow" --report "$log" --report-format)
if ! "$build/childflow" --report "$log" --report-format text >/dev/null 2>&1; then
	cat >"$work/driver.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "obs/report.h"
int main(int argc, char **argv)
{
	int fmt = strcmp(argv[2], "json") == 0	    ? CF_REPORT_JSON
		  : strcmp(argv[2], "markdown") == 0 ? CF_REPORT_MARKDOWN
						     : CF_REPORT_TEXT;
	return cf_report_run(argv[1], fmt, stdout, stderr) < 0;
}
EOF
	# shellcheck disable=SC2046
	cc -O2 -D_GNU_SOURCE -I"$root/src" -o "$work/driver" "$work/driver.c" \
		"$build/libchildflow.a" \
		$(pkg-config --libs jansson libnftables libmnl ldns openssl)
	runner=("$work/driver" "$log")
	echo "note: $build/childflow does not run --report yet; timing cf_report_run() directly"
fi

echo "flow log: $lines events, $size MiB"
for fmt in text markdown json; do
	/usr/bin/time -f "%e %M" -o "$work/time" "${runner[@]}" "$fmt" >"$work/out.$fmt"
	read -r secs rss_kib <"$work/time"
	python3 - "$fmt" "$lines" "$secs" "$rss_kib" <<'EOF'
import sys
fmt, lines, secs, rss = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rate = lines / secs if secs > 0 else float("inf")
print("report %-8s %8.2f s  %12s events/s  peak RSS %6.1f MiB" % (fmt, secs, "{:,.0f}".format(rate), rss / 1024))
EOF
done
