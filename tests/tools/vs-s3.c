/*
 * vs-s3: the uploader's S3 client (uploader/s3.c) as a command, for the
 * integration tests and benchmarks.  Not installed.
 *
 *   vs-s3 -e ENDPOINT -r REGION -b BUCKET [-P] -c CREDSFILE [-C CAFILE]
 *         [-p PAGESIZE] [-M MAXGET] [-Z] OP ARGS
 *
 *   put KEY FILE [--if-none-match | --if-match ETAG] [--unsigned]
 *       [--content-id ID] [--device-id ID]
 *   get KEY OUTFILE          head KEY          delete KEY
 *   list PREFIX              mpu-list PREFIX   mpu-abort KEY ID
 *   mpu-create KEY           (starts an upload and leaves it unfinished)
 *   mpu-parts KEY ID FILE PARTSIZE [--unsigned] [--inflight N]
 *                            (s3_mpu_parts into upload ID, no complete)
 *   mpu-put KEY FILE PARTSIZE [--if-none-match | --if-match ETAG] [--unsigned]
 *       [--inflight N]
 *
 * mpu-put sends its parts as the uploader does (s3_mpu_parts, N in flight,
 * default S3_MPU_INFLIGHT_DEFAULT, each part hashed just before it goes up
 * unless --unsigned); --inflight 0 sends them one at a time with
 * s3_mpu_part, every hash computed before the setup point.
 * Every file is opened and hashed before the client is set up; then
 * "vs-s3: setup done" goes to stderr and from there on the process opens
 * nothing and resolves nothing (-Z proves it: the uploader's own seccomp
 * policy is applied at that point).  The result is one line on stdout:
 *   OUTCOME http=STATUS etag=ETAG size=N [...] error=TEXT
 * Exit 0 for OK, 3 for PRECONDITION, 1 for anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "creds.h"
#include "sandbox.h"
#include "s3.h"

#define MAX_PARTS	10000

static const char *outcome_names[] = { "OK", "NOT_FOUND", "PRECONDITION", "AUTH", "RETRY",
	"FAILED" };

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("vs-s3: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void __attribute__((noreturn))
usage(void)
{
	fputs("usage: vs-s3 -e ENDPOINT -r REGION -b BUCKET [-P] -c CREDSFILE [-C CAFILE]\n"
	    "             [-p PAGESIZE] [-M MAXGET] [-Z] OP ARGS\n"
	    "  put KEY FILE [--if-none-match | --if-match ETAG] [--unsigned]\n"
	    "      [--content-id ID] [--device-id ID]\n"
	    "  get KEY OUTFILE | head KEY | delete KEY | list PREFIX\n"
	    "  mpu-put KEY FILE PARTSIZE [--if-none-match | --if-match ETAG] [--unsigned]\n"
	    "      [--inflight N]\n"
	    "  mpu-create KEY | mpu-list PREFIX | mpu-abort KEY ID\n"
	    "  mpu-parts KEY ID FILE PARTSIZE [--unsigned] [--inflight N]\n", stderr);
	exit(1);
}

static uint64_t
parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || s[0] == '-')
		die("bad number: %s", s);
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end != '\0')
		die("bad number: %s", s);
	return v;
}

/* SHA-256 of fd bytes [off, off+len), hex. */
static void
hash_range(int fd, uint64_t off, uint64_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	static unsigned char buf[1 << 16];
	unsigned char md[32];
	unsigned mdlen, i;
	EVP_MD_CTX *ctx;
	ssize_t n;

	if ((ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		die("EVP");
	while (len > 0) {
		n = pread(fd, buf, len < sizeof(buf) ? (size_t)len : sizeof(buf), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("reading: %s", n == 0 ? "short file" : strerror(errno));
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		die("EVP");
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

static void
print_result(const struct s3_result *res, const char *extra)
{
	printf("%s http=%ld etag=%s size=%" PRIu64 " mtime=%" PRId64 "%s%s%s%s%s error=%s\n",
	    outcome_names[res->outcome], res->http_status, res->etag, res->size,
	    res->last_modified, res->content_id[0] ? " content-id=" : "", res->content_id,
	    res->device_id[0] ? " device-id=" : "", res->device_id, extra ? extra : "",
	    res->error);
}

static int
exit_code(int rc, const struct s3_result *res)
{
	if (rc != 0)
		return 1;
	return res->outcome == S3_OK ? 0 : res->outcome == S3_PRECONDITION ? 3 : 1;
}

static int
print_object(void *arg, const struct s3_object *o)
{
	printf("%s %" PRIu64 " %s %" PRId64 "\n", o->key, o->size, o->etag, o->last_modified);
	(*(size_t *)arg)++;
	return 0;
}

static int
print_upload(void *arg, const char *key, const char *id, int64_t initiated)
{
	printf("%s %s %" PRId64 "\n", key, id, initiated);
	(*(size_t *)arg)++;
	return 0;
}

struct opts {
	enum s3_cond cond;
	const char *etag, *cid, *did;
	int unsigned_payload;
	int inflight;		/* mpu-put: parts in flight, 0 = s3_mpu_part one at a time */
};

static void
parse_put_opts(int argc, char **argv, struct opts *o)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--if-none-match") == 0 && o->cond == S3_COND_NONE)
			o->cond = S3_COND_IF_NONE_MATCH;
		else if (strcmp(argv[i], "--if-match") == 0 && i + 1 < argc &&
		    o->cond == S3_COND_NONE) {
			o->cond = S3_COND_IF_MATCH;
			o->etag = argv[++i];
		} else if (strcmp(argv[i], "--unsigned") == 0)
			o->unsigned_payload = 1;
		else if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc) {
			o->inflight = (int)parse_size(argv[++i]);
			if (o->inflight > S3_MPU_INFLIGHT_MAX)
				usage();
		}
		else if (strcmp(argv[i], "--content-id") == 0 && i + 1 < argc)
			o->cid = argv[++i];
		else if (strcmp(argv[i], "--device-id") == 0 && i + 1 < argc)
			o->did = argv[++i];
		else
			usage();
	}
}

static int
open_input(const char *path, uint64_t *size)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
		die("%s: %s", path, strerror(errno));
	*size = (uint64_t)st.st_size;
	return fd;
}

/* Create, upload every part, complete: what the uploader does above its threshold. */
static int
mpu_put(struct s3_remote *r, const struct s3_creds *c, const char *key, int fd,
    uint64_t size, uint64_t psize, char (*sha)[65], const struct opts *o,
    struct s3_result *res, char *extra, size_t extralen)
{
	static char etags[MAX_PARTS][S3_ETAG_MAX];
	char id[S3_ID_MAX];
	unsigned i, n = (unsigned)((size + psize - 1) / psize);
	int rc;

	if ((rc = s3_mpu_create(r, c, key, o->cid, o->did, id, res)) != 0 ||
	    res->outcome != S3_OK)
		return rc;
	snprintf(extra, extralen, " upload-id=%s", id);
	if (o->inflight > 0) {
		rc = s3_mpu_parts(r, c, key, id, fd, size, psize, (unsigned)o->inflight,
		    !o->unsigned_payload, etags, res);
		if (rc != 0 || res->outcome != S3_OK) {
			fprintf(stderr, "vs-s3: %s; upload %s left for mpu-abort\n", res->error, id);
			return rc;
		}
		return s3_mpu_complete(r, c, key, id, etags, n, o->cond, o->etag, res);
	}
	for (i = 0; i < n; i++) {
		uint64_t off = (uint64_t)i * psize, len = size - off < psize ? size - off : psize;

		rc = s3_mpu_part(r, c, key, id, i + 1, fd, off, len,
		    o->unsigned_payload ? NULL : sha[i], res);
		if (rc != 0 || res->outcome != S3_OK) {
			fprintf(stderr, "vs-s3: part %u failed; upload %s left for mpu-abort\n",
			    i + 1, id);
			return rc;
		}
		memcpy(etags[i], res->etag, S3_ETAG_MAX);
	}
	return s3_mpu_complete(r, c, key, id, etags, n, o->cond, o->etag, res);
}

int
main(int argc, char **argv)
{
	struct s3_remote_cfg cfg;
	struct s3_remote *r;
	struct s3_result res;
	struct s3_creds sc;
	struct creds cr;
	struct opts o = { S3_COND_NONE, NULL, NULL, NULL, 0, S3_MPU_INFLIGHT_DEFAULT };
	enum cred_state cst;
	char err[256], id[S3_ID_MAX], extra[S3_ID_MAX + 16] = "", (*sha)[65] = NULL;
	const char *credsfile = NULL, *cafile = NULL, *op, *why;
	uint64_t size = 0, psize = 0, maxget = UINT64_C(64) << 30;
	unsigned pagesize = 0, i, nparts = 0;
	size_t count = 0;
	int ch, fd = -1, cfd, rc, zandbox = 0, printed = 0;

	signal(SIGPIPE, SIG_IGN);
	memset(&cfg, 0, sizeof(cfg));
	while ((ch = getopt(argc, argv, "+e:r:b:Pc:C:p:M:Z")) != -1) {
		switch (ch) {
		case 'e':
			snprintf(cfg.endpoint, sizeof(cfg.endpoint), "%s", optarg);
			break;
		case 'r':
			snprintf(cfg.region, sizeof(cfg.region), "%s", optarg);
			break;
		case 'b':
			snprintf(cfg.bucket, sizeof(cfg.bucket), "%s", optarg);
			break;
		case 'P':
			cfg.path_style = 1;
			break;
		case 'c':
			credsfile = optarg;
			break;
		case 'C':
			cafile = optarg;
			break;
		case 'p':
			pagesize = (unsigned)parse_size(optarg);
			break;
		case 'M':
			maxget = parse_size(optarg);
			break;
		case 'Z':
			zandbox = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2 || credsfile == NULL || cfg.endpoint[0] == '\0' || cfg.bucket[0] == '\0')
		usage();
	if (cfg.region[0] == '\0')
		snprintf(cfg.region, sizeof(cfg.region), "us-east-1");
	op = argv[0];

	/* Everything that opens a file happens here, before the setup point. */
	if (strcmp(op, "put") == 0 && argc >= 3) {
		parse_put_opts(argc - 3, argv + 3, &o);
		fd = open_input(argv[2], &size);
		if (!o.unsigned_payload && (sha = calloc(1, sizeof(*sha))) != NULL)
			hash_range(fd, 0, size, sha[0]);
	} else if (strcmp(op, "mpu-put") == 0 && argc >= 4) {
		parse_put_opts(argc - 4, argv + 4, &o);
		fd = open_input(argv[2], &size);
		if ((psize = parse_size(argv[3])) == 0)
			usage();
		if (size == 0 || (size + psize - 1) / psize > MAX_PARTS)
			die("%s: empty, or more than %d parts", argv[2], MAX_PARTS);
		nparts = (unsigned)((size + psize - 1) / psize);
		if ((sha = calloc(nparts, sizeof(*sha))) == NULL)
			die("out of memory");
		for (i = 0; i < nparts && !o.unsigned_payload && o.inflight == 0; i++)
			hash_range(fd, (uint64_t)i * psize, size - (uint64_t)i * psize < psize ?
			    size - (uint64_t)i * psize : psize, sha[i]);
	} else if (strcmp(op, "mpu-parts") == 0 && argc >= 5) {
		parse_put_opts(argc - 5, argv + 5, &o);
		fd = open_input(argv[3], &size);
		if ((psize = parse_size(argv[4])) == 0 || o.inflight == 0)
			usage();
		if (size == 0 || (size + psize - 1) / psize > MAX_PARTS)
			die("%s: empty, or more than %d parts", argv[3], MAX_PARTS);
	} else if (strcmp(op, "get") == 0 && argc == 3) {
		if ((fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
			die("%s: %s", argv[2], strerror(errno));
	} else if (!((strcmp(op, "head") == 0 || strcmp(op, "delete") == 0 ||
	    strcmp(op, "list") == 0 || strcmp(op, "mpu-list") == 0 ||
	    strcmp(op, "mpu-create") == 0) && argc == 2) &&
	    !(strcmp(op, "mpu-abort") == 0 && argc == 3))
		usage();

	if ((cfd = creds_open(credsfile, &cst, err, sizeof(err))) < 0 ||
	    creds_read_fd(cfd, &cr, &cst, err, sizeof(err)) != 0)
		die("%s: %s", credsfile, err);
	close(cfd);
	sc.access_key_id = cr.access_key_id;
	sc.secret = (const char *)cr.secret.p;
	sc.token = cr.token.len > 0 ? (const char *)cr.token.p : NULL;
	if (s3_global_init(cafile, err, sizeof(err)) != 0)
		die("%s", err);
	if ((r = s3_remote_new(&cfg, err, sizeof(err))) == NULL)
		die("%s", err);
	s3_remote_set_page_size(r, pagesize);
	if (zandbox && sandbox_seccomp(&uploader_policy, 0, -1, PEER_UPLOADER, &why) != 0)
		die("seccomp: %s", why);
	fputs("vs-s3: setup done\n", stderr);

	if (strcmp(op, "put") == 0)
		rc = s3_put(r, &sc, argv[1], fd, 0, size, sha != NULL ? sha[0] : NULL, o.cond,
		    o.etag, o.cid, o.did, &res);
	else if (strcmp(op, "mpu-put") == 0) {
		rc = mpu_put(r, &sc, argv[1], fd, size, psize, sha, &o, &res, extra,
		    sizeof(extra));
		print_result(&res, extra);
		printed = 1;
	} else if (strcmp(op, "mpu-parts") == 0) {
		static char etags[MAX_PARTS][S3_ETAG_MAX];

		rc = s3_mpu_parts(r, &sc, argv[1], argv[2], fd, size, psize, (unsigned)o.inflight,
		    !o.unsigned_payload, etags, &res);
	} else if (strcmp(op, "get") == 0)
		rc = s3_get(r, &sc, argv[1], fd, maxget, &res);
	else if (strcmp(op, "head") == 0)
		rc = s3_head(r, &sc, argv[1], &res);
	else if (strcmp(op, "delete") == 0)
		rc = s3_delete(r, &sc, argv[1], &res);
	else if (strcmp(op, "list") == 0)
		rc = s3_list(r, &sc, argv[1], 1000000, print_object, &count, &res);
	else if (strcmp(op, "mpu-list") == 0)
		rc = s3_mpu_list(r, &sc, argv[1], 100000, print_upload, &count, &res);
	else if (strcmp(op, "mpu-abort") == 0)
		rc = s3_mpu_abort(r, &sc, argv[1], argv[2], &res);
	else {
		rc = s3_mpu_create(r, &sc, argv[1], NULL, NULL, id, &res);
		snprintf(extra, sizeof(extra), " upload-id=%s", id);
		print_result(&res, extra);
		printed = 1;
	}
	if (strcmp(op, "list") == 0 || strcmp(op, "mpu-list") == 0) {
		snprintf(extra, sizeof(extra), " count=%zu", count);
		print_result(&res, extra);
	} else if (!printed)
		print_result(&res, NULL);
	fflush(stdout);
	/* libcurl's cleanup toggles SIGPIPE (rt_sigaction), which the sandbox forbids. */
	if (zandbox)
		exit(exit_code(rc, &res));
	s3_remote_free(r);
	creds_free(&cr);
	free(sha);
	return exit_code(rc, &res);
}
