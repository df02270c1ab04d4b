/*
 * arena.h - a bump allocator for the memtable.
 *
 * Memtable nodes live until the whole memtable is dropped, so they are
 * carved from large blocks and freed all at once.  Allocation is not
 * thread-safe (the memtable has one writer); the usage counter may be read
 * from any thread.
 */
#ifndef TV_ARENA_H
#define TV_ARENA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tv_arena_block tv_arena_block;

/* Standard blocks given back by destroyed arenas, kept for new arenas to
 * take instead of mapping fresh memory (whose every page the kernel must
 * fault in and zero on first touch).  A block is kept only while the
 * bytes of standard blocks held by the pool's arenas and by the pool
 * stay within `limit`, so the pool never makes its arenas' memory grow
 * past what they held at their largest below that limit.  Once no arena
 * has taken a block for a while (tv_arena_pool_trim_idle), the pool
 * unmaps what it keeps beyond `idle_limit`.  Any thread. */
typedef struct tv_arena_pool {
	pthread_mutex_t mu;
	tv_arena_block *spare; /* kept blocks */
	size_t nspare;         /* bytes in them */
	size_t out;            /* bytes in standard blocks of live arenas */
	size_t limit, idle_limit;
	uint64_t taken;        /* standard blocks arenas have taken */
	uint64_t seen;         /* `taken` at the last tv_arena_pool_trim_idle */
	uint64_t seen_ms;      /* when `taken` last changed, as that call saw */
} tv_arena_pool;

typedef struct tv_arena {
	char *ptr;              /* next free byte in the current block */
	size_t left;            /* bytes left in the current block */
	tv_arena_block *blocks; /* every block, newest first */
	atomic_size_t usage;    /* bytes taken, for budgeting */
	tv_arena_pool *pool;    /* where standard blocks come from and go, or NULL */
} tv_arena;

/* idle_limit <= limit. */
void tv_arena_pool_init(tv_arena_pool *p, size_t limit, size_t idle_limit);
/* Called now and then with the time now_ms: unmaps the kept blocks beyond
 * idle_limit if no arena has taken a block for idle_ms. */
void tv_arena_pool_trim_idle(tv_arena_pool *p, uint64_t now_ms, uint64_t idle_ms);
/* Unmaps the kept blocks; no arena may use the pool any more. */
void tv_arena_pool_destroy(tv_arena_pool *p);
/* Bytes in the blocks the pool keeps now. */
size_t tv_arena_pool_spare(tv_arena_pool *p);

void tv_arena_init(tv_arena *a);
/* The same for an arena whose standard blocks come from pool p when it
 * has some, and go back to it on destroy. */
void tv_arena_init_pooled(tv_arena *a, tv_arena_pool *p);
void tv_arena_destroy(tv_arena *a);
/* Frees everything allocated but keeps one standard block for reuse, so a
 * short-lived arena reused in a loop does not map memory each time. */
void tv_arena_reset(tv_arena *a);
/* Returns memory aligned for any pointer or 64-bit integer, or NULL. */
void *tv_arena_alloc(tv_arena *a, size_t n);
size_t tv_arena_usage(const tv_arena *a);

#endif
