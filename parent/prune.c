/*
 * Pruning a vault's history on the remote to HistoryKeep: list history/,
 * keep the newest, delete the rest one at a time.  Only names of the form we
 * write are ever deleted.  The push sequence starts it as its last step and
 * hears the end through the callback it passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "remote_int.h"
#include "vaultsyncd.h"

#define HISTORY_MAX	10000		/* names looked at; beyond, the next push prunes on */

struct prune {
	char vault[CFG_NAME_MAX];
	prune_done_fn done;
	char (*keys)[UPL_KEY_MAX];
	size_t n, cap, next, ndelete;
	uint32_t all;		/* every key under history/, as vaultsyncctl history counts */
};

static void prune_next(struct vault_rt *v, struct prune *p);

/* history/YYYYmmddTHHMMSSZ-HASH16.tar.age: what we write, and all we ever delete. */
int
remote_history_key(const char *k)
{
	size_t i;

	if (strlen(k) != 8 + 16 + 1 + 16 + 8 || strncmp(k, "history/", 8) != 0 ||
	    k[16] != 'T' || k[23] != 'Z' || k[24] != '-' || strcmp(k + 41, ".tar.age") != 0)
		return 0;
	for (i = 8; i < 41; i++) {
		if (i == 16 || i == 23 || i == 24)
			continue;
		if (i < 24 ? (k[i] < '0' || k[i] > '9') :
		    !((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
			return 0;
	}
	return 1;
}

static void
prune_entry(const char *vault, const struct msg_upl_entry *e, void *arg)
{
	struct prune *p = arg;

	(void)vault;
	if (strncmp(e->key, "history/", 8) == 0)
		p->all++;
	if (!remote_history_key(e->key) || p->n == HISTORY_MAX)
		return;
	if (p->n == p->cap) {
		void *nk = realloc(p->keys, (p->cap = p->cap ? p->cap * 2 : 64) * sizeof(*p->keys));

		if (nk == NULL)
			return;
		p->keys = nk;
	}
	msg_strlcpy(p->keys[p->n++], e->key, UPL_KEY_MAX);
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
prune_free(struct prune *p)
{
	free(p->keys);
	free(p);
}

static void
prune_deleted(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct prune *p = arg;
	struct vault_rt *v = vreg_find(vault);

	if (v == NULL) {
		prune_free(p);
		return;
	}
	if (r->outcome != UPL_OK && r->outcome != UPL_NOT_FOUND) {
		prune_done_fn done = p->done;

		prune_free(p);
		done(v, "prune history", r);
		return;
	}
	log_info("vault %s: pruned %s", v->name, p->keys[p->next - 1]);
	if (push_of(v)->history_count > 0)
		push_of(v)->history_count--;
	prune_next(v, p);
}

static void
prune_next(struct vault_rt *v, struct prune *p)
{
	static const struct upl_cbs cbs = { prune_deleted, NULL, NULL, NULL, NULL };
	struct upl_cbs c = cbs;

	prune_done_fn done = p->done;

	if (p->next == p->ndelete) {
		prune_free(p);
		done(v, NULL, NULL);
		return;
	}
	c.arg = p;
	if (upl_op(v->name, UPL_DELETE, p->keys[p->next++], NULL, &c) != 0) {
		struct msg_upl_result r;

		memset(&r, 0, sizeof(r));
		snprintf(r.error, sizeof(r.error), "the uploader is not available");
		prune_free(p);
		done(v, "prune history", &r);
	}
}

static void
prune_listed(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct prune *p = arg;
	struct vault_rt *v = vreg_find(vault);
	const struct cfg_vault *cv;

	if (v == NULL) {
		prune_free(p);
		return;
	}
	if (r->outcome != UPL_OK) {
		prune_done_fn done = p->done;

		prune_free(p);
		done(v, "list history", r);
		return;
	}
	push_of(v)->history_known = 1;
	push_of(v)->history_count = p->all;
	cv = remote_cfg(v);
	/* The floor: HistoryKeep below 1, or a configuration that did not load, prunes nothing. */
	if (cv == NULL || cv->history_keep < 1 || !D.config_ok ||
	    p->n <= (size_t)cv->history_keep) {
		prune_done_fn done = p->done;

		prune_free(p);
		done(v, NULL, NULL);
		return;
	}
	qsort(p->keys, p->n, sizeof(*p->keys), key_cmp);
	p->ndelete = p->n - (size_t)cv->history_keep;	/* the oldest sort first */
	prune_next(v, p);
}

void
prune_start(struct vault_rt *v, prune_done_fn done)
{
	static const struct upl_cbs cbs = { prune_listed, prune_entry, NULL, NULL, NULL };
	struct upl_cbs c = cbs;
	struct prune *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal("calloc");
	msg_strlcpy(p->vault, v->name, sizeof(p->vault));
	p->done = done;
	c.arg = p;
	if (upl_op(v->name, UPL_LIST, "history/", NULL, &c) != 0) {
		struct msg_upl_result r;

		memset(&r, 0, sizeof(r));
		snprintf(r.error, sizeof(r.error), "the uploader is not available");
		prune_free(p);
		done(v, "list history", &r);
	}
}

