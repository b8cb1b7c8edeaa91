/*
 * Per-vault state on local disk, under StateDir/VAULT (0700):
 *   vault.tar.age   latest archive (age, to the vault's recipients)
 *   identity.age    the X25519 identity, passphrase-encrypted (scrypt)
 *   recipient       its public key, age1...
 *   key             32 random bytes: HMAC key for content ids (never leaves the machine)
 *   state           last saved plaintext hash, content id, ETag, dirty flag
 *   unlocked        present while the vault is unlocked (for adoption on restart)
 *   remote          what the remote holds: its ETag, the hash pushed, conflict,
 *                   an unfinished multipart upload (written by the main thread
 *                   only, while "state" is written by the save jobs)
 * Every write is atomic: temp file, fsync, rename, fsync of the directory.
 */
#ifndef VS_STORE_H
#define VS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "age.h"
#include "config.h"

#define STORE_PATH_MAX	(CFG_PATH_MAX + CFG_NAME_MAX + 32)
#define STORE_MAX_RECIPIENTS	(CFG_MAX_RECIPIENTS + 1)
#define STORE_DOUBT		32

struct vault_saved {
	char sha256[65];	/* hex, "" = never saved */
	char content_id[65];	/* hex */
	char etag[128];
	int dirty;		/* saved locally, not yet pushed */
	int64_t saved_at;
	uint64_t archive_bytes;
};

/* The remote side, StateDir/VAULT/remote. */
struct vault_remote {
	char etag[128];		/* of the latest object as we last wrote or read it */
	char pushed_sha256[65];	/* plaintext hash of what the remote latest holds, "" = nothing */
	int conflict;		/* another device wrote latest: no overwrite until pull/push --force */
	int identity_pushed;
	int weak_cas;		/* the server ignored a condition (HEAD compared instead) */
	int64_t last_push_at, last_ok_push_at, history_at;
	uint64_t uploaded_bytes;
	char mpu_key[192];	/* a multipart upload that may have been left unfinished */
	char mpu_id[256];
	/*
	 * Content ids of our writes of latest that the remote may hold: the last
	 * confirmed one (ours), and every attempt since whose outcome we never
	 * learned (the uploader or the daemon killed mid-PUT, a reply lost),
	 * written down before each PUT and dropped once refused.  All attempts
	 * since the last confirmed write carry the same If-Match, so at most one
	 * of them can have landed, but it can be any.  A 412 whose object
	 * carries one of these is our own write, not another device's.
	 */
	char ours[17];
	char doubt[STORE_DOUBT][17];
};

int store_remote_read(const char *dir, struct vault_remote *r);
int store_remote_write(const char *dir, const struct vault_remote *r, char *err, size_t errlen);

void store_dir(const struct cfg *c, const struct cfg_vault *v, char *buf, size_t len);
void store_file(const char *dir, const char *name, char *buf, size_t len);
int store_exists(const char *dir, const char *name);
int store_mkdir(const char *dir, char *err, size_t errlen);
int store_state_read(const char *dir, struct vault_saved *s);
int store_state_write(const char *dir, const struct vault_saved *s, char *err, size_t errlen);
/* Write data to dir/name atomically with the given mode. */
int store_write_atomic(const char *dir, const char *name, const void *data, size_t len,
    int mode, char *err, size_t errlen);
/* Read a small file whole (max bytes) into a malloc'ed, NUL-terminated buffer. */
int store_read_small(const char *dir, const char *name, size_t max, char **out, size_t *len,
    char *err, size_t errlen);
int store_key_load(const char *dir, unsigned char key[32], int create, char *err, size_t errlen);
/* The vault's own recipient plus its configured Recipient lines. */
int store_recipients(const struct cfg_vault *v, const char *dir, struct age_recipient *r,
    size_t *n, char *err, size_t errlen);
/* fsync a directory by path. */
int store_sync_dir(const char *dir);


/* Files a and b over their first n bytes: 0 equal, 1 different (*at: the first differing byte), -1 read error. */
int store_same_bytes(int a, int b, uint64_t n, uint64_t *at);

#endif
