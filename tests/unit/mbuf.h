/*
 * A growable memory sink for the unit tests (age and archive writers write
 * through it).  fail_after > 0 makes it fail with ENOSPC once the contents
 * would pass that many bytes, as a full disk would; after_fail counts the
 * writes that came after the failure (a writer must stop at the first).
 */
#ifndef VS_TEST_MBUF_H
#define VS_TEST_MBUF_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mbuf {
	unsigned char *p;
	size_t len, cap;
	int fail_after;
	int failed;
	size_t after_fail;
};

static int
mbuf_write(void *arg, const void *buf, size_t len)
{
	struct mbuf *m = arg;

	if (m->failed)
		m->after_fail++;
	if (m->failed || (m->fail_after > 0 && m->len + len > (size_t)m->fail_after)) {
		m->failed = 1;
		errno = ENOSPC;
		return -1;
	}
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;

		while (cap < m->len + len)
			cap *= 2;
		m->p = realloc(m->p, cap);
		assert_non_null(m->p);
		m->cap = cap;
	}
	if (len > 0)
		memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static void __attribute__((unused))
mbuf_free(struct mbuf *m)
{
	free(m->p);
	memset(m, 0, sizeof(*m));
}

#endif
