/*
 * What the tar writer and the extractor share: the symlink rule, error
 * messages, and the adapter that reads an archive straight out of an age
 * stream.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "age.h"
#include "archive.h"

void
arc_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Names come from the vault or from an archive someone else may have
 * written; messages end up in logs and in JSON, so only printable ASCII
 * goes through verbatim.
 */
const char *
arc_printable(const char *name, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)name;
	size_t o = 0;

	if (len < 8) {
		if (len > 0)
			buf[0] = '\0';
		return buf;
	}
	for (; *s != '\0'; s++) {
		if (o + 8 > len) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (*s >= 0x20 && *s < 0x7f) {
			buf[o++] = (char)*s;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[*s >> 4];
			buf[o++] = hex[*s & 0xf];
		}
	}
	buf[o] = '\0';
	return buf;
}

/*
 * Every ".." must come before the first real component: after one, the
 * lookup may have gone through another symlink, and ".." would then climb
 * from wherever that one points, which the target text does not show.
 * Leading ".." components climb from the directory really holding the
 * link, so depth bounds them.
 */
int
arc_link_inside(const char *target, int depth)
{
	const char *p = target, *q;
	size_t n, len = strlen(target);
	int up = 0, descended = 0;

	if (len == 0 || len > ARC_PATH_MAX || target[0] == '/' || arc_has_control(target))
		return 0;
	while (*p != '\0') {
		q = strchr(p, '/');
		n = q != NULL ? (size_t)(q - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (descended || ++up > depth)
				return 0;
		} else if (n > ARC_NAME_MAX) {
			return 0;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			descended = 1;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

int
arc_has_control(const char *name)
{
	const unsigned char *u;

	for (u = (const unsigned char *)name; *u != '\0'; u++)
		if (*u < 0x20 || *u == 0x7f)
			return 1;
	return 0;
}

/*
 * libarchive converts names between the pax UTF-8 form and the thread's
 * locale.  Pinning the locale keeps the stream independent of whatever
 * the process set, and UTF-8 lets both sides pass UTF-8 names through
 * unchanged (others go out as hdrcharset=BINARY).
 */
locale_t
arc_locale_enter(locale_t *prev)
{
	locale_t l;

	*prev = (locale_t)0;
	if ((l = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0)) == (locale_t)0 &&
	    (l = newlocale(LC_CTYPE_MASK, "C", (locale_t)0)) == (locale_t)0)
		return (locale_t)0;
	*prev = uselocale(l);
	return l;
}

void
arc_locale_leave(locale_t mine, locale_t prev)
{
	if (mine == (locale_t)0)
		return;
	(void)uselocale(prev);
	freelocale(mine);
}

int
arc_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t
arc_read_age(void *age_reader, const void **buf, char *err, size_t errlen)
{
	struct age_err ae;
	const unsigned char *p = NULL;
	ssize_t n;

	ae.msg[0] = '\0';
	n = age_reader_read(age_reader, &p, &ae);
	if (n < 0)
		arc_seterr(err, errlen, "%s", ae.msg[0] != '\0' ? ae.msg : "decryption failed");
	*buf = p;
	return n;
}
