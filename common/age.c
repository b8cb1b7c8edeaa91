/*
 * age v1 keys and header: Bech32 keys, canonical base64, the X25519 and
 * scrypt recipient stanzas and the header MAC.  The payload is age_stream.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "age.h"
#include "agescrypt.h"
#include "bech32.h"

#define V1_LINE		"age-encryption.org/v1"
#define X25519_LABEL	"age-encryption.org/v1/X25519"
#define SCRYPT_LABEL	"age-encryption.org/v1/scrypt"
#define IDENTITY_HRP	"AGE-SECRET-KEY-"
#define RECIPIENT_HRP	"age"
#define WRAPPED_LEN	(AGE_FILE_KEY_LEN + AGE_TAG_LEN)
#define SCRYPT_SALT_LEN	16
#define B64_LINE	64

void
age_seterr(struct age_err *e, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

/* ---- base64: standard alphabet, no padding, canonical --------------------- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
age_b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static size_t
b64_enclen(size_t n)
{
	return (n * 4 + 2) / 3;
}

/* Writes b64_enclen(n) characters, no NUL. */
static void
b64_encode(const unsigned char *in, size_t n, char *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			*out++ = b64chars[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		*out++ = b64chars[(acc << (6 - bits)) & 63];
}

/*
 * Decode n characters, skipping '\n' (bodies span lines).  Rejects anything
 * outside the alphabet (so '=' too), impossible lengths and non-zero
 * trailing bits.  out may be NULL to only validate and count.
 */
static int
b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i, o = 0, nchars = 0;
	int v;

	for (i = 0; i < n; i++) {
		if (in[i] == '\n')
			continue;
		if ((v = age_b64val((unsigned char)in[i])) < 0)
			return -1;
		nchars++;
		acc = ((acc << 6) | (uint32_t)v) & 0xffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (out != NULL) {
				if (o >= cap)
					return -1;
				out[o] = (unsigned char)(acc >> bits);
			}
			o++;
		}
	}
	if (nchars % 4 == 1 || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	*outlen = o;
	return 0;
}

/* Exactly len bytes from an argument, or -1. */
static int
b64_decode_exact(const char *in, size_t n, unsigned char *out, size_t len)
{
	size_t got;

	if (n != b64_enclen(len) || b64_decode(in, n, out, len, &got) != 0 || got != len)
		return -1;
	return 0;
}

/* ---- primitives over OpenSSL EVP ------------------------------------------- */

int
age_hkdf(const unsigned char *ikm, size_t ikmlen, const unsigned char *salt,
    size_t saltlen, const char *info, unsigned char *out, size_t outlen)
{
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf;
	int ret = -1;

	if ((kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL)) == NULL)
		return -1;
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (kctx == NULL)
		return -1;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
	/* An absent salt is HashLen zeros, which HMAC treats like the empty salt. */
	if (saltlen > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
		    (void *)salt, saltlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
		ret = 0;
	EVP_KDF_CTX_free(kctx);
	return ret;
}

static int
scrypt_key(const unsigned char *pass, size_t passlen, const unsigned char salt[SCRYPT_SALT_LEN],
    int logn, unsigned char out[32])
{
	unsigned char fullsalt[sizeof(SCRYPT_LABEL) - 1 + SCRYPT_SALT_LEN];

	memcpy(fullsalt, SCRYPT_LABEL, sizeof(SCRYPT_LABEL) - 1);
	memcpy(fullsalt + sizeof(SCRYPT_LABEL) - 1, salt, SCRYPT_SALT_LEN);
	return age_scrypt(pass, passlen, fullsalt, sizeof(fullsalt), logn, out, 32);
}

/* ChaCha20-Poly1305 with the all-zero nonce, as both stanza types wrap the file key. */
static int
aead_zero_nonce(int enc, const unsigned char key[32], const unsigned char *in,
    unsigned char *out)
{
	static const unsigned char nonce[12];
	unsigned char tag[AGE_TAG_LEN];
	EVP_CIPHER_CTX *ctx;
	int len, ret = -1;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, nonce, enc) != 1)
		goto out;
	if (!enc) {
		memcpy(tag, in + AGE_FILE_KEY_LEN, AGE_TAG_LEN);
		if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, AGE_TAG_LEN, tag) != 1)
			goto out;
	}
	if (EVP_CipherUpdate(ctx, out, &len, in, AGE_FILE_KEY_LEN) != 1 ||
	    len != AGE_FILE_KEY_LEN || EVP_CipherFinal_ex(ctx, out + len, &len) != 1)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, AGE_TAG_LEN,
	    out + AGE_FILE_KEY_LEN) != 1)
		goto out;
	ret = 0;
out:
	if (ret != 0 && !enc)
		explicit_bzero(out, AGE_FILE_KEY_LEN);
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

static int
all_zero(const unsigned char *p, size_t n)
{
	unsigned char acc = 0;
	size_t i;

	for (i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* X25519(sk, peer); -2 if the result is all zeros (OpenSSL refuses it too). */
static int
x25519(const unsigned char sk[32], const unsigned char peer[32], unsigned char out[32])
{
	EVP_PKEY *k = NULL, *p = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = 32;
	int ret = -1;

	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, 32);
	p = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
	if (k == NULL || p == NULL || (ctx = EVP_PKEY_CTX_new(k, NULL)) == NULL)
		goto out;
	if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer_ex(ctx, p, 0) != 1)
		goto out;
	if (EVP_PKEY_derive(ctx, out, &len) != 1 || len != 32 || all_zero(out, 32)) {
		explicit_bzero(out, 32);
		ret = -2;
		goto out;
	}
	ret = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(k);
	EVP_PKEY_free(p);
	return ret;
}

static int
x25519_base(const unsigned char sk[32], unsigned char pk[32])
{
	EVP_PKEY *k;
	size_t len = 32;
	int ret = -1;

	if ((k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, 32)) == NULL)
		return -1;
	if (EVP_PKEY_get_raw_public_key(k, pk, &len) == 1 && len == 32)
		ret = 0;
	EVP_PKEY_free(k);
	return ret;
}

static int
x25519_wrap_key(const unsigned char shared[32], const unsigned char share[32],
    const unsigned char pk[32], unsigned char key[32])
{
	unsigned char salt[64];

	memcpy(salt, share, 32);
	memcpy(salt + 32, pk, 32);
	return age_hkdf(shared, 32, salt, sizeof(salt), X25519_LABEL, key, 32);
}

/* ---- keys ------------------------------------------------------------------ */

int
age_recipient_parse(const char *s, struct age_recipient *r, struct age_err *e)
{
	unsigned char data[40];
	char hrp[8];
	size_t n;

	if (bech32_decode(s, strlen(s), hrp, sizeof(hrp), data, sizeof(data), &n) != 0 ||
	    strcmp(hrp, RECIPIENT_HRP) != 0 || n != 32) {
		age_seterr(e, "malformed recipient (expected age1...)");
		return -1;
	}
	memcpy(r->pk, data, 32);
	return 0;
}

int
age_recipient_format(const struct age_recipient *r, char *out, size_t outcap)
{
	return bech32_encode(out, outcap, RECIPIENT_HRP, r->pk, 32, 0) < 0 ? -1 : 0;
}

/* Calls fn for each line that is neither blank nor a comment; CRLF tolerated. */
static int
each_line(const char *buf, size_t len, int (*fn)(void *, const char *, size_t, size_t),
    void *arg)
{
	size_t pos = 0, lineno = 0, l;
	const char *nl;

	while (pos < len) {
		nl = memchr(buf + pos, '\n', len - pos);
		l = nl != NULL ? (size_t)(nl - (buf + pos)) : len - pos;
		lineno++;
		if (l > 0 && buf[pos + l - 1] == '\r')
			l--;
		if (l > 0 && buf[pos] != '#' && fn(arg, buf + pos, l, lineno) != 0)
			return -1;
		pos += (nl != NULL ? (size_t)(nl - (buf + pos)) + 1 : len - pos);
	}
	return 0;
}

struct rcpt_file {
	struct age_recipient *r;
	size_t max, n;
	struct age_err *e;
};

static int
rcpt_line(void *arg, const char *s, size_t l, size_t lineno)
{
	struct rcpt_file *f = arg;
	char tmp[AGE_RECIPIENT_LEN + 1];

	if (f->n >= f->max) {
		age_seterr(f->e, "too many recipients (at most %zu)", f->max);
		return -1;
	}
	if (l != AGE_RECIPIENT_LEN || memchr(s, '\0', l) != NULL) {
		age_seterr(f->e, "recipients line %zu: not an age1 X25519 recipient", lineno);
		return -1;
	}
	memcpy(tmp, s, l);
	tmp[l] = '\0';
	if (age_recipient_parse(tmp, &f->r[f->n], NULL) != 0) {
		age_seterr(f->e, "recipients line %zu: malformed recipient", lineno);
		return -1;
	}
	f->n++;
	return 0;
}

int
age_recipients_parse_file(const char *buf, size_t len, struct age_recipient *r,
    size_t max, size_t *n, struct age_err *e)
{
	struct rcpt_file f = { r, max, 0, e };

	*n = 0;
	if (each_line(buf, len, rcpt_line, &f) != 0)
		return -1;
	if (f.n == 0) {
		age_seterr(e, "no recipients found");
		return -1;
	}
	*n = f.n;
	return 0;
}

static int
identity_set(struct age_identity *id, const unsigned char sk[32], struct age_err *e)
{
	memset(id, 0, sizeof(*id));
	if (secbuf_alloc(&id->sk, 32) != 0) {
		age_seterr(e, "cannot allocate secure memory");
		return -1;
	}
	memcpy(id->sk.p, sk, 32);
	id->sk.len = 32;
	if (x25519_base(id->sk.p, id->pk) != 0) {
		secbuf_free(&id->sk);
		age_seterr(e, "X25519 public key computation failed");
		return -1;
	}
	return 0;
}

int
age_identity_generate(struct age_identity *id, struct age_err *e)
{
	unsigned char sk[32];
	int ret;

	if (RAND_priv_bytes(sk, sizeof(sk)) != 1) {
		memset(id, 0, sizeof(*id));
		age_seterr(e, "random number generator failed");
		return -1;
	}
	ret = identity_set(id, sk, e);
	explicit_bzero(sk, sizeof(sk));
	return ret;
}

int
age_identity_parse(const char *s, size_t len, struct age_identity *id, struct age_err *e)
{
	unsigned char data[40];
	char hrp[24];
	size_t n;
	int ret = -1;

	memset(id, 0, sizeof(*id));
	if (bech32_decode(s, len, hrp, sizeof(hrp), data, sizeof(data), &n) != 0 ||
	    strcmp(hrp, IDENTITY_HRP) != 0 || n != 32)
		age_seterr(e, "malformed identity (expected AGE-SECRET-KEY-1...)");
	else
		ret = identity_set(id, data, e);
	explicit_bzero(data, sizeof(data));
	return ret;
}

struct id_file {
	struct age_identity *ids;
	size_t max, n;
	struct age_err *e;
};

static int
id_line(void *arg, const char *s, size_t l, size_t lineno)
{
	struct id_file *f = arg;

	if (f->n >= f->max) {
		age_seterr(f->e, "too many identities (at most %zu)", f->max);
		return -1;
	}
	if (age_identity_parse(s, l, &f->ids[f->n], NULL) != 0) {
		age_seterr(f->e, "identity file line %zu: not an age X25519 identity", lineno);
		return -1;
	}
	f->n++;
	return 0;
}

int
age_identity_parse_file(const char *buf, size_t len, struct age_identity *ids,
    size_t max, size_t *n, struct age_err *e)
{
	struct id_file f = { ids, max, 0, e };
	size_t i;

	*n = 0;
	if (each_line(buf, len, id_line, &f) != 0) {
		for (i = 0; i < f.n; i++)
			age_identity_free(&ids[i]);
		return -1;
	}
	if (f.n == 0) {
		age_seterr(e, "no identities found");
		return -1;
	}
	*n = f.n;
	return 0;
}

int
age_identity_format(const struct age_identity *id, struct secbuf *out, struct age_err *e)
{
	char pub[AGE_RECIPIENT_LEN + 1], when[32];
	struct age_recipient r;
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (secbuf_alloc(out, 256) != 0) {
		age_seterr(e, "cannot allocate secure memory");
		return -1;
	}
	age_identity_to_recipient(id, &r);
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 ||
	    age_recipient_format(&r, pub, sizeof(pub)) != 0)
		goto fail;
	n = snprintf((char *)out->p, out->cap, "# created: %s\n# public key: %s\n", when, pub);
	if (n < 0 || (size_t)n >= out->cap)
		goto fail;
	out->len = (size_t)n;
	n = bech32_encode((char *)out->p + out->len, out->cap - out->len, "age-secret-key-",
	    id->sk.p, 32, 1);
	if (n < 0 || out->len + (size_t)n + 1 >= out->cap)
		goto fail;
	out->len += (size_t)n;
	out->p[out->len++] = '\n';
	return 0;
fail:
	secbuf_free(out);
	age_seterr(e, "cannot format identity");
	return -1;
}

void
age_identity_to_recipient(const struct age_identity *id, struct age_recipient *r)
{
	memcpy(r->pk, id->pk, 32);
}

void
age_identity_free(struct age_identity *id)
{
	secbuf_free(&id->sk);
	memset(id->pk, 0, sizeof(id->pk));
}

/* ---- header: writing ------------------------------------------------------- */

struct hbuf {
	unsigned char *p;
	size_t len, cap;
	int overflow;
};

static void
hput(struct hbuf *h, const void *s, size_t n)
{
	if (h->overflow || n > h->cap - h->len) {
		h->overflow = 1;
		return;
	}
	memcpy(h->p + h->len, s, n);
	h->len += n;
}

static void
hputs(struct hbuf *h, const char *s)
{
	hput(h, s, strlen(s));
}

/*
 * A stanza body: 64-column lines (48 bytes each), then a shorter final line,
 * which is empty when the body is a multiple of 48 bytes.
 */
static void
hput_body(struct hbuf *h, const unsigned char *in, size_t n)
{
	char line[B64_LINE];
	size_t chunk;

	do {
		chunk = n < 48 ? n : 48;
		b64_encode(in, chunk, line);
		hput(h, line, b64_enclen(chunk));
		hputs(h, "\n");
		in += chunk;
		n -= chunk;
	} while (chunk == 48);
}

static int
header_mac(const unsigned char fk[AGE_FILE_KEY_LEN], const unsigned char *hdr, size_t len,
    unsigned char mac[32])
{
	unsigned char key[32];
	size_t maclen = 0;
	int ret = -1;

	if (age_hkdf(fk, AGE_FILE_KEY_LEN, NULL, 0, "header", key, sizeof(key)) == 0 &&
	    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, sizeof(key), hdr, len,
	    mac, 32, &maclen) != NULL && maclen == 32)
		ret = 0;
	explicit_bzero(key, sizeof(key));
	return ret;
}

static int
stanza_x25519(struct hbuf *h, const unsigned char fk[AGE_FILE_KEY_LEN],
    const struct age_recipient *r, struct age_err *e)
{
	unsigned char esk[32], share[32], shared[32], key[32], body[WRAPPED_LEN];
	char arg[44];
	int rc, ret = -1;

	if (RAND_priv_bytes(esk, sizeof(esk)) != 1) {
		age_seterr(e, "random number generator failed");
		goto out;
	}
	if (x25519_base(esk, share) != 0 || (rc = x25519(esk, r->pk, shared)) == -1) {
		age_seterr(e, "X25519 failed");
		goto out;
	}
	if (rc == -2) {
		age_seterr(e, "recipient public key is a low-order point");
		goto out;
	}
	if (x25519_wrap_key(shared, share, r->pk, key) != 0 ||
	    aead_zero_nonce(1, key, fk, body) != 0) {
		age_seterr(e, "wrapping the file key failed");
		goto out;
	}
	b64_encode(share, 32, arg);
	arg[43] = '\0';
	hputs(h, "-> X25519 ");
	hputs(h, arg);
	hputs(h, "\n");
	hput_body(h, body, sizeof(body));
	ret = 0;
out:
	explicit_bzero(esk, sizeof(esk));
	explicit_bzero(shared, sizeof(shared));
	explicit_bzero(key, sizeof(key));
	return ret;
}

static int
stanza_scrypt(struct hbuf *h, const unsigned char fk[AGE_FILE_KEY_LEN],
    const unsigned char *pass, size_t passlen, int logn, struct age_err *e)
{
	unsigned char salt[SCRYPT_SALT_LEN], key[32], body[WRAPPED_LEN];
	char arg[32];
	int ret = -1;

	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		age_seterr(e, "random number generator failed");
		return -1;
	}
	if (scrypt_key(pass, passlen, salt, logn, key) != 0) {
		age_seterr(e, "scrypt failed (out of memory?)");
		goto out;
	}
	if (aead_zero_nonce(1, key, fk, body) != 0) {
		age_seterr(e, "wrapping the file key failed");
		goto out;
	}
	b64_encode(salt, sizeof(salt), arg);
	(void)snprintf(arg + 22, sizeof(arg) - 22, " %d\n", logn);
	hputs(h, "-> scrypt ");
	hputs(h, arg);
	hput_body(h, body, sizeof(body));
	ret = 0;
out:
	explicit_bzero(key, sizeof(key));
	return ret;
}

int
age_header_build(const unsigned char fk[AGE_FILE_KEY_LEN], const struct age_recipient *r,
    size_t n, const unsigned char *pass, size_t passlen, int logn,
    unsigned char *hdr, size_t cap, size_t *hdrlen, struct age_err *e)
{
	struct hbuf h = { hdr, 0, cap, 0 };
	unsigned char mac[32];
	char macb64[44];
	size_t i;

	hputs(&h, V1_LINE "\n");
	if (pass != NULL) {
		if (logn < 1 || logn > AGE_SCRYPT_LOGN_MAX) {
			age_seterr(e, "scrypt work factor must be between 1 and %d",
			    AGE_SCRYPT_LOGN_MAX);
			return -1;
		}
		if (passlen == 0) {
			age_seterr(e, "empty passphrase");
			return -1;
		}
		if (stanza_scrypt(&h, fk, pass, passlen, logn, e) != 0)
			return -1;
	} else {
		if (n == 0 || n > AGE_MAX_STANZAS) {
			age_seterr(e, "need 1 to %d recipients", AGE_MAX_STANZAS);
			return -1;
		}
		for (i = 0; i < n; i++)
			if (stanza_x25519(&h, fk, &r[i], e) != 0)
				return -1;
	}
	hputs(&h, "---");
	if (h.overflow || header_mac(fk, h.p, h.len, mac) != 0) {
		age_seterr(e, h.overflow ? "header too large" : "header MAC computation failed");
		return -1;
	}
	b64_encode(mac, sizeof(mac), macb64);
	hputs(&h, " ");
	hput(&h, macb64, 43);
	hputs(&h, "\n");
	if (h.overflow) {
		age_seterr(e, "header too large");
		return -1;
	}
	*hdrlen = h.len;
	return 0;
}

/* ---- header: parsing ------------------------------------------------------- */

struct stanza {
	const char *arg[AGE_MAX_ARGS];	/* arg[0] is the type */
	size_t arglen[AGE_MAX_ARGS];
	int nargs;
	const char *body;		/* base64 text, '\n' between lines */
	size_t bodylen;
};

struct header {
	struct stanza st[AGE_MAX_STANZAS];
	int nst;
	size_t maclen_off;		/* bytes covered by the MAC */
	unsigned char mac[32];
};

static int
arg_is(const struct stanza *s, int i, const char *v)
{
	size_t l = strlen(v);

	return i < s->nargs && s->arglen[i] == l && memcmp(s->arg[i], v, l) == 0;
}

/* Split "-> a b c" (without the newline) into arguments. */
static int
parse_args(const char *line, size_t len, struct stanza *s, struct age_err *e)
{
	size_t i = 3, start;

	s->nargs = 0;
	for (;;) {
		start = i;
		while (i < len && line[i] != ' ') {
			if ((unsigned char)line[i] < 33 || (unsigned char)line[i] > 126) {
				age_seterr(e, "invalid character in stanza arguments");
				return -1;
			}
			i++;
		}
		if (i == start) {
			age_seterr(e, "empty stanza argument");
			return -1;
		}
		if (s->nargs == AGE_MAX_ARGS) {
			age_seterr(e, "too many stanza arguments");
			return -1;
		}
		s->arg[s->nargs] = line + start;
		s->arglen[s->nargs++] = i - start;
		if (i == len)
			return 0;
		i++;	/* the single space */
	}
}

static int
parse_header(const unsigned char *buf, size_t len, struct header *h, struct age_err *e)
{
	const char *p = (const char *)buf, *nl;
	size_t pos, l, i, dummy;
	struct stanza *s;

	memset(h, 0, sizeof(*h));
	nl = memchr(p, '\n', len);
	l = nl != NULL ? (size_t)(nl - p) : len;
	if (nl == NULL && len < sizeof(V1_LINE) && memcmp(p, V1_LINE, len) == 0) {
		age_seterr(e, "truncated header");
		return -1;
	}
	if (nl == NULL || l != sizeof(V1_LINE) - 1 || memcmp(p, V1_LINE, l) != 0) {
		if (l >= 19 && memcmp(p, "age-encryption.org/", 19) == 0)
			age_seterr(e, "unsupported age format version");
		else if (l >= 5 && memcmp(p, "-----", 5) == 0)
			age_seterr(e, "armored (PEM) age files are not supported");
		else
			age_seterr(e, "not an age v1 file");
		return -1;
	}
	pos = l + 1;
	for (;;) {
		if (pos >= len || (nl = memchr(p + pos, '\n', len - pos)) == NULL) {
			age_seterr(e, "truncated header");
			return -1;
		}
		l = (size_t)(nl - (p + pos));
		if (l >= 3 && memcmp(p + pos, "---", 3) == 0) {
			if (l != 4 + 43 || p[pos + 3] != ' ' ||
			    b64_decode_exact(p + pos + 4, 43, h->mac, 32) != 0) {
				age_seterr(e, "malformed header MAC line");
				return -1;
			}
			h->maclen_off = pos + 3;
			if (pos + l + 1 != len) {
				age_seterr(e, "data after the header MAC line");
				return -1;
			}
			break;
		}
		if (l < 3 || memcmp(p + pos, "-> ", 3) != 0) {
			age_seterr(e, "malformed header line (expected a stanza or the MAC)");
			return -1;
		}
		if (h->nst == AGE_MAX_STANZAS) {
			age_seterr(e, "too many stanzas in header (at most %d)", AGE_MAX_STANZAS);
			return -1;
		}
		s = &h->st[h->nst++];
		if (parse_args(p + pos, l, s, e) != 0)
			return -1;
		pos += l + 1;
		s->body = p + pos;
		/* Body: 64-column lines, ended by the first shorter one (maybe empty). */
		for (;;) {
			if (pos >= len || (nl = memchr(p + pos, '\n', len - pos)) == NULL) {
				age_seterr(e, "truncated header (stanza body)");
				return -1;
			}
			l = (size_t)(nl - (p + pos));
			if (l > 0 && p[pos] == '-') {
				age_seterr(e, "stanza body is missing its final short line");
				return -1;
			}
			if (l > B64_LINE) {
				age_seterr(e, "stanza body line longer than 64 columns");
				return -1;
			}
			for (i = 0; i < l; i++)
				if (age_b64val((unsigned char)p[pos + i]) < 0) {
					age_seterr(e, "stanza body is not unpadded base64");
					return -1;
				}
			pos += l + 1;
			if (l < B64_LINE)
				break;
		}
		s->bodylen = (size_t)(p + pos - 1 - s->body);
		if (b64_decode(s->body, s->bodylen, NULL, 0, &dummy) != 0) {
			age_seterr(e, "stanza body is not canonical base64");
			return -1;
		}
	}
	if (h->nst == 0) {
		age_seterr(e, "header has no recipient stanzas");
		return -1;
	}
	return 0;
}

/* Body of exactly len bytes. */
static int
body_exact(const struct stanza *s, unsigned char *out, size_t len)
{
	size_t got;

	return b64_decode(s->body, s->bodylen, out, len, &got) == 0 && got == len ? 0 : -1;
}

static int
parse_logn(const char *s, size_t l, int *logn)
{
	size_t i;
	int v = 0;

	/* Decimal without leading zeros, as the spec requires. */
	if (l == 0 || l > 9 || s[0] == '0')
		return -1;
	for (i = 0; i < l; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*logn = v;
	return 0;
}

static int
scrypt_stanza(const struct stanza *s, unsigned char salt[SCRYPT_SALT_LEN], int *logn,
    unsigned char body[WRAPPED_LEN])
{
	if (s->nargs != 3 || b64_decode_exact(s->arg[1], s->arglen[1], salt, SCRYPT_SALT_LEN) != 0 ||
	    parse_logn(s->arg[2], s->arglen[2], logn) != 0 || body_exact(s, body, WRAPPED_LEN) != 0)
		return -1;
	return 0;
}

static int
x25519_stanza(const struct stanza *s, unsigned char share[32], unsigned char body[WRAPPED_LEN])
{
	if (s->nargs != 2 || b64_decode_exact(s->arg[1], s->arglen[1], share, 32) != 0 ||
	    body_exact(s, body, WRAPPED_LEN) != 0)
		return -1;
	return 0;
}

static int
unwrap_scrypt(const struct stanza *s, const struct age_keys *k,
    unsigned char fk[AGE_FILE_KEY_LEN], struct age_err *e)
{
	unsigned char salt[SCRYPT_SALT_LEN], body[WRAPPED_LEN], key[32];
	int logn, cap = k->max_logn > 0 ? k->max_logn : AGE_SCRYPT_LOGN_MAX, ret = -1;

	if (scrypt_stanza(s, salt, &logn, body) != 0) {
		age_seterr(e, "malformed scrypt stanza");
		return -1;
	}
	if (k->pass == NULL) {
		age_seterr(e, "file is passphrase-encrypted, but no passphrase was given");
		return -1;
	}
	/* The work factor is attacker-chosen: refuse before paying for it. */
	if (logn > cap || logn > 62) {
		age_seterr(e, "scrypt work factor 2^%d exceeds the limit 2^%d", logn, cap);
		return -1;
	}
	if (scrypt_key(k->pass, k->passlen, salt, logn, key) != 0) {
		age_seterr(e, "scrypt failed (out of memory?)");
		goto out;
	}
	if (aead_zero_nonce(0, key, body, fk) != 0) {
		age_seterr(e, "incorrect passphrase");
		goto out;
	}
	ret = 0;
out:
	explicit_bzero(key, sizeof(key));
	return ret;
}

/* 1 unwrapped, 0 no identity matched, -1 fatal (low-order share, library failure). */
static int
unwrap_x25519(const struct stanza *s, const struct age_keys *k,
    unsigned char fk[AGE_FILE_KEY_LEN], struct age_err *e)
{
	unsigned char share[32], body[WRAPPED_LEN], shared[32], key[32];
	size_t i;
	int rc, ret = 0;

	if (x25519_stanza(s, share, body) != 0) {
		age_seterr(e, "malformed X25519 stanza");
		return -1;
	}
	for (i = 0; i < k->nids && ret == 0; i++) {
		rc = x25519(k->ids[i].sk.p, share, shared);
		if (rc == -2) {
			age_seterr(e, "X25519 stanza has a low-order ephemeral share");
			ret = -1;
		} else if (rc != 0) {
			age_seterr(e, "X25519 failed");
			ret = -1;
		} else if (x25519_wrap_key(shared, share, k->ids[i].pk, key) != 0) {
			age_seterr(e, "HKDF failed");
			ret = -1;
		} else if (aead_zero_nonce(0, key, body, fk) == 0)
			ret = 1;
	}
	explicit_bzero(shared, sizeof(shared));
	explicit_bzero(key, sizeof(key));
	return ret;
}

/* Known stanza types must be well-formed wherever they appear, matched or not. */
static int
check_stanzas(const struct header *h, struct age_err *e)
{
	unsigned char a[32], body[WRAPPED_LEN];
	int i, logn;

	for (i = 0; i < h->nst; i++) {
		if (arg_is(&h->st[i], 0, "scrypt")) {
			if (h->nst != 1) {
				age_seterr(e, "an scrypt stanza must be the only stanza in the header");
				return -1;
			}
			if (scrypt_stanza(&h->st[i], a, &logn, body) != 0) {
				age_seterr(e, "malformed scrypt stanza");
				return -1;
			}
		} else if (arg_is(&h->st[i], 0, "X25519") &&
		    x25519_stanza(&h->st[i], a, body) != 0) {
			age_seterr(e, "malformed X25519 stanza");
			return -1;
		}
	}
	return 0;
}

int
age_header_open(const unsigned char *hdr, size_t len, const struct age_keys *k,
    unsigned char fk[AGE_FILE_KEY_LEN], struct age_err *e)
{
	struct header h;
	unsigned char mac[32];
	int i, rc, found = 0, nx = 0;

	if (parse_header(hdr, len, &h, e) != 0 || check_stanzas(&h, e) != 0)
		return -1;
	for (i = 0; i < h.nst && !found; i++) {
		if (arg_is(&h.st[i], 0, "scrypt")) {
			if (unwrap_scrypt(&h.st[i], k, fk, e) != 0)
				return -1;
			found = 1;
		} else if (arg_is(&h.st[i], 0, "X25519")) {
			nx++;
			if ((rc = unwrap_x25519(&h.st[i], k, fk, e)) < 0)
				return -1;
			found = rc == 1;
		}
		/* Other stanza types are not ours to understand: skip them. */
	}
	if (!found) {
		if (nx > 0 && k->nids == 0)
			age_seterr(e, "file is encrypted to X25519 recipients, but no identity was given");
		else
			age_seterr(e, "no identity matched any recipient stanza");
		return -1;
	}
	if (header_mac(fk, hdr, h.maclen_off, mac) != 0) {
		explicit_bzero(fk, AGE_FILE_KEY_LEN);
		age_seterr(e, "header MAC computation failed");
		return -1;
	}
	if (CRYPTO_memcmp(mac, h.mac, sizeof(mac)) != 0) {
		explicit_bzero(fk, AGE_FILE_KEY_LEN);
		age_seterr(e, "header MAC mismatch");
		return -1;
	}
	return 0;
}
