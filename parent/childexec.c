/*
 * Starting a long-lived child, in the forked process: a clean signal state,
 * the fixed fds in their slots and nothing else, an empty environment, and
 * an argv that carries only the sandbox parameters.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "childexec.h"
#include "vaultsyncd.h"

void
spawn_exec(struct child_proc *c, int chan, int logfd, struct child_fds *f, char **argv)
{
	char *envp[] = { NULL };
	sigset_t none;
	int sig, i;

	/* Blocked and ignored signals survive exec: give the child a clean slate. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	chan = child_lift_fd(chan);
	logfd = child_lift_fd(logfd);
	if (f->job >= 0)
		f->job = child_lift_fd(f->job);
	for (i = 0; i < f->ndirs; i++)
		if ((f->dirs[i] = child_lift_fd(f->dirs[i])) < 0)
			_exit(127);
	if (chan < 0 || logfd < 0 || (f->job < 0 && c->role != ROLE_UPLOADER) ||
	    dup2(D.devnull_fd, 0) == -1 || dup2(D.devnull_fd, 1) == -1 ||
	    dup2(chan, CHILD_FD_CHAN) == -1 || dup2(logfd, CHILD_FD_LOG) == -1 ||
	    (f->job >= 0 && dup2(f->job, CHILD_FD_JOB) == -1))
		_exit(127);
	for (i = 0; i < f->ndirs; i++)
		if (dup2(f->dirs[i], UPL_DIRFD_FIRST + i) == -1)
			_exit(127);
	close_range(f->job >= 0 ? CHILD_FD_JOB + 1 : CHILD_FD_JOB, UPL_DIRFD_FIRST - 1, 0);
	close_range(UPL_DIRFD_FIRST + (unsigned)f->ndirs, ~0U, 0);
	execve(c->bin, argv, envp);
	dprintf(2, "vaultsyncd: exec %s: %s\n", c->bin, strerror(errno));
	_exit(127);
}

/* The argv a child gets: mode, identity, chroot, debug, insecure; nothing else. */
void
spawn_argv(const struct child_proc *c, char **argv, char *ids, size_t idslen)
{
	size_t n = 0;

	argv[n++] = (char *)c->bin;
	argv[n++] = "-m";
	argv[n++] = D.cfg.mode == CFG_SYSTEM ? "system" : "user";
	if (D.cfg.mode == CFG_SYSTEM) {
		snprintf(ids, idslen, "%u:%u", (unsigned)D.privsep_uid, (unsigned)D.privsep_gid);
		argv[n++] = "-u";
		argv[n++] = ids;
		argv[n++] = "-c";
		argv[n++] = D.chroot_dir;
	}
	if (D.debug)
		argv[n++] = "-d";
	if (D.insecure)
		argv[n++] = "-I";
	argv[n] = NULL;
}
