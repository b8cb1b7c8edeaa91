/*
 * The one waiter list of the parent.  A waiter that asked during round R
 * (a tick's index) is answered by the first round after R, which sees what
 * it asked about; lists without rounds put after = 0 and answer round
 * UINT64_MAX.
 */
#include <stdio.h>
#include <string.h>

#include "vaultsyncd.h"
#include "waiter.h"

int
waiters_add(struct waiters *l, int client, uint32_t gen, uint64_t after, const char *prefix,
    int fail, const char *what)
{
	struct waiter *w;

	if (l->n == WAITERS_MAX) {
		ctl_reply(client, gen, 1, "%s: too many requests waiting", what);
		return -1;
	}
	w = &l->w[l->n++];
	w->client = client;
	w->gen = gen;
	w->after = after;
	w->fail = fail;
	msg_strlcpy(w->prefix, prefix != NULL ? prefix : "", sizeof(w->prefix));
	return 0;
}

void
waiters_answer(struct waiters *l, uint64_t round, int code, const char *msg)
{
	int i, n = 0, was = l->n;
	struct waiter w;

	/* Answer from a copy: a reply may end its request and start the next one. */
	for (i = 0; i < was; i++) {
		w = l->w[i];
		if (w.after >= round) {
			l->w[n++] = w;
			continue;
		}
		ctl_reply(w.client, w.gen, w.fail && code == 0 ? 1 : code, "%s%s%s", w.prefix,
		    w.prefix[0] != '\0' ? "; " : "", msg);
	}
	/* Any that joined while the others were answered stay too. */
	for (i = was; i < l->n; i++)
		l->w[n++] = l->w[i];
	l->n = n;
}

int
waiters_for(const struct waiters *l, uint64_t round)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (l->w[i].after < round)
			return 1;
	return 0;
}
