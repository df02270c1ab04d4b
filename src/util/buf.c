/*
 * buf.c - the growable byte buffer used to build records and blocks.
 *
 * Growth doubles the capacity, so appending n bytes one at a time costs
 * O(n).  A failed allocation leaves the buffer as it was.
 */
#include "slice.h"

#include <stdlib.h>

#include "coding.h"
#include "trove.h"

void tv_buf_init(tv_buf *b)
{
	tv_buf_init_fixed(b, NULL, 0);
}

void tv_buf_init_fixed(tv_buf *b, char *storage, size_t cap)
{
	b->data = storage;
	b->len = 0;
	b->cap = cap;
	b->fixed = storage;
}

void tv_buf_free(tv_buf *b)
{
	if (b->data != b->fixed)
		free(b->data);
	tv_buf_init(b);
}

int tv_buf_grow(tv_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return TROVE_ENOMEM;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p;
	if (b->data && b->data == b->fixed) {
		p = malloc(cap);
		if (p)
			memcpy(p, b->data, b->len);
	} else {
		p = realloc(b->data, cap);
	}
	if (!p)
		return TROVE_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int tv_buf_put_fixed32(tv_buf *b, uint32_t v)
{
	char tmp[4];
	tv_put_fixed32(tmp, v);
	return tv_buf_append(b, tmp, sizeof tmp);
}

int tv_buf_put_fixed64(tv_buf *b, uint64_t v)
{
	char tmp[8];
	tv_put_fixed64(tmp, v);
	return tv_buf_append(b, tmp, sizeof tmp);
}

int tv_buf_put_varint32(tv_buf *b, uint32_t v)
{
	char tmp[TV_MAX_VARINT32];
	return tv_buf_append(b, tmp, (size_t)(tv_encode_varint32(tmp, v) - tmp));
}

int tv_buf_put_varint64(tv_buf *b, uint64_t v)
{
	char tmp[TV_MAX_VARINT64];
	return tv_buf_append(b, tmp, (size_t)(tv_encode_varint64(tmp, v) - tmp));
}

int tv_buf_put_lenprefixed(tv_buf *b, const void *data, size_t len)
{
	if (len > UINT32_MAX)
		return TROVE_ETOOBIG;
	int rc = tv_buf_reserve(b, TV_MAX_VARINT32 + len);
	if (rc)
		return rc;
	b->len = (size_t)(tv_encode_lenprefixed(b->data + b->len, data, (uint32_t)len) - b->data);
	return 0;
}
