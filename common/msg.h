/*
 * Wire messages between vaultsyncd and its children, and on the control
 * socket.  One datagram (SOCK_SEQPACKET) carries one message: a fixed header
 * followed by exactly one fixed-size payload struct.  The table in msg.c is
 * the single authority on sizes, permitted senders and fd passing; the
 * encoder and the decoder both consult it.
 *
 * Rules that keep the decoder simple and safe:
 *  - every field is fixed width, every string a NUL-terminated char array;
 *  - no implicit padding (explicit pad fields, checked by static asserts);
 *  - layouts never change within a protocol version; HELLO is frozen forever
 *    so that mismatched binaries can at least tell each other their version.
 */
#ifndef VS_MSG_H
#define VS_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VS_PROTO_VERSION	1
#define MSG_MAX_PAYLOAD		8448	/* DEC_ENTRY: two 4 KiB paths */

struct vs_hdr {
	uint32_t type;
	uint32_t len;
	uint32_t seq;
	uint32_t flags;		/* reserved: must be zero */
};

/* Who may send a message: one bit per peer role. */
enum msg_peer {
	PEER_PARENT	= 1u << 0,	/* vaultsyncd, on child channels and the ctl socket */
	PEER_WATCHER	= 1u << 1,
	PEER_UPLOADER	= 1u << 2,
	PEER_STATUSD	= 1u << 3,
	PEER_CTL	= 1u << 4,	/* vaultsyncctl, on the control socket */
	PEER_DECODER	= 1u << 5,	/* vaultsync-decoder, on its own short-lived channel */
};
#define PEER_CHILDREN	(PEER_WATCHER | PEER_UPLOADER | PEER_STATUSD | PEER_DECODER)

/* Child roles, as carried in HELLO.role. */
enum vs_role {
	ROLE_PARENT = 0,
	ROLE_WATCHER = 1,
	ROLE_UPLOADER = 2,
	ROLE_STATUSD = 3,
	ROLE_CTL = 4,
	ROLE_DECODER = 5,
	ROLE_MAX = ROLE_DECODER,
};

enum msg_type {
	MSG_HELLO = 1,		/* every channel opens with it, both ways */
	MSG_LOG,		/* child -> parent, on the log fd */
	MSG_WATCHER_CONFIG,	/* parent -> watcher */
	MSG_WATCH_CHANGE,	/* watcher -> parent: something changed under wd */
	MSG_WATCH_NEWDIR,	/* watcher -> parent: a directory appeared under wd */
	MSG_WATCH_OVERFLOW,	/* watcher -> parent: the inotify queue overflowed */
	MSG_CRED_INFO,		/* uploader -> parent; parent -> ctl/statusd in snapshots */
	MSG_STATUSD_CONFIG,	/* parent -> statusd */
	MSG_SNAP_DAEMON,	/* parent -> ctl/statusd: status snapshot, daemon part */
	MSG_SNAP_CHILD,		/* ... one per child */
	MSG_SNAP_VAULT,		/* ... one per vault */
	MSG_SNAP_END,		/* ... end of snapshot */
	MSG_CTL_REQUEST,	/* ctl -> parent */
	MSG_CTL_RESULT,		/* parent -> ctl: final answer to a request */
	MSG_CTL_SECRET,		/* ctl -> parent: the passphrase a request needs */
	MSG_UPL_PUT,		/* parent -> uploader: store the passed fd's bytes under a key */
	MSG_UPL_GET,		/* parent -> uploader: fetch a key into the passed fd */
	MSG_UPL_OP,		/* parent -> uploader: HEAD, LIST, DELETE, ABORT */
	MSG_UPL_ENTRY,		/* uploader -> parent: one object of a LIST */
	MSG_UPL_MPU,		/* uploader -> parent: a multipart upload was created */
	MSG_UPL_RESULT,		/* uploader -> parent: the end of one request */
	MSG_CTL_LINE,		/* parent -> ctl: one line of a multi-line answer */
	MSG_PING,		/* parent -> statusd: liveness check */
	MSG_PONG,		/* statusd -> parent: the answer, same nonce */
	MSG_UPL_CRED,		/* parent -> uploader, before its HELLO: one credentials file */
	MSG_UPL_REMOTE,		/* ... one vault's remote */
	MSG_UPL_CONF_END,	/* ... the end of its configuration */
	MSG_DEC_START,		/* parent -> decoder: the passphrase and the limits */
	MSG_DEC_READY,		/* decoder -> parent: identity.age opened */
	MSG_DEC_ENTRY,		/* decoder -> parent: one archive entry (data on the pipe) */
	MSG_DEC_END,		/* decoder -> parent: the verdict */
	MSG_TICK_REC,		/* parent -> statusd: one tick of a vault ended */
	MSG_UPL_PROGRESS,	/* uploader -> parent: bytes of a PUT sent so far */
	MSG_TYPE_MAX = MSG_UPL_PROGRESS,
};

/* Frozen: layout must never change. */
struct msg_hello {
	uint32_t proto;		/* VS_PROTO_VERSION of the sender */
	uint32_t role;		/* enum vs_role */
	int32_t pid;
	uint32_t pad;
	char version[32];	/* package version string */
};

enum msg_log_level { MLOG_ERROR = 0, MLOG_WARN, MLOG_INFO, MLOG_DEBUG, MLOG_MAX = MLOG_DEBUG };

struct msg_log {
	uint32_t level;		/* enum msg_log_level */
	int32_t seccomp_nr;	/* -1, or the syscall a TRAP-mode filter stopped */
	char msg[1000];
};

struct msg_watcher_config {
	uint32_t debounce_ms;
	uint32_t pad;
};

struct msg_watch_change {
	int32_t wd;
	uint32_t mask;		/* OR of the inotify masks seen (IN_IGNORED: watch gone) */
	uint32_t count;		/* events coalesced */
	uint32_t pad;
};

struct msg_watch_newdir {
	int32_t wd;		/* the watched directory it appeared in */
	uint32_t pad;
	char name[256];		/* one path component; the parent re-validates it */
};

struct msg_watch_overflow {
	uint32_t dropped;	/* best guess; 0 if unknown */
	uint32_t pad;
};

enum cred_source { CRED_SRC_NONE = 0, CRED_SRC_FILE, CRED_SRC_SYSTEMD, CRED_SRC_MAX = CRED_SRC_SYSTEMD };
enum cred_state {
	CRED_ST_UNKNOWN = 0,	/* uploader not yet reported */
	CRED_ST_OK,
	CRED_ST_MISSING,	/* no file */
	CRED_ST_BAD_FILE,	/* wrong mode, symlink, not a regular file, too big */
	CRED_ST_BAD_SYNTAX,	/* parse error or required key missing */
	CRED_ST_EXPIRED,
	CRED_ST_REJECTED,	/* the server said no */
	CRED_ST_MAX = CRED_ST_REJECTED,
};

/*
 * Never carries a secret: the source, the file path, the expiry and the
 * last four characters of the access key id (to tell keys apart).
 */
struct msg_cred_info {
	uint32_t source;	/* enum cred_source */
	uint32_t state;		/* enum cred_state */
	int64_t expiry;		/* unix seconds, 0 = none */
	int64_t loaded_at;	/* unix seconds */
	char name[64];		/* "" = global, else the vault whose CredentialsFile it is */
	char path[256];
	char key_hint[8];
	char error[256];
};

struct msg_statusd_config {
	uint32_t require_auth;
	uint32_t tick_history;
	char token[72];		/* hex bearer token */
};

enum vs_mode { MODE_SYSTEM = 0, MODE_USER = 1, MODE_MAX = MODE_USER };

/* What /proc says of a process (process_* in /metrics); 0 where it could not be read. */
struct msg_proc_stat {
	uint64_t cpu_ms;	/* user and system time */
	uint64_t rss_bytes;
	uint32_t open_fds;
	uint32_t pad;
};

struct msg_snap_daemon {
	uint32_t proto;
	uint32_t mode;		/* enum vs_mode */
	int32_t pid;
	uint32_t nvaults;
	uint32_t nchildren;
	uint32_t ncreds;
	int64_t started_at;	/* unix seconds */
	int64_t now;		/* unix seconds, at snapshot time */
	uint64_t uptime_ms;
	char version[32];
	char device_id[64];
	char status_url[80];
	char config_file[256];
	struct msg_proc_stat proc;	/* the parent's own */
};

enum child_state { CHILD_ST_STARTING = 0, CHILD_ST_RUNNING, CHILD_ST_BACKOFF, CHILD_ST_STOPPED, CHILD_ST_MAX = CHILD_ST_STOPPED };

struct msg_snap_child {
	uint32_t role;		/* enum vs_role */
	uint32_t state;		/* enum child_state */
	int32_t pid;		/* 0 when not running */
	uint32_t restarts;
	uint32_t violations;	/* protocol violations that got it killed */
	int32_t last_exit;	/* wait status as from waitid: >=0 exit code, <0 -signal */
	int64_t started_at;
	char last_reason[128];	/* why it was last restarted */
	struct msg_proc_stat proc;
};

enum vault_state {
	VAULT_ST_LOCKED = 0, VAULT_ST_UNLOCKED, VAULT_ST_DIRTY, VAULT_ST_SAVING,
	VAULT_ST_PUSHING, VAULT_ST_CONFLICT, VAULT_ST_ERROR, VAULT_ST_MAX = VAULT_ST_ERROR,
};
enum watch_mode { WATCH_NONE = 0, WATCH_INOTIFY, WATCH_POLLING, WATCH_MAX = WATCH_POLLING };

struct msg_snap_vault {
	uint32_t state;		/* enum vault_state */
	uint32_t watch_mode;	/* enum watch_mode */
	uint32_t consecutive_failures;
	uint32_t nwatches;
	int64_t last_save_at;	/* unix seconds, 0 = never */
	int64_t last_push_at;
	int64_t last_ok_push_at;
	uint64_t archive_bytes;	/* size of the local archive, 0 = none */
	int64_t next_push_at;	/* unix seconds of the next retry, 0 = none pending */
	uint64_t uploaded_bytes;	/* by the last successful push */
	uint32_t pushed;	/* 1: the remote holds the last saved archive */
	uint32_t weak_cas;	/* 1: the server ignored a conditional header */
	char name[64];
	char path[256];
	char remote[288];
	char last_error[256];
	char remote_etag[128];
	char watch_reason[128];
	char content_id[24];	/* first 16 hex digits of the keyed content id, "" = none */
	/* The last restore drill (vaultsyncctl verify, VerifyInterval). */
	int64_t verify_at;	/* unix seconds it ended, 0 = never */
	uint32_t verify_outcome;	/* enum verify_outcome */
	uint32_t verify_runs;	/* drills since the daemon started */
	uint32_t verify_mismatches;	/* of which found the remote differing */
	uint32_t verify_errors;	/* of which could not fetch or found a broken file */
	char verify_msg[256];
	uint32_t healthy;	/* 1: this vault counts as healthy (the daemon's one rule) */
	int32_t history_count;	/* copies under history/ at the last listing; -1: none yet */
	uint64_t push_sent;	/* a PUT in flight: bytes sent so far ... */
	uint64_t push_total;	/* ... of this many; 0: none in flight */
};

/* A mismatch is an alarm: the vault is unhealthy until a drill matches again. */
enum verify_outcome {
	VERIFY_NONE = 0, VERIFY_OK, VERIFY_MISMATCH, VERIFY_ERROR, VERIFY_SKIPPED,
	VERIFY_OUTCOME_MAX = VERIFY_SKIPPED,
};

/* What started a tick, and how it ended (the tick records of DESIGN §7). */
enum tick_trigger {
	TRIG_STARTUP = 0, TRIG_WATCHER, TRIG_HEAD_POLL, TRIG_INTERVAL, TRIG_CTL,
	TRIG_MAX = TRIG_CTL,
};
enum tick_outcome {
	TICK_OK = 0, TICK_ERROR, TICK_CONFLICT, TICK_SKIPPED, TICK_OUTCOME_MAX = TICK_SKIPPED,
};

/* One tick of a vault, as its tick_end (or tick_skip) record says it. */
struct msg_tick_rec {
	char vault[64];
	uint64_t index;
	int64_t started_ms;	/* unix milliseconds */
	uint64_t duration_ms;
	uint64_t archive_bytes;
	uint64_t uploaded_bytes;	/* 0 unless pushed */
	uint32_t trigger;	/* enum tick_trigger */
	uint32_t outcome;	/* enum tick_outcome */
	uint32_t saved;		/* 1: a new archive */
	uint32_t pushed;	/* 1: it went up */
	uint32_t replayed;	/* 1: sent again to a statusd that restarted (not counted) */
	uint32_t unchanged;	/* 1: the change check found nothing to save, no archive made */
	uint32_t scanned;	/* 1: a stat scan ran; scan_us is its wall time */
	uint32_t pad;
	uint64_t scan_us;
	char sha256[72];	/* of the archive as saved, "" = none yet */
	char error[256];
};

struct msg_snap_end {
	uint32_t healthy;	/* 1 if every vault and child is healthy */
	uint32_t pad;
};

enum ctl_cmd {
	CTL_STATUS = 1, CTL_VERSION, CTL_RELOAD, CTL_STOP,
	CTL_INIT, CTL_UNLOCK, CTL_LOCK, CTL_SYNC,	/* INIT and UNLOCK are followed by CTL_SECRET */
	CTL_PUSH, CTL_PULL, CTL_HISTORY,		/* PULL is followed by CTL_SECRET */
	CTL_VERIFY,
	CTL_CMD_MAX = CTL_VERIFY,
};

#define CTL_F_FORCE	0x1	/* push --force: overwrite the remote latest */

struct msg_ctl_request {
	uint32_t cmd;		/* enum ctl_cmd */
	uint32_t flags;		/* CTL_F_* */
	char vault[64];		/* "" = all / not applicable */
	char arg[256];
};

struct msg_ctl_result {
	int32_t code;		/* 0 ok, else an exit code for vaultsyncctl */
	uint32_t pad;
	char msg[1024];
};

/* Wiped by both ends as soon as it has been used. */
struct msg_ctl_secret {
	uint32_t len;		/* bytes of secret in use; secret[len] is NUL */
	uint32_t pad;
	char secret[1024];
};

struct msg_ctl_line {
	char line[1024];
};

/*
 * Uploader requests.  Keys are relative to the vault's own place on the
 * remote (Prefix/VAULT/): "vault.tar.age", "identity.age", "history/...",
 * "conflicts/..."; both ends check them with msg_valid_key().  Each request
 * carries an id that its ENTRY, MPU and RESULT messages repeat.
 */
#define UPL_KEY_MAX	192
#define UPL_ETAG_MAX	128

enum upl_cond { UPL_COND_NONE = 0, UPL_COND_IF_NONE_MATCH, UPL_COND_IF_MATCH, UPL_COND_MAX = UPL_COND_IF_MATCH };

/*
 * The uploader's configuration, on its channel right after the fork and read
 * before its sandbox closes (it opens the credential files and resolves the
 * endpoints then): one UPL_CRED per credentials file, slots numbered in
 * order; one UPL_REMOTE per vault with a remote; UPL_CONF_END with the
 * counts.  Never in argv, which anyone on the host can read in /proc.
 */
#define UPL_MAX_CREDS	66
/* Directory remotes sit at fds 8..15: the uploader's seccomp rows allow *at() on those only. */
#define UPL_DIRFD_FIRST	8
#define UPL_DIRFD_LAST	15

struct msg_upl_cred {
	uint32_t source;	/* enum cred_source: FILE or SYSTEMD */
	uint32_t slot;		/* 0, 1, ... in the order sent */
	char name[64];		/* "" = global, else the vault whose CredentialsFile it is */
	char path[256];		/* absolute */
};

enum upl_remote_kind { UPL_REMOTE_S3 = 1, UPL_REMOTE_DIR, UPL_REMOTE_MAX = UPL_REMOTE_DIR };

struct msg_upl_remote {
	uint32_t kind;		/* enum upl_remote_kind */
	uint32_t cred;		/* S3: its credentials slot */
	int32_t dirfd;		/* dir: the inherited fd, UPL_DIRFD_FIRST..LAST */
	uint32_t path_style;	/* S3: 0 or 1 */
	char vault[64];
	char region[64];
	char bucket[64];
	char prefix[256];	/* S3: "" or a key prefix, no leading or trailing '/' */
	char endpoint[256];	/* S3: http(s)://host[:port] */
};

struct msg_upl_conf_end {
	uint64_t multipart_threshold;	/* bytes, at least 5 MiB */
	uint32_t ncreds;
	uint32_t nremotes;
};

struct msg_upl_put {
	uint32_t id;
	uint32_t cond;		/* enum upl_cond */
	uint64_t size;		/* bytes of the fd to send, from offset 0 */
	char vault[64];
	char key[UPL_KEY_MAX];
	char etag[UPL_ETAG_MAX];	/* IF_MATCH */
	char content_id[24];	/* object metadata: 16 hex digits of the keyed content id */
	char device_id[64];
};

struct msg_upl_get {
	uint32_t id;
	uint32_t pad;
	uint64_t max;		/* refuse objects larger than this */
	char vault[64];
	char key[UPL_KEY_MAX];
};

enum upl_op { UPL_HEAD = 1, UPL_LIST, UPL_DELETE, UPL_ABORT, UPL_OP_MAX = UPL_ABORT };

struct msg_upl_op {
	uint32_t id;
	uint32_t op;		/* enum upl_op */
	char vault[64];
	char key[UPL_KEY_MAX];	/* LIST: a sub-prefix ("history/") */
	char arg[256];		/* ABORT: the upload id */
};

struct msg_upl_entry {
	uint32_t id;
	uint32_t pad;
	uint64_t size;
	int64_t mtime;		/* unix seconds */
	char key[UPL_KEY_MAX];	/* relative, as in requests */
	char etag[UPL_ETAG_MAX];
};

/* How far a PUT has got: at most a few a second, never after its result. */
struct msg_upl_progress {
	uint32_t id;
	uint32_t pad;
	uint64_t sent;
	uint64_t total;
};

struct msg_upl_mpu {
	uint32_t id;
	uint32_t pad;
	char key[UPL_KEY_MAX];
	char upload_id[256];
};

/* Same values as the uploader's own classification of a reply. */
enum upl_outcome {
	UPL_OK = 0, UPL_NOT_FOUND, UPL_CONFLICT, UPL_AUTH, UPL_RETRY, UPL_FAILED,
	UPL_UNKNOWN,		/* a write that may or may not have landed: HEAD before concluding */
	UPL_OUTCOME_MAX = UPL_UNKNOWN,
};
#define UPL_F_MULTIPART	0x1	/* the object went up in parts */
#define UPL_F_WEAK_CAS	0x2	/* the server ignored the condition; a HEAD compared instead */
/* Parent-side only, refused on the wire: the uploader died before answering. */
#define UPL_F_LOST	0x80000000u

struct msg_upl_result {
	uint32_t id;
	uint32_t outcome;	/* enum upl_outcome */
	int32_t http_status;	/* 0: no HTTP reply */
	uint32_t flags;		/* UPL_F_* */
	uint64_t bytes;		/* sent (PUT) or received (GET), or the object's size (HEAD) */
	int64_t mtime;
	char etag[UPL_ETAG_MAX];
	char content_id[24];
	char error[256];
};

/* PING and PONG: the answer echoes the nonce, so a late one cannot pass for a fresh one. */
struct msg_ping {
	uint32_t nonce;
	uint32_t pad;
};

/*
 * The decoder (DESIGN §4): started for one unlock, pull or drill with the
 * archive at fd 5, identity.age at fd 6 and the write end of a data pipe at
 * fd 7.  It answers START with READY once identity.age has opened (or END
 * if not), then one ENTRY per archive entry, a file's bytes following on the
 * pipe, then END.  The parent checks every entry again and alone writes.
 */
#define DEC_FD_ARCHIVE	5
#define DEC_FD_IDENTITY	6
#define DEC_FD_DATA	7
#define DEC_F_IDENTITY_ONLY	0x1	/* check the passphrase; fd 5 is not read */
#define DEC_F_SCAN		0x2	/* no key: the age structure of fd 5 (restore drill) */
#define DEC_PATH_MAX	4096		/* a name or link target and its NUL */

struct msg_dec_start {
	uint32_t flags;		/* DEC_F_* */
	uint32_t max_logn;	/* scrypt work factor cap: a crafted one cannot stall us */
	uint64_t max_total_bytes;
	uint64_t max_entries;
	uint32_t passlen;	/* bytes of pass in use; pass[passlen] is NUL */
	uint32_t huge_mib;	/* free in huge-page blocks, as the parent saw it: a hint for scrypt */
	char pass[1024];	/* wiped by both ends as soon as it has been used */
};

struct msg_dec_ready {
	uint32_t pad[2];
};

enum dec_type { DEC_DIR = 1, DEC_FILE, DEC_SYMLINK, DEC_TYPE_MAX = DEC_SYMLINK };

struct msg_dec_entry {
	uint32_t type;		/* enum dec_type */
	uint32_t perm;		/* at most 0777 */
	uint32_t has_mtime;
	uint32_t pad;
	int64_t mtime_sec;
	int64_t mtime_nsec;
	uint64_t size;		/* DEC_FILE: bytes that follow on the pipe */
	char name[DEC_PATH_MAX];
	char link[DEC_PATH_MAX];	/* DEC_SYMLINK */
};

/* DEC_STAGE_SCAN: the scan ran, ok says whether the file is well formed, msg describes it. */
enum dec_stage {
	DEC_STAGE_IDENTITY = 1, DEC_STAGE_ARCHIVE, DEC_STAGE_SCAN, DEC_STAGE_MAX = DEC_STAGE_SCAN,
};

struct msg_dec_end {
	uint32_t ok;		/* 1: every entry was sent and the stream authenticated */
	uint32_t stage;		/* enum dec_stage: where it failed */
	unsigned char sha256[32];	/* of the tar stream, when ok */
	char msg[512];		/* why not */
};

/* A relative remote key as defined above: 0 valid, -1 not. */
int msg_valid_key(const char *key);

/* A decoded message: header, payload (validated), and the fd if one came. */
struct msg {
	struct vs_hdr hdr;
	int fd;			/* -1 if none; owned by the receiver */
	union {
		struct msg_hello hello;
		struct msg_log log;
		struct msg_watcher_config wcfg;
		struct msg_watch_change wchange;
		struct msg_watch_newdir wnewdir;
		struct msg_watch_overflow woverflow;
		struct msg_cred_info cred;
		struct msg_statusd_config scfg;
		struct msg_snap_daemon sdaemon;
		struct msg_snap_child schild;
		struct msg_snap_vault svault;
		struct msg_snap_end send;
		struct msg_ctl_request creq;
		struct msg_ctl_result cres;
		struct msg_ctl_secret csecret;
		struct msg_ctl_line cline;
		struct msg_upl_put uput;
		struct msg_upl_get uget;
		struct msg_upl_op uop;
		struct msg_upl_entry uentry;
		struct msg_upl_mpu umpu;
		struct msg_upl_result ures;
		struct msg_ping ping;
		struct msg_upl_cred ucred;
		struct msg_upl_remote uremote;
		struct msg_upl_conf_end uconfend;
		struct msg_dec_start dstart;
		struct msg_dec_ready dready;
		struct msg_dec_entry dentry;
		struct msg_dec_end dend;
		struct msg_tick_rec tick;
		struct msg_upl_progress uprog;
		uint8_t raw[MSG_MAX_PAYLOAD];
	} u;
};

/* Results of msg_recv / msg_decode. */
#define MSG_OK		1
#define MSG_EOF		0
#define MSG_ERR		(-1)	/* system error, errno set (EAGAIN included) */
#define MSG_VIOLATION	(-2)	/* protocol violation: *why says what */

/* Our HELLO as role: this build's protocol version, package version and pid. */
void msg_hello_init(struct msg_hello *h, uint32_t role);
const char *msg_type_name(uint32_t type);
const char *msg_role_name(uint32_t role);
unsigned msg_role_peer(uint32_t role);

/*
 * Validate one datagram as sent by a peer of role 'from' (a PEER_* bit).
 * On MSG_OK, *out holds the header and a validated copy of the payload and
 * out->fd = fd.  On MSG_VIOLATION, *why names the problem; the caller still
 * owns fd and must close it.
 */
int msg_decode(const void *buf, size_t n, unsigned from, int fd,
    struct msg *out, const char **why);

/* Receive one message; any fd that comes with a violation is closed here. */
int msg_recv(int sock, unsigned from, struct msg *out, const char **why);

/*
 * Send one message as role 'self'.  Refuses (-1, EINVAL) what the table does
 * not permit: wrong size, a sender that may not send it, an fd where none
 * belongs or none where one is required.
 */
int msg_send(int sock, unsigned self, uint32_t type, uint32_t seq,
    const void *payload, size_t len, int fd);

/* Helpers for building payloads: copy with truncation, always terminated. */
void msg_strlcpy(char *dst, const char *src, size_t dstsize);

#endif
