/*
 * A strict, bounded reader for the few XML documents an S3 server answers
 * with.  Not a general XML parser: no DTD, no CDATA, no entities beyond the
 * five predefined ones and numeric references; documents are UTF-8, at most
 * S3XML_MAX_DOC bytes, S3XML_MAX_DEPTH deep, every text at most
 * S3XML_MAX_TEXT bytes decoded.  Anything else is rejected whole: a reply
 * that is not exactly what S3 sends is a reply we do not act on.
 *
 * Every function returns 0 for a well-formed document of the expected kind,
 * -1 otherwise (outputs then zeroed, callbacks never called).  Callbacks run
 * only after the whole document has been checked; a non-zero return stops
 * the walk and is returned (as 1).
 */
#ifndef VS_S3XML_H
#define VS_S3XML_H

#include <stddef.h>
#include <stdint.h>

#include "s3.h"

#define S3XML_MAX_DOC	(1024 * 1024)
#define S3XML_MAX_DEPTH	8
#define S3XML_MAX_NAME	64
#define S3XML_MAX_TEXT	2048
#define S3XML_TOKEN_MAX	1024	/* continuation token */

/* <Error><Code>…</Code><Message>…</Message></Error> */
struct s3xml_error {
	char code[64];
	char message[S3_ERR_MAX];	/* truncated to fit; printable ASCII */
};
int s3xml_error(const char *doc, size_t len, struct s3xml_error *e);

/* Paging state of a listing reply. */
struct s3xml_page {
	int truncated;			/* IsTruncated */
	char token[S3XML_TOKEN_MAX];	/* NextContinuationToken (objects) */
	char key_marker[S3_KEY_MAX];	/* NextKeyMarker (uploads) */
	char id_marker[S3_ID_MAX];	/* NextUploadIdMarker (uploads) */
	size_t count;			/* entries in this page */
};

/*
 * ListBucketResult (ListObjectsV2): fn once per Contents (Key and Size
 * required, ETag unquoted).  A truncated page must carry a token.
 */
typedef int (*s3xml_object_fn)(void *arg, const struct s3_object *o);
int s3xml_list_objects(const char *doc, size_t len, struct s3xml_page *pg,
    s3xml_object_fn fn, void *arg);

/* ListMultipartUploadsResult: fn once per Upload (Key and UploadId required). */
typedef int (*s3xml_upload_fn)(void *arg, const char *key, const char *upload_id,
    int64_t initiated);
int s3xml_list_uploads(const char *doc, size_t len, struct s3xml_page *pg,
    s3xml_upload_fn fn, void *arg);

/* InitiateMultipartUploadResult: the UploadId (printable ASCII, non-empty). */
int s3xml_initiate(const char *doc, size_t len, char upload_id[S3_ID_MAX]);

/* CompleteMultipartUploadResult: its ETag, unquoted, "" if empty (RGW). */
int s3xml_complete(const char *doc, size_t len, char etag[S3_ETAG_MAX]);

#endif
