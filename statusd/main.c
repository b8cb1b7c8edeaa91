/*
 * vaultsync-statusd: the loopback HTTP status API.  The parent binds the
 * listening socket (StatusListen) and hands it over as fd 5; this process
 * serves it with libmicrohttpd in its own single-threaded epoll loop, so the
 * sandbox never has to allow thread creation.  It sees only what the parent
 * sends it.  The parent's PINGs are answered from the same loop, so a loop
 * that stops turning is noticed and restarted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "log.h"
#include "statusd.h"

static struct child c;
/*
 * Where fd 5 listens, learnt before the sandbox (which has no getsockname):
 * the names a request's Host header may use.
 */
static void
learn_listener(void)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN], listen_host[INET6_ADDRSTRLEN + 2];
	unsigned listen_port;

	if (getsockname(CHILD_FD_JOB, (struct sockaddr *)&ss, &sl) != 0)
		fatal("getsockname");
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(listen_host, sizeof(listen_host), "%s", a);
		listen_port = ntohs(s4->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(listen_host, sizeof(listen_host), "[%s]", a);
		listen_port = ntohs(s6->sin6_port);
	} else
		fatalx("the status listener is not an IP socket");
	routes_init(listen_host, listen_port);
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
			routes_config(&m.u.scfg);
			ticks_config(m.u.scfg.tick_history);
			events_config(m.u.scfg.tick_history);
			explicit_bzero(&m, sizeof(m));
			break;
		case MSG_SNAP_DAEMON:
		case MSG_SNAP_CHILD:
		case MSG_CRED_INFO:
		case MSG_SNAP_VAULT:
		case MSG_SNAP_END:
			snap_take(&m);
			break;
		case MSG_TICK_REC:
			ticks_take(&m.u.tick);
			events_tick(&m.u.tick);
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
	uint64_t trimmed = 0;

	if (child_begin(&c, ROLE_STATUSD, &statusd_policy, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "vaultsync-statusd: %s\n", err);
		exit(64);
	}
	learn_listener();
	MHD_set_panic_func(mhd_panic, NULL);
	/* Everything libmicrohttpd allocates (epoll fd, wakeup fd) exists before the sandbox. */
	events_init();
	/* Suspend and resume: a request for events waits for the next one. */
	d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
	    routes_handle, NULL,
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
		if ((dl = events_expire()) >= 0 && (t < 0 || dl < t))
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
		/*
		 * Answers (a /ticks or /metrics body, a snapshot's JSON) are built,
		 * sent and freed; the heap they grew is given back once a second,
		 * so that what statusd holds is what it keeps, not its busiest moment.
		 */
		if (mono_ms() - trimmed >= 1000) {
			malloc_trim(0);
			trimmed = mono_ms();
		}
	}
}
