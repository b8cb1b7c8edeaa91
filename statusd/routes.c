/*
 * What statusd answers, and the checks every request passes first:
 *  - no request body (a read-only API has no use for one);
 *  - a Host header naming this listener (its address or localhost, with its
 *    port): a page on another origin that rebinds its DNS name to 127.0.0.1
 *    reaches the socket, but its requests carry its own name, and get 421;
 *  - GET or HEAD only (405);
 *  - a route from the table (404);
 *  - for every route but healthz, the bearer token of daemon.json, compared
 *    in constant time (401), unless StatusRequireAuth is off.
 * No CORS header is ever sent, so browsers keep other origins from reading.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statusd.h"

#define CT_JSON		"application/json"
#define CT_METRICS	"text/plain; version=0.0.4; charset=utf-8"

struct route {
	const char *path;	/* exact, or a prefix ending in '/' that takes one name */
	int auth;
	const char *ctype;
	unsigned (*exact)(char **body);
	unsigned (*named)(const char *name, char **body);
};

static const struct route routes[] = {
	{ "/v1/healthz", 0, CT_JSON, snap_healthz, NULL },
	{ "/v1/status", 1, CT_JSON, snap_status, NULL },
	{ "/v1/vaults", 1, CT_JSON, snap_vaults, NULL },
	{ "/v1/vaults/", 1, CT_JSON, NULL, snap_vault },
	{ "/metrics", 1, CT_METRICS, metrics_render, NULL },
};

/* Until the parent's configuration arrives, the token is required and matches nothing. */
static struct msg_statusd_config cfg = { .require_auth = 1 };
static char hosts[2][80];	/* the Host values this listener answers to */

void
routes_init(const char *listen_host, unsigned port)
{
	snprintf(hosts[0], sizeof(hosts[0]), "%s:%u", listen_host, port);
	snprintf(hosts[1], sizeof(hosts[1]), "localhost:%u", port);
}

void
routes_config(const struct msg_statusd_config *c)
{
	cfg = *c;
}

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned code, const char *ctype, const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result rv;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (code == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"vaultsync\"");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	rv = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	if (rv == MHD_YES)
		statusd_conn_answered(conn);
	return rv;
}

static enum MHD_Result
error(struct MHD_Connection *conn, unsigned code, const char *msg)
{
	char body[160];

	snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);
	return reply(conn, code, CT_JSON, body);
}

static int
host_ok(struct MHD_Connection *conn)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	size_t i;

	if (h == NULL || hosts[0][0] == '\0')
		return 0;
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		if (strcasecmp(h, hosts[i]) == 0)
			return 1;
	return 0;
}

/* Every byte is looked at whatever the first difference: the time tells nothing. */
static int
token_ok(struct MHD_Connection *conn)
{
	const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	size_t n = strlen(cfg.token), i;
	unsigned char diff = 0;

	if (n == 0 || a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
		return 0;
	a += 7;
	if (strlen(a) != n)
		return 0;
	for (i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ cfg.token[i]);
	return diff == 0;
}

static int
has_body(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");

	return (cl != NULL && strcmp(cl, "0") != 0) ||
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") != NULL;
}

/* A name in a path: what a vault may be called, nothing that could be more. */
static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CFG_NAME_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

enum MHD_Result
routes_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	const struct route *rt = NULL;
	const char *arg = NULL;
	char *body = NULL;
	unsigned code;
	size_t i;
	enum MHD_Result rv;

	(void)cls;
	(void)version;
	(void)upload_data;
	/*
	 * The first call has the headers only: a refusal is queued there, before
	 * any body is read (libmicrohttpd then discards it and closes).
	 */
	if (*con_cls == NULL) {
		*con_cls = conn;
		if (!host_ok(conn))
			return error(conn, MHD_HTTP_MISDIRECTED_REQUEST,
			    "the Host header does not name this listener");
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only API");
		if (has_body(conn))
			return error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "no request body allowed");
		return MHD_YES;
	}
	if (*upload_size != 0)
		return error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "no request body allowed");
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]) && rt == NULL; i++) {
		size_t n = strlen(routes[i].path);

		if (routes[i].exact != NULL && strcmp(url, routes[i].path) == 0)
			rt = &routes[i];
		else if (routes[i].named != NULL && strncmp(url, routes[i].path, n) == 0 &&
		    name_ok(url + n)) {
			rt = &routes[i];
			arg = url + n;
		}
	}
	if (rt == NULL)
		return error(conn, MHD_HTTP_NOT_FOUND, "not found");
	if (rt->auth && cfg.require_auth && !token_ok(conn))
		return error(conn, MHD_HTTP_UNAUTHORIZED,
		    "a bearer token is required (the token of daemon.json)");
	code = rt->exact != NULL ? rt->exact(&body) : rt->named(arg, &body);
	if (body == NULL)
		return error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	/* Before the first snapshot, every route answers as healthz: JSON. */
	rv = reply(conn, code, code == 200 ? rt->ctype : CT_JSON, body);
	free(body);
	return rv;
}
