/*
 * bloom.c - building and probing the per-table bloom filter.
 *
 * The table builder feeds every distinct stored key here; the table
 * reader probes the serialized filter before touching the index.  Probe
 * positions come from double hashing: the two 32-bit halves of one
 * tv_hash64 give g_i = h1 + i*h2, mapped onto the bit array by a
 * multiply-shift (no division on the lookup path).  The prober treats the
 * filter as read-only bytes and must never read outside it; a filter it
 * does not understand is rejected by tv_bloom_valid at table open.
 */
#include "bloom.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "../util/checksum.h"
#include "../util/grow.h"
#include "trove.h"

#define BLOOM_MAX_K 30
/* Probes are mapped with 32-bit multiply-shift, so the array is at most
 * 2^32 bits (512 MiB, enough for hundreds of millions of keys). */
#define BLOOM_MAX_BYTES (UINT64_C(1) << 29)
/* Every key's probes fall in one 64-byte line: one cache miss per lookup. */
#define BLOOM_LINE_BYTES TV_BLOOM_LINE_BYTES
#define BLOOM_LINE_BITS TV_BLOOM_LINE_BITS

void tv_bloom_builder_init(tv_bloom_builder *b, int bits_per_key)
{
	assert(bits_per_key >= 1);
	b->hashes = NULL;
	b->n = 0;
	b->cap = 0;
	b->bits_per_key = bits_per_key;
}

void tv_bloom_builder_free(tv_bloom_builder *b)
{
	tv_unmap_array(b->hashes, b->cap, sizeof *b->hashes);
	b->hashes = NULL;
	b->n = b->cap = 0;
}

int tv_bloom_add(tv_bloom_builder *b, tv_slice key)
{
	return tv_bloom_add_hash(b, tv_bloom_hash(key));
}

int tv_bloom_add_hash(tv_bloom_builder *b, uint64_t hash)
{
	/* The hashes are mapped, not malloc'd (tv_grow_mapped): a flush or
	 * compaction collects a MiB or so of them, 64 KiB at first. */
	if (b->n == b->cap) {
		int rc = tv_grow_mapped(&b->hashes, &b->cap, b->n < 8192 ? 8192 : b->n + 1,
		                        sizeof *b->hashes);
		if (rc)
			return rc;
	}
	b->hashes[b->n++] = hash;
	return 0;
}

/* k = bits_per_key * ln 2 minimises the false-positive rate. */
static unsigned bloom_k(int bits_per_key)
{
	unsigned k = (unsigned)(bits_per_key * 69 + 50) / 100;
	return k < 1 ? 1 : k > BLOOM_MAX_K ? BLOOM_MAX_K : k;
}

/* Size of the bit array in bytes: whole 64-byte lines, at least one, at
 * most BLOOM_MAX_BYTES. */
static size_t bloom_bytes(const tv_bloom_builder *b)
{
	uint64_t bits = (uint64_t)b->n * (uint64_t)b->bits_per_key;
	uint64_t lines = (bits + BLOOM_LINE_BITS - 1) / BLOOM_LINE_BITS;
	if (lines < 1)
		lines = 1;
	if (lines > BLOOM_MAX_BYTES / BLOOM_LINE_BYTES)
		lines = BLOOM_MAX_BYTES / BLOOM_LINE_BYTES;
	return (size_t)(lines * BLOOM_LINE_BYTES);
}

size_t tv_bloom_size(const tv_bloom_builder *b)
{
	return bloom_bytes(b) + 1;
}

int tv_bloom_finish(tv_bloom_builder *b, tv_buf *out)
{
	size_t bytes = bloom_bytes(b);
	unsigned k = bloom_k(b->bits_per_key);
	int rc = tv_buf_reserve(out, bytes + 1);
	if (rc)
		return rc;
	unsigned char *bits = (unsigned char *)out->data + out->len;
	memset(bits, 0, bytes);
	uint64_t nlines = bytes / BLOOM_LINE_BYTES;
	for (size_t i = 0; i < b->n; i++) {
		unsigned char *line = bits + tv_bloom_line(b->hashes[i], nlines) * BLOOM_LINE_BYTES;
		uint32_t g = (uint32_t)(b->hashes[i] >> 32), d = tv_bloom_delta(g);
		for (unsigned j = 0; j < k; j++, g += d) {
			uint32_t bit = g & (BLOOM_LINE_BITS - 1);
			line[bit >> 3] |= (unsigned char)(1u << (bit & 7));
		}
	}
	bits[bytes] = (unsigned char)k;
	out->len += bytes + 1;
	b->n = 0;
	return 0;
}

int tv_bloom_valid(tv_slice filter)
{
	if (filter.len < BLOOM_LINE_BYTES + 1 || filter.len - 1 > BLOOM_MAX_BYTES ||
	    (filter.len - 1) % BLOOM_LINE_BYTES != 0)
		return 0;
	unsigned k = (unsigned char)filter.data[filter.len - 1];
	return k >= 1 && k <= BLOOM_MAX_K;
}

uint64_t tv_bloom_hash(tv_slice key)
{
	return tv_hash64(key.data, key.len);
}

int tv_bloom_may_contain(tv_slice filter, tv_slice key)
{
	return tv_bloom_may_contain_hash(filter, tv_bloom_hash(key));
}

int tv_bloom_may_contain_hash(tv_slice filter, uint64_t h)
{
	assert(tv_bloom_valid(filter));
	const unsigned char *bits = (const unsigned char *)filter.data;
	uint64_t nlines = (filter.len - 1) / BLOOM_LINE_BYTES;
	unsigned k = bits[filter.len - 1];
	const unsigned char *line = bits + tv_bloom_line(h, nlines) * BLOOM_LINE_BYTES;
	uint32_t g = (uint32_t)(h >> 32), d = tv_bloom_delta(g);
	for (unsigned j = 0; j < k; j++, g += d) {
		uint32_t bit = g & (BLOOM_LINE_BITS - 1);
		if (!(line[bit >> 3] & (1u << (bit & 7))))
			return 0;
	}
	return 1;
}
