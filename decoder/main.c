/*
 * vaultsync-decoder: opens one archive for the parent.  Everything that
 * parses bytes from a remote or a disk runs here, confined: identity.age is
 * decrypted with the passphrase (the scrypt work factor capped), the
 * archive decrypted with the identity, the tar parsed, and each entry sent
 * back as a fixed-format message with a file's bytes on the data pipe.  The
 * parent checks every entry again and alone writes the tree.  One archive
 * per process: it exits when it is done, and the identity dies with it.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "age.h"
#include "agescan.h"
#include "agescrypt.h"
#include "archive.h"
#include "child.h"
#include "decoder.h"
#include "log.h"
#include "secbuf.h"

#define IDENTITY_MAX	4096		/* identity.age, and its plaintext */

static struct child c;
static uint64_t archive_size;	/* fd 5's, taken before the sandbox closes */

static void
send_end(int ok, uint32_t stage, const unsigned char *sha, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
send_end(int ok, uint32_t stage, const unsigned char *sha, const char *fmt, ...)
{
	struct msg_dec_end m;
	va_list ap;

	memset(&m, 0, sizeof(m));
	m.ok = ok ? 1 : 0;
	m.stage = stage;
	if (sha != NULL)
		memcpy(m.sha256, sha, sizeof(m.sha256));
	va_start(ap, fmt);
	(void)vsnprintf(m.msg, sizeof(m.msg), fmt, ap);
	va_end(ap);
	/* A data pipe left open would make the parent wait for bytes that never come. */
	close(DEC_FD_DATA);
	if (child_send(&c, MSG_DEC_END, &m, sizeof(m)) != 0)
		fatal("send END");
}

static ssize_t
fd_read(void *arg, void *buf, size_t len)
{
	ssize_t n;

	do {
		n = read(*(int *)arg, buf, len);
	} while (n == -1 && errno == EINTR);
	return n;
}

/* identity.age → one identity; 0, or -1 after END has said why. */
static int
open_identity(struct msg_dec_start *st, struct age_identity *id)
{
	unsigned char buf[IDENTITY_MAX + 1];
	struct age_keys k;
	struct age_err ae;
	struct secbuf text;
	size_t len = 0, n = 0;
	ssize_t r;
	int fd = DEC_FD_IDENTITY, rc;

	while (len < sizeof(buf) && (r = fd_read(&fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)r;
	if (len > IDENTITY_MAX) {
		send_end(0, DEC_STAGE_IDENTITY, NULL, "identity.age is larger than %d bytes",
		    IDENTITY_MAX);
		return -1;
	}
	memset(&k, 0, sizeof(k));
	k.pass = (const unsigned char *)st->pass;
	k.passlen = st->passlen;
	k.max_logn = (int)st->max_logn;
	ae.msg[0] = '\0';
	rc = age_decrypt_to_secbuf(buf, len, &k, IDENTITY_MAX, &text, &ae);
	explicit_bzero(st->pass, sizeof(st->pass));
	if (rc != 0) {
		send_end(0, DEC_STAGE_IDENTITY, NULL, "cannot decrypt identity.age: %s", ae.msg);
		return -1;
	}
	rc = age_identity_parse_file((const char *)text.p, text.len, id, 1, &n, &ae);
	secbuf_free(&text);
	if (rc != 0 || n != 1) {
		send_end(0, DEC_STAGE_IDENTITY, NULL, "identity.age does not hold one identity: %s",
		    ae.msg);
		return -1;
	}
	return 0;
}

/* Each entry as a message, a file's bytes after it on the pipe. */
static int
send_entry(void *arg, const struct arc_entry *e, arc_data_fn data, void *darg, char *why,
    size_t whylen)
{
	struct msg_dec_entry m;
	const void *buf;
	ssize_t n;

	(void)arg;
	memset(&m, 0, sizeof(m));
	m.type = e->type == ARC_DIR ? DEC_DIR : e->type == ARC_FILE ? DEC_FILE : DEC_SYMLINK;
	m.perm = (uint32_t)e->perm;
	m.has_mtime = e->has_mtime ? 1 : 0;
	if (e->has_mtime) {
		m.mtime_sec = (int64_t)e->mtime.tv_sec;
		m.mtime_nsec = (int64_t)e->mtime.tv_nsec;
	}
	m.size = e->size;
	if (strlen(e->name) >= sizeof(m.name) ||
	    (e->link != NULL && strlen(e->link) >= sizeof(m.link))) {
		arc_seterr(why, whylen, "name too long");
		return -1;
	}
	msg_strlcpy(m.name, e->name, sizeof(m.name));
	if (e->type == ARC_SYMLINK)
		msg_strlcpy(m.link, e->link, sizeof(m.link));
	if (child_send(&c, MSG_DEC_ENTRY, &m, sizeof(m)) != 0) {
		arc_seterr(why, whylen, "send entry: %s", strerror(errno));
		return -1;
	}
	if (e->type != ARC_FILE)
		return 0;
	while ((n = data(darg, &buf, why, whylen)) > 0)
		if (dataout_write(buf, (size_t)n) != 0) {
			arc_seterr(why, whylen, "the parent stopped reading: %s", strerror(errno));
			return -1;
		}
	return n == 0 ? 0 : -1;
}

static void
decode_archive(const struct msg_dec_start *st, const struct age_identity *id)
{
	unsigned char sha[32];
	char err[512];
	struct arc_limits lim;
	struct arc_entry_sink sink;
	struct digest_src *ds;
	struct age_reader *r;
	struct age_keys k;
	struct age_err ae;
	int fd = DEC_FD_ARCHIVE;

	memset(&k, 0, sizeof(k));
	k.ids = id;
	k.nids = 1;
	ae.msg[0] = '\0';
	if ((r = age_reader_new(fd_read, &fd, &k, &ae)) == NULL) {
		send_end(0, DEC_STAGE_ARCHIVE, NULL, "%s", ae.msg);
		return;
	}
	if ((ds = digest_src_new(r)) == NULL) {
		send_end(0, DEC_STAGE_ARCHIVE, NULL, "out of memory");
		age_reader_free(r);
		return;
	}
	(void)dataout_open(DEC_FD_DATA);
	memset(&lim, 0, sizeof(lim));
	lim.max_total_bytes = st->max_total_bytes;
	lim.max_entry_bytes = st->max_total_bytes;
	lim.max_entries = st->max_entries;
	sink.entry = send_entry;
	sink.arg = NULL;
	err[0] = '\0';
	/* The digest is the source's: arc_parse reads it to its end either way. */
	if (arc_parse(digest_src_read, ds, &lim, &sink, NULL, err, sizeof(err)) != 0)
		send_end(0, DEC_STAGE_ARCHIVE, NULL, "%s", err);
	else if (digest_src_finish(ds, sha) != 0)
		send_end(0, DEC_STAGE_ARCHIVE, NULL, "hashing the archive failed");
	else
		send_end(1, DEC_STAGE_ARCHIVE, sha, "ok");
	digest_src_free(ds);
	age_reader_free(r);
}

static int
is_open(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0;
}

/*
 * The restore drill's look at a downloaded object: its age structure, with
 * no key.  fd 5 is a read-only description at offset 0; the object's length
 * came from fstat.
 */
static void
scan_only(void)
{
	static unsigned char head[AGE_HEADER_MAX];
	struct agescan sc;
	char why[160];
	size_t len = 0;
	ssize_t r;
	int fd = DEC_FD_ARCHIVE;

	while (len < sizeof(head) && (r = fd_read(&fd, head + len, sizeof(head) - len)) > 0)
		len += (size_t)r;
	if (len < sizeof(head) && (uint64_t)len != archive_size) {
		send_end(0, DEC_STAGE_ARCHIVE, NULL, "read %zu of %llu bytes of the object", len,
		    (unsigned long long)archive_size);
		return;
	}
	if (agescan(head, len, archive_size, &sc, why, sizeof(why)) == 0)
		send_end(1, DEC_STAGE_SCAN, NULL, "a well-formed age file, %u recipient "
		    "stanza(s), %llu chunk(s)", sc.nstanzas, (unsigned long long)sc.chunks);
	else
		send_end(0, DEC_STAGE_SCAN, NULL, "not a well-formed age file: %s", why);
}

int
main(int argc, char **argv)
{
	struct msg_dec_ready ready;
	struct age_identity id;
	struct msg m;
	char err[256];

	if (child_begin(&c, ROLE_DECODER, &decoder_policy, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "vaultsync-decoder: %s\n", err);
		exit(64);
	}
	if (!is_open(DEC_FD_ARCHIVE) || !is_open(DEC_FD_IDENTITY) || !is_open(DEC_FD_DATA))
		fatalx("fds %d, %d and %d are not open: this program is started by vaultsyncd",
		    DEC_FD_ARCHIVE, DEC_FD_IDENTITY, DEC_FD_DATA);
	{
		struct stat st;

		if (fstat(DEC_FD_ARCHIVE, &st) == 0 && S_ISREG(st.st_mode))
			archive_size = (uint64_t)st.st_size;
	}
	/* A parent that stops reading is an error to report, not a signal to die of. */
	signal(SIGPIPE, SIG_IGN);
	if (child_sandbox(&c, err, sizeof(err)) != 0)
		fatal_code(CHILD_EXIT_SANDBOX, "sandbox: %s", err);
	if (child_hello(&c, err, sizeof(err)) != 0)
		fatalx("%s", err);
	if (child_recv(&c, &m, 10000, err, sizeof(err)) != 0)
		fatalx("%s", err);
	if (m.hdr.type != MSG_DEC_START)
		fatalx("unexpected %s from parent", msg_type_name(m.hdr.type));
	if (m.u.dstart.flags & DEC_F_SCAN) {
		scan_only();
		return 0;
	}
	age_scrypt_huge_room((uint64_t)m.u.dstart.huge_mib << 20);
	memset(&id, 0, sizeof(id));
	if (open_identity(&m.u.dstart, &id) != 0)
		exit(0);
	memset(&ready, 0, sizeof(ready));
	if (child_send(&c, MSG_DEC_READY, &ready, sizeof(ready)) != 0)
		fatal("send READY");
	if (m.u.dstart.flags & DEC_F_IDENTITY_ONLY)
		send_end(1, DEC_STAGE_IDENTITY, NULL, "ok");
	else
		decode_archive(&m.u.dstart, &id);
	age_identity_free(&id);
	return 0;
}
