/*
 * Pure helpers of the S3 client (s3util.h).  Everything here works on
 * strings the caller holds; nothing allocates, nothing touches the network,
 * the filesystem or the time zone (timegm may read /etc/localtime, which the
 * sandbox forbids, so dates are converted by hand).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "s3util.h"

#define IS_DIGIT(c)	((c) >= '0' && (c) <= '9')
#define IS_LOWER(c)	((c) >= 'a' && (c) <= 'z')
#define IS_UPPER(c)	((c) >= 'A' && (c) <= 'Z')
#define IS_ALNUM(c)	(IS_DIGIT(c) || IS_LOWER(c) || IS_UPPER(c))

int
s3_endpoint_parse(const char *url, struct s3_endpoint *ep)
{
	const char *p, *h, *he;
	unsigned char a6[16];
	size_t hlen, i;

	memset(ep, 0, sizeof(*ep));
	if (strncmp(url, "https://", 8) == 0) {
		ep->tls = 1;
		p = url + 8;
	} else if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else
		return -1;
	if (*p == '[') {
		h = ++p;
		if ((he = strchr(h, ']')) == NULL)
			return -1;
		p = he + 1;
		ep->v6 = ep->literal = 1;
	} else {
		h = p;
		while (IS_ALNUM(*p) || *p == '-' || *p == '.')
			p++;
		he = p;
	}
	hlen = (size_t)(he - h);
	if (hlen == 0 || hlen >= sizeof(ep->host))
		return -1;
	for (i = 0; i < hlen; i++)
		ep->host[i] = IS_UPPER(h[i]) ? (char)(h[i] - 'A' + 'a') : h[i];
	ep->host[hlen] = '\0';
	if (ep->v6 && inet_pton(AF_INET6, ep->host, a6) != 1)
		return -1;
	if (!ep->v6) {
		struct in_addr a4;

		if (ep->host[0] == '.' || ep->host[0] == '-' || ep->host[hlen - 1] == '.' ||
		    strstr(ep->host, "..") != NULL)
			return -1;
		ep->literal = inet_pton(AF_INET, ep->host, &a4) == 1;
	}
	ep->port = ep->tls ? 443 : 80;
	if (*p == ':') {
		unsigned long v = 0;

		if (!IS_DIGIT(p[1]))
			return -1;
		for (p++, i = 0; IS_DIGIT(*p); p++, i++) {
			if (i >= 5)
				return -1;
			v = v * 10 + (unsigned long)(*p - '0');
		}
		if (v == 0 || v > 65535)
			return -1;
		ep->port = (unsigned)v;
	}
	if (*p == '/')
		p++;
	return *p == '\0' ? 0 : -1;
}

int
s3_bucket_valid(const char *b, int path_style)
{
	size_t i, n = strlen(b);

	if (n < 3 || n > 63 || !(IS_LOWER(b[0]) || IS_DIGIT(b[0])) ||
	    !(IS_LOWER(b[n - 1]) || IS_DIGIT(b[n - 1])))
		return 0;
	for (i = 0; i < n; i++) {
		if (IS_LOWER(b[i]) || IS_DIGIT(b[i]) || b[i] == '-')
			continue;
		/* Dots break TLS wildcard certificates in virtual-host style. */
		if (b[i] == '.' && path_style && b[i + 1] != '.')
			continue;
		return 0;
	}
	return 1;
}

int
s3_key_valid(const char *key)
{
	const char *p;

	if (strlen(key) >= S3_KEY_MAX || key[0] == '/' || strstr(key, "//") != NULL ||
	    strstr(key, "..") != NULL)
		return 0;
	for (p = key; *p != '\0'; p++)
		if (!IS_ALNUM(*p) && *p != '.' && *p != '_' && *p != '/' && *p != '-')
			return 0;
	return 1;
}

int
s3_uri_encode(const char *s, int keep_slash, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	unsigned char c;

	for (; (c = (unsigned char)*s) != '\0'; s++) {
		if (IS_ALNUM(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
		    (keep_slash && c == '/')) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= outlen)
				return -1;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

static int
qparam_cmp(const void *a, const void *b)
{
	const struct s3_qparam *x = a, *y = b;
	int c;

	/* Names are unreserved (checked), so raw order is the encoded order SigV4 wants. */
	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	return strcmp(x->value, y->value);
}

int
s3_query_build(struct s3_qparam *p, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		const char *c;

		if (p[i].name == NULL || p[i].name[0] == '\0' || p[i].value == NULL)
			return -1;
		for (c = p[i].name; *c != '\0'; c++)
			if (!IS_ALNUM(*c) && *c != '-' && *c != '.' && *c != '_' && *c != '~')
				return -1;
	}
	if (n > 0)
		qsort(p, n, sizeof(*p), qparam_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = '&';
		}
		if (s3_uri_encode(p[i].name, 0, out + o, outlen - o) == -1)
			return -1;
		o += strlen(out + o);
		if (o + 1 >= outlen)
			return -1;
		out[o++] = '=';
		if (s3_uri_encode(p[i].value, 0, out + o, outlen - o) == -1)
			return -1;
		o += strlen(out + o);
	}
	out[o] = '\0';
	return 0;
}

int
s3_request_host(const struct s3_endpoint *ep, const char *bucket, int path_style,
    char *out, size_t outlen)
{
	int n;

	if (path_style)
		n = snprintf(out, outlen, "%s", ep->host);
	else if (ep->literal)
		return -1;
	else
		n = snprintf(out, outlen, "%s.%s", bucket, ep->host);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int
s3_url_build(const struct s3_endpoint *ep, const char *bucket, int path_style,
    const char *key, const char *query, char *out, size_t outlen)
{
	char host[320], ekey[S3_KEY_MAX * 3 + 1], port[8] = "";
	int n;

	if (s3_request_host(ep, bucket, path_style, host, sizeof(host)) == -1 ||
	    s3_uri_encode(key, 1, ekey, sizeof(ekey)) == -1)
		return -1;
	/* A default port stays implicit, so that Host and the signed host agree. */
	if (ep->port != (ep->tls ? 443u : 80u))
		snprintf(port, sizeof(port), ":%u", ep->port);
	n = snprintf(out, outlen, "%s://%s%s%s%s/%s%s%s%s%s",
	    ep->tls ? "https" : "http", ep->v6 ? "[" : "", host, ep->v6 ? "]" : "", port,
	    path_style ? bucket : "", path_style && key[0] != '\0' ? "/" : "", ekey,
	    query != NULL && query[0] != '\0' ? "?" : "", query != NULL ? query : "");
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Days since 1970-01-01, proleptic Gregorian, for years 1..9999. */
static int64_t
days_since_epoch(int y, int m, int d)
{
	static const int before[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };
	int64_t yy = y - 1, days;

	days = yy * 365 + yy / 4 - yy / 100 + yy / 400 + before[m - 1] + d - 1;
	if (m > 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		days++;
	return days - 719162;	/* days from 0001-01-01 to 1970-01-01 */
}

static int
two_digits(const char *s, int *v)
{
	if (!IS_DIGIT(s[0]) || !IS_DIGIT(s[1]))
		return -1;
	*v = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

int
s3_http_date_parse(const char *s, size_t len, int64_t *out)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int d, mo, y, yh, yl, h, mi, sec, i;

	/* "Sun, 06 Nov 1994 08:49:37 GMT": fixed width, 29 bytes. */
	if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
	    s[16] != ' ' || s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
		return -1;
	for (i = 0; i < 7; i++)
		if (memcmp(s, days + 3 * i, 3) == 0)
			break;
	if (i == 7)
		return -1;
	for (mo = 0; mo < 12; mo++)
		if (memcmp(s + 8, months + 3 * mo, 3) == 0)
			break;
	if (mo == 12 || two_digits(s + 5, &d) == -1 || two_digits(s + 12, &yh) == -1 ||
	    two_digits(s + 14, &yl) == -1 || two_digits(s + 17, &h) == -1 ||
	    two_digits(s + 20, &mi) == -1 || two_digits(s + 23, &sec) == -1)
		return -1;
	y = yh * 100 + yl;
	mo++;
	if (y < 1970 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -1;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	*out = days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	return 0;
}

int
s3_etag_unquote(const char *s, size_t len, char out[S3_ETAG_MAX])
{
	size_t i;

	out[0] = '\0';
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= S3_ETAG_MAX)
		return -1;
	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
			return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

int
s3_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned dgt;

		if (!IS_DIGIT(s[i]))
			return -1;
		dgt = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - dgt) / 10)
			return -1;
		v = v * 10 + dgt;
	}
	*out = v;
	return 0;
}

enum s3_outcome
s3_classify_http(long status, const char *code)
{
	if (code == NULL)
		code = "";
	if (status >= 200 && status <= 299)
		return S3_OK;
	if (status == 404)
		/* A missing bucket is configuration, not "no object yet". */
		return strcmp(code, "NoSuchBucket") == 0 ? S3_FAILED : S3_NOT_FOUND;
	if (status == 412)
		return S3_PRECONDITION;
	if (status == 401 || status == 403)
		return S3_AUTH;
	if (status == 400) {
		if (strcmp(code, "RequestTimeout") == 0)
			return S3_RETRY;
		if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "InvalidToken") == 0 ||
		    strcmp(code, "TokenRefreshRequired") == 0 ||
		    strcmp(code, "RequestTimeTooSkewed") == 0)
			return S3_AUTH;
		return S3_FAILED;
	}
	if (status == 408 || status == 429)
		return S3_RETRY;
	/* 409 OperationAborted: a concurrent operation on the key, "try again". */
	if (status == 409 && (strcmp(code, "OperationAborted") == 0 ||
	    strcmp(code, "ConditionalRequestConflict") == 0))
		return S3_RETRY;
	if (status >= 500 && status <= 599 && status != 501)
		return S3_RETRY;
	return S3_FAILED;
}

enum s3_outcome
s3_classify_curl(int curlcode)
{
	switch (curlcode) {
	case CURLE_OK:
		return S3_OK;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_SEND_FAIL_REWIND:
	case CURLE_AGAIN:
		return S3_RETRY;
	default:
		/* Certificate failures, our own aborts, anything unexpected. */
		return S3_FAILED;
	}
}

void
s3_printable(char *out, size_t outlen, const char *s, size_t len)
{
	size_t i;

	if (outlen == 0)
		return;
	for (i = 0; i < len && i + 1 < outlen; i++)
		out[i] = s[i] >= 0x20 && s[i] <= 0x7e ? s[i] : '?';
	out[i] = '\0';
}
