/*
 * The decoder reads the archive and identity.age from fds it was handed,
 * does its arithmetic (scrypt, X25519, ChaCha20-Poly1305, tar) in memory,
 * and writes to its channel and its data pipe.  Beyond the common rows it
 * needs nothing: no sockets, no files, no process control.
 */
#include "sandbox.h"

static const struct sb_rule decoder_rules[] = {
	SB_ALLOW_SYS(read),	/* the archive and identity.age; listed for the reader's sake */
};

const struct sb_policy decoder_policy = {
	.name = "decoder",
	.rules = decoder_rules,
	.nrules = sizeof(decoder_rules) / sizeof(decoder_rules[0]),
	.landlock_deny_tcp = 1,
	.allow_fork = 0,
	.nofile = 16,
};
