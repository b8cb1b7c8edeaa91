/*
 * vaultsync-generator: a systemd generator (systemd.generator(7)).  The
 * packaged unit runs the daemon in a mount namespace of its own, where a
 * tmpfs it mounted would be seen by no one else, and without the
 * capability to mount at all.  So systemd mounts the vaults instead: from
 * the system configuration this writes, into the generator's normal
 * directory,
 *   - a .mount unit for each vault with Mount yes (What=vaultsync, as the
 *     daemon's own mounts, with the Owner, mode 0700 and MountSize), and
 *   - vaultsyncd.service.d/50-vaults.conf: RequiresMountsFor= those paths,
 *     ReadWritePaths= for the vaults, the state and runtime directories and
 *     the dir: remotes (made before the start when missing), and only the
 *     capabilities this configuration needs beyond the unit's SETUID and
 *     SETGID (a vault that belongs to another Owner, a dir: remote).
 * It runs at boot and at every daemon-reload, before any file system but
 * the root may be mounted, so it reads the configuration and the passwd and
 * group files and nothing else.  A configuration that does not load
 * produces nothing: the service's own check says what is wrong.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define UNIT_MAX	(CFG_PATH_MAX * 4 + 16)

/* systemd-escape --path: the unit name of a mount point. */
static int
escape_path(const char *path, const char *suffix, char *out, size_t len)
{
	static const char keep[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789:_.";
	size_t n = 0, end;
	const char *p = path;

	while (*p == '/')
		p++;
	end = strlen(p);
	while (end > 0 && p[end - 1] == '/')
		end--;
	if (end == 0)
		return snprintf(out, len, "-%s", suffix) < (int)len ? 0 : -1;
	for (size_t i = 0; i < end; i++) {
		unsigned char c = (unsigned char)p[i];
		int w;

		if (c == '/') {
			while (i + 1 < end && p[i + 1] == '/')
				i++;
			w = snprintf(out + n, len - n, "-");
		} else if (strchr(keep, c) != NULL && c != '\0' && !(i == 0 && c == '.'))
			w = snprintf(out + n, len - n, "%c", c);
		else
			w = snprintf(out + n, len - n, "\\x%02x", c);
		if (w < 0 || (size_t)w >= len - n)
			return -1;
		n += (size_t)w;
	}
	return snprintf(out + n, len - n, "%s", suffix) < (int)(len - n) ? 0 : -1;
}

/*
 * A path as a unit file holds it without quoting or escaping: blanks split
 * lists, quotes and backslashes are unquoted, and % starts a specifier.
 */
static int
plain_path(const char *what, const char *path, int say)
{
	for (const char *p = path; *p != '\0'; p++)
		if (strchr("/._:@+-", *p) == NULL && !((*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) {
			if (say)
				fprintf(stderr, "vaultsync-generator: %s %s: only letters, digits and "
			    "/._:@+- go into a unit as they are; left out (mount it yourself, "
				    "Mount no, and give the service access in a drop-in)\n", what, path);
			return 0;
		}
	return 1;
}

static FILE *
create(const char *dir, const char *name)
{
	char path[CFG_PATH_MAX + UNIT_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return fopen(path, "we");
}

static int
write_mount(const char *dir, const struct cfg_vault *v, const char *unit, uid_t uid, gid_t gid)
{
	FILE *f = create(dir, unit);

	if (f == NULL)
		return -1;
	fprintf(f, "# Written by vaultsync-generator from %s:%d (vault %s).\n"
	    "[Unit]\nDescription=vaultsync RAM vault %s\n"
	    "Documentation=man:vaultsyncd.conf(5)\n"
	    "SourcePath=%s\n\n"
	    "[Mount]\nWhat=vaultsync\nWhere=%s\nType=tmpfs\n"
	    "Options=mode=0700,uid=%u,gid=%u,size=%llu,nosuid,nodev,noexec\n",
	    v->file, v->line, v->name, v->name, v->file, v->path, (unsigned)uid, (unsigned)gid,
	    (unsigned long long)v->mount_size);
	return fclose(f);
}

/* '-': a path that does not exist yet is no reason to fail the start. */
static void
rw_path(FILE *f, const char *what, const char *path)
{
	if (plain_path(what, path, 1))
		fprintf(f, "ReadWritePaths=-%s\n", path);
}

static int
generate(const char *dir, const struct cfg *c)
{
	char unit[UNIT_MAX], dropdir[CFG_PATH_MAX + 32];
	struct passwd *pw = getpwnam(c->privsep_user);
	/* Copied: getpwnam's answer is overwritten by the next look-up. */
	int have_priv = pw != NULL, other_owner = 0, dir_remote = 0;
	uid_t priv_uid = pw != NULL ? pw->pw_uid : 0;
	gid_t priv_gid = pw != NULL ? pw->pw_gid : 0;
	FILE *f;
	size_t i;

	snprintf(dropdir, sizeof(dropdir), "%s/vaultsyncd.service.d", dir);
	if (mkdir(dropdir, 0755) != 0 && errno != EEXIST)
		return -1;
	if ((f = create(dropdir, "50-vaults.conf")) == NULL)
		return -1;
	fprintf(f, "# Written by vaultsync-generator from %s.\n[Unit]\n", c->file);
	for (i = 0; i < c->nvaults; i++) {
		const struct cfg_vault *v = &c->vaults[i];
		char err[CFG_NAME_MAX * 2 + 64];
		uid_t uid;
		gid_t gid;

		if (cfg_vault_owner_ids(v, &uid, &gid, err, sizeof(err)) != 0)
			continue;	/* the daemon's check names the unknown Owner */
		if (uid != 0 || gid != 0)
			other_owner = 1;
		if (v->remote_kind == CFG_REMOTE_DIR)
			dir_remote = 1;
		/* Said once, where its ReadWritePaths line is left out. */
		if (!v->mount || !plain_path("Path", v->path, 0) ||
		    escape_path(v->path, ".mount", unit, sizeof(unit)) != 0 ||
		    write_mount(dir, v, unit, uid, gid) != 0)
			continue;
		fprintf(f, "RequiresMountsFor=%s\n", v->path);
	}
	fprintf(f, "\n[Service]\n");
	rw_path(f, "StateDir", c->state_dir);
	rw_path(f, "RuntimeDir", c->runtime_dir);
	for (i = 0; i < c->nvaults; i++) {
		const struct cfg_vault *v = &c->vaults[i];

		rw_path(f, "Path", v->path);
		if (v->remote_kind == CFG_REMOTE_DIR && plain_path("Remote dir:", v->remote_dir, 1)) {
			/*
			 * Writable here only if it exists when the service
			 * starts: made first, outside the sandbox ('+'), as the
			 * daemon would make it, for PrivsepUser.
			 */
			fprintf(f, "ReadWritePaths=-%s\n", v->remote_dir);
			if (have_priv)
				fprintf(f, "ExecStartPre=+/bin/sh -c 'test -d %s || install -d -m 0700 "
				    "-o %u -g %u %s'\n", v->remote_dir, (unsigned)priv_uid,
				    (unsigned)priv_gid, v->remote_dir);
		}
	}
	/*
	 * A vault of another Owner: its files are read, written as the Owner's
	 * and wiped by root.  A dir: remote belongs to PrivsepUser, mode 0700,
	 * and the parent opens it for the uploader.
	 */
	if (other_owner)
		fprintf(f, "CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_CHOWN CAP_FOWNER\n");
	else if (dir_remote)
		fprintf(f, "CapabilityBoundingSet=CAP_DAC_READ_SEARCH\n");
	return fclose(f);
}

int
main(int argc, char **argv)
{
	char file[CFG_PATH_MAX];
	struct cfg_env env;
	struct cfg_err ce;
	struct cfg c;
	int explicit_file = 0;

	cfg_env_from_process(&env, CFG_SYSTEM);
	cfg_default_file(&env, file, sizeof(file));
	/* -f FILE: another configuration, to see what it would generate. */
	if (argc >= 3 && strcmp(argv[1], "-f") == 0) {
		snprintf(file, sizeof(file), "%s", argv[2]);
		explicit_file = 1;
		argc -= 2;
		argv += 2;
	}
	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: vaultsync-generator [-f FILE] NORMAL-DIR [EARLY-DIR "
		    "LATE-DIR]\n");
		return 64;
	}
	if (!explicit_file && access(file, F_OK) != 0)
		return 0;
	if (cfg_load(&c, file, explicit_file, &env, &ce) != 0) {
		fprintf(stderr, "vaultsync-generator: %s:%d: %s; no vault is mounted for "
		    "vaultsyncd.service until it is fixed\n", ce.file, ce.line, ce.msg);
		return 0;
	}
	if (generate(argv[1], &c) != 0) {
		fprintf(stderr, "vaultsync-generator: %s: %s\n", argv[1], strerror(errno));
		cfg_free(&c);
		return 1;
	}
	cfg_free(&c);
	return 0;
}
