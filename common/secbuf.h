/*
 * Buffers for secrets (passphrases, identities, S3 secrets): page-aligned,
 * mlock'ed so they never reach swap, MADV_DONTDUMP so they never reach a core
 * file, and explicit_bzero'ed before they are unmapped.
 */
#ifndef VS_SECBUF_H
#define VS_SECBUF_H

#include <stddef.h>

struct secbuf {
	unsigned char *p;
	size_t len;		/* bytes in use */
	size_t cap;		/* usable bytes */
	size_t maplen;		/* mapping size, page multiple */
	int locked;		/* mlock succeeded */
};

/* 0 ok, -1 (errno) if the mapping fails.  A failed mlock is reported in ->locked. */
int secbuf_alloc(struct secbuf *b, size_t cap);
/* Wipe, unlock and unmap; safe on a zeroed or already-freed struct. */
void secbuf_free(struct secbuf *b);

#endif
