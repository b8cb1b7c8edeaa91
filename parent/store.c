#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "store.h"

void
store_dir(const struct cfg *c, const struct cfg_vault *v, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", c->state_dir, v->name);
}

void
store_file(const char *dir, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

int
store_exists(const char *dir, const char *name)
{
	char p[STORE_PATH_MAX];
	struct stat st;

	store_file(dir, name, p, sizeof(p));
	return lstat(p, &st) == 0;
}

int
store_mkdir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s must be a directory owned by uid %u with mode 0700",
		    dir, (unsigned)geteuid());
		return -1;
	}
	return 0;
}

int
store_sync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
store_write_atomic(const char *dir, const char *name, const void *data, size_t len, int mode,
    char *err, size_t errlen)
{
	char tmp[STORE_PATH_MAX], dst[STORE_PATH_MAX];
	const char *p = data;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", dir, name, (int)getpid());
	store_file(dir, name, dst, sizeof(dst));
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)) == -1) {
		snprintf(err, errlen, "create %s: %s", tmp, strerror(errno));
		return -1;
	}
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	if (rename(tmp, dst) != 0 || store_sync_dir(dir) != 0) {
		snprintf(err, errlen, "rename %s: %s", dst, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
fail:
	snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

int
store_read_small(const char *dir, const char *name, size_t max, char **out, size_t *len,
    char *err, size_t errlen)
{
	char p[STORE_PATH_MAX];
	struct stat st;
	size_t got = 0;
	char *buf;
	int fd;

	store_file(dir, name, p, sizeof(p));
	if ((fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "open %s: %s", p, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", p, max);
		close(fd);
		return -1;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

int
store_state_read(const char *dir, struct vault_saved *s)
{
	char *buf, *line, *save = NULL, err[256];
	size_t len;

	memset(s, 0, sizeof(*s));
	if (store_read_small(dir, "state", 4096, &buf, &len, err, sizeof(err)) != 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (eq == NULL)
			continue;
		*eq++ = '\0';
		if (strcmp(line, "sha256") == 0 && strlen(eq) == 64)
			memcpy(s->sha256, eq, 65);
		else if (strcmp(line, "content_id") == 0 && strlen(eq) == 64)
			memcpy(s->content_id, eq, 65);
		else if (strcmp(line, "etag") == 0 && strlen(eq) < sizeof(s->etag))
			memcpy(s->etag, eq, strlen(eq) + 1);
		else if (strcmp(line, "dirty") == 0)
			s->dirty = strcmp(eq, "1") == 0;
		else if (strcmp(line, "saved_at") == 0)
			s->saved_at = strtoll(eq, NULL, 10);
		else if (strcmp(line, "archive_bytes") == 0)
			s->archive_bytes = strtoull(eq, NULL, 10);
	}
	free(buf);
	return 0;
}

int
store_state_write(const char *dir, const struct vault_saved *s, char *err, size_t errlen)
{
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf), "sha256=%s\ncontent_id=%s\netag=%s\ndirty=%d\n"
	    "saved_at=%lld\narchive_bytes=%llu\n", s->sha256, s->content_id, s->etag, s->dirty,
	    (long long)s->saved_at, (unsigned long long)s->archive_bytes);
	return store_write_atomic(dir, "state", buf, (size_t)n, 0600, err, errlen);
}

int
store_key_load(const char *dir, unsigned char key[32], int create, char *err, size_t errlen)
{
	char *buf;
	size_t len;

	if (store_read_small(dir, "key", 64, &buf, &len, err, errlen) == 0) {
		int ok = len == 32;

		if (ok)
			memcpy(key, buf, 32);
		explicit_bzero(buf, len);
		free(buf);
		if (!ok)
			snprintf(err, errlen, "%s/key: not 32 bytes", dir);
		return ok ? 0 : -1;
	}
	if (!create)
		return -1;
	if (getrandom(key, 32, 0) != 32) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	return store_write_atomic(dir, "key", key, 32, 0600, err, errlen);
}

int
store_recipients(const struct cfg_vault *v, const char *dir, struct age_recipient *r,
    size_t *n, char *err, size_t errlen)
{
	struct age_err ae;
	char *buf;
	size_t len, i;

	*n = 0;
	if (store_read_small(dir, "recipient", 256, &buf, &len, err, errlen) != 0)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	if (age_recipient_parse(buf, &r[0], &ae) != 0) {
		snprintf(err, errlen, "%s/recipient: %s", dir, ae.msg);
		free(buf);
		return -1;
	}
	free(buf);
	*n = 1;
	for (i = 0; i < v->nrecipients && *n < STORE_MAX_RECIPIENTS; i++) {
		if (age_recipient_parse(v->recipients[i], &r[*n], &ae) != 0) {
			snprintf(err, errlen, "vault %s: Recipient %s: %s", v->name,
			    v->recipients[i], ae.msg);
			return -1;
		}
		(*n)++;
	}
	return 0;
}

/* Values are ours or a server's ETag / upload id: one line each, no '\n' inside. */
static int
line_ok(const char *s)
{
	return strchr(s, '\n') == NULL;
}

int
store_remote_read(const char *dir, struct vault_remote *r)
{
	char *buf, *line, *save = NULL, err[256];
	size_t len;

	memset(r, 0, sizeof(*r));
	if (store_read_small(dir, "remote", 4096, &buf, &len, err, sizeof(err)) != 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (eq == NULL)
			continue;
		*eq++ = '\0';
#define STR(name) else if (strcmp(line, #name) == 0 && strlen(eq) < sizeof(r->name)) \
		memcpy(r->name, eq, strlen(eq) + 1)
#define INT(name) else if (strcmp(line, #name) == 0) r->name = strtoll(eq, NULL, 10)
		if (0)
			;
		STR(etag);
		STR(pushed_sha256);
		STR(mpu_key);
		STR(mpu_id);
		STR(ours);
		INT(conflict);
		INT(identity_pushed);
		INT(weak_cas);
		INT(last_push_at);
		INT(last_ok_push_at);
		INT(history_at);
		else if (strcmp(line, "uploaded_bytes") == 0)
			r->uploaded_bytes = strtoull(eq, NULL, 10);
		else if (strcmp(line, "doubt") == 0) {
			char *c, *cs = NULL;
			int i = 0;

			for (c = strtok_r(eq, ",", &cs); c != NULL && i < STORE_DOUBT;
			    c = strtok_r(NULL, ",", &cs))
				if (strlen(c) == 16 && strspn(c, "0123456789abcdef") == 16)
					memcpy(r->doubt[i++], c, 17);
		}
#undef STR
#undef INT
	}
	free(buf);
	return 0;
}

int
store_remote_write(const char *dir, const struct vault_remote *r, char *err, size_t errlen)
{
	char buf[3072], doubt[STORE_DOUBT * 17 + 1];
	size_t i;
	int n;

	if (!line_ok(r->etag) || !line_ok(r->mpu_key) || !line_ok(r->mpu_id) ||
	    !line_ok(r->ours)) {
		snprintf(err, errlen, "refusing to write a value with a newline");
		return -1;
	}
	doubt[0] = '\0';
	for (i = 0; i < STORE_DOUBT; i++)
		if (strlen(r->doubt[i]) == 16 && strspn(r->doubt[i], "0123456789abcdef") == 16) {
			if (doubt[0] != '\0')
				strcat(doubt, ",");
			strcat(doubt, r->doubt[i]);
		}
	n = snprintf(buf, sizeof(buf), "etag=%s\npushed_sha256=%s\nconflict=%d\nidentity_pushed=%d\n"
	    "weak_cas=%d\nlast_push_at=%lld\nlast_ok_push_at=%lld\nhistory_at=%lld\n"
	    "uploaded_bytes=%llu\nmpu_key=%s\nmpu_id=%s\nours=%s\ndoubt=%s\n", r->etag,
	    r->pushed_sha256, r->conflict, r->identity_pushed, r->weak_cas,
	    (long long)r->last_push_at, (long long)r->last_ok_push_at, (long long)r->history_at,
	    (unsigned long long)r->uploaded_bytes, r->mpu_key, r->mpu_id, r->ours, doubt);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		snprintf(err, errlen, "remote state too long");
		return -1;
	}
	return store_write_atomic(dir, "remote", buf, (size_t)n, 0600, err, errlen);
}

#define CMP_CHUNK	(64 * 1024)

/* 0 equal, 1 different (*at: the first differing byte), -1 read error. */
int
store_same_bytes(int a, int b, uint64_t n, uint64_t *at)
{
	static unsigned char ba[CMP_CHUNK], bb[CMP_CHUNK];
	uint64_t off = 0;
	size_t i, want;
	ssize_t ra, rb;

	while (off < n) {
		want = n - off < CMP_CHUNK ? (size_t)(n - off) : CMP_CHUNK;
		ra = pread(a, ba, want, (off_t)off);
		rb = pread(b, bb, want, (off_t)off);
		if (ra != (ssize_t)want || rb != (ssize_t)want)
			return -1;
		if (memcmp(ba, bb, want) != 0) {
			for (i = 0; ba[i] == bb[i]; i++)
				;
			*at = off + i;
			return 1;
		}
		off += want;
	}
	return 0;
}
