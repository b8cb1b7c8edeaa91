/*
 * Timers that belong to a vault: at most one per purpose (a struct vtimer in
 * the per-vault state of the module that owns it), re-arming cancels the one
 * before, and the vault is found again by its registry reference when it
 * fires, because a reload may have removed it (and even added another of the
 * same name).  Without the cancel, a busy vault's re-armed Interval timers
 * would pile up until the loop runs out of timers.
 */
#include <stddef.h>
#include <stdlib.h>

#include "log.h"
#include "vaultsyncd.h"

struct vtimer_arg {
	struct vault_ref vault;
	struct vtimer *t;		/* in a module's state array: it never moves */
	vtimer_fn fn;
};

static void
fired(void *arg)
{
	struct vtimer_arg *a = arg;
	struct vault_rt *v = vreg_get(a->vault);
	vtimer_fn fn = a->fn;
	struct vtimer *t;

	if (v == NULL) {
		free(a);
		return;
	}
	t = a->t;
	if (t->arg != a) {	/* cannot happen: re-arming cancels */
		free(a);
		return;
	}
	t->id = 0;
	t->arg = NULL;
	free(a);
	fn(v);
}

void
vtimer_set(struct vault_rt *v, struct vtimer *t, uint64_t ms, vtimer_fn fn)
{
	struct vtimer_arg *a;

	vtimer_clear(t);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		fatal("calloc");
	a->vault = vreg_ref(v);
	a->t = t;
	a->fn = fn;
	t->id = timer_add(ms, fired, a) + 1;
	t->arg = a;
}

void
vtimer_clear(struct vtimer *t)
{
	if (t->id == 0)
		return;
	timer_cancel(t->id - 1);
	free(t->arg);
	t->id = 0;
	t->arg = NULL;
}

int
vtimer_pending(const struct vtimer *t)
{
	return t->id != 0;
}
