/*
 * cache.h - the block cache: a sharded CLOCK cache (an approximation of LRU
 * whose hits move nothing) of decompressed table blocks.
 *
 * Keys are (file number, block offset); file numbers are never reused, so
 * a dead file's blocks simply age out.  Entries are reference counted: a
 * block handed to a reader stays alive until released even if evicted.
 * Each shard has its own mutex, so readers on different blocks rarely
 * contend.  Capacity is in bytes (the `charge` of each entry).
 */
#ifndef TV_CACHE_H
#define TV_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tv_cache tv_cache;
typedef struct tv_cache_handle tv_cache_handle;

/* NULL on ENOMEM.  A capacity of 0 caches nothing (lookups always miss). */
tv_cache *tv_cache_new(size_t capacity);
/* All handles must have been released. */
void tv_cache_free(tv_cache *c);

/* A referenced handle, or NULL on a miss. */
tv_cache_handle *tv_cache_lookup(tv_cache *c, uint64_t file, uint64_t off);
/* Inserts value (ownership passes to the cache; `deleter` frees it once no
 * longer cached nor referenced) and returns a referenced handle to it.
 * Returns NULL only on ENOMEM, after calling deleter(value). */
tv_cache_handle *tv_cache_insert(tv_cache *c, uint64_t file, uint64_t off,
                                 void *value, size_t charge,
                                 void (*deleter)(void *value));
void *tv_cache_value(tv_cache_handle *h);
void tv_cache_release(tv_cache *c, tv_cache_handle *h);

size_t tv_cache_usage(tv_cache *c);
uint64_t tv_cache_hits(tv_cache *c);
uint64_t tv_cache_misses(tv_cache *c);

#endif
