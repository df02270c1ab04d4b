/*
 * coding.c - varint encoders and bounds-checked decoders.
 *
 * A varint stores 7 bits per byte, low bits first; the high bit of a byte
 * says another byte follows.  Decoders reject input that runs past `end`
 * or encodes more bits than the target type holds.
 */
#include "coding.h"

char *tv_encode_varint32(char *p, uint32_t v)
{
	return tv_encode_varint64(p, v);
}

char *tv_encode_varint64(char *p, uint64_t v)
{
	unsigned char *u = (unsigned char *)p;
	while (v >= 0x80) {
		*u++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*u++ = (unsigned char)v;
	return (char *)u;
}

int tv_varint_length(uint64_t v)
{
	int n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

const char *tv_decode_varint64(const char *p, const char *end, uint64_t *v)
{
	uint64_t result = 0;
	for (unsigned shift = 0; shift <= 63 && p < end; shift += 7) {
		uint64_t byte = *(const unsigned char *)p++;
		if (shift == 63 && byte > 1)
			return NULL; /* more than 64 bits */
		result |= (byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*v = result;
			return p;
		}
	}
	return NULL;
}

const char *tv_decode_varint32(const char *p, const char *end, uint32_t *v)
{
	if (p < end && !(*(const unsigned char *)p & 0x80)) {
		*v = *(const unsigned char *)p; /* the common one-byte case */
		return p + 1;
	}
	uint64_t w;
	const char *q = tv_decode_varint64(p, end, &w);
	if (!q || w > UINT32_MAX)
		return NULL;
	*v = (uint32_t)w;
	return q;
}
