/*
 * slice.h - a borrowed view of bytes, and the growable byte buffer.
 *
 * Every layer of the engine passes keys and values around as tv_slice: a
 * pointer and a length, never owning the bytes.  tv_buf is the one owning,
 * growable buffer used to build records and blocks.  Neither ever touches
 * files or locks.
 */
#ifndef TV_SLICE_H
#define TV_SLICE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tv_slice {
	const char *data;
	size_t len;
} tv_slice;

static inline tv_slice tv_slice_make(const void *data, size_t len)
{
	tv_slice s = { (const char *)data, len };
	return s;
}

/* Bytewise comparison: negative, zero or positive like memcmp; a proper
 * prefix sorts first. */
static inline int tv_slice_cmp(tv_slice a, tv_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int r = n ? memcmp(a.data, b.data, n) : 0;
	if (r != 0)
		return r;
	return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

static inline int tv_slice_eq(tv_slice a, tv_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static inline int tv_slice_starts_with(tv_slice s, tv_slice prefix)
{
	return s.len >= prefix.len &&
	       (prefix.len == 0 || memcmp(s.data, prefix.data, prefix.len) == 0);
}

typedef struct tv_buf {
	char *data;
	size_t len;
	size_t cap;
	char *fixed; /* the caller's storage it started in (never freed), or NULL */
} tv_buf;

/* All tv_buf functions that grow the buffer return 0 or TROVE_ENOMEM; on
 * failure the buffer is unchanged. */
void tv_buf_init(tv_buf *b);
/* Starts b in the caller's storage of cap bytes, so that a buffer that
 * stays small costs no allocation; it moves to the heap if it outgrows
 * it.  The storage must outlive b, and b->data must not be handed over
 * to an owner that frees it. */
void tv_buf_init_fixed(tv_buf *b, char *storage, size_t cap);
void tv_buf_free(tv_buf *b);
/* The slow path of tv_buf_reserve: grows the capacity. */
int tv_buf_grow(tv_buf *b, size_t extra);
int tv_buf_put_fixed32(tv_buf *b, uint32_t v);
int tv_buf_put_fixed64(tv_buf *b, uint64_t v);
int tv_buf_put_varint32(tv_buf *b, uint32_t v);
int tv_buf_put_varint64(tv_buf *b, uint64_t v);
/* A varint32 length followed by the bytes. */
int tv_buf_put_lenprefixed(tv_buf *b, const void *data, size_t len);

/* Makes room for extra more bytes.  Inline: every record and block is
 * built through it, and the room is nearly always there already. */
static inline int tv_buf_reserve(tv_buf *b, size_t extra)
{
	return extra <= b->cap - b->len ? 0 : tv_buf_grow(b, extra);
}

static inline int tv_buf_append(tv_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	int rc = tv_buf_reserve(b, len);
	if (rc)
		return rc;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

static inline void tv_buf_clear(tv_buf *b) { b->len = 0; }

static inline tv_slice tv_buf_slice(const tv_buf *b)
{
	return tv_slice_make(b->data, b->len);
}

#endif
