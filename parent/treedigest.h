/*
 * The stat scan of a vault's tree: one statx per entry below O_RDONLY
 * directory fds, never following a link and never reading a file's
 * contents, reduced to the 64-bit digest of treeview.h (each entry's path
 * and tuple: type and mode, size, inode, owner, mtime and ctime to the
 * nanosecond, a symlink's target), the same one the tar writer keeps of
 * what it read.  Any change to a file or directory moves its ctime, so a
 * digest equal to the writer's means nothing changed since it was read.
 * The same walk counts the entries, those it could not read, and those
 * whose mtime or ctime is at or after a given instant (the racy ones, see
 * chgcheck.h).  Pure: safe on the worker threads.
 */
#ifndef VS_TREEDIGEST_H
#define VS_TREEDIGEST_H

#include <stdint.h>

#include "chgcheck.h"

struct tree_scan {
	uint64_t digest;	/* 0: the root could not be opened */
	uint64_t entries;	/* below the root */
	uint64_t errors;	/* entries or directories that could not be read */
	uint64_t racy;		/* entries with mtime or ctime >= racy_after_ns */
};

/* racy_after_ns: unix nanoseconds; 0 counts none racy.  Returns 0, or -1 (root unreadable). */
int tree_scan(const char *path, int64_t racy_after_ns, struct tree_scan *out);
/*
 * A scan (racy_after_ns: base's start less the granularity) against the
 * view a save kept: CHG_UNCHANGED only if nothing differs and nothing is racy.
 */
int64_t tree_time_granularity_ns(void);	/* how far file times may lag the clock */
enum chg_verdict tree_compare(const struct chg_base *base, const struct tree_scan *now);

#endif
