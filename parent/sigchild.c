#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "sigchild.h"
#include "vaultsyncd.h"

static int
send_sig(int pidfd, pid_t pid, int sig)
{
	if (pidfd >= 0)
		return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
	return kill(pid, sig);
}

int
sigchild(int pidfd, pid_t pid, int sig)
{
	int rc, e;

	if (send_sig(pidfd, pid, sig) == 0)
		return 0;
	if (errno != EPERM || geteuid() != 0 || D.privsep_uid == 0)
		return -1;
	/*
	 * Without CAP_KILL a signal is allowed when our effective uid is the
	 * target's real one.  The raw system call changes this thread alone:
	 * glibc's setresuid would take the save workers' access to the vault
	 * away for as long.  The real and saved uids stay 0, so a child cannot
	 * signal or trace us meanwhile, and they bring the effective one back.
	 */
	if (syscall(SYS_setresuid, (uid_t)-1, D.privsep_uid, (uid_t)-1) == -1)
		return -1;
	rc = send_sig(pidfd, pid, sig);
	e = errno;
	if (syscall(SYS_setresuid, (uid_t)-1, (uid_t)0, (uid_t)-1) == -1) {
		log_error("cannot take uid 0 back after signalling a child: %s", strerror(errno));
		_exit(EXIT_SOFTWARE);
	}
	errno = e;
	return rc;
}
