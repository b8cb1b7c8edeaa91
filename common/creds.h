/*
 * The S3 credentials file (DESIGN §6, §10).  Only the uploader reads it: it
 * opens and reads the file while still privileged, then drops into a
 * sandbox that can open nothing.  The parent only asks creds_stat, before
 * it starts, whether the file is fit to be read: metadata, never a byte.
 *
 * Format: KEY=VALUE lines, an optional leading "export", '#' comment lines,
 * blank lines, CRLF tolerated, values optionally in matching single or
 * double quotes (no escapes), '#' after whitespace outside quotes starts a
 * comment.  Recognized keys: AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (required), AWS_SESSION_TOKEN and
 * AWS_CREDENTIAL_EXPIRATION (optional, RFC 3339).  Other keys are ignored.
 *
 * The file contents, the secret and the session token live only in secbufs.
 * Error messages carry a line number and a recognized key name, never any
 * part of a value: a mistyped line may well be a secret.
 */
#ifndef VS_CREDS_H
#define VS_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "secbuf.h"

#define CREDS_MAX_FILE		(64 * 1024)
#define CREDS_MAX_LINE		8192
#define CREDS_MIN_KEY_ID	3
#define CREDS_MAX_KEY_ID	128
#define CREDS_MAX_SECRET	128
#define CREDS_MAX_TOKEN		4096

struct creds {
	char access_key_id[CREDS_MAX_KEY_ID + 1];	/* not secret: [A-Za-z0-9] */
	struct secbuf secret;	/* AWS_SECRET_ACCESS_KEY, NUL-terminated, len excludes NUL */
	struct secbuf token;	/* AWS_SESSION_TOKEN; len 0 and p NULL if absent */
	int64_t expiry;		/* AWS_CREDENTIAL_EXPIRATION, unix seconds, 0 = none */
};

/*
 * Open path for reading without following a final symlink and check that it
 * is a regular file, mode 0600 or 0400, owned by the effective uid or root,
 * at most CREDS_MAX_FILE bytes.  Returns the fd, or -1 with *st
 * (CRED_ST_MISSING or CRED_ST_BAD_FILE) and a message in err.
 */
int creds_open(const char *path, enum cred_state *st, char *err, size_t errlen);

/*
 * The same checks as creds_open from lstat alone, without opening the file:
 * 0, or -1 with *st and the message creds_open would give.
 */
int creds_stat(const char *path, enum cred_state *st, char *err, size_t errlen);

/*
 * Read the whole of fd and parse it into c (c need not be initialized; it is
 * overwritten, not freed).  0 with *st = CRED_ST_OK, or -1 with *st
 * (CRED_ST_BAD_FILE or CRED_ST_BAD_SYNTAX) and err.  Does not close fd and
 * does not judge the expiry: that needs the caller's clock and margin.
 */
int creds_read_fd(int fd, struct creds *c, enum cred_state *st, char *err, size_t errlen);

/* Parse len bytes of buf into c (overwritten, not freed).  0 ok, -1 with err. */
int creds_parse(const char *buf, size_t len, struct creds *c, char *err, size_t errlen);

/* Wipe and free; safe on a zeroed struct and when called twice. */
void creds_free(struct creds *c);

/*
 * RFC 3339 date-time ("2026-11-22T03:04:05Z", fractional seconds ignored,
 * "+hh:mm"/"-hh:mm" offsets) to unix seconds.  0 ok, -1 if malformed.
 */
int creds_parse_rfc3339(const char *s, int64_t *out);

/*
 * The last four characters of the access key id (of a shorter id, its last
 * half, so that none is shown whole), NUL-terminated, for status.
 */
void creds_key_hint(const struct creds *c, char out[8]);

#endif
