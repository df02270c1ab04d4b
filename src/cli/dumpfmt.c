/*
 * dumpfmt.c - writer and reader of the binary Trove dump format.
 *
 * Layout (docs/FORMAT.md, "Dump files"): a 36-byte header, then pair
 * records ('P': lengths, expiry, key, value, CRC-32), then one end record
 * ('E': the number of pairs, CRC-32), then nothing.  Integers are
 * little-endian whatever the machine, so dumps move between machines.
 *
 * Each record carries its own checksum so that a loader can verify and
 * commit a batch of records without waiting for the end of the stream;
 * the end record's count catches a stream cut at a record boundary.
 * Shared by the trove tool and the trove-peer-* helpers: libc only.
 */
#include "dumpfmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- CRC-32 ---------------------------------------------------------------------- */

static uint32_t crc_table[8][256];
static int crc_ready;

/* Slicing-by-8 tables; building them twice from two threads is harmless. */
static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (int i = 0; i < 256; i++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
			                  crc_table[0][crc_table[t - 1][i] & 0xff];
	crc_ready = 1;
}

uint32_t dump_crc32(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *s = p;
	if (!crc_ready)
		crc_init();
	crc = ~crc;
	while (n >= 8) {
		uint32_t lo = crc ^ ((uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
		                     (uint32_t)s[3] << 24);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][s[4]] ^ crc_table[2][s[5]] ^ crc_table[1][s[6]] ^
		      crc_table[0][s[7]];
		s += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *s++) & 0xff];
	return ~crc;
}

/* ---- Little-endian fields ----------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- Writing ------------------------------------------------------------------------ */

static int put_bytes(dump_writer *w, const void *p, size_t n)
{
	return n && fwrite(p, 1, n, w->f) != n ? -1 : 0;
}

int dump_write_header(dump_writer *w, FILE *f, int64_t created_ms, uint64_t hint)
{
	unsigned char h[DUMP_HEADER_SIZE];
	w->f = f;
	w->records = 0;
	memcpy(h, DUMP_MAGIC, 8);
	put32(h + 8, DUMP_VERSION);
	put32(h + 12, 0); /* flags: none defined in version 1 */
	put64(h + 16, (uint64_t)created_ms);
	put64(h + 24, hint);
	put32(h + 32, dump_crc32(0, h, 32));
	return put_bytes(w, h, sizeof h);
}

int dump_write_pair(dump_writer *w, const void *k, size_t kn, const void *v, size_t vn,
                    int64_t expire_at_ms)
{
	unsigned char h[17], c[4];
	h[0] = DUMP_REC_PAIR;
	put32(h + 1, (uint32_t)kn);
	put32(h + 5, (uint32_t)vn);
	put64(h + 9, (uint64_t)expire_at_ms);
	uint32_t crc = dump_crc32(0, h, sizeof h);
	crc = dump_crc32(crc, k, kn);
	crc = dump_crc32(crc, v, vn);
	put32(c, crc);
	if (put_bytes(w, h, sizeof h) || put_bytes(w, k, kn) || put_bytes(w, v, vn) ||
	    put_bytes(w, c, 4))
		return -1;
	w->records++;
	return 0;
}

int dump_write_end(dump_writer *w)
{
	unsigned char e[DUMP_END_SIZE];
	e[0] = DUMP_REC_END;
	put64(e + 1, w->records);
	put32(e + 9, dump_crc32(0, e, 9));
	if (put_bytes(w, e, sizeof e))
		return -1;
	return fflush(w->f) ? -1 : 0;
}

/* ---- Reading ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int fail(dump_reader *r, uint64_t off, const char *fmt,
                                                      ...)
{
	va_list ap;
	int n = snprintf(r->err, sizeof r->err, "offset %llu: ", (unsigned long long)off);
	va_start(ap, fmt);
	vsnprintf(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Reads exactly n bytes into p.  0, or -1 with the error set: `what` names
 * the part of the record that the input ended in. */
static int get_bytes(dump_reader *r, void *p, size_t n, const char *what)
{
	size_t got = n ? fread(p, 1, n, r->f) : 0;
	r->off += got;
	if (got == n)
		return 0;
	if (ferror(r->f))
		return fail(r, r->off, "read error: %s", strerror(errno));
	return fail(r, r->off, "truncated: the input ends inside %s (record at offset %llu)", what,
	            (unsigned long long)r->rec_off);
}

/* Reads the n-byte value, growing the buffer only as data actually
 * arrives, so that a hostile length cannot make us allocate 64 MiB for a
 * stream that holds a few bytes. */
static int get_value(dump_reader *r, size_t n)
{
	size_t got = 0;
	while (got < n || r->vcap == 0) {
		size_t step = n - got < 65536 ? n - got : 65536;
		if (got + step + 1 > r->vcap) {
			size_t cap = r->vcap ? r->vcap : 256;
			while (cap < got + step + 1)
				cap *= 2;
			char *p = realloc(r->val, cap);
			if (!p)
				return fail(r, r->off, "out of memory");
			r->val = p;
			r->vcap = cap;
		}
		if (get_bytes(r, r->val + got, step, "a value"))
			return -1;
		got += step;
		if (step == 0)
			break;
	}
	r->val[n] = 0;
	return 0;
}

int dump_read_header(dump_reader *r, FILE *f)
{
	unsigned char h[DUMP_HEADER_SIZE];
	memset(r, 0, sizeof *r);
	r->f = f;
	r->key = malloc(DUMP_MAX_KEY + 1);
	if (!r->key)
		return fail(r, 0, "out of memory");
	size_t got = fread(h, 1, sizeof h, f);
	r->off = got;
	if (got >= 8 && memcmp(h, DUMP_MAGIC, 8))
		return fail(r, 0, "not a Trove dump (bad magic; a text dump needs --text)");
	if (got < sizeof h) {
		if (ferror(f))
			return fail(r, got, "read error: %s", strerror(errno));
		return fail(r, got, "truncated: the input ends inside the %u-byte header",
		            DUMP_HEADER_SIZE);
	}
	if (get32(h + 32) != dump_crc32(0, h, 32))
		return fail(r, 32, "header checksum mismatch");
	uint32_t version = get32(h + 8);
	if (version != DUMP_VERSION)
		return fail(r, 8, "dump format version %u; this trove reads version %u", version,
		            DUMP_VERSION);
	if (get32(h + 12))
		return fail(r, 12, "unknown header flags 0x%x", get32(h + 12));
	r->created_ms = (int64_t)get64(h + 16);
	r->hint = get64(h + 24);
	return 0;
}

/* The rest of a pair record, after its type byte. */
static int read_pair(dump_reader *r)
{
	unsigned char h[17], c[4];
	h[0] = DUMP_REC_PAIR;
	if (get_bytes(r, h + 1, 16, "a record header"))
		return -1;
	uint32_t kn = get32(h + 1), vn = get32(h + 5);
	int64_t exp = (int64_t)get64(h + 9);
	if (kn == 0 || kn > DUMP_MAX_KEY)
		return fail(r, r->rec_off + 1, "bad key length %u (keys are 1 to %u bytes)", kn,
		            DUMP_MAX_KEY);
	if (vn > DUMP_MAX_VALUE)
		return fail(r, r->rec_off + 5, "bad value length %u (values are at most %u bytes)",
		            vn, DUMP_MAX_VALUE);
	if (exp < 0)
		return fail(r, r->rec_off + 9, "bad expiry time %lld", (long long)exp);
	if (get_bytes(r, r->key, kn, "a key") || get_value(r, vn) ||
	    get_bytes(r, c, 4, "a record checksum"))
		return -1;
	uint32_t crc = dump_crc32(0, h, sizeof h);
	crc = dump_crc32(crc, r->key, kn);
	crc = dump_crc32(crc, r->val, vn);
	if (crc != get32(c))
		return fail(r, r->rec_off, "record checksum mismatch (record %llu)",
		            (unsigned long long)r->records + 1);
	r->key[kn] = 0;
	r->klen = kn;
	r->vlen = vn;
	r->expire_at_ms = exp;
	r->records++;
	return 1;
}

/* The rest of the end record; then the input must end. */
static int read_end(dump_reader *r)
{
	unsigned char e[DUMP_END_SIZE];
	e[0] = DUMP_REC_END;
	if (get_bytes(r, e + 1, DUMP_END_SIZE - 1, "the end record"))
		return -1;
	if (get32(e + 9) != dump_crc32(0, e, 9))
		return fail(r, r->rec_off, "end record checksum mismatch");
	uint64_t n = get64(e + 1);
	if (n != r->records)
		return fail(r, r->rec_off,
		            "the end record counts %llu records but %llu came before it",
		            (unsigned long long)n, (unsigned long long)r->records);
	if (fgetc(r->f) != EOF)
		return fail(r, r->off, "data after the end record");
	if (ferror(r->f))
		return fail(r, r->off, "read error: %s", strerror(errno));
	return 0;
}

int dump_read_next(dump_reader *r)
{
	r->rec_off = r->off;
	int type = fgetc(r->f);
	if (type == EOF) {
		if (ferror(r->f))
			return fail(r, r->off, "read error: %s", strerror(errno));
		return fail(r, r->off, "truncated: the input ends before the end record");
	}
	r->off++;
	if (type == DUMP_REC_PAIR)
		return read_pair(r);
	if (type == DUMP_REC_END)
		return read_end(r);
	return fail(r, r->rec_off, "unknown record type 0x%02x", (unsigned)type);
}

void dump_reader_free(dump_reader *r)
{
	free(r->key);
	free(r->val);
	r->key = r->val = NULL;
	r->vcap = 0;
}
