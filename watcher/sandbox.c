/*
 * The watcher reads inotify events from an fd it was handed and writes
 * fixed messages to its channel.  Beyond the common rows it needs nothing:
 * no sockets, no files, no process control.
 */
#include "sandbox.h"

static const struct sb_rule watcher_rules[] = {
	SB_ALLOW_SYS(read),	/* the inotify fd; listed again for the reader's sake */
};

const struct sb_policy watcher_policy = {
	.name = "watcher",
	.rules = watcher_rules,
	.nrules = sizeof(watcher_rules) / sizeof(watcher_rules[0]),
	.landlock_deny_tcp = 1,
	.allow_fork = 0,
	.nofile = 16,
};
