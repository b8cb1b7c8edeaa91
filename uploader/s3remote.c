/*
 * The S3 backend: requests of the parent turned into S3 calls (s3.c) under
 * the vault's own prefix.  Large objects go up in parts, streamed from the
 * passed fd.  A conditional multipart write is compared with a HEAD before
 * it completes, and the condition is sent on the complete as well; a server
 * that ignores it leaves a small race, which the result reports (WEAK_CAS).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hex.h"
#include "remote.h"

#define PART_MIN	(16ull << 20)
#define PART_COUNT_MAX	9000ull
#define LIST_MAX	100000
#define HASH_CHUNK	(1u << 20)
#define MPU_INFLIGHT	S3_MPU_INFLIGHT_DEFAULT

uint64_t upl_multipart_threshold = 64ull << 20;

static void
to_s3creds(const struct creds *c, struct s3_creds *sc)
{
	sc->access_key_id = c->access_key_id;
	sc->secret = (const char *)c->secret.p;
	sc->token = c->token.p != NULL ? (const char *)c->token.p : NULL;
}

/* Copy an s3_result into the parent's result, mapping the outcome one to one. */
static void
take(struct upl_remote *r, const struct s3_result *sr, struct msg_upl_result *res)
{
	static const uint32_t map[] = {
		[S3_OK] = UPL_OK, [S3_NOT_FOUND] = UPL_NOT_FOUND,
		[S3_PRECONDITION] = UPL_CONFLICT, [S3_AUTH] = UPL_AUTH,
		[S3_RETRY] = UPL_RETRY, [S3_FAILED] = UPL_FAILED,
		[S3_UNKNOWN] = UPL_UNKNOWN,
	};

	res->outcome = (unsigned)sr->outcome < sizeof(map) / sizeof(map[0]) ?
	    map[sr->outcome] : UPL_FAILED;
	res->http_status = sr->http_status >= 0 && sr->http_status <= 999 ?
	    (int32_t)sr->http_status : 0;
	msg_strlcpy(res->etag, sr->etag, sizeof(res->etag));
	msg_strlcpy(res->content_id, sr->content_id, sizeof(res->content_id));
	res->mtime = sr->last_modified;
	if (res->outcome != UPL_OK)
		msg_strlcpy(res->error, sr->error, sizeof(res->error));
	if ((res->outcome == UPL_RETRY || res->outcome == UPL_UNKNOWN) && sr->http_status == 0)
		r->net_failures++;
	else if (sr->http_status != 0)
		r->net_failures = 0;
}

/*
 * The payload hash to sign.  Over TLS the transport already protects the
 * bytes and UNSIGNED-PAYLOAD saves a pass over them; over plain HTTP the
 * server must be able to check what arrived.
 */
static int
payload_hash(const struct upl_remote *r, int fd, uint64_t off, uint64_t len, char hex[65],
    const char **out)
{
	unsigned char md[32], *buf;
	EVP_MD_CTX *ctx;
	unsigned mdlen = 0;
	uint64_t done = 0;
	int rc = -1;

	if (r->tls) {
		*out = NULL;
		return 0;
	}
	if ((buf = malloc(HASH_CHUNK)) == NULL || (ctx = EVP_MD_CTX_new()) == NULL) {
		free(buf);
		return -1;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	while (done < len) {
		size_t want = len - done > HASH_CHUNK ? HASH_CHUNK : (size_t)(len - done);
		ssize_t n = pread(fd, buf, want, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
		done += (uint64_t)n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	hex_encode(md, 32, hex);
	*out = hex;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

static enum s3_cond
cond_of(const struct msg_upl_put *m)
{
	return m->cond == UPL_COND_IF_MATCH ? S3_COND_IF_MATCH :
	    m->cond == UPL_COND_IF_NONE_MATCH ? S3_COND_IF_NONE_MATCH : S3_COND_NONE;
}

/* The HEAD comparison for servers that may not honour a condition on complete. */
static int
precheck(struct upl_remote *r, const struct s3_creds *sc, const char *key,
    const struct msg_upl_put *m, struct msg_upl_result *res)
{
	struct s3_result sr;

	if (m->cond == UPL_COND_NONE)
		return 0;
	memset(&sr, 0, sizeof(sr));
	if (s3_head(r->s3, sc, key, &sr) != 0 ||
	    (sr.outcome != S3_OK && sr.outcome != S3_NOT_FOUND)) {
		take(r, &sr, res);
		if (res->outcome == UPL_OK || res->outcome == UPL_NOT_FOUND)
			upl_seterr(res, UPL_FAILED, "HEAD %s: %s", m->key, sr.error);
		return -1;
	}
	if ((m->cond == UPL_COND_IF_NONE_MATCH && sr.outcome == S3_OK) ||
	    (m->cond == UPL_COND_IF_MATCH && (sr.outcome != S3_OK || strcmp(sr.etag, m->etag) != 0))) {
		upl_seterr(res, UPL_CONFLICT, "%s was written elsewhere (ETag %s, expected %s)",
		    m->key, sr.outcome == S3_OK ? sr.etag : "none",
		    m->cond == UPL_COND_IF_MATCH ? m->etag : "none");
		res->http_status = 412;
		return -1;
	}
	return 0;
}

static void
put_multipart(struct upl_remote *r, const struct s3_creds *sc, const char *key,
    const struct msg_upl_put *m, int fd, const struct upl_emit *em, struct msg_upl_result *res)
{
	char upload_id[S3_ID_MAX];
	char (*etags)[S3_ETAG_MAX] = NULL;
	uint64_t part = PART_MIN;
	unsigned nparts;
	struct msg_upl_mpu mm;
	struct s3_result sr;

	while ((m->size + part - 1) / part > PART_COUNT_MAX)
		part *= 2;
	nparts = (unsigned)((m->size + part - 1) / part);
	if (precheck(r, sc, key, m, res) != 0)
		return;
	memset(&sr, 0, sizeof(sr));
	if (s3_mpu_create(r->s3, sc, key, m->content_id, m->device_id, upload_id, &sr) != 0 ||
	    sr.outcome != S3_OK) {
		take(r, &sr, res);
		return;
	}
	memset(&mm, 0, sizeof(mm));
	mm.id = m->id;
	msg_strlcpy(mm.key, m->key, sizeof(mm.key));
	msg_strlcpy(mm.upload_id, upload_id, sizeof(mm.upload_id));
	em->mpu(em->arg, &mm);
	if ((etags = calloc(nparts, sizeof(*etags))) == NULL) {
		upl_seterr(res, UPL_RETRY, "out of memory");
		goto abort;
	}
	/*
	 * MPU_INFLIGHT parts at once, each on its own connection: one stream
	 * leaves the server's other core idle.  Signed as payload_hash() would
	 * (over plain HTTP only), each part's hash computed while the parts
	 * before it are on the wire.
	 */
	memset(&sr, 0, sizeof(sr));
	if (s3_mpu_parts(r->s3, sc, key, upload_id, fd, m->size, part, MPU_INFLIGHT, !r->tls,
	    etags, &sr) != 0 || sr.outcome != S3_OK) {
		take(r, &sr, res);
		if (res->outcome == UPL_OK)
			upl_seterr(res, UPL_FAILED, "%s", sr.error);
		goto abort;
	}
	/* Another device may have written since the first check. */
	if (precheck(r, sc, key, m, res) != 0)
		goto abort;
	memset(&sr, 0, sizeof(sr));
	if (s3_mpu_complete(r->s3, sc, key, upload_id, etags, nparts, cond_of(m), m->etag,
	    &sr) != 0 || sr.outcome != S3_OK) {
		take(r, &sr, res);
		goto abort;
	}
	free(etags);
	/*
	 * The complete reply's ETag is not to be trusted (empty on RGW): ask,
	 * and take the answer only if the object is the one we completed.
	 */
	memset(&sr, 0, sizeof(sr));
	if (s3_head(r->s3, sc, key, &sr) != 0 || sr.outcome != S3_OK || sr.etag[0] == '\0') {
		take(r, &sr, res);
		upl_seterr(res, UPL_UNKNOWN, "HEAD after the upload: %s",
		    sr.error[0] ? sr.error : "no ETag");
		return;
	}
	if (m->content_id[0] != '\0' && strcmp(sr.content_id, m->content_id) != 0) {
		take(r, &sr, res);
		upl_seterr(res, UPL_UNKNOWN, "after the upload %s holds content id %s, not ours",
		    m->key, sr.content_id[0] ? sr.content_id : "none");
		res->etag[0] = '\0';
		return;
	}
	take(r, &sr, res);
	res->bytes = m->size;
	res->flags |= UPL_F_MULTIPART | (m->cond != UPL_COND_NONE ? UPL_F_WEAK_CAS : 0);
	return;
abort:
	free(etags);
	memset(&sr, 0, sizeof(sr));
	(void)s3_mpu_abort(r->s3, sc, key, upload_id, &sr);
}

static int
ready(struct upl_remote *r, const struct creds *c, struct msg_upl_result *res)
{
	if (r->s3 == NULL) {
		upl_seterr(res, UPL_RETRY, "%s", r->s3_err);
		r->net_failures++;
		return -1;
	}
	if (c == NULL) {
		upl_seterr(res, UPL_AUTH, "no usable credentials (see the credentials status)");
		return -1;
	}
	return 0;
}

static int
full_key(const struct upl_remote *r, const char *key, char *buf, struct msg_upl_result *res)
{
	if ((size_t)snprintf(buf, S3_KEY_MAX, "%s%s", r->base, key) >= S3_KEY_MAX) {
		upl_seterr(res, UPL_FAILED, "key too long");
		return -1;
	}
	return 0;
}

void
s3r_put(struct upl_remote *r, const struct creds *c, const struct msg_upl_put *m, int fd,
    const struct upl_emit *em, struct msg_upl_result *res)
{
	char key[S3_KEY_MAX], hex[65];
	struct s3_creds sc;
	struct s3_result sr;
	const char *h;

	if (ready(r, c, res) != 0 || full_key(r, m->key, key, res) != 0)
		return;
	to_s3creds(c, &sc);
	if (m->size > upl_multipart_threshold) {
		put_multipart(r, &sc, key, m, fd, em, res);
		return;
	}
	if (payload_hash(r, fd, 0, m->size, hex, &h) != 0) {
		upl_seterr(res, UPL_FAILED, "read the archive: %s", strerror(errno));
		return;
	}
	memset(&sr, 0, sizeof(sr));
	if (s3_put(r->s3, &sc, key, fd, 0, m->size, h, cond_of(m), m->etag, m->content_id,
	    m->device_id, &sr) != 0) {
		take(r, &sr, res);
		if (res->outcome == UPL_OK)
			res->outcome = UPL_FAILED;
		return;
	}
	/*
	 * A reply without an ETag is UNKNOWN, not asked about here: a HEAD's
	 * ETag is whoever wrote last, and only the parent knows what to
	 * compare it with.
	 */
	take(r, &sr, res);
	if (res->outcome == UPL_OK)
		res->bytes = m->size;
}

void
s3r_get(struct upl_remote *r, const struct creds *c, const struct msg_upl_get *m, int fd,
    struct msg_upl_result *res)
{
	char key[S3_KEY_MAX];
	struct s3_creds sc;
	struct s3_result sr;

	if (ready(r, c, res) != 0 || full_key(r, m->key, key, res) != 0)
		return;
	to_s3creds(c, &sc);
	memset(&sr, 0, sizeof(sr));
	if (s3_get(r->s3, &sc, key, fd, m->max, &sr) != 0 && sr.outcome == S3_OK)
		sr.outcome = S3_FAILED;
	take(r, &sr, res);
	if (res->outcome == UPL_OK)
		res->bytes = sr.size;
}

struct list_ctx {
	const struct upl_remote *r;
	const struct upl_emit *em;
	uint32_t id;
};

static int
list_one(void *arg, const struct s3_object *o)
{
	struct list_ctx *lc = arg;
	size_t blen = strlen(lc->r->base);
	struct msg_upl_entry e;

	if (strncmp(o->key, lc->r->base, blen) != 0)
		return 0;	/* not ours: the server answered more than asked */
	memset(&e, 0, sizeof(e));
	if (strlen(o->key + blen) >= sizeof(e.key) || msg_valid_key(o->key + blen) != 0)
		return 0;	/* a key we would never write: not ours to touch */
	e.id = lc->id;
	e.size = o->size;
	e.mtime = o->last_modified;
	msg_strlcpy(e.key, o->key + blen, sizeof(e.key));
	msg_strlcpy(e.etag, o->etag, sizeof(e.etag));
	lc->em->entry(lc->em->arg, &e);
	return 0;
}

void
s3r_op(struct upl_remote *r, const struct creds *c, const struct msg_upl_op *m,
    const struct upl_emit *em, struct msg_upl_result *res)
{
	char key[S3_KEY_MAX];
	struct s3_creds sc;
	struct s3_result sr;
	struct list_ctx lc;
	int rc = -1;

	if (ready(r, c, res) != 0 || full_key(r, m->key, key, res) != 0)
		return;
	to_s3creds(c, &sc);
	memset(&sr, 0, sizeof(sr));
	switch (m->op) {
	case UPL_HEAD:
		rc = s3_head(r->s3, &sc, key, &sr);
		break;
	case UPL_DELETE:
		rc = s3_delete(r->s3, &sc, key, &sr);
		break;
	case UPL_ABORT:
		rc = s3_mpu_abort(r->s3, &sc, key, m->arg, &sr);
		break;
	case UPL_LIST:
		lc.r = r;
		lc.em = em;
		lc.id = m->id;
		rc = s3_list(r->s3, &sc, key, LIST_MAX, list_one, &lc, &sr);
		break;
	}
	if (rc != 0 && sr.outcome == S3_OK)
		sr.outcome = S3_FAILED;
	take(r, &sr, res);
	if (res->outcome == UPL_OK && m->op == UPL_HEAD)
		res->bytes = sr.size;
}
