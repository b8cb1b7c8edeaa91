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
/* How a tick's push ended: code 0 ok, else msg says why. */
struct push_report {
	int code;
	int uploaded;		/* an archive went up: the latest, or ours under conflicts/ */
	int conflict;		/* another device wrote the remote latest */
	uint64_t bytes;		/* the last successful write's */
	const char *etag;	/* of the remote latest as we know it */
	const char *key;	/* what the last PUT wrote */
	const char *msg;
};
typedef void (*push_done_fn)(struct vault_rt *v, const struct push_report *r);

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
	char skip_note[200];		/* what the last warning about left-out entries said */
	/*
	 * Nothing else: each module keeps its own per-vault state in its own
	 * file (VREG_STATE) and answers for it through its functions.
	 */
};
int watch_init(void);
void watch_rebuild(void);		/* watch every vault's tree afresh */
void watch_drop(struct vault_rt *v);	/* no watches on v until the next rebuild */
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
/* What the remote holds, as this device knows it (StateDir/VAULT/remote). */
const struct vault_remote *remote_state(struct vault_rt *v);
const struct vault_remote *remote_state_loaded(const struct vault_rt *v);	/* NULL: not read */
int remote_busy(const struct vault_rt *v);	/* a push sequence runs */
int remote_healthy(const struct vault_rt *v);	/* no failing push, no conflict */
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
void pollscan_forget(struct vault_rt *v);

/* ---- headpoll.c ---- */
void headpoll_start(void);

/* ---- ctlq.c: every vault command waits its turn ---- */
struct ctlq_req;
int ctlq_submit(struct vault_rt *v, int client, uint32_t gen, uint32_t cmd, uint32_t flags,
    const char *arg, struct secbuf *pass, char *err, size_t errlen);
void ctlq_settle_all(void);		/* after every batch of events */
void ctlq_replied(int client, uint32_t gen);
void ctlq_drop(struct vault_rt *v, const char *why);
int ctlq_holds(const struct vault_rt *v);	/* init, unlock, lock or pull runs */

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
void vault_init(void (*replaced)(void), void (*unwatch)(struct vault_rt *));
void vault_adopt_all(void);
int vault_request(int client, uint32_t gen, uint32_t cmd, const char *name,
    struct secbuf *pass, char *err, size_t errlen);
/* A tick's save job; done gets its outcome unless this returns -1. */
int vault_save(struct vault_rt *v, save_done_fn done, char *err, size_t errlen);
struct decode_conf;
void vault_decode_conf(struct decode_conf *c);	/* what a decoder is started with */
void vault_final_save(struct vault_rt *v);	/* at shutdown: an unlocked vault, then its push */
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
int tick_busy(const struct vault_rt *v);	/* a tick saves or pushes */
void tick_final_saves(void);	/* first SIGTERM: each vault not in a tick, saved and pushed */
void tick_drop_pending(struct vault_rt *v);	/* a lock's final save covers it */
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
struct child_proc *statusd_up(void);	/* statusd, if it runs and its channel is open */
void status_push_start(void);

/* ---- runtime.c ---- */
int runtime_prepare(char *err, size_t errlen);	/* dirs, lock, chroot */
int runtime_status_listen(char *err, size_t errlen);
int runtime_write_daemon_json(void);
void runtime_cleanup(void);

/* ---- preflight.c: what -t checks, and startup again; 0 or an exit code ---- */
int preflight_config_file(const char *file, int explicit_file, const struct cfg_env *e);
int preflight(const struct cfg *c, const struct cfg_env *e, int test);

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
