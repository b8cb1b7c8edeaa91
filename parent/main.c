/*
 * vaultsyncd: the privileged parent.  It reads the config, takes the
 * instance lock, creates the sockets and the inotify instance, starts the
 * three sandboxed children and supervises them from one epoll loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "chgcheck.h"
#include "job.h"
#include "log.h"
#include "vaultsyncd.h"

#define SHUTDOWN_GRACE_MS	10000
#define SHUTDOWN_PUSH_GRACE_MS	120000	/* a push in flight at SIGTERM may take this long */
#define STARTUP_TIMEOUT_MS	15000

struct daemon D;

static int startup_timer = -1, grace_timer = -1;
static int children_stopping;

static void __attribute__((noreturn))
usage(int code)
{
	FILE *f = code ? stderr : stdout;

	fprintf(f,
"usage: vaultsyncd [-dtT] [-f FILE] [--user] [--insecure-no-sandbox] [-1 [VAULT...]]\n"
"\n"
"Keeps RAM vaults (tmpfs directories of secrets) durable: each change is\n"
"archived, encrypted with age and saved locally and to S3 or a directory\n"
"remote.  Runs in the foreground; logs go to standard output.\n"
"\n"
"  -f FILE    read FILE instead of the default configuration\n"
"             (%s/vaultsync/vaultsyncd.conf as root,\n"
"             ~/.config/vaultsync/vaultsyncd.conf in user mode); an explicit\n"
"             FILE must exist\n"
"  -d         debug: log level debug, and a child's forbidden system call is\n"
"             reported by name before it exits (seccomp TRAP mode)\n"
"  -t         check the configuration and what it needs of this host, and\n"
"             exit (0 ok, 64 error, 66 no configuration file)\n"
"  -T         print the effective configuration and exit\n"
"  -1 [VAULT...]\n"
"             one-shot: start the children, save each named (default: every)\n"
"             unlocked vault once, and exit (0 all saved, 1 a save failed);\n"
"             for cron and scripts when no daemon runs\n"
"  --user     user mode even when run as root: XDG paths, no mounts, no\n"
"             privilege drop; children are confined by Landlock and seccomp\n"
"  --insecure-no-sandbox\n"
"             start even if a sandbox step cannot be applied (logged loudly);\n"
"             without it such a failure stops the daemon\n"
"  -h, --help     this text\n"
"  -V, --version  print the version\n"
"\n"
"Signals: SIGTERM/SIGINT stop (a second one forces exit 130); SIGHUP reloads.\n"
"Exit status: 0 ok, 64 usage or configuration error, 66 no configuration\n"
"file, 70 internal error, 71 sandbox could not be applied, 73 cannot\n"
"create state, socket, lock or watches (or another instance runs),\n"
"130 forced shutdown.  See vaultsyncd(8) and vaultsyncd.conf(5).\n",
	    SYSCONFDIR);
	exit(code);
}

static void
cleanup(void)
{
	ctl_close();
	runtime_cleanup();
}

static void __attribute__((noreturn))
finish(int code)
{
	cleanup();
	log_info("vaultsyncd exiting with status %d", code);
	exit(code);
}

/* Forced: kill every child and wait (briefly) so none outlives us. */
static void __attribute__((noreturn))
forced_exit(void)
{
	uint64_t until = mono_ms() + 500;
	int i;

	log_warn("second signal: forcing shutdown");
	children_stop_all(1);
	for (i = 0; i < NCHILDREN; i++) {
		struct child_proc *c = &D.children[i];
		struct pollfd p = { c->pidfd, POLLIN, 0 };
		siginfo_t si;
		uint64_t now = mono_ms();

		if (c->pidfd < 0)
			continue;
		if (now < until)
			(void)poll(&p, 1, (int)(until - now));
		(void)waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG);
	}
	finish(EXIT_FORCED);
}

static void
grace_expired(void *arg)
{
	(void)arg;
	grace_timer = -1;
	log_warn("shutdown took too long; killing the children");
	children_stopping = 1;
	children_stop_all(1);
}

void
daemon_shutdown(int forced)
{
	if (D.shutting_down || forced)
		forced_exit();
	D.shutting_down = 1;
	sd_notifyf("STOPPING=1\nSTATUS=stopping");
	ctl_close();
	if (!D.oneshot)
		tick_final_saves();
	/* Pushes in flight finish first (the uploader must live for them); then the children go. */
	if (remote_any_busy() || jobs_running() || tick_any_running())
		log_info("shutting down after the saves and pushes in progress");
	else
		log_info("shutting down");
	grace_timer = timer_add(remote_any_busy() || jobs_running() || tick_any_running() ?
	    SHUTDOWN_PUSH_GRACE_MS : SHUTDOWN_GRACE_MS, grace_expired, NULL);
}

static void
startup_expired(void *arg)
{
	int i;

	(void)arg;
	startup_timer = -1;
	if (D.ready)
		return;
	for (i = 0; i < NCHILDREN; i++)
		if (D.children[i].pidfd >= 0 && D.children[i].state != CHILD_ST_RUNNING)
			log_error("%s did not say HELLO within %d ms",
			    msg_role_name(D.children[i].role), STARTUP_TIMEOUT_MS);
	children_stop_all(1);
	finish(EXIT_SOFTWARE);
}

void
daemon_child_failed_at_startup(struct child_proc *c, int status)
{
	log_error("%s failed to start: %s", msg_role_name(c->role), c->last_reason);
	children_stop_all(1);
	if (status == 71) {
		log_error("a sandbox step could not be applied; refusing to run unsandboxed "
		    "(--insecure-no-sandbox overrides this, insecurely)");
		finish(EXIT_OSERR);
	}
	finish(EXIT_SOFTWARE);
}

static void
watchdog_ping(void *arg)
{
	(void)arg;
	sd_notifyf("WATCHDOG=1");
	timer_add(sd_watchdog_interval_ms(), watchdog_ping, NULL);
}

void
daemon_child_ready(void)
{
	if (D.ready || !children_all_running())
		return;
	D.ready = 1;
	if (startup_timer >= 0) {
		timer_cancel(startup_timer);
		startup_timer = -1;
	}
	if (D.cfg.status_api && runtime_write_daemon_json() != 0)
		log_warn("cannot write %s/daemon.json: %s", D.cfg.runtime_dir, strerror(errno));
	sd_notifyf("READY=1\nSTATUS=supervising %zu vault(s)\nMAINPID=%d", vreg_count(),
	    (int)getpid());
	if (sd_watchdog_interval_ms() > 0)
		timer_add(sd_watchdog_interval_ms(), watchdog_ping, NULL);
	if (D.oneshot)
		tick_oneshot_start();
	else {
		tick_startup();
		headpoll_start();
		verify_start();
	}
	log_info("ready: %zu vault(s), %s mode, control socket %s%s%s", vreg_count(),
	    D.cfg.mode == CFG_SYSTEM ? "system" : "user", D.cfg.control_socket,
	    D.cfg.status_api ? ", status API " : "", D.cfg.status_api ? D.status_url : "");
}

/* The credential files the uploader must read: one per distinct path of an s3 vault. */
static void
collect_creds(const struct cfg *c, struct msg_cred_info *out, size_t *n)
{
	size_t i, j;

	*n = 0;
	for (i = 0; i < c->nvaults; i++) {
		const struct cfg_vault *v = &c->vaults[i];
		struct msg_cred_info *ci;
		size_t dlen = strlen(D.env.credentials_directory);

		if (v->remote_kind != CFG_REMOTE_S3)
			continue;
		for (j = 0; j < *n; j++)
			if (strcmp(out[j].path, v->credentials_file) == 0)
				break;
		if (j < *n || *n == MAX_CREDFILES)
			continue;
		ci = &out[(*n)++];
		memset(ci, 0, sizeof(*ci));
		msg_strlcpy(ci->path, v->credentials_file, sizeof(ci->path));
		if (strcmp(v->credentials_file, c->credentials_file) != 0)
			msg_strlcpy(ci->name, v->name, sizeof(ci->name));
		ci->source = dlen > 0 && strncmp(ci->path, D.env.credentials_directory, dlen) == 0 &&
		    ci->path[dlen] == '/' ? CRED_SRC_SYSTEMD : CRED_SRC_FILE;
		ci->state = CRED_ST_UNKNOWN;
	}
}

static void
apply_log_settings(void)
{
	log_set_format((enum log_format)D.cfg.log_format);
	log_set_level(D.debug ? LL_DEBUG : (enum log_level)D.cfg.log_level);
}

/* Settings bound at startup (sockets, identities, paths) need a restart to change. */
static void
keep_startup_settings(struct cfg *n, const struct cfg *o)
{
#define KEEP(field, name) do {							\
	if (strcmp(n->field, o->field) != 0) {					\
		log_warn("reload: %s changed; it takes effect after a restart", name);	\
		memcpy(n->field, o->field, sizeof(n->field));			\
	}									\
} while (0)
	KEEP(runtime_dir, "RuntimeDir");
	KEEP(state_dir, "StateDir");
	KEEP(control_socket, "ControlSocket");
	KEEP(control_group, "ControlGroup");
	KEEP(privsep_user, "PrivsepUser");
	KEEP(privsep_chroot, "PrivsepChroot");
	KEEP(status_listen, "StatusListen");
#undef KEEP
	if (n->status_api != o->status_api) {
		log_warn("reload: StatusAPI changed; it takes effect after a restart");
		n->status_api = o->status_api;
	}
	n->status_family = o->status_family;
	n->status_port = o->status_port;
	memcpy(n->status_addr, o->status_addr, sizeof(n->status_addr));
}

int
daemon_reload(char *err, size_t errlen)
{
	struct msg_cred_info nc[MAX_CREDFILES];
	struct cfg n;
	struct cfg_err ce;
	size_t nn, i;
	int creds_changed;

	sd_notifyf("RELOADING=1");
	if (cfg_load(&n, D.config_file, D.explicit_file, &D.env, &ce) != 0) {
		D.config_ok = 0;	/* no pruning on the word of a configuration we cannot read */
		if (ce.line > 0)
			snprintf(err, errlen, "%s:%d: %s", ce.file, ce.line, ce.msg);
		else
			snprintf(err, errlen, "%s: %s", ce.file, ce.msg);
		log_error("reload failed, keeping the running configuration: %s", err);
		sd_notifyf("READY=1");
		return -1;
	}
	D.config_ok = 1;
	keep_startup_settings(&n, &D.cfg);
	collect_creds(&n, nc, &nn);
	creds_changed = nn != D.ncreds;
	for (i = 0; !creds_changed && i < nn; i++)
		creds_changed = strcmp(nc[i].path, D.creds[i].path) != 0 ||
		    strcmp(nc[i].name, D.creds[i].name) != 0;
	cfg_free(&D.cfg);
	D.cfg = n;
	if (creds_changed) {
		memcpy(D.creds, nc, sizeof(nc[0]) * nn);
		D.ncreds = nn;
	}
	apply_log_settings();
	chgcheck_forget_all();	/* settings or paths may differ: each vault's next save is full */
	wire_sync_config();
	vault_adopt_all();
	children_config_changed(creds_changed);
	if (!creds_changed)
		(void)children_creds_changed();	/* a file written or replaced: read it now */
	if (D.ready) {
		tick_startup();		/* vaults the reload added */
		headpoll_start();
		verify_start();		/* VerifyInterval may have changed */
	}
	sd_notifyf("READY=1\nSTATUS=supervising %zu vault(s)", vreg_count());
	log_info("configuration reloaded: %zu vault(s)", vreg_count());
	return 0;
}

static void
signal_readable(int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;
	char err[600];

	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("received %s", strsignal((int)si.ssi_signo));
			daemon_shutdown(0);
			break;
		case SIGHUP:
			log_info("SIGHUP: reloading %s", D.cfg.file[0] ? D.cfg.file : "configuration");
			(void)daemon_reload(err, sizeof(err));
			break;
		}
	}
}

static void __attribute__((noreturn))
config_error(const struct cfg_err *ce)
{
	if (ce->line > 0)
		fprintf(stderr, "vaultsyncd: %s:%d: %s\n", ce->file, ce->line, ce->msg);
	else
		fprintf(stderr, "vaultsyncd: %s: %s\n", ce->file, ce->msg);
	exit(EXIT_USAGE);
}

static void
refuse_secret_environment(void)
{
	static const char *const banned[] = { "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN" };
	size_t i;

	for (i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
		if (getenv(banned[i]) != NULL) {
			fprintf(stderr, "vaultsyncd: %s is set in the environment; refusing to "
			    "start: S3 credentials belong in CredentialsFile (or a systemd "
			    "credential), which only the uploader reads\n", banned[i]);
			exit(EXIT_USAGE);
		}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "user", no_argument, NULL, 'U' },
		{ "insecure-no-sandbox", no_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char default_file[CFG_PATH_MAX], err[600];
	struct cfg_err ce;
	int ch, test = 0, dump = 0, user = 0, sfd, rc;
	sigset_t mask;

	while ((ch = getopt_long(argc, argv, "f:dtThV1", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			D.config_file = optarg;
			D.explicit_file = 1;
			break;
		case 'd':
			D.debug = 1;
			break;
		case 't':
			test = 1;
			break;
		case 'T':
			dump = 1;
			break;
		case 'U':
			user = 1;
			break;
		case '1':
			D.oneshot = 1;
			break;
		case 'I':
			D.insecure = 1;
			break;
		case 'h':
			usage(0);
		case 'V':
			printf("vaultsyncd %s (protocol %u)\n", VS_VERSION, VS_PROTO_VERSION);
			exit(0);
		default:
			usage(EXIT_USAGE);
		}
	}
	if (optind != argc && !D.oneshot) {
		fprintf(stderr, "vaultsyncd: unexpected argument: %s\n", argv[optind]);
		usage(EXIT_USAGE);
	}
	D.oneshot_vaults = argv + optind;
	refuse_secret_environment();

	cfg_env_from_process(&D.env, (geteuid() != 0 || user) ? CFG_USER : CFG_SYSTEM);
	if (D.config_file == NULL) {
		cfg_default_file(&D.env, default_file, sizeof(default_file));
		D.config_file = default_file;
	}
	if ((rc = preflight_config_file(D.config_file, D.explicit_file, &D.env)) != 0)
		exit(rc);
	D.config_ok = 1;	/* set before the load: a failed one exits */
	if (cfg_load(&D.cfg, D.config_file, D.explicit_file, &D.env, &ce) != 0)
		config_error(&ce);
	if (dump) {
		if (cfg_dump(&D.cfg, stdout) != 0 || fflush(stdout) != 0)
			exit(EXIT_SOFTWARE);
		exit(0);
	}
	if (test)
		exit(preflight(&D.cfg, &D.env, 1));
	for (char **n = D.oneshot_vaults; D.oneshot && *n != NULL; n++)
		if (cfg_vault_find(&D.cfg, *n) == NULL) {
			fprintf(stderr, "vaultsyncd: -1: no vault named %s in %s\n", *n, D.cfg.file);
			exit(EXIT_USAGE);
		}

	log_init("parent", LF_JSON, LL_INFO);
	apply_log_settings();
	/* What -t checks, again: a setup that cannot work stops here, saying why. */
	if ((rc = preflight(&D.cfg, &D.env, 0)) != 0)
		exit(rc);
	if (D.insecure)
		log_error("INSECURE: --insecure-no-sandbox given: children will run even if "
		    "their sandbox cannot be applied");

	umask(077);
	/* Passphrases pass through this process: no core dumps, no ptrace by peers. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("PR_SET_DUMPABLE");
	D.lock_fd = D.ctl_fd = D.status_fd = D.inotify_fd = -1;
	if ((D.devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		fatal("open /dev/null");
	D.started_at = (int64_t)time(NULL);
	D.started_mono = mono_ms();

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
		fatal("sigprocmask");
	if ((sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) == -1)
		fatal("signalfd");
	signal(SIGPIPE, SIG_IGN);

	if ((rc = runtime_prepare(err, sizeof(err))) != 0)
		fatal_code(EXIT_CANTCREAT, "%s", err);
	collect_creds(&D.cfg, D.creds, &D.ncreds);
	ev_init();
	if (ev_add(sfd, signal_readable, NULL) != 0)
		fatal("ev_add signalfd");
	if (watch_init() != 0) {
		cleanup();
		fatal_code(EXIT_CANTCREAT, "inotify_init1: %s", strerror(errno));
	}
	wire_sync_config();
	vault_adopt_all();
	vault_init(watch_rebuild, watch_drop);	/* an op replaces a tree: watch it afresh */
	jobs_init();
	if (ctl_listen(&ctl_wiring) != 0) {
		int e = errno;

		cleanup();
		fatal_code(EXIT_CANTCREAT, "control socket %s: %s", D.cfg.control_socket,
		    strerror(e));
	}
	if (D.cfg.status_api && runtime_status_listen(err, sizeof(err)) != 0) {
		cleanup();
		fatal_code(EXIT_CANTCREAT, "%s", err);
	}
	children_init(&children_wiring);
	children_start_all();
	status_push_start();
	startup_timer = timer_add(STARTUP_TIMEOUT_MS, startup_expired, NULL);
	log_info("vaultsyncd %s starting (pid %d, config %s)", VS_VERSION, (int)getpid(),
	    D.cfg.file[0] ? D.cfg.file : "(defaults)");

	for (;;) {
		ev_run_once();
		ctlq_settle_all();	/* requests waiting for their vault, then held-back ticks */
		status_settle();	/* statusd hears of what changed, then of the ticks */
		/* In-flight saves finish before we go; a second signal does not wait. */
		if (D.oneshot && D.ready && !D.shutting_down && jobs_running() == 0 &&
		    !remote_any_busy() && !tick_any_running())
			daemon_shutdown(0);
		if (D.shutting_down && !children_stopping && !remote_any_busy() &&
		    jobs_running() == 0 && !tick_any_running()) {
			children_stopping = 1;
			children_stop_all(0);
		}
		if (D.shutting_down && !children_any_alive() && jobs_running() == 0) {
			if (grace_timer >= 0)
				timer_cancel(grace_timer);
			finish(D.oneshot_failed ? 1 : 0);
		}
	}
}
