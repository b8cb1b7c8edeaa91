/*
 * The head poller (DESIGN §6): the remote latest's ETag, asked of the
 * uploader every HeadPollInterval, doubling after each unchanged poll up to
 * HeadPollMaxInterval and snapping back on a change.  The first poll only
 * primes.  An ETag that changed and is not the one we wrote means another
 * device wrote the latest: the vault is marked conflict (we hold no key to
 * take their version ourselves: vaultsyncctl pull does, with the passphrase)
 * and its loop gets a head-poll tick.
 */
#include <string.h>

#include "log.h"
#include "vaultsyncd.h"

/* Each vault's poller. */
struct hp_state {
	uint32_t gen;			/* vreg_state's */
	uint64_t interval_ms;		/* 0: not polling */
	struct vtimer timer;
	int primed, inflight;
	char seen[128];			/* the ETag the last poll saw */
};
static struct hp_state hps[CFG_MAX_VAULTS];
#define HP(v)	VREG_STATE(hps, v)

static void poll_fired(struct vault_rt *v);

static void
schedule(struct vault_rt *v)
{
	struct hp_state *h = HP(v);

	vtimer_clear(&h->timer);
	if (D.shutting_down || D.oneshot || h->interval_ms == 0)
		return;
	vtimer_set(v, &h->timer, h->interval_ms, poll_fired);
}

static void
polled(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct vault_rt *v = vreg_find(vault);
	const struct vault_remote *rs;
	struct hp_state *h;
	const char *etag;

	(void)arg;
	if (v == NULL)
		return;
	h = HP(v);
	rs = remote_state(v);
	h->inflight = 0;
	/* A HEAD without an ETag says nothing about who wrote the object. */
	if ((r->outcome != UPL_OK && r->outcome != UPL_NOT_FOUND) ||
	    (r->outcome == UPL_OK && r->etag[0] == '\0')) {
		log_debug("vault %s: head poll: %s", v->name, r->error[0] ? r->error : "no ETag");
		schedule(v);	/* push retries report failures; the poller just waits */
		return;
	}
	etag = r->outcome == UPL_OK ? r->etag : "";
	if (!h->primed || strcmp(etag, h->seen) == 0) {
		if (h->primed && h->interval_ms < D.cfg.head_poll_max_interval_ms) {
			h->interval_ms *= 2;
			if (h->interval_ms > D.cfg.head_poll_max_interval_ms)
				h->interval_ms = D.cfg.head_poll_max_interval_ms;
		}
		h->primed = 1;
		msg_strlcpy(h->seen, etag, sizeof(h->seen));
		schedule(v);
		return;
	}
	msg_strlcpy(h->seen, etag, sizeof(h->seen));
	h->interval_ms = D.cfg.head_poll_interval_ms;
	/* Our own push also changes it: only an ETag we did not write is news. */
	if (strcmp(etag, rs->etag) != 0 && !remote_busy(v) && !remote_head_ours(v, r)) {
		log_warn("vault %s: the remote latest changed (ETag %s, we wrote %s): another "
		    "device wrote it; vaultsyncctl pull takes that version, push --force "
		    "overwrites it", v->name, etag[0] ? etag : "none", rs->etag[0] ?
		    rs->etag : "none");
		remote_mark_conflict(v);
		tick_request(v, TRIG_HEAD_POLL, -1, 0);
	}
	schedule(v);
}

static void
poll_fired(struct vault_rt *v)
{
	static const struct upl_cbs cbs = { polled, NULL, NULL, NULL, NULL };
	const struct cfg_vault *cv;

	cv = cfg_vault_find(&D.cfg, v->name);
	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE)
		return;
	/* Not while we write it ourselves, and not before there is anything of ours there. */
	if (remote_busy(v) || HP(v)->inflight || remote_state(v)->etag[0] == '\0' ||
	    !upl_available() || upl_op(v->name, UPL_HEAD, "vault.tar.age", NULL, &cbs) != 0) {
		schedule(v);
		return;
	}
	HP(v)->inflight = 1;
}

/* Start (or restart, after a reload) the poller of every vault with a remote. */
void
headpoll_start(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v) {
		const struct cfg_vault *cv = cfg_vault_find(&D.cfg, v->name);
		struct hp_state *h = HP(v);

		if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE || h->interval_ms != 0)
			continue;
		h->interval_ms = D.cfg.head_poll_interval_ms;
		h->primed = 0;
		schedule(v);
	}
}
