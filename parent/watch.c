/*
 * The parent owns the inotify instance: it creates the fd (the watcher reads
 * it), adds a watch for every directory of every vault, and adds watches for
 * directories the watcher reports as new.  Names from the watcher are
 * untrusted: one path component, re-opened here without following links.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vaultsyncd.h"

#define WATCH_MASK (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | \
	IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | \
	IN_ONLYDIR | IN_EXCL_UNLINK)
#define MAX_DEPTH 64

struct wd_entry {
	int wd;
	struct vault_ref vault;
	char *path;
};

static struct wd_entry *wds;
static size_t nwds, capwds;

int
watch_init(void)
{
	D.inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	return D.inotify_fd < 0 ? -1 : 0;
}

static struct wd_entry *
wd_find(int wd)
{
	size_t i;

	for (i = 0; i < nwds; i++)
		if (wds[i].wd == wd)
			return &wds[i];
	return NULL;
}

static void
wd_forget(size_t i)
{
	free(wds[i].path);
	wds[i] = wds[--nwds];
}

static void add_tree(struct vault_rt *v, const char *path, int depth);

/*
 * Watch one directory through its O_PATH fd: /proc/self/fd/N resolves to
 * exactly the directory we opened without following links (IN_DONT_FOLLOW
 * would stop at the magic link itself).
 */
static int
add_one(struct vault_rt *v, int dirfd, const char *path)
{
	struct wd_entry *e;
	char proc[64];
	int wd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
	if ((wd = inotify_add_watch(D.inotify_fd, proc, WATCH_MASK)) == -1) {
		if (errno == ENOSPC) {
			if (v->watch_mode != WATCH_POLLING) {
				v->watch_mode = WATCH_POLLING;
				snprintf(v->watch_reason, sizeof(v->watch_reason),
				    "inotify watch limit reached (fs.inotify.max_user_watches); "
				    "polling");
				log_warn("vault %s: %s", v->name, v->watch_reason);
			}
			pollscan_arm();
		} else
			log_warn("vault %s: watch %s: %s", v->name, path, strerror(errno));
		return -1;
	}
	if ((e = wd_find(wd)) != NULL) {	/* same directory seen again */
		e->vault = vreg_ref(v);
		return 0;
	}
	if (nwds == capwds) {
		size_t ncap = capwds ? capwds * 2 : 64;
		struct wd_entry *n = reallocarray(wds, ncap, sizeof(*wds));

		if (n == NULL)
			fatal("reallocarray");
		wds = n;
		capwds = ncap;
	}
	if ((wds[nwds].path = strdup(path)) == NULL)
		fatal("strdup");
	wds[nwds].wd = wd;
	wds[nwds].vault = vreg_ref(v);
	nwds++;
	v->nwatches++;
	return 0;
}

static void
add_tree_fd(struct vault_rt *v, int fd, const char *path, int depth)
{
	DIR *d;
	struct dirent *de;
	int dfd;

	if (add_one(v, fd, path) != 0 || depth >= MAX_DEPTH)
		return;
	/* Reopen for reading: the O_PATH fd cannot list. */
	if ((dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char sub[CFG_PATH_MAX * 4];
		int sfd;

		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((sfd = openat(dirfd(d), de->d_name,
		    O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) < sizeof(sub))
			add_tree_fd(v, sfd, sub, depth + 1);
		close(sfd);
	}
	closedir(d);
}

static void
add_tree(struct vault_rt *v, const char *path, int depth)
{
	int fd;

	if ((fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	add_tree_fd(v, fd, path, depth);
	close(fd);
}

/*
 * Watch every directory of every vault afresh: after a (re)load, after an
 * operation replaced a vault's tree, after the queue overflowed.
 */
void
watch_rebuild(void)
{
	struct vault_rt *v;

	while (nwds > 0) {
		inotify_rm_watch(D.inotify_fd, wds[nwds - 1].wd);
		wd_forget(nwds - 1);
	}
	VAULT_FOREACH(v) {
		const struct cfg_vault *cv = cfg_vault_find(&D.cfg, v->name);
		struct stat st;

		v->nwatches = 0;
		v->watch_mode = WATCH_NONE;
		pollscan_forget(v);
		v->watch_reason[0] = '\0';
		if (cv == NULL)
			continue;
		if (stat(cv->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(v->watch_reason, sizeof(v->watch_reason), "%.100s is not a directory",
			    cv->path);
			continue;
		}
		if (cv->watcher_polling) {
			v->watch_mode = WATCH_POLLING;
			snprintf(v->watch_reason, sizeof(v->watch_reason), "Watcher polling");
			continue;	/* pollscan_arm() below takes it on */
		}
		v->watch_mode = WATCH_INOTIFY;
		add_tree(v, cv->path, 0);
		if (v->watch_mode == WATCH_INOTIFY)
			log_debug("vault %s: %u watches", v->name, v->nwatches);
	}
	pollscan_arm();
}

/*
 * Stop watching one vault until the next rebuild: an unlock writes every
 * entry of the archive into it, and each would otherwise come back from the
 * watcher as events to read, report and handle, new directories to list and
 * watch, all on the cores the unlock itself needs (a third of its time for
 * 100,000 files).  The rebuild when the operation ends watches the new tree
 * before the client hears back.
 */
void
watch_drop(struct vault_rt *v)
{
	size_t i = 0;

	while (i < nwds) {
		if (vreg_get(wds[i].vault) == v) {
			inotify_rm_watch(D.inotify_fd, wds[i].wd);
			wd_forget(i);	/* moves the last entry into i */
		} else
			i++;
	}
	v->nwatches = 0;
}

void
watch_on_change(const struct msg_watch_change *m)
{
	struct wd_entry *e = wd_find(m->wd);
	struct vault_rt *v;

	if (e == NULL)		/* already removed: a race, not an attack */
		return;
	if ((v = vreg_get(e->vault)) == NULL)
		return;
	v->changes += m->count;
	v->last_change_at = (int64_t)time(NULL);
	log_debug("vault %s: %u change(s) under %s", v->name, m->count, e->path);
	tick_changed(v);
	if (m->mask & IN_IGNORED) {
		if (v->nwatches > 0)
			v->nwatches--;
		wd_forget((size_t)(e - wds));
	}
}

void
watch_on_newdir(const struct msg_watch_newdir *m)
{
	struct wd_entry *e = wd_find(m->wd);
	char path[CFG_PATH_MAX * 4];
	struct vault_rt *v;
	int dfd, fd;

	if (e == NULL)
		return;
	if (m->name[0] == '\0' || strchr(m->name, '/') != NULL ||
	    strcmp(m->name, ".") == 0 || strcmp(m->name, "..") == 0) {
		log_warn("watcher reported an invalid directory name; ignored");
		return;
	}
	if ((v = vreg_get(e->vault)) == NULL)
		return;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", e->path, m->name) >= sizeof(path))
		return;
	if ((dfd = open(e->path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	fd = openat(dfd, m->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(dfd);
	if (fd == -1)
		return;		/* gone again, or not a directory after all */
	/* It may already hold subdirectories created before the watch landed. */
	add_tree_fd(v, fd, path, 1);
	close(fd);
}

void
watch_on_overflow(void)
{
	struct vault_rt *v;

	log_warn("inotify queue overflowed: rescanning every vault, each counts as changed");
	/* Directories made while events were lost have no watch yet: rebuild them all. */
	watch_rebuild();
	VAULT_FOREACH(v) {
		v->changes++;
		v->last_change_at = (int64_t)time(NULL);
		tick_changed(v);
	}
}
