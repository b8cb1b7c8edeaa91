/*
 * vaultsync-statusd: what main.c and the connection table share.
 */
#ifndef VS_STATUSD_H
#define VS_STATUSD_H

#include <microhttpd.h>
#include <stdio.h>

#include "config.h"
#include "msg.h"

/*
 * At most this many HTTP connections, and per client address a quarter of
 * them, so that a few addresses cannot take every slot.  The table plus
 * channel, log, listener and epoll fds stays under the sandbox's NOFILE 64.
 */
#define STATUSD_CONN_MAX	48
#define STATUSD_CONN_PER_IP	8

/* A request must arrive whole within this long of the connection (or the last answer). */
#define STATUSD_REQUEST_DEADLINE_MS	5000

/* libmicrohttpd callbacks (MHD_OPTION_NOTIFY_CONNECTION, MHD_OPTION_NOTIFY_COMPLETED). */
void statusd_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code);
void statusd_conn_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe);
/* A response is queued: the request arrived in time. */
void statusd_conn_answered(struct MHD_Connection *conn);
/* Cut the connections past their deadline; ms until the next one, or -1. */
int statusd_conn_expire(void);
/* Connections closed since the last call. */
unsigned statusd_conn_closed(void);

/* snap.c: the latest whole snapshot the parent pushed. */
#define SNAP_MAX_CHILDREN	8
#define SNAP_MAX_CREDS		(CFG_MAX_VAULTS + 1)

struct snapshot {
	struct msg_snap_daemon d;
	struct msg_snap_child ch[SNAP_MAX_CHILDREN];
	struct msg_cred_info cr[SNAP_MAX_CREDS];
	struct msg_snap_vault v[CFG_MAX_VAULTS];
	size_t nch, ncr, nv;
	struct msg_snap_end e;
};

/* A snapshot record from the parent (SNAP_*, CRED_INFO). */
void snap_take(const struct msg *m);
const struct snapshot *snap_current(void);	/* NULL until the first whole one */
/*
 * The JSON routes: an HTTP status and a body to free() (NULL: out of memory).
 * Before the first snapshot each answers as /v1/healthz does: 503 "starting".
 */
unsigned snap_healthz(char **body);
unsigned snap_status(char **body);
unsigned snap_vaults(char **body);
unsigned snap_vault(const char *name, char **body);

/* ticks.c: each vault's last StatusTickHistory tick records. */
void ticks_config(uint32_t history);
void ticks_take(const struct msg_tick_rec *t);
struct json_t;
struct json_t *ticks_json(const char *vault, size_t limit);	/* a JSON array */
struct json_t *ticks_one_json(const struct msg_tick_rec *t);
unsigned snap_ticks(const char *vault, size_t limit, char **body);

/* ui.c: the status page's three files (no token: they hold no data). */
unsigned ui_page(char **body);
unsigned ui_script(char **body);
unsigned ui_style(char **body);

/* events.c: /v1/events, long-polled or as server-sent events. */
void events_init(void);
void events_config(uint32_t tick_history);	/* how many are kept */
void events_tick(const struct msg_tick_rec *t);
void events_snapshot(const struct snapshot *old, const struct snapshot *new);
void events_forget(struct MHD_Connection *conn);
int events_expire(void);	/* ms until a waiting request's timeout, or -1 */
/* 0: the request now waits (suspended); else an HTTP status, a body and its type. */
unsigned events_route(struct MHD_Connection *conn, char **body, const char **ctype);

/* metrics.c: /metrics in the Prometheus text format (a body to free()). */
unsigned metrics_render(char **body);
void metrics_label(FILE *f, const char *s);	/* a label value, escaped */
void ticks_metrics(FILE *f);	/* ticks.c: the tick families */

/* routes.c: the route table and the checks before it (libmicrohttpd's handler). */
void routes_init(const char *listen_host, unsigned port);
void routes_config(const struct msg_statusd_config *cfg);	/* token, auth on or off */
enum MHD_Result routes_handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls);

#endif
