/*
 * The uploader talks HTTP(S) to the remote and reads archive bytes from fds
 * the parent passes.  It may create IPv4/IPv6 sockets and nothing else.  It
 * opens files only relative to the directory fds of dir: remotes, which sit
 * at fds 8..15 (uploader/remote.h); any other open answers EACCES for the
 * benefit of library probes.  The directory calls are narrowed to those fds
 * here; Landlock is what keeps a path beneath them.
 */
#include <sys/socket.h>

#include "remote.h"
#include "sandbox.h"

#define DIRFD_MASK	(~(uint64_t)(UPL_DIRFD_LAST - UPL_DIRFD_FIRST))

_Static_assert(UPL_DIRFD_FIRST == 8 && UPL_DIRFD_LAST == 15, "the mask rows assume fds 8..15");

static const struct sb_rule uploader_rules[] = {
	SB_ALLOW_ARG(socket, 0, AF_INET), SB_ALLOW_ARG(socket, 0, AF_INET6),
	SB_ALLOW_SYS(connect), SB_ALLOW_SYS(shutdown),
	SB_ALLOW_SYS(getsockname), SB_ALLOW_SYS(getpeername),
	SB_ALLOW_SYS(setsockopt), SB_ALLOW_SYS(getsockopt),
	SB_ALLOW_SYS(pread64), SB_ALLOW_SYS(pwrite64),
	SB_ALLOW_SYS(pipe2), SB_ALLOW_SYS(eventfd2),
	/* dir: remotes */
	SB_ALLOW_MASKED(openat, 0, DIRFD_MASK, UPL_DIRFD_FIRST),
	SB_EACCES_LT(openat, 0, UPL_DIRFD_FIRST), SB_EACCES_GT(openat, 0, UPL_DIRFD_LAST),
	SB_EACCES_SYS(open),
	SB_ALLOW_MASKED(mkdirat, 0, DIRFD_MASK, UPL_DIRFD_FIRST),
	SB_ALLOW_MASKED(unlinkat, 0, DIRFD_MASK, UPL_DIRFD_FIRST),
	SB_ALLOW_MASKED(renameat, 0, DIRFD_MASK, UPL_DIRFD_FIRST),
	SB_ALLOW_SYS(fsync), SB_ALLOW_SYS(fdatasync), SB_ALLOW_SYS(flock),
	SB_ALLOW_SYS(getdents64), SB_ALLOW_SYS(copy_file_range),
};

const struct sb_policy uploader_policy = {
	.name = "uploader",
	.rules = uploader_rules,
	.nrules = sizeof(uploader_rules) / sizeof(uploader_rules[0]),
	.landlock_deny_tcp = 0,
	.allow_fork = 0,
	.nofile = 64,
	.own_open = 1,
	.may_write_files = 1,
};
