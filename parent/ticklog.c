/*
 * Tick records for statusd (/v1/vaults/NAME/ticks).  The last TICKLOG_KEEP
 * records of all vaults are kept here, so that a statusd that restarts, or
 * whose channel was full when a tick ended, still gets every one of them:
 * each goes out in order, after the status snapshot that shows its outcome
 * (status_settle), and what could not go then goes at the next settle.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "vaultsyncd.h"

#define TICKLOG_KEEP	1024

static struct msg_tick_rec ring[TICKLOG_KEEP];
static uint64_t added;		/* records ever added; the ring holds the last ones */
static uint64_t sent;		/* of which statusd has had this many */
static uint64_t live_from;	/* the first one this statusd had as its tick ended */

void
ticklog_flush(void)
{
	struct child_proc *s = statusd_up();

	if (s == NULL)
		return;
	if (added - sent > TICKLOG_KEEP)
		sent = added - TICKLOG_KEEP;	/* older ones are gone */
	while (sent < added) {
		struct msg_tick_rec t = ring[sent % TICKLOG_KEEP];

		t.replayed = sent < live_from;
		if (msg_send(s->chan, PEER_PARENT, MSG_TICK_REC, ++s->seq, &t, sizeof(t), -1) != 0) {
			if (errno != EAGAIN)
				log_debug("statusd: tick record not sent: %s", strerror(errno));
			return;
		}
		sent++;
	}
}

/* Kept; it goes to statusd at the end of this batch of events, after the snapshot. */
void
ticklog_add(const struct msg_tick_rec *t)
{
	ring[added % TICKLOG_KEEP] = *t;
	added++;
}

int
ticklog_pending(void)
{
	return statusd_up() != NULL && sent < added;
}

/* A statusd that (re)started has none of them; those before now are history to it. */
void
ticklog_restart(void)
{
	sent = 0;
	live_from = added;
	ticklog_flush();
}
