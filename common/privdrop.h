/*
 * The one privilege-drop routine every child runs after it has opened what
 * it needs.  Fixed order, each step checked:
 *   system mode: drop the capability bounding set (needs root, so first) →
 *     chroot(empty dir) + chdir("/") → setgroups(0) → setresgid → setresuid →
 *     verify the old ids cannot be regained → clear all capabilities →
 *     rlimits → no_new_privs → seccomp; without a chroot (PrivsepChroot
 *     none, "-c -") Landlock (no file system) before seccomp instead
 *   user mode:   rlimits → no_new_privs → Landlock (no filesystem) → seccomp
 * A step that cannot be applied fails the whole drop, unless the operator
 * asked for an insecure start: then it is logged loudly and skipped.
 */
#ifndef VS_PRIVDROP_H
#define VS_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

#include "sandbox.h"

struct privdrop {
	int system_mode;
	uid_t uid;
	gid_t gid;
	const char *chroot_dir;
	const struct sb_policy *policy;
	int seccomp_trap;
	int insecure;
	int log_fd;		/* for TRAP-mode reports */
	unsigned self_peer;
	/*
	 * Directories the child may use (its dir: remotes).  Landlock confines
	 * it to beneath them, in system mode too: a directory fd outside the
	 * chroot would otherwise lead out of it.
	 */
	int dirfds[8];
	int ndirfds;
};

/* 0 ok; -1 with a message in err. */
int privdrop_apply(const struct privdrop *pd, char *err, size_t errlen);

/* Parse the children's common arguments: -m system|user -u UID:GID -c CHROOT [-d] [-I]. */
int privdrop_parse_args(int argc, char **argv, struct privdrop *pd, int *debug,
    char *err, size_t errlen);

#endif
