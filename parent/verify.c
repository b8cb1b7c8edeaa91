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
 * common/agescan.c.
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

#include "age.h"
#include "agescan.h"
#include "log.h"
#include "vaultsyncd.h"

#define WAIT_MS		250		/* a busy vault is looked at again this often */
#define WAIT_MAX_MS	(60 * 1000)	/* then the drill gives up, as an error */

static const char *const outcome_names[] = {
	[VERIFY_NONE] = "none", [VERIFY_OK] = "ok", [VERIFY_MISMATCH] = "mismatch",
	[VERIFY_ERROR] = "error", [VERIFY_SKIPPED] = "skipped",
};

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
	struct part latest, history;
};

static void try_start(struct vault_rt *v);
static void timer_fired(struct vault_rt *v);

static const struct cfg_vault *
cfg_of(const struct vault_rt *v)
{
	return cfg_vault_find(&D.cfg, v->name);
}

static void
part_set(struct part *p, uint32_t outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
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
	const struct cfg_vault *cv = cfg_of(v);

	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE || cv->verify_interval_ms == 0 ||
	    D.shutting_down || D.oneshot) {
		vtimer_clear(&v->verify_timer);
		return;
	}
	vtimer_set(v, &v->verify_timer, cv->verify_interval_ms, timer_fired);
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
static void
finish(struct vault_rt *v, struct verify_drill *d)
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
		v->vfy.drill = NULL;
		v->vfy.at = (int64_t)time(NULL);
		v->vfy.outcome = o;
		v->vfy.runs++;
		v->vfy.mismatches += o == VERIFY_MISMATCH;
		v->vfy.errors += o == VERIFY_ERROR;
		msg_strlcpy(v->vfy.msg, msg + strlen("vault ") + strlen(d->vault) + 2,
		    sizeof(v->vfy.msg));
		arm(v);
	}
	drill_free(d);
}

/* The drill's vault, or NULL after a reload removed it (the drill is then finished). */
static struct vault_rt *
drill_vault(struct verify_drill *d)
{
	struct vault_rt *v = vreg_find(d->vault);

	if (v == NULL || v->vfy.drill != d) {
		part_set(&d->latest, VERIFY_ERROR, "the vault was removed from the configuration");
		d->history.msg[0] = '\0';
		finish(NULL, d);
		return NULL;
	}
	return v;
}

/* An unnamed file in the state dir for a download: nothing is left behind by a crash. */
static int
tmp_open(const char *dir)
{
	char p[STORE_PATH_MAX];
	int fd;

	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0 || errno != EOPNOTSUPP)
		return fd;
	if ((size_t)snprintf(p, sizeof(p), "%s/.verify.XXXXXX", dir) >= sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(p, O_CLOEXEC)) >= 0)
		(void)unlink(p);
	return fd;
}

/*
 * Judge a downloaded object: the structural scan always, the byte compare
 * with the local archive when the remote should hold exactly it.
 */
static void
judge(struct verify_drill *d, struct part *p, int compare, const char *why_not)
{
	static unsigned char head[AGE_HEADER_MAX];
	struct agescan sc;
	struct stat st;
	char bad[160], sbuf[240];
	uint64_t at;
	ssize_t n;
	int r;

	if (fstat(d->tmp_fd, &st) != 0) {
		part_set(p, VERIFY_ERROR, "%s: fstat of the download: %s", p->key, strerror(errno));
		return;
	}
	p->bytes = (uint64_t)st.st_size;
	n = pread(d->tmp_fd, head, p->bytes < sizeof(head) ? (size_t)p->bytes : sizeof(head), 0);
	if (n < 0) {
		part_set(p, VERIFY_ERROR, "%s: read the download: %s", p->key, strerror(errno));
		return;
	}
	/* The scan in the parent is bounded and fixed-rule; it moves to the decoder child. */
	r = agescan(head, (size_t)n, p->bytes, &sc, bad, sizeof(bad));
	if (r == 0)
		snprintf(sbuf, sizeof(sbuf), "a well-formed age file, %u recipient stanza(s), "
		    "%llu chunk(s)", sc.nstanzas, (unsigned long long)sc.chunks);
	else
		snprintf(sbuf, sizeof(sbuf), "not a well-formed age file: %s", bad);
	if (!compare) {
		/* Nothing we write is malformed: a broken object is an alarm even so. */
		part_set(p, r == 0 ? VERIFY_OK : VERIFY_MISMATCH, "%s: %s (%llu bytes); not "
		    "compared byte for byte: %s", p->key, sbuf, (unsigned long long)p->bytes,
		    why_not);
		return;
	}
	p->compared = 1;
	if (p->bytes != d->local_size) {
		part_set(p, VERIFY_MISMATCH, "%s: %llu bytes on the remote, %llu in the local "
		    "archive; %s", p->key, (unsigned long long)p->bytes,
		    (unsigned long long)d->local_size, sbuf);
		return;
	}
	switch (store_same_bytes(d->tmp_fd, d->local_fd, p->bytes, &at)) {
	case 0:
		part_set(p, r == 0 ? VERIFY_OK : VERIFY_MISMATCH, "%s matches the local archive "
		    "byte for byte (%llu bytes; %s)", p->key, (unsigned long long)p->bytes, sbuf);
		break;
	case 1:
		part_set(p, VERIFY_MISMATCH, "%s differs from the local archive at byte %llu of "
		    "%llu (same size); %s", p->key, (unsigned long long)at,
		    (unsigned long long)p->bytes, sbuf);
		break;
	default:
		p->compared = 0;
		part_set(p, VERIFY_ERROR, "%s: reading for the comparison failed", p->key);
		break;
	}
}

/* history/YYYYmmddTHHMMSSZ-HASH16.tar.age, as remote.c writes them: its time and hash. */
static int
history_key(const char *k, int64_t *stamp, char hash[17])
{
	struct tm tm;
	size_t i;

	if (strlen(k) != 8 + 16 + 1 + 16 + 8 || strncmp(k, "history/", 8) != 0 ||
	    k[16] != 'T' || k[23] != 'Z' || k[24] != '-' || strcmp(k + 41, ".tar.age") != 0)
		return -1;
	for (i = 8; i < 41; i++) {
		if (i == 16 || i == 23 || i == 24)
			continue;
		if (i < 24 ? (k[i] < '0' || k[i] > '9') :
		    !((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
			return -1;
	}
	memset(&tm, 0, sizeof(tm));
	if (strptime(k + 8, "%Y%m%dT%H%M%SZ", &tm) == NULL)
		return -1;
	*stamp = (int64_t)timegm(&tm);
	memcpy(hash, k + 25, 16);
	hash[16] = '\0';
	return 0;
}

static void
history_done(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct verify_drill *d = arg;
	struct vault_rt *v;
	struct part *p = &d->history;
	char hash[17], why[160];
	int64_t stamp = 0;
	int compare;

	(void)vault;
	if ((v = drill_vault(d)) == NULL)
		return;
	if (r->outcome == UPL_NOT_FOUND)
		part_set(p, VERIFY_MISMATCH, "%s is missing on the remote (listed a moment ago)",
		    p->key);
	else if (r->outcome != UPL_OK)
		part_set(p, VERIFY_ERROR, "%s: download failed: %s", p->key, r->error);
	else {
		(void)history_key(p->key, &stamp, hash);
		compare = d->cid16[0] != '\0' && strcmp(hash, d->cid16) == 0 &&
		    stamp >= d->saved_at && stamp <= d->history_at;
		snprintf(why, sizeof(why), "%s", strcmp(hash, d->cid16) != 0 ?
		    "made from another archive than the local one" :
		    "not provably made from the local archive (stamped outside its lifetime)");
		judge(d, p, compare, why);
	}
	finish(v, d);
}

static void
list_entry(const char *vault, const struct msg_upl_entry *e, void *arg)
{
	struct verify_drill *d = arg;
	char hash[17];
	int64_t stamp;

	(void)vault;
	if (history_key(e->key, &stamp, hash) == 0 && strcmp(e->key, d->newest) > 0)
		msg_strlcpy(d->newest, e->key, sizeof(d->newest));
}

static void
list_done(const char *vault, const struct msg_upl_result *r, void *arg)
{
	static const struct upl_cbs get = { history_done, NULL, NULL, NULL, NULL };
	struct upl_cbs c = get;
	struct verify_drill *d = arg;
	struct vault_rt *v;
	struct part *p = &d->history;
	char dir[STORE_PATH_MAX];

	(void)vault;
	if ((v = drill_vault(d)) == NULL)
		return;
	if (r->outcome != UPL_OK) {
		part_set(p, VERIFY_ERROR, "listing history/ failed: %s", r->error);
		finish(v, d);
		return;
	}
	if (d->newest[0] == '\0') {
		part_set(p, VERIFY_SKIPPED, "no history copies");
		finish(v, d);
		return;
	}
	msg_strlcpy(p->key, d->newest, sizeof(p->key));
	store_dir(&D.cfg, cfg_of(v), dir, sizeof(dir));
	if (d->tmp_fd >= 0)
		close(d->tmp_fd);
	c.arg = d;
	if ((d->tmp_fd = tmp_open(dir)) < 0)
		part_set(p, VERIFY_ERROR, "a file for the download in %s: %s", dir,
		    strerror(errno));
	else if (upl_get(d->vault, p->key, d->tmp_fd, d->max, &c) == 0)
		return;
	else
		part_set(p, VERIFY_ERROR, "%s: the uploader is not available", p->key);
	finish(v, d);
}

static void
latest_done(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct upl_cbs c = { list_done, list_entry, NULL, NULL, NULL };
	struct verify_drill *d = arg;
	struct vault_rt *v;
	struct part *p = &d->latest;
	size_t n;

	(void)vault;
	if ((v = drill_vault(d)) == NULL)
		return;
	if (r->outcome == UPL_NOT_FOUND)
		part_set(p, VERIFY_MISMATCH, "vault.tar.age is missing on the remote (we wrote "
		    "ETag %s)", d->etag);
	else if (r->outcome != UPL_OK)
		part_set(p, VERIFY_ERROR, "vault.tar.age: download failed: %s", r->error);
	else {
		judge(d, p, d->compare_latest, "the remote lags the local archive (a push is "
		    "pending)");
		n = strlen(p->msg);
		if (strcmp(r->etag, d->etag) != 0)
			snprintf(p->msg + n, sizeof(p->msg) - n, " [ETag %s, we wrote %s]",
			    r->etag, d->etag);
		else
			snprintf(p->msg + n, sizeof(p->msg) - n, " [ETag %s]", r->etag);
		if (d->conflict && p->outcome == VERIFY_MISMATCH) {
			n = strlen(p->msg);
			snprintf(p->msg + n, sizeof(p->msg) - n, " (the vault is in conflict: "
			    "another device may have written it)");
		}
	}
	close(d->tmp_fd);
	d->tmp_fd = -1;
	c.arg = d;
	if (upl_op(d->vault, UPL_LIST, "history/", NULL, &c) != 0) {
		part_set(&d->history, VERIFY_ERROR, "history/: the uploader is not available");
		finish(v, d);
	}
}

/* Fix what the remote should hold, then fetch the latest. */
static void
start(struct vault_rt *v, struct verify_drill *d)
{
	static const struct upl_cbs get = { latest_done, NULL, NULL, NULL, NULL };
	const struct cfg_vault *cv = cfg_of(v);
	struct upl_cbs c = get;
	char dir[STORE_PATH_MAX], p[STORE_PATH_MAX];
	struct stat st;

	msg_strlcpy(d->latest.key, "vault.tar.age", sizeof(d->latest.key));
	store_dir(&D.cfg, cv, dir, sizeof(dir));
	store_file(dir, "vault.tar.age", p, sizeof(p));
	remote_load(v);
	if ((d->local_fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			part_set(&d->latest, VERIFY_SKIPPED, "nothing saved here yet");
		else
			part_set(&d->latest, VERIFY_ERROR, "open %s: %s", p, strerror(errno));
		finish(v, d);
		return;
	}
	if (v->rs.pushed_sha256[0] == '\0' || v->rs.etag[0] == '\0') {
		part_set(&d->latest, VERIFY_SKIPPED, "nothing pushed from here yet");
		finish(v, d);
		return;
	}
	if (fstat(d->local_fd, &st) != 0) {
		part_set(&d->latest, VERIFY_ERROR, "fstat %s: %s", p, strerror(errno));
		finish(v, d);
		return;
	}
	d->local_size = (uint64_t)st.st_size;
	d->compare_latest = !remote_lags(v);
	d->conflict = v->rs.conflict;
	msg_strlcpy(d->etag, v->rs.etag, sizeof(d->etag));
	snprintf(d->cid16, sizeof(d->cid16), "%.16s", v->st.content_id);
	d->saved_at = v->st.saved_at;
	d->history_at = v->rs.history_at;
	/* An archive holds at most MountSize of files, plus tar and age framing. */
	d->max = cv->mount_size * 2 + (64u << 20);
	c.arg = d;
	if ((d->tmp_fd = tmp_open(dir)) < 0)
		part_set(&d->latest, VERIFY_ERROR, "a file for the download in %s: %s", dir,
		    strerror(errno));
	else if (upl_get(v->name, "vault.tar.age", d->tmp_fd, d->max, &c) == 0)
		return;
	else
		part_set(&d->latest, VERIFY_ERROR, "the uploader is not available");
	finish(v, d);
}

/* Not while a save or a push moves what we compare; not without the uploader. */
static void
try_start(struct vault_rt *v)
{
	struct verify_drill *d = v->vfy.drill;
	int busy = v->busy || v->push_busy;

	if (!busy && upl_available() && !children_creds_changed()) {
		start(v, d);
		return;
	}
	if (mono_ms() - d->since >= WAIT_MAX_MS) {
		msg_strlcpy(d->latest.key, "vault.tar.age", sizeof(d->latest.key));
		part_set(&d->latest, VERIFY_ERROR, busy ? "the vault stayed busy (saving or "
		    "pushing) for a minute; try again" : "the uploader is not running");
		finish(v, d);
		return;
	}
	vtimer_set(v, &v->verify_timer, WAIT_MS, timer_fired);
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
	v->vfy.drill = d;
	return d;
}

static void
timer_fired(struct vault_rt *v)
{
	if (v->vfy.drill == NULL)
		(void)drill_new(v, "interval");
	else if (v->vfy.drill->local_fd >= 0 || v->vfy.drill->tmp_fd >= 0)
		return;		/* started: its callbacks carry it on */
	try_start(v);
}

int
verify_request(struct vault_rt *v, int client, uint32_t gen, char *err, size_t errlen)
{
	const struct cfg_vault *cv = cfg_of(v);
	struct verify_drill *d = v->vfy.drill;

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
		if (v->vfy.drill == NULL)
			arm(v);
}

int
verify_healthy(const struct vault_rt *v)
{
	return v->vfy.outcome != VERIFY_MISMATCH;
}

void
verify_status(const struct vault_rt *v, struct msg_snap_vault *sv)
{
	sv->verify_at = v->vfy.at;
	sv->verify_outcome = v->vfy.outcome;
	sv->verify_runs = v->vfy.runs;
	sv->verify_mismatches = v->vfy.mismatches;
	sv->verify_errors = v->vfy.errors;
	msg_strlcpy(sv->verify_msg, v->vfy.msg, sizeof(sv->verify_msg));
	/* Where a status reader looks first (and statusd's health reasons). */
	if (v->vfy.outcome == VERIFY_MISMATCH && sv->last_error[0] == '\0')
		snprintf(sv->last_error, sizeof(sv->last_error), "verify: %.240s", v->vfy.msg);
}
