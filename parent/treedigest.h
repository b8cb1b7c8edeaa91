/*
 * A 64-bit digest of a directory tree's metadata (names, type, mode, size,
 * inode, mtime and ctime to the nanosecond), read with fstatat below O_PATH
 * fds and never following a link.  Any change to a file or directory moves
 * its ctime, so two equal digests around a walk mean nothing changed during
 * it.  Pure: safe on the worker threads.
 */
#ifndef VS_TREEDIGEST_H
#define VS_TREEDIGEST_H

#include <stdint.h>

uint64_t tree_digest(const char *path);		/* 0 if path cannot be opened */

#endif
