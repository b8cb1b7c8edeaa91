/*
 * The change check's per-vault state (see chgcheck.h): what the last save
 * saw, kept in a few words per vault however large the vault (one digest of
 * all stat tuples, not a table of entries), handed to each save job and
 * taken back from it.  The scan and the judgement run in the job (save.c);
 * this file only decides whether there is anything to compare with.
 */
#include <string.h>
#include <time.h>

#include "chgcheck.h"
#include "treedigest.h"
#include "vaultsyncd.h"

struct chk_state {
	uint32_t gen;			/* vreg_state's */
	int valid;			/* base holds the last save's view */
	struct chg_base base;
	uint64_t changes;		/* the vault's change count when that save started */
	uint64_t full_ms;		/* mono_ms of that save */
	uint32_t epoch;			/* moves on every forget: a job older than it is ignored */
	enum chg_verdict last;		/* the last save job's */
	uint64_t last_scan_us;
};
static struct chk_state chks[CFG_MAX_VAULTS];
#define CS(v)	VREG_STATE(chks, v)

static const char *const verdict_names[] = {
	[CHG_NO_STATE] = "no-state", [CHG_EVENTS] = "events", [CHG_AGE] = "age",
	[CHG_NO_ARCHIVE] = "no-archive", [CHG_SCAN_ERROR] = "scan-error",
	[CHG_DIFFERS] = "changed", [CHG_RACY] = "racy", [CHG_UNCHANGED] = "unchanged",
};

const char *
chg_verdict_name(enum chg_verdict c)
{
	return (unsigned)c <= CHG_VERDICT_MAX ? verdict_names[c] : "?";
}

void
chgcheck_prepare(struct vault_rt *v, struct chg_job *j)
{
	struct chk_state *s = CS(v);

	memset(j, 0, sizeof(*j));
	j->changes = v->changes;
	j->epoch = s->epoch;
	j->gran_ns = tree_time_granularity_ns();
	if (!s->valid)
		j->verdict = CHG_NO_STATE;
	else if (v->changes != s->changes)
		j->verdict = CHG_EVENTS;
	else if (mono_ms() - s->full_ms >= CHG_FULL_MAX_MS)
		j->verdict = CHG_AGE;
	else {
		j->compare = 1;
		j->base = s->base;
	}
}

void
chgcheck_done(struct vault_rt *v, const struct chg_job *j, int ok)
{
	struct chk_state *s = CS(v);

	s->last = ok ? j->verdict : CHG_NO_STATE;
	s->last_scan_us = ok ? j->scan_us : 0;
	if (j->epoch != s->epoch)
		return;		/* forgotten meanwhile (a reload): the next save is full */
	if (ok && j->verdict == CHG_UNCHANGED)
		return;		/* the last save's view still holds, and its start */
	s->valid = ok && j->have_next;
	if (s->valid) {
		s->base = j->next;
		s->changes = j->changes;
		s->full_ms = mono_ms();
	}
}

void
chgcheck_forget(struct vault_rt *v)
{
	struct chk_state *s = CS(v);

	s->valid = 0;
	s->epoch++;
}

void
chgcheck_forget_all(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		chgcheck_forget(v);
}

enum chg_verdict
chgcheck_last(struct vault_rt *v, uint64_t *scan_us)
{
	*scan_us = CS(v)->last_scan_us;
	return CS(v)->last;
}
