/*
 * statusd serves HTTP on a listening socket the parent bound and passed.
 * It accepts connections and multiplexes them with epoll; it creates no
 * sockets of its own and opens no files.
 */
#include <fcntl.h>
#include <sys/socket.h>

#include "sandbox.h"

static const struct sb_rule statusd_rules[] = {
	SB_ALLOW_SYS(accept4), SB_ALLOW_SYS(accept), SB_ALLOW_SYS(shutdown),
	SB_ALLOW_SYS(getsockname), SB_ALLOW_SYS(getpeername),
	SB_ALLOW_SYS(setsockopt), SB_ALLOW_SYS(getsockopt),
	SB_ALLOW_SYS(epoll_wait), SB_ALLOW_SYS(epoll_pwait), SB_ALLOW_SYS(epoll_ctl),
	SB_ALLOW_SYS(select), SB_ALLOW_SYS(pselect6),
	SB_ALLOW_SYS(eventfd2),	/* libmicrohttpd's own wakeup channel */
	SB_ALLOW_SYS(pipe2),
};

const struct sb_policy statusd_policy = {
	.name = "statusd",
	.rules = statusd_rules,
	.nrules = sizeof(statusd_rules) / sizeof(statusd_rules[0]),
	.landlock_deny_tcp = 1,	/* accept(2) on the passed socket is not a bind or connect */
	.allow_fork = 0,
	.nofile = 64,
};
