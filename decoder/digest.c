/*
 * The archive's plaintext for the tar parser, and the SHA-256 of it on a
 * second thread.  The digest (the stream's content id for the parent) is
 * the longest job per byte here and needs nothing from the parser, so it
 * runs beside it: each chunk is decrypted and authenticated into a slot of
 * a small ring, handed to the parser and to the hashing thread, and the slot
 * is decrypted into again only once the thread has hashed it and the parser
 * has asked for a later chunk (libarchive lets go of a block when it asks
 * for the next one).  Every byte the parser is given is hashed, in order,
 * exactly once, as arc_parse would have done itself.  Where no thread starts
 * (RLIMIT_NPROC 0 in system mode) the chunk is hashed here, in line.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <openssl/evp.h>

#include "archive.h"
#include "decoder.h"

#define SLOTS	16
#define BATCH	(SLOTS / 2)	/* the thread wakes for this many chunks, or the end */

struct digest_src {
	struct age_reader *r;
	unsigned char *slot;		/* SLOTS chunks of plaintext */
	size_t len[SLOTS];
	EVP_MD_CTX *md;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int threaded;
	uint64_t made, hashed;		/* chunks handed out, and hashed */
	int done;			/* no more chunks will come */
	int hasher_waits, reader_waits;	/* a wakeup is owed only to a waiter: no futex a chunk */
	int hash_failed;
};

static void *
hasher(void *arg)
{
	struct digest_src *s = arg;
	const unsigned char *p;
	size_t n;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		/* Caught up: sleep until a batch is waiting (or the end), then drain. */
		if (s->hashed == s->made) {
			while (s->made - s->hashed < BATCH && !s->done) {
				s->hasher_waits = 1;
				pthread_cond_wait(&s->cv, &s->mu);
				s->hasher_waits = 0;
			}
			if (s->hashed == s->made)
				break;
		}
		p = s->slot + (s->hashed % SLOTS) * AGE_CHUNK_LEN;
		n = s->len[s->hashed % SLOTS];
		pthread_mutex_unlock(&s->mu);
		if (EVP_DigestUpdate(s->md, p, n) != 1)
			s->hash_failed = 1;	/* read after the join */
		pthread_mutex_lock(&s->mu);
		s->hashed++;
		if (s->reader_waits && s->made - s->hashed <= SLOTS - BATCH)
			pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

struct digest_src *
digest_src_new(struct age_reader *r)
{
	struct digest_src *s;
	void *p;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	p = mmap(NULL, SLOTS * AGE_CHUNK_LEN, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cv);
		free(s);
		return NULL;
	}
	(void)madvise(p, SLOTS * AGE_CHUNK_LEN, MADV_DONTDUMP);
	(void)mlock(p, SLOTS * AGE_CHUNK_LEN);
	s->slot = p;
	s->r = r;
	if ((s->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
		digest_src_free(s);
		return NULL;
	}
	s->threaded = pthread_create(&s->th, NULL, hasher, s) == 0;
	return s;
}

ssize_t
digest_src_read(void *arg, const void **buf, char *err, size_t errlen)
{
	struct digest_src *s = arg;
	struct age_err ae;
	unsigned char *p;
	ssize_t n;

	*buf = NULL;
	pthread_mutex_lock(&s->mu);
	/* The slot's last chunk (SLOTS back) must be hashed; the parser is past it. */
	while (s->threaded && s->made - s->hashed >= SLOTS) {
		s->reader_waits = 1;
		pthread_cond_wait(&s->cv, &s->mu);
		s->reader_waits = 0;
	}
	pthread_mutex_unlock(&s->mu);
	p = s->slot + (s->made % SLOTS) * AGE_CHUNK_LEN;
	ae.msg[0] = '\0';
	if ((n = age_reader_read_into(s->r, p, &ae)) < 0)
		arc_seterr(err, errlen, "%s", ae.msg[0] != '\0' ? ae.msg : "decryption failed");
	if (n <= 0)
		return n;
	if (!s->threaded) {
		if (EVP_DigestUpdate(s->md, p, (size_t)n) != 1) {
			arc_seterr(err, errlen, "hashing the archive failed");
			return -1;
		}
	} else {
		pthread_mutex_lock(&s->mu);
		s->len[s->made % SLOTS] = (size_t)n;
		s->made++;
		if (s->hasher_waits && s->made - s->hashed >= BATCH)
			pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	*buf = p;
	return n;
}

/* Let the thread hash what is left and end. */
static void
stop(struct digest_src *s)
{
	if (!s->threaded)
		return;
	pthread_mutex_lock(&s->mu);
	s->done = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->th, NULL);
	s->threaded = 0;
}

int
digest_src_finish(struct digest_src *s, unsigned char sha256[32])
{
	unsigned int len = 0;

	stop(s);
	if (s->hash_failed || EVP_DigestFinal_ex(s->md, sha256, &len) != 1 || len != 32)
		return -1;
	return 0;
}

void
digest_src_free(struct digest_src *s)
{
	if (s == NULL)
		return;
	stop(s);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	EVP_MD_CTX_free(s->md);
	explicit_bzero(s->slot, SLOTS * AGE_CHUNK_LEN);
	(void)munmap(s->slot, SLOTS * AGE_CHUNK_LEN);
	free(s);
}
