/*
 * The vault's RAM: what counts as RAM, mounting and unmounting the vault's
 * tmpfs, and wiping a tree (regular files overwritten first).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "vault_ops.h"
#include "vault_ops_int.h"

int
vault_path_on_ram(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 &&
	    (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

int
vault_path_is_mounted_tmpfs(const char *path)
{
	struct statx sx;

	if (!vault_path_on_ram(path))
		return 0;
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) != 0)
		return 0;
	return (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Overwrite regular files before unlinking: tmpfs pages are freed, not cleared. */
static void
scrub_file(int dfd, const char *name)
{
	static const char zero[65536];
	struct stat st;
	off_t left;
	int fd;

	if ((fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) == -1)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		for (left = st.st_size; left > 0; ) {
			ssize_t n = write(fd, zero, left > (off_t)sizeof(zero) ?
			    sizeof(zero) : (size_t)left);

			if (n <= 0)
				break;
			left -= n;
		}
	close(fd);
}

/* Remove everything below dfd (not dfd itself, nor an entry named keep), never following links. */
int
wipe_dir(int dfd, int depth, const char *keep)
{
	DIR *d;
	struct dirent *de;
	int fd, rc = 0;

	if (depth > 128 || (fd = dup(dfd)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    (keep != NULL && strcmp(de->d_name, keep) == 0))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dfd, de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub == -1 || wipe_dir(sub, depth + 1, NULL) != 0)
				rc = -1;
			if (sub != -1)
				close(sub);
			if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) != 0)
				rc = -1;
		} else {
			if (S_ISREG(st.st_mode))
				scrub_file(dfd, de->d_name);
			if (unlinkat(dfd, de->d_name, 0) != 0)
				rc = -1;
		}
	}
	closedir(d);
	return rc;
}

int
vault_dir_empty(int dfd)
{
	DIR *d;
	struct dirent *de;
	int fd, empty = 1;

	if ((fd = dup(dfd)) == -1)
		return 0;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

int
do_mount(struct vault_job *vj, int *mounted)
{
	char opts[128];

	*mounted = 0;
	if (!vj->v.mount) {
		if (!vault_path_on_ram(vj->v.path)) {
			vop_err(vj, 66, "%s is not on tmpfs or ramfs: a vault must never touch "
			    "a disk (mount a tmpfs there, or set Mount yes as root)", vj->v.path);
			return -1;
		}
		return 0;
	}
	if (!vj->system_mode) {
		vop_err(vj, 64, "vault %s: Mount yes needs the system daemon (root)", vj->v.name);
		return -1;
	}
	if (vault_path_is_mounted_tmpfs(vj->v.path))
		return 0;
	if (mkdir(vj->v.path, 0700) == -1 && errno != EEXIST) {
		vop_err(vj, 66, "mkdir %s: %s", vj->v.path, strerror(errno));
		return -1;
	}
	snprintf(opts, sizeof(opts), "size=%llu,mode=0700,uid=%u,gid=%u",
	    (unsigned long long)vj->v.mount_size, (unsigned)vj->owner_uid,
	    (unsigned)vj->owner_gid);
	if (mount("vaultsync", vj->v.path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    opts) != 0) {
		vop_err(vj, 73, "mount tmpfs on %s: %s%s", vj->v.path, strerror(errno),
		    errno == EPERM ? " (under the packaged unit systemd mounts the vaults: "
		    "systemctl daemon-reload, then systemctl restart vaultsyncd)" : "");
		return -1;
	}
	*mounted = 1;
	return 0;
}

void
do_umount(const char *path)
{
	/* A shell sitting in the vault keeps it busy: detach it, the data is gone anyway. */
	if (umount2(path, UMOUNT_NOFOLLOW) != 0)
		(void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
}
