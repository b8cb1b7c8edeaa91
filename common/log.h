/*
 * Logging.  The parent writes one record per line to stdout (json, text or
 * pretty).  Children never write to stdout: their records travel to the
 * parent as MSG_LOG on their log fd (4), and the parent re-emits them with
 * the child's name and pid.
 *
 * Programs use fatal()/fatalx() (with/without errno); common/ modules never
 * exit, they return -1.
 */
#ifndef VS_LOG_H
#define VS_LOG_H

#include <stdarg.h>

enum log_level { LL_ERROR = 0, LL_WARN, LL_INFO, LL_DEBUG };
enum log_format { LF_JSON = 0, LF_TEXT, LF_PRETTY };

void log_init(const char *proc, enum log_format fmt, enum log_level level);
void log_set_level(enum log_level level);
void log_set_format(enum log_format fmt);
/* Children: send records as MSG_LOG over fd instead of printing them. */
void log_set_channel(int fd, unsigned self_peer);
enum log_level log_get_level(void);

void logit(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void logitv(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Parent: print a record received from a child. */
void log_emit(enum log_level level, const char *proc, int pid, const char *msg);
/*
 * The same with more fields: fields is JSON members without the braces
 * ("\"k\":1,\"m\":\"x\""), appended to the record in the json format and
 * left out of text and pretty, whose msg must then say what matters.
 */
void log_emit_fields(enum log_level level, const char *proc, int pid, const char *msg,
    const char *fields);

#define log_error(...)	logit(LL_ERROR, __VA_ARGS__)
#define log_warn(...)	logit(LL_WARN, __VA_ARGS__)
#define log_info(...)	logit(LL_INFO, __VA_ARGS__)
#define log_debug(...)	logit(LL_DEBUG, __VA_ARGS__)

/* Exit codes: fatal() uses 1 unless fatal_code() says otherwise. */
void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void fatalx(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void fatal_code(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* RFC 3339 UTC with milliseconds into buf (>= 32 bytes). */
void log_timestamp(char *buf, unsigned long len);
/* JSON string escaping into buf; truncates safely. */
void json_escape(char *dst, unsigned long dstlen, const char *src);

#endif
