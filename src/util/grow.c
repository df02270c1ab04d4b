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
