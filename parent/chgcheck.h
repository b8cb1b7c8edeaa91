/*
 * The change check before the archive (chgcheck.c owns its per-vault
 * state).  Per vault the parent keeps what the last save's stat scan saw:
 * one digest of every entry's tuple (treedigest.h), the entry count, and
 * when that scan began; and the vault's change count (the watcher's and the
 * polling scan's reports) as the save started.  A save job first scans; it
 * makes no archive only when no change was reported since, the digest and
 * count are equal, and no entry is racy: an mtime or ctime at or after the
 * last save's start less the timestamp granularity could hide a change
 * made in the same timestamp tick as that scan, so it counts as changed.
 * Anything unusual (no state kept, a reload, an unlock, pull or lock, a
 * failed or torn save, a scan error, no local archive, the last full save
 * over CHG_FULL_MAX_MS ago) makes the full save.
 */
#ifndef VS_CHGCHECK_H
#define VS_CHGCHECK_H

#include <stdint.h>

/* Even with nothing seen to change, a full save at least this often (mmap writes move no time). */
#define CHG_FULL_MAX_MS		(60 * 60 * 1000ull)

/* Why a save job made a full save, or that it needed none. */
enum chg_verdict {
	CHG_NO_STATE = 0,	/* nothing kept: first tick, reload, unlock, pull, failed save */
	CHG_EVENTS,		/* the watcher or the polling scan reported changes since */
	CHG_AGE,		/* the last full save is older than CHG_FULL_MAX_MS */
	CHG_NO_ARCHIVE,		/* the local archive is missing */
	CHG_SCAN_ERROR,		/* the scan could not read everything */
	CHG_DIFFERS,		/* digest or entry count differ */
	CHG_RACY,		/* entries changed within the granularity of the last save's start */
	CHG_UNCHANGED,		/* nothing differs: no archive made */
	CHG_VERDICT_MAX = CHG_UNCHANGED,
};

/* What the last save's scan saw. */
struct chg_base {
	uint64_t digest, entries;
	int64_t start_ns;	/* unix ns, read before the scan began */
};

/* A save job's part: filled by chgcheck_prepare, judged on the worker, folded back. */
struct chg_job {
	int compare;			/* base is usable: scan and compare */
	enum chg_verdict verdict;	/* prepare: why not compare; the worker: the outcome */
	struct chg_base base;
	int64_t gran_ns;		/* timestamp granularity allowed for */
	uint64_t changes;		/* the vault's change count as the job started */
	uint32_t epoch;			/* the state's, as the job started */
	/* results */
	uint64_t scan_us;		/* the first scan's wall time */
	int have_next;			/* next is what the archive written (or kept) holds */
	struct chg_base next;
};

struct vault_rt;

void chgcheck_prepare(struct vault_rt *v, struct chg_job *j);
/* A save job ended (ok: it succeeded); before its caller hears of it. */
void chgcheck_done(struct vault_rt *v, const struct chg_job *j, int ok);
void chgcheck_forget(struct vault_rt *v);	/* the tree was replaced: the next save is full */
void chgcheck_forget_all(void);			/* a reload */
/* The last save job's verdict and first scan time (0 scan_us: none ran). */
enum chg_verdict chgcheck_last(struct vault_rt *v, uint64_t *scan_us);
const char *chg_verdict_name(enum chg_verdict c);

#endif
