/*
 * vaultsync-statusd: the loopback HTTP status API.  The parent binds the
 * listening socket (StatusListen) and hands it over as fd 5; this process
 * serves it with libmicrohttpd in its own single-threaded epoll loop, so the
 * sandbox never has to allow thread creation.  It sees only what the parent
 * sends it.  The parent's PINGs are answered from the same loop, so a loop
 * that stops turning is noticed and restarted.
 */
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "statusd.h"

static struct child c;
static struct msg_statusd_config scfg;

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned code, const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result rv;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	rv = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	if (rv == MHD_YES)
		statusd_conn_answered(conn);
	return rv;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	(void)cls;
	(void)version;
	(void)upload_data;
	/* Read-only API: any request body is refused rather than buffered. */
	if (*upload_size != 0)
		return reply(conn, MHD_HTTP_CONTENT_TOO_LARGE, "{\"error\":\"no request body allowed\"}\n");
	if (*con_cls == NULL) {
		*con_cls = conn;	/* first call: headers only */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"read-only API\"}\n");
	if (strcmp(url, "/v1/healthz") == 0) {
		char *hb = NULL;
		unsigned code = snap_healthz(&hb);
		enum MHD_Result rv;

		if (hb == NULL)
			return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"out of memory\"}\n");
		rv = reply(conn, code, hb);
		free(hb);
		return rv;
	}
	return reply(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}\n");
}

static void
read_channel(void)
{
	struct msg m;

	/* All that is queued: a snapshot is many records. */
	while (child_read(&c, &m)) {
		switch (m.hdr.type) {
		case MSG_PING:
			if (child_send(&c, MSG_PONG, &m.u.ping, sizeof(m.u.ping)) != 0)
				fatal("send PONG");
			break;
		case MSG_STATUSD_CONFIG:
			scfg = m.u.scfg;
			explicit_bzero(&m, sizeof(m));
			break;
		case MSG_SNAP_DAEMON:
		case MSG_SNAP_CHILD:
		case MSG_CRED_INFO:
		case MSG_SNAP_VAULT:
		case MSG_SNAP_END:
			snap_take(&m);
			break;
		default:
			fatalx("unexpected %s from parent", msg_type_name(m.hdr.type));
		}
	}
}

static void
mhd_panic(void *cls, const char *file, unsigned line, const char *reason)
{
	(void)cls;
	fatalx("libmicrohttpd: %s:%u: %s", file, line, reason ? reason : "panic");
}

int
main(int argc, char **argv)
{
	char err[256];
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct pollfd pfd[2];

	if (child_begin(&c, ROLE_STATUSD, &statusd_policy, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "vaultsync-statusd: %s\n", err);
		exit(64);
	}
	MHD_set_panic_func(mhd_panic, NULL);
	/* Everything libmicrohttpd allocates (epoll fd, wakeup fd) exists before the sandbox. */
	d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL,
	    handle, NULL,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)CHILD_FD_JOB,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)STATUSD_CONN_MAX,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)STATUSD_CONN_PER_IP,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
	    MHD_OPTION_NOTIFY_CONNECTION, statusd_conn_notify, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, statusd_conn_completed, NULL,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
	    MHD_OPTION_END);
	if (d == NULL)
		fatalx("cannot start the HTTP server on the passed socket");
	if ((info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD)) == NULL)
		fatalx("no epoll fd from libmicrohttpd");
	if (child_sandbox(&c, err, sizeof(err)) != 0)
		fatal_code(CHILD_EXIT_SANDBOX, "sandbox: %s", err);
	if (child_hello(&c, err, sizeof(err)) != 0)
		fatalx("%s", err);

	pfd[0] = (struct pollfd){ CHILD_FD_CHAN, POLLIN, 0 };
	pfd[1] = (struct pollfd){ info->epoll_fd, POLLIN, 0 };
	for (;;) {
		MHD_UNSIGNED_LONG_LONG to;
		int t = -1, dl, rv;

		if (MHD_get_timeout(d, &to) == MHD_YES)
			t = to > 60000 ? 60000 : (int)to;
		if ((dl = statusd_conn_expire()) >= 0 && (t < 0 || dl < t))
			t = dl;
		/*
		 * libmicrohttpd takes the listener out of its epoll set while the
		 * table is full and puts it back only at the start of a pass.  After
		 * a pass that closed connections, run the next one without sleeping:
		 * the set may hold nothing that would ever wake us.
		 */
		if (statusd_conn_closed() > 0)
			t = 0;
		rv = poll(pfd, 2, t);
		if (rv == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[0].revents)
			read_channel();
		MHD_run(d);
	}
}
