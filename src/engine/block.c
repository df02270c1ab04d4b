/*
 * block.c - building blocks of prefix-compressed entries, and reading them.
 *
 * The table builder fills a tv_block_builder per data block and one for
 * the index; the table reader wraps every block it reads (from the cache
 * or from disk) in a tv_block_iter.  Entry layout (docs/FORMAT.md):
 *
 *   varint32 shared | varint32 unshared | varint32 value_len
 *   | key[shared..shared+unshared) | value
 *
 * The reader never trusts a byte of the block: each varint, length and
 * restart offset is checked against the entry area before it is used, a
 * key must be a whole internal key, and a failed check leaves the
 * iterator invalid with TROVE_ECORRUPT.  It must never read outside the
 * block, loop forever or crash on any input.
 */
#include "block.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../util/coding.h"
#include "../util/grow.h"
#include "ikey.h"
#include "trove.h"

/* ---- Building ---------------------------------------------------------- */

void tv_block_builder_init(tv_block_builder *b, int interval)
{
	assert(interval >= 1);
	tv_buf_init(&b->buf);
	tv_buf_init(&b->restarts);
	tv_buf_init(&b->last_key);
	b->interval = interval;
	b->counter = 0;
	b->entries = 0;
}

void tv_block_builder_free(tv_block_builder *b)
{
	tv_buf_free(&b->buf);
	tv_buf_free(&b->restarts);
	tv_buf_free(&b->last_key);
}

static size_t common_prefix(tv_slice a, tv_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len, i = 0;
	while (i < n && a.data[i] == b.data[i])
		i++;
	return i;
}

int tv_block_add(tv_block_builder *b, tv_slice key, tv_slice value)
{
	int restart = b->entries == 0 || b->counter >= b->interval;
	size_t shared = restart ? 0 : common_prefix(tv_block_last_key(b), key);
	size_t unshared = key.len - shared;
	size_t need = 3 * TV_MAX_VARINT32 + unshared + value.len;
	if (key.len >= TV_BLOCK_MAX_SIZE || value.len >= TV_BLOCK_MAX_SIZE ||
	    tv_block_estimate(b) + need + 4 > TV_BLOCK_MAX_SIZE)
		return TROVE_ETOOBIG;
	/* Reserve everything first so that a failure changes nothing. */
	if (tv_buf_reserve(&b->buf, need) || tv_buf_reserve(&b->restarts, 4) ||
	    (key.len > b->last_key.len && tv_buf_reserve(&b->last_key, key.len - b->last_key.len)))
		return TROVE_ENOMEM;

	if (restart) {
		tv_put_fixed32(b->restarts.data + b->restarts.len, (uint32_t)b->buf.len);
		b->restarts.len += 4;
		b->counter = 0;
	}
	char *p = b->buf.data + b->buf.len;
	p = tv_encode_varint32(p, (uint32_t)shared);
	p = tv_encode_varint32(p, (uint32_t)unshared);
	p = tv_encode_varint32(p, (uint32_t)value.len);
	if (unshared)
		memcpy(p, key.data + shared, unshared);
	p += unshared;
	if (value.len)
		memcpy(p, value.data, value.len);
	p += value.len;
	b->buf.len = (size_t)(p - b->buf.data);

	if (unshared)
		memcpy(b->last_key.data + shared, key.data + shared, unshared);
	b->last_key.len = key.len;
	b->counter++;
	b->entries++;
	return 0;
}

size_t tv_block_estimate(const tv_block_builder *b)
{
	size_t restarts = b->restarts.len ? b->restarts.len : 4;
	return b->buf.len + restarts + 4;
}

int tv_block_finish(tv_block_builder *b, tv_slice *out)
{
	if (b->restarts.len == 0 && tv_buf_put_fixed32(&b->restarts, 0))
		return TROVE_ENOMEM;
	if (tv_buf_reserve(&b->buf, b->restarts.len + 4))
		return TROVE_ENOMEM;
	tv_buf_append(&b->buf, b->restarts.data, b->restarts.len);
	tv_buf_put_fixed32(&b->buf, (uint32_t)(b->restarts.len / 4));
	b->restarts.len = 0; /* the restarts now live in buf; add no more */
	assert(b->buf.len <= TV_BLOCK_MAX_SIZE);
	*out = tv_buf_slice(&b->buf);
	return 0;
}

void tv_block_reset(tv_block_builder *b)
{
	tv_buf_clear(&b->buf);
	tv_buf_clear(&b->restarts);
	b->counter = 0;
	b->entries = 0;
}

/* ---- Parsing ----------------------------------------------------------- */

int tv_block_parse(tv_block *b, const char *data, size_t size)
{
	if (size < 4 || size > TV_BLOCK_MAX_SIZE)
		return TROVE_ECORRUPT;
	uint32_t n = tv_get_fixed32(data + size - 4);
	if (n > (size - 4) / 4)
		return TROVE_ECORRUPT;
	uint32_t restarts = (uint32_t)(size - 4 - (size_t)n * 4);
	if (n == 0 && restarts != 0)
		return TROVE_ECORRUPT; /* entries nobody can reach */
	if (n > 0 && tv_get_fixed32(data + restarts) != 0)
		return TROVE_ECORRUPT; /* the first entry must be a restart point */
	b->data = data;
	b->ra = data + restarts;
	b->restarts = restarts;
	b->nrestarts = n;
	return 0;
}

void tv_block_move_restarts(tv_block *b, char *to)
{
	memcpy(to, b->ra, (size_t)b->nrestarts * 4);
	b->ra = to;
}

/* ---- Iterating --------------------------------------------------------- */

static uint32_t restart_point(const tv_block_iter *it, uint32_t i)
{
	assert(i < it->blk.nrestarts);
	return tv_get_fixed32(it->blk.ra + (size_t)i * 4);
}

static void mark_end(tv_block_iter *it)
{
	it->cur = it->next = it->blk.restarts;
	it->key = it->value = tv_slice_make(NULL, 0);
}

static void fail(tv_block_iter *it, int status)
{
	if (!it->status)
		it->status = status;
	mark_end(it);
}

/* Makes room for a key of `need` bytes in kbuf, keeping the current key's
 * bytes if they live there. */
static int key_room(tv_block_iter *it, size_t need)
{
	if (need <= it->kcap)
		return 0;
	size_t cap = it->kcap * 2 > need ? it->kcap * 2 : need;
	char *nb = malloc(cap);
	if (!nb)
		return TROVE_ENOMEM;
	if (it->key.data == it->kbuf) {
		memcpy(nb, it->kbuf, it->key.len);
		it->key.data = nb;
	}
	if (it->kbuf != it->kinline)
		free(it->kbuf);
	it->kbuf = nb;
	it->kcap = cap;
	return 0;
}

/* An entry's header, checked against the block. */
typedef struct frame {
	uint32_t shared, unshared, vlen;
	const char *rest; /* the key's unshared bytes, then the value */
} frame;

/* Parses the header of the entry at off, whose predecessor's key has
 * prev_len bytes (0 at a restart point), and checks that it lies inside
 * the entries and makes a whole internal key.  0, or fails the iterator
 * and returns its status. */
static inline int read_frame(tv_block_iter *it, uint32_t off, size_t prev_len, frame *f)
{
	const char *end = it->blk.data + it->blk.restarts;
	const char *p = it->blk.data + off;
	const unsigned char *u = (const unsigned char *)p;
	assert(off < it->blk.restarts);
	if (end - p >= 3 && ((u[0] | u[1] | u[2]) & 0x80) == 0) {
		f->shared = u[0]; /* the common case: three one-byte varints */
		f->unshared = u[1];
		f->vlen = u[2];
		p += 3;
	} else if (!(p = tv_decode_varint32(p, end, &f->shared)) ||
	           !(p = tv_decode_varint32(p, end, &f->unshared)) ||
	           !(p = tv_decode_varint32(p, end, &f->vlen))) {
		fail(it, TROVE_ECORRUPT);
		return it->status;
	}
	if ((size_t)(end - p) < f->unshared || (size_t)(end - p) - f->unshared < f->vlen ||
	    f->shared > prev_len || (size_t)f->shared + f->unshared < TV_TRAILER) {
		fail(it, TROVE_ECORRUPT);
		return it->status;
	}
	f->rest = p;
	return 0;
}

/* memcpy for the few bytes of a key, in line: a data block's keys are
 * short, and a call per entry cost more than the copy itself.  The
 * overlapping 8- or 4-byte moves stay inside [src, src + n). */
static inline void copy_key_bytes(char *dst, const char *src, size_t n)
{
	if (n > 32) {
		memcpy(dst, src, n);
	} else if (n > 16) { /* a whole key's prefix: two 16-byte moves */
		char a[16], b[16];
		memcpy(a, src, 16);
		memcpy(b, src + n - 16, 16);
		memcpy(dst, a, 16);
		memcpy(dst + n - 16, b, 16);
	} else if (n >= 8) {
		uint64_t a, b;
		memcpy(&a, src, 8);
		memcpy(&b, src + n - 8, 8);
		memcpy(dst, &a, 8);
		memcpy(dst + n - 8, &b, 8);
	} else if (n >= 4) {
		uint32_t a, b;
		memcpy(&a, src, 4);
		memcpy(&b, src + n - 4, 4);
		memcpy(dst, &a, 4);
		memcpy(dst + n - 4, &b, 4);
	} else {
		for (size_t i = 0; i < n; i++)
			dst[i] = src[i];
	}
}

/* Makes the entry at off, framed by f, current, its key's first
 * f->shared bytes taken from `prefix`.  0, or fails the iterator.  In
 * line: a scan runs it once per entry, and as a call its register saves
 * and restores were a third of its cost. */
static inline int set_entry(tv_block_iter *it, uint32_t off, const frame *f, const char *prefix)
{
	if (f->shared == 0) {
		it->key = tv_slice_make(f->rest, f->unshared); /* whole key: no copy */
	} else {
		/* A prefix already in kbuf is the current key: key_room keeps it. */
		int in_place = prefix == it->kbuf;
		assert(!in_place || it->key.data == it->kbuf);
		if (key_room(it, (size_t)f->shared + f->unshared)) {
			fail(it, TROVE_ENOMEM);
			return it->status;
		}
		if (!in_place)
			copy_key_bytes(it->kbuf, prefix, f->shared);
		copy_key_bytes(it->kbuf + f->shared, f->rest, f->unshared);
		it->key = tv_slice_make(it->kbuf, (size_t)f->shared + f->unshared);
	}
	it->value = tv_slice_make(f->rest + f->unshared, f->vlen);
	it->cur = off;
	it->next = (uint32_t)(f->rest + f->unshared + f->vlen - it->blk.data);
	return 0;
}

/* Decodes the entry at off, whose predecessor's key is it->key (empty at
 * a restart point).  Sets cur, next, key and value; returns 0, or fails
 * the iterator and returns its status. */
static int decode_at(tv_block_iter *it, uint32_t off)
{
	frame f;
	int rc = read_frame(it, off, it->key.len, &f);
	return rc ? rc : set_entry(it, off, &f, it->key.data);
}

/* Moves to the entry at it->next; false at the end of the block or on an
 * error. */
static int parse_next(tv_block_iter *it)
{
	uint32_t off = it->next;
	if (off >= it->blk.restarts) {
		mark_end(it);
		return 0;
	}
	return decode_at(it, off) == 0;
}

/* Prepares parse_next to read restart point i; false if it is corrupt. */
static int to_restart(tv_block_iter *it, uint32_t i)
{
	uint32_t off = restart_point(it, i);
	if (off > it->blk.restarts) {
		fail(it, TROVE_ECORRUPT);
		return 0;
	}
	it->key = tv_slice_make(NULL, 0);
	it->next = off;
	it->rindex = i;
	return 1;
}

/* Restart point 0 is the first entry, at offset 0 (tv_block_parse checks
 * it): the restart array, at the far end of the block and usually not in
 * the CPU's cache when a scan enters the block, is not read. */
void tv_block_iter_seek_first(tv_block_iter *it)
{
	if (it->status || it->blk.nrestarts == 0) {
		mark_end(it);
		return;
	}
	it->key = tv_slice_make(NULL, 0);
	it->next = 0;
	it->rindex = 0;
	parse_next(it);
}

/* The first j in [from, n) with a[j] != b[j], or n; 8 bytes at a time:
 * the keys a seek compares share most of their leading bytes (the
 * benchmark's 16-byte keys, 10 or more), which a byte loop walked one by
 * one.  The last 8 bytes are loaded overlapping what was compared. */
static inline size_t mismatch(const unsigned char *a, const unsigned char *b, size_t from,
                              size_t n)
{
	size_t j = from;
	if (j < n && n - j >= 8) {
		for (;;) {
			uint64_t x, y;
			memcpy(&x, a + j, 8);
			memcpy(&y, b + j, 8);
			if (x != y) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
				return j + (size_t)__builtin_ctzll(x ^ y) / 8;
#else
				return j + (size_t)__builtin_clzll(x ^ y) / 8;
#endif
			}
			if (j + 8 == n)
				return n;
			j = n - j >= 16 ? j + 8 : n - 8;
		}
	}
	while (j < n && a[j] == b[j])
		j++;
	return j;
}

/* Whether the whole internal key k sorts before target (whose user key is
 * t); if so, and k's user key differs from t at a byte *m inside both,
 * sets *m and *diverged, as scan_to describes. */
static inline int key_below(tv_slice k, tv_slice target, tv_slice t, size_t *m, int *diverged)
{
	const unsigned char *ku = (const unsigned char *)k.data;
	const unsigned char *tu = (const unsigned char *)t.data;
	size_t ulen = k.len - TV_TRAILER, lim = ulen < t.len ? ulen : t.len;
	size_t j = mismatch(ku, tu, 0, lim);
	if (j < lim) {
		if (ku[j] > tu[j])
			return 0;
		*m = j;
		*diverged = 1;
		return 1;
	}
	*diverged = 0;
	return tv_ikey_cmp(k, target) < 0;
}

/* Decides the current entry K (decoded, and known to agree with the
 * target's user key t before byte *m if *diverged): returns nonzero if
 * K >= target; otherwise sets *diverged and *m as scan_to describes. */
static int at_or_past(const tv_block_iter *it, tv_slice target, tv_slice t, size_t *m,
                      int *diverged)
{
	const unsigned char *k = (const unsigned char *)it->key.data;
	const unsigned char *tu = (const unsigned char *)t.data;
	size_t ulen = it->key.len - TV_TRAILER, lim = ulen < t.len ? ulen : t.len;
	size_t j = mismatch(k, tu, *diverged ? *m : 0, lim);
	if (j < lim) {
		*m = j;
		*diverged = 1;
		return k[j] > tu[j];
	}
	*diverged = 0; /* one user key ends first: compare whole */
	return tv_ikey_cmp(it->key, target) >= 0;
}

/* Steps forward from a restart point to the first entry >= target.  m
 * and diverged: what is known of the restart point's key (diverged at
 * m, below), from the search that chose it; diverged 0 if nothing.
 *
 * Most entries are decided, and skipped, from their headers alone: how
 * many bytes each shares with its predecessor.  Say the previous key
 * P < target first differs from the target's user key t at byte m, inside
 * both user keys, with P[m] < t[m] ("diverged at m").  An entry K that
 * shares s bytes with P then is:
 *   s > m: K[m] = P[m] < t[m], so K < target, still diverged at m;
 *   s < m: K differs from P first at s, where P[s] = t[s], and K > P, so
 *          K[s] > t[s]: K > target, and the search ends;
 *   s = m: K agrees with t before m; comparing its unshared bytes, in
 *          place, with t's from m on decides, usually at the first byte.
 * (In both of the last cases K's user key is longer than s bytes, since
 * K > P.)  A skipped entry's key is never rebuilt: the entry the scan
 * stops at shares at most m bytes with its predecessor, and those are
 * t's.  Where a user key ends first, tv_ikey_cmp decides and the next
 * entry is decoded and compared in full. */
static void scan_to(tv_block_iter *it, tv_slice target, size_t m, int diverged)
{
	tv_slice t = tv_ikey_user(target);
	const unsigned char *tu = (const unsigned char *)t.data;
	if (!parse_next(it))
		return;
	while (!at_or_past(it, target, t, &m, &diverged)) {
		if (!diverged) {
			if (!parse_next(it))
				return;
			continue;
		}
		uint32_t off = it->next;
		size_t prev_len = it->key.len;
		frame f;
		for (;;) {
			if (off >= it->blk.restarts) {
				mark_end(it);
				return;
			}
			if (read_frame(it, off, prev_len, &f))
				return;
			if (f.shared < m)
				break;
			if (f.shared == m) { /* compare its unshared bytes in place */
				const unsigned char *r = (const unsigned char *)f.rest;
				size_t ulen = (size_t)f.shared + f.unshared - TV_TRAILER;
				size_t lim = ulen < t.len ? ulen : t.len;
				if (lim <= m)
					break;
				size_t j = m + mismatch(r, tu + m, 0, lim - m);
				if (j == lim || r[j - m] > tu[j])
					break;
				m = j;
			}
			prev_len = (size_t)f.shared + f.unshared;
			off = (uint32_t)(f.rest + f.unshared + f.vlen - it->blk.data);
		}
		if (set_entry(it, off, &f, t.data))
			return;
		if (f.shared < m)
			return;
	}
}

/* Blocks with at most this many restart points have all their restart
 * keys prefetched by a seek (a 4 KiB data block has about 8). */
#define PREFETCH_RESTARTS 16

/* Starts loading the lines of restart interval i after its first (which
 * the search read): the scan reads its entries one after another, and
 * each ~128-byte entry of a data block is usually a line of its own that
 * is not in the CPU cache, so it would wait for them one by one. */
static void prefetch_interval(const tv_block_iter *it, uint32_t i)
{
	uintptr_t from = (uintptr_t)(it->blk.data + restart_point(it, i));
	uint32_t end = i + 1 < it->blk.nrestarts ? restart_point(it, i + 1) : it->blk.restarts;
	if (end > it->blk.restarts)
		return; /* damaged: the scan will say so */
	uintptr_t to = (uintptr_t)(it->blk.data + end);
	for (uintptr_t a = (from | 63) + 1; a < to; a += 64)
		__builtin_prefetch((const void *)a);
}

void tv_block_iter_seek(tv_block_iter *it, tv_slice target)
{
	assert(target.len >= TV_TRAILER);
	if (it->status || it->blk.nrestarts == 0) {
		mark_end(it);
		return;
	}
	tv_slice tu = tv_ikey_user(target);
	/* Each restart key the search reads is usually a cache miss, and its
	 * answer says which one is next: in a data block (a handful of
	 * restart points) all of them are started loading at once, so the
	 * search waits for memory about once instead of log2(n) times. */
	if (it->blk.nrestarts <= PREFETCH_RESTARTS) {
		const char *ra = it->blk.ra;
		for (uint32_t i = 0; i < it->blk.nrestarts; i++) {
			uint32_t off = tv_get_fixed32(ra + (size_t)i * 4);
			if (off < it->blk.restarts)
				__builtin_prefetch(it->blk.data + off);
		}
	}
	/* Binary search for the last restart point whose key is < target;
	 * restart keys are whole, so they are compared in place.  Where the
	 * chosen key diverged from the target is where scan_to starts. */
	uint32_t left = 0, right = it->blk.nrestarts - 1;
	size_t m = 0, mid_m = 0;
	int diverged = 0, mid_diverged = 0;
	while (left < right) {
		uint32_t mid = left + (right - left + 1) / 2;
		uint32_t off = restart_point(it, mid);
		if (off >= it->blk.restarts) {
			fail(it, TROVE_ECORRUPT);
			return;
		}
		frame f; /* a restart key shares nothing: read it in place */
		if (read_frame(it, off, 0, &f))
			return;
		if (key_below(tv_slice_make(f.rest, f.unshared), target, tu, &mid_m, &mid_diverged)) {
			left = mid;
			m = mid_m;
			diverged = mid_diverged;
		} else {
			right = mid - 1;
		}
	}
	if (!to_restart(it, left))
		return;
	if (it->blk.nrestarts <= PREFETCH_RESTARTS)
		prefetch_interval(it, left);
	scan_to(it, target, m, diverged);
}

void tv_block_iter_seek_restart(tv_block_iter *it, uint32_t i)
{
	assert(i < it->blk.nrestarts);
	if (it->status) {
		mark_end(it);
		return;
	}
	if (to_restart(it, i))
		parse_next(it);
}

/* How far ahead of the entry it reads a forward step starts loading the
 * block: a few entries, so that a scan finds each one in the CPU's cache. */
#define SCAN_PREFETCH 256

/* The forward step's general case: any header, the end of the block, a
 * long key, a damaged entry. */
static __attribute__((noinline)) void next_decode(tv_block_iter *it)
{
	if (parse_next(it) && it->blk.restarts - it->next > SCAN_PREFETCH)
		__builtin_prefetch(it->blk.data + it->next + SCAN_PREFETCH);
}

/* An entry whose header is three one-byte varints has a key of at most
 * 2 * 127 bytes, which always fits the inline key buffer. */
_Static_assert(2 * 127 + 16 <= TV_BLOCK_ITER_INLINE, "a short entry's key fits kinline");

/* A scan's step.  The common entry (three one-byte varints, inside the
 * block, a whole internal key) is decoded here with its checks, which are
 * read_frame's, in registers and without a call: as one function with
 * the general case, the frame lived on the stack and six registers were
 * saved and restored per entry, a third of the step.  Its key, at most
 * 254 bytes, needs no room check, and its unshared bytes, when at most
 * 16 with 16 bytes of the entry left to read, are one 16-byte move. */
void tv_block_iter_next(tv_block_iter *it)
{
	assert(tv_block_iter_valid(it));
	uint32_t off = it->next, lim = it->blk.restarts;
	const char *data = it->blk.data;
	const unsigned char *u = (const unsigned char *)data + off;
	if (lim - off < 3 || ((u[0] | u[1] | u[2]) & 0x80) != 0) {
		next_decode(it);
		return;
	}
	uint32_t shared = u[0], unshared = u[1], vlen = u[2];
	uint32_t rest = off + 3, next = rest + unshared + vlen;
	if (next > lim || shared > it->key.len || shared + unshared < TV_TRAILER) {
		next_decode(it); /* fails it */
		return;
	}
	const char *r = data + rest;
	if (shared == 0) {
		it->key = tv_slice_make(r, unshared);
	} else {
		/* Longer copies, whose memcpy calls would make this step save
		 * registers, go the general way. */
		char *k = it->kbuf;
		if (unshared > 16 || lim - rest < 16 || (it->key.data != k && shared > 32)) {
			next_decode(it);
			return;
		}
		if (it->key.data != k)
			copy_key_bytes(k, it->key.data, shared);
		memcpy(k + shared, r, 16); /* inside kbuf: see above */
		it->key = tv_slice_make(k, shared + unshared);
	}
	it->value = tv_slice_make(r + unshared, vlen);
	it->cur = off;
	it->next = next;
	if (lim - next > SCAN_PREFETCH)
		__builtin_prefetch(data + next + SCAN_PREFETCH);
}

/* One entry of the interval cached by prev. */
struct tv_block_prev {
	uint32_t cur, next, rindex;
	uint32_t koff, klen; /* the key, in it->pc_keys */
	uint32_t voff, vlen; /* the value, in the block */
};

/* Makes cached entry i current. */
static void pc_use(tv_block_iter *it, uint32_t i)
{
	const struct tv_block_prev *e = &it->pc[i];
	it->pc_i = i;
	it->cur = e->cur;
	it->next = e->next;
	it->rindex = e->rindex;
	it->key = tv_slice_make(it->pc_keys + e->koff, e->klen);
	it->value = tv_slice_make(it->blk.data + e->voff, e->vlen);
}

/* Bytes kept free after the keys in pc_keys, so that decode_interval
 * moves a key's bytes 16 at a time. */
#define PC_SLACK 32

/* Makes room in the reverse cache for one more entry whose key has klen
 * bytes, and PC_SLACK more; false on ENOMEM. */
static int pc_room(tv_block_iter *it, size_t klen)
{
	if (it->pc_n == it->pc_cap &&
	    tv_grow(&it->pc, &it->pc_cap, (size_t)it->pc_n + 1, sizeof *it->pc, 32))
		return 0;
	if (it->pc_klen + klen + PC_SLACK > it->pc_kcap &&
	    tv_grow(&it->pc_keys, &it->pc_kcap, it->pc_klen + klen + PC_SLACK, 1, 1024))
		return 0;
	return 1;
}

/* 16 bytes from src to dst, in line. */
static inline void move16(char *dst, const char *src)
{
	char t[16];
	memcpy(t, src, 16);
	memcpy(dst, t, 16);
}

/* Decodes the entry at off, framed by f, into the reverse cache: its key
 * is rebuilt in pc_keys right after its predecessor's, of prev_len bytes
 * (whose first f->shared bytes it takes), so the walk copies each key
 * once.  A prefix or an unshared part of at most 16 bytes is one 16-byte
 * move, from inside the block or the keys (what it takes past its bytes
 * is overwritten next or lies in the slack). */
static inline void pc_add(tv_block_iter *it, uint32_t off, const frame *f, size_t prev_len)
{
	size_t klen = (size_t)f->shared + f->unshared;
	char *k = it->pc_keys + it->pc_klen;
	if (f->shared <= 16)
		move16(k, k - prev_len);
	else
		copy_key_bytes(k, k - prev_len, f->shared);
	uint32_t voff = (uint32_t)(f->rest + f->unshared - it->blk.data);
	if (f->unshared <= 16 && it->blk.restarts - (voff - f->unshared) >= 16)
		move16(k + f->shared, f->rest);
	else
		copy_key_bytes(k + f->shared, f->rest, f->unshared);
	struct tv_block_prev *e = &it->pc[it->pc_n++];
	e->cur = off;
	e->next = voff + f->vlen;
	e->rindex = it->rindex;
	e->koff = (uint32_t)it->pc_klen;
	e->klen = (uint32_t)klen;
	e->voff = voff;
	e->vlen = f->vlen;
	it->pc_klen += klen;
}

/* read_frame's common case, three one-byte varints, decided without a
 * call (that would keep the frame in memory); false for anything else,
 * which read_frame then decides. */
static inline int short_frame(const tv_block_iter *it, uint32_t off, size_t prev_len, frame *f)
{
	uint32_t lim = it->blk.restarts;
	const unsigned char *u = (const unsigned char *)it->blk.data + off;
	if (lim - off < 3 || ((u[0] | u[1] | u[2]) & 0x80) != 0)
		return 0;
	uint32_t shared = u[0], unshared = u[1], vlen = u[2];
	if (off + 3 + unshared + vlen > lim || shared > prev_len || shared + unshared < TV_TRAILER)
		return 0;
	f->shared = shared;
	f->unshared = unshared;
	f->vlen = vlen;
	f->rest = (const char *)u + 3;
	return 1;
}

/* read_frame out of line, for decode_interval's uncommon entries. */
static __attribute__((noinline)) int long_frame(tv_block_iter *it, uint32_t off, size_t prev_len,
                                                frame *f)
{
	return read_frame(it, off, prev_len, f);
}

/* Decodes the entries from the restart point to_restart prepared up to the
 * one that ends at `end` and makes that one current, caching nothing.
 * Fails the iterator if the entries do not end exactly at `end`. */
static void decode_plain(tv_block_iter *it, uint32_t end)
{
	do {
		if (!parse_next(it)) {
			if (!it->status)
				fail(it, TROVE_ECORRUPT);
			return;
		}
	} while (it->next < end);
	if (it->next != end)
		fail(it, TROVE_ECORRUPT);
}

/* Decodes the entries from the restart point to_restart prepared up to the
 * one that ends at `end`, recording them in the reverse cache, and makes
 * that one current.  Fails the iterator if the entries do not end exactly
 * at `end` (they would overlap a restart point).  Out of memory for the
 * cache, it decodes them the plain way (prev then decodes again). */
static void decode_interval(tv_block_iter *it, uint32_t end)
{
	uint32_t off = it->next;
	it->pc_n = it->pc_klen = 0;
	it->pc_i = UINT32_MAX;
	size_t prev_len = 0;
	do {
		frame f;
		if (off >= it->blk.restarts) {
			fail(it, TROVE_ECORRUPT);
			return;
		}
		if (!short_frame(it, off, prev_len, &f)) {
			frame g;
			if (long_frame(it, off, prev_len, &g))
				return;
			f = g;
		}
		size_t klen = (size_t)f.shared + f.unshared;
		if ((it->pc_n == it->pc_cap || it->pc_klen + klen + PC_SLACK > it->pc_kcap) &&
		    !pc_room(it, klen)) {
			it->pc_n = 0;
			if (to_restart(it, it->rindex))
				decode_plain(it, end);
			return;
		}
		pc_add(it, off, &f, prev_len);
		prev_len = klen;
		off = it->pc[it->pc_n - 1].next;
	} while (off < end);
	if (off != end) {
		fail(it, TROVE_ECORRUPT);
		return;
	}
	pc_use(it, it->pc_n - 1);
}

/* Starts loading the restart interval before the one the reverse cache
 * holds, which the step back after its entries decodes: a backward scan
 * reads a block from its end, against the direction the CPU's own
 * prefetcher follows, and about one entry in two was a cache miss. */
static void prefetch_interval_before(const tv_block_iter *it)
{
	if (it->status || it->pc_n == 0 || it->rindex == 0)
		return;
	uint32_t from = restart_point(it, it->rindex - 1), to = it->pc[0].cur;
	for (uint32_t off = from; off < to; off += 64)
		__builtin_prefetch(it->blk.data + off);
}

/* tv_block_iter_prev off the reverse cache: from the entry at orig, which
 * the cache does not hold with its predecessor.  Not in line: the cached
 * step, most of a backward scan's, then saves and restores no registers
 * for it. */
static __attribute__((noinline)) void prev_decode(tv_block_iter *it, uint32_t orig)
{
	/* Forward moves leave rindex behind (keeping it up to date cost a
	 * look at the restart array per entry): catch it up to the current
	 * entry's restart point first. */
	while (it->rindex + 1 < it->blk.nrestarts && restart_point(it, it->rindex + 1) <= orig)
		it->rindex++;
	/* Back up to a restart point before the current entry, then scan
	 * forward to the entry that ends where the current one starts,
	 * remembering the interval's entries for the next steps back. */
	while (restart_point(it, it->rindex) >= orig) {
		if (it->rindex == 0) {
			mark_end(it); /* was the first entry */
			return;
		}
		it->rindex--;
	}
	if (to_restart(it, it->rindex))
		decode_interval(it, orig);
	prefetch_interval_before(it);
}

void tv_block_iter_prev(tv_block_iter *it)
{
	assert(tv_block_iter_valid(it));
	uint32_t i = it->pc_i;
	/* Within the interval decoded last time, step back in the cache. */
	if (i < it->pc_n && i > 0 && it->pc[i].cur == it->cur)
		pc_use(it, i - 1);
	else
		prev_decode(it, it->cur);
}

/* The last entry; the walk there fills the reverse cache, so the steps
 * back that usually follow decode nothing again.  In a block of a few
 * restart points (a data block) the walk starts at the first entry and
 * caches the whole block: a backward scan decodes it in one pass, front
 * to back as the CPU's prefetcher reads, and steps back through all of
 * it without looking at a restart point (its entries say restart point
 * 0, which prev catches up from when it must).  Elsewhere (an index
 * block, one restart point per entry) it walks the last interval only. */
void tv_block_iter_seek_last(tv_block_iter *it)
{
	if (it->status || it->blk.nrestarts == 0) {
		mark_end(it);
		return;
	}
	uint32_t from = it->blk.nrestarts <= PREFETCH_RESTARTS ? 0 : it->blk.nrestarts - 1;
	if (!to_restart(it, from))
		return;
	if (it->next >= it->blk.restarts) {
		mark_end(it); /* an empty last interval, or block */
		return;
	}
	decode_interval(it, it->blk.restarts);
	prefetch_interval_before(it);
}

/* ---- As a tv_iter ------------------------------------------------------- */

static tv_block_iter *bi(tv_iter *it)
{
	return (tv_block_iter *)it;
}

/* Publishes the position after a move through the ops. */
static void op_publish(tv_block_iter *b)
{
	if (tv_block_iter_valid(b))
		tv_iter_publish(&b->base, b->key, b->value);
	else
		tv_iter_unpublish(&b->base);
}

static void op_seek_first(tv_iter *it)
{
	tv_block_iter_seek_first(bi(it));
	op_publish(bi(it));
}

static void op_seek_last(tv_iter *it)
{
	tv_block_iter_seek_last(bi(it));
	op_publish(bi(it));
}

static void op_seek(tv_iter *it, tv_slice target)
{
	tv_block_iter_seek(bi(it), target);
	op_publish(bi(it));
}

static void op_next(tv_iter *it)
{
	tv_block_iter_next(bi(it));
	op_publish(bi(it));
}

static void op_prev(tv_iter *it)
{
	tv_block_iter_prev(bi(it));
	op_publish(bi(it));
}

static int op_status(tv_iter *it)
{
	return bi(it)->status;
}

static void op_destroy_embedded(tv_iter *it)
{
	tv_block_iter_fini(bi(it));
}

static void op_destroy_heap(tv_iter *it)
{
	tv_block_iter_fini(bi(it));
	free(it);
}

static const tv_iter_ops embedded_ops = {
        op_seek_first, op_seek_last, op_seek, op_next, op_prev, op_status, op_destroy_embedded,
};

static const tv_iter_ops heap_ops = {
        op_seek_first, op_seek_last, op_seek, op_next, op_prev, op_status, op_destroy_heap,
};

void tv_block_iter_init(tv_block_iter *it, const tv_block *blk)
{
	it->base.ops = &embedded_ops;
	it->kbuf = it->kinline;
	it->kcap = sizeof it->kinline;
	it->pc = NULL;
	it->pc_keys = NULL;
	it->pc_cap = 0;
	it->pc_kcap = 0;
	tv_block_iter_reset(it, blk);
}

void tv_block_iter_reset(tv_block_iter *it, const tv_block *blk)
{
	it->blk = *blk;
	it->status = 0;
	it->rindex = 0;
	it->pc_n = 0; /* the cache described the old block */
	it->pc_i = UINT32_MAX;
	it->pc_klen = 0;
	mark_end(it);
	tv_iter_unpublish(&it->base);
}

void tv_block_iter_fini(tv_block_iter *it)
{
	if (it->kbuf != it->kinline)
		free(it->kbuf);
	it->kbuf = it->kinline;
	it->kcap = sizeof it->kinline;
	free(it->pc);
	free(it->pc_keys);
	it->pc = NULL;
	it->pc_keys = NULL;
	it->pc_n = it->pc_cap = 0;
	it->pc_kcap = it->pc_klen = 0;
	it->pc_i = UINT32_MAX;
}

tv_iter *tv_block_iter_new(const tv_block *blk)
{
	tv_block_iter *it = malloc(sizeof *it);
	if (!it)
		return NULL;
	tv_block_iter_init(it, blk);
	it->base.ops = &heap_ops;
	return &it->base;
}
