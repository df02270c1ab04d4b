/*
 * coding.h - fixed-width little-endian and varint encodings.
 *
 * Every on-disk integer in Trove is written by these functions, so the
 * byte order of every format is defined here and nowhere else (see
 * docs/FORMAT.md).  Decoders take an end pointer and never read past it:
 * they treat their input as hostile.
 */
#ifndef TV_CODING_H
#define TV_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TV_MAX_VARINT32 5
#define TV_MAX_VARINT64 10

static inline void tv_put_fixed32(char *p, uint32_t v)
{
	unsigned char *u = (unsigned char *)p;
	u[0] = (unsigned char)v;
	u[1] = (unsigned char)(v >> 8);
	u[2] = (unsigned char)(v >> 16);
	u[3] = (unsigned char)(v >> 24);
}

static inline void tv_put_fixed64(char *p, uint64_t v)
{
	tv_put_fixed32(p, (uint32_t)v);
	tv_put_fixed32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t tv_get_fixed32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] | ((uint32_t)u[1] << 8) | ((uint32_t)u[2] << 16) |
	       ((uint32_t)u[3] << 24);
}

static inline uint64_t tv_get_fixed64(const char *p)
{
	return (uint64_t)tv_get_fixed32(p) | ((uint64_t)tv_get_fixed32(p + 4) << 32);
}

/* Writes v at p (which must have room for TV_MAX_VARINT*), returns the
 * pointer past the last byte written. */
char *tv_encode_varint32(char *p, uint32_t v);
char *tv_encode_varint64(char *p, uint64_t v);
int tv_varint_length(uint64_t v);

/* Writes a varint32 length and then len bytes of data at p (which must
 * have room for TV_MAX_VARINT32 + len); returns the pointer past them. */
static inline char *tv_encode_lenprefixed(char *p, const void *data, uint32_t len)
{
	p = tv_encode_varint32(p, len);
	if (len)
		memcpy(p, data, len);
	return p + len;
}

/* Decodes a varint from [p, end).  Returns the pointer past it, or NULL if
 * the input ends early or the value overflows. */
const char *tv_decode_varint32(const char *p, const char *end, uint32_t *v);
const char *tv_decode_varint64(const char *p, const char *end, uint64_t *v);

#endif
