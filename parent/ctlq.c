/*
 * Control commands on a vault wait their turn (DESIGN §2: "every request
 * waits its turn behind a running tick or operation, and its reply describes
 * the state after the request").
 *
 * Each vault has one FIFO of control requests (init, unlock, lock, sync, push,
 * pull, history, verify).  The head runs only when the
 * vault is free (no worker job, no tick, no push sequence), and it holds the
 * vault until its final reply has been sent: a pull's download, an unlock's
 * extraction, a sync's own tick all belong to the request that started them.
 * While a request that changes the vault wholesale (init, unlock, lock, pull)
 * holds it, change-driven ticks stay pending; they run after it.
 *
 * Nothing here is called by the layers below: the event loop calls
 * ctlq_settle_all() after every batch of events, and ctl.c reports each final
 * reply through ctlq_replied().  That is why a tick that began before a
 * `sync` can no longer answer it: the sync's tick is started by the queue,
 * when the vault is free, after the request arrived.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vaultsyncd.h"

/* More than any connection limit lets one vault see: a bound, not a policy. */
#define CTLQ_MAX_PER_VAULT	64

struct ctlq_req {
	struct ctlq_req *next;
	int client;
	uint32_t gen;
	uint32_t cmd;
	uint32_t flags;
	int running;		/* the head, started, waiting for its final reply */
	int saved_first;	/* PUSH: the tick for changes before it was started */
	char arg[256];
	struct secbuf pass;	/* init, unlock, pull: wiped when the request ends */
};

/* Each vault's queue, and whether its running head holds the vault. */
struct ctlq_state {
	uint32_t gen;			/* vreg_state's */
	struct ctlq_req *head;
	int hold;			/* the running one keeps change-driven ticks waiting */
};
static struct ctlq_state cqs[CFG_MAX_VAULTS];
#define CQ(v)	VREG_STATE(cqs, v)

static void
req_free(struct ctlq_req *r)
{
	secbuf_free(&r->pass);
	free(r);
}

/* Whether the vault's own machinery is at rest: no job, no tick, no push. */
static int
vault_free(const struct vault_rt *v)
{
	return !v->busy && !tick_busy(v) && !remote_busy(v);
}

int
ctlq_submit(struct vault_rt *v, int client, uint32_t gen, uint32_t cmd, uint32_t flags,
    const char *arg, struct secbuf *pass, char *err, size_t errlen)
{
	struct ctlq_req *r, **tail;
	int n = 0;

	if (D.shutting_down) {
		snprintf(err, errlen, "the daemon is shutting down");
		return -1;
	}
	for (tail = &CQ(v)->head; *tail != NULL; tail = &(*tail)->next) {
		/* One request per connection: a client cannot queue on its own. */
		if ((*tail)->client == client && (*tail)->gen == gen) {
			snprintf(err, errlen, "a request on this connection is still running");
			return -1;
		}
		n++;
	}
	if (n >= CTLQ_MAX_PER_VAULT) {
		snprintf(err, errlen, "vault %s: too many requests waiting", v->name);
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->client = client;
	r->gen = gen;
	r->cmd = cmd;
	r->flags = flags;
	msg_strlcpy(r->arg, arg != NULL ? arg : "", sizeof(r->arg));
	if (pass != NULL) {
		r->pass = *pass;	/* ownership moves to the queue */
		memset(pass, 0, sizeof(*pass));
	}
	*tail = r;
	if (CQ(v)->head != r || !vault_free(v))
		log_debug("vault %s: %s waits for its turn", v->name, ctl_cmd_name(cmd));
	return 0;
}

/* Start the head request; 0 if it now waits for its reply, -1 (err set) if it ended at once. */
static int
run(struct vault_rt *v, struct ctlq_req *r, char *err, size_t errlen)
{
	struct secbuf *pass = r->pass.p != NULL ? &r->pass : NULL;

	switch (r->cmd) {
	case CTL_INIT:
	case CTL_UNLOCK:
	case CTL_LOCK:
		return vault_request(r->client, r->gen, r->cmd, v->name, pass, err, errlen);
	case CTL_SYNC:
		tick_request(v, TRIG_CTL, r->client, r->gen);
		return 0;
	case CTL_PUSH:
		return remote_push_request(v, r->client, r->gen, (r->flags & CTL_F_FORCE) != 0,
		    err, errlen);
	case CTL_HISTORY:
		return remote_history_request(v, r->client, r->gen, err, errlen);
	case CTL_PULL:
		return remote_pull_request(v, r->client, r->gen, r->arg, &r->pass, err, errlen);
	case CTL_VERIFY:
		return verify_request(v, r->client, r->gen, err, errlen);
	default:
		snprintf(err, errlen, "unsupported command");
		return -1;
	}
}

/* Whether the running head keeps change-driven ticks waiting. */
static int
holds_vault(const struct ctlq_req *r)
{
	return r != NULL && r->running && (r->cmd == CTL_INIT || r->cmd == CTL_UNLOCK ||
	    r->cmd == CTL_LOCK || r->cmd == CTL_PULL);
}

static void
settle(struct vault_rt *v)
{
	char err[600];
	struct ctlq_req *r;

	for (;;) {
		r = CQ(v)->head;
		CQ(v)->hold = holds_vault(r);
		if (r != NULL && r->running)
			return;
		if (!vault_free(v))
			return;
		if (D.shutting_down) {
			/* Queued, never started: the socket is closed, nobody hears back. */
			while ((r = CQ(v)->head) != NULL && !r->running) {
				CQ(v)->head = r->next;
				req_free(r);
			}
			return;
		}
		if (r == NULL) {
			tick_run_pending(v);
			return;
		}
		if (!ctl_client_alive(r->client, r->gen)) {
			log_info("vault %s: %s dropped: its client has gone", v->name,
			    ctl_cmd_name(r->cmd));
			CQ(v)->head = r->next;
			req_free(r);
			continue;
		}
		/*
		 * A push copies the newest archive: the vault is saved first, by one
		 * tick of its own, so that what was written before the push is in it
		 * whether or not the watcher has reported it yet (its debounce).  One
		 * only: a vault written to without pause has a change pending after
		 * every tick, and the push (with every request behind it) would wait
		 * for ever.  An unchanged vault makes no new archive.
		 */
		if (r->cmd == CTL_PUSH && !r->saved_first && v->state != VAULT_ST_LOCKED) {
			r->saved_first = 1;
			tick_request(v, TRIG_CTL, -1, 0);
			if (tick_busy(v))
				return;
		}
		r->running = 1;
		CQ(v)->hold = holds_vault(r);
		if (r->cmd == CTL_LOCK)
			tick_drop_pending(v);	/* the lock's own final save covers it */
		if (run(v, r, err, sizeof(err)) != 0) {
			/* The reply retires the head (ctlq_replied) before we look again. */
			ctl_reply(r->client, r->gen, 1, "%s", err);
			continue;
		}
		if (CQ(v)->head != r)
			continue;	/* answered at once: the next one may go */
		secbuf_free(&r->pass);	/* a no-op when the job took it */
		return;
	}
}

/* A wholesale change (init, unlock, lock, pull) runs: change-driven ticks wait. */
int
ctlq_holds(const struct vault_rt *v)
{
	return CQ(v)->hold;
}

void
ctlq_settle_all(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v)
		settle(v);
}

/* The final reply to (client, gen) has gone out (or its client had gone): the head retires. */
void
ctlq_replied(int client, uint32_t gen)
{
	struct vault_rt *v;

	VAULT_FOREACH(v) {
		struct ctlq_req *r = CQ(v)->head;

		if (r != NULL && r->running && r->client == client && r->gen == gen) {
			CQ(v)->head = r->next;
			req_free(r);
			CQ(v)->hold = holds_vault(CQ(v)->head);
			return;
		}
	}
}

/* The vault leaves the configuration: its waiting requests are answered now. */
void
ctlq_drop(struct vault_rt *v, const char *why)
{
	struct ctlq_req *r;

	while ((r = CQ(v)->head) != NULL) {
		CQ(v)->head = r->next;
		if (!r->running)
			ctl_reply(r->client, r->gen, 1, "vault %s: %s", v->name, why);
		req_free(r);
	}
	CQ(v)->hold = 0;
}
