/*
 * The uploader's remotes: one per vault with a Remote line, fixed at start
 * from the configuration messages (the endpoints must be resolved and the
 * directories checked before the sandbox closes).  Two backends with the same
 * operations and the same result classification: S3 (s3remote.c) and a
 * directory passed as an fd (dirremote.c).
 */
#ifndef VS_UPL_REMOTE_H
#define VS_UPL_REMOTE_H

#include <stdint.h>

#include "creds.h"
#include "msg.h"
#include "s3.h"

#define UPL_MAX_REMOTES	64

enum upl_kind { UPL_KIND_S3 = 1, UPL_KIND_DIR };

struct upl_remote {
	char vault[64];
	enum upl_kind kind;
	/* S3 */
	struct s3_remote *s3;
	char s3_err[S3_ERR_MAX];	/* why s3 is NULL */
	char base[S3_KEY_MAX];		/* "PREFIX/VAULT/" or "VAULT/" */
	int tls;			/* https endpoint */
	int cred;			/* index of its credentials slot */
	unsigned net_failures;		/* consecutive; many of them: re-exec to re-resolve */
	/* dir */
	int dirfd;
};

/* Sends the parent what a request produced on the way (LIST entries, MPU ids). */
struct upl_emit {
	void (*entry)(void *arg, const struct msg_upl_entry *e);
	void (*mpu)(void *arg, const struct msg_upl_mpu *m);
	void *arg;
};

/* The multipart threshold and part size, for both backends' callers. */
extern uint64_t upl_multipart_threshold;

/* S3 backend.  c: the credentials; NULL if the slot has none usable. */
void s3r_put(struct upl_remote *r, const struct creds *c, const struct msg_upl_put *m, int fd,
    const struct upl_emit *em, struct msg_upl_result *res);
void s3r_get(struct upl_remote *r, const struct creds *c, const struct msg_upl_get *m, int fd,
    struct msg_upl_result *res);
void s3r_op(struct upl_remote *r, const struct creds *c, const struct msg_upl_op *m,
    const struct upl_emit *em, struct msg_upl_result *res);

/* Directory backend. */
void dirr_put(struct upl_remote *r, const struct msg_upl_put *m, int fd,
    struct msg_upl_result *res);
void dirr_get(struct upl_remote *r, const struct msg_upl_get *m, int fd,
    struct msg_upl_result *res);
void dirr_op(struct upl_remote *r, const struct msg_upl_op *m, const struct upl_emit *em,
    struct msg_upl_result *res);

/* Format a result's error line. */
void upl_seterr(struct msg_upl_result *res, uint32_t outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
