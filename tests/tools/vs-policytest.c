/*
 * vs-policytest: applies a child's own seccomp table (the same object the
 * child links) in a forked process and tries one system call, or applies
 * the user-mode Landlock ruleset and tries to open a path.  Prints one line:
 *   RESULT killed SIGSYS | RESULT errno EACCES | RESULT allowed
 * "landlock-exhaust CMD..." runs CMD with no Landlock layers left.
 * Test-only; never installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

static const struct sb_policy *
policy_by_name(const char *n)
{
	if (strcmp(n, "watcher") == 0)
		return &watcher_policy;
	if (strcmp(n, "uploader") == 0)
		return &uploader_policy;
	if (strcmp(n, "statusd") == 0)
		return &statusd_policy;
	if (strcmp(n, "decoder") == 0)
		return &decoder_policy;
	return NULL;
}

static void *
nothing(void *arg)
{
	return arg;
}

/* Returns 0 if the call succeeded, else errno. */
static int
try_call(const char *call, const char *arg)
{
	int rv = -1;

	if (strcmp(call, "openat") == 0)
		rv = openat(AT_FDCWD, arg ? arg : "/etc/passwd", O_RDONLY);
	else if (strcmp(call, "execve") == 0) {
		char *argv[] = { "/bin/true", NULL }, *envp[] = { NULL };

		rv = execve("/bin/true", argv, envp);
	} else if (strcmp(call, "ptrace") == 0)
		rv = (int)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	else if (strcmp(call, "socket-unix") == 0)
		rv = socket(AF_UNIX, SOCK_STREAM, 0);
	else if (strcmp(call, "socket-inet") == 0)
		rv = socket(AF_INET, SOCK_STREAM, 0);
	else if (strcmp(call, "socket-netlink") == 0)
		rv = socket(AF_NETLINK, SOCK_RAW, 0);
	else if (strcmp(call, "fork") == 0) {
		pid_t p = fork();

		if (p == 0)
			_exit(0);
		rv = p > 0 ? 0 : -1;
	} else if (strcmp(call, "kill-parent") == 0)
		rv = kill(getppid(), 0);
	else if (strcmp(call, "getpid") == 0)
		rv = getpid() > 0 ? 0 : -1;
	else if (strcmp(call, "thread") == 0) {
		pthread_t t;

		if ((errno = pthread_create(&t, NULL, nothing, NULL)) == 0)
			rv = pthread_join(t, NULL) == 0 ? 0 : -1;
	} else if (strcmp(call, "vmsplice") == 0) {
		/* On the fd given (none open there: EBADF means the filter let it through). */
		struct iovec iov = { &rv, sizeof(rv) };

		rv = (int)vmsplice(arg != NULL ? atoi(arg) : 7, &iov, 1, 0);
	} else if (strcmp(call, "madvise") == 0) {
		/* The advice given by number, on memory of its own. */
		size_t len = 4u << 20;
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p != MAP_FAILED)
			rv = madvise(p, len, arg != NULL ? atoi(arg) : MADV_NORMAL);
	} else {
		fprintf(stderr, "vs-policytest: unknown call %s\n", call);
		_exit(64);
	}
	return rv >= 0 ? 0 : errno;
}

/*
 * Fill the Landlock layer budget (16) with harmless rulesets, then run a
 * command: any further landlock_restrict_self in it fails, which is how the
 * tests show that a sandbox step that cannot be applied stops the daemon.
 */
static int
landlock_exhaust(char **cmd)
{
	struct { uint64_t fs; } attr = { 1ULL << 11 };	/* MAKE_BLOCK only */
	int i, fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return 70;
	for (i = 0; i < 16; i++) {
		fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
		if (fd < 0 || syscall(SYS_landlock_restrict_self, fd, 0) != 0)
			return 70;
		close(fd);
	}
	execvp(cmd[0], cmd);
	return 127;
}

int
main(int argc, char **argv)
{
	const struct sb_policy *p = NULL;
	int landlock, status, pfd[2], e = 0;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: vs-policytest watcher|uploader|statusd|decoder CALL [ARG]\n"
		    "       vs-policytest landlock PATH\n"
		    "       vs-policytest uploader-dir DIR PATH\n");
		return 64;
	}
	if (strcmp(argv[1], "landlock-exhaust") == 0)
		return landlock_exhaust(argv + 2);
	landlock = strcmp(argv[1], "landlock") == 0;
	/*
	 * The uploader as it runs with a dir: remote: the directory at fd 8,
	 * Landlock beneath it, its seccomp table; then openat(8, PATH).
	 */
	if (strcmp(argv[1], "uploader-dir") == 0) {
		if (argc != 4)
			return 64;
		landlock = 2;
		p = &uploader_policy;
	}
	if (!landlock && (p = policy_by_name(argv[1])) == NULL) {
		fprintf(stderr, "vs-policytest: unknown policy %s\n", argv[1]);
		return 64;
	}
	if (pipe(pfd) == -1)
		return 1;
	if ((pid = fork()) == -1)
		return 1;
	if (pid == 0) {
		const char *why = "";

		close(pfd[0]);
		if (landlock == 2) {
			int dfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (dfd == -1 || dup2(dfd, 8) != 8 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
				_exit(70);
			if (sandbox_landlock(0, (int[]){ 8 }, 1, NULL, &why) != 0 ||
			    sandbox_seccomp(p, 0, -1, 0, &why) != 0) {
				dprintf(2, "sandbox: %s: %s\n", why, strerror(errno));
				_exit(70);
			}
			e = openat(8, argv[3], O_RDONLY | O_CLOEXEC) >= 0 ? 0 : errno;
		} else if (landlock) {
			/* As privdrop_apply does: Landlock needs no_new_privs. */
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
				_exit(70);
			if (sandbox_landlock(0, NULL, 0, NULL, &why) != 0) {
				dprintf(2, "landlock: %s: %s\n", why, strerror(errno));
				_exit(70);
			}
			e = open(argv[2], O_RDONLY | O_CLOEXEC) >= 0 ? 0 : errno;
		} else {
			if (sandbox_seccomp(p, 0, -1, 0, &why) != 0) {
				dprintf(2, "seccomp: %s: %s\n", why, strerror(errno));
				_exit(70);
			}
			e = try_call(argv[2], argc > 3 ? argv[3] : NULL);
		}
		(void)!write(pfd[1], &e, sizeof(e));
		_exit(0);
	}
	close(pfd[1]);
	if (waitpid(pid, &status, 0) == -1)
		return 1;
	if (WIFSIGNALED(status)) {
		printf("RESULT killed %s\n", WTERMSIG(status) == SIGSYS ? "SIGSYS" :
		    strsignal(WTERMSIG(status)));
		return 0;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("RESULT setup-failed %d\n", WEXITSTATUS(status));
		return 1;
	}
	if (read(pfd[0], &e, sizeof(e)) != sizeof(e)) {
		printf("RESULT no-report\n");
		return 1;
	}
	if (e == 0)
		printf("RESULT allowed\n");
	else
		printf("RESULT errno %s\n", e == EACCES ? "EACCES" : e == EPERM ? "EPERM" :
		    strerrorname_np(e));
	return 0;
}
