/*
 * libFuzzer harness for the keyless age structure scan (common/agescan.c).
 *
 * Besides memory safety it checks its promises: a file it accepts has a
 * header that ends with the MAC line within the bytes given, and a payload
 * at least a nonce and a tag long.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "age.h"
#include "agescan.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agescan s;
	char why[160];

	if (agescan(data, size, size, &s, why, sizeof(why)) == 0) {
		if (s.header_len < 4 + 43 + 1 || s.header_len > size ||
		    data[s.header_len - 1] != '\n' ||
		    memcmp(data + s.header_len - 48, "--- ", 4) != 0 ||
		    size - s.header_len < 32 || s.nstanzas == 0)
			abort();
	} else if (memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	/* The same bytes as the head of a longer file: only the payload's length differs. */
	if (size > 0)
		(void)agescan(data, size, size + (uint64_t)data[size - 1] * 4099u, &s, why,
		    sizeof(why));
	return 0;
}
