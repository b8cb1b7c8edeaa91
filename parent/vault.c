/*
 * The main-thread side of the vault lifecycle: which vault is locked or
 * unlocked, starting operations on the worker thread, and folding their
 * results back into status and control-socket replies.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chgcheck.h"
#include "log.h"
#include "vault_ops.h"
#include "vaultsyncd.h"

static const char *const op_names[] = { "save", "init", "unlock", "lock", "pull" };
static void (*tree_replaced)(void);
static void (*tree_unwatch)(struct vault_rt *);

void
vault_init(void (*replaced)(void), void (*unwatch)(struct vault_rt *))
{
	tree_replaced = replaced;
	tree_unwatch = unwatch;
}

static const struct cfg_vault *
vault_cfg(const struct vault_rt *v)
{
	return cfg_vault_find(&D.cfg, v->name);
}

static int
resolve_owner(const struct cfg_vault *cv, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	if (D.cfg.mode != CFG_SYSTEM) {
		*uid = getuid();
		*gid = getgid();
		return 0;
	}
	return cfg_vault_owner_ids(cv, uid, gid, err, errlen);
}

/* A save killed half way leaves its temp file: the rename never happened, so it is garbage. */
static void
remove_stale_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".vault.tar.age.", 15) == 0 ||
		    strstr(de->d_name, ".tmp.") != NULL)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

/* After a (re)load: state from disk, and vaults left unlocked by an earlier run. */
void
vault_adopt_all(void)
{
	struct vault_rt *v;

	VAULT_FOREACH(v) {
		const struct cfg_vault *cv = vault_cfg(v);
		char dir[STORE_PATH_MAX];
		int present;

		if (v->busy)
			continue;
		store_dir(&D.cfg, cv, dir, sizeof(dir));
		if (!D.ready)
			remove_stale_temps(dir);
		(void)store_state_read(dir, &v->st);
		keep_load(v, dir);
		if (!store_exists(dir, "unlocked")) {
			v->state = VAULT_ST_LOCKED;
			continue;
		}
		present = cv->mount ? vault_path_is_mounted_tmpfs(cv->path) :
		    vault_path_on_ram(cv->path);
		if (present) {
			if (v->state == VAULT_ST_LOCKED)
				log_info("vault %s: adopting the unlocked vault at %s", v->name,
				    cv->path);
			v->state = VAULT_ST_UNLOCKED;
		} else {
			char p[STORE_PATH_MAX];

			/* Unlocked before a reboot: the RAM is gone, the archive is not. */
			store_file(dir, "unlocked", p, sizeof(p));
			unlink(p);
			v->state = VAULT_ST_LOCKED;
		}
	}
}

static void
reply(struct vault_job *vj, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Kept until op_done has finished: after an init, unlock or pull the client
 * may write into the vault the moment it hears back, and the watches on the
 * new tree must be in place by then.
 */
static void
reply(struct vault_job *vj, int code, const char *fmt, ...)
{
	va_list ap;

	if (vj->client < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(vj->reply_msg, sizeof(vj->reply_msg), fmt, ap);
	va_end(ap);
	vj->reply_code = code;
	vj->have_reply = 1;
}

static void save_ended(struct vault_rt *v, int rc, int changed, const char *msg);
static int start_op(struct vault_rt *v, enum vault_op op, int client, uint32_t gen,
    struct secbuf *pass, const struct vault_job *pull, char *err, size_t errlen);

/*
 * Entries no archive may hold (sockets, fifos, devices, setuid files, links
 * leading out of the vault) are left out of every save: say so once, and
 * again when what is left out changes, so that nobody believes them kept.
 */
static void
note_skipped(struct vault_rt *v, const struct vault_job *vj)
{
	char note[sizeof(v->skip_note)];

	if (vj->skipped == 0) {
		v->skip_note[0] = '\0';
		return;
	}
	snprintf(note, sizeof(note), "%llu entr%s (first: %.150s)",
	    (unsigned long long)vj->skipped, vj->skipped == 1 ? "y" : "ies", vj->first_skip);
	if (strcmp(note, v->skip_note) != 0)
		log_warn("vault %s: %s left out of the archive: an archive cannot hold them, and "
		    "they are not restored", v->name, note);
	msg_strlcpy(v->skip_note, note, sizeof(v->skip_note));
}

static void
op_done(struct job *j)
{
	struct vault_job *vj = (struct vault_job *)j;
	struct vault_rt *v = vreg_get(vj->vault);

	if (v == NULL) {	/* removed by a reload meanwhile */
		free(vj);
		return;
	}
	v->busy = 0;
	if (vj->op == VOP_SAVE)
		chgcheck_done(v, &vj->chk, vj->rc == 0);
	else
		chgcheck_forget(v);	/* a tree replaced or wiped, or a save without a check */
	if (vj->rc != 0) {
		D.oneshot_failed |= D.oneshot;
		v->consecutive_failures++;
		msg_strlcpy(v->last_error, vj->err, sizeof(v->last_error));
		log_error("vault %s: %s failed: %s", v->name, op_names[vj->op], vj->err);
		reply(vj, vj->rc, "%s", vj->err);
		if (vj->op == VOP_SAVE || vj->op == VOP_LOCK) {
			v->state = VAULT_ST_UNLOCKED;
			msg_strlcpy(v->save_error, vj->err, sizeof(v->save_error));
		}
		if (vj->op == VOP_SAVE)
			save_ended(v, vj->rc, 0, vj->err);
		if (vj->op == VOP_PULL)
			v->state = vj->unlocked ? VAULT_ST_UNLOCKED : VAULT_ST_LOCKED;
	} else {
		v->consecutive_failures = 0;
		v->last_error[0] = '\0';
		v->save_error[0] = '\0';	/* every op that succeeds leaves a current archive */
		v->st = vj->st;
		if (vj->changed)
			v->last_save_at = vj->st.saved_at;
		switch (vj->op) {
		case VOP_SAVE:
			v->state = VAULT_ST_UNLOCKED;
			if (vj->torn)
				log_warn("vault %s: the vault changed under each of %d tries; the "
				    "archive was kept as the last try made it, and the change that "
				    "tore it brings another tick", v->name, vj->save_tries);
			else if (vj->save_tries > 1)
				log_debug("vault %s: the vault changed during the save; made "
				    "again (%d tries)", v->name, vj->save_tries);
			if (vj->chk.verdict == CHG_UNCHANGED) {
				char m[256];

				snprintf(m, sizeof(m), "vault %s: unchanged since the last save (stat "
				    "scan of %llu entries, %llu us), no archive made", v->name,
				    (unsigned long long)vj->files,
				    (unsigned long long)vj->chk.scan_us);
				log_debug("%s", m);
				save_ended(v, 0, 0, m);
				break;
			}
			log_info("vault %s: %s (%llu files, %llu bytes)", v->name, vj->changed ?
			    "saved" : "unchanged, no new archive", (unsigned long long)vj->files,
			    (unsigned long long)vj->bytes);
			note_skipped(v, vj);
			{
				char m[512];

				snprintf(m, sizeof(m), "vault %s: %s, %llu files, %llu bytes, "
				    "archive %llu bytes%s%s", v->name, vj->changed ? "saved" : "unchanged",
				    (unsigned long long)vj->files, (unsigned long long)vj->bytes,
				    (unsigned long long)vj->st.archive_bytes,
				    vj->skipped ? "; left out: " : "", vj->skipped ? v->skip_note : "");
				save_ended(v, 0, vj->changed, m);
			}
			break;
		case VOP_INIT:
			v->state = VAULT_ST_UNLOCKED;
			log_info("vault %s: initialised and unlocked at %s", v->name, vj->v.path);
			reply(vj, 0, "vault %s initialised; unlocked at %s", v->name, vj->v.path);
			remote_kick(v, -1, 0, NULL);	/* identity.age and the first archive */
			break;
		case VOP_UNLOCK:
			v->state = VAULT_ST_UNLOCKED;
			log_info("vault %s: unlocked at %s (%llu files)", v->name, vj->v.path,
			    (unsigned long long)vj->files);
			reply(vj, 0, "vault %s unlocked at %s (%llu files)", v->name, vj->v.path,
			    (unsigned long long)vj->files);
			break;
		case VOP_PULL:
			v->state = vj->unlocked ? VAULT_ST_UNLOCKED : VAULT_ST_LOCKED;
			log_info("vault %s: pulled %s (%llu files)%s", v->name, vj->pull_latest ?
			    "the remote latest" : "a history version", (unsigned long long)vj->files,
			    vj->unlocked ? "; the unlocked vault now holds it" : "");
			reply(vj, 0, "vault %s: pulled %s, verified; it is the local archive%s",
			    v->name, vj->pull_latest ? "the remote latest" : "a history version",
			    vj->unlocked ? " and the vault's contents" : "");
			remote_pulled(v, vj);
			break;
		case VOP_LOCK:
			v->state = VAULT_ST_LOCKED;
			log_info("vault %s: locked%s", v->name, vj->changed ? " after a final save" : "");
			reply(vj, 0, "vault %s locked%s", v->name,
			    vj->changed ? " (final save written)" : "");
			remote_kick(v, -1, 0, NULL);
			break;
		}
	}
	if (vj->rc == 0 && vj->op != VOP_SAVE)
		keep_load(v, vj->dir);
	/* The tree under Path changed wholesale: its watches are made again. */
	if (vj->op != VOP_SAVE)
		tree_replaced();
	if (vj->have_reply)
		ctl_reply(vj->client, vj->client_gen, vj->reply_code, "%s", vj->reply_msg);
	free(vj);
	/* A tick that waited for this runs from ctlq_settle_all(), after waiting requests. */
}

/* How a job starts a decoder: the daemon's settings, copied for the worker thread. */
void
vault_decode_conf(struct decode_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->bin, sizeof(c->bin), "%s/vaultsync-decoder", libexec_dir);
	c->system_mode = D.cfg.mode == CFG_SYSTEM;
	c->uid = D.privsep_uid;
	c->gid = D.privsep_gid;
	msg_strlcpy(c->chroot_dir, D.chroot_dir, sizeof(c->chroot_dir));
	c->debug = D.debug;
	c->insecure = D.insecure;
}

static int
start_op(struct vault_rt *v, enum vault_op op, int client, uint32_t gen,
    struct secbuf *pass, const struct vault_job *pull, char *err, size_t errlen)
{
	const struct cfg_vault *cv = vault_cfg(v);
	struct vault_job *vj;

	if (cv == NULL) {
		snprintf(err, errlen, "no such vault: %s", v->name);
		return -1;
	}
	if (v->busy) {
		snprintf(err, errlen, "vault %s is busy (%s)", v->name,
		    op_names[v->busy_op]);
		return -1;
	}
	if ((vj = calloc(1, sizeof(*vj))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (op == VOP_PULL && pull != NULL) {
		msg_strlcpy(vj->src, pull->src, sizeof(vj->src));
		msg_strlcpy(vj->pull_etag, pull->pull_etag, sizeof(vj->pull_etag));
		vj->pull_latest = pull->pull_latest;
		vj->unlocked = v->state != VAULT_ST_LOCKED;
	}
	vj->job.run = vault_op_run;
	vj->job.done = op_done;
	vj->vault = vreg_ref(v);
	vj->op = op;
	vj->v = *cv;
	vj->system_mode = D.cfg.mode == CFG_SYSTEM;
	vault_decode_conf(&vj->dec);
	vj->client = client;
	vj->client_gen = gen;
	vj->prev = v->st;
	store_dir(&D.cfg, cv, vj->dir, sizeof(vj->dir));
	if (op == VOP_SAVE)
		chgcheck_prepare(v, &vj->chk);
	if ((op == VOP_SAVE || op == VOP_LOCK) &&
	    keep_restore(v, vj->dir, err, errlen) < 0) {
		free(vj);
		return -1;
	}
	if (resolve_owner(cv, &vj->owner_uid, &vj->owner_gid, err, errlen) != 0) {
		free(vj);
		return -1;
	}
	if (pass != NULL) {
		vj->pass = *pass;	/* ownership moves to the job */
		memset(pass, 0, sizeof(*pass));
	}
	if (job_start(&vj->job) != 0) {
		snprintf(err, errlen, "cannot start a worker: %s", strerror(errno));
		secbuf_free(&vj->pass);
		free(vj);
		return -1;
	}
	v->busy = 1;
	v->busy_op = op;
	/*
	 * The vault is locked and empty, so there is nothing to watch until op_done
	 * rebuilds the watches.  A pull into an unlocked vault keeps them: the user
	 * may be writing there meanwhile.
	 */
	if (op == VOP_UNLOCK)
		tree_unwatch(v);
	if (op == VOP_SAVE || op == VOP_LOCK)
		v->state = VAULT_ST_SAVING;
	return 0;
}

int
vault_start_pull(struct vault_rt *v, int client, uint32_t gen, struct secbuf *pass,
    const char *src, const char *etag, int latest, char *err, size_t errlen)
{
	struct vault_job p;

	memset(&p, 0, sizeof(p));
	msg_strlcpy(p.src, src, sizeof(p.src));
	msg_strlcpy(p.pull_etag, etag, sizeof(p.pull_etag));
	p.pull_latest = latest;
	return start_op(v, VOP_PULL, client, gen, pass, &p, err, errlen);
}

int
vault_request(int client, uint32_t gen, uint32_t cmd, const char *name, struct secbuf *pass,
    char *err, size_t errlen)
{
	struct vault_rt *v = vreg_find(name);
	enum vault_op op;

	if (v == NULL) {
		snprintf(err, errlen, "no such vault: %s", name);
		return -1;
	}
	if (D.shutting_down) {
		snprintf(err, errlen, "the daemon is shutting down");
		return -1;
	}
	switch (cmd) {
	case CTL_INIT:
		op = VOP_INIT;
		break;
	case CTL_UNLOCK:
		if (v->state != VAULT_ST_LOCKED) {
			snprintf(err, errlen, "vault %s is already unlocked", name);
			return -1;
		}
		op = VOP_UNLOCK;
		break;
	case CTL_LOCK:
		if (v->state == VAULT_ST_LOCKED) {
			snprintf(err, errlen, "vault %s is locked", name);
			return -1;
		}
		op = VOP_LOCK;
		break;
	default:
		snprintf(err, errlen, "unsupported command");
		return -1;
	}
	return start_op(v, op, client, gen, pass, NULL, err, errlen);
}

int
vault_save(struct vault_rt *v, save_done_fn done, char *err, size_t errlen)
{
	if (start_op(v, VOP_SAVE, -1, 0, NULL, NULL, err, errlen) != 0)
		return -1;
	v->save_done = done;
	return 0;
}

/* The save's caller learns its outcome; a save nobody waits for is pushed. */
static void
save_ended(struct vault_rt *v, int rc, int changed, const char *msg)
{
	save_done_fn done = v->save_done;

	v->save_done = NULL;
	if (done != NULL)
		done(v, rc, changed, msg);
	else if (rc == 0)
		remote_kick(v, -1, 0, NULL);	/* the final save at shutdown */
}

/* First SIGTERM: an unlocked vault not in a tick is saved once more, then pushed. */
void
vault_final_save(struct vault_rt *v)
{
	char err[256];

	if (v->state == VAULT_ST_LOCKED || v->busy)
		return;
	if (start_op(v, VOP_SAVE, -1, 0, NULL, NULL, err, sizeof(err)) != 0)
		log_error("vault %s: final save: %s", v->name, err);
	else
		log_info("vault %s: final save before shutdown", v->name);
}

