/*
 * A structural scan of an age v1 file that needs no key: the version line,
 * the recipient stanzas, the "---" MAC line, and whether the length of what
 * follows can be a STREAM payload of 64 KiB chunks.  It proves that a file
 * is well formed, never that it decrypts: the header MAC needs the file key.
 *
 * Fixed rules in one bounded pass over at most AGE_HEADER_MAX bytes; the
 * rest of the file is judged by its length alone.  Returns 0, or -1 with
 * the first rule broken in why.
 */
#ifndef VS_AGESCAN_H
#define VS_AGESCAN_H

#include <stddef.h>
#include <stdint.h>

struct agescan {
	size_t header_len;	/* bytes through the MAC line's newline */
	unsigned nstanzas;
	unsigned nx25519;	/* of which X25519 */
	uint64_t chunks;	/* STREAM chunks the payload's length implies */
};

/*
 * head: the first min(total, AGE_HEADER_MAX) bytes of the file (fewer makes
 * a header that does not end within them look too long); total: the file's
 * length.
 */
int agescan(const unsigned char *head, size_t headlen, uint64_t total, struct agescan *s,
    char *why, size_t whylen);

#endif
