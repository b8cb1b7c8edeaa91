/*
 * What the remote holds, as this device knows it: the remote state file
 * (StateDir/VAULT/remote) loaded once and written after every change, the
 * vault's configuration and files as the remote side sees them, the
 * conflict mark that stops every overwrite, and the remote's part of status.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "remote_int.h"
#include "vaultsyncd.h"

static struct push_state states[CFG_MAX_VAULTS];

struct push_state *
push_of(const struct vault_rt *v)
{
	return VREG_STATE(states, v);
}

const struct vault_remote *
remote_state(struct vault_rt *v)
{
	remote_load(v);
	return &push_of(v)->rs;
}

const struct vault_remote *
remote_state_loaded(const struct vault_rt *v)
{
	return push_of(v)->rs_loaded ? &push_of(v)->rs : NULL;
}

int
remote_busy(const struct vault_rt *v)
{
	return push_of(v)->push_busy;
}

/* No push failing, no conflict: the remote's part of a vault's health. */
int
remote_healthy(const struct vault_rt *v)
{
	return push_of(v)->push_failures == 0 && !push_of(v)->rs.conflict;
}

const struct cfg_vault *
remote_cfg(const struct vault_rt *v)
{
	return cfg_vault_find(&D.cfg, v->name);
}

void
remote_state_dir(const struct vault_rt *v, char *buf, size_t len)
{
	const struct cfg_vault *cv = remote_cfg(v);

	if (cv != NULL)
		store_dir(&D.cfg, cv, buf, len);
	else
		buf[0] = '\0';
}

void
remote_load(struct vault_rt *v)
{
	struct push_state *ps = push_of(v);
	char dir[STORE_PATH_MAX];

	if (ps->rs_loaded)
		return;
	remote_state_dir(v, dir, sizeof(dir));
	(void)store_remote_read(dir, &ps->rs);
	ps->rs_loaded = 1;
}

void
remote_save_state(struct vault_rt *v)
{
	char dir[STORE_PATH_MAX], err[256];

	remote_state_dir(v, dir, sizeof(dir));
	if (store_remote_write(dir, &push_of(v)->rs, err, sizeof(err)) != 0)
		log_error("vault %s: %s", v->name, err);
}

int
remote_lags(const struct vault_rt *v)
{
	return v->st.sha256[0] != '\0' && strcmp(v->st.sha256, push_of(v)->rs.pushed_sha256) != 0;
}

int
remote_open_file(struct vault_rt *v, const char *name, uint64_t *size)
{
	char dir[STORE_PATH_MAX], p[STORE_PATH_MAX];
	off_t end;
	int fd;

	remote_state_dir(v, dir, sizeof(dir));
	store_file(dir, name, p, sizeof(p));
	if ((fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	if ((end = lseek(fd, 0, SEEK_END)) < 0) {
		close(fd);
		return -1;
	}
	*size = (uint64_t)end;
	return fd;
}

/* The head poller saw another device's write: nothing is overwritten from now on. */
void
remote_mark_conflict(struct vault_rt *v)
{
	remote_load(v);
	if (push_of(v)->rs.conflict)
		return;
	push_of(v)->rs.conflict = 1;
	remote_save_state(v);
}

/*
 * The remote side of a vault's status snapshot.  The state names one thing:
 * a locked vault stays "locked" while its final archive is uploaded (that is
 * what the lock's reply said, and whether plaintext is in RAM matters more
 * than an upload in flight, which push_progress and "pushed" show anyway).
 */
void
remote_status(const struct vault_rt *v, struct msg_snap_vault *sv)
{
	const struct push_state *ps = push_of(v);
	const struct cfg_vault *cv = remote_cfg(v);

	if (cv == NULL || cv->remote_kind == CFG_REMOTE_NONE)
		return;
	sv->last_push_at = ps->rs.last_push_at;
	sv->last_ok_push_at = ps->rs.last_ok_push_at;
	sv->uploaded_bytes = ps->rs.uploaded_bytes;
	if (ps->history_known)
		sv->history_count = (int32_t)ps->history_count;
	if (ps->push_busy && ps->push_total > 0) {
		sv->push_sent = ps->push_sent;
		sv->push_total = ps->push_total;
	}
	sv->pushed = !remote_lags(v) && ps->rs.pushed_sha256[0] != '\0';
	sv->weak_cas = (uint32_t)ps->rs.weak_cas;
	sv->next_push_at = vtimer_pending(&ps->push_retry) ? ps->next_push_at : 0;
	sv->consecutive_failures += ps->push_failures;
	msg_strlcpy(sv->remote_etag, ps->rs.etag, sizeof(sv->remote_etag));
	if (ps->push_error[0] != '\0' && v->last_error[0] == '\0')
		msg_strlcpy(sv->last_error, ps->push_error, sizeof(sv->last_error));
	if (ps->rs.conflict)
		sv->state = VAULT_ST_CONFLICT;
	else if (ps->push_failures > 0)
		sv->state = VAULT_ST_ERROR;
	else if (ps->push_busy && sv->state != VAULT_ST_SAVING && sv->state != VAULT_ST_LOCKED)
		sv->state = VAULT_ST_PUSHING;
}
