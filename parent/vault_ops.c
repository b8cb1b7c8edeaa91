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
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "age.h"
#include "archive.h"
#include "vault_ops.h"

#define STAGING		".vaultsync-staging"
#define WRITEBACK_STEP	(8u << 20)	/* start writeback while still encrypting */
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
	uint64_t written, synced;
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
	if (s->written - s->synced >= WRITEBACK_STEP) {
		(void)sync_file_range(s->fd, (off64_t)s->synced,
		    (off64_t)(s->written - s->synced), SYNC_FILE_RANGE_WRITE);
		s->synced = s->written;
	}
	return 0;
}

/*
 * Two stages on two cores: the job thread walks the vault, builds the tar
 * stream and hashes it; an encryption thread seals and writes it.  They meet
 * in a small ring of locked buffers (plaintext never reaches swap).
 */
#define RING_SLOTS	4
#define RING_SLOT_LEN	(256u << 10)

struct ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct secbuf slot[RING_SLOTS];
	size_t fill[RING_SLOTS];
	unsigned head, tail, count;	/* filled slots: tail..head */
	unsigned cur;			/* the producer's slot */
	int done, failed;
	struct sink *sink;
};

static void *
ring_consumer(void *arg)
{
	struct ring *r = arg;

	for (;;) {
		unsigned i;

		pthread_mutex_lock(&r->mu);
		while (r->count == 0 && !r->done)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->count == 0) {
			pthread_mutex_unlock(&r->mu);
			return NULL;
		}
		i = r->tail;
		pthread_mutex_unlock(&r->mu);
		if (!r->failed && age_writer_write(r->sink->w, r->slot[i].p, r->fill[i],
		    &r->sink->ae) != 0)
			r->failed = 1;
		pthread_mutex_lock(&r->mu);
		r->fill[i] = 0;
		r->tail = (r->tail + 1) % RING_SLOTS;
		r->count--;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
}

/* Hand the current slot to the consumer and wait for a free one. */
static void
ring_push(struct ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->head = (r->head + 1) % RING_SLOTS;
	r->count++;
	pthread_cond_broadcast(&r->cv);
	while (r->count == RING_SLOTS)
		pthread_cond_wait(&r->cv, &r->mu);
	r->cur = r->head;
	pthread_mutex_unlock(&r->mu);
}

static int
ring_write(void *arg, const void *buf, size_t len)
{
	struct ring *r = arg;
	const char *p = buf;

	while (len > 0) {
		size_t room = RING_SLOT_LEN - r->fill[r->cur];
		size_t n = len < room ? len : room;

		if (r->failed)
			return -1;
		memcpy(r->slot[r->cur].p + r->fill[r->cur], p, n);
		r->fill[r->cur] += n;
		p += n;
		len -= n;
		if (r->fill[r->cur] == RING_SLOT_LEN)
			ring_push(r);
	}
	return 0;
}

static int
ring_init(struct ring *r, struct sink *s)
{
	int i;

	memset(r, 0, sizeof(*r));
	r->sink = s;
	for (i = 0; i < RING_SLOTS; i++)
		if (secbuf_alloc(&r->slot[i], RING_SLOT_LEN) != 0)
			return -1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	return 0;
}

/* Flush the partial slot and wait for the consumer to drain everything. */
static void
ring_finish(struct ring *r)
{
	if (r->fill[r->cur] > 0) {
		pthread_mutex_lock(&r->mu);
		r->head = (r->head + 1) % RING_SLOTS;
		r->count++;
		pthread_mutex_unlock(&r->mu);
	}
	pthread_mutex_lock(&r->mu);
	r->done = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void
ring_free(struct ring *r)
{
	int i;

	for (i = 0; i < RING_SLOTS; i++)
		secbuf_free(&r->slot[i]);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

/* Save the vault; sets changed and st.  Returns 0 or -1 (vj->err set). */
static int
do_save(struct vault_job *vj)
{
	struct age_recipient r[STORE_MAX_RECIPIENTS];
	unsigned char key[32], sha[32], cid[32];
	char tmp[STORE_PATH_MAX + 32], dst[STORE_PATH_MAX], err[256];
	struct arc_stats as;
	struct sink s;
	struct ring ring;
	pthread_t consumer;
	size_t nr;
	int vfd, rc = -1, arc_rc;

	memset(&s, 0, sizeof(s));
	s.fd = -1;
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
	if (ring_init(&ring, &s) != 0 || pthread_create(&consumer, NULL, ring_consumer,
	    &ring) != 0) {
		set_err(vj, 1, "cannot start the encryption stage: %s", strerror(errno));
		ring_free(&ring);
		goto fail;
	}
	arc_rc = arc_create(vfd, ring_write, &ring, key, sha, cid, &as, err, sizeof(err));
	ring_finish(&ring);
	pthread_join(consumer, NULL);
	ring_free(&ring);
	if (arc_rc != 0 || ring.failed) {
		set_err(vj, 1, "archive %s: %s%s%s", vj->v.path, arc_rc ? err : "",
		    arc_rc && s.ae.msg[0] ? ": " : "", s.ae.msg);
		goto fail;
	}
	if (age_writer_finish(s.w, &s.ae) != 0) {
		set_err(vj, 1, "encrypt: %s", s.ae.msg);
		goto fail;
	}
	hex_encode(sha, 32, vj->st.sha256);
	vj->files = as.files;
	vj->bytes = as.bytes;
	if (strcmp(vj->st.sha256, vj->prev.sha256) == 0 &&
	    store_exists(vj->dir, "vault.tar.age")) {
		unlink(tmp);		/* unchanged: keep the archive we have */
		rc = 0;
		goto out;
	}
	if (fsync(s.fd) != 0) {
		set_err(vj, 73, "fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	store_file(vj->dir, "vault.tar.age", dst, sizeof(dst));
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
	return rc;
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

/* Remove everything below dfd (not dfd itself), never following links. */
static int
wipe_dir(int dfd, int depth)
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

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dfd, de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub == -1 || wipe_dir(sub, depth + 1) != 0)
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

static int
load_identity(struct vault_job *vj, struct age_identity *id)
{
	struct age_keys k;
	struct age_err ae;
	struct secbuf text;
	char *buf, err[256];
	size_t len, n = 0;
	int rc;

	if (store_read_small(vj->dir, "identity.age", IDENTITY_MAX, &buf, &len, err,
	    sizeof(err)) != 0) {
		set_err(vj, 66, "vault %s is not initialised (%s); run vaultsyncctl init %s",
		    vj->v.name, err, vj->v.name);
		return -1;
	}
	memset(&k, 0, sizeof(k));
	k.pass = vj->pass.p;
	k.passlen = vj->pass.len;
	rc = age_decrypt_to_secbuf(buf, len, &k, IDENTITY_MAX, &text, &ae);
	free(buf);
	secbuf_free(&vj->pass);
	if (rc != 0) {
		set_err(vj, 1, "cannot decrypt identity.age: %s", ae.msg);
		return -1;
	}
	rc = age_identity_parse_file((const char *)text.p, text.len, id, 1, &n, &ae);
	secbuf_free(&text);
	if (rc != 0 || n != 1) {
		set_err(vj, 1, "identity.age does not hold one identity: %s", ae.msg);
		return -1;
	}
	return 0;
}

struct arc_src {
	struct age_reader *r;
	struct age_err ae;
};

static ssize_t
file_read(void *arg, void *buf, size_t len)
{
	ssize_t n;

	do {
		n = read(*(int *)arg, buf, len);
	} while (n == -1 && errno == EINTR);
	return n;
}

static ssize_t
arc_from_age(void *arg, const void **buf, char *err, size_t errlen)
{
	struct arc_src *s = arg;
	const unsigned char *p;
	ssize_t n = age_reader_read(s->r, &p, &s->ae);

	if (n < 0)
		snprintf(err, errlen, "%s", s->ae.msg);
	*buf = p;
	return n;
}

/* Move every entry of the staging dir into the vault root. */
static int
swap_in(int vfd, int sfd)
{
	DIR *d;
	struct dirent *de;
	int fd, rc = 0;

	if ((fd = dup(sfd)) == -1 || (d = fdopendir(fd)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (renameat2(sfd, de->d_name, vfd, de->d_name, RENAME_NOREPLACE) != 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

static int
extract_archive(struct vault_job *vj, int vfd, const struct age_identity *id)
{
	char path[STORE_PATH_MAX], err[256];
	unsigned char sha[32];
	struct arc_limits lim;
	struct arc_stats as;
	struct arc_src src;
	struct age_keys k;
	int afd, sfd = -1, rc = -1;

	store_file(vj->dir, "vault.tar.age", path, sizeof(path));
	if ((afd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;	/* initialised, never saved: an empty vault */
		set_err(vj, 66, "open %s: %s", path, strerror(errno));
		return -1;
	}
	memset(&k, 0, sizeof(k));
	k.ids = id;
	k.nids = 1;
	memset(&src, 0, sizeof(src));
	if ((src.r = age_reader_new(file_read, &afd, &k, &src.ae)) == NULL) {
		set_err(vj, 1, "%s: %s; the vault was left as it was", path, src.ae.msg);
		goto out;
	}
	if (mkdirat(vfd, STAGING, 0700) != 0 ||
	    (sfd = openat(vfd, STAGING, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		set_err(vj, 73, "create staging directory in %s: %s", vj->v.path, strerror(errno));
		goto out;
	}
	memset(&lim, 0, sizeof(lim));
	lim.max_total_bytes = vj->v.mount_size;
	lim.max_entry_bytes = vj->v.mount_size;
	lim.max_entries = 1000000;
	lim.owner_uid = vj->owner_uid;
	lim.owner_gid = vj->owner_gid;
	lim.chown_entries = vj->system_mode;
	memset(&as, 0, sizeof(as));
	if (arc_extract(arc_from_age, &src, sfd, &lim, sha, &as, err, sizeof(err)) != 0) {
		set_err(vj, 1, "%s: %s; the vault was left as it was", path, err);
		goto out;
	}
	if (swap_in(vfd, sfd) != 0) {
		set_err(vj, 1, "moving the extracted files into %s: %s", vj->v.path,
		    strerror(errno));
		goto out;
	}
	hex_encode(sha, 32, vj->st.sha256);
	vj->files = as.files;
	vj->bytes = as.bytes;
	rc = 0;
out:
	if (sfd >= 0) {
		(void)wipe_dir(sfd, 0);
		close(sfd);
		(void)unlinkat(vfd, STAGING, AT_REMOVEDIR);
	}
	age_reader_free(src.r);
	close(afd);
	return rc;
}

static void
op_unlock(struct vault_job *vj)
{
	struct age_identity id;
	char err[256];
	int mounted = 0, vfd = -1;

	memset(&id, 0, sizeof(id));
	vj->st = vj->prev;
	if (load_identity(vj, &id) != 0)
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
	if (extract_archive(vj, vfd, &id) != 0)
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
	age_identity_free(&id);
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
		(void)wipe_dir(vfd, 0);
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
	}
	secbuf_free(&vj->pass);
}
