/*
 * The vault as a tar stream: a deterministic pax writer over an *at()
 * traversal, and an extractor for hostile input that creates everything
 * itself relative to a staging directory and never follows a symlink.
 *
 * Format: pax (POSIX.1-2001) as libarchive writes it.  An extended header
 * appears only where ustar cannot say it (sub-second mtime, long or
 * non-ASCII names, large ids); no atime, ctime, uname, gname, xattrs or
 * ACLs, so equal trees give byte-identical streams.  Names are written as
 * UTF-8 under a fixed C.UTF-8 locale, and a name that is not valid UTF-8 as
 * raw bytes (hdrcharset=BINARY, for that entry only).  GNU tar and bsdtar
 * read it.
 *
 * Both directions accept the same set of trees: directories, regular files
 * without setuid/setgid bits, and symlinks that stay inside the tree.  A
 * symlink target qualifies when it is relative and its ".." components all
 * come first, no more of them than the link has parent directories.  This
 * is stricter than resolving ".." lexically: with "s -> ." in the root,
 * "t -> s/.." looks harmless lexically but the kernel resolves it to the
 * parent of the root.
 *
 * Nothing here prints or exits: 0 on success, -1 with a reason in err.
 */
#ifndef VS_ARCHIVE_H
#define VS_ARCHIVE_H

#include <locale.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "treeview.h"

#define ARC_PATH_MAX	4095		/* longest entry path or symlink target */
#define ARC_NAME_MAX	255		/* longest path component */
#define ARC_MAX_DEPTH	64		/* most components in an entry path */

struct arc_stats {
	uint64_t files, dirs, symlinks, bytes, skipped;
	/* The writer's stat view of everything it met, the root included (treeview.h). */
	struct tree_view view;
	/* The first thing arc_create skipped and why, printable, "" if none. */
	char first_skip[160];
};

/* Output sink: 0 ok, -1 error (errno set); called with tar stream bytes in order. */
typedef int (*arc_write_fn)(void *arg, const void *buf, size_t len);
/*
 * Input source: > 0 bytes available at *buf (valid until the next call),
 * 0 at end, -1 on error with a reason written to err.  Not called again
 * after it returned 0 or -1.
 */
typedef ssize_t (*arc_read_fn)(void *arg, const void **buf, char *err, size_t errlen);

/*
 * Write a pax tar of the tree under vault_dirfd to out, entries sorted
 * bytewise within each directory, each directory before its contents.  In
 * the same pass: the SHA-256 of the stream; the content id is HMAC-SHA-256
 * under hmac_key of that digest.  Sockets, fifos, devices, setuid/setgid
 * files, escaping symlinks and names with control characters (which the
 * extractor refuses) are skipped and counted in st->skipped; a path longer
 * than ARC_PATH_MAX or deeper than ARC_MAX_DEPTH is an error.  A file
 * that changes size while it is read keeps the size it had when its header
 * was written (zero padded or cut short): the stream is always valid and
 * the next save picks up the change.  st may be NULL.
 */
int arc_create(int vault_dirfd, arc_write_fn out, void *arg, const unsigned char hmac_key[32],
    unsigned char sha256[32], unsigned char content_id[32], struct arc_stats *st,
    char *err, size_t errlen);

/*
 * An output for arc_create_sink.  room, when not NULL, returns where the
 * sink will store the next stream bytes and how many fit (at least one):
 * file contents are then read straight into that memory, and a write of
 * exactly that memory need not be copied.  It stays valid until the next
 * write.
 */
struct arc_sink {
	arc_write_fn write;
	void *(*room)(void *arg, size_t *len);
	void *arg;
};

/*
 * arc_create into an arc_sink.  With sha256 NULL the stream is not hashed
 * here and content_id is left alone: the caller hashes what it is given
 * (on another core, say) and derives the id with arc_content_id.
 */
int arc_create_sink(int vault_dirfd, const struct arc_sink *sink,
    const unsigned char hmac_key[32], unsigned char sha256[32], unsigned char content_id[32],
    struct arc_stats *st, char *err, size_t errlen);
/* The content id of a stream with this SHA-256: 0, or -1 if OpenSSL fails. */
int arc_content_id(const unsigned char hmac_key[32], const unsigned char sha256[32],
    unsigned char content_id[32]);

struct arc_limits {
	uint64_t max_total_bytes;	/* sum of regular file sizes, e.g. the vault's MountSize */
	uint64_t max_entry_bytes;	/* one file */
	uint64_t max_entries;		/* entries, plus directories created implicitly */
	uid_t owner_uid;
	gid_t owner_gid;		/* applied to everything extracted when chown_entries is 1 */
	int chown_entries;
};

/*
 * Extract the tar stream from in into dest_dirfd (an empty staging
 * directory) and return the SHA-256 of all the bytes in read.  Only
 * directories, regular files and symlinks that stay inside are accepted;
 * anything else (hard links, devices, fifos, sockets, setuid/setgid/sticky
 * bits, unsafe names, duplicate paths, limits exceeded, a missing
 * end-of-archive marker) fails the whole extraction.  Partial output is
 * left for the caller to discard; nothing outside dest_dirfd is created,
 * changed or followed.  A "./" entry for the root itself is ignored.
 * st may be NULL.
 */
int arc_extract(arc_read_fn in, void *arg, int dest_dirfd, const struct arc_limits *lim,
    unsigned char sha256[32], struct arc_stats *st, char *err, size_t errlen);

/*
 * The extractor in two halves, so that the tar parser can run in a child
 * (vaultsync-decoder) while the tree is written by the process that owns
 * the vault: arc_parse turns the stream into entries, an arc_tree creates
 * them.  Each applies every rule it can; arc_extract is the two joined.
 */
enum arc_type { ARC_DIR = 1, ARC_FILE, ARC_SYMLINK };

struct arc_entry {
	int type;			/* enum arc_type */
	mode_t perm;			/* as in the archive; anything above 0777 is refused */
	int has_mtime;
	struct timespec mtime;
	uint64_t size;			/* ARC_FILE: bytes of data that follow */
	const char *name;		/* raw, as in the archive */
	const char *link;		/* ARC_SYMLINK: the target */
};

/*
 * A file's data, in order: > 0 bytes at *buf (valid until the next call), 0
 * at the end of this entry's data, -1 with a reason in why.
 */
typedef ssize_t (*arc_data_fn)(void *arg, const void **buf, char *why, size_t whylen);

struct arc_entry_sink {
	/* 0, or -1 with a reason naming the entry in why.  A file's data is read here. */
	int (*entry)(void *arg, const struct arc_entry *e, arc_data_fn data, void *darg,
	    char *why, size_t whylen);
	void *arg;
};

/*
 * Parse the tar stream from in and hand each entry to sink; SHA-256 of all
 * the bytes read, or with sha256 NULL none (the source digests them: it is
 * read to its end either way).
 */
int arc_parse(arc_read_fn in, void *arg, const struct arc_limits *lim,
    const struct arc_entry_sink *sink, unsigned char sha256[32], char *err, size_t errlen);

struct arc_tree;
/* A writer into dest_dirfd (an empty staging directory); its errors go to err. */
struct arc_tree *arc_tree_new(int dest_dirfd, const struct arc_limits *lim,
    struct arc_stats *st, char *err, size_t errlen);
/* Create one entry (a file's data read through data): 0, or -1 and the tree is failed. */
int arc_tree_entry(struct arc_tree *t, const struct arc_entry *e, arc_data_fn data, void *darg);
/*
 * A file's data moved into fd by the source itself (splice from a pipe, no
 * copy through this process): at most max bytes, the count moved, 0 at the
 * file's end, -1 with a reason in why.
 */
typedef ssize_t (*arc_move_fn)(void *arg, int fd, uint64_t max, char *why, size_t whylen);
/* arc_tree_entry with a file's data moved by move; the same rules and byte count. */
int arc_tree_entry_moved(struct arc_tree *t, const struct arc_entry *e, arc_move_fn move,
    void *marg);
/* Directory modes and mtimes, once every entry is in: 0 or -1. */
int arc_tree_finish(struct arc_tree *t);
void arc_tree_free(struct arc_tree *t);

/*
 * An arc_read_fn over an age_reader (common/age.h): pass the reader as arg.
 * The age error message is copied to err.
 */
ssize_t arc_read_age(void *age_reader, const void **buf, char *err, size_t errlen);

/* ---- shared by archive*.c; not for callers ------------------------------- */

void arc_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A printable, bounded copy of name for messages: control bytes become '?'. */
const char *arc_printable(const char *name, char *buf, size_t len);
/* 1 if a symlink with this target, depth directories below the root, stays inside. */
int arc_link_inside(const char *target, int depth);
/* 1 if name has a byte below 0x20 or 0x7f. */
int arc_has_control(const char *name);
/* An entry path split into components (in buf). */
struct arc_path {
	int ncomp;
	char *comp[ARC_MAX_DEPTH];
	char buf[ARC_PATH_MAX + 1];
};
/* 0, 1 if raw names the root itself ("./"), -1 with a reason in why. */
int arc_path_split(struct arc_path *p, const char *raw, int *trailing, char *why,
    size_t whylen);
/*
 * The rules an entry meets before anything is created for it: its type and
 * mode bits, its name, its symlink target.  0, 1 for the root directory
 * (nothing to create), -1 with a reason in why.
 */
int arc_entry_check(const struct arc_entry *e, struct arc_path *p, char *why, size_t whylen);
/* "entry 'NAME': msg", or msg alone when shown is empty. */
void arc_entry_err(char *err, size_t errlen, const char *shown, const char *msg);
/* write(2) all of buf, through EINTR: 0 or -1. */
int arc_write_all(int fd, const void *buf, size_t len);
/*
 * Switch this thread to C.UTF-8 (or C) for libarchive's name conversions,
 * whatever the process locale; undo with arc_locale_leave(mine, *prev).
 */
locale_t arc_locale_enter(locale_t *prev);
void arc_locale_leave(locale_t mine, locale_t prev);

#endif /* VS_ARCHIVE_H */

/*
 * With -Icommon this header shadows libarchive's <archive.h>.  Code that
 * needs libarchive defines ARC_USE_LIBARCHIVE and includes <archive.h>
 * (angle brackets, so this file is found through the search path); the
 * search then carries on past common/ to the real one.
 */
#if defined(ARC_USE_LIBARCHIVE) && !defined(ARCHIVE_H_INCLUDED)
#include_next <archive.h>
#endif
