/*
 * The pure parts of the S3 client: URL and query building, header value
 * parsing, outcome classification.  No network, no libcurl calls, so the
 * unit tests link this file alone.
 */
#ifndef VS_S3UTIL_H
#define VS_S3UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "s3.h"

#define S3_URL_MAX	8192
#define S3_QUERY_MAX	6144
#define S3_SHA256_EMPTY	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_endpoint {
	int tls;		/* https */
	char host[254];		/* lower case; an IPv6 literal without brackets */
	unsigned port;		/* explicit or the scheme's default */
	int literal;		/* host is an IP address: nothing to resolve */
	int v6;			/* host is an IPv6 literal */
};

/* One query parameter; value "" is sent as "name=" (what SigV4 signs). */
struct s3_qparam {
	const char *name;
	const char *value;
};

/* "http(s)://host[:port]" with at most a trailing "/".  0, or -1 if malformed. */
int s3_endpoint_parse(const char *url, struct s3_endpoint *ep);

/* A bucket name S3 accepts; virtual-host buckets must also be DNS labels without dots. */
int s3_bucket_valid(const char *bucket, int path_style);

/*
 * An object key or prefix as the uploader forms them: [A-Za-z0-9._/-], no
 * leading '/', no "//", no "..", shorter than S3_KEY_MAX ("" is valid).
 */
int s3_key_valid(const char *key);

/* RFC 3986 encoding: unreserved bytes kept ('/' too if keep_slash).  -1 if it does not fit. */
int s3_uri_encode(const char *s, int keep_slash, char *out, size_t outlen);

/*
 * Sort p[] by encoded name (then value) and write "a=1&b=x%2Fy": libcurl
 * 7.88 signs the query exactly as written, and SigV4 wants it canonical.
 * Reorders p.  0, or -1 if it does not fit.
 */
int s3_query_build(struct s3_qparam *p, size_t n, char *out, size_t outlen);

/*
 * The request URL: path style "scheme://host:port/bucket/key", virtual host
 * "scheme://bucket.host:port/key".  key "" addresses the bucket.  query may
 * be NULL or "".  0, or -1 if it does not fit.
 */
int s3_url_build(const struct s3_endpoint *ep, const char *bucket, int path_style,
    const char *key, const char *query, char *out, size_t outlen);

/* The host name the requests go to ("bucket.host" in virtual-host style). */
int s3_request_host(const struct s3_endpoint *ep, const char *bucket, int path_style,
    char *out, size_t outlen);

/* RFC 7231 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") to unix seconds.  0 or -1. */
int s3_http_date_parse(const char *s, size_t len, int64_t *out);

/*
 * An ETag as S3 sends it ("\"abc-2\"", or bare) to its unquoted form:
 * printable ASCII without quotes, backslashes or spaces, 1..S3_ETAG_MAX-1
 * bytes.  0, or -1 (out set to "").
 */
int s3_etag_unquote(const char *s, size_t len, char out[S3_ETAG_MAX]);

/* A decimal uint64 with no sign, space or excess digits.  0 or -1. */
int s3_parse_u64(const char *s, size_t len, uint64_t *out);

/* What an HTTP reply means; code is the S3 error code from the body or "". */
enum s3_outcome s3_classify_http(long status, const char *code);

/* What a libcurl failure (a CURLcode, not CURLE_OK) means. */
enum s3_outcome s3_classify_curl(int curlcode);

/* Copy at most outlen-1 bytes of [s, s+len), anything outside 0x20..0x7e as '?'. */
void s3_printable(char *out, size_t outlen, const char *s, size_t len);

#endif
