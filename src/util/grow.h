/*
 * grow.h - growing a plain C array by doubling.
 *
 * The engine keeps many small arrays that grow one element at a time
 * (edit file lists, log lists, the writer's overlay, file lists in the
 * fault-injecting VFS); tv_grow is their one growth rule, so each site
 * says only what it needs.  tv_grow_mapped grows the big ones in mapped
 * memory instead of malloc's.
 */
#ifndef TV_GROW_H
#define TV_GROW_H

#include <stddef.h>

/* Makes the array *arrp (of elem-byte elements, *cap of them allocated)
 * hold at least need elements: doubles *cap, starting from first, until it
 * does.  Returns 0, or TROVE_ENOMEM leaving the array and *cap as they
 * were.  arrp is the address of the caller's typed pointer. */
int tv_grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first);

/* Like tv_grow for arrays that reach megabytes and are freed whole: the
 * array is mapped (whole pages, *cap counts every element they hold) and
 * moved with mremap where there is one.  Freeing a malloc'd block of
 * several MiB raises glibc's mmap and trim thresholds to match, after
 * which every thread's heap keeps that much free memory; mapped arrays
 * leave them alone.  Free with tv_unmap_array. */
int tv_grow_mapped(void *arrp, size_t *cap, size_t need, size_t elem);
void tv_unmap_array(void *arr, size_t cap, size_t elem);

#endif
