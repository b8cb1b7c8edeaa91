/*
 * The stat scan and the change check's comparison (parent/treedigest.c):
 * the digest follows every change of name, type, mode, size, inode, owner,
 * times and link target; an entry stamped within the granularity of the
 * last save's start is racy even when the digest is equal; and 1,000 rounds
 * of random edits against a model of the tree never leave a change behind
 * a verdict of "unchanged" (edits right after a save, in the same timestamp
 * tick, and rewrites with the size and mtime put back among them).  The
 * tar writer's view of what it read equals the scan's of the same tree,
 * whatever the tree holds, and differs once an entry changed after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <sys/socket.h>
#include <sys/un.h>

#include "archive.h"
#include "clock.h"
#include "treedigest.h"

static char root[256];

static void
make_root(void)
{
	snprintf(root, sizeof(root), "/dev/shm/vs-treescan-XXXXXX");
	if (mkdtemp(root) == NULL) {
		snprintf(root, sizeof(root), "/tmp/vs-treescan-XXXXXX");
		assert_non_null(mkdtemp(root));
	}
}

static void
remove_root(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

static void
path_of(char *buf, size_t n, const char *rel)
{
	snprintf(buf, n, "%s/%s", root, rel);
}

static void
put(const char *rel, const char *data, size_t len)
{
	char p[512];
	int fd;

	path_of(p, sizeof(p), rel);
	assert_true((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static uint64_t
digest_now(void)
{
	struct tree_scan s;

	assert_int_equal(tree_scan(root, 0, &s), 0);
	assert_int_equal(s.errors, 0);
	return s.digest;
}

/* Each kind of change moves the digest; an unchanged tree keeps it. */
static void
test_digest_follows_changes(void **state)
{
	char p[512], q[512];
	uint64_t d;
	struct tree_scan s;

	(void)state;
	make_root();
	path_of(p, sizeof(p), "sub");
	assert_int_equal(mkdir(p, 0700), 0);
	put("sub/a", "one", 3);
	put("b", "two", 3);
	path_of(p, sizeof(p), "l");
	assert_int_equal(symlink("b", p), 0);
	d = digest_now();
	assert_int_equal(digest_now(), d);
	assert_int_equal(tree_scan(root, 0, &s), 0);
	assert_int_equal(s.entries, 4);
	assert_int_equal(s.racy, 0);

	put("sub/a", "ONE", 3);				/* same size */
	assert_int_not_equal(digest_now(), d);
	d = digest_now();
	path_of(p, sizeof(p), "b");
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_not_equal(digest_now(), d);
	d = digest_now();
	path_of(p, sizeof(p), "l");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("x", p), 0);		/* same length target */
	assert_int_not_equal(digest_now(), d);
	d = digest_now();
	path_of(p, sizeof(p), "sub/a");
	path_of(q, sizeof(q), "sub/c");
	assert_int_equal(rename(p, q), 0);
	assert_int_not_equal(digest_now(), d);
	d = digest_now();
	assert_int_equal(unlink(q), 0);
	assert_int_not_equal(digest_now(), d);
	/* No root: no digest. */
	assert_int_equal(tree_scan("/nonexistent/vs-treescan", 0, &s), -1);
	assert_int_equal(s.digest, 0);
	remove_root();
}

/* The racy rule: equal digests do not hide an entry stamped after the save began. */
static void
test_racy_entries_count_as_changed(void **state)
{
	struct chg_base base;
	struct tree_scan s;
	struct stat st;
	char p[512];
	int64_t gran = tree_time_granularity_ns(), ct;

	(void)state;
	assert_true(gran >= 2000000);
	make_root();
	put("f", "data", 4);
	path_of(p, sizeof(p), "f");
	assert_int_equal(stat(p, &st), 0);
	ct = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	/* A save that began in the same timestamp tick as the file's last change. */
	assert_int_equal(tree_scan(root, 0, &s), 0);
	base.digest = s.digest;
	base.entries = s.entries;
	base.start_ns = ct + gran / 4;
	assert_int_equal(tree_scan(root, base.start_ns - gran, &s), 0);
	assert_true(s.racy >= 1);
	assert_int_equal(tree_compare(&base, &s), CHG_RACY);
	/* A save that began well after it: nothing racy, nothing changed. */
	base.start_ns = ct + 10 * gran;
	assert_int_equal(tree_scan(root, base.start_ns - gran, &s), 0);
	assert_int_equal(s.racy, 0);
	assert_int_equal(tree_compare(&base, &s), CHG_UNCHANGED);
	/* A different digest or count is a change whatever the times. */
	base.digest ^= 1;
	assert_int_equal(tree_compare(&base, &s), CHG_DIFFERS);
	base.digest ^= 1;
	base.entries++;
	assert_int_equal(tree_compare(&base, &s), CHG_DIFFERS);
	remove_root();
}

/* ---- the model ---- */

#define NSLOTS		40
#define MAXLEN		24

enum { ABSENT = 0, FILE_T, LINK_T };

struct slot {
	int type;
	mode_t mode;
	size_t len;
	char data[MAXLEN];	/* a file's bytes, or a link's target (NUL-terminated) */
};

static const char *const dirs[] = { "a", "a/b", "c" };

static void
slot_name(int i, char *buf, size_t n)
{
	static const char *const where[] = { "", "a/", "a/b/", "c/" };

	snprintf(buf, n, "%s/%sn%02d", root, where[i % 4], i);
}

static void
random_bytes(char *d, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		d[i] = (char)('a' + rand() % 26);
}

static void
write_file(const char *p, const char *d, size_t n, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, d, n), (ssize_t)n);
	close(fd);
}

static void
set_mtime(const char *p, const struct stat *old)
{
	struct timespec t[2] = { old->st_atim, old->st_mtim };

	assert_int_equal(utimensat(AT_FDCWD, p, t, AT_SYMLINK_NOFOLLOW), 0);
}

/* One random edit of the tree and the model. */
static void
edit(struct slot *m)
{
	int i = rand() % NSLOTS, j = rand() % NSLOTS;
	char p[512], q[512], tmp[520];
	struct slot *s = &m[i];
	struct stat st;

	slot_name(i, p, sizeof(p));
	switch (rand() % 9) {
	case 0:		/* create, or rewrite with a new size */
	case 1:
		if (s->type == LINK_T)
			assert_int_equal(unlink(p), 0);
		s->type = FILE_T;
		s->len = (size_t)(rand() % MAXLEN);
		random_bytes(s->data, s->len);
		if (s->mode == 0)
			s->mode = 0600;
		write_file(p, s->data, s->len, s->mode);
		break;
	case 2:		/* the same size, one byte changed; half the time the mtime put back */
	case 3:
		if (s->type != FILE_T || s->len == 0)
			break;
		assert_int_equal(lstat(p, &st), 0);
		s->data[rand() % s->len] = (char)('A' + rand() % 26);
		write_file(p, s->data, s->len, s->mode);
		if (rand() % 2)
			set_mtime(p, &st);		/* touch -d back to the old time */
		break;
	case 4:		/* replaced by rename, same size and mtime */
		if (s->type != FILE_T || s->len == 0)
			break;
		assert_int_equal(lstat(p, &st), 0);
		s->data[rand() % s->len] ^= 1;
		snprintf(tmp, sizeof(tmp), "%s.new", p);
		write_file(tmp, s->data, s->len, s->mode);
		assert_int_equal(chmod(tmp, s->mode), 0);
		set_mtime(tmp, &st);
		assert_int_equal(rename(tmp, p), 0);
		break;
	case 5:		/* delete */
		if (s->type == ABSENT)
			break;
		assert_int_equal(unlink(p), 0);
		memset(s, 0, sizeof(*s));
		break;
	case 6:		/* rename to a free slot */
		if (s->type == ABSENT || m[j].type != ABSENT)
			break;
		slot_name(j, q, sizeof(q));
		assert_int_equal(rename(p, q), 0);
		m[j] = *s;
		memset(s, 0, sizeof(*s));
		break;
	case 7:		/* chmod */
		if (s->type != FILE_T)
			break;
		s->mode = s->mode == 0600 ? 0640 : 0600;
		assert_int_equal(chmod(p, s->mode), 0);
		break;
	case 8:		/* a symlink (re)pointed, its target the same length */
		if (s->type == FILE_T)
			break;
		if (s->type == LINK_T)
			assert_int_equal(unlink(p), 0);
		s->type = LINK_T;
		s->mode = 0;
		snprintf(s->data, sizeof(s->data), "t%d", rand() % 10);
		s->len = strlen(s->data);
		assert_int_equal(symlink(s->data, p), 0);
		break;
	}
}

static int
same_model(const struct slot *a, const struct slot *b)
{
	int i;

	for (i = 0; i < NSLOTS; i++) {
		if (a[i].type != b[i].type)
			return 0;
		if (a[i].type == ABSENT)
			continue;
		if (a[i].len != b[i].len || memcmp(a[i].data, b[i].data, a[i].len) != 0 ||
		    (a[i].type == FILE_T && a[i].mode != b[i].mode))
			return 0;
	}
	return 1;
}

static void
test_random_edits_never_missed(void **state)
{
	struct slot model[NSLOTS], saved[NSLOTS];
	struct chg_base base;
	struct tree_scan s;
	int64_t gran = tree_time_granularity_ns();
	int round, k, n_unchanged = 0, n_racy = 0, n_changed = 0;
	unsigned seed = (unsigned)time(NULL);
	char p[512];
	size_t d;

	(void)state;
	if (getenv("VS_TEST_SEED") != NULL)
		seed = (unsigned)strtoul(getenv("VS_TEST_SEED"), NULL, 10);
	srand(seed);
	print_message("seed %u (VS_TEST_SEED)\n", seed);
	make_root();
	for (d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		path_of(p, sizeof(p), dirs[d]);
		assert_int_equal(mkdir(p, 0700), 0);
	}
	memset(model, 0, sizeof(model));
	/* The first save. */
	base.start_ns = wall_ns();
	assert_int_equal(tree_scan(root, 0, &s), 0);
	base.digest = s.digest;
	base.entries = s.entries;
	memcpy(saved, model, sizeof(saved));
	for (round = 0; round < 1000; round++) {
		enum chg_verdict v;

		/* Now and then let time pass, so that both regimes come up. */
		if (rand() % 2 == 0)
			usleep((useconds_t)(rand() % 8000));
		for (k = rand() % 2 ? 0 : 1 + rand() % 3; k > 0; k--)
			edit(model);
		assert_int_equal(tree_scan(root, base.start_ns - gran, &s), 0);
		v = tree_compare(&base, &s);
		if (v == CHG_UNCHANGED) {
			if (!same_model(model, saved))
				fail_msg("round %d (seed %u): a change was missed", round, seed);
			n_unchanged++;
			continue;
		}
		assert_true(v == CHG_DIFFERS || v == CHG_RACY);
		n_racy += v == CHG_RACY;
		n_changed++;
		/* The save: its start read first, then its scan, then the contents. */
		base.start_ns = wall_ns();
		assert_int_equal(tree_scan(root, 0, &s), 0);
		base.digest = s.digest;
		base.entries = s.entries;
		memcpy(saved, model, sizeof(saved));
		/* Half the time, an edit at once: the same timestamp tick as the save's start. */
		if (rand() % 2)
			edit(model);
	}
	print_message("%d unchanged, %d saved (%d of them racy)\n", n_unchanged, n_changed, n_racy);
	assert_true(n_unchanged >= 50);
	assert_true(n_changed >= 50);
	remove_root();
}

static int
discard(void *arg, const void *buf, size_t len)
{
	(void)arg;
	(void)buf;
	(void)len;
	return 0;
}

static uint64_t
writer_view(struct arc_stats *st)
{
	unsigned char key[32] = { 0 }, sha[32], cid[32];
	char err[256];
	int fd;

	assert_true((fd = open(root, O_RDONLY | O_DIRECTORY)) >= 0);
	assert_int_equal(arc_create(fd, discard, NULL, key, sha, cid, st, err, sizeof(err)), 0);
	close(fd);
	return tree_view_digest(&st->view);
}

/*
 * What the save compares after the archive: the writer's view of every
 * entry, kept or skipped, against the scan.  Equal for an unchanged tree of
 * every kind of entry; different after any change the writer did not see.
 */
static void
test_writer_view_equals_the_scan(void **state)
{
	struct sockaddr_un sa;
	struct arc_stats st;
	struct tree_scan s;
	char p[512];
	uint64_t d;
	int i, fd;

	(void)state;
	make_root();
	path_of(p, sizeof(p), "d");
	assert_int_equal(mkdir(p, 0700), 0);
	path_of(p, sizeof(p), "d/empty");
	assert_int_equal(mkdir(p, 0755), 0);
	for (i = 0; i < 300; i++) {		/* enough directories for both scan threads */
		char rel[64];

		snprintf(rel, sizeof(rel), "d/s%03d", i);
		path_of(p, sizeof(p), rel);
		assert_int_equal(mkdir(p, 0700), 0);
		snprintf(rel, sizeof(rel), "d/s%03d/f", i);
		put(rel, rel, strlen(rel));
	}
	put("plain", "x", 1);
	put("setuid", "y", 1);
	path_of(p, sizeof(p), "setuid");
	assert_int_equal(chmod(p, 04755), 0);
	put("ctl\001name", "z", 1);
	path_of(p, sizeof(p), "in");
	assert_int_equal(symlink("plain", p), 0);
	path_of(p, sizeof(p), "out");
	assert_int_equal(symlink("../../etc/passwd", p), 0);
	path_of(p, sizeof(p), "d/up");
	assert_int_equal(symlink("../plain", p), 0);
	path_of(p, sizeof(p), "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true(strlen(root) + 6 < sizeof(sa.sun_path));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.90s/sock", root);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	d = writer_view(&st);
	assert_true(st.skipped >= 5);	/* setuid, control name, outside link, fifo, socket */
	assert_int_equal(tree_scan(root, 0, &s), 0);
	assert_int_equal(s.errors, 0);
	assert_int_equal(s.entries, 300 * 2 + 3 + 7);	/* d/s*, their files, d, empty, up; 7 */
	assert_int_equal(st.view.entries, s.entries + 1);
	assert_true(s.digest == d);

	put("d/s150/f", "changed!", 8);		/* after the writer read it */
	assert_int_equal(tree_scan(root, 0, &s), 0);
	assert_true(s.digest != d);
	assert_true(writer_view(&st) == s.digest);
	path_of(p, sizeof(p), "ctl\001name");		/* a skipped entry changes too */
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(tree_scan(root, 0, &s), 0);
	assert_true(s.digest != d && s.digest != tree_view_digest(&st.view));
	close(fd);
	remove_root();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_follows_changes),
		cmocka_unit_test(test_racy_entries_count_as_changed),
		cmocka_unit_test(test_random_edits_never_missed),
		cmocka_unit_test(test_writer_view_equals_the_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
