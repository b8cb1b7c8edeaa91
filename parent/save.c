/*
 * Saving: tar (sorted, deterministic) -> SHA-256 + keyed content id in the
 * same pass -> age to the vault's recipients -> temp file in the state dir
 * -> fsync -> rename -> fsync dir.  An unchanged plaintext hash discards the
 * new file, so an unchanged vault never produces a new archive.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <time.h>

#include <openssl/evp.h>

#include "age.h"
#include "archive.h"
#include "clock.h"
#include "hex.h"
#include "ring.h"
#include "treedigest.h"
#include "vault_ops.h"
#include "vault_ops_int.h"

/*
 * A tmpfs has no snapshots: a file written while the archive is being made
 * can leave one that matches no state the vault ever had (one entry from
 * before a change, another from after).  The tar writer keeps the stat view
 * of each entry as it read it, and a stat scan after the archive gives the
 * view at the end: equal, and no entry changed between being read and the
 * end, so the archive is the vault as it stood then (any change moves a
 * ctime).  An archive the vault changed under is made again, and only the
 * last of SAVE_TRIES is kept as it is (a vault written to without pause
 * must still be saved; the change that tore it brings the next tick).
 */
#define SAVE_TRIES	8

struct after_scan {
	const char *path;
	struct tree_scan *out;
};

static void *
after_scan_run(void *arg)
{
	struct after_scan *a = arg;

	(void)tree_scan(a->path, 0, a->out);
	return NULL;
}

/*
 * One attempt: 0 saved (or unchanged), 1 the vault changed meanwhile, -1
 * failed.  after: the scan that ended it (digest 0 when none ran).
 */
static int
save_once(struct vault_job *vj, int last, struct tree_scan *after)
{
	struct age_recipient r[STORE_MAX_RECIPIENTS];
	unsigned char key[32], sha[32], cid[32];
	char tmp[STORE_PATH_MAX + 32], dst[STORE_PATH_MAX], err[256];
	struct arc_stats as;
	struct arc_sink as_out;
	struct sink s;
	struct ring ring;
	pthread_t helper;
	unsigned int mdlen = 0;
	struct after_scan asj;
	pthread_t scanner;
	size_t nr;
	int vfd, old = -1, rc = -1, arc_rc, digested, same, scanning, synced, sync_errno;

	memset(&s, 0, sizeof(s));
	memset(after, 0, sizeof(*after));
	s.fd = -1;
	s.drop = !vault_path_on_ram(vj->dir);
	vj->changed = 0;
	vj->st = vj->prev;
	if (store_recipients(&vj->v, vj->dir, r, &nr, err, sizeof(err)) != 0) {
		vop_err(vj, 1, "%s", err);
		return -1;
	}
	if (store_key_load(vj->dir, key, 1, err, sizeof(err)) != 0) {
		vop_err(vj, 1, "%s", err);
		return -1;
	}
	if ((vfd = open(vj->v.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		vop_err(vj, 66, "open %s: %s", vj->v.path, strerror(errno));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s/.vault.tar.age.XXXXXX", vj->dir);
	if ((s.fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		vop_err(vj, 73, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((s.w = age_writer_new(r, nr, sink_write, &s, &s.ae)) == NULL) {
		vop_err(vj, 1, "encrypt: %s", s.ae.msg);
		goto fail;
	}
	memset(&as, 0, sizeof(as));
	if (ring_init(&ring, &s) != 0 || (errno = pthread_create(&helper, NULL, ring_helper,
	    &ring)) != 0) {
		vop_err(vj, 1, "cannot start the encryption stage: %s", strerror(errno));
		ring_free(&ring);
		goto fail;
	}
	as_out.write = ring_write;
	as_out.room = ring_room;
	as_out.arg = &ring;
	err[0] = '\0';
	arc_rc = arc_create_sink(vfd, &as_out, key, NULL, NULL, &as, err, sizeof(err));
	if (ring_finish(&ring, arc_rc == 0, helper) != 0 || arc_rc != 0) {
		vop_err(vj, 1, "archive %s: %s%s%s", vj->v.path, err,
		    err[0] && s.ae.msg[0] ? ": " : "", s.ae.msg);
		ring_free(&ring);
		goto fail;
	}
	digested = EVP_DigestFinal_ex(ring.md, sha, &mdlen) == 1 && mdlen == 32 &&
	    arc_content_id(key, sha, cid) == 0;
	ring_free(&ring);
	if (!digested) {
		vop_err(vj, 1, "archive %s: SHA-256/HMAC finalisation failed", vj->v.path);
		goto fail;
	}
	if (age_writer_finish(s.w, &s.ae) != 0) {
		vop_err(vj, 1, "encrypt: %s", s.ae.msg);
		goto fail;
	}
	hex_encode(sha, 32, vj->st.sha256);
	vj->files = as.files;
	vj->bytes = as.bytes;
	vj->skipped = as.skipped;
	snprintf(vj->first_skip, sizeof(vj->first_skip), "%s", as.first_skip);
	same = strcmp(vj->st.sha256, vj->prev.sha256) == 0 &&
	    store_exists(vj->dir, "vault.tar.age");
	/*
	 * The scan after the archive runs while the new archive is made
	 * durable: on a disk the fsync is mostly waiting, and a torn try only
	 * wastes it.
	 */
	asj.path = vj->v.path;
	asj.out = after;
	if (!(scanning = pthread_create(&scanner, NULL, after_scan_run, &asj) == 0))
		(void)tree_scan(vj->v.path, 0, after);
	synced = same || fsync(s.fd) == 0;
	sync_errno = errno;
	if (scanning)
		pthread_join(scanner, NULL);
	if (after->digest != tree_view_digest(&as.view)) {
		if (!last) {
			unlink(tmp);	/* never renamed into place: not even a kill keeps it */
			close_later(s.fd);
			s.fd = -1;
			rc = 1;
			goto out;
		}
		vj->torn = 1;
	}
	if (same) {
		unlink(tmp);		/* unchanged: keep the archive we have */
		close_later(s.fd);
		s.fd = -1;
		rc = 0;
		goto out;
	}
	if (!synced) {
		vop_err(vj, 73, "fsync %s: %s", tmp, strerror(sync_errno));
		goto fail;
	}
	store_file(vj->dir, "vault.tar.age", dst, sizeof(dst));
	/* Held open, the archive being replaced is freed by close_later, not by rename. */
	old = open(dst, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (rename(tmp, dst) != 0 || store_sync_dir(vj->dir) != 0) {
		vop_err(vj, 73, "rename %s: %s", dst, strerror(errno));
		goto fail;
	}
	hex_encode(cid, 32, vj->st.content_id);
	vj->st.dirty = vj->v.remote_kind != CFG_REMOTE_NONE;
	vj->st.saved_at = (int64_t)time(NULL);
	vj->st.archive_bytes = s.written;
	vj->changed = 1;
	if (store_state_write(vj->dir, &vj->st, err, sizeof(err)) != 0) {
		vop_err(vj, 73, "%s", err);
		goto out;
	}
	rc = 0;
	goto out;
fail:
	unlink(tmp);
out:
	explicit_bzero(key, sizeof(key));
	age_writer_free(s.w);
	if (s.fd >= 0)
		close(s.fd);
	if (vfd >= 0)
		close(vfd);
	close_later(old);
	return rc;
}

/*
 * The change check (chgcheck.h): 1 if the scan shows the vault as the last
 * save saw it, so that no archive is needed; the verdict says why not.
 */
static int
unchanged(struct vault_job *vj, const struct tree_scan *sc)
{
	struct chg_job *c = &vj->chk;

	if (!c->compare)
		return 0;	/* prepare said why */
	if (vj->prev.sha256[0] == '\0' || !store_exists(vj->dir, "vault.tar.age"))
		c->verdict = CHG_NO_ARCHIVE;
	else
		c->verdict = tree_compare(&c->base, sc);
	return c->verdict == CHG_UNCHANGED;
}

/*
 * Save the vault; sets changed and st.  Returns 0 or -1 (vj->err set).
 * When the change check has a view to compare with, the first try begins
 * with a scan that may find nothing changed and make no archive.  The next
 * check compares with the view the kept try ended with, taken as of that
 * try's start: a change made during the archive in the same timestamp tick
 * as an earlier one leaves the tuple as it was, and only the racy rule,
 * measured from before the first byte was read, catches it.
 */
int
do_save(struct vault_job *vj)
{
	struct tree_scan sc;
	int64_t t0;
	uint64_t m0;
	int i, rc;

	vj->torn = 0;
	for (i = 0; i < SAVE_TRIES; i++) {
		vj->save_tries = i + 1;
		/* A burst of writes usually ends soon: wait it out a little longer each time. */
		if (i > 0)
			usleep((useconds_t)(25000u << (i < 6 ? i : 6)));
		t0 = wall_ns();
		if (i == 0 && vj->chk.compare) {
			m0 = mono_us();
			(void)tree_scan(vj->v.path, vj->chk.base.start_ns - vj->chk.gran_ns, &sc);
			vj->chk.scan_us = mono_us() - m0;
			if (unchanged(vj, &sc)) {
				vj->changed = 0;
				vj->st = vj->prev;
				vj->files = sc.entries;
				return 0;
			}
		}
		if ((rc = save_once(vj, i == SAVE_TRIES - 1, &sc)) != 1) {
			if (rc == 0 && !vj->torn && sc.digest != 0 && sc.errors == 0) {
				vj->chk.have_next = 1;
				vj->chk.next.digest = sc.digest;
				vj->chk.next.entries = sc.entries;
				vj->chk.next.start_ns = t0;
			}
			return rc;
		}
	}
	return -1;	/* not reached: the last try never answers 1 */
}
