/*
 * libFuzzer harness for the credentials file parser and the RFC 3339 reader.
 *
 * Besides memory safety it checks two promises: a failed parse leaves
 * nothing behind, and an error message is always one of the fixed templates
 * (line number, recognized key name, fixed text), so no value can leak into
 * a log or a status report.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const keys[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_CREDENTIAL_EXPIRATION",
};

static const char *const msgs[] = {
	"expected KEY=VALUE", "unterminated quote", "text after the closing quote",
	"unmatched quote", "control character in the value", "empty value",
	"must be 3 to 128 characters", "must be printable ASCII without spaces",
	"'/' cannot be carried in a SigV4 credential",
	"',' cannot be carried in a SigV4 credential",
	"longer than 128 bytes", "longer than 4096 bytes", "not an RFC 3339 timestamp",
	"not after 1970", "line too long", "NUL byte", "cannot allocate a buffer",
	"AWS_ACCESS_KEY_ID is missing", "AWS_SECRET_ACCESS_KEY is missing",
};

static const char *
skip_digits(const char *e)
{
	if (*e < '0' || *e > '9')
		return NULL;
	while (*e >= '0' && *e <= '9')
		e++;
	return e;
}

static int
err_is_template(const char *e)
{
	size_t i, n;

	if (strncmp(e, "line ", 5) == 0) {
		if ((e = skip_digits(e + 5)) == NULL || strncmp(e, ": ", 2) != 0)
			return 0;
		e += 2;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			n = strlen(keys[i]);
			if (strncmp(e, keys[i], n) == 0 && strncmp(e + n, ": ", 2) == 0) {
				e += n + 2;
				break;
			}
		}
		if (strncmp(e, "given twice (first on line ", 27) == 0)
			return (e = skip_digits(e + 27)) != NULL && strcmp(e, ")") == 0;
	}
	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		if (strcmp(e, msgs[i]) == 0)
			return 1;
	return 0;
}

static void
check_value(const struct secbuf *b, size_t max, const uint8_t *data, size_t size)
{
	size_t i;

	if (b->p == NULL) {
		if (b->len != 0)
			abort();
		return;
	}
	if (b->len == 0 || b->len > max || b->p[b->len] != '\0')
		abort();
	for (i = 0; i < b->len; i++)
		if (b->p[i] < 0x20 || b->p[i] == 0x7f)
			abort();
	if (memmem(data, size, b->p, b->len) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct creds c;
	char err[256], hint[8], *s;
	int64_t t;
	size_t n;

	err[0] = '\0';
	if (creds_parse((const char *)data, size, &c, err, sizeof(err)) == 0) {
		n = strnlen(c.access_key_id, sizeof(c.access_key_id));
		if (n < CREDS_MIN_KEY_ID || n > CREDS_MAX_KEY_ID || c.secret.p == NULL ||
		    c.expiry < 0)
			abort();
		check_value(&c.secret, CREDS_MAX_SECRET, data, size);
		check_value(&c.token, CREDS_MAX_TOKEN, data, size);
		creds_key_hint(&c, hint);
		if (strlen(hint) != (n >= 8 ? 4 : n / 2) || strlen(hint) == n)
			abort();
	} else {
		if (c.secret.p != NULL || c.token.p != NULL || c.secret.len != 0 ||
		    c.token.len != 0 || c.access_key_id[0] != '\0' || c.expiry != 0)
			abort();
		if (!err_is_template(err))
			abort();
	}
	creds_free(&c);

	/* An exact-size copy, so any read past the terminator is caught. */
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	t = 0;
	(void)creds_parse_rfc3339(s, &t);
	free(s);
	return 0;
}
