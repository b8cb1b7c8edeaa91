/*
 * Bech32 (BIP 173 checksum) as age uses it for recipients ("age1...") and
 * identities ("AGE-SECRET-KEY-1..."): 8-bit payloads, no 90-character limit.
 * Strings are all lowercase or all uppercase; mixed case is rejected.  The
 * human-readable part is returned in the case it was written in, so callers
 * can insist on the case their format prescribes.
 */
#ifndef VS_BECH32_H
#define VS_BECH32_H

#include <stddef.h>

#define BECH32_MAX_LEN	512	/* longest string accepted or produced */

/*
 * Encode len bytes of data under hrp (lowercase letters expected).  upper
 * selects an all-uppercase result.  Writes a NUL-terminated string into out.
 * Returns its length, or -1 if hrp is invalid or out is too small.
 */
int bech32_encode(char *out, size_t outcap, const char *hrp,
    const unsigned char *data, size_t len, int upper);

/*
 * Decode s (slen bytes, no NUL needed).  On success the human-readable part
 * is stored NUL-terminated in hrp (original case), the payload in data, its
 * length in *datalen, and 0 is returned.  -1 on any syntax, case, padding or
 * checksum error.  Temporaries are wiped: the payload may be a secret key.
 */
int bech32_decode(const char *s, size_t slen, char *hrp, size_t hrpcap,
    unsigned char *data, size_t datacap, size_t *datalen);

#endif
