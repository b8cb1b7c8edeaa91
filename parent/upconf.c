/*
 * What the uploader is started with (DESIGN §4): its credentials files and
 * its remotes as typed messages, and its dir: remotes' directories opened
 * at their fd numbers; and what tells that a running uploader must start
 * again (the configuration changed, or a credentials file did: rotation
 * without the parent reading a credential).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "upconf.h"
#include "vaultsyncd.h"

static void (*restart)(const char *why);

void
upconf_init(void (*restart_uploader)(const char *why))
{
	restart = restart_uploader;
}

/* One timer for the earliest expiry: the uploader's reports cannot make the parent add more. */
static int expiry_timer = -1;
static int64_t expiry_at;

static void
expiry_fired(void *arg)
{
	(void)arg;
	expiry_timer = -1;
	log_info("credentials are about to expire; restarting the uploader to read them again");
	restart("credentials about to expire");
}

#define EXPIRY_MARGIN_S	60

const char *
upconf_cred_info(const struct msg_cred_info *ci)
{
	size_t i;

	/* Re-check against our own config: only files we asked it to read. */
	for (i = 0; i < D.ncreds; i++) {
		if (strcmp(D.creds[i].path, ci->path) == 0 &&
		    strcmp(D.creds[i].name, ci->name) == 0) {
			int64_t now = (int64_t)time(NULL), at = ci->expiry - EXPIRY_MARGIN_S;

			if (D.creds[i].state != ci->state)
				log_info("credentials %s: %s", ci->path,
				    ci->state == CRED_ST_OK ? "ok" : ci->error);
			/* Re-read shortly before they expire; if that gives nothing newer, wait for a change. */
			if (ci->expiry > 0 && at > now &&
			    (expiry_timer < 0 || at < expiry_at)) {
				if (expiry_timer >= 0)
					timer_cancel(expiry_timer);
				expiry_timer = timer_add((uint64_t)(at - now) * 1000, expiry_fired, NULL);
				expiry_at = at;
			}
			D.creds[i] = *ci;
			return NULL;
		}
	}
	/* Not a violation: an uploader on its way out after a reload may still report the old files. */
	log_warn("uploader reported credentials %s that were not configured; ignored",
	    ci->path);
	return NULL;
}

/*
 * Credential rotation without reading credentials: the metadata of each file
 * as the current uploader found it; a change means a fresh uploader.
 */
static struct stat cred_st[MAX_CREDFILES];
static int cred_st_ok[MAX_CREDFILES];
static size_t ncred_st;

static void
creds_snapshot(void)
{
	size_t i;

	for (i = 0; i < D.ncreds; i++)
		cred_st_ok[i] = stat(D.creds[i].path, &cred_st[i]) == 0;
	ncred_st = D.ncreds;
}

const char *
upconf_creds_changed(void)
{
	struct stat st;
	size_t i;
	int ok;

	if (ncred_st != D.ncreds)
		return NULL;	/* a reload is restarting it anyway */
	for (i = 0; i < D.ncreds; i++) {
		ok = stat(D.creds[i].path, &st) == 0;
		if (ok != cred_st_ok[i] || (ok && (st.st_ino != cred_st[i].st_ino ||
		    st.st_dev != cred_st[i].st_dev || st.st_size != cred_st[i].st_size ||
		    st.st_mtim.tv_sec != cred_st[i].st_mtim.tv_sec ||
		    st.st_mtim.tv_nsec != cred_st[i].st_mtim.tv_nsec ||
		    st.st_ctim.tv_nsec != cred_st[i].st_ctim.tv_nsec ||
		    st.st_mode != cred_st[i].st_mode)))
			return D.creds[i].path;
	}
	return NULL;
}


/*
 * A dir: remote's directory, opened for the uploader.  Created if missing
 * (its parent must exist), owned by PrivsepUser in system mode so that the
 * unprivileged uploader can write it.
 */
static int
open_remote_dir(const struct cfg_vault *v)
{
	struct stat st;
	int fd;

	if (mkdir(v->remote_dir, 0700) == 0 && D.cfg.mode == CFG_SYSTEM &&
	    chown(v->remote_dir, D.privsep_uid, D.privsep_gid) != 0)
		log_error("vault %s: chown %s: %s", v->name, v->remote_dir, strerror(errno));
	if ((fd = open(v->remote_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		log_error("vault %s: remote directory %s: %s", v->name, v->remote_dir,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && D.cfg.mode == CFG_SYSTEM && st.st_uid != D.privsep_uid)
		log_warn("vault %s: remote directory %s is owned by uid %u, not %s: the "
		    "uploader may not be able to write it", v->name, v->remote_dir,
		    (unsigned)st.st_uid, D.cfg.privsep_user);
	return fd;
}

/* What the uploader was started with, so that a reload can tell whether it must restart. */
static uint64_t uploader_sig;

static uint64_t
fnv(uint64_t h, const char *s)
{
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (h ^ 0xff) * 1099511628211ull;	/* a separator: "ab","c" != "a","bc" */
}

static uint64_t
uploader_signature(void)
{
	char num[32];
	uint64_t h = 14695981039346656037ull;
	size_t i;

	snprintf(num, sizeof(num), "%llu", (unsigned long long)D.cfg.multipart_threshold);
	h = fnv(h, num);
	for (i = 0; i < D.cfg.nvaults; i++) {
		const struct cfg_vault *v = &D.cfg.vaults[i];

		if (v->remote_kind == CFG_REMOTE_NONE)
			continue;
		h = fnv(fnv(fnv(h, v->name), v->remote), v->remote_dir);
		h = fnv(fnv(fnv(h, v->endpoint), v->region), v->credentials_file);
		h = fnv(h, v->path_style ? "1" : "0");
	}
	return h;
}

/*
 * The uploader's configuration (DESIGN §4): prepared before the fork, since
 * the dir: remotes' directories are opened here and inherited at their fd
 * numbers, and sent on its channel after it, before anything else.
 */
_Static_assert(MAX_CREDFILES <= UPL_MAX_CREDS, "every credentials file has an uploader slot");
_Static_assert(CFG_MAX_VAULTS <= 64, "UPL_CONF_END counts at most 64 remotes");

static struct {
	struct msg_upl_cred creds[MAX_CREDFILES];
	struct msg_upl_remote remotes[CFG_MAX_VAULTS];
	struct msg_upl_conf_end end;
} upl_conf;

void
upconf_prepare(int *dirs, int *ndirs)
{
	size_t i, j, n = 0;

	memset(&upl_conf, 0, sizeof(upl_conf));
	for (i = 0; i < D.ncreds; i++) {
		struct msg_upl_cred *c = &upl_conf.creds[i];

		c->source = D.creds[i].source == CRED_SRC_SYSTEMD ? CRED_SRC_SYSTEMD : CRED_SRC_FILE;
		c->slot = (uint32_t)i;
		msg_strlcpy(c->name, D.creds[i].name, sizeof(c->name));
		msg_strlcpy(c->path, D.creds[i].path, sizeof(c->path));
	}
	for (i = 0; i < D.cfg.nvaults; i++) {
		const struct cfg_vault *v = &D.cfg.vaults[i];
		struct msg_upl_remote *r = &upl_conf.remotes[n];
		int fd;

		memset(r, 0, sizeof(*r));
		msg_strlcpy(r->vault, v->name, sizeof(r->vault));
		if (v->remote_kind == CFG_REMOTE_S3) {
			for (j = 0; j < D.ncreds; j++)
				if (strcmp(D.creds[j].path, v->credentials_file) == 0)
					break;
			if (j == D.ncreds)
				continue;
			r->kind = UPL_REMOTE_S3;
			r->cred = (uint32_t)j;
			r->path_style = v->path_style ? 1 : 0;
			msg_strlcpy(r->region, v->region, sizeof(r->region));
			msg_strlcpy(r->bucket, v->bucket, sizeof(r->bucket));
			msg_strlcpy(r->prefix, v->prefix, sizeof(r->prefix));
			msg_strlcpy(r->endpoint, v->endpoint, sizeof(r->endpoint));
		} else if (v->remote_kind == CFG_REMOTE_DIR) {
			if (*ndirs == UPL_DIRFD_SLOTS) {
				log_error("vault %s: more than %d dir: remotes; not pushed", v->name,
				    UPL_DIRFD_SLOTS);
				continue;
			}
			if ((fd = open_remote_dir(v)) == -1)
				continue;
			dirs[*ndirs] = fd;
			r->kind = UPL_REMOTE_DIR;
			r->dirfd = UPL_DIRFD_FIRST + *ndirs;
			(*ndirs)++;
		} else
			continue;
		n++;
	}
	upl_conf.end.multipart_threshold = D.cfg.multipart_threshold;
	upl_conf.end.ncreds = (uint32_t)D.ncreds;
	upl_conf.end.nremotes = (uint32_t)n;
	uploader_sig = uploader_signature();
	creds_snapshot();
}

int
upconf_stale(void)
{
	return uploader_signature() != uploader_sig;
}

/* A few KiB in all: the socket buffer holds them until the uploader reads them. */
int
upconf_send(int chan, uint32_t *seq)
{
	uint32_t i;

	for (i = 0; i < upl_conf.end.ncreds; i++)
		if (msg_send(chan, PEER_PARENT, MSG_UPL_CRED, ++*seq, &upl_conf.creds[i],
		    sizeof(upl_conf.creds[i]), -1) != 0)
			return -1;
	for (i = 0; i < upl_conf.end.nremotes; i++)
		if (msg_send(chan, PEER_PARENT, MSG_UPL_REMOTE, ++*seq, &upl_conf.remotes[i],
		    sizeof(upl_conf.remotes[i]), -1) != 0)
			return -1;
	return msg_send(chan, PEER_PARENT, MSG_UPL_CONF_END, ++*seq, &upl_conf.end,
	    sizeof(upl_conf.end), -1);
}
