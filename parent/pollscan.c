/*
 * The polling fallback: when inotify cannot cover a vault (the watch limit
 * was reached), the parent looks at the tree itself, every second or
 * WatcherDebounce if longer.  The look is cheap: metadata only (name, type,
 * mode, size, mtime, inode, via fstatat below O_PATH fds, never following a
 * link), folded into one 64-bit digest; a different digest is a change.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "vaultsyncd.h"

#define SCAN_MAX_DEPTH	64
#define SCAN_MIN_MS	1000

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0)
		h = (h ^ *s++) * 1099511628211ull;
	return h;
}

static uint64_t
scan_dir(int dfd, uint64_t h, int depth)
{
	struct dirent **names = NULL;
	DIR *d;
	int fd, n = 0, cap = 0, i;
	struct dirent *de;

	if (depth > SCAN_MAX_DEPTH || (fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return mix(h, "?", 1);
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return mix(h, "?", 1);
	}
	/* Sorted: the digest must not depend on the order readdir happens to give. */
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			struct dirent **nn = realloc(names, (size_t)(cap = cap ? cap * 2 : 64) *
			    sizeof(*names));

			if (nn == NULL)
				break;
			names = nn;
		}
		if ((names[n] = malloc(sizeof(*de))) == NULL)
			break;
		memcpy(names[n++], de, sizeof(*de));
	}
	for (i = 0; i < n; i++) {
		int j;

		for (j = i; j > 0 && strcmp(names[j - 1]->d_name, names[j]->d_name) > 0; j--) {
			struct dirent *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	}
	for (i = 0; i < n; i++) {
		struct stat st;
		uint64_t rec[5];

		h = mix(h, names[i]->d_name, strlen(names[i]->d_name) + 1);
		if (fstatat(dirfd(d), names[i]->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		rec[0] = st.st_mode;
		rec[1] = (uint64_t)st.st_size;
		rec[2] = (uint64_t)st.st_mtim.tv_sec;
		rec[3] = (uint64_t)st.st_mtim.tv_nsec;
		rec[4] = st.st_ino;
		h = mix(h, rec, sizeof(rec));
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), names[i]->d_name, O_PATH | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);

			if (sub != -1) {
				h = scan_dir(sub, h, depth + 1);
				close(sub);
			}
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return h;
}

static uint64_t
digest(const char *path)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t h;

	if (fd == -1)
		return 0;
	h = scan_dir(fd, 14695981039346656037ull, 0);
	close(fd);
	return h;
}

static int scan_timer = -1;

static void
scan_fired(void *arg)
{
	size_t i;
	int any = 0;

	(void)arg;
	scan_timer = -1;
	for (i = 0; i < D.nvaults; i++) {
		struct vault_rt *v = &D.vaults[i];
		const struct cfg_vault *cv = &D.cfg.vaults[i];
		uint64_t h;

		if (v->watch_mode != WATCH_POLLING)
			continue;
		any = 1;
		if (v->state == VAULT_ST_LOCKED || v->busy)
			continue;
		h = digest(cv->path);
		if (v->poll_digest != 0 && h != v->poll_digest) {
			log_debug("vault %s: the polling scan saw a change", v->name);
			v->changes++;
			vault_changed(v);
		}
		v->poll_digest = h;
	}
	if (any)
		pollscan_arm();
}

/*
 * Keep scanning while any vault is in polling mode.  A vault that just
 * entered it gets its baseline now (a change in the next second must not
 * become the baseline) and a tick: what inotify missed is saved.
 */
void
pollscan_arm(void)
{
	uint64_t ms = D.cfg.watcher_debounce_ms > SCAN_MIN_MS ? D.cfg.watcher_debounce_ms :
	    SCAN_MIN_MS;
	size_t i;
	int any = 0;

	if (D.shutting_down)
		return;
	for (i = 0; i < D.nvaults; i++) {
		struct vault_rt *v = &D.vaults[i];

		if (v->watch_mode != WATCH_POLLING)
			continue;
		any = 1;
		if (v->poll_digest == 0 && v->state != VAULT_ST_LOCKED) {
			v->poll_digest = digest(D.cfg.vaults[i].path);
			vault_changed(v);
		}
	}
	if (any && scan_timer < 0)
		scan_timer = timer_add(ms, scan_fired, NULL);
}
