/*
 * The parent (monitor): shared state and the interfaces between its files.
 * Single-threaded: everything runs from the epoll loop in ev.c.
 */
#ifndef VS_VAULTSYNCD_H
#define VS_VAULTSYNCD_H

#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "config.h"
#include "msg.h"
#include "secbuf.h"
#include "store.h"
#include "verify.h"
#include "keep.h"
#include "waiter.h"
#include "vreg.h"

/* Exit codes (DESIGN §7). */
#define EXIT_USAGE	64
#define EXIT_NOINPUT	66
#define EXIT_SOFTWARE	70
#define EXIT_OSERR	71
#define EXIT_CANTCREAT	73
#define EXIT_NOPERM	77
#define EXIT_FORCED	130

#define NCHILDREN	3	/* watcher, uploader, statusd: index = role - 1 */
/* The uploader's dir: remotes, at fds UPL_DIRFD_FIRST.. (its seccomp table knows them). */
#define UPL_DIRFD_SLOTS	(UPL_DIRFD_LAST - UPL_DIRFD_FIRST + 1)
#define MAX_CREDFILES	(CFG_MAX_VAULTS + 1)

/* ---- ev.c: epoll over fds, one timerfd for all timers ---- */
typedef void (*ev_cb)(int fd, uint32_t events, void *arg);
typedef void (*timer_cb)(void *arg);
void ev_init(void);
int ev_add(int fd, ev_cb cb, void *arg);
void ev_del(int fd);
int timer_add(uint64_t delay_ms, timer_cb cb, void *arg);	/* returns id */
void timer_cancel(int id);
void ev_run_once(void);

/* ---- children.c ---- */
struct child_proc {
	uint32_t role;
	const char *bin;		/* absolute path, compile-time */
	pid_t pid;
	int pidfd, chan, logfd;
	uint32_t state;			/* enum child_state */
	uint32_t seq;
	uint32_t restarts, violations;
	int32_t last_exit;
	int64_t started_at;
	uint64_t started_mono;
	uint64_t backoff_ms;
	int restart_timer;
	int killed_for_violation;
	char last_reason[128];
};

/*
 * What the supervisor hands on: the watcher's reports, and a child's coming
 * up and going down, wired by the daemon to the modules that act on them.
 */
struct children_ops {
	void (*watch_change)(const struct msg_watch_change *m);
	void (*watch_newdir)(const struct msg_watch_newdir *m);
	void (*watch_overflow)(void);
	void (*up)(struct child_proc *c);		/* it answered HELLO, is configured */
	void (*down)(struct child_proc *c);		/* reaped; a restart is scheduled */
	void (*failed_at_startup)(struct child_proc *c, int status);
};
void children_init(const struct children_ops *ops);
void child_start(struct child_proc *c);
void children_start_all(void);
void children_stop_all(int hard);
int children_all_running(void);
int children_any_alive(void);
struct child_proc *child_by_role(uint32_t role);
int proc_send(struct child_proc *c, uint32_t type, const void *p, size_t len);
void children_config_changed(int creds_changed);
int children_creds_changed(void);	/* 1: a credentials file changed, the uploader restarts */

/* ---- vtimer.c: one timer per purpose per vault; zero = none ---- */
struct vtimer {
	int id;				/* timer id + 1 */
	void *arg;
};

/* ---- watch.c ---- */

struct vault_rt;
/* A save or push a tick started has ended: 0, or the error (msg says what happened). */
typedef void (*save_done_fn)(struct vault_rt *v, int rc, int changed, const char *msg);
typedef void (*push_done_fn)(struct vault_rt *v, int code, const char *msg);

enum tick_phase { TICK_IDLE = 0, TICK_SAVING, TICK_PUSHING };

struct vault_rt {
	int in_use;			/* vreg.c: the slot holds a configured vault */
	char name[CFG_NAME_MAX];
	uint32_t state;			/* enum vault_state */
	uint32_t watch_mode;		/* enum watch_mode */
	uint32_t nwatches;
	uint32_t consecutive_failures;
	int busy, busy_op;		/* a worker job runs for this vault */
	save_done_fn save_done;		/* the running save's caller (a tick), or NULL */
	int64_t last_save_at;
	struct vault_saved st;		/* as last saved (state file) */
	uint64_t changes;		/* change notifications received */
	int64_t last_change_at;
	char watch_reason[128];
	char last_error[256];
	char save_error[256];		/* the newest save failed: changes are in no archive */

	/* remote.c: the push side */
	struct vault_remote rs;		/* as in StateDir/VAULT/remote */
	int rs_loaded;
	int push_busy;			/* a push sequence runs */
	int push_step;
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
	char logged_error[256];		/* rate limit for identical errors */
	int64_t logged_at;
	unsigned suppressed;
	char push_key[192];		/* what the last PUT wrote */
	int history_known;		/* history_count is from a listing (prune, history) */
	uint32_t history_count;		/* copies under history/ that we wrote */

	/* tick.c */
	int tick_started;		/* its startup tick was requested */
	int tick_running;		/* enum tick_phase */
	uint64_t tick_index;
	int tick_trigger;
	uint64_t tick_t0;
	int64_t tick_started_ms;	/* unix ms */
	int tick_pending, pending_trigger;
	int tick_saved, tick_pushed;
	char tick_save_msg[512], tick_push_msg[512];
	struct waiters tick_waiters;	/* after: the tick_index when they asked */
	struct vtimer interval;		/* the Interval backstop */

	/* headpoll.c */
	uint64_t hp_interval_ms;	/* 0: not polling */
	struct vtimer hp_timer;
	int hp_primed, hp_inflight;
	char hp_seen[128];		/* the ETag the last poll saw */

	uint64_t poll_digest;		/* pollscan.c: the tree's last metadata digest */

	struct vault_keep keep;		/* keep.c: to put a removed state directory back */

	/* ctlq.c: control requests waiting for their turn on this vault */
	struct ctlq_req *cq_head;
	int ctl_hold;			/* the running one keeps change-driven ticks waiting */

	/* verify.c: the restore drill (vaultsyncctl verify, VerifyInterval) */
	struct vtimer verify_timer;	/* the next drill, or a busy vault's next look */
	struct verify_state vfy;
};
int watch_init(void);
void watch_rebuild(void);		/* watch every vault's tree afresh */
void watch_on_change(const struct msg_watch_change *m);
void watch_on_newdir(const struct msg_watch_newdir *m);
void watch_on_overflow(void);

/* ---- upload.c: requests to the uploader ---- */
typedef void (*upl_done_fn)(const char *vault, const struct msg_upl_result *r, void *arg);
typedef void (*upl_entry_fn)(const char *vault, const struct msg_upl_entry *e, void *arg);
typedef void (*upl_mpu_fn)(const char *vault, const struct msg_upl_mpu *m, void *arg);
typedef void (*upl_progress_fn)(const char *vault, uint64_t sent, uint64_t total, void *arg);
struct upl_cbs {
	upl_done_fn done;
	upl_entry_fn entry;
	upl_mpu_fn mpu;
	void *arg;
	upl_progress_fn progress;	/* a PUT's bytes sent so far, a few times a second */
};
int upl_available(void);
int upl_put(const char *vault, const char *key, int fd, uint64_t size, uint32_t cond,
    const char *etag, const char *content_id, const struct upl_cbs *cb);
int upl_get(const char *vault, const char *key, int fd, uint64_t max, const struct upl_cbs *cb);
int upl_op(const char *vault, uint32_t op, const char *key, const char *arg,
    const struct upl_cbs *cb);
const char *upl_on_result(const struct msg_upl_result *r);	/* NULL, or a violation */
const char *upl_on_entry(const struct msg_upl_entry *e);
const char *upl_on_mpu(const struct msg_upl_mpu *m);
const char *upl_on_progress(const struct msg_upl_progress *p);
void upl_lost(const char *why);

/* ---- remote.c: pushes, history, conflicts ---- */
void remote_load(struct vault_rt *v);
/* Push if the remote lags (or flags ask); a ctl client may wait for the outcome. */
void remote_kick(struct vault_rt *v, int client, uint32_t gen, const char *prefix);
/* A tick's push: done is called once, when the push ends or has nothing to do. */
void remote_push_tick(struct vault_rt *v, push_done_fn done);
void remote_retry_now(struct vault_rt *v);
int remote_push_request(struct vault_rt *v, int client, uint32_t gen, int force,
    char *err, size_t errlen);
int remote_history_request(struct vault_rt *v, int client, uint32_t gen, char *err,
    size_t errlen);
void remote_uploader_ready(void);
/* vaultsyncctl pull: download, then a VOP_PULL job verifies and installs it. */
int remote_pull_request(struct vault_rt *v, int client, uint32_t gen, const char *version,
    struct secbuf *pass, char *err, size_t errlen);
struct vault_job;
void remote_pulled(struct vault_rt *v, const struct vault_job *vj);
void remote_status(const struct vault_rt *v, struct msg_snap_vault *sv);
int remote_lags(const struct vault_rt *v);
int remote_any_busy(void);
void remote_mark_conflict(struct vault_rt *v);
int remote_head_ours(const struct vault_rt *v, const struct msg_upl_result *r);

/* ---- pollscan.c ---- */
void pollscan_arm(void);

/* ---- headpoll.c ---- */
void headpoll_start(void);

/* ---- ctlq.c: every vault command waits its turn ---- */
struct ctlq_req;
int ctlq_submit(struct vault_rt *v, int client, uint32_t gen, uint32_t cmd, uint32_t flags,
    const char *arg, struct secbuf *pass, char *err, size_t errlen);
void ctlq_settle_all(void);		/* after every batch of events */
void ctlq_replied(int client, uint32_t gen);
void ctlq_drop(struct vault_rt *v, const char *why);

/* ---- ctl.c ---- */
/*
 * What the control socket hands on, once a peer is let in and its command
 * permitted: the daemon wires these to the modules that answer (ctl.c calls
 * nothing above itself, so it can be called back from anywhere).
 */
struct ctl_ops {
	/* A vault command; it is answered later through ctl_reply (-1: err now). */
	int (*submit)(struct vault_rt *v, int client, uint32_t gen, uint32_t cmd,
	    uint32_t flags, const char *arg, struct secbuf *pass, char *err, size_t errlen);
	int (*status)(int fd, uint32_t seq);	/* the snapshot, written to fd */
	int (*reload)(char *err, size_t errlen);
	void (*stop)(int forced);
	void (*replied)(int client, uint32_t gen);	/* its final answer went out */
};
int ctl_listen(const struct ctl_ops *ops);
void ctl_close(void);
void ctl_reply(int client, uint32_t gen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ctl_line(int client, uint32_t gen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ctl_client_alive(int client, uint32_t gen);
const char *ctl_cmd_name(uint32_t cmd);

/* ---- vault.c ---- */
/* replaced: an operation replaced a vault's tree (its watches must be made again). */
void vault_init(void (*replaced)(void));
void vault_adopt_all(void);
int vault_request(int client, uint32_t gen, uint32_t cmd, const char *name,
    struct secbuf *pass, char *err, size_t errlen);
/* A tick's save job; done gets its outcome unless this returns -1. */
int vault_save(struct vault_rt *v, save_done_fn done, char *err, size_t errlen);
void vault_final_saves(void);	/* at shutdown: every unlocked vault, then its push */
int vault_start_pull(struct vault_rt *v, int client, uint32_t gen, struct secbuf *pass,
    const char *src, const char *etag, int latest, char *err, size_t errlen);

typedef void (*vtimer_fn)(struct vault_rt *v);
void vtimer_set(struct vault_rt *v, struct vtimer *t, uint64_t ms, vtimer_fn fn);
void vtimer_clear(struct vtimer *t);
int vtimer_pending(const struct vtimer *t);

/* ---- tick.c ---- */
/* A change in an unlocked vault: a tick now, or right after the one in progress. */
void tick_changed(struct vault_rt *v);
void tick_oneshot_start(void);	/* vaultsyncd -1: one tick of each selected vault */
void tick_request(struct vault_rt *v, int trigger, int client, uint32_t gen);
void tick_run_pending(struct vault_rt *v);	/* the vault is free: a pending tick starts */
int tick_any_running(void);
void tick_startup(void);

/* ---- status.c ---- */
/* ---- ticklog.c: tick records for statusd, kept for one that restarts ---- */
void ticklog_add(const struct msg_tick_rec *t);
void ticklog_flush(void);	/* what statusd has not had yet */
int ticklog_pending(void);	/* statusd runs and has not had them all */
void ticklog_restart(void);	/* statusd (re)started: all that is kept */
int status_send_snapshot(int fd, uint32_t seq);
int status_healthy(void);
/* A snapshot to statusd now; when it changed (status_settle, after every batch of events); and every few seconds from status_push_start on. */
void status_push(void);
void status_settle(void);
void status_push_start(void);

/* ---- runtime.c ---- */
int runtime_prepare(char *err, size_t errlen);	/* dirs, lock, chroot */
int runtime_status_listen(char *err, size_t errlen);
int runtime_write_daemon_json(void);
void runtime_cleanup(void);

/* ---- sdnotify.c ---- */
void sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t sd_watchdog_interval_ms(void);

/* ---- paths.c ---- */
extern const char *const libexec_dir;

/* ---- main.c: the daemon's state ---- */
struct daemon {
	struct cfg cfg;
	struct cfg_env env;
	const char *config_file;
	int explicit_file;
	int debug, insecure;
	uid_t privsep_uid;
	gid_t privsep_gid;
	gid_t control_gid;
	int have_control_gid;
	char chroot_dir[CFG_PATH_MAX + 16];

	int lock_fd, ctl_fd, status_fd, inotify_fd, devnull_fd;
	char status_url[80];
	char token[65];

	struct child_proc children[NCHILDREN];
	struct msg_cred_info creds[MAX_CREDFILES];
	size_t ncreds;

	int ready;
	int config_ok;			/* the last (re)load succeeded: pruning allowed */
	int oneshot;			/* -1: one save per vault, then exit */
	char **oneshot_vaults;		/* NULL = all */
	int oneshot_failed;
	int shutting_down;		/* 1 graceful, 2 forced */
	int64_t started_at;
	uint64_t started_mono;
};
extern struct daemon D;

/* wire.c: the tables main.c hands the control socket and the supervisor. */
extern const struct ctl_ops ctl_wiring;
extern const struct children_ops children_wiring;
void wire_sync_config(void);	/* after a (re)load: the registry, then the watches */
void daemon_shutdown(int forced);
int daemon_reload(char *err, size_t errlen);
void daemon_child_ready(void);
void daemon_child_failed_at_startup(struct child_proc *c, int status);

#endif
