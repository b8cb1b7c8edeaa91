/*
 * Whose write does the remote hold?  The content ids of our writes whose
 * outcome we never learned ("in doubt", persisted in the remote state
 * before each PUT of latest), and the HEAD that settles an ambiguous
 * outcome or a 412 by comparing the object's content id with ours.  The
 * push sequence hears the verdict through the callback it passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "remote_int.h"
#include "vaultsyncd.h"

/*
 * A content id of ours: the write being pushed, the last one confirmed (its
 * reply's ETag may have been wrong), or one whose outcome we never learned.
 */
int
remote_cid_ours(const struct vault_rt *v, const char *cid)
{
	const struct push_state *ps = push_of(v);
	size_t i;

	if (cid[0] == '\0')
		return 0;
	if (strcmp(cid, ps->push_cid) == 0 || strcmp(cid, ps->rs.ours) == 0)
		return 1;
	for (i = 0; i < STORE_DOUBT; i++)
		if (strcmp(cid, ps->rs.doubt[i]) == 0)
			return 1;
	return 0;
}

/* Before a PUT of latest: if we never hear back, a later 412 can still tell it is ours. */
void
remote_doubt_add(struct vault_rt *v)
{
	struct push_state *ps = push_of(v);
	size_t i;

	ps->push_cid_doubted = 0;
	if (strlen(ps->push_cid) != 16)
		return;
	for (i = 0; i < STORE_DOUBT; i++)
		if (strcmp(ps->rs.doubt[i], ps->push_cid) == 0) {
			ps->push_cid_doubted = 1;
			return;
		}
	/*
	 * Full: the newest gives way, never the oldest.  A confirmed write
	 * clears the list, so its entries were sent under one precondition (the
	 * ETag we last knew, or none) one after another: at most one of them can
	 * have landed, and it is the first that reached the server, the oldest.
	 * Evicting that one made the remote's copy of our own write look like
	 * another device's (a conflict after 32 unanswered attempts).
	 */
	if (ps->rs.doubt[STORE_DOUBT - 1][0] == '\0')
		memmove(ps->rs.doubt[1], ps->rs.doubt[0],
		    sizeof(ps->rs.doubt[0]) * (STORE_DOUBT - 1));
	msg_strlcpy(ps->rs.doubt[0], ps->push_cid, sizeof(ps->rs.doubt[0]));
	remote_save_state(v);
}

/* The attempt with this content id was refused or is not what the remote holds. */
void
remote_doubt_drop(struct vault_rt *v, const char *cid)
{
	struct push_state *ps = push_of(v);
	size_t i;

	for (i = 0; i < STORE_DOUBT; i++)
		if (cid[0] != '\0' && strcmp(ps->rs.doubt[i], cid) == 0) {
			memmove(ps->rs.doubt[i], ps->rs.doubt[i + 1],
			    sizeof(ps->rs.doubt[0]) * (STORE_DOUBT - 1 - i));
			memset(ps->rs.doubt[STORE_DOUBT - 1], 0, sizeof(ps->rs.doubt[0]));
			remote_save_state(v);
			return;
		}
}

/*
 * A write that may or may not have landed (UNKNOWN), or a 412 (which may be
 * that write of ours, seen by its retry), concludes nothing by itself: a
 * HEAD of the key says whose write the remote holds.  Our content id there
 * means our write landed: it is adopted with the HEAD's ETag.  Anything
 * else goes back to the caller's callback as it came, settled: a 412 is then
 * another device's write, an UNKNOWN a failure to retry.  A HEAD that
 * cannot tell concludes nothing either; the push retries.
 */
struct settling {
	struct msg_upl_result r;	/* the outcome being settled */
	settle_fn done;
};

static void
settled(const char *vault, const struct msg_upl_result *h, void *arg)
{
	struct settling *st = arg;
	struct msg_upl_result r = st->r;
	settle_fn done = st->done;
	struct vault_rt *v = vreg_find(vault);
	struct push_state *ps;
	char was[sizeof(r.error)];
	int ours;

	free(st);
	if (v == NULL)
		return;
	ps = push_of(v);
	ours = h->outcome == UPL_OK && remote_cid_ours(v, h->content_id);
	memcpy(was, r.error, sizeof(was));
	if (ours && h->etag[0] != '\0' && strcmp(h->content_id, ps->push_cid) != 0 &&
	    ps->push_step == PS_LATEST && strcmp(h->etag, ps->rs.etag) != 0) {
		/*
		 * An earlier write of ours landed unconfirmed (a kill mid-PUT): its
		 * ETag is ours to match, and the newer archive goes up now.  Once
		 * only: a 412 against the ETag just adopted is settled as any other.
		 */
		log_info("vault %s: %s holds an earlier write of ours (content id %s, ETag %s); "
		    "sending the newer archive with that ETag", v->name, ps->push_key,
		    h->content_id, h->etag);
		msg_strlcpy(ps->rs.etag, h->etag, sizeof(ps->rs.etag));
		ps->rs.pushed_sha256[0] = '\0';
		/* Writes under the ETag before it cannot land now: this one is what may be there. */
		memset(ps->rs.doubt, 0, sizeof(ps->rs.doubt));
		msg_strlcpy(ps->rs.doubt[0], h->content_id, sizeof(ps->rs.doubt[0]));
		remote_save_state(v);
		done(v, NULL, 1);
		return;
	}
	if (ours && h->etag[0] != '\0' && strcmp(h->content_id, ps->push_cid) != 0) {
		if (r.outcome != UPL_UNKNOWN)
			r.outcome = UPL_RETRY;
		snprintf(r.error, sizeof(r.error), "%.120s; the remote holds an earlier write "
		    "of ours (ETag %.60s)", was, h->etag);
	} else if (ours && h->etag[0] != '\0') {
		log_info("vault %s: %s holds our archive (content id %s, ETag %s): our write "
		    "landed", v->name, ps->push_key, h->content_id, h->etag);
		r.outcome = UPL_OK;
		r.http_status = h->http_status;
		msg_strlcpy(r.etag, h->etag, sizeof(r.etag));
		r.bytes = ps->push_bytes;
		r.error[0] = '\0';
	} else if (ours || (h->outcome != UPL_OK && h->outcome != UPL_NOT_FOUND)) {
		if (r.outcome != UPL_UNKNOWN)
			r.outcome = UPL_RETRY;
		snprintf(r.error, sizeof(r.error), "%.120s; cannot tell whose write the remote "
		    "holds: %.80s", was, ours ? "its HEAD has no ETag" : h->error);
	} else if (r.outcome == UPL_UNKNOWN) {
		if (ps->push_step == PS_LATEST && h->outcome == UPL_OK)
			remote_doubt_drop(v, ps->push_cid);	/* something else is there now */
		snprintf(r.error, sizeof(r.error), "%.160s; the remote does not hold it "
		    "(content id %s)", was, h->outcome == UPL_OK && h->content_id[0] ?
		    h->content_id : "none");
	}
	done(v, &r, 0);
}

void
settle_start(struct vault_rt *v, const struct msg_upl_result *r, settle_fn done)
{
	static const struct upl_cbs cbs = { settled, NULL, NULL, NULL, NULL };
	struct upl_cbs c = cbs;
	struct settling *st;
	struct msg_upl_result *orig;

	if ((st = malloc(sizeof(*st))) == NULL)
		fatal("malloc");
	st->r = *r;
	st->done = done;
	orig = &st->r;
	c.arg = st;
	log_info("vault %s: %s: %s; asking the remote whose write it holds", v->name,
	    push_of(v)->push_key, r->error[0] ? r->error : "HTTP 412");
	if (upl_op(v->name, UPL_HEAD, push_of(v)->push_key, NULL, &c) != 0) {
		orig->outcome = orig->outcome == UPL_UNKNOWN ? UPL_UNKNOWN : UPL_RETRY;
		snprintf(orig->error, sizeof(orig->error), "%.200s; the uploader is not available",
		    r->error);
		done(v, orig, 0);
		free(st);
	}
}

/*
 * For the head poller: a remote latest holding the content id we last tried
 * to push is that write of ours, landed though its reply never said so (the
 * push's retry adopts it), not another device's.
 */
int
remote_head_ours(const struct vault_rt *v, const struct msg_upl_result *r)
{
	return r->outcome == UPL_OK && remote_cid_ours(v, r->content_id);
}
