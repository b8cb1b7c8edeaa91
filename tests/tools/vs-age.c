/*
 * vs-age: the project's age implementation as a command, for tests and
 * interop checks against age(1).  Not installed.
 *
 *   vs-age -e (-r RECIPIENT | -R FILE)...      stdin -> stdout
 *   vs-age -e -p PASSFILE [-N LOGN]
 *   vs-age -d (-i IDENTITYFILE)... | -p PASSFILE [-M MAXLOGN]
 *   vs-age -k                                  new identity file on stdout
 *   vs-age -y -i IDENTITYFILE                  its recipient(s)
 *
 * A passphrase is the first line of PASSFILE without its newline.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "age.h"
#include "agescrypt.h"

#define MAX_IDS		16
#define MAX_RCPTS	AGE_MAX_STANZAS
#define MAX_FILE	(1 << 20)

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("vs-age: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void __attribute__((noreturn))
usage(void)
{
	fputs("usage: vs-age -e (-r RECIPIENT | -R FILE)... | -e -p PASSFILE [-N LOGN]\n"
	    "       vs-age -d (-i IDENTITYFILE)... | -d -p PASSFILE [-M MAXLOGN]\n"
	    "       vs-age -k | -y -i IDENTITYFILE\n", stderr);
	exit(1);
}

/* Whole file into a secbuf: identity and passphrase files are secrets. */
static void
read_secret_file(const char *path, struct secbuf *b)
{
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		die("%s: %s", path, strerror(errno));
	if (secbuf_alloc(b, MAX_FILE) != 0)
		die("cannot allocate secure memory");
	for (;;) {
		n = read(fd, b->p + b->len, b->cap - b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("%s: %s", path, strerror(errno));
		if (n == 0)
			break;
		b->len += (size_t)n;
		if (b->len == b->cap)
			die("%s: file too large", path);
	}
	close(fd);
}

static void
read_passphrase(const char *path, struct secbuf *b)
{
	unsigned char *nl;

	read_secret_file(path, b);
	if ((nl = memchr(b->p, '\n', b->len)) != NULL)
		b->len = (size_t)(nl - b->p);
	if (b->len > 0 && b->p[b->len - 1] == '\r')
		b->len--;
	if (b->len == 0)
		die("%s: empty passphrase", path);
}

static size_t
load_identities(char **paths, size_t npaths, struct age_identity *ids)
{
	struct age_err err = { "" };
	struct secbuf b;
	size_t i, n, total = 0;

	for (i = 0; i < npaths; i++) {
		read_secret_file(paths[i], &b);
		if (age_identity_parse_file((char *)b.p, b.len, ids + total, MAX_IDS - total,
		    &n, &err) != 0)
			die("%s: %s", paths[i], err.msg);
		secbuf_free(&b);
		total += n;
	}
	return total;
}

int
main(int argc, char **argv)
{
	struct age_recipient rcpts[MAX_RCPTS];
	struct age_identity ids[MAX_IDS];
	struct age_err err = { "" };
	struct age_keys keys;
	struct secbuf pass = { 0 }, b;
	char *idfiles[MAX_IDS], *passfile = NULL, *end, line[AGE_RECIPIENT_LEN + 1];
	size_t nr = 0, nidf = 0, nids, n, i;
	int ch, mode = 0, logn = 0, maxlogn = 0, ret;

	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "edkyr:R:i:p:N:M:")) != -1) {
		switch (ch) {
		case 'e': case 'd': case 'k': case 'y':
			if (mode != 0 && mode != ch)
				usage();
			mode = ch;
			break;
		case 'r':
			if (nr == MAX_RCPTS)
				die("too many recipients");
			if (age_recipient_parse(optarg, &rcpts[nr], &err) != 0)
				die("%s", err.msg);
			nr++;
			break;
		case 'R':
			read_secret_file(optarg, &b);
			if (age_recipients_parse_file((char *)b.p, b.len, rcpts + nr,
			    MAX_RCPTS - nr, &n, &err) != 0)
				die("%s: %s", optarg, err.msg);
			secbuf_free(&b);
			nr += n;
			break;
		case 'i':
			if (nidf == MAX_IDS)
				die("too many identity files");
			idfiles[nidf++] = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'N':
		case 'M':
			errno = 0;
			ret = (int)strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || end == optarg || ret < 1 || ret > 40)
				die("bad work factor: %s", optarg);
			*(ch == 'N' ? &logn : &maxlogn) = ret;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || mode == 0)
		usage();

	switch (mode) {
	case 'k':
		if (age_identity_generate(&ids[0], &err) != 0 ||
		    age_identity_format(&ids[0], &b, &err) != 0)
			die("%s", err.msg);
		if (fwrite(b.p, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
			die("write failed");
		secbuf_free(&b);
		age_identity_free(&ids[0]);
		return 0;
	case 'y':
		if (nidf == 0)
			usage();
		nids = load_identities(idfiles, nidf, ids);
		for (i = 0; i < nids; i++) {
			age_identity_to_recipient(&ids[i], &rcpts[0]);
			if (age_recipient_format(&rcpts[0], line, sizeof(line)) != 0)
				die("cannot format recipient");
			printf("%s\n", line);
			age_identity_free(&ids[i]);
		}
		if (fflush(stdout) != 0)
			die("write failed");
		return 0;
	case 'e':
		if ((passfile != NULL) == (nr > 0) || nidf > 0)
			usage();
		if (passfile != NULL) {
			read_passphrase(passfile, &pass);
			/* As the daemon's decoder does, on the parent's word. */
			age_scrypt_huge_room(age_scrypt_huge_free());
			ret = age_encrypt_passphrase_fd(0, 1, pass.p, pass.len, logn, &err);
		} else
			ret = age_encrypt_fd(0, 1, rcpts, nr, &err);
		secbuf_free(&pass);
		if (ret != 0)
			die("%s", err.msg);
		return 0;
	case 'd':
		if ((passfile != NULL) == (nidf > 0) || nr > 0)
			usage();
		memset(&keys, 0, sizeof(keys));
		nids = 0;
		if (passfile != NULL) {
			read_passphrase(passfile, &pass);
			age_scrypt_huge_room(age_scrypt_huge_free());
			keys.pass = pass.p;
			keys.passlen = pass.len;
		} else {
			nids = load_identities(idfiles, nidf, ids);
			keys.ids = ids;
			keys.nids = nids;
		}
		keys.max_logn = maxlogn;
		ret = age_decrypt_fd(0, 1, &keys, &err);
		for (i = 0; i < nids; i++)
			age_identity_free(&ids[i]);
		secbuf_free(&pass);
		if (ret != 0)
			die("%s", err.msg);
		return 0;
	}
	usage();
}
