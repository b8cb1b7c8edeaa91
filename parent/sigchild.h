/*
 * Signals to the children.  They run as PrivsepUser, so a root parent
 * needs CAP_KILL to signal them, unless its effective uid is theirs for
 * the one call: the unit can then leave CAP_KILL out of its bounding set.
 */
#ifndef VS_SIGCHILD_H
#define VS_SIGCHILD_H

#include <sys/types.h>

/* By pidfd when pidfd >= 0, else by pid; 0, or -1 with errno. */
int sigchild(int pidfd, pid_t pid, int sig);

#endif
