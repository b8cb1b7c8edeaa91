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

#include "log.h"
#include "vault_ops.h"
#include "vaultsyncd.h"

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
	return json_pack("{s:i, s:s, s:s, s:I, s:s}", "schema_version", 1, "event", event,
	    "vault", v->name, "tick_index", (json_int_t)v->tick_index, "trigger",
	    trigger_names[v->tick_trigger]);
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

	vtimer_clear(&v->interval);
	if (cv == NULL || D.shutting_down || D.oneshot || cv->interval_ms == 0)
		return;
	vtimer_set(v, &v->interval, cv->interval_ms, interval_fired);
}

/*
 * Answer the waiters this tick covers: those that asked before it started.
 * One that asked during it waits for the next tick, which sees its change.
 */
static void
reply_all(struct vault_rt *v, int code, const char *msg)
{
	waiters_answer(&v->tick_waiters, v->tick_index, code, msg);
	if (v->tick_waiters.n > 0 && !v->tick_pending) {
		v->tick_pending = 1;
		v->pending_trigger = TRIG_CTL;
	}
}

static void tick_start(struct vault_rt *v, int trigger);

/* The tick that ends, for statusd's tick history. */
static void
record(const struct vault_rt *v, uint32_t outcome, const char *error, uint64_t ms)
{
	struct msg_tick_rec t;

	memset(&t, 0, sizeof(t));
	msg_strlcpy(t.vault, v->name, sizeof(t.vault));
	t.index = v->tick_index;
	t.started_ms = v->tick_started_ms;
	t.duration_ms = ms;	/* the figure the tick_end record gives */
	t.trigger = (uint32_t)v->tick_trigger;
	t.outcome = outcome;
	t.saved = v->tick_saved != 0;
	t.pushed = v->tick_pushed != 0;
	t.archive_bytes = v->st.archive_bytes;
	t.uploaded_bytes = v->tick_pushed ? v->rs.uploaded_bytes : 0;
	msg_strlcpy(t.sha256, v->st.sha256, sizeof(t.sha256));
	msg_strlcpy(t.error, error != NULL ? error : "", sizeof(t.error));
	ticklog_add(&t);
}

static void saved(struct vault_rt *v, int rc, int changed, const char *msg);

static void
tick_end(struct vault_rt *v, const char *outcome, int code, const char *error)
{
	const struct cfg_vault *cv = cfg_of(v);
	uint64_t ms = mono_ms() - v->tick_t0;
	char key[CFG_URL_MAX + UPL_KEY_MAX + 80], reply[sizeof(v->tick_save_msg) + sizeof(v->tick_push_msg) + 4];
	json_t *f = base(v, "tick_end"), *sync;

	key[0] = '\0';
	if (v->tick_pushed && cv != NULL)
		snprintf(key, sizeof(key), "%s/%s/%s", cv->remote, v->name, v->push_key);
	/* Every member always present (null when not known): scripts test values, not keys. */
	sync = json_object();
	json_object_set_new(sync, "saved", json_boolean(v->tick_saved));
	json_object_set_new(sync, "sha256", v->st.sha256[0] ? json_string(v->st.sha256) :
	    json_null());
	json_object_set_new(sync, "archive_bytes", json_integer((json_int_t)v->st.archive_bytes));
	json_object_set_new(sync, "pushed", json_boolean(v->tick_pushed));
	json_object_set_new(sync, "uploaded_bytes",
	    json_integer((json_int_t)(v->tick_pushed ? v->rs.uploaded_bytes : 0)));
	json_object_set_new(sync, "etag", v->tick_pushed && v->rs.etag[0] ?
	    json_string(v->rs.etag) : json_null());
	json_object_set_new(sync, "remote_key", key[0] ? json_string(key) : json_null());
	json_object_set_new(f, "duration_ms", json_integer((json_int_t)ms));
	json_object_set_new(f, "outcome", json_string(outcome));
	json_object_set_new(f, "error", error != NULL && error[0] ? json_string(error) :
	    json_null());
	json_object_set_new(f, "sync", sync);
	emit(strcmp(outcome, "ok") == 0 ? LL_INFO : strcmp(outcome, "conflict") == 0 ? LL_WARN :
	    LL_ERROR, f, "vault %s: tick %llu (%s) %s in %llu ms%s%s%s%s", v->name,
	    (unsigned long long)v->tick_index, trigger_names[v->tick_trigger], outcome,
	    (unsigned long long)ms, v->tick_saved ? ", saved" : ", unchanged",
	    v->tick_pushed ? ", pushed" : "", error != NULL && error[0] ? ": " : "",
	    error != NULL ? error : "");
	if (strcmp(outcome, "ok") != 0)
		D.oneshot_failed |= D.oneshot;
	record(v, strcmp(outcome, "ok") == 0 ? TICK_OK : strcmp(outcome, "conflict") == 0 ?
	    TICK_CONFLICT : TICK_ERROR, error, ms);
	snprintf(reply, sizeof(reply), "%s%s%s", v->tick_save_msg,
	    v->tick_save_msg[0] && v->tick_push_msg[0] ? "; " : "", v->tick_push_msg);
	v->tick_running = TICK_IDLE;
	reply_all(v, code, reply);
	arm_interval(v);
	/* A pending tick starts from ctlq_settle_all(), after the requests waiting their turn. */
}

static void
tick_start(struct vault_rt *v, int trigger)
{
	char err[256];

	v->tick_index++;
	v->tick_pending = 0;	/* whatever was pending, this tick sees it */
	v->tick_trigger = trigger;
	v->tick_t0 = mono_ms();
	v->tick_started_ms = wall_ms();
	v->tick_saved = v->tick_pushed = 0;
	v->tick_save_msg[0] = v->tick_push_msg[0] = '\0';
	if (v->state == VAULT_ST_LOCKED) {
		json_t *f = base(v, "tick_skip");

		json_object_set_new(f, "reason", json_string("locked"));
		emit(LL_INFO, f, "vault %s: tick %llu (%s) skipped: locked", v->name,
		    (unsigned long long)v->tick_index, trigger_names[trigger]);
		snprintf(err, sizeof(err), "vault %s is locked", v->name);
		record(v, TICK_SKIPPED, err, 0);
		reply_all(v, 1, err);
		arm_interval(v);
		return;
	}
	emit(LL_INFO, base(v, "tick_start"), "vault %s: tick %llu (%s)", v->name,
	    (unsigned long long)v->tick_index, trigger_names[trigger]);
	v->tick_running = TICK_SAVING;
	if (vault_save(v, saved, err, sizeof(err)) != 0) {
		msg_strlcpy(v->tick_save_msg, err, sizeof(v->tick_save_msg));
		tick_end(v, "error", 1, err);
	}
}

void
tick_request(struct vault_rt *v, int trigger, int client, uint32_t gen)
{
	if (D.shutting_down) {
		if (client >= 0)
			ctl_reply(client, gen, 1, "the daemon is shutting down");
		return;
	}
	if (client >= 0) {
		char what[CFG_NAME_MAX + 8];

		snprintf(what, sizeof(what), "vault %s", v->name);
		if (waiters_add(&v->tick_waiters, client, gen, v->tick_index, NULL, 0, what) != 0)
			return;
	}
	/* A tick, job or wholesale change (init, unlock, lock, pull) in progress: after it. */
	if (v->tick_running != TICK_IDLE || v->busy || v->ctl_hold) {
		if (!v->tick_pending)
			v->pending_trigger = trigger;
		v->tick_pending = 1;
		return;
	}
	tick_start(v, trigger);
}

static void pushed(struct vault_rt *v, int code, const char *msg);

/* The save of the running tick finished (ok: 0, else the error). */
static void
saved(struct vault_rt *v, int rc, int changed, const char *msg)
{
	const struct cfg_vault *cv = cfg_of(v);

	if (v->tick_running != TICK_SAVING)
		return;
	msg_strlcpy(v->tick_save_msg, msg, sizeof(v->tick_save_msg));
	if (rc != 0) {
		tick_end(v, "error", rc, msg);
		return;
	}
	v->tick_saved = changed;
	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE) {
		tick_end(v, "ok", 0, NULL);
		return;
	}
	v->tick_running = TICK_PUSHING;
	/* A control request waits for this tick: its push is tried now, backoff or not. */
	if (waiters_for(&v->tick_waiters, v->tick_index))
		remote_retry_now(v);
	remote_push_tick(v, pushed);
}

/* The push of the running tick came to an end: code 0 ok, else the message says why. */
static void
pushed(struct vault_rt *v, int code, const char *msg)
{
	if (v->tick_running != TICK_PUSHING)
		return;
	msg_strlcpy(v->tick_push_msg, msg, sizeof(v->tick_push_msg));
	if (v->rs.conflict)
		tick_end(v, "conflict", 1, msg);
	else
		tick_end(v, code == 0 ? "ok" : "error", code, code == 0 ? NULL : msg);
}

/* The vault is free and no control request waits: a tick that was held back runs now. */
void
tick_run_pending(struct vault_rt *v)
{
	if (v->tick_pending && v->tick_running == TICK_IDLE && !v->busy && !v->ctl_hold &&
	    !D.shutting_down)
		tick_start(v, v->pending_trigger);
}

int
tick_any_running(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		if (v->tick_running != TICK_IDLE)
			return 1;
	return 0;
}

/* Every vault's first tick (and a new vault's, after a reload). */
void
tick_startup(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		if (!v->tick_started) {
			v->tick_started = 1;
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
		v->tick_started = 1;
		if (v->state == VAULT_ST_LOCKED) {
			log_info("vault %s: locked, nothing to save", v->name);
			continue;
		}
		tick_request(v, TRIG_STARTUP, -1, 0);
	}
}
