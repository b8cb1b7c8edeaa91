/*
 * The uploader talks HTTPS to the remote and reads archive bytes from fds
 * the parent passes.  It may create IPv4/IPv6 sockets and nothing else; it
 * opens no files (its credentials and CA bundle are read before the sandbox
 * closes; opening answers EACCES for the benefit of library probes).
 */
#include <sys/socket.h>

#include "sandbox.h"

static const struct sb_rule uploader_rules[] = {
	SB_ALLOW_ARG(socket, 0, AF_INET), SB_ALLOW_ARG(socket, 0, AF_INET6),
	SB_ALLOW_SYS(connect), SB_ALLOW_SYS(shutdown),
	SB_ALLOW_SYS(getsockname), SB_ALLOW_SYS(getpeername),
	SB_ALLOW_SYS(setsockopt), SB_ALLOW_SYS(getsockopt),
	SB_ALLOW_SYS(pread64), SB_ALLOW_SYS(pwrite64),
	SB_ALLOW_SYS(pipe2), SB_ALLOW_SYS(eventfd2),
};

const struct sb_policy uploader_policy = {
	.name = "uploader",
	.rules = uploader_rules,
	.nrules = sizeof(uploader_rules) / sizeof(uploader_rules[0]),
	.landlock_deny_tcp = 0,
	.allow_fork = 0,
	.nofile = 64,
};
