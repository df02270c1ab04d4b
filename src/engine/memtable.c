/*
 * memtable.c - the skip list that takes every write before it reaches a table.
 *
 * Entries live in a skip list (at most 12 levels, a node climbs a level with
 * probability 1/4) carved from a tv_arena and freed all at once with the
 * memtable, or, for a memtable made from a pool, left there (arena blocks,
 * filter and index) for the next memtable to reuse instead of faulting in
 * fresh pages (the blocks of two memtables while writes go on, of one once
 * they stop).  One linker at a time links nodes in (the writer, or in a
 * memtable with a tail whoever folds it, see below); any number of readers
 * walk the list at the same time without locks.  The writer fills a node
 * completely; the linker publishes it bottom level first with release
 * stores; readers follow links with acquire loads, so a reader that
 * reaches a node sees all of it.  A node that is reachable at level i is
 * already reachable at level 0, so a reader descending levels never
 * misses a published node.
 *
 * Level 0 is also linked backwards, so an iterator steps back in O(1)
 * instead of searching from the top.  The back link of a node is set
 * before the node is published and the back link of its successor right
 * after, so a reader stepping back may miss a node being linked in at
 * that moment; such a node carries a sequence number newer than every
 * snapshot a reader can hold (in a memtable with a tail: its iterator's
 * own fold linked every node of its snapshot), so no reader is owed it.
 *
 * This module must never unlink, move or change a published node (readers
 * hold plain pointers into it), never allocate from the arena outside the
 * single writer, and never take a lock on the skip list's read paths.
 *
 * A memtable made with an expected size also has a hash index: a table of
 * chains, one slot per INDEX_RATIO bytes of that size, leading from a user
 * key's hash to the key's newest node, and each node to its key's next
 * older one (its `older` link).  A point read then costs the slot and a
 * node or two instead of a skip-list search (~25 dependent cache misses at
 * 200k entries).  A node newer than every entry of its key takes its key's
 * place in the chain (the node it replaces keeps its chain link, so a
 * reader standing on it walks on); a node is never removed.
 *
 * Such a memtable also defers ordering.  The writer fills a node, sets its
 * filter bits and publishes it in the index, then appends it to the *tail*,
 * an array of nodes not yet in the skip list, instead of searching for its
 * place (that search was half of a random put's time).  A *fold* sorts the
 * tail by key and links its nodes into the skip list in ascending order,
 * each search starting from the place of the one before (a step or two
 * when the run is dense); a long run in several parts whose searches take
 * turns, so that their cache misses overlap.  Folds happen when the tail is full (the writer
 * folds, so the tail stays within tail_cap nodes) and when an iterator is
 * made (it must see every entry added before it, which includes every
 * entry of its reader's snapshot, since sequence numbers are published
 * after their entries).  Whoever folds holds the fold lock `fmu`: the skip
 * list keeps a single linker at a time, and its readers take no lock.
 * Entries the memtable gets at a lower sequence number than ones it holds
 * (recovery of two logs) go into the older chain at their place.
 *
 * Beside the skip list, a memtable keeps the list of its *unresolved*
 * entries: writes made without reading the key's previous state (see
 * "Counting keys exactly" in docs/ENGINE.md), in sequence order, with the
 * change each one made to the live-key count once a resolver has worked it
 * out.  That list is off the read path and has its own mutexes.
 *
 * Layout of one entry in the arena (8-byte aligned), for a node of height h:
 *
 *   [link h-1] ... [link 1] | [link 0][back][chain][older][prefix][trailer][klen][vlen]
 *   [user key][trailer: fixed64 (seq << 8 | type)][value]
 *
 * A node pointer points at its level-0 link; higher levels lie just below
 * it, so the node needs no height field and its key bytes follow the header
 * in the same cache line or the next.  The internal key (user key + trailer)
 * is contiguous, so iterators hand it out as one slice.  The header caches
 * the first 8 key bytes as a big-endian integer and the trailer as a native
 * integer: most comparisons are decided by one integer compare.
 */
#include "memtable.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../util/arena.h"
#include "../util/grow.h"
#include "bloom.h"
#include "ikey.h"
#include "trove.h"

#define MAX_HEIGHT 12
/* The filter gets one byte per FILTER_RATIO bytes of the memtable's
 * expected size: 8 bits per 64 bytes, and an entry takes at least ~60
 * bytes of arena (header, key, trailer), so at least ~8 bits per key
 * (about 2% false positives with 6 probes), ~20 for 100-byte values. */
#define FILTER_RATIO 64
#define FILTER_K 6
/* The hash index gets one 8-byte slot per INDEX_RATIO bytes of the
 * memtable's expected size (1/16 of it): for 100-byte values, about 1.3
 * slots per entry, so a read visits ~1.4 nodes of its chain. */
#define INDEX_RATIO 128

typedef struct node node;
typedef _Atomic(node *) link_t;
struct node {
	link_t next0;     /* level 0; level i lies i links below (see link()) */
	link_t back;      /* the previous node at level 0 (the head: none) */
	link_t chain;     /* the next key's newest node in the index slot */
	link_t older;     /* the next older entry of the same key (indexed only) */
	uint64_t prefix;  /* first 8 user-key bytes, big-endian, 0-padded */
	uint64_t trailer; /* (seq << 8) | type */
	uint32_t klen;    /* user key bytes */
	uint32_t vlen;    /* value bytes */
	char data[];      /* user key, trailer (fixed64), value */
};

struct tv_memtable {
	atomic_uint refs;
	atomic_int height; /* levels in use; only grows */
	atomic_uint_least64_t entries;
	/* The largest first byte of a user key added (0 if none): only grows,
	 * stored (relaxed) before the entry is added. */
	atomic_uchar top_byte;
	node *head; /* sentinel with MAX_HEIGHT links, no key */
	tv_arena arena;
	/* A blocked bloom filter over the user keys (bloom.h's layout), or
	 * NULL: a lookup of an absent key then skips the skip list, whose
	 * search costs a cache miss per node visited.  The writer sets a
	 * key's bits before linking its node in, and a reader only looks for
	 * entries published before its sequence number was, so it never
	 * misses one it must see. */
	_Atomic uint64_t *filter;
	uint64_t filter_lines;
	/* The hash index (mapped, zero-filled), or NULL: index[slot] heads a
	 * chain of nodes, one per user key, each its key's newest.  The
	 * writer publishes a node in it with a release store after linking
	 * the node into the skip list. */
	link_t *index;
	uint64_t index_slots;
	tv_mem_pool *pool; /* where the storage came from and goes, or NULL */
	/* Writer-only state. */
	uint64_t rng;
	/* The linker's state (the writer's, or under fmu the folder's in a
	 * memtable with a tail).  splice[i]: the last node at level i before
	 * one position in the list (head at levels >= height): the position
	 * after the node linked last, or the one the writer's last search
	 * found.  Lets an ascending run of keys, and the add that follows a
	 * search for its key, be placed without a search from the top. */
	node *splice[MAX_HEIGHT];
	/* The tail (indexed memtables only): nodes published in the index but
	 * not yet linked into the skip list.  The writer fills tail[ntail] and
	 * raises ntail (release); tail[0..folded) are linked.  Under fmu a
	 * folder links tail[folded..ntail) and raises folded; only the writer,
	 * under fmu, empties the tail (both back to 0). */
	pthread_mutex_t fmu;
	struct pending *tail;
	size_t tail_cap;
	atomic_size_t ntail, folded;
	/* Unresolved entries: their nodes, in sequence order.  The writer
	 * fills unres[nunres] and publishes it by raising nunres (release); it
	 * moves the array only under umu, and resolvers read it under umu.
	 * rmu lets one resolver at a time extend `sums`, where sums[i] is the
	 * count change of entries 0..i. */
	pthread_mutex_t umu, rmu;
	node **unres;
	atomic_size_t nunres;
	size_t capunres;
	int64_t *sums;
	size_t nsums, capsums;
	atomic_size_t unres_bytes; /* both arrays' allocations */
};

/* A key to search for, split the way nodes store theirs. */
typedef struct skey {
	uint64_t prefix;
	uint64_t trailer;
	const char *key;
	size_t klen;
} skey;

/* A node of the tail, with what a fold sorts it by: the user key's first
 * 16 bytes as two big-endian integers (zero-padded), so that most
 * comparisons never touch the node. */
typedef struct pending {
	uint64_t p0, p1;
	node *n;
	int height;
} pending;

/* The tail holds at most this many nodes (32 bytes each), and at most
 * 1/TAIL_RATIO of the memtable's expected size (as much as the index), so
 * that a small memtable is not mostly tail; then the writer folds it.  A
 * larger tail makes a fold's run of keys denser (cheaper per node) but a
 * fold longer for the iterator that pays it.  Measured on
 * random 16-byte keys into ~400k entries, 4096 left the writer ~40% more
 * time per put than 16384; 65536 and 262144 saved little more. */
#define TAIL_MAX 16384
#define TAIL_RATIO 16

/* ---- Keys ------------------------------------------------------------- */

static inline const char *node_data(const node *n)
{
	return n->data;
}

static inline uint64_t node_seq(const node *n)
{
	return n->trailer >> 8;
}

/* The link of n at `level`; the node must be at least level+1 high.  The
 * arithmetic stays inside the arena block the node was carved from. */
static inline link_t *link(const node *n, int level)
{
	return (link_t *)((char *)n - (size_t)level * sizeof(link_t));
}

/* The first 8 bytes of key as a big-endian integer, zero-padded: comparing
 * two prefixes as integers orders keys as memcmp would, except that equal
 * prefixes may still hide different keys. */
static inline uint64_t key_prefix(const char *key, size_t len)
{
	if (len >= 8)
		return tv_load_be64(key); /* no copy of a variable length */
	char b[8] = {0};
	if (len)
		memcpy(b, key, len);
	return tv_load_be64(b);
}

static inline skey make_skey(const char *key, size_t klen, uint64_t trailer)
{
	skey k = {key_prefix(key, klen), trailer, key, klen};
	return k;
}

static inline skey node_skey(const node *n)
{
	skey k = {n->prefix, n->trailer, node_data(n), n->klen};
	return k;
}

/* tv_ikey_cmp of n's internal key against k: negative if n sorts first.
 * Equal prefixes mean the first min(8, lengths) bytes are equal, so only
 * bytes past the eighth are left to compare, and a shorter key that ends
 * within them is a proper prefix of the other. */
static inline int cmp_node(const node *n, const skey *k)
{
	if (n->prefix != k->prefix)
		return n->prefix < k->prefix ? -1 : 1;
	size_t nl = n->klen, kl = k->klen;
	size_t min = nl < kl ? nl : kl;
	if (min > 8) {
		int r = tv_cmp_bytes(node_data(n) + 8, k->key + 8, min - 8);
		if (r)
			return r;
	}
	if (nl != kl)
		return nl < kl ? -1 : 1;
	if (n->trailer != k->trailer)
		return n->trailer > k->trailer ? -1 : 1;
	return 0;
}

/* True if n's user key equals the key of k (trailers ignored). */
static inline int same_user_key(const node *n, const skey *k)
{
	return n->prefix == k->prefix && n->klen == k->klen &&
	       (k->klen <= 8 || tv_cmp_bytes(node_data(n) + 8, k->key + 8, k->klen - 8) == 0);
}

/* ---- Searching (any thread) ------------------------------------------- */

static inline node *load_next(const node *x, int level)
{
	return atomic_load_explicit(link(x, level), memory_order_acquire);
}

static inline int cur_height(const tv_memtable *m)
{
	return atomic_load_explicit(&((tv_memtable *)m)->height, memory_order_relaxed);
}

/* The first node >= k, or NULL.  If prev is not NULL, prev[i] receives the
 * last node < k at each level i below the current height.  `bound` is a
 * node already found >= k one level up: meeting it again ends the level
 * without comparing it twice.  Each node compared is usually a cache
 * miss, and so is the first one the search meets a level down: while it
 * compares x's successor it starts loading what a compare reads of x's
 * successor one level down (x's links are in the cache), so that a step
 * down does not wait for it in turn. */
static node *find_ge(const tv_memtable *m, const skey *k, node **prev)
{
	node *x = m->head, *bound = NULL;
	int level = cur_height(m) - 1;
	for (;;) {
		node *next = load_next(x, level);
		node *down = level > 0 ? load_next(x, level - 1) : NULL;
		if (down && down != next) {
			__builtin_prefetch(&down->prefix);
			__builtin_prefetch(down->data + 8);
		}
		if (next && next != bound && cmp_node(next, k) < 0) {
			x = next;
			continue;
		}
		if (prev)
			prev[level] = x;
		if (level == 0)
			return next;
		bound = next;
		level--;
	}
}

/* The last node, or the head if the list is empty. */
static node *find_last(const tv_memtable *m)
{
	node *x = m->head;
	for (int level = cur_height(m) - 1; level >= 0; level--) {
		node *next;
		while ((next = load_next(x, level)) != NULL)
			x = next;
	}
	return x;
}

/* ---- The filter -------------------------------------------------------- */

/* The line of the filter that key hash h selects (bloom.h's layout). */
static _Atomic uint64_t *filter_line(const tv_memtable *m, uint64_t h)
{
	return m->filter + tv_bloom_line(h, m->filter_lines) * (TV_BLOOM_LINE_BYTES / 8);
}

/* Sets the bits of the key whose hash is h.  Single writer: a plain
 * read-modify-write of each word suffices; readers load the words
 * relaxed. */
static void filter_add(tv_memtable *m, uint64_t h)
{
	_Atomic uint64_t *line = filter_line(m, h);
	uint32_t g = (uint32_t)(h >> 32), d = tv_bloom_delta(g);
	for (int j = 0; j < FILTER_K; j++, g += d) {
		uint32_t bit = g & (TV_BLOOM_LINE_BITS - 1);
		uint64_t w = atomic_load_explicit(&line[bit >> 6], memory_order_relaxed);
		atomic_store_explicit(&line[bit >> 6], w | UINT64_C(1) << (bit & 63),
		                      memory_order_relaxed);
	}
}

/* 0 if the key whose hash is h was certainly never added. */
static int filter_may_contain(const tv_memtable *m, uint64_t h)
{
	const _Atomic uint64_t *line = filter_line(m, h);
	uint32_t g = (uint32_t)(h >> 32), d = tv_bloom_delta(g);
	for (int j = 0; j < FILTER_K; j++, g += d) {
		uint32_t bit = g & (TV_BLOOM_LINE_BITS - 1);
		if (!(atomic_load_explicit(&line[bit >> 6], memory_order_relaxed) &
		      UINT64_C(1) << (bit & 63)))
			return 0;
	}
	return 1;
}

/* ---- The hash index ---------------------------------------------------- */

/* The slot that key hash h selects: its high 32 bits, multiply-shifted
 * onto [0, index_slots) (the filter picks its line with the low ones). */
static link_t *index_slot(const tv_memtable *m, uint64_t h)
{
	return &m->index[((h >> 32) * m->index_slots) >> 32];
}

/* The newest node of k's user key in the chain of slot `at`, or NULL;
 * *atp receives the link that points at it.  Single writer: the chain is
 * walked with relaxed loads. */
static node *index_find(link_t *at, const skey *k, link_t **atp)
{
	node *e;
	while ((e = atomic_load_explicit(at, memory_order_relaxed)) != NULL && !same_user_key(e, k))
		at = &e->chain;
	*atp = at;
	return e;
}

/* Publishes n (of key hash h) in the index: as its key's newest node if it
 * is newer than every entry of its key, else in the key's older chain at
 * its place.  `known` is 0 if the filter says the memtable held no entry
 * of the key, so the chain need not be walked.  Single writer; n is
 * published with a release store, so a reader that reaches n sees it
 * whole, links included. */
static void index_add(tv_memtable *m, uint64_t h, node *n, int known)
{
	skey k = node_skey(n);
	link_t *at = index_slot(m, h);
	node *e = known ? index_find(at, &k, &at) : NULL;
	if (!e)
		at = index_slot(m, h); /* a new key goes first in its chain */
	else if (e->trailer > n->trailer) {
		/* an older entry added late (recovery): after the last newer one */
		node *o;
		while ((o = atomic_load_explicit(&e->older, memory_order_relaxed)) != NULL &&
		       o->trailer > n->trailer)
			e = o;
		atomic_store_explicit(&n->older, o, memory_order_relaxed);
		atomic_store_explicit(&e->older, n, memory_order_release);
		return;
	}
	/* n replaces e, which keeps its chain link for readers standing on it */
	atomic_store_explicit(&n->older, e, memory_order_relaxed);
	node *rest = atomic_load_explicit(e ? &e->chain : at, memory_order_relaxed);
	atomic_store_explicit(&n->chain, rest, memory_order_relaxed);
	atomic_store_explicit(at, n, memory_order_release);
}

/* The newest entry of k's user key that k's trailer allows, found
 * through the index: the key's newest node, then along its older links
 * past entries too new for k.  NULL if there is none. */
static node *index_get(const tv_memtable *m, uint64_t h, const skey *k)
{
	node *n = atomic_load_explicit(index_slot(m, h), memory_order_acquire);
	while (n && !same_user_key(n, k))
		n = atomic_load_explicit(&n->chain, memory_order_acquire);
	while (n && n->trailer > k->trailer)
		n = atomic_load_explicit(&n->older, memory_order_acquire);
	return n;
}

/* ---- Storage ----------------------------------------------------------- */

/* The filter lines and the index slots of a memtable of about
 * expected_bytes. */
static uint64_t filter_lines_for(size_t expected_bytes)
{
	uint64_t bytes = expected_bytes / FILTER_RATIO;
	uint64_t lines = bytes < TV_BLOOM_LINE_BYTES ? 1 : bytes / TV_BLOOM_LINE_BYTES;
	return lines > UINT32_MAX ? UINT32_MAX : lines; /* tv_bloom_line maps 32-bit hashes */
}

static uint64_t index_slots_for(size_t expected_bytes)
{
	uint64_t slots = expected_bytes / INDEX_RATIO;
	return slots < 1 ? 1 : slots > UINT32_MAX ? UINT32_MAX : slots;
}

/* Entries in the tail of a memtable of about expected_bytes. */
static size_t tail_cap_for(size_t expected_bytes)
{
	size_t n = expected_bytes / TAIL_RATIO / sizeof(pending);
	return n < 16 ? 16 : n > TAIL_MAX ? TAIL_MAX : n;
}

static size_t filter_bytes(const tv_memtable *m)
{
	return (size_t)m->filter_lines * TV_BLOOM_LINE_BYTES;
}

static size_t index_bytes(const tv_memtable *m)
{
	return (size_t)m->index_slots * sizeof(link_t);
}

static size_t tail_bytes(const tv_memtable *m)
{
	return m->tail_cap * sizeof(pending);
}

/* Maps n zeroed bytes into *out: the index and the tail are mapped, not
 * malloc'd, so their pages come back to the kernel with the memtable, like
 * its arena, and freeing them never raises glibc's mmap threshold (after
 * which its heaps keep MiBs of free memory; see "Memory" in
 * docs/ENGINE.md).  0 or TROVE_ENOMEM. */
static int map_part(size_t n, void *out)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return TROVE_ENOMEM;
	memcpy(out, &p, sizeof p);
	return 0;
}

/* Allocates the empty filter.  0 or TROVE_ENOMEM. */
static int filter_alloc(tv_memtable *m)
{
	m->filter = aligned_alloc(TV_BLOOM_LINE_BYTES, filter_bytes(m));
	if (!m->filter)
		return TROVE_ENOMEM;
	memset(m->filter, 0, filter_bytes(m));
	return 0;
}

/* ---- The pool ---------------------------------------------------------- */

/* The storage of dropped memtables, kept for the next ones: arena blocks
 * (util/arena.h's pool) and one spare filter and index.  Every memtable
 * made from the pool holds a reference to it, so the pool outlives them
 * whatever order they are dropped in. */
struct tv_mem_pool {
	atomic_uint refs;
	size_t expected_bytes;
	tv_arena_pool blocks;
	pthread_mutex_t mu;
	_Atomic uint64_t *filter;         /* a spare, or NULL */
	link_t *index;                    /* a spare, or NULL */
	pending *tail;                    /* a spare, or NULL */
	size_t filter_bytes, index_bytes, tail_bytes; /* of every memtable of the pool */
};

tv_mem_pool *tv_mem_pool_new(size_t expected_bytes)
{
	tv_mem_pool *p = malloc(sizeof *p);
	if (!p)
		return NULL;
	atomic_init(&p->refs, 1);
	p->expected_bytes = expected_bytes;
	p->filter_bytes = (size_t)filter_lines_for(expected_bytes) * TV_BLOOM_LINE_BYTES;
	p->index_bytes = (size_t)index_slots_for(expected_bytes) * sizeof(link_t);
	/* The blocks kept and the blocks of live memtables stay within the
	 * two memtables' budget less two filters, indexes and tails (the
	 * current memtable's and the immutable or the spare ones): the
	 * blocks of a flushed memtable are kept for the growth of the next
	 * ones, so that a write burst faults in fresh pages only until two
	 * memtables' worth are mapped.  Once writes stop (no block taken for
	 * TV_MEM_POOL_IDLE_MS, tv_mem_pool_trim_idle), one memtable's budget
	 * less those parts: the current memtable and the pool then hold no
	 * more than one full memtable through the read phases. */
	size_t parts = 2 * (p->filter_bytes + p->index_bytes +
	                    tail_cap_for(expected_bytes) * sizeof(pending));
	tv_arena_pool_init(&p->blocks, 2 * expected_bytes > parts ? 2 * expected_bytes - parts : 0,
	                   expected_bytes > parts ? expected_bytes - parts : 0);
	pthread_mutex_init(&p->mu, NULL);
	p->tail_bytes = tail_cap_for(expected_bytes) * sizeof(pending);
	p->filter = NULL;
	p->index = NULL;
	p->tail = NULL;
	return p;
}

void tv_mem_pool_unref(tv_mem_pool *p)
{
	if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (p->index)
		munmap(p->index, p->index_bytes);
	if (p->tail)
		munmap(p->tail, p->tail_bytes);
	free(p->filter);
	tv_arena_pool_destroy(&p->blocks);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void tv_mem_pool_trim_idle(tv_mem_pool *p, uint64_t now_ms)
{
	tv_arena_pool_trim_idle(&p->blocks, now_ms, TV_MEM_POOL_IDLE_MS);
}

size_t tv_mem_pool_usage(tv_mem_pool *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = (p->filter ? p->filter_bytes : 0) + (p->index ? p->index_bytes : 0) +
	           (p->tail ? p->tail_bytes : 0);
	pthread_mutex_unlock(&p->mu);
	return n + tv_arena_pool_spare(&p->blocks);
}

/* Gives m's filter, index and tail to its pool if it has no spare ones,
 * and frees what it does not keep. */
static void put_parts(tv_memtable *m)
{
	tv_mem_pool *p = m->pool;
	if (p) {
		pthread_mutex_lock(&p->mu);
		if (!p->filter && m->filter) {
			p->filter = m->filter;
			m->filter = NULL;
		}
		if (!p->index && m->index) {
			p->index = m->index;
			m->index = NULL;
		}
		if (!p->tail && m->tail) {
			p->tail = m->tail;
			m->tail = NULL;
		}
		pthread_mutex_unlock(&p->mu);
	}
	free(m->filter);
	if (m->index)
		munmap(m->index, index_bytes(m));
	if (m->tail)
		munmap(m->tail, tail_bytes(m));
}

/* Gives m an empty filter and index and a tail: its pool's spare ones if
 * it has them, zeroed (a few MiB written at once cost less than faulting
 * in as many fresh pages; a tail needs no zeroing), or new ones.  0 or
 * TROVE_ENOMEM. */
static int get_parts(tv_memtable *m)
{
	tv_mem_pool *p = m->pool;
	if (p) {
		pthread_mutex_lock(&p->mu);
		m->filter = p->filter;
		m->index = p->index;
		m->tail = p->tail;
		p->filter = NULL;
		p->index = NULL;
		p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		if (m->filter)
			memset(m->filter, 0, filter_bytes(m));
		if (m->index)
			memset(m->index, 0, index_bytes(m));
	}
	if (!m->filter && filter_alloc(m))
		return TROVE_ENOMEM;
	if (!m->index && map_part(index_bytes(m), &m->index))
		return TROVE_ENOMEM;
	return m->tail ? 0 : map_part(tail_bytes(m), &m->tail);
}

/* ---- Life cycle -------------------------------------------------------- */

/* A memtable with a filter and an index for about expected_bytes (none if
 * 0), its storage from pool p if not NULL. */
static tv_memtable *make(size_t expected_bytes, tv_mem_pool *p)
{
	tv_memtable *m = malloc(sizeof *m);
	if (!m)
		return NULL;
	m->filter = NULL;
	m->filter_lines = 0;
	m->index = NULL;
	m->index_slots = 0;
	m->pool = p;
	if (p)
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	tv_arena_init_pooled(&m->arena, p ? &p->blocks : NULL);
	char *mem = NULL;
	if (expected_bytes) {
		m->filter_lines = filter_lines_for(expected_bytes);
		m->index_slots = index_slots_for(expected_bytes);
	}
	m->tail = NULL;
	m->tail_cap = expected_bytes ? tail_cap_for(expected_bytes) : 0;
	if (!expected_bytes || !get_parts(m))
		mem = tv_arena_alloc(&m->arena, (MAX_HEIGHT - 1) * sizeof(link_t) + sizeof(node));
	if (!mem) {
		tv_arena_destroy(&m->arena);
		put_parts(m);
		tv_mem_pool_unref(p);
		free(m);
		return NULL;
	}
	m->head = (node *)(mem + (MAX_HEIGHT - 1) * sizeof(link_t));
	memset(m->head, 0, sizeof(node));
	atomic_init(&m->head->back, NULL);
	for (int i = 0; i < MAX_HEIGHT; i++) {
		atomic_init(link(m->head, i), NULL);
		m->splice[i] = m->head;
	}
	pthread_mutex_init(&m->umu, NULL);
	pthread_mutex_init(&m->rmu, NULL);
	pthread_mutex_init(&m->fmu, NULL);
	atomic_init(&m->ntail, 0);
	atomic_init(&m->folded, 0);
	m->unres = NULL;
	atomic_init(&m->nunres, 0);
	m->capunres = 0;
	m->sums = NULL;
	m->nsums = m->capsums = 0;
	atomic_init(&m->unres_bytes, 0);
	atomic_init(&m->refs, 1);
	atomic_init(&m->height, 1);
	atomic_init(&m->entries, 0);
	atomic_init(&m->top_byte, 0);
	m->rng = 0x9e3779b97f4a7c15ull;
	return m;
}

tv_memtable *tv_mem_new(void)
{
	return make(0, NULL);
}

tv_memtable *tv_mem_new_filtered(size_t expected_bytes)
{
	return make(expected_bytes, NULL);
}

tv_memtable *tv_mem_new_pooled(tv_mem_pool *p)
{
	return make(p->expected_bytes, p);
}

void tv_mem_ref(tv_memtable *m)
{
	unsigned old = atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	assert(old > 0);
	(void)old;
}

/* The acquire-release decrement orders every use of the memtable by other
 * holders before the free by the last one.  (Not a release decrement and
 * an acquire fence: ThreadSanitizer does not model fences and reports the
 * free as racing with the readers that came before it.) */
void tv_mem_unref(tv_memtable *m)
{
	if (!m)
		return;
	unsigned old = atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel);
	assert(old > 0);
	if (old != 1)
		return;
	tv_arena_destroy(&m->arena);
	pthread_mutex_destroy(&m->umu);
	pthread_mutex_destroy(&m->rmu);
	pthread_mutex_destroy(&m->fmu);
	tv_unmap_array(m->unres, m->capunres, sizeof *m->unres);
	tv_unmap_array(m->sums, m->capsums, sizeof *m->sums);
	put_parts(m);
	tv_mem_pool_unref(m->pool);
	free(m);
}

size_t tv_mem_usage(const tv_memtable *m)
{
	return tv_arena_usage(&m->arena) + (m->filter ? filter_bytes(m) : 0) +
	       (m->index ? index_bytes(m) : 0) + (m->tail ? tail_bytes(m) : 0) +
	       atomic_load_explicit(&m->unres_bytes, memory_order_relaxed);
}

uint64_t tv_mem_entries(const tv_memtable *m)
{
	return atomic_load_explicit(&((tv_memtable *)m)->entries, memory_order_relaxed);
}

unsigned tv_mem_top_byte(const tv_memtable *m)
{
	return atomic_load_explicit(&((tv_memtable *)m)->top_byte, memory_order_relaxed);
}

/* ---- Writing (the single writer) --------------------------------------- */

/* 1 with probability 3/4, 2 with 3/16, ...; at most MAX_HEIGHT. */
static int random_height(tv_memtable *m)
{
	uint64_t r = m->rng; /* xorshift64 */
	r ^= r << 13;
	r ^= r >> 7;
	r ^= r << 17;
	m->rng = r;
	int h = 1;
	while (h < MAX_HEIGHT && (r & 3) == 0) {
		h++;
		r >>= 2;
	}
	return h;
}

/* locate for a key that sorts after splice[0] (the next key of an
 * ascending run, such as a fold's): climbs from the bottom while the splice's successor at a
 * level is still before k, then searches down from there.  Valid because
 * if the successor of splice[i] at level i is at or after k, so is that
 * of splice[i + 1] (a node of level i + 1 is also one of level i, and
 * splice[i + 1] is no later than splice[i]).  A key g entries past the
 * splice costs ~2 log4 g steps, not one comparison per level from the
 * top. */
static void locate_after(tv_memtable *m, const skey *k)
{
	node **s = m->splice, *next;
	int top = cur_height(m) - 1, level = 0;
	while (level < top && (next = load_next(s[level], level)) && cmp_node(next, k) < 0)
		level++;
	for (node *x = s[level];; level--) {
		while ((next = load_next(x, level)) && cmp_node(next, k) < 0)
			x = next;
		s[level] = x;
		if (level == 0)
			return;
	}
}

/* Fills m->splice with the predecessors of k's position at every level.
 * A key after splice[0] is placed by locate_after.  A key before it is
 * searched for from the top as find_ge does, but while the search is
 * still on the splice's path (its node at the level above is the
 * splice's) it jumps ahead to the splice's node at this level if that
 * node is before k: a random key pays one comparison per level against
 * splice nodes the last search left in the cache. */
static void locate(tv_memtable *m, const skey *k)
{
	node **s = m->splice, *x = m->head, *bound = NULL;
	if (s[0] == m->head || cmp_node(s[0], k) < 0) {
		locate_after(m, k);
		return;
	}
	int on_path = 1; /* x is s[level + 1], or the head at the top */
	for (int level = cur_height(m) - 1;; level--) {
		if (on_path && s[level] != x) {
			assert(s[level] != m->head);
			if (cmp_node(s[level], k) < 0)
				x = s[level];
			else
				on_path = 0;
		}
		node *next;
		while ((next = load_next(x, level)) && next != bound && cmp_node(next, k) < 0) {
			x = next;
			on_path = 0;
		}
		s[level] = x;
		if (level == 0)
			return;
		bound = next;
	}
}

/* True if node a sorts before node b. */
static inline int node_less(const node *a, const node *b)
{
	skey k = node_skey(b);
	return cmp_node(a, &k) < 0;
}

/* Links n, of height h, into the skip list after prev[i] at each level i
 * < h, which must be the last nodes before n's key there, and leaves
 * prev[i] = n.  The linker only (the writer, or a folder under fmu). */
static void splice_in(tv_memtable *m, node *n, int h, node **prev)
{
	assert(prev[0] == m->head || node_less(prev[0], n));
	assert(!load_next(prev[0], 0) || node_less(n, load_next(prev[0], 0)));

	int height = cur_height(m);
	if (h > height) {
		for (int i = height; i < h; i++)
			assert(prev[i] == m->head);
		/* A reader that sees the new height before the links finds NULL
		 * at the head's new levels and simply drops down. */
		atomic_store_explicit(&m->height, h, memory_order_relaxed);
	}
	node *pred0 = prev[0];
	node *succ0 = atomic_load_explicit(link(pred0, 0), memory_order_relaxed);
	atomic_store_explicit(&n->back, pred0, memory_order_relaxed);
	for (int i = 0; i < h; i++) {
		node *succ = atomic_load_explicit(link(prev[i], i), memory_order_relaxed);
		atomic_store_explicit(link(n, i), succ, memory_order_relaxed);
		atomic_store_explicit(link(prev[i], i), n, memory_order_release);
		prev[i] = n;
	}
	if (succ0)
		atomic_store_explicit(&succ0->back, n, memory_order_release);
}

/* Links n, of height h, into the skip list.  The linker only. */
static void link_node(tv_memtable *m, node *n, int h)
{
	skey k = node_skey(n);
	locate(m, &k);
	splice_in(m, n, h, m->splice);
}

/* Orders the tail entries a < b as their nodes' internal keys. */
static inline int pending_less(const pending *a, const pending *b)
{
	if (a->p0 != b->p0)
		return a->p0 < b->p0;
	if (a->p1 != b->p1)
		return a->p1 < b->p1;
	skey k = node_skey(b->n);
	return cmp_node(a->n, &k) < 0;
}

static inline void pending_swap(pending *a, pending *b)
{
	pending t = *a;
	*a = *b;
	*b = t;
}

/* Sorts p[0..n) by key: quicksort with the median of three, recursing
 * into the smaller side, and insertion sort for short runs. */
static void sort_pending(pending *p, size_t n)
{
	while (n > 16) {
		size_t mid = n / 2;
		if (pending_less(&p[mid], &p[0]))
			pending_swap(&p[mid], &p[0]);
		if (pending_less(&p[n - 1], &p[0]))
			pending_swap(&p[n - 1], &p[0]);
		if (pending_less(&p[n - 1], &p[mid]))
			pending_swap(&p[n - 1], &p[mid]);
		pending pivot = p[mid];
		size_t i = 0, j = n - 1;
		for (;;) {
			while (pending_less(&p[i], &pivot))
				i++;
			while (pending_less(&pivot, &p[j]))
				j--;
			if (i >= j)
				break;
			pending_swap(&p[i++], &p[j--]);
		}
		/* p[0..j] <= pivot <= p[j+1..n) */
		if (j + 1 < n - j - 1) {
			sort_pending(p, j + 1);
			p += j + 1;
			n -= j + 1;
		} else {
			sort_pending(p + j + 1, n - j - 1);
			n = j + 1;
		}
	}
	for (size_t i = 1; i < n; i++) {
		pending x = p[i];
		size_t j = i;
		for (; j > 0 && pending_less(&x, &p[j - 1]); j--)
			p[j] = p[j - 1];
		p[j] = x;
	}
}

/* Runs shorter than this are sorted by comparison: a radix pass costs a
 * 256-entry count on top of its passes over the run. */
#define RADIX_MIN 256

/* Byte b (0 = the most significant) of the 16 bytes a tail entry sorts
 * by first. */
static inline unsigned pending_byte(const pending *x, unsigned b)
{
	uint64_t v = b < 8 ? x->p0 : x->p1;
	return (unsigned)(v >> (56 - 8 * (b & 7))) & 0xff;
}

/* Sorts p[0..n), whose entries agree on their first b bytes, by key: an
 * in-place radix pass on byte b (counted, then each entry swapped into
 * its byte's bucket) and each bucket sorted on from byte b + 1; short
 * runs, and runs that agree on all 16 bytes, by sort_pending.  A random
 * tail of 16384 entries takes one pass and buckets of ~64 entries: 8
 * levels of comparisons instead of 14. */
static void radix_pending(pending *p, size_t n, unsigned b)
{
	if (n < RADIX_MIN || b == 16) {
		sort_pending(p, n);
		return;
	}
	size_t count[256] = {0}, next[256], end[256];
	for (size_t i = 0; i < n; i++)
		count[pending_byte(&p[i], b)]++;
	size_t at = 0;
	for (unsigned c = 0; c < 256; c++) {
		next[c] = at;
		at += count[c];
		end[c] = at;
	}
	for (unsigned c = 0; c < 256; c++)
		while (next[c] < end[c]) {
			unsigned d = pending_byte(&p[next[c]], b);
			if (d == c)
				next[c]++;
			else
				pending_swap(&p[next[c]], &p[next[d]++]);
		}
	for (unsigned c = 0, start = 0; c < 256; start += count[c++])
		if (count[c] > 1)
			radix_pending(p + start, count[c], b + 1);
}

/* Sorts the tail run p[0..n) by key: from the first byte on which its
 * entries differ (decimal keys share their leading digits), by
 * radix_pending. */
static void sort_tail(pending *p, size_t n)
{
	uint64_t d0 = 0, d1 = 0;
	for (size_t i = 1; i < n; i++) {
		d0 |= p[i].p0 ^ p[0].p0;
		d1 |= p[i].p1 ^ p[0].p1;
	}
	unsigned b = d0   ? (unsigned)__builtin_clzll(d0) / 8
	             : d1 ? 8 + (unsigned)__builtin_clzll(d1) / 8
	                  : 16;
	radix_pending(p, n, b);
}

/* A fold links its sorted run in FOLD_STREAMS contiguous parts at once,
 * one step of each part's search in turn: a search step is one node of
 * the list, most likely a cache miss (the nodes of a gap were linked long
 * ago, from all over the arena), and each step prefetches the node the
 * next step of its part will compare, so the parts' misses overlap
 * instead of following one another.  A run shorter than FOLD_PART_MIN
 * nodes per part is folded as one part. */
#define FOLD_STREAMS 8
#define FOLD_PART_MIN 64

/* One part of a fold: its nodes p[next..end), its own splice (as
 * m->splice: the last node before its position at each level), and the
 * search in progress for p[next]: at `level`, from x, whose successor
 * there is cand (prefetched), where `bound` is known not to be before
 * the key.  A part's splice may fall behind when another part links nodes
 * after it; a search only ever walks forward from nodes before its key,
 * and fold_link walks each level forward before linking, so that costs
 * steps, never order. */
typedef struct fold_part {
	pending *p;
	size_t next, end;
	skey k;
	node *x, *cand, *bound;
	int level;
	node *splice[MAX_HEIGHT];
} fold_part;

/* Prefetches what comparing n and reading its link at `level` touch.
 * Always inlined: gcc finds a function that only prefetches free of side
 * effects and deletes the calls to it that it has not inlined yet. */
static inline __attribute__((always_inline)) void prefetch_node(const node *n, int level)
{
	if (!n)
		return;
	__builtin_prefetch(link(n, level));
	__builtin_prefetch((const char *)n + offsetof(node, prefix));
	__builtin_prefetch(node_data(n) + 8);
}

/* Starts f's search for its next node, as locate_after does: climbs from
 * the bottom while the splice's successor is before the key (those nodes
 * were compared by the part's last search and are likely cached), then
 * sets up the descent.  Returns 0 when the part is done. */
static int fold_start(const tv_memtable *m, fold_part *f)
{
	if (f->next == f->end)
		return 0;
	const node *n = f->p[f->next].n;
	if (f->next + 1 < f->end)
		__builtin_prefetch(f->p[f->next + 1].n);
	f->k = node_skey(n);
	node **s = f->splice, *next;
	int top = cur_height(m) - 1, level = 0;
	while (level < top && (next = load_next(s[level], level)) && cmp_node(next, &f->k) < 0)
		level++;
	f->level = level;
	f->x = s[level];
	f->bound = NULL;
	f->cand = load_next(f->x, level);
	prefetch_node(f->cand, level);
	return 1;
}

/* Links f's current node after walking each of its levels forward to the
 * last node before it (other parts may have linked nodes there since the
 * search passed). */
static void fold_link(tv_memtable *m, fold_part *f)
{
	pending *pd = &f->p[f->next++];
	node **s = f->splice, *next;
	for (int i = 0; i < pd->height; i++)
		while ((next = load_next(s[i], i)) && cmp_node(next, &f->k) < 0)
			s[i] = next;
	splice_in(m, pd->n, pd->height, s);
}

/* One step of f's search; returns 0 when the part is done. */
static int fold_step(tv_memtable *m, fold_part *f)
{
	node *c = f->cand;
	if (c && c != f->bound && cmp_node(c, &f->k) < 0) {
		f->x = c;
		f->cand = load_next(c, f->level);
		prefetch_node(f->cand, f->level);
		return 1;
	}
	f->splice[f->level] = f->x;
	if (f->level == 0) {
		fold_link(m, f);
		return fold_start(m, f);
	}
	f->bound = c;
	f->level--;
	f->cand = load_next(f->x, f->level);
	prefetch_node(f->cand, f->level);
	return 1;
}

/* Links the tail's unlinked nodes into the skip list, in key order.  The
 * caller holds fmu. */
static void fold(tv_memtable *m)
{
	size_t from = atomic_load_explicit(&m->folded, memory_order_relaxed);
	size_t to = atomic_load_explicit(&m->ntail, memory_order_acquire);
	if (from == to)
		return;
	pending *p = m->tail + from;
	size_t n = to - from;
	size_t sorted = 1; /* a tail of ascending writes needs no sort */
	while (sorted < n && pending_less(&p[sorted - 1], &p[sorted]))
		sorted++;
	if (sorted < n) {
		sort_tail(p, n);
		size_t nparts = n / FOLD_PART_MIN;
		if (nparts > FOLD_STREAMS)
			nparts = FOLD_STREAMS;
		if (nparts > 1) {
			fold_part parts[FOLD_STREAMS];
			size_t live = 0;
			for (size_t i = 0; i < nparts; i++) {
				fold_part *f = &parts[live];
				f->p = p;
				f->next = n * i / nparts;
				f->end = n * (i + 1) / nparts;
				for (int l = 0; l < MAX_HEIGHT; l++)
					f->splice[l] = m->head;
				live += fold_start(m, f);
			}
			while (live)
				for (size_t i = 0; i < live;)
					if (fold_step(m, &parts[i]))
						i++;
					else
						parts[i] = parts[--live];
			/* The parts linked nodes past m->splice's: it no longer
			 * holds one position's predecessors, but the head's do. */
			for (int l = 0; l < MAX_HEIGHT; l++)
				m->splice[l] = m->head;
			atomic_store_explicit(&m->folded, to, memory_order_release);
			return;
		}
	}
	for (size_t i = 0; i < n; i++)
		link_node(m, p[i].n, p[i].height);
	atomic_store_explicit(&m->folded, to, memory_order_release);
}

/* Folds the tail unless every node added so far is already linked.  Any
 * thread. */
static void fold_all(tv_memtable *m)
{
	if (!m->tail)
		return;
	/* Equal counts mean every node added before the first load is linked:
	 * `folded` only reaches a count after linking that many nodes, and the
	 * writer empties the tail only after folding all of it. */
	size_t n = atomic_load_explicit(&m->ntail, memory_order_acquire);
	if (atomic_load_explicit(&m->folded, memory_order_acquire) == n)
		return;
	pthread_mutex_lock(&m->fmu);
	fold(m);
	pthread_mutex_unlock(&m->fmu);
}

/* Appends n, of height h, to the tail, folding the tail first if it is
 * full.  Writer only. */
static void defer(tv_memtable *m, node *n, int h)
{
	size_t i = atomic_load_explicit(&m->ntail, memory_order_relaxed);
	if (i == m->tail_cap) {
		pthread_mutex_lock(&m->fmu);
		fold(m);
		/* Released, ntail last: a reader of fold_all that sees the
		 * emptied tail also sees the links the fold made. */
		atomic_store_explicit(&m->folded, 0, memory_order_release);
		atomic_store_explicit(&m->ntail, 0, memory_order_release);
		pthread_mutex_unlock(&m->fmu);
		i = 0;
	}
	const char *key = node_data(n);
	pending *p = &m->tail[i];
	p->p0 = n->prefix;
	p->p1 = n->klen > 8 ? key_prefix(key + 8, n->klen - 8) : 0;
	p->n = n;
	p->height = h;
	atomic_store_explicit(&m->ntail, i + 1, memory_order_release);
}

/* tv_mem_add of a key whose tv_bloom_hash is hash; the new node in
 * *out.  In a memtable with an index the node goes into the index and the
 * tail; in one without, straight into the skip list. */
static int add(tv_memtable *m, uint64_t seq, unsigned type, tv_slice key, tv_slice value,
               uint64_t hash, node **out)
{
	assert(seq <= TV_MAX_SEQ && type <= TV_TYPE_PUT_EXP);
	/* Lengths are kept in 32 bits; such an entry could never be allocated
	 * from an arena of a sane memtable anyway. */
	if (key.len > UINT32_MAX || value.len > UINT32_MAX)
		return TROVE_ENOMEM;
	if (key.len && (unsigned char)key.data[0] >
	                       atomic_load_explicit(&m->top_byte, memory_order_relaxed))
		atomic_store_explicit(&m->top_byte, (unsigned char)key.data[0], memory_order_relaxed);
	int h = random_height(m);
	size_t links = (size_t)(h - 1) * sizeof(link_t);
	char *mem =
	        tv_arena_alloc(&m->arena, links + sizeof(node) + key.len + TV_TRAILER + value.len);
	if (!mem)
		return TROVE_ENOMEM;
	node *n = (node *)(mem + links);
	uint64_t trailer = tv_pack_trailer(seq, type);
	n->prefix = key_prefix(key.data, key.len);
	n->trailer = trailer;
	n->klen = (uint32_t)key.len;
	n->vlen = (uint32_t)value.len;
	if (key.len)
		memcpy(n->data, key.data, key.len);
	tv_put_fixed64(n->data + key.len, trailer);
	if (value.len)
		memcpy(n->data + key.len + TV_TRAILER, value.data, value.len);
	atomic_init(&n->chain, NULL);
	atomic_init(&n->older, NULL);
	atomic_init(&n->back, NULL);
	for (int i = 0; i < h; i++)
		atomic_init(link(n, i), NULL);
	int known = 1;
	if (m->filter) {
		known = filter_may_contain(m, hash);
		filter_add(m, hash);
	}
	if (m->index) {
		index_add(m, hash, n, known);
		defer(m, n, h);
	} else {
		link_node(m, n, h);
	}
	atomic_fetch_add_explicit(&m->entries, 1, memory_order_relaxed);
	*out = n;
	return 0;
}

int tv_mem_add(tv_memtable *m, uint64_t seq, unsigned type, tv_slice key, tv_slice value)
{
	node *n;
	return add(m, seq, type, key, value, m->filter || m->index ? tv_bloom_hash(key) : 0, &n);
}

void tv_mem_prefetch(const tv_memtable *m, uint64_t hash)
{
	if (m->filter)
		__builtin_prefetch(filter_line(m, hash), 1);
	if (m->index)
		__builtin_prefetch(index_slot(m, hash), 1);
}

/* Grows the array *arrp (of *cap elements of size sz) to hold at least
 * need, counting the bytes in m->unres_bytes. */
static int grow(tv_memtable *m, void *arrp, size_t *cap, size_t need, size_t sz)
{
	size_t old = *cap;
	int rc = tv_grow_mapped(arrp, cap, need, sz);
	if (!rc)
		atomic_fetch_add_explicit(&m->unres_bytes, (*cap - old) * sz, memory_order_relaxed);
	return rc;
}

int tv_mem_add_hashed(tv_memtable *m, uint64_t seq, unsigned type, tv_slice key, tv_slice value,
                      uint64_t hash, int unresolved)
{
	node *n;
	if (!unresolved)
		return add(m, seq, type, key, value, hash, &n);
	size_t i = atomic_load_explicit(&m->nunres, memory_order_relaxed);
	int rc = 0;
	if (i == m->capunres) {
		pthread_mutex_lock(&m->umu);
		rc = grow(m, &m->unres, &m->capunres, i + 1, sizeof *m->unres);
		pthread_mutex_unlock(&m->umu);
	}
	if (!rc)
		rc = add(m, seq, type, key, value, hash, &n);
	if (rc)
		return rc;
	assert(i == 0 || node_seq(m->unres[i - 1]) <= seq);
	m->unres[i] = n;
	atomic_store_explicit(&m->nunres, i + 1, memory_order_release);
	return 0;
}

/* The next older entry of u's key in m, or NULL.  With an index, u's older
 * link; without, u's successor if it has u's key (a key's entries are
 * adjacent in the skip list, newest first, and a newer one never goes in
 * after u). */
static node *older_entry(const tv_memtable *m, const node *u)
{
	if (m->index)
		return atomic_load_explicit(&((node *)u)->older, memory_order_acquire);
	node *next = load_next(u, 0);
	skey uk = node_skey(u);
	return next && same_user_key(next, &uk) ? next : NULL;
}

int tv_mem_unresolved_delta(tv_memtable *m, uint64_t seq, tv_mem_resolve_fn fn, void *arg,
                            int64_t *delta)
{
	int rc = 0;
	pthread_mutex_lock(&m->rmu);
	for (;;) {
		pthread_mutex_lock(&m->umu);
		size_t n = atomic_load_explicit(&m->nunres, memory_order_acquire);
		node *u = NULL;
		if (m->nsums < n && node_seq(m->unres[m->nsums]) <= seq)
			u = m->unres[m->nsums];
		pthread_mutex_unlock(&m->umu);
		if (!u)
			break;
		node *next = older_entry(m, u);
		int older = next ? (int)(next->trailer & 0xff) : -1;
		int d = 0;
		if ((rc = fn(arg, tv_slice_make(node_data(u), u->klen), node_seq(u),
		             (unsigned)(u->trailer & 0xff), older, &d)) != 0 ||
		    (rc = grow(m, &m->sums, &m->capsums, m->nsums + 1, sizeof *m->sums)) != 0)
			break;
		m->sums[m->nsums] = (m->nsums ? m->sums[m->nsums - 1] : 0) + d;
		m->nsums++;
	}
	if (!rc) {
		/* An earlier call may have resolved entries newer than seq. */
		size_t i = m->nsums;
		pthread_mutex_lock(&m->umu);
		while (i > 0 && node_seq(m->unres[i - 1]) > seq)
			i--;
		pthread_mutex_unlock(&m->umu);
		*delta = i ? m->sums[i - 1] : 0;
	}
	pthread_mutex_unlock(&m->rmu);
	return rc;
}

size_t tv_mem_unresolved_keys(tv_memtable *m, const char **keys, size_t max)
{
	pthread_mutex_lock(&m->umu);
	size_t n = atomic_load_explicit(&m->nunres, memory_order_acquire);
	for (size_t i = 0; i < n && i < max; i++)
		keys[i] = node_data(m->unres[i]);
	pthread_mutex_unlock(&m->umu);
	return n;
}

/* ---- Reading ----------------------------------------------------------- */

/* The lookup of tv_mem_get and tv_mem_get_for_write; with splice set and
 * no index, the predecessors of the search position are kept for the next
 * add (with an index the add does not search: the key is hashed). */
static int mem_get(tv_memtable *m, tv_slice key, uint64_t hash, uint64_t seq, unsigned *type,
                   tv_slice *value, uint64_t *entry_seq, node **splice)
{
	if (seq > TV_MAX_SEQ)
		seq = TV_MAX_SEQ;
	skey k = make_skey(key.data, key.len, tv_pack_trailer(seq, TV_SEEK_TYPE));
	node *n;
	if (splice && !m->index) {
		/* The writer's lookups search the list: they fill the splice. */
		locate(m, &k);
		n = load_next(splice[0], 0);
	} else {
		if (m->filter && !filter_may_contain(m, hash))
			return 0;
		n = m->index ? index_get(m, hash, &k) : find_ge(m, &k, NULL);
	}
	if (!n || !same_user_key(n, &k))
		return 0;
	*type = (unsigned)(n->trailer & 0xff);
	*entry_seq = n->trailer >> 8;
	*value = tv_slice_make(node_data(n) + n->klen + TV_TRAILER, n->vlen);
	return 1;
}

int tv_mem_get(tv_memtable *m, tv_slice key, uint64_t seq, unsigned *type, tv_slice *value,
               uint64_t *entry_seq)
{
	return mem_get(m, key, tv_bloom_hash(key), seq, type, value, entry_seq, NULL);
}

int tv_mem_get_hashed(tv_memtable *m, tv_slice key, uint64_t hash, uint64_t seq,
                      unsigned *type, tv_slice *value, uint64_t *entry_seq)
{
	return mem_get(m, key, hash, seq, type, value, entry_seq, NULL);
}

int tv_mem_get_for_write(tv_memtable *m, tv_slice key, uint64_t hash, uint64_t seq, unsigned *type,
                         tv_slice *value, uint64_t *entry_seq)
{
	/* The search stops before every entry of key at or below seq, which
	 * is where an entry of key with a newer sequence number goes. */
	return mem_get(m, key, hash, seq, type, value, entry_seq, m->splice);
}

/* ---- Iterator ---------------------------------------------------------- */

typedef struct mem_iter {
	tv_iter base;
	tv_memtable *m;
	node *n;      /* current node, NULL when not positioned */
	int on_heap;  /* destroy frees it (tv_mem_iter, not tv_mem_iter_in) */
} mem_iter;

/* Makes node n (NULL: none) the position. */
static void mi_set(mem_iter *mi, node *n)
{
	mi->n = n;
	if (!n) {
		tv_iter_unpublish(&mi->base);
		return;
	}
	const char *d = node_data(n);
	size_t klen = (size_t)n->klen + TV_TRAILER;
	tv_iter_publish(&mi->base, tv_slice_make(d, klen), tv_slice_make(d + klen, n->vlen));
}

static void mi_seek_first(tv_iter *it)
{
	mem_iter *mi = (mem_iter *)it;
	mi_set(mi, load_next(mi->m->head, 0));
}

static void mi_seek_last(tv_iter *it)
{
	mem_iter *mi = (mem_iter *)it;
	node *x = find_last(mi->m);
	mi_set(mi, x == mi->m->head ? NULL : x);
}

static void mi_seek(tv_iter *it, tv_slice target)
{
	mem_iter *mi = (mem_iter *)it;
	assert(target.len >= TV_TRAILER);
	skey k = make_skey(target.data, target.len - TV_TRAILER, tv_ikey_trailer(target));
	mi_set(mi, find_ge(mi->m, &k, NULL));
}

/* Steps forward and prefetches the node after the new position (its
 * header, key and value's start): the nodes of a memtable written in
 * random key order lie all over the arena, so a walk in key order (the
 * flush's above all) misses the cache on each, and the caller's work on
 * one entry hides the next one's load. */
static void mi_next(tv_iter *it)
{
	mem_iter *mi = (mem_iter *)it;
	assert(mi->n);
	node *n = load_next(mi->n, 0);
	mi_set(mi, n);
	const node *after = n ? load_next(n, 0) : NULL;
	if (after) {
		__builtin_prefetch(after);
		__builtin_prefetch(node_data(after));
		__builtin_prefetch(node_data(after) + 64);
	}
}

static void mi_prev(tv_iter *it)
{
	mem_iter *mi = (mem_iter *)it;
	assert(mi->n);
	node *x = atomic_load_explicit(&mi->n->back, memory_order_acquire);
	mi_set(mi, x == mi->m->head ? NULL : x);
}

static int mi_status(tv_iter *it)
{
	return 0;
}

static void mi_destroy(tv_iter *it)
{
	mem_iter *mi = (mem_iter *)it;
	tv_mem_unref(mi->m);
	if (mi->on_heap)
		free(mi);
}

static const tv_iter_ops mem_iter_ops = {
        .seek_first = mi_seek_first,
        .seek_last = mi_seek_last,
        .seek = mi_seek,
        .next = mi_next,
        .prev = mi_prev,
        .status = mi_status,
        .destroy = mi_destroy,
};

size_t tv_mem_iter_size(void)
{
	return sizeof(mem_iter);
}

tv_iter *tv_mem_iter_in(void *mem, tv_memtable *m)
{
	mem_iter *mi = mem;
	mi->base.ops = &mem_iter_ops;
	mi->on_heap = 0;
	tv_mem_ref(m);
	mi->m = m;
	mi_set(mi, NULL);
	fold_all(m);
	return &mi->base;
}

tv_iter *tv_mem_iter(tv_memtable *m)
{
	void *mem = malloc(sizeof(mem_iter));
	if (!mem)
		return NULL;
	tv_iter *it = tv_mem_iter_in(mem, m);
	((mem_iter *)it)->on_heap = 1;
	return it;
}
