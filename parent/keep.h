/*
 * What a vault's state directory holds that the daemon can put back if the
 * directory is removed under a running vault: the recipient, the content-id
 * key, the passphrase-encrypted identity, and (from the caller) the saved and
 * remote state.  None of it decrypts anything.
 */
#ifndef VS_KEEP_H
#define VS_KEEP_H

#include <stddef.h>

struct vault_rt;
void keep_load(struct vault_rt *v, const char *dir);
/* 1 if the directory was put back, 0 if nothing was missing, -1 on failure. */
int keep_restore(struct vault_rt *v, const char *dir, char *err, size_t errlen);
void keep_drop(struct vault_rt *v);

#endif
