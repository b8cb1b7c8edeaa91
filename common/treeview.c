/*
 * The stat view's arithmetic (treeview.h).  Not a cryptographic hash: it
 * tells a changed tree from an unchanged one written by the vault's own
 * users, who could change the vault outright.
 */
#include <string.h>

#include "treeview.h"

#define K1	0x9e3779b97f4a7c15ull
#define K2	0xc2b2ae3d27d4eb4full

static uint64_t
fmix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static uint64_t
step(uint64_t h, uint64_t w)
{
	h ^= w * K2;
	h = (h << 31) | (h >> 33);
	return h * K1;
}

/* Bytes eight at a time, the length folded in so "ab"+"c" and "a"+"bc" differ. */
static uint64_t
mix_bytes(uint64_t h, const char *p, size_t n)
{
	uint64_t w;

	h = step(h, n);
	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&w, p, 8);
		h = step(h, w);
	}
	if (n > 0) {
		w = 0;
		memcpy(&w, p, n);
		h = step(h, w);
	}
	return h;
}

void
tree_tuple_from_stat(struct tree_tuple *t, const struct stat *sb)
{
	t->mode = sb->st_mode;
	t->size = (uint64_t)sb->st_size;
	t->ino = sb->st_ino;
	t->uid = sb->st_uid;
	t->gid = sb->st_gid;
	t->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
	t->ctime_ns = (int64_t)sb->st_ctim.tv_sec * 1000000000 + sb->st_ctim.tv_nsec;
}

void
tree_tuple_from_statx(struct tree_tuple *t, const struct statx *sx)
{
	t->mode = sx->stx_mode;
	t->size = sx->stx_size;
	t->ino = sx->stx_ino;
	t->uid = sx->stx_uid;
	t->gid = sx->stx_gid;
	t->mtime_ns = (int64_t)sx->stx_mtime.tv_sec * 1000000000 + sx->stx_mtime.tv_nsec;
	t->ctime_ns = (int64_t)sx->stx_ctime.tv_sec * 1000000000 + sx->stx_ctime.tv_nsec;
}

static uint64_t
entry_hash(const char *path, size_t plen, const struct tree_tuple *t,
    const char *target, size_t tlen)
{
	uint64_t h = mix_bytes(K1, path, plen);

	h = step(h, t->mode);
	h = step(h, t->size);
	h = step(h, t->ino);
	h = step(h, t->uid << 32 | t->gid);
	h = step(h, (uint64_t)t->mtime_ns);
	h = step(h, (uint64_t)t->ctime_ns);
	if (target != NULL)
		h = mix_bytes(h, target, tlen);
	return fmix(h);
}

void
tree_view_add(struct tree_view *v, const char *path, size_t plen,
    const struct tree_tuple *t, const char *target, size_t tlen)
{
	v->sum += entry_hash(path, plen, t, target, tlen);
	v->entries++;
}

uint64_t
tree_view_digest(const struct tree_view *v)
{
	uint64_t d = fmix(v->sum ^ fmix(v->entries + K2));

	return d != 0 ? d : 1;
}
