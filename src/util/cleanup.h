/* SPDX-License-Identifier: MIT */
/*
 * Scope-bound ownership, as bubblewrap and systemd do it: a variable declared
 * with a cleanup attribute is released when it leaves scope; take_ptr() and
 * take_fd() hand ownership on. This keeps error paths to a bare "return r".
 */
#ifndef CF_UTIL_CLEANUP_H
#define CF_UTIL_CLEANUP_H

#include <stdlib.h>
#include <unistd.h>
#include <errno.h>

static inline void cf_freep(void *p)
{
	free(*(void **)p);
}

static inline void cf_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

#define cleanup_free __attribute__((cleanup(cf_freep)))
#define cleanup_fd __attribute__((cleanup(cf_closep)))

/*
 * Return *pp and set it to NULL, so a cleanup attribute no longer frees it.
 * A GNU statement expression (the tree is gnu17); __extension__ keeps
 * -Wpedantic quiet about it.
 */
#define take_ptr(pp)                                                                               \
	__extension__({                                                                            \
		__typeof__(*(pp)) take_ptr_tmp_ = *(pp);                                           \
		*(pp) = NULL;                                                                      \
		take_ptr_tmp_;                                                                     \
	})

/* Return *fdp and set it to -1, so cleanup_fd no longer closes it. */
#define take_fd(fdp)                                                                               \
	__extension__({                                                                            \
		int take_fd_tmp_ = *(fdp);                                                         \
		*(fdp) = -1;                                                                       \
		take_fd_tmp_;                                                                      \
	})

/* Function form of take_fd(), for struct members. */
static inline int take_fd_int(int *fdp)
{
	int fd = *fdp;

	*fdp = -1;
	return fd;
}

#define CF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
