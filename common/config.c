/*
 * vaultsyncd.conf parser.  The input is hostile: every length is checked
 * before a copy, every malformed line is an error naming its file and line,
 * and nothing here exits or prints.  The only allocations that outlive
 * cfg_load() are the vaults array and where each keyword was set (origin);
 * cfg_free() releases both.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <glob.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#ifndef DATADIR
#define DATADIR		"/usr/local/share"
#endif

#define CFG_LINE_MAX	4095
#define CFG_FILE_MAX	(1024 * 1024)
/* A fan-out of Include lines can multiply without ever looping. */
#define CFG_MAX_FILES	1024
#define CFG_SUN_PATH	108
#define CFG_USER_MAX	32
#define CFG_RECIP_LEN	62

#define MS_S		1000ULL
#define MS_M		(60 * MS_S)
#define MS_H		(60 * MS_M)
#define MS_D		(24 * MS_H)
#define DURATION_MAX	(365 * MS_D)

#define KIB		1024ULL
#define MIB		(1024 * KIB)
#define GIB		(1024 * MIB)
#define TIB		(1024 * GIB)

enum cfg_kw {
	KW_INCLUDE = 0, KW_VAULT,
	KW_RUNTIMEDIR, KW_STATEDIR, KW_CONTROLSOCKET, KW_CONTROLGROUP,
	KW_PRIVSEPUSER, KW_PRIVSEPCHROOT, KW_DEVICEID, KW_LOGFORMAT,
	KW_LOGLEVEL, KW_INTERVAL, KW_WATCHERDEBOUNCE, KW_HEADPOLLINTERVAL,
	KW_HEADPOLLMAXINTERVAL, KW_STATUSAPI, KW_STATUSLISTEN,
	KW_STATUSREQUIREAUTH, KW_STATUSTICKHISTORY, KW_CREDENTIALSFILE,
	KW_MULTIPARTTHRESHOLD,
	KW_PATH, KW_MOUNT, KW_MOUNTSIZE, KW_OWNER, KW_RECIPIENT, KW_REMOTE,
	KW_ENDPOINT, KW_REGION, KW_PATHSTYLE, KW_HISTORYINTERVAL,
	KW_HISTORYKEEP, KW_VERIFYINTERVAL, KW_WATCHER,
	KW__COUNT
};

#define SC_GLOBAL	0x1
#define SC_VAULT	0x2
#define SC_MULTI	0x4	/* may repeat within one scope */

static const struct {
	const char *name;
	int flags;
} cfg_kw[KW__COUNT] = {
	[KW_INCLUDE] = { "Include", SC_GLOBAL | SC_MULTI },
	[KW_VAULT] = { "Vault", SC_GLOBAL | SC_VAULT | SC_MULTI },
	[KW_RUNTIMEDIR] = { "RuntimeDir", SC_GLOBAL },
	[KW_STATEDIR] = { "StateDir", SC_GLOBAL },
	[KW_CONTROLSOCKET] = { "ControlSocket", SC_GLOBAL },
	[KW_CONTROLGROUP] = { "ControlGroup", SC_GLOBAL },
	[KW_PRIVSEPUSER] = { "PrivsepUser", SC_GLOBAL },
	[KW_PRIVSEPCHROOT] = { "PrivsepChroot", SC_GLOBAL },
	[KW_DEVICEID] = { "DeviceId", SC_GLOBAL },
	[KW_LOGFORMAT] = { "LogFormat", SC_GLOBAL },
	[KW_LOGLEVEL] = { "LogLevel", SC_GLOBAL },
	[KW_INTERVAL] = { "Interval", SC_GLOBAL | SC_VAULT },
	[KW_WATCHERDEBOUNCE] = { "WatcherDebounce", SC_GLOBAL },
	[KW_HEADPOLLINTERVAL] = { "HeadPollInterval", SC_GLOBAL },
	[KW_HEADPOLLMAXINTERVAL] = { "HeadPollMaxInterval", SC_GLOBAL },
	[KW_STATUSAPI] = { "StatusAPI", SC_GLOBAL },
	[KW_STATUSLISTEN] = { "StatusListen", SC_GLOBAL },
	[KW_STATUSREQUIREAUTH] = { "StatusRequireAuth", SC_GLOBAL },
	[KW_STATUSTICKHISTORY] = { "StatusTickHistory", SC_GLOBAL },
	[KW_CREDENTIALSFILE] = { "CredentialsFile", SC_GLOBAL | SC_VAULT },
	[KW_MULTIPARTTHRESHOLD] = { "MultipartThreshold", SC_GLOBAL },
	[KW_PATH] = { "Path", SC_VAULT },
	[KW_MOUNT] = { "Mount", SC_VAULT },
	[KW_MOUNTSIZE] = { "MountSize", SC_VAULT },
	[KW_OWNER] = { "Owner", SC_VAULT },
	[KW_RECIPIENT] = { "Recipient", SC_VAULT | SC_MULTI },
	[KW_REMOTE] = { "Remote", SC_VAULT },
	[KW_ENDPOINT] = { "Endpoint", SC_VAULT },
	[KW_REGION] = { "Region", SC_VAULT },
	[KW_PATHSTYLE] = { "PathStyle", SC_VAULT },
	[KW_HISTORYINTERVAL] = { "HistoryInterval", SC_VAULT },
	[KW_HISTORYKEEP] = { "HistoryKeep", SC_VAULT },
	[KW_VERIFYINTERVAL] = { "VerifyInterval", SC_GLOBAL | SC_VAULT },
	[KW_WATCHER] = { "Watcher", SC_VAULT },
};

#define KWNAME(kw)	(cfg_kw[(kw)].name)

struct cfg_loc {
	int file;		/* index into cfg_parser.files */
	int line;		/* 0 = not set */
};

/*
 * Where each keyword was set.  Kept with a loaded configuration, so that a
 * problem found later (vaultsyncd -t, startup) names the line to change.
 */
struct cfg_origin {
	/* Every file read, so a location can name it after it is closed. */
	char **files;
	int nfiles;

	struct cfg_loc gloc[KW__COUNT];
	struct cfg_loc vloc[CFG_MAX_VAULTS][KW__COUNT];
};

struct cfg_parser {
	struct cfg *c;
	const struct cfg_env *env;
	struct cfg_err *err;
	struct cfg_origin o;

	int file;		/* where the line being parsed lives */
	int line;
};

static int cfg_error(struct cfg_parser *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static int cfg_error_at(struct cfg_parser *, int, int, const char *, ...)
    __attribute__((format(printf, 4, 5)));
static void cfg_err_set(struct cfg_err *, const char *, int, const char *, ...)
    __attribute__((format(printf, 4, 5)));
static int cfg_verror(struct cfg_parser *, int, int, const char *, va_list)
    __attribute__((format(printf, 4, 0)));
static int cfg_parse_buffer(struct cfg_parser *, int, const char *, size_t,
    int);

/* ---- small helpers ------------------------------------------------------- */

/* Locale-independent: the config means the same under any LC_CTYPE. */
static int
cfg_isdigit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static int
cfg_isalnum(int ch)
{
	return cfg_isdigit(ch) || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z');
}

static int
cfg_iscntrl(int ch)
{
	return (unsigned char)ch < 0x20 || ch == 0x7f;
}

/* Copy with truncation detection; dst is always terminated. */
static int
cfg_strcpy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (len == 0)
		return -1;
	if (n >= len) {
		memcpy(dst, src, len - 1);
		dst[len - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

static int
cfg_join(char *dst, size_t len, const char *a, const char *b)
{
	int r = snprintf(dst, len, "%s%s", a, b);

	if (r < 0 || (size_t)r >= len) {
		dst[0] = '\0';
		return -1;
	}
	return 0;
}

/* A value fit to quote in a message: printable ASCII only, bounded. */
static const char *
cfg_vis(const char *s, char *buf, size_t len)
{
	size_t i, o = 0;

	for (i = 0; s[i] != '\0' && o + 4 < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		buf[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	if (s[i] != '\0' && len >= 4) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static void
cfg_err_set(struct cfg_err *err, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;

	(void)cfg_strcpy(err->file, sizeof(err->file), file);
	err->line = line;
	va_start(ap, fmt);
	(void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

static int
cfg_verror(struct cfg_parser *p, int file, int line, const char *fmt,
    va_list ap)
{
	struct cfg_err *err = p->err;

	(void)cfg_strcpy(err->file, sizeof(err->file),
	    file >= 0 && file < p->o.nfiles ? p->o.files[file] : "");
	err->line = line;
	(void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return -1;
}

static int
cfg_error(struct cfg_parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)cfg_verror(p, p->file, p->line, fmt, ap);
	va_end(ap);
	return -1;
}

static int
cfg_error_at(struct cfg_parser *p, int file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)cfg_verror(p, file, line, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *
cfg_fname(const struct cfg_parser *p, int file)
{
	return file >= 0 && file < p->o.nfiles ? p->o.files[file] : "";
}

static int
cfg_add_file(struct cfg_parser *p, const char *name)
{
	char **nf;

	if (p->o.nfiles >= CFG_MAX_FILES)
		return cfg_error(p, "too many included files (max %d)",
		    CFG_MAX_FILES);
	nf = reallocarray(p->o.files, (size_t)p->o.nfiles + 1, sizeof(*nf));
	if (nf == NULL)
		return cfg_error(p, "out of memory");
	p->o.files = nf;
	if ((p->o.files[p->o.nfiles] = strdup(name)) == NULL)
		return cfg_error(p, "out of memory");
	return p->o.nfiles++;
}

/* ---- value parsers ------------------------------------------------------- */

/* 0 ok, -1 syntax, -2 out of representable range (> 365d). */
static int
cfg_duration(const char *s, uint64_t *msp)
{
	uint64_t total = 0, n, unit;
	int big = 0;

	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		if (!cfg_isdigit(*s))
			return -1;
		for (n = 0; cfg_isdigit(*s); s++) {
			if (n <= DURATION_MAX)
				n = n * 10 + (uint64_t)(*s - '0');
		}
		if (s[0] == 'm' && s[1] == 's') {
			unit = 1;
			s += 2;
		} else {
			switch (*s) {
			case 's':
				unit = MS_S;
				break;
			case 'm':
				unit = MS_M;
				break;
			case 'h':
				unit = MS_H;
				break;
			case 'd':
				unit = MS_D;
				break;
			default:
				return -1;
			}
			s++;
		}
		if (n > DURATION_MAX / unit)
			big = 1;
		else if ((total += n * unit) > DURATION_MAX)
			big = 1;
	}
	if (big)
		return -2;
	*msp = total;
	return 0;
}

int
cfg_parse_duration(const char *s, uint64_t *ms)
{
	uint64_t v;

	if (s == NULL || cfg_duration(s, &v) != 0)
		return -1;
	*ms = v;
	return 0;
}

void
cfg_format_duration(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		uint64_t ms;
		const char *unit;
	} units[] = {
		{ MS_D, "d" }, { MS_H, "h" }, { MS_M, "m" }, { MS_S, "s" },
		{ 1, "ms" },
	};
	size_t i, o = 0;
	int r;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (ms == 0) {
		(void)snprintf(buf, len, "0s");
		return;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t n = ms / units[i].ms;

		if (n == 0)
			continue;
		ms -= n * units[i].ms;
		r = snprintf(buf + o, len - o, "%llu%s",
		    (unsigned long long)n, units[i].unit);
		if (r < 0 || (size_t)r >= len - o)
			return;
		o += (size_t)r;
	}
}

/* 0 ok, -1 syntax, -2 overflow. */
static int
cfg_size(const char *s, uint64_t *bytesp)
{
	uint64_t n = 0;
	unsigned shift = 0;
	int big = 0;

	if (!cfg_isdigit(*s))
		return -1;
	for (; cfg_isdigit(*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (n > (UINT64_MAX - d) / 10)
			big = 1;
		else
			n = n * 10 + d;
	}
	switch (*s) {
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	}
	if (shift != 0) {
		s++;
		if (*s == 'i' || *s == 'I') {
			s++;
			if (*s != 'b' && *s != 'B')
				return -1;
		}
	}
	if (*s == 'b' || *s == 'B')
		s++;
	if (*s != '\0')
		return -1;
	if (big || n > (UINT64_MAX >> shift))
		return -2;
	*bytesp = n << shift;
	return 0;
}

int
cfg_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t v;

	if (s == NULL || cfg_size(s, &v) != 0)
		return -1;
	*bytes = v;
	return 0;
}

void
cfg_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const struct {
		unsigned shift;
		char suffix;
	} units[] = { { 40, 'T' }, { 30, 'G' }, { 20, 'M' }, { 10, 'K' } };
	size_t i;

	if (len == 0)
		return;
	for (i = 0; bytes != 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if ((bytes & ((1ULL << units[i].shift) - 1)) == 0) {
			(void)snprintf(buf, len, "%llu%c",
			    (unsigned long long)(bytes >> units[i].shift),
			    units[i].suffix);
			return;
		}
	}
	(void)snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

/* Plain decimal, no sign; -1 unless lo <= value <= hi. */
static int
cfg_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *vp)
{
	uint64_t n = 0;

	if (!cfg_isdigit(*s))
		return -1;
	for (; cfg_isdigit(*s); s++) {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > hi)
			return -1;
	}
	if (*s != '\0' || n < lo)
		return -1;
	*vp = n;
	return 0;
}

static int
cfg_valid_user(const char *s)
{
	size_t i;

	if (s[0] == '\0' || s[0] == '-')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= CFG_USER_MAX)
			return 0;
		if (!cfg_isalnum(s[i]) && s[i] != '.' && s[i] != '_' &&
		    s[i] != '-')
			return 0;
	}
	return 1;
}

static int
cfg_valid_device_id(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= CFG_NAME_MAX - 1)
			return 0;
		if (!cfg_isalnum(s[i]) && s[i] != '.' && s[i] != '_' &&
		    s[i] != '-')
			return 0;
	}
	return i > 0;
}

static int
cfg_valid_vault_name(const char *s)
{
	return cfg_isalnum(s[0]) && cfg_valid_device_id(s);
}

static int
cfg_valid_recipient(const char *s)
{
	static const char bech32[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
	size_t i;

	if (strncmp(s, "age1", 4) != 0 || strlen(s) != CFG_RECIP_LEN)
		return 0;
	for (i = 4; s[i] != '\0'; i++)
		if (strchr(bech32, s[i]) == NULL)
			return 0;
	return 1;
}

static int
cfg_is_loopback4(const char *host, uint8_t addr[4])
{
	struct in_addr in;

	if (inet_pton(AF_INET, host, &in) != 1)
		return 0;
	memcpy(addr, &in, 4);
	return addr[0] == 127;
}

static int
cfg_is_loopback6(const char *host, uint8_t addr[16])
{
	struct in6_addr in6;

	if (inet_pton(AF_INET6, host, &in6) != 1 ||
	    !IN6_IS_ADDR_LOOPBACK(&in6))
		return 0;
	memcpy(addr, &in6, 16);
	return 1;
}

/* ---- keyword handlers ---------------------------------------------------- */

static int
cfg_set_path(struct cfg_parser *p, enum cfg_kw kw, const char *val,
    char *dst, size_t len)
{
	if (val[0] != '/')
		return cfg_error(p, "%s must be an absolute path", KWNAME(kw));
	if (cfg_strcpy(dst, len, val) == -1)
		return cfg_error(p, "%s is too long (max %zu bytes)",
		    KWNAME(kw), len - 1);
	return 0;
}

static int
cfg_set_yesno(struct cfg_parser *p, enum cfg_kw kw, const char *val,
    int *dst)
{
	char vb[80];

	if (strcasecmp(val, "yes") == 0)
		*dst = 1;
	else if (strcasecmp(val, "no") == 0)
		*dst = 0;
	else
		return cfg_error(p, "%s must be yes or no, not '%s'",
		    KWNAME(kw), cfg_vis(val, vb, sizeof(vb)));
	return 0;
}

static int
cfg_set_user(struct cfg_parser *p, enum cfg_kw kw, const char *val,
    char *dst, size_t len)
{
	char vb[80];

	if (!cfg_valid_user(val))
		return cfg_error(p, "%s: bad user or group name '%s' "
		    "(up to %d of A-Z a-z 0-9 . _ -, not starting with -)",
		    KWNAME(kw), cfg_vis(val, vb, sizeof(vb)), CFG_USER_MAX);
	(void)cfg_strcpy(dst, len, val);
	return 0;
}

static int
cfg_set_duration(struct cfg_parser *p, enum cfg_kw kw, const char *val,
    uint64_t lo, uint64_t hi, uint64_t *dst)
{
	char vb[80], lb[32], hb[32];
	uint64_t ms;
	int r;

	if ((r = cfg_duration(val, &ms)) == -1)
		return cfg_error(p, "%s: bad duration '%s' (want e.g. 500ms, "
		    "30s, 5m, 1h30m; units ms, s, m, h, d)", KWNAME(kw),
		    cfg_vis(val, vb, sizeof(vb)));
	cfg_format_duration(lo, lb, sizeof(lb));
	cfg_format_duration(hi, hb, sizeof(hb));
	if (r == -2 || ms < lo || ms > hi)
		return cfg_error(p, "%s: duration '%s' is out of range "
		    "(%s to %s)", KWNAME(kw), cfg_vis(val, vb, sizeof(vb)),
		    lb, hb);
	*dst = ms;
	return 0;
}

static int
cfg_set_size(struct cfg_parser *p, enum cfg_kw kw, const char *val,
    uint64_t lo, uint64_t hi, uint64_t *dst)
{
	char vb[80], lb[32], hb[32];
	uint64_t b;
	int r;

	if ((r = cfg_size(val, &b)) == -1)
		return cfg_error(p, "%s: bad size '%s' (want e.g. 64M; "
		    "suffixes K, M, G, T)", KWNAME(kw),
		    cfg_vis(val, vb, sizeof(vb)));
	cfg_format_size(lo, lb, sizeof(lb));
	cfg_format_size(hi, hb, sizeof(hb));
	if (r == -2 || b < lo || b > hi)
		return cfg_error(p, "%s: size '%s' is out of range (%s to %s)",
		    KWNAME(kw), cfg_vis(val, vb, sizeof(vb)), lb, hb);
	*dst = b;
	return 0;
}

static int
cfg_set_listen(struct cfg_parser *p, const char *val)
{
	struct cfg *c = p->c;
	char host[80], vb[80];
	const char *colon, *port;
	uint8_t addr[16];
	uint64_t portnum;
	size_t hlen;
	int family;

	if (strlen(val) >= sizeof(c->status_listen))
		return cfg_error(p, "StatusListen is too long");
	if (val[0] == '[') {
		const char *rb = strchr(val, ']');

		if (rb == NULL || rb[1] != ':')
			return cfg_error(p, "StatusListen must be HOST:PORT, "
			    "not '%s'", cfg_vis(val, vb, sizeof(vb)));
		hlen = (size_t)(rb - val - 1);
		memcpy(host, val + 1, hlen);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(val, ':')) == NULL)
			return cfg_error(p, "StatusListen must be HOST:PORT, "
			    "not '%s'", cfg_vis(val, vb, sizeof(vb)));
		hlen = (size_t)(colon - val);
		memcpy(host, val, hlen);
	}
	host[hlen] = '\0';
	port = colon + 1;

	memset(addr, 0, sizeof(addr));
	if (val[0] == '[' && cfg_is_loopback6(host, addr))
		family = AF_INET6;
	else if (val[0] != '[' && strcasecmp(host, "localhost") == 0) {
		family = AF_INET;
		addr[0] = 127;
		addr[3] = 1;
	} else if (val[0] != '[' && cfg_is_loopback4(host, addr))
		family = AF_INET;
	else
		return cfg_error(p, "StatusListen must be a loopback address "
		    "(127.0.0.0/8, [::1] or localhost), not '%s'",
		    cfg_vis(host, vb, sizeof(vb)));
	if (strlen(port) > 5 || cfg_uint(port, 0, 65535, &portnum) == -1)
		return cfg_error(p, "StatusListen: bad port '%s' "
		    "(0 to 65535)", cfg_vis(port, vb, sizeof(vb)));

	memcpy(c->status_listen, val, strlen(val) + 1);
	c->status_family = family;
	memcpy(c->status_addr, addr, sizeof(c->status_addr));
	c->status_port = (uint16_t)portnum;
	return 0;
}

static int
cfg_has_dot_segment(const char *s, int allow_dot)
{
	const char *seg = s, *end;
	size_t n;

	for (;;) {
		end = strchr(seg, '/');
		n = end != NULL ? (size_t)(end - seg) : strlen(seg);
		if ((n == 2 && strncmp(seg, "..", 2) == 0) ||
		    (!allow_dot && n == 1 && seg[0] == '.'))
			return 1;
		if (end == NULL)
			return 0;
		seg = end + 1;
	}
}

static int
cfg_set_remote(struct cfg_parser *p, struct cfg_vault *v, const char *val)
{
	char vb[80];
	size_t i, n;

	if (strlen(val) >= sizeof(v->remote))
		return cfg_error(p, "Remote is too long (max %zu bytes)",
		    sizeof(v->remote) - 1);
	if (strncmp(val, "dir:", 4) == 0) {
		const char *dir = val + 4;

		if (dir[0] != '/')
			return cfg_error(p, "Remote dir: needs an absolute "
			    "path, not '%s'", cfg_vis(dir, vb, sizeof(vb)));
		if (cfg_has_dot_segment(dir, 1))
			return cfg_error(p, "Remote dir: path must not "
			    "contain '..'");
		if (cfg_strcpy(v->remote_dir, sizeof(v->remote_dir), dir) == -1)
			return cfg_error(p, "Remote dir: path is too long");
		v->remote_kind = CFG_REMOTE_DIR;
		v->bucket[0] = v->prefix[0] = '\0';
	} else if (strncmp(val, "s3://", 5) == 0) {
		const char *b = val + 5, *slash = strchr(b, '/');
		char prefix[CFG_URL_MAX];

		n = slash != NULL ? (size_t)(slash - b) : strlen(b);
		if (n < 3 || n > 63 || !cfg_isalnum(b[0]) ||
		    !cfg_isalnum(b[n - 1]))
			goto badbucket;
		for (i = 0; i < n; i++) {
			if (!(b[i] >= 'a' && b[i] <= 'z') &&
			    !cfg_isdigit(b[i]) && b[i] != '.' && b[i] != '-')
				goto badbucket;
		}
		prefix[0] = '\0';
		if (slash != NULL) {
			(void)cfg_strcpy(prefix, sizeof(prefix), slash + 1);
			if (prefix[0] == '/' || strstr(prefix, "//") != NULL)
				return cfg_error(p, "Remote: S3 prefix must "
				    "not start with '/' or contain '//'");
			n = strlen(prefix);
			if (n > 0 && prefix[n - 1] == '/')
				prefix[--n] = '\0';
			for (i = 0; i < n; i++) {
				unsigned char ch = (unsigned char)prefix[i];

				if (ch <= 0x20 || ch >= 0x7f)
					return cfg_error(p, "Remote: S3 prefix "
					    "must be printable ASCII without "
					    "spaces");
			}
			if (n > 0 && cfg_has_dot_segment(prefix, 0))
				return cfg_error(p, "Remote: S3 prefix must "
				    "not contain '.' or '..' segments");
		}
		if (cfg_strcpy(v->prefix, sizeof(v->prefix), prefix) == -1)
			return cfg_error(p, "Remote: S3 prefix is too long");
		memcpy(v->bucket, b, n = (slash != NULL ?
		    (size_t)(slash - b) : strlen(b)));
		v->bucket[n] = '\0';
		v->remote_kind = CFG_REMOTE_S3;
		v->remote_dir[0] = '\0';
	} else
		return cfg_error(p, "Remote must be s3://BUCKET[/PREFIX] or "
		    "dir:/PATH, not '%s'", cfg_vis(val, vb, sizeof(vb)));
	memcpy(v->remote, val, strlen(val) + 1);
	return 0;

 badbucket:
	return cfg_error(p, "Remote: bad S3 bucket name (3 to 63 of "
	    "a-z 0-9 . -, starting and ending with a letter or digit)");
}

static int
cfg_set_endpoint(struct cfg_parser *p, struct cfg_vault *v, const char *val)
{
	char host[CFG_URL_MAX], vb[80];
	const char *auth, *end, *hs, *he, *port = NULL;
	uint8_t addr[16];
	uint64_t portnum;
	size_t i, alen;
	int tls, loop;

	if (strlen(val) >= sizeof(v->endpoint))
		return cfg_error(p, "Endpoint is too long (max %zu bytes)",
		    sizeof(v->endpoint) - 1);
	for (i = 0; val[i] != '\0'; i++) {
		if ((unsigned char)val[i] <= 0x20 ||
		    (unsigned char)val[i] >= 0x7f)
			return cfg_error(p, "Endpoint must be printable ASCII "
			    "without spaces");
	}
	if (strncasecmp(val, "https://", 8) == 0) {
		tls = 1;
		auth = val + 8;
	} else if (strncasecmp(val, "http://", 7) == 0) {
		tls = 0;
		auth = val + 7;
	} else
		return cfg_error(p, "Endpoint must start with https:// "
		    "(or http:// for a loopback address), not '%s'",
		    cfg_vis(val, vb, sizeof(vb)));
	alen = strcspn(auth, "/?#");
	end = auth + alen;
	if (memchr(auth, '@', alen) != NULL)
		return cfg_error(p, "Endpoint must not contain credentials");
	if (auth[0] == '[') {
		if ((he = memchr(auth, ']', alen)) == NULL)
			goto badhost;
		hs = auth + 1;
		if (he + 1 < end) {
			if (he[1] != ':')
				goto badhost;
			port = he + 2;
		}
	} else {
		hs = auth;
		he = memchr(auth, ':', alen);
		if (he != NULL)
			port = he + 1;
		else
			he = end;
		for (i = 0; hs + i < he; i++) {
			if (!cfg_isalnum(hs[i]) && hs[i] != '.' &&
			    hs[i] != '-')
				goto badhost;
		}
	}
	if (he == hs)
		goto badhost;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (auth[0] == '[' && inet_pton(AF_INET6, host, addr) != 1)
		goto badhost;
	if (port != NULL) {
		char pb[8];
		size_t plen = (size_t)(end - port);

		if (plen == 0 || plen > 5)
			goto badport;
		memcpy(pb, port, plen);
		pb[plen] = '\0';
		if (cfg_uint(pb, 1, 65535, &portnum) == -1)
			goto badport;
	}
	if (auth[0] == '[')
		loop = cfg_is_loopback6(host, addr);
	else
		loop = strcasecmp(host, "localhost") == 0 ||
		    cfg_is_loopback4(host, addr);
	if (!tls && !loop)
		return cfg_error(p, "Endpoint '%s': TLS is required; http:// "
		    "is only allowed for a loopback address (127.0.0.1, [::1], "
		    "localhost)", cfg_vis(val, vb, sizeof(vb)));
	memcpy(v->endpoint, val, strlen(val) + 1);
	return 0;

 badhost:
	return cfg_error(p, "Endpoint: bad host in '%s'",
	    cfg_vis(val, vb, sizeof(vb)));
 badport:
	return cfg_error(p, "Endpoint: bad port in '%s'",
	    cfg_vis(val, vb, sizeof(vb)));
}

static int
cfg_set_owner(struct cfg_parser *p, struct cfg_vault *v, const char *val)
{
	char user[CFG_URL_MAX], vb[80];
	const char *colon = strchr(val, ':');
	size_t ulen = colon != NULL ? (size_t)(colon - val) : strlen(val);

	if (ulen >= sizeof(user))
		return cfg_error(p, "Owner is too long");
	memcpy(user, val, ulen);
	user[ulen] = '\0';
	if (!cfg_valid_user(user) ||
	    (colon != NULL && !cfg_valid_user(colon + 1)))
		return cfg_error(p, "Owner must be USER or USER:GROUP (up to "
		    "%d of A-Z a-z 0-9 . _ - each, not starting with -), "
		    "not '%s'",
		    CFG_USER_MAX, cfg_vis(val, vb, sizeof(vb)));
	(void)cfg_strcpy(v->owner_user, sizeof(v->owner_user), user);
	(void)cfg_strcpy(v->owner_group, sizeof(v->owner_group),
	    colon != NULL ? colon + 1 : "");
	return 0;
}

/*
 * VerifyInterval: off (or 0) disables the drill.  Each drill downloads the
 * whole archive, so it has the floor of the other timers, one second, and
 * restarts after the previous drill ends: drills never overlap.
 */
static int
cfg_set_verify(struct cfg_parser *p, const char *val, uint64_t *dst)
{
	if (strcasecmp(val, "off") == 0 || strcmp(val, "0") == 0) {
		*dst = 0;
		return 0;
	}
	return cfg_set_duration(p, KW_VERIFYINTERVAL, val, MS_S, 7 * MS_D, dst);
}

/* Interval and CredentialsFile, the keywords valid in both scopes. */
static int
cfg_set_both(struct cfg_parser *p, enum cfg_kw kw, const char *val,
    uint64_t *interval, char *credfile)
{
	if (kw == KW_INTERVAL)
		return cfg_set_duration(p, kw, val, MS_S, 7 * MS_D, interval);
	return cfg_set_path(p, kw, val, credfile, CFG_PATH_MAX);
}

static int
cfg_set_global(struct cfg_parser *p, enum cfg_kw kw, const char *val)
{
	struct cfg *c = p->c;
	char vb[80];
	uint64_t n;

	switch (kw) {
	case KW_RUNTIMEDIR:
		return cfg_set_path(p, kw, val, c->runtime_dir,
		    sizeof(c->runtime_dir));
	case KW_STATEDIR:
		return cfg_set_path(p, kw, val, c->state_dir,
		    sizeof(c->state_dir));
	case KW_CONTROLSOCKET:
		return cfg_set_path(p, kw, val, c->control_socket,
		    sizeof(c->control_socket));
	case KW_CONTROLGROUP:
		return cfg_set_user(p, kw, val, c->control_group,
		    sizeof(c->control_group));
	case KW_PRIVSEPUSER:
		return cfg_set_user(p, kw, val, c->privsep_user,
		    sizeof(c->privsep_user));
	case KW_PRIVSEPCHROOT:
		/* none: Landlock confines the children's file system instead. */
		if (strcmp(val, "none") == 0)
			return cfg_strcpy(c->privsep_chroot, sizeof(c->privsep_chroot), val);
		return cfg_set_path(p, kw, val, c->privsep_chroot,
		    sizeof(c->privsep_chroot));
	case KW_DEVICEID:
		if (!cfg_valid_device_id(val))
			return cfg_error(p, "DeviceId must be 1 to %d of "
			    "A-Z a-z 0-9 . _ -, not '%s'", CFG_NAME_MAX - 1,
			    cfg_vis(val, vb, sizeof(vb)));
		(void)cfg_strcpy(c->device_id, sizeof(c->device_id), val);
		return 0;
	case KW_LOGFORMAT:
		if (strcasecmp(val, "json") == 0)
			c->log_format = CFG_LOG_JSON;
		else if (strcasecmp(val, "text") == 0)
			c->log_format = CFG_LOG_TEXT;
		else if (strcasecmp(val, "pretty") == 0)
			c->log_format = CFG_LOG_PRETTY;
		else
			return cfg_error(p, "LogFormat must be json, text or "
			    "pretty, not '%s'", cfg_vis(val, vb, sizeof(vb)));
		return 0;
	case KW_LOGLEVEL:
		if (strcasecmp(val, "error") == 0)
			c->log_level = CFG_LVL_ERROR;
		else if (strcasecmp(val, "warning") == 0 ||
		    strcasecmp(val, "warn") == 0)
			c->log_level = CFG_LVL_WARN;
		else if (strcasecmp(val, "info") == 0)
			c->log_level = CFG_LVL_INFO;
		else if (strcasecmp(val, "debug") == 0)
			c->log_level = CFG_LVL_DEBUG;
		else
			return cfg_error(p, "LogLevel must be error, warning, "
			    "info or debug, not '%s'",
			    cfg_vis(val, vb, sizeof(vb)));
		return 0;
	case KW_INTERVAL:
	case KW_CREDENTIALSFILE:
		return cfg_set_both(p, kw, val, &c->interval_ms,
		    c->credentials_file);
	case KW_WATCHERDEBOUNCE:
		return cfg_set_duration(p, kw, val, 0, 60 * MS_S,
		    &c->watcher_debounce_ms);
	case KW_VERIFYINTERVAL:
		return cfg_set_verify(p, val, &c->verify_interval_ms);
	case KW_HEADPOLLINTERVAL:
		return cfg_set_duration(p, kw, val, MS_S, MS_H,
		    &c->head_poll_interval_ms);
	case KW_HEADPOLLMAXINTERVAL:
		return cfg_set_duration(p, kw, val, MS_S, MS_D,
		    &c->head_poll_max_interval_ms);
	case KW_STATUSAPI:
		return cfg_set_yesno(p, kw, val, &c->status_api);
	case KW_STATUSLISTEN:
		return cfg_set_listen(p, val);
	case KW_STATUSREQUIREAUTH:
		return cfg_set_yesno(p, kw, val, &c->status_require_auth);
	case KW_STATUSTICKHISTORY:
		if (cfg_uint(val, 1, 100000, &n) == -1)
			return cfg_error(p, "StatusTickHistory must be a "
			    "number from 1 to 100000, not '%s'",
			    cfg_vis(val, vb, sizeof(vb)));
		c->status_tick_history = (uint32_t)n;
		return 0;
	case KW_MULTIPARTTHRESHOLD:
		return cfg_set_size(p, kw, val, 5 * MIB, 5 * GIB,
		    &c->multipart_threshold);
	default:
		return cfg_error(p, "%s is not a global keyword", KWNAME(kw));
	}
}

static int
cfg_set_vault(struct cfg_parser *p, struct cfg_vault *v, enum cfg_kw kw,
    const char *val)
{
	char vb[80];
	uint64_t n;
	size_t i;

	switch (kw) {
	case KW_PATH:
		return cfg_set_path(p, kw, val, v->path, sizeof(v->path));
	case KW_MOUNT:
		return cfg_set_yesno(p, kw, val, &v->mount);
	case KW_MOUNTSIZE:
		return cfg_set_size(p, kw, val, MIB, TIB, &v->mount_size);
	case KW_OWNER:
		return cfg_set_owner(p, v, val);
	case KW_RECIPIENT:
		if (v->nrecipients >= CFG_MAX_RECIPIENTS)
			return cfg_error(p, "too many Recipient lines in Vault "
			    "%s (max %d)", v->name, CFG_MAX_RECIPIENTS);
		if (!cfg_valid_recipient(val))
			return cfg_error(p, "Recipient '%s' is not an age "
			    "X25519 recipient (age1..., %d characters)",
			    cfg_vis(val, vb, sizeof(vb)), CFG_RECIP_LEN);
		for (i = 0; i < v->nrecipients; i++)
			if (strcmp(v->recipients[i], val) == 0)
				return cfg_error(p, "Recipient given twice in "
				    "Vault %s", v->name);
		(void)cfg_strcpy(v->recipients[v->nrecipients],
		    sizeof(v->recipients[0]), val);
		v->nrecipients++;
		return 0;
	case KW_REMOTE:
		return cfg_set_remote(p, v, val);
	case KW_ENDPOINT:
		return cfg_set_endpoint(p, v, val);
	case KW_REGION:
		for (i = 0; val[i] != '\0'; i++) {
			if (i >= 63 || (!(val[i] >= 'a' && val[i] <= 'z') &&
			    !cfg_isdigit(val[i]) && val[i] != '-'))
				return cfg_error(p, "Region must be 1 to 63 of "
				    "a-z 0-9 -, not '%s'",
				    cfg_vis(val, vb, sizeof(vb)));
		}
		(void)cfg_strcpy(v->region, sizeof(v->region), val);
		return 0;
	case KW_PATHSTYLE:
		return cfg_set_yesno(p, kw, val, &v->path_style);
	case KW_INTERVAL:
	case KW_CREDENTIALSFILE:
		return cfg_set_both(p, kw, val, &v->interval_ms,
		    v->credentials_file);
	case KW_HISTORYINTERVAL:
		if (strcasecmp(val, "off") == 0) {
			v->history_interval_ms = 0;
			return 0;
		}
		return cfg_set_duration(p, kw, val, MS_M, DURATION_MAX,
		    &v->history_interval_ms);
	case KW_HISTORYKEEP:
		if (cfg_uint(val, 0, 100000, &n) == -1)
			return cfg_error(p, "HistoryKeep must be a number from "
			    "0 to 100000, not '%s'",
			    cfg_vis(val, vb, sizeof(vb)));
		v->history_keep = (int)n;
		return 0;
	case KW_VERIFYINTERVAL:
		return cfg_set_verify(p, val, &v->verify_interval_ms);
	case KW_WATCHER:
		if (strcasecmp(val, "inotify") == 0)
			v->watcher_polling = 0;
		else if (strcasecmp(val, "polling") == 0)
			v->watcher_polling = 1;
		else
			return cfg_error(p, "Watcher must be inotify or polling, "
			    "not '%s'", cfg_vis(val, vb, sizeof(vb)));
		return 0;
	default:
		return cfg_error(p, "%s is not a Vault keyword", KWNAME(kw));
	}
}

static int
cfg_new_vault(struct cfg_parser *p, const char *name, int *cur)
{
	struct cfg *c = p->c;
	struct cfg_vault *nv, *v;
	char vb[80];
	size_t i;

	if (!cfg_valid_vault_name(name))
		return cfg_error(p, "bad Vault name '%s' (1 to %d of A-Z a-z "
		    "0-9 . _ -, starting with a letter or digit)",
		    cfg_vis(name, vb, sizeof(vb)), CFG_NAME_MAX - 1);
	for (i = 0; i < c->nvaults; i++) {
		if (strcmp(c->vaults[i].name, name) == 0)
			return cfg_error(p, "duplicate Vault %s (first defined "
			    "at %s:%d)", name, c->vaults[i].file,
			    c->vaults[i].line);
	}
	if (c->nvaults >= CFG_MAX_VAULTS)
		return cfg_error(p, "too many Vault blocks (max %d)",
		    CFG_MAX_VAULTS);
	nv = reallocarray(c->vaults, c->nvaults + 1, sizeof(*nv));
	if (nv == NULL)
		return cfg_error(p, "out of memory");
	c->vaults = nv;
	v = &c->vaults[c->nvaults];
	memset(v, 0, sizeof(*v));
	(void)cfg_strcpy(v->name, sizeof(v->name), name);
	(void)cfg_strcpy(v->file, sizeof(v->file), cfg_fname(p, p->file));
	v->line = p->line;
	v->mount = p->env->mode == CFG_SYSTEM;
	v->mount_size = 64 * MIB;
	(void)cfg_strcpy(v->endpoint, sizeof(v->endpoint),
	    "https://s3.amazonaws.com");
	(void)cfg_strcpy(v->region, sizeof(v->region), "us-east-1");
	v->history_keep = 30;
	*cur = (int)c->nvaults++;
	return 0;
}

/* ---- files and Include --------------------------------------------------- */

/*
 * O_NONBLOCK: a FIFO named by a config (or matched by a glob) must not hang
 * the daemon in open(); it is rejected as not a regular file afterwards.
 */
static int
cfg_read_file(const char *path, char **bufp, size_t *lenp, int *eno,
    char *why, size_t whylen)
{
	struct stat st;
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd;

	*eno = 0;
	*bufp = NULL;
	*lenp = 0;
	do {
		fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	} while (fd == -1 && errno == EINTR);
	if (fd == -1) {
		*eno = errno;
		(void)snprintf(why, whylen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		(void)snprintf(why, whylen, "cannot stat %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		(void)snprintf(why, whylen, "%s is not a regular file", path);
		goto fail;
	}
	for (;;) {
		if (len == cap) {
			/* One byte past the limit tells "too large" apart. */
			if (cap > CFG_FILE_MAX) {
				(void)snprintf(why, whylen, "%s is larger than "
				    "1 MiB", path);
				goto fail;
			}
			cap = cap == 0 ? 8192 : cap * 2;
			if (cap > CFG_FILE_MAX + 1)
				cap = CFG_FILE_MAX + 1;
			if ((nb = realloc(buf, cap)) == NULL) {
				(void)snprintf(why, whylen, "out of memory");
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			(void)snprintf(why, whylen, "cannot read %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > CFG_FILE_MAX) {
		(void)snprintf(why, whylen, "%s is larger than 1 MiB", path);
		goto fail;
	}
	(void)close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;

 fail:
	free(buf);
	(void)close(fd);
	return -1;
}

static int
cfg_parse_file_at(struct cfg_parser *p, const char *path, int depth)
{
	char why[sizeof(p->err->msg)], *buf;
	size_t len;
	int eno, idx, r;
	int file = p->file, line = p->line;

	if (strlen(path) >= CFG_PATH_MAX)
		return cfg_error(p, "Include: path is too long (max %d bytes)",
		    CFG_PATH_MAX - 1);
	if (cfg_read_file(path, &buf, &len, &eno, why, sizeof(why)) == -1)
		return cfg_error(p, "Include: %s", why);
	if ((idx = cfg_add_file(p, path)) == -1) {
		free(buf);
		return -1;
	}
	r = cfg_parse_buffer(p, idx, buf, len, depth);
	free(buf);
	p->file = file;
	p->line = line;
	return r;
}

static int
cfg_sort_paths(const void *a, const void *b)
{
	return strcmp(*(char * const *)a, *(char * const *)b);
}

/* A directory that is missing or is a file simply matches nothing. */
static int
cfg_glob_errfunc(const char *path, int eno)
{
	(void)path;
	return eno != ENOENT && eno != ENOTDIR;
}

static int
cfg_include(struct cfg_parser *p, const char *pattern, int depth)
{
	char full[CFG_PATH_MAX], vb[80];
	const char *cur = cfg_fname(p, p->file), *slash;
	glob_t g;
	size_t i;
	int r;

	if (depth + 1 > CFG_INCLUDE_DEPTH)
		return cfg_error(p, "Include nested too deeply (max %d levels; "
		    "an include loop?)", CFG_INCLUDE_DEPTH);
	if (pattern[0] == '/' || (slash = strrchr(cur, '/')) == NULL)
		r = cfg_strcpy(full, sizeof(full), pattern);
	else {
		int dlen = (int)(slash - cur) + 1;

		r = snprintf(full, sizeof(full), "%.*s%s", dlen, cur, pattern);
		r = (r < 0 || (size_t)r >= sizeof(full)) ? -1 : 0;
	}
	if (r == -1)
		return cfg_error(p, "Include: path is too long (max %d bytes)",
		    CFG_PATH_MAX - 1);

	if (strpbrk(full, "*?[") == NULL)
		return cfg_parse_file_at(p, full, depth + 1);

	memset(&g, 0, sizeof(g));
	r = glob(full, 0, cfg_glob_errfunc, &g);
	if (r == GLOB_NOMATCH) {
		globfree(&g);
		return 0;
	}
	if (r != 0) {
		globfree(&g);
		return cfg_error(p, "Include %s: %s",
		    cfg_vis(full, vb, sizeof(vb)), r == GLOB_NOSPACE ?
		    "out of memory" : "cannot read a directory it names");
	}
	/* strcmp, not the locale's collation: the order must not vary. */
	qsort(g.gl_pathv, g.gl_pathc, sizeof(*g.gl_pathv), cfg_sort_paths);
	for (i = 0, r = 0; i < g.gl_pathc && r == 0; i++)
		r = cfg_parse_file_at(p, g.gl_pathv[i], depth + 1);
	globfree(&g);
	return r;
}

/* ---- lines --------------------------------------------------------------- */

static int
cfg_lookup(const char *word)
{
	int i;

	for (i = 0; i < KW__COUNT; i++)
		if (strcasecmp(word, cfg_kw[i].name) == 0)
			return i;
	return -1;
}

static int
cfg_isspace(int ch)
{
	return ch == ' ' || ch == '\t';
}

/* 's' is one line, NUL-terminated, no newline; modified in place. */
static int
cfg_line(struct cfg_parser *p, char *s, int *cur, int depth)
{
	struct cfg *c = p->c;
	struct cfg_loc *locs, *loc;
	char *word, *val, *q, vb[80];
	const char *where;
	int kw, flags;

	while (cfg_isspace(*s))
		s++;
	if (*s == '\0' || *s == '#')
		return 0;
	word = s;
	while (*s != '\0' && !cfg_isspace(*s) && *s != '=')
		s++;
	if (s == word)
		return cfg_error(p, "missing keyword before '='");
	if (*s != '\0')
		*s++ = '\0';
	if ((kw = cfg_lookup(word)) == -1)
		return cfg_error(p, "unknown keyword '%s'",
		    cfg_vis(word, vb, sizeof(vb)));

	/* The separator: blanks, at most one '=', blanks. */
	while (cfg_isspace(*s))
		s++;
	if (*s == '=') {
		s++;
		while (cfg_isspace(*s))
			s++;
	}
	if (*s == '"') {
		val = ++s;
		if ((q = strchr(s, '"')) == NULL)
			return cfg_error(p, "%s: unterminated quote",
			    KWNAME(kw));
		*q = '\0';
		s = q + 1;
	} else {
		val = s;
		while (*s != '\0' && !cfg_isspace(*s))
			s++;
		if (*s != '\0')
			*s++ = '\0';
	}
	while (cfg_isspace(*s))
		s++;
	if (*s != '\0')
		return cfg_error(p, "%s: garbage at end of line: '%s'",
		    KWNAME(kw), cfg_vis(s, vb, sizeof(vb)));
	if (*val == '\0')
		return cfg_error(p, "%s requires a value", KWNAME(kw));
	for (q = val; *q != '\0'; q++)
		if (cfg_iscntrl(*q))
			return cfg_error(p, "%s: control character in value",
			    KWNAME(kw));

	if (kw == KW_VAULT)
		return cfg_new_vault(p, val, cur);

	flags = cfg_kw[kw].flags;
	if (*cur >= 0 && !(flags & SC_VAULT))
		return cfg_error(p, "%s is not allowed inside a Vault block "
		    "(started at %s:%d)", KWNAME(kw), c->vaults[*cur].file,
		    c->vaults[*cur].line);
	if (*cur < 0 && !(flags & SC_GLOBAL))
		return cfg_error(p, "%s is only allowed inside a Vault block",
		    KWNAME(kw));

	locs = *cur >= 0 ? p->o.vloc[*cur] : p->o.gloc;
	loc = &locs[kw];
	if (!(flags & SC_MULTI) && loc->line != 0) {
		where = *cur >= 0 ? "in this Vault block" : "globally";
		return cfg_error(p, "duplicate %s %s (first given at %s:%d)",
		    KWNAME(kw), where, cfg_fname(p, loc->file), loc->line);
	}
	loc->file = p->file;
	loc->line = p->line;

	if (kw == KW_INCLUDE)
		return cfg_include(p, val, depth);
	if (*cur >= 0)
		return cfg_set_vault(p, &c->vaults[*cur], kw, val);
	return cfg_set_global(p, kw, val);
}

/*
 * Scope is per file: a Vault block opened in an included file ends with
 * that file, so the includer is back at global scope.
 */
static int
cfg_parse_buffer(struct cfg_parser *p, int file, const char *buf, size_t len,
    int depth)
{
	char line[CFG_LINE_MAX + 2];
	const char *s, *nl;
	size_t off = 0, ll, adv;
	int lineno = 0, cur = -1;

	if (len > CFG_FILE_MAX)
		return cfg_error_at(p, file, 0, "file is larger than 1 MiB");
	while (off < len) {
		s = buf + off;
		nl = memchr(s, '\n', len - off);
		ll = nl != NULL ? (size_t)(nl - s) : len - off;
		adv = ll + (nl != NULL);
		p->file = file;
		p->line = ++lineno;
		if (memchr(s, '\0', ll) != NULL)
			return cfg_error(p, "NUL byte in line");
		if (ll > 0 && s[ll - 1] == '\r')
			ll--;
		if (ll > CFG_LINE_MAX)
			return cfg_error(p, "line is too long (max %d bytes)",
			    CFG_LINE_MAX);
		memcpy(line, s, ll);
		line[ll] = '\0';
		off += adv;
		if (cfg_line(p, line, &cur, depth) == -1)
			return -1;
	}
	return 0;
}

/* ---- defaults and the result --------------------------------------------- */

static void
cfg_defaults(struct cfg *c, const struct cfg_env *env)
{
	c->mode = env->mode;
	(void)cfg_strcpy(c->control_group, sizeof(c->control_group),
	    "vaultsync");
	(void)cfg_strcpy(c->privsep_user, sizeof(c->privsep_user),
	    "_vaultsync");
	(void)cfg_strcpy(c->privsep_chroot, sizeof(c->privsep_chroot),
	    DATADIR "/vaultsync/empty");
	if (!cfg_valid_device_id(env->hostname) ||
	    cfg_strcpy(c->device_id, sizeof(c->device_id), env->hostname) == -1)
		(void)cfg_strcpy(c->device_id, sizeof(c->device_id),
		    "localhost");
	c->log_format = CFG_LOG_JSON;
	c->log_level = CFG_LVL_INFO;
	c->interval_ms = 5 * MS_M;
	c->watcher_debounce_ms = 500;
	c->head_poll_interval_ms = 10 * MS_S;
	c->head_poll_max_interval_ms = 120 * MS_S;
	c->status_api = 1;
	(void)cfg_strcpy(c->status_listen, sizeof(c->status_listen),
	    "127.0.0.1:0");
	c->status_family = AF_INET;
	c->status_addr[0] = 127;
	c->status_addr[3] = 1;
	c->status_port = 0;
	c->status_require_auth = 1;
	c->status_tick_history = 100;
	c->multipart_threshold = 64 * MIB;
}

static int
cfg_abs(const char *s)
{
	return s[0] == '/';
}

/*
 * Fill a defaulted path from the environment.  An unusable result (relative
 * $HOME, control characters, too long) is an error rather than a guess.
 */
static int
cfg_default_path(struct cfg_parser *p, enum cfg_kw kw, char *dst, size_t len,
    const char *base, const char *tail, const char *from)
{
	const char *q;

	if (!cfg_abs(base) || cfg_join(dst, len, base, tail) == -1)
		goto bad;
	for (q = dst; *q != '\0'; q++)
		if (cfg_iscntrl(*q))
			goto bad;
	return 0;
 bad:
	dst[0] = '\0';
	return cfg_error_at(p, 0, 0, "cannot derive a default %s from %s; "
	    "set %s explicitly", KWNAME(kw), from, KWNAME(kw));
}

static int
cfg_finish(struct cfg_parser *p)
{
	struct cfg *c = p->c;
	const struct cfg_env *e = p->env;
	struct cfg_loc *l;
	struct cfg_vault *v;
	char a[32], b[32], uidbuf[48];
	size_t i;
	int user = e->mode == CFG_USER;

	if (p->o.gloc[KW_RUNTIMEDIR].line == 0) {
		if (!user) {
			(void)cfg_strcpy(c->runtime_dir,
			    sizeof(c->runtime_dir), "/run/vaultsync");
		} else if (e->xdg_runtime_dir[0] != '\0') {
			if (cfg_default_path(p, KW_RUNTIMEDIR, c->runtime_dir,
			    sizeof(c->runtime_dir), e->xdg_runtime_dir,
			    "/vaultsync", "XDG_RUNTIME_DIR") == -1)
				return -1;
		} else {
			(void)snprintf(uidbuf, sizeof(uidbuf), "/run/user/%u",
			    e->uid);
			(void)cfg_default_path(p, KW_RUNTIMEDIR,
			    c->runtime_dir, sizeof(c->runtime_dir), uidbuf,
			    "/vaultsync", "uid");
		}
	}
	if (p->o.gloc[KW_STATEDIR].line == 0) {
		if (!user)
			(void)cfg_strcpy(c->state_dir, sizeof(c->state_dir),
			    "/var/lib/vaultsync");
		else if (e->xdg_state_home[0] != '\0') {
			if (cfg_default_path(p, KW_STATEDIR, c->state_dir,
			    sizeof(c->state_dir), e->xdg_state_home,
			    "/vaultsync", "XDG_STATE_HOME") == -1)
				return -1;
		} else if (cfg_default_path(p, KW_STATEDIR, c->state_dir,
		    sizeof(c->state_dir), e->home, "/.local/state/vaultsync",
		    "HOME") == -1)
			return -1;
	}
	if (p->o.gloc[KW_CREDENTIALSFILE].line == 0) {
		if (e->credentials_directory[0] != '\0') {
			if (cfg_default_path(p, KW_CREDENTIALSFILE,
			    c->credentials_file, sizeof(c->credentials_file),
			    e->credentials_directory, "/s3",
			    "CREDENTIALS_DIRECTORY") == -1)
				return -1;
		} else if (!user)
			(void)cfg_strcpy(c->credentials_file,
			    sizeof(c->credentials_file),
			    SYSCONFDIR "/vaultsync/s3.env");
		else if (e->xdg_config_home[0] != '\0') {
			if (cfg_default_path(p, KW_CREDENTIALSFILE,
			    c->credentials_file, sizeof(c->credentials_file),
			    e->xdg_config_home, "/vaultsync/s3.env",
			    "XDG_CONFIG_HOME") == -1)
				return -1;
		} else if (cfg_default_path(p, KW_CREDENTIALSFILE,
		    c->credentials_file, sizeof(c->credentials_file), e->home,
		    "/.config/vaultsync/s3.env", "HOME") == -1)
			return -1;
	}
	l = &p->o.gloc[KW_CONTROLSOCKET];
	if (l->line == 0 && cfg_join(c->control_socket,
	    sizeof(c->control_socket), c->runtime_dir, "/ctl.sock") == -1) {
		l = &p->o.gloc[KW_RUNTIMEDIR];
		return cfg_error_at(p, l->file, l->line, "ControlSocket "
		    "RuntimeDir/ctl.sock would be longer than %d bytes; set "
		    "a shorter RuntimeDir or ControlSocket", CFG_SUN_PATH - 1);
	}

	if (c->head_poll_max_interval_ms < c->head_poll_interval_ms) {
		l = &p->o.gloc[KW_HEADPOLLMAXINTERVAL];
		cfg_format_duration(c->head_poll_max_interval_ms, a, sizeof(a));
		cfg_format_duration(c->head_poll_interval_ms, b, sizeof(b));
		return cfg_error_at(p, l->file, l->line, "HeadPollMaxInterval "
		    "(%s) must not be shorter than HeadPollInterval (%s)",
		    a, b);
	}

	for (i = 0; i < c->nvaults; i++) {
		v = &c->vaults[i];
		if (v->path[0] == '\0') {
			(void)cfg_strcpy(p->err->file, sizeof(p->err->file),
			    v->file);
			p->err->line = v->line;
			(void)snprintf(p->err->msg, sizeof(p->err->msg),
			    "Vault %s has no Path", v->name);
			return -1;
		}
		if (p->o.vloc[i][KW_INTERVAL].line == 0)
			v->interval_ms = c->interval_ms;
		if (p->o.vloc[i][KW_VERIFYINTERVAL].line == 0)
			v->verify_interval_ms = c->verify_interval_ms;
		if (p->o.vloc[i][KW_CREDENTIALSFILE].line == 0)
			memcpy(v->credentials_file, c->credentials_file,
			    sizeof(v->credentials_file));
	}
	if (c->nvaults == 0)
		return cfg_error_at(p, 0, 0, "no vaults configured");
	return 0;
}

static int
cfg_run(struct cfg *c, const char *name, const char *buf, size_t len,
    const struct cfg_env *env, struct cfg_err *err)
{
	struct cfg_parser *p;
	int r = -1, i;

	cfg_defaults(c, env);
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		cfg_err_set(err, name, 0, "out of memory");
		return -1;
	}
	p->c = c;
	p->env = env;
	p->err = err;
	p->file = -1;
	if (cfg_add_file(p, name) == 0 &&
	    cfg_parse_buffer(p, 0, buf, len, 0) == 0)
		r = cfg_finish(p);
	if (r == 0) {
		if ((c->origin = malloc(sizeof(*c->origin))) == NULL) {
			cfg_err_set(err, name, 0, "out of memory");
			r = -1;
		} else {
			*c->origin = p->o;	/* the file names move with it */
			p->o.files = NULL;
			p->o.nfiles = 0;
		}
	}
	for (i = 0; i < p->o.nfiles; i++)
		free(p->o.files[i]);
	free(p->o.files);
	free(p);
	return r;
}

static void
cfg_fail(struct cfg *c)
{
	cfg_free(c);
	memset(c, 0, sizeof(*c));
}

int
cfg_load_buffer(struct cfg *c, const char *name, const char *buf, size_t len,
    const struct cfg_env *env, struct cfg_err *err)
{
	memset(c, 0, sizeof(*c));
	memset(err, 0, sizeof(*err));
	if (name == NULL)
		name = "(buffer)";
	if (strlen(name) >= CFG_PATH_MAX) {
		cfg_err_set(err, name, 0, "file name is too long (max %d "
		    "bytes)", CFG_PATH_MAX - 1);
		return -1;
	}
	if (buf == NULL && len != 0) {
		cfg_err_set(err, name, 0, "no buffer");
		return -1;
	}
	(void)cfg_strcpy(c->file, sizeof(c->file), name);
	if (cfg_run(c, name, buf != NULL ? buf : "", len, env, err) == -1) {
		cfg_fail(c);
		return -1;
	}
	return 0;
}

int
cfg_load(struct cfg *c, const char *file, int explicit_file,
    const struct cfg_env *env, struct cfg_err *err)
{
	char why[sizeof(err->msg)], *buf = NULL;
	size_t len = 0;
	int eno, r;

	memset(c, 0, sizeof(*c));
	memset(err, 0, sizeof(*err));
	if (file == NULL || file[0] == '\0') {
		cfg_err_set(err, "", 0, "no configuration file named");
		return -1;
	}
	if (strlen(file) >= CFG_PATH_MAX) {
		cfg_err_set(err, file, 0, "file name is too long "
		    "(max %d bytes)", CFG_PATH_MAX - 1);
		return -1;
	}
	if (cfg_read_file(file, &buf, &len, &eno, why, sizeof(why)) == -1) {
		if (explicit_file || eno != ENOENT) {
			cfg_err_set(err, file, 0, "%s", why);
			return -1;
		}
	} else
		(void)cfg_strcpy(c->file, sizeof(c->file), file);
	r = cfg_run(c, file, buf != NULL ? buf : "", len, env, err);
	free(buf);
	if (r == -1) {
		cfg_fail(c);
		return -1;
	}
	return 0;
}

void
cfg_free(struct cfg *c)
{
	int i;

	if (c == NULL)
		return;
	free(c->vaults);
	c->vaults = NULL;
	c->nvaults = 0;
	if (c->origin != NULL) {
		for (i = 0; i < c->origin->nfiles; i++)
			free(c->origin->files[i]);
		free(c->origin->files);
		free(c->origin);
		c->origin = NULL;
	}
}

void
cfg_where(const struct cfg *c, const struct cfg_vault *v, const char *keyword,
    struct cfg_err *at)
{
	const struct cfg_origin *o = c->origin;
	const struct cfg_loc *l = NULL;
	int kw = cfg_lookup(keyword);

	memset(at, 0, sizeof(*at));
	(void)cfg_strcpy(at->file, sizeof(at->file), c->file);
	if (o == NULL || kw < 0)
		return;
	if (v != NULL && v >= c->vaults && v < c->vaults + c->nvaults) {
		l = &o->vloc[v - c->vaults][kw];
		if (l->line == 0 && !(cfg_kw[kw].flags & SC_GLOBAL)) {
			/* A vault's own default: the block it belongs to. */
			(void)cfg_strcpy(at->file, sizeof(at->file), v->file);
			at->line = v->line;
			return;
		}
	}
	if ((l == NULL || l->line == 0) && (cfg_kw[kw].flags & SC_GLOBAL))
		l = &o->gloc[kw];
	if (l != NULL && l->line > 0 && l->file >= 0 && l->file < o->nfiles) {
		(void)cfg_strcpy(at->file, sizeof(at->file), o->files[l->file]);
		at->line = l->line;
	}
}

int
cfg_vault_owner_ids(const struct cfg_vault *v, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	*uid = 0;
	*gid = 0;
	if (v->owner_user[0] != '\0') {
		struct passwd *pw = getpwnam(v->owner_user);

		if (pw == NULL) {
			snprintf(err, errlen, "vault %s: Owner user %s does not exist", v->name,
			    v->owner_user);
			return -1;
		}
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (v->owner_group[0] != '\0') {
		struct group *gr = getgrnam(v->owner_group);

		if (gr == NULL) {
			snprintf(err, errlen, "vault %s: Owner group %s does not exist", v->name,
			    v->owner_group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

const struct cfg_vault *
cfg_vault_find(const struct cfg *c, const char *name)
{
	size_t i;

	if (c == NULL || name == NULL)
		return NULL;
	for (i = 0; i < c->nvaults; i++)
		if (strcmp(c->vaults[i].name, name) == 0)
			return &c->vaults[i];
	return NULL;
}

/* ---- dump ---------------------------------------------------------------- */

/* Values never hold '"' and a space together, so quoting needs no escapes. */
static void
cfg_put(FILE *out, const char *indent, const char *kw, const char *val)
{
	if (strchr(val, ' ') != NULL)
		fprintf(out, "%s%s \"%s\"\n", indent, kw, val);
	else
		fprintf(out, "%s%s %s\n", indent, kw, val);
}

static void
cfg_put_duration(FILE *out, const char *indent, const char *kw, uint64_t ms)
{
	char buf[64];

	cfg_format_duration(ms, buf, sizeof(buf));
	cfg_put(out, indent, kw, buf);
}

static void
cfg_put_size(FILE *out, const char *indent, const char *kw, uint64_t bytes)
{
	char buf[64];

	cfg_format_size(bytes, buf, sizeof(buf));
	cfg_put(out, indent, kw, buf);
}

static void
cfg_put_verify(FILE *out, const char *indent, uint64_t ms)
{
	if (ms == 0)
		cfg_put(out, indent, "VerifyInterval", "off");
	else
		cfg_put_duration(out, indent, "VerifyInterval", ms);
}

static const char *
cfg_yesno(int v)
{
	return v ? "yes" : "no";
}

int
cfg_dump(const struct cfg *c, FILE *out)
{
	static const char *formats[] = { "json", "text", "pretty" };
	static const char *levels[] = { "error", "warning", "info", "debug" };
	const struct cfg_vault *v;
	const char *t = "\t";
	char buf[CFG_NAME_MAX * 2 + 2];
	size_t i, j;

	fprintf(out, "# vaultsyncd effective configuration.\n"
	    "# Defaults are spelled out; included files are expanded.\n\n");
	cfg_put(out, "", "RuntimeDir", c->runtime_dir);
	cfg_put(out, "", "StateDir", c->state_dir);
	cfg_put(out, "", "ControlSocket", c->control_socket);
	cfg_put(out, "", "ControlGroup", c->control_group);
	cfg_put(out, "", "PrivsepUser", c->privsep_user);
	cfg_put(out, "", "PrivsepChroot", c->privsep_chroot);
	cfg_put(out, "", "DeviceId", c->device_id);
	cfg_put(out, "", "LogFormat", (unsigned)c->log_format < 3 ?
	    formats[c->log_format] : "json");
	cfg_put(out, "", "LogLevel", (unsigned)c->log_level < 4 ?
	    levels[c->log_level] : "info");
	cfg_put_duration(out, "", "Interval", c->interval_ms);
	cfg_put_duration(out, "", "WatcherDebounce", c->watcher_debounce_ms);
	cfg_put_duration(out, "", "HeadPollInterval", c->head_poll_interval_ms);
	cfg_put_duration(out, "", "HeadPollMaxInterval",
	    c->head_poll_max_interval_ms);
	cfg_put(out, "", "StatusAPI", cfg_yesno(c->status_api));
	cfg_put(out, "", "StatusListen", c->status_listen);
	cfg_put(out, "", "StatusRequireAuth",
	    cfg_yesno(c->status_require_auth));
	fprintf(out, "StatusTickHistory %u\n", (unsigned)c->status_tick_history);
	cfg_put(out, "", "CredentialsFile", c->credentials_file);
	cfg_put_size(out, "", "MultipartThreshold", c->multipart_threshold);
	cfg_put_verify(out, "", c->verify_interval_ms);

	for (i = 0; i < c->nvaults; i++) {
		v = &c->vaults[i];
		fprintf(out, "\nVault %s\n", v->name);
		cfg_put(out, t, "Path", v->path);
		cfg_put(out, t, "Mount", cfg_yesno(v->mount));
		cfg_put_size(out, t, "MountSize", v->mount_size);
		if (v->owner_user[0] != '\0') {
			(void)snprintf(buf, sizeof(buf), "%s%s%s",
			    v->owner_user, v->owner_group[0] != '\0' ? ":" : "",
			    v->owner_group);
			cfg_put(out, t, "Owner", buf);
		}
		for (j = 0; j < v->nrecipients && j < CFG_MAX_RECIPIENTS; j++)
			cfg_put(out, t, "Recipient", v->recipients[j]);
		if (v->remote[0] != '\0')
			cfg_put(out, t, "Remote", v->remote);
		cfg_put(out, t, "Endpoint", v->endpoint);
		cfg_put(out, t, "Region", v->region);
		cfg_put(out, t, "PathStyle", cfg_yesno(v->path_style));
		cfg_put(out, t, "CredentialsFile", v->credentials_file);
		cfg_put_duration(out, t, "Interval", v->interval_ms);
		if (v->history_interval_ms == 0)
			cfg_put(out, t, "HistoryInterval", "off");
		else
			cfg_put_duration(out, t, "HistoryInterval",
			    v->history_interval_ms);
		fprintf(out, "\tHistoryKeep %d\n", v->history_keep);
		cfg_put_verify(out, t, v->verify_interval_ms);
		cfg_put(out, t, "Watcher", v->watcher_polling ? "polling" : "inotify");
	}
	if (fflush(out) == EOF || ferror(out))
		return -1;
	return 0;
}

/* ---- environment --------------------------------------------------------- */

/* The XDG spec says relative values are to be ignored. */
static void
cfg_env_abs(char *dst, size_t len, const char *val)
{
	dst[0] = '\0';
	if (val != NULL && val[0] == '/' && cfg_strcpy(dst, len, val) == -1)
		dst[0] = '\0';
}

void
cfg_env_from_process(struct cfg_env *env, enum cfg_mode mode)
{
	struct passwd *pw;
	char hn[256];
	size_t i, o;

	memset(env, 0, sizeof(*env));
	env->mode = mode;
	env->uid = (unsigned)getuid();
	cfg_env_abs(env->home, sizeof(env->home), getenv("HOME"));
	if (env->home[0] == '\0' && (pw = getpwuid(getuid())) != NULL)
		cfg_env_abs(env->home, sizeof(env->home), pw->pw_dir);
	cfg_env_abs(env->xdg_config_home, sizeof(env->xdg_config_home),
	    getenv("XDG_CONFIG_HOME"));
	cfg_env_abs(env->xdg_state_home, sizeof(env->xdg_state_home),
	    getenv("XDG_STATE_HOME"));
	cfg_env_abs(env->xdg_runtime_dir, sizeof(env->xdg_runtime_dir),
	    getenv("XDG_RUNTIME_DIR"));
	cfg_env_abs(env->credentials_directory,
	    sizeof(env->credentials_directory), getenv("CREDENTIALS_DIRECTORY"));

	memset(hn, 0, sizeof(hn));
	if (gethostname(hn, sizeof(hn) - 1) == -1)
		hn[0] = '\0';
	for (i = 0, o = 0; hn[i] != '\0' && hn[i] != '.' &&
	    o < sizeof(env->hostname) - 1; i++) {
		char ch = hn[i];

		env->hostname[o++] = (cfg_isalnum(ch) || ch == '_' ||
		    ch == '-') ? ch : '-';
	}
	env->hostname[o] = '\0';
	if (o == 0)
		(void)cfg_strcpy(env->hostname, sizeof(env->hostname),
		    "localhost");
}

void
cfg_default_file(const struct cfg_env *env, char *buf, size_t len)
{
	int r;

	if (len == 0)
		return;
	if (env->mode == CFG_SYSTEM)
		r = cfg_join(buf, len, SYSCONFDIR, "/vaultsync/vaultsyncd.conf");
	else if (env->xdg_config_home[0] != '\0')
		r = cfg_join(buf, len, env->xdg_config_home,
		    "/vaultsync/vaultsyncd.conf");
	else
		r = cfg_join(buf, len, env->home,
		    "/.config/vaultsync/vaultsyncd.conf");
	/* A truncated name would silently open some other file. */
	if (r == -1)
		buf[0] = '\0';
}
