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
 * The page (/, /ui.js, /ui.css) needs no token: it holds no data, and reads
 * the API with the token the URL fragment gave it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statusd.h"

#define CT_JSON		"application/json"
#define CT_METRICS	"text/plain; version=0.0.4; charset=utf-8"

/* A request as a handler sees it: the name from the path, if the route has one. */
struct req {
	struct MHD_Connection *conn;
	const char *name;
	const char *ctype;	/* a handler may answer in another type than its route's */
};

struct route {
	const char *path;	/* the whole path, or what comes before the name */
	const char *after;	/* NULL: no name; else what follows the name ("" for none) */
	int auth;
	const char *ctype;
	unsigned (*fn)(struct req *q, char **body);
};

static unsigned r_healthz(struct req *q, char **b) { (void)q; return snap_healthz(b); }
static unsigned r_status(struct req *q, char **b) { (void)q; return snap_status(b); }
static unsigned r_vaults(struct req *q, char **b) { (void)q; return snap_vaults(b); }
static unsigned r_vault(struct req *q, char **b) { return snap_vault(q->name, b); }
static unsigned r_metrics(struct req *q, char **b) { (void)q; return metrics_render(b); }
static unsigned r_page(struct req *q, char **b) { (void)q; return ui_page(b); }
static unsigned r_script(struct req *q, char **b) { (void)q; return ui_script(b); }
static unsigned r_style(struct req *q, char **b) { (void)q; return ui_style(b); }

static unsigned
r_events(struct req *q, char **body)
{
	return events_route(q->conn, body, &q->ctype);
}

/* ?limit=K: the last K ticks (1 to 100000), all that are kept without it. */
static unsigned
r_ticks(struct req *q, char **body)
{
	const char *l = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "limit");
	char *end;
	unsigned long k = 0;

	if (l != NULL) {
		k = strtoul(l, &end, 10);
		if (*l < '0' || *l > '9' || *end != '\0' || k < 1 || k > 100000) {
			*body = strdup("{\"error\":\"limit must be a number from 1 to 100000\"}\n");
			return 400;
		}
	}
	return snap_ticks(q->name, (size_t)k, body);
}

static const struct route routes[] = {
	{ "/v1/healthz", NULL, 0, CT_JSON, r_healthz },
	{ "/v1/status", NULL, 1, CT_JSON, r_status },
	{ "/v1/vaults", NULL, 1, CT_JSON, r_vaults },
	{ "/v1/vaults/", "", 1, CT_JSON, r_vault },
	{ "/v1/vaults/", "/ticks", 1, CT_JSON, r_ticks },
	{ "/v1/events", NULL, 1, CT_JSON, r_events },
	{ "/metrics", NULL, 1, CT_METRICS, r_metrics },
	{ "/", NULL, 0, "text/html; charset=utf-8", r_page },
	{ "/ui.js", NULL, 0, "text/javascript; charset=utf-8", r_script },
	{ "/ui.css", NULL, 0, "text/css; charset=utf-8", r_style },
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
	/* The page runs its own script and style and talks to this origin only; nobody frames it. */
	MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'; "
	    "script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
	    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
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

/*
 * Does url match the route?  A name in a path is what a vault may be called
 * and nothing that could be more; it is copied out to name.
 */
static int
matches(const struct route *rt, const char *url, char name[CFG_NAME_MAX])
{
	size_t n = strlen(rt->path), i;

	if (rt->after == NULL)
		return strcmp(url, rt->path) == 0;
	if (strncmp(url, rt->path, n) != 0)
		return 0;
	url += n;
	for (i = 0; url[i] != '\0' && url[i] != '/'; i++) {
		if (i == CFG_NAME_MAX - 1 || (!(url[i] >= 'a' && url[i] <= 'z') &&
		    !(url[i] >= 'A' && url[i] <= 'Z') && !(url[i] >= '0' && url[i] <= '9') &&
		    url[i] != '-' && url[i] != '_' && url[i] != '.'))
			return 0;
		name[i] = url[i];
	}
	name[i] = '\0';
	return i > 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
	    strcmp(url + i, rt->after) == 0;
}

enum MHD_Result
routes_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	const struct route *rt = NULL;
	char name[CFG_NAME_MAX] = "";
	struct req q = { conn, name, NULL };
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
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]) && rt == NULL; i++)
		if (matches(&routes[i], url, name))
			rt = &routes[i];
	if (rt == NULL)
		return error(conn, MHD_HTTP_NOT_FOUND, "not found");
	if (rt->auth && cfg.require_auth && !token_ok(conn))
		return error(conn, MHD_HTTP_UNAUTHORIZED,
		    "a bearer token is required (the token of daemon.json)");
	code = rt->fn(&q, &body);
	if (code == 0)
		return MHD_YES;		/* it waits: the handler runs again when resumed */
	if (body == NULL)
		return error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	/* Before the first snapshot, every route answers as healthz: JSON. */
	rv = reply(conn, code, code != 200 ? CT_JSON : q.ctype != NULL ? q.ctype : rt->ctype, body);
	free(body);
	return rv;
}
