/*
 * The vault operations a worker thread runs: the dispatch, init and lock
 * here; saving in save.c (stages in ring.c), unlock and pull in unpack.c,
 * the vault's RAM in tmpfs.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "age.h"
#include "vault_ops.h"
#include "vault_ops_int.h"

static void
op_lock(struct vault_job *vj)
{
	char p[STORE_PATH_MAX];
	int vfd;

	if (do_save(vj) != 0) {
		/* Never wipe what could not be saved. */
		size_t n = strlen(vj->err);

		snprintf(vj->err + n, sizeof(vj->err) - n, "; the vault stays unlocked");
		return;
	}
	if ((vfd = open(vj->v.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
		(void)wipe_dir(vfd, 0, NULL);
		close(vfd);
	}
	if (vj->v.mount && vault_path_is_mounted_tmpfs(vj->v.path))
		do_umount(vj->v.path);
	store_file(vj->dir, "unlocked", p, sizeof(p));
	unlink(p);
	(void)store_sync_dir(vj->dir);
}

/* ---- init ---------------------------------------------------------------- */

struct membuf {
	char *p;
	size_t len, cap;
};

static int
mem_write(void *arg, const void *buf, size_t len)
{
	struct membuf *m = arg;

	if (m->len + len > m->cap)
		return -1;
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static void
op_init(struct vault_job *vj)
{
	struct age_identity id;
	struct age_recipient rcp;
	struct age_writer *w = NULL;
	struct age_err ae;
	struct secbuf text;
	struct membuf out;
	unsigned char key[32];
	char line[AGE_RECIPIENT_LEN + 2], err[256];
	int mounted = 0;

	memset(&id, 0, sizeof(id));
	memset(&text, 0, sizeof(text));
	memset(&out, 0, sizeof(out));
	if (store_mkdir(vj->dir, err, sizeof(err)) != 0) {
		vop_err(vj, 73, "%s", err);
		goto out;
	}
	if (store_exists(vj->dir, "identity.age")) {
		vop_err(vj, 1, "vault %s is already initialised (%s/identity.age exists)",
		    vj->v.name, vj->dir);
		goto out;
	}
	if (age_identity_generate(&id, &ae) != 0 || age_identity_format(&id, &text, &ae) != 0) {
		vop_err(vj, 1, "identity: %s", ae.msg);
		goto out;
	}
	out.cap = IDENTITY_MAX;
	if ((out.p = malloc(out.cap)) == NULL) {
		vop_err(vj, 1, "out of memory");
		goto out;
	}
	/* identity.age is ciphertext: an ordinary buffer is fine for it. */
	if ((w = age_writer_new_passphrase(vj->pass.p, vj->pass.len, 0, mem_write, &out,
	    &ae)) == NULL || age_writer_write(w, text.p, text.len, &ae) != 0 ||
	    age_writer_finish(w, &ae) != 0) {
		vop_err(vj, 1, "encrypt identity: %s", ae.msg);
		goto out;
	}
	secbuf_free(&vj->pass);
	age_identity_to_recipient(&id, &rcp);
	age_recipient_format(&rcp, line, sizeof(line));
	strcat(line, "\n");
	if (store_key_load(vj->dir, key, 1, err, sizeof(err)) != 0 ||
	    store_write_atomic(vj->dir, "recipient", line, strlen(line), 0644, err,
	    sizeof(err)) != 0 ||
	    store_write_atomic(vj->dir, "identity.age", out.p, out.len, 0600, err,
	    sizeof(err)) != 0) {
		vop_err(vj, 73, "%s", err);
		goto out;
	}
	explicit_bzero(key, sizeof(key));
	if (do_mount(vj, &mounted) != 0)
		goto out;
	memset(&vj->prev, 0, sizeof(vj->prev));
	if (do_save(vj) != 0)
		goto out;
	if (store_write_atomic(vj->dir, "unlocked", "1\n", 2, 0600, err, sizeof(err)) != 0)
		vop_err(vj, 73, "%s", err);
out:
	age_writer_free(w);
	free(out.p);
	secbuf_free(&text);
	age_identity_free(&id);
}

void
vault_op_run(struct job *j)
{
	struct vault_job *vj = (struct vault_job *)j;

	vj->rc = 0;
	vj->err[0] = '\0';
	switch (vj->op) {
	case VOP_SAVE:
		(void)do_save(vj);
		break;
	case VOP_INIT:
		op_init(vj);
		break;
	case VOP_UNLOCK:
		op_unlock(vj);
		break;
	case VOP_LOCK:
		op_lock(vj);
		break;
	case VOP_PULL:
		op_pull(vj);
		break;
	}
	secbuf_free(&vj->pass);
}
