/*
 * Private to verify.c and vfetch.c: one restore drill in flight.  verify.c
 * owns the drills (when, for whom, the outcome); vfetch.c fetches and
 * judges what the remote holds and hands the drill back through
 * drill_finish.
 */
#ifndef VS_VDRILL_H
#define VS_VDRILL_H

#include <stdint.h>

#include "vaultsyncd.h"

/* What the drill found about one remote object. */
struct part {
	uint32_t outcome;		/* VERIFY_* */
	int compared;			/* byte for byte */
	uint64_t bytes;
	char key[UPL_KEY_MAX];
	char msg[384];
};

struct verify_drill {
	char vault[CFG_NAME_MAX];
	const char *trigger;		/* "ctl" or "interval" */
	struct waiters waiters;
	uint64_t since;			/* mono_ms of the request */

	/* As of the start: what the remote should hold. */
	int local_fd;
	uint64_t local_size;
	int compare_latest;
	int conflict;
	char etag[UPL_ETAG_MAX];	/* we last wrote */
	char cid16[17];
	int64_t saved_at, history_at;
	uint64_t max;

	int tmp_fd;			/* the download in flight */
	char newest[UPL_KEY_MAX];
	char got_etag[UPL_ETAG_MAX];	/* the latest's, as downloaded */
	struct part latest, history;

	/* A judgement on a worker (vjudge.c): of which part, and what comes after. */
	struct part *judging;
	void (*next)(struct vault_rt *v, struct verify_drill *d);
	char why_not[160];		/* why the part is not compared byte for byte */
};

void part_set(struct part *p, uint32_t outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The vault's configuration as now loaded, NULL if a reload removed it. */
const struct cfg_vault *drill_cfg(const struct vault_rt *v);
/* The drill's vault, or NULL after a reload removed it (the drill is then finished). */
struct vault_rt *drill_vault(struct verify_drill *d);
/* The verdict: log record, waiters, the vault's status, the next drill's timer. */
void drill_finish(struct vault_rt *v, struct verify_drill *d);
/* vfetch.c: fix what the remote should hold, fetch and judge the latest, then history. */
void drill_fetch(struct vault_rt *v, struct verify_drill *d);

#endif
