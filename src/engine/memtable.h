/*
 * memtable.h - the in-memory ordered table that takes every write first.
 *
 * A skip list of internal keys (see ikey.h) with their values, allocated
 * from an arena and freed all at once when the last reference goes (or
 * kept in a tv_mem_pool for the next memtable).
 * One thread writes (the commit leader, or recovery); any number of
 * threads read and iterate concurrently without locks: a node is fully
 * built before it is published with a release store, and readers follow
 * links with acquire loads.  Nothing is ever removed from a memtable.
 * A memtable with an index (tv_mem_new_filtered, tv_mem_new_pooled)
 * defers ordering: an add goes into the index and an unordered tail, and
 * the tail is linked into the skip list (folded) by the writer when it is
 * full or by whoever makes an iterator, under a mutex of the memtable
 * that no other path takes.
 */
#ifndef TV_MEMTABLE_H
#define TV_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/slice.h"
#include "iter.h"

typedef struct tv_memtable tv_memtable;
/* Storage of dropped memtables kept for new ones of the same size. */
typedef struct tv_mem_pool tv_mem_pool;

/* A new, empty memtable holding one reference; NULL on ENOMEM. */
tv_memtable *tv_mem_new(void);
/* The same with a bloom filter over its keys and a hash index from each
 * key to its newest entry, sized for a memtable of about expected_bytes
 * (1/64 and 1/16 of that, counted in tv_mem_usage): tv_mem_get answers
 * most absent keys from the filter and finds present ones through the
 * index, without a search of the skip list. */
tv_memtable *tv_mem_new_filtered(size_t expected_bytes);

/* A pool for memtables of about expected_bytes, holding one reference
 * (tv_mem_pool_unref drops it; each memtable made from the pool holds
 * another).  A dropped memtable leaves its filter, its index and its
 * arena blocks there for the next one, instead of giving them back to
 * the kernel for the next memtable to fault in again: the blocks only
 * while the pool's live memtables and the pool together hold less than
 * two memtables' worth (the most a writer's memtable and the one being
 * flushed hold), and one spare filter and index.  NULL on ENOMEM. */
tv_mem_pool *tv_mem_pool_new(size_t expected_bytes);
void tv_mem_pool_unref(tv_mem_pool *p);
/* Milliseconds without a new block for a memtable after which the pool
 * keeps blocks only while its live memtables and it hold less than one
 * memtable's worth. */
#define TV_MEM_POOL_IDLE_MS 1000
/* Called now and then (the timer thread), with the time now_ms: gives
 * back what the pool keeps beyond that once writes have stopped. */
void tv_mem_pool_trim_idle(tv_mem_pool *p, uint64_t now_ms);
/* Bytes the pool keeps now. */
size_t tv_mem_pool_usage(tv_mem_pool *p);
/* tv_mem_new_filtered of the pool's size, its storage from the pool. */
tv_memtable *tv_mem_new_pooled(tv_mem_pool *p);
void tv_mem_ref(tv_memtable *m);
void tv_mem_unref(tv_memtable *m);

/* Adds an entry.  `value` is stored as given (for TV_TYPE_PUT_EXP it
 * already begins with the 8-byte expiry).  (key, seq) must be new.
 * Single writer only.  Returns 0 or TROVE_ENOMEM. */
int tv_mem_add(tv_memtable *m, uint64_t seq, unsigned type, tv_slice key,
               tv_slice value);

/* tv_mem_add of a key whose tv_bloom_hash is hash.  With unresolved, the
 * entry's change to the live-key count is not yet known (its key's
 * previous state was not read): the entry is also added to the
 * memtable's list of unresolved entries, and seq must be no lower than
 * that of any unresolved entry added before (one batch's entries share
 * theirs).  Single writer only. */
int tv_mem_add_hashed(tv_memtable *m, uint64_t seq, unsigned type, tv_slice key, tv_slice value,
                      uint64_t hash, int unresolved);

/* The largest first byte of any user key added so far (0 if none; only
 * grows).  Any thread; it may lag behind the entries of an add under
 * way. */
unsigned tv_mem_top_byte(const tv_memtable *m);

/* Starts loading the filter line and the index slot that an add of the
 * key whose tv_bloom_hash is hash will write.  An add misses the cache
 * on both (random places in a few MiB); a writer that knows its next
 * keys issues this several adds ahead, so the misses overlap. */
void tv_mem_prefetch(const tv_memtable *m, uint64_t hash);

/* Works out the count change of one unresolved entry (stored key, its
 * sequence number and type) into *delta; 0 or an error.  older is the
 * type of the key's next older entry in the same memtable, or -1 if it has
 * none there (then the state before the entry is in older sources). */
typedef int (*tv_mem_resolve_fn)(void *arg, tv_slice key, uint64_t seq, unsigned type,
                                 int older, int *delta);

/* The total count change of the unresolved entries with sequence <= seq,
 * in *delta.  Entries not resolved before are resolved with fn, in
 * sequence order, and the results kept: fn is called once per entry over
 * the memtable's life, so it must answer the same whenever it is called
 * (the state before an entry never changes).  Any thread; resolvers take
 * turns.  0 or fn's error. */
int tv_mem_unresolved_delta(tv_memtable *m, uint64_t seq, tv_mem_resolve_fn fn, void *arg,
                            int64_t *delta);

/* The number of unresolved entries; the addresses of the first max of
 * them (in sequence order) go to keys[]: each is where its stored key
 * lies in the memtable, the data of the key slice a tv_mem_iter hands
 * out at that entry. */
size_t tv_mem_unresolved_keys(tv_memtable *m, const char **keys, size_t max);

/* Looks up the newest entry of `key` with sequence <= seq.  Returns 1 and
 * fills *type, *value (pointing into the memtable, valid while the caller
 * holds a reference) and *entry_seq; 0 if the memtable has no such entry. */
int tv_mem_get(tv_memtable *m, tv_slice key, uint64_t seq, unsigned *type,
               tv_slice *value, uint64_t *entry_seq);
/* tv_mem_get for a key whose hash, tv_bloom_hash(key), is known: a point
 * read hashes its key once for the memtables and the tables. */
int tv_mem_get_hashed(tv_memtable *m, tv_slice key, uint64_t hash, uint64_t seq,
                      unsigned *type, tv_slice *value, uint64_t *entry_seq);

/* tv_mem_get_hashed for the single writer, when it is about to add an
 * entry of key with a sequence number above seq.  In a memtable without an
 * index the search is remembered so that the next tv_mem_add, if it is for
 * that key, skips its own search (with an index, adds never search).
 * Writer only (it writes the splice that readers never touch). */
int tv_mem_get_for_write(tv_memtable *m, tv_slice key, uint64_t hash, uint64_t seq,
                         unsigned *type, tv_slice *value, uint64_t *entry_seq);

/* Bytes of memory the memtable holds (arena blocks, the filter, the
 * index, the tail and the list of unresolved entries). */
size_t tv_mem_usage(const tv_memtable *m);
/* Number of entries added. */
uint64_t tv_mem_entries(const tv_memtable *m);

/* An iterator over the entries in internal key order; it holds its own
 * reference to the memtable.  It sees every entry added before it was
 * made (making it folds the tail, so it may wait for a fold of up to a
 * tail's worth of entries); entries added later may or may not appear.
 * NULL on ENOMEM. */
tv_iter *tv_mem_iter(tv_memtable *m);
/* The same iterator built in mem (tv_mem_iter_size() bytes aligned for
 * any type, which must outlive it); destroying it frees nothing. */
tv_iter *tv_mem_iter_in(void *mem, tv_memtable *m);
size_t tv_mem_iter_size(void);

#endif
