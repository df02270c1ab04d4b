/*
 * table.c - writing and reading sorted table files (*.sst).
 *
 * The builder turns a sorted stream of (internal key, value) pairs into a
 * file: a header, data blocks (optionally lz4/zstd compressed), a bloom
 * filter, a properties block, an index block and a footer, every block
 * followed by a type byte and a checksum.  docs/FORMAT.md describes every
 * byte; the constants below are the only other place that knows them.
 *
 * The reader keeps the index and the filter in memory and fetches data
 * blocks through the block cache, so a cached point lookup takes no lock
 * but the cache shard's and allocates nothing.  Everything read from the
 * file is hostile: it is checksummed before it is decoded, every handle is
 * checked against the file's layout, and damage is reported as
 * TROVE_ECORRUPT with the file and offset sent to the logger, never as a
 * crash or an out-of-bounds read.  A table never writes to a file it
 * reads, and the builder never seeks or rewrites what it has appended.
 */
#include "table.h"

#include <assert.h>
#include <limits.h>
#include <lz4.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "../util/checksum.h"
#include "../util/coding.h"
#include "block.h"
#include "bloom.h"
#include "ikey.h"

/* ---- The format's constants (docs/FORMAT.md) ----------------------------- */

#define HEADER_SIZE 16  /* magic, fixed32 version, fixed32 checksum */
#define TRAILER_SIZE 5  /* type byte, fixed32 checksum */
#define HANDLES_SIZE 60 /* three varint64 pairs, zero-padded */
#define FOOTER_SIZE 76  /* handles, fixed32 checksum, fixed32 version, magic */
#define MAGIC_SIZE 8

enum { BLOCK_RAW = 0, BLOCK_LZ4 = 1, BLOCK_ZSTD = 2 };

/* LZ4's acceleration: 2 starts its search for a match at every other
 * byte.  On blocks of the benchmark's rows (16-byte keys, values half
 * random bytes and half a copy of them) it took 36-60% less time than 1
 * for 0.2% more bytes; 3 already gave back 7% of the saving. */
#define LZ4_ACCELERATION 2

/* Properties block: (varint32 tag, varint64 value) pairs; readers skip
 * tags they do not know. */
enum {
	PROP_ENTRIES = 1,
	PROP_DATA_BLOCKS = 2,
	PROP_DATA_BYTES = 3,
	PROP_RAW_KEY_BYTES = 4,
	PROP_RAW_VALUE_BYTES = 5,
	PROP_COMPRESSION = 6,
	PROP_BLOOM_BITS = 7,
};

#define DEFAULT_BLOCK_SIZE 4096
#define MAX_BLOCK_SIZE (64u << 20) /* keeps blocks far below TV_BLOCK_MAX_SIZE */
#define MAX_BLOOM_BITS 64
#define WRITE_BUFFER (64u << 10) /* the builder appends in chunks this big */
#define PROPS_ESTIMATE 64        /* bytes of the properties block, about */

typedef struct bhandle {
	uint64_t off, size; /* size excludes the trailer */
} bhandle;

static char *put_handle(char *p, bhandle h)
{
	p = tv_encode_varint64(p, h.off);
	return tv_encode_varint64(p, h.size);
}

static const char *get_handle(const char *p, const char *end, bhandle *h)
{
	if (!(p = tv_decode_varint64(p, end, &h->off)))
		return NULL;
	return tv_decode_varint64(p, end, &h->size);
}

/* ======================================================================
 * Building
 * ====================================================================== */

struct tv_table_builder {
	tv_file *f;
	tv_table_opts o;
	tv_buf out;      /* bytes not yet appended to f */
	uint64_t offset; /* bytes produced so far (written + in out) */
	tv_block_builder data, index;
	tv_bloom_builder bloom;
	ZSTD_CCtx *zctx;
	LZ4_stream_t *lz4; /* reset per block: each block stands alone */
	int status;        /* the first error; sticky */
	bool finished;
	uint64_t entries, data_blocks, data_bytes, raw_key, raw_value;
};

/* Appends what is buffered to the file. */
static int builder_flush(tv_table_builder *b)
{
	if (b->out.len == 0)
		return 0;
	int rc = b->f->vfs->append(b->f, b->out.data, b->out.len);
	tv_buf_clear(&b->out);
	if (b->out.cap > 4 * WRITE_BUFFER)
		tv_buf_free(&b->out); /* a huge block went by; do not keep its room */
	return rc;
}

/* Tries to compress raw into b->out at its end as varint32 raw length +
 * payload; returns the payload size if it saved at least 1/8, else 0. */
static size_t compress_into(tv_table_builder *b, tv_slice raw)
{
	char *dst = b->out.data + b->out.len;
	char *body = tv_encode_varint32(dst, (uint32_t)raw.len);
	size_t room = b->out.cap - b->out.len - (size_t)(body - dst);
	size_t n = 0;
	if (b->o.compression == TROVE_COMPRESS_LZ4) {
		/* A fast reset of one stream, not LZ4_compress_default, which
		 * clears a 16 KiB state for every block (a third of a flush's
		 * CPU under callgrind).  After the reset the stream has no
		 * history, so the block decodes on its own. */
		LZ4_resetStream_fast(b->lz4);
		int r = LZ4_compress_fast_continue(b->lz4, raw.data, body, (int)raw.len,
		                                   room > INT_MAX ? INT_MAX : (int)room,
		                                   LZ4_ACCELERATION);
		n = r > 0 ? (size_t)r : 0;
	} else {
		size_t r =
		        ZSTD_compressCCtx(b->zctx, body, room, raw.data, raw.len, b->o.zstd_level);
		n = ZSTD_isError(r) ? 0 : r;
	}
	size_t stored = (size_t)(body - dst) + n;
	return n && stored <= raw.len - raw.len / 8 ? stored : 0;
}

static size_t compress_bound(const tv_table_builder *b, size_t n)
{
	if (b->o.compression == TROVE_COMPRESS_LZ4)
		return (size_t)LZ4_compressBound((int)n);
	return ZSTD_compressBound(n);
}

/* Writes one block with its trailer, compressing it if asked and worth
 * it, and returns where it went. */
static int write_block(tv_table_builder *b, tv_slice raw, bool compress, bhandle *h)
{
	assert(raw.len <= TV_BLOCK_MAX_SIZE);
	compress = compress && b->o.compression != TROVE_COMPRESS_NONE;
	size_t room = raw.len;
	if (compress && compress_bound(b, raw.len) + TV_MAX_VARINT32 > room)
		room = compress_bound(b, raw.len) + TV_MAX_VARINT32;
	if (tv_buf_reserve(&b->out, room + TRAILER_SIZE))
		return TROVE_ENOMEM;
	char *start = b->out.data + b->out.len;
	unsigned char type = BLOCK_RAW;
	size_t stored = compress ? compress_into(b, raw) : 0;
	if (stored) {
		type = b->o.compression == TROVE_COMPRESS_LZ4 ? BLOCK_LZ4 : BLOCK_ZSTD;
	} else {
		stored = raw.len;
		if (stored)
			memcpy(start, raw.data, stored);
	}
	start[stored] = (char)type;
	tv_put_fixed32(start + stored + 1, tv_checksum(start, stored + 1));
	b->out.len += stored + TRAILER_SIZE;
	h->off = b->offset;
	h->size = stored;
	b->offset += stored + TRAILER_SIZE;
	return b->out.len >= WRITE_BUFFER ? builder_flush(b) : 0;
}

static int flush_data_block(tv_table_builder *b)
{
	assert(!tv_block_empty(&b->data));
	tv_slice raw;
	bhandle h;
	char enc[2 * TV_MAX_VARINT64];
	int rc = tv_block_finish(&b->data, &raw);
	if (!rc)
		rc = write_block(b, raw, true, &h);
	if (!rc)
		rc = tv_block_add(&b->index, tv_block_last_key(&b->data),
		                  tv_slice_make(enc, (size_t)(put_handle(enc, h) - enc)));
	if (rc)
		return rc;
	b->data_blocks++;
	b->data_bytes += h.size + TRAILER_SIZE;
	tv_block_reset(&b->data);
	return 0;
}

int tv_table_builder_new(tv_file *f, const tv_table_opts *opts, tv_table_builder **out)
{
	static const tv_table_opts defaults = {TROVE_COMPRESS_NONE, 0, 0, 10};
	const tv_table_opts *o = opts ? opts : &defaults;
	if (!f || !out || o->compression < TROVE_COMPRESS_NONE ||
	    o->compression > TROVE_COMPRESS_ZSTD || o->bloom_bits_per_key < 0 ||
	    o->block_size > MAX_BLOCK_SIZE)
		return TROVE_EINVAL;
	tv_table_builder *b = calloc(1, sizeof *b);
	if (!b)
		return TROVE_ENOMEM;
	b->f = f;
	b->o = *o;
	if (!b->o.block_size)
		b->o.block_size = DEFAULT_BLOCK_SIZE;
	if (b->o.bloom_bits_per_key > MAX_BLOOM_BITS)
		b->o.bloom_bits_per_key = MAX_BLOOM_BITS;
	tv_buf_init(&b->out);
	tv_block_builder_init(&b->data, TV_BLOCK_RESTART_INTERVAL);
	tv_block_builder_init(&b->index, 1); /* whole keys: exact binary search */
	tv_bloom_builder_init(&b->bloom, b->o.bloom_bits_per_key ? b->o.bloom_bits_per_key : 1);
	if ((b->o.compression == TROVE_COMPRESS_ZSTD && !(b->zctx = ZSTD_createCCtx())) ||
	    (b->o.compression == TROVE_COMPRESS_LZ4 && !(b->lz4 = LZ4_createStream()))) {
		tv_table_builder_free(b);
		return TROVE_ENOMEM;
	}
	char hdr[HEADER_SIZE];
	memcpy(hdr, TV_TABLE_MAGIC, MAGIC_SIZE);
	tv_put_fixed32(hdr + 8, TV_TABLE_VERSION);
	tv_put_fixed32(hdr + 12, tv_checksum(hdr, 12));
	if (tv_buf_append(&b->out, hdr, sizeof hdr)) {
		tv_table_builder_free(b);
		return TROVE_ENOMEM;
	}
	b->offset = HEADER_SIZE;
	*out = b;
	return 0;
}

/* tv_table_add with the user key's hash in *hash, or hash NULL. */
static int add(tv_table_builder *b, tv_slice ikey, tv_slice value, const uint64_t *hash)
{
	if (b->status)
		return b->status;
	tv_slice last = tv_block_last_key(&b->data);
	if (b->finished || ikey.len < TV_TRAILER || (b->entries && tv_ikey_cmp(ikey, last) <= 0))
		return TROVE_EINVAL; /* out of order: the caller's bug, state untouched */
	int rc = 0;
	if (b->o.bloom_bits_per_key &&
	    (!b->entries || !tv_slice_eq(tv_ikey_user(ikey), tv_ikey_user(last))))
		rc = hash ? tv_bloom_add_hash(&b->bloom, *hash)
		          : tv_bloom_add(&b->bloom, tv_ikey_user(ikey));
	if (!rc)
		rc = tv_block_add(&b->data, ikey, value);
	if (!rc) {
		b->entries++;
		b->raw_key += ikey.len;
		b->raw_value += value.len;
		if (tv_block_estimate(&b->data) >= b->o.block_size)
			rc = flush_data_block(b);
	}
	b->status = rc;
	return rc;
}

int tv_table_add(tv_table_builder *b, tv_slice ikey, tv_slice value)
{
	return add(b, ikey, value, NULL);
}

int tv_table_add_hashed(tv_table_builder *b, tv_slice ikey, tv_slice value, uint64_t hash)
{
	return add(b, ikey, value, &hash);
}

static int put_prop(tv_buf *p, uint32_t tag, uint64_t v)
{
	int rc = tv_buf_put_varint32(p, tag);
	return rc ? rc : tv_buf_put_varint64(p, v);
}

static int write_props(tv_table_builder *b, bhandle *h)
{
	tv_buf p;
	tv_buf_init(&p);
	int rc = put_prop(&p, PROP_ENTRIES, b->entries);
	if (!rc)
		rc = put_prop(&p, PROP_DATA_BLOCKS, b->data_blocks);
	if (!rc)
		rc = put_prop(&p, PROP_DATA_BYTES, b->data_bytes);
	if (!rc)
		rc = put_prop(&p, PROP_RAW_KEY_BYTES, b->raw_key);
	if (!rc)
		rc = put_prop(&p, PROP_RAW_VALUE_BYTES, b->raw_value);
	if (!rc)
		rc = put_prop(&p, PROP_COMPRESSION, (uint64_t)b->o.compression);
	if (!rc)
		rc = put_prop(&p, PROP_BLOOM_BITS, (uint64_t)b->o.bloom_bits_per_key);
	if (!rc)
		rc = write_block(b, tv_buf_slice(&p), false, h);
	tv_buf_free(&p);
	return rc;
}

static int write_filter(tv_table_builder *b, bhandle *h)
{
	h->off = h->size = 0; /* no filter */
	if (!b->o.bloom_bits_per_key)
		return 0;
	tv_buf fb;
	tv_buf_init(&fb);
	int rc = tv_bloom_finish(&b->bloom, &fb);
	if (!rc)
		rc = write_block(b, tv_buf_slice(&fb), false, h);
	tv_buf_free(&fb);
	return rc;
}

static int write_footer(tv_table_builder *b, bhandle filter, bhandle props, bhandle index)
{
	char ft[FOOTER_SIZE];
	memset(ft, 0, HANDLES_SIZE);
	char *p = put_handle(ft, filter);
	p = put_handle(p, props);
	p = put_handle(p, index);
	assert(p <= ft + HANDLES_SIZE);
	tv_put_fixed32(ft + HANDLES_SIZE, tv_checksum(ft, HANDLES_SIZE));
	tv_put_fixed32(ft + HANDLES_SIZE + 4, TV_TABLE_VERSION);
	memcpy(ft + HANDLES_SIZE + 8, TV_TABLE_MAGIC, MAGIC_SIZE);
	if (tv_buf_append(&b->out, ft, sizeof ft))
		return TROVE_ENOMEM;
	b->offset += sizeof ft;
	return 0;
}

int tv_table_finish(tv_table_builder *b, uint64_t *file_size)
{
	if (b->status)
		return b->status;
	if (b->finished)
		return TROVE_EINVAL;
	bhandle filter, props, index;
	tv_slice raw;
	int rc = tv_block_empty(&b->data) ? 0 : flush_data_block(b);
	if (!rc)
		rc = write_filter(b, &filter);
	if (!rc)
		rc = write_props(b, &props);
	if (!rc)
		rc = tv_block_finish(&b->index, &raw);
	if (!rc)
		rc = write_block(b, raw, false, &index);
	if (!rc)
		rc = write_footer(b, filter, props, index);
	if (!rc)
		rc = builder_flush(b);
	b->status = rc;
	if (rc)
		return rc;
	b->finished = true;
	if (file_size)
		*file_size = b->offset;
	return 0;
}

uint64_t tv_table_builder_size(const tv_table_builder *b)
{
	uint64_t n = b->offset + tv_block_estimate(&b->index) + TRAILER_SIZE + PROPS_ESTIMATE +
	             FOOTER_SIZE;
	if (!tv_block_empty(&b->data))
		n += tv_block_estimate(&b->data);
	if (b->o.bloom_bits_per_key && !b->finished)
		n += tv_bloom_size(&b->bloom) + TRAILER_SIZE;
	return b->finished ? b->offset : n;
}

uint64_t tv_table_builder_entries(const tv_table_builder *b)
{
	return b->entries;
}

void tv_table_builder_free(tv_table_builder *b)
{
	if (!b)
		return;
	tv_buf_free(&b->out);
	tv_block_builder_free(&b->data);
	tv_block_builder_free(&b->index);
	tv_bloom_builder_free(&b->bloom);
	ZSTD_freeCCtx(b->zctx);
	LZ4_freeStream(b->lz4);
	free(b);
}

/* ======================================================================
 * Reading
 * ====================================================================== */

/* A block in memory: what the cache holds and the iterators point into.
 * One allocation (block_alloc, block_free), its bytes inline. */
typedef struct table_block {
	tv_block blk; /* parsed view, for data and index blocks */
	size_t size;  /* bytes of contents */
	size_t alloc; /* bytes allocated, header included */
	/* A copy of the restart array of a block of at most 16 restart
	 * points (every data block), which blk reads instead of the one at
	 * the end of data: a seek reads it first, and here it comes with the
	 * header and the cache entry in front of it instead of being one
	 * more cache miss after them. */
	char restarts[64];
	char data[];
} table_block;

/* Fence levels: 8 per line (fence_lower counts a line's 8 one by one),
 * 2^32 fences at most, so 11 levels at most. */
#define FENCES_PER_LINE 8u
#define FENCE_LEVELS_MAX 11

struct tv_table {
	trove_vfs *vfs;
	tv_file *f;
	char *path;
	uint64_t file_number;
	tv_cache *cache;
	const tv_logger *lg;
	uint64_t file_size;
	uint64_t data_end; /* data blocks lie in [HEADER_SIZE, data_end) */
	bhandle filter_h, props_h, index_h;
	table_block *index;
	table_block *filter; /* NULL when the table has none */
	size_t reserved;     /* index and filter bytes counted in the cache */
	/* Fences, when every index entry is a restart point (as the builder
	 * writes them): for entry i, the 8 bytes of its user key that follow
	 * fence_prefix, the prefix every key of the table shares, as a
	 * big-endian integer, zero-padded.  They order as the keys do, so an
	 * index search runs over this dense array and compares whole keys
	 * only among equal fences: a handful of cache lines instead of a
	 * dozen entries scattered over the index block.  NULL: no fences.
	 * The fences are the bottom of a tree of cache lines (fence_lower):
	 * level[0] is fences, level[l + 1] every 8th entry of level[l], up to
	 * a level of at most 8; each level starts on a line and is padded to
	 * whole lines with UINT64_MAX, and all lie in one allocation. */
	uint64_t *fences;
	uint32_t nfences;
	uint32_t nlevels;
	size_t nfence_words; /* the allocation's length, padding included */
	const uint64_t *level[FENCE_LEVELS_MAX];
	tv_slice fence_prefix; /* into the index block */
	/* With the fences, when the data blocks lie one after another (as
	 * the builder writes them): where data block i starts, for every i,
	 * and where the last one ends (nfences + 1 offsets).  A point lookup
	 * whose fence search settles on one entry then takes the block's
	 * place from here, without reading the index block or decoding its
	 * handle.  NULL: read the handles from the index. */
	uint64_t *starts;
	/* With the starts and a cache: data block i's slot in the cache
	 * (tv_cache_lookup_slot), through which a point lookup finds the
	 * cached block without the cache's hash table. */
	tv_cache_handle *_Atomic *slots;
	/* How much of a cached data block a lookup through its slot starts
	 * loading before it knows which of its lines it reads (slot_span). */
	size_t span;
	uint64_t entries, data_blocks, data_bytes, raw_key, raw_value;
};

static int corrupt(const tv_table *t, uint64_t off, const char *what)
{
	tv_logf(t->lg, TROVE_LOG_ERROR, "%s: %s at offset %llu", t->path, what,
	        (unsigned long long)off);
	return TROVE_ECORRUPT;
}

/* Reads exactly n bytes at off; a short read means the file is shorter
 * than its own layout says. */
static int read_exact(const tv_table *t, uint64_t off, void *buf, size_t n, const char **why)
{
	size_t got = 0;
	int rc = t->vfs->read(t->f, off, buf, n, &got);
	if (rc) {
		*why = "read error";
		return rc;
	}
	if (got != n) {
		*why = "file truncated";
		return TROVE_ECORRUPT;
	}
	return 0;
}

/* A block of n content bytes, from the cache's recycled memory when the
 * table has a cache (so that block memory stays within the cache's
 * capacity whichever thread reads), else from malloc.  NULL on ENOMEM. */
static table_block *block_alloc(const tv_table *t, size_t n)
{
	size_t alloc = sizeof(table_block) + n;
	table_block *tb = t->cache ? tv_cache_alloc(t->cache, alloc) : malloc(alloc);
	if (tb)
		tb->alloc = alloc;
	return tb;
}

/* Frees a block from block_alloc; NULL is ignored. */
static void block_free(const tv_table *t, table_block *tb)
{
	if (t->cache)
		tv_cache_dealloc(t->cache, tb);
	else
		free(tb);
}

/* Expands a compressed block: varint32 raw size, then the payload. */
static int decompress(const tv_table *t, const char *src, size_t n, int type, table_block **out,
                      const char **why)
{
	uint32_t ulen;
	const char *p = tv_decode_varint32(src, src + n, &ulen);
	if (!p || ulen > TV_BLOCK_MAX_SIZE) {
		*why = "bad compressed block size";
		return TROVE_ECORRUPT;
	}
	size_t clen = (size_t)(src + n - p);
	table_block *tb = block_alloc(t, ulen);
	if (!tb) {
		*why = "out of memory";
		return TROVE_ENOMEM;
	}
	bool ok;
	if (type == BLOCK_LZ4)
		ok = LZ4_decompress_safe(p, tb->data, (int)clen, (int)ulen) == (int)ulen;
	else {
		size_t r = ZSTD_decompress(tb->data, ulen, p, clen);
		ok = !ZSTD_isError(r) && r == ulen;
	}
	if (!ok) {
		block_free(t, tb);
		*why = "block does not decompress";
		return TROVE_ECORRUPT;
	}
	tb->size = ulen;
	*out = tb;
	return 0;
}

/* Reads the block at h (never through the cache), checks its checksum and
 * decompresses it.  On failure *why says what was wrong at h.off. */
static int read_raw(const tv_table *t, bhandle h, table_block **out, const char **why)
{
	assert(h.size <= TV_BLOCK_MAX_SIZE);
	size_t n = (size_t)h.size;
	table_block *tb = block_alloc(t, n + TRAILER_SIZE);
	if (!tb) {
		*why = "out of memory";
		return TROVE_ENOMEM;
	}
	int rc = read_exact(t, h.off, tb->data, n + TRAILER_SIZE, why);
	if (rc) {
		block_free(t, tb);
		return rc;
	}
	unsigned type = (unsigned char)tb->data[n];
	if (tv_checksum(tb->data, n + 1) != tv_get_fixed32(tb->data + n + 1)) {
		*why = "bad block checksum";
		rc = TROVE_ECORRUPT;
	} else if (type == BLOCK_RAW) {
		tb->size = n;
		*out = tb;
		return 0;
	} else if (type == BLOCK_LZ4 || type == BLOCK_ZSTD) {
		rc = decompress(t, tb->data, n, (int)type, out, why);
	} else {
		*why = "unknown block type";
		rc = TROVE_ECORRUPT;
	}
	block_free(t, tb);
	return rc;
}

/* read_raw, then parses the block's restart array. */
static int read_block(const tv_table *t, bhandle h, table_block **out, const char **why)
{
	table_block *tb;
	int rc = read_raw(t, h, &tb, why);
	if (rc)
		return rc;
	if (tv_block_parse(&tb->blk, tb->data, tb->size)) {
		block_free(t, tb);
		*why = "bad block restart array";
		return TROVE_ECORRUPT;
	}
	if ((size_t)tb->blk.nrestarts * 4 <= sizeof tb->restarts)
		tv_block_move_restarts(&tb->blk, tb->restarts);
	*out = tb;
	return 0;
}

/* Decodes a data block handle from an index value and checks that it lies
 * among the data blocks. */
static int data_handle(const tv_table *t, tv_slice v, bhandle *h)
{
	const char *end = v.data + v.len;
	if (get_handle(v.data, end, h) != end || h->off < HEADER_SIZE ||
	    h->size > TV_BLOCK_MAX_SIZE || h->off > t->data_end ||
	    t->data_end - h->off < h->size + TRAILER_SIZE)
		return TROVE_ECORRUPT;
	return 0;
}

/* Gets the data block at h from the cache, or else from disk, inserting
 * it into the cache if fill (and there is a cache).  Release it with
 * put_block(t, *hd, *tb); *hd is NULL when the block is the caller's
 * alone. */
/* A seek's first reads in a cached block are its header and the copy of
 * its restart array, in the lines after the cache entry: a lookup starts
 * loading them this far ahead. */
#define BLOCK_AHEAD offsetof(table_block, data)

/* get_block's read from disk, for a block the cache lacks (*hd NULL). */
static int read_missing(const tv_table *t, bhandle h, bool fill, tv_cache_handle **hd,
                        table_block **tb)
{
	const char *why = NULL;
	int rc = read_block(t, h, tb, &why);
	if (rc) {
		if (rc != TROVE_ENOMEM)
			tv_logf(t->lg, TROVE_LOG_ERROR, "%s: %s at offset %llu", t->path, why,
			        (unsigned long long)h.off);
		return rc;
	}
	if (t->cache && fill) {
		*hd = tv_cache_insert(t->cache, t->file_number, h.off, *tb,
		                      tv_cache_charge((*tb)->alloc), NULL);
		if (!*hd)
			return TROVE_ENOMEM; /* the cache freed the block */
	}
	return 0;
}

static int get_block(const tv_table *t, bhandle h, bool fill, tv_cache_handle **hd,
                     table_block **tb)
{
	*hd = NULL;
	if (t->cache &&
	    (*hd = tv_cache_lookup_ahead(t->cache, t->file_number, h.off, BLOCK_AHEAD))) {
		*tb = tv_cache_value(*hd);
		return 0;
	}
	return read_missing(t, h, fill, hd, tb);
}

/* get_block for data block b (< nfences, t->starts[b] == h.off), through
 * its slot if the table keeps slots. */
static int get_block_at(const tv_table *t, uint32_t b, bhandle h, tv_cache_handle **hd,
                        table_block **tb)
{
	if (!t->slots)
		return get_block(t, h, true, hd, tb);
	*hd = tv_cache_lookup_slot(t->cache, t->file_number, h.off, &t->slots[b], t->span);
	if (*hd) {
		*tb = tv_cache_value(*hd);
		return 0;
	}
	return read_missing(t, h, true, hd, tb);
}

static void put_block(const tv_table *t, tv_cache_handle *hd, table_block *tb)
{
	if (hd)
		tv_cache_release(t->cache, hd);
	else
		block_free(t, tb);
}

/* ---- Opening ------------------------------------------------------------ */

/* Checks a meta block's handle against the file's layout. */
static bool meta_handle_ok(const tv_table *t, bhandle h)
{
	uint64_t footer = t->file_size - FOOTER_SIZE;
	return h.off >= HEADER_SIZE && h.size <= TV_BLOCK_MAX_SIZE && h.off <= footer &&
	       footer - h.off >= h.size + TRAILER_SIZE;
}

/* Reads and checks the header and footer; fills the meta handles. */
static int open_frame(tv_table *t)
{
	char hdr[HEADER_SIZE], ft[FOOTER_SIZE];
	const char *why;
	if (t->file_size < HEADER_SIZE + FOOTER_SIZE)
		return corrupt(t, t->file_size, "file too short for a table");
	uint64_t foff = t->file_size - FOOTER_SIZE;
	int rc = read_exact(t, foff, ft, sizeof ft, &why);
	if (!rc)
		rc = read_exact(t, 0, hdr, sizeof hdr, &why);
	if (rc)
		return rc == TROVE_ECORRUPT ? corrupt(t, foff, why) : rc;
	if (memcmp(ft + HANDLES_SIZE + 8, TV_TABLE_MAGIC, MAGIC_SIZE))
		return corrupt(t, foff + HANDLES_SIZE + 8, "bad magic number in footer");
	if (memcmp(hdr, TV_TABLE_MAGIC, MAGIC_SIZE) ||
	    tv_checksum(hdr, 12) != tv_get_fixed32(hdr + 12))
		return corrupt(t, 0, "bad file header");
	uint32_t version = tv_get_fixed32(ft + HANDLES_SIZE + 4);
	if (version != tv_get_fixed32(hdr + 8))
		return corrupt(t, foff + HANDLES_SIZE + 4, "footer and header versions differ");
	if (version != TV_TABLE_VERSION) {
		tv_logf(t->lg, TROVE_LOG_ERROR, "%s: format version %u is not supported (%u is)",
		        t->path, version, TV_TABLE_VERSION);
		return TROVE_EVERSION;
	}
	if (tv_checksum(ft, HANDLES_SIZE) != tv_get_fixed32(ft + HANDLES_SIZE))
		return corrupt(t, foff, "bad footer checksum");
	const char *p = ft, *end = ft + HANDLES_SIZE;
	if (!(p = get_handle(p, end, &t->filter_h)) || !(p = get_handle(p, end, &t->props_h)) ||
	    !(p = get_handle(p, end, &t->index_h)))
		return corrupt(t, foff, "bad block handle in footer");
	bool no_filter = t->filter_h.off == 0 && t->filter_h.size == 0;
	if ((!no_filter && !meta_handle_ok(t, t->filter_h)) || !meta_handle_ok(t, t->props_h) ||
	    !meta_handle_ok(t, t->index_h))
		return corrupt(t, foff, "block handle in footer out of range");
	t->data_end = no_filter ? t->props_h.off : t->filter_h.off;
	return 0;
}

static int decode_props(tv_table *t, tv_slice s)
{
	const char *p = s.data, *end = s.data + s.len;
	while (p < end) {
		uint32_t tag;
		uint64_t v;
		if (!(p = tv_decode_varint32(p, end, &tag)) ||
		    !(p = tv_decode_varint64(p, end, &v)))
			return TROVE_ECORRUPT;
		switch (tag) {
		case PROP_ENTRIES:
			t->entries = v;
			break;
		case PROP_DATA_BLOCKS:
			t->data_blocks = v;
			break;
		case PROP_DATA_BYTES:
			t->data_bytes = v;
			break;
		case PROP_RAW_KEY_BYTES:
			t->raw_key = v;
			break;
		case PROP_RAW_VALUE_BYTES:
			t->raw_value = v;
			break;
		default:
			break; /* written by a newer builder: not needed to read */
		}
	}
	return 0;
}

/* Loads the index, filter and properties blocks. */
static int open_meta(tv_table *t)
{
	const char *why;
	table_block *props = NULL;
	int rc = read_block(t, t->index_h, &t->index, &why);
	if (rc)
		return rc == TROVE_ECORRUPT ? corrupt(t, t->index_h.off, why) : rc;
	if (t->filter_h.size || t->filter_h.off) {
		rc = read_raw(t, t->filter_h, &t->filter, &why);
		if (rc)
			return rc == TROVE_ECORRUPT ? corrupt(t, t->filter_h.off, why) : rc;
		if (!tv_bloom_valid(tv_slice_make(t->filter->data, t->filter->size)))
			return corrupt(t, t->filter_h.off, "malformed bloom filter");
	}
	rc = read_raw(t, t->props_h, &props, &why);
	if (rc)
		return rc == TROVE_ECORRUPT ? corrupt(t, t->props_h.off, why) : rc;
	rc = decode_props(t, tv_slice_make(props->data, props->size));
	block_free(t, props);
	if (rc)
		return corrupt(t, t->props_h.off, "malformed properties block");
	return 0;
}

/* ---- Fences over the index ---------------------------------------------- */

/* The fence of user key u in a table whose keys share skip bytes. */
static inline uint64_t fence_of(tv_slice u, size_t skip)
{
	if (u.len >= skip + 8)
		return tv_load_be64(u.data + skip);
	unsigned char b[8] = {0};
	if (u.len > skip)
		memcpy(b, u.data + skip, u.len - skip < 8 ? u.len - skip : 8);
	uint64_t f = 0;
	for (int i = 0; i < 8; i++)
		f = f << 8 | b[i];
	return f;
}

/* Whether every entry of the index is a restart point, with its key
 * whole in place; sets *first and *last to the first and last user keys.
 * A malformed index makes this false: lookups then use the plain search,
 * which reports the damage. */
static bool index_whole(const tv_table *t, tv_slice *first, tv_slice *last)
{
	const tv_block *ix = &t->index->blk;
	tv_block_iter it;
	tv_block_iter_init(&it, ix);
	uint32_t i = 0;
	bool ok = true;
	for (tv_block_iter_seek_first(&it); ok && tv_block_iter_valid(&it);
	     tv_block_iter_next(&it), i++) {
		ok = i < ix->nrestarts &&
		     it.cur == tv_get_fixed32(ix->ra + (size_t)i * 4) &&
		     it.key.data + it.key.len == it.value.data; /* whole: not rebuilt */
		if (i == 0)
			*first = tv_ikey_user(it.key);
		*last = tv_ikey_user(it.key);
	}
	ok = ok && !it.status && i == ix->nrestarts && i > 0;
	tv_block_iter_fini(&it);
	return ok;
}

/* A seek in a data block reads its header, then restart keys spread over
 * the whole block, then the entries after one of them: three waits for
 * memory one after another, in a block the slot already names.  A lookup
 * through a slot starts loading the whole block at once instead (the
 * blocks are ~4 KiB: the lines arrive together, in about the time of
 * one), as many bytes as t's blocks hold on average before prefix
 * compression, which is a little more than they hold, at most
 * SLOT_SPAN_MAX. */
#define SLOT_SPAN_MAX 8192u
static size_t slot_span(const tv_table *t)
{
	uint64_t raw = t->data_blocks ? (t->raw_key + t->raw_value) / t->data_blocks : 0;
	return BLOCK_AHEAD + (raw < SLOT_SPAN_MAX ? raw : SLOT_SPAN_MAX);
}

/* Builds t's block starts from the index, if its handles are sound and
 * the blocks follow one another (leaving none otherwise: lookups then
 * decode the handles, and report any damage).  0 or TROVE_ENOMEM. */
static int open_starts(tv_table *t)
{
	uint64_t *s = malloc(((size_t)t->nfences + 1) * sizeof *s);
	if (!s)
		return TROVE_ENOMEM;
	tv_block_iter it;
	tv_block_iter_init(&it, &t->index->blk);
	uint32_t i = 0;
	bool ok = true;
	for (tv_block_iter_seek_first(&it); ok && tv_block_iter_valid(&it);
	     tv_block_iter_next(&it), i++) {
		bhandle h;
		ok = i < t->nfences && !data_handle(t, it.value, &h) && (i == 0 || h.off == s[i]);
		if (ok) {
			s[i] = h.off;
			s[i + 1] = h.off + h.size + TRAILER_SIZE;
		}
	}
	tv_block_iter_fini(&it);
	if (!ok || i != t->nfences) {
		free(s);
		return 0;
	}
	t->starts = s;
	if (t->cache && !(t->slots = calloc(t->nfences, sizeof *t->slots)))
		return TROVE_ENOMEM;
	t->span = slot_span(t);
	return 0;
}

/* The words n fences and the levels above them take (see struct
 * tv_table), padding included; *nlevels: how many levels, the fences'
 * own included. */
static size_t fence_words(uint32_t n, uint32_t *nlevels)
{
	size_t words = 0;
	uint32_t l = 0;
	for (size_t m = n;; m = (m + FENCES_PER_LINE - 1) / FENCES_PER_LINE) {
		words += (m + FENCES_PER_LINE - 1) / FENCES_PER_LINE * FENCES_PER_LINE;
		l++;
		if (m <= FENCES_PER_LINE)
			break;
	}
	*nlevels = l;
	return words;
}

/* Lays out t->nlevels levels in f, an allocation of fence_words(n) words
 * whose first n are the fences. */
static void build_levels(tv_table *t, uint64_t *f, uint32_t n)
{
	assert(t->nlevels <= FENCE_LEVELS_MAX);
	uint64_t *at = f;
	size_t m = n;
	for (uint32_t l = 0; l < t->nlevels; l++) {
		size_t padded = (m + FENCES_PER_LINE - 1) / FENCES_PER_LINE * FENCES_PER_LINE;
		if (l > 0)
			for (size_t j = 0; j < m; j++)
				at[j] = t->level[l - 1][j * FENCES_PER_LINE];
		for (size_t j = m; j < padded; j++)
			at[j] = UINT64_MAX;
		t->level[l] = at;
		at += padded;
		m = padded / FENCES_PER_LINE;
	}
}

/* Builds t's fences (leaving none if the index does not allow them).
 * 0, TROVE_ENOMEM or TROVE_ECORRUPT (index keys out of order). */
static int open_fences(tv_table *t)
{
	tv_slice first = {NULL, 0}, last = {NULL, 0};
	if (!index_whole(t, &first, &last))
		return 0;
	size_t plen = 0;
	while (plen < first.len && plen < last.len && first.data[plen] == last.data[plen])
		plen++;
	const tv_block *ix = &t->index->blk;
	size_t words = fence_words(ix->nrestarts, &t->nlevels);
	uint64_t *f = aligned_alloc(64, words * sizeof *f);
	if (!f)
		return TROVE_ENOMEM;
	tv_block_iter it;
	tv_block_iter_init(&it, ix);
	uint32_t i = 0;
	for (tv_block_iter_seek_first(&it); tv_block_iter_valid(&it); tv_block_iter_next(&it), i++)
		f[i] = fence_of(tv_ikey_user(it.key), plen);
	tv_block_iter_fini(&it);
	for (uint32_t j = 1; j < i; j++) {
		if (f[j] < f[j - 1]) {
			free(f);
			return corrupt(t, t->index_h.off, "index keys out of order");
		}
	}
	build_levels(t, f, i); /* i == ix->nrestarts (index_whole) */
	t->fences = f;
	t->nfence_words = words;
	t->nfences = i;
	t->fence_prefix = tv_slice_make(first.data, plen);
	return open_starts(t);
}

/* The first i with fences[i] >= f, or nfences: one line per level, from
 * the top, each line's 8 entries counted without a branch (the padding
 * counts as not less).  Once level 1 names the fences' line, the lines
 * of the block starts and slots a point lookup reads next start
 * loading beside it. */
static uint32_t fence_lower(const tv_table *t, uint64_t f)
{
	size_t g = 0;
	for (uint32_t l = t->nlevels; l-- > 0;) {
		size_t base = g ? (g - 1) * FENCES_PER_LINE : 0;
		const uint64_t *a = t->level[l] + base;
		if (l == 0 && t->starts) {
			__builtin_prefetch(t->starts + base);
			__builtin_prefetch(t->starts + base + FENCES_PER_LINE);
			if (t->slots) {
				__builtin_prefetch((const void *)(t->slots + base));
				__builtin_prefetch((const void *)(t->slots + base + FENCES_PER_LINE - 1));
			}
		}
		g = base + (size_t)(a[0] < f) + (a[1] < f) + (a[2] < f) + (a[3] < f) + (a[4] < f) +
		    (a[5] < f) + (a[6] < f) + (a[7] < f);
	}
	return (uint32_t)g;
}

/* The first i in [lo, hi) with fences[i] > f, or hi. */
static uint32_t fence_after(const uint64_t *fences, uint32_t lo, uint32_t hi, uint64_t f)
{
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (fences[mid] <= f)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* With fences: the first entry of t's index >= target (nfences if
 * none), comparing whole keys, through ii (an iterator over the index
 * that *ii_ready says is initialised; this sets it if it initialises
 * it), only among entries whose fence equals target's.  UINT32_MAX if
 * the index is damaged (ii's status says so). */
static uint32_t index_find(const tv_table *t, tv_block_iter *ii, bool *ii_ready, tv_slice target)
{
	uint32_t n = t->nfences, lo = 0, hi = 0;
	tv_slice u = tv_ikey_user(target), p = t->fence_prefix;
	int c = memcmp(u.data, p.data, u.len < p.len ? u.len : p.len);
	if (c > 0) {
		lo = hi = n; /* after every key */
	} else if (c == 0 && u.len >= p.len) {
		uint64_t f = fence_of(u, p.len);
		lo = fence_lower(t, f);
		hi = lo; /* past the fences equal to f: mostly none or one */
		while (hi < n && hi - lo < 2 && t->fences[hi] == f)
			hi++;
		if (hi - lo == 2)
			hi = fence_after(t->fences, hi, n, f);
	} /* else before every key: lo = hi = 0 */
	/* Entries before lo sort before target, entries from hi on after it;
	 * the keys between share its fence and are compared whole. */
	if (lo < hi && !*ii_ready) {
		tv_block_iter_init(ii, &t->index->blk);
		*ii_ready = true;
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		tv_block_iter_seek_restart(ii, mid);
		if (!tv_block_iter_valid(ii))
			return UINT32_MAX; /* damaged: the status says so */
		if (tv_ikey_cmp(ii->key, target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Positions ii, an iterator over t's index, at the first entry >= target
 * (invalid if there is none), as tv_block_iter_seek would.  Returns that
 * entry's number when t has fences and ii is valid, else UINT32_MAX. */
static uint32_t index_seek(const tv_table *t, tv_block_iter *ii, tv_slice target)
{
	if (!t->fences) {
		tv_block_iter_seek(ii, target);
		return UINT32_MAX;
	}
	bool ready = true;
	uint32_t n = t->nfences, lo = index_find(t, ii, &ready, target);
	if (lo == UINT32_MAX)
		return UINT32_MAX;
	tv_block_iter_seek_restart(ii, lo < n ? lo : n - 1);
	if (lo == n && tv_block_iter_valid(ii))
		tv_block_iter_next(ii); /* past the end */
	return lo < n && tv_block_iter_valid(ii) ? lo : UINT32_MAX;
}

int tv_table_open(trove_vfs *vfs, const char *path, uint64_t file_number, tv_cache *cache,
                  const tv_logger *lg, tv_table **out)
{
	if (!vfs || !path || !out)
		return TROVE_EINVAL;
	tv_table *t = calloc(1, sizeof *t);
	if (!t || !(t->path = strdup(path))) {
		free(t);
		return TROVE_ENOMEM;
	}
	t->vfs = vfs;
	t->file_number = file_number;
	t->cache = cache;
	t->lg = lg;
	int rc = vfs->open(vfs, path, TV_OPEN_READ, &t->f);
	if (rc) {
		t->f = NULL;
		tv_table_close(t);
		return rc;
	}
	rc = vfs->size(t->f, &t->file_size);
	if (!rc)
		rc = open_frame(t);
	if (!rc)
		rc = open_meta(t);
	if (!rc)
		rc = open_fences(t);
	if (rc) {
		tv_table_close(t);
		return rc;
	}
	if (cache) {
		t->reserved = tv_table_memory(t);
		tv_cache_reserve(cache, t->reserved);
	}
	*out = t;
	return 0;
}

void tv_table_close(tv_table *t)
{
	if (!t)
		return;
	if (t->f)
		t->vfs->close(t->f);
	if (t->reserved)
		tv_cache_unreserve(t->cache, t->reserved);
	block_free(t, t->index);
	block_free(t, t->filter);
	if (t->slots)
		for (uint32_t i = 0; i < t->nfences; i++)
			tv_cache_unslot(t->cache, t->file_number, t->starts[i], &t->slots[i]);
	free(t->slots);
	free(t->fences);
	free(t->starts);
	free(t->path);
	free(t);
}

uint64_t tv_table_entries(const tv_table *t)
{
	return t->entries;
}

uint64_t tv_table_file_size(const tv_table *t)
{
	return t->file_size;
}

size_t tv_table_memory(const tv_table *t)
{
	size_t n = sizeof *t + strlen(t->path) + 1 + tv_cache_charge(t->index->alloc) +
	           t->nfence_words * sizeof *t->fences;
	if (t->starts)
		n += ((size_t)t->nfences + 1) * sizeof *t->starts;
	if (t->slots)
		n += (size_t)t->nfences * sizeof *t->slots;
	if (t->filter)
		n += tv_cache_charge(t->filter->alloc);
	return n;
}

/* ---- Point lookups ------------------------------------------------------ */

int tv_table_get(tv_table *t, tv_slice target, int (*fn)(void *arg, tv_slice ikey, tv_slice value),
                 void *arg)
{
	assert(target.len >= TV_TRAILER);
	return tv_table_get_hashed(t, target, tv_bloom_hash(tv_ikey_user(target)), fn, arg);
}

bool tv_table_may_contain(const tv_table *t, uint64_t hash)
{
	return !t->filter ||
	       tv_bloom_may_contain_hash(tv_slice_make(t->filter->data, t->filter->size), hash);
}

void tv_table_prefetch(const tv_table *t, uint64_t hash)
{
	if (t->filter)
		tv_bloom_prefetch(t->filter->data, t->filter->size, hash);
}

/* The handle of data block b (< nfences) of a table with block starts. */
static bhandle block_at(const tv_table *t, uint32_t b)
{
	assert(t->starts && b < t->nfences);
	bhandle h = {t->starts[b], t->starts[b + 1] - t->starts[b] - TRAILER_SIZE};
	return h;
}

/* Finds in t's index the data block that holds the first entry >=
 * target: 1 with its handle in *h and, when t keeps block starts, its
 * number in *block (else UINT32_MAX); 0 if every key sorts before
 * target; or TROVE_ECORRUPT. */
static int find_block(const tv_table *t, tv_slice target, bhandle *h, uint32_t *block)
{
	tv_block_iter ii;
	bool ready = false;
	int rc = 1;
	*block = UINT32_MAX;
	if (t->starts) {
		uint32_t b = index_find(t, &ii, &ready, target);
		if (b < t->nfences) {
			*block = b;
			*h = block_at(t, b);
		} else {
			rc = b == t->nfences ? 0 : corrupt(t, t->index_h.off, "malformed index block");
		}
	} else {
		tv_block_iter_init(&ii, &t->index->blk);
		ready = true;
		index_seek(t, &ii, target);
		if (!tv_block_iter_valid(&ii))
			rc = ii.status ? corrupt(t, t->index_h.off, "malformed index block") : 0;
		else if (data_handle(t, ii.value, h))
			rc = corrupt(t, t->index_h.off, "bad block handle in index");
	}
	if (ready)
		tv_block_iter_fini(&ii);
	return rc;
}

int tv_table_get_hashed(tv_table *t, tv_slice target, uint64_t hash,
                        int (*fn)(void *arg, tv_slice ikey, tv_slice value), void *arg)
{
	assert(target.len >= TV_TRAILER);
	tv_slice ukey = tv_ikey_user(target);
	if (!tv_table_may_contain(t, hash))
		return 0;

	bhandle h;
	uint32_t b;
	int rc = find_block(t, target, &h, &b);
	if (rc <= 0)
		return rc;
	tv_cache_handle *hd;
	table_block *tb;
	rc = b != UINT32_MAX ? get_block_at(t, b, h, &hd, &tb) : get_block(t, h, true, &hd, &tb);
	if (rc)
		return rc;
	tv_block_iter di;
	tv_block_iter_init(&di, &tb->blk);
	tv_block_iter_seek(&di, target);
	if (tv_block_iter_valid(&di) && tv_ukey_cmp(tv_ikey_user(di.key), ukey) == 0)
		rc = fn(arg, di.key, di.value);
	else if (di.status)
		rc = corrupt(t, h.off, "malformed data block");
	tv_block_iter_fini(&di);
	put_block(t, hd, tb);
	return rc;
}

/* ---- Iterating: index block -> data blocks ------------------------------ */

static const tv_block empty_block = {NULL, NULL, 0, 0};

static void drop_block(tv_table_iterator *it)
{
	if (!it->have_block)
		return;
	put_block(it->t, it->hd, it->tb);
	it->have_block = false;
	it->hd = NULL;
	it->tb = NULL;
	tv_block_iter_reset(&it->data, &empty_block);
}

/* Makes the data iterator cover the data block at h (unpositioned): data
 * block b of the table's starts, or UINT32_MAX if not known.  False on an
 * error, which is then in it->status. */
static bool load_handle(tv_table_iterator *it, bhandle h, uint32_t b)
{
	if (it->have_block && it->boff == h.off) {
		tv_block_iter_reset(&it->data, &it->tb->blk);
		return true;
	}
	drop_block(it);
	int rc = b != UINT32_MAX && it->fill_cache
	                 ? get_block_at(it->t, b, h, &it->hd, &it->tb)
	                 : get_block(it->t, h, it->fill_cache, &it->hd, &it->tb);
	if (rc) {
		it->status = rc;
		return false;
	}
	it->have_block = true;
	it->boff = h.off;
	tv_block_iter_reset(&it->data, &it->tb->blk);
	return true;
}

/* load_handle for the block the index iterator is at. */
static bool load_block(tv_table_iterator *it)
{
	assert(tv_block_iter_valid(&it->index));
	bhandle h;
	if (data_handle(it->t, it->index.value, &h)) {
		it->status = corrupt(it->t, it->t->index_h.off, "bad block handle in index");
		drop_block(it);
		return false;
	}
	return load_handle(it, h, UINT32_MAX);
}

/* load_block for wherever the index iterator now is; past either end of
 * the index there is no block. */
static bool enter_block(tv_table_iterator *it)
{
	if (tv_block_iter_valid(&it->index))
		return load_block(it);
	drop_block(it);
	return false;
}

/* Records an error of either block iterator; true if there is one. */
static bool settle(tv_table_iterator *it)
{
	if (!it->status && it->data.status)
		it->status = corrupt(it->t, it->boff, "malformed data block");
	if (!it->status && it->index.status)
		it->status = corrupt(it->t, it->t->index_h.off, "malformed index block");
	if (it->status)
		drop_block(it);
	return it->status != 0;
}

/* Moves forward over exhausted (or empty) data blocks. */
void tv_table_iter_leave_forward(tv_table_iterator *it)
{
	while (!settle(it) && !tv_block_iter_valid(&it->data)) {
		if (!tv_block_iter_valid(&it->index)) {
			drop_block(it);
			return;
		}
		tv_block_iter_next(&it->index);
		if (!tv_block_iter_valid(&it->index))
			continue; /* settle() sees an index error; else the end */
		if (load_block(it))
			tv_block_iter_seek_first(&it->data);
	}
}

void tv_table_iter_leave_backward(tv_table_iterator *it)
{
	while (!settle(it) && !tv_block_iter_valid(&it->data)) {
		if (!tv_block_iter_valid(&it->index)) {
			drop_block(it);
			return;
		}
		tv_block_iter_prev(&it->index);
		if (!tv_block_iter_valid(&it->index))
			continue;
		if (load_block(it))
			tv_block_iter_seek_last(&it->data);
	}
}

void tv_table_iter_seek_first(tv_table_iterator *it)
{
	if (it->status)
		return;
	tv_block_iter_seek_first(&it->index);
	if (enter_block(it))
		tv_block_iter_seek_first(&it->data);
	tv_table_iter_leave_forward(it);
}

void tv_table_iter_seek_last(tv_table_iterator *it)
{
	if (it->status)
		return;
	tv_block_iter_seek_last(&it->index);
	if (enter_block(it))
		tv_block_iter_seek_last(&it->data);
	tv_table_iter_leave_backward(it);
}

void tv_table_iter_seek(tv_table_iterator *it, tv_slice target)
{
	if (it->status)
		return;
	if (tv_block_iter_valid(&it->data) && tv_ikey_cmp(target, it->data.key) > 0 &&
	    tv_ikey_cmp(target, it->index.key) <= 0) {
		/* Forward within the current block, which ends at or after
		 * target (its index key): the index need not be searched. */
		tv_block_iter_seek(&it->data, target);
	} else {
		/* With block starts, the block's place comes from there and its
		 * cache slot, without decoding its handle from the index. */
		const tv_table *t = it->t;
		uint32_t b = index_seek(t, &it->index, target);
		bool in = b != UINT32_MAX && t->starts
		                  ? load_handle(it, block_at(t, b), b)
		                  : enter_block(it);
		if (in)
			tv_block_iter_seek(&it->data, target);
	}
	tv_table_iter_leave_forward(it);
}

/* Not zero-filled: a cursor opens one per table and level for every seek,
 * and the block iterators' key buffers need no zeroes. */
void tv_table_iter_init(tv_table_iterator *it, tv_table *t, bool fill_cache)
{
	it->t = t;
	it->have_block = false;
	it->boff = 0;
	it->hd = NULL;
	it->tb = NULL;
	it->fill_cache = fill_cache;
	it->status = 0;
	tv_block_iter_init(&it->index, &t->index->blk);
	tv_block_iter_init(&it->data, &empty_block);
}

void tv_table_iter_fini(tv_table_iterator *it)
{
	drop_block(it);
	tv_block_iter_fini(&it->index);
	tv_block_iter_fini(&it->data);
}

/* ---- As a tv_iter ------------------------------------------------------- */

static tv_table_iterator *ti(tv_iter *it)
{
	return (tv_table_iterator *)it;
}

/* Publishes the position after a move.  Only backward moves work out
 * whether the value lasts (reverse cursors want it); forward ones say it
 * may not. */
static void titer_publish(tv_table_iterator *it, int backward)
{
	if (tv_table_iter_valid(it))
		tv_iter_publish_lasting(&it->base, it->data.key, it->data.value,
		                        backward && tv_table_iter_value_lasts(it));
	else
		tv_iter_unpublish(&it->base);
}

static void titer_seek_first(tv_iter *base)
{
	tv_table_iter_seek_first(ti(base));
	titer_publish(ti(base), 0);
}

static void titer_seek_last(tv_iter *base)
{
	tv_table_iter_seek_last(ti(base));
	titer_publish(ti(base), 1);
}

static void titer_seek(tv_iter *base, tv_slice target)
{
	tv_table_iter_seek(ti(base), target);
	titer_publish(ti(base), 0);
}

static void titer_next(tv_iter *base)
{
	assert(base->valid);
	tv_table_iter_next(ti(base));
	titer_publish(ti(base), 0);
}

static void titer_prev(tv_iter *base)
{
	assert(base->valid);
	tv_table_iter_prev(ti(base));
	titer_publish(ti(base), 1);
}

static int titer_status(tv_iter *base)
{
	return ti(base)->status;
}

/* Releases what the iterator holds; the memory it lives in stays. */
static void titer_destroy_in_place(tv_iter *base)
{
	tv_table_iter_fini(ti(base));
}

static void titer_destroy(tv_iter *base)
{
	titer_destroy_in_place(base);
	free(base);
}

static const tv_iter_ops table_iter_ops = {
        titer_seek_first, titer_seek_last, titer_seek,    titer_next,
        titer_prev,       titer_status,    titer_destroy,
};

static const tv_iter_ops table_iter_in_place_ops = {
        titer_seek_first, titer_seek_last,        titer_seek, titer_next, titer_prev,
        titer_status,     titer_destroy_in_place,
};

size_t tv_table_iter_size(void)
{
	return sizeof(tv_table_iterator);
}

tv_iter *tv_table_iter_in(void *mem, tv_table *t, bool fill_cache)
{
	tv_table_iterator *it = mem;
	it->base.ops = &table_iter_in_place_ops;
	tv_iter_unpublish(&it->base);
	tv_table_iter_init(it, t, fill_cache);
	return &it->base;
}

tv_iter *tv_table_iter(tv_table *t, bool fill_cache)
{
	void *mem = malloc(sizeof(tv_table_iterator));
	if (!mem)
		return NULL;
	tv_iter *it = tv_table_iter_in(mem, t, fill_cache);
	it->ops = &table_iter_ops;
	return it;
}

/* ---- Verification ------------------------------------------------------- */

typedef struct verifier {
	tv_table *t;
	void (*report)(void *arg, uint64_t offset, const char *msg);
	void *arg;
	uint64_t problems;
	tv_buf prev; /* the last key seen, across blocks */
	bool have_prev;
	uint64_t entries;
} verifier;

static void problem(verifier *v, uint64_t off, const char *msg)
{
	v->problems++;
	if (v->report)
		v->report(v->arg, off, msg);
}

/* Re-reads a meta block (or data block, with parse set) and reports what
 * is wrong with it; returns 0, or an I/O error to stop at. */
static int verify_read(verifier *v, bhandle h, bool parse, table_block **out)
{
	const char *why = NULL;
	*out = NULL;
	int rc = parse ? read_block(v->t, h, out, &why) : read_raw(v->t, h, out, &why);
	if (rc == TROVE_ECORRUPT) {
		problem(v, h.off, why);
		return 0;
	}
	return rc;
}

static int verify_frame(verifier *v)
{
	tv_table *t = v->t;
	char hdr[HEADER_SIZE], ft[FOOTER_SIZE];
	const char *why;
	uint64_t foff = t->file_size - FOOTER_SIZE;
	int rc = read_exact(t, 0, hdr, sizeof hdr, &why);
	if (!rc)
		rc = read_exact(t, foff, ft, sizeof ft, &why);
	if (rc == TROVE_ECORRUPT)
		problem(v, foff, why);
	if (rc)
		return rc == TROVE_ECORRUPT ? 0 : rc;
	if (memcmp(hdr, TV_TABLE_MAGIC, MAGIC_SIZE) ||
	    tv_get_fixed32(hdr + 8) != TV_TABLE_VERSION ||
	    tv_checksum(hdr, 12) != tv_get_fixed32(hdr + 12))
		problem(v, 0, "bad file header");
	if (tv_checksum(ft, HANDLES_SIZE) != tv_get_fixed32(ft + HANDLES_SIZE) ||
	    tv_get_fixed32(ft + HANDLES_SIZE + 4) != TV_TABLE_VERSION ||
	    memcmp(ft + HANDLES_SIZE + 8, TV_TABLE_MAGIC, MAGIC_SIZE))
		problem(v, foff, "bad footer");
	return 0;
}

static int verify_meta(verifier *v)
{
	tv_table *t = v->t;
	table_block *tb;
	int rc = 0;
	if (t->filter_h.off || t->filter_h.size) {
		rc = verify_read(v, t->filter_h, false, &tb);
		if (tb && !tv_bloom_valid(tv_slice_make(tb->data, tb->size)))
			problem(v, t->filter_h.off, "malformed bloom filter");
		block_free(t, tb);
	}
	if (!rc) {
		rc = verify_read(v, t->props_h, false, &tb);
		block_free(t, tb);
	}
	if (!rc) {
		rc = verify_read(v, t->index_h, true, &tb);
		block_free(t, tb);
	}
	return rc;
}

/* Checks every entry of one data block, and that the index names its
 * last key. */
static void verify_entries(verifier *v, bhandle h, const table_block *tb, tv_slice index_key)
{
	tv_block_iter it;
	tv_block_iter_init(&it, &tb->blk);
	bool any = false;
	for (tv_block_iter_seek_first(&it); tv_block_iter_valid(&it); tv_block_iter_next(&it)) {
		v->entries++;
		any = true;
		if (!tv_ikey_valid(it.key))
			problem(v, h.off, "entry with an unknown type");
		if (v->have_prev && tv_ikey_cmp(tv_buf_slice(&v->prev), it.key) >= 0)
			problem(v, h.off, "keys out of order");
		tv_buf_clear(&v->prev);
		v->have_prev = tv_buf_append(&v->prev, it.key.data, it.key.len) == 0;
	}
	if (it.status)
		problem(v, h.off, "malformed data block");
	else if (!any)
		problem(v, h.off, "empty data block");
	else if (v->have_prev && !tv_slice_eq(tv_buf_slice(&v->prev), index_key))
		problem(v, h.off, "index key differs from the block's last key");
	tv_block_iter_fini(&it);
}

static int verify_data(verifier *v)
{
	tv_table *t = v->t;
	tv_block_iter ii;
	tv_block_iter_init(&ii, &t->index->blk);
	uint64_t expect = HEADER_SIZE;
	int rc = 0;
	for (tv_block_iter_seek_first(&ii); !rc && tv_block_iter_valid(&ii);
	     tv_block_iter_next(&ii)) {
		bhandle h;
		table_block *tb;
		if (data_handle(t, ii.value, &h)) {
			problem(v, t->index_h.off, "bad block handle in index");
			continue;
		}
		if (h.off != expect)
			problem(v, expect, "data blocks are not contiguous");
		expect = h.off + h.size + TRAILER_SIZE;
		rc = verify_read(v, h, true, &tb);
		if (tb) {
			verify_entries(v, h, tb, ii.key);
			block_free(v->t, tb);
		}
	}
	if (!rc && ii.status)
		problem(v, t->index_h.off, "malformed index block");
	else if (!rc && expect != t->data_end)
		problem(v, expect, "data blocks do not reach the meta blocks");
	tv_block_iter_fini(&ii);
	return rc;
}

int tv_table_verify(tv_table *t, void (*report)(void *arg, uint64_t offset, const char *msg),
                    void *arg)
{
	verifier v = {t, report, arg, 0, {NULL, 0, 0, NULL}, false, 0};
	int rc = verify_frame(&v);
	if (!rc)
		rc = verify_meta(&v);
	if (!rc)
		rc = verify_data(&v);
	if (!rc && v.entries != t->entries)
		problem(&v, t->props_h.off, "entry count differs from the properties");
	tv_buf_free(&v.prev);
	if (rc)
		return rc;
	return v.problems ? TROVE_ECORRUPT : 0;
}
