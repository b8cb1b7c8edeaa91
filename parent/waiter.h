/*
 * Control clients waiting for the end of something that runs on its own
 * (a tick, a push, a verification drill).  One type for all of them: each
 * waiter is the (client, gen) its answer goes to, plus what shapes that
 * answer.
 */
#ifndef VS_WAITER_H
#define VS_WAITER_H

#include <stdint.h>

#define WAITERS_MAX	8

struct waiter {
	int client;
	uint32_t gen;
	uint64_t after;		/* asked while this round ran: answered by a later one */
	int fail;		/* a success cannot be what was asked for: answer 1 */
	char prefix[256];	/* put before the answer, "; " between */
};

struct waiters {
	struct waiter w[WAITERS_MAX];
	int n;
};

/* Joins the list, or answers at once that too many wait (then returns -1). */
int waiters_add(struct waiters *l, int client, uint32_t gen, uint64_t after,
    const char *prefix, int fail, const char *what);
/* Answers every waiter with after < round (UINT64_MAX: all); the others stay. */
void waiters_answer(struct waiters *l, uint64_t round, int code, const char *msg);
/* Does a waiter with after < round wait? */
int waiters_for(const struct waiters *l, uint64_t round);

#endif
