/*
 * The control socket: SOCK_SEQPACKET, same codec as the children.  Peers are
 * authenticated with SO_PEERCRED / SO_PEERGROUPS at accept time (root, the
 * daemon's own uid, or a member of ControlGroup); the file mode is only the
 * first fence.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlperm.h"
#include "log.h"
#include "secbuf.h"
#include "vaultsyncd.h"

#define MAX_CLIENTS	32
/*
 * Slots are shared so that no one peer can hold them all: a uid other than
 * root and the daemon's own gets at most half.  Root and the daemon's user
 * always get in, taking the longest-idle slot of whoever holds the most.
 */
#define UID_SHARE	(MAX_CLIENTS / 2)
#define TEMPFAIL	75
/*
 * A silent peer must not keep a slot.  vaultsyncctl answers our HELLO at
 * once, and sends the passphrase right behind its request (it asks for it
 * before connecting), so the first two deadlines are generous for it; the
 * idle one is for scripts that keep a connection between requests.  A
 * request in flight has no deadline: it lasts as long as its work does (a
 * sync behind a slow push), and vaultsyncctl keeps its own timeout.
 */
#define HELLO_MS	5000
#define SECRET_MS	30000
#define IDLE_MS		30000
#define SWEEP_MS	1000	/* deadlines are checked this often, only while a client is connected */
/*
 * A connection accepted a moment ago is between our HELLO and its request:
 * idle, but not silent.  Taking its slot then would cut off an honest client
 * mid-exchange, so only connections idle this long may be taken.
 */
#define TAKE_AFTER_MS	2000

struct client {
	int fd;
	int hello;
	uid_t uid;
	pid_t pid;
	uint32_t gen;		/* tells a reused slot from the one a job answers */
	uint32_t want_secret;	/* CTL_INIT/UNLOCK/PULL waiting for its passphrase */
	uint32_t inflight;	/* requests dispatched and not yet answered */
	uint64_t since;		/* last request or answer: the deadlines count from here */
	char vault[CFG_NAME_MAX];
	char arg[256];		/* PULL: the version */
};

static struct client clients[MAX_CLIENTS];
static const struct ctl_ops *ops;
static uint32_t next_gen = 1;
static int sweep_timer = -1;

/*
 * Every slot holds a request in flight: new peers wait in the listen backlog
 * (vaultsyncctl's connect blocks) rather than hear "try again".  Accepting
 * resumes as soon as a slot frees or a client goes idle.
 */
static int accept_paused;
static void ctl_acceptable(int, uint32_t, void *);

static void
accept_resume(void)
{
	if (accept_paused && D.ctl_fd >= 0 && ev_add(D.ctl_fd, ctl_acceptable, NULL) == 0)
		accept_paused = 0;
}

static void
client_close(struct client *cl)
{
	ev_del(cl->fd);
	close(cl->fd);
	cl->fd = -1;
	accept_resume();
}

static void
client_dispatched(struct client *cl)
{
	cl->inflight++;
	cl->since = mono_ms();
}

/* The final result of a request went out: the client is idle again. */
static void
client_answered(struct client *cl)
{
	if (cl->inflight > 0)
		cl->inflight--;
	cl->since = mono_ms();
	if (cl->inflight == 0)
		accept_resume();
}

static int send_result(int fd, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
send_result(int fd, int code, const char *fmt, ...)
{
	struct msg_ctl_result r;
	va_list ap;
	int i;

	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd == fd)
			client_answered(&clients[i]);
	memset(&r, 0, sizeof(r));
	r.code = code;
	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	return msg_send(fd, PEER_PARENT, MSG_CTL_RESULT, 0, &r, sizeof(r), -1);
}

const char *
ctl_cmd_name(uint32_t cmd)
{
	static const char *const names[] = {
		[CTL_STATUS] = "status", [CTL_VERSION] = "version", [CTL_RELOAD] = "reload",
		[CTL_STOP] = "stop", [CTL_INIT] = "init", [CTL_UNLOCK] = "unlock", [CTL_LOCK] = "lock",
		[CTL_SYNC] = "sync", [CTL_PUSH] = "push", [CTL_PULL] = "pull",
		[CTL_HISTORY] = "history", [CTL_VERIFY] = "verify",
	};

	return cmd < sizeof(names) / sizeof(names[0]) && names[cmd] != NULL ? names[cmd] : "?";
}

static void
handle_request(struct client *cl, const struct msg *m)
{
	const struct msg_ctl_request *rq = &m->u.creq;
	char err[600];

	/* Before anything else, the passphrase included: a refused peer is not asked for it. */
	if (ctlperm_check(cl->uid, rq->cmd, rq->vault, err, sizeof(err)) != 0) {
		log_warn("ctl: refused %s %s to uid %u (pid %d): not permitted",
		    ctl_cmd_name(rq->cmd), rq->vault, (unsigned)cl->uid, (int)cl->pid);
		send_result(cl->fd, EXIT_NOPERM, "%s", err);
		return;
	}
	switch (rq->cmd) {
	case CTL_STATUS:
		if (rq->vault[0] != '\0' && vreg_find(rq->vault) == NULL) {
			send_result(cl->fd, 1, "no such vault: %s", rq->vault);
			break;
		}
		if (ops->status(cl->fd, m->hdr.seq) != 0)
			log_debug("ctl: status to pid %d: %s", (int)cl->pid, strerror(errno));
		break;
	case CTL_VERSION:
		send_result(cl->fd, 0, "vaultsyncd %s protocol %u", VS_VERSION, VS_PROTO_VERSION);
		break;
	case CTL_RELOAD:
		log_info("reload requested by uid %u (pid %d)", (unsigned)cl->uid, (int)cl->pid);
		if (ops->reload(err, sizeof(err)) != 0)
			send_result(cl->fd, EXIT_USAGE, "reload failed, old configuration kept: %s", err);
		else
			send_result(cl->fd, 0, "configuration reloaded");
		break;
	case CTL_INIT:
	case CTL_UNLOCK:
	case CTL_PULL:
		cl->want_secret = rq->cmd;
		msg_strlcpy(cl->vault, rq->vault, sizeof(cl->vault));
		msg_strlcpy(cl->arg, rq->arg, sizeof(cl->arg));
		break;
	case CTL_LOCK:
	case CTL_SYNC:
	case CTL_PUSH:
	case CTL_HISTORY:
	case CTL_VERIFY: {
		struct vault_rt *v = vreg_find(rq->vault);

		if (v == NULL) {
			send_result(cl->fd, 1, "no such vault: %s", rq->vault);
			break;
		}
		log_info("%s %s%s requested by uid %u (pid %d)", ctl_cmd_name(rq->cmd), rq->vault,
		    rq->flags & CTL_F_FORCE ? " --force" : "", (unsigned)cl->uid, (int)cl->pid);
		/* Behind any tick or operation in progress: the reply is about the state after it. */
		if (ops->submit(v, (int)(cl - clients), cl->gen, rq->cmd, rq->flags, rq->arg, NULL,
		    err, sizeof(err)) != 0)
			send_result(cl->fd, 1, "%s", err);
		break;
	}
	case CTL_STOP:
		log_info("stop requested by uid %u (pid %d)", (unsigned)cl->uid, (int)cl->pid);
		send_result(cl->fd, 0, "stopping");
		ops->stop(0);
		break;
	default:
		send_result(cl->fd, EXIT_USAGE, "unsupported command");
		break;
	}
}

static void
handle_secret(struct client *cl, struct msg *m)
{
	struct secbuf pass;
	struct vault_rt *v;
	char err[600];
	uint32_t cmd = cl->want_secret;

	cl->want_secret = 0;
	if (secbuf_alloc(&pass, m->u.csecret.len + 1) != 0) {
		send_result(cl->fd, 1, "cannot allocate a locked buffer: %s", strerror(errno));
		return;
	}
	memcpy(pass.p, m->u.csecret.secret, m->u.csecret.len);
	pass.len = m->u.csecret.len;
	explicit_bzero(&m->u.csecret, sizeof(m->u.csecret));
	log_info("%s %s%s%s requested by uid %u (pid %d)", ctl_cmd_name(cmd), cl->vault,
	    cl->arg[0] ? " --version " : "", cl->arg, (unsigned)cl->uid, (int)cl->pid);
	if ((v = vreg_find(cl->vault)) == NULL)
		send_result(cl->fd, 1, "no such vault: %s", cl->vault);
	else if (ops->submit(v, (int)(cl - clients), cl->gen, cmd, 0, cl->arg, &pass, err,
	    sizeof(err)) != 0)
		send_result(cl->fd, 1, "%s", err);
	secbuf_free(&pass);	/* a no-op when the job took it */
}

void
ctl_reply(int client, uint32_t gen, int code, const char *fmt, ...)
{
	struct msg_ctl_result r;
	va_list ap;

	ops->replied(client, gen);	/* even to a client that left: the vault is free again */
	if (client < 0 || client >= MAX_CLIENTS || clients[client].fd == -1 ||
	    clients[client].gen != gen)
		return;		/* the asker has gone away */
	client_answered(&clients[client]);
	memset(&r, 0, sizeof(r));
	r.code = code;
	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	(void)msg_send(clients[client].fd, PEER_PARENT, MSG_CTL_RESULT, 0, &r, sizeof(r), -1);
}

int
ctl_client_alive(int client, uint32_t gen)
{
	return client >= 0 && client < MAX_CLIENTS && clients[client].fd != -1 &&
	    clients[client].gen == gen;
}

void
ctl_line(int client, uint32_t gen, const char *fmt, ...)
{
	struct msg_ctl_line l;
	va_list ap;

	if (client < 0 || client >= MAX_CLIENTS || clients[client].fd == -1 ||
	    clients[client].gen != gen)
		return;
	memset(&l, 0, sizeof(l));
	va_start(ap, fmt);
	vsnprintf(l.line, sizeof(l.line), fmt, ap);
	va_end(ap);
	(void)msg_send(clients[client].fd, PEER_PARENT, MSG_CTL_LINE, 0, &l, sizeof(l), -1);
}

static void
client_readable(int fd, uint32_t events, void *arg)
{
	struct client *cl = arg;
	struct msg m;
	const char *why;
	uint32_t inflight;
	int rv;

	(void)fd;
	(void)events;
	rv = msg_recv(cl->fd, PEER_CTL, &m, &why);
	if (rv == MSG_ERR && errno == EAGAIN)
		return;
	if (rv != MSG_OK) {
		if (rv == MSG_VIOLATION) {
			log_warn("ctl client pid %d: %s", (int)cl->pid, why);
			send_result(cl->fd, EXIT_USAGE, "protocol error: %s", why);
		}
		client_close(cl);
		return;
	}
	if (!cl->hello) {
		if (m.hdr.type != MSG_HELLO) {
			send_result(cl->fd, EXIT_USAGE, "protocol error: HELLO expected");
			client_close(cl);
			return;
		}
		cl->hello = 1;
		cl->since = mono_ms();
		return;
	}
	if (m.hdr.type == MSG_CTL_SECRET && cl->want_secret) {
		client_dispatched(cl);
		handle_secret(cl, &m);
		explicit_bzero(&m, sizeof(m));
		return;
	}
	if (m.hdr.type != MSG_CTL_REQUEST || cl->want_secret) {
		explicit_bzero(&m, sizeof(m));
		send_result(cl->fd, EXIT_USAGE, "protocol error: unexpected %s",
		    msg_type_name(m.hdr.type));
		client_close(cl);
		return;
	}
	inflight = cl->inflight;
	client_dispatched(cl);
	handle_request(cl, &m);
	/*
	 * Nothing left to answer if a status snapshot went out (it ends with
	 * SNAP_END, not a result) or the request now waits for the client's
	 * passphrase; an error result has already settled it.
	 */
	if ((m.u.creq.cmd == CTL_STATUS || cl->want_secret) && cl->inflight > inflight)
		cl->inflight = inflight;
}

static int
privileged(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

static int
uid_slots(uid_t uid)
{
	int i, n = 0;

	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd != -1 && clients[i].uid == uid)
			n++;
	return n;
}

/* When the client's time is up, and why; 0 while a request of it is in flight. */
static uint64_t
client_deadline(const struct client *cl, const char **why)
{
	if (cl->inflight > 0)
		return 0;
	if (!cl->hello) {
		*why = "no HELLO in time";
		return cl->since + HELLO_MS;
	}
	if (cl->want_secret) {
		*why = "no passphrase in time";
		return cl->since + SECRET_MS;
	}
	*why = "idle too long";
	return cl->since + IDLE_MS;
}

static void
client_evict(struct client *cl, const char *why)
{
	log_debug("ctl: closing the connection of uid %u (pid %d): %s", (unsigned)cl->uid,
	    (int)cl->pid, why);
	(void)send_result(cl->fd, TEMPFAIL, "control connection closed: %s", why);
	client_close(cl);
}

static int
takeable(const struct client *cl)
{
	return mono_ms() - cl->since >= TAKE_AFTER_MS;
}

/*
 * The slot to take for a newcomer: the longest idle of uid or, with any_uid,
 * of the uid holding the most.  A request in flight is never cut off.
 */
static struct client *
idle_victim(uid_t uid, int any_uid, int fresh_too)
{
	struct client *cl, *best = NULL;
	int i, n, best_n = 0;

	for (i = 0; i < MAX_CLIENTS; i++) {
		cl = &clients[i];
		if (cl->fd == -1 || cl->inflight > 0 || (!any_uid && cl->uid != uid) ||
		    (!fresh_too && !takeable(cl)))
			continue;
		n = any_uid ? uid_slots(cl->uid) : 0;
		if (best == NULL || n > best_n || (n == best_n && cl->since < best->since)) {
			best = cl;
			best_n = n;
		}
	}
	return best;
}

/* Whether anyone at all could get a slot now: a free one, or an idle one to take. */
static int
slot_obtainable(void)
{
	int i;

	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd == -1 || (clients[i].inflight == 0 && takeable(&clients[i])))
			return 1;
	return 0;
}

/* A free slot for a new connection from uid, or -1. */
static int
client_slot(uid_t uid)
{
	struct client *victim;
	int i;

	/* At its share, a peer's new connection replaces its own longest idle one. */
	if (!privileged(uid) && uid_slots(uid) >= UID_SHARE) {
		/* Its own slots: a user who runs more at once than its share cuts itself off. */
		if ((victim = idle_victim(uid, 0, 0)) == NULL &&
		    (victim = idle_victim(uid, 0, 1)) == NULL)
			return -1;
		client_evict(victim, "replaced by a newer connection of the same user");
	}
	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd == -1)
			return i;
	if ((victim = idle_victim(uid, 1, 0)) == NULL)
		return -1;
	/* Others take from a uid only what it holds beyond their own number of slots. */
	if (!privileged(uid) && victim->uid != uid &&
	    uid_slots(victim->uid) <= uid_slots(uid) + 1)
		return -1;
	client_evict(victim, "too many control connections");
	return (int)(victim - clients);
}

static void ctl_sweep(void *);

/* Deadlines are checked only while someone is connected: an idle daemon sleeps. */
static void
sweep_arm(void)
{
	int i;

	if (sweep_timer != -1)
		return;
	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd != -1) {
			sweep_timer = timer_add(SWEEP_MS, ctl_sweep, NULL);
			return;
		}
}

static void
ctl_sweep(void *arg)
{
	const char *why;
	uint64_t now = mono_ms(), due;
	int i;

	(void)arg;
	sweep_timer = -1;
	for (i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i].fd == -1)
			continue;
		due = client_deadline(&clients[i], &why);
		if (due != 0 && due <= now)
			client_evict(&clients[i], why);
	}
	accept_resume();	/* a connection may have become old enough to take */
	sweep_arm();
}

static void
ctl_acceptable(int fd, uint32_t events, void *arg)
{
	struct msg_hello h;
	struct ucred uc;
	int cfd, i;

	(void)events;
	(void)arg;
	if (!slot_obtainable()) {
		ev_del(fd);
		accept_paused = 1;
		log_debug("ctl: every slot has a request in flight; new peers wait");
		return;
	}
	if ((cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) == -1)
		return;
	if (!ctlperm_peer_allowed(cfd, &uc)) {
		log_warn("ctl: refused uid %u (pid %d): not root, the daemon's user or in "
		    "group %s", (unsigned)uc.uid, (int)uc.pid, D.cfg.control_group);
		send_result(cfd, EXIT_NOPERM, "permission denied: uid %u may not use this socket",
		    (unsigned)uc.uid);
		close(cfd);
		return;
	}
	if ((i = client_slot(uc.uid)) == -1 ||
	    ev_add(cfd, client_readable, &clients[i]) != 0) {
		send_result(cfd, TEMPFAIL, "too many control connections; try again");
		close(cfd);
		return;
	}
	memset(&clients[i], 0, sizeof(clients[i]));
	clients[i].fd = cfd;
	clients[i].uid = uc.uid;
	clients[i].pid = uc.pid;
	clients[i].gen = next_gen++;
	clients[i].since = mono_ms();
	sweep_arm();
	msg_hello_init(&h, ROLE_PARENT);
	if (msg_send(cfd, PEER_PARENT, MSG_HELLO, 0, &h, sizeof(h), -1) != 0)
		client_close(&clients[i]);
}

int
ctl_listen(const struct ctl_ops *o)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd, i;

	ops = o;
	for (i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(D.cfg.control_socket) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, D.cfg.control_socket, strlen(D.cfg.control_socket));
	/* We hold the instance lock, so a socket left here is stale. */
	if (lstat(D.cfg.control_socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errno = EEXIST;
			return -1;
		}
		unlink(D.cfg.control_socket);
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		return -1;
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	if (D.cfg.mode == CFG_SYSTEM && D.have_control_gid) {
		if (chown(D.cfg.control_socket, 0, D.control_gid) == -1 ||
		    chmod(D.cfg.control_socket, 0660) == -1) {
			close(fd);
			return -1;
		}
	}
	if (listen(fd, 16) == -1 || ev_add(fd, ctl_acceptable, NULL) != 0) {
		close(fd);
		return -1;
	}
	D.ctl_fd = fd;
	return 0;
}

void
ctl_close(void)
{
	int i;

	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd != -1)
			client_close(&clients[i]);
	if (sweep_timer != -1) {
		timer_cancel(sweep_timer);
		sweep_timer = -1;
	}
	if (D.ctl_fd >= 0) {
		ev_del(D.ctl_fd);
		close(D.ctl_fd);
		D.ctl_fd = -1;
		unlink(D.cfg.control_socket);
	}
}
