/*
 * arena.c - bump allocation in 64 KiB blocks for the memtable.
 *
 * Requests larger than a quarter block get a block of their own so that a
 * big value does not waste the rest of the current block.
 *
 * Blocks are mapped from the kernel (mmap), not taken from malloc, so that
 * a dropped memtable's memory leaves the process at once.  From malloc it
 * stayed behind: a memtable is tens of MiB of blocks freed all together,
 * and by the time the next memtable grows, smaller allocations (cached
 * blocks, read buffers) have been carved out of the freed blocks, so the
 * new memtable takes fresh memory while the old one's lingers as free
 * space in malloc's heaps (in the benchmark's 1M-key run about 70 MiB of
 * RSS, a memtable's worth, beside a 64 MiB memtable).  A request too big
 * for a standard block gets a block of its own from malloc instead: one
 * mapping per big value could run into the kernel's limit on mappings
 * (vm.max_map_count) in a large memtable of values of a few tens of KiB.
 *
 * An arena may take its standard blocks from a tv_arena_pool and give
 * them back there: the next memtable then reuses the blocks of the one
 * flushed before it, instead of mapping fresh memory whose every page the
 * kernel faults in and zeroes on first touch.  The pool's limit keeps it
 * from holding memory the memtables' budget does not allow, and its idle
 * limit from holding more than a write burst needs once writes stop.
 */
#include "arena.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define ARENA_BLOCK (64u << 10) /* bytes mapped for a standard block */
#define ARENA_ALIGN 8

struct tv_arena_block {
	tv_arena_block *next;
	size_t size; /* bytes taken, this header included */
	int mapped;  /* 1: a standard block (mapped); 0: from malloc */
	_Alignas(16) char data[];
};

/* Bytes a standard block offers. */
#define BLOCK_DATA (ARENA_BLOCK - sizeof(tv_arena_block))

void tv_arena_pool_init(tv_arena_pool *p, size_t limit, size_t idle_limit)
{
	assert(idle_limit <= limit);
	pthread_mutex_init(&p->mu, NULL);
	p->spare = NULL;
	p->nspare = 0;
	p->out = 0;
	p->limit = limit;
	p->idle_limit = idle_limit;
	p->taken = p->seen = p->seen_ms = 0;
}

void tv_arena_pool_trim_idle(tv_arena_pool *p, uint64_t now_ms, uint64_t idle_ms)
{
	tv_arena_block *drop = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->taken != p->seen) {
		p->seen = p->taken;
		p->seen_ms = now_ms;
	} else if (now_ms - p->seen_ms >= idle_ms) {
		while (p->spare && p->out + p->nspare > p->idle_limit) {
			tv_arena_block *b = p->spare;
			p->spare = b->next;
			p->nspare -= b->size;
			b->next = drop;
			drop = b;
		}
	}
	pthread_mutex_unlock(&p->mu);
	while (drop) {
		tv_arena_block *next = drop->next;
		munmap(drop, drop->size);
		drop = next;
	}
}

void tv_arena_pool_destroy(tv_arena_pool *p)
{
	assert(p->out == 0);
	while (p->spare) {
		tv_arena_block *b = p->spare;
		p->spare = b->next;
		munmap(b, b->size);
	}
	pthread_mutex_destroy(&p->mu);
}

size_t tv_arena_pool_spare(tv_arena_pool *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->nspare;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void tv_arena_init(tv_arena *a)
{
	tv_arena_init_pooled(a, NULL);
}

void tv_arena_init_pooled(tv_arena *a, tv_arena_pool *p)
{
	a->ptr = NULL;
	a->left = 0;
	a->blocks = NULL;
	atomic_init(&a->usage, 0);
	a->pool = p;
}

/* Gives back the list of blocks b of arena a: standard blocks to a's pool
 * while it has room for them, the rest to the system. */
static void release(tv_arena *a, tv_arena_block *b)
{
	tv_arena_pool *p = a->pool;
	if (p) {
		size_t mapped = 0;
		for (tv_arena_block *x = b; x; x = x->next)
			mapped += x->mapped ? x->size : 0;
		pthread_mutex_lock(&p->mu);
		p->out -= mapped;
		while (b && (!b->mapped || p->out + p->nspare + b->size <= p->limit)) {
			tv_arena_block *next = b->next;
			if (b->mapped) {
				b->next = p->spare;
				p->spare = b;
				p->nspare += b->size;
			} else {
				free(b);
			}
			b = next;
		}
		pthread_mutex_unlock(&p->mu);
	}
	while (b) {
		tv_arena_block *next = b->next;
		if (b->mapped)
			munmap(b, b->size);
		else
			free(b);
		b = next;
	}
}

void tv_arena_destroy(tv_arena *a)
{
	release(a, a->blocks);
	tv_arena_init_pooled(a, a->pool);
}

/* A standard block: a kept one from a's pool, or a fresh mapping; NULL
 * on failure. */
static tv_arena_block *standard_block(tv_arena *a)
{
	tv_arena_pool *p = a->pool;
	tv_arena_block *b = NULL;
	if (p) {
		pthread_mutex_lock(&p->mu);
		if ((b = p->spare) != NULL) {
			p->spare = b->next;
			p->nspare -= ARENA_BLOCK;
		}
		p->out += ARENA_BLOCK;
		p->taken++;
		pthread_mutex_unlock(&p->mu);
		if (b)
			return b;
	}
	void *m = mmap(NULL, ARENA_BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED)
		return m;
	if (p) {
		pthread_mutex_lock(&p->mu);
		p->out -= ARENA_BLOCK;
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

/* Maps a standard block, or mallocs a block of its own for a request of n
 * bytes; NULL on failure. */
static char *new_block(tv_arena *a, size_t n)
{
	tv_arena_block *b;
	size_t size;
	if (n == BLOCK_DATA) {
		size = ARENA_BLOCK;
		if (!(b = standard_block(a)))
			return NULL;
		b->mapped = 1;
	} else {
		if (n > SIZE_MAX - sizeof(tv_arena_block))
			return NULL;
		size = sizeof(tv_arena_block) + n;
		b = malloc(size);
		if (!b)
			return NULL;
		b->mapped = 0;
	}
	b->next = a->blocks;
	b->size = size;
	a->blocks = b;
	atomic_fetch_add_explicit(&a->usage, size, memory_order_relaxed);
	return b->data;
}

void tv_arena_reset(tv_arena *a)
{
	tv_arena_block *keep = NULL, **at = &a->blocks;
	for (tv_arena_block *b = a->blocks; b; b = b->next) {
		if (b->mapped) {
			keep = b;
			*at = b->next;
			break;
		}
		at = &b->next;
	}
	release(a, a->blocks);
	tv_arena_init_pooled(a, a->pool);
	if (keep) {
		keep->next = NULL;
		a->blocks = keep;
		a->ptr = keep->data;
		a->left = BLOCK_DATA;
		atomic_store(&a->usage, ARENA_BLOCK);
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
	if (n > BLOCK_DATA / 4)
		return new_block(a, n);
	char *p = new_block(a, BLOCK_DATA);
	if (!p)
		return NULL;
	a->ptr = p + n;
	a->left = BLOCK_DATA - n;
	return p;
}

size_t tv_arena_usage(const tv_arena *a)
{
	return atomic_load_explicit(&a->usage, memory_order_relaxed);
}
