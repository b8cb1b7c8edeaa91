/*
 * libFuzzer: the S3 XML reader, every reply kind on every input.  Whatever
 * a reader accepts must be terminated within its bounds; whatever it
 * rejects must leave its outputs empty and call no callback.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_str(const char *s, size_t cap)
{
	if (strnlen(s, cap) >= cap)
		abort();
}

static int
on_object(void *arg, const struct s3_object *o)
{
	check_str(o->key, sizeof(o->key));
	check_str(o->etag, sizeof(o->etag));
	if (o->key[0] == '\0')
		abort();
	(*(size_t *)arg)++;
	return 0;
}

static int
on_upload(void *arg, const char *key, const char *id, int64_t initiated)
{
	check_str(key, S3_KEY_MAX);
	check_str(id, S3_ID_MAX);
	if (key[0] == '\0' || id[0] == '\0')
		abort();
	(*(size_t *)arg)++;
	return 0;
}

static void
check_page(int rc, const struct s3xml_page *pg, size_t delivered)
{
	check_str(pg->token, sizeof(pg->token));
	check_str(pg->key_marker, sizeof(pg->key_marker));
	check_str(pg->id_marker, sizeof(pg->id_marker));
	if (rc == 0 && delivered != pg->count)
		abort();
	if (rc != 0 && (delivered != 0 || pg->count != 0 || pg->truncated || pg->token[0]))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *doc = (const char *)data;
	struct s3xml_error e;
	struct s3xml_page pg;
	char id[S3_ID_MAX], etag[S3_ETAG_MAX];
	size_t n;
	int rc;

	rc = s3xml_error(doc, size, &e);
	check_str(e.code, sizeof(e.code));
	check_str(e.message, sizeof(e.message));
	if ((rc == 0) != (e.code[0] != '\0'))
		abort();

	n = 0;
	rc = s3xml_list_objects(doc, size, &pg, on_object, &n);
	check_page(rc, &pg, n);
	n = 0;
	rc = s3xml_list_uploads(doc, size, &pg, on_upload, &n);
	check_page(rc, &pg, n);

	rc = s3xml_initiate(doc, size, id);
	check_str(id, sizeof(id));
	if ((rc == 0) != (id[0] != '\0'))
		abort();
	rc = s3xml_complete(doc, size, etag);
	check_str(etag, sizeof(etag));
	if (rc != 0 && etag[0] != '\0')
		abort();
	return 0;
}
