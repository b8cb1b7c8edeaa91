/*
 * The monitor side of privilege separation: fork+exec of the children from
 * compile-time paths with fixed fds, the per-child dispatch tables, and the
 * restart policy.  A child that breaks the protocol is presumed compromised:
 * it is killed (through its pidfd, so a recycled pid is never hit) and
 * started afresh with backoff.
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "vaultsyncd.h"

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	30000
#define STABLE_MS	30000	/* running this long resets the backoff */
#define HELLO_TIMEOUT_MS 10000
/* statusd is pinged this often, and restarted when a PING stays unanswered this long. */
#define LIVE_INTERVAL_MS 5000
#define LIVE_TIMEOUT_MS	10000

/* A handler returns NULL, or why the message breaks the protocol. */
typedef const char *(*handler_fn)(struct child_proc *c, struct msg *m);

struct dispatch {
	uint32_t type;
	handler_fn fn;
};

static const char *on_watch_change(struct child_proc *c, struct msg *m) { (void)c; watch_on_change(&m->u.wchange); return NULL; }
static const char *on_watch_newdir(struct child_proc *c, struct msg *m) { (void)c; watch_on_newdir(&m->u.wnewdir); return NULL; }
static const char *on_watch_overflow(struct child_proc *c, struct msg *m) { (void)c; (void)m; watch_on_overflow(); return NULL; }
static const char *on_upl_result(struct child_proc *c, struct msg *m) { (void)c; return upl_on_result(&m->u.ures); }
static const char *on_upl_entry(struct child_proc *c, struct msg *m) { (void)c; return upl_on_entry(&m->u.uentry); }
static const char *on_upl_mpu(struct child_proc *c, struct msg *m) { (void)c; return upl_on_mpu(&m->u.umpu); }

/*
 * Credential rotation without reading credentials: the metadata of each file
 * as the current uploader found it; a change means a fresh uploader.
 */
static struct stat cred_st[MAX_CREDFILES];
static int cred_st_ok[MAX_CREDFILES];
static size_t ncred_st;

static void
creds_snapshot(void)
{
	size_t i;

	for (i = 0; i < D.ncreds; i++)
		cred_st_ok[i] = stat(D.creds[i].path, &cred_st[i]) == 0;
	ncred_st = D.ncreds;
}

static void restart_uploader(const char *why);

int
children_creds_changed(void)
{
	struct stat st;
	size_t i;
	int ok;

	if (ncred_st != D.ncreds)
		return 0;	/* a reload is restarting it anyway */
	for (i = 0; i < D.ncreds; i++) {
		ok = stat(D.creds[i].path, &st) == 0;
		if (ok != cred_st_ok[i] || (ok && (st.st_ino != cred_st[i].st_ino ||
		    st.st_dev != cred_st[i].st_dev || st.st_size != cred_st[i].st_size ||
		    st.st_mtim.tv_sec != cred_st[i].st_mtim.tv_sec ||
		    st.st_mtim.tv_nsec != cred_st[i].st_mtim.tv_nsec ||
		    st.st_ctim.tv_nsec != cred_st[i].st_ctim.tv_nsec ||
		    st.st_mode != cred_st[i].st_mode))) {
			log_info("credentials %s changed; restarting the uploader to read them",
			    D.creds[i].path);
			restart_uploader("credentials file changed");
			return 1;
		}
	}
	return 0;
}

/* One timer for the earliest expiry: the uploader's reports cannot make the parent add more. */
static int expiry_timer = -1;
static int64_t expiry_at;

static void
expiry_fired(void *arg)
{
	(void)arg;
	expiry_timer = -1;
	log_info("credentials are about to expire; restarting the uploader to read them again");
	restart_uploader("credentials about to expire");
}

#define EXPIRY_MARGIN_S	60

static const char *
on_cred_info(struct child_proc *c, struct msg *m)
{
	size_t i;

	(void)c;
	/* Re-check against our own config: only files we asked it to read. */
	for (i = 0; i < D.ncreds; i++) {
		if (strcmp(D.creds[i].path, m->u.cred.path) == 0 &&
		    strcmp(D.creds[i].name, m->u.cred.name) == 0) {
			int64_t now = (int64_t)time(NULL), at = m->u.cred.expiry - EXPIRY_MARGIN_S;

			if (D.creds[i].state != m->u.cred.state)
				log_info("credentials %s: %s", m->u.cred.path,
				    m->u.cred.state == CRED_ST_OK ? "ok" : m->u.cred.error);
			/* Re-read shortly before they expire; if that gives nothing newer, wait for a change. */
			if (m->u.cred.expiry > 0 && at > now &&
			    (expiry_timer < 0 || at < expiry_at)) {
				if (expiry_timer >= 0)
					timer_cancel(expiry_timer);
				expiry_timer = timer_add((uint64_t)(at - now) * 1000, expiry_fired, NULL);
				expiry_at = at;
			}
			D.creds[i] = m->u.cred;
			return NULL;
		}
	}
	/* Not a violation: an uploader on its way out after a reload may still report the old files. */
	log_warn("uploader reported credentials %s that were not configured; ignored",
	    m->u.cred.path);
	return NULL;
}

/* After HELLO, only these types are accepted from each child. */
static const struct dispatch watcher_table[] = {
	{ MSG_WATCH_CHANGE, on_watch_change },
	{ MSG_WATCH_NEWDIR, on_watch_newdir },
	{ MSG_WATCH_OVERFLOW, on_watch_overflow },
	{ 0, NULL },
};
static const struct dispatch uploader_table[] = {
	{ MSG_CRED_INFO, on_cred_info },
	{ MSG_UPL_RESULT, on_upl_result },
	{ MSG_UPL_ENTRY, on_upl_entry },
	{ MSG_UPL_MPU, on_upl_mpu },
	{ 0, NULL },
};
/*
 * Liveness: statusd's clients are not the parent, so a statusd that stopped
 * serving would go unnoticed by the supervision above.  It must answer a
 * PING through the same loop that serves HTTP; one that does not is killed
 * and restarted with the usual backoff.
 */
struct live {
	int timer;
	uint32_t nonce;		/* of the PING in flight; 0: none */
	uint64_t sent;		/* mono_ms of that PING */
	int hung;		/* killed by the check: keep that as the reason */
};
static struct live live[NCHILDREN];

static const char *
on_pong(struct child_proc *c, struct msg *m)
{
	struct live *l = &live[c->role - 1];

	if (l->nonce == 0 || m->u.ping.nonce != l->nonce)
		return "PONG that answers no PING";
	l->nonce = 0;
	return NULL;
}

static void chan_readable(int fd, uint32_t events, void *arg);
static void child_kill(struct child_proc *c, const char *reason);

static void
live_fired(void *arg)
{
	static uint32_t nonce;
	struct child_proc *c = arg;
	struct live *l = &live[c->role - 1];
	struct msg_ping p;
	uint64_t waited;

	l->timer = -1;
	if (c->state != CHILD_ST_RUNNING || c->chan < 0)
		return;
	if (l->nonce != 0) {
		/* Its PONG may be queued behind this timer after a slow turn of our own loop. */
		chan_readable(c->chan, EPOLLIN, c);
		if (c->chan < 0)
			return;
	}
	if (l->nonce != 0 && (waited = mono_ms() - l->sent) >= LIVE_TIMEOUT_MS) {
		log_warn("%s did not answer a liveness check for %llu s; restarting",
		    msg_role_name(c->role), (unsigned long long)(waited / 1000));
		l->hung = 1;
		child_kill(c, "did not answer a liveness check");
		return;
	}
	if (l->nonce == 0) {
		if (++nonce == 0)
			nonce = 1;
		memset(&p, 0, sizeof(p));
		p.nonce = nonce;
		if (proc_send(c, MSG_PING, &p, sizeof(p)) == 0) {
			l->nonce = nonce;
			l->sent = mono_ms();
		}
	}
	l->timer = timer_add(LIVE_INTERVAL_MS, live_fired, c);
}

static void
live_start(struct child_proc *c)
{
	struct live *l = &live[c->role - 1];

	l->nonce = 0;
	l->hung = 0;
	l->timer = timer_add(LIVE_INTERVAL_MS, live_fired, c);
}

static void
live_stop(struct child_proc *c)
{
	struct live *l = &live[c->role - 1];

	if (l->timer >= 0)
		timer_cancel(l->timer);
	l->timer = -1;
	l->nonce = 0;
}

static const struct dispatch statusd_table[] = {
	{ MSG_PONG, on_pong },
	{ 0, NULL },
};
static const struct dispatch *const tables[NCHILDREN] = {
	watcher_table, uploader_table, statusd_table,
};

static const char *const binaries[NCHILDREN] = {
	"vaultsync-watcher", "vaultsync-uploader", "vaultsync-statusd",
};

static void child_reaped(struct child_proc *c, int status);

struct child_proc *
child_by_role(uint32_t role)
{
	if (role < ROLE_WATCHER || role > ROLE_STATUSD)
		return NULL;
	return &D.children[role - 1];
}

static int
child_enabled(const struct child_proc *c)
{
	return c->role != ROLE_STATUSD || D.cfg.status_api;
}

void
children_init(void)
{
	static char paths[NCHILDREN][CFG_PATH_MAX + 64];
	int i;

	for (i = 0; i < NCHILDREN; i++) {
		struct child_proc *c = &D.children[i];

		memset(c, 0, sizeof(*c));
		c->role = (uint32_t)i + 1;
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", libexec_dir, binaries[i]);
		c->bin = paths[i];
		c->pidfd = c->chan = c->logfd = -1;
		c->restart_timer = -1;
		c->backoff_ms = BACKOFF_MIN_MS;
		c->state = CHILD_ST_STOPPED;
		live[i].timer = -1;
	}
}

int
proc_send(struct child_proc *c, uint32_t type, const void *p, size_t len)
{
	if (c->chan < 0)
		return -1;
	if (msg_send(c->chan, PEER_PARENT, type, ++c->seq, p, len, -1) != 0) {
		log_warn("%s: send %s: %s", msg_role_name(c->role), msg_type_name(type),
		    strerror(errno));
		return -1;
	}
	return 0;
}

static void
child_kill(struct child_proc *c, const char *reason)
{
	if (c->pidfd < 0)
		return;
	snprintf(c->last_reason, sizeof(c->last_reason), "%s", reason);
	if (syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0) == -1 && errno != ESRCH)
		log_error("pidfd_send_signal %s: %s", msg_role_name(c->role), strerror(errno));
}

static void
violation(struct child_proc *c, const char *why)
{
	log_error("%s (pid %d) broke the protocol: %s; killing it",
	    msg_role_name(c->role), (int)c->pid, why);
	c->violations++;
	c->killed_for_violation = 1;
	child_kill(c, why);
	/* Stop listening at once: nothing more it says can be trusted. */
	if (c->chan >= 0) {
		ev_del(c->chan);
		close(c->chan);
		c->chan = -1;
	}
}

static void
send_initial_config(struct child_proc *c)
{
	if (c->role == ROLE_WATCHER) {
		struct msg_watcher_config w = { (uint32_t)D.cfg.watcher_debounce_ms, 0 };

		proc_send(c, MSG_WATCHER_CONFIG, &w, sizeof(w));
	} else if (c->role == ROLE_STATUSD) {
		struct msg_statusd_config s;

		memset(&s, 0, sizeof(s));
		s.require_auth = D.cfg.status_require_auth ? 1 : 0;
		s.tick_history = D.cfg.status_tick_history;
		msg_strlcpy(s.token, D.token, sizeof(s.token));
		proc_send(c, MSG_STATUSD_CONFIG, &s, sizeof(s));
		explicit_bzero(&s, sizeof(s));
	}
}

static void
on_hello(struct child_proc *c, struct msg *m)
{
	struct msg_hello h;

	if (m->u.hello.role != c->role) {
		violation(c, "hello with the wrong role");
		return;
	}
	if (m->u.hello.proto != VS_PROTO_VERSION) {
		char why[128];

		snprintf(why, sizeof(why), "protocol %u, expected %u (binary %s on disk "
		    "does not match this vaultsyncd)", m->u.hello.proto, VS_PROTO_VERSION, c->bin);
		violation(c, why);
		return;
	}
	msg_hello_init(&h, ROLE_PARENT);
	if (proc_send(c, MSG_HELLO, &h, sizeof(h)) != 0)
		return;
	c->state = CHILD_ST_RUNNING;
	log_info("%s started (pid %d)", msg_role_name(c->role), (int)c->pid);
	send_initial_config(c);
	if (c->role == ROLE_STATUSD)
		live_start(c);
	daemon_child_ready();
	if (c->role == ROLE_UPLOADER)
		remote_uploader_ready();
}

static void
chan_readable(int fd, uint32_t events, void *arg)
{
	struct child_proc *c = arg;
	const struct dispatch *t;
	struct msg m;
	const char *why;
	int rv, budget = 64;

	(void)fd;
	(void)events;
	while (c->chan >= 0 && budget-- > 0) {
		rv = msg_recv(c->chan, msg_role_peer(c->role), &m, &why);
		if (rv == MSG_ERR) {
			if (errno != EAGAIN)
				log_warn("%s channel: %s", msg_role_name(c->role), strerror(errno));
			return;
		}
		if (rv == MSG_EOF) {
			/* Exiting; the pidfd tells us when it is gone. */
			ev_del(c->chan);
			close(c->chan);
			c->chan = -1;
			return;
		}
		if (rv == MSG_VIOLATION) {
			violation(c, why);
			return;
		}
		if (c->state == CHILD_ST_STARTING) {
			if (m.hdr.type != MSG_HELLO) {
				violation(c, "first message is not HELLO");
				return;
			}
			on_hello(c, &m);
			continue;
		}
		for (t = tables[c->role - 1]; t->fn != NULL; t++)
			if (t->type == m.hdr.type)
				break;
		if (t->fn == NULL) {
			char buf[96];

			snprintf(buf, sizeof(buf), "%s is not permitted from %s",
			    msg_type_name(m.hdr.type), msg_role_name(c->role));
			violation(c, buf);
			return;
		}
		if ((why = t->fn(c, &m)) != NULL) {
			violation(c, why);
			return;
		}
	}
}

static void
log_one(struct child_proc *c, struct msg_log *l)
{
	if (l->seccomp_nr >= 0) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, l->seccomp_nr);

		log_error("%s (pid %d): seccomp stopped forbidden system call %s (%d), %s",
		    msg_role_name(c->role), (int)c->pid, name ? name : "?", l->seccomp_nr,
		    l->msg);
		free(name);
		return;
	}
	log_emit((enum log_level)l->level, msg_role_name(c->role), c->pid, l->msg);
}

static void
drain_log(struct child_proc *c)
{
	struct msg m;
	const char *why;
	int rv, budget = 256;

	while (c->logfd >= 0 && budget-- > 0) {
		rv = msg_recv(c->logfd, msg_role_peer(c->role), &m, &why);
		if (rv == MSG_OK && m.hdr.type == MSG_LOG) {
			if (m.u.log.level <= (uint32_t)log_get_level() || m.u.log.seccomp_nr >= 0)
				log_one(c, &m.u.log);
			continue;
		}
		if (rv == MSG_ERR && errno == EAGAIN)
			return;
		if (rv == MSG_VIOLATION || rv == MSG_OK) {
			violation(c, rv == MSG_OK ? "non-LOG message on the log fd" : why);
			return;
		}
		/* EOF or error: stop listening; the pidfd finishes the job. */
		ev_del(c->logfd);
		close(c->logfd);
		c->logfd = -1;
		return;
	}
}

static void
log_readable(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	drain_log(arg);
}

static void
pidfd_readable(int fd, uint32_t events, void *arg)
{
	struct child_proc *c = arg;
	siginfo_t si;
	int status;

	(void)events;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) == -1) {
		log_error("waitid %s: %s", msg_role_name(c->role), strerror(errno));
		return;
	}
	if (si.si_pid == 0)
		return;
	status = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
	child_reaped(c, status);
}

static void
restart_timer_fired(void *arg)
{
	struct child_proc *c = arg;

	c->restart_timer = -1;
	if (!D.shutting_down && child_enabled(c))
		child_start(c);
}

static void
child_reaped(struct child_proc *c, int status)
{
	int was_running = c->state == CHILD_ST_RUNNING;
	uint64_t ran = mono_ms() - c->started_mono;
	pid_t pid = c->pid;

	drain_log(c);
	live_stop(c);
	ev_del(c->pidfd);
	close(c->pidfd);
	c->pidfd = -1;
	if (c->chan >= 0) {
		ev_del(c->chan);
		close(c->chan);
		c->chan = -1;
	}
	if (c->logfd >= 0) {
		ev_del(c->logfd);
		close(c->logfd);
		c->logfd = -1;
	}
	c->last_exit = status;
	c->pid = 0;
	if (c->role == ROLE_UPLOADER)
		upl_lost(status >= 0 ? "the uploader exited before answering" :
		    "the uploader was killed before answering");
	if (D.shutting_down) {
		c->state = CHILD_ST_STOPPED;
		return;
	}
	if (!c->killed_for_violation && !live[c->role - 1].hung) {
		if (status >= 0)
			snprintf(c->last_reason, sizeof(c->last_reason), "exited with status %d", status);
		else
			snprintf(c->last_reason, sizeof(c->last_reason), "killed by signal %d (%s)",
			    -status, strsignal(-status));
	}
	c->killed_for_violation = 0;
	live[c->role - 1].hung = 0;
	if (!D.ready && !was_running) {
		daemon_child_failed_at_startup(c, status);
		return;
	}
	if (ran >= STABLE_MS)
		c->backoff_ms = BACKOFF_MIN_MS;
	log_warn("%s (pid %d) %s; restarting in %llu ms", msg_role_name(c->role),
	    (int)pid, c->last_reason, (unsigned long long)c->backoff_ms);
	c->state = CHILD_ST_BACKOFF;
	c->restarts++;
	c->restart_timer = timer_add(c->backoff_ms, restart_timer_fired, c);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* Move fd to a number above the fixed slots, so the dup2s below never collide. */
static int
lift(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 16);
}

/*
 * The fds a child gets: 3 channel, 4 log, 5 its job fd (watcher: inotify,
 * statusd: the listener), and for the uploader its dir: remotes at 8.. .
 */
struct child_fds {
	int job;
	int dirs[UPL_DIRFD_SLOTS];
	int ndirs;
};

static void __attribute__((noreturn))
exec_child(struct child_proc *c, int chan, int logfd, struct child_fds *f, char **argv)
{
	char *envp[] = { NULL };
	sigset_t none;
	int sig, i;

	/* Blocked and ignored signals survive exec: give the child a clean slate. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	chan = lift(chan);
	logfd = lift(logfd);
	if (f->job >= 0)
		f->job = lift(f->job);
	for (i = 0; i < f->ndirs; i++)
		if ((f->dirs[i] = lift(f->dirs[i])) < 0)
			_exit(127);
	if (chan < 0 || logfd < 0 || (f->job < 0 && c->role != ROLE_UPLOADER) ||
	    dup2(D.devnull_fd, 0) == -1 || dup2(D.devnull_fd, 1) == -1 ||
	    dup2(chan, CHILD_FD_CHAN) == -1 || dup2(logfd, CHILD_FD_LOG) == -1 ||
	    (f->job >= 0 && dup2(f->job, CHILD_FD_JOB) == -1))
		_exit(127);
	for (i = 0; i < f->ndirs; i++)
		if (dup2(f->dirs[i], UPL_DIRFD_FIRST + i) == -1)
			_exit(127);
	close_range(f->job >= 0 ? CHILD_FD_JOB + 1 : CHILD_FD_JOB, UPL_DIRFD_FIRST - 1, 0);
	close_range(UPL_DIRFD_FIRST + (unsigned)f->ndirs, ~0U, 0);
	execve(c->bin, argv, envp);
	dprintf(2, "vaultsyncd: exec %s: %s\n", c->bin, strerror(errno));
	_exit(127);
}

/*
 * A dir: remote's directory, opened for the uploader.  Created if missing
 * (its parent must exist), owned by PrivsepUser in system mode so that the
 * unprivileged uploader can write it.
 */
static int
open_remote_dir(const struct cfg_vault *v)
{
	struct stat st;
	int fd;

	if (mkdir(v->remote_dir, 0700) == 0 && D.cfg.mode == CFG_SYSTEM &&
	    chown(v->remote_dir, D.privsep_uid, D.privsep_gid) != 0)
		log_error("vault %s: chown %s: %s", v->name, v->remote_dir, strerror(errno));
	if ((fd = open(v->remote_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		log_error("vault %s: remote directory %s: %s", v->name, v->remote_dir,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && D.cfg.mode == CFG_SYSTEM && st.st_uid != D.privsep_uid)
		log_warn("vault %s: remote directory %s is owned by uid %u, not %s: the "
		    "uploader may not be able to write it", v->name, v->remote_dir,
		    (unsigned)st.st_uid, D.cfg.privsep_user);
	return fd;
}

/* What the uploader was started with, so that a reload can tell whether it must restart. */
static uint64_t uploader_sig;

static uint64_t
fnv(uint64_t h, const char *s)
{
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (h ^ 0xff) * 1099511628211ull;	/* a separator: "ab","c" != "a","bc" */
}

static uint64_t
uploader_signature(void)
{
	char num[32];
	uint64_t h = 14695981039346656037ull;
	size_t i;

	snprintf(num, sizeof(num), "%llu", (unsigned long long)D.cfg.multipart_threshold);
	h = fnv(h, num);
	for (i = 0; i < D.cfg.nvaults; i++) {
		const struct cfg_vault *v = &D.cfg.vaults[i];

		if (v->remote_kind == CFG_REMOTE_NONE)
			continue;
		h = fnv(fnv(fnv(h, v->name), v->remote), v->remote_dir);
		h = fnv(fnv(fnv(h, v->endpoint), v->region), v->credentials_file);
		h = fnv(h, v->path_style ? "1" : "0");
	}
	return h;
}

/*
 * The uploader's configuration (DESIGN §4): prepared before the fork, since
 * the dir: remotes' directories are opened here and inherited at their fd
 * numbers, and sent on its channel after it, before anything else.
 */
_Static_assert(MAX_CREDFILES <= UPL_MAX_CREDS, "every credentials file has an uploader slot");
_Static_assert(CFG_MAX_VAULTS <= 64, "UPL_CONF_END counts at most 64 remotes");

static struct {
	struct msg_upl_cred creds[MAX_CREDFILES];
	struct msg_upl_remote remotes[CFG_MAX_VAULTS];
	struct msg_upl_conf_end end;
} upl_conf;

static void
uploader_conf_prepare(struct child_fds *f)
{
	size_t i, j, n = 0;

	memset(&upl_conf, 0, sizeof(upl_conf));
	for (i = 0; i < D.ncreds; i++) {
		struct msg_upl_cred *c = &upl_conf.creds[i];

		c->source = D.creds[i].source == CRED_SRC_SYSTEMD ? CRED_SRC_SYSTEMD : CRED_SRC_FILE;
		c->slot = (uint32_t)i;
		msg_strlcpy(c->name, D.creds[i].name, sizeof(c->name));
		msg_strlcpy(c->path, D.creds[i].path, sizeof(c->path));
	}
	for (i = 0; i < D.cfg.nvaults; i++) {
		const struct cfg_vault *v = &D.cfg.vaults[i];
		struct msg_upl_remote *r = &upl_conf.remotes[n];
		int fd;

		memset(r, 0, sizeof(*r));
		msg_strlcpy(r->vault, v->name, sizeof(r->vault));
		if (v->remote_kind == CFG_REMOTE_S3) {
			for (j = 0; j < D.ncreds; j++)
				if (strcmp(D.creds[j].path, v->credentials_file) == 0)
					break;
			if (j == D.ncreds)
				continue;
			r->kind = UPL_REMOTE_S3;
			r->cred = (uint32_t)j;
			r->path_style = v->path_style ? 1 : 0;
			msg_strlcpy(r->region, v->region, sizeof(r->region));
			msg_strlcpy(r->bucket, v->bucket, sizeof(r->bucket));
			msg_strlcpy(r->prefix, v->prefix, sizeof(r->prefix));
			msg_strlcpy(r->endpoint, v->endpoint, sizeof(r->endpoint));
		} else if (v->remote_kind == CFG_REMOTE_DIR) {
			if (f->ndirs == UPL_DIRFD_SLOTS) {
				log_error("vault %s: more than %d dir: remotes; not pushed", v->name,
				    UPL_DIRFD_SLOTS);
				continue;
			}
			if ((fd = open_remote_dir(v)) == -1)
				continue;
			f->dirs[f->ndirs] = fd;
			r->kind = UPL_REMOTE_DIR;
			r->dirfd = UPL_DIRFD_FIRST + f->ndirs;
			f->ndirs++;
		} else
			continue;
		n++;
	}
	upl_conf.end.multipart_threshold = D.cfg.multipart_threshold;
	upl_conf.end.ncreds = (uint32_t)D.ncreds;
	upl_conf.end.nremotes = (uint32_t)n;
}

/* A few KiB in all: the socket buffer holds them until the uploader reads them. */
static int
uploader_conf_send(struct child_proc *c)
{
	uint32_t i;

	for (i = 0; i < upl_conf.end.ncreds; i++)
		if (msg_send(c->chan, PEER_PARENT, MSG_UPL_CRED, ++c->seq, &upl_conf.creds[i],
		    sizeof(upl_conf.creds[i]), -1) != 0)
			return -1;
	for (i = 0; i < upl_conf.end.nremotes; i++)
		if (msg_send(c->chan, PEER_PARENT, MSG_UPL_REMOTE, ++c->seq, &upl_conf.remotes[i],
		    sizeof(upl_conf.remotes[i]), -1) != 0)
			return -1;
	return msg_send(c->chan, PEER_PARENT, MSG_UPL_CONF_END, ++c->seq, &upl_conf.end,
	    sizeof(upl_conf.end), -1);
}

/* The argv a child gets: mode, identity, chroot, debug, insecure; nothing else. */
static void
build_argv(struct child_proc *c, char **argv, size_t max, char *ids, size_t idslen,
    struct child_fds *f)
{
	size_t n = 0;

	argv[n++] = (char *)c->bin;
	argv[n++] = "-m";
	argv[n++] = D.cfg.mode == CFG_SYSTEM ? "system" : "user";
	if (D.cfg.mode == CFG_SYSTEM) {
		snprintf(ids, idslen, "%u:%u", (unsigned)D.privsep_uid, (unsigned)D.privsep_gid);
		argv[n++] = "-u";
		argv[n++] = ids;
		argv[n++] = "-c";
		argv[n++] = D.chroot_dir;
	}
	if (c->role == ROLE_UPLOADER) {
		uploader_conf_prepare(f);
		uploader_sig = uploader_signature();
		creds_snapshot();
	}
	if (D.debug)
		argv[n++] = "-d";
	if (D.insecure)
		argv[n++] = "-I";
	argv[n] = NULL;
}

void
child_start(struct child_proc *c)
{
	char *argv[16];
	struct child_fds f;
	char ids[32];
	int chan[2], logp[2], i;
	pid_t pid;

	memset(&f, 0, sizeof(f));
	f.job = -1;
	if (c->role == ROLE_WATCHER)
		f.job = D.inotify_fd;
	else if (c->role == ROLE_STATUSD)
		f.job = D.status_fd;
	build_argv(c, argv, sizeof(argv) / sizeof(argv[0]), ids, sizeof(ids), &f);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) == -1)
		fatal("socketpair");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, logp) == -1)
		fatal("socketpair");
	fflush(stdout);
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0)
		exec_child(c, chan[1], logp[1], &f, argv);
	close(chan[1]);
	close(logp[1]);
	for (i = 0; i < f.ndirs; i++)
		close(f.dirs[i]);
	c->pid = pid;
	c->chan = chan[0];
	c->logfd = logp[0];
	c->seq = 0;
	/* Sent while the channel still blocks; a failure leaves the uploader waiting in vain. */
	if (c->role == ROLE_UPLOADER && uploader_conf_send(c) != 0)
		log_error("uploader: send its configuration: %s", strerror(errno));
	c->state = CHILD_ST_STARTING;
	c->started_at = (int64_t)time(NULL);
	c->started_mono = mono_ms();
	/* Not yet waited for, so the pid cannot have been recycled. */
	if ((c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1)
		fatal("pidfd_open");
	fcntl(c->pidfd, F_SETFD, FD_CLOEXEC);
	fcntl(c->chan, F_SETFL, O_NONBLOCK);
	fcntl(c->logfd, F_SETFL, O_NONBLOCK);
	if (ev_add(c->chan, chan_readable, c) != 0 || ev_add(c->logfd, log_readable, c) != 0 ||
	    ev_add(c->pidfd, pidfd_readable, c) != 0)
		fatal("ev_add");
	log_debug("started %s as pid %d", c->bin, (int)pid);
}

void
children_start_all(void)
{
	int i;

	for (i = 0; i < NCHILDREN; i++)
		if (child_enabled(&D.children[i]))
			child_start(&D.children[i]);
}

int
children_all_running(void)
{
	int i;

	for (i = 0; i < NCHILDREN; i++)
		if (child_enabled(&D.children[i]) && D.children[i].state != CHILD_ST_RUNNING)
			return 0;
	return 1;
}

int
children_any_alive(void)
{
	int i;

	for (i = 0; i < NCHILDREN; i++)
		if (D.children[i].pidfd >= 0)
			return 1;
	return 0;
}

/*
 * Graceful: close the channels (children exit on EOF) and send SIGTERM.
 * Hard: SIGKILL.  Either way the pidfds report when they are gone.
 */
void
children_stop_all(int hard)
{
	int i;

	for (i = 0; i < NCHILDREN; i++) {
		struct child_proc *c = &D.children[i];

		if (c->restart_timer >= 0) {
			timer_cancel(c->restart_timer);
			c->restart_timer = -1;
		}
		live_stop(c);
		if (c->pidfd < 0) {
			c->state = CHILD_ST_STOPPED;
			continue;
		}
		if (c->chan >= 0) {
			ev_del(c->chan);
			close(c->chan);
			c->chan = -1;
		}
		(void)syscall(SYS_pidfd_send_signal, c->pidfd, hard ? SIGKILL : SIGTERM, NULL, 0);
	}
}

static void
restart_uploader(const char *why)
{
	struct child_proc *u = child_by_role(ROLE_UPLOADER);

	if (u->pidfd < 0 || D.shutting_down)
		return;
	child_kill(u, why);
	u->killed_for_violation = 0;
	u->backoff_ms = BACKOFF_MIN_MS;
}

/* After a reload: what a running child needs to hear, or a restart. */
void
children_config_changed(int creds_changed)
{
	struct child_proc *w = child_by_role(ROLE_WATCHER);
	struct child_proc *u = child_by_role(ROLE_UPLOADER);

	if (w->state == CHILD_ST_RUNNING) {
		struct msg_watcher_config m = { (uint32_t)D.cfg.watcher_debounce_ms, 0 };

		proc_send(w, MSG_WATCHER_CONFIG, &m, sizeof(m));
	}
	/* New credential files and remotes are opened only by a fresh uploader. */
	if ((creds_changed || uploader_signature() != uploader_sig) && u->pidfd >= 0) {
		child_kill(u, creds_changed ? "credentials configuration changed" :
		    "remote configuration changed");
		u->killed_for_violation = 0;
		u->backoff_ms = BACKOFF_MIN_MS;
	}
}
