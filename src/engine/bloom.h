/*
 * bloom.h - bloom filters over stored keys, one per table.
 *
 * A table's filter answers "might this stored key (an internal key minus
 * its 8-byte trailer) be in the table?" so that a point lookup can skip
 * the index and the data block for most absent keys.  The filter is a
 * blocked bloom filter: a bit array of 64-byte lines, where each key
 * chooses one line by its hash and sets k bits inside it, so a probe costs
 * one cache miss rather than up to k.  Its serialized form is the bit
 * array followed by one byte holding k (docs/FORMAT.md).  With 10 bits per
 * key, k = 7 and about 1% of absent keys pass.
 */
#ifndef TV_BLOOM_H
#define TV_BLOOM_H

#include <stddef.h>
#include <stdint.h>

#include "../util/slice.h"

/* Collects key hashes while a table is built; the bits are laid out only
 * at the end, when the number of keys is known. */
typedef struct tv_bloom_builder {
	uint64_t *hashes;
	size_t n, cap;
	int bits_per_key;
} tv_bloom_builder;

/* bits_per_key must be >= 1. */
void tv_bloom_builder_init(tv_bloom_builder *b, int bits_per_key);
void tv_bloom_builder_free(tv_bloom_builder *b);
/* Remembers the key (only its hash).  0 or TROVE_ENOMEM. */
int tv_bloom_add(tv_bloom_builder *b, tv_slice key);
/* The same for a key whose tv_bloom_hash is hash. */
int tv_bloom_add_hash(tv_bloom_builder *b, uint64_t hash);
/* Appends the serialized filter over every key added to out and forgets
 * the keys.  0 or TROVE_ENOMEM (out unchanged). */
int tv_bloom_finish(tv_bloom_builder *b, tv_buf *out);
/* Bytes tv_bloom_finish would append now. */
size_t tv_bloom_size(const tv_bloom_builder *b);

/* The probe sequence of the blocked layout, shared with the memtable's
 * filter (memtable.c): a key's 64-bit hash picks a line by its low 32 bits
 * (multiply-shift onto [0, nlines), no division) and its probes inside the
 * line by double hashing of the high 32 bits: g, g + d, g + 2d, ...
 * modulo the line's 512 bits, with d odd so that the k bits are distinct. */
#define TV_BLOOM_LINE_BYTES 64
#define TV_BLOOM_LINE_BITS (TV_BLOOM_LINE_BYTES * 8)

static inline size_t tv_bloom_line(uint64_t h, uint64_t nlines)
{
	return (size_t)(((h & 0xffffffffu) * nlines) >> 32);
}

static inline uint32_t tv_bloom_delta(uint32_t g)
{
	return ((g >> 17) | (g << 15)) | 1;
}

/* Starts loading the line of filter (as written by tv_bloom_finish) that
 * a probe for hash h reads, so that several filters' misses overlap. */
static inline void tv_bloom_prefetch(const char *filter, size_t len, uint64_t h)
{
	__builtin_prefetch(filter + tv_bloom_line(h, (len - 1) / TV_BLOOM_LINE_BYTES) *
	                                    TV_BLOOM_LINE_BYTES);
}

/* True if filter (as written by tv_bloom_finish) is well formed. */
int tv_bloom_valid(tv_slice filter);
/* 0 if key was certainly not added; 1 if it may have been.  filter must
 * have passed tv_bloom_valid. */
int tv_bloom_may_contain(tv_slice filter, tv_slice key);
/* The same for a key whose hash, tv_bloom_hash(key), is known: a lookup
 * that probes several filters hashes its key once. */
int tv_bloom_may_contain_hash(tv_slice filter, uint64_t hash);
uint64_t tv_bloom_hash(tv_slice key);

#endif
