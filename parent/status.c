/*
 * Status snapshots: the same fixed messages serve vaultsyncctl (over the
 * control socket) and statusd (over its channel).  Health is about whether
 * sync works, not only whether processes exist.
 *
 * statusd never asks.  After every batch of events the parent builds the
 * snapshot without its ever-moving parts (clock, uptime, /proc figures) and
 * compares it with the last one statusd got: a difference goes out at once,
 * or, within STATUSD_GAP_MS of the last, when that gap has passed.  Tick
 * records go after the snapshot that shows their outcome, so a client that
 * hears of a tick and then asks for status sees its result; they skip the
 * gap.  Every STATUSD_REFRESH_MS a snapshot goes anyway, for the clock and
 * the process figures.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "procstat.h"
#include "vaultsyncd.h"

#define STATUSD_GAP_MS		200	/* coalescing: at most five a second */
#define STATUSD_REFRESH_MS	5000

static int
vault_healthy(const struct vault_rt *v)
{
	return v->state != VAULT_ST_ERROR && v->state != VAULT_ST_CONFLICT &&
	    v->consecutive_failures == 0 && remote_healthy(v) &&
	    verify_healthy(v);
}

int
status_healthy(void)
{
	const struct vault_rt *v;
	size_t i;

	for (i = 0; i < NCHILDREN; i++) {
		const struct child_proc *c = &D.children[i];

		if ((c->role != ROLE_STATUSD || D.cfg.status_api) && c->state != CHILD_ST_RUNNING)
			return 0;
	}
	for (i = 0; i < D.ncreds; i++)
		if (D.creds[i].state != CRED_ST_OK)
			return 0;
	VAULT_FOREACH(v)
		if (!vault_healthy(v))
			return 0;
	return 1;
}

/*
 * Where a snapshot's records go: a peer's socket, or (for the comparison)
 * an image in memory without the moving parts.
 */
struct sink {
	int fd;			/* >= 0: send there */
	uint32_t seq;
	unsigned char *img;	/* fd < 0: append here */
	size_t len, cap;
};

static int
send(struct sink *k, uint32_t type, const void *p, size_t len)
{
	if (k->fd >= 0)
		return msg_send(k->fd, PEER_PARENT, type, k->seq, p, len, -1);
	if (k->len + sizeof(type) + len > k->cap) {
		size_t cap = (k->len + sizeof(type) + len) * 2;
		unsigned char *n = realloc(k->img, cap);

		if (n == NULL)
			fatal("realloc");
		k->img = n;
		k->cap = cap;
	}
	memcpy(k->img + k->len, &type, sizeof(type));
	memcpy(k->img + k->len + sizeof(type), p, len);
	k->len += sizeof(type) + len;
	return 0;
}

static int
build(struct sink *k)
{
	struct msg_snap_daemon d;
	struct msg_snap_end e;
	size_t i;

	memset(&d, 0, sizeof(d));
	d.proto = VS_PROTO_VERSION;
	d.mode = D.cfg.mode == CFG_SYSTEM ? MODE_SYSTEM : MODE_USER;
	d.pid = (int32_t)getpid();
	d.nvaults = (uint32_t)vreg_count();
	d.nchildren = NCHILDREN;
	d.ncreds = (uint32_t)D.ncreds;
	d.started_at = D.started_at;
	if (k->fd >= 0) {	/* the image leaves out what moves on its own */
		d.now = (int64_t)time(NULL);
		d.uptime_ms = mono_ms() - D.started_mono;
		procstat_read(getpid(), &d.proc);
	}
	msg_strlcpy(d.version, VS_VERSION, sizeof(d.version));
	msg_strlcpy(d.device_id, D.cfg.device_id, sizeof(d.device_id));
	msg_strlcpy(d.status_url, D.status_url, sizeof(d.status_url));
	msg_strlcpy(d.config_file, D.cfg.file, sizeof(d.config_file));
	if (send(k, MSG_SNAP_DAEMON, &d, sizeof(d)) != 0)
		return -1;
	for (i = 0; i < NCHILDREN; i++) {
		const struct child_proc *c = &D.children[i];
		struct msg_snap_child sc;

		memset(&sc, 0, sizeof(sc));
		sc.role = c->role;
		sc.state = c->state;
		sc.pid = (int32_t)c->pid;
		sc.restarts = c->restarts;
		sc.violations = c->violations;
		sc.last_exit = c->last_exit;
		sc.started_at = c->started_at;
		msg_strlcpy(sc.last_reason, c->last_reason, sizeof(sc.last_reason));
		if (k->fd >= 0)
			procstat_read(c->pid, &sc.proc);
		if (send(k, MSG_SNAP_CHILD, &sc, sizeof(sc)) != 0)
			return -1;
	}
	for (i = 0; i < D.ncreds; i++)
		if (send(k, MSG_CRED_INFO, &D.creds[i], sizeof(D.creds[i])) != 0)
			return -1;
	/* In the configuration's order, which status lists them in. */
	for (i = 0; i < D.cfg.nvaults; i++) {
		const struct cfg_vault *cv = &D.cfg.vaults[i];
		const struct vault_rt *v = vreg_find(cv->name);
		struct msg_snap_vault sv;

		if (v == NULL)
			continue;

		memset(&sv, 0, sizeof(sv));
		sv.history_count = -1;
		sv.state = v->state;
		sv.watch_mode = v->watch_mode;
		sv.consecutive_failures = v->consecutive_failures;
		sv.nwatches = v->nwatches;
		msg_strlcpy(sv.name, v->name, sizeof(sv.name));
		msg_strlcpy(sv.path, cv->path, sizeof(sv.path));
		msg_strlcpy(sv.remote, cv->remote, sizeof(sv.remote));
		msg_strlcpy(sv.last_error, v->last_error, sizeof(sv.last_error));
		msg_strlcpy(sv.watch_reason, v->watch_reason, sizeof(sv.watch_reason));
		sv.last_save_at = v->st.saved_at;
		sv.archive_bytes = v->st.archive_bytes;
		if (v->st.content_id[0] != '\0')
			snprintf(sv.content_id, sizeof(sv.content_id), "%.16s", v->st.content_id);
		if (v->consecutive_failures > 0 && sv.state == VAULT_ST_UNLOCKED)
			sv.state = VAULT_ST_ERROR;
		else if (sv.state == VAULT_ST_UNLOCKED &&
		    (cv->remote_kind != CFG_REMOTE_NONE ? remote_lags(v) : v->st.dirty))
			sv.state = VAULT_ST_DIRTY;
		remote_status(v, &sv);
		verify_status(v, &sv);
		sv.healthy = (uint32_t)vault_healthy(v);
		if (send(k, MSG_SNAP_VAULT, &sv, sizeof(sv)) != 0)
			return -1;
	}
	memset(&e, 0, sizeof(e));
	e.healthy = (uint32_t)status_healthy();
	return send(k, MSG_SNAP_END, &e, sizeof(e));
}

int
status_send_snapshot(int fd, uint32_t seq)
{
	struct sink k = { .fd = fd, .seq = seq };

	return build(&k);
}

/*
 * The image statusd last got whole and the one just built (their buffers
 * are kept and swapped, so a batch of events allocates nothing), the time
 * the last snapshot went, and a send that waits out the gap.
 */
static struct sink last_img = { .fd = -1 }, cur_img = { .fd = -1 };
static uint64_t last_sent_ms;
static int gap_timer = -1;

struct child_proc *
statusd_up(void)
{
	struct child_proc *s = child_by_role(ROLE_STATUSD);

	return D.cfg.status_api && s->state == CHILD_ST_RUNNING && s->chan >= 0 ? s : NULL;
}

/*
 * The snapshot to statusd; cur_img holds its image.  The channel does not
 * block: a snapshot cut short by a full buffer has no SNAP_END, statusd
 * keeps the one before, and the next settle, finding the image unlike the
 * last one sent whole, sends it again.
 */
static void
send_current(struct child_proc *s)
{
	struct sink t;

	last_sent_ms = mono_ms();
	if (status_send_snapshot(s->chan, ++s->seq) != 0) {
		if (errno != EAGAIN)
			log_debug("statusd: snapshot not sent: %s", strerror(errno));
		last_img.len = 0;	/* differs from any image */
		return;
	}
	t = last_img;
	last_img = cur_img;
	cur_img = t;
}

/* A snapshot to statusd now, if it runs (a child came or went; the refresh). */
void
status_push(void)
{
	struct child_proc *s = statusd_up();

	if (s == NULL)
		return;
	cur_img.len = 0;
	(void)build(&cur_img);
	send_current(s);
}

static void
gap_fired(void *arg)
{
	(void)arg;
	gap_timer = -1;
	status_settle();
}

/*
 * The line systemctl status shows (STATUS=), sent when it changes: how many
 * vaults and in what state, and the first thing that is unhealthy.
 */
static void
notify_summary(void)
{
	static char last[400];
	char line[400], bad[256] = "";
	const struct vault_rt *v;
	unsigned unlocked = 0, locked = 0;

	VAULT_FOREACH(v) {
		if (v->state == VAULT_ST_LOCKED)
			locked++;
		else
			unlocked++;
		if (bad[0] == '\0' && !vault_healthy(v))
			snprintf(bad, sizeof(bad), "; vault %s: %s%s%.80s", v->name,
			    v->state == VAULT_ST_CONFLICT ? "conflict" : "unhealthy",
			    v->last_error[0] ? ": " : "", v->last_error);
	}
	snprintf(line, sizeof(line), "%zu vault(s): %u unlocked, %u locked; %s%s", vreg_count(),
	    unlocked, locked, status_healthy() ? "healthy" : "UNHEALTHY", bad);
	if (strcmp(line, last) == 0)
		return;
	msg_strlcpy(last, line, sizeof(last));
	sd_notifyf("STATUS=%s", line);
}

/*
 * After every batch of events: statusd gets the snapshot if it changed
 * (within the gap only when tick records wait for it), then the tick
 * records; systemd gets its line if that changed.
 */
void
status_settle(void)
{
	struct child_proc *s;
	uint64_t now = mono_ms();

	if (D.shutting_down)
		return;
	notify_summary();
	if ((s = statusd_up()) == NULL)
		return;
	cur_img.len = 0;
	(void)build(&cur_img);
	if (cur_img.len != last_img.len || memcmp(cur_img.img, last_img.img, cur_img.len) != 0) {
		if (now - last_sent_ms >= STATUSD_GAP_MS || ticklog_pending())
			send_current(s);
		else if (gap_timer < 0)
			gap_timer = timer_add(STATUSD_GAP_MS - (now - last_sent_ms), gap_fired,
			    NULL);
	}
	ticklog_flush();
}

static void
refresh_fired(void *arg)
{
	(void)arg;
	if (D.shutting_down)
		return;
	status_push();
	ticklog_flush();
	(void)timer_add(STATUSD_REFRESH_MS, refresh_fired, NULL);
}

void
status_push_start(void)
{
	(void)timer_add(STATUSD_REFRESH_MS, refresh_fired, NULL);
}
