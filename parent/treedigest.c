/*
 * The stat scan (treedigest.h) on two threads: directories are queued as
 * they are found and whichever thread is free reads the next one.  The
 * digest is the view of treeview.h, a sum that does not depend on which
 * thread met an entry first, so nothing is sorted.  Each entry costs one
 * statx (a symlink also a readlink), a directory an open and its listing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"		/* the writer's limits: a path or depth past them fails the archive */
#include "treedigest.h"
#include "treeview.h"

/*
 * Queued directories hold an open descriptor; past this many a thread reads
 * the next one itself, so a directory of 10,000 subdirectories does not
 * hold 10,000 descriptors.
 */
#define SCAN_QUEUE_MAX		64
/*
 * A sleeping thread is woken only when this many directories wait: waking
 * costs more than reading a directory of ten files, and the thread that
 * queued one takes it next anyway.
 */
#define SCAN_WAKE_AT		3
#define SCAN_DENTS_LEN		16384	/* a listing buffer; one per directory being read */

struct dirjob {
	int fd, depth;
	size_t plen;
	char path[];		/* below the root, "" for the root */
};

/* What one thread found; added up when it is done. */
struct tally {
	struct tree_view view;
	uint64_t errors, racy;
};

struct walk {
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* a directory was queued, or the last busy one finished */
	struct dirjob *q[SCAN_QUEUE_MAX];
	unsigned nq, busy, idle;
	enum { HELPER_NONE, HELPER_RUNNING, HELPER_FAILED } helper_state;
	pthread_t helper;
	int64_t racy_after;
	struct tally total;
};

static void scan_dir(struct walk *w, struct dirjob *j, struct tally *t);

static struct dirjob *
job_new(int fd, int depth, const char *path, size_t plen)
{
	struct dirjob *j = malloc(sizeof(*j) + plen + 1);

	if (j == NULL)
		return NULL;
	j->fd = fd;
	j->depth = depth;
	j->plen = plen;
	memcpy(j->path, path, plen);
	j->path[plen] = '\0';
	return j;
}

static void *
walker(void *arg)
{
	struct walk *w = arg;
	struct tally t;
	struct dirjob *j;

	memset(&t, 0, sizeof(t));
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->nq == 0 && w->busy > 0) {
			w->idle++;
			pthread_cond_wait(&w->cv, &w->mu);
			w->idle--;
		}
		if (w->nq == 0)
			break;
		j = w->q[--w->nq];
		w->busy++;
		pthread_mutex_unlock(&w->mu);
		scan_dir(w, j, &t);
		pthread_mutex_lock(&w->mu);
		if (--w->busy == 0 && w->nq == 0)
			pthread_cond_broadcast(&w->cv);
	}
	w->total.view.sum += t.view.sum;
	w->total.view.entries += t.view.entries;
	w->total.errors += t.errors;
	w->total.racy += t.racy;
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Queue a directory for whichever thread is free; 0, or -1 if the queue is full. */
static int
enqueue(struct walk *w, struct dirjob *j)
{
	int start = 0;

	pthread_mutex_lock(&w->mu);
	if (w->nq == SCAN_QUEUE_MAX) {
		pthread_mutex_unlock(&w->mu);
		return -1;
	}
	w->q[w->nq++] = j;
	if (w->helper_state == HELPER_NONE && w->nq >= SCAN_WAKE_AT) {
		/* Set before the thread exists; a failed start is one thread fewer, not retried. */
		w->helper_state = HELPER_RUNNING;
		start = 1;
	}
	if (w->idle > 0 && w->nq >= SCAN_WAKE_AT)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (start && pthread_create(&w->helper, NULL, walker, w) != 0) {
		pthread_mutex_lock(&w->mu);
		w->helper_state = HELPER_FAILED;
		pthread_mutex_unlock(&w->mu);
	}
	return 0;
}

static void
count(struct walk *w, struct tally *t, const char *path, size_t plen, int dfd,
    const char *name, const struct statx *sx)
{
	struct tree_tuple tu;
	char target[PATH_MAX];
	ssize_t n = 0;

	tree_tuple_from_statx(&tu, sx);
	if (w->racy_after != 0 && (tu.mtime_ns >= w->racy_after || tu.ctime_ns >= w->racy_after))
		t->racy++;
	if (S_ISLNK(sx->stx_mode) && (n = readlinkat(dfd, name, target, sizeof(target))) < 0) {
		t->errors++;
		n = 0;
	}
	tree_view_add(&t->view, path, plen, &tu, S_ISLNK(sx->stx_mode) ? target : NULL, (size_t)n);
}

/* One directory's entries, straight from getdents64: no DIR, so no fstat or fcntl of it. */
static void
scan_dir(struct walk *w, struct dirjob *j, struct tally *t)
{
	char path[ARC_PATH_MAX + 1];
	char *buf;
	ssize_t got;

	if (j->depth > ARC_MAX_DEPTH || (buf = malloc(SCAN_DENTS_LEN)) == NULL) {
		close(j->fd);
		t->errors++;
		free(j);
		return;
	}
	memcpy(path, j->path, j->plen);
	while ((got = getdents64(j->fd, buf, SCAN_DENTS_LEN)) > 0) {
		ssize_t off;

		for (off = 0; off < got; ) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);
			size_t nlen, plen;
			struct statx sx;
			struct dirjob *sub;
			int fd;

			off += de->d_reclen;
			if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
			    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
				continue;
			nlen = strlen(de->d_name);
			plen = j->plen + (j->plen > 0) + nlen;
			if (plen > ARC_PATH_MAX) {
				t->errors++;
				continue;
			}
			if (j->plen > 0)
				path[j->plen] = '/';
			memcpy(path + j->plen + (j->plen > 0), de->d_name, nlen + 1);
			if (statx(j->fd, de->d_name, AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC,
			    STATX_BASIC_STATS, &sx) != 0) {
				/* Gone since the listing: counted as what it is, a difference. */
				t->errors += errno != ENOENT;
				t->view.entries++;
				continue;
			}
			count(w, t, path, plen, j->fd, de->d_name, &sx);
			if (!S_ISDIR(sx.stx_mode))
				continue;
			if ((fd = openat(j->fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC)) == -1) {
				t->errors++;
				continue;
			}
			if ((sub = job_new(fd, j->depth + 1, path, plen)) == NULL) {
				close(fd);
				t->errors++;
			} else if (enqueue(w, sub) != 0)
				scan_dir(w, sub, t);
		}
	}
	if (got < 0)
		t->errors++;
	free(buf);
	close(j->fd);
	free(j);
}

int
tree_scan(const char *path, int64_t racy_after_ns, struct tree_scan *out)
{
	struct walk w;
	struct statx sx;
	struct dirjob *root;
	struct tally t;
	int fd;

	memset(out, 0, sizeof(*out));
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	memset(&w, 0, sizeof(w));
	w.racy_after = racy_after_ns;
	memset(&t, 0, sizeof(t));
	/* The root's own tuple: an entry added or removed at the top moves its times. */
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx) == 0)
		count(&w, &t, "", 0, fd, NULL, &sx);
	else
		t.errors++;
	if ((root = job_new(fd, 0, "", 0)) == NULL) {
		close(fd);
		return -1;
	}
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	w.q[w.nq++] = root;
	w.total = t;
	walker(&w);
	if (w.helper_state == HELPER_RUNNING)
		pthread_join(w.helper, NULL);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	out->digest = tree_view_digest(&w.total.view);
	out->entries = w.total.view.entries - 1;
	out->errors = w.total.errors;
	out->racy = w.total.racy;
	return 0;
}

/*
 * File times come from the kernel's coarse clock, up to one of its ticks
 * behind the clock the save's start is read from: twice that, and at least
 * 2 ms, is where a change may share its timestamp with the start.
 */
int64_t
tree_time_granularity_ns(void)
{
	struct timespec r;
	int64_t g = 1000000;

	if (clock_getres(CLOCK_REALTIME_COARSE, &r) == 0 &&
	    (int64_t)r.tv_sec * 1000000000 + r.tv_nsec > g)
		g = (int64_t)r.tv_sec * 1000000000 + r.tv_nsec;
	return 2 * g;
}

enum chg_verdict
tree_compare(const struct chg_base *base, const struct tree_scan *now)
{
	if (now->digest == 0 || now->errors != 0)
		return CHG_SCAN_ERROR;
	if (now->digest != base->digest || now->entries != base->entries)
		return CHG_DIFFERS;
	return now->racy != 0 ? CHG_RACY : CHG_UNCHANGED;
}
