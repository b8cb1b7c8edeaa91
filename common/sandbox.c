#include <errno.h>
#include <linux/landlock.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "msg.h"
#include "sandbox.h"

/*
 * What every child needs after it has opened everything: memory, time, I/O
 * on fds it already holds, signals to itself, exit.  Opening a path answers
 * EACCES (libc probes locale and time zone files) instead of killing.
 * No PROT_EXEC mappings: nothing new becomes code after the sandbox closes.
 */
const struct sb_rule sandbox_common_rules[] = {
	SB_ALLOW_SYS(read), SB_ALLOW_SYS(write), SB_ALLOW_SYS(readv), SB_ALLOW_SYS(writev),
	SB_ALLOW_SYS(close), SB_ALLOW_SYS(lseek), SB_ALLOW_SYS(fstat), SB_ALLOW_SYS(newfstatat),
	SB_ALLOW_SYS(fcntl), SB_ALLOW_SYS(dup),
	SB_ALLOW_SYS(recvmsg), SB_ALLOW_SYS(sendmsg), SB_ALLOW_SYS(recvfrom), SB_ALLOW_SYS(sendto),
	SB_ALLOW_SYS(poll), SB_ALLOW_SYS(ppoll),
	SB_ALLOW_SYS(brk), SB_ALLOW_SYS(munmap), SB_ALLOW_SYS(mremap),
	SB_ALLOW_MASKED(mmap, 2, PROT_EXEC, 0),
	SB_ALLOW_MASKED(mprotect, 2, PROT_EXEC, 0),
	SB_ALLOW_ARG(madvise, 2, MADV_DONTNEED), SB_ALLOW_ARG(madvise, 2, MADV_FREE),
	SB_ALLOW_ARG(madvise, 2, MADV_DONTDUMP), SB_ALLOW_ARG(madvise, 2, MADV_NORMAL),
	SB_ALLOW_ARG(madvise, 2, MADV_NOHUGEPAGE),
	SB_ALLOW_SYS(mlock), SB_ALLOW_SYS(munlock),
	SB_ALLOW_SYS(futex), SB_ALLOW_SYS(getrandom),
	SB_ALLOW_SYS(clock_gettime), SB_ALLOW_SYS(gettimeofday), SB_ALLOW_SYS(time),
	SB_ALLOW_SYS(clock_nanosleep), SB_ALLOW_SYS(nanosleep),
	SB_ALLOW_SYS(getpid), SB_ALLOW_SYS(gettid), SB_ALLOW_SYS(getuid), SB_ALLOW_SYS(geteuid),
	SB_ALLOW_SYS(getgid), SB_ALLOW_SYS(getegid),
	SB_ALLOW_SYS(rt_sigreturn), SB_ALLOW_SYS(rt_sigprocmask), SB_ALLOW_SYS(sigaltstack),
	{ SCMP_SYS(tgkill), SB_ALLOW, SB_EQ_SELF_PID, 0, 0, 0 },
	SB_ALLOW_SYS(restart_syscall), SB_ALLOW_SYS(sched_yield),
	SB_ALLOW_SYS(exit), SB_ALLOW_SYS(exit_group),
	SB_EACCES_SYS(openat), SB_EACCES_SYS(open),
};
const size_t sandbox_common_nrules = sizeof(sandbox_common_rules) / sizeof(sandbox_common_rules[0]);

static int trap_log_fd = -1;
static unsigned trap_self;

/* TRAP mode: name the call and its first argument to the parent, then die as if killed. */
static void
sigsys_handler(int sig, siginfo_t *si, void *ctx)
{
	static const char txt[] = "first argument 0x";
	static const char hex[] = "0123456789abcdef";
#ifdef __x86_64__
	unsigned long long a0 = (unsigned long long)((const ucontext_t *)ctx)->uc_mcontext.gregs[REG_RDI];
#else
	unsigned long long a0 = 0;
	(void)ctx;
#endif
	struct msg_log m;
	size_t n = sizeof(txt) - 1;
	int shift;

	memset(&m, 0, sizeof(m));
	m.level = MLOG_ERROR;
	m.seccomp_nr = si->si_syscall;
	memcpy(m.msg, txt, n);
	for (shift = 60; shift >= 0; shift -= 4)	/* no stdio in a signal handler */
		m.msg[n++] = hex[(a0 >> shift) & 0xf];
	if (trap_log_fd >= 0)
		(void)msg_send(trap_log_fd, trap_self, MSG_LOG, 0, &m, sizeof(m), -1);
	_exit(128 + sig);
}

static int
add_rule(scmp_filter_ctx ctx, const struct sb_rule *r)
{
	uint32_t action;
	struct scmp_arg_cmp cmp;

	switch (r->act) {
	case SB_ALLOW:
		action = SCMP_ACT_ALLOW;
		break;
	case SB_EACCES:
		action = SCMP_ACT_ERRNO(EACCES);
		break;
	case SB_ENOSYS:
		action = SCMP_ACT_ERRNO(ENOSYS);
		break;
	default:
		action = SCMP_ACT_ERRNO(EPERM);
		break;
	}
	switch (r->cmp) {
	case SB_ANY:
		return seccomp_rule_add(ctx, action, r->nr, 0);
	case SB_EQ:
		cmp = (struct scmp_arg_cmp){ r->arg, SCMP_CMP_EQ, r->val, 0 };
		break;
	case SB_MASKED_EQ:
		cmp = (struct scmp_arg_cmp){ r->arg, SCMP_CMP_MASKED_EQ, r->mask, r->val };
		break;
	case SB_LT:
		cmp = (struct scmp_arg_cmp){ r->arg, SCMP_CMP_LT, r->val, 0 };
		break;
	case SB_GT:
		cmp = (struct scmp_arg_cmp){ r->arg, SCMP_CMP_GT, r->val, 0 };
		break;
	case SB_EQ_SELF_PID:
		cmp = (struct scmp_arg_cmp){ r->arg, SCMP_CMP_EQ, (uint64_t)getpid(), 0 };
		break;
	default:
		return -EINVAL;
	}
	return seccomp_rule_add_array(ctx, action, r->nr, 1, &cmp);
}

int
sandbox_seccomp(const struct sb_policy *p, int trap, int log_fd, unsigned self_peer,
    const char **why)
{
	scmp_filter_ctx ctx;
	size_t i;
	int rc;

	if (trap) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = sigsys_handler;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		trap_log_fd = log_fd;
		trap_self = self_peer;
		if (sigaction(SIGSYS, &sa, NULL) == -1) {
			*why = "sigaction(SIGSYS)";
			return -1;
		}
	}
	if ((ctx = seccomp_init(trap ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS)) == NULL) {
		*why = "seccomp_init";
		return -1;
	}
	for (i = 0; i < sandbox_common_nrules; i++) {
		const struct sb_rule *r = &sandbox_common_rules[i];

		if (p->own_open && (r->nr == SCMP_SYS(openat) || r->nr == SCMP_SYS(open)))
			continue;
		if ((rc = add_rule(ctx, r)) < 0)
			goto bad_rule;
	}
	for (i = 0; i < p->nrules; i++)
		if ((rc = add_rule(ctx, &p->rules[i])) < 0)
			goto bad_rule;
	if ((rc = seccomp_load(ctx)) < 0) {
		seccomp_release(ctx);
		errno = -rc;
		*why = "seccomp_load";
		return -1;
	}
	seccomp_release(ctx);
	return 0;
bad_rule:
	seccomp_release(ctx);
	errno = -rc;
	*why = "seccomp_rule_add (a table row is invalid)";
	return -1;
}

/* The kernel's header here may predate these; the ABI numbers are stable. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE	(1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV	(1ULL << 15)
#endif
#define LL_NET_BIND_TCP		(1ULL << 0)
#define LL_NET_CONNECT_TCP	(1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX	(1ULL << 0)
#define LL_SCOPE_SIGNAL		(1ULL << 1)

struct ll_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;	/* ABI 4 */
	uint64_t scoped;		/* ABI 6 */
};

struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

/* What a passed directory allows: plain files and directories, nothing that executes or is special. */
#define LL_DIR_ACCESS	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
	LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
	LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | \
	LANDLOCK_ACCESS_FS_MAKE_REG)

int
sandbox_landlock(int deny_tcp, const int *dirfds, int ndirs, int *abip, const char **why)
{
	struct ll_attr attr;
	size_t attr_size;
	long abi;
	int fd, i;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abip != NULL)
		*abip = abi < 0 ? 0 : (int)abi;
	if (abi < 1) {
		*why = "Landlock is not available in this kernel";
		return -1;
	}
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = (LANDLOCK_ACCESS_FS_REFER << 1) - 1;	/* ABI 1 and 2 */
	if (abi < 2)
		attr.handled_access_fs &= ~LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	attr_size = sizeof(attr.handled_access_fs);
	if (abi >= 4) {
		if (deny_tcp)
			attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		attr_size = offsetof(struct ll_attr, scoped);
	}
	if (abi >= 6) {
		/* No signals to, and no abstract sockets of, processes outside. */
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (fd < 0) {
		*why = "landlock_create_ruleset";
		return -1;
	}
	/* Beneath the passed directories only; everywhere else every handled access is denied. */
	for (i = 0; i < ndirs; i++) {
		struct ll_path_beneath pb = { LL_DIR_ACCESS, dirfds[i] };

		if (abi >= 3)
			pb.allowed_access |= LANDLOCK_ACCESS_FS_TRUNCATE;
		if (syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0) {
			int e = errno;

			close(fd);
			errno = e;
			*why = "landlock_add_rule";
			return -1;
		}
	}
	if (syscall(SYS_landlock_restrict_self, fd, 0) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		*why = "landlock_restrict_self";
		return -1;
	}
	close(fd);
	return 0;
}
