/*
 * The S3 client (s3.h): libcurl 7.88 with CURLOPT_AWS_SIGV4, driven through
 * a multi handle of our own.
 *
 * Everything libcurl would otherwise set up lazily on the first request is
 * created in s3_remote_new(), before the sandbox closes: the multi handle
 * (its wakeup pipe), the easy handles, the pinned addresses.  Each request
 * then resets its easy handle and sets every option again, so no setting of
 * one request leaks into the next; the connection cache lives in the multi
 * handle and survives the reset.  Multipart parts go up several at once
 * (s3_mpu_parts), one easy handle and connection each, on the same multi
 * handle and the same single thread.
 *
 * libcurl 7.88's signer signs what it is given: the x-amz-content-sha256
 * header is ours to send, and the query string must already be canonical
 * (sorted, percent-encoded; s3_query_build).  Conditional ETags go out
 * unquoted, which is what RGW compares.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/evp.h>

#include "clock.h"
#include "hex.h"
#include "progress.h"
#include "s3.h"
#include "s3util.h"
#include "s3xml.h"

#define S3_CA_MAX	(8 * 1024 * 1024)
#define S3_MAX_ADDRS	8
#define S3_CONNECT_MS	10000L
#define S3_STALL_BPS	512L	/* below this ... */
#define S3_STALL_SECS	60L	/* ... for this long: the connection is dead */
#define S3_MAX_PARTS	10000
#define S3_EMPTY_PAGES	16	/* truncated pages in a row with no entry */
#define S3_HDR_LINE	8192	/* a session token is the longest header */
#define S3_DEFAULT_CA	"/etc/ssl/certs/ca-certificates.crt"

struct s3_remote {
	struct s3_remote_cfg cfg;
	struct s3_endpoint ep;
	char sigv4[96];
	char protocols[8];
	struct curl_slist *resolve;
	CURLM *multi;
	CURL *easy;
	CURL *part_easy[S3_MPU_INFLIGHT_MAX];	/* s3_mpu_parts: one per part in flight */
	unsigned page_size;
};

/* One request in flight. */
struct s3_req {
	struct s3_remote *r;
	CURL *h;		/* r->easy, or one of r->part_easy */
	const struct s3_creds *c;
	struct s3_result *res;
	const char *method;
	char url[S3_URL_MAX];
	struct curl_slist *hdrs;
	int oom;
	/* Request body: from in_fd at in_off, or from in_mem. */
	int in_fd;
	const char *in_mem;
	uint64_t in_off, in_len, in_pos;
	int in_errno, in_short;
	/* Response body: to out_fd on 2xx, else (or if collect) into body. */
	int out_fd;
	uint64_t out_max, out_pos;
	int out_errno, out_over;
	char *body;
	size_t blen, bcap;
	int body_over;
	/* From the response headers. */
	long status;
	uint64_t clen;
	int have_clen;
	int hdr_end;		/* the blank line after the last status's headers came */
	/* The total deadline (s3.h), monotonic milliseconds. */
	unsigned share;		/* requests sharing the link with this one (parts): 0 = 1 */
	uint64_t extra_ms;	/* the server's own work beyond the bytes (complete) */
	uint64_t t0, deadline;
	int timed_out;
	CURLcode cc;		/* how the transfer ended */
	char errbuf[CURL_ERROR_SIZE];
};

static char *ca_blob;
static size_t ca_len;
static int s3_ready;

/* The time a request of this many bytes may take, all told (s3.h); at most a day. */
static uint64_t
budget_ms(uint64_t bytes)
{
	uint64_t ms = S3_DEADLINE_BASE_MS + bytes / S3_FLOOR_BPS * 1000 +
	    bytes % S3_FLOOR_BPS * 1000 / S3_FLOOR_BPS;

	return bytes / S3_FLOOR_BPS > 86400 || ms > 86400000 ? 86400000 : ms;
}

static void __attribute__((format(printf, 2, 3)))
seterr(struct s3_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

int
s3_global_init(const char *ca_file, char *err, size_t errlen)
{
	const curl_version_info_data *vi;
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	if (s3_ready)
		return 0;
	/*
	 * The signer's gmtime_r() loads glibc's zone state on first use, which
	 * opens /etc/localtime: do it now, while opening is still allowed.
	 */
	tzset();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed");
		return -1;
	}
	vi = curl_version_info(CURLVERSION_NOW);
	/* 7.85: CURLOPT_PROTOCOLS_STR, the newest option used here. */
	if (vi->version_num < 0x075500 || !(vi->features & CURL_VERSION_SSL)) {
		snprintf(err, errlen, "libcurl %s is too old or has no TLS", vi->version);
		return -1;
	}
	if (ca_file == NULL)
		ca_file = S3_DEFAULT_CA;
	if ((fd = open(ca_file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errlen, "%s: %s", ca_file, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > S3_CA_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %d bytes", ca_file,
		    S3_CA_MAX);
		close(fd);
		return -1;
	}
	if ((ca_blob = malloc((size_t)st.st_size)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, ca_blob + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size ||
	    memmem(ca_blob, got, "-----BEGIN CERTIFICATE-----", 27) == NULL) {
		snprintf(err, errlen, "%s: unreadable or no PEM certificate", ca_file);
		free(ca_blob);
		ca_blob = NULL;
		return -1;
	}
	ca_len = got;
	s3_ready = 1;
	return 0;
}

/* Resolve the request host now and pin every address for libcurl. */
static int
s3_pin(struct s3_remote *r, char *err, size_t errlen)
{
	char host[320], entry[320 + 16 + S3_MAX_ADDRS * (INET6_ADDRSTRLEN + 3)];
	char addrs[S3_MAX_ADDRS][INET6_ADDRSTRLEN];
	struct addrinfo hints, *ai, *a;
	size_t naddr = 0, i, o;
	int e;

	if (s3_request_host(&r->ep, r->cfg.bucket, r->cfg.path_style, host,
	    sizeof(host)) == -1) {
		snprintf(err, errlen, "virtual-host addressing needs a host name endpoint");
		return -1;
	}
	if (r->ep.literal)
		return 0;	/* libcurl converts literals itself, without DNS */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	if ((e = getaddrinfo(host, NULL, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(e));
		return -1;
	}
	for (a = ai; a != NULL && naddr < S3_MAX_ADDRS; a = a->ai_next) {
		const void *p;

		if (a->ai_family == AF_INET)
			p = &((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr;
		else if (a->ai_family == AF_INET6)
			p = &((struct sockaddr_in6 *)(void *)a->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(a->ai_family, p, addrs[naddr], sizeof(addrs[0])) == NULL)
			continue;
		for (i = 0; i < naddr; i++)
			if (strcmp(addrs[i], addrs[naddr]) == 0)
				break;
		if (i == naddr)
			naddr++;
	}
	freeaddrinfo(ai);
	if (naddr == 0) {
		snprintf(err, errlen, "%s: no IPv4 or IPv6 address", host);
		return -1;
	}
	o = (size_t)snprintf(entry, sizeof(entry), "%s:%u:", host, r->ep.port);
	for (i = 0; i < naddr; i++)
		o += (size_t)snprintf(entry + o, sizeof(entry) - o,
		    strchr(addrs[i], ':') != NULL ? "%s[%s]" : "%s%s", i ? "," : "", addrs[i]);
	if (o >= sizeof(entry) || (r->resolve = curl_slist_append(NULL, entry)) == NULL) {
		snprintf(err, errlen, "%s: cannot pin its addresses", host);
		return -1;
	}
	return 0;
}

struct s3_remote *
s3_remote_new(const struct s3_remote_cfg *cfg, char *err, size_t errlen)
{
	struct s3_remote *r;
	const char *p;
	unsigned i;

	if (!s3_ready) {
		snprintf(err, errlen, "s3_global_init not called");
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->cfg = *cfg;
	r->cfg.endpoint[sizeof(r->cfg.endpoint) - 1] = '\0';
	r->cfg.region[sizeof(r->cfg.region) - 1] = '\0';
	r->cfg.bucket[sizeof(r->cfg.bucket) - 1] = '\0';
	if (s3_endpoint_parse(r->cfg.endpoint, &r->ep) == -1) {
		snprintf(err, errlen, "endpoint is not http(s)://host[:port]");
		goto fail;
	}
	for (p = r->cfg.region; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			break;
	if (r->cfg.region[0] == '\0' || *p != '\0') {
		snprintf(err, errlen, "region is not [a-z0-9-]+");
		goto fail;
	}
	if (!s3_bucket_valid(r->cfg.bucket, r->cfg.path_style)) {
		snprintf(err, errlen, "bucket name not valid%s",
		    r->cfg.path_style ? "" : " for virtual-host addressing");
		goto fail;
	}
	snprintf(r->sigv4, sizeof(r->sigv4), "aws:amz:%s:s3", r->cfg.region);
	snprintf(r->protocols, sizeof(r->protocols), "%s", r->ep.tls ? "https" : "http");
	if (s3_pin(r, err, errlen) == -1)
		goto fail;
	if ((r->multi = curl_multi_init()) == NULL || (r->easy = curl_easy_init()) == NULL ||
	    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK) {
		snprintf(err, errlen, "cannot create curl handles");
		goto fail;
	}
	for (i = 0; i < S3_MPU_INFLIGHT_MAX; i++)
		if ((r->part_easy[i] = curl_easy_init()) == NULL ||
		    curl_easy_setopt(r->part_easy[i], CURLOPT_NOSIGNAL, 1L) != CURLE_OK) {
			snprintf(err, errlen, "cannot create curl handles");
			goto fail;
		}
	return r;
fail:
	s3_remote_free(r);
	return NULL;
}

void
s3_remote_free(struct s3_remote *r)
{
	unsigned i;

	if (r == NULL)
		return;
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	for (i = 0; i < S3_MPU_INFLIGHT_MAX; i++)
		if (r->part_easy[i] != NULL)
			curl_easy_cleanup(r->part_easy[i]);
	if (r->multi != NULL)
		curl_multi_cleanup(r->multi);
	curl_slist_free_all(r->resolve);
	free(r);
}

void
s3_remote_set_page_size(struct s3_remote *r, unsigned n)
{
	r->page_size = n;
}

/* ---- callbacks ----------------------------------------------------------- */

static int
hdr_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

/* x-amz-meta-*: values we wrote ourselves, so [A-Za-z0-9._-] and short. */
static int
meta_ok(const char *v, size_t len)
{
	size_t i;

	if (len >= 80)
		return 0;
	for (i = 0; i < len; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		    (v[i] >= '0' && v[i] <= '9') || v[i] == '.' || v[i] == '_' || v[i] == '-'))
			return 0;
	return 1;
}

static void
meta_copy(char out[80], const char *v, size_t len)
{
	out[0] = '\0';
	if (meta_ok(v, len)) {
		memcpy(out, v, len);
		out[len] = '\0';
	}
}

static size_t
s3_header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_req *q = arg;
	struct s3_result *res = q->res;
	size_t len = size * nitems, total = len, nlen;
	const char *v;

	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len >= 10 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new status line (after 100 Continue, too): forget earlier headers. */
		const char *sp = memchr(buf, ' ', len);

		q->status = 0;
		if (sp != NULL && (size_t)(sp - buf) + 4 <= len && sp[1] >= '1' && sp[1] <= '5' &&
		    sp[2] >= '0' && sp[2] <= '9' && sp[3] >= '0' && sp[3] <= '9')
			q->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
		res->etag[0] = res->content_id[0] = res->device_id[0] = '\0';
		res->last_modified = 0;
		q->have_clen = 0;
		q->hdr_end = 0;
		return total;
	}
	if (len == 0) {
		q->hdr_end = 1;
		/* End of headers: refuse a body that cannot fit before it starts. */
		if (q->out_fd >= 0 && q->status >= 200 && q->status <= 299 && q->have_clen) {
			if (q->clen > q->out_max) {
				q->out_over = 1;
				return 0;
			}
			/* A download's time is its own size's, not its bound's. */
			if (q->t0 + budget_ms(q->clen) < q->deadline)
				q->deadline = q->t0 + budget_ms(q->clen);
		}
		return total;
	}
	if ((v = memchr(buf, ':', len)) == NULL)
		return total;
	nlen = (size_t)(v - buf);
	for (v++; v < buf + len && (*v == ' ' || *v == '\t'); v++)
		;
	len -= (size_t)(v - buf);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (hdr_is(buf, nlen, "etag"))
		(void)s3_etag_unquote(v, len, res->etag);
	else if (hdr_is(buf, nlen, "content-length"))
		q->have_clen = s3_parse_u64(v, len, &q->clen) == 0;
	else if (hdr_is(buf, nlen, "last-modified")) {
		if (s3_http_date_parse(v, len, &res->last_modified) == -1)
			res->last_modified = 0;
	} else if (hdr_is(buf, nlen, "x-amz-meta-content-id"))
		meta_copy(res->content_id, v, len);
	else if (hdr_is(buf, nlen, "x-amz-meta-device-id"))
		meta_copy(res->device_id, v, len);
	return total;
}

static size_t
s3_write_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_req *q = arg;
	size_t len = size * nitems, done = 0;

	if (q->out_fd >= 0 && q->status >= 200 && q->status <= 299) {
		/* libcurl's own limit was set from the bound; this one is the size's. */
		if (mono_ms() > q->deadline) {
			q->timed_out = 1;
			return 0;
		}
		if (len > q->out_max - q->out_pos) {
			q->out_over = 1;
			return 0;
		}
		while (done < len) {
			ssize_t n = pwrite(q->out_fd, buf + done, len - done,
			    (off_t)(q->out_pos + done));

			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				q->out_errno = n == 0 ? EIO : errno;
				return 0;
			}
			done += (size_t)n;
		}
		q->out_pos += len;
		return len;
	}
	/* Anything else is a document for s3xml, which caps it anyway. */
	if (len > S3XML_MAX_DOC - q->blen) {
		q->body_over = 1;
		return 0;
	}
	if (q->blen + len > q->bcap) {
		size_t ncap = q->bcap ? q->bcap : 16384;
		char *nb;

		while (ncap < q->blen + len)
			ncap *= 2;
		if ((nb = realloc(q->body, ncap)) == NULL) {
			q->oom = 1;
			return 0;
		}
		q->body = nb;
		q->bcap = ncap;
	}
	memcpy(q->body + q->blen, buf, len);
	q->blen += len;
	return len;
}

static size_t
s3_read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_req *q = arg;
	size_t want = size * nitems;
	ssize_t n;

	if (want > q->in_len - q->in_pos)
		want = (size_t)(q->in_len - q->in_pos);
	if (want == 0)
		return 0;
	if (q->in_mem != NULL) {
		memcpy(buf, q->in_mem + q->in_pos, want);
		q->in_pos += want;
		return want;
	}
	do
		n = pread(q->in_fd, buf, want, (off_t)(q->in_off + q->in_pos));
	while (n == -1 && errno == EINTR);
	if (n <= 0) {
		/* The Content-Length is already on the wire: a short source is fatal. */
		if (n == 0)
			q->in_short = 1;
		else
			q->in_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	q->in_pos += (uint64_t)n;
	progress_add((uint64_t)n);
	return (size_t)n;
}

/* libcurl rewinds when it resends on a connection that turned out dead. */
static int
s3_seek_cb(void *arg, curl_off_t off, int origin)
{
	struct s3_req *q = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > q->in_len)
		return CURL_SEEKFUNC_FAIL;
	q->in_pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ---- one request --------------------------------------------------------- */

static void __attribute__((format(printf, 2, 3)))
hdr_add(struct s3_req *q, const char *fmt, ...)
{
	char line[S3_HDR_LINE];
	struct curl_slist *n;
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(line) ||
	    (n = curl_slist_append(q->hdrs, line)) == NULL)
		q->oom = 1;
	else
		q->hdrs = n;
	explicit_bzero(line, sizeof(line));
}

static void
hdrs_free(struct s3_req *q)
{
	struct curl_slist *s;

	/* The token travels in a header: wipe our copies (libcurl's are its own). */
	for (s = q->hdrs; s != NULL; s = s->next)
		explicit_bzero(s->data, strlen(s->data));
	curl_slist_free_all(q->hdrs);
	q->hdrs = NULL;
}

static void
req_init(struct s3_req *q, struct s3_remote *r, const struct s3_creds *c,
    struct s3_result *res, const char *method)
{
	memset(q, 0, sizeof(*q));
	memset(res, 0, sizeof(*res));
	res->outcome = S3_FAILED;
	q->r = r;
	q->c = c;
	q->res = res;
	q->method = method;
	q->h = r->easy;
	q->in_fd = q->out_fd = -1;
}

static void
req_done(struct s3_req *q)
{
	hdrs_free(q);
	free(q->body);
	q->body = NULL;
}

/* Overwrite every occurrence of s in buf: an error line never carries a credential. */
static void
redact(char *buf, const char *s)
{
	size_t n;
	char *p;

	if (s == NULL || (n = strlen(s)) < 4)
		return;
	while ((p = strstr(buf, s)) != NULL)
		memset(p, '*', n);
}

/* The common headers: payload hash, session token. */
static int
req_auth_headers(struct s3_req *q, const char *sha256_hex)
{
	const char *t = q->c->token;

	hdr_add(q, "x-amz-content-sha256: %s", sha256_hex ? sha256_hex : "UNSIGNED-PAYLOAD");
	if (t != NULL && t[0] != '\0') {
		for (; *t != '\0'; t++)
			if (*t <= 0x20 || *t >= 0x7f)
				return -1;
		hdr_add(q, "x-amz-security-token: %s", q->c->token);
	}
	return 0;
}

#define SET(opt, val)	(bad |= curl_easy_setopt(h, opt, val) != CURLE_OK)

static int
req_setopts(struct s3_req *q)
{
	struct s3_remote *r = q->r;
	struct curl_blob blob = { ca_blob, ca_len, CURL_BLOB_NOCOPY };
	CURL *h = q->h;
	int bad = 0;
	uint64_t budget;

	/*
	 * The body at the floor rate, as if alone on the link (parts in flight
	 * share it), and the most a reply may bring: a download's bound, else
	 * a document's.
	 */
	budget = budget_ms(q->in_len * (q->share ? q->share : 1) +
	    (q->out_fd >= 0 ? q->out_max : S3XML_MAX_DOC)) + q->extra_ms;
	q->t0 = mono_ms();
	q->deadline = q->t0 + budget;
	curl_easy_reset(h);
	SET(CURLOPT_URL, q->url);
	SET(CURLOPT_PROTOCOLS_STR, r->protocols);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PATH_AS_IS, 1L);		/* the signed path is the sent path */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROXY, "");			/* no *_proxy from the environment */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	if (r->resolve != NULL)
		SET(CURLOPT_RESOLVE, r->resolve);
	/* A reset restores the compiled-in CA path: no file may be named after the sandbox. */
	SET(CURLOPT_CAINFO, NULL);
	SET(CURLOPT_CAPATH, NULL);
	SET(CURLOPT_CAINFO_BLOB, &blob);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_CONNECTTIMEOUT_MS, S3_CONNECT_MS);
	SET(CURLOPT_LOW_SPEED_LIMIT, S3_STALL_BPS);
	SET(CURLOPT_LOW_SPEED_TIME, S3_STALL_SECS);
	SET(CURLOPT_TIMEOUT_MS, (long)budget);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 30L);
	SET(CURLOPT_TCP_KEEPINTVL, 15L);
	SET(CURLOPT_BUFFERSIZE, 256L * 1024);
	SET(CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	SET(CURLOPT_ERRORBUFFER, q->errbuf);
	SET(CURLOPT_AWS_SIGV4, r->sigv4);
	SET(CURLOPT_USERNAME, q->c->access_key_id);
	SET(CURLOPT_PASSWORD, q->c->secret);
	SET(CURLOPT_HTTPHEADER, q->hdrs);
	SET(CURLOPT_HEADERFUNCTION, s3_header_cb);
	SET(CURLOPT_HEADERDATA, q);
	SET(CURLOPT_WRITEFUNCTION, s3_write_cb);
	SET(CURLOPT_WRITEDATA, q);
	if (strcmp(q->method, "HEAD") == 0)
		SET(CURLOPT_NOBODY, 1L);
	else if (strcmp(q->method, "DELETE") == 0)
		SET(CURLOPT_CUSTOMREQUEST, "DELETE");
	else if (strcmp(q->method, "PUT") == 0 || strcmp(q->method, "POST") == 0) {
		if (q->method[1] == 'U') {
			SET(CURLOPT_UPLOAD, 1L);
			SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->in_len);
		} else {
			SET(CURLOPT_POST, 1L);
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->in_len);
		}
		SET(CURLOPT_READFUNCTION, s3_read_cb);
		SET(CURLOPT_READDATA, q);
		SET(CURLOPT_SEEKFUNCTION, s3_seek_cb);
		SET(CURLOPT_SEEKDATA, q);
	} else
		SET(CURLOPT_HTTPGET, 1L);
	return bad ? -1 : 0;
}

#undef SET

/* Run the transfer of q->h to completion on our multi handle. */
static CURLcode
req_run(struct s3_req *q)
{
	struct s3_remote *r = q->r;
	CURLcode cc = CURLE_FAILED_INIT;
	CURLMsg *m;
	int running = 1, left;

	if (curl_multi_add_handle(r->multi, q->h) != CURLM_OK)
		return cc;
	while (running) {
		if (curl_multi_perform(r->multi, &running) != CURLM_OK)
			break;
		if (running && curl_multi_poll(r->multi, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
	}
	while ((m = curl_multi_info_read(r->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE && m->easy_handle == q->h)
			cc = m->data.result;
	curl_multi_remove_handle(r->multi, q->h);
	return cc;
}

/* Set every option of q on its handle.  0, or -1 (the handle reset, res says so). */
static int
req_begin(struct s3_req *q)
{
	if (q->oom || req_setopts(q) == -1) {
		curl_easy_reset(q->h);
		(void)curl_easy_setopt(q->h, CURLOPT_NOSIGNAL, 1L);
		seterr(q->res, "cannot set up the request");
		return -1;
	}
	return 0;
}

/*
 * After q's transfer ended with cc (its handle off the multi handle):
 * classify the reply into q->res.  0 if a reply was classified, -1 for a
 * local failure (our fd, memory).
 */
static int
req_finish(struct s3_req *q, CURLcode cc)
{
	struct s3_result *res = q->res;
	struct s3xml_error xe;
	long st = 0;
	int rc = 0;

	/* Unhook our buffers and the password from the handle at once. */
	curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_reset(q->h);
	(void)curl_easy_setopt(q->h, CURLOPT_NOSIGNAL, 1L);
	res->http_status = st;
	res->outcome = S3_FAILED;
	q->cc = cc;
	if (q->in_errno != 0 || q->in_short) {
		seterr(res, "reading the upload source: %s",
		    q->in_short ? "shorter than its length" : strerror(q->in_errno));
		rc = -1;
	} else if (q->out_errno != 0) {
		seterr(res, "writing the download: %s", strerror(q->out_errno));
		rc = -1;
	} else if (q->oom) {
		seterr(res, "out of memory");
		rc = -1;
	} else if (q->out_over) {
		seterr(res, "object larger than %llu bytes", (unsigned long long)q->out_max);
	} else if (q->timed_out) {
		res->outcome = S3_RETRY;
		seterr(res, "timed out: the download took longer than its %llu s deadline",
		    (unsigned long long)((q->deadline - q->t0) / 1000));
	} else if (q->body_over) {
		res->outcome = st >= 200 && st <= 299 ? S3_FAILED : s3_classify_http(st, "");
		seterr(res, "HTTP %ld with a reply body over %d bytes", st, S3XML_MAX_DOC);
	} else if (cc != CURLE_OK) {
		res->outcome = s3_classify_curl(cc);
		seterr(res, "%s", q->errbuf[0] != '\0' ? q->errbuf : curl_easy_strerror(cc));
	} else if (!q->hdr_end) {
		/*
		 * libcurl can end a HEAD "successfully" on a connection closed in
		 * the middle of its headers: then an ETag or content id we did not
		 * see says nothing about the object, and whose write it holds must
		 * not be concluded from it.
		 */
		res->outcome = S3_RETRY;
		seterr(res, "HTTP %ld: the reply's headers were cut off", st);
	} else {
		memset(&xe, 0, sizeof(xe));
		if ((st < 200 || st > 299) && q->blen > 0)
			(void)s3xml_error(q->body, q->blen, &xe);
		res->outcome = s3_classify_http(st, xe.code);
		if (res->outcome != S3_OK && xe.code[0] != '\0')
			seterr(res, "HTTP %ld %s%s%s", st, xe.code, xe.message[0] ? ": " : "",
			    xe.message);
		else if (res->outcome != S3_OK)
			seterr(res, "HTTP %ld", st);
	}
	res->error[strcspn(res->error, "\r\n")] = '\0';
	redact(res->error, q->c->access_key_id);
	redact(res->error, q->c->secret);
	return rc;
}

/* Send q and classify the reply (req_finish). */
static int
req_perform(struct s3_req *q)
{
	if (req_begin(q) == -1)
		return -1;
	return req_finish(q, req_run(q));
}

/* ---- requests ------------------------------------------------------------ */

static int
key_ok(const char *key, int empty_ok)
{
	return key != NULL && (empty_ok || key[0] != '\0') && s3_key_valid(key) &&
	    strlen(key) < S3_KEY_MAX;
}

static int
sha_ok(const char *h)
{
	size_t i;

	if (h == NULL)
		return 1;
	for (i = 0; i < 64; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return 0;
	return h[64] == '\0';
}

/* The URL of key with query parameters p[0..n). */
static int
req_url(struct s3_req *q, const char *key, struct s3_qparam *p, size_t n)
{
	char query[S3_QUERY_MAX];

	if (s3_query_build(p, n, query, sizeof(query)) == -1 ||
	    s3_url_build(&q->r->ep, q->r->cfg.bucket, q->r->cfg.path_style, key, query,
	    q->url, sizeof(q->url)) == -1) {
		seterr(q->res, "request URL too long");
		return -1;
	}
	return 0;
}

/* Conditional and metadata headers shared by PUT, create and complete. */
static int
req_cond_meta(struct s3_req *q, enum s3_cond cond, const char *etag, const char *cid,
    const char *did)
{
	char tmp[S3_ETAG_MAX];

	if (cond == S3_COND_IF_NONE_MATCH)
		hdr_add(q, "If-None-Match: *");
	else if (cond == S3_COND_IF_MATCH) {
		/* Unquoted: RGW compares the header's bytes with its bare ETag. */
		if (etag == NULL || s3_etag_unquote(etag, strlen(etag), tmp) == -1)
			return -1;
		hdr_add(q, "If-Match: %s", tmp);
	} else if (cond != S3_COND_NONE)
		return -1;
	if (cid != NULL && cid[0] != '\0') {
		if (!meta_ok(cid, strlen(cid)))
			return -1;
		hdr_add(q, "x-amz-meta-content-id: %s", cid);
	}
	if (did != NULL && did[0] != '\0') {
		if (!meta_ok(did, strlen(did)))
			return -1;
		hdr_add(q, "x-amz-meta-device-id: %s", did);
	}
	return 0;
}

static int
bad_args(struct s3_req *q, const char *what)
{
	seterr(q->res, "invalid %s", what);
	req_done(q);
	return -1;
}

/*
 * A write is proven only by a well-formed success, and refused only by a 4xx
 * or a 503.  Anything else, once the whole body went out, may or may not
 * have landed (a proxy's 200, a 500 after the commit, a reply cut off or
 * unreadable): S3_UNKNOWN, for the caller to settle with a HEAD.  A body
 * that did not go out whole was never stored: S3 commits a complete one.
 * reply_doc: a reply document is expected (complete), not an ETag header.
 */
static void
write_outcome(struct s3_req *q, struct s3_result *res, int reply_doc)
{
	char was[S3_ERR_MAX];
	long st = res->http_status;

	if (q->in_pos < q->in_len)
		return;
	if (res->outcome == S3_OK) {
		if (!reply_doc && res->etag[0] == '\0') {
			res->outcome = S3_UNKNOWN;
			seterr(res, "HTTP %ld without an ETag: the write is unconfirmed", st);
		} else if (!reply_doc && q->blen > 0) {
			res->outcome = S3_UNKNOWN;
			seterr(res, "HTTP %ld with a reply body: the write is unconfirmed", st);
		}
		return;
	}
	if ((st >= 400 && st <= 499) || st == 503)
		return;
	memcpy(was, res->error, sizeof(was));
	res->outcome = S3_UNKNOWN;
	seterr(res, "outcome unknown: %.*s", (int)sizeof(was) - 20, was);
}

int
s3_put(struct s3_remote *r, const struct s3_creds *c, const char *key, int fd,
    uint64_t off, uint64_t len, const char *sha256_hex, enum s3_cond cond,
    const char *etag, const char *meta_content_id, const char *meta_device_id,
    struct s3_result *res)
{
	struct s3_req q;
	int rc;

	req_init(&q, r, c, res, "PUT");
	if (!key_ok(key, 0) || fd < 0 || !sha_ok(sha256_hex) ||
	    len > (uint64_t)INT64_MAX || off > (uint64_t)INT64_MAX - len)
		return bad_args(&q, "PUT arguments");
	if (req_url(&q, key, NULL, 0) == -1 || req_auth_headers(&q, sha256_hex) == -1 ||
	    req_cond_meta(&q, cond, etag, meta_content_id, meta_device_id) == -1)
		return bad_args(&q, "PUT headers");
	hdr_add(&q, "Content-Type: application/octet-stream");
	q.in_fd = fd;
	q.in_off = off;
	q.in_len = len;
	rc = req_perform(&q);
	if (rc == 0 && res->outcome == S3_OK)
		res->size = len;
	if (rc == 0)
		write_outcome(&q, res, 0);
	req_done(&q);
	return rc;
}

int
s3_get(struct s3_remote *r, const struct s3_creds *c, const char *key, int fd,
    uint64_t max, struct s3_result *res)
{
	struct s3_req q;
	int rc;

	req_init(&q, r, c, res, "GET");
	if (!key_ok(key, 0) || fd < 0 || max > (uint64_t)INT64_MAX)
		return bad_args(&q, "GET arguments");
	if (req_url(&q, key, NULL, 0) == -1 || req_auth_headers(&q, S3_SHA256_EMPTY) == -1)
		return bad_args(&q, "GET headers");
	q.out_fd = fd;
	q.out_max = max;
	rc = req_perform(&q);
	if (rc == 0 && res->outcome == S3_OK) {
		res->size = q.out_pos;
		if (q.have_clen && q.clen != q.out_pos) {
			res->outcome = S3_RETRY;
			seterr(res, "body of %llu bytes, Content-Length %llu",
			    (unsigned long long)q.out_pos, (unsigned long long)q.clen);
		}
	}
	req_done(&q);
	return rc;
}

int
s3_head(struct s3_remote *r, const struct s3_creds *c, const char *key,
    struct s3_result *res)
{
	struct s3_req q;
	int rc;

	req_init(&q, r, c, res, "HEAD");
	if (!key_ok(key, 0))
		return bad_args(&q, "key");
	if (req_url(&q, key, NULL, 0) == -1 || req_auth_headers(&q, S3_SHA256_EMPTY) == -1)
		return bad_args(&q, "HEAD headers");
	rc = req_perform(&q);
	if (rc == 0 && res->outcome == S3_OK && q.have_clen)
		res->size = q.clen;
	req_done(&q);
	return rc;
}

/* DELETE key, with query p (abort) or without. */
static int
req_delete(struct s3_remote *r, const struct s3_creds *c, const char *key,
    struct s3_qparam *p, size_t n, struct s3_result *res)
{
	struct s3_req q;
	int rc;

	req_init(&q, r, c, res, "DELETE");
	if (!key_ok(key, 0))
		return bad_args(&q, "key");
	if (req_url(&q, key, p, n) == -1 || req_auth_headers(&q, S3_SHA256_EMPTY) == -1)
		return bad_args(&q, "DELETE headers");
	rc = req_perform(&q);
	req_done(&q);
	return rc;
}

int
s3_delete(struct s3_remote *r, const struct s3_creds *c, const char *key,
    struct s3_result *res)
{
	return req_delete(r, c, key, NULL, 0, res);
}

/* GET of the bucket with query p, for a listing: the body stays in q->body. */
static int
req_list_page(struct s3_req *q, struct s3_remote *r, const struct s3_creds *c,
    struct s3_qparam *p, size_t n, struct s3_result *res)
{
	req_init(q, r, c, res, "GET");
	if (req_url(q, "", p, n) == -1 || req_auth_headers(q, S3_SHA256_EMPTY) == -1)
		return bad_args(q, "listing");
	return req_perform(q);
}

struct list_ctx {
	const char *prefix;
	size_t plen, max, total;
	int over, outside, stopped;
	s3_list_cb ocb;
	s3_uploads_cb ucb;
	void *arg;
};

/* Count, bound and check one entry; 1 stops the walk. */
static int
list_entry(struct list_ctx *x, const char *key)
{
	if (strncmp(key, x->prefix, x->plen) != 0) {
		x->outside = 1;
		return 1;
	}
	if (x->total >= x->max) {
		x->over = 1;
		return 1;
	}
	x->total++;
	return 0;
}

static int
list_object(void *arg, const struct s3_object *o)
{
	struct list_ctx *x = arg;

	if (list_entry(x, o->key) != 0)
		return 1;
	return (x->stopped = x->ocb(x->arg, o) != 0);
}

static int
list_upload(void *arg, const char *key, const char *id, int64_t initiated)
{
	struct list_ctx *x = arg;

	if (list_entry(x, key) != 0)
		return 1;
	return (x->stopped = x->ucb(x->arg, key, id, initiated) != 0);
}

/*
 * After one page: 1 to fetch the next, 0 when done (res says how), after
 * checking that a hostile server cannot keep us paging forever.
 */
static int
list_next(struct list_ctx *x, int prc, const struct s3xml_page *pg, char *last,
    size_t lastlen, const char *next, int *empty, struct s3_result *res)
{
	if (prc == -1) {
		res->outcome = S3_FAILED;
		seterr(res, "malformed listing reply");
		return 0;
	}
	if (x->outside || x->over) {
		res->outcome = S3_FAILED;
		seterr(res, x->outside ? "listing returned a key outside the prefix" :
		    "listing has more than %zu entries", x->max);
		return 0;
	}
	if (x->stopped || !pg->truncated)
		return 0;
	*empty = pg->count == 0 ? *empty + 1 : 0;
	if (strcmp(next, last) == 0 || *empty > S3_EMPTY_PAGES || strlen(next) >= lastlen) {
		res->outcome = S3_FAILED;
		seterr(res, "listing does not advance");
		return 0;
	}
	memcpy(last, next, strlen(next) + 1);
	return 1;
}

int
s3_list(struct s3_remote *r, const struct s3_creds *c, const char *prefix,
    size_t max_objects, s3_list_cb cb, void *arg, struct s3_result *res)
{
	struct list_ctx x = { prefix, 0, max_objects, 0, 0, 0, 0, cb, NULL, arg };
	struct s3_qparam p[4];
	struct s3xml_page pg;
	struct s3_req q;
	char token[S3XML_TOKEN_MAX] = "", mk[16];
	int rc, prc, empty = 0, more;

	if (!key_ok(prefix, 1) || cb == NULL) {
		req_init(&q, r, c, res, "GET");
		return bad_args(&q, "listing arguments");
	}
	x.plen = strlen(prefix);
	snprintf(mk, sizeof(mk), "%u", r->page_size);
	do {
		size_t n = 0;

		p[n++] = (struct s3_qparam){ "list-type", "2" };
		p[n++] = (struct s3_qparam){ "prefix", prefix };
		if (token[0] != '\0')
			p[n++] = (struct s3_qparam){ "continuation-token", token };
		if (r->page_size != 0)
			p[n++] = (struct s3_qparam){ "max-keys", mk };
		if ((rc = req_list_page(&q, r, c, p, n, res)) != 0 || res->outcome != S3_OK) {
			req_done(&q);
			return rc;
		}
		prc = s3xml_list_objects(q.body, q.blen, &pg, list_object, &x);
		req_done(&q);
		more = list_next(&x, prc, &pg, token, sizeof(token), pg.token, &empty, res);
	} while (more);
	return 0;
}

int
s3_mpu_list(struct s3_remote *r, const struct s3_creds *c, const char *prefix,
    size_t max, s3_uploads_cb cb, void *arg, struct s3_result *res)
{
	struct list_ctx x = { prefix, 0, max, 0, 0, 0, 0, NULL, cb, arg };
	struct s3_qparam p[5];
	struct s3xml_page pg;
	struct s3_req q;
	/* Both markers in one string, so list_next can compare them at once. */
	char last[S3_KEY_MAX + S3_ID_MAX + 1] = "", next[sizeof(last)], mk[16];
	char kmark[S3_KEY_MAX] = "", imark[S3_ID_MAX] = "";
	int rc, prc, empty = 0, more;

	if (!key_ok(prefix, 1) || cb == NULL) {
		req_init(&q, r, c, res, "GET");
		return bad_args(&q, "listing arguments");
	}
	x.plen = strlen(prefix);
	snprintf(mk, sizeof(mk), "%u", r->page_size);
	do {
		size_t n = 0;

		p[n++] = (struct s3_qparam){ "uploads", "" };
		p[n++] = (struct s3_qparam){ "prefix", prefix };
		if (kmark[0] != '\0')
			p[n++] = (struct s3_qparam){ "key-marker", kmark };
		if (imark[0] != '\0')
			p[n++] = (struct s3_qparam){ "upload-id-marker", imark };
		if (r->page_size != 0)
			p[n++] = (struct s3_qparam){ "max-uploads", mk };
		if ((rc = req_list_page(&q, r, c, p, n, res)) != 0 || res->outcome != S3_OK) {
			req_done(&q);
			return rc;
		}
		prc = s3xml_list_uploads(q.body, q.blen, &pg, list_upload, &x);
		req_done(&q);
		snprintf(next, sizeof(next), "%s\n%s", pg.key_marker, pg.id_marker);
		more = list_next(&x, prc, &pg, last, sizeof(last), next, &empty, res);
		memcpy(kmark, pg.key_marker, sizeof(kmark));
		memcpy(imark, pg.id_marker, sizeof(imark));
	} while (more);
	return 0;
}

int
s3_mpu_create(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *meta_content_id, const char *meta_device_id, char upload_id[S3_ID_MAX],
    struct s3_result *res)
{
	struct s3_qparam p[1] = { { "uploads", "" } };
	struct s3_req q;
	int rc;

	upload_id[0] = '\0';
	req_init(&q, r, c, res, "POST");
	if (!key_ok(key, 0))
		return bad_args(&q, "key");
	if (req_url(&q, key, p, 1) == -1 || req_auth_headers(&q, S3_SHA256_EMPTY) == -1 ||
	    req_cond_meta(&q, S3_COND_NONE, NULL, meta_content_id, meta_device_id) == -1)
		return bad_args(&q, "multipart create headers");
	hdr_add(&q, "Content-Type: application/octet-stream");
	q.in_mem = "";
	rc = req_perform(&q);
	if (rc == 0 && res->outcome == S3_OK &&
	    s3xml_initiate(q.body, q.blen, upload_id) == -1) {
		res->outcome = S3_FAILED;
		seterr(res, "malformed InitiateMultipartUploadResult");
	}
	req_done(&q);
	return rc;
}

/* The request of one part upload, ready for req_begin; -1 (q done) if the arguments are bad. */
static int
part_req(struct s3_req *q, const char *key, const char *upload_id, unsigned partno, int fd,
    uint64_t off, uint64_t len, const char *sha256_hex)
{
	struct s3_qparam p[2];
	char num[16];

	if (!key_ok(key, 0) || upload_id == NULL || upload_id[0] == '\0' || partno < 1 ||
	    partno > S3_MAX_PARTS || fd < 0 || !sha_ok(sha256_hex) ||
	    len > (uint64_t)INT64_MAX || off > (uint64_t)INT64_MAX - len)
		return bad_args(q, "part arguments");
	snprintf(num, sizeof(num), "%u", partno);
	p[0] = (struct s3_qparam){ "partNumber", num };
	p[1] = (struct s3_qparam){ "uploadId", upload_id };
	if (req_url(q, key, p, 2) == -1 || req_auth_headers(q, sha256_hex) == -1)
		return bad_args(q, "part headers");
	q->in_fd = fd;
	q->in_off = off;
	q->in_len = len;
	return 0;
}

/* A part's reply classified OK must carry the part's ETag. */
static void
part_result(struct s3_result *res, uint64_t len)
{
	if (res->outcome != S3_OK)
		return;
	res->size = len;
	if (res->etag[0] == '\0') {
		res->outcome = S3_FAILED;
		seterr(res, "part upload reply without an ETag");
	}
}

int
s3_mpu_part(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *upload_id, unsigned partno, int fd, uint64_t off, uint64_t len,
    const char *sha256_hex, struct s3_result *res)
{
	struct s3_req q;
	int rc;

	req_init(&q, r, c, res, "PUT");
	if (part_req(&q, key, upload_id, partno, fd, off, len, sha256_hex) == -1)
		return -1;
	rc = req_perform(&q);
	if (rc == 0)
		part_result(res, len);
	req_done(&q);
	return rc;
}

/* ---- parts in parallel --------------------------------------------------- */

#define S3_HASH_STEP	(512u << 10)	/* hashed between two turns of the multi handle */

/* One part in flight on r->part_easy[slot]. */
struct part_slot {
	struct s3_req q;
	struct s3_result res;
	unsigned partno;	/* 0: free */
};

/* The SHA-256 of the next part to start, computed a step at a time. */
struct part_hash {
	EVP_MD_CTX *ctx;
	unsigned char *buf;
	unsigned partno;	/* the part being hashed */
	uint64_t off, len, done;
	int ready;		/* hex is partno's hash */
	char hex[65];
};

static int
part_hash_begin(struct part_hash *ph, unsigned partno, uint64_t off, uint64_t len)
{
	ph->partno = partno;
	ph->off = off;
	ph->len = len;
	ph->done = 0;
	ph->ready = 0;
	return EVP_DigestInit_ex(ph->ctx, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

/* Hash up to S3_HASH_STEP more bytes of the part.  0, or -1 with errno. */
static int
part_hash_step(struct part_hash *ph, int fd)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	uint64_t want = ph->len - ph->done;
	ssize_t n = 0;

	if (want > S3_HASH_STEP)
		want = S3_HASH_STEP;
	if (want > 0) {
		do
			n = pread(fd, ph->buf, (size_t)want, (off_t)(ph->off + ph->done));
		while (n == -1 && errno == EINTR);
		if (n <= 0) {
			if (n == 0)
				errno = EIO;	/* shorter than its length */
			return -1;
		}
		if (EVP_DigestUpdate(ph->ctx, ph->buf, (size_t)n) != 1) {
			errno = ENOMEM;
			return -1;
		}
		ph->done += (uint64_t)n;
	}
	if (ph->done == ph->len) {
		if (EVP_DigestFinal_ex(ph->ctx, md, &mdlen) != 1 || mdlen != 32) {
			errno = ENOMEM;
			return -1;
		}
		hex_encode(md, 32, ph->hex);
		ph->ready = 1;
	}
	return 0;
}

/* Take slot's transfer off the multi handle and classify it (cc: how it ended). */
static int
part_end(struct s3_remote *r, struct part_slot *sl, CURLcode cc)
{
	int rc;

	curl_multi_remove_handle(r->multi, sl->q.h);
	rc = req_finish(&sl->q, cc);
	if (rc == 0)
		part_result(&sl->res, sl->q.in_len);
	req_done(&sl->q);
	sl->partno = 0;
	return rc;
}

/* The first failure wins: part N's result, its number in the error line. */
static void
part_fail(struct s3_result *res, const struct s3_result *pr, unsigned partno)
{
	char line[S3_ERR_MAX];

	*res = *pr;
	if (res->outcome == S3_OK)
		res->outcome = S3_FAILED;
	snprintf(line, sizeof(line), "part %u: %.230s", partno, pr->error);
	memcpy(res->error, line, sizeof(res->error));
}

int
s3_mpu_parts(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *upload_id, int fd, uint64_t size, uint64_t part_size, unsigned inflight,
    int sign, char (*etags)[S3_ETAG_MAX], struct s3_result *res)
{
	struct part_slot *slots = NULL;
	struct part_hash ph;
	struct s3_result lres;
	unsigned nparts, next = 1, running = 0, completed = 0, i;
	int rc = 0, failed = 0, hashing;
	CURLMsg *m;
	int left, still;

	memset(res, 0, sizeof(*res));
	memset(&ph, 0, sizeof(ph));
	res->outcome = S3_FAILED;
	if (part_size == 0 || size == 0 || (size + part_size - 1) / part_size > S3_MAX_PARTS ||
	    etags == NULL || inflight < 1 || inflight > S3_MPU_INFLIGHT_MAX) {
		seterr(res, "invalid multipart arguments");
		return -1;
	}
	nparts = (unsigned)((size + part_size - 1) / part_size);
	if ((slots = calloc(inflight, sizeof(*slots))) == NULL ||
	    (sign && ((ph.ctx = EVP_MD_CTX_new()) == NULL ||
	    (ph.buf = malloc(S3_HASH_STEP)) == NULL ||
	    part_hash_begin(&ph, 1, 0, part_size < size ? part_size : size) != 0))) {
		seterr(res, "out of memory");
		rc = -1;
		goto out;
	}
	for (;;) {
		/* Start parts while a slot is free and the next part's hash is known. */
		for (i = 0; i < inflight && !failed && next <= nparts; i++) {
			struct part_slot *sl = &slots[i];
			uint64_t off = (uint64_t)(next - 1) * part_size;
			uint64_t len = size - off < part_size ? size - off : part_size;

			if (sl->partno != 0)
				continue;
			if (sign && !ph.ready)
				break;
			req_init(&sl->q, r, c, &sl->res, "PUT");
			sl->q.h = r->part_easy[i];
			sl->q.share = inflight;
			if (part_req(&sl->q, key, upload_id, next, fd, off, len,
			    sign ? ph.hex : NULL) == -1 || req_begin(&sl->q) == -1) {
				req_done(&sl->q);
				part_fail(res, &sl->res, next);
				rc = -1;
				failed = 1;
				break;
			}
			if (curl_multi_add_handle(r->multi, sl->q.h) != CURLM_OK) {
				(void)req_finish(&sl->q, CURLE_FAILED_INIT);
				req_done(&sl->q);
				part_fail(res, &sl->res, next);
				failed = 1;
				break;
			}
			sl->partno = next++;
			running++;
			if (sign && next <= nparts &&
			    part_hash_begin(&ph, next, off + len, size - (off + len) < part_size ?
			    size - (off + len) : part_size) != 0) {
				memset(&lres, 0, sizeof(lres));
				seterr(&lres, "out of memory");
				part_fail(res, &lres, next);
				rc = -1;
				failed = 1;
			}
		}
		if (running == 0 && (failed || next > nparts))
			break;
		/* Hash the next part while the ones in flight go out. */
		hashing = sign && !failed && next <= nparts && !ph.ready;
		if (hashing && part_hash_step(&ph, fd) != 0) {
			memset(&lres, 0, sizeof(lres));
			lres.outcome = S3_FAILED;
			seterr(&lres, "reading the upload source: %s", strerror(errno));
			part_fail(res, &lres, ph.partno);
			rc = -1;
			failed = 1;
		}
		if (running == 0)
			continue;
		if (curl_multi_perform(r->multi, &still) != CURLM_OK)
			break;
		while ((m = curl_multi_info_read(r->multi, &left)) != NULL) {
			if (m->msg != CURLMSG_DONE)
				continue;
			for (i = 0; i < inflight; i++)
				if (slots[i].partno != 0 && m->easy_handle == slots[i].q.h)
					break;
			if (i == inflight)
				continue;
			{
				struct part_slot *sl = &slots[i];
				unsigned pn = sl->partno;
				int prc = part_end(r, sl, m->data.result);

				running--;
				if (prc == 0 && sl->res.outcome == S3_OK) {
					memcpy(etags[pn - 1], sl->res.etag, S3_ETAG_MAX);
					completed++;
				} else if (!failed) {
					part_fail(res, &sl->res, pn);
					rc = prc;
					failed = 1;
				}
			}
		}
		if (failed)
			break;
		/* Wait for the sockets only when there is nothing to hash. */
		if (running > 0 && !hashing &&
		    curl_multi_poll(r->multi, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
	}
	if (!failed && completed != nparts) {
		seterr(res, "the multi handle failed");
		res->outcome = S3_RETRY;
		failed = 1;
	}
	/* A failure stops the parts still in flight: the caller aborts the upload. */
	for (i = 0; i < inflight; i++)
		if (slots[i].partno != 0)
			(void)part_end(r, &slots[i], CURLE_ABORTED_BY_CALLBACK);
	if (!failed) {
		res->outcome = S3_OK;
		res->http_status = 200;
		res->size = size;
	}
out:
	EVP_MD_CTX_free(ph.ctx);
	free(ph.buf);
	free(slots);
	return rc;
}

/* The CompleteMultipartUpload document; NULL if an ETag is unfit or memory is short. */
static char *
complete_body(char (*etags)[S3_ETAG_MAX], unsigned nparts, size_t *lenp)
{
	static const char head[] = "<CompleteMultipartUpload>", tail[] = "</CompleteMultipartUpload>";
	size_t cap = sizeof(head) + sizeof(tail) + (size_t)nparts * (S3_ETAG_MAX + 64), o;
	char tmp[S3_ETAG_MAX], *b;
	unsigned i;

	if ((b = malloc(cap)) == NULL)
		return NULL;
	o = (size_t)snprintf(b, cap, "%s", head);
	for (i = 0; i < nparts; i++) {
		if (s3_etag_unquote(etags[i], strnlen(etags[i], S3_ETAG_MAX), tmp) == -1 ||
		    strpbrk(tmp, "<>&") != NULL) {
			free(b);
			return NULL;
		}
		o += (size_t)snprintf(b + o, cap - o,
		    "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1, tmp);
	}
	o += (size_t)snprintf(b + o, cap - o, "%s", tail);
	*lenp = o;
	return b;
}

static void
sha256_hex(const char *buf, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned mdlen = 0;

	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		out[0] = '\0';
		return;
	}
	hex_encode(md, 32, out);
}

/* S3 may answer 200 and then report failure in the body (AWS docs: CompleteMultipartUpload). */
static void
complete_result(struct s3_req *q, struct s3_result *res)
{
	struct s3xml_error xe;

	if (s3xml_error(q->body, q->blen, &xe) == 0) {
		res->outcome = strcmp(xe.code, "InternalError") == 0 ||
		    strcmp(xe.code, "SlowDown") == 0 || strcmp(xe.code, "ServiceUnavailable") == 0 ?
		    S3_RETRY : s3_classify_http(400, xe.code);
		seterr(res, "HTTP %ld %s%s%s", res->http_status, xe.code,
		    xe.message[0] ? ": " : "", xe.message);
	} else if (s3xml_complete(q->body, q->blen, res->etag) == -1) {
		/* The object may well be there: only a HEAD can tell. */
		res->outcome = S3_UNKNOWN;
		seterr(res, "malformed CompleteMultipartUploadResult");
	}
}

int
s3_mpu_complete(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *upload_id, char (*etags)[S3_ETAG_MAX], unsigned nparts, enum s3_cond cond,
    const char *etag, struct s3_result *res)
{
	struct s3_qparam p[1] = { { "uploadId", upload_id } };
	struct s3_req q;
	char sha[65];
	char *body;
	size_t blen = 0;
	int rc;

	req_init(&q, r, c, res, "POST");
	if (!key_ok(key, 0) || upload_id == NULL || upload_id[0] == '\0' || nparts < 1 ||
	    nparts > S3_MAX_PARTS || etags == NULL)
		return bad_args(&q, "complete arguments");
	if ((body = complete_body(etags, nparts, &blen)) == NULL)
		return bad_args(&q, "part ETags");
	sha256_hex(body, blen, sha);
	if (sha[0] == '\0' || req_url(&q, key, p, 1) == -1 || req_auth_headers(&q, sha) == -1 ||
	    req_cond_meta(&q, cond, etag, NULL, NULL) == -1) {
		free(body);
		return bad_args(&q, "complete headers");
	}
	hdr_add(&q, "Content-Type: application/xml");
	q.in_mem = body;
	q.in_len = blen;
	/* Assembling the parts takes the server a while (AWS: minutes for large objects). */
	q.extra_ms = (uint64_t)nparts * S3_COMPLETE_PART_MS;
	rc = req_perform(&q);
	if (rc == 0 && res->outcome == S3_OK)
		complete_result(&q, res);
	if (rc == 0 && res->outcome != S3_UNKNOWN)
		write_outcome(&q, res, 1);
	free(body);
	req_done(&q);
	return rc;
}

int
s3_mpu_abort(struct s3_remote *r, const struct s3_creds *c, const char *key,
    const char *upload_id, struct s3_result *res)
{
	struct s3_qparam p[1] = { { "uploadId", upload_id } };

	if (upload_id == NULL || upload_id[0] == '\0') {
		struct s3_req q;

		req_init(&q, r, c, res, "DELETE");
		return bad_args(&q, "upload id");
	}
	return req_delete(r, c, key, p, 1, res);
}
