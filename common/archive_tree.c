/*
 * The tree writer: turns entries (from the tar parser in this process, or
 * from the decoder child over its channel) into files under a staging
 * directory.  Entries may come from an attacker (anyone who can write to
 * the remote and knows the public recipient can produce a valid age file),
 * and the decoder that describes them may itself be compromised, so every
 * rule is applied here again whoever applied it before: every object is
 * created by *at() calls relative to the staging directory, walking parents
 * one component at a time with O_NOFOLLOW.  Names are checked before
 * anything is touched, new names are created with O_EXCL (or
 * mkdirat/symlinkat, which never replace), and nothing is ever opened
 * through a symlink.
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

#include "archive.h"

struct dirrec {
	struct timespec	 mtime;		/* UTIME_OMIT if the entry had none */
	mode_t		 mode;
	int		 explicit;	/* from a directory entry, not made on the way */
	char		 path[];
};

struct arc_tree {
	int			 dest;
	const struct arc_limits	*lim;
	struct arc_stats	*st;
	char			*err;
	size_t			 errlen;
	int			 failed;	/* err already says why */
	uint64_t		 entries, total;

	/* The previous entry's parent directory: entries come grouped. */
	int			 pfd;
	size_t			 pplen;
	char			 ppath[ARC_PATH_MAX + 1];

	struct dirrec		**dirs;
	size_t			 ndirs, dircap;
	void			*dirtree;

	struct arc_path		 p;		/* the current entry's name, split */
	char			 shown[128];	/* printable entry name */
};

static void
tr_fail(struct arc_tree *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The first failure is the one reported; what follows is fallout. */
static void
tr_fail(struct arc_tree *t, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (t->failed)
		return;
	t->failed = 1;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	arc_entry_err(t->err, t->errlen, t->shown, msg);
}

void
arc_entry_err(char *err, size_t errlen, const char *shown, const char *msg)
{
	if (shown != NULL && shown[0] != '\0')
		arc_seterr(err, errlen, "entry '%s': %s", shown, msg);
	else
		arc_seterr(err, errlen, "%s", msg);
}

/* ---- the rules every entry meets, in the parser and here -------------------------- */

int
arc_path_split(struct arc_path *ap, const char *raw, int *trailing, char *why, size_t whylen)
{
	size_t len = strlen(raw), n;
	char *p, *q;

	*trailing = 0;
	ap->ncomp = 0;
	if (len == 0) {
		arc_seterr(why, whylen, "empty name");
		return -1;
	}
	if (len > ARC_PATH_MAX) {
		arc_seterr(why, whylen, "path longer than %d bytes", ARC_PATH_MAX);
		return -1;
	}
	if (arc_has_control(raw)) {
		arc_seterr(why, whylen, "control character in name");
		return -1;
	}
	if (raw[0] == '/') {
		arc_seterr(why, whylen, "absolute path");
		return -1;
	}
	memcpy(ap->buf, raw, len + 1);
	p = ap->buf;
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
			arc_seterr(why, whylen, "empty path component");
			return -1;
		}
		if (strcmp(p, ".") == 0) {
			arc_seterr(why, whylen, "'.' component in path");
			return -1;
		}
		if (strcmp(p, "..") == 0) {
			arc_seterr(why, whylen, "'..' component in path");
			return -1;
		}
		if (n > ARC_NAME_MAX) {
			arc_seterr(why, whylen, "path component longer than %d bytes", ARC_NAME_MAX);
			return -1;
		}
		if (ap->ncomp == ARC_MAX_DEPTH) {
			arc_seterr(why, whylen, "deeper than %d levels", ARC_MAX_DEPTH);
			return -1;
		}
		ap->comp[ap->ncomp++] = p;
		if (q == NULL)
			break;
		p = q + 1;
	}
	return 0;
}

int
arc_entry_check(const struct arc_entry *e, struct arc_path *ap, char *why, size_t whylen)
{
	int trailing, r;

	if (e->type != ARC_DIR && e->type != ARC_FILE && e->type != ARC_SYMLINK) {
		arc_seterr(why, whylen, "unsupported entry type %d", e->type);
		return -1;
	}
	if (e->perm & ~(mode_t)0777) {
		arc_seterr(why, whylen, "setuid/setgid/sticky bits are not allowed (mode %04o)",
		    (unsigned int)(e->perm & 07777));
		return -1;
	}
	if ((r = arc_path_split(ap, e->name, &trailing, why, whylen)) == -1)
		return -1;
	if (r == 1) {
		if (e->type != ARC_DIR) {
			arc_seterr(why, whylen, "only a directory may name the root");
			return -1;
		}
		return 1;		/* "./" as tar -C dir . writes it: the root stays ours */
	}
	if (trailing && e->type != ARC_DIR) {
		arc_seterr(why, whylen, "trailing slash on a non-directory");
		return -1;
	}
	if (e->has_mtime && (e->mtime.tv_nsec < 0 || e->mtime.tv_nsec > 999999999)) {
		arc_seterr(why, whylen, "bad mtime");
		return -1;
	}
	if (e->type == ARC_SYMLINK) {
		if (e->link == NULL || e->link[0] == '\0') {
			arc_seterr(why, whylen, "symlink without a target");
			return -1;
		}
		if (strlen(e->link) > ARC_PATH_MAX) {
			arc_seterr(why, whylen, "symlink target longer than %d bytes", ARC_PATH_MAX);
			return -1;
		}
		if (e->link[0] == '/') {
			arc_seterr(why, whylen, "absolute symlink target");
			return -1;
		}
		if (!arc_link_inside(e->link, ap->ncomp - 1)) {
			arc_seterr(why, whylen, "symlink target leaves the archive");
			return -1;
		}
	}
	return 0;
}

/* Bytes of p->buf covering comp[0..k-1] (the split left one NUL per slash). */
static size_t
tr_span(const struct arc_tree *t, int k)
{
	return (size_t)(t->p.comp[k - 1] - t->p.comp[0]) + strlen(t->p.comp[k - 1]);
}

/* ---- directories --------------------------------------------------------------- */

static int
dirrec_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dirrec *)a)->path, ((const struct dirrec *)b)->path);
}

/* The record for comp[0..k-1], newly added or (add 0) as found; NULL if none or on failure. */
static struct dirrec *
tr_dirrec(struct arc_tree *t, int k, int add)
{
	struct dirrec *d, **slot, **v;
	size_t len = tr_span(t, k), i;

	if ((d = malloc(sizeof(*d) + len + 1)) == NULL) {
		tr_fail(t, "out of memory");
		return NULL;
	}
	memset(d, 0, sizeof(*d));
	memcpy(d->path, t->p.comp[0], len);
	d->path[len] = '\0';
	for (i = 0; i < len; i++)
		if (d->path[i] == '\0')
			d->path[i] = '/';
	if (!add) {
		slot = tfind(d, &t->dirtree, dirrec_cmp);
		free(d);
		return slot != NULL ? *slot : NULL;
	}
	if (t->ndirs == t->dircap) {
		size_t cap = t->dircap ? t->dircap * 2 : 64;

		if ((v = realloc(t->dirs, cap * sizeof(*v))) == NULL) {
			free(d);
			tr_fail(t, "out of memory");
			return NULL;
		}
		t->dirs = v;
		t->dircap = cap;
	}
	if ((slot = tsearch(d, &t->dirtree, dirrec_cmp)) == NULL || *slot != d) {
		free(d);
		tr_fail(t, slot == NULL ? "out of memory" : "duplicate entry");
		return NULL;
	}
	t->dirs[t->ndirs++] = d;
	return d;
}

static int
tr_count(struct arc_tree *t)
{
	if (++t->entries > t->lim->max_entries) {
		tr_fail(t, "more than %llu entries", (unsigned long long)t->lim->max_entries);
		return -1;
	}
	return 0;
}

/*
 * The directory holding the current entry, created as needed.  Returns a
 * descriptor owned by t (dest or the cached parent), or -1.
 */
static int
tr_parent(struct arc_tree *t)
{
	char pb[128];
	size_t plen;
	int cur, fd, i;

	if (t->p.ncomp == 1)
		return t->dest;
	plen = tr_span(t, t->p.ncomp - 1);
	if (t->pfd != -1 && plen == t->pplen && memcmp(t->ppath, t->p.comp[0], plen) == 0)
		return t->pfd;
	if (t->pfd != -1) {
		close(t->pfd);
		t->pfd = -1;
	}
	cur = t->dest;
	for (i = 0; i < t->p.ncomp - 1; i++) {
		fd = openat(cur, t->p.comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1 && errno == ENOENT) {
			if (mkdirat(cur, t->p.comp[i], 0700) == -1) {
				tr_fail(t, "mkdir '%s': %s",
				    arc_printable(t->p.comp[i], pb, sizeof(pb)), strerror(errno));
				goto fail;
			}
			if (tr_count(t) != 0 || tr_dirrec(t, i + 1, 1) == NULL)
				goto fail;
			fd = openat(cur, t->p.comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd == -1) {
			if (errno == ELOOP || errno == ENOTDIR)
				tr_fail(t, "parent '%s' is a symlink or not a directory",
				    arc_printable(t->p.comp[i], pb, sizeof(pb)));
			else
				tr_fail(t, "open '%s': %s",
				    arc_printable(t->p.comp[i], pb, sizeof(pb)), strerror(errno));
			goto fail;
		}
		if (cur != t->dest)
			close(cur);
		cur = fd;
	}
	t->pfd = cur;
	t->pplen = plen;
	memcpy(t->ppath, t->p.comp[0], plen);
	return cur;
fail:
	if (cur != t->dest)
		close(cur);
	return -1;
}

static void
tr_times(const struct arc_entry *e, struct timespec ts[2])
{
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = 0;
	ts[1].tv_nsec = UTIME_OMIT;
	if (e->has_mtime)
		ts[1] = e->mtime;
}

static int
tr_dir(struct arc_tree *t, const struct arc_entry *e)
{
	struct dirrec *d;
	int pfd;

	if ((pfd = tr_parent(t)) == -1)
		return -1;
	if (mkdirat(pfd, t->p.comp[t->p.ncomp - 1], 0700) == 0) {
		if ((d = tr_dirrec(t, t->p.ncomp, 1)) == NULL)
			return -1;
	} else if (errno == EEXIST) {
		/* Only a directory made on the way for an earlier entry may be named again. */
		d = tr_dirrec(t, t->p.ncomp, 0);
		if (t->failed)
			return -1;
		if (d == NULL || d->explicit) {
			tr_fail(t, "duplicate entry");
			return -1;
		}
		t->entries--;		/* counted when it was made */
	} else {
		tr_fail(t, "mkdir: %s", strerror(errno));
		return -1;
	}
	d->explicit = 1;
	d->mode = e->perm & 0777;
	if (e->has_mtime)
		d->mtime = e->mtime;
	else
		d->mtime.tv_nsec = UTIME_OMIT;
	t->st->dirs++;
	return 0;
}

/* Open a recorded directory again, one component at a time. */
static int
tr_open_dir(struct arc_tree *t, const char *path)
{
	char *p, *q;
	int cur = t->dest, fd, saved;

	if (strlen(path) > ARC_PATH_MAX)
		return -1;
	strcpy(t->p.buf, path);
	for (p = t->p.buf; p != NULL; p = q) {
		if ((q = strchr(p, '/')) != NULL)
			*q++ = '\0';
		fd = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		saved = errno;
		if (cur != t->dest)
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
tr_finish_dirs(struct arc_tree *t)
{
	struct timespec ts[2];
	struct dirrec *d;
	char pb[128];
	size_t i;
	int fd, rc;

	if (t->ndirs > 1)
		qsort(t->dirs, t->ndirs, sizeof(*t->dirs), dirrec_cmp_desc);
	t->shown[0] = '\0';
	for (i = 0; i < t->ndirs; i++) {
		d = t->dirs[i];
		if ((fd = tr_open_dir(t, d->path)) == -1) {
			tr_fail(t, "reopen directory '%s': %s",
			    arc_printable(d->path, pb, sizeof(pb)), strerror(errno));
			return -1;
		}
		rc = 0;
		if (t->lim->chown_entries)
			rc = fchown(fd, t->lim->owner_uid, t->lim->owner_gid);
		if (rc == 0 && d->explicit)
			rc = fchmod(fd, d->mode);
		if (rc == 0 && d->explicit && d->mtime.tv_nsec != UTIME_OMIT) {
			ts[0].tv_sec = 0;
			ts[0].tv_nsec = UTIME_OMIT;
			ts[1] = d->mtime;
			rc = futimens(fd, ts);
		}
		if (rc != 0)
			tr_fail(t, "directory '%s': %s", arc_printable(d->path, pb, sizeof(pb)),
			    strerror(errno));
		close(fd);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* ---- files and symlinks -------------------------------------------------------- */

/* Where a file's bytes come from: read through data, or moved into the file by move. */
struct tr_src {
	arc_data_fn data;
	arc_move_fn move;
	void *arg;
};

/* The next piece of the file, written or moved into fd: its length, 0 at the end, -1. */
static ssize_t
tr_file_step(struct arc_tree *t, int fd, uint64_t left, const struct tr_src *src)
{
	const void *buf;
	char why[256];
	ssize_t n;

	why[0] = '\0';
	n = src->move != NULL ? src->move(src->arg, fd, left, why, sizeof(why)) :
	    src->data(src->arg, &buf, why, sizeof(why));
	if (n < 0) {
		tr_fail(t, "%s", why[0] != '\0' ? why : "reading file data failed");
		return -1;
	}
	if ((uint64_t)n > left) {
		tr_fail(t, "sparse or inconsistent file data");
		return -1;
	}
	if (n > 0 && src->move == NULL && arc_write_all(fd, buf, (size_t)n) != 0) {
		tr_fail(t, "write: %s", strerror(errno));
		return -1;
	}
	return n;
}

static int
tr_file_data(struct arc_tree *t, int fd, uint64_t size, const struct tr_src *src)
{
	uint64_t done = 0;
	ssize_t n;

	while ((n = tr_file_step(t, fd, size - done, src)) > 0)
		done += (uint64_t)n;
	if (n < 0)
		return -1;
	if (done != size) {
		tr_fail(t, "sparse or inconsistent file data");
		return -1;
	}
	return 0;
}

static int
tr_file(struct arc_tree *t, const struct arc_entry *e, const struct tr_src *src)
{
	struct timespec ts[2];
	int pfd, fd, rc;

	if (e->size > t->lim->max_entry_bytes) {
		tr_fail(t, "%llu bytes, over the per-file limit of %llu",
		    (unsigned long long)e->size, (unsigned long long)t->lim->max_entry_bytes);
		return -1;
	}
	if (e->size > t->lim->max_total_bytes - t->total) {
		tr_fail(t, "total size over the limit of %llu bytes",
		    (unsigned long long)t->lim->max_total_bytes);
		return -1;
	}
	t->total += e->size;
	tr_times(e, ts);
	if ((pfd = tr_parent(t)) == -1)
		return -1;
	fd = openat(pfd, t->p.comp[t->p.ncomp - 1], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1) {
		if (errno == EEXIST)
			tr_fail(t, "duplicate entry");
		else
			tr_fail(t, "create: %s", strerror(errno));
		return -1;
	}
	rc = tr_file_data(t, fd, e->size, src);
	if (rc == 0 && t->lim->chown_entries &&
	    fchown(fd, t->lim->owner_uid, t->lim->owner_gid) != 0) {
		tr_fail(t, "chown: %s", strerror(errno));
		rc = -1;
	}
	if (rc == 0 && fchmod(fd, e->perm & 0777) != 0) {
		tr_fail(t, "chmod: %s", strerror(errno));
		rc = -1;
	}
	if (rc == 0 && futimens(fd, ts) != 0) {
		tr_fail(t, "set mtime: %s", strerror(errno));
		rc = -1;
	}
	if (close(fd) != 0 && rc == 0) {
		tr_fail(t, "close: %s", strerror(errno));
		rc = -1;
	}
	if (rc == 0) {
		t->st->files++;
		t->st->bytes += e->size;
	}
	return rc;
}

static int
tr_symlink(struct arc_tree *t, const struct arc_entry *e)
{
	struct timespec ts[2];
	const char *name;
	int pfd;

	tr_times(e, ts);
	if ((pfd = tr_parent(t)) == -1)
		return -1;
	name = t->p.comp[t->p.ncomp - 1];
	if (symlinkat(e->link, pfd, name) != 0) {
		if (errno == EEXIST)
			tr_fail(t, "duplicate entry");
		else
			tr_fail(t, "symlink: %s", strerror(errno));
		return -1;
	}
	if (t->lim->chown_entries && fchownat(pfd, name, t->lim->owner_uid, t->lim->owner_gid,
	    AT_SYMLINK_NOFOLLOW) != 0) {
		tr_fail(t, "chown: %s", strerror(errno));
		return -1;
	}
	if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) != 0) {
		tr_fail(t, "set mtime: %s", strerror(errno));
		return -1;
	}
	t->st->symlinks++;
	return 0;
}

/* ---- the tree ------------------------------------------------------------------ */

struct arc_tree *
arc_tree_new(int dest_dirfd, const struct arc_limits *lim, struct arc_stats *st, char *err,
    size_t errlen)
{
	struct arc_tree *t;

	if (lim == NULL || st == NULL) {
		arc_seterr(err, errlen, "no extraction limits");
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		arc_seterr(err, errlen, "out of memory");
		return NULL;
	}
	t->dest = dest_dirfd;
	t->lim = lim;
	t->st = st;
	t->err = err;
	t->errlen = errlen;
	t->pfd = -1;
	return t;
}

static int
tr_entry(struct arc_tree *t, const struct arc_entry *e, const struct tr_src *src)
{
	char why[256];
	int r;

	if (t->failed)
		return -1;
	if (e->name == NULL) {
		t->shown[0] = '\0';
		tr_fail(t, "entry with an unreadable name");
		return -1;
	}
	arc_printable(e->name, t->shown, sizeof(t->shown));
	if (tr_count(t) != 0)
		return -1;
	if ((r = arc_entry_check(e, &t->p, why, sizeof(why))) == -1) {
		tr_fail(t, "%s", why);
		return -1;
	}
	if (r == 1)
		return 0;
	if (e->type == ARC_DIR)
		return tr_dir(t, e);
	if (e->type == ARC_FILE)
		return tr_file(t, e, src);
	return tr_symlink(t, e);
}

int
arc_tree_entry(struct arc_tree *t, const struct arc_entry *e, arc_data_fn data, void *darg)
{
	struct tr_src src = { data, NULL, darg };

	return tr_entry(t, e, &src);
}

int
arc_tree_entry_moved(struct arc_tree *t, const struct arc_entry *e, arc_move_fn move,
    void *marg)
{
	struct tr_src src = { NULL, move, marg };

	return tr_entry(t, e, &src);
}

int
arc_tree_finish(struct arc_tree *t)
{
	if (t->failed)
		return -1;
	if (t->pfd != -1) {
		close(t->pfd);
		t->pfd = -1;
	}
	return tr_finish_dirs(t);
}

void
arc_tree_free(struct arc_tree *t)
{
	if (t == NULL)
		return;
	if (t->pfd != -1)
		close(t->pfd);
	/* The tree owns the records; the array only points at them. */
	tdestroy(t->dirtree, free);
	free(t->dirs);
	free(t);
}
