/*
 * common/creds.c: the credentials file parser, the file checks in
 * creds_open (and creds_stat, the same checks from metadata alone), and
 * the RFC 3339 reader.  The parser sees hostile input, so besides the
 * tables there are truncation and bit-flip loops, and every error message
 * is searched for fragments of the secret and the token.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "creds.h"

#define ID	"AKIAIOSFODNN7EXAMPLE"
/* Mixed case and symbols, no run of four that can occur in an error message. */
#define SECRET	"q7Rz/x2Lw+9vKp3Ny8Tb/5Hc1Jd6Mf0Gs4Ua"
#define TOKEN	"IQoJb3JpZ2luX2VjEHYa/yTok3n+Zx9=="
#define EXPIRY	"2026-11-22T03:04:05Z"
#define EXPIRY_T	INT64_C(1795316645)

#define BASIC	"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET "\n"

/* Every syntax feature at once: the seed for the truncation and bit-flip loops. */
static const char full_file[] =
    "\xef\xbb\xbf# vaultsync S3 credentials\r\n"
    "\r\n"
    "export AWS_ACCESS_KEY_ID=" ID "\r\n"
    "  export\tAWS_SECRET_ACCESS_KEY = \"" SECRET "\"  # rotated weekly\n"
    "AWS_SESSION_TOKEN='" TOKEN "'\n"
    "\tAWS_CREDENTIAL_EXPIRATION=2026-11-22T04:04:05.250+01:00 \n"
    "AWS_REGION=eu-west-1\n"
    "AWS_DEFAULT_OUTPUT=\"json\"";

static char tmpdir[PATH_MAX];

/* No window of four bytes of a secret value may appear in a message. */
static void
assert_no_leak(const char *err, const char *secret)
{
	size_t i, n = strlen(secret);
	char w[5];

	for (i = 0; i + 4 <= n; i++) {
		memcpy(w, secret + i, 4);
		w[4] = '\0';
		if (strstr(err, w) != NULL)
			fail_msg("error \"%s\" contains \"%s\" from a secret", err, w);
	}
}

static void
assert_wiped(const struct creds *c)
{
	assert_null(c->secret.p);
	assert_int_equal(c->secret.len, 0);
	assert_null(c->token.p);
	assert_int_equal(c->token.len, 0);
	assert_int_equal(c->access_key_id[0], '\0');
	assert_int_equal(c->expiry, 0);
}

/* Parse from an exact-size heap copy, so a sanitizer catches any over-read. */
static int
parse_mem(const char *buf, size_t len, struct creds *c, char *err, size_t errlen)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	rc = creds_parse(copy, len, c, err, errlen);
	free(copy);
	return rc;
}

static void
parse_ok(const char *s, struct creds *c)
{
	char err[256] = "";

	if (parse_mem(s, strlen(s), c, err, sizeof(err)) != 0)
		fail_msg("parse failed: %s\ninput: %s", err, s);
}

static void
parse_err_len(const char *s, size_t len, const char *want)
{
	struct creds c;
	char err[256] = "";

	memset(&c, 0xa5, sizeof(c));
	if (parse_mem(s, len, &c, err, sizeof(err)) != -1)
		fail_msg("parse succeeded, wanted \"%s\"\ninput: %s", want, s);
	assert_wiped(&c);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"\ninput: %s", err, want, s);
	assert_no_leak(err, SECRET);
	assert_no_leak(err, TOKEN);
	creds_free(&c);
}

static void
parse_err(const char *s, const char *want)
{
	parse_err_len(s, strlen(s), want);
}

static char *
repeat(char ch, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

static char *xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

static char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(r >= 0);
	return s;
}

/* ---- valid files ------------------------------------------------------------ */

static void
test_basic(void **state)
{
	struct creds c;

	parse_ok(BASIC, &c);
	assert_string_equal(c.access_key_id, ID);
	assert_non_null(c.secret.p);
	assert_int_equal(c.secret.len, strlen(SECRET));
	assert_memory_equal(c.secret.p, SECRET, sizeof(SECRET));	/* with the NUL */
	assert_null(c.token.p);
	assert_int_equal(c.token.len, 0);
	assert_int_equal(c.expiry, 0);
	creds_free(&c);
	assert_wiped(&c);
	creds_free(&c);
}

static void
test_variants(void **state)
{
	static const char *const v[] = {
		BASIC,
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET,
		"AWS_SECRET_ACCESS_KEY=" SECRET "\nAWS_ACCESS_KEY_ID=" ID "\n",
		"export AWS_ACCESS_KEY_ID=" ID "\nexport AWS_SECRET_ACCESS_KEY=" SECRET "\n",
		"  export \t AWS_ACCESS_KEY_ID=" ID "\n\texport  AWS_SECRET_ACCESS_KEY=" SECRET "\n",
		"# comment\n\n   \n\t# indented comment\nAWS_ACCESS_KEY_ID=" ID
		    "\n#AWS_SECRET_ACCESS_KEY=nope\nAWS_SECRET_ACCESS_KEY=" SECRET "\n# end",
		"AWS_ACCESS_KEY_ID=" ID "\r\nAWS_SECRET_ACCESS_KEY=" SECRET "\r\n",
		"AWS_ACCESS_KEY_ID=" ID "\r\nAWS_SECRET_ACCESS_KEY=" SECRET "\r",
		"AWS_ACCESS_KEY_ID=\"" ID "\"\nAWS_SECRET_ACCESS_KEY=\"" SECRET "\"\n",
		"AWS_ACCESS_KEY_ID='" ID "'\nAWS_SECRET_ACCESS_KEY='" SECRET "'\n",
		"  AWS_ACCESS_KEY_ID  =  " ID "  \nAWS_SECRET_ACCESS_KEY\t=\t" SECRET "\t\n",
		"AWS_ACCESS_KEY_ID = \"" ID "\" \nAWS_SECRET_ACCESS_KEY= '" SECRET "'\t# note\n",
		"\xef\xbb\xbf" BASIC,
		"AWS_REGION=us-east-1\nAWS_DEFAULT_REGION='eu'\n" BASIC "AWS_PROFILE=\n_X=1\n",
		BASIC "AWS_SESSION_TOKEN=\nAWS_CREDENTIAL_EXPIRATION=\n",
		BASIC "AWS_SESSION_TOKEN=\"\"\n",
		"\n\n\n" BASIC "\n\n",
		"AWS_ACCESS_KEY_ID=" ID " # key 1\nAWS_SECRET_ACCESS_KEY=" SECRET "\t#rotated 'weekly'\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET "\nAWS_X= #\"\n",
		/* The other quote character is plain text inside quotes. */
		BASIC "AWS_X=\"it's\"\nAWS_Y='say \"hi\"'\n",
	};
	struct creds c;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		parse_ok(v[i], &c);
		assert_string_equal(c.access_key_id, ID);
		assert_int_equal(c.secret.len, strlen(SECRET));
		assert_string_equal((char *)c.secret.p, SECRET);
		assert_null(c.token.p);
		assert_int_equal(c.expiry, 0);
		creds_free(&c);
	}
}

static void
test_token_expiry(void **state)
{
	struct creds c;

	parse_ok(BASIC "AWS_SESSION_TOKEN=" TOKEN "\nAWS_CREDENTIAL_EXPIRATION=" EXPIRY "\n", &c);
	assert_int_equal(c.token.len, strlen(TOKEN));
	assert_string_equal((char *)c.token.p, TOKEN);
	assert_int_equal(c.expiry, EXPIRY_T);
	creds_free(&c);

	parse_ok(full_file, &c);
	assert_string_equal(c.access_key_id, ID);
	assert_string_equal((char *)c.secret.p, SECRET);
	assert_string_equal((char *)c.token.p, TOKEN);
	assert_int_equal(c.expiry, EXPIRY_T);
	creds_free(&c);
}

/* S3-compatible servers other than AWS issue short or punctuated key ids. */
static void
test_short_key_ids(void **state)
{
	static const char *const ids[] = { "minioadmin", "abc", "GOOG1E_x-y.z~9", "key:with@sym+!" };
	struct creds c;
	size_t i;
	char *s;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		s = xasprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=" SECRET "\n", ids[i]);
		parse_ok(s, &c);
		assert_string_equal(c.access_key_id, ids[i]);
		creds_free(&c);
		free(s);
	}
}

static void
test_limits_ok(void **state)
{
	char *sec = repeat('s', CREDS_MAX_SECRET), *tok = repeat('t', CREDS_MAX_TOKEN);
	char *id16 = repeat('A', 16), *id128 = repeat('9', 128);
	char *pad = repeat('x', CREDS_MAX_LINE - strlen("AWS_PAD="));
	char *s;
	struct creds c;

	s = xasprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\nAWS_SESSION_TOKEN=%s\n",
	    id16, sec, tok);
	parse_ok(s, &c);
	assert_int_equal(c.secret.len, CREDS_MAX_SECRET);
	assert_int_equal(c.token.len, CREDS_MAX_TOKEN);
	assert_int_equal(c.token.p[CREDS_MAX_TOKEN], '\0');
	creds_free(&c);
	free(s);

	s = xasprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=x\nAWS_PAD=%s\r\n", id128, pad);
	parse_ok(s, &c);
	assert_string_equal(c.access_key_id, id128);
	creds_free(&c);
	free(s);

	/* '#' is a comment only after whitespace, and never inside quotes. */
	parse_ok("AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=a#b#\n", &c);
	assert_string_equal((char *)c.secret.p, "a#b#");
	creds_free(&c);
	parse_ok("AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=#ab\n", &c);
	assert_string_equal((char *)c.secret.p, "#ab");
	creds_free(&c);
	parse_ok("AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=\"a #b\"\n", &c);
	assert_string_equal((char *)c.secret.p, "a #b");
	creds_free(&c);

	/* Lowercase is tolerated in the key id. */
	parse_ok("AWS_ACCESS_KEY_ID=akiaiosfodnn7examplE\nAWS_SECRET_ACCESS_KEY=x", &c);
	creds_free(&c);

	free(sec);
	free(tok);
	free(id16);
	free(id128);
	free(pad);
}

/* ---- errors ------------------------------------------------------------------ */

static void
test_errors(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} v[] = {
		{ "", "AWS_ACCESS_KEY_ID is missing" },
		{ "# nothing\n", "AWS_ACCESS_KEY_ID is missing" },
		{ "AWS_SECRET_ACCESS_KEY=" SECRET "\n", "AWS_ACCESS_KEY_ID is missing" },
		{ "AWS_ACCESS_KEY_ID=" ID "\n", "AWS_SECRET_ACCESS_KEY is missing" },
		{ "aws_access_key_id=" ID "\naws_secret_access_key=" SECRET, "missing" },
		{ BASIC "AWS_ACCESS_KEY_ID=" ID "\n", "line 3: AWS_ACCESS_KEY_ID: given twice (first on line 1)" },
		{ BASIC "export AWS_SECRET_ACCESS_KEY=" SECRET "\n", "line 3: AWS_SECRET_ACCESS_KEY: given twice" },
		{ BASIC "AWS_SESSION_TOKEN=a\nAWS_SESSION_TOKEN=b\n", "line 4: AWS_SESSION_TOKEN: given twice" },
		{ BASIC "AWS_SESSION_TOKEN=\nAWS_SESSION_TOKEN=b\n", "line 4: AWS_SESSION_TOKEN: given twice" },
		{ BASIC "AWS_CREDENTIAL_EXPIRATION=" EXPIRY "\nAWS_CREDENTIAL_EXPIRATION=" EXPIRY,
		    "line 4: AWS_CREDENTIAL_EXPIRATION: given twice" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=\"" SECRET "\n", "line 2: AWS_SECRET_ACCESS_KEY: unterminated quote" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY='" SECRET, "line 2: AWS_SECRET_ACCESS_KEY: unterminated quote" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=\"" SECRET "'\n", "line 2: AWS_SECRET_ACCESS_KEY: unterminated quote" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET "\"\n", "line 2: AWS_SECRET_ACCESS_KEY: unmatched quote" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=a'b\n", "line 2: AWS_SECRET_ACCESS_KEY: unmatched quote" },
		{ "AWS_ACCESS_KEY_ID=\"" ID "\"x\n", "line 1: AWS_ACCESS_KEY_ID: text after the closing quote" },
		{ "AWS_ACCESS_KEY_ID=\"" ID "\" \"x\"\n", "text after the closing quote" },
		{ "AWS_ACCESS_KEY_ID=\"a\"\"b\"\n", "text after the closing quote" },
		{ "AWS_ACCESS_KEY_ID=" ID "\ngarbage\n", "line 2: expected KEY=VALUE" },
		{ BASIC "export\n", "line 3: expected KEY=VALUE" },
		{ BASIC "export AWS_REGION\n", "line 3: expected KEY=VALUE" },
		{ BASIC "=value\n", "line 3: expected KEY=VALUE" },
		{ BASIC "1AWS=1\n", "line 3: expected KEY=VALUE" },
		{ BASIC "AWS-REGION=1\n", "line 3: expected KEY=VALUE" },
		{ BASIC "AWS_ACCESS_KEY_ID\n", "line 3: expected KEY=VALUE" },
		{ BASIC "AWS REGION=1\n", "line 3: expected KEY=VALUE" },
		{ BASIC "[default]\n", "line 3: expected KEY=VALUE" },
		{ BASIC "\"AWS_X\"=1\n", "line 3: expected KEY=VALUE" },
		{ BASIC "AWS_CREDENTIAL_EXPIRATION=tomorrow\n", "line 3: AWS_CREDENTIAL_EXPIRATION: not an RFC 3339 timestamp" },
		{ BASIC "AWS_CREDENTIAL_EXPIRATION=2026-02-30T00:00:00Z\n", "not an RFC 3339 timestamp" },
		{ BASIC "AWS_CREDENTIAL_EXPIRATION=2026-11-22T03:04:05\n", "not an RFC 3339 timestamp" },
		{ BASIC "AWS_CREDENTIAL_EXPIRATION=2026-11-22T03:04:05.00000000000000000000000000000000000000000000000000Z\n",
		    "not an RFC 3339 timestamp" },
		{ BASIC "AWS_CREDENTIAL_EXPIRATION=1970-01-01T00:00:00Z\n", "not after 1970" },
		{ BASIC "AWS_CREDENTIAL_EXPIRATION=1969-12-31T23:59:59Z\n", "not after 1970" },
		{ "AWS_ACCESS_KEY_ID=ab\nAWS_SECRET_ACCESS_KEY=x\n", "line 1: AWS_ACCESS_KEY_ID: must be 3 to 128 characters" },
		{ "AWS_ACCESS_KEY_ID=AKIA/234567890ABCDEF\nAWS_SECRET_ACCESS_KEY=x\n", "AWS_ACCESS_KEY_ID: '/' cannot be carried" },
		{ "AWS_ACCESS_KEY_ID=AKIA,234567890ABCDEF\nAWS_SECRET_ACCESS_KEY=x\n", "AWS_ACCESS_KEY_ID: ',' cannot be carried" },
		{ "AWS_ACCESS_KEY_ID=\"AKIA 234567890ABCDEF\"\nAWS_SECRET_ACCESS_KEY=x\n", "AWS_ACCESS_KEY_ID: must be printable ASCII without spaces" },
		{ "AWS_ACCESS_KEY_ID=AKIA\xc3\xa9" "234567890ABCDEF\nAWS_SECRET_ACCESS_KEY=x\n", "AWS_ACCESS_KEY_ID: must be printable ASCII without spaces" },
		{ "AWS_ACCESS_KEY_ID=\nAWS_SECRET_ACCESS_KEY=x\n", "line 1: AWS_ACCESS_KEY_ID: empty value" },
		{ "AWS_ACCESS_KEY_ID=\"\"\nAWS_SECRET_ACCESS_KEY=x\n", "line 1: AWS_ACCESS_KEY_ID: empty value" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=\n", "line 2: AWS_SECRET_ACCESS_KEY: empty value" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=''  \n", "line 2: AWS_SECRET_ACCESS_KEY: empty value" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY= # later\n", "line 2: AWS_SECRET_ACCESS_KEY: empty value" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET "\x01\n", "line 2: AWS_SECRET_ACCESS_KEY: control character" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=\"" SECRET "\t\"\n", "line 2: AWS_SECRET_ACCESS_KEY: control character" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=q7Rz\x7f" "x2Lw\n", "line 2: AWS_SECRET_ACCESS_KEY: control character" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=q7Rz\rx2Lw\n", "line 2: AWS_SECRET_ACCESS_KEY: control character" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET "\r\r\n", "control character" },
		{ "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=\x1b[31m\n", "control character" },
		{ BASIC "AWS_REGION=us\x01" "east\n", "line 3: control character" },
		{ BASIC "AWS_\x01REGION=1\n", "line 3: expected KEY=VALUE" },
		{ "\xef\xbb" BASIC, "line 1: expected KEY=VALUE" },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		parse_err(v[i].in, v[i].want);
}

static void
test_errors_nul(void **state)
{
	static const char a[] = "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=q7Rz\0x2Lw\n";
	static const char b[] = "AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET "\n\0";
	static const char d[] = "\0" BASIC;
	static const char e[] = BASIC "# comment \0 here\n";

	parse_err_len(a, sizeof(a) - 1, "line 2: NUL byte");
	parse_err_len(b, sizeof(b) - 1, "line 3: NUL byte");
	parse_err_len(d, sizeof(d) - 1, "line 1: NUL byte");
	parse_err_len(e, sizeof(e) - 1, "line 3: NUL byte");
}

static void
test_errors_long(void **state)
{
	char *sec = repeat('s', CREDS_MAX_SECRET + 1), *tok = repeat('t', CREDS_MAX_TOKEN + 1);
	char *id = repeat('A', CREDS_MAX_KEY_ID + 1);
	char *pad = repeat('x', CREDS_MAX_LINE + 1 - strlen("AWS_PAD="));
	char *s;

	s = xasprintf("AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=%s\n", sec);
	parse_err(s, "line 2: AWS_SECRET_ACCESS_KEY: longer than 128 bytes");
	free(s);
	s = xasprintf(BASIC "AWS_SESSION_TOKEN='%s'\n", tok);
	parse_err(s, "line 3: AWS_SESSION_TOKEN: longer than 4096 bytes");
	free(s);
	s = xasprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=x\n", id);
	parse_err(s, "line 1: AWS_ACCESS_KEY_ID: must be 3 to 128");
	free(s);
	s = xasprintf(BASIC "AWS_PAD=%s\n", pad);
	parse_err(s, "line 3: line too long");
	free(s);
	/* The limit counts the line without its CRLF. */
	pad[strlen(pad) - 1] = '\0';
	s = xasprintf(BASIC "AWS_PAD=%s\r\n", pad);
	{
		struct creds c;

		parse_ok(s, &c);
		creds_free(&c);
	}
	free(s);
	free(sec);
	free(tok);
	free(id);
	free(pad);
}

/* Secrets in every odd place a broken file can put them. */
static void
test_errors_never_leak(void **state)
{
	static const char *const v[] = {
		"AWS_ACCESS_KEY_ID=" ID "\n" SECRET "\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY " SECRET "\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY:" SECRET "\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=\"" SECRET "\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY='" SECRET "\"\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=\"" SECRET "\"" SECRET "\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET "'\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET "\x02" SECRET "\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET SECRET SECRET SECRET "\n",
		"AWS_ACCESS_KEY_ID=" ID "\nAWS_SECRET_ACCESS_KEY=" SECRET "\nAWS_SECRET_ACCESS_KEY=" SECRET "\n",
		"AWS_ACCESS_KEY_ID=" SECRET "\nAWS_SECRET_ACCESS_KEY=" SECRET "\n",
		"AWS_ACCESS_KEY_ID=q7Rzx2Lw9vKp3Ny8Tb5Hc1Jd6Mf0Gs4Ua\x01\n",
		BASIC "AWS_CREDENTIAL_EXPIRATION=" SECRET "\n",
		BASIC "AWS_CREDENTIAL_EXPIRATION=" TOKEN "\n",
		BASIC "AWS_SESSION_TOKEN=" TOKEN "'\n",
		BASIC "AWS_SESSION_TOKEN=\"" TOKEN "\n",
		BASIC "AWS_SESSION_TOKEN=" TOKEN "\x7f\n",
		BASIC "AWS_SESSION_TOKEN=" TOKEN "\nAWS_SESSION_TOKEN=" TOKEN "\n",
		BASIC TOKEN "\n",
		/* A secret that looks like a key name: unknown keys are never echoed. */
		BASIC "q7Rzx2Lw9vKp3Ny8Tb5Hc1Jd6Mf0Gs4Ua=\x01\n",
		BASIC "q7Rzx2Lw9vKp3Ny8Tb5Hc1Jd6Mf0Gs4Ua='\n",
		"q7Rzx2Lw9vKp3Ny8Tb5Hc1Jd6Mf0Gs4Ua=1\n",
		SECRET "=" SECRET "\n",
		"export " SECRET "\n",
		"AWS_SECRET_ACCESS_KEY=" SECRET "\n",
		"AWS_SECRET_ACCESS_KEY=" SECRET "\nAWS_ACCESS_KEY_ID=no\n",
	};
	struct creds c;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(err, 0, sizeof(err));
		memset(&c, 0x5a, sizeof(c));
		if (parse_mem(v[i], strlen(v[i]), &c, err, sizeof(err)) != -1)
			fail_msg("case %zu parsed", i);
		assert_wiped(&c);
		assert_true(err[0] != '\0');
		assert_no_leak(err, SECRET);
		assert_no_leak(err, TOKEN);
		assert_no_leak(err, "q7Rzx2Lw9vKp3Ny8Tb5Hc1Jd6Mf0Gs4Ua");
	}
}

static void
test_err_buffer(void **state)
{
	struct creds c;
	char err[8];

	/* A NULL or tiny buffer is fine: messages are optional and truncated. */
	assert_int_equal(creds_parse("x", 1, &c, NULL, 0), -1);
	assert_int_equal(creds_parse(NULL, 0, &c, NULL, 0), -1);
	memset(err, 'z', sizeof(err));
	assert_int_equal(creds_parse("x", 1, &c, err, sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	memset(err, 'z', sizeof(err));
	assert_int_equal(creds_parse("x", 1, &c, err, 1), -1);
	assert_int_equal(err[0], '\0');
	assert_int_equal(err[1], 'z');
}

static void
test_free_and_hint(void **state)
{
	struct creds c;
	char hint[8];

	memset(&c, 0, sizeof(c));
	creds_free(&c);
	creds_free(&c);
	creds_key_hint(&c, hint);
	assert_string_equal(hint, "");

	parse_ok(BASIC "AWS_SESSION_TOKEN=" TOKEN "\n", &c);
	creds_key_hint(&c, hint);
	assert_string_equal(hint, "MPLE");
	creds_free(&c);
	assert_wiped(&c);
	creds_free(&c);

	memset(&c, 0, sizeof(c));
	strcpy(c.access_key_id, "AB");
	creds_key_hint(&c, hint);
	assert_string_equal(hint, "B");
	strcpy(c.access_key_id, "AKE");
	creds_key_hint(&c, hint);
	assert_string_equal(hint, "E");
	strcpy(c.access_key_id, "minioadmin");
	creds_key_hint(&c, hint);
	assert_string_equal(hint, "dmin");
	strcpy(c.access_key_id, "abcdefg");
	creds_key_hint(&c, hint);
	assert_string_equal(hint, "efg");
}

/* ---- hostile-input loops ------------------------------------------------------- */

static void
check_outcome(int rc, const struct creds *c, const char *err)
{
	if (rc == 0) {
		size_t n = strlen(c->access_key_id);

		assert_true(n >= CREDS_MIN_KEY_ID && n <= CREDS_MAX_KEY_ID);
		assert_non_null(c->secret.p);
		assert_true(c->secret.len >= 1 && c->secret.len <= CREDS_MAX_SECRET);
		assert_int_equal(c->secret.p[c->secret.len], '\0');
		if (c->token.p != NULL) {
			assert_true(c->token.len >= 1 && c->token.len <= CREDS_MAX_TOKEN);
			assert_int_equal(c->token.p[c->token.len], '\0');
		} else
			assert_int_equal(c->token.len, 0);
		assert_true(c->expiry >= 0);
	} else {
		assert_int_equal(rc, -1);
		assert_wiped(c);
		assert_true(err[0] != '\0');
		assert_no_leak(err, SECRET);
		assert_no_leak(err, TOKEN);
	}
}

static void
test_truncation(void **state)
{
	size_t n = sizeof(full_file) - 1, i;
	struct creds c;
	char err[256];
	int rc, nok = 0;

	for (i = 0; i <= n; i++) {
		err[0] = '\0';
		rc = parse_mem(full_file, i, &c, err, sizeof(err));
		check_outcome(rc, &c, err);
		nok += rc == 0;
		creds_free(&c);
	}
	/* Cut anywhere after the secret's closing quote and the file still parses. */
	assert_true(nok > 0);
	assert_int_equal(parse_mem(full_file, n, &c, err, sizeof(err)), 0);
	creds_free(&c);
}

static void
test_bitflip(void **state)
{
	size_t n = sizeof(full_file) - 1, i;
	char *buf = malloc(n);
	struct creds c;
	char err[256];
	int bit, rc;

	assert_non_null(buf);
	for (i = 0; i < n; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(buf, full_file, n);
			buf[i] ^= (char)(1u << bit);
			err[0] = '\0';
			rc = parse_mem(buf, n, &c, err, sizeof(err));
			check_outcome(rc, &c, err);
			creds_free(&c);
		}
	}
	free(buf);
}

/* ---- creds_open and creds_read_fd ------------------------------------------------ */

static char *
mkfile(const char *name, const char *content, size_t len, mode_t mode)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

/* creds_stat, which the parent asks before it starts, must judge as creds_open does. */
static void
expect_stat(const char *path, enum cred_state want_st, const char *want_err)
{
	enum cred_state st = CRED_ST_UNKNOWN;
	char err[256] = "";
	int r;

	r = creds_stat(path, &st, err, sizeof(err));
	assert_int_equal(st, want_st);
	assert_int_equal(r, want_st == CRED_ST_OK ? 0 : -1);
	if (want_st != CRED_ST_OK && strstr(err, want_err) == NULL)
		fail_msg("%s: creds_stat error \"%s\" lacks \"%s\"", path, err, want_err);
}

static void
expect_open(const char *path, enum cred_state want_st, const char *want_err)
{
	enum cred_state st = CRED_ST_UNKNOWN;
	char err[256] = "";
	int fd;

	expect_stat(path, want_st, want_err);
	fd = creds_open(path, &st, err, sizeof(err));
	if (want_st == CRED_ST_OK) {
		if (fd < 0)
			fail_msg("%s: %s", path, err);
		assert_int_equal(st, CRED_ST_OK);
		/* The fd must not leak into a child's exec. */
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		close(fd);
		return;
	}
	assert_int_equal(fd, -1);
	assert_int_equal(st, want_st);
	if (strstr(err, want_err) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", path, err, want_err);
}

static void
test_open_modes(void **state)
{
	static const struct {
		mode_t mode;
		const char *want;	/* NULL = accepted */
	} v[] = {
		{ 0600, NULL },
		{ 0400, NULL },
		{ 0644, "mode 0644 is too open; chmod 600" },
		{ 0640, "mode 0640 is too open; chmod 600" },
		{ 0604, "mode 0604 is too open" },
		{ 0700, "mode 0700 is too open" },
		{ 0500, "mode 0500 is too open" },
		{ 0660, "mode 0660 is too open" },
		{ 04600, "mode 4600 is too open" },
		{ 02600, "mode 2600 is too open" },
		{ 01600, "mode 1600 is too open" },
		{ 0200, "mode 0200 is not 0600 or 0400" },
		{ 0000, "mode 0000 is not 0600 or 0400" },
	};
	size_t i;
	char *p;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		/* Without root, 0200 and 0000 fail at open(2) instead. */
		if (geteuid() != 0 && (v[i].mode & 0400) == 0)
			continue;
		p = mkfile("m", BASIC, strlen(BASIC), v[i].mode);
		expect_open(p, v[i].want ? CRED_ST_BAD_FILE : CRED_ST_OK, v[i].want);
		unlink(p);
		free(p);
	}
}

static void
test_open_kinds(void **state)
{
	char *p = mkfile("real", BASIC, strlen(BASIC), 0600);
	char *l = xasprintf("%s/link", tmpdir), *d = xasprintf("%s/dir", tmpdir);
	char *f = xasprintf("%s/fifo", tmpdir), *m = xasprintf("%s/missing", tmpdir);
	char *md = xasprintf("%s/missing/s3", tmpdir), *nd = xasprintf("%s/real/s3", tmpdir);
	char *big, *edge, *data;

	assert_int_equal(symlink(p, l), 0);
	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(mkfifo(f, 0600), 0);

	expect_open(p, CRED_ST_OK, NULL);
	expect_open(l, CRED_ST_BAD_FILE, "is a symlink");
	expect_open(d, CRED_ST_BAD_FILE, "is a directory");
	/* Must return at once, not wait for a writer. */
	expect_open(f, CRED_ST_BAD_FILE, "not a regular file");
	expect_open(m, CRED_ST_MISSING, "no such file");
	expect_open(md, CRED_ST_MISSING, "no such file");
	expect_open(nd, CRED_ST_BAD_FILE, "Not a directory");
	expect_open("/dev/null", CRED_ST_BAD_FILE, "not a regular file");

	data = repeat('#', CREDS_MAX_FILE + 1);
	big = mkfile("big", data, CREDS_MAX_FILE + 1, 0600);
	expect_open(big, CRED_ST_BAD_FILE, "too large: 65537 bytes");
	edge = mkfile("edge", data, CREDS_MAX_FILE, 0600);
	expect_open(edge, CRED_ST_OK, NULL);

	unlink(l);
	unlink(p);
	unlink(f);
	unlink(big);
	unlink(edge);
	rmdir(d);
	free(data);
	free(p);
	free(l);
	free(d);
	free(f);
	free(m);
	free(md);
	free(nd);
	free(big);
	free(edge);
}

static void
test_open_owner(void **state)
{
	char *p;

	if (geteuid() != 0)
		skip();
	p = mkfile("owned", BASIC, strlen(BASIC), 0600);
	assert_int_equal(chown(p, 12345, 12345), 0);
	expect_open(p, CRED_ST_BAD_FILE, "owned by uid 12345");
	unlink(p);
	free(p);
}

static void
test_read_fd(void **state)
{
	enum cred_state st;
	struct creds c;
	char err[256];
	char *p, *data;
	int fd, wfd;

	p = mkfile("ok", full_file, sizeof(full_file) - 1, 0400);
	fd = creds_open(p, &st, err, sizeof(err));
	assert_true(fd >= 0);
	memset(&c, 0x77, sizeof(c));
	assert_int_equal(creds_read_fd(fd, &c, &st, err, sizeof(err)), 0);
	assert_int_equal(st, CRED_ST_OK);
	assert_string_equal(c.access_key_id, ID);
	assert_string_equal((char *)c.secret.p, SECRET);
	assert_string_equal((char *)c.token.p, TOKEN);
	assert_int_equal(c.expiry, EXPIRY_T);
	creds_free(&c);
	/* The caller owns the fd. */
	assert_int_equal(fcntl(fd, F_GETFD) >= 0, 1);
	close(fd);
	unlink(p);
	free(p);

	p = mkfile("syntax", BASIC "oops\n", strlen(BASIC "oops\n"), 0600);
	fd = creds_open(p, &st, err, sizeof(err));
	assert_true(fd >= 0);
	memset(&c, 0x77, sizeof(c));
	assert_int_equal(creds_read_fd(fd, &c, &st, err, sizeof(err)), -1);
	assert_int_equal(st, CRED_ST_BAD_SYNTAX);
	assert_string_equal(err, "line 3: expected KEY=VALUE");
	assert_wiped(&c);
	close(fd);
	unlink(p);
	free(p);

	/* A file that grows between the checks and the read. */
	p = mkfile("grows", BASIC, strlen(BASIC), 0600);
	fd = creds_open(p, &st, err, sizeof(err));
	assert_true(fd >= 0);
	wfd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(wfd >= 0);
	data = repeat('#', CREDS_MAX_FILE);
	assert_int_equal(write(wfd, data, CREDS_MAX_FILE), CREDS_MAX_FILE);
	close(wfd);
	assert_int_equal(creds_read_fd(fd, &c, &st, err, sizeof(err)), -1);
	assert_int_equal(st, CRED_ST_BAD_FILE);
	assert_non_null(strstr(err, "too large"));
	assert_wiped(&c);
	close(fd);
	unlink(p);
	free(p);
	free(data);

	/* read(2) errors: a directory fd gives EISDIR. */
	fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(creds_read_fd(fd, &c, &st, err, sizeof(err)), -1);
	assert_int_equal(st, CRED_ST_BAD_FILE);
	assert_non_null(strstr(err, "read: "));
	close(fd);

	/* An empty file is a syntax error, not a crash. */
	p = mkfile("empty", "", 0, 0600);
	fd = creds_open(p, &st, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(creds_read_fd(fd, &c, &st, err, sizeof(err)), -1);
	assert_int_equal(st, CRED_ST_BAD_SYNTAX);
	close(fd);
	unlink(p);
	free(p);
}

/* ---- RFC 3339 ----------------------------------------------------------------- */

static void
test_rfc3339(void **state)
{
	static const struct {
		const char *s;
		int64_t t;
	} ok[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2026-11-22T03:04:05Z", INT64_C(1795316645) },
		{ "2026-11-22t03:04:05z", INT64_C(1795316645) },
		{ "2026-11-22 03:04:05Z", INT64_C(1795316645) },
		{ "2026-11-22T03:04:05.5Z", INT64_C(1795316645) },
		{ "2026-11-22T03:04:05.999999999Z", INT64_C(1795316645) },
		{ "2026-11-22T03:04:05.000000000000000000000001Z", INT64_C(1795316645) },
		{ "2026-11-22T03:04:05+00:00", INT64_C(1795316645) },
		{ "2026-11-22T03:04:05-00:00", INT64_C(1795316645) },
		{ "2026-11-22T03:04:05+01:00", INT64_C(1795313045) },
		{ "2026-11-22T03:04:05.25+01:00", INT64_C(1795313045) },
		{ "2026-11-22T03:04:05-05:30", INT64_C(1795336445) },
		{ "2026-11-22T03:04:05+23:59", INT64_C(1795316645) - 23 * 3600 - 59 * 60 },
		{ "2024-02-29T00:00:00Z", INT64_C(1709164800) },
		{ "2000-02-29T12:00:00Z", INT64_C(951825600) },
		{ "2016-12-31T23:59:60Z", INT64_C(1483228800) },
		{ "1969-12-31T23:59:59Z", -1 },
		{ "0001-01-01T00:00:00Z", INT64_C(-62135596800) },
		{ "0000-01-01T00:00:00Z", INT64_C(-62167219200) },
		{ "9999-12-31T23:59:59Z", INT64_C(253402300799) },
		{ "2026-12-31T23:59:59Z", INT64_C(1798761599) },
	};
	static const char *const bad[] = {
		"", "Z", "2026", "2026-11-22", "2026-11-22T", "2026-11-22T03:04",
		"2026-11-22T03:04:05", "2026-11-22T03:04:05.", "2026-11-22T03:04:05.Z",
		"2026-11-22T03:04:05Zjunk", "2026-11-22T03:04:05Z ", " 2026-11-22T03:04:05Z",
		"2026-11-22T03:04:05 Z", "2026-11-22T3:04:05Z", "2026-11-2T03:04:05Z",
		"026-11-22T03:04:05Z", "20261-11-22T03:04:05Z", "+2026-11-22T03:04:05Z",
		"2026/11/22T03:04:05Z", "2026-11-22X03:04:05Z", "2026-11-22T03-04-05Z",
		"2026-11-22T03:04:05+0100", "2026-11-22T03:04:05+01", "2026-11-22T03:04:05+1:00",
		"2026-11-22T03:04:05+01:00:00", "2026-11-22T03:04:05UTC", "2026-11-22T03:04:05,5Z",
		"2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
		"2026-01-00T00:00:00Z", "2026-01-32T00:00:00Z", "2026-11-22T24:00:00Z",
		"2026-11-22T23:60:00Z", "2026-11-22T23:59:61Z", "2026-11-22T03:04:05+24:00",
		"2026-11-22T03:04:05+01:60", "2026-11-22T03:04:05-99:99", "-026-11-22T03:04:05Z",
		"2026-1a-22T03:04:05Z", "2026-11-22T03:04:05\nZ", "tomorrow", "\xff\xfe",
		"2026-11-22T03:04:05.5.5Z", "2026-11-22T03:04:05+01:00Z",
	};
	int64_t t;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		t = 42;
		if (creds_parse_rfc3339(ok[i].s, &t) != 0)
			fail_msg("rejected %s", ok[i].s);
		if (t != ok[i].t)
			fail_msg("%s: got %lld, want %lld", ok[i].s, (long long)t,
			    (long long)ok[i].t);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 42;
		if (creds_parse_rfc3339(bad[i], &t) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(t, 42);
	}
}

/* Every prefix of a valid timestamp, from an exact-size copy. */
static void
test_rfc3339_truncation(void **state)
{
	static const char full[] = "2026-11-22T03:04:05.123-05:30";
	size_t i;
	int64_t t;
	char *s;

	for (i = 0; i < sizeof(full); i++) {
		s = malloc(i + 1);
		assert_non_null(s);
		memcpy(s, full, i);
		s[i] = '\0';
		assert_int_equal(creds_parse_rfc3339(s, &t), i == sizeof(full) - 1 ? 0 : -1);
		free(s);
	}
}

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/vs-creds-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_variants),
		cmocka_unit_test(test_token_expiry),
		cmocka_unit_test(test_short_key_ids),
		cmocka_unit_test(test_limits_ok),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_errors_nul),
		cmocka_unit_test(test_errors_long),
		cmocka_unit_test(test_errors_never_leak),
		cmocka_unit_test(test_err_buffer),
		cmocka_unit_test(test_free_and_hint),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_bitflip),
		cmocka_unit_test(test_open_modes),
		cmocka_unit_test(test_open_kinds),
		cmocka_unit_test(test_open_owner),
		cmocka_unit_test(test_read_fd),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_rfc3339_truncation),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
