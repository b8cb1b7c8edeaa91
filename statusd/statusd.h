/*
 * vaultsync-statusd: what main.c and the connection table share.
 */
#ifndef VS_STATUSD_H
#define VS_STATUSD_H

#include <microhttpd.h>

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

/* snap.c: a snapshot record from the parent (SNAP_*, CRED_INFO). */
void snap_take(const struct msg *m);
/* /v1/healthz: 200 or 503, and a JSON body to free(). */
unsigned snap_healthz(char **body);

#endif
