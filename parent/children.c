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
#include "live.h"
#include "log.h"
#include "childexec.h"
#include "sigchild.h"
#include "upconf.h"
#include "vaultsyncd.h"

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	30000
#define STABLE_MS	30000	/* running this long resets the backoff */
#define HELLO_TIMEOUT_MS 10000

/* A handler returns NULL, or why the message breaks the protocol. */
typedef const char *(*handler_fn)(struct child_proc *c, struct msg *m);

struct dispatch {
	uint32_t type;
	handler_fn fn;
};

static const struct children_ops *ops;

static const char *on_watch_change(struct child_proc *c, struct msg *m) { (void)c; ops->watch_change(&m->u.wchange); return NULL; }
static const char *on_watch_newdir(struct child_proc *c, struct msg *m) { (void)c; ops->watch_newdir(&m->u.wnewdir); return NULL; }
static const char *on_watch_overflow(struct child_proc *c, struct msg *m) { (void)c; (void)m; ops->watch_overflow(); return NULL; }
static const char *on_upl_result(struct child_proc *c, struct msg *m) { (void)c; return upl_on_result(&m->u.ures); }
static const char *on_upl_entry(struct child_proc *c, struct msg *m) { (void)c; return upl_on_entry(&m->u.uentry); }
static const char *on_upl_mpu(struct child_proc *c, struct msg *m) { (void)c; return upl_on_mpu(&m->u.umpu); }
static const char *on_upl_progress(struct child_proc *c, struct msg *m) { (void)c; return upl_on_progress(&m->u.uprog); }

static void restart_uploader(const char *why);

int
children_creds_changed(void)
{
	const char *path = upconf_creds_changed();

	if (path == NULL)
		return 0;
	log_info("credentials %s changed; restarting the uploader to read them", path);
	restart_uploader("credentials file changed");
	return 1;
}

static const char *on_cred_info(struct child_proc *c, struct msg *m) { (void)c; return upconf_cred_info(&m->u.cred); }

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
	{ MSG_UPL_PROGRESS, on_upl_progress },
	{ 0, NULL },
};
static const char *on_pong(struct child_proc *c, struct msg *m) { return live_on_pong(c, &m->u.ping); }

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

static void child_kill(struct child_proc *c, const char *reason);
static void live_drain(struct child_proc *c);
static const struct live_ops live_ops = { live_drain, child_kill };

void
children_init(const struct children_ops *o)
{
	static char paths[NCHILDREN][CFG_PATH_MAX + 64];
	int i;

	ops = o;
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
	}
	live_init(&live_ops);
	upconf_init(restart_uploader);
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
	if (sigchild(c->pidfd, c->pid, SIGKILL) == -1 && errno != ESRCH)
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
	ops->up(c);
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
live_drain(struct child_proc *c)
{
	if (c->chan >= 0)
		chan_readable(c->chan, EPOLLIN, c);
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
child_gone(struct child_proc *c, int status)
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
	if (!c->killed_for_violation && !live_hung(c)) {
		if (status >= 0)
			snprintf(c->last_reason, sizeof(c->last_reason), "exited with status %d", status);
		else
			snprintf(c->last_reason, sizeof(c->last_reason), "killed by signal %d (%s)",
			    -status, strsignal(-status));
	}
	c->killed_for_violation = 0;
	live_clear(c);
	if (!D.ready && !was_running) {
		ops->failed_at_startup(c, status);
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

static void
child_reaped(struct child_proc *c, int status)
{
	child_gone(c, status);
	ops->down(c);
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
	if (c->role == ROLE_UPLOADER)
		upconf_prepare(f.dirs, &f.ndirs);
	spawn_argv(c, argv, ids, sizeof(ids));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) == -1)
		fatal("socketpair");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, logp) == -1)
		fatal("socketpair");
	fflush(stdout);
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0)
		spawn_exec(c, chan[1], logp[1], &f, argv);
	close(chan[1]);
	close(logp[1]);
	for (i = 0; i < f.ndirs; i++)
		close(f.dirs[i]);
	c->pid = pid;
	c->chan = chan[0];
	c->logfd = logp[0];
	c->seq = 0;
	/* Sent while the channel still blocks; a failure leaves the uploader waiting in vain. */
	if (c->role == ROLE_UPLOADER && upconf_send(c->chan, &c->seq) != 0)
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
		(void)sigchild(c->pidfd, c->pid, hard ? SIGKILL : SIGTERM);
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
	if ((creds_changed || upconf_stale()) && u->pidfd >= 0) {
		child_kill(u, creds_changed ? "credentials configuration changed" :
		    "remote configuration changed");
		u->killed_for_violation = 0;
		u->backoff_ms = BACKOFF_MIN_MS;
	}
}
