/*
 * Starting a long-lived child (children.c decides when).
 */
#ifndef VS_CHILDEXEC_H
#define VS_CHILDEXEC_H

#include <stddef.h>

#include "vaultsyncd.h"

/*
 * The fds a child gets: 3 channel, 4 log, 5 its job fd (watcher: inotify,
 * statusd: the listener), and for the uploader its dir: remotes at 8.. .
 */
struct child_fds {
	int job;
	int dirs[UPL_DIRFD_SLOTS];
	int ndirs;
};

/* The argv a child gets (argv has room for 16): mode, ids, chroot, debug, insecure. */
void spawn_argv(const struct child_proc *c, char **argv, char *ids, size_t idslen);
/* In the forked child: put the fds in place and exec c->bin.  Never returns. */
void spawn_exec(struct child_proc *c, int chan, int logfd, struct child_fds *f, char **argv)
    __attribute__((noreturn));

#endif
