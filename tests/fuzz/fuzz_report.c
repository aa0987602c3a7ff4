/* SPDX-License-Identifier: MIT */
/* libFuzzer target: --report reading an arbitrary (hostile or corrupt) flow log. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "obs/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *in, *out, *err;

	if (size == 0)
		return 0;
	in = fmemopen((void *)(data + 1), size - 1, "r");
	out = fopen("/dev/null", "w");
	err = fopen("/dev/null", "w");
	if (in && out && err)
		cf_report_stream(in, "fuzz", data[0] % 3, out, err);
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	if (err)
		fclose(err);
	return 0;
}
