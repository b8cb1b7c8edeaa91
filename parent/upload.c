/*
 * Requests to the uploader.  Each carries an id; the uploader answers with
 * zero or more ENTRY (LIST) or MPU (multipart PUT) messages and exactly one
 * RESULT, in order, one request at a time.  Nothing it sends is believed
 * beyond that: a RESULT, ENTRY or MPU that does not belong to the request in
 * flight, or names another key, is a protocol violation and costs the
 * uploader its life.  When the uploader dies, every request still waiting
 * fails as a transient error (the push machinery retries), a PUT as one
 * whose outcome is unknown.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "vaultsyncd.h"

#define MAX_PENDING	(2 * CFG_MAX_VAULTS)

struct pending {
	uint32_t id;
	uint32_t type;			/* MSG_UPL_PUT, _GET, _OP */
	uint32_t op;			/* for MSG_UPL_OP */
	char vault[CFG_NAME_MAX];
	char key[UPL_KEY_MAX];
	upl_done_fn done;
	upl_entry_fn entry;
	upl_mpu_fn mpu;
	upl_progress_fn progress;
	void *arg;
};

/* In send order; the uploader answers them in the same order. */
static struct pending q[MAX_PENDING];
static size_t nq;
static uint32_t next_id = 1;

static struct child_proc *
uploader(void)
{
	struct child_proc *u = child_by_role(ROLE_UPLOADER);

	return u->state == CHILD_ST_RUNNING && u->chan >= 0 ? u : NULL;
}

int
upl_available(void)
{
	return uploader() != NULL;
}

static int
enqueue(uint32_t type, uint32_t op, const char *vault, const char *key, const void *p,
    size_t len, int fd, const struct upl_cbs *cb, uint32_t *idp)
{
	struct child_proc *u = uploader();
	struct pending *pe;

	if (u == NULL || nq == MAX_PENDING) {
		errno = u == NULL ? ENOTCONN : EBUSY;
		return -1;
	}
	if (msg_send(u->chan, PEER_PARENT, type, ++u->seq, p, len, fd) != 0) {
		log_warn("uploader: send %s: %s", msg_type_name(type), strerror(errno));
		return -1;
	}
	pe = &q[nq++];
	memset(pe, 0, sizeof(*pe));
	pe->id = *idp;
	pe->type = type;
	pe->op = op;
	msg_strlcpy(pe->vault, vault, sizeof(pe->vault));
	msg_strlcpy(pe->key, key, sizeof(pe->key));
	pe->done = cb->done;
	pe->entry = cb->entry;
	pe->mpu = cb->mpu;
	pe->progress = cb->progress;
	pe->arg = cb->arg;
	return 0;
}

int
upl_put(const char *vault, const char *key, int fd, uint64_t size, uint32_t cond,
    const char *etag, const char *content_id, const struct upl_cbs *cb)
{
	struct msg_upl_put m;

	memset(&m, 0, sizeof(m));
	m.id = next_id++;
	m.cond = cond;
	m.size = size;
	msg_strlcpy(m.vault, vault, sizeof(m.vault));
	msg_strlcpy(m.key, key, sizeof(m.key));
	msg_strlcpy(m.etag, etag != NULL ? etag : "", sizeof(m.etag));
	msg_strlcpy(m.content_id, content_id != NULL ? content_id : "", sizeof(m.content_id));
	msg_strlcpy(m.device_id, D.cfg.device_id, sizeof(m.device_id));
	return enqueue(MSG_UPL_PUT, 0, vault, key, &m, sizeof(m), fd, cb, &m.id);
}

int
upl_get(const char *vault, const char *key, int fd, uint64_t max, const struct upl_cbs *cb)
{
	struct msg_upl_get m;

	memset(&m, 0, sizeof(m));
	m.id = next_id++;
	m.max = max;
	msg_strlcpy(m.vault, vault, sizeof(m.vault));
	msg_strlcpy(m.key, key, sizeof(m.key));
	return enqueue(MSG_UPL_GET, 0, vault, key, &m, sizeof(m), fd, cb, &m.id);
}

int
upl_op(const char *vault, uint32_t op, const char *key, const char *arg,
    const struct upl_cbs *cb)
{
	struct msg_upl_op m;

	memset(&m, 0, sizeof(m));
	m.id = next_id++;
	m.op = op;
	msg_strlcpy(m.vault, vault, sizeof(m.vault));
	msg_strlcpy(m.key, key, sizeof(m.key));
	msg_strlcpy(m.arg, arg != NULL ? arg : "", sizeof(m.arg));
	return enqueue(MSG_UPL_OP, op, vault, key, &m, sizeof(m), -1, cb, &m.id);
}

/* The request a message from the uploader must belong to: the oldest in flight. */
static struct pending *
head_for(uint32_t id)
{
	return nq > 0 && q[0].id == id ? &q[0] : NULL;
}

static void
pop(void)
{
	memmove(&q[0], &q[1], (nq - 1) * sizeof(q[0]));
	nq--;
}

const char *
upl_on_result(const struct msg_upl_result *r)
{
	struct pending pe, *h = head_for(r->id);

	if (h == NULL)
		return "a result for no request in flight";
	pe = *h;
	pop();
	if (pe.done != NULL)
		pe.done(pe.vault, r, pe.arg);
	return NULL;
}

const char *
upl_on_entry(const struct msg_upl_entry *e)
{
	struct pending *h = head_for(e->id);
	size_t n;

	if (h == NULL || h->type != MSG_UPL_OP || h->op != UPL_LIST)
		return "a listing entry for no listing in flight";
	n = strlen(h->key);
	if (strncmp(e->key, h->key, n) != 0)
		return "a listing entry outside the prefix asked for";
	if (h->entry != NULL)
		h->entry(h->vault, e, h->arg);
	return NULL;
}

const char *
upl_on_mpu(const struct msg_upl_mpu *m)
{
	struct pending *h = head_for(m->id);

	if (h == NULL || h->type != MSG_UPL_PUT || strcmp(h->key, m->key) != 0)
		return "a multipart upload for no upload in flight";
	if (h->mpu != NULL)
		h->mpu(h->vault, m, h->arg);
	return NULL;
}

const char *
upl_on_progress(const struct msg_upl_progress *p)
{
	struct pending *h = head_for(p->id);

	if (h == NULL || h->type != MSG_UPL_PUT)
		return "progress for no upload in flight";
	if (h->progress != NULL)
		h->progress(h->vault, p->sent, p->total, h->arg);
	return NULL;
}

/*
 * The uploader is gone: everything in flight failed, and may be retried.  A
 * PUT it had been handed may have reached the server before the death, so
 * its outcome is unknown, not failed: the push machinery must keep its
 * content id as a write in doubt, or the next 412 reads our own write as
 * another device's.
 */
void
upl_lost(const char *why)
{
	while (nq > 0) {
		struct pending pe = q[0];
		struct msg_upl_result r;

		pop();
		memset(&r, 0, sizeof(r));
		r.id = pe.id;
		r.outcome = pe.type == MSG_UPL_PUT ? UPL_UNKNOWN : UPL_RETRY;
		r.flags = UPL_F_LOST;
		msg_strlcpy(r.error, why, sizeof(r.error));
		if (pe.done != NULL)
			pe.done(pe.vault, &r, pe.arg);
	}
}
