/*
 * uploader/s3xml.c and uploader/s3util.c: the S3 reply reader and the pure
 * helpers of the S3 client.  The reader sees hostile input, so besides the
 * replies RGW and AWS really send there are limit and syntax tables, and
 * truncation and bit-flip loops over every sample, each parse on an
 * exact-size heap copy so that a sanitizer catches any over-read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3util.h"
#include "s3xml.h"

#define XMLDECL	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define NS	" xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

/* Captured from Ceph RGW 16.2. */
static const char rgw_error[] = XMLDECL "<Error><Code>SignatureDoesNotMatch</Code><Message>"
    "</Message><RequestId>tx000005c301da145139a57-006b0e804a-1018-default</RequestId>"
    "<HostId>1018-default-default</HostId></Error>";
static const char rgw_list[] = XMLDECL "<ListBucketResult" NS "><Name>vstest</Name>"
    "<Prefix>v/</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
    "<Contents><Key>v/a&amp;b.txt</Key><LastModified>2026-12-01T08:07:36.036Z</LastModified>"
    "<ETag>&quot;b1946ac92492d2347c6235b4d2611184&quot;</ETag><Size>6</Size>"
    "<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents><Contents>"
    "<Key>v/k1</Key><LastModified>2026-12-01T08:07:36.050Z</LastModified>"
    "<ETag>&quot;0ef5ae1d9d5e0a8c8a7a1d4a3f4ccb1a-3&quot;</ETag><Size>15728640</Size>"
    "<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents>"
    "<KeyCount>2</KeyCount></ListBucketResult>";
static const char rgw_list_trunc[] = XMLDECL "<ListBucketResult" NS "><Name>vstest</Name>"
    "<Prefix>v/</Prefix><MaxKeys>1</MaxKeys><IsTruncated>true</IsTruncated><Contents>"
    "<Key>v/a&amp;b.txt</Key><LastModified>2026-12-01T08:07:36.036Z</LastModified>"
    "<ETag>&quot;b1946ac92492d2347c6235b4d2611184&quot;</ETag><Size>6</Size>"
    "<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents>"
    "<NextContinuationToken>v/a&amp;b.txt</NextContinuationToken><KeyCount>1</KeyCount>"
    "</ListBucketResult>";
static const char rgw_uploads[] = XMLDECL "<ListMultipartUploadsResult" NS "><Bucket>vstest"
    "</Bucket><Prefix>v/</Prefix><NextKeyMarker>v/mp</NextKeyMarker><NextUploadIdMarker>"
    "2~wm9nnElyuDj0WEXPYehwnlIOmxqNVbG</NextUploadIdMarker><MaxUploads>1000</MaxUploads>"
    "<IsTruncated>false</IsTruncated><Upload><Key>v/mp</Key><UploadId>"
    "2~wm9nnElyuDj0WEXPYehwnlIOmxqNVbG</UploadId><Initiator><ID>test</ID><DisplayName>test"
    "</DisplayName></Initiator><Owner><ID>test</ID><DisplayName>test</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass><Initiated>2026-12-01T08:07:38.046Z</Initiated>"
    "</Upload></ListMultipartUploadsResult>";
static const char rgw_initiate[] = XMLDECL "<InitiateMultipartUploadResult" NS "><Bucket>"
    "vstest</Bucket><Key>v/mp2</Key><UploadId>2~vraz5NfNMtgm8eEanrBgM0Z-EbyKBSt</UploadId>"
    "</InitiateMultipartUploadResult>";
static const char rgw_complete[] = XMLDECL "\n<CompleteMultipartUploadResult" NS "><Location>"
    "http://127.0.0.1/vstest/v/mp</Location><Bucket>vstest</Bucket><Key>v/mp</Key><ETag>"
    "</ETag></CompleteMultipartUploadResult>";
/* As AWS documents them: indented, with comments where a proxy might add them. */
static const char aws_error[] = XMLDECL "\n<Error>\n  <Code>RequestTimeTooSkewed</Code>\n"
    "  <Message>The difference between the request time and the current time is too "
    "large.</Message>\n  <RequestTime>20240101T000000Z</RequestTime>\n"
    "  <MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>\n"
    "  <RequestId>4442587FB7D0A2F9</RequestId>\n</Error>\n";
static const char aws_complete[] = XMLDECL "\n<CompleteMultipartUploadResult" NS ">\n"
    "  <Location>https://b.s3.amazonaws.com/v/big</Location>\n  <Bucket>b</Bucket>\n"
    "  <Key>v/big</Key>\n  <ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>\n"
    "</CompleteMultipartUploadResult>\n";
static const char aws_uploads[] = XMLDECL "\n<!-- page 1 -->\n<ListMultipartUploadsResult" NS ">\n"
    "  <Bucket>b</Bucket>\n  <KeyMarker></KeyMarker>\n  <UploadIdMarker/>\n"
    "  <NextKeyMarker>vaults/home/vault.tar.age</NextKeyMarker>\n"
    "  <NextUploadIdMarker>VXBsb2FkIElEIGZvciBteS1tb3ZpZS5tMnRzIHVwbG9hZA</NextUploadIdMarker>\n"
    "  <Prefix>vaults/</Prefix>\n  <MaxUploads>1</MaxUploads>\n"
    "  <IsTruncated>true</IsTruncated>\n  <Upload>\n    <Key>vaults/home/vault.tar.age</Key>\n"
    "    <UploadId>VXBsb2FkIElEIGZvciBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\n"
    "    <Initiator>\n      <ID>arn:aws:iam::111122223333:user/x</ID>\n"
    "      <DisplayName>x</DisplayName>\n    </Initiator>\n"
    "    <StorageClass>STANDARD</StorageClass>\n"
    "    <Initiated>2010-11-10T20:48:33.000Z</Initiated>\n  </Upload>\n"
    "</ListMultipartUploadsResult>\n<!-- end -->\n";

static const char *const samples[] = { rgw_error, rgw_list, rgw_list_trunc, rgw_uploads,
	rgw_initiate, rgw_complete, aws_error, aws_complete, aws_uploads };
#define NSAMPLES	(sizeof(samples) / sizeof(samples[0]))

/* ---- helpers --------------------------------------------------------------- */

static char *
dup_exact(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

struct seen {
	size_t n;
	int stop_after;
	struct s3_object o[4];
	char ids[4][S3_ID_MAX];
	int64_t t[4];
};

static int
on_object(void *arg, const struct s3_object *o)
{
	struct seen *s = arg;

	assert_true(strnlen(o->key, sizeof(o->key)) < sizeof(o->key));
	assert_true(strnlen(o->etag, sizeof(o->etag)) < sizeof(o->etag));
	if (s->n < 4)
		s->o[s->n] = *o;
	s->n++;
	return s->stop_after != 0 && (int)s->n >= s->stop_after;
}

static int
on_upload(void *arg, const char *key, const char *id, int64_t initiated)
{
	struct seen *s = arg;

	assert_true(strlen(key) < S3_KEY_MAX && strlen(id) < S3_ID_MAX);
	if (s->n < 4) {
		snprintf(s->o[s->n].key, sizeof(s->o[0].key), "%s", key);
		snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
		s->t[s->n] = initiated;
	}
	s->n++;
	return s->stop_after != 0 && (int)s->n >= s->stop_after;
}

static int
parse_objects(const char *doc, size_t len, struct s3xml_page *pg, struct seen *s)
{
	char *copy = dup_exact(doc, len);
	int rc = s3xml_list_objects(copy, len, pg, on_object, s);

	free(copy);
	return rc;
}

/* Run every reader on [doc, doc+len) and check what each promises on any input. */
static int
parse_all(const char *doc, size_t len)
{
	char *copy = dup_exact(doc, len), id[S3_ID_MAX], etag[S3_ETAG_MAX];
	struct s3xml_error e;
	struct s3xml_page pg;
	struct seen s;
	int ok = 0, rc;

	if ((rc = s3xml_error(copy, len, &e)) == 0) {
		ok++;
		assert_true(e.code[0] != '\0');
	} else
		assert_true(e.code[0] == '\0' && e.message[0] == '\0');
	assert_true(strnlen(e.message, sizeof(e.message)) < sizeof(e.message));
	memset(&s, 0, sizeof(s));
	if ((rc = s3xml_list_objects(copy, len, &pg, on_object, &s)) == 0) {
		ok++;
		assert_int_equal(s.n, pg.count);
	} else
		assert_true(s.n == 0 && pg.count == 0 && pg.token[0] == '\0' && !pg.truncated);
	memset(&s, 0, sizeof(s));
	if ((rc = s3xml_list_uploads(copy, len, &pg, on_upload, &s)) == 0) {
		ok++;
		assert_int_equal(s.n, pg.count);
	} else
		assert_true(s.n == 0 && pg.count == 0 && pg.key_marker[0] == '\0');
	if (s3xml_initiate(copy, len, id) == 0) {
		ok++;
		assert_true(id[0] != '\0' && strlen(id) < sizeof(id));
	} else
		assert_true(id[0] == '\0');
	if (s3xml_complete(copy, len, etag) == 0)
		ok++;
	else
		assert_true(etag[0] == '\0');
	free(copy);
	return ok;
}

/* ---- good replies ------------------------------------------------------------ */

static void
test_error_replies(void **state)
{
	struct s3xml_error e;

	assert_int_equal(s3xml_error(rgw_error, strlen(rgw_error), &e), 0);
	assert_string_equal(e.code, "SignatureDoesNotMatch");
	assert_string_equal(e.message, "");
	assert_int_equal(s3xml_error(aws_error, strlen(aws_error), &e), 0);
	assert_string_equal(e.code, "RequestTimeTooSkewed");
	assert_string_equal(e.message, "The difference between the request time and the "
	    "current time is too large.");
	/* Another kind of document is not an error document. */
	assert_int_equal(s3xml_error(rgw_list, strlen(rgw_list), &e), -1);
	assert_int_equal(s3xml_error("<Error><Message>x</Message></Error>", 35, &e), -1);
}

static void
test_list_objects(void **state)
{
	struct s3xml_page pg;
	struct seen s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(parse_objects(rgw_list, strlen(rgw_list), &pg, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(pg.count, 2);
	assert_false(pg.truncated);
	assert_string_equal(s.o[0].key, "v/a&b.txt");
	assert_string_equal(s.o[0].etag, "b1946ac92492d2347c6235b4d2611184");
	assert_int_equal(s.o[0].size, 6);
	assert_int_equal(s.o[0].last_modified, 1796112456);
	assert_string_equal(s.o[1].key, "v/k1");
	assert_string_equal(s.o[1].etag, "0ef5ae1d9d5e0a8c8a7a1d4a3f4ccb1a-3");
	assert_int_equal(s.o[1].size, 15728640);

	memset(&s, 0, sizeof(s));
	assert_int_equal(parse_objects(rgw_list_trunc, strlen(rgw_list_trunc), &pg, &s), 0);
	assert_int_equal(s.n, 1);
	assert_true(pg.truncated);
	assert_string_equal(pg.token, "v/a&b.txt");

	/* A callback's non-zero return stops the walk at once. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	assert_int_equal(parse_objects(rgw_list, strlen(rgw_list), &pg, &s), 1);
	assert_int_equal(s.n, 1);

	/* No callback: validate and count only. */
	assert_int_equal(s3xml_list_objects(rgw_list, strlen(rgw_list), &pg, NULL, NULL), 0);
	assert_int_equal(pg.count, 2);
}

static void
test_list_uploads(void **state)
{
	struct s3xml_page pg;
	struct seen s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(s3xml_list_uploads(rgw_uploads, strlen(rgw_uploads), &pg, on_upload, &s),
	    0);
	assert_int_equal(s.n, 1);
	assert_false(pg.truncated);
	assert_string_equal(s.o[0].key, "v/mp");
	assert_string_equal(s.ids[0], "2~wm9nnElyuDj0WEXPYehwnlIOmxqNVbG");
	assert_int_equal(s.t[0], 1796112458);
	assert_string_equal(pg.key_marker, "v/mp");

	memset(&s, 0, sizeof(s));
	assert_int_equal(s3xml_list_uploads(aws_uploads, strlen(aws_uploads), &pg, on_upload, &s),
	    0);
	assert_int_equal(s.n, 1);
	assert_true(pg.truncated);
	assert_string_equal(pg.key_marker, "vaults/home/vault.tar.age");
	assert_string_equal(pg.id_marker, "VXBsb2FkIElEIGZvciBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
	assert_int_equal(s.t[0], 1289422113);
	/* The listing readers are not interchangeable. */
	assert_int_equal(s3xml_list_objects(aws_uploads, strlen(aws_uploads), &pg, NULL, NULL),
	    -1);
}

static void
test_multipart_replies(void **state)
{
	char id[S3_ID_MAX], etag[S3_ETAG_MAX];

	assert_int_equal(s3xml_initiate(rgw_initiate, strlen(rgw_initiate), id), 0);
	assert_string_equal(id, "2~vraz5NfNMtgm8eEanrBgM0Z-EbyKBSt");
	assert_int_equal(s3xml_complete(rgw_complete, strlen(rgw_complete), etag), 0);
	assert_string_equal(etag, "");
	assert_int_equal(s3xml_complete(aws_complete, strlen(aws_complete), etag), 0);
	assert_string_equal(etag, "3858f62230ac3c915f300c664312c11f-9");
	assert_int_equal(s3xml_initiate(rgw_complete, strlen(rgw_complete), id), -1);
	assert_int_equal(s3xml_complete(rgw_error, strlen(rgw_error), etag), -1);
}

/* ---- entities, syntax, limits ------------------------------------------------------ */

#define ERRDOC(inner)	"<Error><Code>C</Code><Message>" inner "</Message></Error>"

static int
message_of(const char *doc, char *out, size_t outlen)
{
	struct s3xml_error e;
	int rc;

	if ((rc = s3xml_error(doc, strlen(doc), &e)) == 0)
		snprintf(out, outlen, "%s", e.message);
	return rc;
}

static void
test_entities(void **state)
{
	static const char *const bad[] = {
		ERRDOC("&foo;"), ERRDOC("&#;"), ERRDOC("&#x;"), ERRDOC("&#0;"), ERRDOC("&#x1;"),
		ERRDOC("&#xD800;"), ERRDOC("&#xFFFE;"), ERRDOC("&#x110000;"),
		ERRDOC("&#12345678;"), ERRDOC("&amp"), ERRDOC("a & b"), ERRDOC("&#x41"),
		ERRDOC("&#65x;"), ERRDOC("&LT;"), ERRDOC("&#-1;"), ERRDOC("&#xg;"),
	};
	static const char utf8_doc[] = "<ListBucketResult><Contents><Key>&#xe9;&#x20AC;"
	    "&#x1F600;\xc3\xa9</Key><Size>1</Size></Contents></ListBucketResult>";
	struct s3_object *o;
	struct s3xml_page pg;
	struct seen s;
	char m[S3_ERR_MAX];
	size_t i;

	assert_int_equal(message_of(ERRDOC("&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#X43;"), m,
	    sizeof(m)), -1);	/* &#X is not a hex reference */
	assert_int_equal(message_of(ERRDOC("&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#0000067;"), m,
	    sizeof(m)), 0);
	assert_string_equal(m, "<>&\"'ABC");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (message_of(bad[i], m, sizeof(m)) != -1)
			fail_msg("accepted %s", bad[i]);
	/* Multi-byte references decode to UTF-8 in keys (messages are made printable). */
	memset(&s, 0, sizeof(s));
	assert_int_equal(s3xml_list_objects(utf8_doc, strlen(utf8_doc), &pg, on_object, &s), 0);
	o = &s.o[0];
	assert_string_equal(o->key, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9");
	assert_int_equal(message_of(ERRDOC("caf\xc3\xa9\tx"), m, sizeof(m)), 0);
	assert_string_equal(m, "caf???x");
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"", " ", "<Error>", "<Error><Code>C</Code>", "<Error><Code>C</Code></Error",
		"<Error><Code>C</Code></Err>", "<Error><Code>C</Error></Code>",
		"<Error><Code>C</Code></Error><Error/>", "<Error><Code>C</Code></Error>x",
		"<Error><Code>C</Code></Error>&amp;",
		"<!DOCTYPE Error [<!ENTITY x \"y\">]><Error><Code>C</Code></Error>",
		"<Error><Code><![CDATA[C]]></Code></Error>", "<Error><?pi x?><Code>C</Code></Error>",
		"<Error>text<Code>C</Code></Error>", "<Error><Code>C</Code>text</Error>",
		"<Error><Code>C<b/></Code></Error>", "<Error><Code>C</Code><Code>D</Code></Error>",
		"<Error><Code></Code></Error>", "<Error><Code>a b</Code></Error>",
		"<Error><Code a=b>C</Code></Error>", "<Error><Code a=\"b>C</Code></Error>",
		"<Error><Code a=\"<\">C</Code></Error>", "<Error><Code a=\"1\"b=\"2\">C</Code></Error>",
		"<Error><Code>C</Code ></Error >x", "< Error><Code>C</Code></Error>",
		"<Error><1Code>C</1Code></Error>", "<Error><Code>]]></Code></Error>",
		"<Error><Code>C</Code><!-- a -- b --></Error>", "<Error><!-- open </Error>",
		" <?xml version=\"1.0\"?><Error><Code>C</Code></Error>",
		"<?xml?><Error><Code>C</Code></Error>", "<?xml version=\"1.0\"<Error/>",
		"\xef\xbb\xbf<Error><Code>C</Code></Error>",
		"<Error><Code>\xc0\x80</Code></Error>", "<Error><Code>\xed\xa0\x80</Code></Error>",
		"<Error><Code>\xf4\x90\x80\x80</Code></Error>", "<Error><Code>\xe2\x82</Code></Error>",
		"<Error><Code>\xef\xbf\xbf</Code></Error>", "<Error><Code>\x01</Code></Error>",
		"<Error><Code>\x7f\x80</Code></Error>", "<Error/>", "<error><Code>C</Code></error>",
	};
	static const char nul_doc[] = "<Error><Code>C\0D</Code></Error>";
	static const char good[] = "<?xml version='1.0'?>\r\n<!--x-->\t<Error a = 'x&amp;'"
	    " b=\"y\" ><Code>C.d</Code\n><Note/><!----></Error>\n<!-- -->\n";
	struct s3xml_error e;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *copy = dup_exact(bad[i], strlen(bad[i]));

		if (s3xml_error(copy, strlen(bad[i]), &e) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		free(copy);
	}
	assert_int_equal(s3xml_error(nul_doc, sizeof(nul_doc) - 1, &e), -1);
	assert_int_equal(s3xml_error(NULL, 0, &e), -1);
	/* What is allowed: declaration, comments, whitespace, attributes, self-closing. */
	assert_int_equal(s3xml_error(good, strlen(good), &e), 0);
	assert_string_equal(e.code, "C.d");
}

static void
test_list_strictness(void **state)
{
	static const char *const bad[] = {
		/* Key and Size are required, once; Contents must not be empty. */
		"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Key>j</Key><Size>1</Size></Contents>"
		    "</ListBucketResult>",
		"<ListBucketResult><Contents/></ListBucketResult>",
		"<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>18446744073709551616</Size></Contents>"
		    "</ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size><ETag>\"a b\"</ETag>"
		    "</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size><LastModified>yesterday"
		    "</LastModified></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k<x/></Key><Size>1</Size></Contents>"
		    "</ListBucketResult>",
		"<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated><IsTruncated>false</IsTruncated>"
		    "</ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Contents><Bad>",
	};
	static const char good[] = "<ListBucketResult><Contents><Key>k</Key><Size>1</Size>"
	    "<Owner><ID>x</ID></Owner></Contents><CommonPrefixes><Prefix>p/</Prefix>"
	    "</CommonPrefixes></ListBucketResult>";
	struct s3xml_page pg;
	struct seen s;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&s, 0, sizeof(s));
		if (parse_objects(bad[i], strlen(bad[i]), &pg, &s) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		/* Nothing is delivered from a document rejected at its end. */
		assert_int_equal(s.n, 0);
	}
	memset(&s, 0, sizeof(s));
	assert_int_equal(parse_objects(good, strlen(good), &pg, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.o[0].etag, "");
}

/* A document of depth levels, or with a text of n bytes. */
static char *
deep_doc(int depth, size_t *len)
{
	size_t cap = (size_t)depth * 16 + 64, o = 0;
	char *b = malloc(cap);
	int i;

	assert_non_null(b);
	o += (size_t)snprintf(b + o, cap - o, "<Error><Code>C</Code>");
	for (i = 1; i < depth; i++)
		o += (size_t)snprintf(b + o, cap - o, "<a>");
	for (i = 1; i < depth; i++)
		o += (size_t)snprintf(b + o, cap - o, "</a>");
	o += (size_t)snprintf(b + o, cap - o, "</Error>");
	*len = o;
	return b;
}

static char *
text_doc(const char *pre, size_t n, char fill, const char *post, size_t *len)
{
	size_t pl = strlen(pre), ql = strlen(post);
	char *b = malloc(pl + n + ql);

	assert_non_null(b);
	memcpy(b, pre, pl);
	memset(b + pl, fill, n);
	memcpy(b + pl + n, post, ql);
	*len = pl + n + ql;
	return b;
}

static void
test_limits(void **state)
{
	struct s3xml_error e;
	struct s3xml_page pg;
	struct seen s;
	char name[S3XML_MAX_NAME + 2], doc[256];
	size_t len;
	char *b;

	b = deep_doc(S3XML_MAX_DEPTH, &len);
	assert_int_equal(s3xml_error(b, len, &e), 0);
	free(b);
	b = deep_doc(S3XML_MAX_DEPTH + 1, &len);
	assert_int_equal(s3xml_error(b, len, &e), -1);
	free(b);

	memset(name, 'n', sizeof(name));
	name[S3XML_MAX_NAME] = '\0';
	snprintf(doc, sizeof(doc), "<Error><Code>C</Code><%s/></Error>", name);
	assert_int_equal(s3xml_error(doc, strlen(doc), &e), 0);
	name[S3XML_MAX_NAME] = 'n';
	name[S3XML_MAX_NAME + 1] = '\0';
	snprintf(doc, sizeof(doc), "<Error><Code>C</Code><%s/></Error>", name);
	assert_int_equal(s3xml_error(doc, strlen(doc), &e), -1);

	/* Texts: the parser's bound, then the message truncated to the result line. */
	b = text_doc("<Error><Code>C</Code><Message>", S3XML_MAX_TEXT, 'm', "</Message></Error>",
	    &len);
	assert_int_equal(s3xml_error(b, len, &e), 0);
	assert_int_equal(strlen(e.message), S3_ERR_MAX - 1);
	free(b);
	b = text_doc("<Error><Code>C</Code><Message>", S3XML_MAX_TEXT + 1, 'm',
	    "</Message></Error>", &len);
	assert_int_equal(s3xml_error(b, len, &e), -1);
	free(b);
	/* Whitespace between elements counts too. */
	b = text_doc("<Error><Code>C</Code>", S3XML_MAX_TEXT + 1, ' ', "</Error>", &len);
	assert_int_equal(s3xml_error(b, len, &e), -1);
	free(b);

	/* Keys: the longest that fits, then one more. */
	memset(&s, 0, sizeof(s));
	b = text_doc("<ListBucketResult><Contents><Key>", S3_KEY_MAX - 1, 'k',
	    "</Key><Size>0</Size></Contents></ListBucketResult>", &len);
	assert_int_equal(parse_objects(b, len, &pg, &s), 0);
	assert_int_equal(strlen(s.o[0].key), S3_KEY_MAX - 1);
	free(b);
	b = text_doc("<ListBucketResult><Contents><Key>", S3_KEY_MAX, 'k',
	    "</Key><Size>0</Size></Contents></ListBucketResult>", &len);
	assert_int_equal(parse_objects(b, len, &pg, &s), -1);
	free(b);
	b = text_doc("<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>",
	    S3XML_TOKEN_MAX, 't', "</NextContinuationToken></ListBucketResult>", &len);
	assert_int_equal(parse_objects(b, len, &pg, &s), -1);
	free(b);
	b = text_doc("<ListBucketResult><Contents><Key>k</Key><Size>0</Size><ETag>",
	    S3_ETAG_MAX, 'e', "</ETag></Contents></ListBucketResult>", &len);
	assert_int_equal(parse_objects(b, len, &pg, &s), -1);
	free(b);

	/* The document bound, just above and at it. */
	b = text_doc("<Error><Code>C</Code><!--", S3XML_MAX_DOC - 36 + 1, 'c', "--></Error>",
	    &len);
	assert_int_equal(len, S3XML_MAX_DOC + 1);
	assert_int_equal(s3xml_error(b, len, &e), -1);
	assert_int_equal(s3xml_error(b + 1, len - 1, &e), -1);	/* "Error>..." */
	free(b);
	b = text_doc("<Error><Code>C</Code><!--", S3XML_MAX_DOC - 36, 'c', "--></Error>", &len);
	assert_int_equal(len, S3XML_MAX_DOC);
	assert_int_equal(s3xml_error(b, len, &e), 0);
	free(b);
}

/* ---- truncation and bit flips ---------------------------------------------------- */

static int
only_ws(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

static void
test_truncation(void **state)
{
	size_t k, i, len;

	for (k = 0; k < NSAMPLES; k++) {
		len = strlen(samples[k]);
		assert_int_equal(parse_all(samples[k], len), 1);
		for (i = 0; i < len; i++) {
			int ok = parse_all(samples[k], i);

			/* Only trailing whitespace (and a closing comment) may go. */
			if (ok != 0 && !only_ws(samples[k] + i, len - i) &&
			    strstr(samples[k] + i, "</") != NULL)
				fail_msg("sample %zu accepted when cut at %zu", k, i);
		}
	}
}

static void
test_bitflips(void **state)
{
	size_t k, i, len;
	unsigned bit;
	char *b;

	for (k = 0; k < NSAMPLES; k++) {
		len = strlen(samples[k]);
		b = dup_exact(samples[k], len);
		for (i = 0; i < len; i++)
			for (bit = 0; bit < 8; bit++) {
				b[i] ^= (char)(1u << bit);
				assert_true(parse_all(b, len) <= 1);
				b[i] ^= (char)(1u << bit);
			}
		free(b);
	}
}

/* ---- s3util -------------------------------------------------------------------- */

static void
test_query(void **state)
{
	struct s3_qparam p[4];
	char q[128];

	p[0] = (struct s3_qparam){ "prefix", "v/a b+c" };
	p[1] = (struct s3_qparam){ "list-type", "2" };
	p[2] = (struct s3_qparam){ "continuation-token", "v/a&b.txt~" };
	p[3] = (struct s3_qparam){ "max-keys", "1" };
	assert_int_equal(s3_query_build(p, 4, q, sizeof(q)), 0);
	assert_string_equal(q, "continuation-token=v%2Fa%26b.txt~&list-type=2&max-keys=1&"
	    "prefix=v%2Fa%20b%2Bc");
	p[0] = (struct s3_qparam){ "uploadId", "2~x/y=" };
	p[1] = (struct s3_qparam){ "partNumber", "10" };
	assert_int_equal(s3_query_build(p, 2, q, sizeof(q)), 0);
	assert_string_equal(q, "partNumber=10&uploadId=2~x%2Fy%3D");
	p[0] = (struct s3_qparam){ "uploads", "" };
	p[1] = (struct s3_qparam){ "prefix", "\xc3\xa9" };
	assert_int_equal(s3_query_build(p, 2, q, sizeof(q)), 0);
	assert_string_equal(q, "prefix=%C3%A9&uploads=");
	assert_int_equal(s3_query_build(NULL, 0, q, sizeof(q)), 0);
	assert_string_equal(q, "");
	/* Names must be unreserved; output must fit, exactly. */
	p[0] = (struct s3_qparam){ "a b", "1" };
	assert_int_equal(s3_query_build(p, 1, q, sizeof(q)), -1);
	p[0] = (struct s3_qparam){ "ab", "12" };
	assert_int_equal(s3_query_build(p, 1, q, 6), 0);
	assert_string_equal(q, "ab=12");
	assert_int_equal(s3_query_build(p, 1, q, 5), -1);
	p[0] = (struct s3_qparam){ "ab", "/" };
	assert_int_equal(s3_query_build(p, 1, q, 6), -1);
	assert_int_equal(s3_uri_encode("a/b c", 1, q, sizeof(q)), 0);
	assert_string_equal(q, "a/b%20c");
}

static void
test_endpoint(void **state)
{
	static const char *const bad[] = {
		"ftp://h", "http://", "https://", "http://h:0", "http://h:65536", "http://h:",
		"http://h/path", "http://h:80x", "http://user@h", "http://[::1", "http://[zz]",
		"http://h..x", "http://.h", "http://h.", "http://h_x", "HTTP://h", "http://h:123456",
	};
	struct s3_endpoint ep;
	size_t i;

	assert_int_equal(s3_endpoint_parse("http://127.0.0.1:19120", &ep), 0);
	assert_true(!ep.tls && ep.literal && !ep.v6 && ep.port == 19120);
	assert_string_equal(ep.host, "127.0.0.1");
	assert_int_equal(s3_endpoint_parse("https://S3.EU-West-1.amazonaws.com/", &ep), 0);
	assert_true(ep.tls && !ep.literal && ep.port == 443);
	assert_string_equal(ep.host, "s3.eu-west-1.amazonaws.com");
	assert_int_equal(s3_endpoint_parse("http://[::1]:9000", &ep), 0);
	assert_true(ep.v6 && ep.literal && ep.port == 9000);
	assert_string_equal(ep.host, "::1");
	assert_int_equal(s3_endpoint_parse("http://minio", &ep), 0);
	assert_int_equal(ep.port, 80);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (s3_endpoint_parse(bad[i], &ep) != -1)
			fail_msg("accepted %s", bad[i]);
}

static void
test_url(void **state)
{
	struct s3_endpoint ep;
	char u[256];

	assert_int_equal(s3_endpoint_parse("http://127.0.0.1:19120", &ep), 0);
	assert_int_equal(s3_url_build(&ep, "vstest", 1, "v/k 1", NULL, u, sizeof(u)), 0);
	assert_string_equal(u, "http://127.0.0.1:19120/vstest/v/k%201");
	assert_int_equal(s3_url_build(&ep, "vstest", 1, "", "list-type=2", u, sizeof(u)), 0);
	assert_string_equal(u, "http://127.0.0.1:19120/vstest?list-type=2");
	assert_int_equal(s3_url_build(&ep, "vstest", 0, "k", NULL, u, sizeof(u)), -1);
	assert_int_equal(s3_endpoint_parse("https://s3.example.com", &ep), 0);
	assert_int_equal(s3_url_build(&ep, "b", 0, "a/b", "uploads=", u, sizeof(u)), 0);
	assert_string_equal(u, "https://b.s3.example.com/a/b?uploads=");
	assert_int_equal(s3_url_build(&ep, "b", 0, "", "", u, sizeof(u)), 0);
	assert_string_equal(u, "https://b.s3.example.com/");
	assert_int_equal(s3_endpoint_parse("https://s3.example.com:8443", &ep), 0);
	assert_int_equal(s3_url_build(&ep, "b", 1, "k", NULL, u, sizeof(u)), 0);
	assert_string_equal(u, "https://s3.example.com:8443/b/k");
	assert_int_equal(s3_endpoint_parse("http://s3.example.com:80", &ep), 0);
	assert_int_equal(s3_url_build(&ep, "b", 1, "k", NULL, u, sizeof(u)), 0);
	assert_string_equal(u, "http://s3.example.com/b/k");
	assert_int_equal(s3_endpoint_parse("https://s3.example.com", &ep), 0);
	assert_int_equal(s3_request_host(&ep, "b", 0, u, sizeof(u)), 0);
	assert_string_equal(u, "b.s3.example.com");
	assert_int_equal(s3_endpoint_parse("http://[::1]:9000", &ep), 0);
	assert_int_equal(s3_url_build(&ep, "b", 1, "k", NULL, u, sizeof(u)), 0);
	assert_string_equal(u, "http://[::1]:9000/b/k");
	assert_int_equal(s3_url_build(&ep, "b", 1, "k", NULL, u, 21), -1);
	assert_int_equal(s3_url_build(&ep, "b", 1, "k", NULL, u, 22), 0);

	assert_true(s3_bucket_valid("vstest", 0));
	assert_true(s3_bucket_valid("my.bucket-1", 1));
	assert_false(s3_bucket_valid("my.bucket", 0));
	assert_false(s3_bucket_valid("ab", 1));
	assert_false(s3_bucket_valid("Upper", 1));
	assert_false(s3_bucket_valid("a..b", 1));
	assert_false(s3_bucket_valid("-ab", 1));
	assert_false(s3_bucket_valid("ab/c", 1));
	assert_true(s3_key_valid(""));
	assert_true(s3_key_valid("vaults/home/history/20240101T000000Z-0123.tar.age"));
	assert_false(s3_key_valid("/abs"));
	assert_false(s3_key_valid("a//b"));
	assert_false(s3_key_valid("a/../b"));
	assert_false(s3_key_valid("a b"));
	assert_false(s3_key_valid("a\nb"));
}

static void
test_http_date(void **state)
{
	static const char *const bad[] = {
		"Sun, 06 Nov 1994 08:49:37 gmt", "Sun, 06 Nov 94 08:49:37 GMT",
		"Sun 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 GMT ",
		"Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
		"Sun, 06 Nov 1994 08:60:00 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Now 1994 08:49:37 GMT", "Thu, 29 Feb 2001 00:00:00 GMT",
		"Mon, 29 Feb 2100 00:00:00 GMT", "Sun, 0a Nov 1994 08:49:37 GMT",
		"Thu, 01 Jan 1969 00:00:00 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
	};
	int64_t t;
	size_t i;

	assert_int_equal(s3_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(s3_http_date_parse("Tue, 29 Feb 2000 23:59:59 GMT", 29, &t), 0);
	assert_int_equal(t, 951868799);
	assert_int_equal(s3_http_date_parse("Mon, 01 Mar 2100 00:00:00 GMT", 29, &t), 0);
	assert_int_equal(t, 4107542400);
	assert_int_equal(s3_http_date_parse("Thu, 01 Jan 1970 00:00:00 GMT", 29, &t), 0);
	assert_int_equal(t, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (s3_http_date_parse(bad[i], strlen(bad[i]), &t) != -1)
			fail_msg("accepted %s", bad[i]);
	/* Not NUL-terminated: the length bounds it. */
	assert_int_equal(s3_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMTxyz", 29, &t), 0);
}

static void
test_etag_u64(void **state)
{
	char e[S3_ETAG_MAX], longtag[S3_ETAG_MAX + 2];
	uint64_t v;

	assert_int_equal(s3_etag_unquote("\"abc-2\"", 7, e), 0);
	assert_string_equal(e, "abc-2");
	assert_int_equal(s3_etag_unquote("abc", 3, e), 0);
	assert_string_equal(e, "abc");
	assert_int_equal(s3_etag_unquote("\"\"", 2, e), -1);
	assert_int_equal(s3_etag_unquote("", 0, e), -1);
	assert_int_equal(s3_etag_unquote("\"abc", 4, e), -1);
	assert_int_equal(s3_etag_unquote("\"a c\"", 5, e), -1);
	assert_int_equal(s3_etag_unquote("W/\"abc\"", 7, e), -1);
	assert_string_equal(e, "");
	memset(longtag, 'a', sizeof(longtag));
	assert_int_equal(s3_etag_unquote(longtag, S3_ETAG_MAX - 1, e), 0);
	assert_int_equal(s3_etag_unquote(longtag, S3_ETAG_MAX, e), -1);
	longtag[0] = longtag[S3_ETAG_MAX] = '"';	/* 127 between the quotes */
	assert_int_equal(s3_etag_unquote(longtag, S3_ETAG_MAX + 1, e), 0);
	assert_int_equal(strlen(e), S3_ETAG_MAX - 1);
	longtag[S3_ETAG_MAX] = 'a';
	longtag[S3_ETAG_MAX + 1] = '"';		/* 128 */
	assert_int_equal(s3_etag_unquote(longtag, S3_ETAG_MAX + 2, e), -1);

	assert_int_equal(s3_parse_u64("0", 1, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(s3_parse_u64("18446744073709551615", 20, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(s3_parse_u64("18446744073709551616", 20, &v), -1);
	assert_int_equal(s3_parse_u64("", 0, &v), -1);
	assert_int_equal(s3_parse_u64("+1", 2, &v), -1);
	assert_int_equal(s3_parse_u64(" 1", 2, &v), -1);
	assert_int_equal(s3_parse_u64("1a", 2, &v), -1);
	assert_int_equal(s3_parse_u64("000000000000000000001", 21, &v), -1);
}

static void
test_classify(void **state)
{
	static const struct { long st; const char *code; enum s3_outcome want; } t[] = {
		{ 200, "", S3_OK }, { 204, NULL, S3_OK }, { 206, "", S3_OK },
		{ 404, "NoSuchKey", S3_NOT_FOUND }, { 404, "", S3_NOT_FOUND },
		{ 404, "NoSuchUpload", S3_NOT_FOUND }, { 404, "NoSuchBucket", S3_FAILED },
		{ 412, "PreconditionFailed", S3_PRECONDITION },
		{ 403, "SignatureDoesNotMatch", S3_AUTH }, { 403, "InvalidAccessKeyId", S3_AUTH },
		{ 403, "RequestTimeTooSkewed", S3_AUTH }, { 401, "", S3_AUTH },
		{ 400, "RequestTimeTooSkewed", S3_AUTH }, { 400, "ExpiredToken", S3_AUTH },
		{ 400, "RequestTimeout", S3_RETRY }, { 400, "InvalidPart", S3_FAILED },
		{ 400, "XAmzContentSHA256Mismatch", S3_FAILED }, { 400, "", S3_FAILED },
		{ 408, "", S3_RETRY }, { 429, "", S3_RETRY }, { 409, "OperationAborted", S3_RETRY },
		{ 409, "BucketAlreadyExists", S3_FAILED }, { 411, "MissingContentLength", S3_FAILED },
		{ 500, "InternalError", S3_RETRY }, { 503, "SlowDown", S3_RETRY },
		{ 501, "NotImplemented", S3_FAILED }, { 301, "PermanentRedirect", S3_FAILED },
		{ 307, "", S3_FAILED }, { 100, "", S3_FAILED }, { 0, "", S3_FAILED },
		{ 600, "", S3_FAILED },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (s3_classify_http(t[i].st, t[i].code) != t[i].want)
			fail_msg("HTTP %ld %s", t[i].st, t[i].code ? t[i].code : "(null)");
	assert_int_equal(s3_classify_curl(CURLE_COULDNT_CONNECT), S3_RETRY);
	assert_int_equal(s3_classify_curl(CURLE_OPERATION_TIMEDOUT), S3_RETRY);
	assert_int_equal(s3_classify_curl(CURLE_RECV_ERROR), S3_RETRY);
	assert_int_equal(s3_classify_curl(CURLE_PARTIAL_FILE), S3_RETRY);
	assert_int_equal(s3_classify_curl(CURLE_PEER_FAILED_VERIFICATION), S3_FAILED);
	assert_int_equal(s3_classify_curl(CURLE_WRITE_ERROR), S3_FAILED);
	assert_int_equal(s3_classify_curl(CURLE_ABORTED_BY_CALLBACK), S3_FAILED);
}

static void
test_printable(void **state)
{
	char o[8];

	s3_printable(o, sizeof(o), "a\r\nb\x80\x7f", 6);
	assert_string_equal(o, "a??b??");
	s3_printable(o, sizeof(o), "0123456789", 10);
	assert_string_equal(o, "0123456");
	s3_printable(o, 1, "abc", 3);
	assert_string_equal(o, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_replies),
		cmocka_unit_test(test_list_objects),
		cmocka_unit_test(test_list_uploads),
		cmocka_unit_test(test_multipart_replies),
		cmocka_unit_test(test_entities),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_list_strictness),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_bitflips),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_http_date),
		cmocka_unit_test(test_etag_u64),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_printable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
