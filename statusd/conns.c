/*
 * The HTTP connection table and its request deadlines.  libmicrohttpd's
 * connection timeout is an idle timeout: a client that sends one byte every
 * few seconds renews it forever, and a few dozen such clients hold every
 * slot.  So each connection must deliver a whole request within
 * STATUSD_REQUEST_DEADLINE_MS of being accepted, or of its previous answer
 * when it is kept alive; past that it is shut down.
 */
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "statusd.h"

struct conn {
	struct MHD_Connection *mhd;	/* NULL: free slot */
	int fd;
	uint64_t deadline;		/* monotonic ms; 0: answered, or already cut */
};

static struct conn conns[STATUSD_CONN_MAX];
static unsigned nclosed;

static struct conn *
conn_of(struct MHD_Connection *mhd)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

void
statusd_conn_notify(void *cls, struct MHD_Connection *mhd, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *ci;
	struct conn *c;
	size_t i;

	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		events_forget(mhd);
		if ((c = *socket_context) != NULL)
			memset(c, 0, sizeof(*c));
		nclosed++;
		return;
	}
	*socket_context = NULL;
	if ((ci = MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_CONNECTION_FD)) == NULL)
		return;
	for (i = 0; i < STATUSD_CONN_MAX; i++)
		if (conns[i].mhd == NULL)
			break;
	/* The table is as large as libmicrohttpd's limit; should they disagree, refuse. */
	if (i == STATUSD_CONN_MAX) {
		(void)shutdown(ci->connect_fd, SHUT_RDWR);
		return;
	}
	conns[i] = (struct conn){ mhd, ci->connect_fd, mono_ms() + STATUSD_REQUEST_DEADLINE_MS };
	*socket_context = &conns[i];
}

void
statusd_conn_answered(struct MHD_Connection *mhd)
{
	struct conn *c;

	if ((c = conn_of(mhd)) != NULL)
		c->deadline = 0;
}

void
statusd_conn_completed(void *cls, struct MHD_Connection *mhd, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct conn *c;

	(void)cls;
	(void)con_cls;
	(void)toe;
	/* Kept alive, it waits for its next request under the same deadline. */
	if ((c = conn_of(mhd)) != NULL && c->mhd != NULL)
		c->deadline = mono_ms() + STATUSD_REQUEST_DEADLINE_MS;
}

int
statusd_conn_expire(void)
{
	uint64_t now = mono_ms(), next = 0;
	size_t i;

	for (i = 0; i < STATUSD_CONN_MAX; i++) {
		struct conn *c = &conns[i];

		if (c->mhd == NULL || c->deadline == 0)
			continue;
		if (c->deadline <= now) {
			/* libmicrohttpd reads EOF on its next pass and closes it. */
			(void)shutdown(c->fd, SHUT_RDWR);
			c->deadline = 0;
		} else if (next == 0 || c->deadline < next)
			next = c->deadline;
	}
	return next == 0 ? -1 : (int)(next - now);
}

unsigned
statusd_conn_closed(void)
{
	unsigned n = nclosed;

	nclosed = 0;
	return n;
}
