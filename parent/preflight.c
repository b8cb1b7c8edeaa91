/*
 * What a configuration needs of this host beyond what the parser can see:
 * the configuration file itself, the PrivsepUser, the user's runtime
 * directory, each S3 vault's credentials file and that a vault we do not
 * mount lives in RAM.  vaultsyncd -t checks all of it; the daemon checks it
 * again before it starts, so that a setup that cannot work is refused with
 * what to do instead of failing later with a bare system error.  Each
 * problem is one line naming the keyword's file:line (a default: the file)
 * and the remedy.
 *
 * Nothing here reads a secret: the credentials file is judged by lstat
 * alone (creds_stat), as DESIGN §2 keeps its bytes from the parent.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "log.h"
#include "vault_ops.h"
#include "vaultsyncd.h"

static int testing;	/* vaultsyncd -t: every problem is an error, on stderr */
static int nerrors;

static void problem(int, const struct cfg_err *, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A problem that stops the daemon is an error at startup too; the others
 * (fatal 0) stop only -t, and a starting daemon logs them as warnings: the
 * rest of it still works, and the part they concern says so when used.
 */
static void
problem(int fatal, const struct cfg_err *at, const char *fmt, ...)
{
	char msg[1024], where[CFG_PATH_MAX + 16];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at->line > 0)
		snprintf(where, sizeof(where), "%s:%d", at->file, at->line);
	else
		snprintf(where, sizeof(where), "%s", at->file);
	if (fatal || testing) {
		fprintf(stderr, "vaultsyncd: %s: %s\n", where, msg);
		nerrors++;
	} else
		log_warn("%s: %s", where, msg);
}

int
preflight_config_file(const char *file, int explicit_file, const struct cfg_env *e)
{
	int sys = e->mode == CFG_SYSTEM;
	struct stat st;

	/* An explicit -f names its own error in the parser (DESIGN §10: 64). */
	if (explicit_file || file[0] == '\0' || stat(file, &st) == 0 || errno != ENOENT)
		return 0;
	fprintf(stderr, "vaultsyncd: %s: no such file: create it with a Vault block for "
	    "each vault (see vaultsyncd.conf(5)), or name another file with -f; the "
	    "smallest is\n"
	    "\tVault work\n"
	    "\t\t# %s\n"
	    "\t\tPath %s\n"
	    "\t\tRemote dir:%s%s\n", file,
	    sys ? "a tmpfs the daemon mounts" : "a directory in RAM (tmpfs or ramfs) that exists",
	    sys ? "/run/vaults/work" : "/dev/shm/work",
	    sys ? "/var/backups/vaultsync" : e->home, sys ? "" : "/vault-backup");
	return EXIT_NOINPUT;
}

/* The account the children drop to must exist and be nobody's privileges. */
static void
check_identities(const struct cfg *c)
{
	struct cfg_err at;
	struct passwd *pw;
	struct group *gr;

	if (c->mode != CFG_SYSTEM)
		return;
	cfg_where(c, NULL, "PrivsepUser", &at);
	if ((pw = getpwnam(c->privsep_user)) == NULL)
		problem(1, &at, "PrivsepUser %s does not exist; create it (systemd-sysusers, "
		    "or: useradd --system --no-create-home --shell /usr/sbin/nologin %s)",
		    c->privsep_user, c->privsep_user);
	else if (pw->pw_uid == 0 || pw->pw_gid == 0)
		problem(1, &at, "PrivsepUser %s must not be root or in group root; name an "
		    "unprivileged account of its own", c->privsep_user);
	else {
		D.privsep_uid = pw->pw_uid;
		D.privsep_gid = pw->pw_gid;
	}
	if ((gr = getgrnam(c->control_group)) != NULL) {
		D.control_gid = gr->gr_gid;
		D.have_control_gid = 1;
	}
}

/*
 * User mode's default RuntimeDir is in the login session's runtime
 * directory; without one, mkdir below /run/user fails with a bare EACCES.
 */
static void
check_user_runtime(const struct cfg *c, const struct cfg_env *e)
{
	char base[CFG_PATH_MAX], why[CFG_PATH_MAX + 64];
	struct cfg_err at;
	struct stat st;
	int missing;

	if (c->mode != CFG_USER)
		return;
	cfg_where(c, NULL, "RuntimeDir", &at);
	if (at.line > 0)
		return;		/* chosen by hand: runtime_prepare makes it */
	if (e->xdg_runtime_dir[0] != '\0')
		msg_strlcpy(base, e->xdg_runtime_dir, sizeof(base));
	else
		snprintf(base, sizeof(base), "/run/user/%u", e->uid);
	missing = stat(base, &st) != 0;
	if (!missing && S_ISDIR(st.st_mode) && st.st_uid == e->uid)
		return;
	snprintf(why, sizeof(why), "%s%s %s", e->xdg_runtime_dir[0] != '\0' ?
	    "XDG_RUNTIME_DIR " : "XDG_RUNTIME_DIR is not set, and ", base,
	    missing ? "does not exist" : "is not a directory of yours");
	problem(1, &at, "%s: the default RuntimeDir, %s, lives there; log in through a "
	    "session that sets XDG_RUNTIME_DIR (a desktop or ssh login; su and sudo "
	    "usually do not), or run 'loginctl enable-linger' once and export "
	    "XDG_RUNTIME_DIR=/run/user/%u, or set RuntimeDir to a directory of your own",
	    why, c->runtime_dir, e->uid);
}

/* Each distinct file once, named where the first vault that uses it gets it. */
static void
check_credentials(const struct cfg *c)
{
	const char *remedy;
	struct cfg_err at;
	enum cred_state st;
	char err[256];
	size_t i, j;

	for (i = 0; i < c->nvaults; i++) {
		const struct cfg_vault *v = &c->vaults[i];

		if (v->remote_kind != CFG_REMOTE_S3)
			continue;
		for (j = 0; j < i; j++)
			if (c->vaults[j].remote_kind == CFG_REMOTE_S3 &&
			    strcmp(c->vaults[j].credentials_file, v->credentials_file) == 0)
				break;
		if (j < i || creds_stat(v->credentials_file, &st, err, sizeof(err)) == 0)
			continue;
		remedy = st == CRED_ST_MISSING ? "; create it, mode 0600, with the lines "
		    "AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... (vaultsyncd.conf(5)), "
		    "or point CredentialsFile at the file that has them" : "";
		cfg_where(c, v, "CredentialsFile", &at);
		problem(0, &at, "CredentialsFile %s (vault %s, %s): %s%s%s", v->credentials_file,
		    v->name, v->remote, err, remedy, testing ? "" :
		    "; its pushes wait until the file is fixed");
	}
}

/* A vault we do not mount must already be in RAM: it never touches a disk. */
static void
check_vault_paths(const struct cfg *c)
{
	struct cfg_err at;
	struct stat st;
	size_t i;

	for (i = 0; i < c->nvaults; i++) {
		const struct cfg_vault *v = &c->vaults[i];

		/* A Path yet to be made may still become a tmpfs mount point. */
		if (v->mount || stat(v->path, &st) != 0 || vault_path_on_ram(v->path))
			continue;
		cfg_where(c, v, "Path", &at);
		problem(0, &at, "vault %s: Path %s is not on tmpfs or ramfs, and a vault must "
		    "never touch a disk: use a directory in RAM (under $XDG_RUNTIME_DIR or "
		    "/dev/shm), or mount a tmpfs on it%s%s", v->name,
		    v->path, c->mode == CFG_SYSTEM ? ", or set Mount yes" : "",
		    testing ? "" : "; init and unlock refuse it until then");
	}
}

int
preflight(const struct cfg *c, const struct cfg_env *e, int test)
{
	testing = test;
	nerrors = 0;
	check_identities(c);
	check_user_runtime(c, e);
	check_credentials(c);
	check_vault_paths(c);
	if (c->mode == CFG_SYSTEM && !D.have_control_gid && !test)
		log_warn("ControlGroup %s does not exist: the control socket is for root only",
		    c->control_group);
	return nerrors > 0 ? EXIT_USAGE : 0;
}
