/*
 * Unlocking: the decoder child opens identity.age with the passphrase and
 * the archive with the identity; its entries are written into a staging
 * directory inside the vault (mounted first in system mode) and moved into
 * place only when everything has authenticated and extracted.  A damaged
 * archive leaves the vault as it was.
 *
 * Pulling: a downloaded archive is unpacked the same way, by the same code,
 * before it may replace the local one (for a locked vault into a throwaway
 * tmpfs), so that an archive that would not unlock never becomes the only
 * copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "archive.h"
#include "decode.h"
#include "hex.h"
#include "msg.h"
#include "vault_ops.h"
#include "vault_ops_int.h"

/*
 * What an archive of this vault may unpack to, whichever way it comes in:
 * MountSize of file contents, and the entry count a save never refuses.  A
 * lower count tied to MountSize would let a vault save an archive that its
 * own unlock then refuses; the tmpfs the entries land in (the vault's mount,
 * or the private one of a pull, both MountSize) bounds their memory anyway.
 */
#define VAULT_MAX_ENTRIES	1000000

static void
vault_limits(const struct vault_job *vj, struct arc_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_total_bytes = vj->v.mount_size;
	lim->max_entry_bytes = vj->v.mount_size;
	lim->max_entries = VAULT_MAX_ENTRIES;
	lim->owner_uid = vj->owner_uid;
	lim->owner_gid = vj->owner_gid;
	lim->chown_entries = vj->system_mode;
}

/*
 * A decoder on identity.age and the archive at path (NULL: the vault's own;
 * none saved yet: identity only), once identity.age has opened with the
 * passphrase.  *afd_out is -1 when there was no archive to open.
 */
static struct decoder *
open_decoder(struct vault_job *vj, const char *path, int *no_archive)
{
	char idp[STORE_PATH_MAX], ap[STORE_PATH_MAX], err[512];
	struct arc_limits lim;
	struct decoder *d = NULL;
	int idfd, afd = -1;

	*no_archive = 0;
	store_file(vj->dir, "identity.age", idp, sizeof(idp));
	if ((idfd = open(idp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		vop_err(vj, 66, "vault %s is not initialised (open %s: %s); run vaultsyncctl init %s",
		    vj->v.name, idp, strerror(errno), vj->v.name);
		secbuf_free(&vj->pass);
		return NULL;
	}
	if (path != NULL)
		msg_strlcpy(ap, path, sizeof(ap));
	else
		store_file(vj->dir, "vault.tar.age", ap, sizeof(ap));
	if ((afd = open(ap, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno != ENOENT || path != NULL) {
			vop_err(vj, path != NULL ? 1 : 66, "open %s: %s", ap, strerror(errno));
			goto out;
		}
		*no_archive = 1;	/* initialised, never saved: an empty vault */
	}
	vault_limits(vj, &lim);
	d = decoder_start(&vj->dec, idfd, afd, (const char *)vj->pass.p, vj->pass.len, &lim,
	    err, sizeof(err));
	secbuf_free(&vj->pass);
	if (d == NULL) {
		vop_err(vj, 1, "%s", err);
		goto out;
	}
	if (decoder_ready(d, err, sizeof(err)) != 0) {
		vop_err(vj, 1, "%s", err);
		decoder_free(d);
		d = NULL;
	}
out:
	secbuf_free(&vj->pass);
	if (afd != -1)
		close(afd);
	close(idfd);
	return d;
}

/* Move every entry of the staging dir into the vault root. */
static int
swap_in(int vfd, int sfd)
{
	DIR *dp;
	struct dirent *de;
	int fd, rc = 0;

	if ((fd = dup(sfd)) == -1 || (dp = fdopendir(fd)) == NULL)
		return -1;
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (renameat2(sfd, de->d_name, vfd, de->d_name, RENAME_NOREPLACE) != 0)
			rc = -1;
	}
	closedir(dp);
	return rc;
}

static void
err_append(struct vault_job *vj, const char *s)
{
	size_t n = strlen(vj->err);

	snprintf(vj->err + n, sizeof(vj->err) - n, "%s", s);
}

/*
 * The one way an archive is unpacked: the decoder opens it, and its
 * entries are written into dirfd, an empty directory on RAM, under the
 * vault's limits.  Unlock and pull (into a locked vault or an unlocked one)
 * all come through here, so nothing replaces the local archive before it
 * has met every rule an unlock will apply to it.  Sets vj->st.sha256,
 * files and bytes.  On failure dirfd holds partial output for the caller
 * to wipe.
 */
static int
unpack_archive(struct vault_job *vj, struct decoder *d, const char *name, int dirfd)
{
	unsigned char sha[32];
	char err[512];
	struct arc_limits lim;
	struct arc_stats as;

	vault_limits(vj, &lim);
	if (decoder_unpack(d, dirfd, &lim, sha, &as, err, sizeof(err)) != 0) {
		vop_err(vj, 1, "%s: %s", name, err);
		return -1;
	}
	hex_encode(sha, 32, vj->st.sha256);
	vj->files = as.files;
	vj->bytes = as.bytes;
	return 0;
}

/*
 * Unpack the decoder's archive into a staging directory inside the vault,
 * and only when all of it authenticated and extracted, move it in.
 * replace: the vault's present contents go first (a pull into an unlocked
 * vault); otherwise the vault must be empty.
 */
static int
extract_archive(struct vault_job *vj, int vfd, struct decoder *d, const char *name, int replace)
{
	int sfd = -1, rc = -1;

	if (mkdirat(vfd, STAGING, 0700) != 0 ||
	    (sfd = openat(vfd, STAGING, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		vop_err(vj, 73, "create staging directory in %s: %s", vj->v.path, strerror(errno));
		goto out;
	}
	if (unpack_archive(vj, d, name, sfd) != 0) {
		err_append(vj, replace ? "; the vault and the local archive were left as "
		    "they were" : "; the vault was left as it was");
		goto out;
	}
	if (replace && wipe_dir(vfd, 0, STAGING) != 0) {
		vop_err(vj, 1, "clearing %s for the pulled version: %s", vj->v.path,
		    strerror(errno));
		goto out;
	}
	if (swap_in(vfd, sfd) != 0) {
		vop_err(vj, 1, "moving the extracted files into %s: %s", vj->v.path,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (sfd >= 0) {
		(void)wipe_dir(sfd, 0, NULL);
		close(sfd);
		(void)unlinkat(vfd, STAGING, AT_REMOVEDIR);
	}
	return rc;
}

void
op_unlock(struct vault_job *vj)
{
	char err[256], path[STORE_PATH_MAX];
	struct decoder *d;
	int mounted = 0, vfd = -1, none;

	vj->st = vj->prev;
	if ((d = open_decoder(vj, NULL, &none)) == NULL)
		return;
	if (do_mount(vj, &mounted) != 0)
		goto out;
	if ((vfd = open(vj->v.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		vop_err(vj, 66, "open %s: %s", vj->v.path, strerror(errno));
		goto fail;
	}
	if (!vault_dir_empty(vfd)) {
		vop_err(vj, 1, "%s is not empty: it is unlocked already, or holds files "
		    "vaultsync did not put there", vj->v.path);
		goto fail;
	}
	store_file(vj->dir, "vault.tar.age", path, sizeof(path));
	if (!none && extract_archive(vj, vfd, d, path, 0) != 0)
		goto fail;
	if (store_write_atomic(vj->dir, "unlocked", "1\n", 2, 0600, err, sizeof(err)) != 0) {
		vop_err(vj, 73, "%s", err);
		goto fail;
	}
	if (store_state_write(vj->dir, &vj->st, err, sizeof(err)) != 0)
		vop_err(vj, 73, "%s", err);
	goto out;
fail:
	if (mounted)
		do_umount(vj->v.path);
out:
	if (vfd >= 0)
		close(vfd);
	decoder_free(d);
}

/* ---- pulling ---------------------------------------------------------- */

/*
 * Where a locked vault's pulled archive is unpacked to be checked: never a
 * disk.  In system mode a private tmpfs that no path leads to (fsmount
 * without move_mount), sized for the vault and gone with its last
 * descriptor, even if the daemon dies; otherwise, or where the kernel
 * refuses that, a fresh 0700 directory on a RAM filesystem.
 */
struct staging {
	int mnt;			/* the private tmpfs, or -1 */
	int fd;
	char path[STORE_PATH_MAX];	/* the directory on a shared RAM filesystem, or "" */
};

static int
private_tmpfs(const struct arc_limits *lim)
{
	char size[32], inodes[32];
	int fs, mnt = -1;

	/*
	 * As big as the vault's own mount: what unlocks there unpacks here, and a
	 * hostile archive of tiny files cannot pin more pages than the vault could.
	 */
	snprintf(size, sizeof(size), "%llu", (unsigned long long)lim->max_total_bytes);
	snprintf(inodes, sizeof(inodes), "%llu", (unsigned long long)(lim->max_entries + 16));
	if ((fs = fsopen("tmpfs", FSOPEN_CLOEXEC)) == -1)
		return -1;
	if (fsconfig(fs, FSCONFIG_SET_STRING, "size", size, 0) == 0 &&
	    fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", inodes, 0) == 0 &&
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0) == 0 &&
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
		    MOUNT_ATTR_NOEXEC);
	close(fs);
	return mnt;
}

static int
staging_open(struct vault_job *vj, struct staging *sg)
{
	const char *base[2];
	struct arc_limits lim;
	size_t i;

	sg->mnt = sg->fd = -1;
	sg->path[0] = '\0';
	vault_limits(vj, &lim);
	if (vj->system_mode && (sg->mnt = private_tmpfs(&lim)) != -1) {
		if ((sg->fd = openat(sg->mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1)
			return 0;
		vop_err(vj, 73, "open the staging tmpfs: %s", strerror(errno));
		close(sg->mnt);
		sg->mnt = -1;
		return -1;
	}
	base[0] = vj->system_mode ? "/run" : getenv("XDG_RUNTIME_DIR");
	base[1] = "/dev/shm";
	for (i = 0; i < 2; i++) {
		if (base[i] == NULL || base[i][0] != '/' || !vault_path_on_ram(base[i]) ||
		    (size_t)snprintf(sg->path, sizeof(sg->path), "%s/vaultsync-pull.XXXXXX",
		    base[i]) >= sizeof(sg->path) || mkdtemp(sg->path) == NULL) {
			sg->path[0] = '\0';
			continue;
		}
		if ((sg->fd = open(sg->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC)) != -1)
			return 0;
		(void)rmdir(sg->path);
		sg->path[0] = '\0';
	}
	vop_err(vj, 73, "nowhere in RAM to check the pulled archive (%s$XDG_RUNTIME_DIR or "
	    "/dev/shm on tmpfs): its plaintext must never touch a disk",
	    vj->system_mode ? "a private tmpfs, /run, " : "");
	return -1;
}

static void
staging_close(struct staging *sg)
{
	if (sg->fd >= 0) {
		(void)wipe_dir(sg->fd, 0, NULL);
		close(sg->fd);
	}
	if (sg->path[0] != '\0')
		(void)rmdir(sg->path);
	if (sg->mnt >= 0)
		close(sg->mnt);
}

/*
 * A locked vault has nowhere of its own to unpack to: unpack the download
 * into a throwaway staging area, so that it replaces the local archive only
 * if it would unlock.
 */
static int
verify_archive(struct vault_job *vj, struct decoder *d)
{
	struct staging sg;
	int rc = -1;

	if (staging_open(vj, &sg) == 0) {
		if ((rc = unpack_archive(vj, d, "the pulled archive", sg.fd)) != 0)
			err_append(vj, "; the local archive was left as it was");
		staging_close(&sg);
	}
	return rc;
}

static int
hex_decode32(const char *hex, unsigned char out[32])
{
	int i;

	for (i = 0; i < 32; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

/*
 * Make a downloaded archive the vault's: it must decrypt with the vault's
 * identity and unpack completely, under the rules and limits of an unlock,
 * before it replaces the local archive or a single file.  On failure the
 * download is removed and the vault and its archive are as they were.
 */
void
op_pull(struct vault_job *vj)
{
	char dst[STORE_PATH_MAX], err[256];
	unsigned char sha[32], key[32], cid[32];
	struct decoder *d;
	struct stat st;
	int vfd = -1, none;

	vj->st = vj->prev;
	if ((d = open_decoder(vj, vj->src, &none)) == NULL)
		goto out;
	if (vj->unlocked) {
		if ((vfd = open(vj->v.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
			vop_err(vj, 66, "open %s: %s", vj->v.path, strerror(errno));
			goto out;
		}
		if (extract_archive(vj, vfd, d, "the pulled archive", 1) != 0)
			goto out;
	} else if (verify_archive(vj, d) != 0)
		goto out;
	decoder_free(d);
	d = NULL;
	if (hex_decode32(vj->st.sha256, sha) != 0) {
		vop_err(vj, 1, "the pulled archive's digest is malformed");
		goto out;
	}
	if (store_key_load(vj->dir, key, 1, err, sizeof(err)) != 0 ||
	    arc_content_id(key, sha, cid) != 0) {
		vop_err(vj, 73, "content id: %s", err);
		goto out;
	}
	explicit_bzero(key, sizeof(key));
	hex_encode(cid, 32, vj->st.content_id);
	store_file(vj->dir, "vault.tar.age", dst, sizeof(dst));
	{
		int fd = open(vj->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

		if (fd == -1 || fsync(fd) != 0 || fstat(fd, &st) != 0) {
			vop_err(vj, 73, "sync %s: %s", vj->src, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
	}
	if (rename(vj->src, dst) != 0 || store_sync_dir(vj->dir) != 0) {
		vop_err(vj, 73, "rename %s: %s", dst, strerror(errno));
		goto out;
	}
	vj->src[0] = '\0';
	vj->st.saved_at = (int64_t)time(NULL);
	vj->st.archive_bytes = (uint64_t)st.st_size;
	vj->st.dirty = 0;
	vj->changed = 1;
	if (store_state_write(vj->dir, &vj->st, err, sizeof(err)) != 0)
		vop_err(vj, 73, "%s", err);
out:
	if (vj->src[0] != '\0')
		(void)unlink(vj->src);
	if (vfd >= 0)
		close(vfd);
	decoder_free(d);
}
