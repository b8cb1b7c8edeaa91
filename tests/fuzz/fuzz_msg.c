/*
 * libFuzzer: the wire decoder, as every kind of peer, with and without an
 * fd.  A decoded message must re-validate, i.e. the checks are idempotent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned peers[] = { PEER_PARENT, PEER_WATCHER, PEER_UPLOADER,
	    PEER_STATUSD, PEER_CTL, PEER_DECODER };
	unsigned char again[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD];
	struct msg m, m2;
	const char *why, *why_fd;
	size_t i;

	for (i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
		/* Each decode its own reason: one that passes leaves its reason NULL. */
		int rv = msg_decode(data, size, peers[i], -1, &m, &why);
		int rv_fd = msg_decode(data, size, peers[i], 99, &m2, &why_fd);

		/* A type either always or never carries an fd: at most one of these passes. */
		if (rv == MSG_OK && rv_fd == MSG_OK)
			abort();
		if (rv == MSG_OK) {
			memcpy(again, &m.hdr, sizeof(m.hdr));
			memcpy(again + sizeof(m.hdr), &m.u, m.hdr.len);
			if (msg_decode(again, sizeof(m.hdr) + m.hdr.len, peers[i], -1, &m2,
			    &why) != MSG_OK)
				abort();
		} else if (rv != MSG_VIOLATION || why == NULL)
			abort();
		if ((rv_fd != MSG_OK && rv_fd != MSG_VIOLATION) ||
		    (rv_fd == MSG_VIOLATION && why_fd == NULL))
			abort();
	}
	return 0;
}
