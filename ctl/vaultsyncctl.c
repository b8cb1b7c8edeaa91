/*
 * vaultsyncctl: talks to vaultsyncd over its control socket with the same
 * fixed-message codec the daemon uses for its children.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "msg.h"
#include "secbuf.h"
#include "statusjson.h"

#define EXIT_UNHEALTHY	1
#define EXIT_NODAEMON	2
#define EXIT_USAGE	64
#define EXIT_NOPERM	77
#define TIMEOUT_MS	15000
#define HELLO_WAIT_MS	120000

static const char *progname = "vaultsyncctl";
static uint32_t seq;

static void __attribute__((noreturn))
usage(int code)
{
	FILE *f = code ? stderr : stdout;

	fprintf(f,
"usage: vaultsyncctl [-s SOCKET] [--user] COMMAND [ARGS]\n"
"\n"
"Commands:\n"
"  status [--json] [VAULT]   daemon, children, credentials and vaults;\n"
"                            exit 0 healthy, 1 something unhealthy,\n"
"                            2 daemon not running\n"
"  status --ui               the status page's URL, with the API token in its\n"
"                            fragment (#t=...); only for those who may read\n"
"                            RuntimeDir/daemon.json (the daemon's user, root)\n"
"  version                   versions and protocol of vaultsyncctl and the daemon\n"
"  reload                    re-read the configuration (like SIGHUP); a bad\n"
"                            configuration is reported and the old one kept\n"
"  stop                      stop the daemon and wait until it has exited\n"
"  init VAULT [--passphrase-file FILE|-]\n"
"                            create the vault's key pair: the identity is stored\n"
"                            encrypted with the passphrase (asked twice on the\n"
"                            terminal), then the vault is mounted and saved\n"
"  unlock VAULT [--passphrase-file FILE|-]\n"
"                            decrypt the latest archive into the vault\n"
"  lock VAULT                save, wipe and unmount the vault\n"
"  sync VAULT                save now, push if the remote lags, print the result\n"
"  push VAULT [--force]      push now and write a history copy; --force\n"
"                            overwrites a remote latest another device wrote\n"
"                            (ends a conflict, losing that version's place\n"
"                            as latest: it stays in the remote's history only\n"
"                            if that device wrote one)\n"
"  pull VAULT [--version KEY] [--passphrase-file FILE|-]\n"
"                            download the remote latest (or history KEY),\n"
"                            verify it by decrypting, make it the local\n"
"                            archive and, if unlocked, the vault's contents;\n"
"                            ends a conflict\n"
"  history VAULT             list the remote's history copies\n"
"  verify VAULT              restore drill: fetch the remote latest and the\n"
"                            newest history copy, compare them byte for byte\n"
"                            with what was encrypted here and check their age\n"
"                            structure; exit 0 match, 1 mismatch or error.\n"
"                            A mismatch is shown in status, never repaired.\n"
"                            (--decrypt, a drill through decryption with the\n"
"                            passphrase, is not available yet)\n"
"\n"
"Options:\n"
"  -s SOCKET   control socket (default: $VAULTSYNC_SOCKET, else\n"
"              $XDG_RUNTIME_DIR/vaultsync/ctl.sock when not root and it exists,\n"
"              else /run/vaultsync/ctl.sock)\n"
"  --user      use the per-user daemon's socket\n"
"  -h, --help  this text\n"
"\n"
"Permissions: root and the daemon's user may run every command; a vault's\n"
"Owner the vault commands above on that vault; other members of the\n"
"daemon's ControlGroup status and version only.\n"
"\n"
"Exit status: 0 ok, 1 unhealthy or command failed, 2 daemon not running,\n"
"64 usage error, 66 vault not initialised, 77 permission denied.\n"
"Passphrases are read from the terminal without echo, or from FILE (first\n"
"line) or standard input with --passphrase-file; never from the command line.\n");
	exit(code);
}

static void
default_socket(char *buf, size_t len, int user)
{
	const char *env = getenv("VAULTSYNC_SOCKET"), *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;

	if (env != NULL && env[0] != '\0') {
		snprintf(buf, len, "%s", env);
		return;
	}
	if (xdg != NULL && xdg[0] == '/') {
		snprintf(buf, len, "%s/vaultsync/ctl.sock", xdg);
		if (user || (geteuid() != 0 && stat(buf, &st) == 0))
			return;
	} else if (user) {
		snprintf(buf, len, "/run/user/%u/vaultsync/ctl.sock", (unsigned)geteuid());
		return;
	}
	snprintf(buf, len, "/run/vaultsync/ctl.sock");
}

static int recv_one_timeout(int fd, struct msg *m, int timeout_ms);

/* Wait for and decode one message from the daemon. */
static int
recv_one(int fd, struct msg *m)
{
	return recv_one_timeout(fd, m, TIMEOUT_MS);
}

static int
recv_one_timeout(int fd, struct msg *m, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	const char *why;
	int rv;

	for (;;) {
		rv = poll(&p, 1, timeout_ms);
		if (rv == -1 && errno == EINTR)
			continue;
		if (rv == 0) {
			fprintf(stderr, "%s: no answer from the daemon within %d s\n", progname,
			    timeout_ms / 1000);
			exit(EXIT_UNHEALTHY);
		}
		rv = msg_recv(fd, PEER_PARENT, m, &why);
		if (rv == MSG_ERR && errno == EAGAIN)
			continue;
		if (rv == MSG_VIOLATION) {
			fprintf(stderr, "%s: bad message from the daemon: %s\n", progname, why);
			exit(EXIT_UNHEALTHY);
		}
		if (rv == MSG_OK && m->fd >= 0)
			close(m->fd);
		return rv;
	}
}

static void __attribute__((noreturn))
result_exit(const struct msg_ctl_result *r)
{
	fprintf(r->code ? stderr : stdout, "%s%s%s\n", r->code ? progname : "",
	    r->code ? ": " : "", r->msg);
	exit(r->code);
}

static int
connect_daemon(const char *path)
{
	struct sockaddr_un sun;
	struct msg m;
	struct msg_hello h;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "%s: socket path too long: %s\n", progname, path);
		exit(EXIT_USAGE);
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "%s: socket: %s\n", progname, strerror(errno));
		exit(EXIT_UNHEALTHY);
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;

		if (e == EACCES || e == EPERM) {
			fprintf(stderr, "%s: permission denied on %s: be root, the daemon's "
			    "user, or in its ControlGroup\n", progname, path);
			exit(EXIT_NOPERM);
		}
		fprintf(stderr, "%s: vaultsyncd is not running (%s: %s)\n", progname, path,
		    strerror(e));
		exit(EXIT_NODAEMON);
	}
	/* When every slot has a request in flight the daemon accepts us once one frees. */
	if (recv_one_timeout(fd, &m, HELLO_WAIT_MS) != MSG_OK) {
		fprintf(stderr, "%s: the daemon closed the connection\n", progname);
		exit(EXIT_NODAEMON);
	}
	if (m.hdr.type == MSG_CTL_RESULT)
		result_exit(&m.u.cres);		/* refused */
	if (m.hdr.type != MSG_HELLO) {
		fprintf(stderr, "%s: unexpected %s from the daemon\n", progname,
		    msg_type_name(m.hdr.type));
		exit(EXIT_UNHEALTHY);
	}
	if (m.u.hello.proto != VS_PROTO_VERSION)
		fprintf(stderr, "%s: warning: the daemon speaks protocol %u (version %s), "
		    "this vaultsyncctl protocol %u (version %s); restart the daemon or "
		    "update vaultsyncctl\n", progname, m.u.hello.proto, m.u.hello.version,
		    VS_PROTO_VERSION, VS_VERSION);
	msg_hello_init(&h, ROLE_CTL);
	if (msg_send(fd, PEER_CTL, MSG_HELLO, ++seq, &h, sizeof(h), -1) != 0) {
		fprintf(stderr, "%s: send: %s\n", progname, strerror(errno));
		exit(EXIT_NODAEMON);
	}
	return fd;
}

static void
request_full(int fd, uint32_t cmd, const char *vault, uint32_t flags, const char *arg)
{
	struct msg_ctl_request rq;

	memset(&rq, 0, sizeof(rq));
	rq.cmd = cmd;
	rq.flags = flags;
	if (vault != NULL)
		msg_strlcpy(rq.vault, vault, sizeof(rq.vault));
	if (arg != NULL)
		msg_strlcpy(rq.arg, arg, sizeof(rq.arg));
	if (msg_send(fd, PEER_CTL, MSG_CTL_REQUEST, ++seq, &rq, sizeof(rq), -1) != 0) {
		fprintf(stderr, "%s: send: %s\n", progname, strerror(errno));
		exit(EXIT_NODAEMON);
	}
}

static void
request(int fd, uint32_t cmd, const char *vault)
{
	request_full(fd, cmd, vault, 0, NULL);
}

/*
 * status --ui: the page's URL with the token in its fragment (which a
 * browser never sends).  The token is in daemon.json, beside the control
 * socket, readable only by the daemon's user and root: whoever cannot read
 * it gets no URL.
 */
static int
cmd_status_ui(const char *sock)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
	const char *slash = strrchr(sock, '/'), *url, *token;
	json_error_t jerr;
	json_t *dj;
	json_int_t pid;
	int fd;

	snprintf(path, sizeof(path), "%.*s/daemon.json", slash != NULL ? (int)(slash - sock) : 1,
	    slash != NULL ? sock : ".");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == EACCES || errno == EPERM) {
			fprintf(stderr, "%s: %s: permission denied: only the daemon's user and root "
			    "may read the status API's token\n", progname, path);
			return EXIT_NOPERM;
		}
		fprintf(stderr, "%s: %s: %s (is the daemon running, with StatusAPI yes?)\n",
		    progname, path, strerror(errno));
		return EXIT_NODAEMON;
	}
	dj = json_loadfd(fd, 0, &jerr);
	close(fd);
	if (dj == NULL) {
		fprintf(stderr, "%s: %s: %s\n", progname, path, jerr.text);
		return EXIT_NODAEMON;
	}
	url = json_string_value(json_object_get(dj, "url"));
	token = json_string_value(json_object_get(dj, "token"));
	pid = json_integer_value(json_object_get(dj, "pid"));
	if (url == NULL || token == NULL || pid <= 0) {
		fprintf(stderr, "%s: %s: not a daemon.json this version writes\n", progname, path);
		json_decref(dj);
		return EXIT_NODAEMON;
	}
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
		fprintf(stderr, "%s: %s names pid %lld, which is not running: the daemon has "
		    "stopped\n", progname, path, (long long)pid);
		json_decref(dj);
		return EXIT_NODAEMON;
	}
	printf("%s#t=%s\n", url, token);
	json_decref(dj);
	return 0;
}

static int
cmd_status(int fd, int as_json, const char *only)
{
	json_t *root = json_object(), *children = json_array(), *creds = json_array();
	json_t *vaults = json_array(), *daemon = NULL;
	struct msg m;
	int healthy = 0, done = 0;

	request(fd, CTL_STATUS, only);
	while (!done) {
		if (recv_one(fd, &m) != MSG_OK) {
			fprintf(stderr, "%s: the daemon closed the connection\n", progname);
			return EXIT_NODAEMON;
		}
		switch (m.hdr.type) {
		case MSG_CTL_RESULT:
			result_exit(&m.u.cres);
		case MSG_SNAP_DAEMON: {
			const struct msg_snap_daemon *d = &m.u.sdaemon;

			daemon = sj_daemon(d);
			break;
		}
		case MSG_SNAP_CHILD: {
			const struct msg_snap_child *c = &m.u.schild;

			json_array_append_new(children, sj_child(c));
			break;
		}
		case MSG_CRED_INFO: {
			const struct msg_cred_info *c = &m.u.cred;

			json_array_append_new(creds, sj_cred(c));
			break;
		}
		case MSG_SNAP_VAULT: {
			const struct msg_snap_vault *v = &m.u.svault;

			if (only != NULL && strcmp(only, v->name) != 0)
				break;
			json_t *jv = sj_vault(v);

			json_array_append_new(vaults, jv);
			break;
		}
		case MSG_SNAP_END:
			healthy = (int)m.u.send.healthy;
			done = 1;
			break;
		default:
			break;
		}
	}
	json_object_set_new(root, "schema_version", json_integer(1));
	json_object_set_new(root, "healthy", json_boolean(healthy));
	json_object_set_new(root, "daemon", daemon ? daemon : json_null());
	json_object_set_new(root, "children", children);
	json_object_set_new(root, "credentials", creds);
	json_object_set_new(root, "vaults", vaults);
	if (as_json) {
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		size_t i;
		json_t *e;

		printf("vaultsyncd %s, pid %lld, %s mode, up %llds, %s\n",
		    json_string_value(json_object_get(daemon, "version")),
		    (long long)json_integer_value(json_object_get(daemon, "pid")),
		    json_string_value(json_object_get(daemon, "mode")),
		    (long long)json_integer_value(json_object_get(daemon, "uptime_s")),
		    healthy ? "healthy" : "UNHEALTHY");
		json_array_foreach(children, i, e)
			printf("  %-9s pid %-7lld %-9s restarts %lld%s%s\n",
			    json_string_value(json_object_get(e, "name")),
			    (long long)json_integer_value(json_object_get(e, "pid")),
			    json_string_value(json_object_get(e, "state")),
			    (long long)json_integer_value(json_object_get(e, "restarts")),
			    *json_string_value(json_object_get(e, "last_reason")) ? ", last: " : "",
			    json_string_value(json_object_get(e, "last_reason")));
		json_array_foreach(creds, i, e) {
			const char *err = json_string_value(json_object_get(e, "error"));

			printf("  credentials %s (%s): %s%s%s\n",
			    json_string_value(json_object_get(e, "path")),
			    json_string_value(json_object_get(e, "source")),
			    json_string_value(json_object_get(e, "state")),
			    err ? ": " : "", err ? err : "");
		}
		json_array_foreach(vaults, i, e) {
			json_t *w = json_object_get(e, "watcher");
			const char *reason = json_string_value(json_object_get(w, "reason"));
			const char *remote = json_string_value(json_object_get(e, "remote"));

			const char *lerr = json_string_value(json_object_get(e, "last_error"));
			const char *retry = json_string_value(json_object_get(e, "next_push_at"));
			const char *okp = json_string_value(json_object_get(e, "last_ok_push_at"));
			json_t *hc = json_object_get(e, "history_count");
			json_t *vf;

			printf("vault %s: %s, %s -> %s, watcher %s%s%s\n",
			    json_string_value(json_object_get(e, "name")),
			    json_string_value(json_object_get(e, "state")),
			    json_string_value(json_object_get(e, "path")),
			    remote ? remote : "(local only)",
			    json_string_value(json_object_get(w, "mode")),
			    reason ? " — " : "", reason ? reason : "");
			if (remote != NULL)
				printf("  last good push %s%s%s", okp ? okp : "never",
				    retry ? ", next attempt " : "", retry ? retry : "");
			if (remote != NULL && json_is_integer(hc))
				printf(", %lld history %s", (long long)json_integer_value(hc),
				    json_integer_value(hc) == 1 ? "copy" : "copies");
			if (remote != NULL)
				putchar('\n');
			if (lerr != NULL)
				printf("  error: %s\n", lerr);
			if ((vf = json_object_get(e, "verify")) != NULL && !json_is_null(vf)) {
				const char *o = json_string_value(json_object_get(vf, "outcome"));

				printf("  verify %s at %s: %s\n", strcmp(o, "mismatch") == 0 ?
				    "MISMATCH" : o,
				    json_string_value(json_object_get(vf, "at")),
				    json_string_value(json_object_get(vf, "message")));
			}
		}
	}
	json_decref(root);
	return healthy ? 0 : EXIT_UNHEALTHY;
}

static int
cmd_simple(int fd, uint32_t cmd)
{
	struct msg m;

	request(fd, cmd, NULL);
	if (recv_one(fd, &m) != MSG_OK || m.hdr.type != MSG_CTL_RESULT) {
		fprintf(stderr, "%s: no answer from the daemon\n", progname);
		return EXIT_UNHEALTHY;
	}
	if (cmd == CTL_STOP && m.u.cres.code == 0) {
		/* The daemon closes every control connection as it shuts down. */
		while (recv_one(fd, &m) == MSG_OK)
			;
	}
	result_exit(&m.u.cres);
}

/* One line from fd into b (without the newline).  0 ok, -1 nothing read. */
static int
read_line(int fd, struct secbuf *b)
{
	char c;
	ssize_t n;

	b->len = 0;
	for (;;) {
		n = read(fd, &c, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return b->len > 0 ? 0 : -1;
		if (c == '\n')
			return 0;
		if (b->len + 1 >= b->cap)
			return -1;
		b->p[b->len++] = (unsigned char)c;
	}
}

/* Echo restored if a signal ends us at the prompt. */
static int prompt_tty = -1;
static struct termios prompt_saved;

static void
prompt_signal(int sig)
{
	if (prompt_tty != -1)
		(void)tcsetattr(prompt_tty, TCSAFLUSH, &prompt_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Echo goes off before the prompt is printed: an answer typed as soon as the
 * prompt shows must never be echoed (TCSAFLUSH also drops any typed ahead).
 */
static int
prompt(int tty, const char *what, struct secbuf *b)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };
	struct termios quiet;
	size_t i;
	int rc;

	if (tcgetattr(tty, &prompt_saved) != 0)
		return -1;
	quiet = prompt_saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	prompt_tty = tty;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], prompt_signal);
	if (tcsetattr(tty, TCSAFLUSH, &quiet) != 0)
		rc = -1;
	else {
		dprintf(tty, "%s", what);
		rc = read_line(tty, b);
	}
	(void)tcsetattr(tty, TCSAFLUSH, &prompt_saved);
	prompt_tty = -1;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	dprintf(tty, "\n");
	return rc;
}

static void
get_passphrase(const char *file, int twice, struct secbuf *pass)
{
	struct secbuf again;
	int fd, tty;

	if (secbuf_alloc(pass, 1024) != 0) {
		fprintf(stderr, "%s: cannot allocate a locked buffer\n", progname);
		exit(EXIT_UNHEALTHY);
	}
	if (file != NULL) {
		fd = strcmp(file, "-") == 0 ? 0 : open(file, O_RDONLY | O_CLOEXEC);
		if (fd == -1) {
			fprintf(stderr, "%s: %s: %s\n", progname, file, strerror(errno));
			exit(EXIT_USAGE);
		}
		if (read_line(fd, pass) != 0 || pass->len == 0) {
			fprintf(stderr, "%s: no passphrase in %s\n", progname, file);
			exit(EXIT_USAGE);
		}
		if (fd != 0)
			close(fd);
		return;
	}
	if ((tty = open("/dev/tty", O_RDWR | O_CLOEXEC)) == -1) {
		fprintf(stderr, "%s: no terminal to ask for the passphrase; use "
		    "--passphrase-file FILE or - for standard input\n", progname);
		exit(EXIT_USAGE);
	}
	if (prompt(tty, "Passphrase: ", pass) != 0 || pass->len == 0) {
		fprintf(stderr, "%s: no passphrase given\n", progname);
		exit(EXIT_USAGE);
	}
	if (twice) {
		if (secbuf_alloc(&again, 1024) != 0 || prompt(tty, "Again: ", &again) != 0 ||
		    again.len != pass->len || memcmp(again.p, pass->p, pass->len) != 0) {
			fprintf(stderr, "%s: the passphrases do not match\n", progname);
			exit(EXIT_USAGE);
		}
		secbuf_free(&again);
	}
	close(tty);
}

/* One message within ms on a side connection: 0, or -1 (late, closed, broken). */
static int
side_recv(int fd, struct msg *m, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	const char *why;

	if (poll(&p, 1, ms) != 1)
		return -1;
	return msg_recv(fd, PEER_PARENT, m, &why) == MSG_OK ? 0 : -1;
}

/*
 * While a sync or push runs: how far the vault's upload has got, asked on a
 * second connection (a status request, which its asker may make).  Returns
 * 1 with *sent of *total, 0 if no upload is in flight, -1 if status could not
 * be had (the line is then not drawn; the command goes on).
 */
static int
upload_progress(const char *path, const char *vault, uint64_t *sent, uint64_t *total)
{
	struct sockaddr_un sun;
	struct msg_hello h;
	struct msg m;
	int fd, rv = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    side_recv(fd, &m, 2000) != 0 || m.hdr.type != MSG_HELLO)
		goto out;
	msg_hello_init(&h, ROLE_CTL);
	if (msg_send(fd, PEER_CTL, MSG_HELLO, ++seq, &h, sizeof(h), -1) != 0)
		goto out;
	request(fd, CTL_STATUS, vault);
	while (side_recv(fd, &m, 2000) == 0 && m.hdr.type != MSG_CTL_RESULT &&
	    m.hdr.type != MSG_SNAP_END)
		if (m.hdr.type == MSG_SNAP_VAULT && strcmp(m.u.svault.name, vault) == 0) {
			*sent = m.u.svault.push_sent;
			*total = m.u.svault.push_total;
			rv = *total > 0;
		}
out:
	close(fd);
	return rv;
}

/* The line a terminal shows while an upload runs: bytes, rate, time left. */
static void
draw_progress(uint64_t sent, uint64_t total, uint64_t *first_sent, uint64_t *first_ms)
{
	uint64_t now = mono_ms();
	double mib = 1048576.0, rate = 0;

	if (*first_ms == 0 || sent < *first_sent) {
		*first_ms = now;
		*first_sent = sent;
	}
	if (now > *first_ms + 200)
		rate = (double)(sent - *first_sent) * 1000.0 / (double)(now - *first_ms);
	fprintf(stderr, "\r  uploading: %.1f of %.1f MiB (%d%%)", (double)sent / mib,
	    (double)total / mib, (int)(100.0 * (double)sent / (double)total));
	if (rate > 0)
		fprintf(stderr, ", %.1f MiB/s, about %.0f s left", rate / mib,
		    (double)(total - sent) / rate);
	fputs("\033[K", stderr);
	fflush(stderr);
}

static int
cmd_vault(const char *path, int fd, uint32_t cmd, const char *vault, uint32_t flags,
    const char *arg, struct secbuf *pass)
{
	int tty = isatty(STDERR_FILENO), drawn = 0, said = 0;
	uint64_t t0 = mono_ms(), sent, total, first_sent = 0, first_ms = 0;
	struct pollfd p = { fd, POLLIN, 0 };
	struct msg m;

	request_full(fd, cmd, vault, flags, arg);
	if (pass != NULL) {
		struct msg_ctl_secret sec;

		memset(&sec, 0, sizeof(sec));
		sec.len = (uint32_t)pass->len;
		memcpy(sec.secret, pass->p, pass->len);
		secbuf_free(pass);
		if (msg_send(fd, PEER_CTL, MSG_CTL_SECRET, ++seq, &sec, sizeof(sec), -1) != 0) {
			explicit_bzero(&sec, sizeof(sec));
			fprintf(stderr, "%s: send: %s\n", progname, strerror(errno));
			return EXIT_NODAEMON;
		}
		explicit_bzero(&sec, sizeof(sec));
	}
	/*
	 * init and unlock run scrypt, lock and sync write the archive, push
	 * uploads: wait long.  On a terminal, say what the wait is for: the key
	 * derivation, or how far the upload has got.
	 */
	for (;;) {
		int r = poll(&p, 1, tty ? 500 : 1000);

		if (r == -1 && errno != EINTR) {
			fprintf(stderr, "%s: poll: %s\n", progname, strerror(errno));
			return EXIT_UNHEALTHY;
		}
		if (r <= 0) {
			if (mono_ms() - t0 > 600000) {
				fprintf(stderr, "%s: no answer from the daemon\n", progname);
				return EXIT_UNHEALTHY;
			}
			if (tty && !said && mono_ms() - t0 >= 1000 &&
			    (cmd == CTL_INIT || cmd == CTL_UNLOCK || cmd == CTL_PULL)) {
				fprintf(stderr, "  %s: deriving the key from the passphrase (scrypt, "
				    "a few seconds), then %s\n", vault, cmd == CTL_INIT ?
				    "writing the first archive" : "decrypting the archive");
				said = 1;
			}
			if (tty && (cmd == CTL_SYNC || cmd == CTL_PUSH) &&
			    upload_progress(path, vault, &sent, &total) == 1) {
				draw_progress(sent, total, &first_sent, &first_ms);
				drawn = 1;
			}
			continue;
		}
		if (recv_one_timeout(fd, &m, 600000) != MSG_OK) {
			fprintf(stderr, "%s: no answer from the daemon\n", progname);
			return EXIT_UNHEALTHY;
		}
		if (drawn) {
			fputs("\r\033[K", stderr);
			drawn = 0;
		}
		if (m.hdr.type == MSG_CTL_RESULT)
			result_exit(&m.u.cres);
		if (m.hdr.type == MSG_CTL_LINE)
			printf("%s\n", m.u.cline.line);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "user", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char sock[108];
	const char *path = NULL, *cmd;
	int ch, user = 0, fd;

	while ((ch = getopt_long(argc, argv, "+s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			path = optarg;
			break;
		case 'U':
			user = 1;
			break;
		case 'h':
			usage(0);
		default:
			usage(EXIT_USAGE);
		}
	}
	if (optind >= argc)
		usage(EXIT_USAGE);
	cmd = argv[optind++];
	if (path == NULL) {
		default_socket(sock, sizeof(sock), user);
		path = sock;
	}
	if (strcmp(cmd, "status") == 0) {
		int as_json = 0, ui = 0;
		const char *vault = NULL;

		for (; optind < argc; optind++) {
			if (strcmp(argv[optind], "--json") == 0)
				as_json = 1;
			else if (strcmp(argv[optind], "--ui") == 0)
				ui = 1;
			else if (argv[optind][0] == '-' || vault != NULL)
				usage(EXIT_USAGE);
			else
				vault = argv[optind];
		}
		if (ui && (as_json || vault != NULL))
			usage(EXIT_USAGE);
		if (ui)
			return cmd_status_ui(path);
		fd = connect_daemon(path);
		return cmd_status(fd, as_json, vault);
	}
	if (strcmp(cmd, "version") == 0) {
		struct msg m;

		if (optind != argc)
			usage(EXIT_USAGE);
		printf("vaultsyncctl %s (protocol %u)\n", VS_VERSION, VS_PROTO_VERSION);
		fflush(stdout);
		fd = connect_daemon(path);
		request(fd, CTL_VERSION, NULL);
		if (recv_one(fd, &m) != MSG_OK || m.hdr.type != MSG_CTL_RESULT)
			return EXIT_UNHEALTHY;
		result_exit(&m.u.cres);
	}
	if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0) {
		if (optind != argc)
			usage(EXIT_USAGE);
		fd = connect_daemon(path);
		return cmd_simple(fd, strcmp(cmd, "reload") == 0 ? CTL_RELOAD : CTL_STOP);
	}
	{
		static const struct {
			const char *name;
			uint32_t cmd;
			int secret;	/* 1: a passphrase; 2: asked twice */
		} vcmds[] = {
			{ "init", CTL_INIT, 2 }, { "unlock", CTL_UNLOCK, 1 }, { "lock", CTL_LOCK, 0 },
			{ "sync", CTL_SYNC, 0 }, { "push", CTL_PUSH, 0 }, { "pull", CTL_PULL, 1 },
			{ "history", CTL_HISTORY, 0 }, { "verify", CTL_VERIFY, 0 },
		};
		const char *vault = NULL, *file = NULL, *version = NULL;
		struct secbuf pass;
		uint32_t flags = 0;
		size_t k;

		for (k = 0; k < sizeof(vcmds) / sizeof(vcmds[0]); k++)
			if (strcmp(cmd, vcmds[k].name) == 0)
				break;
		if (k == sizeof(vcmds) / sizeof(vcmds[0]))
			goto unknown;
		for (; optind < argc; optind++) {
			if (vcmds[k].secret && strcmp(argv[optind], "--passphrase-file") == 0 &&
			    optind + 1 < argc)
				file = argv[++optind];
			else if (vcmds[k].cmd == CTL_PUSH && strcmp(argv[optind], "--force") == 0)
				flags |= CTL_F_FORCE;
			else if (vcmds[k].cmd == CTL_PULL && strcmp(argv[optind], "--version") == 0 &&
			    optind + 1 < argc)
				version = argv[++optind];
			else if (vcmds[k].cmd == CTL_VERIFY && strcmp(argv[optind], "--decrypt") == 0) {
				/* The daemon holds no key; decrypting needs the decoder child. */
				fprintf(stderr, "%s: verify --decrypt is not available yet: it needs "
				    "the sandboxed decoder; verify without it compares the remote "
				    "with what was encrypted here\n", progname);
				return EXIT_USAGE;
			}
			else if (argv[optind][0] == '-' || vault != NULL)
				usage(EXIT_USAGE);
			else
				vault = argv[optind];
		}
		if (vault == NULL)
			usage(EXIT_USAGE);
		/* Ask before connecting: a slow typist must not hold a daemon slot. */
		if (vcmds[k].secret)
			get_passphrase(file, vcmds[k].secret == 2, &pass);
		fd = connect_daemon(path);
		return cmd_vault(path, fd, vcmds[k].cmd, vault, flags, version,
		    vcmds[k].secret ? &pass : NULL);
	}
unknown:
	fprintf(stderr, "%s: unknown command: %s\n", progname, cmd);
	usage(EXIT_USAGE);
}
