/*
 * block.h - the blocks a table is made of: sorted (internal key, value)
 * entries with prefix-compressed keys and restart points.
 *
 * A block is a run of entries, then an array of fixed32 restart offsets,
 * then a fixed32 count of them (docs/FORMAT.md).  Each entry stores how
 * many leading bytes its key shares with the previous key, the rest of
 * the key and the value.  At a restart point the key is stored whole, so
 * a reader can binary-search the restart points and scan at most one
 * restart interval.  Data blocks restart every 4 entries; index blocks
 * every entry.
 *
 * Keys are internal keys (ikey.h) and are ordered by tv_ikey_cmp.  Blocks
 * read from disk are hostile input: the reader checks every length and
 * offset against the block's bounds, and a malformed block makes the
 * iterator invalid with status TROVE_ECORRUPT.
 */
#ifndef TV_BLOCK_H
#define TV_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "../util/slice.h"
#include "iter.h"

/* Entries per restart point in data blocks.  A point lookup binary-searches
 * the restart keys and then scans one interval entry by entry, and each
 * ~128-byte entry it passes is a cache line of a block that is usually
 * not in the CPU cache.  4 instead of 16: a cached read of a 300k-key
 * table touches ~7 instead of ~10 lines of the data block outside a
 * 2 MiB cache (~13.5 instead of ~17 in all; callgrind's simulator, which
 * models no prefetching), for ~2% more table bytes (fewer shared
 * prefixes, a longer restart array). */
#define TV_BLOCK_RESTART_INTERVAL 4
/* Blocks index their entries with fixed32 offsets; the table builder
 * keeps every block far below this. */
#define TV_BLOCK_MAX_SIZE (UINT32_C(1) << 30)

/* ---- Building ---------------------------------------------------------- */

typedef struct tv_block_builder {
	tv_buf buf;      /* the entries so far */
	tv_buf restarts; /* fixed32 offsets of the restart points */
	tv_buf last_key; /* the key added last (kept across reset) */
	int interval;    /* entries per restart point */
	int counter;     /* entries since the last restart point */
	uint64_t entries;
} tv_block_builder;

/* interval >= 1. */
void tv_block_builder_init(tv_block_builder *b, int interval);
void tv_block_builder_free(tv_block_builder *b);
/* Appends an entry; key must sort after every key added since the last
 * reset (the caller checks).  0, TROVE_ENOMEM or TROVE_ETOOBIG (the block
 * would pass TV_BLOCK_MAX_SIZE); on error the block is unchanged. */
int tv_block_add(tv_block_builder *b, tv_slice key, tv_slice value);
/* Size of the block tv_block_finish would produce now. */
size_t tv_block_estimate(const tv_block_builder *b);
/* Appends the restart array and returns the finished block, which stays
 * valid until the next call on b; only tv_block_reset may follow.  0 or
 * TROVE_ENOMEM. */
int tv_block_finish(tv_block_builder *b, tv_slice *out);
/* Empties the block for reuse; the last key stays readable. */
void tv_block_reset(tv_block_builder *b);

static inline int tv_block_empty(const tv_block_builder *b)
{
	return b->entries == 0;
}

static inline tv_slice tv_block_last_key(const tv_block_builder *b)
{
	return tv_buf_slice(&b->last_key);
}

/* ---- Reading ----------------------------------------------------------- */

/* A parsed view of a block's bytes (which the view does not own). */
typedef struct tv_block {
	const char *data;
	/* The restart array: data + restarts, or a copy of it elsewhere
	 * (tv_block_move_restarts). */
	const char *ra;
	uint32_t restarts; /* offset of the restart array = end of entries */
	uint32_t nrestarts;
} tv_block;

/* Checks the restart array's framing (the first restart point must be
 * the first entry, at offset 0) and fills *b.  0 or TROVE_ECORRUPT (the
 * entries themselves are checked as they are read). */
int tv_block_parse(tv_block *b, const char *data, size_t size);
/* Copies b's restart array to `to` (room for b->nrestarts fixed32s),
 * which the block reads it from from then on, as long as b is used: a
 * copy kept next to the block's header is loaded with it. */
void tv_block_move_restarts(tv_block *b, char *to);

/* An iterator over a block, meant to live inside another structure (or on
 * the stack) so that a lookup allocates nothing: keys up to
 * TV_BLOCK_ITER_INLINE bytes are rebuilt in place.  It must not be copied
 * or moved once initialised, and the block's bytes must outlive it. */
#define TV_BLOCK_ITER_INLINE 512

typedef struct tv_block_iter {
	tv_iter base;
	tv_block blk;
	uint32_t cur;    /* offset of the current entry; blk.restarts if none */
	uint32_t next;   /* offset of the entry after it */
	uint32_t rindex; /* a restart point at or before cur (prev catches up) */
	int status;
	tv_slice key; /* into the block (whole keys) or into kbuf */
	tv_slice value;
	char *kbuf; /* kinline or a heap buffer of kcap bytes */
	size_t kcap;
	char kinline[TV_BLOCK_ITER_INLINE];
	/* Stepping backwards: the entries of the restart interval last
	 * decoded, with copies of their keys, so that prev within it costs no
	 * re-decoding (allocated on the first prev). */
	struct tv_block_prev *pc;
	uint32_t pc_n, pc_i; /* pc_i: the current entry's slot */
	size_t pc_cap;
	char *pc_keys;
	size_t pc_klen, pc_kcap;
} tv_block_iter;

/* Starts it over blk, unpositioned (invalid, status 0). */
void tv_block_iter_init(tv_block_iter *it, const tv_block *blk);
/* Points an initialised iterator at another block, keeping its buffer. */
void tv_block_iter_reset(tv_block_iter *it, const tv_block *blk);
/* Frees what init and use allocated (not the iterator itself). */
void tv_block_iter_fini(tv_block_iter *it);

/* The same iterator on the heap; destroy frees it.  NULL on ENOMEM. */
tv_iter *tv_block_iter_new(const tv_block *blk);

/* Direct calls for code that embeds a tv_block_iter (no indirection);
 * they keep the position in it->key and it->value and leave the tv_iter
 * face's published one alone.  A failed iterator is never valid (its
 * status says why). */
static inline int tv_block_iter_valid(const tv_block_iter *it)
{
	return it->cur < it->blk.restarts;
}
void tv_block_iter_seek_first(tv_block_iter *it);
void tv_block_iter_seek_last(tv_block_iter *it);
void tv_block_iter_seek(tv_block_iter *it, tv_slice target);
/* Positions it at the entry of restart point i (< blk.nrestarts): where a
 * caller that searched the restart keys by other means lands. */
void tv_block_iter_seek_restart(tv_block_iter *it, uint32_t i);
void tv_block_iter_next(tv_block_iter *it);
void tv_block_iter_prev(tv_block_iter *it);

#endif
