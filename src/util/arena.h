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

#include <stdatomic.h>
#include <stddef.h>

typedef struct tv_arena_block tv_arena_block;

typedef struct tv_arena {
	char *ptr;                 /* next free byte in the current block */
	size_t left;               /* bytes left in the current block */
	tv_arena_block *blocks;    /* every block, newest first */
	atomic_size_t usage;       /* bytes taken, for budgeting */
} tv_arena;

void tv_arena_init(tv_arena *a);
void tv_arena_destroy(tv_arena *a);
/* Frees everything allocated but keeps one standard block for reuse, so a
 * short-lived arena reused in a loop does not map memory each time. */
void tv_arena_reset(tv_arena *a);
/* Returns memory aligned for any pointer or 64-bit integer, or NULL. */
void *tv_arena_alloc(tv_arena *a, size_t n);
size_t tv_arena_usage(const tv_arena *a);

#endif
