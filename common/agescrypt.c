/*
 * scrypt for age's stanza (r = 8, p = 1).  PBKDF2-HMAC-SHA-256 is
 * OpenSSL's; ROMix is here.  The words of each 64-byte block are kept in
 * diagonal order (word 5i mod 16 at position i), so that Salsa20/8's
 * column and row rounds are four vector additions, rotations and three
 * lane shuffles each, with no transposes: the layout of Colin Percival's
 * SSE2 scrypt.  Word 0 keeps its place, so Integerify reads it directly.
 * The 256 MiB table (at age's 2^18) is populated when it is mapped (one
 * call instead of a fault a page).  On huge pages its random reads miss the
 * TLB far less (0.3 s of a 1.0 s scrypt here), but a fresh process asking
 * for 128 of them makes the kernel compact memory first when there are not
 * that many free, which took seconds here when memory was fragmented: so
 * only when the caller saw at least twice the table's size free in blocks
 * of a huge page or more (age_scrypt_huge_room; the sandboxed decoder
 * cannot look, the parent looks for it).  The table holds values derived
 * from the passphrase and is wiped before it is unmapped, as OpenSSL does.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>

#include "agescrypt.h"

#define R	8
#define BLK	(2 * R)			/* 64-byte blocks in one 128*r unit */
#define UNIT	(128 * R)

int
age_scrypt_openssl(const unsigned char *pass, size_t passlen, const unsigned char *salt,
    size_t saltlen, int logn, unsigned char *out, size_t outlen)
{
	uint64_t n = (uint64_t)1 << logn, maxmem;
	uint32_t r = R, par = 1;
	OSSL_PARAM params[7];
	EVP_KDF_CTX *kctx;
	EVP_KDF *kdf;
	int ret = -1;

	/* OpenSSL needs 128*r*(N+2) for V plus 128*r*p for B; leave some slack. */
	maxmem = (uint64_t)UNIT * (n + 2 + par) + (1 << 20);
	if ((kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL)) == NULL)
		return -1;
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (kctx == NULL)
		return -1;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    passlen > 0 ? (void *)pass : (void *)"", passlen);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par);
	params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	params[6] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
		ret = 0;
	EVP_KDF_CTX_free(kctx);
	return ret;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23
#endif

static uint64_t huge_room;

void
age_scrypt_huge_room(uint64_t bytes)
{
	huge_room = bytes;
}

/* One line of /proc/buddyinfo: the bytes free in blocks of at least 2^min_order pages. */
static uint64_t
buddy_line(const char *line, int min_order, uint64_t page)
{
	const char *p = strstr(line, "zone");
	unsigned long long n;
	uint64_t sum = 0;
	int order, used;

	if (p == NULL)
		return 0;
	p += 4;
	while (*p == ' ')
		p++;
	while (*p != '\0' && *p != ' ')	/* the zone's name */
		p++;
	for (order = 0; sscanf(p, "%llu%n", &n, &used) == 1 && order < 64; order++, p += used)
		if (order >= min_order)
			sum += (uint64_t)n * (page << order);
	return sum;
}

uint64_t
age_scrypt_huge_free(void)
{
	char line[512], mode[128];
	unsigned long long hpage = 0;
	uint64_t page = 4096, sum = 0;
	int min_order = 0;
	FILE *f;

	/* Transparent huge pages off for madvise()d memory: nothing to gain. */
	if ((f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re")) == NULL)
		return 0;
	if (fgets(mode, sizeof(mode), f) == NULL || strstr(mode, "[never]") != NULL) {
		fclose(f);
		return 0;
	}
	fclose(f);
	if ((f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re")) == NULL)
		return 0;
	if (fscanf(f, "%llu", &hpage) != 1 || hpage < page) {
		fclose(f);
		return 0;
	}
	fclose(f);
	while ((page << min_order) < hpage)
		min_order++;
	if ((f = fopen("/proc/buddyinfo", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		sum += buddy_line(line, min_order, page);
	fclose(f);
	return sum;
}

#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>

typedef uint32_t v4u32 __attribute__((vector_size(16)));

/* Written as a rotate the compiler can see, so that AVX-512VL makes it one instruction. */
#define ROTXOR(dst, t, s) do { \
	v4u32 t_ = (v4u32)(t); \
	dst = _mm_xor_si128(dst, (__m128i)((t_ << (s)) | (t_ >> (32 - (s))))); \
} while (0)

/* Four quarter-rounds at once: the columns as (X0, X1, X2, X3), the rows as (X0, X3, X2, X1). */
#define HALF_ROUND(a, b, c, d, T) do { \
	T = _mm_add_epi32(a, d); \
	ROTXOR(b, T, 7); \
	T = _mm_add_epi32(b, a); \
	ROTXOR(c, T, 9); \
	T = _mm_add_epi32(c, b); \
	ROTXOR(d, T, 13); \
	T = _mm_add_epi32(d, c); \
	ROTXOR(a, T, 18); \
} while (0)

/* B = B + Salsa20/8 rounds(B), B in diagonal order. */
static inline __attribute__((always_inline)) void
salsa8(__m128i B[4])
{
	__m128i X0 = B[0], X1 = B[1], X2 = B[2], X3 = B[3], T;
	int i;

	for (i = 0; i < 8; i += 2) {
		HALF_ROUND(X0, X1, X2, X3, T);
		/* The rows are the same operations once the lanes are turned. */
		X1 = _mm_shuffle_epi32(X1, 0x93);
		X2 = _mm_shuffle_epi32(X2, 0x4E);
		X3 = _mm_shuffle_epi32(X3, 0x39);
		HALF_ROUND(X0, X3, X2, X1, T);
		X1 = _mm_shuffle_epi32(X1, 0x39);
		X2 = _mm_shuffle_epi32(X2, 0x4E);
		X3 = _mm_shuffle_epi32(X3, 0x93);
	}
	B[0] = _mm_add_epi32(B[0], X0);
	B[1] = _mm_add_epi32(B[1], X1);
	B[2] = _mm_add_epi32(B[2], X2);
	B[3] = _mm_add_epi32(B[3], X3);
}

/* out = BlockMix(in XOR v), v NULL for none; out is neither in nor v. */
static inline __attribute__((always_inline)) void
blockmix(const __m128i *in, const __m128i *v, __m128i *out)
{
	__m128i X[4], b;
	int i, k;

#pragma GCC unroll 4
	for (k = 0; k < 4; k++) {
		X[k] = in[(BLK - 1) * 4 + k];
		if (v != NULL)
			X[k] = _mm_xor_si128(X[k], v[(BLK - 1) * 4 + k]);
	}
	for (i = 0; i < BLK; i++) {
		/* Even blocks to the first half of the output, odd ones to the second. */
		__m128i *o = out + ((i & 1) * R + (i >> 1)) * 4;

#pragma GCC unroll 4
		for (k = 0; k < 4; k++) {
			b = in[i * 4 + k];
			if (v != NULL)
				b = _mm_xor_si128(b, v[i * 4 + k]);
			X[k] = _mm_xor_si128(X[k], b);
		}
		salsa8(X);
#pragma GCC unroll 4
		for (k = 0; k < 4; k++)
			o[k] = X[k];
	}
}

/* b (one unit, little-endian words) = ROMix(b); V holds n units, X and Y one each. */
static inline __attribute__((always_inline)) void
romix(unsigned char *b, __m128i *V, uint64_t n, __m128i *X, __m128i *Y)
{
	uint32_t *x = (uint32_t *)X;
	__m128i *t;
	uint64_t i, j;
	int k, w;

	for (k = 0; k < BLK; k++)
		for (w = 0; w < 16; w++)
			memcpy(&x[k * 16 + w], b + (k * 16 + (5 * w) % 16) * 4, 4);
	memcpy(V, X, UNIT);
	for (i = 1; i < n; i++)
		blockmix(V + (i - 1) * BLK * 4, NULL, V + i * BLK * 4);
	blockmix(V + (n - 1) * BLK * 4, NULL, X);
	for (i = 0; i < n; i++) {
		/* Integerify: the first word of the last block, still first. */
		j = ((const uint32_t *)X)[(BLK - 1) * 16] & (n - 1);
		blockmix(X, V + j * BLK * 4, Y);
		t = X;
		X = Y;
		Y = t;
	}
	x = (uint32_t *)X;
	for (k = 0; k < BLK; k++)
		for (w = 0; w < 16; w++)
			memcpy(b + (k * 16 + (5 * w) % 16) * 4, &x[k * 16 + w], 4);
}

/*
 * The same ROMix compiled twice: where AVX-512VL is there, the compiler
 * turns each shift-shift-or into one rotate (vprold), one instruction less
 * in each of Salsa20/8's dependent steps.
 */
__attribute__((target("avx512f,avx512vl"))) static void
romix_avx512(unsigned char *b, __m128i *V, uint64_t n, __m128i *X, __m128i *Y)
{
	romix(b, V, n, X, Y);
}

static void
romix_sse2(unsigned char *b, __m128i *V, uint64_t n, __m128i *X, __m128i *Y)
{
	romix(b, V, n, X, Y);
}

static int simd_off;

void
age_scrypt_simd(int on)
{
	simd_off = !on;
}

int
age_scrypt(const unsigned char *pass, size_t passlen, const unsigned char *salt,
    size_t saltlen, int logn, unsigned char *out, size_t outlen)
{
	unsigned char b[UNIT];
	uint64_t n;
	size_t len;
	__m128i *V;
	int huge, rc = -1;

	if (logn < 1)
		return -1;
	if (logn > 31)		/* Integerify reads one 32-bit word */
		return age_scrypt_openssl(pass, passlen, salt, saltlen, logn, out, outlen);
	if (passlen == 0)
		pass = (const unsigned char *)"";
	n = (uint64_t)1 << logn;
	len = (size_t)(n + 2) * UNIT;		/* the table, then X and Y */
	huge = huge_room / 2 >= len;
	V = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
	    (huge ? 0 : MAP_POPULATE), -1, 0);
	if (V == MAP_FAILED)
		return -1;
	/* Either may fail (an old kernel): the table then fills as it is first written. */
	if (huge) {
		(void)madvise(V, len, MADV_HUGEPAGE);
		(void)madvise(V, len, MADV_POPULATE_WRITE);
	}
	(void)madvise(V, len, MADV_DONTDUMP);
	if (PKCS5_PBKDF2_HMAC((const char *)pass, (int)passlen, salt, (int)saltlen, 1,
	    EVP_sha256(), sizeof(b), b) == 1) {
		if (!simd_off && __builtin_cpu_supports("avx512vl"))
			romix_avx512(b, V, n, V + n * BLK * 4, V + (n + 1) * BLK * 4);
		else
			romix_sse2(b, V, n, V + n * BLK * 4, V + (n + 1) * BLK * 4);
		if (PKCS5_PBKDF2_HMAC((const char *)pass, (int)passlen, b, sizeof(b), 1,
		    EVP_sha256(), (int)outlen, out) == 1)
			rc = 0;
	}
	explicit_bzero(b, sizeof(b));
	explicit_bzero(V, len);
	(void)munmap(V, len);
	return rc;
}
#else
void
age_scrypt_simd(int on)
{
	(void)on;
}

int
age_scrypt(const unsigned char *pass, size_t passlen, const unsigned char *salt,
    size_t saltlen, int logn, unsigned char *out, size_t outlen)
{
	return age_scrypt_openssl(pass, passlen, salt, saltlen, logn, out, outlen);
}
#endif
