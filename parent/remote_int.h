/*
 * Private to remote.c, rstate.c, settle.c, prune.c, history.c, pull.c and pushretry.c: the remote side of a
 * vault.  The push state (struct remote_state, the push fields of
 * vault_rt) is remote.c's alone.
 */
#ifndef VS_REMOTE_INT_H
#define VS_REMOTE_INT_H

#include "vaultsyncd.h"

/* Where a vault's push sequence is (vault_rt.push_step). */
enum push_step {
	PS_IDLE = 0, PS_ABORT, PS_IDENTITY, PS_LATEST, PS_CONFLICT_COPY, PS_HISTORY, PS_LIST,
};

/* The vault's configuration as now loaded, NULL if a reload removed it. */
const struct cfg_vault *remote_cfg(const struct vault_rt *v);
/* StateDir/VAULT, "" if the vault is gone from the configuration. */
void remote_state_dir(const struct vault_rt *v, char *buf, size_t len);
/* A file of the vault's state directory, open for reading, and its size: fd or -1. */
int remote_open_file(struct vault_rt *v, const char *name, uint64_t *size);
/* Persist the vault's remote state (StateDir/VAULT/remote); a failure is logged. */
void remote_save_state(struct vault_rt *v);
/* 1 if k is a history key of the form we write (history/STAMP-HASH16.tar.age). */
int remote_history_key(const char *k);

/* pushretry.c: log a push error (identical ones once a minute); arm the retry timer. */
void push_log_error(struct vault_rt *v, const char *msg);
void push_retry_schedule(struct vault_rt *v, vtimer_fn fire);

/* The end of pruning: what is NULL when it went through, else what failed and r why. */
typedef void (*prune_done_fn)(struct vault_rt *v, const char *what,
    const struct msg_upl_result *r);
void prune_start(struct vault_rt *v, prune_done_fn done);

/* settle.c: 1 if cid is the content id of a write of ours (pushing, confirmed, in doubt). */
int remote_cid_ours(const struct vault_rt *v, const char *cid);
/* Before a PUT of latest: its content id is in doubt until refused. */
void remote_doubt_add(struct vault_rt *v);
/* That attempt was refused, or the remote holds something else. */
void remote_doubt_drop(struct vault_rt *v, const char *cid);
/*
 * The verdict on an ambiguous outcome or a 412: resend 1 when an earlier
 * write of ours landed and its ETag was adopted (the newer archive must go
 * up now; r is NULL), else r is the outcome to act on, settled.
 */
typedef void (*settle_fn)(struct vault_rt *v, const struct msg_upl_result *r, int resend);
void settle_start(struct vault_rt *v, const struct msg_upl_result *r, settle_fn done);

#endif
