/*
 * Log records: one line each on stdout in the parent, MSG_LOG datagrams in
 * the children.  Formatting happens only in the parent so that a child can
 * never forge another process's record layout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "msg.h"

static const char *log_proc = "vaultsync";
static enum log_format log_fmt = LF_TEXT;
static enum log_level log_lvl = LL_INFO;
static int log_chan = -1;
static unsigned log_self;
static int log_tty = -1;

static const char *level_names[] = { "error", "warning", "info", "debug" };

void
log_init(const char *proc, enum log_format fmt, enum log_level level)
{
	log_proc = proc;
	log_fmt = fmt;
	log_lvl = level;
	log_tty = isatty(STDOUT_FILENO);
}

void
log_set_level(enum log_level level)
{
	log_lvl = level;
}

void
log_set_format(enum log_format fmt)
{
	log_fmt = fmt;
}

enum log_level
log_get_level(void)
{
	return log_lvl;
}

void
log_set_channel(int fd, unsigned self_peer)
{
	log_chan = fd;
	log_self = self_peer;
}

void
log_timestamp(char *buf, unsigned long len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void
json_escape(char *dst, unsigned long dstlen, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	unsigned long o = 0;
	const unsigned char *s = (const unsigned char *)src;

	if (dstlen == 0)
		return;
	for (; *s != '\0'; s++) {
		char esc[7];
		size_t n;

		if (*s == '"' || *s == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*s;
			n = 2;
		} else if (*s == '\n') {
			memcpy(esc, "\\n", 2);
			n = 2;
		} else if (*s == '\t') {
			memcpy(esc, "\\t", 2);
			n = 2;
		} else if (*s < 0x20 || *s == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*s >> 4];
			esc[5] = hex[*s & 0xf];
			n = 6;
		} else {
			esc[0] = (char)*s;
			n = 1;
		}
		if (o + n >= dstlen)
			break;
		memcpy(dst + o, esc, n);
		o += n;
	}
	dst[o] = '\0';
}

/* Text formats print control characters as '?' so a record stays one line. */
static void
sanitize(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < dstlen; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
	dst[i] = '\0';
}

void
log_emit(enum log_level level, const char *proc, int pid, const char *msg)
{
	log_emit_fields(level, proc, pid, msg, NULL);
}

void
log_emit_fields(enum log_level level, const char *proc, int pid, const char *msg,
    const char *fields)
{
	char ts[40], buf[4096];

	if (level > LL_DEBUG)
		level = LL_DEBUG;
	log_timestamp(ts, sizeof(ts));
	if (log_fmt == LF_JSON) {
		char emsg[3000], eproc[64];

		json_escape(emsg, sizeof(emsg), msg);
		json_escape(eproc, sizeof(eproc), proc);
		printf("{\"time\":\"%s\",\"level\":\"%s\",\"proc\":\"%s\",\"pid\":%d,"
		    "\"msg\":\"%s\"%s%s}\n", ts, level_names[level], eproc, pid, emsg,
		    fields != NULL && fields[0] != '\0' ? "," : "", fields != NULL ? fields : "");
	} else if (log_fmt == LF_PRETTY) {
		static const char *colour[] = { "\033[31m", "\033[33m", "\033[32m", "\033[2m" };
		int tty = log_tty == 1;

		sanitize(buf, sizeof(buf), msg);
		printf("%.8s %s%-5.5s%s %-8s %s\n", ts + 11, tty ? colour[level] : "",
		    level_names[level], tty ? "\033[0m" : "", proc, buf);
	} else {
		sanitize(buf, sizeof(buf), msg);
		printf("%s %s %s[%d]: %s\n", ts, level_names[level], proc, pid, buf);
	}
	fflush(stdout);
}

void
logitv(enum log_level level, const char *fmt, va_list ap)
{
	char buf[1000];
	int saved = errno;

	if (level > log_lvl)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_chan >= 0) {
		struct msg_log m;

		memset(&m, 0, sizeof(m));
		m.level = (uint32_t)level;
		m.seccomp_nr = -1;
		msg_strlcpy(m.msg, buf, sizeof(m.msg));
		if (msg_send(log_chan, log_self, MSG_LOG, 0, &m, sizeof(m), -1) == 0) {
			errno = saved;
			return;
		}
		/* The parent is gone: stderr is all that is left. */
		fprintf(stderr, "%s[%d]: %s\n", log_proc, (int)getpid(), buf);
	} else
		log_emit(level, log_proc, (int)getpid(), buf);
	errno = saved;
}

void
logit(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logitv(level, fmt, ap);
	va_end(ap);
}

static void __attribute__((noreturn, format(printf, 3, 0)))
fatal_common(int code, int with_errno, const char *fmt, va_list ap)
{
	char buf[900];
	int e = errno;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (with_errno)
		logit(LL_ERROR, "%s: %s", buf, strerror(e));
	else
		logit(LL_ERROR, "%s", buf);
	exit(code);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fatal_common(1, 1, fmt, ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fatal_common(1, 0, fmt, ap);
}

void
fatal_code(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fatal_common(code, 0, fmt, ap);
}
