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

static inline int tv_ikey_cmp(tv_slice a, tv_slice b)
{
	int r = tv_slice_cmp(tv_ikey_user(a), tv_ikey_user(b));
	if (r)
		return r;
	uint64_t ta = tv_ikey_trailer(a), tb = tv_ikey_trailer(b);
	return ta > tb ? -1 : ta < tb ? 1 : 0;
}

#endif
