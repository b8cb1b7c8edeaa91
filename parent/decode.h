/*
 * Opening an archive through vaultsync-decoder (DESIGN §4): the parent
 * hands it descriptors and the passphrase and gets entries back, which it
 * checks again and writes with arc_tree.  It never runs the age or tar
 * parser on bytes that came from a remote or from disk.  Called from a
 * worker thread; one decoder per archive, gone when it is freed.
 */
#ifndef VS_DECODE_H
#define VS_DECODE_H

#include <stddef.h>
#include <sys/types.h>

#include "archive.h"
#include "config.h"

/* How to start a decoder: filled from the daemon's state on the main thread (vault.c). */
struct decode_conf {
	char bin[CFG_PATH_MAX + 64];
	int system_mode;
	uid_t uid;
	gid_t gid;
	char chroot_dir[CFG_PATH_MAX + 16];
	int debug, insecure;
};

struct decoder;

/*
 * Start a decoder on identity.age (idfd) and, unless afd is -1, an archive;
 * the passphrase goes to it at once.  The descriptors stay the caller's.
 * NULL with a reason in err.
 */
struct decoder *decoder_start(const struct decode_conf *c, int idfd, int afd,
    const char *pass, size_t passlen, const struct arc_limits *lim, char *err, size_t errlen);
/*
 * Wait until identity.age has opened: 0, or -1 with the reason in err
 * (a wrong passphrase, a broken identity file, a decoder that died).
 */
int decoder_ready(struct decoder *d, char *err, size_t errlen);
/*
 * Write the archive's entries into dirfd (an empty directory on RAM) under
 * lim: 0 with the tar stream's SHA-256 and the counts, or -1 with the reason
 * in err and partial output for the caller to wipe.
 */
int decoder_unpack(struct decoder *d, int dirfd, const struct arc_limits *lim,
    unsigned char sha256[32], struct arc_stats *st, char *err, size_t errlen);
/*
 * The restore drill's structural check of a downloaded object (fd; the
 * decoder gets a read-only description of it), keyless, in a decoder of its own: 0 with wellformed and what the
 * scan found in desc, or -1 with the reason it could not look in err.
 */
int decoder_scan(const struct decode_conf *c, int fd, int *wellformed, char *desc,
    size_t desclen, char *err, size_t errlen);
/* Kill it if it still runs, reap it, pass on what it logged. */
void decoder_free(struct decoder *d);

#endif
