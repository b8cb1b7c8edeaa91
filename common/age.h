/*
 * age v1 (c2sp.org/age) over OpenSSL 3: X25519 and scrypt recipient stanzas,
 * header MAC, STREAM payload in 64 KiB chunks, constant memory.
 *
 * Decoding is strict: canonical unpadded base64, exact line lengths, one
 * version, bounded headers, no trailing data, no truncation.  No plaintext is
 * handed out for a chunk before its tag has verified.
 *
 * Secrets (identity scalars, file keys, passphrases, derived keys, plaintext
 * chunk buffers) live in secbufs or in stack arrays wiped right after use.
 *
 * Every function returns 0 (or a length) on success and -1 on failure with a
 * human-readable reason in the caller's struct age_err (which may be NULL).
 * Nothing here prints or exits.
 */
#ifndef VS_AGE_H
#define VS_AGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "secbuf.h"

#define AGE_FILE_KEY_LEN	16
#define AGE_CHUNK_LEN		65536		/* plaintext bytes per STREAM chunk */
#define AGE_TAG_LEN		16
#define AGE_HEADER_MAX		65536		/* longest header accepted */
#define AGE_MAX_STANZAS		64		/* stanzas per header, read or written */
#define AGE_MAX_ARGS		16		/* arguments per stanza, incl. the type */
#define AGE_SCRYPT_LOGN_DEFAULT	18		/* work factor written, as age does */
#define AGE_SCRYPT_LOGN_MAX	22		/* default cap on the work factor read */
#define AGE_RECIPIENT_LEN	62		/* strlen("age1...") */
#define AGE_IDENTITY_LEN	74		/* strlen("AGE-SECRET-KEY-1...") */

struct age_err {
	char msg[200];
};

/* An X25519 recipient: the public key. */
struct age_recipient {
	unsigned char pk[32];
};

/* An X25519 identity: the scalar in a secbuf, plus its public key. */
struct age_identity {
	struct secbuf sk;	/* 32 bytes */
	unsigned char pk[32];
};

/* ---- keys ---------------------------------------------------------------- */

/* Parse "age1..." (lowercase Bech32, 32-byte key); surrounding spaces are not allowed. */
/* The value of one character of age's base64 alphabet, or -1. */
int age_b64val(unsigned char c);
int age_recipient_parse(const char *s, struct age_recipient *r, struct age_err *e);
/* Write "age1..." into out (at least AGE_RECIPIENT_LEN + 1 bytes). */
int age_recipient_format(const struct age_recipient *r, char *out, size_t outcap);
/*
 * A recipients file (age -R): one "age1..." per line, blank lines and lines
 * starting with '#' ignored.  Fills at most max entries; 0 entries is an error.
 */
int age_recipients_parse_file(const char *buf, size_t len, struct age_recipient *r,
    size_t max, size_t *n, struct age_err *e);

/* A fresh random identity.  Free with age_identity_free. */
int age_identity_generate(struct age_identity *id, struct age_err *e);
/* Parse one "AGE-SECRET-KEY-1..." string of len bytes (uppercase, as age requires). */
int age_identity_parse(const char *s, size_t len, struct age_identity *id, struct age_err *e);
/*
 * An identity file as age-keygen writes it: "AGE-SECRET-KEY-1..." lines,
 * blank lines and '#' comments ignored, CRLF tolerated.  Fills at most max
 * entries (each to be freed with age_identity_free); none found is an error.
 * Error messages name the line, never its content.
 */
int age_identity_parse_file(const char *buf, size_t len, struct age_identity *ids,
    size_t max, size_t *n, struct age_err *e);
/*
 * The identity file text ("# created: ...", "# public key: age1...", the
 * secret key line), allocated into out (secbuf_free it); out->len is set.
 */
int age_identity_format(const struct age_identity *id, struct secbuf *out, struct age_err *e);
void age_identity_to_recipient(const struct age_identity *id, struct age_recipient *r);
void age_identity_free(struct age_identity *id);

/* ---- what decryption may use ------------------------------------------- */

struct age_keys {
	const struct age_identity *ids;	/* X25519 identities, may be NULL */
	size_t nids;
	const unsigned char *pass;	/* passphrase for scrypt stanzas, may be NULL */
	size_t passlen;
	int max_logn;			/* scrypt cap, 0 = AGE_SCRYPT_LOGN_MAX */
};

/* ---- streaming encryption ------------------------------------------------ */

/* Sink for ciphertext: write all len bytes, return 0, or -1 on failure. */
typedef int (*age_write_fn)(void *arg, const void *buf, size_t len);

struct age_writer;

/*
 * Start a file for n X25519 recipients (1..AGE_MAX_STANZAS) or for a
 * passphrase (logn 0 = AGE_SCRYPT_LOGN_DEFAULT).  The header and payload
 * nonce are written through wr before these return.
 */
struct age_writer *age_writer_new(const struct age_recipient *r, size_t n,
    age_write_fn wr, void *arg, struct age_err *e);
struct age_writer *age_writer_new_passphrase(const unsigned char *pass, size_t passlen,
    int logn, age_write_fn wr, void *arg, struct age_err *e);
/* Feed plaintext; full chunks are sealed and written as they fill. */
int age_writer_write(struct age_writer *w, const void *buf, size_t len, struct age_err *e);
/* Seal and write the final chunk.  The writer is unusable afterwards. */
int age_writer_finish(struct age_writer *w, struct age_err *e);
/* Wipe and release; safe on NULL and after an error. */
void age_writer_free(struct age_writer *w);

/* ---- streaming decryption ------------------------------------------------ */

/* Source of ciphertext: read up to len bytes; 0 at EOF, -1 on failure. */
typedef ssize_t (*age_read_fn)(void *arg, void *buf, size_t len);

struct age_reader;

/*
 * Read and check the header: find the file key with k, verify the header
 * MAC.  The keys are not referenced after this returns.
 */
struct age_reader *age_reader_new(age_read_fn rd, void *arg, const struct age_keys *k,
    struct age_err *e);
/*
 * Next authenticated plaintext chunk: *out points into the reader (valid
 * until the next call).  Returns its length (> 0), 0 once the final chunk
 * has verified and EOF followed it, -1 on error (truncation, a chunk that
 * fails to authenticate, trailing data, I/O).
 */
ssize_t age_reader_read(struct age_reader *r, const unsigned char **out, struct age_err *e);
/*
 * The same, into dst (AGE_CHUNK_LEN bytes), so that a caller can keep
 * several chunks at once; dst is wiped when a chunk fails.
 */
ssize_t age_reader_read_into(struct age_reader *r, unsigned char *dst, struct age_err *e);
void age_reader_free(struct age_reader *r);

/* ---- whole-stream helpers -------------------------------------------------- */

int age_encrypt_fd(int in, int out, const struct age_recipient *r, size_t n, struct age_err *e);
int age_encrypt_passphrase_fd(int in, int out, const unsigned char *pass, size_t passlen,
    int logn, struct age_err *e);
/* Decrypt in to out; on failure only already-authenticated chunks were written. */
int age_decrypt_fd(int in, int out, const struct age_keys *k, struct age_err *e);
/*
 * Decrypt a file held in memory into a fresh secbuf (for identity.age and
 * the like).  The plaintext may not exceed max bytes.
 */
int age_decrypt_to_secbuf(const void *in, size_t inlen, const struct age_keys *k,
    size_t max, struct secbuf *out, struct age_err *e);

/* ---- shared by age.c and age_stream.c; not for callers ---------------------- */

void age_seterr(struct age_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int age_hkdf(const unsigned char *ikm, size_t ikmlen, const unsigned char *salt,
    size_t saltlen, const char *info, unsigned char *out, size_t outlen);
/*
 * Build the header (through the MAC line) for a fresh file key into hdr.
 * Exactly one of (r, n > 0) and pass is used.
 */
int age_header_build(const unsigned char fk[AGE_FILE_KEY_LEN], const struct age_recipient *r,
    size_t n, const unsigned char *pass, size_t passlen, int logn,
    unsigned char *hdr, size_t cap, size_t *hdrlen, struct age_err *e);
/* Parse a complete header (hdr ends with the MAC line), unwrap, verify the MAC. */
int age_header_open(const unsigned char *hdr, size_t len, const struct age_keys *k,
    unsigned char fk[AGE_FILE_KEY_LEN], struct age_err *e);

#endif
