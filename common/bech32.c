#include <stdint.h>
#include <string.h>

#include "bech32.h"

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t
polymod_step(uint32_t chk, unsigned v)
{
	static const uint32_t gen[5] = {
		0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3
	};
	uint32_t top = chk >> 25;
	int i;

	chk = ((chk & 0x1ffffff) << 5) ^ v;
	for (i = 0; i < 5; i++)
		if ((top >> i) & 1)
			chk ^= gen[i];
	return chk;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* The checksum covers the lowercase hrp regardless of the case it was written in. */
static uint32_t
polymod_hrp(const char *hrp, size_t n)
{
	uint32_t chk = 1;
	size_t i;

	for (i = 0; i < n; i++)
		chk = polymod_step(chk, (unsigned)lower((unsigned char)hrp[i]) >> 5);
	chk = polymod_step(chk, 0);
	for (i = 0; i < n; i++)
		chk = polymod_step(chk, (unsigned)lower((unsigned char)hrp[i]) & 31);
	return chk;
}

int
bech32_encode(char *out, size_t outcap, const char *hrp,
    const unsigned char *data, size_t len, int upper)
{
	size_t hlen = strlen(hrp), n5 = (len * 8 + 4) / 5, total, i, o;
	uint32_t chk, acc = 0;
	unsigned bits = 0, v;

	if (hlen == 0 || n5 > BECH32_MAX_LEN)
		return -1;
	total = hlen + 1 + n5 + 6;
	if (total > BECH32_MAX_LEN || total + 1 > outcap)
		return -1;
	for (i = 0; i < hlen; i++) {
		unsigned char c = (unsigned char)hrp[i];
		if (c < 33 || c > 126 || (c >= 'A' && c <= 'Z'))
			return -1;
		out[i] = upper && c >= 'a' && c <= 'z' ? (char)(c - 32) : (char)c;
	}
	o = hlen;
	out[o++] = '1';
	chk = polymod_hrp(hrp, hlen);
	for (i = 0; i < len; i++) {
		acc = (acc << 8) | data[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			v = (acc >> bits) & 31;
			chk = polymod_step(chk, v);
			out[o++] = charset[v];
		}
	}
	if (bits > 0) {
		v = (acc << (5 - bits)) & 31;
		chk = polymod_step(chk, v);
		out[o++] = charset[v];
	}
	for (i = 0; i < 6; i++)
		chk = polymod_step(chk, 0);
	chk ^= 1;
	for (i = 0; i < 6; i++)
		out[o++] = charset[(chk >> (5 * (5 - i))) & 31];
	if (upper)
		for (i = hlen; i < o; i++)
			if (out[i] >= 'a' && out[i] <= 'z')
				out[i] = (char)(out[i] - 32);
	out[o] = '\0';
	explicit_bzero(&acc, sizeof(acc));
	return (int)o;
}

int
bech32_decode(const char *s, size_t slen, char *hrp, size_t hrpcap,
    unsigned char *data, size_t datacap, size_t *datalen)
{
	int has_lower = 0, has_upper = 0, ret = -1;
	size_t sep = 0, i, n = 0;
	uint32_t chk, acc = 0;
	unsigned bits = 0, v = 0;
	const char *p;

	if (slen < 8 || slen > BECH32_MAX_LEN)
		return -1;
	for (i = 0; i < slen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126)
			return -1;
		if (c >= 'a' && c <= 'z')
			has_lower = 1;
		else if (c >= 'A' && c <= 'Z')
			has_upper = 1;
		if (c == '1')
			sep = i;
	}
	if (has_lower && has_upper)
		return -1;
	/* The separator is the last '1'; at least one hrp char and six checksum chars. */
	if (sep < 1 || sep + 7 > slen || sep + 1 > hrpcap)
		return -1;

	chk = polymod_hrp(s, sep);
	for (i = sep + 1; i < slen; i++) {
		p = memchr(charset, lower((unsigned char)s[i]), 32);
		if (p == NULL)
			goto out;
		v = (unsigned)(p - charset);
		chk = polymod_step(chk, v);
		if (i >= slen - 6)
			continue;
		acc = ((acc << 5) | v) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (n >= datacap)
				goto out;
			data[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* Leftover bits are padding: fewer than five and all zero. */
	if (chk != 1 || bits >= 5 || (acc & ((1u << bits) - 1)) != 0)
		goto out;
	memcpy(hrp, s, sep);
	hrp[sep] = '\0';
	*datalen = n;
	ret = 0;
out:
	if (ret != 0 && n > 0)
		memset(data, 0, n);	/* caller's buffer, not a temporary */
	explicit_bzero(&acc, sizeof(acc));
	explicit_bzero(&v, sizeof(v));
	return ret;
}
