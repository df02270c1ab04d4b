/*
 * cache.h - the block cache: a sharded CLOCK cache (an approximation of LRU
 * whose hits move nothing) of decompressed table blocks.
 *
 * Keys are (file number, block offset); file numbers are never reused, so
 * a dead file's blocks simply age out.  Entries are reference counted: a
 * block handed to a reader stays alive until released even if evicted.
 * Each shard has its own mutex, so readers on different blocks rarely
 * contend.  Capacity is in bytes (the `charge` of each entry).
 *
 * The cache also accounts for memory it does not hold as entries: bytes
 * *reserved* by others (open tables' index and filter blocks) shrink the
 * room left for entries, and values allocated with tv_cache_alloc are
 * recycled for later values instead of being freed, so the memory the
 * cache stands for stays within its capacity whichever threads allocate.
 * Values over 64 KiB are mapped (mmap) and unmapped when given back.
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
/* tv_cache_lookup that, as soon as it knows which entry it will check
 * first, starts loading the two cache lines of that entry's value that
 * end at byte `ahead` (> 0) of the value, if it came from tv_cache_alloc:
 * the caller's next read of the value then waits for memory together
 * with the lookup's own read of the entry.  A hint: results are the
 * same. */
tv_cache_handle *tv_cache_lookup_ahead(tv_cache *c, uint64_t file, uint64_t off,
                                       size_t ahead);
/* tv_cache_lookup through a slot kept by the caller for (file, off),
 * NULL at first: the slot remembers the entry a lookup found, and the
 * cache empties it when the entry leaves, so a lookup that finds the
 * slot filled skips the hash table (its bucket is one more cache miss
 * before the entry).  Every lookup of (file, off) through a slot must use
 * the same slot, which must stay put until tv_cache_unslot.  Before it
 * takes the shard lock it starts loading the first `span` bytes of the
 * value of the entry the slot names, if it came from tv_cache_alloc (a
 * hint: results are the same): the caller's reads of the value then wait
 * for memory together with the lookup's read of the entry, instead of
 * after it, and after each other when one read says where the next is. */
tv_cache_handle *tv_cache_lookup_slot(tv_cache *c, uint64_t file, uint64_t off,
                                      tv_cache_handle *_Atomic *slot, size_t span);
/* Empties a slot tv_cache_lookup_slot used for (file, off), so that the
 * cache forgets it; after it the slot's memory may go. */
void tv_cache_unslot(tv_cache *c, uint64_t file, uint64_t off, tv_cache_handle *_Atomic *slot);
/* Inserts value (ownership passes to the cache; `deleter` frees it once no
 * longer cached nor referenced, or, if `deleter` is NULL, the value came
 * from tv_cache_alloc and goes back with tv_cache_dealloc) and returns a
 * referenced handle to it.  Returns NULL only on ENOMEM, after disposing
 * of value; a value from tv_cache_alloc carries room for its entry, so
 * inserting one allocates nothing and never fails. */
tv_cache_handle *tv_cache_insert(tv_cache *c, uint64_t file, uint64_t off,
                                 void *value, size_t charge,
                                 void (*deleter)(void *value));
void *tv_cache_value(tv_cache_handle *h);
void tv_cache_release(tv_cache *c, tv_cache_handle *h);

/* Memory for a value of n bytes (n > 0), 16-byte aligned: a buffer an
 * evicted value left behind when one of its size class waits, else new
 * memory.  NULL on ENOMEM.  Any thread may allocate and give back. */
void *tv_cache_alloc(tv_cache *c, size_t n);
/* Gives back memory from tv_cache_alloc (kept for reuse, or freed when the
 * cache already keeps enough).  NULL is ignored. */
void tv_cache_dealloc(tv_cache *c, void *p);
/* What a value of n bytes from tv_cache_alloc costs once cached: its size
 * class and malloc's header (or its whole pages, if mapped) and the
 * cache's entry.  The charge to insert it with. */
size_t tv_cache_charge(size_t n);

/* Counts `bytes` held elsewhere against the capacity (evicting entries to
 * make room at once), or stops counting them.  Reservations may exceed the
 * capacity; the cache then holds no entries nobody uses. */
void tv_cache_reserve(tv_cache *c, size_t bytes);
void tv_cache_unreserve(tv_cache *c, size_t bytes);

/* Everything the cache accounts for: entries, reservations and buffers
 * kept for reuse.  Never above the capacity unless reservations or
 * entries in use are. */
size_t tv_cache_usage(tv_cache *c);
size_t tv_cache_reserved(tv_cache *c);
uint64_t tv_cache_hits(tv_cache *c);
uint64_t tv_cache_misses(tv_cache *c);

#endif
