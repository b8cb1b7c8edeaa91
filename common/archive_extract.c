/*
 * The tar parser: libarchive reads the stream and this file turns each
 * header into an arc_entry for a consumer (the tree writer in this process,
 * or the decoder's channel to the parent), after the rules only a parser can
 * apply: hard links, device and fifo types, sparse files, a missing
 * end-of-archive marker, a stream longer than the limits allow.  The
 * consumer applies the name, type and size rules again.  Nothing here
 * creates a file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

struct px {
	struct archive		*a;
	EVP_MD_CTX		*md;
	arc_read_fn		 in;
	void			*arg;
	const struct arc_entry_sink *sink;
	char			*err;
	size_t			 errlen;
	int			 failed;	/* err already says why */
	int			 src_done;	/* the source returned 0 or -1 */
	uint64_t		 stream, stream_cap;
	uint64_t		 file_size, file_done;	/* the entry whose data is being read */
	struct arc_path		 p;
	char			 shown[128];	/* printable entry name */
	char			 srcerr[256];
};

static void
px_fail(struct px *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The first failure is the one reported; what follows is fallout. */
static void
px_fail(struct px *x, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (x->failed)
		return;
	x->failed = 1;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	arc_entry_err(x->err, x->errlen, x->shown, msg);
}

static void
px_tar_fail(struct px *x)
{
	const char *m = archive_error_string(x->a);

	px_fail(x, "tar: %s", m != NULL ? m : "unknown error");
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The next block of the raw stream, hashed and counted; 0 at its end. */
static ssize_t
px_pull(struct px *x, const void **buf)
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
			px_fail(x, "reading the archive: %s",
			    x->srcerr[0] != '\0' ? x->srcerr : "input failed");
			return -1;
		}
		return 0;
	}
	if ((uint64_t)n > x->stream_cap - x->stream) {
		x->src_done = 1;
		x->shown[0] = '\0';
		px_fail(x, "archive larger than the size and entry limits allow");
		return -1;
	}
	x->stream += (uint64_t)n;
	if (x->md != NULL && EVP_DigestUpdate(x->md, *buf, (size_t)n) != 1) {
		x->src_done = 1;
		px_fail(x, "hashing the archive failed");
		return -1;
	}
	return n;
}

static la_ssize_t
px_read_cb(struct archive *a, void *arg, const void **buf)
{
	ssize_t n = px_pull(arg, buf);

	if (n < 0)
		archive_set_error(a, EIO, "input failed");
	return n;
}

/* An arc_data_fn over the current entry's data: contiguous, no more than its size. */
static ssize_t
px_data(void *arg, const void **buf, char *why, size_t whylen)
{
	struct px *x = arg;
	const char *m;
	size_t len;
	la_int64_t off;
	int r;

	r = archive_read_data_block(x->a, buf, &len, &off);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK) {
		m = archive_error_string(x->a);
		arc_seterr(why, whylen, "tar: %s", m != NULL ? m : "unknown error");
		return -1;
	}
	if (off < 0 || (uint64_t)off != x->file_done || len > x->file_size - x->file_done ||
	    len > SSIZE_MAX) {
		arc_seterr(why, whylen, "sparse or inconsistent file data");
		return -1;
	}
	x->file_done += len;
	if (len == 0)		/* never mistaken for the end: ask again */
		return px_data(arg, buf, why, whylen);
	return (ssize_t)len;
}

static int
px_entry(struct px *x, struct archive_entry *ae)
{
	const char *raw = archive_entry_pathname(ae);
	unsigned int type = archive_entry_filetype(ae);
	struct arc_entry e;
	char why[512];
	la_int64_t size;

	if (raw == NULL) {
		x->shown[0] = '\0';
		px_fail(x, "entry with an unreadable name");
		return -1;
	}
	arc_printable(raw, x->shown, sizeof(x->shown));
	if (archive_entry_hardlink(ae) != NULL) {
		px_fail(x, "hard links are not allowed");
		return -1;
	}
	memset(&e, 0, sizeof(e));
	switch (type) {
	case AE_IFREG:
		e.type = ARC_FILE;
		break;
	case AE_IFDIR:
		e.type = ARC_DIR;
		break;
	case AE_IFLNK:
		e.type = ARC_SYMLINK;
		break;
	case AE_IFCHR:
		px_fail(x, "character devices are not allowed");
		return -1;
	case AE_IFBLK:
		px_fail(x, "block devices are not allowed");
		return -1;
	case AE_IFIFO:
		px_fail(x, "fifos are not allowed");
		return -1;
	case AE_IFSOCK:
		px_fail(x, "sockets are not allowed");
		return -1;
	default:
		px_fail(x, "unsupported entry type 0%o", type);
		return -1;
	}
	e.perm = archive_entry_mode(ae) & 07777;
	e.name = raw;
	if (e.type == ARC_SYMLINK)
		e.link = archive_entry_symlink(ae);
	if (archive_entry_mtime_is_set(ae)) {
		e.has_mtime = 1;
		e.mtime.tv_sec = archive_entry_mtime(ae);
		e.mtime.tv_nsec = archive_entry_mtime_nsec(ae);
	}
	if (e.type == ARC_FILE) {
		size = archive_entry_size(ae);
		if (size < 0 || !archive_entry_size_is_set(ae)) {
			px_fail(x, "file without a size");
			return -1;
		}
		if (archive_entry_sparse_count(ae) > 0) {
			px_fail(x, "sparse files are not supported");
			return -1;
		}
		e.size = (uint64_t)size;
	}
	/* The consumer checks again; refusing here keeps a bad name from going further. */
	if (arc_entry_check(&e, &x->p, why, sizeof(why)) == -1) {
		px_fail(x, "%s", why);
		return -1;
	}
	x->file_size = e.size;
	x->file_done = 0;
	why[0] = '\0';
	if (x->sink->entry(x->sink->arg, &e, px_data, x, why, sizeof(why)) != 0) {
		/* The consumer's message names the entry already. */
		if (!x->failed) {
			x->failed = 1;
			arc_seterr(x->err, x->errlen, "%s", why[0] != '\0' ? why : "refused");
		}
		return -1;
	}
	return 0;
}

static int
px_run(struct px *x)
{
	struct archive_entry *e;
	const void *buf;
	ssize_t n;
	int r;

	if (archive_read_support_format_tar(x->a) != ARCHIVE_OK ||
	    archive_read_open(x->a, x, NULL, px_read_cb, NULL) != ARCHIVE_OK) {
		px_tar_fail(x);
		return -1;
	}
	for (;;) {
		x->shown[0] = '\0';
		r = archive_read_next_header(x->a, &e);
		if (r == ARCHIVE_EOF)
			break;
		/* A warning is a name or attribute libarchive could not take as given. */
		if (r != ARCHIVE_OK) {
			px_tar_fail(x);
			return -1;
		}
		if (px_entry(x, e) != 0)
			return -1;
	}
	x->shown[0] = '\0';
	/*
	 * libarchive also reports EOF when the stream stops at an entry
	 * boundary; only the end blocks prove that nothing was cut off.
	 */
	if (archive_filter_bytes(x->a, 0) - archive_read_header_position(x->a) < EOF_MARKER) {
		px_fail(x, "truncated archive: no end-of-archive marker");
		return -1;
	}
	while ((n = px_pull(x, &buf)) > 0)
		continue;
	return n < 0 ? -1 : 0;
}

int
arc_parse(arc_read_fn in, void *arg, const struct arc_limits *lim,
    const struct arc_entry_sink *sink, unsigned char sha256[32], char *err, size_t errlen)
{
	struct px *x;
	locale_t loc, prevloc;
	unsigned int mdlen = 0;
	uint64_t over;
	int rc = -1;

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
	x->sink = sink;
	x->err = err;
	x->errlen = errlen;
	over = lim->max_entries < UINT64_MAX / ENTRY_OVERHEAD - 1 ?
	    (lim->max_entries + 1) * ENTRY_OVERHEAD : UINT64_MAX;
	x->stream_cap = sat_add(sat_add(lim->max_total_bytes, over), TRAILER_SLACK);
	/* No sha256: the source digests what it hands out (the decoder, on another thread). */
	if (sha256 != NULL && ((x->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1)) {
		px_fail(x, "SHA-256 initialisation failed");
		goto out;
	}
	if ((x->a = archive_read_new()) == NULL) {
		px_fail(x, "out of memory");
		goto out;
	}
	if (px_run(x) != 0)
		goto out;
	if (x->md != NULL && (EVP_DigestFinal_ex(x->md, sha256, &mdlen) != 1 || mdlen != 32)) {
		px_fail(x, "SHA-256 finalisation failed");
		goto out;
	}
	rc = 0;
out:
	if (x->a != NULL)
		archive_read_free(x->a);
	EVP_MD_CTX_free(x->md);
	free(x);
	arc_locale_leave(loc, prevloc);
	return rc;
}

/* ---- parser and tree in one process: tests, fuzzing, the standard-tools path ---- */

struct tree_sink {
	struct arc_tree *t;
	char err[512];
};

static int
tree_sink_entry(void *arg, const struct arc_entry *e, arc_data_fn data, void *darg, char *why,
    size_t whylen)
{
	struct tree_sink *ts = arg;

	if (arc_tree_entry(ts->t, e, data, darg) == 0)
		return 0;
	arc_seterr(why, whylen, "%s", ts->err);
	return -1;
}

int
arc_extract(arc_read_fn in, void *arg, int dest_dirfd, const struct arc_limits *lim,
    unsigned char sha256[32], struct arc_stats *st, char *err, size_t errlen)
{
	struct arc_stats local;
	struct arc_entry_sink sink;
	struct tree_sink ts;
	int rc;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	ts.err[0] = '\0';
	if ((ts.t = arc_tree_new(dest_dirfd, lim, st, ts.err, sizeof(ts.err))) == NULL) {
		arc_seterr(err, errlen, "%s", ts.err);
		return -1;
	}
	sink.entry = tree_sink_entry;
	sink.arg = &ts;
	rc = arc_parse(in, arg, lim, &sink, sha256, err, errlen);
	if (rc == 0 && (rc = arc_tree_finish(ts.t)) != 0)
		arc_seterr(err, errlen, "%s", ts.err);
	arc_tree_free(ts.t);
	return rc;
}
