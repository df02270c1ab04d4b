/*
 * grow.h - growing a plain C array by doubling.
 *
 * The engine keeps many small arrays that grow one element at a time
 * (edit file lists, log lists, the writer's overlay, file lists in the
 * fault-injecting VFS); tv_grow is their one growth rule, so each site
 * says only what it needs.
 */
#ifndef TV_GROW_H
#define TV_GROW_H

#include <stddef.h>

/* Makes the array *arrp (of elem-byte elements, *cap of them allocated)
 * hold at least need elements: doubles *cap, starting from first, until it
 * does.  Returns 0, or TROVE_ENOMEM leaving the array and *cap as they
 * were.  arrp is the address of the caller's typed pointer. */
int tv_grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first);

#endif
