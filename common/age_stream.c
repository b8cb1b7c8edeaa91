/*
 * age v1 payload: a 16-byte nonce, then STREAM over ChaCha20-Poly1305 in
 * 64 KiB chunks, each with a 12-byte nonce of an 11-byte big-endian counter
 * and a last-chunk flag.  One EVP_CIPHER_CTX per file, rekeyed by IV only.
 *
 * Writer and reader structs live in secbufs: they hold the plaintext chunk.
 * A full chunk is only known to be final once EOF follows it, so both sides
 * hold one chunk back until they see another byte or the end.
 *
 * The writer seals into a ciphertext buffer of OUT_CHUNKS chunks (512 KiB)
 * and hands it to the sink in one piece: a write per chunk costs a syscall
 * and the sink's bookkeeping every 64 KiB, which shows at GB/s.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "age.h"

#define NONCE_LEN	16
#define V1_PREFIX	"age-encryption.org/v1\n"
#define V1_PREFIX_LEN	(sizeof(V1_PREFIX) - 1)
#define ENC_CHUNK	(AGE_CHUNK_LEN + AGE_TAG_LEN)
#define OUT_CHUNKS	8
#define OUT_CAP		(OUT_CHUNKS * ENC_CHUNK)

struct age_writer {
	struct secbuf mem;		/* the mapping this struct lives in */
	EVP_CIPHER_CTX *ctx;
	age_write_fn wr;
	void *arg;
	unsigned char *out;		/* sealed chunks not yet written: ciphertext only */
	size_t outlen;
	uint64_t counter;
	size_t fill;			/* plaintext bytes waiting in buf */
	int state;			/* 0 open, 1 finished, -1 failed */
	unsigned char buf[ENC_CHUNK];	/* a chunk, plus the lookahead byte of encrypt_from_fd */
};

struct age_reader {
	struct secbuf mem;
	EVP_CIPHER_CTX *ctx;
	age_read_fn rd;
	void *arg;
	unsigned char *cbuf;		/* ENC_CHUNK + 1: one byte of lookahead */
	size_t have;
	uint64_t counter;
	int eof;
	int state;			/* 0 reading, 1 done, -1 failed */
	unsigned char pbuf[AGE_CHUNK_LEN];
};

static void
stream_nonce(unsigned char n[12], uint64_t counter, int last)
{
	int i;

	memset(n, 0, 3);
	for (i = 0; i < 8; i++)
		n[3 + i] = (unsigned char)(counter >> (56 - 8 * i));
	n[11] = last ? 1 : 0;
}

static EVP_CIPHER_CTX *
payload_ctx(const unsigned char fk[AGE_FILE_KEY_LEN], const unsigned char nonce[NONCE_LEN],
    int enc)
{
	unsigned char key[32];
	EVP_CIPHER_CTX *ctx;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return NULL;
	if (age_hkdf(fk, AGE_FILE_KEY_LEN, nonce, NONCE_LEN, "payload", key, sizeof(key)) != 0 ||
	    EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, NULL, enc) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		ctx = NULL;
	}
	explicit_bzero(key, sizeof(key));
	return ctx;
}

/* ---- writer ------------------------------------------------------------------ */

static struct age_writer *
writer_new(const struct age_recipient *r, size_t n, const unsigned char *pass,
    size_t passlen, int logn, age_write_fn wr, void *arg, struct age_err *e)
{
	unsigned char fk[AGE_FILE_KEY_LEN], *hdr = NULL;
	struct age_writer *w = NULL;
	struct secbuf mem;
	size_t hlen = 0, cap = 4096 + n * 128;

	if (pass == NULL && n > AGE_MAX_STANZAS) {
		age_seterr(e, "too many recipients (at most %d)", AGE_MAX_STANZAS);
		return NULL;
	}
	if (secbuf_alloc(&mem, sizeof(*w)) != 0) {
		age_seterr(e, "cannot allocate secure memory");
		return NULL;
	}
	w = (struct age_writer *)(void *)mem.p;
	w->mem = mem;
	w->wr = wr;
	w->arg = arg;
	w->state = -1;
	if ((hdr = malloc(cap)) == NULL || (w->out = malloc(OUT_CAP)) == NULL) {
		age_seterr(e, "out of memory");
		goto fail;
	}
	if (RAND_priv_bytes(fk, sizeof(fk)) != 1) {
		age_seterr(e, "random number generator failed");
		goto fail;
	}
	if (age_header_build(fk, r, n, pass, passlen, logn, hdr, cap - NONCE_LEN, &hlen, e) != 0)
		goto fail;
	if (RAND_bytes(hdr + hlen, NONCE_LEN) != 1) {
		age_seterr(e, "random number generator failed");
		goto fail;
	}
	if ((w->ctx = payload_ctx(fk, hdr + hlen, 1)) == NULL) {
		age_seterr(e, "cannot set up the payload cipher");
		goto fail;
	}
	if (wr(arg, hdr, hlen + NONCE_LEN) != 0) {
		age_seterr(e, "write failed");
		goto fail;
	}
	explicit_bzero(fk, sizeof(fk));
	free(hdr);
	w->state = 0;
	return w;
fail:
	explicit_bzero(fk, sizeof(fk));
	free(hdr);
	age_writer_free(w);
	return NULL;
}

struct age_writer *
age_writer_new(const struct age_recipient *r, size_t n, age_write_fn wr, void *arg,
    struct age_err *e)
{
	if (n == 0) {
		age_seterr(e, "no recipients");
		return NULL;
	}
	return writer_new(r, n, NULL, 0, 0, wr, arg, e);
}

struct age_writer *
age_writer_new_passphrase(const unsigned char *pass, size_t passlen, int logn,
    age_write_fn wr, void *arg, struct age_err *e)
{
	if (pass == NULL) {
		age_seterr(e, "no passphrase");
		return NULL;
	}
	return writer_new(NULL, 0, pass, passlen, logn > 0 ? logn : AGE_SCRYPT_LOGN_DEFAULT,
	    wr, arg, e);
}

static int
writer_flush(struct age_writer *w, struct age_err *e)
{
	if (w->outlen == 0)
		return 0;
	if (w->wr(w->arg, w->out, w->outlen) != 0) {
		age_seterr(e, "write failed");
		w->state = -1;
		explicit_bzero(w->buf, sizeof(w->buf));
		return -1;
	}
	w->outlen = 0;
	return 0;
}

/* Seal n bytes from src (w->buf itself, or caller memory) onto the output buffer. */
static int
writer_seal(struct age_writer *w, const unsigned char *src, size_t n, int last,
    struct age_err *e)
{
	unsigned char nonce[12], *dst;
	int len = 0, fin = 0;

	if (w->outlen + n + AGE_TAG_LEN > OUT_CAP && writer_flush(w, e) != 0)
		return -1;
	dst = w->out + w->outlen;
	stream_nonce(nonce, w->counter, last);
	if (EVP_EncryptInit_ex(w->ctx, NULL, NULL, NULL, nonce) != 1 ||
	    (n > 0 && EVP_EncryptUpdate(w->ctx, dst, &len, src, (int)n) != 1) ||
	    (size_t)len != n || EVP_EncryptFinal_ex(w->ctx, dst + len, &fin) != 1 ||
	    fin != 0 ||
	    EVP_CIPHER_CTX_ctrl(w->ctx, EVP_CTRL_AEAD_GET_TAG, AGE_TAG_LEN, dst + n) != 1) {
		age_seterr(e, "payload encryption failed");
		w->state = -1;
		explicit_bzero(w->buf, sizeof(w->buf));
		return -1;
	}
	w->outlen += n + AGE_TAG_LEN;
	w->counter++;
	w->fill = 0;
	return 0;
}

int
age_writer_write(struct age_writer *w, const void *buf, size_t len, struct age_err *e)
{
	const unsigned char *p = buf;
	size_t n;

	if (w == NULL || w->state != 0) {
		age_seterr(e, "writer is not open");
		return -1;
	}
	while (len > 0) {
		/* A full chunk followed by more data is not the last one. */
		if (w->fill == AGE_CHUNK_LEN && writer_seal(w, w->buf, w->fill, 0, e) != 0)
			return -1;
		if (w->fill == 0 && len > AGE_CHUNK_LEN) {
			/* Seal straight from the caller's memory, saving a copy. */
			if (writer_seal(w, p, AGE_CHUNK_LEN, 0, e) != 0)
				return -1;
			p += AGE_CHUNK_LEN;
			len -= AGE_CHUNK_LEN;
			continue;
		}
		n = AGE_CHUNK_LEN - w->fill;
		if (n > len)
			n = len;
		memcpy(w->buf + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
	}
	/* What this call sealed reaches the sink before it returns. */
	return writer_flush(w, e);
}

int
age_writer_finish(struct age_writer *w, struct age_err *e)
{
	if (w == NULL || w->state != 0) {
		age_seterr(e, "writer is not open");
		return -1;
	}
	/* Empty only if the whole payload is: a held-back chunk is never empty. */
	if (writer_seal(w, w->buf, w->fill, 1, e) != 0 || writer_flush(w, e) != 0)
		return -1;
	w->state = 1;
	explicit_bzero(w->buf, sizeof(w->buf));
	return 0;
}

void
age_writer_free(struct age_writer *w)
{
	struct secbuf mem;

	if (w == NULL)
		return;
	EVP_CIPHER_CTX_free(w->ctx);
	free(w->out);
	mem = w->mem;
	secbuf_free(&mem);
}

/* ---- reader ------------------------------------------------------------------ */

static ssize_t
reader_fill(struct age_reader *r, unsigned char *buf, size_t cap, size_t *have,
    struct age_err *e)
{
	ssize_t n;

	while (!r->eof && *have < cap) {
		n = r->rd(r->arg, buf + *have, cap - *have);
		if (n < 0) {
			age_seterr(e, "read failed");
			return -1;
		}
		if (n == 0)
			r->eof = 1;
		*have += (size_t)n;
	}
	return 0;
}

/* A header known to be bad: let the parser say why. */
static void
header_error(const unsigned char *hdr, size_t len, const struct age_keys *k,
    unsigned char fk[AGE_FILE_KEY_LEN], struct age_err *e)
{
	if (age_header_open(hdr, len, k, fk, e) == 0) {
		explicit_bzero(fk, AGE_FILE_KEY_LEN);
		age_seterr(e, "malformed header");
	}
}

/*
 * Read up to the end of the MAC line, open the header, and leave whatever
 * followed it in cbuf.
 */
static int
reader_header(struct age_reader *r, const struct age_keys *k,
    unsigned char fk[AGE_FILE_KEY_LEN], struct age_err *e)
{
	unsigned char *hdr, *nl;
	size_t hlen = 0, line = 0, end = 0;
	ssize_t n;
	int ret = -1;

	if ((hdr = malloc(AGE_HEADER_MAX)) == NULL) {
		age_seterr(e, "out of memory");
		return -1;
	}
	while (end == 0) {
		/* Fail fast on input that is not age v1 at all. */
		if (hlen > 0 && memcmp(hdr, V1_PREFIX, hlen < V1_PREFIX_LEN ? hlen :
		    V1_PREFIX_LEN) != 0) {
			header_error(hdr, hlen, k, fk, e);
			goto out;
		}
		/* Complete lines since the last read: is one of them the MAC line? */
		while (end == 0 && (nl = memchr(hdr + line, '\n', hlen - line)) != NULL) {
			if (line > 0 && nl - (hdr + line) >= 3 && memcmp(hdr + line, "---", 3) == 0)
				end = (size_t)(nl - hdr) + 1;
			line = (size_t)(nl - hdr) + 1;
		}
		if (end != 0)
			break;
		if (hlen == AGE_HEADER_MAX) {
			age_seterr(e, "header too large (over %d bytes)", AGE_HEADER_MAX);
			goto out;
		}
		n = r->rd(r->arg, hdr + hlen, AGE_HEADER_MAX - hlen);
		if (n < 0) {
			age_seterr(e, "read failed");
			goto out;
		}
		if (n == 0) {
			if (hlen == 0)
				age_seterr(e, "empty input");
			else
				header_error(hdr, hlen, k, fk, e);
			goto out;
		}
		hlen += (size_t)n;
	}
	if (age_header_open(hdr, end, k, fk, e) != 0)
		goto out;
	memcpy(r->cbuf, hdr + end, hlen - end);
	r->have = hlen - end;
	ret = 0;
out:
	free(hdr);
	return ret;
}

struct age_reader *
age_reader_new(age_read_fn rd, void *arg, const struct age_keys *k, struct age_err *e)
{
	unsigned char fk[AGE_FILE_KEY_LEN], nonce[NONCE_LEN];
	struct age_reader *r;
	struct secbuf mem;

	if (secbuf_alloc(&mem, sizeof(*r)) != 0) {
		age_seterr(e, "cannot allocate secure memory");
		return NULL;
	}
	r = (struct age_reader *)(void *)mem.p;
	r->mem = mem;
	r->rd = rd;
	r->arg = arg;
	r->state = -1;
	if ((r->cbuf = malloc(ENC_CHUNK + 1)) == NULL) {
		age_seterr(e, "out of memory");
		goto fail;
	}
	if (reader_header(r, k, fk, e) != 0)
		goto fail;
	if (reader_fill(r, r->cbuf, NONCE_LEN, &r->have, e) != 0)
		goto fail;
	if (r->have < NONCE_LEN) {
		age_seterr(e, "truncated payload (no nonce)");
		goto fail;
	}
	memcpy(nonce, r->cbuf, NONCE_LEN);
	r->have -= NONCE_LEN;
	memmove(r->cbuf, r->cbuf + NONCE_LEN, r->have);
	if ((r->ctx = payload_ctx(fk, nonce, 0)) == NULL) {
		age_seterr(e, "cannot set up the payload cipher");
		goto fail;
	}
	explicit_bzero(fk, sizeof(fk));
	r->state = 0;
	return r;
fail:
	explicit_bzero(fk, sizeof(fk));
	age_reader_free(r);
	return NULL;
}

/* Open n sealed bytes of cbuf into dst; wipes dst when the tag does not verify. */
static int
reader_open(struct age_reader *r, size_t n, int last, unsigned char *dst)
{
	unsigned char nonce[12];
	size_t plen = n - AGE_TAG_LEN;
	int len = 0, fin = 0;

	stream_nonce(nonce, r->counter, last);
	if (EVP_DecryptInit_ex(r->ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_AEAD_SET_TAG, AGE_TAG_LEN,
	    r->cbuf + plen) != 1 ||
	    (plen > 0 && EVP_DecryptUpdate(r->ctx, dst, &len, r->cbuf, (int)plen) != 1) ||
	    (size_t)len != plen || EVP_DecryptFinal_ex(r->ctx, dst + len, &fin) != 1 ||
	    fin != 0) {
		explicit_bzero(dst, plen);
		return -1;
	}
	return 0;
}

static ssize_t
reader_fail(struct age_reader *r, unsigned char *dst)
{
	r->state = -1;
	explicit_bzero(dst, AGE_CHUNK_LEN);
	return -1;
}

ssize_t
age_reader_read(struct age_reader *r, const unsigned char **out, struct age_err *e)
{
	ssize_t n;

	*out = NULL;
	if (r == NULL)
		return age_reader_read_into(r, NULL, e);
	if ((n = age_reader_read_into(r, r->pbuf, e)) > 0)
		*out = r->pbuf;
	return n;
}

ssize_t
age_reader_read_into(struct age_reader *r, unsigned char *dst, struct age_err *e)
{
	unsigned long long idx;
	size_t n;

	if (r == NULL || r->state < 0) {
		age_seterr(e, "reader failed earlier");
		return -1;
	}
	if (r->state == 1)
		return 0;
	idx = (unsigned long long)r->counter;
	if (reader_fill(r, r->cbuf, ENC_CHUNK + 1, &r->have, e) != 0)
		return reader_fail(r, dst);
	if (r->have == ENC_CHUNK + 1) {
		/* More data follows, so this must be a full non-final chunk. */
		if (reader_open(r, ENC_CHUNK, 0, dst) != 0) {
			if (reader_open(r, ENC_CHUNK, 1, dst) == 0) {
				explicit_bzero(dst, AGE_CHUNK_LEN);
				age_seterr(e, "trailing data after the final chunk");
			} else
				age_seterr(e, "chunk %llu failed to authenticate", idx);
			return reader_fail(r, dst);
		}
		r->cbuf[0] = r->cbuf[ENC_CHUNK];
		r->have = 1;
		r->counter++;
		return AGE_CHUNK_LEN;
	}
	/* EOF: what is left must be the final chunk. */
	n = r->have;
	if (n < AGE_TAG_LEN) {
		age_seterr(e, n == 0 ? "truncated payload (final chunk missing)" :
		    "truncated payload");
		return reader_fail(r, dst);
	}
	if (reader_open(r, n, 1, dst) != 0) {
		if (n == ENC_CHUNK && reader_open(r, n, 0, dst) == 0) {
			explicit_bzero(dst, AGE_CHUNK_LEN);
			age_seterr(e, "truncated payload (final chunk missing)");
		} else
			age_seterr(e, "chunk %llu failed to authenticate", idx);
		return reader_fail(r, dst);
	}
	if (n == AGE_TAG_LEN && r->counter > 0) {
		age_seterr(e, "empty final chunk after a full chunk");
		return reader_fail(r, dst);
	}
	r->state = 1;
	r->have = 0;
	return (ssize_t)(n - AGE_TAG_LEN);
}

void
age_reader_free(struct age_reader *r)
{
	struct secbuf mem;

	if (r == NULL)
		return;
	EVP_CIPHER_CTX_free(r->ctx);
	free(r->cbuf);
	mem = r->mem;
	secbuf_free(&mem);
}

/* ---- whole-stream helpers ------------------------------------------------------ */

static int
fd_write(void *arg, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int fd = *(int *)arg;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static ssize_t
fd_read(void *arg, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(*(int *)arg, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Reads straight into the writer's chunk buffer: no plaintext copy elsewhere. */
static int
encrypt_from_fd(struct age_writer *w, int in, struct age_err *e)
{
	unsigned char extra;
	ssize_t n;

	if (w == NULL)
		return -1;
	for (;;) {
		n = fd_read(&in, w->buf + w->fill, AGE_CHUNK_LEN + 1 - w->fill);
		if (n < 0) {
			age_seterr(e, "read failed");
			w->state = -1;
			return -1;
		}
		if (n == 0)
			break;
		w->fill += (size_t)n;
		if (w->fill == AGE_CHUNK_LEN + 1) {
			/* The byte past a full chunk proves it is not the last. */
			extra = w->buf[AGE_CHUNK_LEN];
			if (writer_seal(w, w->buf, AGE_CHUNK_LEN, 0, e) != 0)
				return -1;
			w->buf[0] = extra;
			w->fill = 1;
			extra = 0;
		}
	}
	return age_writer_finish(w, e);
}

int
age_encrypt_fd(int in, int out, const struct age_recipient *r, size_t n, struct age_err *e)
{
	struct age_writer *w = age_writer_new(r, n, fd_write, &out, e);
	int ret = encrypt_from_fd(w, in, e);

	age_writer_free(w);
	return ret;
}

int
age_encrypt_passphrase_fd(int in, int out, const unsigned char *pass, size_t passlen,
    int logn, struct age_err *e)
{
	struct age_writer *w = age_writer_new_passphrase(pass, passlen, logn, fd_write, &out, e);
	int ret = encrypt_from_fd(w, in, e);

	age_writer_free(w);
	return ret;
}

int
age_decrypt_fd(int in, int out, const struct age_keys *k, struct age_err *e)
{
	struct age_reader *r = age_reader_new(fd_read, &in, k, e);
	const unsigned char *p;
	ssize_t n;
	int ret = -1;

	if (r == NULL)
		return -1;
	while ((n = age_reader_read(r, &p, e)) > 0)
		if (fd_write(&out, p, (size_t)n) != 0) {
			age_seterr(e, "write failed");
			goto out;
		}
	if (n == 0)
		ret = 0;
out:
	age_reader_free(r);
	return ret;
}

struct memsrc {
	const unsigned char *p;
	size_t left;
};

static ssize_t
mem_read(void *arg, void *buf, size_t len)
{
	struct memsrc *m = arg;

	if (len > m->left)
		len = m->left;
	memcpy(buf, m->p, len);
	m->p += len;
	m->left -= len;
	return (ssize_t)len;
}

int
age_decrypt_to_secbuf(const void *in, size_t inlen, const struct age_keys *k,
    size_t max, struct secbuf *out, struct age_err *e)
{
	struct memsrc m = { in, inlen };
	struct age_reader *r;
	const unsigned char *p;
	ssize_t n;

	if (secbuf_alloc(out, max > 0 ? max : 1) != 0) {
		age_seterr(e, "cannot allocate secure memory");
		return -1;
	}
	if ((r = age_reader_new(mem_read, &m, k, e)) == NULL)
		goto fail;
	while ((n = age_reader_read(r, &p, e)) > 0) {
		if ((size_t)n > max - out->len) {
			age_seterr(e, "plaintext larger than %zu bytes", max);
			break;
		}
		memcpy(out->p + out->len, p, (size_t)n);
		out->len += (size_t)n;
	}
	age_reader_free(r);
	if (n == 0)
		return 0;
fail:
	secbuf_free(out);
	return -1;
}
