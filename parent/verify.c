/*
 * The restore drill of a vault:
 *
 *   wait until no save or push of the vault runs (what we compare must not
 *   move under us) → open the local archive → GET vault.tar.age into an
 *   unnamed file in the state dir → compare → LIST history/ → GET the
 *   newest copy → compare what can be compared → status, log, reply.
 *
 * The latest is compared byte for byte with the local archive when the
 * remote state says the remote holds it (it does not lag); otherwise only
 * its structure is checked, and the message says so.  A history copy is
 * compared byte for byte when it is provably a copy of the local archive:
 * its name carries the archive's content id, it was stamped after the
 * archive was saved and no later than our last history write; any other
 * copy is checked for structure only.  Structure is the keyless age scan of
 * common/agescan.c, run in a decoder child on a worker thread with the byte
 * compare (vjudge.c): the parent never parses what came from the remote.
 *
 * Only GET and LIST go to the uploader, and the local archive is opened
 * read-only: a mismatch is reported, never repaired.  The drill ends with
 * one "verify" record in the DESIGN §8 envelope, and its outcome stays in
 * the vault's status until the next drill; a mismatch makes the vault
 * unhealthy.  After every drill the VerifyInterval timer starts again, so
 * drills never overlap.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vaultsyncd.h"
#include "vdrill.h"

#define WAIT_MS		250		/* a busy vault is looked at again this often */

/* Each vault's drills: the last one's outcome, the one waiting or in flight. */
struct verify_state {
	uint32_t gen;			/* vreg_state's */
	struct vtimer timer;		/* the next drill, or a busy vault's next look */
	int64_t at;			/* the last drill ended, unix seconds; 0 = none yet */
	uint32_t outcome;		/* enum verify_outcome (msg.h) */
	uint32_t runs, mismatches, errors;
	char msg[256];
	struct verify_drill *drill;	/* the one waiting or in flight, NULL = none */
};
static struct verify_state vstates[CFG_MAX_VAULTS];
#define VF(v)	VREG_STATE(vstates, v)
#define WAIT_MAX_MS	(60 * 1000)	/* then the drill gives up, as an error */

static const char *const outcome_names[] = {
	[VERIFY_NONE] = "none", [VERIFY_OK] = "ok", [VERIFY_MISMATCH] = "mismatch",
	[VERIFY_ERROR] = "error", [VERIFY_SKIPPED] = "skipped",
};

static void try_start(struct vault_rt *v);
static void timer_fired(struct vault_rt *v);

const struct cfg_vault *
drill_cfg(const struct vault_rt *v)
{
	return cfg_vault_find(&D.cfg, v->name);
}

void
part_set(struct part *p, uint32_t outcome, const char *fmt, ...)
{
	va_list ap;

	p->outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
}

static void
drill_free(struct verify_drill *d)
{
	if (d->local_fd >= 0)
		close(d->local_fd);
	if (d->tmp_fd >= 0)
		close(d->tmp_fd);
	free(d);
}

/* The next drill, VerifyInterval after this one ended. */
static void
arm(struct vault_rt *v)
{
	const struct cfg_vault *cv = drill_cfg(v);

	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE || cv->verify_interval_ms == 0 ||
	    D.shutting_down || D.oneshot) {
		vtimer_clear(&VF(v)->timer);
		return;
	}
	vtimer_set(v, &VF(v)->timer, cv->verify_interval_ms, timer_fired);
}

static json_t *
part_json(const struct part *p)
{
	if (p->outcome == VERIFY_NONE)
		return json_null();	/* the drill ended before it got here */
	return json_pack("{s:s*, s:s, s:b, s:I}", "key", p->key[0] ? p->key : NULL, "outcome",
	    outcome_names[p->outcome], "compared", p->compared, "bytes", (json_int_t)p->bytes);
}

/* One record in the DESIGN §8 envelope; text and pretty print the message. */
static void
emit(const struct verify_drill *d, uint32_t outcome, const char *msg)
{
	enum log_level level = outcome == VERIFY_MISMATCH ? LL_ERROR :
	    outcome == VERIFY_ERROR ? LL_WARN : LL_INFO;
	json_t *f;
	char *s;

	if (level > log_get_level())
		return;
	f = json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:o}", "schema_version", 1, "event",
	    "verify", "vault", d->vault, "trigger", d->trigger, "outcome", outcome_names[outcome],
	    "latest", part_json(&d->latest), "history", part_json(&d->history));
	if (f == NULL || (s = json_dumps(f, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		json_decref(f);
		logit(level, "%s", msg);
		return;
	}
	json_decref(f);
	s[strlen(s) - 1] = '\0';	/* members only: the envelope comes first */
	log_emit_fields(level, "parent", (int)getpid(), msg, s + 1);
	free(s);
}

/* The drill is over: status, record, answers, the next one. */
void
drill_finish(struct vault_rt *v, struct verify_drill *d)
{
	const struct part *l = &d->latest, *h = &d->history;
	char msg[1024];
	uint32_t o;
	int code;

	if (l->outcome == VERIFY_MISMATCH || h->outcome == VERIFY_MISMATCH)
		o = VERIFY_MISMATCH;
	else if (l->outcome == VERIFY_ERROR || h->outcome == VERIFY_ERROR)
		o = VERIFY_ERROR;
	else if (l->outcome == VERIFY_OK && l->compared)
		o = VERIFY_OK;
	else
		o = VERIFY_SKIPPED;
	snprintf(msg, sizeof(msg), "vault %s: verify %s: %.384s%s%.384s", d->vault,
	    o == VERIFY_OK ? "ok" : o == VERIFY_MISMATCH ? "MISMATCH, the remote does not hold "
	    "what was encrypted here (nothing was overwritten)" : outcome_names[o], l->msg,
	    h->msg[0] ? "; " : "", h->msg);
	emit(d, o, msg);
	code = o == VERIFY_OK ? 0 : 1;
	waiters_answer(&d->waiters, UINT64_MAX, code, msg);
	if (v != NULL) {
		struct verify_state *s = VF(v);

		s->drill = NULL;
		s->at = (int64_t)time(NULL);
		s->outcome = o;
		s->runs++;
		s->mismatches += o == VERIFY_MISMATCH;
		s->errors += o == VERIFY_ERROR;
		msg_strlcpy(s->msg, msg + strlen("vault ") + strlen(d->vault) + 2, sizeof(s->msg));
		arm(v);
	}
	drill_free(d);
}

/* The drill's vault, or NULL after a reload removed it (the drill is then finished). */
struct vault_rt *
drill_vault(struct verify_drill *d)
{
	struct vault_rt *v = vreg_find(d->vault);

	if (v == NULL || VF(v)->drill != d) {
		part_set(&d->latest, VERIFY_ERROR, "the vault was removed from the configuration");
		d->history.msg[0] = '\0';
		drill_finish(NULL, d);
		return NULL;
	}
	return v;
}

/* Not while a save or a push moves what we compare; not without the uploader. */
static void
try_start(struct vault_rt *v)
{
	struct verify_drill *d = VF(v)->drill;
	int busy = v->busy || remote_busy(v);

	if (!busy && upl_available() && !children_creds_changed()) {
		drill_fetch(v, d);
		return;
	}
	if (mono_ms() - d->since >= WAIT_MAX_MS) {
		msg_strlcpy(d->latest.key, "vault.tar.age", sizeof(d->latest.key));
		part_set(&d->latest, VERIFY_ERROR, busy ? "the vault stayed busy (saving or "
		    "pushing) for a minute; try again" : "the uploader is not running");
		drill_finish(v, d);
		return;
	}
	vtimer_set(v, &VF(v)->timer, WAIT_MS, timer_fired);
}

static struct verify_drill *
drill_new(struct vault_rt *v, const char *trigger)
{
	struct verify_drill *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		fatal("calloc");
	msg_strlcpy(d->vault, v->name, sizeof(d->vault));
	d->trigger = trigger;
	d->since = mono_ms();
	d->local_fd = d->tmp_fd = -1;
	VF(v)->drill = d;
	return d;
}

static void
timer_fired(struct vault_rt *v)
{
	if (VF(v)->drill == NULL)
		(void)drill_new(v, "interval");
	else if (VF(v)->drill->local_fd >= 0 || VF(v)->drill->tmp_fd >= 0)
		return;		/* started: its callbacks carry it on */
	try_start(v);
}

int
verify_request(struct vault_rt *v, int client, uint32_t gen, char *err, size_t errlen)
{
	const struct cfg_vault *cv = drill_cfg(v);
	struct verify_drill *d = VF(v)->drill;

	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE) {
		snprintf(err, errlen, "vault %s has no Remote: nothing to verify", v->name);
		return -1;
	}
	if (d == NULL) {
		d = drill_new(v, "ctl");
		(void)waiters_add(&d->waiters, client, gen, 0, NULL, 0, "");
		try_start(v);
		return 0;
	}
	/* One drill at a time: a second asker gets the answer of the one in flight. */
	if (d->waiters.n == WAITERS_MAX) {
		snprintf(err, errlen, "vault %s: too many requests waiting for a verify", v->name);
		return -1;
	}
	(void)waiters_add(&d->waiters, client, gen, 0, NULL, 0, "");
	return 0;
}

void
verify_start(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		if (VF(v)->drill == NULL)
			arm(v);
}

int
verify_healthy(const struct vault_rt *v)
{
	return VF(v)->outcome != VERIFY_MISMATCH;
}

void
verify_status(const struct vault_rt *v, struct msg_snap_vault *sv)
{
	const struct verify_state *s = VF(v);

	sv->verify_at = s->at;
	sv->verify_outcome = s->outcome;
	sv->verify_runs = s->runs;
	sv->verify_mismatches = s->mismatches;
	sv->verify_errors = s->errors;
	msg_strlcpy(sv->verify_msg, s->msg, sizeof(sv->verify_msg));
	/* Where a status reader looks first (and statusd's health reasons). */
	if (s->outcome == VERIFY_MISMATCH && sv->last_error[0] == '\0')
		snprintf(sv->last_error, sizeof(sv->last_error), "verify: %.240s", s->msg);
}
