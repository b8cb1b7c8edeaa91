/*
 * The tick history statusd serves (/v1/vaults/NAME/ticks): per vault, the
 * last StatusTickHistory tick records the parent sent (at most
 * TICKS_KEEP_MAX: the setting allows more than statusd's memory should
 * hold), oldest first.  A vault's ring is made on its first record.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "statusd.h"
#include "statusjson.h"

#define TICKS_KEEP_MAX	1000

/* Upper bounds of the duration histogram's buckets, in milliseconds. */
static const uint64_t bucket_ms[] = { 10, 50, 100, 500, 1000, 5000, 30000, 120000 };
#define NBUCKETS	(sizeof(bucket_ms) / sizeof(bucket_ms[0]))

/* A tick as kept: the record without its fixed-size padding (the error, rare, apart). */
struct tick {
	uint64_t index, duration_ms, archive_bytes, uploaded_bytes, scan_us;
	int64_t started_ms;
	uint8_t trigger, outcome, saved, pushed, unchanged, scanned;
	char sha256[65];
	char *error;		/* NULL: none */
};

struct ring {
	char vault[64];
	struct tick *r;
	size_t cap, n, head;	/* head: where the next one goes */
	/* Counted from the ticks that ended while this statusd ran (not replays). */
	uint64_t count[TRIG_MAX + 1][TICK_OUTCOME_MAX + 1];
	uint64_t le[NBUCKETS + 1];	/* cumulative per bucket; the last is +Inf */
	uint64_t dur_ms, archived, uploaded;
};

static struct ring rings[CFG_MAX_VAULTS];
static size_t keep = 100;

void
ticks_config(uint32_t history)
{
	keep = history == 0 ? 1 : history > TICKS_KEEP_MAX ? TICKS_KEEP_MAX : history;
}

static struct ring *
ring_of(const char *vault, int make)
{
	struct ring *empty = NULL, *oldest = NULL;
	size_t i;

	for (i = 0; i < CFG_MAX_VAULTS; i++) {
		if (rings[i].r != NULL && strcmp(rings[i].vault, vault) == 0)
			return &rings[i];
		if (rings[i].r == NULL && empty == NULL)
			empty = &rings[i];
	}
	if (!make)
		return NULL;
	if (empty == NULL) {
		/* Vaults come and go with reloads: the first slot makes room. */
		oldest = &rings[0];
		for (i = 0; i < oldest->cap; i++)
			free(oldest->r[i].error);
		free(oldest->r);
		memset(oldest, 0, sizeof(*oldest));
		empty = oldest;
	}
	if ((empty->r = calloc(keep, sizeof(*empty->r))) == NULL)
		return NULL;
	empty->cap = keep;
	msg_strlcpy(empty->vault, vault, sizeof(empty->vault));
	return empty;
}

void
ticks_take(const struct msg_tick_rec *t)
{
	struct ring *g = ring_of(t->vault, 1);
	struct tick *k;

	if (g == NULL)
		return;		/* out of memory: the history has a gap, the rest serves on */
	k = &g->r[g->head];
	free(k->error);
	k->index = t->index;
	k->duration_ms = t->duration_ms;
	k->archive_bytes = t->archive_bytes;
	k->uploaded_bytes = t->uploaded_bytes;
	k->started_ms = t->started_ms;
	k->trigger = (uint8_t)t->trigger;
	k->outcome = (uint8_t)t->outcome;
	k->saved = (uint8_t)t->saved;
	k->pushed = (uint8_t)t->pushed;
	k->unchanged = (uint8_t)t->unchanged;
	k->scanned = (uint8_t)t->scanned;
	k->scan_us = t->scan_us;
	msg_strlcpy(k->sha256, t->sha256, sizeof(k->sha256));
	k->error = t->error[0] != '\0' ? strdup(t->error) : NULL;
	g->head = (g->head + 1) % g->cap;
	if (g->n < g->cap)
		g->n++;
	if (!t->replayed) {
		size_t b;

		g->count[t->trigger][t->outcome]++;
		for (b = 0; b <= NBUCKETS; b++)
			if (b == NBUCKETS || t->duration_ms <= bucket_ms[b])
				g->le[b]++;
		g->dur_ms += t->duration_ms;
		g->archived += t->saved ? t->archive_bytes : 0;
		g->uploaded += t->uploaded_bytes;
	}
}

static const char *const trig_names[] = { "startup", "watcher", "head-poll", "interval", "ctl" };
static const char *const outcome_names[] = { "ok", "error", "conflict", "skipped" };

static void
vlabel(FILE *f, const char *name, const struct ring *g)
{
	fprintf(f, "%s{vault=\"", name);
	metrics_label(f, g->vault);
	fputc('"', f);
}

/* One counter per vault: the uint64_t at off in its ring. */
static void
counter(FILE *f, const char *name, const char *help, size_t off)
{
	size_t i;

	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (i = 0; i < CFG_MAX_VAULTS; i++)
		if (rings[i].r != NULL) {
			vlabel(f, name, &rings[i]);
			fprintf(f, "} %llu\n", (unsigned long long)*(const uint64_t *)
			    (const void *)((const char *)&rings[i] + off));
		}
}

/* The tick families of /metrics, from the ticks this statusd saw end. */
void
ticks_metrics(FILE *f)
{
	size_t i, b;
	int tr, oc;

	fputs("# HELP vaultsync_ticks_total Ticks that ended, by what started them and how "
	    "they ended.\n# TYPE vaultsync_ticks_total counter\n", f);
	for (i = 0; i < CFG_MAX_VAULTS; i++)
		for (tr = 0; rings[i].r != NULL && tr <= TRIG_MAX; tr++)
			for (oc = 0; oc <= TICK_OUTCOME_MAX; oc++) {
				vlabel(f, "vaultsync_ticks_total", &rings[i]);
				fprintf(f, ",trigger=\"%s\",outcome=\"%s\"} %llu\n", trig_names[tr],
				    outcome_names[oc], (unsigned long long)rings[i].count[tr][oc]);
			}
	fputs("# HELP vaultsync_tick_duration_seconds How long ticks took.\n"
	    "# TYPE vaultsync_tick_duration_seconds histogram\n", f);
	for (i = 0; i < CFG_MAX_VAULTS; i++) {
		const struct ring *g = &rings[i];

		if (g->r == NULL)
			continue;
		for (b = 0; b <= NBUCKETS; b++) {
			vlabel(f, "vaultsync_tick_duration_seconds_bucket", g);
			if (b == NBUCKETS)
				fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)g->le[b]);
			else
				fprintf(f, ",le=\"%g\"} %llu\n", (double)bucket_ms[b] / 1000,
				    (unsigned long long)g->le[b]);
		}
		vlabel(f, "vaultsync_tick_duration_seconds_sum", g);
		fprintf(f, "} %.3f\n", (double)g->dur_ms / 1000);
		vlabel(f, "vaultsync_tick_duration_seconds_count", g);
		fprintf(f, "} %llu\n", (unsigned long long)g->le[NBUCKETS]);
	}
	counter(f, "vaultsync_archived_bytes_total", "Bytes of the new archives ticks saved.",
	    offsetof(struct ring, archived));
	counter(f, "vaultsync_uploaded_bytes_total", "Bytes ticks' pushes uploaded.",
	    offsetof(struct ring, uploaded));
}

json_t *
ticks_one_json(const struct msg_tick_rec *t)
{
	static const char *const trig[] = { "startup", "watcher", "head-poll", "interval", "ctl" };
	static const char *const out[] = { "ok", "error", "conflict", "skipped" };
	char at[40];
	struct tm tm;
	time_t s = (time_t)(t->started_ms / 1000);
	json_t *o;

	gmtime_r(&s, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(at + strlen(at), sizeof(at) - strlen(at), ".%03dZ", (int)(t->started_ms % 1000));
	o = json_pack("{s:I, s:s, s:s, s:I, s:s, s:s*, s:{s:b, s:s*, s:I, s:b, s:I}}",
	    "tick_index", (json_int_t)t->index, "trigger", trig[t->trigger],
	    "started_at", at, "duration_ms", (json_int_t)t->duration_ms,
	    "outcome", out[t->outcome], "error", t->error[0] ? t->error : NULL,
	    "sync", "saved", (int)t->saved, "sha256", t->sha256[0] ? t->sha256 : NULL,
	    "archive_bytes", (json_int_t)t->archive_bytes, "pushed", (int)t->pushed,
	    "uploaded_bytes", (json_int_t)t->uploaded_bytes);
	/* The change check: nothing to save (no archive made), and the stat scan's time. */
	json_object_set_new(o, "unchanged", json_boolean(t->unchanged));
	if (t->scanned)
		json_object_set_new(o, "scan_us", json_integer((json_int_t)t->scan_us));
	return o;
}

static json_t *
kept_json(const struct ring *g, const struct tick *k)
{
	struct msg_tick_rec t;

	memset(&t, 0, sizeof(t));
	msg_strlcpy(t.vault, g->vault, sizeof(t.vault));
	t.index = k->index;
	t.duration_ms = k->duration_ms;
	t.archive_bytes = k->archive_bytes;
	t.uploaded_bytes = k->uploaded_bytes;
	t.started_ms = k->started_ms;
	t.trigger = k->trigger;
	t.outcome = k->outcome;
	t.saved = k->saved;
	t.pushed = k->pushed;
	t.unchanged = k->unchanged;
	t.scanned = k->scanned;
	t.scan_us = k->scan_us;
	msg_strlcpy(t.sha256, k->sha256, sizeof(t.sha256));
	msg_strlcpy(t.error, k->error != NULL ? k->error : "", sizeof(t.error));
	return ticks_one_json(&t);
}

/* The last limit ticks of a vault the snapshot names (0: all kept), oldest first. */
json_t *
ticks_json(const char *vault, size_t limit)
{
	const struct ring *g = ring_of(vault, 0);
	json_t *a = json_array();
	size_t i, n;

	if (g == NULL)
		return a;
	n = limit == 0 || limit > g->n ? g->n : limit;
	for (i = g->n - n; i < g->n; i++)
		json_array_append_new(a, kept_json(g, &g->r[(g->head + g->cap - g->n + i) % g->cap]));
	return a;
}
