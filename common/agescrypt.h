/*
 * scrypt (RFC 7914) with r = 8 and p = 1, the parameters of age's scrypt
 * stanza, for the one place that needs it (common/age.c).  Every unlock
 * pays it before anything else can start, so on x86-64 the Salsa20/8 core
 * runs in SSE2 registers (with AVX-512VL's rotate where the CPU has it);
 * elsewhere it is OpenSSL's.  The same bytes every way: the unit tests
 * compare them.
 */
#ifndef VS_AGESCRYPT_H
#define VS_AGESCRYPT_H

#include <stddef.h>
#include <stdint.h>

/* 2^logn iterations; 0, or -1 (out of memory, or PBKDF2 failed). */
int age_scrypt(const unsigned char *pass, size_t passlen, const unsigned char *salt,
    size_t saltlen, int logn, unsigned char *out, size_t outlen);
/* 0: the SSE2 core even where AVX-512VL is there (the tests run both). */
void age_scrypt_simd(int on);
/*
 * Bytes free in blocks of a transparent huge page or more (/proc/buddyinfo),
 * 0 where huge pages are off or unknown; and that figure handed to
 * age_scrypt, which puts its table on huge pages only when at most half of
 * it is needed (so that no compaction is ever waited for).
 */
uint64_t age_scrypt_huge_free(void);
void age_scrypt_huge_room(uint64_t bytes);
/* OpenSSL's, for the comparison. */
int age_scrypt_openssl(const unsigned char *pass, size_t passlen, const unsigned char *salt,
    size_t saltlen, int logn, unsigned char *out, size_t outlen);

#endif
