/*
 * The status snapshot as JSON: one rendering of the SNAP_* records, shared
 * by vaultsyncctl status --json and statusd's /v1/status, so that the two
 * can never disagree on a name or a field.
 */
#include <time.h>

#include "statusjson.h"

const char *
sj_child_state_name(uint32_t s)
{
	static const char *n[] = { "starting", "running", "backoff", "stopped" };

	return s <= CHILD_ST_MAX ? n[s] : "?";
}

const char *
sj_vault_state_name(uint32_t s)
{
	static const char *n[] = { "locked", "unlocked", "dirty", "saving", "pushing",
	    "conflict", "error" };

	return s <= VAULT_ST_MAX ? n[s] : "?";
}

const char *
sj_verify_outcome_name(uint32_t s)
{
	static const char *n[] = { "none", "ok", "mismatch", "error", "skipped" };

	return s <= VERIFY_OUTCOME_MAX ? n[s] : "?";
}

const char *
sj_watch_mode_name(uint32_t s)
{
	static const char *n[] = { "none", "inotify", "polling" };

	return s <= WATCH_MAX ? n[s] : "?";
}

const char *
sj_cred_state_name(uint32_t s)
{
	static const char *n[] = { "unknown", "ok", "missing", "bad-file", "bad-syntax",
	    "expired", "rejected" };

	return s <= CRED_ST_MAX ? n[s] : "?";
}

const char *
sj_cred_source_name(uint32_t s)
{
	static const char *n[] = { "none", "file", "systemd-credential" };

	return s <= CRED_SRC_MAX ? n[s] : "?";
}

json_t *
sj_time(int64_t t)
{
	char buf[32];
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0)
		return json_null();
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

json_t *
sj_daemon(const struct msg_snap_daemon *d)
{
	return json_pack("{s:i, s:s, s:i, s:s, s:I, s:o, s:s, s:s, s:s*}",
	    "pid", d->pid, "version", d->version, "protocol", (int)d->proto,
	    "mode", d->mode == MODE_SYSTEM ? "system" : "user",
	    "uptime_s", (json_int_t)(d->uptime_ms / 1000),
	    "started_at", sj_time(d->started_at),
	    "device_id", d->device_id, "config_file", d->config_file,
	    "status_url", d->status_url[0] ? d->status_url : NULL);
}

json_t *
sj_child(const struct msg_snap_child *c)
{
	return json_pack(
	    "{s:s, s:i, s:s, s:i, s:i, s:i, s:s, s:o}",
	    "name", msg_role_name(c->role), "pid", c->pid,
	    "state", sj_child_state_name(c->state), "restarts", (int)c->restarts,
	    "violations", (int)c->violations, "last_exit", c->last_exit,
	    "last_reason", c->last_reason, "started_at", sj_time(c->started_at));
}

json_t *
sj_cred(const struct msg_cred_info *c)
{
	return json_pack(
	    "{s:s*, s:s, s:s, s:s, s:o, s:s*, s:s*, s:o}",
	    "vault", c->name[0] ? c->name : NULL, "path", c->path,
	    "source", sj_cred_source_name(c->source), "state",
	    sj_cred_state_name(c->state), "expiry", sj_time(c->expiry),
	    "key_hint", c->key_hint[0] ? c->key_hint : NULL,
	    "error", c->error[0] ? c->error : NULL,
	    "loaded_at", sj_time(c->loaded_at));
}

json_t *
sj_vault(const struct msg_snap_vault *v)
{
	json_t *jv = json_pack(
	    "{s:s, s:s, s:s*, s:s, s:{s:s, s:s*, s:i}, s:o, s:o, s:o, s:i, s:s*, s:s*}",
	    "name", v->name, "path", v->path,
	    "remote", v->remote[0] ? v->remote : NULL,
	    "state", sj_vault_state_name(v->state),
	    "watcher", "mode", sj_watch_mode_name(v->watch_mode),
	    "reason", v->watch_reason[0] ? v->watch_reason : NULL,
	    "watches", (int)v->nwatches,
	    "last_save_at", sj_time(v->last_save_at),
	    "last_push_at", sj_time(v->last_push_at),
	    "last_ok_push_at", sj_time(v->last_ok_push_at),
	    "consecutive_failures", (int)v->consecutive_failures,
	    "last_error", v->last_error[0] ? v->last_error : NULL,
	    "remote_etag", v->remote_etag[0] ? v->remote_etag : NULL);

	json_object_set_new(jv, "healthy", json_boolean(v->healthy));
	json_object_set_new(jv, "push_progress", v->push_total == 0 ? json_null() :
	    json_pack("{s:I, s:I}", "sent", (json_int_t)v->push_sent,
	    "total", (json_int_t)v->push_total));
	json_object_set_new(jv, "pushed", json_boolean(v->pushed));
	json_object_set_new(jv, "history_count", v->history_count < 0 ? json_null() :
	    json_integer(v->history_count));
	json_object_set_new(jv, "next_push_at", sj_time(v->next_push_at));
	json_object_set_new(jv, "uploaded_bytes", json_integer((json_int_t)v->uploaded_bytes));
	json_object_set_new(jv, "archive_bytes", json_integer((json_int_t)v->archive_bytes));
	json_object_set_new(jv, "content_id", v->content_id[0] ?
	    json_string(v->content_id) : json_null());
	/* The server ignored a conditional write: another device could be overwritten. */
	json_object_set_new(jv, "compare_and_swap", json_string(v->weak_cas ?
	    "head-check" : "conditional"));
	json_object_set_new(jv, "verify", v->verify_outcome == VERIFY_NONE ?
	    json_null() : json_pack("{s:s, s:o, s:s, s:i, s:i, s:i}",
	    "outcome", sj_verify_outcome_name(v->verify_outcome),
	    "at", sj_time(v->verify_at), "message", v->verify_msg,
	    "runs", (int)v->verify_runs, "mismatches", (int)v->verify_mismatches,
	    "errors", (int)v->verify_errors));
	return jv;
}
