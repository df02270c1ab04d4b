/*
 * dumpfmt.h - the binary Trove dump format: a writer and a reader.
 *
 * The format is described byte by byte in docs/FORMAT.md, "Dump files".
 * It is what `trove dump` writes and `trove load` reads, and it is also the
 * wire format between the trove tool and its trove-peer-* helpers (import
 * and export of GDBM, ndbm, Berkeley DB and LMDB files).  So this module
 * depends on libc alone: never on trove.h, never on a peer's library.
 *
 * The reader treats its input as hostile: every length is bounded before
 * anything is allocated or read, every record is checksummed before it is
 * handed out, and every failure names the byte offset where it happened.
 */
#ifndef TROVE_DUMPFMT_H
#define TROVE_DUMPFMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DUMP_MAGIC "TROVEDMP"
#define DUMP_VERSION 1u
#define DUMP_HEADER_SIZE 36u       /* magic, version, flags, time, hint, crc */
#define DUMP_PAIR_OVERHEAD 21u     /* type, lengths, expiry, crc */
#define DUMP_END_SIZE 13u          /* type, count, crc */
#define DUMP_MAX_KEY 65535u        /* = TROVE_MAX_KEY */
#define DUMP_MAX_VALUE (64u << 20) /* = TROVE_MAX_VALUE */

enum { DUMP_REC_PAIR = 'P', DUMP_REC_END = 'E' };

/* CRC-32 as zlib's crc32() computes it (ISO-HDLC: reflected polynomial
 * 0xedb88320, initial value and final xor 0xffffffff), continued from crc
 * (start with 0). */
uint32_t dump_crc32(uint32_t crc, const void *p, size_t n);

/* ---- Writing ---------------------------------------------------------- */

typedef struct dump_writer {
	FILE *f;
	uint64_t records; /* pairs written so far */
} dump_writer;

/* Each returns 0, or -1 when f reports a write error (errno says which).
 * dump_write_pair expects 1 <= kn <= DUMP_MAX_KEY, vn <= DUMP_MAX_VALUE and
 * expire_at_ms >= 0 (0: no expiry); the caller checks. */
int dump_write_header(dump_writer *w, FILE *f, int64_t created_ms, uint64_t hint);
int dump_write_pair(dump_writer *w, const void *k, size_t kn, const void *v, size_t vn,
                    int64_t expire_at_ms);
/* Writes the end record and flushes f. */
int dump_write_end(dump_writer *w);

/* ---- Reading ---------------------------------------------------------- */

typedef struct dump_reader {
	FILE *f;
	uint64_t off;       /* bytes consumed so far */
	uint64_t records;   /* pairs read so far */
	int64_t created_ms; /* from the header */
	uint64_t hint;      /* from the header: pairs announced, 0 = unknown */
	/* The current pair, valid until the next call.  key and val are
	 * NUL-terminated one byte past their lengths. */
	char *key, *val;
	size_t klen, vlen, vcap;
	int64_t expire_at_ms;
	uint64_t rec_off; /* offset of the current record */
	char err[256];    /* the last error, "offset N: what" */
} dump_reader;

/* Reads and checks the header from f.  0, or -1 with r->err set.  Call
 * dump_reader_free in both cases. */
int dump_read_header(dump_reader *r, FILE *f);
/* Reads the next record: 1 with a pair in r->key/val/expire_at_ms; 0 at
 * the end record (its count matched and nothing follows it); -1 with
 * r->err set on damage, truncation, a read error or no memory. */
int dump_read_next(dump_reader *r);
void dump_reader_free(dump_reader *r);

#endif
