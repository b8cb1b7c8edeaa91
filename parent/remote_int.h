/*
 * Private to remote.c, prune.c, history.c and pull.c: the remote side of a
 * vault.  The push state (struct remote_state, the push fields of
 * vault_rt) is remote.c's alone.
 */
#ifndef VS_REMOTE_INT_H
#define VS_REMOTE_INT_H

#include "vaultsyncd.h"

/* The vault's configuration as now loaded, NULL if a reload removed it. */
const struct cfg_vault *remote_cfg(const struct vault_rt *v);
/* StateDir/VAULT, "" if the vault is gone from the configuration. */
void remote_state_dir(const struct vault_rt *v, char *buf, size_t len);
/* 1 if k is a history key of the form we write (history/STAMP-HASH16.tar.age). */
int remote_history_key(const char *k);

/* The end of pruning: what is NULL when it went through, else what failed and r why. */
typedef void (*prune_done_fn)(struct vault_rt *v, const char *what,
    const struct msg_upl_result *r);
void prune_start(struct vault_rt *v, prune_done_fn done);

#endif
