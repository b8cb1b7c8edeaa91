/*
 * Private to save.c and ring.c: the save pipeline's stages, a ring of
 * locked slots that two cores hash and seal in stream order, and the
 * archive file the sealed chunks go to.
 */
#ifndef VS_RING_H
#define VS_RING_H

#include <pthread.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "age.h"
#include "secbuf.h"

struct sink {
	int fd;
	int drop;			/* on a disk: drop written-back pages behind us */
	uint64_t written, synced, dropped;
	struct age_writer *w;
	struct age_err ae;
};

/* Write ciphertext to the archive file, starting writeback as it goes: 0 or -1. */
int sink_write(void *arg, const void *buf, size_t len);
/* Close fd on a thread of its own: the last close of a big unlinked file takes time. */
void close_later(int fd);

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

int ring_init(struct ring *r, struct sink *s);
void *ring_helper(void *arg);
/* An arc_sink over the ring: room() is where the next bytes go, write() hands them on. */
void *ring_room(void *arg, size_t *len);
int ring_write(void *arg, const void *buf, size_t len);
/* Flush and stop the helper: 0, or -1 if hashing, sealing or writing failed. */
int ring_finish(struct ring *r, int complete, pthread_t helper);
void ring_free(struct ring *r);

#endif
