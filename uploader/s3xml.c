/*
 * The S3 XML reader (s3xml.h).  One small pull parser walks the document
 * and reports each element's open and close; a handler per reply kind
 * picks the few leaves it knows.  The parser owns all bounds: input size,
 * depth, name and text length, UTF-8 validity, entity syntax.  Handlers
 * only copy texts that already fit and check their own value syntax.
 *
 * Every document is walked once to validate it and, where there are
 * callbacks, a second time to deliver: a reply that turns out malformed
 * at its last byte has then delivered nothing.
 */
#include <string.h>

#include "creds.h"
#include "s3util.h"
#include "s3xml.h"

enum xp_ev { XP_OPEN, XP_CLOSE };

struct xp {
	const char *p, *e;
	int depth;
	int leaf;			/* at XP_CLOSE: the element had no child elements */
	int has_child[S3XML_MAX_DEPTH];
	char stack[S3XML_MAX_DEPTH][S3XML_MAX_NAME + 1];
	char text[S3XML_MAX_TEXT + 1];	/* decoded text of the innermost element */
	size_t tlen;
};

/* 0 continue, -1 reject the document, > 0 stop the walk with that value. */
typedef int (*xp_fn)(void *arg, enum xp_ev ev, const struct xp *x);

#define XP_IS_WS(c)	((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')
#define XP_NAME0(c)	(((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') || (c) == '_')
#define XP_NAME1(c)	(XP_NAME0(c) || ((c) >= '0' && (c) <= '9') || (c) == '.' || \
			 (c) == '-' || (c) == ':')

/* UTF-8 (no overlongs, surrogates, U+FFFE/FFFF) made only of XML 1.0 Chars. */
static int
xp_utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;
	unsigned char lo, hi;

	while (i < n) {
		unsigned char c = s[i];

		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
				return 0;
			i++;
			continue;
		}
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else
			return 0;
		if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return 0;
		if (c == 0xef && s[i + 1] == 0xbf && s[i + 2] >= 0xbe)
			return 0;
		i += need + 1;
	}
	return 1;
}

static int
xp_starts(const struct xp *x, const char *lit)
{
	size_t n = strlen(lit);

	return (size_t)(x->e - x->p) >= n && memcmp(x->p, lit, n) == 0;
}

/* At "&": one reference into out (1..4 bytes). */
static int
xp_entity(struct xp *x, char *out, size_t *olen)
{
	static const struct { const char *name; char c; } named[] = {
		{ "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' }, { "quot;", '"' }, { "apos;", '\'' },
	};
	unsigned long cp = 0;
	size_t i, digits = 0;
	int hex;

	x->p++;
	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		if (xp_starts(x, named[i].name)) {
			x->p += strlen(named[i].name);
			out[0] = named[i].c;
			*olen = 1;
			return 0;
		}
	if (x->p >= x->e || *x->p != '#')
		return -1;
	x->p++;
	hex = x->p < x->e && *x->p == 'x';
	x->p += hex;
	for (; x->p < x->e && *x->p != ';'; x->p++, digits++) {
		char c = *x->p;
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (hex && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (hex && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -1;
		if (digits >= 7)
			return -1;
		cp = cp * (hex ? 16 : 10) + d;
	}
	if (x->p >= x->e || digits == 0)
		return -1;
	x->p++;
	/* XML 1.0 Char production. */
	if (!(cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
	    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)))
		return -1;
	if (cp < 0x80) {
		out[0] = (char)cp;
		*olen = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		*olen = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		*olen = 3;
	} else {
		out[0] = (char)(0xf0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		*olen = 4;
	}
	return 0;
}

static int
xp_name(struct xp *x, char out[S3XML_MAX_NAME + 1])
{
	size_t n = 0;

	if (x->p >= x->e || !XP_NAME0(*x->p))
		return -1;
	while (x->p < x->e && XP_NAME1(*x->p)) {
		if (n >= S3XML_MAX_NAME)
			return -1;
		out[n++] = *x->p++;
	}
	out[n] = '\0';
	return 0;
}

static void
xp_skip_ws(struct xp *x)
{
	while (x->p < x->e && XP_IS_WS(*x->p))
		x->p++;
}

/* At "<!--": the comment, which may not contain "--". */
static int
xp_comment(struct xp *x)
{
	for (x->p += 4; x->p + 1 < x->e; x->p++)
		if (x->p[0] == '-' && x->p[1] == '-') {
			if (x->p + 2 >= x->e || x->p[2] != '>')
				return -1;
			x->p += 3;
			return 0;
		}
	return -1;
}

/* Whitespace and comments outside the root element. */
static int
xp_misc(struct xp *x)
{
	for (;;) {
		xp_skip_ws(x);
		if (!xp_starts(x, "<!--"))
			return 0;
		if (xp_comment(x) == -1)
			return -1;
	}
}

/* Attributes are checked and dropped (xmlns is all S3 sends). */
static int
xp_attrs(struct xp *x)
{
	char name[S3XML_MAX_NAME + 1], tmp[4];
	size_t n;
	char q;

	for (;;) {
		const char *before = x->p;

		xp_skip_ws(x);
		if (x->p >= x->e)
			return -1;
		if (*x->p == '>' || *x->p == '/')
			return 0;
		if (x->p == before || xp_name(x, name) == -1)
			return -1;
		xp_skip_ws(x);
		if (x->p >= x->e || *x->p++ != '=')
			return -1;
		xp_skip_ws(x);
		if (x->p >= x->e || (*x->p != '"' && *x->p != '\''))
			return -1;
		q = *x->p++;
		while (x->p < x->e && *x->p != q) {
			if (*x->p == '<')
				return -1;
			if (*x->p == '&') {
				if (xp_entity(x, tmp, &n) == -1)
					return -1;
			} else
				x->p++;
		}
		if (x->p >= x->e)
			return -1;
		x->p++;
	}
}

static int
xp_text_ws_only(const struct xp *x)
{
	size_t i;

	for (i = 0; i < x->tlen; i++)
		if (!XP_IS_WS(x->text[i]))
			return 0;
	return 1;
}

/* Close the innermost element; returns the handler's verdict. */
static int
xp_close(struct xp *x, xp_fn fn, void *arg)
{
	int rc;

	x->leaf = !x->has_child[x->depth - 1];
	x->text[x->tlen] = '\0';
	if ((rc = fn(arg, XP_CLOSE, x)) != 0)
		return rc;
	x->depth--;
	x->tlen = 0;
	return 0;
}

/* At "<" of a start tag. */
static int
xp_open(struct xp *x, const char *root, xp_fn fn, void *arg)
{
	int rc;

	if (x->depth > 0) {
		if (!xp_text_ws_only(x))
			return -1;	/* mixed content */
		x->has_child[x->depth - 1] = 1;
	}
	if (x->depth >= S3XML_MAX_DEPTH)
		return -1;
	x->p++;
	if (xp_name(x, x->stack[x->depth]) == -1)
		return -1;
	if (x->depth == 0 && strcmp(x->stack[0], root) != 0)
		return -1;
	x->has_child[x->depth++] = 0;
	x->tlen = 0;
	if (xp_attrs(x) == -1)
		return -1;
	if ((rc = fn(arg, XP_OPEN, x)) != 0)
		return rc;
	if (*x->p == '/') {
		if (x->p + 1 >= x->e || x->p[1] != '>')
			return -1;
		x->p += 2;
		return xp_close(x, fn, arg);
	}
	x->p++;
	return 0;
}

/* At "</". */
static int
xp_end(struct xp *x, xp_fn fn, void *arg)
{
	char name[S3XML_MAX_NAME + 1];

	x->p += 2;
	if (xp_name(x, name) == -1 || strcmp(name, x->stack[x->depth - 1]) != 0)
		return -1;
	xp_skip_ws(x);
	if (x->p >= x->e || *x->p++ != '>')
		return -1;
	if (x->has_child[x->depth - 1] && !xp_text_ws_only(x))
		return -1;
	return xp_close(x, fn, arg);
}

/* Character data of the innermost element, decoded. */
static int
xp_chars(struct xp *x)
{
	char tmp[4];
	size_t n;

	if (*x->p == '&') {
		if (xp_entity(x, tmp, &n) == -1)
			return -1;
	} else {
		if (xp_starts(x, "]]>"))
			return -1;
		tmp[0] = *x->p++;
		n = 1;
	}
	if (x->tlen + n > S3XML_MAX_TEXT)
		return -1;
	memcpy(x->text + x->tlen, tmp, n);
	x->tlen += n;
	return 0;
}

static int
xp_run(const char *doc, size_t len, const char *root, xp_fn fn, void *arg)
{
	struct xp x;
	int rc;

	if (doc == NULL || len == 0 || len > S3XML_MAX_DOC ||
	    !xp_utf8_ok((const unsigned char *)doc, len))
		return -1;
	memset(&x, 0, sizeof(x));
	x.p = doc;
	x.e = doc + len;
	if (xp_starts(&x, "<?xml")) {
		x.p += 5;
		if (x.p >= x.e || !XP_IS_WS(*x.p))
			return -1;
		while (x.p + 1 < x.e && !(x.p[0] == '?' && x.p[1] == '>')) {
			if (*x.p == '<')
				return -1;
			x.p++;
		}
		if (x.p + 1 >= x.e)
			return -1;
		x.p += 2;
	}
	if (xp_misc(&x) == -1 || x.p >= x.e || *x.p != '<')
		return -1;
	if ((rc = xp_open(&x, root, fn, arg)) != 0)
		return rc;
	while (x.depth > 0) {
		if (x.p >= x.e)
			return -1;
		if (*x.p != '<')
			rc = x.has_child[x.depth - 1] && !XP_IS_WS(*x.p) ? -1 : xp_chars(&x);
		else if (xp_starts(&x, "</"))
			rc = xp_end(&x, fn, arg);
		else if (xp_starts(&x, "<!--"))
			rc = xp_comment(&x);
		else if (x.p + 1 < x.e && (x.p[1] == '!' || x.p[1] == '?'))
			rc = -1;	/* CDATA, DOCTYPE, processing instructions */
		else
			rc = xp_open(&x, root, fn, arg);
		if (rc != 0)
			return rc;
	}
	if (xp_misc(&x) == -1 || x.p != x.e)
		return -1;
	return 0;
}

/* ---- handlers ------------------------------------------------------------ */

/* The element just closed is a leaf named name at depth d under parent (NULL: any). */
static int
xp_is(const struct xp *x, int d, const char *parent, const char *name)
{
	return x->depth == d && strcmp(x->stack[d - 1], name) == 0 &&
	    (parent == NULL || strcmp(x->stack[d - 2], parent) == 0);
}

/* A field seen once, as a leaf: marks bit in *seen. */
static int
xp_field(const struct xp *x, unsigned *seen, unsigned bit)
{
	if (!x->leaf || (*seen & bit))
		return -1;
	*seen |= bit;
	return 0;
}

static int
xp_copy(char *dst, size_t dstsize, const struct xp *x, int nonempty)
{
	if (x->tlen >= dstsize || (nonempty && x->tlen == 0))
		return -1;
	memcpy(dst, x->text, x->tlen + 1);
	return 0;
}

/* Printable ASCII, non-empty: upload ids and error codes. */
static int
xp_copy_token(char *dst, size_t dstsize, const struct xp *x)
{
	size_t i;

	for (i = 0; i < x->tlen; i++)
		if (x->text[i] <= 0x20 || x->text[i] >= 0x7f)
			return -1;
	return xp_copy(dst, dstsize, x, 1);
}

static int
xp_bool(const struct xp *x, int *out)
{
	if (strcmp(x->text, "true") == 0)
		*out = 1;
	else if (strcmp(x->text, "false") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

struct err_st {
	struct s3xml_error *e;
	unsigned seen;
};

static int
err_ev(void *arg, enum xp_ev ev, const struct xp *x)
{
	struct err_st *st = arg;

	if (ev != XP_CLOSE)
		return 0;
	if (xp_is(x, 2, NULL, "Code"))
		return xp_field(x, &st->seen, 1) == -1 ? -1 :
		    xp_copy_token(st->e->code, sizeof(st->e->code), x);
	if (xp_is(x, 2, NULL, "Message")) {
		if (xp_field(x, &st->seen, 2) == -1)
			return -1;
		s3_printable(st->e->message, sizeof(st->e->message), x->text, x->tlen);
	}
	return 0;
}

int
s3xml_error(const char *doc, size_t len, struct s3xml_error *e)
{
	struct err_st st = { e, 0 };

	memset(e, 0, sizeof(*e));
	if (xp_run(doc, len, "Error", err_ev, &st) != 0 || !(st.seen & 1)) {
		memset(e, 0, sizeof(*e));
		return -1;
	}
	return 0;
}

enum { F_KEY = 1, F_SIZE = 2, F_ETAG = 4, F_MTIME = 8, F_ID = 16,
	P_TRUNC = 1, P_TOKEN = 2, P_KMARK = 4, P_IMARK = 8 };

struct list_st {
	struct s3xml_page *pg;
	unsigned seen, eseen;		/* page fields, entry fields */
	struct s3_object o;
	char id[S3_ID_MAX];
	int uploads;			/* ListMultipartUploads, else ListObjectsV2 */
	int deliver;
	s3xml_object_fn ofn;
	s3xml_upload_fn ufn;
	void *arg;
};

/* Page fields of both listings, at depth 2. */
static int
list_page_ev(struct list_st *st, const struct xp *x)
{
	struct s3xml_page *pg = st->pg;

	if (xp_is(x, 2, NULL, "IsTruncated"))
		return xp_field(x, &st->seen, P_TRUNC) == -1 ? -1 : xp_bool(x, &pg->truncated);
	if (xp_is(x, 2, NULL, "NextContinuationToken") && !st->uploads)
		return xp_field(x, &st->seen, P_TOKEN) == -1 ? -1 :
		    xp_copy(pg->token, sizeof(pg->token), x, 0);
	if (xp_is(x, 2, NULL, "NextKeyMarker") && st->uploads)
		return xp_field(x, &st->seen, P_KMARK) == -1 ? -1 :
		    xp_copy(pg->key_marker, sizeof(pg->key_marker), x, 0);
	if (xp_is(x, 2, NULL, "NextUploadIdMarker") && st->uploads) {
		if (xp_field(x, &st->seen, P_IMARK) == -1)
			return -1;
		return x->tlen == 0 ? 0 : xp_copy_token(pg->id_marker, sizeof(pg->id_marker), x);
	}
	return 0;
}

static int
objects_ev(void *arg, enum xp_ev ev, const struct xp *x)
{
	struct list_st *st = arg;
	struct s3_object *o = &st->o;

	if (ev == XP_OPEN) {
		if (xp_is(x, 2, NULL, "Contents")) {
			memset(o, 0, sizeof(*o));
			st->eseen = 0;
		}
		return 0;
	}
	if (xp_is(x, 3, "Contents", "Key"))
		return xp_field(x, &st->eseen, F_KEY) == -1 ? -1 :
		    xp_copy(o->key, sizeof(o->key), x, 1);
	if (xp_is(x, 3, "Contents", "Size"))
		return xp_field(x, &st->eseen, F_SIZE) == -1 ? -1 :
		    s3_parse_u64(x->text, x->tlen, &o->size);
	if (xp_is(x, 3, "Contents", "ETag"))
		return xp_field(x, &st->eseen, F_ETAG) == -1 ? -1 :
		    s3_etag_unquote(x->text, x->tlen, o->etag);
	if (xp_is(x, 3, "Contents", "LastModified"))
		return xp_field(x, &st->eseen, F_MTIME) == -1 ? -1 :
		    creds_parse_rfc3339(x->text, &o->last_modified);
	if (xp_is(x, 2, NULL, "Contents")) {
		if ((st->eseen & (F_KEY | F_SIZE)) != (F_KEY | F_SIZE) || x->leaf)
			return -1;
		st->pg->count++;
		return st->deliver && st->ofn != NULL && st->ofn(st->arg, o) != 0 ? 1 : 0;
	}
	return list_page_ev(st, x);
}

static int
uploads_ev(void *arg, enum xp_ev ev, const struct xp *x)
{
	struct list_st *st = arg;
	struct s3_object *o = &st->o;

	if (ev == XP_OPEN) {
		if (xp_is(x, 2, NULL, "Upload")) {
			memset(o, 0, sizeof(*o));
			st->id[0] = '\0';
			st->eseen = 0;
		}
		return 0;
	}
	if (xp_is(x, 3, "Upload", "Key"))
		return xp_field(x, &st->eseen, F_KEY) == -1 ? -1 :
		    xp_copy(o->key, sizeof(o->key), x, 1);
	if (xp_is(x, 3, "Upload", "UploadId"))
		return xp_field(x, &st->eseen, F_ID) == -1 ? -1 :
		    xp_copy_token(st->id, sizeof(st->id), x);
	if (xp_is(x, 3, "Upload", "Initiated"))
		return xp_field(x, &st->eseen, F_MTIME) == -1 ? -1 :
		    creds_parse_rfc3339(x->text, &o->last_modified);
	if (xp_is(x, 2, NULL, "Upload")) {
		if ((st->eseen & (F_KEY | F_ID)) != (F_KEY | F_ID) || x->leaf)
			return -1;
		st->pg->count++;
		return st->deliver && st->ufn != NULL &&
		    st->ufn(st->arg, o->key, st->id, o->last_modified) != 0 ? 1 : 0;
	}
	return list_page_ev(st, x);
}

/* Validate, then (with a callback) deliver. */
static int
list_run(const char *doc, size_t len, const char *root, xp_fn ev, struct list_st *st)
{
	int rc;

	memset(st->pg, 0, sizeof(*st->pg));
	if (xp_run(doc, len, root, ev, st) != 0)
		goto bad;
	/* A truncated page must say where to go on. */
	if (st->pg->truncated && (st->uploads ? st->pg->key_marker[0] : st->pg->token[0]) == '\0')
		goto bad;
	if (st->ofn == NULL && st->ufn == NULL)
		return 0;
	st->deliver = 1;
	st->seen = 0;
	st->pg->count = 0;
	rc = xp_run(doc, len, root, ev, st);
	return rc > 0 ? 1 : rc;
bad:
	memset(st->pg, 0, sizeof(*st->pg));
	return -1;
}

int
s3xml_list_objects(const char *doc, size_t len, struct s3xml_page *pg,
    s3xml_object_fn fn, void *arg)
{
	struct list_st st;

	memset(&st, 0, sizeof(st));
	st.pg = pg;
	st.ofn = fn;
	st.arg = arg;
	return list_run(doc, len, "ListBucketResult", objects_ev, &st);
}

int
s3xml_list_uploads(const char *doc, size_t len, struct s3xml_page *pg,
    s3xml_upload_fn fn, void *arg)
{
	struct list_st st;

	memset(&st, 0, sizeof(st));
	st.pg = pg;
	st.uploads = 1;
	st.ufn = fn;
	st.arg = arg;
	return list_run(doc, len, "ListMultipartUploadsResult", uploads_ev, &st);
}

struct one_st {
	char *out;
	size_t outlen;
	unsigned seen;
};

static int
initiate_ev(void *arg, enum xp_ev ev, const struct xp *x)
{
	struct one_st *st = arg;

	if (ev != XP_CLOSE || !xp_is(x, 2, NULL, "UploadId"))
		return 0;
	return xp_field(x, &st->seen, 1) == -1 ? -1 : xp_copy_token(st->out, st->outlen, x);
}

int
s3xml_initiate(const char *doc, size_t len, char upload_id[S3_ID_MAX])
{
	struct one_st st = { upload_id, S3_ID_MAX, 0 };

	upload_id[0] = '\0';
	if (xp_run(doc, len, "InitiateMultipartUploadResult", initiate_ev, &st) != 0 ||
	    st.seen == 0) {
		upload_id[0] = '\0';
		return -1;
	}
	return 0;
}

static int
complete_ev(void *arg, enum xp_ev ev, const struct xp *x)
{
	struct one_st *st = arg;

	if (ev != XP_CLOSE || !xp_is(x, 2, NULL, "ETag"))
		return 0;
	if (xp_field(x, &st->seen, 1) == -1)
		return -1;
	/* RGW 16.2 sends <ETag></ETag>: "unknown", not malformed. */
	return x->tlen == 0 ? 0 : s3_etag_unquote(x->text, x->tlen, st->out);
}

int
s3xml_complete(const char *doc, size_t len, char etag[S3_ETAG_MAX])
{
	struct one_st st = { etag, S3_ETAG_MAX, 0 };

	etag[0] = '\0';
	if (xp_run(doc, len, "CompleteMultipartUploadResult", complete_ev, &st) != 0) {
		etag[0] = '\0';
		return -1;
	}
	return 0;
}
