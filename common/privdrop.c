#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"

/* A failed step: fatal unless insecure, in which case it is shouted about. */
static int
step_failed(const struct privdrop *pd, const char *step, int e, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", step, e ? strerror(e) : "failed");
	if (!pd->insecure)
		return -1;
	log_error("INSECURE: sandbox step failed and was skipped (--insecure-no-sandbox): %s", err);
	return 0;
}

/* Verification failures are never skippable: they mean the drop did not happen. */
#define VERIFY(cond, name) do {						\
	if (!(cond)) {							\
		snprintf(err, errlen, "%s failed", name);		\
		return -1;						\
	}								\
} while (0)

#define STEP(cond, name) do {						\
	if (!(cond) && step_failed(pd, name, errno, err, errlen) != 0)	\
		return -1;						\
} while (0)

/*
 * Without CAP_SETPCAP (a unit that leaves it out of the bounding set) the
 * bounding set cannot be narrowed.  It then only bounds what an execve
 * could gain, and no_new_privs, set and verified below for every child,
 * already forbids gaining anything that way; so the step is left out and
 * that check made mandatory instead (*kept is set).
 */
static int
drop_bounding_set(int *kept)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t now = cap_get_proc();
	int cap;

	*kept = 0;
	if (now == NULL)
		return -1;
	(void)cap_get_flag(now, CAP_SETPCAP, CAP_EFFECTIVE, &v);
	cap_free(now);
	if (v != CAP_SET) {
		*kept = 1;
		return 0;
	}
	for (cap = 0; cap <= CAP_LAST_CAP || prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1 && errno != EINVAL)
			return -1;
	return 0;
}

static int
clear_caps(void)
{
	cap_t caps = cap_init();	/* all clear */
	int rc;

	if (caps == NULL)
		return -1;
	rc = cap_set_proc(caps);
	cap_free(caps);
	if (rc == 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1)
		rc = -1;
	return rc;
}

static int
caps_all_clear(void)
{
	cap_t caps = cap_get_proc(), none = cap_init();
	int ok;

	ok = caps != NULL && none != NULL && cap_compare(caps, none) == 0;
	cap_free(caps);
	cap_free(none);
	return ok;
}

static int
set_rlimits(const struct sb_policy *p, int system_mode)
{
	struct rlimit zero = { 0, 0 };
	struct rlimit nofile = { p->nofile, p->nofile };
	rlim_t np = p->threads ? SB_THREADS_NPROC : 0;
	struct rlimit nproc = { np, np };

	if (setrlimit(RLIMIT_CORE, &zero) == -1 ||
	    (!p->may_write_files && setrlimit(RLIMIT_FSIZE, &zero) == -1))
		return -1;
	if (p->nofile && setrlimit(RLIMIT_NOFILE, &nofile) == -1)
		return -1;
	/* Per uid: the children share _vaultsync, and none of them forks; threads count too. */
	if (system_mode && !p->allow_fork && setrlimit(RLIMIT_NPROC, &nproc) == -1)
		return -1;
	return 0;
}

int
privdrop_apply(const struct privdrop *pd, char *err, size_t errlen)
{
	const char *why = NULL;
	int bset_kept = 0;
	/* PrivsepChroot none ("-c -"): Landlock is then the file-system step. */
	int no_chroot = pd->system_mode && strcmp(pd->chroot_dir, "-") == 0;

	if (pd->system_mode) {
		uid_t ru, eu, su;
		gid_t rg, eg, sg;

		if (pd->uid == 0 || pd->gid == 0) {
			snprintf(err, errlen, "refusing to run as uid/gid 0");
			return -1;
		}
		STEP(drop_bounding_set(&bset_kept) == 0, "drop capability bounding set");
		if (!no_chroot)
			STEP(chroot(pd->chroot_dir) == 0, "chroot");
		STEP(chdir("/") == 0, "chdir /");
		STEP(setgroups(0, NULL) == 0, "setgroups");
		STEP(setresgid(pd->gid, pd->gid, pd->gid) == 0, "setresgid");
		STEP(setresuid(pd->uid, pd->uid, pd->uid) == 0, "setresuid");
		/* The old identity must be gone for good. */
		if (!pd->insecure) {
			VERIFY(getresuid(&ru, &eu, &su) == 0 && ru == pd->uid &&
			    eu == pd->uid && su == pd->uid, "verify uid");
			VERIFY(getresgid(&rg, &eg, &sg) == 0 && rg == pd->gid &&
			    eg == pd->gid && sg == pd->gid, "verify gid");
			VERIFY(setuid(0) == -1 && setgid(0) == -1,
			    "verify root cannot be regained");
		}
		STEP(clear_caps() == 0, "clear capabilities");
		if (!pd->insecure)
			VERIFY(caps_all_clear() && (bset_kept ||
			    prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) == 0),
			    "verify capabilities are clear");
	}
	STEP(set_rlimits(pd->policy, pd->system_mode) == 0, "rlimits");
	STEP(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "PR_SET_DUMPABLE");
	STEP(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS");
	if (bset_kept && !pd->insecure)
		VERIFY(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1,
		    "verify no_new_privs (the bounding set was kept)");
	if (!pd->system_mode || pd->ndirfds > 0 || no_chroot) {
		int abi = 0;

		if (sandbox_landlock(pd->policy->landlock_deny_tcp, pd->dirfds, pd->ndirfds, &abi,
		    &why) != 0 &&
		    step_failed(pd, why, errno, err, errlen) != 0)
			return -1;
	}
	if (sandbox_seccomp(pd->policy, pd->seccomp_trap, pd->log_fd, pd->self_peer, &why) != 0 &&
	    step_failed(pd, why, errno, err, errlen) != 0)
		return -1;
	return 0;
}

static int
parse_id(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return (errno != 0 || end == s || *out > INT_MAX) ? -1 : (int)(end - s);
}

int
privdrop_parse_args(int argc, char **argv, struct privdrop *pd, int *debug,
    char *err, size_t errlen)
{
	int ch, have_mode = 0;

	memset(pd, 0, sizeof(*pd));
	pd->log_fd = -1;
	*debug = 0;
	optind = 1;
	while ((ch = getopt(argc, argv, "m:u:c:dI")) != -1) {
		unsigned long u, g;
		int n;

		switch (ch) {
		case 'm':
			if (strcmp(optarg, "system") == 0)
				pd->system_mode = 1;
			else if (strcmp(optarg, "user") != 0)
				goto usage;
			have_mode = 1;
			break;
		case 'u':
			if ((n = parse_id(optarg, &u)) < 0 || optarg[n] != ':' ||
			    parse_id(optarg + n + 1, &g) < 0)
				goto usage;
			pd->uid = (uid_t)u;
			pd->gid = (gid_t)g;
			break;
		case 'c':
			pd->chroot_dir = optarg;
			break;
		case 'd':
			*debug = 1;
			pd->seccomp_trap = 1;
			break;
		case 'I':
			pd->insecure = 1;
			break;
		default:
			goto usage;
		}
	}
	if (!have_mode || optind != argc ||
	    (pd->system_mode && (pd->chroot_dir == NULL || pd->uid == 0)))
		goto usage;
	return 0;
usage:
	snprintf(err, errlen, "this program is started by vaultsyncd, not by hand "
	    "(usage: -m system|user [-u UID:GID -c CHROOT] [-d] [-I])");
	return -1;
}
