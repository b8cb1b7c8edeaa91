/*
 * libFuzzer harness for the tar extractor and writer.  The first input byte
 * picks the mode:
 *
 *  even: the rest is a tar stream for arc_extract.  Whatever happens,
 *        nothing may appear outside the staging directory, and after a
 *        success the tree holds only directories, regular files and
 *        symlinks, no setuid/setgid/sticky bits, no symlink that the kernel
 *        resolves (RESOLVE_BENEATH) to outside the staging directory, and
 *        the reported SHA-256 is that of the whole input.
 *  odd:  the rest is a little program that builds a tree (files, nested
 *        directories, symlinks, hard links, fifos, setuid files, odd names,
 *        modes and mtimes).  The tree is archived twice (identical bytes),
 *        extracted, checked as above, and archived again: the extracted
 *        tree must give the very same stream.
 *
 * All of it happens two levels down in a per-process sentinel directory
 * (sentinel/inner/stage.XXXXXX), and both levels must hold nothing else
 * afterwards.  Seeds in tests/fuzz/corpus/archive/: "extract-*" are a zero
 * byte and a tar (from arc_create or hand-built hostile ones), "roundtrip-*"
 * tree programs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char sentinel[64];
static int sentfd = -1, innerfd = -1;

#define CHECK(c)	do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", \
			    __FILE__, __LINE__, #c); abort(); } } while (0)

/* ---- memory sink and source ------------------------------------------------ */

struct mbuf {
	unsigned char *p;
	size_t len, cap;
};

static int
mbuf_write(void *arg, const void *buf, size_t len)
{
	struct mbuf *m = arg;

	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;

		while (cap < m->len + len)
			cap *= 2;
		CHECK((m->p = realloc(m->p, cap)) != NULL);
		m->cap = cap;
	}
	if (len > 0)
		memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

struct src {
	const uint8_t *p;
	size_t left, step;
	int ended;
};

static ssize_t
src_read(void *arg, const void **buf, char *err, size_t errlen)
{
	struct src *s = arg;
	size_t n = s->left;

	(void)err;
	(void)errlen;
	CHECK(!s->ended);		/* never called again after the end */
	if (s->step > 0 && n > s->step)
		n = s->step;
	*buf = s->p;
	s->p += n;
	s->left -= n;
	if (n == 0)
		s->ended = 1;
	return (ssize_t)n;
}

/* ---- directories ------------------------------------------------------------- */

static void
rm_rf_at(int dfd, const char *name)
{
	struct stat sb;
	struct dirent *de;
	DIR *d;
	int fd;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		return;
	if (S_ISDIR(sb.st_mode)) {
		CHECK(fchmodat(dfd, name, 0700, 0) == 0);
		CHECK((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0);
		CHECK((d = fdopendir(fd)) != NULL);
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				rm_rf_at(dirfd(d), de->d_name);
		closedir(d);
		CHECK(unlinkat(dfd, name, AT_REMOVEDIR) == 0);
	} else {
		CHECK(unlinkat(dfd, name, 0) == 0);
	}
}

/* The only entry of dfd must be name. */
static void
check_only(int dfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd, seen = 0;

	CHECK((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
	CHECK((d = fdopendir(fd)) != NULL);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strcmp(de->d_name, name) != 0) {
			fprintf(stderr, "unexpected entry outside the staging dir: %s\n", de->d_name);
			abort();
		}
		seen++;
	}
	closedir(d);
	CHECK(seen == 1);
}

static void
cleanup(void)
{
	int fd;

	char *slash = strrchr(sentinel, '/');

	close(innerfd);
	close(sentfd);
	*slash = '\0';
	if ((fd = open(sentinel, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rm_rf_at(fd, slash + 1);
		close(fd);
	}
}

static void
init(void)
{
	/* tmpfs, like a vault, when there is one: it is also much faster. */
	snprintf(sentinel, sizeof(sentinel), "/dev/shm/fuzz_archive.XXXXXX");
	if (mkdtemp(sentinel) == NULL) {
		snprintf(sentinel, sizeof(sentinel), "/tmp/fuzz_archive.XXXXXX");
		CHECK(mkdtemp(sentinel) != NULL);
	}
	CHECK((sentfd = open(sentinel, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
	CHECK(mkdirat(sentfd, "inner", 0700) == 0);
	CHECK((innerfd = openat(sentfd, "inner", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
	umask(022);
	atexit(cleanup);
}

/* A new directory in inner: its name in name, an fd returned. */
static int
make_dir(char *name, size_t len, const char *prefix)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/inner/%s.XXXXXX", sentinel, prefix);
	CHECK(mkdtemp(path) != NULL);
	snprintf(name, len, "%s", strrchr(path, '/') + 1);
	CHECK((fd = openat(innerfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
	return fd;
}

/* ---- the checks on an extracted tree ------------------------------------------- */

static int
beneath(int root, const char *path)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof(how));
	how.flags = O_PATH | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
	if (fd >= 0) {
		close((int)fd);
		return 1;
	}
	/* Missing targets, loops and file-as-directory are fine; escaping is not. */
	return errno != EXDEV;
}

static void
check_tree(int root, int dfd, char *path, size_t plen, int depth)
{
	struct dirent *de;
	struct stat sb;
	size_t n;
	DIR *d;
	int fd;

	CHECK(depth <= ARC_MAX_DEPTH);
	CHECK((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
	CHECK((d = fdopendir(fd)) != NULL);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		CHECK(!arc_has_control(de->d_name));
		n = strlen(de->d_name);
		CHECK(plen + n + 2 < 8192);
		if (plen > 0)
			path[plen] = '/';
		memcpy(path + plen + (plen > 0), de->d_name, n + 1);
		CHECK(fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0);
		CHECK(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode) || S_ISLNK(sb.st_mode));
		CHECK((sb.st_mode & (S_ISUID | S_ISGID | S_ISVTX)) == 0);
		if (!beneath(root, path)) {
			fprintf(stderr, "%s resolves outside the staging dir\n", path);
			abort();
		}
		if (S_ISDIR(sb.st_mode)) {
			int cfd;

			CHECK(fchmodat(dirfd(d), de->d_name, sb.st_mode | 0700, 0) == 0);
			CHECK((cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC)) >= 0);
			check_tree(root, cfd, path, plen + (plen > 0) + n, depth + 1);
			close(cfd);
			CHECK(fchmodat(dirfd(d), de->d_name, sb.st_mode & 07777, 0) == 0);
		}
		path[plen] = '\0';
	}
	closedir(d);
}

static void
check_extracted(int stage)
{
	static char path[8192];

	path[0] = '\0';
	check_tree(stage, stage, path, 0, 0);
}

static void
sha256_of(const void *p, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	CHECK(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32);
}

/* ---- mode 0: a tar stream ------------------------------------------------------- */

static void
fuzz_extract(const uint8_t *data, size_t size)
{
	struct arc_limits lim;
	struct arc_stats st;
	struct src s;
	unsigned char sha[32], ref[32];
	char name[64], err[256];
	int stage, rc;

	memset(&lim, 0, sizeof(lim));
	lim.max_total_bytes = 1 << 20;
	lim.max_entry_bytes = 256 << 10;
	lim.max_entries = 256;
	stage = make_dir(name, sizeof(name), "stage");
	memset(&s, 0, sizeof(s));
	s.p = data;
	s.left = size;
	s.step = size % 3 == 0 ? 0 : 1 + size % 700;
	err[0] = '\0';
	rc = arc_extract(src_read, &s, stage, &lim, sha, &st, err, sizeof(err));
	check_only(innerfd, name);
	check_only(sentfd, "inner");
	if (rc == 0) {
		CHECK(s.left == 0);
		sha256_of(data, size, ref);
		CHECK(memcmp(sha, ref, 32) == 0);
		check_extracted(stage);
	} else {
		CHECK(rc == -1 && err[0] != '\0');
	}
	close(stage);
	rm_rf_at(innerfd, name);
}

/* ---- mode 1: build, archive, extract, archive again -------------------------------- */

struct prog {
	const uint8_t *p;
	size_t left;
};

static unsigned int
next(struct prog *g)
{
	if (g->left == 0)
		return 0;
	g->left--;
	return *g->p++;
}

/* n bytes, big-endian, read in order. */
static unsigned int
nextn(struct prog *g, int n)
{
	unsigned int v = 0;

	while (n-- > 0)
		v = v << 8 | next(g);
	return v;
}

/*
 * A name from the program: a fixed-width serial, which keeps names unique
 * and never "." or "..", then any bytes but '/' and NUL.
 */
static void
gen_name(struct prog *g, char *name, int serial)
{
	unsigned int len = 1 + next(g) % 6, i, c;

	snprintf(name, 4, "%02d", serial);
	for (i = 0; i < len; i++) {
		c = next(g);
		if (c < 0x20 && c % 5 != 0)
			c = 'a' + c % 26;	/* mostly printable; sometimes a control byte */
		if (c == '/' || c == 0)
			c = '_';
		name[2 + i] = (char)c;
	}
	name[2 + len] = '\0';
}

static void
gen_target(struct prog *g, char *t, size_t cap)
{
	static const char *tok[] = { "..", ".", "x", "d1", "f2", "", "..", "a" };
	unsigned int n = 1 + next(g) % 5, i;
	size_t o = 0;

	t[0] = '\0';
	if (next(g) % 8 == 0)
		o = (size_t)snprintf(t, cap, "/");
	for (i = 0; i < n && o + 8 < cap; i++)
		o += (size_t)snprintf(t + o, cap - o, "%s%s", i ? "/" : "", tok[next(g) % 8]);
	if (t[0] == '\0')
		snprintf(t, cap, ".");
}

struct built {
	int dirs[8];			/* open directory per level */
	int depth;
	char lastfile[32];		/* in the current directory, for hard links */
	uint64_t skip;			/* entries that must be skipped, links aside */
	int hidden;			/* levels below a skipped directory */
};

static void
set_times(int dfd, const char *name, struct prog *g)
{
	struct timespec ts[2];

	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = (time_t)nextn(g, 3);
	ts[1].tv_nsec = (long)(nextn(g, 4) % 1000000000);
	(void)utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

/* Returns how many entries arc_create must skip. */
static uint64_t
build(struct prog *g, int root)
{
	static unsigned char content[4096];
	struct built b;
	char name[32], target[64];
	unsigned int op, len, i, mode;
	int fd, serial, dfd, ctl;
	size_t k;

	memset(&b, 0, sizeof(b));
	b.dirs[0] = root;
	for (serial = 0; serial < 48 && g->left > 0; serial++) {
		op = next(g);
		dfd = b.dirs[b.depth];
		gen_name(g, name, serial);
		ctl = arc_has_control(name);
		switch (op % 8) {
		case 0:		/* a regular file */
		case 5:		/* ... with setuid/setgid/sticky bits */
			len = next(g) * 13 % sizeof(content);
			for (i = 0; i < len; i++)
				content[i] = (unsigned char)(i * 31 + op);
			mode = nextn(g, 2) & (op % 8 == 5 ? 07777 : 0777);
			mode |= 0400;
			fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			CHECK(fd >= 0);
			CHECK(write(fd, content, len) == (ssize_t)len);
			CHECK(fchmod(fd, mode) == 0);
			close(fd);
			set_times(dfd, name, g);
			if (!b.hidden && (ctl || (mode & (S_ISUID | S_ISGID))))
				b.skip++;
			snprintf(b.lastfile, sizeof(b.lastfile), "%s", name);
			break;
		case 1:		/* a directory, entered */
			if (b.depth + 1 >= (int)(sizeof(b.dirs) / sizeof(b.dirs[0])))
				break;
			CHECK(mkdirat(dfd, name, 0700) == 0);
			CHECK((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
			if (!b.hidden && ctl)
				b.skip++;
			if (b.hidden || ctl)
				b.hidden++;
			b.depth++;
			b.dirs[b.depth] = fd;
			b.lastfile[0] = '\0';
			/* The mode is set on the way out, so the building can go on. */
			break;
		case 2:		/* leave the directory: its mode, then its mtime */
			if (b.depth == 0)
				break;
			mode = nextn(g, 2) & 07777;
			mode |= 0500;
			CHECK(fchmod(b.dirs[b.depth], mode) == 0);
			set_times(b.dirs[b.depth], ".", g);
			close(b.dirs[b.depth]);
			if (b.hidden)
				b.hidden--;
			b.depth--;
			b.lastfile[0] = '\0';
			break;
		case 3:		/* a symlink */
			gen_target(g, target, sizeof(target));
			CHECK(symlinkat(target, dfd, name) == 0);
			set_times(dfd, name, g);
			if (!b.hidden && ctl)
				b.skip++;
			else if (!b.hidden && !arc_link_inside(target, b.depth))
				b.skip++;
			break;
		case 4:		/* a fifo */
			CHECK(mkfifoat(dfd, name, 0600) == 0);
			if (!b.hidden)
				b.skip++;
			break;
		case 6:		/* a device node, where allowed */
			if (mknodat(dfd, name, S_IFCHR | 0600, makedev(1, 3)) == 0 && !b.hidden)
				b.skip++;
			break;
		case 7:		/* a hard link to the last file here */
			if (b.lastfile[0] == '\0')
				break;
			CHECK(linkat(dfd, b.lastfile, dfd, name, 0) == 0);
			if (!b.hidden) {
				struct stat sb;

				CHECK(fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0);
				if (ctl || (sb.st_mode & (S_ISUID | S_ISGID)))
					b.skip++;
			}
			break;
		}
	}
	for (k = (size_t)b.depth; k > 0; k--) {
		CHECK(fchmod(b.dirs[k], 0755) == 0);
		set_times(b.dirs[k], ".", g);
		close(b.dirs[k]);
	}
	return b.skip;
}

static void
fuzz_roundtrip(const uint8_t *data, size_t size)
{
	static const unsigned char key[32] = { 42 };
	struct arc_limits lim;
	struct arc_stats st1, st2, xst;
	struct mbuf m1, m2, m3;
	struct prog g;
	struct src s;
	unsigned char sha1[32], cid1[32], sha2[32], cid2[32], xsha[32], ref[32];
	char vname[64], sname[64], err[256];
	uint64_t skip;
	int v, stage;

	v = make_dir(vname, sizeof(vname), "vault");
	g.p = data;
	g.left = size;
	skip = build(&g, v);

	memset(&m1, 0, sizeof(m1));
	memset(&m2, 0, sizeof(m2));
	memset(&m3, 0, sizeof(m3));
	if (arc_create(v, mbuf_write, &m1, key, sha1, cid1, &st1, err, sizeof(err)) != 0) {
		fprintf(stderr, "arc_create: %s\n", err);
		abort();
	}
	CHECK(st1.skipped == skip);
	CHECK(arc_create(v, mbuf_write, &m2, key, sha2, cid2, &st2, err, sizeof(err)) == 0);
	CHECK(m1.len == m2.len && memcmp(m1.p, m2.p, m1.len) == 0);
	CHECK(memcmp(sha1, sha2, 32) == 0 && memcmp(cid1, cid2, 32) == 0);
	sha256_of(m1.p, m1.len, ref);
	CHECK(memcmp(ref, sha1, 32) == 0);

	memset(&lim, 0, sizeof(lim));
	lim.max_total_bytes = 64 << 20;
	lim.max_entry_bytes = 64 << 20;
	lim.max_entries = 100000;
	stage = make_dir(sname, sizeof(sname), "stage");
	memset(&s, 0, sizeof(s));
	s.p = m1.p;
	s.left = m1.len;
	s.step = 1 + size % 1000;
	if (arc_extract(src_read, &s, stage, &lim, xsha, &xst, err, sizeof(err)) != 0) {
		fprintf(stderr, "arc_extract of arc_create output: %s\n", err);
		abort();
	}
	CHECK(memcmp(xsha, sha1, 32) == 0);
	CHECK(xst.files == st1.files && xst.dirs == st1.dirs && xst.symlinks == st1.symlinks &&
	    xst.bytes == st1.bytes);
	check_extracted(stage);

	if (arc_create(stage, mbuf_write, &m3, key, sha2, cid2, &st2, err, sizeof(err)) != 0) {
		fprintf(stderr, "arc_create of the extracted tree: %s\n", err);
		abort();
	}
	CHECK(st2.skipped == 0);
	if (m1.len != m3.len || memcmp(m1.p, m3.p, m1.len) != 0) {
		fprintf(stderr, "the extracted tree archives differently\n");
		abort();
	}

	close(stage);
	close(v);
	rm_rf_at(innerfd, sname);
	rm_rf_at(innerfd, vname);
	free(m1.p);
	free(m2.p);
	free(m3.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (sentfd == -1)
		init();
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		fuzz_extract(data + 1, size - 1);
	else
		fuzz_roundtrip(data + 1, size - 1);
	check_only(sentfd, "inner");
	{
		/* Both scratch directories are gone again. */
		struct dirent *de;
		DIR *d;
		int fd;

		CHECK((fd = openat(innerfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
		CHECK((d = fdopendir(fd)) != NULL);
		while ((de = readdir(d)) != NULL)
			CHECK(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
		closedir(d);
	}
	return 0;
}
