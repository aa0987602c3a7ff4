/* SPDX-License-Identifier: MIT */
/*
 * The version childflow reports. The implementation is generated at build
 * time from src/util/version.c.in (meson's vcs_tag()), so only the file
 * that carries the commit is rebuilt when the checkout moves.
 */
#ifndef CF_UTIL_VERSION_H
#define CF_UTIL_VERSION_H

/* cf_version() - "0.1.0 (git 1234567890ab)" when built from a git checkout
 * (with "-dirty" when tracked files were modified), else just "0.1.0". */
const char *cf_version(void);

#endif
