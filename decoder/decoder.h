/* The decoder's own modules: main.c uses them. */
#ifndef VS_DECODER_H
#define VS_DECODER_H

#include <stddef.h>
#include <sys/types.h>

#include "age.h"

/* The data pipe, fd: 0 (it falls back to plain writes where it must). */
int dataout_open(int fd);
/* All of buf onto the pipe: 0, or -1 with errno. */
int dataout_write(const void *buf, size_t len);

struct digest_src;
/* The archive's plaintext chunks from r, hashed on a second thread where one starts. */
struct digest_src *digest_src_new(struct age_reader *r);
/* An arc_read_fn: pass the digest_src as arg. */
ssize_t digest_src_read(void *src, const void **buf, char *err, size_t errlen);
/* The SHA-256 of every chunk handed out: 0, or -1. */
int digest_src_finish(struct digest_src *s, unsigned char sha256[32]);
void digest_src_free(struct digest_src *s);

#endif
