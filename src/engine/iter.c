/*
 * iter.c - the iterators every source shares: the empty one and the merge.
 *
 * The merging iterator turns n sorted children (memtables, level-0 tables,
 * levels) into one sorted sequence, forwards and backwards.  The children
 * that are positioned sit in a binary heap keyed by their current internal
 * key: a min-heap while moving forwards, a max-heap while moving backwards,
 * so the current entry is always the heap's top.  Changing direction
 * repositions every other child around the current key (just after it for
 * next, just before it for prev) and rebuilds the heap, as LevelDB's
 * merging iterator does; moving on in the same direction costs one step of
 * one child and O(log n) comparisons.
 *
 * The merge never copies keys or values: the key and value it publishes
 * are the top child's.  It must never hide a child's error: when a child stops on an
 * error the merge becomes invalid too (rather than going on without that
 * child's entries), and status() reports the first child's error.
 */
#include "iter.h"

#include <assert.h>
#include <stdlib.h>

#include "ikey.h"
#include "trove.h"

/* ---- The empty iterator --------------------------------------------------- */

/* Empty iterators of the common statuses are shared, immutable objects, so
 * that tv_iter_empty(TROVE_ENOMEM) works when memory is short; the status
 * of one is minus its index in the table. */
#define EMPTY_SHARED 32

static void empty_move(tv_iter *it)
{
}
static void empty_seek(tv_iter *it, tv_slice target)
{
}

static int shared_status(tv_iter *it);

static const tv_iter_ops shared_empty_ops = {
        .seek_first = empty_move,
        .seek_last = empty_move,
        .seek = empty_seek,
        .next = empty_move,
        .prev = empty_move,
        .status = shared_status,
        .destroy = empty_move,
};

/* clang-format off */
#define EMPTY1 { &shared_empty_ops, 0, 0, {NULL, 0}, {NULL, 0} }
#define EMPTY4 EMPTY1, EMPTY1, EMPTY1, EMPTY1
#define EMPTY16 EMPTY4, EMPTY4, EMPTY4, EMPTY4
/* clang-format on */
static const tv_iter shared_empty[EMPTY_SHARED] = {EMPTY16, EMPTY16};

static int shared_status(tv_iter *it)
{
	return -(int)(it - shared_empty);
}

/* Any other status gets an iterator of its own. */
typedef struct own_empty {
	tv_iter base;
	int status;
} own_empty;

static int own_status(tv_iter *it)
{
	return ((own_empty *)it)->status;
}
static void own_destroy(tv_iter *it)
{
	free(it);
}

static const tv_iter_ops own_empty_ops = {
        .seek_first = empty_move,
        .seek_last = empty_move,
        .seek = empty_seek,
        .next = empty_move,
        .prev = empty_move,
        .status = own_status,
        .destroy = own_destroy,
};

/* Never NULL: an unusual status that cannot be allocated for is reported
 * as TROVE_ENOMEM. */
tv_iter *tv_iter_empty(int status)
{
	if (status <= 0 && status > -EMPTY_SHARED)
		return (tv_iter *)&shared_empty[-status];
	own_empty *e = malloc(sizeof *e);
	if (!e)
		return (tv_iter *)&shared_empty[-TROVE_ENOMEM];
	e->base.ops = &own_empty_ops;
	tv_iter_unpublish(&e->base);
	e->status = status;
	return &e->base;
}

/* ---- The merging iterator ------------------------------------------------- */

enum { FORWARD, REVERSE };

typedef struct heap_entry {
	tv_iter *it;
	tv_slice key; /* it's current key, cached for comparisons */
} heap_entry;

typedef struct merge_iter {
	tv_iter base;
	int n;      /* children */
	int nheap;  /* positioned children, in heap[0 .. nheap) */
	int dir;    /* FORWARD: min-heap; REVERSE: max-heap */
	int failed; /* a child stopped on an error: the merge is invalid */
	int second; /* heap index (1 or 2) of the entry after the top; 0: unknown */
	int on_heap; /* destroy frees it (tv_iter_merge, not tv_iter_merge_in) */
	heap_entry *heap;
	tv_iter *children[];
} merge_iter;

/* tv_ikey_cmp, small enough to be compiled into the heap's moves (as a
 * call it was about a quarter of a scan's merge; forced in line, as gcc
 * made it a call once a step's own check used it too): the user keys'
 * last bytes short of a word are read as one word, which the 8-byte
 * trailer after them keeps inside the key, and shifted down to those
 * bytes. */
static inline __attribute__((always_inline)) int heap_cmp(tv_slice a, tv_slice b)
{
	size_t la = a.len - TV_TRAILER, lb = b.len - TV_TRAILER;
	size_t n = la < lb ? la : lb;
	const char *p = a.data, *q = b.data;
	for (; n >= 8; p += 8, q += 8, n -= 8) {
		uint64_t x = tv_load_be64(p), y = tv_load_be64(q);
		if (x != y)
			return x < y ? -1 : 1;
	}
	if (n) {
		uint64_t x = tv_load_be64(p) >> (64 - 8 * n), y = tv_load_be64(q) >> (64 - 8 * n);
		if (x != y)
			return x < y ? -1 : 1;
	}
	if (la != lb)
		return la < lb ? -1 : 1;
	uint64_t ta = tv_get_fixed64(a.data + la), tb = tv_get_fixed64(b.data + lb);
	return ta > tb ? -1 : ta < tb ? 1 : 0;
}

/* True if a belongs above b in the heap of the current direction. */
static inline __attribute__((always_inline)) int above(const merge_iter *m, const heap_entry *a,
                                                       const heap_entry *b)
{
	int c = heap_cmp(a->key, b->key);
	assert(c != 0);
	return m->dir == FORWARD ? c < 0 : c > 0;
}

static void sift_down(merge_iter *m, int i)
{
	if (i <= 2)
		m->second = 0; /* heap[1] or heap[2] may change */
	heap_entry *h = m->heap;
	heap_entry e = h[i];
	for (;;) {
		int c = 2 * i + 1;
		if (c >= m->nheap)
			break;
		if (c + 1 < m->nheap && above(m, &h[c + 1], &h[c]))
			c++;
		if (!above(m, &h[c], &e))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = e;
}

/* Puts child `it` back after it moved: in the heap if it is positioned,
 * noting a failure if it stopped on an error. */
static void take(merge_iter *m, tv_iter *it)
{
	if (tv_iter_valid(it)) {
		heap_entry e = {it, tv_iter_key(it)};
		m->heap[m->nheap++] = e;
	} else if (tv_iter_status(it) != 0) {
		m->failed = 1;
	}
}

/* Rebuilds the heap from children repositioned for direction dir. */
static void rebuild(merge_iter *m, int dir)
{
	m->dir = dir;
	m->nheap = 0;
	m->failed = 0;
	m->second = 0;
	for (int i = 0; i < m->n; i++)
		take(m, m->children[i]);
	if (m->failed)
		m->nheap = 0;
	for (int i = m->nheap / 2 - 1; i >= 0; i--)
		sift_down(m, i);
}

/* The runner-up (heap[second]) comes before the top: they swap, and the
 * old top sinks below the runner-up's place. */
static void runner_up_takes_over(merge_iter *m)
{
	heap_entry *h = m->heap;
	int s = m->second;
	heap_entry e = h[0];
	h[0] = h[s];
	h[s] = e;
	m->second = 0;
	if (2 * s + 1 < m->nheap)
		sift_down(m, s);
}

/* After the top child moved one step: refreshes its place in the heap.
 * In a scan one child usually yields a run of entries: while its next key
 * still comes before the runner-up's (heap[1] or heap[2], remembered until
 * either changes), it stays on top after one comparison and no sift;
 * otherwise the runner-up, already known to be the next smallest, takes
 * the top without being compared again.  step_done takes the case of a
 * known runner-up itself; this is the rest (the top child ran out, or the
 * runner-up is to be found). */
static void fix_top(merge_iter *m)
{
	heap_entry *h = m->heap;
	if (!tv_iter_valid(h[0].it)) {
		if (tv_iter_status(h[0].it) != 0)
			m->failed = 1;
		h[0] = h[--m->nheap];
		if (m->failed)
			m->nheap = 0;
		else if (m->nheap > 1)
			sift_down(m, 0);
		return;
	}
	h[0].key = tv_iter_key(h[0].it);
	if (m->nheap == 1)
		return;
	if (!m->second)
		m->second = m->nheap == 2 || above(m, &h[1], &h[2]) ? 1 : 2;
	if (!above(m, &h[0], &h[m->second]))
		runner_up_takes_over(m);
}

/* Publishes the top child's entry as the merge's position.  After a
 * backward move its value lasts as the child's does: the next next or
 * prev moves that child alone (a turn moves the others, then steps it).
 * Forward moves leave that unsaid: only reverse cursors ask. */
static void publish(merge_iter *m, int backward)
{
	if (m->nheap > 0)
		tv_iter_publish_lasting(&m->base, m->heap[0].key, m->heap[0].it->value,
		                        backward && m->heap[0].it->lasts);
	else
		tv_iter_unpublish(&m->base);
}

static void merge_seek_first(tv_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		tv_iter_seek_first(m->children[i]);
	rebuild(m, FORWARD);
	publish(m, 0);
}

static void merge_seek_last(tv_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		tv_iter_seek_last(m->children[i]);
	rebuild(m, REVERSE);
	publish(m, 1);
}

static void merge_seek(tv_iter *it, tv_slice target)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		tv_iter_seek(m->children[i], target);
	rebuild(m, FORWARD);
	publish(m, 0);
}

/* Moves every child but the current one to its first entry after the
 * current key (internal keys are unique, so a seek lands past it). */
static void turn_forward(merge_iter *m)
{
	tv_iter *cur = m->heap[0].it;
	tv_slice key = m->heap[0].key; /* stays valid: cur does not move */
	for (int i = 0; i < m->n; i++) {
		if (m->children[i] != cur)
			tv_iter_seek(m->children[i], key);
	}
	rebuild(m, FORWARD);
}

/* Moves every child but the current one to its last entry before the
 * current key.  A memtable child can gain entries between the seek and the
 * step back (the commit leader writes it while cursors read it), so the
 * step back may land at or past the key: keep stepping until below it, or
 * the heap would put that child on top and the merge would not move. */
static void turn_reverse(merge_iter *m)
{
	tv_iter *cur = m->heap[0].it;
	tv_slice key = m->heap[0].key;
	for (int i = 0; i < m->n; i++) {
		tv_iter *c = m->children[i];
		if (c == cur)
			continue;
		tv_iter_seek(c, key);
		if (tv_iter_valid(c))
			tv_iter_prev(c);
		else if (tv_iter_status(c) == 0)
			tv_iter_seek_last(c);
		while (tv_iter_valid(c) && tv_ikey_cmp(tv_iter_key(c), key) >= 0)
			tv_iter_prev(c);
	}
	rebuild(m, REVERSE);
}

/* Ends a step of the top child: its place in the heap, then the merge's
 * position.  The common case is decided here, in line in the step (as a
 * call, fix_top's register saves and restores were a fifth of it): the
 * runner-up is known and the top child, still positioned, is compared
 * with it alone. */
static inline __attribute__((always_inline)) void step_done(merge_iter *m, int backward)
{
	tv_iter *top = m->heap[0].it;
	int s = m->second;
	if (s && s < m->nheap && top->valid) {
		m->heap[0].key = top->key;
		int c = heap_cmp(top->key, m->heap[s].key);
		assert(c != 0);
		if (backward ? c < 0 : c > 0)
			runner_up_takes_over(m);
	} else {
		fix_top(m);
	}
	publish(m, backward);
}

static void merge_next(tv_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	assert(m->nheap > 0);
	if (m->dir != FORWARD) {
		turn_forward(m);
		if (m->nheap == 0) {
			publish(m, 0);
			return;
		}
	}
	tv_iter_next(m->heap[0].it);
	step_done(m, 0);
}

static void merge_prev(tv_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	assert(m->nheap > 0);
	if (m->dir != REVERSE) {
		turn_reverse(m);
		if (m->nheap == 0) {
			publish(m, 1);
			return;
		}
	}
	tv_iter_prev(m->heap[0].it);
	step_done(m, 1);
}

static int merge_status(tv_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++) {
		int rc = tv_iter_status(m->children[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static void merge_destroy(tv_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		tv_iter_destroy(m->children[i]);
	if (m->on_heap)
		free(m);
}

static const tv_iter_ops merge_ops = {
        .seek_first = merge_seek_first,
        .seek_last = merge_seek_last,
        .seek = merge_seek,
        .next = merge_next,
        .prev = merge_prev,
        .status = merge_status,
        .destroy = merge_destroy,
};

size_t tv_iter_merge_size(int n)
{
	assert(n >= 0);
	return sizeof(merge_iter) + (size_t)n * (sizeof(tv_iter *) + sizeof(heap_entry));
}

tv_iter *tv_iter_merge(tv_iter **children, int n)
{
	assert(n >= 0);
	if (n <= 1)
		return n ? children[0] : tv_iter_empty(0);
	void *mem = malloc(tv_iter_merge_size(n));
	if (!mem) {
		for (int i = 0; i < n; i++)
			tv_iter_destroy(children[i]);
		return NULL;
	}
	tv_iter *it = tv_iter_merge_in(mem, children, n);
	((merge_iter *)it)->on_heap = 1;
	return it;
}

tv_iter *tv_iter_merge_in(void *mem, tv_iter **children, int n)
{
	assert(n >= 0);
	if (n <= 1)
		return n ? children[0] : tv_iter_empty(0);
	size_t kids = (size_t)n * sizeof(tv_iter *);
	merge_iter *m = mem;
	m->base.ops = &merge_ops;
	m->on_heap = 0;
	tv_iter_unpublish(&m->base);
	m->n = n;
	m->nheap = 0;
	m->dir = FORWARD;
	m->failed = 0;
	m->second = 0;
	for (int i = 0; i < n; i++) {
		assert(children[i]);
		m->children[i] = children[i];
	}
	m->heap = (heap_entry *)((char *)m->children + kids);
	return &m->base;
}
