/*
 * age v1: Bech32, key files, round trips at chunk boundaries, known answers
 * from age(1), and the decoder's refusals (bit flips, truncation, malformed
 * headers, malformed STREAM layouts).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "age.h"
#include "agescrypt.h"
#include "bech32.h"
#include "mbuf.h"

#define CHUNK	AGE_CHUNK_LEN

/* ---- helpers ----------------------------------------------------------------- */

struct msrc {
	const unsigned char *p;
	size_t len, off, step;
};

static ssize_t
msrc_read(void *arg, void *buf, size_t len)
{
	struct msrc *s = arg;
	size_t n = s->len - s->off;

	if (n > len)
		n = len;
	if (s->step > 0 && n > s->step)
		n = s->step;
	memcpy(buf, s->p + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static unsigned char *
pattern(size_t len, uint32_t seed)
{
	unsigned char *p = malloc(len ? len : 1);
	uint32_t x = seed | 1;
	size_t i;

	assert_non_null(p);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	return p;
}

/* Feed in uneven pieces so chunk assembly is exercised, not just one write. */
static void
feed(struct age_writer *w, const unsigned char *pt, size_t len)
{
	static const size_t steps[] = { 1, 7, 4096, 70000, 65536, 3 };
	struct age_err err = { "" };
	size_t off = 0, i = 0, n;

	while (off < len) {
		n = steps[i++ % 6];
		if (n > len - off)
			n = len - off;
		assert_int_equal(age_writer_write(w, pt + off, n, &err), 0);
		off += n;
	}
	assert_int_equal(age_writer_finish(w, &err), 0);
}

static void
enc_x25519(const unsigned char *pt, size_t len, const struct age_recipient *r, size_t n,
    struct mbuf *ct)
{
	struct age_err err = { "" };
	struct age_writer *w = age_writer_new(r, n, mbuf_write, ct, &err);

	assert_non_null(w);
	feed(w, pt, len);
	age_writer_free(w);
}

static void
enc_pass(const unsigned char *pt, size_t len, const char *pass, int logn, struct mbuf *ct)
{
	struct age_err err = { "" };
	struct age_writer *w = age_writer_new_passphrase((const unsigned char *)pass,
	    strlen(pass), logn, mbuf_write, ct, &err);

	assert_non_null(w);
	feed(w, pt, len);
	age_writer_free(w);
}

/* Decrypt through the reader; pt collects only what the reader handed out. */
static int
dec(const unsigned char *ct, size_t ctlen, const struct age_keys *k, size_t step,
    struct mbuf *pt, struct age_err *err)
{
	struct msrc src = { ct, ctlen, 0, step };
	struct age_reader *r;
	const unsigned char *p;
	ssize_t n;

	memset(err, 0, sizeof(*err));
	if ((r = age_reader_new(msrc_read, &src, k, err)) == NULL)
		return -1;
	while ((n = age_reader_read(r, &p, err)) > 0)
		mbuf_write(pt, p, (size_t)n);
	age_reader_free(r);
	return n == 0 ? 0 : -1;
}

static size_t
header_len(const unsigned char *ct, size_t len)
{
	const unsigned char *m = memmem(ct, len, "\n--- ", 5), *nl;

	assert_non_null(m);
	nl = memchr(m + 1, '\n', len - (size_t)(m + 1 - ct));
	assert_non_null(nl);
	return (size_t)(nl + 1 - ct);
}

static struct age_identity id1, id2;
static struct age_recipient rc1, rc2;

static int
setup(void **state)
{
	struct age_err err = { "" };

	if (age_identity_generate(&id1, &err) != 0 || age_identity_generate(&id2, &err) != 0)
		return -1;
	age_identity_to_recipient(&id1, &rc1);
	age_identity_to_recipient(&id2, &rc2);
	return 0;
}

static int
teardown(void **state)
{
	age_identity_free(&id1);
	age_identity_free(&id2);
	return 0;
}

static struct age_keys
keys_id(const struct age_identity *id)
{
	struct age_keys k = { id, 1, NULL, 0, 0 };
	return k;
}

static struct age_keys
keys_pass(const char *pass, int maxlogn)
{
	struct age_keys k = { NULL, 0, (const unsigned char *)pass, strlen(pass), maxlogn };
	return k;
}

static char *
read_data(const char *name, size_t *len)
{
	static const char *dirs[] = { "tests/unit/data", NULL, NULL };
	char exe[PATH_MAX], path[PATH_MAX + 64], *slash;
	const char *env = getenv("VS_TEST_DATA");
	ssize_t n;
	size_t i;
	FILE *f;
	char *buf;

	dirs[1] = env;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		/* build/tests/test_age -> <repo>/tests/unit/data */
		for (i = 0; i < 3 && (slash = strrchr(exe, '/')) != NULL; i++)
			*slash = '\0';
		strcat(exe, "/tests/unit/data");
		dirs[2] = exe;
	}
	for (i = 0; i < 3; i++) {
		if (dirs[i] == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		buf = malloc(1 << 20);
		assert_non_null(buf);
		*len = fread(buf, 1, (1 << 20) - 1, f);
		buf[*len] = '\0';
		fclose(f);
		return buf;
	}
	fail_msg("test data %s not found (set VS_TEST_DATA)", name);
	return NULL;
}

/* ---- Bech32 -------------------------------------------------------------------- */

static void
test_bech32_vectors(void **state)
{
	/* Valid BIP 173 strings: decode, then re-encode to the same text. */
	static const char *valid[] = {
		"a12uel5l", "A12UEL5L", "?1ezyfcl",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
	};
	static const char *invalid[] = {
		"A1G7SGD8",		/* checksum made over the uppercase hrp */
		"a12UEL5L",		/* mixed case */
		"a12uel5m",		/* bad checksum */
		"10a06t8",		/* empty hrp */
		"1qzzfhee",		/* empty hrp */
		"x1b4n0q5v",		/* 'b' is not in the alphabet */
		"li1dgmt3",		/* checksum too short */
		"a 12uel5l",		/* space */
	};
	unsigned char data[64], data2[64];
	char hrp[32], out[128], lowered[128];
	size_t i, j, n, n2;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		assert_int_equal(bech32_decode(valid[i], strlen(valid[i]), hrp, sizeof(hrp),
		    data, sizeof(data), &n), 0);
		for (j = 0; j < strlen(hrp); j++)
			if (hrp[j] >= 'A' && hrp[j] <= 'Z')
				hrp[j] = (char)(hrp[j] + 32);
		assert_true(bech32_encode(out, sizeof(out), hrp, data, n, 0) > 0);
		for (j = 0; valid[i][j] != '\0'; j++)
			lowered[j] = (char)(valid[i][j] >= 'A' && valid[i][j] <= 'Z' ?
			    valid[i][j] + 32 : valid[i][j]);
		lowered[j] = '\0';
		assert_string_equal(out, lowered);
	}
	/* The 32 symbols in order are the 20 bytes 00 44 32 14 c7 ... */
	assert_int_equal(bech32_decode(valid[3], strlen(valid[3]), hrp, sizeof(hrp), data,
	    sizeof(data), &n), 0);
	assert_int_equal(n, 20);
	assert_int_equal(data[0], 0x00);
	assert_int_equal(data[1], 0x44);
	assert_int_equal(data[2], 0x32);
	assert_int_equal(data[3], 0x14);
	assert_int_equal(data[4], 0xc7);
	assert_int_equal(data[19], 0xdf);
	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		assert_int_equal(bech32_decode(invalid[i], strlen(invalid[i]), hrp, sizeof(hrp),
		    data, sizeof(data), &n), -1);

	/* Upper-case encoding and every length 0..40 round trip. */
	for (i = 0; i <= 40; i++) {
		RAND_bytes(data, (int)i);
		assert_true(bech32_encode(out, sizeof(out), "test", data, i, (int)(i & 1)) > 0);
		assert_int_equal(bech32_decode(out, strlen(out), hrp, sizeof(hrp), data2,
		    sizeof(data2), &n2), 0);
		assert_string_equal(hrp, i & 1 ? "TEST" : "test");
		assert_int_equal(n2, i);
		assert_memory_equal(data, data2, i);
		/* Any single-character substitution breaks the checksum. */
		out[strlen(out) - 2] = out[strlen(out) - 2] == 'q' || out[strlen(out) - 2] == 'Q' ?
		    (i & 1 ? 'P' : 'p') : (i & 1 ? 'Q' : 'q');
		assert_int_equal(bech32_decode(out, strlen(out), hrp, sizeof(hrp), data2,
		    sizeof(data2), &n2), -1);
	}
	assert_int_equal(bech32_encode(out, 10, "age", data, 32, 0), -1);	/* too small */
	assert_int_equal(bech32_encode(out, sizeof(out), "AGE", data, 32, 0), -1);
}

static void
test_keys(void **state)
{
	struct age_err err = { "" };
	struct age_recipient r;
	struct age_identity ids[4], id;
	struct secbuf text;
	char s[AGE_RECIPIENT_LEN + 1], *kat, *pub, low[AGE_IDENTITY_LEN + 1];
	size_t n, len, i;

	/* The identity file age-keygen wrote, and the public key it printed in it. */
	kat = read_data("age-kat-identity.txt", &len);
	assert_int_equal(age_identity_parse_file(kat, len, ids, 4, &n, &err), 0);
	assert_int_equal(n, 1);
	age_identity_to_recipient(&ids[0], &r);
	assert_int_equal(age_recipient_format(&r, s, sizeof(s)), 0);
	pub = strstr(kat, "# public key: ");
	assert_non_null(pub);
	assert_memory_equal(pub + 14, s, AGE_RECIPIENT_LEN);
	assert_int_equal(age_recipient_parse(s, &r, &err), 0);
	age_identity_free(&ids[0]);

	/* Lowercase identities and uppercase recipients are not age's format. */
	pub = strstr(kat, "AGE-SECRET-KEY-1");
	assert_non_null(pub);
	for (i = 0; i < AGE_IDENTITY_LEN; i++)
		low[i] = (char)(pub[i] >= 'A' && pub[i] <= 'Z' ? pub[i] + 32 : pub[i]);
	low[i] = '\0';
	assert_int_equal(age_identity_parse(low, AGE_IDENTITY_LEN, &id, &err), -1);
	assert_int_equal(age_identity_parse(pub, AGE_IDENTITY_LEN, &id, &err), 0);
	age_identity_free(&id);
	for (i = 0; i < AGE_RECIPIENT_LEN; i++)
		s[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
	assert_int_equal(age_recipient_parse(s, &r, &err), -1);
	assert_int_equal(age_recipient_parse("age1qqqqqq", &r, &err), -1);
	free(kat);

	/* format -> parse_file round trip, CRLF and comments tolerated. */
	assert_int_equal(age_identity_format(&id1, &text, &err), 0);
	assert_non_null(memmem(text.p, text.len, "# public key: age1", 18));
	assert_int_equal(age_identity_parse_file((char *)text.p, text.len, ids, 4, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(ids[0].pk, id1.pk, 32);
	assert_memory_equal(ids[0].sk.p, id1.sk.p, 32);
	age_identity_free(&ids[0]);
	secbuf_free(&text);

	{
		char two[400];
		char a[AGE_IDENTITY_LEN + 8];
		struct secbuf t1, t2;

		assert_int_equal(age_identity_format(&id1, &t1, &err), 0);
		assert_int_equal(age_identity_format(&id2, &t2, &err), 0);
		snprintf(two, sizeof(two), "# two keys\r\n\r\n%.*s\r\n\n%.*s",
		    AGE_IDENTITY_LEN, strstr((char *)t1.p, "AGE-"),
		    AGE_IDENTITY_LEN, strstr((char *)t2.p, "AGE-"));
		assert_int_equal(age_identity_parse_file(two, strlen(two), ids, 4, &n, &err), 0);
		assert_int_equal(n, 2);
		assert_memory_equal(ids[1].pk, id2.pk, 32);
		age_identity_free(&ids[0]);
		age_identity_free(&ids[1]);
		/* Too many for the array. */
		assert_int_equal(age_identity_parse_file(two, strlen(two), ids, 1, &n, &err), -1);
		/* A bad line names its number, not its content. */
		snprintf(a, sizeof(a), "%.*s", AGE_IDENTITY_LEN, strstr((char *)t1.p, "AGE-"));
		a[20] = a[20] == 'Q' ? 'P' : 'Q';
		snprintf(two, sizeof(two), "# c\n%s\n", a);
		assert_int_equal(age_identity_parse_file(two, strlen(two), ids, 4, &n, &err), -1);
		assert_string_equal(err.msg, "identity file line 2: not an age X25519 identity");
		assert_int_equal(age_identity_parse_file("# only\n\n", 8, ids, 4, &n, &err), -1);
		assert_string_equal(err.msg, "no identities found");
		secbuf_free(&t1);
		secbuf_free(&t2);
	}

	{
		struct age_recipient rs[4];
		char f[300], p1[AGE_RECIPIENT_LEN + 1], p2[AGE_RECIPIENT_LEN + 1];

		age_recipient_format(&rc1, p1, sizeof(p1));
		age_recipient_format(&rc2, p2, sizeof(p2));
		snprintf(f, sizeof(f), "# escrow\n%s\n\n%s", p1, p2);
		assert_int_equal(age_recipients_parse_file(f, strlen(f), rs, 4, &n, &err), 0);
		assert_int_equal(n, 2);
		assert_memory_equal(rs[1].pk, rc2.pk, 32);
		snprintf(f, sizeof(f), "%s\nssh-ed25519 AAAA\n", p1);
		assert_int_equal(age_recipients_parse_file(f, strlen(f), rs, 4, &n, &err), -1);
	}
}

/* ---- round trips ------------------------------------------------------------------ */

static const size_t sizes[] = {
	0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 1 << 20
};

static void
check_layout(const struct mbuf *ct, size_t len)
{
	size_t chunks = len == 0 ? 1 : (len + CHUNK - 1) / CHUNK;

	assert_int_equal(ct->len - header_len(ct->p, ct->len), 16 + len + 16 * chunks);
}

static void
test_roundtrip_x25519(void **state)
{
	struct age_err err;
	struct age_keys k = keys_id(&id1), k2 = keys_id(&id2);
	struct mbuf ct = { 0 }, pt = { 0 };
	struct age_recipient both[2] = { rc2, rc1 };
	unsigned char *p;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p = pattern(sizes[i], (uint32_t)i + 1);
		enc_x25519(p, sizes[i], &rc1, 1, &ct);
		check_layout(&ct, sizes[i]);
		assert_int_equal(dec(ct.p, ct.len, &k, 0, &pt, &err), 0);
		assert_int_equal(pt.len, sizes[i]);
		assert_memory_equal(pt.p, p, sizes[i]);
		pt.len = 0;
		/* Small reads: the header and chunks arrive in pieces. */
		if (sizes[i] <= CHUNK + 1) {
			assert_int_equal(dec(ct.p, ct.len, &k, 13, &pt, &err), 0);
			assert_memory_equal(pt.p, p, sizes[i]);
			pt.len = 0;
		}
		/* The other identity is not a recipient. */
		assert_int_equal(dec(ct.p, ct.len, &k2, 0, &pt, &err), -1);
		assert_string_equal(err.msg, "no identity matched any recipient stanza");
		assert_int_equal(pt.len, 0);
		ct.len = 0;

		/* Two recipients: each identity alone decrypts. */
		enc_x25519(p, sizes[i], both, 2, &ct);
		assert_int_equal(dec(ct.p, ct.len, &k, 0, &pt, &err), 0);
		assert_memory_equal(pt.p, p, sizes[i]);
		pt.len = 0;
		assert_int_equal(dec(ct.p, ct.len, &k2, 0, &pt, &err), 0);
		assert_memory_equal(pt.p, p, sizes[i]);
		pt.len = 0;
		ct.len = 0;
		free(p);
	}
	mbuf_free(&ct);
	mbuf_free(&pt);
}

static void
test_roundtrip_scrypt(void **state)
{
	struct age_err err;
	struct age_keys k = keys_pass("pass phrase", 0), bad = keys_pass("pass phrasE", 0);
	struct age_keys ids = keys_id(&id1);
	struct mbuf ct = { 0 }, pt = { 0 };
	unsigned char *p;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p = pattern(sizes[i], (uint32_t)i + 100);
		enc_pass(p, sizes[i], "pass phrase", 10, &ct);
		check_layout(&ct, sizes[i]);
		assert_non_null(memmem(ct.p, ct.len, " 10\n", 4));
		assert_int_equal(dec(ct.p, ct.len, &k, 0, &pt, &err), 0);
		assert_int_equal(pt.len, sizes[i]);
		assert_memory_equal(pt.p, p, sizes[i]);
		pt.len = 0;
		assert_int_equal(dec(ct.p, ct.len, &bad, 0, &pt, &err), -1);
		assert_string_equal(err.msg, "incorrect passphrase");
		assert_int_equal(dec(ct.p, ct.len, &ids, 0, &pt, &err), -1);
		assert_int_equal(pt.len, 0);
		ct.len = 0;
		free(p);
	}
	/* The default work factor is age's. */
	enc_pass((const unsigned char *)"x", 1, "pass phrase", 0, &ct);
	assert_non_null(memmem(ct.p, ct.len, " 18\n", 4));
	mbuf_free(&ct);
	mbuf_free(&pt);
}

static int
tmpfd(const void *data, size_t len)
{
	FILE *f = tmpfile();
	int fd;

	assert_non_null(f);
	fd = dup(fileno(f));
	fclose(f);
	if (len > 0)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static size_t
fd_slurp(int fd, unsigned char *buf, size_t cap)
{
	ssize_t n;
	size_t len = 0;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)n;
	return len;
}

static void
test_fd_api(void **state)
{
	struct age_err err = { "" };
	struct age_keys k = keys_id(&id1), kp = keys_pass("fd pass", 0);
	size_t len = 2 * CHUNK + 5, n;
	unsigned char *p = pattern(len, 77), *back = malloc(len + 4 * CHUNK);
	struct secbuf sb;
	int in, out, out2;

	in = tmpfd(p, len);
	out = tmpfd(NULL, 0);
	assert_int_equal(age_encrypt_fd(in, out, &rc1, 1, &err), 0);
	lseek(out, 0, SEEK_SET);
	out2 = tmpfd(NULL, 0);
	assert_int_equal(age_decrypt_fd(out, out2, &k, &err), 0);
	assert_int_equal(fd_slurp(out2, back, len + 1), len);
	assert_memory_equal(back, p, len);

	/* In-memory decryption into a secbuf, with its size cap. */
	n = fd_slurp(out, back, len + 4 * CHUNK);
	assert_int_equal(age_decrypt_to_secbuf(back, n, &k, len, &sb, &err), 0);
	assert_int_equal(sb.len, len);
	assert_memory_equal(sb.p, p, len);
	secbuf_free(&sb);
	assert_int_equal(age_decrypt_to_secbuf(back, n, &k, len - 1, &sb, &err), -1);
	assert_null(sb.p);
	close(out2);
	close(out);

	/* Passphrase, and a failed decryption writes nothing it has not authenticated. */
	lseek(in, 0, SEEK_SET);
	out = tmpfd(NULL, 0);
	assert_int_equal(age_encrypt_passphrase_fd(in, out, (const unsigned char *)"fd pass",
	    7, 10, &err), 0);
	n = fd_slurp(out, back, len + 4 * CHUNK);
	back[n - 1] ^= 1;	/* last chunk */
	close(out);
	out = tmpfd(back, n);
	out2 = tmpfd(NULL, 0);
	assert_int_equal(age_decrypt_fd(out, out2, &kp, &err), -1);
	assert_string_equal(err.msg, "chunk 2 failed to authenticate");
	assert_int_equal(fd_slurp(out2, back, len), 2 * CHUNK);
	assert_memory_equal(back, p, 2 * CHUNK);
	close(out);
	close(out2);
	close(in);
	free(p);
	free(back);
}

/* ---- known answers from age(1) ----------------------------------------------------- */

static void
test_kat(void **state)
{
	struct age_identity ids[2];
	struct age_err err = { "" };
	struct age_keys k;
	struct mbuf pt = { 0 };
	char *idf, *ct, *plain, *pass;
	size_t idlen, ctlen, plen, passlen, n;

	idf = read_data("age-kat-identity.txt", &idlen);
	plain = read_data("age-kat-plain.txt", &plen);
	assert_int_equal(age_identity_parse_file(idf, idlen, ids, 2, &n, &err), 0);
	k = keys_id(&ids[0]);

	ct = read_data("age-kat-x25519.age", &ctlen);
	assert_int_equal(dec((unsigned char *)ct, ctlen, &k, 0, &pt, &err), 0);
	assert_int_equal(pt.len, plen);
	assert_memory_equal(pt.p, plain, plen);
	pt.len = 0;
	free(ct);

	pass = read_data("age-kat-passphrase.txt", &passlen);
	pass[strcspn(pass, "\n")] = '\0';
	k = keys_pass(pass, 0);
	ct = read_data("age-kat-scrypt.age", &ctlen);
	assert_int_equal(dec((unsigned char *)ct, ctlen, &k, 0, &pt, &err), 0);
	assert_int_equal(pt.len, plen);
	assert_memory_equal(pt.p, plain, plen);
	/* age wrote it with work factor 18: a cap of 17 refuses it. */
	pt.len = 0;
	k.max_logn = 17;
	assert_int_equal(dec((unsigned char *)ct, ctlen, &k, 0, &pt, &err), -1);
	assert_string_equal(err.msg, "scrypt work factor 2^18 exceeds the limit 2^17");
	free(ct);

	age_identity_free(&ids[0]);
	free(idf);
	free(plain);
	free(pass);
	mbuf_free(&pt);
}

/* ---- tampering ---------------------------------------------------------------------- */

static void
test_bitflips(void **state)
{
	struct age_err err;
	struct age_keys k = keys_id(&id1);
	struct mbuf ct = { 0 }, pt = { 0 };
	unsigned char *p = pattern(200, 5);
	size_t i, hdr;
	int bit;

	enc_x25519(p, 200, &rc1, 1, &ct);
	hdr = header_len(ct.p, ct.len);
	for (i = 0; i < ct.len; i++) {
		for (bit = 0; bit < 8; bit++) {
			ct.p[i] ^= (unsigned char)(1 << bit);
			assert_int_equal(dec(ct.p, ct.len, &k, 0, &pt, &err), -1);
			assert_int_equal(pt.len, 0);	/* nothing unauthenticated */
			assert_true(err.msg[0] != '\0');
			if (i >= hdr + 16)
				assert_string_equal(err.msg, "chunk 0 failed to authenticate");
			ct.p[i] ^= (unsigned char)(1 << bit);
		}
	}
	assert_int_equal(dec(ct.p, ct.len, &k, 0, &pt, &err), 0);
	assert_memory_equal(pt.p, p, 200);
	free(p);
	mbuf_free(&ct);
	mbuf_free(&pt);
}

static void
truncate_at(const struct mbuf *ct, size_t i, const struct age_keys *k, const unsigned char *p)
{
	struct age_err err;
	struct mbuf pt = { 0 };

	assert_int_equal(dec(ct->p, i, k, 0, &pt, &err), -1);
	/* Only whole authenticated chunks may have come out. */
	assert_true(pt.len == 0 || pt.len == CHUNK);
	assert_memory_equal(pt.p, p, pt.len);
	mbuf_free(&pt);
}

static void
test_truncation(void **state)
{
	struct age_err err;
	struct age_keys k = keys_id(&id1), kp = keys_pass("t", 0);
	struct mbuf ct = { 0 }, pt = { 0 };
	size_t len = CHUNK + 1, i, hdr;
	unsigned char *p = pattern(len, 9);

	/* Every offset, under a cheap scrypt stanza so the loop stays fast. */
	enc_pass(p, len, "t", 1, &ct);
	for (i = 0; i < ct.len; i++)
		truncate_at(&ct, i, &kp, p);
	ct.len = 0;
	/* X25519: every offset of header, nonce and both chunk edges. */
	enc_x25519(p, len, &rc1, 1, &ct);
	hdr = header_len(ct.p, ct.len);
	for (i = 0; i < ct.len; i++)
		if (i < hdr + 64 || (i > hdr + CHUNK - 64 && i < hdr + CHUNK + 64) ||
		    i > ct.len - 64)
			truncate_at(&ct, i, &k, p);
	/* Cut right after the first (non-final) chunk. */
	assert_int_equal(dec(ct.p, ct.len - 17, &k, 0, &pt, &err), -1);
	assert_string_equal(err.msg, "truncated payload (final chunk missing)");
	free(p);
	mbuf_free(&ct);
	mbuf_free(&pt);
}

/* Replace the first occurrence of from with to (header edits; MAC is checked later). */
static void
edit(struct mbuf *m, const char *from, const char *to)
{
	unsigned char *at = memmem(m->p, m->len, from, strlen(from));
	size_t fl = strlen(from), tl = strlen(to), off;

	assert_non_null(at);
	off = (size_t)(at - m->p);
	if (tl > fl)
		mbuf_write(m, to, tl - fl);	/* grow */
	memmove(m->p + off + tl, m->p + off + fl, m->len - (tl > fl ? tl - fl : 0) - off - fl);
	memcpy(m->p + off, to, tl);
	if (fl > tl)
		m->len -= fl - tl;
}

static void
expect_fail(const struct mbuf *m, const struct age_keys *k, const char *msg)
{
	struct age_err err;
	struct mbuf pt = { 0 };

	assert_int_equal(dec(m->p, m->len, k, 0, &pt, &err), -1);
	assert_int_equal(pt.len, 0);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("expected \"%s\", got \"%s\"", msg, err.msg);
	mbuf_free(&pt);
}

static void
copy(struct mbuf *dst, const struct mbuf *src)
{
	dst->len = 0;
	mbuf_write(dst, src->p, src->len);
}

/* The body text of the first stanza (43 chars for X25519 and scrypt). */
static char *
body_line(const struct mbuf *m, char out[64])
{
	const unsigned char *a = memmem(m->p, m->len, "\n-> ", 4), *b;

	assert_non_null(a);
	a = (const unsigned char *)memchr(a + 1, '\n', m->len - (size_t)(a + 1 - m->p)) + 1;
	b = memchr(a, '\n', m->len - (size_t)(a - m->p));
	assert_int_equal(b - a, 43);
	memcpy(out, a, 43);
	out[43] = '\0';
	return out;
}

static void
test_malformed_header(void **state)
{
	struct age_keys k = keys_id(&id1), kp = keys_pass("pw", 0), kp9 = keys_pass("pw", 9);
	struct mbuf good = { 0 }, m = { 0 }, sc = { 0 };
	char body[64], line[200], alt[64], big[2000], fill[1901];
	unsigned char *a;
	size_t i;

	enc_x25519((const unsigned char *)"hello", 5, &rc1, 1, &good);
	body_line(&good, body);

	copy(&m, &good);
	edit(&m, "age-encryption.org/v1", "age-encryption.org/v2");
	expect_fail(&m, &k, "unsupported age format version");
	copy(&m, &good);
	edit(&m, "age-encryption.org/v1\n", "-----BEGIN AGE ENCRYPTED FILE-----\n");
	expect_fail(&m, &k, "armored (PEM) age files are not supported");
	m.len = 0;
	mbuf_write(&m, "hello world\n", 12);
	expect_fail(&m, &k, "not an age v1 file");
	m.len = 0;
	expect_fail(&m, &k, "empty input");

	/* Non-canonical base64: the 43rd char carries 2 unused bits; set one. */
	{
		static const char abc[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		size_t v = (size_t)(strchr(abc, body[42]) - abc);

		assert_int_equal(v & 3, 0);
		snprintf(alt, sizeof(alt), "%s", body);
		alt[42] = abc[v | 1];
		copy(&m, &good);
		edit(&m, body, alt);
		expect_fail(&m, &k, "stanza body is not canonical base64");
		/* The same in the ephemeral share argument. */
		a = memmem(good.p, good.len, "-> X25519 ", 10);
		assert_non_null(a);
		copy(&m, &good);
		v = (size_t)(strchr(abc, a[10 + 42]) - abc);
		m.p[(size_t)(a - good.p) + 10 + 42] = (unsigned char)abc[v | 2];
		expect_fail(&m, &k, "malformed X25519 stanza");
	}

	/* Padding. */
	snprintf(line, sizeof(line), "%s=", body);
	copy(&m, &good);
	edit(&m, body, line);
	expect_fail(&m, &k, "stanza body is not unpadded base64");

	/* A body line over 64 columns. */
	snprintf(line, sizeof(line), "%s%s", body, "AAAAAAAAAAAAAAAAAAAAAAAA");
	copy(&m, &good);
	edit(&m, body, line);
	expect_fail(&m, &k, "stanza body line longer than 64 columns");

	/* A full 64-column line must be followed by a final short line. */
	copy(&m, &good);
	edit(&m, "\n---", "\n-> grease\n"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n---");
	expect_fail(&m, &k, "stanza body is missing its final short line");
	/* A stanza without any body line. */
	copy(&m, &good);
	edit(&m, "\n---", "\n-> grease\n---");
	expect_fail(&m, &k, "stanza body is missing its final short line");

	/* Grease with a correct body is fine, but the MAC then fails. */
	copy(&m, &good);
	edit(&m, "\n---", "\n-> grease a b\n"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\n---");
	expect_fail(&m, &k, "header MAC mismatch");

	/* Argument syntax. */
	copy(&m, &good);
	edit(&m, "-> X25519 ", "-> X25519  ");
	expect_fail(&m, &k, "empty stanza argument");
	copy(&m, &good);
	edit(&m, "-> X25519 ", "->X25519 ");
	expect_fail(&m, &k, "malformed header line (expected a stanza or the MAC)");
	copy(&m, &good);
	edit(&m, "\n---", "\n-> a b c d e f g h i j k l m n o p q\n\n---");
	expect_fail(&m, &k, "too many stanza arguments");
	copy(&m, &good);
	edit(&m, "-> X25519 ", "-> X25519 \x01");
	expect_fail(&m, &k, "invalid character in stanza arguments");
	copy(&m, &good);
	edit(&m, "\n-> X25519 ", "\r\n-> X25519 ");
	expect_fail(&m, &k, "unsupported age format version");
	copy(&m, &good);
	edit(&m, "-> X25519 ", "-> X25519 AAAA ");
	expect_fail(&m, &k, "malformed X25519 stanza");

	/* MAC line syntax. */
	copy(&m, &good);
	edit(&m, "\n--- ", "\n---  ");
	expect_fail(&m, &k, "malformed header MAC line");

	/* No stanzas; too many; too large. */
	copy(&m, &good);
	{
		unsigned char *b = (unsigned char *)memmem(m.p, m.len, "\n---", 4) + 1;

		a = (unsigned char *)memmem(m.p, m.len, "\n-> ", 4) + 1;
		memmove(a, b, m.len - (size_t)(b - m.p));
		m.len -= (size_t)(b - a);
	}
	expect_fail(&m, &k, "header has no recipient stanzas");
	copy(&m, &good);
	for (i = 0; i < AGE_MAX_STANZAS; i++)
		edit(&m, "\n---", "\n-> g\n\n---");
	expect_fail(&m, &k, "too many stanzas in header (at most 64)");
	copy(&m, &good);
	memset(fill, 'A', 1900);
	fill[1900] = '\0';
	snprintf(big, sizeof(big), "\n-> %s\n\n---", fill);
	for (i = 0; i < 40; i++)
		edit(&m, "\n---", big);
	expect_fail(&m, &k, "header too large (over 65536 bytes)");
	/* Truncated inside the header. */
	m.len = 0;
	mbuf_write(&m, good.p, header_len(good.p, good.len) - 10);
	expect_fail(&m, &k, "truncated header");

	/* scrypt: alone, bounded work factor, canonical number. */
	enc_pass((const unsigned char *)"hello", 5, "pw", 10, &sc);
	copy(&m, &sc);
	snprintf(line, sizeof(line), "\n-> X25519 %.43s\n%s\n---", body, body);
	edit(&m, "\n---", line);
	expect_fail(&m, &kp, "an scrypt stanza must be the only stanza in the header");
	copy(&m, &good);
	edit(&m, "\n---", "\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\n"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n---");
	expect_fail(&m, &k, "an scrypt stanza must be the only stanza in the header");
	copy(&m, &sc);
	expect_fail(&m, &kp9, "scrypt work factor 2^10 exceeds the limit 2^9");
	copy(&m, &sc);
	edit(&m, " 10\n", " 23\n");
	expect_fail(&m, &kp, "scrypt work factor 2^23 exceeds the limit 2^22");
	copy(&m, &sc);
	edit(&m, " 10\n", " 9999999\n");
	expect_fail(&m, &kp, "scrypt work factor 2^9999999 exceeds the limit 2^22");
	copy(&m, &sc);
	edit(&m, " 10\n", " 010\n");
	expect_fail(&m, &kp, "malformed scrypt stanza");
	copy(&m, &sc);
	edit(&m, " 10\n", " 0\n");
	expect_fail(&m, &kp, "malformed scrypt stanza");
	copy(&m, &sc);
	edit(&m, " 10\n", " 10 x\n");
	expect_fail(&m, &kp, "malformed scrypt stanza");

	mbuf_free(&good);
	mbuf_free(&m);
	mbuf_free(&sc);
}

/*
 * Hand-built payloads for layouts the writer never produces: an independent
 * STREAM sealer keyed from a file key we chose, under a header from the
 * production header builder.
 */
struct spec {
	size_t len;
	int last;
};

static void
craft(const struct spec *sp, size_t n, const unsigned char *pt, struct mbuf *out)
{
	unsigned char fk[16], nonce[16], key[32], iv[12], hdr[4096], tag[16], *buf;
	struct age_err err = { "" };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	size_t hlen, i, off = 0;
	int l;

	RAND_bytes(fk, 16);
	RAND_bytes(nonce, 16);
	assert_int_equal(age_header_build(fk, &rc1, 1, NULL, 0, 0, hdr, sizeof(hdr), &hlen,
	    &err), 0);
	mbuf_write(out, hdr, hlen);
	mbuf_write(out, nonce, 16);
	assert_int_equal(age_hkdf(fk, 16, nonce, 16, "payload", key, 32), 0);
	buf = malloc(CHUNK);
	for (i = 0; i < n; i++) {
		memset(iv, 0, sizeof(iv));
		iv[10] = (unsigned char)i;
		iv[9] = (unsigned char)(i >> 8);
		iv[11] = (unsigned char)sp[i].last;
		assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, iv), 1);
		l = 0;
		if (sp[i].len > 0)
			assert_int_equal(EVP_EncryptUpdate(ctx, buf, &l, pt + off, (int)sp[i].len), 1);
		assert_int_equal(EVP_EncryptFinal_ex(ctx, buf + l, &l), 1);
		assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag), 1);
		mbuf_write(out, buf, sp[i].len);
		mbuf_write(out, tag, 16);
		off += sp[i].len;
	}
	free(buf);
	EVP_CIPHER_CTX_free(ctx);
}

static void
test_malformed_stream(void **state)
{
	struct age_keys k = keys_id(&id1);
	struct age_err err;
	struct mbuf m = { 0 }, pt = { 0 };
	unsigned char *p = pattern(3 * CHUNK, 11);

	/* Sanity: the independent sealer agrees with the reader. */
	{
		struct spec s[] = { { CHUNK, 0 }, { CHUNK, 0 }, { 10, 1 } };
		craft(s, 3, p, &m);
		assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), 0);
		assert_int_equal(pt.len, 2 * CHUNK + 10);
		assert_memory_equal(pt.p, p, pt.len);
		m.len = pt.len = 0;
	}
	{	/* A full final chunk is allowed. */
		struct spec s[] = { { CHUNK, 0 }, { CHUNK, 1 } };
		craft(s, 2, p, &m);
		assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), 0);
		assert_int_equal(pt.len, 2 * CHUNK);
		m.len = pt.len = 0;
	}
	{	/* An empty final chunk only when it is the only one. */
		struct spec s[] = { { 0, 1 } };
		craft(s, 1, p, &m);
		assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), 0);
		assert_int_equal(pt.len, 0);
		m.len = 0;
	}
	{
		struct spec s[] = { { CHUNK, 0 }, { 0, 1 } };
		craft(s, 2, p, &m);
		assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), -1);
		assert_string_equal(err.msg, "empty final chunk after a full chunk");
		m.len = pt.len = 0;
	}
	{	/* No chunk flagged final. */
		struct spec s[] = { { CHUNK, 0 }, { CHUNK, 0 } };
		craft(s, 2, p, &m);
		assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), -1);
		assert_string_equal(err.msg, "truncated payload (final chunk missing)");
		assert_int_equal(pt.len, CHUNK);
		m.len = pt.len = 0;
	}
	{	/* A short non-final chunk. */
		struct spec s[] = { { 100, 0 } };
		craft(s, 1, p, &m);
		assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), -1);
		assert_string_equal(err.msg, "chunk 0 failed to authenticate");
		m.len = pt.len = 0;
	}
	{	/* Data after a full final chunk. */
		struct spec s[] = { { CHUNK, 1 }, { 10, 1 } };
		craft(s, 2, p, &m);
		assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), -1);
		assert_string_equal(err.msg, "trailing data after the final chunk");
		assert_int_equal(pt.len, 0);
		m.len = pt.len = 0;
	}
	{	/* Chunks out of order. */
		struct spec s[] = { { CHUNK, 0 }, { CHUNK, 0 }, { 1, 1 } };
		unsigned char tmp[CHUNK + 16];
		size_t off;
		craft(s, 3, p, &m);
		off = header_len(m.p, m.len) + 16;
		memcpy(tmp, m.p + off, sizeof(tmp));
		memcpy(m.p + off, m.p + off + sizeof(tmp), sizeof(tmp));
		memcpy(m.p + off + sizeof(tmp), tmp, sizeof(tmp));
		assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), -1);
		assert_string_equal(err.msg, "chunk 0 failed to authenticate");
		assert_int_equal(pt.len, 0);
		m.len = pt.len = 0;
	}

	/* Trailing bytes after writer output, final chunk full or short. */
	enc_x25519(p, CHUNK, &rc1, 1, &m);
	mbuf_write(&m, "x", 1);
	assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), -1);
	assert_string_equal(err.msg, "trailing data after the final chunk");
	m.len = pt.len = 0;
	enc_x25519(p, 100, &rc1, 1, &m);
	mbuf_write(&m, "x", 1);
	assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), -1);
	assert_int_equal(pt.len, 0);
	m.len = pt.len = 0;
	/* A missing nonce. */
	enc_x25519(p, 1, &rc1, 1, &m);
	m.len = header_len(m.p, m.len) + 15;
	assert_int_equal(dec(m.p, m.len, &k, 0, &pt, &err), -1);
	assert_string_equal(err.msg, "truncated payload (no nonce)");

	free(p);
	mbuf_free(&m);
	mbuf_free(&pt);
}

static void
test_writer_misuse(void **state)
{
	struct age_err err = { "" };
	struct mbuf ct = { 0 };
	struct age_writer *w;
	struct age_recipient zero;

	assert_null(age_writer_new(&rc1, 0, mbuf_write, &ct, &err));
	assert_null(age_writer_new(&rc1, AGE_MAX_STANZAS + 1, mbuf_write, &ct, &err));
	assert_null(age_writer_new_passphrase((const unsigned char *)"", 0, 10, mbuf_write,
	    &ct, &err));
	assert_string_equal(err.msg, "empty passphrase");
	assert_null(age_writer_new_passphrase((const unsigned char *)"x", 1, 23, mbuf_write,
	    &ct, &err));
	/* A low-order recipient key gives an all-zero shared secret. */
	memset(&zero, 0, sizeof(zero));
	assert_null(age_writer_new(&zero, 1, mbuf_write, &ct, &err));
	assert_string_equal(err.msg, "recipient public key is a low-order point");

	w = age_writer_new(&rc1, 1, mbuf_write, &ct, &err);
	assert_non_null(w);
	assert_int_equal(age_writer_finish(w, &err), 0);
	assert_int_equal(age_writer_write(w, "x", 1, &err), -1);
	assert_int_equal(age_writer_finish(w, &err), -1);
	age_writer_free(w);
	age_writer_free(NULL);
	age_reader_free(NULL);
	mbuf_free(&ct);
}

static void
test_low_order_share(void **state)
{
	struct age_keys k = keys_id(&id1);
	struct mbuf m = { 0 };
	unsigned char *a;

	/* Replace the ephemeral share with the all-zero point. */
	enc_x25519((const unsigned char *)"x", 1, &rc1, 1, &m);
	a = memmem(m.p, m.len, "-> X25519 ", 10);
	assert_non_null(a);
	memset(a + 10, 'A', 43);
	expect_fail(&m, &k, "X25519 stanza has a low-order ephemeral share");
	mbuf_free(&m);
}

/* The SSE2 ROMix gives OpenSSL's bytes, and RFC 7914's vector (N = 16384, r = 8, p = 1). */
static void
test_scrypt_matches_openssl(void **state)
{
	static const unsigned char rfc[64] = {
		0x70, 0x23, 0xbd, 0xcb, 0x3a, 0xfd, 0x73, 0x48, 0x46, 0x1c, 0x06, 0xcd, 0x81, 0xfd,
		0x38, 0xeb, 0xfd, 0xa8, 0xfb, 0xba, 0x90, 0x4f, 0x8e, 0x3e, 0xa9, 0xb5, 0x43, 0xf6,
		0x54, 0x5d, 0xa1, 0xf2, 0xd5, 0x43, 0x29, 0x55, 0x61, 0x3f, 0x0f, 0xcf, 0x62, 0xd4,
		0x97, 0x05, 0x24, 0x2a, 0x9a, 0xf9, 0xe6, 0x1e, 0x85, 0xdc, 0x0d, 0x65, 0x1e, 0x40,
		0xdf, 0xcf, 0x01, 0x7b, 0x45, 0x57, 0x58, 0x87,
	};
	static const char *pass[] = { "", "pleaseletmein", "a longer passphrase, with a comma" };
	unsigned char a[64], b[64], salt[32];
	int logn;
	size_t i;

	int simd;

	(void)state;
	/*
	 * Both cores: the AVX-512VL one where the CPU has it, and SSE2 always;
	 * the table on huge pages and not (the same bytes, whatever the memory).
	 */
	for (simd = 3; simd >= 0; simd--) {
		age_scrypt_simd(simd & 1);
		age_scrypt_huge_room(simd & 2 ? UINT64_MAX : 0);
		assert_int_equal(age_scrypt((const unsigned char *)"pleaseletmein", 13,
		    (const unsigned char *)"SodiumChloride", 14, 14, a, 64), 0);
		assert_memory_equal(a, rfc, 64);
		for (logn = 1; logn <= 12; logn++)
			for (i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
				assert_int_equal(RAND_bytes(salt, sizeof(salt)), 1);
				assert_int_equal(age_scrypt((const unsigned char *)pass[i],
				    strlen(pass[i]), salt, 16 + (size_t)logn, logn, a, sizeof(a)), 0);
				assert_int_equal(age_scrypt_openssl((const unsigned char *)pass[i],
				    strlen(pass[i]), salt, 16 + (size_t)logn, logn, b, sizeof(b)), 0);
				assert_memory_equal(a, b, sizeof(a));
			}
	}
	age_scrypt_simd(1);
	age_scrypt_huge_room(0);
	/* What the parent hands the decoder counts whole huge-page blocks only. */
	assert_int_equal(age_scrypt_huge_free() % (2u << 20), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bech32_vectors),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_roundtrip_x25519),
		cmocka_unit_test(test_roundtrip_scrypt),
		cmocka_unit_test(test_scrypt_matches_openssl),
		cmocka_unit_test(test_fd_api),
		cmocka_unit_test(test_kat),
		cmocka_unit_test(test_bitflips),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_malformed_header),
		cmocka_unit_test(test_malformed_stream),
		cmocka_unit_test(test_writer_misuse),
		cmocka_unit_test(test_low_order_share),
	};

	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
