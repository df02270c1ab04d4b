/*
 * table.h - sorted table files: immutable, checksummed, indexed.
 *
 * A table holds internal keys (ikey.h) in increasing tv_ikey_cmp order
 * with their values, in data blocks of about 4 KiB: keys prefix-compressed
 * against the previous key, with restart points every 4 entries for
 * binary search, each block optionally compressed (lz4 or zstd, kept only
 * when it saves at least 1/8) and followed by a type byte and a checksum.
 * After the data blocks come a bloom filter block over the stored keys
 * (the internal key minus its trailer), an index block (the last internal
 * key of each data block -> its offset and size), a properties block and a
 * fixed-size footer ending in the magic number and the format version.
 * docs/FORMAT.md gives every byte.
 *
 * A tv_table is an open reader; it keeps the index and filter in memory and
 * fetches data blocks through the shared block cache.  It is safe for
 * concurrent use by many threads.
 */
#ifndef TV_TABLE_H
#define TV_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/slice.h"
#include "block.h"
#include "cache.h"
#include "errlog.h"
#include "iter.h"
#include "vfs.h"

#define TV_TABLE_MAGIC "TROVESST"
#define TV_TABLE_VERSION 2

typedef struct tv_table_opts {
	int compression;        /* TROVE_COMPRESS_NONE, _LZ4 or _ZSTD */
	int zstd_level;         /* 0 = zstd's default */
	size_t block_size;      /* target uncompressed data block size; 0 = 4096 */
	int bloom_bits_per_key; /* 0 = no filter; default 10 (~1% false positives) */
} tv_table_opts;

typedef struct tv_table_builder tv_table_builder;

/* Writes a new table into f (open for append, empty).  The builder does
 * not own f: the caller syncs and closes it after tv_table_finish. */
int tv_table_builder_new(tv_file *f, const tv_table_opts *opts,
                         tv_table_builder **out);
/* Keys must be strictly increasing by tv_ikey_cmp. */
int tv_table_add(tv_table_builder *b, tv_slice ikey, tv_slice value);
/* The same for a key whose user key's tv_bloom_hash is hash (a caller
 * that needs the hash itself computes it once). */
int tv_table_add_hashed(tv_table_builder *b, tv_slice ikey, tv_slice value, uint64_t hash);
/* Writes the remaining blocks and the footer. */
int tv_table_finish(tv_table_builder *b, uint64_t *file_size);
/* Bytes the finished file will have, roughly (for cutting output files). */
uint64_t tv_table_builder_size(const tv_table_builder *b);
uint64_t tv_table_builder_entries(const tv_table_builder *b);
void tv_table_builder_free(tv_table_builder *b);

typedef struct tv_table tv_table;

/* Opens the table at path (file_number names it in the cache and in error
 * messages).  Reads and verifies the footer, index, filter and properties:
 * TROVE_ECORRUPT (with file and offset sent to lg) if any is damaged.
 * `cache` may be NULL.  `lg` must outlive the table. */
int tv_table_open(trove_vfs *vfs, const char *path, uint64_t file_number,
                  tv_cache *cache, const tv_logger *lg, tv_table **out);
void tv_table_close(tv_table *t);

/* Point lookup: if the filter says the stored key of `target` may be
 * present, finds the first entry >= target and, if its stored key equals
 * target's, calls fn(arg, ikey, value) once and returns what fn returns
 * (must be >= 0).  Returns 0 if there is no such entry, or a negative
 * error (TROVE_ECORRUPT, TROVE_EIO). */
int tv_table_get(tv_table *t, tv_slice target,
                 int (*fn)(void *arg, tv_slice ikey, tv_slice value), void *arg);
/* tv_table_get with the filter hash of target's stored key given
 * (tv_bloom_hash of tv_ikey_user(target)), for callers that probe several
 * tables with one key. */
int tv_table_get_hashed(tv_table *t, tv_slice target, uint64_t hash,
                        int (*fn)(void *arg, tv_slice ikey, tv_slice value), void *arg);
/* Starts loading the filter line tv_table_get_hashed will probe for hash
 * (a hint: no effect on results), so that a lookup's probes of several
 * tables wait for memory together instead of one after another. */
void tv_table_prefetch(const tv_table *t, uint64_t hash);

/* False if the filter says no stored key whose tv_bloom_hash is hash is
 * in the table. */
bool tv_table_may_contain(const tv_table *t, uint64_t hash);
/* An iterator over the whole table; NULL on ENOMEM.  The table must stay
 * open while the iterator exists.  With fill_cache false, a block the
 * cache lacks is read for the iterator alone and not inserted: a
 * compaction reads each input block once, and inserting them would
 * evict the blocks readers use and churn the cache's memory. */
tv_iter *tv_table_iter(tv_table *t, bool fill_cache);
/* The same iterator built in the caller's memory: tv_table_iter_size()
 * bytes, aligned for any type, which must outlive it; destroying it
 * releases what it holds but not that memory.  Never fails.  Lets a
 * cursor, which opens one per table for every seek, allocate them all at
 * once. */
size_t tv_table_iter_size(void);
tv_iter *tv_table_iter_in(void *mem, tv_table *t, bool fill_cache);

/* A table iterator stepped by direct calls, for code that embeds one
 * (the level iterator, which walks a level's tables block by block): a
 * step inside a block is one call to the block iterator, and only a step
 * off a block's end calls into the table.  The position is the data
 * iterator's (valid, key, value); the tv_iter face's published fields
 * are left alone.  It must not be copied or moved once initialised, and
 * the table must stay open while it exists. */
typedef struct tv_table_iterator {
	tv_iter base; /* the face tv_table_iter_in hands out */
	tv_table *t;
	tv_block_iter index;
	tv_block_iter data;  /* over the current block, if have_block */
	bool have_block;
	uint64_t boff;       /* the current data block's offset in the file */
	tv_cache_handle *hd; /* what keeps it alive: a cache handle */
	struct table_block *tb; /* ...or, when it is not cached, the block itself */
	bool fill_cache;     /* insert the blocks it reads into the cache */
	int status;          /* sticky: once set the iterator stays invalid */
} tv_table_iterator;

/* Starts it over t, unpositioned; fini releases what it holds. */
void tv_table_iter_init(tv_table_iterator *it, tv_table *t, bool fill_cache);
void tv_table_iter_fini(tv_table_iterator *it);
void tv_table_iter_seek_first(tv_table_iterator *it);
void tv_table_iter_seek_last(tv_table_iterator *it);
void tv_table_iter_seek(tv_table_iterator *it, tv_slice target);
/* The moves off a block's first or last entry that tv_table_iter_next and
 * _prev make: to the neighbouring block, or past the table's end. */
void tv_table_iter_leave_forward(tv_table_iterator *it);
void tv_table_iter_leave_backward(tv_table_iterator *it);

/* Never valid once status is set (a failed block iterator is invalid,
 * and a failure drops the block). */
static inline bool tv_table_iter_valid(const tv_table_iterator *it)
{
	return tv_block_iter_valid(&it->data);
}
/* Requires valid. */
static inline void tv_table_iter_next(tv_table_iterator *it)
{
	tv_block_iter_next(&it->data);
	if (!tv_block_iter_valid(&it->data))
		tv_table_iter_leave_forward(it);
}
static inline void tv_table_iter_prev(tv_table_iterator *it)
{
	tv_block_iter_prev(&it->data);
	if (!tv_block_iter_valid(&it->data))
		tv_table_iter_leave_backward(it);
}
/* When valid: whether the value outlives the next next or prev, which
 * keep the block unless they leave it (from its first entry, at offset 0
 * (tv_block_parse), backwards or from its last forwards). */
static inline bool tv_table_iter_value_lasts(const tv_table_iterator *it)
{
	const tv_block_iter *d = &it->data;
	return d->cur > 0 && d->next < d->blk.restarts;
}
static inline int tv_table_iter_status(const tv_table_iterator *it)
{
	return it->status;
}

/* The table's properties, read from its properties block. */
uint64_t tv_table_entries(const tv_table *t);
uint64_t tv_table_file_size(const tv_table *t);
/* Bytes of memory held by the open table (index and filter). */
size_t tv_table_memory(const tv_table *t);

/* Reads every block of the table bypassing the cache, checks every
 * checksum, that every block decodes and that keys increase.  Calls
 * report(arg, offset, message) for each problem; returns 0 if none was
 * found, TROVE_ECORRUPT if any was, or TROVE_EIO. */
int tv_table_verify(tv_table *t,
                    void (*report)(void *arg, uint64_t offset, const char *msg),
                    void *arg);

#endif
