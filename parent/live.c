/*
 * Liveness: statusd's clients are not the parent, so a statusd that stopped
 * serving would go unnoticed by the supervision in children.c.  It must
 * answer a PING through the same loop that serves HTTP; one that does not
 * is killed (through the callback children.c passed) and restarted with the
 * usual backoff.
 */
#include <stdio.h>
#include <string.h>

#include "live.h"
#include "log.h"
#include "vaultsyncd.h"

/* A PING this often, and a restart when one stays unanswered this long. */
#define LIVE_INTERVAL_MS 5000
#define LIVE_TIMEOUT_MS	10000

struct live {
	int timer;
	uint32_t nonce;		/* of the PING in flight; 0: none */
	uint64_t sent;		/* mono_ms of that PING */
	int hung;		/* killed by the check: keep that as the reason */
};
static struct live live[NCHILDREN];
static struct live_ops ops;

void
live_init(const struct live_ops *o)
{
	size_t i;

	ops = *o;
	for (i = 0; i < NCHILDREN; i++)
		live[i].timer = -1;
}

const char *
live_on_pong(struct child_proc *c, const struct msg_ping *p)
{
	struct live *l = &live[c->role - 1];

	if (l->nonce == 0 || p->nonce != l->nonce)
		return "PONG that answers no PING";
	l->nonce = 0;
	return NULL;
}

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
		ops.drain(c);
		if (c->chan < 0)
			return;
	}
	if (l->nonce != 0 && (waited = mono_ms() - l->sent) >= LIVE_TIMEOUT_MS) {
		log_warn("%s did not answer a liveness check for %llu s; restarting",
		    msg_role_name(c->role), (unsigned long long)(waited / 1000));
		l->hung = 1;
		ops.kill(c, "did not answer a liveness check");
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

void
live_start(struct child_proc *c)
{
	struct live *l = &live[c->role - 1];

	l->nonce = 0;
	l->hung = 0;
	l->timer = timer_add(LIVE_INTERVAL_MS, live_fired, c);
}

void
live_stop(struct child_proc *c)
{
	struct live *l = &live[c->role - 1];

	if (l->timer >= 0)
		timer_cancel(l->timer);
	l->timer = -1;
	l->nonce = 0;
}

int
live_hung(const struct child_proc *c)
{
	return live[c->role - 1].hung;
}

void
live_clear(struct child_proc *c)
{
	live[c->role - 1].hung = 0;
}
