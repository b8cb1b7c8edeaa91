#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "treedigest.h"

#define DIGEST_MAX_DEPTH	64

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0)
		h = (h ^ *s++) * 1099511628211ull;
	return h;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t
scan_dir(int dfd, uint64_t h, int depth)
{
	char **names = NULL, **nn;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	DIR *d;
	int fd;

	if (depth > DIGEST_MAX_DEPTH || (fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return mix(h, "?", 1);
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return mix(h, "?", 1);
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nn = realloc(names, cap * sizeof(*names))) == NULL)
				break;
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	/* Sorted: the digest must not depend on the order readdir happens to give. */
	if (n > 1)	/* names is NULL for an empty directory */
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		struct stat st;
		uint64_t rec[7];

		h = mix(h, names[i], strlen(names[i]) + 1);
		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
			h = mix(h, "-", 1);
			continue;
		}
		rec[0] = st.st_mode;
		rec[1] = (uint64_t)st.st_size;
		rec[2] = (uint64_t)st.st_mtim.tv_sec;
		rec[3] = (uint64_t)st.st_mtim.tv_nsec;
		rec[4] = (uint64_t)st.st_ctim.tv_sec;
		rec[5] = (uint64_t)st.st_ctim.tv_nsec;
		rec[6] = st.st_ino;
		h = mix(h, rec, sizeof(rec));
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), names[i], O_PATH | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC);

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

uint64_t
tree_digest(const char *path)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	uint64_t h = 14695981039346656037ull;

	if (fd == -1)
		return 0;
	/* The root's own ctime: an entry added or removed at the top moves it. */
	if (fstat(fd, &st) == 0) {
		uint64_t rec[2] = { (uint64_t)st.st_ctim.tv_sec, (uint64_t)st.st_ctim.tv_nsec };

		h = mix(h, rec, sizeof(rec));
	}
	h = scan_dir(fd, h, 0);
	close(fd);
	return h != 0 ? h : 1;
}
