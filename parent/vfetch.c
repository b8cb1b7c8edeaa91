/*
 * The restore drill's fetching half: the remote latest downloaded into an
 * unnamed file and judged (vjudge.c, on a worker), then history/ listed
 * and its newest copy downloaded and judged; see verify.c for the rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vaultsyncd.h"
#include "vdrill.h"
#include "vjudge.h"

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

static void judged(struct vjudge *j);

/* Where the drill goes once a download has been judged. */
typedef void (*judged_fn)(struct vault_rt *v, struct verify_drill *d);

/*
 * Judge a downloaded object on a worker thread (vjudge.c): the structural
 * scan always, the byte compare with the local archive when the remote
 * should hold exactly it; then the drill goes on with next.
 */
static void
judge(struct vault_rt *v, struct verify_drill *d, struct part *p, int compare,
    const char *why_not, judged_fn next)
{
	struct vjudge *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->done = judged;
	j->arg = d;
	vault_decode_conf(&j->dec);
	j->obj_fd = d->tmp_fd;
	j->local_fd = d->local_fd;
	j->local_size = d->local_size;
	j->compare = compare;
	d->judging = p;
	d->next = next;
	msg_strlcpy(d->why_not, why_not, sizeof(d->why_not));
	if (vjudge_start(j) != 0) {
		part_set(p, VERIFY_ERROR, "%s: cannot start a worker: %s", p->key, strerror(errno));
		free(j);
		next(v, d);
	}
}

static void
judged(struct vjudge *j)
{
	struct verify_drill *d = j->arg;
	struct part *p = d->judging;
	struct vault_rt *v;
	const char *sbuf = j->scan;
	int bad = j->scanned && !j->wellformed;

	if ((v = drill_vault(d)) == NULL) {
		free(j);
		return;
	}
	p->bytes = j->bytes;
	if (!j->scanned && j->cmp != VJ_SAME)	/* could not look: an error, not a finding */
		part_set(p, VERIFY_ERROR, "%s: %s", p->key, sbuf);
	else if (!j->compare)
		/* Nothing we write is malformed: a broken object is an alarm even so. */
		part_set(p, bad ? VERIFY_MISMATCH : VERIFY_OK, "%s: %s (%llu bytes); not compared "
		    "byte for byte: %s", p->key, sbuf, (unsigned long long)p->bytes, d->why_not);
	else {
		p->compared = j->cmp == VJ_SAME || j->cmp == VJ_DIFFER || j->cmp == VJ_SIZE;
		switch (j->cmp) {
		case VJ_SIZE:
			part_set(p, VERIFY_MISMATCH, "%s: %llu bytes on the remote, %llu in the "
			    "local archive; %s", p->key, (unsigned long long)p->bytes,
			    (unsigned long long)d->local_size, sbuf);
			break;
		case VJ_SAME:
			part_set(p, bad ? VERIFY_MISMATCH : VERIFY_OK, "%s matches the local archive "
			    "byte for byte (%llu bytes; %s)", p->key, (unsigned long long)p->bytes,
			    sbuf);
			break;
		case VJ_DIFFER:
			part_set(p, VERIFY_MISMATCH, "%s differs from the local archive at byte "
			    "%llu of %llu (same size); %s", p->key, (unsigned long long)j->at,
			    (unsigned long long)p->bytes, sbuf);
			break;
		default:
			part_set(p, VERIFY_ERROR, "%s: %s", p->key, j->err);
			break;
		}
	}
	free(j);
	d->next(v, d);
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
		judge(v, d, p, compare, why, drill_finish);
		return;
	}
	drill_finish(v, d);
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
		drill_finish(v, d);
		return;
	}
	if (d->newest[0] == '\0') {
		part_set(p, VERIFY_SKIPPED, "no history copies");
		drill_finish(v, d);
		return;
	}
	msg_strlcpy(p->key, d->newest, sizeof(p->key));
	store_dir(&D.cfg, drill_cfg(v), dir, sizeof(dir));
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
	drill_finish(v, d);
}

/* The latest judged (or not to be): note its ETag, then list history/. */
static void
after_latest(struct vault_rt *v, struct verify_drill *d)
{
	struct upl_cbs c = { list_done, list_entry, NULL, NULL, NULL };
	struct part *p = &d->latest;
	size_t n;

	if (d->got_etag[0] != '\0') {
		n = strlen(p->msg);
		if (strcmp(d->got_etag, d->etag) != 0)
			snprintf(p->msg + n, sizeof(p->msg) - n, " [ETag %s, we wrote %s]",
			    d->got_etag, d->etag);
		else
			snprintf(p->msg + n, sizeof(p->msg) - n, " [ETag %s]", d->got_etag);
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
		drill_finish(v, d);
	}
}

static void
latest_done(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct verify_drill *d = arg;
	struct vault_rt *v;
	struct part *p = &d->latest;

	(void)vault;
	if ((v = drill_vault(d)) == NULL)
		return;
	if (r->outcome == UPL_NOT_FOUND)
		part_set(p, VERIFY_MISMATCH, "vault.tar.age is missing on the remote (we wrote "
		    "ETag %s)", d->etag);
	else if (r->outcome != UPL_OK)
		part_set(p, VERIFY_ERROR, "vault.tar.age: download failed: %s", r->error);
	else {
		msg_strlcpy(d->got_etag, r->etag, sizeof(d->got_etag));
		judge(v, d, p, d->compare_latest, "the remote lags the local archive (a push is "
		    "pending)", after_latest);
		return;
	}
	after_latest(v, d);
}

/* Fix what the remote should hold, then fetch the latest. */
void
drill_fetch(struct vault_rt *v, struct verify_drill *d)
{
	static const struct upl_cbs get = { latest_done, NULL, NULL, NULL, NULL };
	const struct cfg_vault *cv = drill_cfg(v);
	struct upl_cbs c = get;
	const struct vault_remote *rs;
	char dir[STORE_PATH_MAX], p[STORE_PATH_MAX];
	struct stat st;

	msg_strlcpy(d->latest.key, "vault.tar.age", sizeof(d->latest.key));
	store_dir(&D.cfg, cv, dir, sizeof(dir));
	store_file(dir, "vault.tar.age", p, sizeof(p));
	rs = remote_state(v);
	if ((d->local_fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			part_set(&d->latest, VERIFY_SKIPPED, "nothing saved here yet");
		else
			part_set(&d->latest, VERIFY_ERROR, "open %s: %s", p, strerror(errno));
		drill_finish(v, d);
		return;
	}
	if (rs->pushed_sha256[0] == '\0' || rs->etag[0] == '\0') {
		part_set(&d->latest, VERIFY_SKIPPED, "nothing pushed from here yet");
		drill_finish(v, d);
		return;
	}
	if (fstat(d->local_fd, &st) != 0) {
		part_set(&d->latest, VERIFY_ERROR, "fstat %s: %s", p, strerror(errno));
		drill_finish(v, d);
		return;
	}
	d->local_size = (uint64_t)st.st_size;
	d->compare_latest = !remote_lags(v);
	d->conflict = rs->conflict;
	msg_strlcpy(d->etag, rs->etag, sizeof(d->etag));
	snprintf(d->cid16, sizeof(d->cid16), "%.16s", v->st.content_id);
	d->saved_at = v->st.saved_at;
	d->history_at = rs->history_at;
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
	drill_finish(v, d);
}
