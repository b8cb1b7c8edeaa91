/*
 * Progress of the one PUT in flight (the uploader serves one request at a
 * time).  Bytes count when a backend hands them on; a part sent again after
 * a retry counts again, so the figure is capped at the whole.  Nothing is
 * sent for a PUT that ends before the first interval.
 */
#include <string.h>
#include <time.h>

#include "clock.h"
#include "progress.h"

#define PROGRESS_EVERY_MS	250

static struct msg_upl_progress cur;
static progress_emit_fn emit_fn;
static uint64_t last_ms;
static int active;

void
progress_begin(uint32_t id, uint64_t total, progress_emit_fn emit)
{
	memset(&cur, 0, sizeof(cur));
	cur.id = id;
	cur.total = total;
	emit_fn = emit;
	last_ms = mono_ms();
	active = 1;
}

void
progress_add(uint64_t n)
{
	uint64_t now;

	if (!active)
		return;
	cur.sent = cur.total - cur.sent < n ? cur.total : cur.sent + n;
	if ((now = mono_ms()) - last_ms < PROGRESS_EVERY_MS)
		return;
	last_ms = now;
	emit_fn(&cur);
}

void
progress_end(void)
{
	active = 0;
}
