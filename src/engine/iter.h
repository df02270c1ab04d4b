/*
 * iter.h - the internal iterator interface.
 *
 * Memtables, table blocks, whole tables, levels and merges of them all
 * present the same face: a position over a sequence of (internal key,
 * value) pairs ordered by tv_ikey_cmp.  Positioning never fails loudly: an
 * iterator that hits an error becomes invalid and reports the error from
 * `status`, so callers check status once when done.
 *
 * Every move publishes the new position in the iterator's own fields
 * (valid, key, value), so that a merge or a cursor reads it without an
 * indirect call per entry: only moves, status and destroy go through the
 * ops.  key and value stay valid until the iterator moves or is destroyed;
 * when the move also set `lasts`, value stays valid through the next next
 * or prev as well, so that a reader stepping on one entry need not copy
 * the value it may still want (a reverse cursor's candidate).  A move may
 * leave lasts 0 where working it out would cost (tables, and so merges
 * and levels, set it only on backward moves: prev and seek_last).
 */
#ifndef TV_ITER_H
#define TV_ITER_H

#include <assert.h>
#include <stddef.h>

#include "../util/slice.h"

typedef struct tv_iter tv_iter;

/* Each move must end with tv_iter_publish or tv_iter_unpublish. */
typedef struct tv_iter_ops {
	void (*seek_first)(tv_iter *it);
	void (*seek_last)(tv_iter *it);
	/* First entry >= target (an internal key). */
	void (*seek)(tv_iter *it, tv_slice target);
	void (*next)(tv_iter *it); /* requires valid */
	void (*prev)(tv_iter *it); /* requires valid */
	/* 0, or the first error met (TROVE_ECORRUPT, TROVE_EIO...). */
	int (*status)(tv_iter *it);
	void (*destroy)(tv_iter *it);
} tv_iter_ops;

struct tv_iter {
	const tv_iter_ops *ops;
	int valid;           /* positioned; never while status is nonzero */
	int lasts;           /* value outlives the next next or prev, when valid */
	tv_slice key, value; /* the current entry, when valid */
};

/* For implementations: the position after a move, with a value that
 * outlives the next next or prev only if lasts. */
static inline void tv_iter_publish_lasting(tv_iter *it, tv_slice key, tv_slice value, int lasts)
{
	it->valid = 1;
	it->lasts = lasts;
	it->key = key;
	it->value = value;
}
/* The same for a value whose bytes outlive every move (a memtable's). */
static inline void tv_iter_publish(tv_iter *it, tv_slice key, tv_slice value)
{
	tv_iter_publish_lasting(it, key, value, 1);
}
static inline void tv_iter_unpublish(tv_iter *it)
{
	it->valid = 0;
}

static inline int tv_iter_valid(tv_iter *it)
{
	return it->valid;
}
static inline void tv_iter_seek_first(tv_iter *it)
{
	it->ops->seek_first(it);
}
static inline void tv_iter_seek_last(tv_iter *it)
{
	it->ops->seek_last(it);
}
static inline void tv_iter_seek(tv_iter *it, tv_slice t)
{
	it->ops->seek(it, t);
}
static inline void tv_iter_next(tv_iter *it)
{
	it->ops->next(it);
}
static inline void tv_iter_prev(tv_iter *it)
{
	it->ops->prev(it);
}
static inline tv_slice tv_iter_key(tv_iter *it)
{
	assert(it->valid);
	return it->key;
}
static inline tv_slice tv_iter_value(tv_iter *it)
{
	assert(it->valid);
	return it->value;
}
static inline int tv_iter_value_lasts(tv_iter *it)
{
	assert(it->valid);
	return it->lasts;
}
static inline int tv_iter_status(tv_iter *it)
{
	return it->ops->status(it);
}
static inline void tv_iter_destroy(tv_iter *it)
{
	if (it)
		it->ops->destroy(it);
}

/* An iterator over nothing that reports `status` (0 for simply empty). */
tv_iter *tv_iter_empty(int status);

/* Merges n child iterators (ownership passes to the merge) into one
 * ordered sequence, in both directions.  Entries with equal internal keys
 * cannot occur (sequence numbers are unique).  Returns NULL on ENOMEM
 * (the children are destroyed then). */
tv_iter *tv_iter_merge(tv_iter **children, int n);
/* The same merge built in mem (tv_iter_merge_size(n) bytes aligned for any
 * type, which must outlive it); never NULL, and destroying it destroys the
 * children but frees nothing else.  For n < 2 mem is not used. */
tv_iter *tv_iter_merge_in(void *mem, tv_iter **children, int n);
size_t tv_iter_merge_size(int n);

/* n bytes rounded up so that what follows them in one allocation of
 * several iterators is aligned for any type. */
static inline size_t tv_iter_slot(size_t n)
{
	size_t a = _Alignof(max_align_t);
	return (n + a - 1) / a * a;
}

#endif
