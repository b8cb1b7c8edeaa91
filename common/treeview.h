/*
 * A tree's stat view: what the parent's stat scan and the tar writer both
 * see of each entry, reduced to one 64-bit digest.  One definition for both,
 * because the save compares the writer's view (the fstat of what it read)
 * with a scan made after the archive: equal means no entry changed between
 * being read and the end, so the archive is a state the vault really had.
 *
 * Each entry's hash covers its path below the root, type and mode, size,
 * inode, owner, mtime and ctime to the nanosecond, and a symlink's target;
 * the digest is their sum with the count folded in.  A sum does not depend
 * on the order entries are met, so a walk may visit directories on several
 * threads, and the writer may add entries in its own order.
 */
#ifndef VS_TREEVIEW_H
#define VS_TREEVIEW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct tree_tuple {
	uint64_t mode, size, ino, uid, gid;
	int64_t mtime_ns, ctime_ns;		/* unix nanoseconds */
};

struct tree_view {
	uint64_t sum, entries;
};

void tree_tuple_from_stat(struct tree_tuple *t, const struct stat *sb);
void tree_tuple_from_statx(struct tree_tuple *t, const struct statx *sx);
/* Count one entry in: its path, tuple, and target if a symlink (NULL otherwise). */
void tree_view_add(struct tree_view *v, const char *path, size_t plen,
    const struct tree_tuple *t, const char *target, size_t tlen);
/* The digest of a view; never 0 (0 means "no view"). */
uint64_t tree_view_digest(const struct tree_view *v);

#endif
