/*
 * The dir: remote.  The parent opens the directory and passes it; every
 * path here is relative to that fd, built from keys both ends validated
 * (msg_valid_key: no "..", no leading dot, no absolute paths), and Landlock
 * confines the process to beneath the fd whatever a path says.
 *
 * An object's ETag is its inode, size and mtime: every write is a rename of
 * a fresh file, so a new version always has a new ETag.  Conditional writes
 * hold an flock on the vault's directory across compare and rename; another
 * vaultsync writing to the same directory takes the same lock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "progress.h"
#include "remote.h"

#define DIR_MAX_LIST	100000
#define COPY_CHUNK	(1u << 20)

static int
full_path(const struct upl_remote *r, const char *key, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%s", r->base, key);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void
etag_of(const struct stat *st, char *out, size_t len)
{
	snprintf(out, len, "%llx-%llx-%llx%09lx", (unsigned long long)st->st_ino,
	    (unsigned long long)st->st_size, (unsigned long long)st->st_mtim.tv_sec,
	    (unsigned long)st->st_mtim.tv_nsec);
}

/* mkdir -p of every directory above path (relative to the remote's fd). */
static int
make_parents(int dirfd, const char *path)
{
	char p[S3_KEY_MAX];
	char *s;

	snprintf(p, sizeof(p), "%s", path);
	for (s = strchr(p, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdirat(dirfd, p, 0700) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return 0;
}

/* Copy len bytes of src (from 0) to dst (from 0); -1 with errno. */
static int
copy_fd(int src, int dst, uint64_t len)
{
	loff_t so = 0, doff = 0;
	char *buf = NULL;
	int rc = -1;

	while ((uint64_t)so < len) {
		size_t want = len - (uint64_t)so > COPY_CHUNK ? COPY_CHUNK : (size_t)(len - (uint64_t)so);
		ssize_t n = copy_file_range(src, &so, dst, &doff, want, 0);

		if (n > 0) {
			progress_add((uint64_t)n);
			continue;
		}
		if (n == 0) {
			errno = EPIPE;	/* the source is shorter than it said */
			goto out;
		}
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			goto out;
		break;		/* no kernel copy between these two: do it by hand */
	}
	while ((uint64_t)so < len) {
		size_t want = len - (uint64_t)so > COPY_CHUNK ? COPY_CHUNK : (size_t)(len - (uint64_t)so);
		ssize_t n, w, off;

		if (buf == NULL && (buf = malloc(COPY_CHUNK)) == NULL)
			goto out;
		if ((n = pread(src, buf, want, so)) < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (n == 0) {
			errno = EPIPE;
			goto out;
		}
		for (off = 0; off < n; off += w) {
			if ((w = pwrite(dst, buf + off, (size_t)(n - off), doff + off)) < 0) {
				if (errno == EINTR) {
					w = 0;
					continue;
				}
				goto out;
			}
		}
		so += n;
		doff += n;
		progress_add((uint64_t)n);
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

static int
open_vault_dir(const struct upl_remote *r)
{
	char d[S3_KEY_MAX];
	size_t n;

	snprintf(d, sizeof(d), "%s", r->base);
	n = strlen(d);
	if (n > 0 && d[n - 1] == '/')
		d[n - 1] = '\0';
	if (mkdirat(r->dirfd, d, 0700) != 0 && errno != EEXIST)
		return -1;
	return openat(r->dirfd, d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* fsync the directory holding path. */
static int
sync_parent(int dirfd, const char *path)
{
	char d[S3_KEY_MAX];
	char *s;
	int fd, rc;

	snprintf(d, sizeof(d), "%s", path);
	if ((s = strrchr(d, '/')) == NULL)
		return fsync(dirfd);
	*s = '\0';
	if ((fd = openat(dirfd, d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * Temp files of this device that a killed uploader left behind.  Only one
 * uploader per device runs, one request at a time, so any of ours found now
 * is garbage; other devices' temp files are theirs to clean.
 */
static void
remove_own_temps(int rootfd, const char *dir, const char *tag)
{
	struct dirent *de;
	size_t n = strlen(tag);
	DIR *d;
	int fd;

	if ((fd = openat(rootfd, dir[0] ? dir : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	/* By path from the root fd: the *at() rows of the sandbox allow no other. */
	while ((de = readdir(d)) != NULL) {
		char p[S3_KEY_MAX + 300];

		if (strncmp(de->d_name, tag, n) != 0)
			continue;
		snprintf(p, sizeof(p), "%s%s%s", dir, dir[0] ? "/" : "", de->d_name);
		(void)unlinkat(rootfd, p, 0);
	}
	closedir(d);
}

void
dirr_put(struct upl_remote *r, const struct msg_upl_put *m, int fd, struct msg_upl_result *res)
{
	char path[S3_KEY_MAX], tmp[S3_KEY_MAX + 128], cur[UPL_ETAG_MAX], tag[96], dir[S3_KEY_MAX];
	const char *base;
	unsigned char rnd[8];
	struct stat st;
	int tfd = -1, lockfd = -1, have;

	if (full_path(r, m->key, path, sizeof(path)) != 0) {
		upl_seterr(res, UPL_FAILED, "key too long");
		return;
	}
	base = strrchr(path, '/');
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		upl_seterr(res, UPL_RETRY, "getrandom: %s", strerror(errno));
		return;
	}
	snprintf(tag, sizeof(tag), ".upl-%s-", m->device_id);
	snprintf(dir, sizeof(dir), "%.*s", base != NULL ? (int)(base - path) : 0, path);
	snprintf(tmp, sizeof(tmp), "%s%s%s%02x%02x%02x%02x%02x%02x%02x%02x", dir, dir[0] ? "/" : "",
	    tag, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (make_parents(r->dirfd, path) != 0) {
		upl_seterr(res, UPL_FAILED, "create directories for %s: %s", m->key, strerror(errno));
		return;
	}
	remove_own_temps(r->dirfd, dir, tag);
	if ((tfd = openat(r->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1) {
		upl_seterr(res, UPL_FAILED, "create a file in the remote directory: %s",
		    strerror(errno));
		return;
	}
	if (copy_fd(fd, tfd, m->size) != 0 || fsync(tfd) != 0 || fstat(tfd, &st) != 0) {
		upl_seterr(res, errno == ENOSPC || errno == EIO ? UPL_RETRY : UPL_FAILED,
		    "write %s: %s", m->key, strerror(errno));
		goto fail;
	}
	etag_of(&st, res->etag, sizeof(res->etag));
	if (m->cond != UPL_COND_NONE) {
		if ((lockfd = open_vault_dir(r)) == -1 || flock(lockfd, LOCK_EX) != 0) {
			upl_seterr(res, UPL_FAILED, "lock the vault directory: %s", strerror(errno));
			goto fail;
		}
		have = fstatat(r->dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (!have && errno != ENOENT) {
			upl_seterr(res, UPL_FAILED, "stat %s: %s", m->key, strerror(errno));
			goto fail;
		}
		if (have)
			etag_of(&st, cur, sizeof(cur));
		if ((m->cond == UPL_COND_IF_NONE_MATCH && have) ||
		    (m->cond == UPL_COND_IF_MATCH && (!have || strcmp(cur, m->etag) != 0))) {
			upl_seterr(res, UPL_CONFLICT, "%s was written elsewhere (ETag %s, expected %s)",
			    m->key, have ? cur : "none", m->cond == UPL_COND_IF_MATCH ? m->etag :
			    "none");
			res->http_status = 412;
			res->etag[0] = '\0';
			goto fail;
		}
	}
	if (renameat(r->dirfd, tmp, r->dirfd, path) != 0 || sync_parent(r->dirfd, path) != 0) {
		upl_seterr(res, UPL_FAILED, "rename into %s: %s", m->key, strerror(errno));
		goto fail;
	}
	if (lockfd >= 0)
		close(lockfd);
	close(tfd);
	res->outcome = UPL_OK;
	res->bytes = m->size;
	return;
fail:
	if (lockfd >= 0)
		close(lockfd);
	close(tfd);
	(void)unlinkat(r->dirfd, tmp, 0);
}

void
dirr_get(struct upl_remote *r, const struct msg_upl_get *m, int fd, struct msg_upl_result *res)
{
	char path[S3_KEY_MAX];
	struct stat st;
	int sfd;

	if (full_path(r, m->key, path, sizeof(path)) != 0) {
		upl_seterr(res, UPL_FAILED, "key too long");
		return;
	}
	if ((sfd = openat(r->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		upl_seterr(res, errno == ENOENT ? UPL_NOT_FOUND : UPL_FAILED, "%s: %s", m->key,
		    strerror(errno));
		if (errno == ENOENT)
			res->http_status = 404;
		return;
	}
	if (fstat(sfd, &st) != 0 || !S_ISREG(st.st_mode)) {
		upl_seterr(res, UPL_FAILED, "%s: not a regular file", m->key);
		goto out;
	}
	if ((uint64_t)st.st_size > m->max) {
		upl_seterr(res, UPL_FAILED, "%s: %lld bytes, more than the %llu allowed", m->key,
		    (long long)st.st_size, (unsigned long long)m->max);
		goto out;
	}
	if (copy_fd(sfd, fd, (uint64_t)st.st_size) != 0) {
		upl_seterr(res, UPL_FAILED, "read %s: %s", m->key, strerror(errno));
		goto out;
	}
	res->outcome = UPL_OK;
	res->bytes = (uint64_t)st.st_size;
	res->mtime = st.st_mtim.tv_sec;
	etag_of(&st, res->etag, sizeof(res->etag));
out:
	close(sfd);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
dir_list(struct upl_remote *r, const struct msg_upl_op *m, const struct upl_emit *em,
    struct msg_upl_result *res)
{
	char path[S3_KEY_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0, i, plen = strlen(m->key);
	struct dirent *de;
	DIR *d;
	int dfd;

	/* A listing is of a directory: "history/" or "" → the vault's own. */
	if (plen == 0 || m->key[plen - 1] != '/') {
		upl_seterr(res, UPL_FAILED, "a dir: remote lists directories only (%s)", m->key);
		return;
	}
	if (full_path(r, m->key, path, sizeof(path)) != 0) {
		upl_seterr(res, UPL_FAILED, "key too long");
		return;
	}
	path[strlen(path) - 1] = '\0';
	if ((dfd = openat(r->dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			res->outcome = UPL_OK;	/* nothing there yet */
		else
			upl_seterr(res, UPL_FAILED, "open %s: %s", m->key, strerror(errno));
		return;
	}
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		upl_seterr(res, UPL_FAILED, "read %s: %s", m->key, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL && n < DIR_MAX_LIST) {
		if (de->d_name[0] == '.' || (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));

			if (nn == NULL)
				break;
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		struct msg_upl_entry e;
		struct stat st;

		memset(&e, 0, sizeof(e));
		if ((size_t)snprintf(e.key, sizeof(e.key), "%s%s", m->key, names[i]) >= sizeof(e.key) ||
		    msg_valid_key(e.key) != 0 ||
		    fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		e.id = m->id;
		e.size = (uint64_t)st.st_size;
		e.mtime = st.st_mtim.tv_sec;
		etag_of(&st, e.etag, sizeof(e.etag));
		em->entry(em->arg, &e);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	res->outcome = UPL_OK;
}

void
dirr_op(struct upl_remote *r, const struct msg_upl_op *m, const struct upl_emit *em,
    struct msg_upl_result *res)
{
	char path[S3_KEY_MAX];
	struct stat st;

	if (m->op == UPL_LIST) {
		dir_list(r, m, em, res);
		return;
	}
	if (m->op == UPL_ABORT) {	/* nothing is ever half-written under a real name */
		res->outcome = UPL_OK;
		return;
	}
	if (full_path(r, m->key, path, sizeof(path)) != 0) {
		upl_seterr(res, UPL_FAILED, "key too long");
		return;
	}
	if (m->op == UPL_HEAD) {
		if (fstatat(r->dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			upl_seterr(res, errno == ENOENT ? UPL_NOT_FOUND : UPL_FAILED, "%s: %s",
			    m->key, strerror(errno));
			res->http_status = errno == ENOENT ? 404 : 0;
			return;
		}
		res->outcome = UPL_OK;
		res->bytes = (uint64_t)st.st_size;
		res->mtime = st.st_mtim.tv_sec;
		etag_of(&st, res->etag, sizeof(res->etag));
		return;
	}
	/* UPL_DELETE */
	if (unlinkat(r->dirfd, path, 0) != 0) {
		upl_seterr(res, errno == ENOENT ? UPL_NOT_FOUND : UPL_FAILED, "delete %s: %s",
		    m->key, strerror(errno));
		return;
	}
	(void)sync_parent(r->dirfd, path);
	res->outcome = UPL_OK;
}
