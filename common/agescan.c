/*
 * The structural scan of an age v1 file (see agescan.h).  The rules are
 * those of the C2SP age spec that can be checked without a key, as strict
 * as common/age.c applies them when it decrypts: canonical unpadded base64,
 * 64-column stanza bodies ended by a shorter line, well-formed X25519
 * stanzas, a MAC line of exactly 43 base64 characters, nothing between the
 * header and the payload.  The payload is a 16-byte nonce and chunks of
 * 64 KiB plus a 16-byte tag, the last one shorter (or, for an empty
 * plaintext only, the tag alone): lengths that cannot be that are
 * truncations or appendages.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "age.h"
#include "agescan.h"

#define V1_LINE		"age-encryption.org/v1"
#define B64_LINE	64
#define NONCE_LEN	16
#define CHUNK_CT	((uint64_t)AGE_CHUNK_LEN + AGE_TAG_LEN)

static int fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Unpadded base64 of some whole number of bytes, its unused low bits zero. */
static int
b64_canonical(const unsigned char *p, size_t n)
{
	size_t i;
	int last;

	if (n % 4 == 1)
		return 0;
	for (i = 0; i < n; i++)
		if (age_b64val(p[i]) < 0)
			return 0;
	if (n == 0 || n % 4 == 0)
		return 1;
	last = age_b64val(p[n - 1]);
	return (last & (n % 4 == 2 ? 0x0f : 0x03)) == 0;
}

/* A line from pos: its length, or -1 if no newline ends it within the buffer. */
static long
line_at(const unsigned char *b, size_t len, size_t pos)
{
	const unsigned char *nl;

	if (pos >= len || (nl = memchr(b + pos, '\n', len - pos)) == NULL)
		return -1;
	return (long)(nl - (b + pos));
}

/* The bytes given ran out before the header's end. */
static int
unended(size_t len, uint64_t total, char *why, size_t whylen)
{
	if (len == total)
		return fail(why, whylen, "truncated header");
	return fail(why, whylen, "no header MAC line within the first %zu bytes", len);
}

/* "-> TYPE ARG...": printable arguments, single spaces; X25519 has one 32-byte share. */
static int
stanza_line(const unsigned char *l, size_t n, int *x25519, char *why, size_t whylen)
{
	size_t i = 3, start, arglen[AGE_MAX_ARGS];
	const unsigned char *arg[AGE_MAX_ARGS];
	int nargs = 0;

	for (;;) {
		start = i;
		while (i < n && l[i] != ' ') {
			if (l[i] < 33 || l[i] > 126)
				return fail(why, whylen, "invalid character in a stanza line");
			i++;
		}
		if (i == start)
			return fail(why, whylen, "empty stanza argument");
		if (nargs == AGE_MAX_ARGS)
			return fail(why, whylen, "too many stanza arguments");
		arg[nargs] = l + start;
		arglen[nargs++] = i - start;
		if (i == n)
			break;
		i++;
	}
	*x25519 = arglen[0] == 6 && memcmp(arg[0], "X25519", 6) == 0;
	if (*x25519 && (nargs != 2 || arglen[1] != 43 || !b64_canonical(arg[1], 43)))
		return fail(why, whylen, "malformed X25519 stanza");
	return 0;
}

/* The payload's length: a nonce, then full chunks, then one shorter final chunk. */
static int
payload(uint64_t n, struct agescan *s, char *why, size_t whylen)
{
	uint64_t c, full, rest;

	if (n < NONCE_LEN + AGE_TAG_LEN)
		return fail(why, whylen, "payload of %llu bytes is truncated (at least %d)",
		    (unsigned long long)n, NONCE_LEN + AGE_TAG_LEN);
	c = n - NONCE_LEN;
	full = c / CHUNK_CT;
	rest = c % CHUNK_CT;
	if (rest != 0 && rest < AGE_TAG_LEN)
		return fail(why, whylen, "payload of %llu bytes ends inside a chunk's tag: "
		    "truncated or extended", (unsigned long long)n);
	if (rest == AGE_TAG_LEN && full > 0)
		return fail(why, whylen, "payload of %llu bytes ends with an empty chunk after "
		    "full ones", (unsigned long long)n);
	s->chunks = full + (rest != 0);
	return 0;
}

int
agescan(const unsigned char *b, size_t len, uint64_t total, struct agescan *s, char *why,
    size_t whylen)
{
	size_t pos, blen, vl = sizeof(V1_LINE) - 1;
	long l;
	int x;

	memset(s, 0, sizeof(*s));
	if (len > total)
		len = (size_t)total;
	if (len > AGE_HEADER_MAX)
		len = AGE_HEADER_MAX;
	if (len < vl + 1 || memcmp(b, V1_LINE, vl) != 0 || b[vl] != '\n') {
		if (len > 0 && len < vl + 1 && total == len && memcmp(b, V1_LINE, len) == 0)
			return fail(why, whylen, "truncated header");
		return fail(why, whylen, "not an age v1 file (no age-encryption.org/v1 line)");
	}
	pos = vl + 1;
	for (;;) {
		if ((l = line_at(b, len, pos)) < 0)
			return unended(len, total, why, whylen);
		if (l >= 3 && memcmp(b + pos, "---", 3) == 0) {
			if (l != 4 + 43 || b[pos + 3] != ' ' || !b64_canonical(b + pos + 4, 43))
				return fail(why, whylen, "malformed header MAC line");
			pos += (size_t)l + 1;
			break;
		}
		if (l < 3 || memcmp(b + pos, "-> ", 3) != 0)
			return fail(why, whylen, "malformed header line %u (expected a stanza or "
			    "the MAC)", s->nstanzas + 2);
		if (s->nstanzas == AGE_MAX_STANZAS)
			return fail(why, whylen, "more than %d stanzas", AGE_MAX_STANZAS);
		if (stanza_line(b + pos, (size_t)l, &x, why, whylen) != 0)
			return -1;
		s->nstanzas++;
		pos += (size_t)l + 1;
		/*
		 * The body: 64-column lines, ended by the first shorter one (maybe
		 * empty).  Full lines are a multiple of 4 characters, so checking
		 * each line as base64 of its own checks the whole body's canonical
		 * ending too.
		 */
		blen = 0;
		do {
			if ((l = line_at(b, len, pos)) < 0)
				return unended(len, total, why, whylen);
			if (l > 0 && b[pos] == '-')
				return fail(why, whylen, "stanza body without its final short line");
			if (l > B64_LINE)
				return fail(why, whylen, "stanza body line longer than 64 columns");
			if (!b64_canonical(b + pos, (size_t)l))
				return fail(why, whylen, "stanza body is not canonical base64");
			blen += (size_t)l;
			pos += (size_t)l + 1;
		} while (l == B64_LINE);
		if (x && blen != 43)
			return fail(why, whylen, "malformed X25519 stanza body");
		s->nx25519 += x;
	}
	if (s->nstanzas == 0)
		return fail(why, whylen, "header has no recipient stanzas");
	s->header_len = pos;
	return payload(total - pos, s, why, whylen);
}
