/*
 * The tick loop of each vault (DESIGN §7): a tick is save, then push when
 * the remote lags.  Triggers: startup, the watcher's (debounced) changes, the
 * head poller, the Interval backstop and vaultsyncctl sync.  One tick at a
 * time per vault: triggers that arrive during a tick fold into one more tick
 * after it.  The interval restarts after every tick.  A tick on a locked
 * vault is a tick_skip.  Every tick leaves tick_start and tick_end records
 * (DESIGN §8) that scripts read with jq.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chgcheck.h"
#include "log.h"
#include "vault_ops.h"
#include "vaultsyncd.h"

enum tick_phase { TICK_IDLE = 0, TICK_SAVING, TICK_PUSHING };

/* A vault's tick loop: the tick in progress, the one pending, who waits. */
struct tick_state {
	uint32_t gen;			/* vreg_state's */
	int started;			/* its startup tick was requested */
	int running;			/* enum tick_phase */
	uint64_t index;
	int trigger;
	uint64_t t0;
	int64_t started_ms;		/* unix ms */
	int pending, pending_trigger;
	int saved, pushed;
	int checked;			/* the save job ran: check and scan_us are known */
	enum chg_verdict check;		/* the change check's verdict */
	uint64_t scan_us;		/* its stat scan's wall time */
	uint64_t uploaded_bytes;	/* what the push reported, for the records */
	char etag[128], key[192];
	char save_msg[512], push_msg[512];
	struct waiters waiters;		/* after: the tick index when they asked */
	struct vtimer interval;		/* the Interval backstop */
};
static struct tick_state ticks[CFG_MAX_VAULTS];
#define TS(v)	VREG_STATE(ticks, v)

static const char *const trigger_names[] = {
	[TRIG_STARTUP] = "startup", [TRIG_WATCHER] = "watcher", [TRIG_HEAD_POLL] = "head-poll",
	[TRIG_INTERVAL] = "interval", [TRIG_CTL] = "ctl",
};

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct cfg_vault *
cfg_of(const struct vault_rt *v)
{
	return cfg_vault_find(&D.cfg, v->name);
}

/* One record: the DESIGN §8 envelope in json, a readable line otherwise. */
static void
emit(enum log_level level, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
emit(enum log_level level, json_t *fields, const char *fmt, ...)
{
	char msg[900], ts[40];
	char *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level > log_get_level()) {
		json_decref(fields);
		return;
	}
	log_timestamp(ts, sizeof(ts));
	json_object_set_new(fields, "time", json_string(ts));
	s = json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(fields);
	if (s == NULL)
		return;
	/* Members only: the envelope's own time, level, proc, pid and msg come first. */
	s[strlen(s) - 1] = '\0';
	log_emit_fields(level, "parent", (int)getpid(), msg, s + 1);
	free(s);
}

static json_t *
base(const struct vault_rt *v, const char *event)
{
	const struct tick_state *t = TS(v);

	return json_pack("{s:i, s:s, s:s, s:I, s:s}", "schema_version", 1, "event", event,
	    "vault", v->name, "tick_index", (json_int_t)t->index, "trigger",
	    trigger_names[t->trigger]);
}

static void
interval_fired(struct vault_rt *v)
{
	tick_request(v, TRIG_INTERVAL, -1, 0);
}

/* The backstop: Interval after the end of every tick (re-arming cancels the old one). */
static void
arm_interval(struct vault_rt *v)
{
	const struct cfg_vault *cv = cfg_of(v);
	struct tick_state *t = TS(v);

	vtimer_clear(&t->interval);
	if (cv == NULL || D.shutting_down || D.oneshot || cv->interval_ms == 0)
		return;
	vtimer_set(v, &t->interval, cv->interval_ms, interval_fired);
}

/*
 * Answer the waiters this tick covers: those that asked before it started.
 * One that asked during it waits for the next tick, which sees its change.
 */
static void
reply_all(struct vault_rt *v, int code, const char *msg)
{
	struct tick_state *t = TS(v);

	waiters_answer(&t->waiters, t->index, code, msg);
	if (t->waiters.n > 0 && !t->pending) {
		t->pending = 1;
		t->pending_trigger = TRIG_CTL;
	}
}

static void tick_start(struct vault_rt *v, int trigger);

/* The tick that ends, for statusd's tick history. */
static void
record(const struct vault_rt *v, uint32_t outcome, const char *error, uint64_t ms)
{
	const struct tick_state *t = TS(v);
	struct msg_tick_rec r;

	memset(&r, 0, sizeof(r));
	msg_strlcpy(r.vault, v->name, sizeof(r.vault));
	r.index = t->index;
	r.started_ms = t->started_ms;
	r.duration_ms = ms;	/* the figure the tick_end record gives */
	r.trigger = (uint32_t)t->trigger;
	r.outcome = outcome;
	r.saved = t->saved != 0;
	r.pushed = t->pushed != 0;
	r.unchanged = t->checked && t->check == CHG_UNCHANGED;
	r.scanned = t->checked;
	r.scan_us = t->checked ? t->scan_us : 0;
	r.archive_bytes = v->st.archive_bytes;
	r.uploaded_bytes = t->pushed ? t->uploaded_bytes : 0;
	msg_strlcpy(r.sha256, v->st.sha256, sizeof(r.sha256));
	msg_strlcpy(r.error, error != NULL ? error : "", sizeof(r.error));
	ticklog_add(&r);
}

static void saved(struct vault_rt *v, int rc, int changed, const char *msg);

static void
tick_end(struct vault_rt *v, const char *outcome, int code, const char *error)
{
	const struct cfg_vault *cv = cfg_of(v);
	struct tick_state *t = TS(v);
	uint64_t ms = mono_ms() - t->t0;
	char key[CFG_URL_MAX + UPL_KEY_MAX + 80];
	char reply[sizeof(t->save_msg) + sizeof(t->push_msg) + 4];
	json_t *f = base(v, "tick_end"), *sync;

	key[0] = '\0';
	if (t->pushed && cv != NULL)
		snprintf(key, sizeof(key), "%s/%s/%s", cv->remote, v->name, t->key);
	/* Every member always present (null when not known): scripts test values, not keys. */
	sync = json_object();
	json_object_set_new(sync, "saved", json_boolean(t->saved));
	json_object_set_new(sync, "sha256", v->st.sha256[0] ? json_string(v->st.sha256) :
	    json_null());
	json_object_set_new(sync, "archive_bytes", json_integer((json_int_t)v->st.archive_bytes));
	json_object_set_new(sync, "pushed", json_boolean(t->pushed));
	json_object_set_new(sync, "uploaded_bytes",
	    json_integer((json_int_t)(t->pushed ? t->uploaded_bytes : 0)));
	json_object_set_new(sync, "etag", t->pushed && t->etag[0] ? json_string(t->etag) :
	    json_null());
	json_object_set_new(sync, "remote_key", key[0] ? json_string(key) : json_null());
	json_object_set_new(f, "duration_ms", json_integer((json_int_t)ms));
	json_object_set_new(f, "outcome", json_string(outcome));
	json_object_set_new(f, "error", error != NULL && error[0] ? json_string(error) :
	    json_null());
	json_object_set_new(f, "sync", sync);
	json_object_set_new(f, "unchanged", json_boolean(t->checked && t->check == CHG_UNCHANGED));
	json_object_set_new(f, "scan_us", t->checked ? json_integer((json_int_t)t->scan_us) :
	    json_null());
	json_object_set_new(f, "check", t->checked ? json_string(chg_verdict_name(t->check)) :
	    json_null());
	emit(strcmp(outcome, "ok") == 0 ? LL_INFO : strcmp(outcome, "conflict") == 0 ? LL_WARN :
	    LL_ERROR, f, "vault %s: tick %llu (%s) %s in %llu ms%s%s%s%s", v->name,
	    (unsigned long long)t->index, trigger_names[t->trigger], outcome,
	    (unsigned long long)ms, t->saved ? ", saved" : t->checked && t->check == CHG_UNCHANGED ?
	    ", unchanged (no archive made)" : ", unchanged",
	    t->pushed ? ", pushed" : "", error != NULL && error[0] ? ": " : "",
	    error != NULL ? error : "");
	if (strcmp(outcome, "ok") != 0)
		D.oneshot_failed |= D.oneshot;
	record(v, strcmp(outcome, "ok") == 0 ? TICK_OK : strcmp(outcome, "conflict") == 0 ?
	    TICK_CONFLICT : TICK_ERROR, error, ms);
	snprintf(reply, sizeof(reply), "%s%s%s", t->save_msg,
	    t->save_msg[0] && t->push_msg[0] ? "; " : "", t->push_msg);
	t->running = TICK_IDLE;
	reply_all(v, code, reply);
	arm_interval(v);
	/* A pending tick starts from ctlq_settle_all(), after the requests waiting their turn. */
}

static void
tick_start(struct vault_rt *v, int trigger)
{
	struct tick_state *t = TS(v);
	char err[256];

	t->index++;
	t->pending = 0;	/* whatever was pending, this tick sees it */
	t->trigger = trigger;
	t->t0 = mono_ms();
	t->started_ms = wall_ms();
	t->saved = t->pushed = t->checked = 0;
	t->scan_us = 0;
	t->uploaded_bytes = 0;
	t->etag[0] = t->key[0] = '\0';
	t->save_msg[0] = t->push_msg[0] = '\0';
	if (v->state == VAULT_ST_LOCKED) {
		json_t *f = base(v, "tick_skip");

		json_object_set_new(f, "reason", json_string("locked"));
		emit(LL_INFO, f, "vault %s: tick %llu (%s) skipped: locked", v->name,
		    (unsigned long long)t->index, trigger_names[trigger]);
		snprintf(err, sizeof(err), "vault %s is locked", v->name);
		record(v, TICK_SKIPPED, err, 0);
		reply_all(v, 1, err);
		arm_interval(v);
		return;
	}
	emit(LL_INFO, base(v, "tick_start"), "vault %s: tick %llu (%s)", v->name,
	    (unsigned long long)t->index, trigger_names[trigger]);
	t->running = TICK_SAVING;
	if (vault_save(v, saved, err, sizeof(err)) != 0) {
		msg_strlcpy(t->save_msg, err, sizeof(t->save_msg));
		tick_end(v, "error", 1, err);
	}
}

void
tick_request(struct vault_rt *v, int trigger, int client, uint32_t gen)
{
	struct tick_state *t = TS(v);

	if (D.shutting_down) {
		if (client >= 0)
			ctl_reply(client, gen, 1, "the daemon is shutting down");
		return;
	}
	if (client >= 0) {
		char what[CFG_NAME_MAX + 8];

		snprintf(what, sizeof(what), "vault %s", v->name);
		if (waiters_add(&t->waiters, client, gen, t->index, NULL, 0, what) != 0)
			return;
	}
	/* A tick, job or wholesale change (init, unlock, lock, pull) in progress: after it. */
	if (t->running != TICK_IDLE || v->busy || ctlq_holds(v)) {
		if (!t->pending)
			t->pending_trigger = trigger;
		t->pending = 1;
		return;
	}
	tick_start(v, trigger);
}

static void pushed(struct vault_rt *v, const struct push_report *r);

/* The save of the running tick finished (ok: 0, else the error). */
static void
saved(struct vault_rt *v, int rc, int changed, const char *msg)
{
	const struct cfg_vault *cv = cfg_of(v);
	struct tick_state *t = TS(v);

	if (t->running != TICK_SAVING)
		return;
	msg_strlcpy(t->save_msg, msg, sizeof(t->save_msg));
	t->check = chgcheck_last(v, &t->scan_us);
	t->checked = rc == 0;
	if (rc != 0) {
		tick_end(v, "error", rc, msg);
		return;
	}
	t->saved = changed;
	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE) {
		tick_end(v, "ok", 0, NULL);
		return;
	}
	t->running = TICK_PUSHING;
	/* A control request waits for this tick: its push is tried now, backoff or not. */
	if (waiters_for(&t->waiters, t->index))
		remote_retry_now(v);
	remote_push_tick(v, pushed);
}

/* The push of the running tick came to an end: what it did is in the report. */
static void
pushed(struct vault_rt *v, const struct push_report *r)
{
	struct tick_state *t = TS(v);

	if (t->running != TICK_PUSHING)
		return;
	msg_strlcpy(t->push_msg, r->msg, sizeof(t->push_msg));
	t->pushed = r->uploaded;
	t->uploaded_bytes = r->bytes;
	msg_strlcpy(t->etag, r->etag != NULL ? r->etag : "", sizeof(t->etag));
	msg_strlcpy(t->key, r->key != NULL ? r->key : "", sizeof(t->key));
	if (r->conflict)
		tick_end(v, "conflict", 1, r->msg);
	else
		tick_end(v, r->code == 0 ? "ok" : "error", r->code, r->code == 0 ? NULL : r->msg);
}

/* The vault is free and no control request waits: a tick that was held back runs now. */
void
tick_run_pending(struct vault_rt *v)
{
	struct tick_state *t = TS(v);

	if (t->pending && t->running == TICK_IDLE && !v->busy && !ctlq_holds(v) &&
	    !D.shutting_down)
		tick_start(v, t->pending_trigger);
}

/* A tick of this vault is saving or pushing. */
int
tick_busy(const struct vault_rt *v)
{
	return TS(v)->running != TICK_IDLE;
}

/* A lock is about to save the vault for the last time: what was pending is covered. */
void
tick_drop_pending(struct vault_rt *v)
{
	TS(v)->pending = 0;
}

int
tick_any_running(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		if (tick_busy(v))
			return 1;
	return 0;
}

/* First SIGTERM: a tick in progress ends on its own; every other vault gets a last save. */
void
tick_final_saves(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		if (!tick_busy(v))
			vault_final_save(v);
}

/* Every vault's first tick (and a new vault's, after a reload). */
void
tick_startup(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		if (!TS(v)->started) {
			TS(v)->started = 1;
			tick_request(v, TRIG_STARTUP, -1, 0);
		}
}

/* A change in an unlocked vault: a tick now, or right after the one in progress. */
void
tick_changed(struct vault_rt *v)
{
	if (v->state == VAULT_ST_LOCKED || D.shutting_down)
		return;
	tick_request(v, TRIG_WATCHER, -1, 0);
}

/* vaultsyncd -1: one full tick of each selected vault, then the loop shuts down. */
void
tick_oneshot_start(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v) {
		char **n;
		int want = D.oneshot_vaults == NULL || *D.oneshot_vaults == NULL;

		for (n = D.oneshot_vaults; !want && n != NULL && *n != NULL; n++)
			want = strcmp(*n, v->name) == 0;
		if (!want)
			continue;
		TS(v)->started = 1;
		if (v->state == VAULT_ST_LOCKED) {
			log_info("vault %s: locked, nothing to save", v->name);
			continue;
		}
		tick_request(v, TRIG_STARTUP, -1, 0);
	}
}
