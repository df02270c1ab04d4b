/*
 * arena.c - bump allocation in 64 KiB blocks for the memtable.
 *
 * Requests larger than a quarter block get a block of their own so that a
 * big value does not waste the rest of the current block.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#define ARENA_BLOCK (64u << 10)
#define ARENA_ALIGN 8

struct tv_arena_block {
	tv_arena_block *next;
	size_t size;
	_Alignas(16) char data[];
};

void tv_arena_init(tv_arena *a)
{
	a->ptr = NULL;
	a->left = 0;
	a->blocks = NULL;
	atomic_init(&a->usage, 0);
}

void tv_arena_destroy(tv_arena *a)
{
	tv_arena_block *b = a->blocks;
	while (b) {
		tv_arena_block *next = b->next;
		free(b);
		b = next;
	}
	tv_arena_init(a);
}

static char *new_block(tv_arena *a, size_t n)
{
	tv_arena_block *b = malloc(sizeof *b + n);
	if (!b)
		return NULL;
	b->next = a->blocks;
	b->size = n;
	a->blocks = b;
	atomic_fetch_add_explicit(&a->usage, sizeof *b + n, memory_order_relaxed);
	return b->data;
}

void tv_arena_reset(tv_arena *a)
{
	tv_arena_block *keep = NULL, *b = a->blocks;
	while (b) {
		tv_arena_block *next = b->next;
		if (!keep && b->size == ARENA_BLOCK)
			keep = b;
		else
			free(b);
		b = next;
	}
	tv_arena_init(a);
	if (keep) {
		keep->next = NULL;
		a->blocks = keep;
		a->ptr = keep->data;
		a->left = ARENA_BLOCK;
		atomic_store(&a->usage, sizeof *keep + ARENA_BLOCK);
	}
}

void *tv_arena_alloc(tv_arena *a, size_t n)
{
	if (n == 0 || n > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (n <= a->left) {
		char *p = a->ptr;
		a->ptr += n;
		a->left -= n;
		return p;
	}
	if (n > ARENA_BLOCK / 4)
		return new_block(a, n);
	char *p = new_block(a, ARENA_BLOCK);
	if (!p)
		return NULL;
	a->ptr = p + n;
	a->left = ARENA_BLOCK - n;
	return p;
}

size_t tv_arena_usage(const tv_arena *a)
{
	return atomic_load_explicit(&a->usage, memory_order_relaxed);
}
