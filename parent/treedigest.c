#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "treedigest.h"

#define DIGEST_MAX_DEPTH	64

struct walk {
	int64_t racy_after;
	struct tree_scan *out;
};

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0)
		h = (h ^ *s++) * 1099511628211ull;
	return h;
}

/* Whole words at a time: the tuple of every entry goes through here. */
static uint64_t
mix_words(uint64_t h, const uint64_t *w, size_t n)
{
	while (n-- > 0) {
		h = (h ^ *w++) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return h;
}

static int64_t
ns_of(const struct statx_timestamp *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* One entry's tuple: what the digest holds and what the racy rule looks at. */
static uint64_t
mix_entry(struct walk *w, uint64_t h, int dfd, const char *name, const struct statx *sx)
{
	uint64_t rec[9];

	rec[0] = sx->stx_mode;
	rec[1] = sx->stx_size;
	rec[2] = (uint64_t)sx->stx_mtime.tv_sec;
	rec[3] = sx->stx_mtime.tv_nsec;
	rec[4] = (uint64_t)sx->stx_ctime.tv_sec;
	rec[5] = sx->stx_ctime.tv_nsec;
	rec[6] = sx->stx_ino;
	rec[7] = sx->stx_uid;
	rec[8] = sx->stx_gid;
	h = mix_words(h, rec, sizeof(rec) / sizeof(rec[0]));
	if (w->racy_after != 0 && (ns_of(&sx->stx_mtime) >= w->racy_after ||
	    ns_of(&sx->stx_ctime) >= w->racy_after))
		w->out->racy++;
	if (S_ISLNK(sx->stx_mode) && name != NULL) {
		char t[PATH_MAX];
		ssize_t n = readlinkat(dfd, name, t, sizeof(t));

		if (n < 0)
			w->out->errors++;
		else
			h = mix(h, t, (size_t)n);
	}
	return h;
}

/* Names of one directory in one pool; sorted through their offsets. */
struct names {
	char *pool;
	size_t len, cap;
	size_t *off;
	size_t n, ncap;
};

static int
names_add(struct names *ns, const char *name)
{
	size_t l = strlen(name) + 1;

	if (ns->len + l > ns->cap) {
		size_t c = ns->cap ? ns->cap * 2 : 4096;
		char *p;

		while (c < ns->len + l)
			c *= 2;
		if ((p = realloc(ns->pool, c)) == NULL)
			return -1;
		ns->pool = p;
		ns->cap = c;
	}
	if (ns->n == ns->ncap) {
		size_t c = ns->ncap ? ns->ncap * 2 : 128;
		size_t *o = reallocarray(ns->off, c, sizeof(*o));

		if (o == NULL)
			return -1;
		ns->off = o;
		ns->ncap = c;
	}
	memcpy(ns->pool + ns->len, name, l);
	ns->off[ns->n++] = ns->len;
	ns->len += l;
	return 0;
}

static int
off_cmp(const void *a, const void *b, void *pool)
{
	return strcmp((const char *)pool + *(const size_t *)a, (const char *)pool + *(const size_t *)b);
}

static uint64_t
scan_dir(struct walk *w, int fd, uint64_t h, int depth)
{
	struct names ns;
	struct dirent *de;
	size_t i;
	DIR *d;

	if (depth > DIGEST_MAX_DEPTH || (d = fdopendir(fd)) == NULL) {
		close(fd);
		w->out->errors++;
		return mix(h, "?", 1);
	}
	memset(&ns, 0, sizeof(ns));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
		    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		if (names_add(&ns, de->d_name) != 0) {
			w->out->errors++;
			break;
		}
	}
	/* Sorted: the digest must not depend on the order readdir happens to give. */
	if (ns.n > 1)
		qsort_r(ns.off, ns.n, sizeof(*ns.off), off_cmp, ns.pool);
	for (i = 0; i < ns.n; i++) {
		const char *name = ns.pool + ns.off[i];
		struct statx sx;

		w->out->entries++;
		h = mix(h, name, strlen(name) + 1);
		if (statx(dirfd(d), name, AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC,
		    STATX_BASIC_STATS, &sx) != 0) {
			w->out->errors++;
			h = mix(h, "-", 1);
			continue;
		}
		h = mix_entry(w, h, dirfd(d), name, &sx);
		if (S_ISDIR(sx.stx_mode)) {
			int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC);

			if (sub == -1) {
				w->out->errors++;
				h = mix(h, "?", 1);
			} else
				h = scan_dir(w, sub, h, depth + 1);
		}
	}
	free(ns.pool);
	free(ns.off);
	closedir(d);
	return h;
}

int
tree_scan(const char *path, int64_t racy_after_ns, struct tree_scan *out)
{
	struct walk w = { racy_after_ns, out };
	uint64_t h = 14695981039346656037ull;
	struct statx sx;
	int fd;

	memset(out, 0, sizeof(*out));
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	/* The root's own tuple: an entry added or removed at the top moves its times. */
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx) == 0)
		h = mix_entry(&w, h, fd, NULL, &sx);
	else
		out->errors++;
	h = scan_dir(&w, fd, h, 0);
	out->digest = h != 0 ? h : 1;
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

uint64_t
tree_digest(const char *path)
{
	struct tree_scan s;

	return tree_scan(path, 0, &s) == 0 ? s.digest : 0;
}
