/*
 * The wire codec.  See msg.h for the rules; this file is the table that
 * enforces them.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "msg.h"

typedef int (*msg_check_fn)(const void *payload, const char **why);

struct msg_spec {
	const char *name;
	uint32_t size;
	unsigned senders;	/* PEER_* bits allowed to send it */
	int fd;			/* 0 never, 1 always */
	msg_check_fn check;	/* strings terminated, enums in range */
};

/* A fixed char array is valid only if it holds a NUL. */
#define STR_OK(f)	(memchr((f), '\0', sizeof(f)) != NULL)
#define REQUIRE(cond, msg) do { if (!(cond)) { *why = (msg); return -1; } } while (0)

static int
check_hello(const void *p, const char **why)
{
	const struct msg_hello *m = p;

	REQUIRE(m->role <= ROLE_MAX, "hello: role out of range");
	REQUIRE(STR_OK(m->version), "hello: version not terminated");
	return 0;
}

static int
check_log(const void *p, const char **why)
{
	const struct msg_log *m = p;

	REQUIRE(m->level <= MLOG_MAX, "log: level out of range");
	REQUIRE(m->seccomp_nr >= -1, "log: bad syscall number");
	REQUIRE(STR_OK(m->msg), "log: message not terminated");
	return 0;
}

static int
check_wcfg(const void *p, const char **why)
{
	const struct msg_watcher_config *m = p;

	REQUIRE(m->debounce_ms <= 3600 * 1000, "watcher config: debounce out of range");
	return 0;
}

static int
check_wchange(const void *p, const char **why)
{
	const struct msg_watch_change *m = p;

	REQUIRE(m->wd >= 0, "watch change: negative wd");
	return 0;
}

static int
check_wnewdir(const void *p, const char **why)
{
	const struct msg_watch_newdir *m = p;

	REQUIRE(m->wd >= 0, "watch newdir: negative wd");
	REQUIRE(STR_OK(m->name), "watch newdir: name not terminated");
	return 0;
}

static int
check_cred(const void *p, const char **why)
{
	const struct msg_cred_info *m = p;

	REQUIRE(m->source <= CRED_SRC_MAX, "cred info: source out of range");
	REQUIRE(m->state <= CRED_ST_MAX, "cred info: state out of range");
	REQUIRE(m->expiry >= 0 && m->loaded_at >= 0, "cred info: negative time");
	REQUIRE(STR_OK(m->name) && STR_OK(m->path) && STR_OK(m->key_hint) &&
	    STR_OK(m->error), "cred info: string not terminated");
	return 0;
}

static int
check_scfg(const void *p, const char **why)
{
	const struct msg_statusd_config *m = p;

	REQUIRE(m->require_auth <= 1, "statusd config: bad require_auth");
	REQUIRE(STR_OK(m->token), "statusd config: token not terminated");
	return 0;
}

static int
check_sdaemon(const void *p, const char **why)
{
	const struct msg_snap_daemon *m = p;

	REQUIRE(m->mode <= MODE_MAX, "snapshot: mode out of range");
	REQUIRE(STR_OK(m->version) && STR_OK(m->device_id) &&
	    STR_OK(m->status_url) && STR_OK(m->config_file),
	    "snapshot: string not terminated");
	return 0;
}

static int
check_schild(const void *p, const char **why)
{
	const struct msg_snap_child *m = p;

	REQUIRE(m->role <= ROLE_MAX, "snapshot child: role out of range");
	REQUIRE(m->state <= CHILD_ST_MAX, "snapshot child: state out of range");
	REQUIRE(STR_OK(m->last_reason), "snapshot child: reason not terminated");
	return 0;
}

static int
check_svault(const void *p, const char **why)
{
	const struct msg_snap_vault *m = p;

	REQUIRE(m->state <= VAULT_ST_MAX, "snapshot vault: state out of range");
	REQUIRE(m->watch_mode <= WATCH_MAX, "snapshot vault: watch mode out of range");
	REQUIRE(STR_OK(m->name) && STR_OK(m->path) && STR_OK(m->remote) &&
	    STR_OK(m->last_error) && STR_OK(m->remote_etag) &&
	    STR_OK(m->watch_reason) && STR_OK(m->content_id) && STR_OK(m->verify_msg),
	    "snapshot vault: string not terminated");
	REQUIRE(m->verify_outcome <= VERIFY_OUTCOME_MAX,
	    "snapshot vault: verify outcome out of range");
	REQUIRE(m->healthy <= 1, "snapshot vault: bad health flag");
	REQUIRE(m->push_sent <= m->push_total, "snapshot vault: more sent than the whole");
	REQUIRE(m->history_count >= -1, "snapshot vault: history count out of range");
	return 0;
}

static int
check_tick(const void *p, const char **why)
{
	const struct msg_tick_rec *m = p;

	REQUIRE(STR_OK(m->vault) && STR_OK(m->sha256) && STR_OK(m->error),
	    "tick record: string not terminated");
	REQUIRE(m->trigger <= TRIG_MAX && m->outcome <= TICK_OUTCOME_MAX,
	    "tick record: trigger or outcome out of range");
	REQUIRE(m->saved <= 1 && m->pushed <= 1 && m->replayed <= 1 && m->unchanged <= 1 &&
	    m->scanned <= 1 && m->pad == 0 && (m->scanned || (!m->unchanged && !m->scan_us)) &&
	    !(m->unchanged && m->saved), "tick record: bad flag");
	return 0;
}

static int
check_send(const void *p, const char **why)
{
	const struct msg_snap_end *m = p;

	REQUIRE(m->healthy <= 1, "snapshot end: bad healthy flag");
	return 0;
}

static int
check_creq(const void *p, const char **why)
{
	const struct msg_ctl_request *m = p;

	REQUIRE(m->cmd >= 1 && m->cmd <= CTL_CMD_MAX, "ctl request: unknown command");
	REQUIRE(STR_OK(m->vault) && STR_OK(m->arg), "ctl request: string not terminated");
	return 0;
}

static int
check_cres(const void *p, const char **why)
{
	const struct msg_ctl_result *m = p;

	REQUIRE(m->code >= 0 && m->code <= 255, "ctl result: code out of range");
	REQUIRE(STR_OK(m->msg), "ctl result: message not terminated");
	return 0;
}

static int
check_csecret(const void *p, const char **why)
{
	const struct msg_ctl_secret *m = p;

	REQUIRE(m->len < sizeof(m->secret) && m->secret[m->len] == '\0',
	    "ctl secret: bad length");
	return 0;
}

/*
 * A relative remote key: [A-Za-z0-9._-] components separated by single
 * slashes, none empty (a trailing slash marks a LIST prefix), none starting
 * with a dot (so never "." or "..", and never a dir remote's temp names).
 */
int
msg_valid_key(const char *key)
{
	size_t i, n = strnlen(key, UPL_KEY_MAX);
	int start = 1;

	if (n == 0 || n >= UPL_KEY_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)key[i];

		if (ch == '/') {
			if (start)
				return -1;
			start = 1;
			continue;
		}
		if (start && ch == '.')
			return -1;
		start = 0;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return -1;
	}
	return 0;
}

static int
check_cline(const void *p, const char **why)
{
	const struct msg_ctl_line *m = p;

	REQUIRE(STR_OK(m->line), "ctl line: not terminated");
	return 0;
}

static int
check_uput(const void *p, const char **why)
{
	const struct msg_upl_put *m = p;

	REQUIRE(m->cond <= UPL_COND_MAX, "upload put: condition out of range");
	REQUIRE(STR_OK(m->vault) && STR_OK(m->key) && STR_OK(m->etag) &&
	    STR_OK(m->content_id) && STR_OK(m->device_id), "upload put: string not terminated");
	REQUIRE(msg_valid_key(m->key) == 0, "upload put: bad key");
	REQUIRE(m->device_id[0] == '\0' || (msg_valid_key(m->device_id) == 0 &&
	    strchr(m->device_id, '/') == NULL), "upload put: bad device id");
	REQUIRE(m->cond != UPL_COND_IF_MATCH || m->etag[0] != '\0', "upload put: If-Match without ETag");
	return 0;
}

static int
check_uget(const void *p, const char **why)
{
	const struct msg_upl_get *m = p;

	REQUIRE(STR_OK(m->vault) && STR_OK(m->key), "upload get: string not terminated");
	REQUIRE(msg_valid_key(m->key) == 0, "upload get: bad key");
	return 0;
}

static int
check_uop(const void *p, const char **why)
{
	const struct msg_upl_op *m = p;

	REQUIRE(m->op >= 1 && m->op <= UPL_OP_MAX, "upload op: unknown operation");
	REQUIRE(STR_OK(m->vault) && STR_OK(m->key) && STR_OK(m->arg),
	    "upload op: string not terminated");
	REQUIRE(msg_valid_key(m->key) == 0, "upload op: bad key");
	return 0;
}

static int
check_uentry(const void *p, const char **why)
{
	const struct msg_upl_entry *m = p;

	REQUIRE(STR_OK(m->key) && STR_OK(m->etag), "upload entry: string not terminated");
	REQUIRE(msg_valid_key(m->key) == 0, "upload entry: bad key");
	return 0;
}

static int
check_umpu(const void *p, const char **why)
{
	const struct msg_upl_mpu *m = p;

	REQUIRE(STR_OK(m->key) && STR_OK(m->upload_id), "upload mpu: string not terminated");
	REQUIRE(msg_valid_key(m->key) == 0, "upload mpu: bad key");
	return 0;
}

static int
check_uprog(const void *p, const char **why)
{
	const struct msg_upl_progress *m = p;

	REQUIRE(m->pad == 0 && m->sent <= m->total, "upload progress: more sent than the whole");
	return 0;
}

static int
check_ures(const void *p, const char **why)
{
	const struct msg_upl_result *m = p;

	REQUIRE(m->outcome <= UPL_OUTCOME_MAX, "upload result: outcome out of range");
	REQUIRE(m->http_status >= 0 && m->http_status <= 999, "upload result: bad HTTP status");
	REQUIRE((m->flags & ~(uint32_t)(UPL_F_MULTIPART | UPL_F_WEAK_CAS)) == 0,
	    "upload result: unknown flags");
	REQUIRE(STR_OK(m->etag) && STR_OK(m->content_id) && STR_OK(m->error),
	    "upload result: string not terminated");
	return 0;
}

static int
check_ucred(const void *p, const char **why)
{
	const struct msg_upl_cred *m = p;

	REQUIRE(m->source == CRED_SRC_FILE || m->source == CRED_SRC_SYSTEMD,
	    "uploader credentials: bad source");
	REQUIRE(m->slot < UPL_MAX_CREDS, "uploader credentials: slot out of range");
	REQUIRE(STR_OK(m->name) && STR_OK(m->path), "uploader credentials: string not terminated");
	REQUIRE(m->path[0] == '/', "uploader credentials: path not absolute");
	return 0;
}

static int
check_uremote(const void *p, const char **why)
{
	const struct msg_upl_remote *m = p;

	REQUIRE(STR_OK(m->vault) && STR_OK(m->region) && STR_OK(m->bucket) &&
	    STR_OK(m->prefix) && STR_OK(m->endpoint), "uploader remote: string not terminated");
	REQUIRE(m->vault[0] != '\0' && strchr(m->vault, '/') == NULL &&
	    msg_valid_key(m->vault) == 0, "uploader remote: bad vault name");
	if (m->kind == UPL_REMOTE_DIR) {
		REQUIRE(m->dirfd >= UPL_DIRFD_FIRST && m->dirfd <= UPL_DIRFD_LAST,
		    "uploader remote: directory fd out of range");
		return 0;
	}
	REQUIRE(m->kind == UPL_REMOTE_S3, "uploader remote: bad kind");
	REQUIRE(m->cred < UPL_MAX_CREDS, "uploader remote: credentials slot out of range");
	REQUIRE(m->path_style <= 1, "uploader remote: bad path style");
	REQUIRE(m->prefix[0] == '\0' || msg_valid_key(m->prefix) == 0,
	    "uploader remote: bad prefix");
	REQUIRE(strncmp(m->endpoint, "http://", 7) == 0 || strncmp(m->endpoint, "https://", 8) == 0,
	    "uploader remote: endpoint is not http(s)");
	REQUIRE(m->bucket[0] != '\0', "uploader remote: no bucket");
	return 0;
}

static int
check_uconfend(const void *p, const char **why)
{
	const struct msg_upl_conf_end *m = p;

	REQUIRE(m->multipart_threshold >= (5u << 20), "uploader configuration: threshold below 5 MiB");
	REQUIRE(m->ncreds <= UPL_MAX_CREDS && m->nremotes <= 64,
	    "uploader configuration: counts out of range");
	return 0;
}

static int
check_dstart(const void *p, const char **why)
{
	const struct msg_dec_start *m = p;

	REQUIRE((m->flags & ~(uint32_t)(DEC_F_IDENTITY_ONLY | DEC_F_SCAN)) == 0,
	    "decoder start: unknown flags");
	REQUIRE((m->flags & DEC_F_IDENTITY_ONLY) == 0 || (m->flags & DEC_F_SCAN) == 0,
	    "decoder start: both identity-only and scan");
	REQUIRE(m->max_logn >= 1 && m->max_logn <= 30, "decoder start: work factor cap out of range");
	REQUIRE(m->passlen < sizeof(m->pass) && m->pass[m->passlen] == '\0',
	    "decoder start: bad passphrase length");
	return 0;
}

static int
check_dentry(const void *p, const char **why)
{
	const struct msg_dec_entry *m = p;

	REQUIRE(m->type >= DEC_DIR && m->type <= DEC_TYPE_MAX, "decoder entry: type out of range");
	REQUIRE(m->perm <= 0777, "decoder entry: mode out of range");
	REQUIRE(m->has_mtime <= 1, "decoder entry: bad mtime flag");
	REQUIRE(m->mtime_nsec >= 0 && m->mtime_nsec <= 999999999,
	    "decoder entry: nanoseconds out of range");
	REQUIRE(STR_OK(m->name) && STR_OK(m->link), "decoder entry: string not terminated");
	REQUIRE(m->name[0] != '\0', "decoder entry: empty name");
	REQUIRE(m->type == DEC_FILE || m->size == 0, "decoder entry: size on a non-file");
	REQUIRE(m->type == DEC_SYMLINK || m->link[0] == '\0', "decoder entry: link on a non-link");
	return 0;
}

static int
check_dend(const void *p, const char **why)
{
	const struct msg_dec_end *m = p;

	REQUIRE(m->ok <= 1, "decoder end: bad verdict");
	REQUIRE(m->stage >= DEC_STAGE_IDENTITY && m->stage <= DEC_STAGE_MAX,
	    "decoder end: stage out of range");
	REQUIRE(STR_OK(m->msg), "decoder end: message not terminated");
	return 0;
}

static int
check_none(const void *p, const char **why)
{
	(void)p;
	(void)why;
	return 0;
}

#define SPEC(t, n, type, senders, fd, chk) \
	[t] = { n, sizeof(type), senders, fd, chk }

static const struct msg_spec msg_table[MSG_TYPE_MAX + 1] = {
	SPEC(MSG_HELLO, "HELLO", struct msg_hello,
	    PEER_PARENT | PEER_CHILDREN | PEER_CTL, 0, check_hello),
	SPEC(MSG_LOG, "LOG", struct msg_log, PEER_CHILDREN, 0, check_log),
	SPEC(MSG_WATCHER_CONFIG, "WATCHER_CONFIG", struct msg_watcher_config,
	    PEER_PARENT, 0, check_wcfg),
	SPEC(MSG_WATCH_CHANGE, "WATCH_CHANGE", struct msg_watch_change,
	    PEER_WATCHER, 0, check_wchange),
	SPEC(MSG_WATCH_NEWDIR, "WATCH_NEWDIR", struct msg_watch_newdir,
	    PEER_WATCHER, 0, check_wnewdir),
	SPEC(MSG_WATCH_OVERFLOW, "WATCH_OVERFLOW", struct msg_watch_overflow,
	    PEER_WATCHER, 0, check_none),
	SPEC(MSG_CRED_INFO, "CRED_INFO", struct msg_cred_info,
	    PEER_UPLOADER | PEER_PARENT, 0, check_cred),
	SPEC(MSG_STATUSD_CONFIG, "STATUSD_CONFIG", struct msg_statusd_config,
	    PEER_PARENT, 0, check_scfg),
	SPEC(MSG_SNAP_DAEMON, "SNAP_DAEMON", struct msg_snap_daemon,
	    PEER_PARENT, 0, check_sdaemon),
	SPEC(MSG_SNAP_CHILD, "SNAP_CHILD", struct msg_snap_child,
	    PEER_PARENT, 0, check_schild),
	SPEC(MSG_SNAP_VAULT, "SNAP_VAULT", struct msg_snap_vault,
	    PEER_PARENT, 0, check_svault),
	SPEC(MSG_SNAP_END, "SNAP_END", struct msg_snap_end,
	    PEER_PARENT, 0, check_send),
	SPEC(MSG_CTL_REQUEST, "CTL_REQUEST", struct msg_ctl_request,
	    PEER_CTL, 0, check_creq),
	SPEC(MSG_CTL_RESULT, "CTL_RESULT", struct msg_ctl_result,
	    PEER_PARENT, 0, check_cres),
	SPEC(MSG_CTL_SECRET, "CTL_SECRET", struct msg_ctl_secret,
	    PEER_CTL, 0, check_csecret),
	SPEC(MSG_UPL_PUT, "UPL_PUT", struct msg_upl_put, PEER_PARENT, 1, check_uput),
	SPEC(MSG_UPL_GET, "UPL_GET", struct msg_upl_get, PEER_PARENT, 1, check_uget),
	SPEC(MSG_UPL_OP, "UPL_OP", struct msg_upl_op, PEER_PARENT, 0, check_uop),
	SPEC(MSG_UPL_ENTRY, "UPL_ENTRY", struct msg_upl_entry, PEER_UPLOADER, 0, check_uentry),
	SPEC(MSG_UPL_MPU, "UPL_MPU", struct msg_upl_mpu, PEER_UPLOADER, 0, check_umpu),
	SPEC(MSG_UPL_RESULT, "UPL_RESULT", struct msg_upl_result, PEER_UPLOADER, 0, check_ures),
	SPEC(MSG_CTL_LINE, "CTL_LINE", struct msg_ctl_line, PEER_PARENT, 0, check_cline),
	SPEC(MSG_PING, "PING", struct msg_ping, PEER_PARENT, 0, check_none),
	SPEC(MSG_PONG, "PONG", struct msg_ping, PEER_STATUSD, 0, check_none),
	SPEC(MSG_UPL_CRED, "UPL_CRED", struct msg_upl_cred, PEER_PARENT, 0, check_ucred),
	SPEC(MSG_UPL_REMOTE, "UPL_REMOTE", struct msg_upl_remote, PEER_PARENT, 0, check_uremote),
	SPEC(MSG_UPL_CONF_END, "UPL_CONF_END", struct msg_upl_conf_end, PEER_PARENT, 0,
	    check_uconfend),
	SPEC(MSG_DEC_START, "DEC_START", struct msg_dec_start, PEER_PARENT, 0, check_dstart),
	SPEC(MSG_DEC_READY, "DEC_READY", struct msg_dec_ready, PEER_DECODER, 0, check_none),
	SPEC(MSG_DEC_ENTRY, "DEC_ENTRY", struct msg_dec_entry, PEER_DECODER, 0, check_dentry),
	SPEC(MSG_DEC_END, "DEC_END", struct msg_dec_end, PEER_DECODER, 0, check_dend),
	SPEC(MSG_TICK_REC, "TICK_REC", struct msg_tick_rec, PEER_PARENT, 0, check_tick),
	SPEC(MSG_UPL_PROGRESS, "UPL_PROGRESS", struct msg_upl_progress, PEER_UPLOADER, 0,
	    check_uprog),
};

/* Layouts are part of the protocol: catch accidental padding or growth. */
_Static_assert(sizeof(struct vs_hdr) == 16, "header");
_Static_assert(sizeof(struct msg_hello) == 48, "hello is frozen");
_Static_assert(sizeof(struct msg_log) == 1008, "log");
_Static_assert(sizeof(struct msg_watch_newdir) == 264, "newdir");
_Static_assert(sizeof(struct msg_cred_info) == 608, "cred");
_Static_assert(sizeof(struct msg_snap_daemon) == 504, "snap daemon");
_Static_assert(sizeof(struct msg_snap_child) == 184, "snap child");
_Static_assert(sizeof(struct msg_snap_vault) == 1520, "snap vault");
_Static_assert(sizeof(struct msg_upl_put) == 488, "upload put");
_Static_assert(sizeof(struct msg_upl_get) == 272, "upload get");
_Static_assert(sizeof(struct msg_upl_op) == 520, "upload op");
_Static_assert(sizeof(struct msg_upl_entry) == 344, "upload entry");
_Static_assert(sizeof(struct msg_upl_mpu) == 456, "upload mpu");
_Static_assert(sizeof(struct msg_upl_result) == 440, "upload result");
_Static_assert(sizeof(struct msg_ctl_secret) == 1032, "ctl secret");
_Static_assert(sizeof(struct msg_ctl_request) == 328, "ctl request");
_Static_assert(sizeof(struct msg_ctl_result) == 1032, "ctl result");
_Static_assert(sizeof(struct msg_ping) == 8, "ping");
_Static_assert(sizeof(struct msg_upl_cred) == 328, "uploader credentials");
_Static_assert(sizeof(struct msg_upl_remote) == 720, "uploader remote");
_Static_assert(sizeof(struct msg_upl_conf_end) == 16, "uploader configuration end");
_Static_assert(sizeof(struct msg_dec_start) == 1056, "decoder start");
_Static_assert(sizeof(struct msg_dec_entry) == 8232, "decoder entry");
_Static_assert(sizeof(struct msg_dec_end) == 552, "decoder end");
_Static_assert(sizeof(struct msg_tick_rec) == 472, "tick record");
_Static_assert(sizeof(struct msg_upl_progress) == 24, "upload progress");
_Static_assert(sizeof(struct msg_dec_entry) <= MSG_MAX_PAYLOAD, "decoder entry fits");

static const struct msg_spec *
spec_of(uint32_t type)
{
	if (type == 0 || type > MSG_TYPE_MAX || msg_table[type].name == NULL)
		return NULL;
	return &msg_table[type];
}

void
msg_hello_init(struct msg_hello *h, uint32_t role)
{
	memset(h, 0, sizeof(*h));
	h->proto = VS_PROTO_VERSION;
	h->role = role;
	h->pid = (int32_t)getpid();
	msg_strlcpy(h->version, VS_VERSION, sizeof(h->version));
}

const char *
msg_type_name(uint32_t type)
{
	const struct msg_spec *s = spec_of(type);

	return s ? s->name : "UNKNOWN";
}

const char *
msg_role_name(uint32_t role)
{
	static const char *names[] = { "parent", "watcher", "uploader", "statusd", "ctl",
	    "decoder" };

	return role <= ROLE_MAX ? names[role] : "unknown";
}

unsigned
msg_role_peer(uint32_t role)
{
	static const unsigned peers[] = { PEER_PARENT, PEER_WATCHER, PEER_UPLOADER,
	    PEER_STATUSD, PEER_CTL, PEER_DECODER };

	return role <= ROLE_MAX ? peers[role] : 0;
}

void
msg_strlcpy(char *dst, const char *src, size_t dstsize)
{
	size_t n;

	if (dstsize == 0)
		return;
	n = strnlen(src, dstsize - 1);
	memcpy(dst, src, n);
	memset(dst + n, 0, dstsize - n);
}

int
msg_decode(const void *buf, size_t n, unsigned from, int fd, struct msg *out,
    const char **why)
{
	const struct msg_spec *s;
	struct vs_hdr h;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (n < sizeof(h)) {
		*why = "short header";
		return MSG_VIOLATION;
	}
	memcpy(&h, buf, sizeof(h));
	if ((s = spec_of(h.type)) == NULL) {
		*why = "unknown message type";
		return MSG_VIOLATION;
	}
	if (h.flags != 0) {
		*why = "reserved flags set";
		return MSG_VIOLATION;
	}
	/* Length first, before the payload is looked at at all. */
	if (h.len != s->size || n - sizeof(h) != h.len) {
		*why = "payload length does not match its type";
		return MSG_VIOLATION;
	}
	if ((s->senders & from) == 0) {
		*why = "message type not permitted from this peer";
		return MSG_VIOLATION;
	}
	if (s->fd && fd < 0) {
		*why = "expected fd missing";
		return MSG_VIOLATION;
	}
	if (!s->fd && fd >= 0) {
		*why = "unexpected fd";
		return MSG_VIOLATION;
	}
	memset(out, 0, sizeof(*out));
	out->hdr = h;
	memcpy(&out->u, (const char *)buf + sizeof(h), h.len);
	if (s->check(&out->u, why) != 0)
		return MSG_VIOLATION;
	out->fd = fd;
	return MSG_OK;
}

int
msg_recv(int sock, unsigned from, struct msg *out, const char **why)
{
	unsigned char buf[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD + 1];
	/* Room for several fds, so that a sender who sends too many is caught. */
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * 8)];
	} cbuf;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh;
	struct cmsghdr *cm;
	const char *dummy;
	ssize_t r;
	int fd = -1, extra = 0, rv;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.space;
	mh.msg_controllen = sizeof(cbuf.space);
	do {
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (r == -1 && errno == EINTR);
	if (r == -1)
		return MSG_ERR;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t i, nfd;
		int f;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
			extra++;
			continue;
		}
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fd == -1)
				fd = f;
			else {
				close(f);
				extra++;
			}
		}
	}
	if (r == 0 && fd == -1 && extra == 0)
		return MSG_EOF;
	if (extra || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		if (fd != -1)
			close(fd);
		*why = (mh.msg_flags & MSG_TRUNC) ? "oversized datagram" :
		    "too many fds or unexpected control data";
		return MSG_VIOLATION;
	}
	rv = msg_decode(buf, (size_t)r, from, fd, out, why);
	if (rv != MSG_OK && fd != -1)
		close(fd);
	/* Passphrases pass through here: leave no copy on the stack. */
	explicit_bzero(buf, (size_t)r);
	return rv;
}

int
msg_send(int sock, unsigned self, uint32_t type, uint32_t seq,
    const void *payload, size_t len, int fd)
{
	const struct msg_spec *s = spec_of(type);
	struct vs_hdr h;
	struct iovec iov[2];
	struct msghdr mh;
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int))];
	} cbuf;
	ssize_t r;

	if (s == NULL || len != s->size || (s->senders & self) == 0 ||
	    (s->fd && fd < 0) || (!s->fd && fd >= 0)) {
		errno = EINVAL;
		return -1;
	}
	h.type = type;
	h.len = (uint32_t)len;
	h.seq = seq;
	h.flags = 0;
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)payload;
	iov[1].iov_len = len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.space;
		mh.msg_controllen = sizeof(cbuf.space);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	do {
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (r == -1 && errno == EINTR);
	if (r == -1)
		return -1;
	if ((size_t)r != sizeof(h) + len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}
