/*
 * The tick history statusd serves (/v1/vaults/NAME/ticks): per vault, the
 * last StatusTickHistory tick records the parent sent (at most
 * TICKS_KEEP_MAX: the setting allows more than statusd's memory should
 * hold), oldest first.  A vault's ring is made on its first record.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "statusd.h"
#include "statusjson.h"

#define TICKS_KEEP_MAX	1000

struct ring {
	char vault[64];
	struct msg_tick_rec *r;
	size_t cap, n, head;	/* head: where the next one goes */
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

	if (g == NULL)
		return;		/* out of memory: the history has a gap, the rest serves on */
	g->r[g->head] = *t;
	g->head = (g->head + 1) % g->cap;
	if (g->n < g->cap)
		g->n++;
}

json_t *
ticks_one_json(const struct msg_tick_rec *t)
{
	static const char *const trig[] = { "startup", "watcher", "head-poll", "interval", "ctl" };
	static const char *const out[] = { "ok", "error", "conflict", "skipped" };
	char at[40];
	struct tm tm;
	time_t s = (time_t)(t->started_ms / 1000);

	gmtime_r(&s, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(at + strlen(at), sizeof(at) - strlen(at), ".%03dZ", (int)(t->started_ms % 1000));
	return json_pack("{s:I, s:s, s:s, s:I, s:s, s:s*, s:{s:b, s:s*, s:I, s:b, s:I}}",
	    "tick_index", (json_int_t)t->index, "trigger", trig[t->trigger],
	    "started_at", at, "duration_ms", (json_int_t)t->duration_ms,
	    "outcome", out[t->outcome], "error", t->error[0] ? t->error : NULL,
	    "sync", "saved", (int)t->saved, "sha256", t->sha256[0] ? t->sha256 : NULL,
	    "archive_bytes", (json_int_t)t->archive_bytes, "pushed", (int)t->pushed,
	    "uploaded_bytes", (json_int_t)t->uploaded_bytes);
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
		json_array_append_new(a, ticks_one_json(&g->r[(g->head + g->cap - g->n + i) % g->cap]));
	return a;
}
