/*
 * The keyless structural scan of age files: what age.c writes (and a
 * passphrase file) passes with the right header length and chunk count;
 * every truncation inside the header, the payload lengths STREAM cannot
 * have, malformed lines and hostile sizes are refused; every bit flip is
 * survived.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "age.h"
#include "agescan.h"
#include "mbuf.h"

/* An age file of n plaintext bytes to nrcpt fresh X25519 recipients. */
static void
make_file(struct mbuf *m, size_t n, size_t nrcpt)
{
	struct age_recipient r[4];
	struct age_identity id;
	struct age_writer *w;
	struct age_err err;
	unsigned char *pt = calloc(1, n + 1);
	size_t i;

	assert_non_null(pt);
	assert_true(nrcpt <= 4);
	for (i = 0; i < nrcpt; i++) {
		assert_int_equal(age_identity_generate(&id, &err), 0);
		age_identity_to_recipient(&id, &r[i]);
		age_identity_free(&id);
	}
	memset(m, 0, sizeof(*m));
	w = age_writer_new(r, nrcpt, mbuf_write, m, &err);
	assert_non_null(w);
	assert_int_equal(age_writer_write(w, pt, n, &err), 0);
	assert_int_equal(age_writer_finish(w, &err), 0);
	age_writer_free(w);
	free(pt);
}

static size_t
header_end(const struct mbuf *m)
{
	const char *mac = memmem(m->p, m->len, "\n--- ", 5);

	assert_non_null(mac);
	return (size_t)(mac - (const char *)m->p) + 5 + 43 + 1;
}

static int
scan(const unsigned char *p, size_t len, struct agescan *s, char *why)
{
	return agescan(p, len, len, s, why, 200);
}

static void
test_valid_files(void **state)
{
	static const size_t sizes[] = { 0, 1, 1000, AGE_CHUNK_LEN - 1, AGE_CHUNK_LEN,
	    AGE_CHUNK_LEN + 1, 3 * AGE_CHUNK_LEN };
	static const uint64_t chunks[] = { 1, 1, 1, 1, 1, 2, 3 };
	struct agescan s;
	struct mbuf m, p;
	struct age_err err;
	struct age_writer *w;
	char why[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		make_file(&m, sizes[i], 1 + i % 3);
		if (scan(m.p, m.len, &s, why) != 0)
			fail_msg("size %zu: %s", sizes[i], why);
		assert_int_equal(s.header_len, header_end(&m));
		assert_int_equal(s.nstanzas, 1 + i % 3);
		assert_int_equal(s.nx25519, 1 + i % 3);
		assert_int_equal(s.chunks, chunks[i]);
		/* Given only the first bytes, as the parent reads them. */
		assert_int_equal(agescan(m.p, s.header_len, m.len, &s, why, sizeof(why)), 0);
		free(m.p);
	}
	/* A passphrase file (identity.age): one scrypt stanza. */
	memset(&p, 0, sizeof(p));
	w = age_writer_new_passphrase((const unsigned char *)"pw", 2, 10, mbuf_write, &p, &err);
	assert_non_null(w);
	assert_int_equal(age_writer_write(w, "x", 1, &err), 0);
	assert_int_equal(age_writer_finish(w, &err), 0);
	age_writer_free(w);
	assert_int_equal(scan(p.p, p.len, &s, why), 0);
	assert_int_equal(s.nstanzas, 1);
	assert_int_equal(s.nx25519, 0);
	free(p.p);
}

static void
test_truncation(void **state)
{
	struct agescan s;
	struct mbuf m;
	char why[200];
	size_t n, hl;

	(void)state;
	make_file(&m, 2 * AGE_CHUNK_LEN + 100, 2);
	hl = header_end(&m);
	/* Anywhere inside the header or the nonce and first tag. */
	for (n = 0; n < hl + 32; n++) {
		if (scan(m.p, n, &s, why) == 0)
			fail_msg("truncated to %zu bytes passed", n);
	}
	/* Cut at a chunk boundary, or inside a chunk's tag. */
	assert_int_equal(scan(m.p, hl + 16 + 65552, &s, why), 0);	/* looks whole */
	for (n = 1; n < 16; n++)
		assert_int_equal(scan(m.p, hl + 16 + 65552 + n, &s, why), -1);
	assert_int_equal(scan(m.p, hl + 16 + 65552 + 16, &s, why), -1);
	assert_non_null(strstr(why, "empty chunk"));
	free(m.p);
}

static void
test_bit_flips(void **state)
{
	struct agescan s;
	struct mbuf m;
	char why[200];
	size_t i, hl;
	int b, refused = 0;

	(void)state;
	make_file(&m, 500, 2);
	hl = header_end(&m);
	for (i = 0; i < hl; i++) {
		for (b = 0; b < 8; b++) {
			int rc;

			m.p[i] ^= (unsigned char)(1u << b);
			rc = scan(m.p, m.len, &s, why);
			m.p[i] ^= (unsigned char)(1u << b);
			/* Structure: the version line and every newline are load-bearing. */
			if ((i < 22 || m.p[i] == '\n') && rc == 0)
				fail_msg("flip of bit %d of byte %zu passed", b, i);
			refused += rc != 0;
		}
	}
	assert_true(refused > 0);
	free(m.p);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"age-encryption.org/v1",
		"age-encryption.org/v2\n-> X25519 a\nb\n--- c\n",
		"-----BEGIN AGE ENCRYPTED FILE-----\n",
		"age-encryption.org/v1\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"age-encryption.org/v1\n-> \n\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"age-encryption.org/v1\n->  X\n\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"age-encryption.org/v1\n-> X25519 short\nAAAA\n"
		    "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"age-encryption.org/v1\n-> other\nA===\n"
		    "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"age-encryption.org/v1\n-> other\nB\n"
		    "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"age-encryption.org/v1\n-> other\nAB\n"
		    "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"age-encryption.org/v1\n-> other\n\n"
		    "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB\n",
		"age-encryption.org/v1\n-> other\n\n--- AAAA\n",
		"age-encryption.org/v1\n-> other\n\n"
		    "---AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"age-encryption.org/v1\n-> other\n"
		    "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"age-encryption.org/v1\n-> other\n\n"
		    "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n" /* no payload */,
	};
	struct agescan s;
	char why[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (scan((const unsigned char *)bad[i], strlen(bad[i]), &s, why) == 0)
			fail_msg("case %zu passed", i);
}

static void
test_hostile_sizes(void **state)
{
	struct agescan s;
	struct mbuf m;
	unsigned char *big;
	char why[200], stanza[] = "-> other\n\n";
	size_t i, n = 0;

	(void)state;
	/* A header that never ends within AGE_HEADER_MAX, in a larger file. */
	big = malloc(AGE_HEADER_MAX + 100);
	assert_non_null(big);
	memcpy(big, "age-encryption.org/v1\n-> a\n", 27);
	n = 27;
	while (n + 65 < AGE_HEADER_MAX + 100) {
		memset(big + n, 'A', 64);
		big[n + 64] = '\n';
		n += 65;
	}
	assert_int_equal(agescan(big, AGE_HEADER_MAX, (uint64_t)1 << 40, &s, why, sizeof(why)),
	    -1);
	assert_non_null(strstr(why, "no header MAC line within"));
	assert_int_equal(agescan(big, 10000, 10000, &s, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "truncated header"));
	/* More stanzas than age allows. */
	n = 22;
	for (i = 0; i <= AGE_MAX_STANZAS; i++) {
		memcpy(big + n, stanza, sizeof(stanza) - 1);
		n += sizeof(stanza) - 1;
	}
	memcpy(big + n, "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 48);
	n += 48;
	memset(big + n, 0, 32);
	n += 32;
	assert_int_equal(scan(big, n, &s, why), -1);
	assert_non_null(strstr(why, "stanzas"));
	free(big);
	/* A huge payload is judged by its length alone. */
	make_file(&m, 10, 1);
	assert_int_equal(agescan(m.p, m.len, (uint64_t)header_end(&m) + 16 +
	    1000 * (uint64_t)(AGE_CHUNK_LEN + 16) + 17, &s, why, sizeof(why)), 0);
	assert_int_equal(s.chunks, 1001);
	/* A short why buffer, or none, is fine. */
	assert_int_equal(agescan(m.p, 5, 5, &s, why, 4), -1);
	assert_int_equal(strlen(why), 3);
	assert_int_equal(agescan(m.p, 5, 5, &s, NULL, 0), -1);
	free(m.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_files),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_hostile_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
