/*
 * checksum.c - record and block checksums over libxxhash.
 *
 * The mask keeps a checksum stored inside checksummed data from
 * cancelling out (the same trick LevelDB plays with CRC32C).
 */
#include "checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static uint32_t mask(uint32_t c)
{
	return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

uint32_t tv_checksum(const void *data, size_t len)
{
	return mask((uint32_t)XXH3_64bits(data, len));
}

uint32_t tv_checksum2(const void *a, size_t alen, const void *b, size_t blen)
{
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, a, alen);
	XXH3_64bits_update(&st, b, blen);
	return mask((uint32_t)XXH3_64bits_digest(&st));
}

uint64_t tv_hash64(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}
