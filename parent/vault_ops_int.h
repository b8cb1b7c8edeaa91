/*
 * Private to the vault operations: vault_ops.c, save.c, unpack.c, tmpfs.c, voperr.c.
 * Everything here runs on a job's worker thread.
 */
#ifndef VS_VAULT_OPS_INT_H
#define VS_VAULT_OPS_INT_H

#include "vault_ops.h"

#define STAGING		".vaultsync-staging"	/* inside the vault, while unpacking */
#define IDENTITY_MAX	4096			/* identity.age, and its plaintext */

/* voperr.c: the op's result, an exit code for vaultsyncctl and a message. */
void vop_err(struct vault_job *vj, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* save.c: save the vault; sets changed and st.  0 or -1 (vj->err set). */
int do_save(struct vault_job *vj);

/* unpack.c */
void op_unlock(struct vault_job *vj);
void op_pull(struct vault_job *vj);

/* tmpfs.c */
int wipe_dir(int dfd, int depth, const char *keep);	/* keep: a name left in place */
int do_mount(struct vault_job *vj, int *mounted);	/* *mounted: it was mounted here */
void do_umount(const char *path);

#endif
