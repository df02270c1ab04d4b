/*
 * ikey.h - internal keys: how the engine orders every entry it stores.
 *
 * An internal key is the stored key followed by an 8-byte little-endian
 * trailer holding (sequence << 8 | type).  Internal keys sort by stored
 * key ascending (bytewise), then by trailer descending, so the newest
 * entry of a key comes first.  Memtables, log records, tables and
 * iterators all order by tv_ikey_cmp.
 *
 * Entry types:
 *   TV_TYPE_DEL      a tombstone; the value is empty.
 *   TV_TYPE_PUT      a value with no expiry.
 *   TV_TYPE_PUT_EXP  a value whose first 8 bytes are its absolute expiry
 *                    time (Unix milliseconds, fixed64), the rest the value.
 */
#ifndef TV_IKEY_H
#define TV_IKEY_H

#include <stdint.h>
#include <string.h>

#include "../util/coding.h"
#include "../util/slice.h"

enum {
	TV_TYPE_DEL = 0,
	TV_TYPE_PUT = 1,
	TV_TYPE_PUT_EXP = 2,
};

#define TV_TRAILER 8
#define TV_MAX_SEQ ((UINT64_C(1) << 56) - 1)
/* Seeking to (key, TV_SEEK_TYPE) at sequence s finds the newest entry of
 * key with sequence <= s: the highest type sorts first. */
#define TV_SEEK_TYPE 0xff

static inline uint64_t tv_pack_trailer(uint64_t seq, unsigned type)
{
	return (seq << 8) | type;
}

static inline tv_slice tv_ikey_user(tv_slice ikey)
{
	return tv_slice_make(ikey.data, ikey.len - TV_TRAILER);
}

static inline uint64_t tv_ikey_trailer(tv_slice ikey)
{
	return tv_get_fixed64(ikey.data + ikey.len - TV_TRAILER);
}

static inline uint64_t tv_ikey_seq(tv_slice ikey)
{
	return tv_ikey_trailer(ikey) >> 8;
}

static inline unsigned tv_ikey_type(tv_slice ikey)
{
	return (unsigned)(tv_ikey_trailer(ikey) & 0xff);
}

static inline int tv_ikey_valid(tv_slice ikey)
{
	return ikey.len >= TV_TRAILER && tv_ikey_type(ikey) <= TV_TYPE_PUT_EXP;
}

/* 8 bytes as a big-endian integer: one load and a byte swap. */
static inline uint64_t tv_load_be64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* memcmp's order of a and b, n bytes each, compared 8 bytes at a time in
 * line: iterators and the memtable compare short keys once per entry or
 * node, and a call to memcmp costs more than the comparison itself. */
static inline int tv_cmp_bytes(const char *a, const char *b, size_t n)
{
	for (; n >= 8; a += 8, b += 8, n -= 8) {
		uint64_t x = tv_load_be64(a), y = tv_load_be64(b);
		if (x != y)
			return x < y ? -1 : 1;
	}
	for (; n; a++, b++, n--) {
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
	}
	return 0;
}

/* Bytewise order of two user keys, as tv_slice_cmp, in line. */
static inline int tv_ukey_cmp(tv_slice a, tv_slice b)
{
	int r = tv_cmp_bytes(a.data, b.data, a.len < b.len ? a.len : b.len);
	if (r)
		return r;
	return a.len < b.len ? -1 : a.len > b.len;
}

static inline int tv_ikey_cmp(tv_slice a, tv_slice b)
{
	int r = tv_ukey_cmp(tv_ikey_user(a), tv_ikey_user(b));
	if (r)
		return r;
	uint64_t ta = tv_ikey_trailer(a), tb = tv_ikey_trailer(b);
	return ta > tb ? -1 : ta < tb ? 1 : 0;
}

#endif
