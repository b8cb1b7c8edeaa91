/*
 * The liveness check of a child whose clients are not the parent (statusd).
 */
#ifndef VS_LIVE_H
#define VS_LIVE_H

#include "vaultsyncd.h"

/* What the check needs from the supervisor: read what the child sent, kill it. */
struct live_ops {
	void (*drain)(struct child_proc *c);
	void (*kill)(struct child_proc *c, const char *why);
};

void live_init(const struct live_ops *ops);
void live_start(struct child_proc *c);
void live_stop(struct child_proc *c);
/* NULL, or why this PONG breaks the protocol. */
const char *live_on_pong(struct child_proc *c, const struct msg_ping *p);
/* 1 if the check killed it (the reason to keep), until live_clear. */
int live_hung(const struct child_proc *c);
void live_clear(struct child_proc *c);

#endif
