/*
 * Private to vfetch.c and vjudge.c.  The restore drill judges a downloaded
 * object on a worker thread: its age structure in a decoder child (the
 * parent never parses bytes from a remote), and a byte compare with the
 * local archive when the remote should hold exactly it (hundreds of MiB
 * must not stall the event loop).
 */
#ifndef VS_VJUDGE_H
#define VS_VJUDGE_H

#include <stdint.h>

#include "decode.h"
#include "job.h"

struct vjudge {
	struct job job;
	void (*done)(struct vjudge *j);	/* on the main loop */
	void *arg;
	/* In: the descriptors stay the caller's. */
	struct decode_conf dec;
	int obj_fd, local_fd;
	uint64_t local_size;
	int compare;
	/* Out. */
	uint64_t bytes;			/* the object's size */
	int scanned;			/* the scan ran: wellformed and scan hold its verdict */
	int wellformed;
	char scan[512];			/* what it found, or why it could not look */
	int cmp;			/* VJ_* */
	uint64_t at;			/* VJ_DIFFER: the first byte that differs */
	char err[256];			/* VJ_ERROR: why */
};

enum { VJ_NOT_COMPARED = 0, VJ_SAME, VJ_DIFFER, VJ_SIZE, VJ_ERROR };

/* 0, or -1 (errno) if no worker could take it. */
int vjudge_start(struct vjudge *j);

#endif
