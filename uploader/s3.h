/*
 * The S3 client of the uploader: libcurl with CURLOPT_AWS_SIGV4, one easy
 * handle per remote (and S3_MPU_INFLIGHT_MAX more for parts in parallel),
 * connections kept alive between requests.
 *
 * It is built to run inside the uploader's sandbox, which can open no file
 * and resolve no name: everything that needs the filesystem or DNS happens in
 * s3_global_init() and s3_remote_new(), before the sandbox closes.  The CA
 * bundle is loaded into memory (CURLOPT_CAINFO_BLOB), the endpoint's host is
 * resolved once and pinned (CURLOPT_RESOLVE); refreshing either means a
 * re-exec of the uploader.
 *
 * Keys given to these functions are full object keys (prefix included),
 * already validated by the caller: [A-Za-z0-9._/-] only, no "//", no "..".
 * Every response body is hostile input: bounded, parsed by s3xml.c.
 */
#ifndef VS_S3_H
#define VS_S3_H

#include <stddef.h>
#include <stdint.h>

#define S3_ETAG_MAX	128
#define S3_KEY_MAX	512
#define S3_ERR_MAX	256
#define S3_ID_MAX	256	/* multipart upload id */

/* What a request came to, as the caller must act on it. */
enum s3_outcome {
	S3_OK = 0,
	S3_NOT_FOUND,		/* 404 (GET/HEAD/DELETE of a missing key) */
	S3_PRECONDITION,	/* 412: If-Match / If-None-Match failed (a conflict) */
	S3_AUTH,		/* 401/403: credentials rejected or clock skewed */
	S3_RETRY,		/* transient: network, timeout, 5xx, 429, 503 SlowDown */
	S3_FAILED,		/* permanent: any other 4xx, malformed reply */
	/*
	 * A write (PUT, complete) whose whole body went out without a proof
	 * that it landed or a refusal: a 2xx without an ETag or with a body
	 * it should not have, a 5xx but 503, no readable status, a reply cut
	 * off.  Only a HEAD can tell.
	 */
	S3_UNKNOWN,
};

enum s3_cond {
	S3_COND_NONE = 0,
	S3_COND_IF_NONE_MATCH,	/* If-None-Match: * (first write) */
	S3_COND_IF_MATCH,	/* If-Match: ETAG, sent without quotes */
};

struct s3_remote_cfg {
	char endpoint[256];	/* http(s)://host[:port], no path */
	char region[64];
	char bucket[64];
	int path_style;		/* 1: endpoint/bucket/key; 0: bucket.host/key */
};

struct s3_creds {
	const char *access_key_id;
	const char *secret;	/* NUL-terminated, in the caller's locked buffer */
	const char *token;	/* session token or NULL */
};

/* The reply to one request. */
struct s3_result {
	enum s3_outcome outcome;
	long http_status;	/* 0: no HTTP reply (network) */
	char etag[S3_ETAG_MAX];	/* unquoted; PUT, HEAD, GET, part upload */
	uint64_t size;		/* HEAD/GET: object size; PUT: bytes sent */
	int64_t last_modified;	/* HEAD/GET: unix seconds, 0 = unknown */
	char content_id[80];	/* HEAD/GET: x-amz-meta-content-id, "" = none */
	char device_id[80];	/* HEAD/GET: x-amz-meta-device-id */
	char error[S3_ERR_MAX];	/* one line: S3 error code and message, or curl's */
};

struct s3_remote;

/*
 * Before the sandbox: curl_global_init and the CA bundle (ca_file, NULL for
 * the system's /etc/ssl/certs/ca-certificates.crt) read into memory.
 * 0 ok, -1 with err.
 */
int s3_global_init(const char *ca_file, char *err, size_t errlen);

/*
 * Before the sandbox: a client for one remote; resolves the endpoint host
 * (getaddrinfo) and pins the addresses.  NULL with err on failure.
 */
struct s3_remote *s3_remote_new(const struct s3_remote_cfg *cfg, char *err, size_t errlen);
/*
 * libcurl's cleanup of the connection cache sets and restores the SIGPIPE
 * disposition (rt_sigaction) whatever CURLOPT_NOSIGNAL says: inside a
 * sandbox that forbids it, exit instead of freeing.
 */
void s3_remote_free(struct s3_remote *r);

/* For tests: entries per listing page (max-keys, max-uploads); 0 lets the server choose. */
void s3_remote_set_page_size(struct s3_remote *r, unsigned n);

/*
 * PUT key from fd bytes [off, off+len) (pread: the fd's offset is not used).
 * sha256_hex: the payload hash to sign, or NULL for UNSIGNED-PAYLOAD.
 * cond/etag: the compare-and-swap.  meta_content_id and meta_device_id
 * become x-amz-meta-content-id and x-amz-meta-device-id ("" or NULL: none).
 */
int s3_put(struct s3_remote *r, const struct s3_creds *c, const char *key, int fd,
    uint64_t off, uint64_t len, const char *sha256_hex, enum s3_cond cond,
    const char *etag, const char *meta_content_id, const char *meta_device_id,
    struct s3_result *res);

/* GET key, writing the body to fd from offset 0 (pwrite); at most max bytes. */
int s3_get(struct s3_remote *r, const struct s3_creds *c, const char *key, int fd,
    uint64_t max, struct s3_result *res);

int s3_head(struct s3_remote *r, const struct s3_creds *c, const char *key,
    struct s3_result *res);

int s3_delete(struct s3_remote *r, const struct s3_creds *c, const char *key,
    struct s3_result *res);

/* One object of a listing. */
struct s3_object {
	char key[S3_KEY_MAX];
	uint64_t size;
	int64_t last_modified;
	char etag[S3_ETAG_MAX];
};

/*
 * ListObjectsV2 under prefix, all pages; cb is called once per object, in
 * the server's (lexicographic) order; a non-zero return from cb stops the
 * listing.  max_objects bounds the total (hostile servers).
 */
typedef int (*s3_list_cb)(void *arg, const struct s3_object *o);
int s3_list(struct s3_remote *r, const struct s3_creds *c, const char *prefix,
    size_t max_objects, s3_list_cb cb, void *arg, struct s3_result *res);

/* Multipart upload.  Parts are numbered from 1; each but the last >= 5 MiB. */
int s3_mpu_create(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *meta_content_id, const char *meta_device_id, char upload_id[S3_ID_MAX],
    struct s3_result *res);
int s3_mpu_part(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *upload_id, unsigned partno, int fd, uint64_t off, uint64_t len,
    const char *sha256_hex, struct s3_result *res);	/* res->etag: the part's */
/*
 * Upload parts 1..N of fd bytes [0, size) (pread), part_size bytes each but
 * the last, with up to inflight (1..S3_MPU_INFLIGHT_MAX) parts in flight at
 * once, each on its own connection, all driven from the calling thread.
 * sign: each part's SHA-256 is computed (in steps, while the parts before it
 * are in flight) and signed; 0: UNSIGNED-PAYLOAD.  Memory stays constant:
 * the bytes go from the fd to libcurl's upload buffers.  etags[i] gets part
 * i+1's ETag.  The first failure stops every part in flight and is what res
 * says ("part N: ..."); the caller then aborts the upload.
 */
#define S3_MPU_INFLIGHT_MAX	4
#define S3_MPU_INFLIGHT_DEFAULT	4	/* what the uploader uses */
int s3_mpu_parts(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *upload_id, int fd, uint64_t size, uint64_t part_size, unsigned inflight,
    int sign, char (*etags)[S3_ETAG_MAX], struct s3_result *res);
/*
 * Complete with parts 1..nparts whose ETags are etags[i].  cond/etag as for
 * s3_put, sent on the complete request (servers that ignore it are caught by
 * the caller's HEAD).  RGW's reply carries no ETag: res->etag may be "".
 */
int s3_mpu_complete(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *upload_id, char (*etags)[S3_ETAG_MAX], unsigned nparts, enum s3_cond cond,
    const char *etag, struct s3_result *res);
int s3_mpu_abort(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *upload_id, struct s3_result *res);

/* ListMultipartUploads under prefix: cb(arg, key, upload_id, initiated unix seconds). */
typedef int (*s3_uploads_cb)(void *arg, const char *key, const char *upload_id,
    int64_t initiated);
int s3_mpu_list(struct s3_remote *r, const struct s3_creds *c, const char *prefix,
    size_t max, s3_uploads_cb cb, void *arg, struct s3_result *res);

/* Every s3_* request function returns 0 if an HTTP reply was read and classified
 * (see res->outcome), -1 only for a local error (res->error says which). */

/*
 * Every request has a total deadline: S3_DEADLINE_BASE_MS for connecting and
 * the server's own time, plus its bytes (sent, and the most it may receive)
 * at S3_FLOOR_BPS, a slow uplink's rate (a part counts the bytes of all the
 * parts in flight, which share the link; a complete S3_COMPLETE_PART_MS per
 * part); a GET's deadline narrows to its Content-Length once that is known.
 * A listing gets 46 s, a 64 MiB PUT 18 min.  A server that keeps a transfer
 * just above libcurl's stall limit cannot hold the one uploader for longer:
 * the request ends S3_RETRY (S3_UNKNOWN for a write) with "timed out".
 */
#define S3_DEADLINE_BASE_MS	30000ull
#define S3_FLOOR_BPS		(64ull << 10)
#define S3_COMPLETE_PART_MS	250ull

#endif
