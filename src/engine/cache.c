/*
 * cache.c - the block cache: a sharded CLOCK cache with reference-counted
 * entries.
 *
 * Table readers look blocks up here by (file number, block offset) and
 * insert what they read from disk.  Each shard has a mutex, a chained hash
 * table and a ring of its cached entries with a clock hand.  A hit only
 * takes a reference and sets the entry's `referenced` bit: it moves no
 * list node, so it writes to no other entry's cache lines (an LRU list
 * move touched two cold neighbours per hit, about a third of a cached
 * lookup).  Eviction sweeps the hand around the ring: an entry a reader
 * holds is passed over, a referenced one loses its bit and gets another
 * turn, any other goes; a new entry joins just behind the hand, the
 * last the sweep reaches.  An entry carries one reference for being in
 * the table plus one per handle given out; it is freed, by its deleter,
 * when the last reference goes.  The cache never calls a deleter while
 * holding a shard lock, never frees a value a handle still points to, and
 * never lets the entries nobody holds exceed the capacity.
 *
 * Slots.  A caller that looks the same key up again and again (a table
 * and its data blocks) may keep a slot per key: the lookup fills it with
 * the entry it found, and a later lookup that finds it filled goes
 * straight to the entry, skipping the hash bucket (a cache miss of its
 * own, before the entry's).  A slot is filled and emptied only under its
 * key's shard lock, and an entry leaving the table empties its slot
 * there, so the lock holder never follows a slot to a freed entry.
 *
 * Small caches use fewer shards: every shard gets at least
 * CACHE_MIN_SHARD bytes, so a cache of a few hundred KiB is one exact LRU
 * and a block never misses merely because its shard is tiny.
 *
 * Memory.  The capacity bounds what the cache stands for, not only its
 * entries: reservations (open tables' index and filter blocks) take their
 * share of every shard's room, and values from tv_cache_alloc are recycled.
 * Recycling is what keeps the process's memory near the capacity: a block
 * read on a miss is malloc'd in the reading thread's malloc arena (glibc
 * gives threads arenas of their own), and freeing an evicted block returns
 * it to the arena it came from, where only that arena's threads can reuse
 * it.  With many reader threads, each arena grew to a cache's worth of
 * blocks and holes (601 MiB of RSS for a 128 MiB cache and 64 MiB of
 * memtables with 8 readers).  An evicted value's buffer instead goes to a
 * free list of its size class, from which the next miss of any thread
 * takes it; the free lists hold at most 1/16 of the capacity (the rest is
 * entries' room), beyond which buffers are freed.  The lists absorb the
 * swings of the reservations (a compaction's outputs are reserved before
 * its inputs are let go): with 1/128 the buffers evicted to make room
 * were freed into whichever thread's heap they came from and stayed
 * there as holes, 1.5-3 MiB per reader thread in a 64 MiB budget.  Values
 * too big for a size class (index and filter blocks) are mapped, so they
 * leave the process when their table closes.
 */
#include "cache.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CACHE_MAX_SHARD_BITS 4 /* 16 shards */
#define CACHE_MIN_SHARD (512u * 1024)
/* Recycled values come in size classes of POOL_GRAIN bytes up to
 * POOL_CLASSES grains (64 KiB); bigger values are malloc'd and freed. */
#define POOL_GRAIN 256u
#define POOL_CLASSES 256u
#define POOL_SHARE 16 /* the free lists hold at most capacity / 16 */
/* malloc's header and rounding per value. */
#define MALLOC_OVERHEAD 16u

/* An entry.  A value from tv_cache_alloc carries its entry in its header,
 * right in front of its bytes (`embedded`): a hit then reads the entry
 * and the start of the value, which is where a table block keeps its
 * parsed header, from adjacent cache lines instead of two allocations,
 * and an insert allocates nothing.  The fields a lookup reads come last,
 * next to the value. */
struct tv_cache_handle {
	tv_cache_handle *prev, *next; /* in the ring, if in_cache */
	void (*deleter)(void *value);
	size_t charge;
	tv_cache_handle *next_hash; /* chain in the shard's table */
	/* A slot pointing at this entry (tv_cache_lookup_slot), emptied when
	 * it leaves the table; NULL if none.  Both change under the lock. */
	tv_cache_handle *_Atomic *slot;
	uint64_t file, off, hash;
	void *value;
	atomic_uint refs; /* the table's (if in_cache) + handles */
	bool in_cache;
	bool referenced; /* looked up since the hand last passed it */
	bool embedded;   /* lives in its value's header (tv_cache_alloc) */
};

typedef struct cache_shard {
	pthread_mutex_t mu;
	size_t capacity, usage; /* usage: charges of the entries in the table */
	tv_cache_handle **table;
	size_t nbuckets, count; /* nbuckets is a power of two */
	tv_cache_handle *hand;  /* the ring's next entry to sweep; NULL if empty */
	/* Set by the sweep when entries readers hold keep the shard over its
	 * room: a release that lets go of such an entry then sweeps again. */
	atomic_bool over;
	/* Written under mu (no locked add), read by the counters' sums. */
	atomic_uint_fast64_t hits, misses;
} __attribute__((aligned(64))) cache_shard;

/* The header in front of a value from tv_cache_alloc, with the value's
 * entry for when it is inserted; while the buffer waits in a free list,
 * its first bytes (the value's) link it there. */
typedef struct value_hdr {
	_Alignas(16) size_t cls; /* size class in grains; 0: mapped, not recycled */
	size_t mapped; /* bytes mapped, this header included, if cls is 0 */
	tv_cache_handle entry;
} value_hdr;

_Static_assert(sizeof(value_hdr) % 16 == 0, "values from tv_cache_alloc are 16-byte aligned");

typedef struct pooled_buf {
	struct pooled_buf *next;
} pooled_buf;

struct tv_cache {
	unsigned shard_bits;
	atomic_size_t reserved; /* bytes counted against the capacity */
	pthread_mutex_t pool_mu;
	size_t pool_cap, pooled; /* bytes the free lists may hold, and hold */
	pooled_buf *pool[POOL_CLASSES + 1]; /* by size class */
	cache_shard shards[];
};

/* ---- The ring and the hash table (shard lock held) --------------------- */

/* Puts e just behind the hand: the sweep reaches it last. */
static void ring_insert(cache_shard *s, tv_cache_handle *e)
{
	tv_cache_handle *h = s->hand;
	if (!h) {
		e->prev = e->next = e;
		s->hand = e;
		return;
	}
	e->next = h;
	e->prev = h->prev;
	e->prev->next = e;
	h->prev = e;
}

static void ring_remove(cache_shard *s, tv_cache_handle *e)
{
	if (e->next == e) {
		s->hand = NULL;
	} else {
		if (s->hand == e)
			s->hand = e->next;
		e->prev->next = e->next;
		e->next->prev = e->prev;
	}
	e->prev = e->next = NULL;
}

/* Counts a hit or a miss; only the shard's lock holder writes them. */
static void count(atomic_uint_fast64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

static uint64_t cache_hash(uint64_t file, uint64_t off)
{
	uint64_t h = file * 0x9e3779b97f4a7c15ull ^ off;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

/* The slot holding the entry for (file, off), or the empty slot at the
 * end of its chain. */
static tv_cache_handle **table_find(cache_shard *s, uint64_t hash, uint64_t file, uint64_t off)
{
	tv_cache_handle **p = &s->table[hash & (s->nbuckets - 1)];
	while (*p && ((*p)->hash != hash || (*p)->file != file || (*p)->off != off))
		p = &(*p)->next_hash;
	return p;
}

/* Doubles the bucket array; on ENOMEM the table just stays denser. */
static void table_grow(cache_shard *s)
{
	size_t n = s->nbuckets * 2;
	tv_cache_handle **t = calloc(n, sizeof *t);
	if (!t)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		tv_cache_handle *e = s->table[i];
		while (e) {
			tv_cache_handle *next = e->next_hash;
			tv_cache_handle **slot = &t[e->hash & (n - 1)];
			e->next_hash = *slot;
			*slot = e;
			e = next;
		}
	}
	free(s->table);
	s->table = t;
	s->nbuckets = n;
}

/* Drops one reference; returns true if the entry must now be deleted
 * (which the caller does after unlocking).  The table's reference is
 * dropped under the shard lock, a handle's without it (tv_cache_release):
 * the acquire-release decrement orders every holder's use of the value
 * before its deletion by the last one. */
static bool entry_unref(tv_cache_handle *e)
{
	unsigned old = atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel);
	assert(old > 0);
	return old == 1;
}

/* Takes e (found in *slot) out of the table; returns true if it must be
 * deleted. */
static bool table_remove(cache_shard *s, tv_cache_handle **slot)
{
	tv_cache_handle *e = *slot;
	assert(e->in_cache);
	*slot = e->next_hash;
	e->next_hash = NULL;
	if (e->slot) {
		atomic_store_explicit(e->slot, NULL, memory_order_relaxed);
		e->slot = NULL;
	}
	ring_remove(s, e);
	e->in_cache = false;
	s->usage -= e->charge;
	s->count--;
	bool gone = entry_unref(e);
	assert(!gone || !e->in_cache);
	return gone;
}

/* The room a shard's entries have: its capacity less its share of the
 * reservations. */
static size_t shard_room(const tv_cache *c, const cache_shard *s)
{
	size_t share = atomic_load_explicit(&c->reserved, memory_order_relaxed) >> c->shard_bits;
	return share < s->capacity ? s->capacity - share : 0;
}

/* Sweeps the hand until the shard is within its room less `spare` bytes,
 * evicting entries nobody holds that were not looked up since its last
 * pass; the evicted entries are chained on *dead for deletion.  Two turns
 * of the ring visit every entry twice, clearing every bit on the first:
 * if the shard is still over then, what remains is held. */
static void shard_evict_spare(const tv_cache *c, cache_shard *s, size_t spare,
                              tv_cache_handle **dead)
{
	size_t room = shard_room(c, s);
	room = room > spare ? room - spare : 0;
	size_t steps = 2 * s->count;
	while (s->usage > room && s->hand && steps-- > 0) {
		tv_cache_handle *e = s->hand;
		s->hand = e->next;
		/* Only the lock holder adds references, so an entry seen with
		 * the table's alone stays so. */
		if (atomic_load(&e->refs) > 1)
			continue; /* held by a reader */
		if (e->referenced) {
			e->referenced = false;
			continue;
		}
		tv_cache_handle **slot = table_find(s, e->hash, e->file, e->off);
		assert(*slot == e);
		bool gone = table_remove(s, slot);
		assert(gone);
		(void)gone;
		e->next_hash = *dead;
		*dead = e;
	}
	atomic_store(&s->over, s->usage > shard_room(c, s));
}

static void shard_evict(const tv_cache *c, cache_shard *s, tv_cache_handle **dead)
{
	shard_evict_spare(c, s, 0, dead);
}

static void value_delete(tv_cache *c, void *value, void (*deleter)(void *value))
{
	if (deleter)
		deleter(value);
	else
		tv_cache_dealloc(c, value);
}

static void entry_delete(tv_cache *c, tv_cache_handle *e)
{
	bool embedded = e->embedded; /* e goes with the value if so */
	value_delete(c, e->value, e->deleter);
	if (!embedded)
		free(e);
}

static void delete_chain(tv_cache *c, tv_cache_handle *e)
{
	while (e) {
		tv_cache_handle *next = e->next_hash;
		entry_delete(c, e);
		e = next;
	}
}

/* ---- The interface ----------------------------------------------------- */

static cache_shard *shard_of(tv_cache *c, uint64_t hash)
{
	return &c->shards[c->shard_bits ? hash >> (64 - c->shard_bits) : 0];
}

tv_cache *tv_cache_new(size_t capacity)
{
	unsigned bits = 0;
	while (bits < CACHE_MAX_SHARD_BITS && capacity >> (bits + 1) >= CACHE_MIN_SHARD)
		bits++;
	size_t n = (size_t)1 << bits;
	tv_cache *c;
	if (posix_memalign((void **)&c, 64, sizeof *c + n * sizeof(cache_shard)))
		return NULL;
	c->shard_bits = bits;
	atomic_init(&c->reserved, 0);
	/* Caches under 512 KiB keep no free buffers: entries get every byte. */
	c->pool_cap = capacity / POOL_SHARE / 4096 * 4096;
	c->pooled = 0;
	memset(c->pool, 0, sizeof c->pool);
	if (pthread_mutex_init(&c->pool_mu, NULL)) {
		free(c);
		return NULL;
	}
	size_t entries = capacity - c->pool_cap;
	for (size_t i = 0; i < n; i++) {
		cache_shard *s = &c->shards[i];
		s->capacity = entries / n + (i < entries % n); /* sums to entries */
		s->usage = s->count = 0;
		s->nbuckets = 64;
		s->table = calloc(s->nbuckets, sizeof *s->table);
		s->hand = NULL;
		atomic_init(&s->over, false);
		atomic_init(&s->hits, 0);
		atomic_init(&s->misses, 0);
		if (!s->table || pthread_mutex_init(&s->mu, NULL)) {
			free(s->table);
			for (size_t j = 0; j < i; j++) {
				pthread_mutex_destroy(&c->shards[j].mu);
				free(c->shards[j].table);
			}
			pthread_mutex_destroy(&c->pool_mu);
			free(c);
			return NULL;
		}
	}
	return c;
}

void tv_cache_free(tv_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < (size_t)1 << c->shard_bits; i++) {
		cache_shard *s = &c->shards[i];
		while (s->hand) {
			tv_cache_handle *e = s->hand;
			assert(atomic_load(&e->refs) == 1); /* every handle released */
			ring_remove(s, e);
			entry_delete(c, e);
		}
		free(s->table);
		pthread_mutex_destroy(&s->mu);
	}
	for (size_t k = 0; k <= POOL_CLASSES; k++)
		while (c->pool[k]) {
			pooled_buf *b = c->pool[k];
			c->pool[k] = b->next;
			free((value_hdr *)b - 1);
		}
	pthread_mutex_destroy(&c->pool_mu);
	free(c);
}

tv_cache_handle *tv_cache_lookup(tv_cache *c, uint64_t file, uint64_t off)
{
	return tv_cache_lookup_ahead(c, file, off, 0);
}

/* Where a value from tv_cache_alloc whose entry is e starts.  Computed as
 * an integer: e may be a malloc'd entry, for which it means nothing, and
 * the result is only ever prefetched. */
static uintptr_t embedded_value(const tv_cache_handle *e)
{
	return (uintptr_t)e - offsetof(value_hdr, entry) + sizeof(value_hdr);
}

/* Starts loading the two lines of e's value that end at byte `ahead`
 * (see tv_cache_lookup_ahead).  Only a hint: e may be stale.  Always
 * inlined, as is prefetch_span: gcc finds a function that only prefetches
 * free of side effects and deletes the calls to it that it has not
 * inlined yet. */
static inline __attribute__((always_inline)) void prefetch_ahead(const tv_cache_handle *e, size_t ahead)
{
	if (e && ahead) {
		__builtin_prefetch((const void *)(embedded_value(e) + ahead - 1));
		__builtin_prefetch((const void *)(embedded_value(e) + (ahead > 64 ? ahead - 65 : 0)));
	}
}

/* The lookup's end, shard lock held: e (NULL: a miss) is referenced and
 * counted. */
static tv_cache_handle *lookup_done(cache_shard *s, tv_cache_handle *e)
{
	if (e) {
		atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
		e->referenced = true;
	}
	count(e ? &s->hits : &s->misses);
	pthread_mutex_unlock(&s->mu);
	return e;
}

tv_cache_handle *tv_cache_lookup_ahead(tv_cache *c, uint64_t file, uint64_t off, size_t ahead)
{
	uint64_t hash = cache_hash(file, off);
	cache_shard *s = shard_of(c, hash);
	pthread_mutex_lock(&s->mu);
	prefetch_ahead(s->table[hash & (s->nbuckets - 1)], ahead);
	return lookup_done(s, *table_find(s, hash, file, off));
}

/* Starts loading the lines of e's value up to byte `span` and the entry's
 * own last line (see tv_cache_lookup_slot).  Only a hint: e may be stale. */
static inline __attribute__((always_inline)) void prefetch_span(const tv_cache_handle *e, size_t span)
{
	if (!e)
		return;
	uintptr_t v = embedded_value(e);
	__builtin_prefetch((const void *)(v - 1));
	for (uintptr_t a = v & ~(uintptr_t)63; a < v + span; a += 256) { /* may pass it by 3 */
		__builtin_prefetch((const void *)a);
		__builtin_prefetch((const void *)(a + 64));
		__builtin_prefetch((const void *)(a + 128));
		__builtin_prefetch((const void *)(a + 192));
	}
}

/* The slot is read before the lock only to start the entry loading (an
 * entry found there may be gone by the time the lock is held, and is
 * never touched); under the lock it is exact, since only the lock holder
 * fills or empties it. */
tv_cache_handle *tv_cache_lookup_slot(tv_cache *c, uint64_t file, uint64_t off,
                                      tv_cache_handle *_Atomic *slot, size_t span)
{
	prefetch_span(atomic_load_explicit(slot, memory_order_relaxed), span);
	uint64_t hash = cache_hash(file, off);
	cache_shard *s = shard_of(c, hash);
	pthread_mutex_lock(&s->mu);
	tv_cache_handle *e = atomic_load_explicit(slot, memory_order_relaxed);
	if (!e) {
		e = *table_find(s, hash, file, off);
		if (e && !e->slot) {
			e->slot = slot;
			atomic_store_explicit(slot, e, memory_order_relaxed);
		}
	}
	assert(!e || (e->in_cache && e->file == file && e->off == off));
	return lookup_done(s, e);
}

/* Only tv_cache_lookup_slot fills a slot, and its caller is done with it:
 * a slot seen empty stays so. */
void tv_cache_unslot(tv_cache *c, uint64_t file, uint64_t off, tv_cache_handle *_Atomic *slot)
{
	if (!atomic_load_explicit(slot, memory_order_relaxed))
		return;
	cache_shard *s = shard_of(c, cache_hash(file, off));
	pthread_mutex_lock(&s->mu);
	tv_cache_handle *e = atomic_load_explicit(slot, memory_order_relaxed);
	if (e) {
		assert(e->slot == slot);
		e->slot = NULL;
		atomic_store_explicit(slot, NULL, memory_order_relaxed);
	}
	pthread_mutex_unlock(&s->mu);
}

tv_cache_handle *tv_cache_insert(tv_cache *c, uint64_t file, uint64_t off, void *value,
                                 size_t charge, void (*deleter)(void *value))
{
	tv_cache_handle *e = deleter ? malloc(sizeof *e) : &((value_hdr *)value - 1)->entry;
	if (!e) {
		value_delete(c, value, deleter);
		return NULL;
	}
	e->embedded = !deleter;
	e->file = file;
	e->off = off;
	e->hash = cache_hash(file, off);
	e->value = value;
	e->deleter = deleter;
	e->charge = charge;
	e->next_hash = e->prev = e->next = NULL;
	e->slot = NULL;
	atomic_init(&e->refs, 1); /* the caller's handle */
	e->in_cache = false;
	e->referenced = false;

	cache_shard *s = shard_of(c, e->hash);
	tv_cache_handle *dead = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->capacity > 0) { /* a zero-capacity cache hands out detached entries */
		tv_cache_handle **slot = table_find(s, e->hash, file, off);
		if (*slot) { /* replaces an older copy; its holders keep it alive */
			tv_cache_handle *old = *slot;
			if (table_remove(s, slot)) {
				old->next_hash = dead;
				dead = old;
			}
		}
		tv_cache_handle **head = &s->table[e->hash & (s->nbuckets - 1)];
		e->next_hash = *head;
		*head = e;
		e->in_cache = true;
		atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
		ring_insert(s, e);
		s->usage += charge;
		s->count++;
		shard_evict(c, s, &dead);
		if (s->count > s->nbuckets)
			table_grow(s);
	}
	pthread_mutex_unlock(&s->mu);
	delete_chain(c, dead);
	return e;
}

/* Reads only what never changes while a handle is held. */
void *tv_cache_value(tv_cache_handle *h)
{
	assert(h);
	return h->value;
}

/* Takes no lock unless the shard waits over its room for held entries
 * to go: a hit costs the shard lock once, in the lookup.  If one other
 * reference is left it may be the table's alone, so the shard sweeps
 * again.  The decrement, the flag's load and the sweep's load of the
 * count and store of the flag are sequentially consistent: a sweep that
 * passed over this entry because of the reference dropped here sets the
 * flag where this load sees it. */
void tv_cache_release(tv_cache *c, tv_cache_handle *h)
{
	cache_shard *s = shard_of(c, h->hash);
	unsigned old = atomic_fetch_sub(&h->refs, 1);
	assert(old > 0);
	if (old == 1) {
		entry_delete(c, h); /* out of the table: the last holder deletes */
		return;
	}
	if (old != 2 || !atomic_load(&s->over))
		return;
	tv_cache_handle *dead = NULL;
	pthread_mutex_lock(&s->mu);
	shard_evict(c, s, &dead);
	pthread_mutex_unlock(&s->mu);
	delete_chain(c, dead);
}

/* ---- Value memory and reservations ------------------------------------- */

static size_t value_class(size_t n)
{
	return n <= (size_t)POOL_GRAIN * POOL_CLASSES ? (n + POOL_GRAIN - 1) / POOL_GRAIN : 0;
}

/* Bytes mapped for a value of n bytes too big for a size class. */
static size_t mapped_bytes(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (sizeof(value_hdr) + n + page - 1) / page * page;
}

/* Bytes of a value of n bytes as allocated: its class's size. */
static size_t value_bytes(size_t n)
{
	size_t cls = value_class(n);
	return cls ? cls * POOL_GRAIN : n;
}

void *tv_cache_alloc(tv_cache *c, size_t n)
{
	assert(n > 0);
	size_t cls = value_class(n), bytes = value_bytes(n);
	if (cls && c->pool_cap) {
		pthread_mutex_lock(&c->pool_mu);
		pooled_buf *b = c->pool[cls];
		if (b) {
			c->pool[cls] = b->next;
			c->pooled -= bytes;
		}
		pthread_mutex_unlock(&c->pool_mu);
		if (b)
			return b;
	}
	if (bytes > SIZE_MAX / 2)
		return NULL;
	value_hdr *h;
	if (cls) {
		if (!(h = malloc(sizeof *h + bytes)))
			return NULL;
		h->mapped = 0;
	} else {
		/* Big values (index and filter blocks) are mapped so that a
		 * closed table's blocks leave the process instead of staying as
		 * holes in malloc's heap, and so that malloc's mmap threshold,
		 * which rises after such frees, does not matter. */
		size_t len = mapped_bytes(n);
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		h = p;
		h->mapped = len;
	}
	h->cls = cls;
	return h + 1;
}

void tv_cache_dealloc(tv_cache *c, void *p)
{
	if (!p)
		return;
	value_hdr *h = (value_hdr *)p - 1;
	size_t bytes = h->cls * POOL_GRAIN;
	if (h->cls) {
		pthread_mutex_lock(&c->pool_mu);
		bool keep = c->pooled + bytes <= c->pool_cap;
		if (keep) {
			pooled_buf *b = p;
			b->next = c->pool[h->cls];
			c->pool[h->cls] = b;
			c->pooled += bytes;
		}
		pthread_mutex_unlock(&c->pool_mu);
		if (keep)
			return;
		free(h);
	} else {
		munmap(h, h->mapped);
	}
}

size_t tv_cache_charge(size_t n)
{
	if (!value_class(n))
		return mapped_bytes(n);
	return (sizeof(value_hdr) + value_bytes(n) + MALLOC_OVERHEAD + 15) / 16 * 16;
}

/* Evicts in every shard down to its room less `spare`. */
static void evict_all(tv_cache *c, size_t spare)
{
	for (size_t i = 0; i < (size_t)1 << c->shard_bits; i++) {
		cache_shard *s = &c->shards[i];
		tv_cache_handle *dead = NULL;
		pthread_mutex_lock(&s->mu);
		shard_evict_spare(c, s, spare, &dead);
		pthread_mutex_unlock(&s->mu);
		delete_chain(c, dead);
	}
}

/* Makes room before it counts the bytes, so that the entries and the
 * reservation are not together above the capacity; the second pass
 * evicts what was inserted meanwhile.  Reservations change under the
 * free lists' lock, which tv_cache_usage holds while it adds up. */
void tv_cache_reserve(tv_cache *c, size_t bytes)
{
	evict_all(c, (bytes >> c->shard_bits) + 1);
	pthread_mutex_lock(&c->pool_mu);
	atomic_fetch_add_explicit(&c->reserved, bytes, memory_order_relaxed);
	pthread_mutex_unlock(&c->pool_mu);
	evict_all(c, 0);
}

void tv_cache_unreserve(tv_cache *c, size_t bytes)
{
	pthread_mutex_lock(&c->pool_mu);
	size_t old = atomic_fetch_sub_explicit(&c->reserved, bytes, memory_order_relaxed);
	pthread_mutex_unlock(&c->pool_mu);
	assert(old >= bytes);
	(void)old;
}

size_t tv_cache_reserved(tv_cache *c)
{
	return atomic_load_explicit(&c->reserved, memory_order_relaxed);
}

/* Holds the free lists' lock throughout, so that nothing is counted
 * twice: an entry evicted meanwhile reaches a free list only after the
 * sum (not as an entry and a free buffer), and a reservation cannot
 * change (not as the entries it evicted or will let in, and itself).
 * Evictions give buffers back only after they unlock their shard, so the
 * lock order is safe. */
size_t tv_cache_usage(tv_cache *c)
{
	pthread_mutex_lock(&c->pool_mu);
	size_t total = c->pooled + tv_cache_reserved(c);
	for (size_t i = 0; i < (size_t)1 << c->shard_bits; i++) {
		cache_shard *s = &c->shards[i];
		pthread_mutex_lock(&s->mu);
		total += s->usage;
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&c->pool_mu);
	return total;
}

static uint64_t sum_counter(tv_cache *c, bool hits)
{
	uint64_t total = 0;
	for (size_t i = 0; i < (size_t)1 << c->shard_bits; i++) {
		cache_shard *s = &c->shards[i];
		total += atomic_load_explicit(hits ? &s->hits : &s->misses, memory_order_relaxed);
	}
	return total;
}

uint64_t tv_cache_hits(tv_cache *c)
{
	return sum_counter(c, true);
}

uint64_t tv_cache_misses(tv_cache *c)
{
	return sum_counter(c, false);
}
