#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "creds.h"

enum creds_key { K_ID = 0, K_SECRET, K_TOKEN, K_EXPIRY, K_NKEYS };

static const char *const creds_names[K_NKEYS] = {
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
	"AWS_CREDENTIAL_EXPIRATION",
};

struct creds_pctx {
	struct creds *c;
	size_t seen[K_NKEYS];	/* line where each key was set, 0 = not yet */
	size_t lineno;
	char *err;
	size_t errlen;
};

#define CREDS_IS_WS(ch)		((ch) == ' ' || (ch) == '\t')
#define CREDS_IS_DIGIT(ch)	((ch) >= '0' && (ch) <= '9')
#define CREDS_IS_ALPHA(ch)	(((ch) >= 'A' && (ch) <= 'Z') || ((ch) >= 'a' && (ch) <= 'z'))

static void creds_err(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
creds_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Only recognized key names are ever echoed: an unknown "key" may be a pasted secret. */
static int
creds_line_err(struct creds_pctx *x, int key, const char *what)
{
	if (key >= 0)
		creds_err(x->err, x->errlen, "line %zu: %s: %s", x->lineno,
		    creds_names[key], what);
	else
		creds_err(x->err, x->errlen, "line %zu: %s", x->lineno, what);
	return -1;
}

/* The rules of DESIGN §10 on what the file is, from its metadata alone. */
static int
creds_check_stat(const struct stat *sb, char *err, size_t errlen)
{
	mode_t mode;

	if (S_ISDIR(sb->st_mode)) {
		creds_err(err, errlen, "is a directory");
		return -1;
	}
	if (!S_ISREG(sb->st_mode)) {
		creds_err(err, errlen, "not a regular file");
		return -1;
	}
	mode = sb->st_mode & 07777;
	if (mode != 0600 && mode != 0400) {
		if (mode & ~(mode_t)0600)
			creds_err(err, errlen, "mode %04o is too open; chmod 600",
			    (unsigned)mode);
		else
			creds_err(err, errlen, "mode %04o is not 0600 or 0400; chmod 600",
			    (unsigned)mode);
		return -1;
	}
	if (sb->st_uid != geteuid() && sb->st_uid != 0) {
		creds_err(err, errlen, "owned by uid %u, not by uid %u or root; chown it",
		    (unsigned)sb->st_uid, (unsigned)geteuid());
		return -1;
	}
	if (sb->st_size > CREDS_MAX_FILE) {
		creds_err(err, errlen, "too large: %lld bytes, at most %d",
		    (long long)sb->st_size, CREDS_MAX_FILE);
		return -1;
	}
	return 0;
}

int
creds_open(const char *path, enum cred_state *st, char *err, size_t errlen)
{
	struct stat sb;
	int fd, e;

	/*
	 * O_NONBLOCK keeps a FIFO without a writer from hanging us before
	 * fstat can refuse it; O_NOCTTY keeps a daemon without a controlling
	 * terminal from acquiring one if the path names a tty.
	 */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd == -1) {
		e = errno;
		if (e == ENOENT) {
			*st = CRED_ST_MISSING;
			creds_err(err, errlen, "no such file");
		} else if (e == ELOOP) {
			*st = CRED_ST_BAD_FILE;
			creds_err(err, errlen, "is a symlink; name the file itself");
		} else {
			*st = CRED_ST_BAD_FILE;
			creds_err(err, errlen, "open: %s", strerror(e));
		}
		return -1;
	}
	*st = CRED_ST_BAD_FILE;
	if (fstat(fd, &sb) == -1) {
		creds_err(err, errlen, "fstat: %s", strerror(errno));
		goto fail;
	}
	if (creds_check_stat(&sb, err, errlen) == -1)
		goto fail;
	*st = CRED_ST_OK;
	return fd;
fail:
	close(fd);
	return -1;
}

int
creds_stat(const char *path, enum cred_state *st, char *err, size_t errlen)
{
	struct stat sb;

	if (lstat(path, &sb) == -1) {
		*st = errno == ENOENT ? CRED_ST_MISSING : CRED_ST_BAD_FILE;
		if (errno == ENOENT)
			creds_err(err, errlen, "no such file");
		else
			creds_err(err, errlen, "stat: %s", strerror(errno));
		return -1;
	}
	*st = CRED_ST_BAD_FILE;
	if (S_ISLNK(sb.st_mode)) {
		creds_err(err, errlen, "is a symlink; name the file itself");
		return -1;
	}
	if (creds_check_stat(&sb, err, errlen) == -1)
		return -1;
	*st = CRED_ST_OK;
	return 0;
}

int
creds_read_fd(int fd, struct creds *c, enum cred_state *st, char *err, size_t errlen)
{
	struct secbuf b;
	ssize_t n;
	int e;

	memset(c, 0, sizeof(*c));
	*st = CRED_ST_BAD_FILE;
	/* One byte over the limit, so a file that grew since creds_open is caught. */
	if (secbuf_alloc(&b, CREDS_MAX_FILE + 1) == -1) {
		creds_err(err, errlen, "cannot allocate a buffer: %s", strerror(errno));
		return -1;
	}
	while (b.len < b.cap) {
		n = read(fd, b.p + b.len, b.cap - b.len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			e = errno;
			secbuf_free(&b);
			creds_err(err, errlen, "read: %s", strerror(e));
			return -1;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
	}
	if (b.len > CREDS_MAX_FILE) {
		secbuf_free(&b);
		creds_err(err, errlen, "too large: more than %d bytes", CREDS_MAX_FILE);
		return -1;
	}
	if (creds_parse((const char *)b.p, b.len, c, err, errlen) == -1) {
		secbuf_free(&b);
		*st = CRED_ST_BAD_SYNTAX;
		return -1;
	}
	secbuf_free(&b);
	*st = CRED_ST_OK;
	return 0;
}

/* Copy straight from the file's buffer into a buffer of its own: no other copy is made. */
static int
creds_set_secret(struct creds_pctx *x, int key, struct secbuf *dst,
    const char *v, size_t vlen)
{
	if (secbuf_alloc(dst, vlen + 1) == -1)
		return creds_line_err(x, key, "cannot allocate a buffer");
	memcpy(dst->p, v, vlen);
	dst->p[vlen] = '\0';
	dst->len = vlen;
	return 0;
}

static int
creds_set(struct creds_pctx *x, int key, const char *v, size_t vlen)
{
	struct creds *c = x->c;
	char ts[64];
	size_t i;

	switch (key) {
	case K_ID:
		if (vlen == 0)
			return creds_line_err(x, key, "empty value");
		if (vlen < CREDS_MIN_KEY_ID || vlen > CREDS_MAX_KEY_ID)
			return creds_line_err(x, key, "must be 3 to 128 characters");
		/*
		 * AWS issues 16+ letters and digits, but MinIO ("minioadmin"),
		 * RGW and others issue short or punctuated ids.  Only what the
		 * SigV4 header cannot carry is refused: the Credential field is
		 * split on '/', the Authorization header on ','.
		 */
		for (i = 0; i < vlen; i++) {
			if (v[i] == '/' || v[i] == ',')
				return creds_line_err(x, key, v[i] == '/' ?
				    "'/' cannot be carried in a SigV4 credential" :
				    "',' cannot be carried in a SigV4 credential");
			if (v[i] <= ' ' || v[i] > '~')
				return creds_line_err(x, key,
				    "must be printable ASCII without spaces");
		}
		memcpy(c->access_key_id, v, vlen);
		c->access_key_id[vlen] = '\0';
		return 0;
	case K_SECRET:
		if (vlen == 0)
			return creds_line_err(x, key, "empty value");
		if (vlen > CREDS_MAX_SECRET)
			return creds_line_err(x, key, "longer than 128 bytes");
		return creds_set_secret(x, key, &c->secret, v, vlen);
	case K_TOKEN:
		/* Tools that export a whole environment write an empty token. */
		if (vlen == 0)
			return 0;
		if (vlen > CREDS_MAX_TOKEN)
			return creds_line_err(x, key, "longer than 4096 bytes");
		return creds_set_secret(x, key, &c->token, v, vlen);
	case K_EXPIRY:
		if (vlen == 0)
			return 0;
		if (vlen >= sizeof(ts))
			return creds_line_err(x, key, "not an RFC 3339 timestamp");
		memcpy(ts, v, vlen);
		ts[vlen] = '\0';
		if (creds_parse_rfc3339(ts, &c->expiry) == -1)
			return creds_line_err(x, key, "not an RFC 3339 timestamp");
		/* 0 means "no expiry" to every reader of struct creds. */
		if (c->expiry <= 0)
			return creds_line_err(x, key, "not after 1970");
		return 0;
	}
	return 0;
}

static int
creds_lookup(const char *k, size_t klen)
{
	int i;

	for (i = 0; i < K_NKEYS; i++)
		if (strlen(creds_names[i]) == klen &&
		    memcmp(creds_names[i], k, klen) == 0)
			return i;
	return -1;
}

static const char *
creds_skip_ws(const char *p, const char *e)
{
	while (p < e && CREDS_IS_WS(*p))
		p++;
	return p;
}

/* One line, [p, e), without its line ending. */
static int
creds_line(struct creds_pctx *x, const char *p, const char *e)
{
	const char *k, *v, *ve, *s;
	size_t klen;
	int key;
	char q;

	p = creds_skip_ws(p, e);
	if (p == e || *p == '#')
		return 0;
	if (e - p > 6 && memcmp(p, "export", 6) == 0 && CREDS_IS_WS(p[6]))
		p = creds_skip_ws(p + 6, e);
	k = p;
	if (p < e && (CREDS_IS_ALPHA(*p) || *p == '_'))
		while (p < e && (CREDS_IS_ALPHA(*p) || CREDS_IS_DIGIT(*p) || *p == '_'))
			p++;
	klen = (size_t)(p - k);
	p = creds_skip_ws(p, e);
	if (klen == 0 || p == e || *p != '=')
		return creds_line_err(x, -1, "expected KEY=VALUE");
	key = creds_lookup(k, klen);
	p = creds_skip_ws(p + 1, e);

	if (p < e && (*p == '"' || *p == '\'')) {
		q = *p++;
		v = p;
		ve = memchr(p, q, (size_t)(e - p));
		if (ve == NULL)
			return creds_line_err(x, key, "unterminated quote");
		p = creds_skip_ws(ve + 1, e);
		if (p < e && *p != '#')
			return creds_line_err(x, key, "text after the closing quote");
	} else {
		/*
		 * As in sh, '#' after whitespace starts a comment; v[-1] is at
		 * worst the '='.  A note after a secret must not become part of it.
		 */
		v = p;
		for (ve = v; ve < e; ve++)
			if (*ve == '#' && CREDS_IS_WS(ve[-1]))
				break;
		while (ve > v && CREDS_IS_WS(ve[-1]))
			ve--;
		if (memchr(v, '"', (size_t)(ve - v)) != NULL ||
		    memchr(v, '\'', (size_t)(ve - v)) != NULL)
			return creds_line_err(x, key, "unmatched quote");
	}
	for (s = v; s < ve; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return creds_line_err(x, key, "control character in the value");
	if (key < 0)
		return 0;
	if (x->seen[key] != 0) {
		creds_err(x->err, x->errlen, "line %zu: %s: given twice (first on line %zu)",
		    x->lineno, creds_names[key], x->seen[key]);
		return -1;
	}
	x->seen[key] = x->lineno;
	return creds_set(x, key, v, (size_t)(ve - v));
}

int
creds_parse(const char *buf, size_t len, struct creds *c, char *err, size_t errlen)
{
	struct creds_pctx x;
	const char *p = buf, *end, *eol, *next;

	memset(c, 0, sizeof(*c));
	end = buf == NULL ? buf : buf + len;
	memset(&x, 0, sizeof(x));
	x.c = c;
	x.err = err;
	x.errlen = errlen;

	/* Editors on some systems still write a UTF-8 byte order mark. */
	if (end - p >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end) {
		x.lineno++;
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		next = eol < end ? eol + 1 : end;
		if (eol > p && eol[-1] == '\r')
			eol--;
		if ((size_t)(eol - p) > CREDS_MAX_LINE) {
			creds_line_err(&x, -1, "line too long");
			goto fail;
		}
		if (memchr(p, '\0', (size_t)(eol - p)) != NULL) {
			creds_line_err(&x, -1, "NUL byte");
			goto fail;
		}
		if (creds_line(&x, p, eol) == -1)
			goto fail;
		p = next;
	}
	if (x.seen[K_ID] == 0 || x.seen[K_SECRET] == 0) {
		creds_err(err, errlen, "%s is missing",
		    creds_names[x.seen[K_ID] == 0 ? K_ID : K_SECRET]);
		goto fail;
	}
	return 0;
fail:
	creds_free(c);
	return -1;
}

void
creds_free(struct creds *c)
{
	secbuf_free(&c->secret);
	secbuf_free(&c->token);
	explicit_bzero(c->access_key_id, sizeof(c->access_key_id));
	c->expiry = 0;
}

void
creds_key_hint(const struct creds *c, char out[8])
{
	size_t n, off;

	/* Short ids (MinIO's "minioadmin") are never shown whole: half at most. */
	n = strnlen(c->access_key_id, sizeof(c->access_key_id));
	off = n >= 8 ? n - 4 : n - n / 2;
	memcpy(out, c->access_key_id + off, n - off);
	out[n - off] = '\0';
}

/* Exactly n digits; stops at the first non-digit, so it never reads past a NUL. */
static int
creds_digits(const char **sp, int n, int *out)
{
	const char *s = *sp;
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (!CREDS_IS_DIGIT(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*sp = s + n;
	*out = v;
	return 0;
}

static int
creds_mdays(int y, int m)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return mdays[m - 1];
}

/* Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant). */
static int64_t
creds_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
creds_parse_rfc3339(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;

	if (creds_digits(&s, 4, &y) == -1 || *s++ != '-' ||
	    creds_digits(&s, 2, &mo) == -1 || *s++ != '-' ||
	    creds_digits(&s, 2, &d) == -1)
		return -1;
	/* RFC 3339 §5.6 permits a space for readability. */
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -1;
	s++;
	if (creds_digits(&s, 2, &h) == -1 || *s++ != ':' ||
	    creds_digits(&s, 2, &mi) == -1 || *s++ != ':' ||
	    creds_digits(&s, 2, &sec) == -1)
		return -1;
	if (*s == '.') {
		s++;
		if (!CREDS_IS_DIGIT(*s))
			return -1;
		while (CREDS_IS_DIGIT(*s))
			s++;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if (creds_digits(&s, 2, &oh) == -1 || *s++ != ':' ||
		    creds_digits(&s, 2, &om) == -1)
			return -1;
	} else
		return -1;
	if (*s != '\0')
		return -1;
	/* sec 60 is a leap second; it counts as the next minute's first. */
	if (mo < 1 || mo > 12 || d < 1 || d > creds_mdays(y, mo) ||
	    h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
		return -1;
	*out = creds_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	    (int64_t)sign * (oh * 3600 + om * 60);
	return 0;
}
