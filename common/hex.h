/* Lowercase hex, the one encoder for digests, content ids and tokens. */
#ifndef VS_HEX_H
#define VS_HEX_H

#include <stddef.h>

/* out must hold 2 * n + 1 bytes; it is NUL-terminated. */
void hex_encode(const unsigned char *in, size_t n, char *out);

#endif
