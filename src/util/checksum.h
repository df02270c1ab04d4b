/*
 * checksum.h - the checksum every on-disk record and block carries.
 *
 * It is the low 32 bits of XXH3-64 (libxxhash): much faster than CRC32C in
 * software and strong enough to catch torn writes and bit rot.  The stored
 * form is masked (rotated and offset) so that a checksum of data that
 * itself contains checksums does not degenerate.  docs/FORMAT.md names
 * this function for every format.
 */
#ifndef TV_CHECKSUM_H
#define TV_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

uint32_t tv_checksum(const void *data, size_t len);

/* Checksum of the concatenation a||b, without copying. */
uint32_t tv_checksum2(const void *a, size_t alen, const void *b, size_t blen);

/* 64-bit hash for bloom filters and hash tables (XXH3-64). */
uint64_t tv_hash64(const void *data, size_t len);

#endif
