/*
 * vaultsyncctl pull: the remote latest (or a history version) downloaded by
 * the uploader into a temp file in the state directory, its ETag taken with
 * a HEAD, then handed to a vault job that unpacks it through the decoder
 * before it may replace anything (unpack.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "remote_int.h"
#include "secbuf.h"
#include "vault_ops.h"
#include "vaultsyncd.h"

struct pull {
	char vault[CFG_NAME_MAX];
	char key[UPL_KEY_MAX];
	char tmp[STORE_PATH_MAX];
	char etag[UPL_ETAG_MAX];	/* of the remote latest */
	int latest;
	int client;
	uint32_t gen;
	struct secbuf pass;
};

static void
pull_free(struct pull *p, int unlink_tmp)
{
	if (unlink_tmp && p->tmp[0] != '\0')
		(void)unlink(p->tmp);
	secbuf_free(&p->pass);
	free(p);
}

static void pull_fail(struct pull *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Tell the asker (the vault's name first), drop the download. */
static void
pull_fail(struct pull *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_reply(p->client, p->gen, 1, "vault %s: %s", p->vault, msg);
	log_warn("vault %s: pull: %s", p->vault, msg);
	pull_free(p, 1);
}

static void
pull_install(struct pull *p)
{
	struct vault_rt *v = vreg_find(p->vault);
	char err[256];

	if (v == NULL) {
		pull_fail(p, "removed from the configuration meanwhile");
		return;
	}
	/* The job owns the temp file and the passphrase from here on. */
	if (vault_start_pull(v, p->client, p->gen, &p->pass, p->tmp, p->etag, p->latest, err,
	    sizeof(err)) != 0) {
		pull_fail(p, "%s", err);
		return;
	}
	pull_free(p, 0);
}

static void
pull_headed(const char *vault, const struct msg_upl_result *r, void *arg)
{
	struct pull *p = arg;

	(void)vault;
	if (r->outcome == UPL_OK)
		msg_strlcpy(p->etag, r->etag, sizeof(p->etag));
	else if (r->outcome != UPL_NOT_FOUND) {
		pull_fail(p, "HEAD of the remote latest: %s", r->error);
		return;
	}
	pull_install(p);
}

static void
pull_downloaded(const char *vault, const struct msg_upl_result *r, void *arg)
{
	static const struct upl_cbs head = { pull_headed, NULL, NULL, NULL, NULL };
	struct upl_cbs c = head;
	struct pull *p = arg;

	(void)vault;
	if (r->outcome != UPL_OK) {
		if (r->outcome == UPL_NOT_FOUND)
			pull_fail(p, "no %s on the remote (%s)", p->key, r->error);
		else
			pull_fail(p, "download failed: %s", r->error);
		return;
	}
	log_info("vault %s: downloaded %s (%llu bytes)", p->vault, p->key,
	    (unsigned long long)r->bytes);
	if (p->latest) {
		msg_strlcpy(p->etag, r->etag, sizeof(p->etag));
		pull_install(p);
		return;
	}
	/* A restored history version becomes the next latest: know what it replaces. */
	c.arg = p;
	if (upl_op(p->vault, UPL_HEAD, "vault.tar.age", NULL, &c) != 0)
		pull_fail(p, "the uploader is not available");
}

int
remote_pull_request(struct vault_rt *v, int client, uint32_t gen, const char *version,
    struct secbuf *pass, char *err, size_t errlen)
{
	static const struct upl_cbs get = { pull_downloaded, NULL, NULL, NULL, NULL };
	const struct cfg_vault *cv = v != NULL ? remote_cfg(v) : NULL;
	struct upl_cbs c = get;
	char dir[STORE_PATH_MAX];
	struct pull *p;
	int fd;

	if (cv == NULL) {
		snprintf(err, errlen, "no such vault");
		return -1;
	}
	if (cv->remote_kind == CFG_REMOTE_NONE) {
		snprintf(err, errlen, "vault %s has no Remote", v->name);
		return -1;
	}
	if (v->busy || remote_busy(v)) {
		snprintf(err, errlen, "vault %s is busy (%s)", v->name,
		    v->busy ? "saving" : "pushing");
		return -1;
	}
	remote_state_dir(v, dir, sizeof(dir));
	if (!store_exists(dir, "identity.age")) {
		snprintf(err, errlen, "vault %s is not initialised here (no identity.age)", v->name);
		return -1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal("calloc");
	msg_strlcpy(p->vault, v->name, sizeof(p->vault));
	p->client = client;
	p->gen = gen;
	p->latest = version == NULL || version[0] == '\0';
	if (p->latest)
		snprintf(p->key, sizeof(p->key), "vault.tar.age");
	else
		snprintf(p->key, sizeof(p->key), "%s%s", strncmp(version, "history/", 8) == 0 ?
		    "" : "history/", version);
	if (msg_valid_key(p->key) != 0 || (!p->latest && !remote_history_key(p->key))) {
		snprintf(err, errlen, "not a history version: %s (see vaultsyncctl history %s)",
		    version, v->name);
		free(p);
		return -1;
	}
	if ((size_t)snprintf(p->tmp, sizeof(p->tmp), "%s/.pull.XXXXXX", dir) >= sizeof(p->tmp)) {
		snprintf(err, errlen, "state directory path too long: %s", dir);
		free(p);
		return -1;
	}
	if ((fd = mkostemp(p->tmp, O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "create %s: %s", p->tmp, strerror(errno));
		free(p);
		return -1;
	}
	p->pass = *pass;	/* ownership moves here */
	memset(pass, 0, sizeof(*pass));
	c.arg = p;
	/* An archive holds at most MountSize of files, plus tar and age framing. */
	if (upl_get(v->name, p->key, fd, cv->mount_size * 2 + (64u << 20), &c) != 0) {
		close(fd);
		snprintf(err, errlen, "the uploader is not available");
		*pass = p->pass;	/* back to the caller, who wipes it */
		memset(&p->pass, 0, sizeof(p->pass));
		pull_free(p, 1);
		return -1;
	}
	close(fd);
	return 0;
}
