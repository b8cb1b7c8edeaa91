/*
 * The tar writer.  Files and directories are described by an fstat of the
 * descriptor actually read (not of a name a rename could redirect), names
 * are sorted bytewise, and libarchive runs unblocked: headers and data reach
 * the sink in order, file data without being copied again, and the stream
 * ends with tar's two zero blocks and no record padding.  A sink that offers
 * room has file contents read straight into it, so the bytes are copied
 * once, by the kernel, on their way from the vault to the encryption.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARC_USE_LIBARCHIVE
#include <archive.h>		/* this module's header, then libarchive's */
#include <archive_entry.h>
#include <openssl/evp.h>

#include "secbuf.h"

#define READ_CHUNK	((size_t)1 << 20)

struct cr {
	struct archive		*a;
	struct archive_entry	*e;
	EVP_MD_CTX		*md;		/* NULL: the caller hashes */
	const struct arc_sink	*sink;
	struct secbuf		 buf;		/* file contents, if the sink has no room */
	struct arc_stats	*st;
	char			*err;
	size_t			 errlen;
	int			 failed;	/* err already says why */
	size_t			 plen;
	char			 path[ARC_PATH_MAX + 1];
	char			 link[ARC_PATH_MAX + 1];
};

static int cr_dir(struct cr *, int, int);

/* The entry at c->path as read: its part of the writer's view (treeview.h). */
static void
cr_view(struct cr *c, const struct stat *sb, const char *target, size_t tlen)
{
	struct tree_tuple t;

	tree_tuple_from_stat(&t, sb);
	tree_view_add(&c->st->view, c->path, c->plen, &t, target, tlen);
}

/* An entry the writer leaves out unread is still part of the view. */
static void
cr_view_at(struct cr *c, int dfd, const char *name)
{
	struct stat sb;
	ssize_t n = 0;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return;		/* gone: the scan after the archive tells */
	if (S_ISLNK(sb.st_mode) && (n = readlinkat(dfd, name, c->link, sizeof(c->link))) < 0)
		return;
	cr_view(c, &sb, S_ISLNK(sb.st_mode) ? c->link : NULL, (size_t)n);
}

/* The first failure is the one reported; what follows is fallout. */
static void
cr_failx(struct cr *c, const char *what, const char *detail)
{
	char pb[128];

	if (c->failed)
		return;
	c->failed = 1;
	if (c->plen > 0)
		arc_seterr(c->err, c->errlen, "%s: %s%s%s", arc_printable(c->path, pb, sizeof(pb)),
		    what, detail != NULL ? ": " : "", detail != NULL ? detail : "");
	else
		arc_seterr(c->err, c->errlen, "%s%s%s", what, detail != NULL ? ": " : "",
		    detail != NULL ? detail : "");
}

static void
cr_fail(struct cr *c, const char *what)
{
	cr_failx(c, what, strerror(errno));
}

static void
cr_libarchive_fail(struct cr *c)
{
	const char *m = archive_error_string(c->a);

	cr_failx(c, "tar", m != NULL ? m : "unknown error");
}

static void
cr_skip(struct cr *c, const char *why)
{
	char pb[128];

	if (c->st->skipped++ == 0)
		arc_seterr(c->st->first_skip, sizeof(c->st->first_skip), "%s: %s",
		    arc_printable(c->path, pb, sizeof(pb)), why);
}

static la_ssize_t
cr_write_cb(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct cr *c = arg;

	/* archive_write_free() would otherwise append the end blocks after a failure. */
	if (c->failed) {
		archive_set_error(a, EIO, "aborted");
		return -1;
	}
	if (c->md != NULL && EVP_DigestUpdate(c->md, buf, len) != 1) {
		cr_failx(c, "hashing the archive failed", NULL);
		archive_set_error(a, EIO, "hash");
		return -1;
	}
	if (c->sink->write(c->sink->arg, buf, len) != 0) {
		int saved = errno;

		c->failed = 1;
		arc_seterr(c->err, c->errlen, "writing the archive: %s", strerror(saved));
		archive_set_error(a, saved, "output");
		return -1;
	}
	return (la_ssize_t)len;
}

static int
cr_header(struct cr *c, const struct stat *sb, unsigned int type, mode_t perm, int64_t size)
{
	archive_entry_clear(c->e);
	archive_entry_copy_pathname(c->e, c->path);
	archive_entry_set_filetype(c->e, type);
	archive_entry_set_perm(c->e, perm);
	archive_entry_set_uid(c->e, sb->st_uid);
	archive_entry_set_gid(c->e, sb->st_gid);
	archive_entry_set_mtime(c->e, sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec);
	archive_entry_set_size(c->e, size);
	if (type == AE_IFLNK)
		archive_entry_copy_symlink(c->e, c->link);
	/* WARN: a name that is not UTF-8, written as raw bytes instead. */
	if (archive_write_header(c->a, c->e) < ARCHIVE_WARN) {
		cr_libarchive_fail(c);
		return -1;
	}
	return 0;
}

static int
cr_data(struct cr *c, const void *p, size_t len)
{
	const unsigned char *b = p;
	la_ssize_t n;

	while (len > 0) {
		if ((n = archive_write_data(c->a, b, len)) <= 0) {
			cr_libarchive_fail(c);
			return -1;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Our own buffer, made on first use: most sinks offer room instead. */
static unsigned char *
cr_scratch(struct cr *c)
{
	if (c->buf.p == NULL && secbuf_alloc(&c->buf, READ_CHUNK) != 0) {
		cr_fail(c, "read buffer");
		return NULL;
	}
	return c->buf.p;
}

/* Where the next read of file contents goes, and how much fits there. */
static unsigned char *
cr_room(struct cr *c, size_t *len)
{
	unsigned char *p;

	if (c->sink->room != NULL &&
	    (p = c->sink->room(c->sink->arg, len)) != NULL && *len > 0)
		return p;
	*len = READ_CHUNK;
	return cr_scratch(c);
}

/* Exactly size bytes of fd: the size its header promised. */
static int
cr_copy(struct cr *c, int fd, uint64_t size)
{
	uint64_t left = size;
	unsigned char *p;
	size_t want;
	ssize_t n;

	while (left > 0) {
		if ((p = cr_room(c, &want)) == NULL)
			return -1;
		if (want > left)
			want = (size_t)left;
		n = read(fd, p, want);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			cr_fail(c, "read");
			return -1;
		}
		if (n == 0)
			break;
		if (cr_data(c, p, (size_t)n) != 0)
			return -1;
		left -= (uint64_t)n;
	}
	if (left > 0) {
		if (cr_scratch(c) == NULL)
			return -1;
		memset(c->buf.p, 0, c->buf.cap);
	}
	while (left > 0) {
		want = left < c->buf.cap ? (size_t)left : c->buf.cap;
		if (cr_data(c, c->buf.p, want) != 0)
			return -1;
		left -= want;
	}
	return 0;
}

/*
 * cr_file and cr_subdir return 1, having written nothing, when name turns
 * out not to be what the caller took it for.
 */
static int
cr_file(struct cr *c, int dfd, const char *name)
{
	struct stat sb;
	int fd, rc;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENXIO)
			return 1;
		cr_fail(c, "open");
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		cr_fail(c, "fstat");
		close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return 1;
	}
	cr_view(c, &sb, NULL, 0);
	if (sb.st_mode & (S_ISUID | S_ISGID)) {
		cr_skip(c, "setuid/setgid file");
		close(fd);
		return 0;
	}
	/* Sticky means nothing on a file; dropping it keeps the stream extractable. */
	rc = cr_header(c, &sb, AE_IFREG, sb.st_mode & 0777, sb.st_size);
	if (rc == 0)
		rc = cr_copy(c, fd, (uint64_t)sb.st_size);
	close(fd);
	if (rc == 0) {
		c->st->files++;
		c->st->bytes += (uint64_t)sb.st_size;
	}
	return rc;
}

static int
cr_symlink(struct cr *c, int dfd, const char *name, const struct stat *sb, int depth)
{
	ssize_t n;

	if ((n = readlinkat(dfd, name, c->link, sizeof(c->link))) == -1) {
		if (errno == ENOENT || errno == EINVAL)
			return 0;
		cr_fail(c, "readlink");
		return -1;
	}
	cr_view(c, sb, c->link, (size_t)n);
	if ((size_t)n >= sizeof(c->link)) {
		cr_skip(c, "symlink target too long");
		return 0;
	}
	c->link[n] = '\0';
	if (!arc_link_inside(c->link, depth - 1)) {
		cr_skip(c, "symlink pointing outside the vault");
		return 0;
	}
	if (cr_header(c, sb, AE_IFLNK, 0777, 0) != 0)
		return -1;
	c->st->symlinks++;
	return 0;
}

static int
cr_subdir(struct cr *c, int dfd, const char *name, int depth)
{
	struct stat sb;
	int fd, rc;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY)) == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)
			return 1;
		cr_fail(c, "open");
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		cr_fail(c, "fstat");
		close(fd);
		return -1;
	}
	cr_view(c, &sb, NULL, 0);
	/* setgid and sticky only steer later creation; the extractor refuses them. */
	rc = cr_header(c, &sb, AE_IFDIR, sb.st_mode & 0777, 0);
	if (rc == 0) {
		c->st->dirs++;
		rc = cr_dir(c, fd, depth);
	}
	close(fd);
	return rc;
}

/* Dispatch on an lstat of name. */
static int
cr_stat_entry(struct cr *c, int dfd, const char *name, int depth)
{
	struct stat sb;
	int rc = 0;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return 0;
		cr_fail(c, "stat");
		return -1;
	}
	switch (sb.st_mode & S_IFMT) {
	case S_IFDIR:
		rc = cr_subdir(c, dfd, name, depth);
		break;
	case S_IFREG:
		rc = cr_file(c, dfd, name);
		break;
	case S_IFLNK:
		rc = cr_symlink(c, dfd, name, &sb, depth);
		break;
	case S_IFSOCK:
		cr_view(c, &sb, NULL, 0);
		cr_skip(c, "socket");
		break;
	case S_IFIFO:
		cr_view(c, &sb, NULL, 0);
		cr_skip(c, "fifo");
		break;
	default:
		cr_view(c, &sb, NULL, 0);
		cr_skip(c, "device node");
		break;
	}
	/* Replaced again since the stat: the change is the next save's. */
	return rc == 1 ? 0 : rc;
}

/* name, of the type readdir reported (DT_UNKNOWN if it did not say). */
static int
cr_entry(struct cr *c, int dfd, const char *name, unsigned char type, int depth)
{
	size_t base = c->plen, n = strlen(name);
	int rc = 0;

	if (base + (base > 0) + n > ARC_PATH_MAX) {
		cr_failx(c, "an entry's path would exceed 4095 bytes", NULL);
		return -1;
	}
	if (base > 0)
		c->path[c->plen++] = '/';
	memcpy(c->path + c->plen, name, n + 1);
	c->plen += n;

	if (depth > ARC_MAX_DEPTH) {
		cr_failx(c, "deeper than 64 levels", NULL);
		rc = -1;
	} else if (arc_has_control(name)) {
		/* The extractor refuses such names; they would make the archive unusable. */
		cr_view_at(c, dfd, name);
		cr_skip(c, "control character in name");
	} else {
		/*
		 * Files and directories are described by an fstat of what was
		 * opened anyway, so trusting readdir's type for them saves a
		 * stat per entry; one replaced since readdir gets the stat.
		 */
		if (type == DT_REG)
			rc = cr_file(c, dfd, name);
		else if (type == DT_DIR)
			rc = cr_subdir(c, dfd, name, depth);
		else
			rc = 1;
		if (rc == 1)
			rc = cr_stat_entry(c, dfd, name, depth);
	}
	c->plen = base;
	c->path[base] = '\0';
	return rc;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The names in dfd, sorted; one allocation holds the pointers and the
 * strings.  Each string is preceded by its readdir d_type byte.
 */
static char **
cr_names(struct cr *c, int dfd, size_t *count)
{
	DIR *d;
	struct dirent *de;
	char *arena = NULL, **v, *tmp;
	size_t used = 0, cap = 0, n = 0, len, i, off;
	int fd;

	if ((fd = dup(dfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		cr_fail(c, "opendir");
		return NULL;
	}
	rewinddir(d);
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		len = strlen(de->d_name) + 2;
		if (used + len > cap) {
			cap = cap ? cap * 2 : 4096;
			while (used + len > cap)
				cap *= 2;
			if ((tmp = realloc(arena, cap)) == NULL)
				goto fail;
			arena = tmp;
		}
		arena[used] = (char)de->d_type;
		memcpy(arena + used + 1, de->d_name, len - 1);
		used += len;
		n++;
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	d = NULL;
	/* Pointers go in front of the strings, so one free() releases both. */
	if ((v = malloc(n * sizeof(*v) + used + 1)) == NULL)
		goto fail;
	tmp = (char *)(v + n);
	if (used > 0)
		memcpy(tmp, arena, used);
	for (i = 0, off = 0; i < n; i++) {
		v[i] = tmp + off + 1;
		off += strlen(v[i]) + 2;
	}
	free(arena);
	if (n > 1)
		qsort(v, n, sizeof(*v), name_cmp);
	*count = n;
	return v;
fail:
	cr_fail(c, "readdir");
	if (d != NULL)
		closedir(d);
	free(arena);
	return NULL;
}

/* Entries of dfd, which sits depth levels below the root. */
static int
cr_dir(struct cr *c, int dfd, int depth)
{
	char **names;
	size_t n, i;
	int rc = 0;

	if ((names = cr_names(c, dfd, &n)) == NULL)
		return -1;
	for (i = 0; i < n && rc == 0; i++)
		rc = cr_entry(c, dfd, names[i], (unsigned char)names[i][-1], depth + 1);
	free(names);
	return rc;
}

/*
 * The content id is the HMAC of the stream's SHA-256, not of the stream:
 * the same keyed, unguessable-without-the-key id, for one pass over the
 * data instead of two (saves are CPU-bound on large vaults).
 */
int
arc_content_id(const unsigned char hmac_key[32], const unsigned char sha256[32],
    unsigned char content_id[32])
{
	size_t len = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hmac_key, 32, sha256, 32,
	    content_id, 32, &len) == NULL || len != 32)
		return -1;
	return 0;
}

int
arc_create(int vault_dirfd, arc_write_fn out, void *arg, const unsigned char hmac_key[32],
    unsigned char sha256[32], unsigned char content_id[32], struct arc_stats *st,
    char *err, size_t errlen)
{
	struct arc_sink sink = { out, NULL, arg };

	return arc_create_sink(vault_dirfd, &sink, hmac_key, sha256, content_id, st, err,
	    errlen);
}

int
arc_create_sink(int vault_dirfd, const struct arc_sink *sink, const unsigned char hmac_key[32],
    unsigned char sha256[32], unsigned char content_id[32], struct arc_stats *st,
    char *err, size_t errlen)
{
	struct arc_stats local;
	struct stat rootsb;
	struct cr *c;
	locale_t loc, prevloc;
	unsigned int mdlen = 0;
	int rootfd = -1, rc = -1;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		arc_seterr(err, errlen, "out of memory");
		return -1;
	}
	loc = arc_locale_enter(&prevloc);
	c->sink = sink;
	c->st = st;
	c->err = err;
	c->errlen = errlen;
	if (sha256 != NULL && ((c->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1)) {
		arc_seterr(err, errlen, "SHA-256 initialisation failed");
		goto out;
	}
	/* A descriptor of our own: the caller's may be O_PATH or partly read. */
	if ((rootfd = openat(vault_dirfd, ".", O_RDONLY | O_CLOEXEC | O_DIRECTORY)) == -1) {
		arc_seterr(err, errlen, "open vault: %s", strerror(errno));
		goto out;
	}
	if ((c->a = archive_write_new()) == NULL || (c->e = archive_entry_new()) == NULL) {
		arc_seterr(err, errlen, "out of memory");
		goto out;
	}
	/*
	 * Full pax rather than pax_restricted: only full pax keeps sub-second
	 * mtimes (restricted drops them), and it still adds an extended header
	 * only where one is needed.  Not hdrcharset=BINARY for every entry:
	 * GNU tar warns about that keyword on each entry carrying it.
	 */
	if (archive_write_set_format_pax(c->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(c->a, 0) != ARCHIVE_OK ||
	    archive_write_open(c->a, c, NULL, cr_write_cb, NULL) != ARCHIVE_OK) {
		cr_libarchive_fail(c);
		goto out;
	}
	if (fstat(rootfd, &rootsb) == -1) {
		arc_seterr(err, errlen, "stat vault: %s", strerror(errno));
		goto out;
	}
	cr_view(c, &rootsb, NULL, 0);
	if (cr_dir(c, rootfd, 0) != 0)
		goto out;
	if (archive_write_close(c->a) != ARCHIVE_OK) {
		cr_libarchive_fail(c);
		goto out;
	}
	if (c->md != NULL && (EVP_DigestFinal_ex(c->md, sha256, &mdlen) != 1 || mdlen != 32 ||
	    arc_content_id(hmac_key, sha256, content_id) != 0)) {
		arc_seterr(err, errlen, "SHA-256/HMAC finalisation failed");
		goto out;
	}
	rc = 0;
out:
	if (c->a != NULL)
		archive_write_free(c->a);
	if (c->e != NULL)
		archive_entry_free(c->e);
	if (rootfd != -1)
		close(rootfd);
	EVP_MD_CTX_free(c->md);
	secbuf_free(&c->buf);
	explicit_bzero(c, sizeof(*c));
	free(c);
	arc_locale_leave(loc, prevloc);
	return rc;
}
