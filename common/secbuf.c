#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "secbuf.h"

int
secbuf_alloc(struct secbuf *b, size_t cap)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t maplen;
	void *p;

	memset(b, 0, sizeof(*b));
	if (cap == 0 || pg <= 0 || cap > (size_t)64 << 20) {
		errno = EINVAL;
		return -1;
	}
	maplen = (cap + (size_t)pg - 1) & ~((size_t)pg - 1);
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	(void)madvise(p, maplen, MADV_DONTDUMP);
	b->locked = mlock(p, maplen) == 0;
	b->p = p;
	b->cap = cap;
	b->maplen = maplen;
	return 0;
}

void
secbuf_free(struct secbuf *b)
{
	if (b->p != NULL) {
		explicit_bzero(b->p, b->maplen);
		if (b->locked)
			(void)munlock(b->p, b->maplen);
		(void)munmap(b->p, b->maplen);
	}
	memset(b, 0, sizeof(*b));
}
