/*
 * vaultsyncctl history: the remote's history/ listed through the uploader,
 * one line per version to the waiting client, then the count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "remote_int.h"
#include "vaultsyncd.h"

struct hist {
	int client;
	uint32_t gen;
	unsigned n;
};

static void
hist_entry(const char *vault, const struct msg_upl_entry *e, void *arg)
{
	struct hist *h = arg;
	char when[32] = "-";
	time_t t = (time_t)e->mtime;
	struct tm tm;

	(void)vault;
	if (strncmp(e->key, "history/", 8) != 0)
		return;
	if (t > 0 && gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ctl_line(h->client, h->gen, "%s  %12llu  %s  %s", e->key + 8,
	    (unsigned long long)e->size, when, e->etag);
	h->n++;
}

/* A listing of history/ came back whole: what status shows as the count. */
static void
counted(struct vault_rt *v, unsigned n)
{
	if (v == NULL)
		return;
	push_of(v)->history_known = 1;
	push_of(v)->history_count = n;
}

static void
hist_done(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct hist *h = arg;

	if (r->outcome == UPL_OK)
		counted(vreg_find(vault), h->n);
	if (r->outcome == UPL_OK)
		ctl_reply(h->client, h->gen, 0, "vault %s: %u history version(s)", vault, h->n);
	else
		ctl_reply(h->client, h->gen, 1, "vault %s: listing history failed: %s", vault,
		    r->error);
	free(h);
}

int
remote_history_request(struct vault_rt *v, int client, uint32_t gen, char *err, size_t errlen)
{
	const struct cfg_vault *cv = remote_cfg(v);
	struct upl_cbs c = { hist_done, hist_entry, NULL, NULL, NULL };
	struct hist *h;

	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE) {
		snprintf(err, errlen, "vault %s has no Remote", v->name);
		return -1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		fatal("calloc");
	h->client = client;
	h->gen = gen;
	c.arg = h;
	if (upl_op(v->name, UPL_LIST, "history/", NULL, &c) != 0) {
		free(h);
		snprintf(err, errlen, "the uploader is not available");
		return -1;
	}
	return 0;
}

static void
count_entry(const char *vault, const struct msg_upl_entry *e, void *arg)
{
	(void)vault;
	if (strncmp(e->key, "history/", 8) == 0)
		(*(unsigned *)arg)++;
}

static void
count_done(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct vault_rt *v = vreg_find(vault);
	unsigned *n = arg;

	if (v != NULL)
		push_of(v)->history_counting = 0;
	if (r->outcome == UPL_OK)
		counted(v, *n);
	else
		log_debug("vault %s: counting history copies: %s", vault, r->error);
	free(n);
}

void
remote_history_count(struct vault_rt *v)
{
	struct upl_cbs c = { count_done, count_entry, NULL, NULL, NULL };
	unsigned *n;

	if (push_of(v)->history_counting)
		return;
	if ((n = calloc(1, sizeof(*n))) == NULL)
		fatal("calloc");
	c.arg = n;
	if (upl_op(v->name, UPL_LIST, "history/", NULL, &c) != 0) {
		free(n);
		return;
	}
	push_of(v)->history_counting = 1;
}
