/*
 * The push side of a vault: after a save, and whenever the remote lags the
 * local archive, a sequence of uploader requests runs for the vault:
 *
 *   abort a multipart upload a killed uploader left → identity.age (once)
 *   → vault.tar.age under If-Match (If-None-Match the first time)
 *     → on 412, or an outcome the uploader cannot vouch for: a HEAD compares
 *       the content id; ours is adopted, another device's 412 puts our
 *       archive under conflicts/ and marks the vault conflict
 *   → a history copy when HistoryInterval or vaultsyncctl push asks
 *   → list history/ and prune to HistoryKeep (prune.c)
 *
 * One sequence per vault at a time; what the remote holds is persisted in
 * StateDir/VAULT/remote, so a restart resumes where it stopped.  Failures
 * retry after a backoff (pushretry.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "remote_int.h"
#include "secbuf.h"
#include "vault_ops.h"
#include "vaultsyncd.h"

#define IDENTITY_GET_MAX	(64 * 1024)

/* The push came to an end for those waiting: the clients, then the tick's callback. */
static void
reply_waiters(struct vault_rt *v, int code, const char *msg)
{
	struct push_state *p = push_of(v);
	push_done_fn done = p->push_tick_done;
	struct push_report r = {
		.code = code, .uploaded = p->tick_uploaded, .conflict = p->rs.conflict,
		.bytes = p->rs.uploaded_bytes, .etag = p->rs.etag, .key = p->push_key,
		.msg = msg,
	};

	waiters_answer(&p->push_waiters, UINT64_MAX, code, msg);
	p->push_tick_done = NULL;
	if (done != NULL)
		done(v, &r);
}

static void
add_waiter(struct vault_rt *v, int client, uint32_t gen, const char *prefix, int fail)
{
	char what[CFG_NAME_MAX + 32];

	if (client < 0)
		return;
	snprintf(what, sizeof(what), "vault %s: a push", v->name);
	(void)waiters_add(&push_of(v)->push_waiters, client, gen, 0, prefix, fail, what);
}

static int push_start(struct vault_rt *v);

static void
retry_fired(struct vault_rt *v)
{
	push_of(v)->next_push_at = 0;
	(void)push_start(v);
}

static void
push_end(struct vault_rt *v, int ok)
{
	struct push_state *ps = push_of(v);
	int again;

	ps->push_busy = 0;
	ps->push_step = PS_IDLE;
	if (ok) {
		if (ps->push_failures > 0 || ps->logged_error[0] != '\0')
			log_info("vault %s: pushed after %u failed attempt(s)", v->name,
			    ps->push_failures);
		ps->push_failures = 0;
		ps->push_error[0] = '\0';
		ps->logged_error[0] = '\0';
		ps->suppressed = 0;
	}
	again = ok && (remote_lags(v) || ps->want_history || ps->want_force);
	if (again && !D.shutting_down) {
		(void)push_start(v);
		return;
	}
	if (ok) {
		char msg[512];

		snprintf(msg, sizeof(msg), "pushed %s (ETag %s, %llu bytes uploaded)",
		    ps->rs.conflict ? "to conflicts/" : "vault.tar.age", ps->rs.etag,
		    (unsigned long long)ps->rs.uploaded_bytes);
		reply_waiters(v, ps->rs.conflict ? 1 : 0, ps->rs.conflict ?
		    "conflict: another device wrote the remote latest; ours is under "
		    "conflicts/ (vaultsyncctl pull or push --force)" : msg);
		/* Once, after the push and apart from it: how many history copies there are. */
		if (!ps->history_known)
			remote_history_count(v);
	}
}

/* A failed step: count, tell, retry later.  Conflicts are not failures: they wait for a human. */
static void
push_failed(struct vault_rt *v, const char *what, const struct msg_upl_result *r)
{
	struct push_state *ps = push_of(v);
	char msg[512];

	snprintf(msg, sizeof(msg), "push: %s: %s", what, r->error[0] ? r->error : "failed");
	msg_strlcpy(ps->push_error, msg, sizeof(ps->push_error));
	ps->push_failures++;
	push_log_error(v, msg);
	reply_waiters(v, 1, msg);
	ps->push_busy = 0;
	ps->push_step = PS_IDLE;
	D.oneshot_failed |= D.oneshot;
	if (!D.shutting_down && !D.oneshot)
		push_retry_schedule(v, retry_fired);
}

static void step_done(const char *vault, const struct msg_upl_result *r, void *arg);
static void on_mpu(const char *vault, const struct msg_upl_mpu *m, void *arg);

static void on_progress(const char *vault, uint64_t sent, uint64_t total, void *arg);
static const struct upl_cbs step_cbs = { step_done, NULL, on_mpu, NULL, on_progress };

static void
utc_stamp(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y%m%dT%H%M%SZ", &tm);
}

/* Send one PUT of a local file; on a local failure the step fails at once. */
static void
put_file(struct vault_rt *v, enum push_step step, const char *file, const char *key,
    uint32_t cond, const char *etag)
{
	struct push_state *ps = push_of(v);
	struct msg_upl_result r;
	uint64_t size;
	int fd;

	ps->push_step = step;
	if ((fd = remote_open_file(v, file, &size)) == -1) {
		memset(&r, 0, sizeof(r));
		snprintf(r.error, sizeof(r.error), "open %s: %s", file, strerror(errno));
		push_failed(v, key, &r);
		return;
	}
	if (step == PS_LATEST || step == PS_CONFLICT_COPY || step == PS_HISTORY)
		ps->push_bytes = size;
	msg_strlcpy(ps->push_key, key, sizeof(ps->push_key));
	ps->push_sent = 0;
	ps->push_total = size;
	if (step == PS_LATEST)
		remote_doubt_add(v);
	if (upl_put(v->name, key, fd, size, cond, etag, ps->push_cid, &step_cbs) != 0) {
		memset(&r, 0, sizeof(r));
		snprintf(r.error, sizeof(r.error), "the uploader is not available (%s)",
		    strerror(errno));
		close(fd);
		push_failed(v, key, &r);
		return;
	}
	close(fd);	/* the uploader has its own copy now */
}

/* For status: how far the PUT in flight has got. */
static void
on_progress(const char *vault, uint64_t sent, uint64_t total, void *arg)
{
	struct vault_rt *v = vreg_find(vault);

	(void)arg;
	if (v != NULL && push_of(v)->push_busy && total == push_of(v)->push_total)
		push_of(v)->push_sent = sent;
}

static void do_history(struct vault_rt *v);

static void
do_latest(struct vault_rt *v)
{
	struct push_state *ps = push_of(v);
	uint32_t cond = ps->force ? UPL_COND_NONE : ps->rs.etag[0] == '\0' ?
	    UPL_COND_IF_NONE_MATCH : UPL_COND_IF_MATCH;

	/* A sequence run for a history copy alone sends the archive once, not twice. */
	if (!remote_lags(v) && !ps->force) {
		do_history(v);
		return;
	}
	put_file(v, PS_LATEST, "vault.tar.age", "vault.tar.age", cond, ps->rs.etag);
}

static void
do_identity(struct vault_rt *v)
{
	if (push_of(v)->rs.identity_pushed) {
		do_latest(v);
		return;
	}
	/* Never over another device's identity: vaults shared between devices share it. */
	put_file(v, PS_IDENTITY, "identity.age", "identity.age", UPL_COND_IF_NONE_MATCH, NULL);
}

static void
do_history(struct vault_rt *v)
{
	struct push_state *ps = push_of(v);
	const struct cfg_vault *cv = remote_cfg(v);
	char key[UPL_KEY_MAX], stamp[32];
	int64_t now = (int64_t)time(NULL);
	int due = cv != NULL && cv->history_interval_ms > 0 &&
	    now - ps->rs.history_at >= (int64_t)(cv->history_interval_ms / 1000);

	if (!ps->want_history && !due) {
		push_end(v, 1);
		return;
	}
	ps->want_history = 0;
	utc_stamp(stamp, sizeof(stamp));
	snprintf(key, sizeof(key), "history/%s-%.16s.tar.age", stamp, ps->push_cid[0] ?
	    ps->push_cid : "0000000000000000");
	put_file(v, PS_HISTORY, "vault.tar.age", key, UPL_COND_NONE, NULL);
}

/* ---- the sequence ---- */

static void
on_mpu(const char *vault, const struct msg_upl_mpu *m, void *arg)
{
	struct vault_rt *v = vreg_find(vault);

	(void)arg;
	if (v == NULL)
		return;
	/* Kept until the upload ends: if the uploader dies first, the next push aborts it. */
	msg_strlcpy(push_of(v)->rs.mpu_key, m->key, sizeof(push_of(v)->rs.mpu_key));
	msg_strlcpy(push_of(v)->rs.mpu_id, m->upload_id, sizeof(push_of(v)->rs.mpu_id));
	remote_save_state(v);
}

static void
conflict_copy(struct vault_rt *v)
{
	char key[UPL_KEY_MAX], stamp[32];

	utc_stamp(stamp, sizeof(stamp));
	snprintf(key, sizeof(key), "conflicts/%s-%s.tar.age", D.cfg.device_id, stamp);
	if (msg_valid_key(key) != 0)
		snprintf(key, sizeof(key), "conflicts/device-%s.tar.age", stamp);
	put_file(v, PS_CONFLICT_COPY, "vault.tar.age", key, UPL_COND_NONE, NULL);
}

/* The end of pruning, the sequence's last step: done, or what failed. */
static void
pruned(struct vault_rt *v, const char *what, const struct msg_upl_result *r)
{
	if (what == NULL)
		push_end(v, 1);
	else
		push_failed(v, what, r);
}

static void step_result(struct vault_rt *v, const struct msg_upl_result *r, int settled);

/* A settled outcome: the step goes on, or the newer archive goes up under the adopted ETag. */
static void
on_settled(struct vault_rt *v, const struct msg_upl_result *r, int resend)
{
	if (resend)
		do_latest(v);
	else
		step_result(v, r, 1);
}

static void
step_done(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct vault_rt *v = vreg_find(vault);

	(void)arg;
	if (v == NULL)
		return;
	push_of(v)->push_sent = push_of(v)->push_total = 0;	/* no PUT in flight now */
	step_result(v, r, 0);
}

static void
step_result(struct vault_rt *v, const struct msg_upl_result *r, int settled)
{
	struct push_state *ps = push_of(v);
	int64_t now = (int64_t)time(NULL);

	if (ps->rs.mpu_id[0] != '\0' && (ps->push_step == PS_LATEST || ps->push_step ==
	    PS_CONFLICT_COPY || ps->push_step == PS_HISTORY) && r->outcome != UPL_RETRY &&
	    !(r->flags & UPL_F_LOST)) {
		/* The uploader finished or aborted it itself. */
		ps->rs.mpu_key[0] = ps->rs.mpu_id[0] = '\0';
	}
	if (!settled && (r->outcome == UPL_UNKNOWN ||
	    (ps->push_step == PS_LATEST && (r->outcome == UPL_CONFLICT ||
	    (r->outcome == UPL_NOT_FOUND && ps->rs.etag[0] != '\0')))) &&
	    (ps->push_step == PS_LATEST || ps->push_step == PS_CONFLICT_COPY ||
	    ps->push_step == PS_HISTORY)) {
		settle_start(v, r, on_settled);
		return;
	}
	switch (ps->push_step) {
	case PS_ABORT:
		if (r->outcome != UPL_OK && r->outcome != UPL_NOT_FOUND) {
			push_failed(v, "abort an unfinished upload", r);
			return;
		}
		log_info("vault %s: aborted the unfinished upload of %s", v->name, ps->rs.mpu_key);
		ps->rs.mpu_key[0] = ps->rs.mpu_id[0] = '\0';
		remote_save_state(v);
		do_identity(v);
		return;
	case PS_IDENTITY:
		if (r->outcome == UPL_CONFLICT)
			log_warn("vault %s: the remote already holds an identity.age; kept it",
			    v->name);
		else if (r->outcome != UPL_OK) {
			push_failed(v, "identity.age", r);
			return;
		}
		ps->rs.identity_pushed = 1;
		remote_save_state(v);
		do_latest(v);
		return;
	case PS_LATEST:
		ps->rs.last_push_at = now;
		if (r->outcome == UPL_CONFLICT ||
		    (r->outcome == UPL_NOT_FOUND && ps->rs.etag[0] != '\0')) {
			/* 412, or (AWS) 404 for If-Match on a key that is gone: written elsewhere. */
			log_error("vault %s: the remote latest was written by another device (%s); "
			    "saving ours under conflicts/ and overwriting nothing until "
			    "vaultsyncctl pull or push --force", v->name, r->error);
			ps->rs.conflict = 1;
			remote_save_state(v);
			conflict_copy(v);
			return;
		}
		if (r->outcome != UPL_OK) {
			/*
			 * Refused (a 412 too, even with its headers cut off), or never
			 * sent whole: this attempt is not on the remote, and its doubt
			 * goes.  An earlier attempt of the same archive may be (a kill
			 * mid-PUT, then a 503 or a 412 for the retry): then the content
			 * id was in doubt before and stays so.
			 */
			if (r->outcome != UPL_UNKNOWN && !ps->push_cid_doubted)
				remote_doubt_drop(v, ps->push_cid);
			remote_save_state(v);
			push_failed(v, "vault.tar.age", r);
			return;
		}
		msg_strlcpy(ps->rs.etag, r->etag, sizeof(ps->rs.etag));
		msg_strlcpy(ps->rs.pushed_sha256, ps->push_sha, sizeof(ps->rs.pushed_sha256));
		/* Known again: what the remote may hold of ours is this write alone. */
		memset(ps->rs.doubt, 0, sizeof(ps->rs.doubt));
		msg_strlcpy(ps->rs.ours, ps->push_cid, sizeof(ps->rs.ours));
		ps->rs.conflict = 0;
		ps->rs.weak_cas = (r->flags & UPL_F_WEAK_CAS) != 0;
		ps->rs.last_ok_push_at = now;
		ps->rs.uploaded_bytes = r->bytes;
		ps->force = 0;
		ps->tick_uploaded = 1;
		remote_save_state(v);
		log_info("vault %s: pushed vault.tar.age (%llu bytes%s, ETag %s)", v->name,
		    (unsigned long long)r->bytes, r->flags & UPL_F_MULTIPART ? ", multipart" : "",
		    r->etag);
		do_history(v);
		return;
	case PS_CONFLICT_COPY:
		if (r->outcome != UPL_OK) {
			push_failed(v, "conflicts/ copy", r);
			return;
		}
		/* The conflict copy holds this archive: nothing more to push until resolved. */
		ps->rs.uploaded_bytes = r->bytes;
		ps->tick_uploaded = 1;
		msg_strlcpy(ps->rs.pushed_sha256, ps->push_sha, sizeof(ps->rs.pushed_sha256));
		remote_save_state(v);
		push_end(v, 1);
		return;
	case PS_HISTORY:
		if (r->outcome != UPL_OK) {
			push_failed(v, "history copy", r);
			return;
		}
		ps->rs.history_at = now;
		remote_save_state(v);
		log_info("vault %s: history copy written", v->name);
		ps->push_step = PS_LIST;
		prune_start(v, pruned);
		return;
	default:
		log_warn("vault %s: an uploader result in no push step", v->name);
		return;
	}
}

/*
 * Start a sequence if there is something to push.  Returns 1 if one runs,
 * 0 if not; waiters are answered unless a save in progress will kick again.
 */
static int
push_start(struct vault_rt *v)
{
	struct push_state *ps = push_of(v);
	const struct cfg_vault *cv = remote_cfg(v);
	char dir[STORE_PATH_MAX];

	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE || ps->push_busy)
		return ps->push_busy;
	if (vtimer_pending(&ps->push_retry)) {
		reply_waiters(v, 1, ps->push_error[0] ? ps->push_error :
		    "push failed; a retry is scheduled");
		return 0;
	}
	if (v->busy && (v->busy_op == VOP_SAVE || v->busy_op == VOP_LOCK))
		return 0;	/* the save's completion kicks us again */
	remote_load(v);
	remote_state_dir(v, dir, sizeof(dir));
	if (!store_exists(dir, "vault.tar.age") || !store_exists(dir, "identity.age")) {
		reply_waiters(v, 0, "nothing saved yet, nothing to push");
		return 0;
	}
	if (ps->want_force) {
		ps->force = 1;
		ps->want_force = 0;
	}
	if (ps->rs.conflict && !ps->force) {
		reply_waiters(v, 1, "conflict: not pushed; resolve with vaultsyncctl pull or "
		    "push --force");
		return 0;
	}
	if (!remote_lags(v) && !ps->want_history && !ps->force) {
		reply_waiters(v, 0, "the remote is up to date");
		return 0;
	}
	if (!upl_available() || children_creds_changed()) {
		/* The uploader's HELLO kicks every vault again. */
		reply_waiters(v, 1, "push: the uploader is not running; it will be retried");
		return 0;
	}
	ps->push_busy = 1;
	msg_strlcpy(ps->push_sha, v->st.sha256, sizeof(ps->push_sha));
	snprintf(ps->push_cid, sizeof(ps->push_cid), "%.16s", v->st.content_id);
	if (ps->rs.mpu_id[0] != '\0') {
		static const struct upl_cbs c = { step_done, NULL, NULL, NULL, NULL };

		ps->push_step = PS_ABORT;
		if (upl_op(v->name, UPL_ABORT, ps->rs.mpu_key, ps->rs.mpu_id, &c) == 0)
			return 1;
		ps->rs.mpu_key[0] = ps->rs.mpu_id[0] = '\0';
	}
	do_identity(v);
	return 1;
}

static void
kick(struct vault_rt *v, int client, uint32_t gen, const char *prefix, int fail)
{
	const struct cfg_vault *cv = remote_cfg(v);

	remote_load(v);
	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE) {
		if (client >= 0)
			ctl_reply(client, gen, 0, "%s", prefix != NULL ? prefix : "");
		return;
	}
	add_waiter(v, client, gen, prefix, fail);
	(void)push_start(v);	/* if busy, push_end looks again */
}

void
remote_push_tick(struct vault_rt *v, push_done_fn done)
{
	const struct cfg_vault *cv = remote_cfg(v);

	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE) {
		struct push_report r = { .msg = "" };

		done(v, &r);
		return;
	}
	push_of(v)->push_tick_done = done;
	push_of(v)->tick_uploaded = 0;
	kick(v, -1, 0, NULL, 0);
}

void
remote_kick(struct vault_rt *v, int client, uint32_t gen, const char *prefix)
{
	kick(v, client, gen, prefix, 0);
}

int
remote_any_busy(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		if (push_of(v)->push_busy)
			return 1;
	return 0;
}

int
remote_push_request(struct vault_rt *v, int client, uint32_t gen, int force, char *err,
    size_t errlen)
{
	const struct cfg_vault *cv = remote_cfg(v);

	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE) {
		snprintf(err, errlen, "vault %s has no Remote", v->name);
		return -1;
	}
	push_of(v)->want_history = 1;
	if (force)
		push_of(v)->want_force = 1;
	remote_retry_now(v);
	if (v->save_error[0] != '\0' && v->state != VAULT_ST_LOCKED) {
		char note[256];

		/* What goes up is the previous archive: say so, and do not call it success. */
		snprintf(note, sizeof(note), "the newest changes are NOT in this push: the last "
		    "save failed (%.150s)", v->save_error);
		kick(v, client, gen, note, 1);
		return 0;
	}
	remote_kick(v, client, gen, "");
	return 0;
}

/* A fresh uploader: every vault whose remote lags gets its push. */
void
remote_uploader_ready(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		remote_kick(v, -1, 0, NULL);
}

/* After a pull was installed: the remote holds what we hold (or we mean to replace it). */
void
remote_pulled(struct vault_rt *v, const struct vault_job *vj)
{
	struct push_state *ps = push_of(v);

	remote_load(v);
	msg_strlcpy(ps->rs.etag, vj->pull_etag, sizeof(ps->rs.etag));
	if (vj->pull_latest)
		msg_strlcpy(ps->rs.pushed_sha256, vj->st.sha256, sizeof(ps->rs.pushed_sha256));
	else
		ps->rs.pushed_sha256[0] = '\0';	/* the restored version goes up as the latest */
	ps->rs.conflict = 0;
	ps->push_failures = 0;
	ps->push_error[0] = '\0';
	remote_save_state(v);
	remote_kick(v, -1, 0, NULL);
}
