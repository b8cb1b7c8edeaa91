/*
 * Seccomp policies as declarative tables, and Landlock for user mode.
 *
 * Every child applies common rules (memory, time, its own channel I/O,
 * exit) plus the rows of its own table in its own directory
 * (watcher/sandbox.c, ...).  Anything not listed kills the process; rows may
 * instead answer EACCES for calls that libraries probe harmlessly.  In TRAP
 * mode (vaultsyncd -d) a forbidden call is reported by name to the parent
 * before the child exits, so a missing syscall fails loudly with its name.
 */
#ifndef VS_SANDBOX_H
#define VS_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <seccomp.h>

enum sb_act { SB_ALLOW = 0, SB_EACCES, SB_EPERM, SB_ENOSYS };

/* Argument compare: none, arg == val, (arg & mask) == val. */
enum sb_cmp { SB_ANY = 0, SB_EQ, SB_MASKED_EQ, SB_EQ_SELF_PID, SB_LT, SB_GT };

struct sb_rule {
	int nr;			/* SCMP_SYS(name) */
	enum sb_act act;
	enum sb_cmp cmp;
	unsigned arg;		/* argument index for cmp */
	uint64_t mask;
	uint64_t val;
};

#define SB_ALLOW_SYS(name)		{ SCMP_SYS(name), SB_ALLOW, SB_ANY, 0, 0, 0 }
#define SB_EACCES_SYS(name)		{ SCMP_SYS(name), SB_EACCES, SB_ANY, 0, 0, 0 }
#define SB_ENOSYS_SYS(name)		{ SCMP_SYS(name), SB_ENOSYS, SB_ANY, 0, 0, 0 }
#define SB_ALLOW_ARG(name, i, v)	{ SCMP_SYS(name), SB_ALLOW, SB_EQ, i, 0, v }
#define SB_ALLOW_MASKED(name, i, m, v)	{ SCMP_SYS(name), SB_ALLOW, SB_MASKED_EQ, i, m, v }
#define SB_EACCES_LT(name, i, v)	{ SCMP_SYS(name), SB_EACCES, SB_LT, i, 0, v }
#define SB_EACCES_GT(name, i, v)	{ SCMP_SYS(name), SB_EACCES, SB_GT, i, 0, v }

struct sb_policy {
	const char *name;
	const struct sb_rule *rules;
	size_t nrules;
	int landlock_deny_tcp;	/* user mode: deny TCP bind/connect as well */
	int allow_fork;		/* 0: RLIMIT_NPROC 0 (system mode), or SB_THREADS_NPROC */
	/*
	 * 1: the process starts a thread of its own after the sandbox closed (its
	 * rows allow clone with CLONE_THREAD only, so forks stay refused): in
	 * system mode RLIMIT_NPROC is SB_THREADS_NPROC instead of 0.  The limit
	 * counts every task of the shared uid, so it is a ceiling on threads,
	 * not a count of them; where the other children use it up, the thread
	 * fails to start and the process does without.
	 */
	int threads;
	unsigned long nofile;	/* RLIMIT_NOFILE */
	int own_open;		/* 1: the table has its own open/openat rows (no common EACCES) */
	int may_write_files;	/* 1: no RLIMIT_FSIZE 0 (files under directories it was passed) */
};

#define SB_THREADS_NPROC	64

/* Each child's table, defined in its own directory. */
extern const struct sb_policy watcher_policy;
extern const struct sb_policy uploader_policy;
extern const struct sb_policy statusd_policy;
extern const struct sb_policy decoder_policy;

/*
 * Build the filter (common rules + p's rows) and load it.  trap: report a
 * violation as MSG_LOG on log_fd, then exit, instead of being killed.
 * Returns 0, or -1 with *why set.
 */
int sandbox_seccomp(const struct sb_policy *p, int trap, int log_fd,
    unsigned self_peer, const char **why);

/*
 * Deny all filesystem access (and TCP if asked) except beneath the n
 * directories in dirfds, where files may be read, written, created, renamed
 * and removed.  -1 if Landlock is unavailable.
 */
int sandbox_landlock(int deny_tcp, const int *dirfds, int n, int *abi, const char **why);

/* The common rows, exported so the policy test can show what they are. */
extern const struct sb_rule sandbox_common_rules[];
extern const size_t sandbox_common_nrules;

#endif
