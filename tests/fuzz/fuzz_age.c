/*
 * libFuzzer harness for the age decoder: the input is decrypted with a fixed
 * X25519 identity and, separately, a fixed passphrase under a low work-factor
 * cap; each twice, with whole and with tiny reads, which must agree.  The
 * same bytes also go through the key-file parsers.
 *
 * Seeds in tests/fuzz/corpus/age/ are encrypted to FUZZ_RECIPIENT or with
 * FUZZ_PASSPHRASE at work factor 2.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "age.h"
#include "bech32.h"

#define FUZZ_IDENTITY	"AGE-SECRET-KEY-1R7YLG8Z3TQ4VT6XMG4X6Z0LR52U9Q5R6RCG0JWAF4HMHXCGN22MQFYRDPM"
/* FUZZ_RECIPIENT age1usu869kl0gcl49d6gj9t0ypkc28dh0eca8ktgk3qdmky9z4zap8see69qq */
#define FUZZ_PASSPHRASE	"fuzz"
#define FUZZ_MAX_LOGN	4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
	const uint8_t *p;
	size_t left, step;
};

static ssize_t
src_read(void *arg, void *buf, size_t len)
{
	struct src *s = arg;

	if (len > s->left)
		len = s->left;
	if (s->step > 0 && len > s->step)
		len = s->step;
	memcpy(buf, s->p, len);
	s->p += len;
	s->left -= len;
	return (ssize_t)len;
}

/* Returns the bytes handed out, or -1 - bytes on failure. */
static long long
decrypt(const uint8_t *data, size_t size, size_t step, const struct age_keys *k)
{
	struct src s = { data, size, step };
	struct age_err err;
	struct age_reader *r;
	const unsigned char *p;
	long long total = 0;
	ssize_t n;

	if ((r = age_reader_new(src_read, &s, k, &err)) == NULL)
		return -1;
	while ((n = age_reader_read(r, &p, &err)) > 0) {
		if (n > AGE_CHUNK_LEN || (n < AGE_CHUNK_LEN && total % AGE_CHUNK_LEN != 0))
			abort();
		total += n;
	}
	/* After the end, the reader stays at the end (or stays failed). */
	if (age_reader_read(r, &p, &err) != (n == 0 ? 0 : -1))
		abort();
	age_reader_free(r);
	return n == 0 ? total : -1 - total;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct age_identity id;
	static int init;
	struct age_identity ids[4];
	struct age_recipient rs[4];
	struct age_keys k;
	struct age_err err;
	unsigned char out[512];
	char hrp[64];
	size_t n, i;

	if (!init) {
		if (age_identity_parse(FUZZ_IDENTITY, strlen(FUZZ_IDENTITY), &id, &err) != 0)
			abort();
		init = 1;
	}

	memset(&k, 0, sizeof(k));
	k.ids = &id;
	k.nids = 1;
	if (decrypt(data, size, 0, &k) != decrypt(data, size, 1 + size % 13, &k))
		abort();

	memset(&k, 0, sizeof(k));
	k.pass = (const unsigned char *)FUZZ_PASSPHRASE;
	k.passlen = strlen(FUZZ_PASSPHRASE);
	k.max_logn = FUZZ_MAX_LOGN;
	if (decrypt(data, size, 0, &k) != decrypt(data, size, 1 + size % 7, &k))
		abort();

	if (age_identity_parse_file((const char *)data, size, ids, 4, &n, &err) == 0)
		for (i = 0; i < n; i++)
			age_identity_free(&ids[i]);
	(void)age_recipients_parse_file((const char *)data, size, rs, 4, &n, &err);
	(void)bech32_decode((const char *)data, size, hrp, sizeof(hrp), out, sizeof(out), &n);
	return 0;
}
