/*
 * A file's bytes onto the data pipe (fd 7) by vmsplice: the pipe takes
 * references to our pages instead of a copy, and the parent splices them
 * into the file, so the plaintext is copied once on its way to the tmpfs
 * instead of three times.  A page handed over stays referenced until the
 * parent has moved it out, so the pages come from a ring that the pipe can
 * never hold a lap of: every piece starts on a page of its own, the pipe
 * holds at most its capacity in pages, it is a FIFO, and the ring is larger
 * than that capacity plus the largest piece, so a page is written again only
 * after more than a pipeful of later pages went in behind it.  Where vmsplice
 * is refused, plain writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "archive.h"
#include "decoder.h"

#define PAGE		4096u
#define PIECE_MAX	(64u << 10)	/* the most one vmsplice hands over */
#define RING_MIN	(4u << 20)

static struct {
	int fd;
	unsigned char *ring;
	size_t size, pos;
} out = { -1, NULL, 0, 0 };

int
dataout_open(int fd)
{
	int cap;
	size_t size;
	void *p;

	out.fd = fd;
	if ((cap = fcntl(fd, F_GETPIPE_SZ)) <= 0)
		return 0;				/* not a pipe: plain writes */
	size = 2 * (size_t)cap + PIECE_MAX;
	size = size < RING_MIN ? RING_MIN : (size + PAGE - 1) / PAGE * PAGE;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	/* Plaintext: kept out of a core dump and, where the limit allows, out of swap. */
	(void)madvise(p, size, MADV_DONTDUMP);
	(void)mlock(p, size);
	out.ring = p;
	out.size = size;
	out.pos = 0;
	return 0;
}

static int
splice_piece(const unsigned char *buf, size_t len)
{
	struct iovec iov;
	unsigned char *dst;
	ssize_t n;

	if (out.pos + len > out.size)
		out.pos = 0;
	dst = out.ring + out.pos;
	memcpy(dst, buf, len);
	out.pos += (len + PAGE - 1) / PAGE * PAGE;
	iov.iov_base = dst;
	iov.iov_len = len;
	while (iov.iov_len > 0) {
		n = vmsplice(out.fd, &iov, 1, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Part of the piece is on the pipe: writing it all again would repeat it. */
			if (iov.iov_len < len)
				errno = EIO;
			return -1;
		}
		iov.iov_base = (unsigned char *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
	}
	return 0;
}

int
dataout_write(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t n;

	if (out.ring == NULL)
		return arc_write_all(out.fd, buf, len);
	while (len > 0) {
		n = len < PIECE_MAX ? len : PIECE_MAX;
		if (splice_piece(p, n) != 0) {
			if (errno != ENOSYS && errno != EPERM)
				return -1;
			/* vmsplice refused (an older policy or kernel): plain writes from here on. */
			(void)munmap(out.ring, out.size);
			out.ring = NULL;
			return arc_write_all(out.fd, p, len);
		}
		p += n;
		len -= n;
	}
	return 0;
}
