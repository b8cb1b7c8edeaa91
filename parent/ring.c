/*
 * The save pipeline's stages: the archive file written with writeback
 * started along the way, and the two-core ring of locked slots.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring.h"

#define WRITEBACK_STEP	(8u << 20)	/* start writeback while still encrypting */
#define WRITEBACK_LAG	(32u << 20)	/* in flight to the disk before we wait */

int
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
void
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

void *
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
void *
ring_room(void *arg, size_t *len)
{
	struct ring *r = arg;
	unsigned i = (unsigned)(r->filled % RING_SLOTS);

	*len = RING_SLOT_LEN - r->fill[i];
	return r->slot[i].p + r->fill[i];
}

int
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

int
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
int
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

void
ring_free(struct ring *r)
{
	int i;

	for (i = 0; i < RING_SLOTS; i++)
		secbuf_free(&r->slot[i]);
	EVP_MD_CTX_free(r->md);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}
