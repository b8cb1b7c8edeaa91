/*
 * Saving: tar (sorted, deterministic) -> SHA-256 + keyed content id in the
 * same pass -> age to the vault's recipients -> temp file in the state dir
 * -> fsync -> rename -> fsync dir.  An unchanged plaintext hash discards the
 * new file, so an unchanged vault never produces a new archive.
 *
 * Unlocking: decrypt identity.age with the passphrase, mount (system mode),
 * decrypt and extract the archive into a staging directory inside the vault,
 * and move the entries into place only when everything has authenticated and
 * extracted.  A damaged archive leaves the vault as it was.
 *
 * Pulling: a downloaded archive is unpacked the same way, by the same code,
 * before it may replace the local one (for a locked vault into a throwaway
 * tmpfs), so that an archive that would not unlock never becomes the only
 * copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hex.h"
#include "age.h"
#include "archive.h"
#include "msg.h"
#include "treedigest.h"
#include "vault_ops.h"
#include "decode.h"

#define STAGING		".vaultsync-staging"
#define WRITEBACK_STEP	(8u << 20)	/* start writeback while still encrypting */
#define WRITEBACK_LAG	(32u << 20)	/* in flight to the disk before we wait */
#define IDENTITY_MAX	4096

static void
set_err(struct vault_job *vj, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(struct vault_job *vj, int rc, const char *fmt, ...)
{
	va_list ap;

	vj->rc = rc;
	va_start(ap, fmt);
	vsnprintf(vj->err, sizeof(vj->err), fmt, ap);
	va_end(ap);
}

int
vault_path_on_ram(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 &&
	    (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

int
vault_path_is_mounted_tmpfs(const char *path)
{
	struct statx sx;

	if (!vault_path_on_ram(path))
		return 0;
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) != 0)
		return 0;
	return (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* ---- saving ------------------------------------------------------------- */

struct sink {
	int fd;
	int drop;			/* on a disk: drop written-back pages behind us */
	uint64_t written, synced, dropped;
	struct age_writer *w;
	struct age_err ae;
};

static int
sink_write(void *arg, const void *buf, size_t len)
{
	struct sink *s = arg;
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(s->fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		s->written += (uint64_t)n;
	}
	if (s->written - s->synced < WRITEBACK_STEP)
		return 0;
	/* Start writeback now rather than paying for all of it in the final fsync. */
	(void)sync_file_range(s->fd, (off64_t)s->synced, (off64_t)(s->written - s->synced),
	    SYNC_FILE_RANGE_WRITE);
	s->synced = s->written;
	/*
	 * What is more than WRITEBACK_LAG behind has had time to reach the
	 * disk: wait for it and drop it from the page cache.  A save then holds
	 * a few megabytes of cache instead of the whole archive, does not push
	 * out other files' pages, and writes through pages it just released
	 * rather than fresh ones.  The final fsync still makes it all durable.
	 */
	if (s->drop && s->synced - s->dropped > WRITEBACK_LAG) {
		uint64_t end = s->synced - WRITEBACK_LAG;

		(void)sync_file_range(s->fd, (off64_t)s->dropped, (off64_t)(end - s->dropped),
		    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
		    SYNC_FILE_RANGE_WAIT_AFTER);
		(void)posix_fadvise(s->fd, (off_t)s->dropped, (off_t)(end - s->dropped),
		    POSIX_FADV_DONTNEED);
		s->dropped = end;
	}
	return 0;
}

static void *
closer(void *arg)
{
	close((int)(intptr_t)arg);
	return NULL;
}

/*
 * Close a descriptor whose inode is unlinked, off the caller's path: the
 * last close frees the file's pages or blocks, tens of milliseconds for a
 * large archive, and nobody waits for that.
 */
static void
close_later(int fd)
{
	pthread_attr_t a;
	pthread_t t;

	if (fd < 0)
		return;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, closer, (void *)(intptr_t)fd) != 0)
		close(fd);
	pthread_attr_destroy(&a);
}

/*
 * Saving runs on two cores.  The job thread walks the vault and reads file
 * contents straight into a ring of locked slots (the kernel's copy is the
 * only one); every full slot then needs SHA-256 and sealing-and-writing,
 * each strictly in stream order.  A helper thread and the job thread (when
 * it has no free slot to read into) take whichever of the two is next and
 * not already being done: SHA-256 alone is about 40% of the work (1.3 GB/s
 * with SHA-NI, against 2.9 GB/s for ChaCha20-Poly1305, plus the copies in
 * and out of the kernel), so a fixed split leaves one core idle.  A slot is
 * refilled only once it has been both hashed and sealed, and plaintext never
 * leaves locked memory.  Slots are large so that a handover costs a lock
 * every half megabyte, not every chunk; more or larger ones gain a few
 * percent at most, and locked memory is scarce (RLIMIT_MEMLOCK).
 */
#define RING_SLOTS	4
#define RING_SLOT_LEN	(8u * AGE_CHUNK_LEN)	/* 2 MiB locked in all, as before */

struct ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* work appeared, or a slot came free */
	struct secbuf slot[RING_SLOTS];
	size_t fill[RING_SLOTS];
	/* Slots counted since the start: slot k lives in slot[k % RING_SLOTS]. */
	uint64_t filled, hashed, sealed;
	int hashing, sealing;		/* claimed by a thread */
	int done;			/* nothing more will be filled */
	int failed;			/* stop: hashing, sealing or writing failed */
	int error;			/* errno of a failed write, on whichever thread */
	EVP_MD_CTX *md;
	struct sink *sink;
};

enum { TASK_NONE, TASK_SEAL, TASK_HASH };

/* Claim the next task, with r->mu held.  Sealing first: it starts the I/O. */
static int
ring_claim(struct ring *r, uint64_t *k)
{
	if (r->failed)
		return TASK_NONE;
	if (!r->sealing && r->sealed < r->filled) {
		r->sealing = 1;
		*k = r->sealed;
		return TASK_SEAL;
	}
	if (!r->hashing && r->hashed < r->filled) {
		r->hashing = 1;
		*k = r->hashed;
		return TASK_HASH;
	}
	return TASK_NONE;
}

/* Run a claimed task; r->mu is held on entry and on return. */
static void
ring_run(struct ring *r, int task, uint64_t k)
{
	unsigned i = (unsigned)(k % RING_SLOTS);
	int ok, error;

	pthread_mutex_unlock(&r->mu);
	errno = EIO;
	if (task == TASK_SEAL)
		ok = age_writer_write(r->sink->w, r->slot[i].p, r->fill[i], &r->sink->ae) == 0;
	else
		ok = EVP_DigestUpdate(r->md, r->slot[i].p, r->fill[i]) == 1;
	error = errno;
	pthread_mutex_lock(&r->mu);
	if (task == TASK_SEAL) {
		r->sealing = 0;
		r->sealed++;
	} else {
		r->hashing = 0;
		r->hashed++;
	}
	if (!ok) {
		if (task == TASK_HASH)
			snprintf(r->sink->ae.msg, sizeof(r->sink->ae.msg),
			    "hashing the archive failed");
		r->failed = 1;
		r->error = error;
	}
	pthread_cond_broadcast(&r->cv);
}

static void *
ring_helper(void *arg)
{
	struct ring *r = arg;
	uint64_t k;
	int task;

	pthread_mutex_lock(&r->mu);
	while (!r->failed) {
		if ((task = ring_claim(r, &k)) != TASK_NONE)
			ring_run(r, task, k);
		else if (r->done)
			break;
		else
			pthread_cond_wait(&r->cv, &r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* The oldest slot not yet both hashed and sealed. */
static uint64_t
ring_oldest(const struct ring *r)
{
	return r->hashed < r->sealed ? r->hashed : r->sealed;
}

/*
 * Queue the current slot; help with the queue until a slot is free to fill
 * (more) or, when finishing, until everything is hashed and sealed.
 */
static int
ring_push(struct ring *r, int last)
{
	uint64_t k;
	int task, failed, error;

	pthread_mutex_lock(&r->mu);
	if (r->fill[r->filled % RING_SLOTS] > 0) {
		r->filled++;
		pthread_cond_broadcast(&r->cv);
	}
	if (last) {
		r->done = 1;
		pthread_cond_broadcast(&r->cv);
	}
	while (!r->failed && (last ? ring_oldest(r) < r->filled :
	    r->filled - ring_oldest(r) == RING_SLOTS)) {
		if ((task = ring_claim(r, &k)) != TASK_NONE)
			ring_run(r, task, k);
		else
			pthread_cond_wait(&r->cv, &r->mu);
	}
	r->fill[r->filled % RING_SLOTS] = 0;
	failed = r->failed;
	error = r->error != 0 ? r->error : EIO;
	pthread_mutex_unlock(&r->mu);
	if (failed)
		errno = error;
	return failed ? -1 : 0;
}

/* Where arc_create may read file contents to: the free part of the slot. */
static void *
ring_room(void *arg, size_t *len)
{
	struct ring *r = arg;
	unsigned i = (unsigned)(r->filled % RING_SLOTS);

	*len = RING_SLOT_LEN - r->fill[i];
	return r->slot[i].p + r->fill[i];
}

static int
ring_write(void *arg, const void *buf, size_t len)
{
	struct ring *r = arg;
	const unsigned char *p = buf;

	while (len > 0) {
		unsigned i = (unsigned)(r->filled % RING_SLOTS);
		unsigned char *dst = r->slot[i].p + r->fill[i];
		size_t room = RING_SLOT_LEN - r->fill[i];
		size_t n = len < room ? len : room;

		/* Contents read in place through ring_room are already there. */
		if (dst != p)
			memcpy(dst, p, n);
		r->fill[i] += n;
		p += n;
		len -= n;
		if (r->fill[i] == RING_SLOT_LEN && ring_push(r, 0) != 0)
			return -1;
	}
	return 0;
}

static int
ring_init(struct ring *r, struct sink *s)
{
	int i;

	memset(r, 0, sizeof(*r));
	r->sink = s;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if ((r->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1) {
		errno = ENOMEM;
		return -1;
	}
	for (i = 0; i < RING_SLOTS; i++)
		if (secbuf_alloc(&r->slot[i], RING_SLOT_LEN) != 0)
			return -1;
	return 0;
}

/*
 * Queue the partial last slot and see everything through (or, when the
 * archive failed, just stop), then wait for the helper.  0 when every byte
 * was both hashed and sealed.
 */
static int
ring_finish(struct ring *r, int complete, pthread_t helper)
{
	int rc;

	if (!complete) {
		pthread_mutex_lock(&r->mu);
		r->failed = 1;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	rc = ring_push(r, 1);
	pthread_join(helper, NULL);
	return complete ? rc : -1;
}

static void
ring_free(struct ring *r)
{
	int i;

	for (i = 0; i < RING_SLOTS; i++)
		secbuf_free(&r->slot[i]);
	EVP_MD_CTX_free(r->md);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

/*
 * A tmpfs has no snapshots: a file written while the archive is being made
 * can leave one that matches no state the vault ever had (one entry from
 * before a change, another from after).  Metadata digests around each
 * attempt tell; an archive the vault changed under is made again, and only
 * the last of SAVE_TRIES is kept as it is (a vault written to without pause
 * must still be saved; the change that tore it brings the next tick).
 */
#define SAVE_TRIES	8

/* One attempt: 0 saved (or unchanged), 1 the vault changed meanwhile, -1 failed. */
static int
save_once(struct vault_job *vj, uint64_t d0, int last)
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
	size_t nr;
	int vfd, old = -1, rc = -1, arc_rc, digested;

	memset(&s, 0, sizeof(s));
	s.fd = -1;
	s.drop = !vault_path_on_ram(vj->dir);
	vj->changed = 0;
	vj->st = vj->prev;
	if (store_recipients(&vj->v, vj->dir, r, &nr, err, sizeof(err)) != 0) {
		set_err(vj, 1, "%s", err);
		return -1;
	}
	if (store_key_load(vj->dir, key, 1, err, sizeof(err)) != 0) {
		set_err(vj, 1, "%s", err);
		return -1;
	}
	if ((vfd = open(vj->v.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		set_err(vj, 66, "open %s: %s", vj->v.path, strerror(errno));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s/.vault.tar.age.XXXXXX", vj->dir);
	if ((s.fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		set_err(vj, 73, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((s.w = age_writer_new(r, nr, sink_write, &s, &s.ae)) == NULL) {
		set_err(vj, 1, "encrypt: %s", s.ae.msg);
		goto fail;
	}
	memset(&as, 0, sizeof(as));
	if (ring_init(&ring, &s) != 0 || (errno = pthread_create(&helper, NULL, ring_helper,
	    &ring)) != 0) {
		set_err(vj, 1, "cannot start the encryption stage: %s", strerror(errno));
		ring_free(&ring);
		goto fail;
	}
	as_out.write = ring_write;
	as_out.room = ring_room;
	as_out.arg = &ring;
	err[0] = '\0';
	arc_rc = arc_create_sink(vfd, &as_out, key, NULL, NULL, &as, err, sizeof(err));
	if (ring_finish(&ring, arc_rc == 0, helper) != 0 || arc_rc != 0) {
		set_err(vj, 1, "archive %s: %s%s%s", vj->v.path, err,
		    err[0] && s.ae.msg[0] ? ": " : "", s.ae.msg);
		ring_free(&ring);
		goto fail;
	}
	digested = EVP_DigestFinal_ex(ring.md, sha, &mdlen) == 1 && mdlen == 32 &&
	    arc_content_id(key, sha, cid) == 0;
	ring_free(&ring);
	if (!digested) {
		set_err(vj, 1, "archive %s: SHA-256/HMAC finalisation failed", vj->v.path);
		goto fail;
	}
	if (age_writer_finish(s.w, &s.ae) != 0) {
		set_err(vj, 1, "encrypt: %s", s.ae.msg);
		goto fail;
	}
	hex_encode(sha, 32, vj->st.sha256);
	vj->files = as.files;
	vj->bytes = as.bytes;
	if (tree_digest(vj->v.path) != d0) {
		if (!last) {
			unlink(tmp);	/* never renamed into place: not even a kill keeps it */
			close_later(s.fd);
			s.fd = -1;
			rc = 1;
			goto out;
		}
		vj->torn = 1;
	}
	if (strcmp(vj->st.sha256, vj->prev.sha256) == 0 &&
	    store_exists(vj->dir, "vault.tar.age")) {
		unlink(tmp);		/* unchanged: keep the archive we have */
		close_later(s.fd);
		s.fd = -1;
		rc = 0;
		goto out;
	}
	if (fsync(s.fd) != 0) {
		set_err(vj, 73, "fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	store_file(vj->dir, "vault.tar.age", dst, sizeof(dst));
	/* Held open, the archive being replaced is freed by close_later, not by rename. */
	old = open(dst, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (rename(tmp, dst) != 0 || store_sync_dir(vj->dir) != 0) {
		set_err(vj, 73, "rename %s: %s", dst, strerror(errno));
		goto fail;
	}
	hex_encode(cid, 32, vj->st.content_id);
	vj->st.dirty = vj->v.remote_kind != CFG_REMOTE_NONE;
	vj->st.saved_at = (int64_t)time(NULL);
	vj->st.archive_bytes = s.written;
	vj->changed = 1;
	if (store_state_write(vj->dir, &vj->st, err, sizeof(err)) != 0) {
		set_err(vj, 73, "%s", err);
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

/* Save the vault; sets changed and st.  Returns 0 or -1 (vj->err set). */
static int
do_save(struct vault_job *vj)
{
	int i, rc;

	vj->torn = 0;
	for (i = 0; i < SAVE_TRIES; i++) {
		vj->save_tries = i + 1;
		/* A burst of writes usually ends soon: wait it out a little longer each time. */
		if (i > 0)
			usleep((useconds_t)(25000u << (i < 6 ? i : 6)));
		if ((rc = save_once(vj, tree_digest(vj->v.path), i == SAVE_TRIES - 1)) != 1)
			return rc;
	}
	return -1;	/* not reached: the last try never answers 1 */
}

/* ---- wiping and mounting ---------------------------------------------- */

/* Overwrite regular files before unlinking: tmpfs pages are freed, not cleared. */
static void
scrub_file(int dfd, const char *name)
{
	static const char zero[65536];
	struct stat st;
	off_t left;
	int fd;

	if ((fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) == -1)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		for (left = st.st_size; left > 0; ) {
			ssize_t n = write(fd, zero, left > (off_t)sizeof(zero) ?
			    sizeof(zero) : (size_t)left);

			if (n <= 0)
				break;
			left -= n;
		}
	close(fd);
}

/* Remove everything below dfd (not dfd itself, nor an entry named keep), never following links. */
static int
wipe_dir(int dfd, int depth, const char *keep)
{
	DIR *d;
	struct dirent *de;
	int fd, rc = 0;

	if (depth > 128 || (fd = dup(dfd)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    (keep != NULL && strcmp(de->d_name, keep) == 0))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dfd, de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub == -1 || wipe_dir(sub, depth + 1, NULL) != 0)
				rc = -1;
			if (sub != -1)
				close(sub);
			if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) != 0)
				rc = -1;
		} else {
			if (S_ISREG(st.st_mode))
				scrub_file(dfd, de->d_name);
			if (unlinkat(dfd, de->d_name, 0) != 0)
				rc = -1;
		}
	}
	closedir(d);
	return rc;
}

static int
dir_empty(int dfd)
{
	DIR *d;
	struct dirent *de;
	int fd, empty = 1;

	if ((fd = dup(dfd)) == -1 || (d = fdopendir(fd)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

static int
do_mount(struct vault_job *vj, int *mounted)
{
	char opts[128];

	*mounted = 0;
	if (!vj->v.mount) {
		if (!vault_path_on_ram(vj->v.path)) {
			set_err(vj, 66, "%s is not on tmpfs or ramfs: a vault must never touch "
			    "a disk (mount a tmpfs there, or set Mount yes as root)", vj->v.path);
			return -1;
		}
		return 0;
	}
	if (!vj->system_mode) {
		set_err(vj, 64, "vault %s: Mount yes needs the system daemon (root)", vj->v.name);
		return -1;
	}
	if (vault_path_is_mounted_tmpfs(vj->v.path))
		return 0;
	if (mkdir(vj->v.path, 0700) == -1 && errno != EEXIST) {
		set_err(vj, 66, "mkdir %s: %s", vj->v.path, strerror(errno));
		return -1;
	}
	snprintf(opts, sizeof(opts), "size=%llu,mode=0700,uid=%u,gid=%u",
	    (unsigned long long)vj->v.mount_size, (unsigned)vj->owner_uid,
	    (unsigned)vj->owner_gid);
	if (mount("vaultsync", vj->v.path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    opts) != 0) {
		set_err(vj, 73, "mount tmpfs on %s: %s", vj->v.path, strerror(errno));
		return -1;
	}
	*mounted = 1;
	return 0;
}

static void
do_umount(const char *path)
{
	/* A shell sitting in the vault keeps it busy: detach it, the data is gone anyway. */
	if (umount2(path, UMOUNT_NOFOLLOW) != 0)
		(void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
}

/* ---- unlocking ------------------------------------------------------- */

/*
 * What an archive of this vault may unpack to, whichever way it comes in:
 * MountSize of file contents, and the entry count a save never refuses.  A
 * lower count tied to MountSize would let a vault save an archive that its
 * own unlock then refuses; the tmpfs the entries land in (the vault's mount,
 * or the private one of a pull, both MountSize) bounds their memory anyway.
 */
#define VAULT_MAX_ENTRIES	1000000

static void
vault_limits(const struct vault_job *vj, struct arc_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_total_bytes = vj->v.mount_size;
	lim->max_entry_bytes = vj->v.mount_size;
	lim->max_entries = VAULT_MAX_ENTRIES;
	lim->owner_uid = vj->owner_uid;
	lim->owner_gid = vj->owner_gid;
	lim->chown_entries = vj->system_mode;
}

/*
 * A decoder on identity.age and the archive at path (NULL: the vault's own;
 * none saved yet: identity only), once identity.age has opened with the
 * passphrase.  *afd_out is -1 when there was no archive to open.
 */
static struct decoder *
open_decoder(struct vault_job *vj, const char *path, int *no_archive)
{
	char idp[STORE_PATH_MAX], ap[STORE_PATH_MAX], err[512];
	struct arc_limits lim;
	struct decoder *d = NULL;
	int idfd, afd = -1;

	*no_archive = 0;
	store_file(vj->dir, "identity.age", idp, sizeof(idp));
	if ((idfd = open(idp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		set_err(vj, 66, "vault %s is not initialised (open %s: %s); run vaultsyncctl init %s",
		    vj->v.name, idp, strerror(errno), vj->v.name);
		secbuf_free(&vj->pass);
		return NULL;
	}
	if (path != NULL)
		msg_strlcpy(ap, path, sizeof(ap));
	else
		store_file(vj->dir, "vault.tar.age", ap, sizeof(ap));
	if ((afd = open(ap, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno != ENOENT || path != NULL) {
			set_err(vj, path != NULL ? 1 : 66, "open %s: %s", ap, strerror(errno));
			goto out;
		}
		*no_archive = 1;	/* initialised, never saved: an empty vault */
	}
	vault_limits(vj, &lim);
	d = decoder_start(&vj->dec, idfd, afd, (const char *)vj->pass.p, vj->pass.len, &lim,
	    err, sizeof(err));
	secbuf_free(&vj->pass);
	if (d == NULL) {
		set_err(vj, 1, "%s", err);
		goto out;
	}
	if (decoder_ready(d, err, sizeof(err)) != 0) {
		set_err(vj, 1, "%s", err);
		decoder_free(d);
		d = NULL;
	}
out:
	secbuf_free(&vj->pass);
	if (afd != -1)
		close(afd);
	close(idfd);
	return d;
}

/* Move every entry of the staging dir into the vault root. */
static int
swap_in(int vfd, int sfd)
{
	DIR *dp;
	struct dirent *de;
	int fd, rc = 0;

	if ((fd = dup(sfd)) == -1 || (dp = fdopendir(fd)) == NULL)
		return -1;
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (renameat2(sfd, de->d_name, vfd, de->d_name, RENAME_NOREPLACE) != 0)
			rc = -1;
	}
	closedir(dp);
	return rc;
}

static void
err_append(struct vault_job *vj, const char *s)
{
	size_t n = strlen(vj->err);

	snprintf(vj->err + n, sizeof(vj->err) - n, "%s", s);
}

/*
 * The one way an archive is unpacked: the decoder opens it, and its
 * entries are written into dirfd, an empty directory on RAM, under the
 * vault's limits.  Unlock and pull (into a locked vault or an unlocked one)
 * all come through here, so nothing replaces the local archive before it
 * has met every rule an unlock will apply to it.  Sets vj->st.sha256,
 * files and bytes.  On failure dirfd holds partial output for the caller
 * to wipe.
 */
static int
unpack_archive(struct vault_job *vj, struct decoder *d, const char *name, int dirfd)
{
	unsigned char sha[32];
	char err[512];
	struct arc_limits lim;
	struct arc_stats as;

	vault_limits(vj, &lim);
	if (decoder_unpack(d, dirfd, &lim, sha, &as, err, sizeof(err)) != 0) {
		set_err(vj, 1, "%s: %s", name, err);
		return -1;
	}
	hex_encode(sha, 32, vj->st.sha256);
	vj->files = as.files;
	vj->bytes = as.bytes;
	return 0;
}

/*
 * Unpack the decoder's archive into a staging directory inside the vault,
 * and only when all of it authenticated and extracted, move it in.
 * replace: the vault's present contents go first (a pull into an unlocked
 * vault); otherwise the vault must be empty.
 */
static int
extract_archive(struct vault_job *vj, int vfd, struct decoder *d, const char *name, int replace)
{
	int sfd = -1, rc = -1;

	if (mkdirat(vfd, STAGING, 0700) != 0 ||
	    (sfd = openat(vfd, STAGING, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		set_err(vj, 73, "create staging directory in %s: %s", vj->v.path, strerror(errno));
		goto out;
	}
	if (unpack_archive(vj, d, name, sfd) != 0) {
		err_append(vj, replace ? "; the vault and the local archive were left as "
		    "they were" : "; the vault was left as it was");
		goto out;
	}
	if (replace && wipe_dir(vfd, 0, STAGING) != 0) {
		set_err(vj, 1, "clearing %s for the pulled version: %s", vj->v.path,
		    strerror(errno));
		goto out;
	}
	if (swap_in(vfd, sfd) != 0) {
		set_err(vj, 1, "moving the extracted files into %s: %s", vj->v.path,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (sfd >= 0) {
		(void)wipe_dir(sfd, 0, NULL);
		close(sfd);
		(void)unlinkat(vfd, STAGING, AT_REMOVEDIR);
	}
	return rc;
}

static void
op_unlock(struct vault_job *vj)
{
	char err[256], path[STORE_PATH_MAX];
	struct decoder *d;
	int mounted = 0, vfd = -1, none;

	vj->st = vj->prev;
	if ((d = open_decoder(vj, NULL, &none)) == NULL)
		return;
	if (do_mount(vj, &mounted) != 0)
		goto out;
	if ((vfd = open(vj->v.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		set_err(vj, 66, "open %s: %s", vj->v.path, strerror(errno));
		goto fail;
	}
	if (!dir_empty(vfd)) {
		set_err(vj, 1, "%s is not empty: it is unlocked already, or holds files "
		    "vaultsync did not put there", vj->v.path);
		goto fail;
	}
	store_file(vj->dir, "vault.tar.age", path, sizeof(path));
	if (!none && extract_archive(vj, vfd, d, path, 0) != 0)
		goto fail;
	if (store_write_atomic(vj->dir, "unlocked", "1\n", 2, 0600, err, sizeof(err)) != 0) {
		set_err(vj, 73, "%s", err);
		goto fail;
	}
	if (store_state_write(vj->dir, &vj->st, err, sizeof(err)) != 0)
		set_err(vj, 73, "%s", err);
	goto out;
fail:
	if (mounted)
		do_umount(vj->v.path);
out:
	if (vfd >= 0)
		close(vfd);
	decoder_free(d);
}

/* ---- pulling ---------------------------------------------------------- */

/*
 * Where a locked vault's pulled archive is unpacked to be checked: never a
 * disk.  In system mode a private tmpfs that no path leads to (fsmount
 * without move_mount), sized for the vault and gone with its last
 * descriptor, even if the daemon dies; otherwise, or where the kernel
 * refuses that, a fresh 0700 directory on a RAM filesystem.
 */
struct staging {
	int mnt;			/* the private tmpfs, or -1 */
	int fd;
	char path[STORE_PATH_MAX];	/* the directory on a shared RAM filesystem, or "" */
};

static int
private_tmpfs(const struct arc_limits *lim)
{
	char size[32], inodes[32];
	int fs, mnt = -1;

	/*
	 * As big as the vault's own mount: what unlocks there unpacks here, and a
	 * hostile archive of tiny files cannot pin more pages than the vault could.
	 */
	snprintf(size, sizeof(size), "%llu", (unsigned long long)lim->max_total_bytes);
	snprintf(inodes, sizeof(inodes), "%llu", (unsigned long long)(lim->max_entries + 16));
	if ((fs = fsopen("tmpfs", FSOPEN_CLOEXEC)) == -1)
		return -1;
	if (fsconfig(fs, FSCONFIG_SET_STRING, "size", size, 0) == 0 &&
	    fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", inodes, 0) == 0 &&
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0) == 0 &&
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
		    MOUNT_ATTR_NOEXEC);
	close(fs);
	return mnt;
}

static int
staging_open(struct vault_job *vj, struct staging *sg)
{
	const char *base[2];
	struct arc_limits lim;
	size_t i;

	sg->mnt = sg->fd = -1;
	sg->path[0] = '\0';
	vault_limits(vj, &lim);
	if (vj->system_mode && (sg->mnt = private_tmpfs(&lim)) != -1) {
		if ((sg->fd = openat(sg->mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1)
			return 0;
		set_err(vj, 73, "open the staging tmpfs: %s", strerror(errno));
		close(sg->mnt);
		sg->mnt = -1;
		return -1;
	}
	base[0] = vj->system_mode ? "/run" : getenv("XDG_RUNTIME_DIR");
	base[1] = "/dev/shm";
	for (i = 0; i < 2; i++) {
		if (base[i] == NULL || base[i][0] != '/' || !vault_path_on_ram(base[i]) ||
		    (size_t)snprintf(sg->path, sizeof(sg->path), "%s/vaultsync-pull.XXXXXX",
		    base[i]) >= sizeof(sg->path) || mkdtemp(sg->path) == NULL) {
			sg->path[0] = '\0';
			continue;
		}
		if ((sg->fd = open(sg->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC)) != -1)
			return 0;
		(void)rmdir(sg->path);
		sg->path[0] = '\0';
	}
	set_err(vj, 73, "nowhere in RAM to check the pulled archive (%s$XDG_RUNTIME_DIR or "
	    "/dev/shm on tmpfs): its plaintext must never touch a disk",
	    vj->system_mode ? "a private tmpfs, /run, " : "");
	return -1;
}

static void
staging_close(struct staging *sg)
{
	if (sg->fd >= 0) {
		(void)wipe_dir(sg->fd, 0, NULL);
		close(sg->fd);
	}
	if (sg->path[0] != '\0')
		(void)rmdir(sg->path);
	if (sg->mnt >= 0)
		close(sg->mnt);
}

/*
 * A locked vault has nowhere of its own to unpack to: unpack the download
 * into a throwaway staging area, so that it replaces the local archive only
 * if it would unlock.
 */
static int
verify_archive(struct vault_job *vj, struct decoder *d)
{
	struct staging sg;
	int rc = -1;

	if (staging_open(vj, &sg) == 0) {
		if ((rc = unpack_archive(vj, d, "the pulled archive", sg.fd)) != 0)
			err_append(vj, "; the local archive was left as it was");
		staging_close(&sg);
	}
	return rc;
}

static int
hex_decode32(const char *hex, unsigned char out[32])
{
	int i;

	for (i = 0; i < 32; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

/*
 * Make a downloaded archive the vault's: it must decrypt with the vault's
 * identity and unpack completely, under the rules and limits of an unlock,
 * before it replaces the local archive or a single file.  On failure the
 * download is removed and the vault and its archive are as they were.
 */
static void
op_pull(struct vault_job *vj)
{
	char dst[STORE_PATH_MAX], err[256];
	unsigned char sha[32], key[32], cid[32];
	struct decoder *d;
	struct stat st;
	int vfd = -1, none;

	vj->st = vj->prev;
	if ((d = open_decoder(vj, vj->src, &none)) == NULL)
		goto out;
	if (vj->unlocked) {
		if ((vfd = open(vj->v.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
			set_err(vj, 66, "open %s: %s", vj->v.path, strerror(errno));
			goto out;
		}
		if (extract_archive(vj, vfd, d, "the pulled archive", 1) != 0)
			goto out;
	} else if (verify_archive(vj, d) != 0)
		goto out;
	decoder_free(d);
	d = NULL;
	if (hex_decode32(vj->st.sha256, sha) != 0) {
		set_err(vj, 1, "the pulled archive's digest is malformed");
		goto out;
	}
	if (store_key_load(vj->dir, key, 1, err, sizeof(err)) != 0 ||
	    arc_content_id(key, sha, cid) != 0) {
		set_err(vj, 73, "content id: %s", err);
		goto out;
	}
	explicit_bzero(key, sizeof(key));
	hex_encode(cid, 32, vj->st.content_id);
	store_file(vj->dir, "vault.tar.age", dst, sizeof(dst));
	{
		int fd = open(vj->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

		if (fd == -1 || fsync(fd) != 0 || fstat(fd, &st) != 0) {
			set_err(vj, 73, "sync %s: %s", vj->src, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
	}
	if (rename(vj->src, dst) != 0 || store_sync_dir(vj->dir) != 0) {
		set_err(vj, 73, "rename %s: %s", dst, strerror(errno));
		goto out;
	}
	vj->src[0] = '\0';
	vj->st.saved_at = (int64_t)time(NULL);
	vj->st.archive_bytes = (uint64_t)st.st_size;
	vj->st.dirty = 0;
	vj->changed = 1;
	if (store_state_write(vj->dir, &vj->st, err, sizeof(err)) != 0)
		set_err(vj, 73, "%s", err);
out:
	if (vj->src[0] != '\0')
		(void)unlink(vj->src);
	if (vfd >= 0)
		close(vfd);
	decoder_free(d);
}

static void
op_lock(struct vault_job *vj)
{
	char p[STORE_PATH_MAX];
	int vfd;

	if (do_save(vj) != 0) {
		/* Never wipe what could not be saved. */
		size_t n = strlen(vj->err);

		snprintf(vj->err + n, sizeof(vj->err) - n, "; the vault stays unlocked");
		return;
	}
	if ((vfd = open(vj->v.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
		(void)wipe_dir(vfd, 0, NULL);
		close(vfd);
	}
	if (vj->v.mount && vault_path_is_mounted_tmpfs(vj->v.path))
		do_umount(vj->v.path);
	store_file(vj->dir, "unlocked", p, sizeof(p));
	unlink(p);
	(void)store_sync_dir(vj->dir);
}

/* ---- init ---------------------------------------------------------------- */

struct membuf {
	char *p;
	size_t len, cap;
};

static int
mem_write(void *arg, const void *buf, size_t len)
{
	struct membuf *m = arg;

	if (m->len + len > m->cap)
		return -1;
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static void
op_init(struct vault_job *vj)
{
	struct age_identity id;
	struct age_recipient rcp;
	struct age_writer *w = NULL;
	struct age_err ae;
	struct secbuf text;
	struct membuf out;
	unsigned char key[32];
	char line[AGE_RECIPIENT_LEN + 2], err[256];
	int mounted = 0;

	memset(&id, 0, sizeof(id));
	memset(&text, 0, sizeof(text));
	memset(&out, 0, sizeof(out));
	if (store_mkdir(vj->dir, err, sizeof(err)) != 0) {
		set_err(vj, 73, "%s", err);
		goto out;
	}
	if (store_exists(vj->dir, "identity.age")) {
		set_err(vj, 1, "vault %s is already initialised (%s/identity.age exists)",
		    vj->v.name, vj->dir);
		goto out;
	}
	if (age_identity_generate(&id, &ae) != 0 || age_identity_format(&id, &text, &ae) != 0) {
		set_err(vj, 1, "identity: %s", ae.msg);
		goto out;
	}
	out.cap = IDENTITY_MAX;
	if ((out.p = malloc(out.cap)) == NULL) {
		set_err(vj, 1, "out of memory");
		goto out;
	}
	/* identity.age is ciphertext: an ordinary buffer is fine for it. */
	if ((w = age_writer_new_passphrase(vj->pass.p, vj->pass.len, 0, mem_write, &out,
	    &ae)) == NULL || age_writer_write(w, text.p, text.len, &ae) != 0 ||
	    age_writer_finish(w, &ae) != 0) {
		set_err(vj, 1, "encrypt identity: %s", ae.msg);
		goto out;
	}
	secbuf_free(&vj->pass);
	age_identity_to_recipient(&id, &rcp);
	age_recipient_format(&rcp, line, sizeof(line));
	strcat(line, "\n");
	if (store_key_load(vj->dir, key, 1, err, sizeof(err)) != 0 ||
	    store_write_atomic(vj->dir, "recipient", line, strlen(line), 0644, err,
	    sizeof(err)) != 0 ||
	    store_write_atomic(vj->dir, "identity.age", out.p, out.len, 0600, err,
	    sizeof(err)) != 0) {
		set_err(vj, 73, "%s", err);
		goto out;
	}
	explicit_bzero(key, sizeof(key));
	if (do_mount(vj, &mounted) != 0)
		goto out;
	memset(&vj->prev, 0, sizeof(vj->prev));
	if (do_save(vj) != 0)
		goto out;
	if (store_write_atomic(vj->dir, "unlocked", "1\n", 2, 0600, err, sizeof(err)) != 0)
		set_err(vj, 73, "%s", err);
out:
	age_writer_free(w);
	free(out.p);
	secbuf_free(&text);
	age_identity_free(&id);
}

void
vault_op_run(struct job *j)
{
	struct vault_job *vj = (struct vault_job *)j;

	vj->rc = 0;
	vj->err[0] = '\0';
	switch (vj->op) {
	case VOP_SAVE:
		(void)do_save(vj);
		break;
	case VOP_INIT:
		op_init(vj);
		break;
	case VOP_UNLOCK:
		op_unlock(vj);
		break;
	case VOP_LOCK:
		op_lock(vj);
		break;
	case VOP_PULL:
		op_pull(vj);
		break;
	}
	secbuf_free(&vj->pass);
}
