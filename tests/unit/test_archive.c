/*
 * The tar writer and the extractor: round trips compared field by field,
 * byte-identical streams for equal trees, what the writer skips, and the
 * extractor's refusals of hand-built hostile archives.  Every hostile case
 * runs in a staging directory inside a sentinel directory, and afterwards
 * the sentinel must hold nothing but the staging directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define ARC_USE_LIBARCHIVE
#include <archive.h>		/* common/archive.h, then libarchive's */
#include <archive_entry.h>

#include "age.h"
#include "mbuf.h"

static char base[PATH_MAX];	/* per-run scratch directory */
static int basefd = -1;

static const unsigned char key1[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const unsigned char key2[32] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };

/* ---- memory sink and source ------------------------------------------------------ */

struct msrc {
	const unsigned char *p;
	size_t len, off, step;
	int fail_at;		/* > 0: fail once off reaches it */
	int calls_after_end;
	int ended;
};

static ssize_t
msrc_read(void *arg, const void **buf, char *err, size_t errlen)
{
	struct msrc *s = arg;
	size_t n = s->len - s->off;

	if (s->ended)
		s->calls_after_end++;
	if (s->fail_at > 0 && s->off >= (size_t)s->fail_at) {
		snprintf(err, errlen, "injected read failure");
		s->ended = 1;
		return -1;
	}
	if (s->step > 0 && n > s->step)
		n = s->step;
	*buf = s->p + s->off;
	s->off += n;
	if (n == 0)
		s->ended = 1;
	return (ssize_t)n;
}

/* ---- scratch directories ----------------------------------------------------------- */

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
		assert_int_equal(fchmodat(dfd, name, 0700, 0), 0);
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		assert_true(fd >= 0);
		d = fdopendir(fd);
		assert_non_null(d);
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			rm_rf_at(dirfd(d), de->d_name);
		}
		closedir(d);
		assert_int_equal(unlinkat(dfd, name, AT_REMOVEDIR), 0);
	} else {
		assert_int_equal(unlinkat(dfd, name, 0), 0);
	}
}

/* A fresh directory under base; returns an fd for it. */
static int
fresh_dir(const char *name)
{
	int fd;

	rm_rf_at(basefd, name);
	assert_int_equal(mkdirat(basefd, name, 0700), 0);
	fd = openat(basefd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void
mk_file(int dfd, const char *path, const void *data, size_t len, mode_t mode,
    time_t sec, long nsec)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { sec, nsec } };
	int fd;

	fd = openat(dfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	if (len > 0)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
}

static void
mk_dir(int dfd, const char *path, mode_t mode)
{
	assert_int_equal(mkdirat(dfd, path, 0700), 0);
	assert_int_equal(fchmodat(dfd, path, mode, 0), 0);
}

static void
mk_link(int dfd, const char *path, const char *target, time_t sec, long nsec)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { sec, nsec } };

	assert_int_equal(symlinkat(target, dfd, path), 0);
	assert_int_equal(utimensat(dfd, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void
set_mtime(int dfd, const char *path, time_t sec, long nsec)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { sec, nsec } };

	assert_int_equal(utimensat(dfd, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int
truncate_at(int dfd, const char *path, off_t len)
{
	int fd, rc;

	if ((fd = openat(dfd, path, O_WRONLY | O_CLOEXEC)) == -1)
		return -1;
	rc = ftruncate(fd, len);
	close(fd);
	return rc;
}

static int
exists_at(int dfd, const char *path)
{
	struct stat sb;

	return fstatat(dfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entry names of a directory; *n set; free each and the array. */
static char **
list_dir(int dfd, size_t *n)
{
	struct dirent *de;
	char **v = NULL;
	DIR *d;
	int fd;

	*n = 0;
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	d = fdopendir(fd);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		v = realloc(v, (*n + 1) * sizeof(*v));
		assert_non_null(v);
		v[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof(*v), name_cmp);
	return v;
}

static void
free_list(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
compare_files(int afd, int bfd, const char *name)
{
	static unsigned char ba[65536], bb[65536];
	ssize_t na, nb;
	int fa, fb;

	fa = openat(afd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	fb = openat(bfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fa >= 0 && fb >= 0);
	do {
		na = read(fa, ba, sizeof(ba));
		nb = read(fb, bb, sizeof(bb));
		assert_int_equal(na, nb);
		assert_true(na >= 0);
		assert_memory_equal(ba, bb, (size_t)na);
	} while (na > 0);
	close(fa);
	close(fb);
}

#define CMP_LINK_MTIME	0x1	/* also compare symlink mtimes */

/* Same names, types, modes, sizes, contents, mtimes and link targets. */
static void
compare_trees(int afd, int bfd, int flags)
{
	char **la, **lb, ta[PATH_MAX], tb[PATH_MAX];
	struct stat sa, sb;
	size_t na, nb, i;
	ssize_t n;
	int ca, cb;

	la = list_dir(afd, &na);
	lb = list_dir(bfd, &nb);
	assert_int_equal(na, nb);
	for (i = 0; i < na; i++) {
		assert_string_equal(la[i], lb[i]);
		assert_int_equal(fstatat(afd, la[i], &sa, AT_SYMLINK_NOFOLLOW), 0);
		assert_int_equal(fstatat(bfd, lb[i], &sb, AT_SYMLINK_NOFOLLOW), 0);
		if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT) ||
		    (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777)))
			fail_msg("%s: mode %o vs %o", la[i], sa.st_mode, sb.st_mode);
		if (!S_ISLNK(sa.st_mode) || (flags & CMP_LINK_MTIME)) {
			if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec ||
			    sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
				fail_msg("%s: mtime %lld.%09ld vs %lld.%09ld", la[i],
				    (long long)sa.st_mtim.tv_sec, sa.st_mtim.tv_nsec,
				    (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
		}
		if (S_ISREG(sa.st_mode)) {
			assert_int_equal(sa.st_size, sb.st_size);
			compare_files(afd, bfd, la[i]);
		} else if (S_ISLNK(sa.st_mode)) {
			n = readlinkat(afd, la[i], ta, sizeof(ta) - 1);
			assert_true(n >= 0);
			ta[n] = '\0';
			n = readlinkat(bfd, lb[i], tb, sizeof(tb) - 1);
			assert_true(n >= 0);
			tb[n] = '\0';
			assert_string_equal(ta, tb);
		} else if (S_ISDIR(sa.st_mode)) {
			ca = openat(afd, la[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			cb = openat(bfd, lb[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			assert_true(ca >= 0 && cb >= 0);
			compare_trees(ca, cb, flags);
			close(ca);
			close(cb);
		}
	}
	free_list(la, na);
	free_list(lb, nb);
}

static void
sha256_of(const void *p, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(n, 32);
}

static struct arc_limits
default_limits(void)
{
	struct arc_limits lim;

	memset(&lim, 0, sizeof(lim));
	lim.max_total_bytes = 64 << 20;
	lim.max_entry_bytes = 16 << 20;
	lim.max_entries = 10000;
	return lim;
}

static void
create_ok(int vfd, const unsigned char *key, struct mbuf *m, unsigned char sha[32],
    unsigned char cid[32], struct arc_stats *st)
{
	char err[256] = "";

	memset(m, 0, sizeof(*m));
	if (arc_create(vfd, mbuf_write, m, key, sha, cid, st, err, sizeof(err)) != 0)
		fail_msg("arc_create: %s", err);
}

static int
extract_buf(const void *p, size_t len, size_t step, int dfd, const struct arc_limits *lim,
    unsigned char sha[32], struct arc_stats *st, char *err, size_t errlen)
{
	struct msrc s;
	int rc;

	memset(&s, 0, sizeof(s));
	s.p = p;
	s.len = len;
	s.step = step;
	err[0] = '\0';
	rc = arc_extract(msrc_read, &s, dfd, lim, sha, st, err, errlen);
	/* The extractor never calls the source again once it said "end". */
	assert_int_equal(s.calls_after_end, 0);
	return rc;
}

/* ---- the round-trip tree ------------------------------------------------------------- */

#define BIG_LEN		(3u << 20)

static unsigned char *big;

static void
build_tree(int v)
{
	static const char note[] = "a note\n", script[] = "#!/bin/sh\necho hi\n";

	mk_dir(v, "a", 0755);
	mk_dir(v, "a/b", 0700);
	mk_dir(v, "a/b/c", 0755);
	mk_dir(v, "a/empty-dir", 0750);
	mk_file(v, "empty", "", 0, 0644, 1700000000, 1);
	mk_file(v, "big", big, BIG_LEN, 0600, 1700000001, 999999999);
	mk_file(v, "a/note", note, sizeof(note) - 1, 0644, 1600000000, 123456789);
	mk_file(v, "a/b/c/script", script, sizeof(script) - 1, 0755, 1500000000, 500);
	mk_file(v, "a/b/secret", "k", 1, 0600, 1400000000, 0);
	mk_file(v, "caf\xc3\xa9", "utf8", 4, 0644, 1700000002, 2);
	mk_file(v, "raw\xffname", "bytes", 5, 0644, 1700000003, 3);
	mk_link(v, "a/link", "b/c/script", 1300000000, 42);
	mk_link(v, "top-link", "a", 1300000001, 43);
	mk_link(v, "a/b/up", "../note", 1300000002, 44);
	mk_link(v, "a/b/c/root", "../../..", 1300000003, 45);
	mk_link(v, "self", ".", 1300000004, 46);
	/* Directory mtimes last: adding children changes them. */
	set_mtime(v, "a/b/c", 1200000000, 1);
	set_mtime(v, "a/b", 1200000001, 2);
	set_mtime(v, "a/empty-dir", 1200000002, 3);
	set_mtime(v, "a", 1200000003, 999999999);
}

static void
test_roundtrip(void **state)
{
	static const size_t steps[] = { 0, 4093, 512 };
	struct arc_limits lim = default_limits();
	struct arc_stats cst, xst;
	struct mbuf m;
	unsigned char sha[32], cid[32], xsha[32], ref[32];
	char err[256];
	size_t i;
	int v, d;

	(void)state;
	v = fresh_dir("vault");
	build_tree(v);
	create_ok(v, key1, &m, sha, cid, &cst);
	assert_int_equal(cst.files, 7);
	assert_int_equal(cst.dirs, 4);
	assert_int_equal(cst.symlinks, 5);
	assert_int_equal(cst.skipped, 0);
	assert_string_equal(cst.first_skip, "");
	assert_int_equal(cst.bytes, BIG_LEN + 7 + 18 + 1 + 4 + 5);
	assert_int_equal(m.len % 512, 0);
	sha256_of(m.p, m.len, ref);
	assert_memory_equal(sha, ref, 32);

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		d = fresh_dir("stage");
		memset(xsha, 0, sizeof(xsha));
		if (extract_buf(m.p, m.len, steps[i], d, &lim, xsha, &xst, err, sizeof(err)) != 0)
			fail_msg("arc_extract (step %zu): %s", steps[i], err);
		assert_memory_equal(xsha, sha, 32);
		assert_int_equal(xst.files, cst.files);
		assert_int_equal(xst.dirs, cst.dirs);
		assert_int_equal(xst.symlinks, cst.symlinks);
		assert_int_equal(xst.bytes, cst.bytes);
		compare_trees(v, d, CMP_LINK_MTIME);
		close(d);
	}
	mbuf_free(&m);
	close(v);
}

/* The same tree without the big file, one byte per read. */
static void
test_roundtrip_bytewise(void **state)
{
	struct arc_limits lim = default_limits();
	struct arc_stats cst, xst;
	struct mbuf m;
	unsigned char sha[32], cid[32], xsha[32];
	char err[256];
	int v, d;

	(void)state;
	v = fresh_dir("vault");
	build_tree(v);
	assert_int_equal(unlinkat(v, "big", 0), 0);
	create_ok(v, key1, &m, sha, cid, &cst);
	d = fresh_dir("stage");
	if (extract_buf(m.p, m.len, 1, d, &lim, xsha, &xst, err, sizeof(err)) != 0)
		fail_msg("arc_extract: %s", err);
	assert_memory_equal(xsha, sha, 32);
	compare_trees(v, d, CMP_LINK_MTIME);
	close(d);
	mbuf_free(&m);
	close(v);
}

static unsigned char *
read_file(const char *path, long *len)
{
	unsigned char *buf;
	FILE *f;

	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	*len = ftell(f);
	rewind(f);
	buf = malloc((size_t)*len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)*len, f), (size_t)*len);
	fclose(f);
	return buf;
}

/* GNU tar reads what we write, and we read what it writes. */
static void
test_tar_interop(void **state)
{
	struct arc_limits lim = default_limits();
	struct arc_stats st;
	struct mbuf m;
	unsigned char sha[32], cid[32];
	char cmd[3 * PATH_MAX], path[PATH_MAX], err[256];
	unsigned char *buf;
	FILE *f;
	long len;
	int v, d;

	(void)state;
	if (system("tar --version >/dev/null 2>&1") != 0)
		skip();
	v = fresh_dir("vault");
	build_tree(v);
	create_ok(v, key1, &m, sha, cid, &st);
	assert_true((size_t)snprintf(path, sizeof(path), "%s/out.tar", base) < sizeof(path));
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(m.p, 1, m.len, f), m.len);
	fclose(f);
	d = fresh_dir("gnu");
	snprintf(cmd, sizeof(cmd), "tar --warning=no-unknown-keyword -xpf '%s' -C '%s/gnu'",
	    path, base);
	assert_int_equal(system(cmd), 0);
	compare_trees(v, d, 0);
	close(d);

	/*
	 * The other way: GNU tar's pax output of the same tree.  GNU tar puts
	 * a name that is not UTF-8 in a pax path record as it is, which pax
	 * does not allow and the extractor refuses; the rest is fine.
	 */
	snprintf(cmd, sizeof(cmd), "tar --format=pax -cf '%s' -C '%s/vault' .", path, base);
	assert_int_equal(system(cmd), 0);
	buf = read_file(path, &len);
	d = fresh_dir("stage");
	assert_int_equal(extract_buf(buf, (size_t)len, 10240, d, &lim, sha, &st, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "tar: Pathname can't be converted from UTF-8 to current locale.");
	close(d);
	free(buf);
	assert_int_equal(unlinkat(v, "raw\xffname", 0), 0);
	snprintf(cmd, sizeof(cmd), "tar --format=pax -cf '%s' -C '%s/vault' .", path, base);
	assert_int_equal(system(cmd), 0);
	buf = read_file(path, &len);
	d = fresh_dir("stage");
	if (extract_buf(buf, (size_t)len, 10240, d, &lim, sha, &st, err, sizeof(err)) != 0)
		fail_msg("arc_extract of GNU tar output: %s", err);
	compare_trees(v, d, 0);
	close(d);
	free(buf);
	mbuf_free(&m);
	close(v);
}

/* ---- determinism ------------------------------------------------------------------------ */

/* arc_create in a child process: another pid, another moment. */
static void
create_in_child(int v, const unsigned char *key, struct mbuf *m)
{
	unsigned char sha[32], cid[32], buf[65536];
	struct mbuf cm;
	int p[2], status;
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];
		size_t off = 0;

		close(p[0]);
		memset(&cm, 0, sizeof(cm));
		if (arc_create(v, mbuf_write, &cm, key, sha, cid, NULL, err, sizeof(err)) != 0)
			_exit(1);
		while (off < cm.len) {
			if ((n = write(p[1], cm.p + off, cm.len - off)) <= 0)
				_exit(1);
			off += (size_t)n;
		}
		_exit(0);
	}
	close(p[1]);
	memset(m, 0, sizeof(*m));
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		mbuf_write(m, buf, (size_t)n);
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_determinism(void **state)
{
	struct mbuf m1, m2, m3;
	unsigned char sha1[32], cid1[32], sha2[32], cid2[32], ref[32];
	char *old;
	int v, fd;

	(void)state;
	v = fresh_dir("vault");
	build_tree(v);
	create_ok(v, key1, &m1, sha1, cid1, NULL);
	sleep(1);

	/* Reading every file changed atimes; another process, another locale. */
	old = strdup(setlocale(LC_ALL, NULL));
	if (setlocale(LC_ALL, "C.UTF-8") == NULL)
		(void)setlocale(LC_ALL, "C");
	create_in_child(v, key1, &m2);
	create_ok(v, key1, &m3, sha2, cid2, NULL);
	(void)setlocale(LC_ALL, old);
	free(old);
	assert_int_equal(m1.len, m2.len);
	assert_memory_equal(m1.p, m2.p, m1.len);
	assert_int_equal(m1.len, m3.len);
	assert_memory_equal(m1.p, m3.p, m1.len);
	assert_memory_equal(sha1, sha2, 32);
	assert_memory_equal(cid1, cid2, 32);
	mbuf_free(&m2);
	mbuf_free(&m3);

	/* The content id is the keyed MAC of the stream's digest. */
	{
		unsigned char mac[32];
		size_t maclen = 0;

		assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key1, 32, sha1, 32,
		    mac, sizeof(mac), &maclen));
		assert_int_equal(maclen, 32);
		assert_memory_equal(mac, cid1, 32);
	}

	/* Another HMAC key: another content id, the same stream. */
	create_ok(v, key2, &m2, sha2, cid2, NULL);
	assert_memory_equal(sha1, sha2, 32);
	assert_memory_not_equal(cid1, cid2, 32);
	mbuf_free(&m2);

	/* One nanosecond of one mtime changes everything. */
	set_mtime(v, "a/note", 1600000000, 123456790);
	create_ok(v, key1, &m2, sha2, cid2, NULL);
	assert_memory_not_equal(sha1, sha2, 32);
	assert_memory_not_equal(cid1, cid2, 32);
	sha256_of(m2.p, m2.len, ref);
	assert_memory_equal(ref, sha2, 32);
	mbuf_free(&m2);

	/* Creation order on disk does not matter, only the names. */
	close(v);
	v = fresh_dir("vault");
	mk_file(v, "z", "1", 1, 0600, 1, 1);
	mk_file(v, "a", "2", 1, 0600, 2, 2);
	mk_file(v, "m", "3", 1, 0600, 3, 3);
	create_ok(v, key1, &m2, sha1, cid1, NULL);
	close(v);
	v = fresh_dir("vault");
	mk_file(v, "m", "3", 1, 0600, 3, 3);
	mk_file(v, "a", "2", 1, 0600, 2, 2);
	mk_file(v, "z", "1", 1, 0600, 1, 1);
	create_ok(v, key1, &m3, sha2, cid2, NULL);
	assert_int_equal(m2.len, m3.len);
	assert_memory_equal(m2.p, m3.p, m2.len);

	/* The caller's descriptor may have been read already or be O_PATH. */
	fd = openat(basefd, "vault", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	mbuf_free(&m3);
	create_ok(fd, key1, &m3, sha2, cid2, NULL);
	assert_memory_equal(sha1, sha2, 32);
	close(fd);

	mbuf_free(&m1);
	mbuf_free(&m2);
	mbuf_free(&m3);
	close(v);
}

/* An empty vault is the two end blocks and nothing else. */
static void
test_empty_vault(void **state)
{
	static const unsigned char zero[1024];
	struct arc_limits lim = default_limits();
	struct arc_stats st;
	struct mbuf m;
	unsigned char sha[32], cid[32], xsha[32];
	char err[256];
	size_t n;
	char **l;
	int v, d;

	(void)state;
	v = fresh_dir("vault");
	create_ok(v, key1, &m, sha, cid, &st);
	assert_int_equal(m.len, 1024);
	assert_memory_equal(m.p, zero, 1024);
	d = fresh_dir("stage");
	if (extract_buf(m.p, m.len, 0, d, &lim, xsha, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_memory_equal(sha, xsha, 32);
	l = list_dir(d, &n);
	assert_int_equal(n, 0);
	free_list(l, n);
	close(d);
	close(v);
	mbuf_free(&m);
}

/* ---- what the writer leaves out -------------------------------------------------------- */

static void
test_create_skips(void **state)
{
	struct arc_limits lim = default_limits();
	struct sockaddr_un sun;
	struct arc_stats st, xst;
	struct mbuf m;
	unsigned char sha[32], cid[32];
	char err[256];
	struct stat sb;
	uint64_t expect_skipped = 0;
	int v, d, s;

	(void)state;
	v = fresh_dir("vault");
	mk_dir(v, "d", 0755);
	mk_dir(v, "d/e", 0755);
	mk_file(v, "keep", "x", 1, 0600, 1, 0);
	/* Escaping symlinks. */
	mk_link(v, "abs", "/etc/passwd", 1, 0);
	mk_link(v, "up", "..", 1, 0);
	mk_link(v, "d/upup", "../../x", 1, 0);
	mk_link(v, "d/e/lex", "../../../x", 1, 0);
	mk_link(v, "dot", ".", 1, 0);
	mk_link(v, "through", "dot/..", 1, 0);	/* lexically inside, really not */
	mk_link(v, "empty-ok", "d/./e", 1, 0);
	mk_link(v, "d/e/ok", "../../keep", 1, 0);
	expect_skipped += 5;
	/* Special files. */
	assert_int_equal(mkfifoat(v, "fifo", 0600), 0);
	expect_skipped++;
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/vault/sock", base) >=
	    sizeof(sun.sun_path))
		fail_msg("socket path too long");
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	expect_skipped++;
	if (mknodat(v, "null", S_IFCHR | 0600, makedev(1, 3)) == 0)
		expect_skipped++;
	/* setuid/setgid files go; a setgid or sticky directory stays, without them. */
	mk_file(v, "suid", "x", 1, 04755, 1, 0);
	mk_file(v, "sgid", "x", 1, 02755, 1, 0);
	expect_skipped += 2;
	mk_file(v, "sticky", "x", 1, 01644, 1, 0);
	mk_file(v, "new\nline", "x", 1, 0644, 1, 0);
	mk_dir(v, "tab\tdir", 0755);
	mk_file(v, "tab\tdir/inner", "x", 1, 0644, 1, 0);
	expect_skipped += 2;
	mk_dir(v, "shared", 02775);
	mk_dir(v, "tmpdir", 01777);

	create_ok(v, key1, &m, sha, cid, &st);
	close(s);
	assert_int_equal(st.skipped, expect_skipped);
	assert_string_equal(st.first_skip, "abs: symlink pointing outside the vault");
	assert_int_equal(st.files, 2);
	assert_int_equal(st.symlinks, 3);
	assert_int_equal(st.dirs, 4);

	d = fresh_dir("stage");
	if (extract_buf(m.p, m.len, 0, d, &lim, sha, &xst, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(exists_at(d, "keep"));
	assert_true(exists_at(d, "dot"));
	assert_true(exists_at(d, "empty-ok"));
	assert_true(exists_at(d, "d/e/ok"));
	assert_false(exists_at(d, "abs"));
	assert_false(exists_at(d, "up"));
	assert_false(exists_at(d, "d/upup"));
	assert_false(exists_at(d, "d/e/lex"));
	assert_false(exists_at(d, "through"));
	assert_false(exists_at(d, "fifo"));
	assert_false(exists_at(d, "sock"));
	assert_false(exists_at(d, "null"));
	assert_false(exists_at(d, "suid"));
	assert_false(exists_at(d, "sgid"));
	assert_false(exists_at(d, "new\nline"));
	assert_false(exists_at(d, "tab\tdir"));
	assert_int_equal(fstatat(d, "sticky", &sb, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(sb.st_mode & 07777, 0644);
	assert_int_equal(fstatat(d, "shared", &sb, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(sb.st_mode & 07777, 0775);
	assert_int_equal(fstatat(d, "tmpdir", &sb, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(sb.st_mode & 07777, 0777);
	close(d);
	mbuf_free(&m);
	close(v);
}

/* Paths the format (or the extractor) cannot hold are errors, not silent gaps. */
static void
test_create_limits(void **state)
{
	struct mbuf m;
	unsigned char sha[32], cid[32];
	char err[256], name[256];
	int v, fd, nfd, i;

	(void)state;
	v = fresh_dir("vault");
	fd = dup(v);
	for (i = 0; i < ARC_MAX_DEPTH; i++) {
		assert_int_equal(mkdirat(fd, "d", 0700), 0);
		nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(nfd >= 0);
		close(fd);
		fd = nfd;
	}
	memset(&m, 0, sizeof(m));
	/* 64 levels of directories: fine. */
	assert_int_equal(arc_create(v, mbuf_write, &m, key1, sha, cid, NULL, err,
	    sizeof(err)), 0);
	mbuf_free(&m);
	mk_file(fd, "f", "x", 1, 0600, 1, 0);
	close(fd);
	assert_int_equal(arc_create(v, mbuf_write, &m, key1, sha, cid, NULL, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "deeper than 64 levels"));
	mbuf_free(&m);
	close(v);

	v = fresh_dir("vault");
	memset(name, 'n', 255);
	name[255] = '\0';
	fd = dup(v);
	for (i = 0; i < 16; i++) {
		assert_int_equal(mkdirat(fd, name, 0700), 0);
		nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(nfd >= 0);
		close(fd);
		fd = nfd;
	}
	mk_file(fd, "f", "x", 1, 0600, 1, 0);	/* 16 * 256 + 1 bytes */
	close(fd);
	assert_int_equal(arc_create(v, mbuf_write, &m, key1, sha, cid, NULL, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "exceed 4095 bytes"));
	mbuf_free(&m);
	close(v);
}

static void
test_create_sink_failure(void **state)
{
	struct mbuf m;
	unsigned char sha[32], cid[32];
	char err[256];
	int v;

	(void)state;
	v = fresh_dir("vault");
	build_tree(v);
	memset(&m, 0, sizeof(m));
	m.fail_after = 100000;
	assert_int_equal(arc_create(v, mbuf_write, &m, key1, sha, cid, NULL, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "No space left on device"));
	/* Nothing more was offered to the sink after it failed. */
	assert_true(m.failed);
	assert_true(m.len <= 100000);
	assert_int_equal(m.after_fail, 0);
	mbuf_free(&m);
	close(v);
}

/*
 * Files that change between their header and their data: the sink, called
 * with each header as it is written, truncates one and extends another.
 */
struct mutator {
	struct mbuf m;
	int vfd;
	int shrunk, grown;
};

static int
mutating_write(void *arg, const void *buf, size_t len)
{
	struct mutator *mu = arg;
	int fd;

	if (len == 512 && !mu->shrunk && strncmp(buf, "shrinkme", 100) == 0) {
		assert_int_equal(truncate_at(mu->vfd, "shrinkme", 1000), 0);
		mu->shrunk = 1;
	}
	if (len == 512 && !mu->grown && strncmp(buf, "growme", 100) == 0) {
		fd = openat(mu->vfd, "growme", O_WRONLY | O_APPEND | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, big, 70000), 70000);
		close(fd);
		mu->grown = 1;
	}
	return mbuf_write(&mu->m, buf, len);
}

static void
test_create_changing_files(void **state)
{
	struct arc_limits lim = default_limits();
	struct arc_stats st;
	struct mutator mu;
	struct stat sb;
	unsigned char sha[32], cid[32], *got;
	char err[256];
	int v, d, fd;

	(void)state;
	v = fresh_dir("vault");
	mk_file(v, "growme", big, 1000, 0600, 1, 0);
	mk_file(v, "shrinkme", big, 300000, 0600, 1, 0);
	memset(&mu, 0, sizeof(mu));
	mu.vfd = v;
	if (arc_create(v, mutating_write, &mu, key1, sha, cid, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(mu.shrunk && mu.grown);
	assert_int_equal(st.bytes, 301000);

	d = fresh_dir("stage");
	if (extract_buf(mu.m.p, mu.m.len, 0, d, &lim, sha, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	got = malloc(300000);
	assert_non_null(got);
	assert_int_equal(fstatat(d, "growme", &sb, 0), 0);
	assert_int_equal(sb.st_size, 1000);
	fd = openat(d, "growme", O_RDONLY | O_CLOEXEC);
	assert_int_equal(read(fd, got, 1000), 1000);
	assert_memory_equal(got, big, 1000);
	close(fd);
	assert_int_equal(fstatat(d, "shrinkme", &sb, 0), 0);
	assert_int_equal(sb.st_size, 300000);
	fd = openat(d, "shrinkme", O_RDONLY | O_CLOEXEC);
	assert_int_equal(read(fd, got, 300000), 300000);
	assert_memory_equal(got, big, 1000);
	{
		size_t i;

		for (i = 1000; i < 300000; i++)
			if (got[i] != 0)
				fail_msg("byte %zu of the shrunk file is not zero", i);
	}
	close(fd);
	free(got);
	close(d);
	mbuf_free(&mu.m);
	close(v);
}

/* Through age and back, with arc_read_age as the source. */
struct agesink {
	struct age_writer *w;
	struct age_err ae;
};

static int
age_sink(void *arg, const void *buf, size_t len)
{
	struct agesink *s = arg;

	return age_writer_write(s->w, buf, len, &s->ae);
}

static ssize_t
mem_read(void *arg, void *buf, size_t len)
{
	struct msrc *s = arg;
	size_t n = s->len - s->off;

	if (n > len)
		n = len;
	memcpy(buf, s->p + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void
test_age_adapter(void **state)
{
	struct arc_limits lim = default_limits();
	struct age_identity id;
	struct age_recipient r;
	struct age_keys k;
	struct age_err ae;
	struct age_reader *rd;
	struct agesink as;
	struct arc_stats st;
	struct mbuf ct;
	struct msrc src;
	unsigned char sha[32], cid[32], xsha[32];
	char err[256];
	int v, d;

	(void)state;
	v = fresh_dir("vault");
	build_tree(v);
	assert_int_equal(age_identity_generate(&id, &ae), 0);
	age_identity_to_recipient(&id, &r);
	memset(&ct, 0, sizeof(ct));
	memset(&as, 0, sizeof(as));
	as.w = age_writer_new(&r, 1, mbuf_write, &ct, &ae);
	assert_non_null(as.w);
	assert_int_equal(arc_create(v, age_sink, &as, key1, sha, cid, NULL, err,
	    sizeof(err)), 0);
	assert_int_equal(age_writer_finish(as.w, &ae), 0);
	age_writer_free(as.w);

	memset(&k, 0, sizeof(k));
	k.ids = &id;
	k.nids = 1;
	memset(&src, 0, sizeof(src));
	src.p = ct.p;
	src.len = ct.len;
	rd = age_reader_new(mem_read, &src, &k, &ae);
	assert_non_null(rd);
	d = fresh_dir("stage");
	if (arc_extract(arc_read_age, rd, d, &lim, xsha, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_memory_equal(sha, xsha, 32);
	compare_trees(v, d, CMP_LINK_MTIME);
	age_reader_free(rd);
	close(d);

	/* A flipped ciphertext byte surfaces as the age error. */
	ct.p[ct.len - 20] ^= 1;
	memset(&src, 0, sizeof(src));
	src.p = ct.p;
	src.len = ct.len;
	rd = age_reader_new(mem_read, &src, &k, &ae);
	assert_non_null(rd);
	d = fresh_dir("stage");
	assert_int_equal(arc_extract(arc_read_age, rd, d, &lim, xsha, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "reading the archive: "));
	age_reader_free(rd);
	close(d);
	age_identity_free(&id);
	mbuf_free(&ct);
	close(v);
}

/* ---- hostile archives ---------------------------------------------------------------------- */

struct hb {
	struct archive *a;
	struct archive_entry *e;
	struct mbuf m;
};

static la_ssize_t
hb_write(struct archive *a, void *arg, const void *buf, size_t len)
{
	(void)a;
	assert_int_equal(mbuf_write(arg, buf, len), 0);
	return (la_ssize_t)len;
}

static void
hb_begin(struct hb *h)
{
	memset(h, 0, sizeof(*h));
	h->a = archive_write_new();
	h->e = archive_entry_new();
	assert_non_null(h->a);
	assert_non_null(h->e);
	assert_int_equal(archive_write_set_format_pax(h->a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_per_block(h->a, 0), ARCHIVE_OK);
	assert_int_equal(archive_write_open(h->a, &h->m, NULL, hb_write, NULL), ARCHIVE_OK);
}

/* One entry; mode includes the type.  Regular files get size bytes of filler. */
static void
hb_add(struct hb *h, const char *path, mode_t mode, int64_t size, const char *link,
    const char *hardlink)
{
	static const char xs[4096] = { 'x' };
	int64_t left;
	int r;

	archive_entry_clear(h->e);
	archive_entry_copy_pathname(h->e, path);
	archive_entry_set_mode(h->e, mode);
	archive_entry_set_mtime(h->e, 1700000000, 5);
	if (S_ISCHR(mode) || S_ISBLK(mode))
		archive_entry_set_rdev(h->e, makedev(1, 3));
	if (S_ISREG(mode))
		archive_entry_set_size(h->e, size);
	if (link != NULL)
		archive_entry_copy_symlink(h->e, link);
	if (hardlink != NULL)
		archive_entry_copy_hardlink(h->e, hardlink);
	r = archive_write_header(h->a, h->e);
	if (r != ARCHIVE_OK)
		fail_msg("hb_add %s: %s", path, archive_error_string(h->a));
	for (left = S_ISREG(mode) && hardlink == NULL ? size : 0; left > 0; ) {
		size_t n = left > (int64_t)sizeof(xs) ? sizeof(xs) : (size_t)left;

		assert_int_equal(archive_write_data(h->a, xs, n), (la_ssize_t)n);
		left -= (int64_t)n;
	}
}

static void
hb_end(struct hb *h)
{
	assert_int_equal(archive_write_close(h->a), ARCHIVE_OK);
	archive_write_free(h->a);
	archive_entry_free(h->e);
}

/* A staging dir inside a sentinel dir; returns the staging fd. */
static int
stage_in_sentinel(int *sentfd)
{
	*sentfd = fresh_dir("sentinel");
	assert_int_equal(mkdirat(*sentfd, "stage", 0700), 0);
	return openat(*sentfd, "stage", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void
assert_sentinel_clean(int sentfd)
{
	size_t n;
	char **l = list_dir(sentfd, &n);

	assert_int_equal(n, 1);
	assert_string_equal(l[0], "stage");
	free_list(l, n);
	assert_false(exists_at(basefd, "x"));
	assert_false(exists_at(basefd, "escaped"));
}

/* Extract h's bytes; must fail with a message containing want. */
static void
expect_fail_lim(struct hb *h, const struct arc_limits *lim, const char *want)
{
	struct arc_stats st;
	unsigned char sha[32];
	char err[256];
	int sent, d;

	d = stage_in_sentinel(&sent);
	if (extract_buf(h->m.p, h->m.len, 0, d, lim, sha, &st, err, sizeof(err)) != -1)
		fail_msg("extraction succeeded, expected \"%s\"", want);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\", expected \"%s\"", err, want);
	assert_sentinel_clean(sent);
	close(d);
	close(sent);
	mbuf_free(&h->m);
}

static void
expect_fail(struct hb *h, const char *want)
{
	struct arc_limits lim = default_limits();

	expect_fail_lim(h, &lim, want);
}

/* Extract h's bytes successfully; returns the staging fd (sentinel checked). */
static int
expect_ok(struct hb *h)
{
	struct arc_limits lim = default_limits();
	struct arc_stats st;
	unsigned char sha[32];
	char err[256];
	int sent, d;

	d = stage_in_sentinel(&sent);
	if (extract_buf(h->m.p, h->m.len, 0, d, &lim, sha, &st, err, sizeof(err)) != 0)
		fail_msg("extraction failed: %s", err);
	assert_sentinel_clean(sent);
	close(sent);
	mbuf_free(&h->m);
	return d;
}

static void
test_hostile_paths(void **state)
{
	char abs[PATH_MAX], longname[300], longpath[4200];
	struct hb h;
	struct stat sb;
	int d;

	(void)state;
	assert_true((size_t)snprintf(abs, sizeof(abs), "%s/escaped", base) < sizeof(abs));
	hb_begin(&h);
	hb_add(&h, abs, S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "absolute path");
	assert_int_equal(stat(abs, &sb), -1);

	hb_begin(&h);
	hb_add(&h, "../x", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "'..' component");

	hb_begin(&h);
	hb_add(&h, "a/../../x", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "'..' component");

	hb_begin(&h);
	hb_add(&h, "ok", S_IFREG | 0644, 3, NULL, NULL);
	hb_add(&h, "a/./b", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'a/./b': '.' component");

	hb_begin(&h);
	hb_add(&h, "a//b", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "empty path component");

	hb_begin(&h);
	hb_add(&h, "new\nline", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'new\\x0aline': control character in name");

	hb_begin(&h);
	hb_add(&h, "esc\x1b[31m", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "control character in name");

	hb_begin(&h);
	hb_add(&h, "link/", S_IFLNK | 0777, 0, "x", NULL);
	hb_end(&h);
	expect_fail(&h, "trailing slash on a non-directory");

	/* libarchive takes "name/" on a file for a directory, and its data for damage. */
	hb_begin(&h);
	hb_add(&h, "file/", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "tar: Damaged tar archive");

	memset(longname, 'n', 256);
	longname[256] = '\0';
	hb_begin(&h);
	hb_add(&h, longname, S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "component longer than 255 bytes");

	memset(longpath, 'p', 4096);
	for (d = 100; d < 4096; d += 101)
		longpath[d] = '/';
	longpath[4096] = '\0';
	hb_begin(&h);
	hb_add(&h, longpath, S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "path longer than 4095 bytes");

	memset(longpath, 0, sizeof(longpath));
	for (d = 0; d < 65; d++)
		strcat(longpath, d ? "/d" : "d");
	hb_begin(&h);
	hb_add(&h, longpath, S_IFDIR | 0755, 0, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "deeper than 64 levels");

	/* "./" prefixes and a "./" root entry, as tar -C dir . writes them, are fine. */
	hb_begin(&h);
	hb_add(&h, "./", S_IFDIR | 0755, 0, NULL, NULL);
	hb_add(&h, "./x1", S_IFREG | 0644, 3, NULL, NULL);
	hb_add(&h, "././x2", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	d = expect_ok(&h);
	assert_true(exists_at(d, "x1"));
	assert_true(exists_at(d, "x2"));
	close(d);

	hb_begin(&h);
	hb_add(&h, ".", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "only a directory may name the root");
}

static void
test_hostile_types(void **state)
{
	struct hb h;

	(void)state;
	hb_begin(&h);
	hb_add(&h, "f", S_IFREG | 0644, 3, NULL, NULL);
	hb_add(&h, "h", S_IFREG | 0644, 0, NULL, "f");
	hb_end(&h);
	expect_fail(&h, "entry 'h': hard links are not allowed");

	hb_begin(&h);
	hb_add(&h, "h", S_IFREG | 0644, 0, NULL, "/etc/passwd");
	hb_end(&h);
	expect_fail(&h, "hard links are not allowed");

	hb_begin(&h);
	hb_add(&h, "null", S_IFCHR | 0666, 0, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'null': character devices are not allowed");

	hb_begin(&h);
	hb_add(&h, "sda", S_IFBLK | 0660, 0, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "block devices are not allowed");

	hb_begin(&h);
	hb_add(&h, "pipe", S_IFIFO | 0600, 0, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "fifos are not allowed");

	hb_begin(&h);
	hb_add(&h, "suid", S_IFREG | 04755, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'suid': setuid/setgid/sticky bits are not allowed (mode 4755)");

	hb_begin(&h);
	hb_add(&h, "sgid", S_IFREG | 02755, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "setuid/setgid/sticky");

	hb_begin(&h);
	hb_add(&h, "shared", S_IFDIR | 02775, 0, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'shared/': setuid/setgid/sticky bits are not allowed (mode 2775)");

	hb_begin(&h);
	hb_add(&h, "tmp", S_IFDIR | 01777, 0, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "setuid/setgid/sticky");
}

static void
test_hostile_limits(void **state)
{
	struct arc_limits lim = default_limits();
	struct hb h;

	(void)state;
	lim.max_entry_bytes = 100;
	hb_begin(&h);
	hb_add(&h, "small", S_IFREG | 0644, 100, NULL, NULL);
	hb_add(&h, "big", S_IFREG | 0644, 101, NULL, NULL);
	hb_end(&h);
	expect_fail_lim(&h, &lim, "entry 'big': 101 bytes, over the per-file limit of 100");

	lim = default_limits();
	lim.max_total_bytes = 150;
	hb_begin(&h);
	hb_add(&h, "one", S_IFREG | 0644, 100, NULL, NULL);
	hb_add(&h, "two", S_IFREG | 0644, 100, NULL, NULL);
	hb_end(&h);
	expect_fail_lim(&h, &lim, "entry 'two': total size over the limit of 150 bytes");

	lim = default_limits();
	lim.max_entries = 3;
	hb_begin(&h);
	hb_add(&h, "d", S_IFDIR | 0755, 0, NULL, NULL);
	hb_add(&h, "d/1", S_IFREG | 0644, 1, NULL, NULL);
	hb_add(&h, "d/2", S_IFREG | 0644, 1, NULL, NULL);
	hb_add(&h, "d/3", S_IFREG | 0644, 1, NULL, NULL);
	hb_end(&h);
	expect_fail_lim(&h, &lim, "more than 3 entries");

	/* Directories made on the way count too. */
	hb_begin(&h);
	hb_add(&h, "a/b/c/d", S_IFREG | 0644, 1, NULL, NULL);
	hb_end(&h);
	expect_fail_lim(&h, &lim, "more than 3 entries");

	/* More stream than the limits can explain: trailing data. */
	lim = default_limits();
	lim.max_total_bytes = 0;
	lim.max_entries = 1;
	hb_begin(&h);
	hb_add(&h, "d", S_IFDIR | 0755, 0, NULL, NULL);
	hb_end(&h);
	{
		static unsigned char pad[4096];
		size_t i;

		for (i = 0; i < (2u << 20) / sizeof(pad); i++)
			mbuf_write(&h.m, pad, sizeof(pad));
	}
	expect_fail_lim(&h, &lim, "archive larger than the size and entry limits allow");
}

static void
test_hostile_links(void **state)
{
	struct stat before, after;
	struct hb h;
	int d;

	(void)state;
	assert_int_equal(stat("/etc/passwd", &before), 0);
	hb_begin(&h);
	hb_add(&h, "pw", S_IFLNK | 0777, 0, "/etc/passwd", NULL);
	hb_add(&h, "pw", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'pw': absolute symlink target");

	hb_begin(&h);
	hb_add(&h, "x", S_IFLNK | 0777, 0, "../../x", NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'x': symlink target leaves the archive");

	hb_begin(&h);
	hb_add(&h, "d", S_IFDIR | 0755, 0, NULL, NULL);
	hb_add(&h, "d/l", S_IFLNK | 0777, 0, "../..", NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'd/l': symlink target leaves the archive");

	hb_begin(&h);
	hb_add(&h, "s", S_IFLNK | 0777, 0, ".", NULL);
	hb_add(&h, "t", S_IFLNK | 0777, 0, "s/..", NULL);
	hb_end(&h);
	expect_fail(&h, "entry 't': symlink target leaves the archive");

	hb_begin(&h);
	hb_add(&h, "sub", S_IFDIR | 0755, 0, NULL, NULL);
	hb_add(&h, "l", S_IFLNK | 0777, 0, "sub", NULL);
	hb_add(&h, "l/x", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'l/x': parent 'l' is a symlink or not a directory");

	/* "l -> ." is inside and allowed, but nothing may be written through it. */
	hb_begin(&h);
	hb_add(&h, "l", S_IFLNK | 0777, 0, ".", NULL);
	hb_add(&h, "l/x", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "parent 'l' is a symlink or not a directory");

	hb_begin(&h);
	hb_add(&h, "l", S_IFLNK | 0777, 0, ".", NULL);
	hb_add(&h, "sub", S_IFDIR | 0755, 0, NULL, NULL);
	hb_add(&h, "sub/up", S_IFLNK | 0777, 0, "../l", NULL);
	hb_end(&h);
	d = expect_ok(&h);
	assert_true(exists_at(d, "l"));
	assert_true(exists_at(d, "sub/up"));
	close(d);

	/* A dangling link named like a later file: no writing through it either. */
	hb_begin(&h);
	hb_add(&h, "f", S_IFLNK | 0777, 0, "target", NULL);
	hb_add(&h, "f", S_IFREG | 0644, 3, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'f': duplicate entry");

	hb_begin(&h);
	hb_add(&h, "d", S_IFLNK | 0777, 0, "real", NULL);
	hb_add(&h, "d", S_IFDIR | 0755, 0, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "duplicate entry");

	assert_int_equal(stat("/etc/passwd", &after), 0);
	assert_int_equal(before.st_size, after.st_size);
	assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
	assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
}

static void
test_hostile_duplicates(void **state)
{
	struct stat sb;
	struct hb h;
	int d;

	(void)state;
	hb_begin(&h);
	hb_add(&h, "f", S_IFREG | 0644, 3, NULL, NULL);
	hb_add(&h, "f", S_IFREG | 0644, 5, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "entry 'f': duplicate entry");

	hb_begin(&h);
	hb_add(&h, "d", S_IFDIR | 0755, 0, NULL, NULL);
	hb_add(&h, "d", S_IFDIR | 0700, 0, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "duplicate entry");

	hb_begin(&h);
	hb_add(&h, "d", S_IFDIR | 0755, 0, NULL, NULL);
	hb_add(&h, "d", S_IFREG | 0644, 1, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "duplicate entry");

	hb_begin(&h);
	hb_add(&h, "f", S_IFREG | 0644, 1, NULL, NULL);
	hb_add(&h, "f/g", S_IFREG | 0644, 1, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "parent 'f' is a symlink or not a directory");

	/* Children before their directory: the directory entry sets mode and mtime. */
	hb_begin(&h);
	hb_add(&h, "a/b/f", S_IFREG | 0644, 1, NULL, NULL);
	hb_add(&h, "a", S_IFDIR | 0750, 0, NULL, NULL);
	hb_end(&h);
	d = expect_ok(&h);
	assert_int_equal(fstatat(d, "a", &sb, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(sb.st_mode & 07777, 0750);
	assert_int_equal(sb.st_mtim.tv_sec, 1700000000);
	assert_int_equal(sb.st_mtim.tv_nsec, 5);
	assert_int_equal(fstatat(d, "a/b", &sb, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	close(d);

	/* ... but only once. */
	hb_begin(&h);
	hb_add(&h, "a/f", S_IFREG | 0644, 1, NULL, NULL);
	hb_add(&h, "a", S_IFDIR | 0750, 0, NULL, NULL);
	hb_add(&h, "a", S_IFDIR | 0755, 0, NULL, NULL);
	hb_end(&h);
	expect_fail(&h, "duplicate entry");
}

/* Read-only and inaccessible directories still get all their children. */
static void
test_dir_modes(void **state)
{
	struct arc_limits lim = default_limits();
	struct arc_stats st;
	struct mbuf m;
	unsigned char sha[32], cid[32];
	char err[256];
	int v, d;

	(void)state;
	v = fresh_dir("vault");
	mk_dir(v, "ro", 0755);
	mk_dir(v, "ro/inner", 0755);
	mk_file(v, "ro/inner/f", "data", 4, 0400, 5, 5);
	mk_file(v, "ro/g", "data", 4, 0444, 6, 6);
	assert_int_equal(fchmodat(v, "ro/inner", 0500, 0), 0);
	assert_int_equal(fchmodat(v, "ro", 0555, 0), 0);
	set_mtime(v, "ro/inner", 7, 7);
	set_mtime(v, "ro", 8, 8);
	create_ok(v, key1, &m, sha, cid, NULL);
	d = fresh_dir("stage");
	if (extract_buf(m.p, m.len, 0, d, &lim, sha, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	compare_trees(v, d, CMP_LINK_MTIME);
	close(d);
	mbuf_free(&m);
	close(v);
}

static void
test_chown(void **state)
{
	struct arc_limits lim = default_limits();
	struct arc_stats st;
	struct stat sb;
	struct hb h;
	unsigned char sha[32];
	char err[256];
	static const char *paths[] = { "d", "d/f", "d/l", "imp", "imp/g" };
	size_t i;
	int d;

	(void)state;
	if (geteuid() != 0)
		skip();
	hb_begin(&h);
	hb_add(&h, "d", S_IFDIR | 0755, 0, NULL, NULL);
	hb_add(&h, "d/f", S_IFREG | 0644, 3, NULL, NULL);
	hb_add(&h, "d/l", S_IFLNK | 0777, 0, "f", NULL);
	hb_add(&h, "imp/g", S_IFREG | 0600, 3, NULL, NULL);
	hb_end(&h);
	lim.chown_entries = 1;
	lim.owner_uid = 4321;
	lim.owner_gid = 8765;
	d = fresh_dir("stage");
	if (extract_buf(h.m.p, h.m.len, 0, d, &lim, sha, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(fstatat(d, paths[i], &sb, AT_SYMLINK_NOFOLLOW), 0);
		assert_int_equal(sb.st_uid, 4321);
		assert_int_equal(sb.st_gid, 8765);
	}
	close(d);
	mbuf_free(&h.m);
}

/* Cut anywhere, the stream is refused; corrupt it anywhere, nothing escapes. */
static void
test_truncated_and_corrupt(void **state)
{
	struct arc_limits lim = default_limits();
	struct arc_stats st;
	struct mbuf m;
	unsigned char sha[32], cid[32], *copy;
	char err[256];
	size_t cuts[64], ncuts = 0, i, off;
	int v, d, sent, bit;

	(void)state;
	v = fresh_dir("vault");
	mk_dir(v, "d", 0755);
	mk_file(v, "d/f", "0123456789", 10, 0600, 1700000000, 17);
	mk_file(v, "g", "abc", 3, 0644, 1700000000, 0);
	mk_link(v, "l", "g", 1, 0);
	create_ok(v, key1, &m, sha, cid, NULL);
	close(v);

	cuts[ncuts++] = 0;
	cuts[ncuts++] = 1;
	cuts[ncuts++] = 100;
	for (off = 511; off + 2 <= m.len; off += 512) {
		cuts[ncuts++] = off;
		cuts[ncuts++] = off + 1;
		cuts[ncuts++] = off + 2;
		if (ncuts + 3 > sizeof(cuts) / sizeof(cuts[0]))
			break;
	}
	cuts[ncuts - 1] = m.len - 1;
	for (i = 0; i < ncuts; i++) {
		d = stage_in_sentinel(&sent);
		if (extract_buf(m.p, cuts[i], 0, d, &lim, sha, &st, err, sizeof(err)) != -1)
			fail_msg("cut at %zu of %zu was accepted", cuts[i], m.len);
		assert_true(err[0] != '\0');
		assert_sentinel_clean(sent);
		close(d);
		close(sent);
	}
	/* Cut exactly at an entry boundary: libarchive alone would call that the end. */
	d = stage_in_sentinel(&sent);
	assert_int_equal(extract_buf(m.p, m.len - 1024, 0, d, &lim, sha, &st, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "truncated archive: no end-of-archive marker");
	close(d);
	close(sent);
	d = stage_in_sentinel(&sent);
	assert_int_equal(extract_buf(m.p, m.len - 512, 0, d, &lim, sha, &st, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "truncated archive: no end-of-archive marker");
	close(d);
	close(sent);

	/* A source failure is reported as such. */
	{
		struct msrc s;

		d = stage_in_sentinel(&sent);
		memset(&s, 0, sizeof(s));
		s.p = m.p;
		s.len = m.len;
		s.step = 512;
		s.fail_at = 1024;
		assert_int_equal(arc_extract(msrc_read, &s, d, &lim, sha, &st, err,
		    sizeof(err)), -1);
		assert_string_equal(err, "reading the archive: injected read failure");
		close(d);
		close(sent);
	}

	/* Bit flips over the headers: accepted or refused, never outside the stage. */
	copy = malloc(m.len);
	assert_non_null(copy);
	for (off = 0; off < m.len && off < 4096; off++) {
		bit = (int)(off * 7 % 8);
		memcpy(copy, m.p, m.len);
		copy[off] ^= (unsigned char)(1u << bit);
		d = stage_in_sentinel(&sent);
		(void)extract_buf(copy, m.len, 0, d, &lim, sha, &st, err, sizeof(err));
		assert_sentinel_clean(sent);
		close(d);
		close(sent);
	}
	free(copy);

	/* Trailing zeros (a tar record's padding) are fine and hashed. */
	{
		static const unsigned char zero[10240];
		unsigned char ref[32];

		mbuf_write(&m, zero, sizeof(zero));
		d = fresh_dir("stage");
		if (extract_buf(m.p, m.len, 0, d, &lim, sha, &st, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		sha256_of(m.p, m.len, ref);
		assert_memory_equal(sha, ref, 32);
		close(d);
	}

	/* Not a tar at all. */
	d = stage_in_sentinel(&sent);
	assert_int_equal(extract_buf("hello world, this is not a tar file", 35, 0, d, &lim,
	    sha, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "tar: "));
	close(d);
	close(sent);
	mbuf_free(&m);
}

static void
test_link_rule(void **state)
{
	(void)state;
	assert_true(arc_link_inside("a", 0));
	assert_true(arc_link_inside(".", 0));
	assert_true(arc_link_inside("./a/./b/", 0));
	assert_true(arc_link_inside("a//b", 0));
	assert_true(arc_link_inside("..", 1));
	assert_true(arc_link_inside("../../x", 2));
	assert_true(arc_link_inside("./../x", 1));
	assert_false(arc_link_inside("", 5));
	assert_false(arc_link_inside("/etc", 5));
	assert_false(arc_link_inside("..", 0));
	assert_false(arc_link_inside("../../x", 1));
	assert_false(arc_link_inside("a/..", 3));
	assert_false(arc_link_inside("a/../b", 3));
	assert_false(arc_link_inside("../a/../b", 3));
	assert_false(arc_link_inside("tab\there", 0));
}

static void
test_printable(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(arc_printable("plain", buf, sizeof(buf)), "plain");
	assert_string_equal(arc_printable("a\nb\xff", buf, sizeof(buf)), "a\\x0ab\\xff");
	assert_string_equal(arc_printable("0123456789abcdef", buf, sizeof(buf)),
	    "012345678...");
}

static int
setup(void **state)
{
	(void)state;
	umask(022);
	snprintf(base, sizeof(base), "/tmp/test_archive.XXXXXX");
	if (mkdtemp(base) == NULL)
		return -1;
	if ((basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if ((big = malloc(BIG_LEN)) == NULL || RAND_bytes(big, BIG_LEN) != 1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int fd;

	(void)state;
	free(big);
	close(basefd);
	if ((fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rm_rf_at(fd, base + strlen("/tmp/"));
		close(fd);
	}
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_rule),
		cmocka_unit_test(test_printable),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_roundtrip_bytewise),
		cmocka_unit_test(test_tar_interop),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_empty_vault),
		cmocka_unit_test(test_create_skips),
		cmocka_unit_test(test_create_limits),
		cmocka_unit_test(test_create_sink_failure),
		cmocka_unit_test(test_create_changing_files),
		cmocka_unit_test(test_age_adapter),
		cmocka_unit_test(test_hostile_paths),
		cmocka_unit_test(test_hostile_types),
		cmocka_unit_test(test_hostile_limits),
		cmocka_unit_test(test_hostile_links),
		cmocka_unit_test(test_hostile_duplicates),
		cmocka_unit_test(test_dir_modes),
		cmocka_unit_test(test_chown),
		cmocka_unit_test(test_truncated_and_corrupt),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
