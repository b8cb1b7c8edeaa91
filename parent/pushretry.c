/*
 * When a failed push is tried again: capped exponential backoff with jitter,
 * never a tight loop, and identical errors logged once a minute.  A person's
 * request (sync, push) does not wait for the backoff.
 */
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "remote_int.h"
#include "vaultsyncd.h"

#define RETRY_BASE_MS	1000
#define RETRY_MAX_MS	(5 * 60 * 1000)
#define LOG_REPEAT_S	60

/* Identical errors once a minute; a new error, or a recovery, at once. */
void
push_log_error(struct vault_rt *v, const char *msg)
{
	struct push_state *ps = push_of(v);
	int64_t now = (int64_t)time(NULL);

	if (strcmp(msg, ps->logged_error) == 0 && now - ps->logged_at < LOG_REPEAT_S) {
		ps->suppressed++;
		log_debug("vault %s: %s", v->name, msg);
		return;
	}
	if (ps->suppressed > 0 && strcmp(msg, ps->logged_error) == 0)
		log_error("vault %s: %s (%u more times since)", v->name, msg, ps->suppressed);
	else
		log_error("vault %s: %s", v->name, msg);
	msg_strlcpy(ps->logged_error, msg, sizeof(ps->logged_error));
	ps->logged_at = now;
	ps->suppressed = 0;
}

void
push_retry_schedule(struct vault_rt *v, vtimer_fn fire)
{
	struct push_state *ps = push_of(v);
	uint64_t delay = RETRY_BASE_MS, jitter;
	uint32_t i;

	for (i = 1; i < ps->push_failures && delay < RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	/* Half fixed, half random: devices that failed together do not retry together. */
	if (getrandom(&jitter, sizeof(jitter), 0) != sizeof(jitter))
		jitter = 0;
	delay = delay / 2 + jitter % (delay / 2 + 1);
	vtimer_set(v, &ps->push_retry, delay, fire);
	ps->next_push_at = (int64_t)time(NULL) + (int64_t)((delay + 999) / 1000);
	log_debug("vault %s: next push attempt in %llu ms", v->name, (unsigned long long)delay);
}

/*
 * Someone asked for this push (vaultsyncctl sync): the attempt is made now
 * and its own outcome answered, not the last failure's error while the
 * backoff runs out.  Backoff spares the remote from the daemon's retries,
 * not from a person's request.
 */
void
remote_retry_now(struct vault_rt *v)
{
	struct push_state *ps = push_of(v);

	if (!vtimer_pending(&ps->push_retry))
		return;
	vtimer_clear(&ps->push_retry);
	ps->next_push_at = 0;
}
