/*
 * The vault operations that run on a worker thread: save, init, unlock,
 * lock, pull.  Each takes a struct vault_job holding copies of what it needs and
 * leaves its result there; nothing here touches the daemon's shared state.
 */
#ifndef VS_VAULT_OPS_H
#define VS_VAULT_OPS_H

#include <stdint.h>
#include <sys/types.h>

#include "chgcheck.h"
#include "config.h"
#include "decode.h"
#include "job.h"
#include "secbuf.h"
#include "store.h"
#include "vreg.h"

enum vault_op { VOP_SAVE = 0, VOP_INIT, VOP_UNLOCK, VOP_LOCK, VOP_PULL };

struct vault_job {
	struct job job;
	struct vault_ref vault;		/* the main thread's: whose job it is */
	enum vault_op op;
	struct cfg_vault v;		/* copy of the vault's config */
	char dir[STORE_PATH_MAX];	/* StateDir/VAULT */
	int system_mode;
	uid_t owner_uid;
	gid_t owner_gid;
	struct secbuf pass;		/* INIT, UNLOCK, PULL; wiped by the op */
	int unlocked;			/* PULL: refresh the vault's contents too */
	char src[STORE_PATH_MAX];	/* PULL: the downloaded archive (a temp file in dir) */
	char pull_etag[128];		/* PULL: the remote latest's ETag */
	int pull_latest;		/* PULL: src is the remote latest (not a history copy) */
	struct vault_saved prev;	/* state before the op */
	struct decode_conf dec;		/* UNLOCK, PULL: how to start the decoder */
	struct chg_job chk;		/* SAVE: the change check's part, in and out */

	/* results */
	int rc;				/* 0 ok, else an exit code for vaultsyncctl */
	char err[512];
	int changed;			/* SAVE/LOCK: a new archive was written */
	int torn;		/* the vault kept changing under every try: kept as the last made it */
	int save_tries;
	struct vault_saved st;		/* state after the op */
	uint64_t files, bytes;
	uint64_t skipped;		/* SAVE/LOCK: entries the archive cannot hold, left out */
	char first_skip[160];		/* the first of them and why */

	/* who asked (-1 = the daemon itself), and what to tell them */
	int client;
	uint32_t client_gen;
	int have_reply, reply_code;
	char reply_msg[1024];
};

void vault_op_run(struct job *j);	/* dispatches on op */

/* Main-thread helpers shared with vault.c. */
int vault_path_is_mounted_tmpfs(const char *path);
int vault_path_on_ram(const char *path);
/* 1 if the directory open at dfd has no entries; 0 if it has, or cannot be read. */
int vault_dir_empty(int dfd);

#endif
