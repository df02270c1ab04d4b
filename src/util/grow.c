/*
 * grow.c - tv_grow, the doubling growth of plain arrays (grow.h).
 *
 * The caller's pointer is read and written through memcpy, so any
 * element type can be grown without casting its pointer to void **.
 */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trove.h"

int tv_grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : first;
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return TROVE_ENOMEM;
		nc *= 2;
	}
	if (nc > SIZE_MAX / elem)
		return TROVE_ENOMEM;
	void *old, *p;
	memcpy(&old, arrp, sizeof old);
	if (!(p = realloc(old, nc * elem)))
		return TROVE_ENOMEM;
	memcpy(arrp, &p, sizeof p);
	*cap = nc;
	return 0;
}

int tv_grow_mapped(void *arrp, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes = *cap ? *cap * elem : page;
	while (bytes / elem < need) {
		if (bytes > SIZE_MAX / 2)
			return TROVE_ENOMEM;
		bytes *= 2;
	}
	bytes = (bytes + page - 1) / page * page;
	void *old, *p;
	memcpy(&old, arrp, sizeof old);
#ifdef MREMAP_MAYMOVE
	if (old)
		p = mremap(old, *cap * elem, bytes, MREMAP_MAYMOVE);
	else
#endif
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return TROVE_ENOMEM;
#ifndef MREMAP_MAYMOVE
	if (old) {
		memcpy(p, old, *cap * elem);
		munmap(old, *cap * elem);
	}
#endif
	memcpy(arrp, &p, sizeof p);
	*cap = bytes / elem;
	return 0;
}

void tv_unmap_array(void *arr, size_t cap, size_t elem)
{
	if (arr)
		munmap(arr, cap * elem);
}
