/*
 * The extractor.  The stream may come from an attacker (anyone who can
 * write to the remote and knows the public recipient can produce a valid
 * age file), so libarchive only parses; every object is created here, by
 * *at() calls relative to the staging directory, walking parents one
 * component at a time with O_NOFOLLOW.  Names are checked before anything
 * is touched, new names are created with O_EXCL (or mkdirat/symlinkat,
 * which never replace), and nothing is ever opened through a symlink.
 *
 * Directory modes and mtimes are applied at the end, deepest first, since
 * creating children changes a directory's mtime and a read-only mode would
 * stop them being created.
 */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARC_USE_LIBARCHIVE
#include <archive.h>		/* this module's header, then libarchive's */
#include <archive_entry.h>
#include <openssl/evp.h>


/*
 * Stream bytes allowed on top of file contents: per entry (header, pax
 * header with two 4 KiB paths, data padding), and once for the end blocks
 * and record padding.  The source cannot make us read, hash or buffer more.
 */
#define ENTRY_OVERHEAD	((uint64_t)16 << 10)
#define TRAILER_SLACK	((uint64_t)1 << 20)
#define EOF_MARKER	1024			/* two zero blocks */

struct dirrec {
	struct timespec	 mtime;		/* UTIME_OMIT if the entry had none */
	mode_t		 mode;
	int		 explicit;	/* from a directory entry, not made on the way */
	char		 path[];
};

struct ex {
	struct archive		*a;
	EVP_MD_CTX		*md;
	arc_read_fn		 in;
	void			*arg;
	int			 dest;
	const struct arc_limits	*lim;
	struct arc_stats	*st;
	char			*err;
	size_t			 errlen;
	int			 failed;	/* err already says why */
	int			 src_done;	/* the source returned 0 or -1 */
	uint64_t		 stream, stream_cap;
	uint64_t		 entries, total;

	/* The previous entry's parent directory: entries come grouped. */
	int			 pfd;
	size_t			 pplen;
	char			 ppath[ARC_PATH_MAX + 1];

	struct dirrec		**dirs;
	size_t			 ndirs, dircap;
	void			*dirtree;

	int			 ncomp;
	char			*comp[ARC_MAX_DEPTH];
	char			 path[ARC_PATH_MAX + 1];	/* split in place */
	char			 shown[128];			/* printable entry name */
	char			 srcerr[256];
};

static void
ex_fail(struct ex *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The first failure is the one reported; what follows is fallout. */
static void
ex_fail(struct ex *x, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (x->failed)
		return;
	x->failed = 1;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (x->shown[0] != '\0')
		arc_seterr(x->err, x->errlen, "entry '%s': %s", x->shown, msg);
	else
		arc_seterr(x->err, x->errlen, "%s", msg);
}

static void
ex_tar_fail(struct ex *x)
{
	const char *m = archive_error_string(x->a);

	ex_fail(x, "tar: %s", m != NULL ? m : "unknown error");
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The next block of the raw stream, hashed and counted; 0 at its end. */
static ssize_t
ex_pull(struct ex *x, const void **buf)
{
	ssize_t n;

	*buf = NULL;
	if (x->src_done)
		return x->failed ? -1 : 0;
	x->srcerr[0] = '\0';
	n = x->in(x->arg, buf, x->srcerr, sizeof(x->srcerr));
	if (n <= 0) {
		x->src_done = 1;
		if (n < 0) {
			x->shown[0] = '\0';
			ex_fail(x, "reading the archive: %s",
			    x->srcerr[0] != '\0' ? x->srcerr : "input failed");
			return -1;
		}
		return 0;
	}
	if ((uint64_t)n > x->stream_cap - x->stream) {
		x->src_done = 1;
		x->shown[0] = '\0';
		ex_fail(x, "archive larger than the size and entry limits allow");
		return -1;
	}
	x->stream += (uint64_t)n;
	if (EVP_DigestUpdate(x->md, *buf, (size_t)n) != 1) {
		x->src_done = 1;
		ex_fail(x, "hashing the archive failed");
		return -1;
	}
	return n;
}

static la_ssize_t
ex_read_cb(struct archive *a, void *arg, const void **buf)
{
	ssize_t n = ex_pull(arg, buf);

	if (n < 0)
		archive_set_error(a, EIO, "input failed");
	return n;
}

/* ---- names --------------------------------------------------------------------- */

/* Split the entry path into x->comp: 0, 1 for the root itself ("./"), -1 if refused. */
static int
ex_split(struct ex *x, const char *raw, int *trailing)
{
	size_t len = strlen(raw), n;
	char *p, *q;

	*trailing = 0;
	x->ncomp = 0;
	if (len == 0) {
		ex_fail(x, "empty name");
		return -1;
	}
	if (len > ARC_PATH_MAX) {
		ex_fail(x, "path longer than %d bytes", ARC_PATH_MAX);
		return -1;
	}
	if (arc_has_control(raw)) {
		ex_fail(x, "control character in name");
		return -1;
	}
	if (raw[0] == '/') {
		ex_fail(x, "absolute path");
		return -1;
	}
	memcpy(x->path, raw, len + 1);
	p = x->path;
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (p[0] == '\0' || strcmp(p, ".") == 0)
		return 1;
	len = strlen(p);
	if (p[len - 1] == '/') {
		p[--len] = '\0';
		*trailing = 1;
	}
	for (;;) {
		if ((q = strchr(p, '/')) != NULL)
			*q = '\0';
		n = strlen(p);
		if (n == 0) {
			ex_fail(x, "empty path component");
			return -1;
		}
		if (strcmp(p, ".") == 0) {
			ex_fail(x, "'.' component in path");
			return -1;
		}
		if (strcmp(p, "..") == 0) {
			ex_fail(x, "'..' component in path");
			return -1;
		}
		if (n > ARC_NAME_MAX) {
			ex_fail(x, "path component longer than %d bytes", ARC_NAME_MAX);
			return -1;
		}
		if (x->ncomp == ARC_MAX_DEPTH) {
			ex_fail(x, "deeper than %d levels", ARC_MAX_DEPTH);
			return -1;
		}
		x->comp[x->ncomp++] = p;
		if (q == NULL)
			break;
		p = q + 1;
	}
	return 0;
}

/* Bytes of x->path covering comp[0..k-1] (the split left one NUL per slash). */
static size_t
ex_span(const struct ex *x, int k)
{
	return (size_t)(x->comp[k - 1] - x->comp[0]) + strlen(x->comp[k - 1]);
}

/* ---- directories --------------------------------------------------------------- */

static int
dirrec_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dirrec *)a)->path, ((const struct dirrec *)b)->path);
}

/* The record for comp[0..k-1], newly added or (add 0) as found; NULL if none or on failure. */
static struct dirrec *
ex_dirrec(struct ex *x, int k, int add)
{
	struct dirrec *d, **slot, **v;
	size_t len = ex_span(x, k), i;

	if ((d = malloc(sizeof(*d) + len + 1)) == NULL) {
		ex_fail(x, "out of memory");
		return NULL;
	}
	memset(d, 0, sizeof(*d));
	memcpy(d->path, x->comp[0], len);
	d->path[len] = '\0';
	for (i = 0; i < len; i++)
		if (d->path[i] == '\0')
			d->path[i] = '/';
	if (!add) {
		slot = tfind(d, &x->dirtree, dirrec_cmp);
		free(d);
		return slot != NULL ? *slot : NULL;
	}
	if (x->ndirs == x->dircap) {
		size_t cap = x->dircap ? x->dircap * 2 : 64;

		if ((v = realloc(x->dirs, cap * sizeof(*v))) == NULL) {
			free(d);
			ex_fail(x, "out of memory");
			return NULL;
		}
		x->dirs = v;
		x->dircap = cap;
	}
	if ((slot = tsearch(d, &x->dirtree, dirrec_cmp)) == NULL || *slot != d) {
		free(d);
		ex_fail(x, slot == NULL ? "out of memory" : "duplicate entry");
		return NULL;
	}
	x->dirs[x->ndirs++] = d;
	return d;
}

static int
ex_count(struct ex *x)
{
	if (++x->entries > x->lim->max_entries) {
		ex_fail(x, "more than %llu entries", (unsigned long long)x->lim->max_entries);
		return -1;
	}
	return 0;
}

/*
 * The directory holding the current entry, created as needed.  Returns a
 * descriptor owned by x (dest or the cached parent), or -1.
 */
static int
ex_parent(struct ex *x)
{
	char pb[128];
	size_t plen;
	int cur, fd, i;

	if (x->ncomp == 1)
		return x->dest;
	plen = ex_span(x, x->ncomp - 1);
	if (x->pfd != -1 && plen == x->pplen && memcmp(x->ppath, x->comp[0], plen) == 0)
		return x->pfd;
	if (x->pfd != -1) {
		close(x->pfd);
		x->pfd = -1;
	}
	cur = x->dest;
	for (i = 0; i < x->ncomp - 1; i++) {
		fd = openat(cur, x->comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1 && errno == ENOENT) {
			if (mkdirat(cur, x->comp[i], 0700) == -1) {
				ex_fail(x, "mkdir '%s': %s",
				    arc_printable(x->comp[i], pb, sizeof(pb)), strerror(errno));
				goto fail;
			}
			if (ex_count(x) != 0 || ex_dirrec(x, i + 1, 1) == NULL)
				goto fail;
			fd = openat(cur, x->comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd == -1) {
			if (errno == ELOOP || errno == ENOTDIR)
				ex_fail(x, "parent '%s' is a symlink or not a directory",
				    arc_printable(x->comp[i], pb, sizeof(pb)));
			else
				ex_fail(x, "open '%s': %s",
				    arc_printable(x->comp[i], pb, sizeof(pb)), strerror(errno));
			goto fail;
		}
		if (cur != x->dest)
			close(cur);
		cur = fd;
	}
	x->pfd = cur;
	x->pplen = plen;
	memcpy(x->ppath, x->comp[0], plen);
	return cur;
fail:
	if (cur != x->dest)
		close(cur);
	return -1;
}

static int
ex_mtime(struct ex *x, struct archive_entry *e, struct timespec ts[2])
{
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = 0;
	ts[1].tv_nsec = UTIME_OMIT;
	if (!archive_entry_mtime_is_set(e))
		return 0;
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (ts[1].tv_nsec < 0 || ts[1].tv_nsec > 999999999) {
		ex_fail(x, "bad mtime");
		return -1;
	}
	return 0;
}

static int
ex_dir(struct ex *x, struct archive_entry *e)
{
	struct timespec ts[2];
	struct dirrec *d;
	int pfd;

	if (ex_mtime(x, e, ts) != 0 || (pfd = ex_parent(x)) == -1)
		return -1;
	if (mkdirat(pfd, x->comp[x->ncomp - 1], 0700) == 0) {
		if ((d = ex_dirrec(x, x->ncomp, 1)) == NULL)
			return -1;
	} else if (errno == EEXIST) {
		/* Only a directory made on the way for an earlier entry may be named again. */
		d = ex_dirrec(x, x->ncomp, 0);
		if (x->failed)
			return -1;
		if (d == NULL || d->explicit) {
			ex_fail(x, "duplicate entry");
			return -1;
		}
		x->entries--;		/* counted when it was made */
	} else {
		ex_fail(x, "mkdir: %s", strerror(errno));
		return -1;
	}
	d->explicit = 1;
	d->mode = archive_entry_perm(e) & 0777;
	d->mtime = ts[1];
	x->st->dirs++;
	return 0;
}

/* Open a recorded directory again, one component at a time. */
static int
ex_open_dir(struct ex *x, const char *path)
{
	char *p, *q;
	int cur = x->dest, fd, saved;

	if (strlen(path) > ARC_PATH_MAX)
		return -1;
	strcpy(x->path, path);
	for (p = x->path; p != NULL; p = q) {
		if ((q = strchr(p, '/')) != NULL)
			*q++ = '\0';
		fd = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		saved = errno;
		if (cur != x->dest)
			close(cur);
		if (fd == -1) {
			errno = saved;
			return -1;
		}
		cur = fd;
	}
	return cur;
}

static int
dirrec_cmp_desc(const void *a, const void *b)
{
	return strcmp((*(struct dirrec *const *)b)->path, (*(struct dirrec *const *)a)->path);
}

/* Descending order puts every directory before its ancestors. */
static int
ex_finish_dirs(struct ex *x)
{
	struct timespec ts[2];
	struct dirrec *d;
	char pb[128];
	size_t i;
	int fd, rc;

	if (x->ndirs > 1)
		qsort(x->dirs, x->ndirs, sizeof(*x->dirs), dirrec_cmp_desc);
	x->shown[0] = '\0';
	for (i = 0; i < x->ndirs; i++) {
		d = x->dirs[i];
		if ((fd = ex_open_dir(x, d->path)) == -1) {
			ex_fail(x, "reopen directory '%s': %s",
			    arc_printable(d->path, pb, sizeof(pb)), strerror(errno));
			return -1;
		}
		rc = 0;
		if (x->lim->chown_entries)
			rc = fchown(fd, x->lim->owner_uid, x->lim->owner_gid);
		if (rc == 0 && d->explicit)
			rc = fchmod(fd, d->mode);
		if (rc == 0 && d->explicit && d->mtime.tv_nsec != UTIME_OMIT) {
			ts[0].tv_sec = 0;
			ts[0].tv_nsec = UTIME_OMIT;
			ts[1] = d->mtime;
			rc = futimens(fd, ts);
		}
		if (rc != 0)
			ex_fail(x, "directory '%s': %s", arc_printable(d->path, pb, sizeof(pb)),
			    strerror(errno));
		close(fd);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* ---- files and symlinks -------------------------------------------------------- */

static int
write_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
ex_file_data(struct ex *x, int fd, uint64_t size)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	uint64_t done = 0;
	int r;

	for (;;) {
		r = archive_read_data_block(x->a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			ex_tar_fail(x);
			return -1;
		}
		if (off < 0 || (uint64_t)off != done || len > size - done) {
			ex_fail(x, "sparse or inconsistent file data");
			return -1;
		}
		if (write_all(fd, buf, len) != 0) {
			ex_fail(x, "write: %s", strerror(errno));
			return -1;
		}
		done += len;
	}
	if (done != size) {
		ex_fail(x, "sparse or inconsistent file data");
		return -1;
	}
	return 0;
}

static int
ex_file(struct ex *x, struct archive_entry *e)
{
	struct timespec ts[2];
	la_int64_t size = archive_entry_size(e);
	int pfd, fd, rc;

	if (size < 0 || !archive_entry_size_is_set(e)) {
		ex_fail(x, "file without a size");
		return -1;
	}
	if ((uint64_t)size > x->lim->max_entry_bytes) {
		ex_fail(x, "%lld bytes, over the per-file limit of %llu", (long long)size,
		    (unsigned long long)x->lim->max_entry_bytes);
		return -1;
	}
	if ((uint64_t)size > x->lim->max_total_bytes - x->total) {
		ex_fail(x, "total size over the limit of %llu bytes",
		    (unsigned long long)x->lim->max_total_bytes);
		return -1;
	}
	x->total += (uint64_t)size;
	if (archive_entry_sparse_count(e) > 0) {
		ex_fail(x, "sparse files are not supported");
		return -1;
	}
	if (ex_mtime(x, e, ts) != 0 || (pfd = ex_parent(x)) == -1)
		return -1;
	fd = openat(pfd, x->comp[x->ncomp - 1], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1) {
		if (errno == EEXIST)
			ex_fail(x, "duplicate entry");
		else
			ex_fail(x, "create: %s", strerror(errno));
		return -1;
	}
	rc = ex_file_data(x, fd, (uint64_t)size);
	if (rc == 0 && x->lim->chown_entries &&
	    fchown(fd, x->lim->owner_uid, x->lim->owner_gid) != 0) {
		ex_fail(x, "chown: %s", strerror(errno));
		rc = -1;
	}
	if (rc == 0 && fchmod(fd, archive_entry_perm(e) & 0777) != 0) {
		ex_fail(x, "chmod: %s", strerror(errno));
		rc = -1;
	}
	if (rc == 0 && futimens(fd, ts) != 0) {
		ex_fail(x, "set mtime: %s", strerror(errno));
		rc = -1;
	}
	if (close(fd) != 0 && rc == 0) {
		ex_fail(x, "close: %s", strerror(errno));
		rc = -1;
	}
	if (rc == 0) {
		x->st->files++;
		x->st->bytes += (uint64_t)size;
	}
	return rc;
}

static int
ex_symlink(struct ex *x, struct archive_entry *e)
{
	struct timespec ts[2];
	const char *target = archive_entry_symlink(e), *name;
	int pfd;

	if (target == NULL || target[0] == '\0') {
		ex_fail(x, "symlink without a target");
		return -1;
	}
	if (target[0] == '/') {
		ex_fail(x, "absolute symlink target");
		return -1;
	}
	if (!arc_link_inside(target, x->ncomp - 1)) {
		ex_fail(x, "symlink target leaves the archive");
		return -1;
	}
	if (ex_mtime(x, e, ts) != 0 || (pfd = ex_parent(x)) == -1)
		return -1;
	name = x->comp[x->ncomp - 1];
	if (symlinkat(target, pfd, name) != 0) {
		if (errno == EEXIST)
			ex_fail(x, "duplicate entry");
		else
			ex_fail(x, "symlink: %s", strerror(errno));
		return -1;
	}
	if (x->lim->chown_entries && fchownat(pfd, name, x->lim->owner_uid, x->lim->owner_gid,
	    AT_SYMLINK_NOFOLLOW) != 0) {
		ex_fail(x, "chown: %s", strerror(errno));
		return -1;
	}
	if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) != 0) {
		ex_fail(x, "set mtime: %s", strerror(errno));
		return -1;
	}
	x->st->symlinks++;
	return 0;
}

static int
ex_entry(struct ex *x, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	unsigned int type = archive_entry_filetype(e);
	int trailing, r;

	if (raw == NULL) {
		x->shown[0] = '\0';
		ex_fail(x, "entry with an unreadable name");
		return -1;
	}
	arc_printable(raw, x->shown, sizeof(x->shown));
	if (ex_count(x) != 0)
		return -1;
	if (archive_entry_hardlink(e) != NULL) {
		ex_fail(x, "hard links are not allowed");
		return -1;
	}
	switch (type) {
	case AE_IFREG:
	case AE_IFDIR:
	case AE_IFLNK:
		break;
	case AE_IFCHR:
		ex_fail(x, "character devices are not allowed");
		return -1;
	case AE_IFBLK:
		ex_fail(x, "block devices are not allowed");
		return -1;
	case AE_IFIFO:
		ex_fail(x, "fifos are not allowed");
		return -1;
	case AE_IFSOCK:
		ex_fail(x, "sockets are not allowed");
		return -1;
	default:
		ex_fail(x, "unsupported entry type 0%o", type);
		return -1;
	}
	if (archive_entry_mode(e) & (S_ISUID | S_ISGID | S_ISVTX)) {
		ex_fail(x, "setuid/setgid/sticky bits are not allowed (mode %04o)",
		    (unsigned int)(archive_entry_mode(e) & 07777));
		return -1;
	}
	if ((r = ex_split(x, raw, &trailing)) == -1)
		return -1;
	if (r == 1) {
		if (type != AE_IFDIR) {
			ex_fail(x, "only a directory may name the root");
			return -1;
		}
		return 0;		/* "./" as tar -C dir . writes it: the root stays ours */
	}
	if (trailing && type != AE_IFDIR) {
		ex_fail(x, "trailing slash on a non-directory");
		return -1;
	}
	if (type == AE_IFDIR)
		return ex_dir(x, e);
	if (type == AE_IFREG)
		return ex_file(x, e);
	return ex_symlink(x, e);
}

/* ---- the whole stream ---------------------------------------------------------- */

static int
ex_run(struct ex *x)
{
	struct archive_entry *e;
	const void *buf;
	ssize_t n;
	int r;

	if (archive_read_support_format_tar(x->a) != ARCHIVE_OK ||
	    archive_read_open(x->a, x, NULL, ex_read_cb, NULL) != ARCHIVE_OK) {
		ex_tar_fail(x);
		return -1;
	}
	for (;;) {
		x->shown[0] = '\0';
		r = archive_read_next_header(x->a, &e);
		if (r == ARCHIVE_EOF)
			break;
		/* A warning is a name or attribute libarchive could not take as given. */
		if (r != ARCHIVE_OK) {
			ex_tar_fail(x);
			return -1;
		}
		if (ex_entry(x, e) != 0)
			return -1;
	}
	x->shown[0] = '\0';
	/*
	 * libarchive also reports EOF when the stream stops at an entry
	 * boundary; only the end blocks prove that nothing was cut off.
	 */
	if (archive_filter_bytes(x->a, 0) - archive_read_header_position(x->a) < EOF_MARKER) {
		ex_fail(x, "truncated archive: no end-of-archive marker");
		return -1;
	}
	while ((n = ex_pull(x, &buf)) > 0)
		continue;
	if (n < 0)
		return -1;
	if (x->pfd != -1) {
		close(x->pfd);
		x->pfd = -1;
	}
	return ex_finish_dirs(x);
}

int
arc_extract(arc_read_fn in, void *arg, int dest_dirfd, const struct arc_limits *lim,
    unsigned char sha256[32], struct arc_stats *st, char *err, size_t errlen)
{
	struct arc_stats local;
	struct ex *x;
	locale_t loc, prevloc;
	unsigned int mdlen = 0;
	uint64_t over;
	int rc = -1;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (lim == NULL) {
		arc_seterr(err, errlen, "no extraction limits");
		return -1;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		arc_seterr(err, errlen, "out of memory");
		return -1;
	}
	loc = arc_locale_enter(&prevloc);
	x->in = in;
	x->arg = arg;
	x->dest = dest_dirfd;
	x->lim = lim;
	x->st = st;
	x->err = err;
	x->errlen = errlen;
	x->pfd = -1;
	over = lim->max_entries < UINT64_MAX / ENTRY_OVERHEAD - 1 ?
	    (lim->max_entries + 1) * ENTRY_OVERHEAD : UINT64_MAX;
	x->stream_cap = sat_add(sat_add(lim->max_total_bytes, over), TRAILER_SLACK);
	if ((x->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1) {
		ex_fail(x, "SHA-256 initialisation failed");
		goto out;
	}
	if ((x->a = archive_read_new()) == NULL) {
		ex_fail(x, "out of memory");
		goto out;
	}
	if (ex_run(x) != 0)
		goto out;
	if (EVP_DigestFinal_ex(x->md, sha256, &mdlen) != 1 || mdlen != 32) {
		ex_fail(x, "SHA-256 finalisation failed");
		goto out;
	}
	rc = 0;
out:
	if (x->a != NULL)
		archive_read_free(x->a);
	if (x->pfd != -1)
		close(x->pfd);
	EVP_MD_CTX_free(x->md);
	/* The tree owns the records; the array only points at them. */
	tdestroy(x->dirtree, free);
	free(x->dirs);
	free(x);
	arc_locale_leave(loc, prevloc);
	return rc;
}
