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
