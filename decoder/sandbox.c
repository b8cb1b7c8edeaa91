/*
 * The decoder reads the archive and identity.age from fds it was handed,
 * does its arithmetic (scrypt, X25519, ChaCha20-Poly1305, tar) in memory,
 * and writes to its channel and its data pipe.  Beyond the common rows it
 * needs no sockets, no files, no process control: only a thread of its own
 * and a way to hand pages to the pipe it already writes.
 */
#include <sched.h>
#include <sys/mman.h>

#include "msg.h"
#include "sandbox.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23
#endif

/* The clone flags looked at: CLONE_THREAD must be set, every namespace flag clear. */
#define CLONE_CHECKED	(CLONE_THREAD | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | \
	CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)

static const struct sb_rule decoder_rules[] = {
	SB_ALLOW_SYS(read),	/* the archive and identity.age; listed for the reader's sake */
	/*
	 * A file's bytes by reference onto the data pipe (dataout.c), fd 7
	 * only: what write already lets it put there, without the copy.
	 */
	SB_ALLOW_ARG(vmsplice, 0, DEC_FD_DATA),
	/*
	 * The digest's thread (digest.c): clone with CLONE_THREAD and no
	 * namespace, which inherits this filter and Landlock domain; clone3
	 * keeps its flags where a filter cannot read them, so it answers
	 * ENOSYS and glibc falls back to clone.  A new thread registers its
	 * robust futex list and rseq area, both in its own memory, and the
	 * first pthread_create installs glibc's two internal signal handlers
	 * (SIGCANCEL 32, SIGSETXID 33), those and no others.
	 */
	/*
	 * scrypt's table on huge pages, populated in one call (agescrypt.c),
	 * when the parent saw enough free to need no compaction.
	 */
	SB_ALLOW_ARG(madvise, 2, MADV_HUGEPAGE),
	SB_ALLOW_ARG(madvise, 2, MADV_POPULATE_WRITE),
	SB_ALLOW_MASKED(clone, 0, CLONE_CHECKED, CLONE_THREAD),
	SB_ENOSYS_SYS(clone3),
	SB_ALLOW_SYS(set_robust_list),
	SB_ALLOW_SYS(rseq),
	SB_ALLOW_ARG(rt_sigaction, 0, 32),
	SB_ALLOW_ARG(rt_sigaction, 0, 33),
	/*
	 * pthread_getattr_np asks for the thread's CPU mask (the sanitizers'
	 * thread start does): ENOSYS, which glibc takes as "no mask", and no
	 * word about other tasks' CPUs.
	 */
	SB_ENOSYS_SYS(sched_getaffinity),
};

const struct sb_policy decoder_policy = {
	.name = "decoder",
	.rules = decoder_rules,
	.nrules = sizeof(decoder_rules) / sizeof(decoder_rules[0]),
	.landlock_deny_tcp = 1,
	.allow_fork = 0,
	.threads = 1,		/* the digest's thread, above */
	.nofile = 16,
};
