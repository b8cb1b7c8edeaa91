/*
 * The polling fallback: when inotify cannot cover a vault (the watch limit
 * was reached, or Watcher polling), the parent looks at the tree itself,
 * every second or WatcherDebounce if longer.  The look is cheap: the stat
 * scan of treedigest.c, metadata only, folded into one 64-bit digest; a
 * different digest is a change, and so is an entry whose mtime or ctime is
 * within the timestamp granularity of the previous look's start or after it
 * (a change in the same timestamp tick as that look leaves the digest as it
 * was: the racy rule of chgcheck.h).
 */
#include <stdlib.h>

#include "log.h"
#include "treedigest.h"
#include "vaultsyncd.h"

#define SCAN_MIN_MS	1000

static int scan_timer = -1;

/* Each polled vault's tree as last seen: a metadata digest, 0 = none yet. */
struct scan_state {
	uint32_t gen;			/* vreg_state's */
	uint64_t digest;
	int64_t start_ns;		/* when the look that took it began, unix ns */
};
static struct scan_state scans[CFG_MAX_VAULTS];
#define SC(v)	VREG_STATE(scans, v)

/* One look: 1 if the tree differs from the previous look (or changed during it). */
static int
look(struct vault_rt *v, const char *path)
{
	struct scan_state *s = SC(v);
	int64_t t0 = wall_ns();
	struct tree_scan ts;
	int changed;

	(void)tree_scan(path, s->start_ns != 0 ? s->start_ns - tree_time_granularity_ns() : 0, &ts);
	changed = s->digest != 0 && (ts.digest != s->digest || ts.racy != 0);
	s->digest = ts.digest != 0 ? ts.digest : 1;
	s->start_ns = t0;
	return changed;
}

/* The tree was replaced or is watched again: the next scan takes a new baseline. */
void
pollscan_forget(struct vault_rt *v)
{
	SC(v)->digest = 0;
	SC(v)->start_ns = 0;
}

static void
scan_fired(void *arg)
{
	struct vault_rt *v;
	int any = 0;

	(void)arg;
	scan_timer = -1;
	VAULT_FOREACH(v) {
		const struct cfg_vault *cv = cfg_vault_find(&D.cfg, v->name);

		if (v->watch_mode != WATCH_POLLING || cv == NULL)
			continue;
		any = 1;
		if (v->state == VAULT_ST_LOCKED || v->busy)
			continue;
		if (look(v, cv->path)) {
			log_debug("vault %s: the polling scan saw a change", v->name);
			v->changes++;
			tick_changed(v);
		}
	}
	if (any)
		pollscan_arm();
}

/*
 * Keep scanning while any vault is in polling mode.  A vault that just
 * entered it gets its baseline now (a change in the next second must not
 * become the baseline) and a tick: what inotify missed is saved.
 */
void
pollscan_arm(void)
{
	uint64_t ms = D.cfg.watcher_debounce_ms > SCAN_MIN_MS ? D.cfg.watcher_debounce_ms :
	    SCAN_MIN_MS;
	struct vault_rt *v;
	int any = 0;

	if (D.shutting_down)
		return;
	VAULT_FOREACH(v) {
		const struct cfg_vault *cv = cfg_vault_find(&D.cfg, v->name);

		if (v->watch_mode != WATCH_POLLING || cv == NULL)
			continue;
		any = 1;
		if (SC(v)->digest == 0 && v->state != VAULT_ST_LOCKED) {
			(void)look(v, cv->path);
			tick_changed(v);
		}
	}
	if (any && scan_timer < 0)
		scan_timer = timer_add(ms, scan_fired, NULL);
}
