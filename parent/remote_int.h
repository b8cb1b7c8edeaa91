/*
 * Private to remote.c, rstate.c, settle.c, prune.c, history.c, pull.c and
 * pushretry.c: the remote side of a vault.  Its state (struct push_state)
 * is this family's alone; the rest of the daemon asks through the
 * functions vaultsyncd.h declares (remote_state, remote_busy, ...).
 */
#ifndef VS_REMOTE_INT_H
#define VS_REMOTE_INT_H

#include "vaultsyncd.h"

/* A vault's remote side (vreg_state: its first member is the generation). */
struct push_state {
	uint32_t gen;
	struct vault_remote rs;		/* as in StateDir/VAULT/remote */
	int rs_loaded;
	int push_busy;			/* a push sequence runs */
	int push_step;			/* enum push_step */
	struct vtimer push_retry;
	uint32_t push_failures;		/* consecutive */
	int64_t next_push_at;
	char push_sha[65];		/* hash of the archive being pushed */
	char push_cid[24];
	int push_cid_doubted;		/* an earlier attempt of push_cid is in doubt */
	uint64_t push_bytes;
	uint64_t push_sent, push_total;	/* the PUT in flight, as the uploader reports it */
	int want_history, want_force;	/* asked for by vaultsyncctl push */
	int force;			/* this sequence overwrites latest */
	char push_error[256];
	/* fail: the push cannot be what was asked for (the newest save failed) */
	struct waiters push_waiters;
	push_done_fn push_tick_done;	/* the running tick's, called last */
	int tick_uploaded;		/* the tick's push put an archive up (latest, conflicts/) */
	char logged_error[256];		/* rate limit for identical errors */
	int64_t logged_at;
	unsigned suppressed;
	char push_key[192];		/* what the last PUT wrote */
	int history_known;		/* history_count is from a listing (prune, history) */
	int history_counting;		/* remote_history_count's listing is in flight */
	uint32_t history_count;		/* copies under history/ at that listing */
};
struct push_state *push_of(const struct vault_rt *v);

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
/* history.c: list history/ for the count status shows (nothing else is done with it). */
void remote_history_count(struct vault_rt *v);
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
