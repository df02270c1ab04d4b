/*
 * bench_rocksdb.c - RocksDB (librocksdb, C API rocksdb/c.h) behind the
 * benchmark's backend interface.
 *
 * Defaults everywhere except two documented choices: the LRU block cache
 * is the run's memory budget (instead of the default 32 MiB), and a
 * 10-bit full bloom filter (RocksDB's recommended setting; none by
 * default).  Reads use get_pinned, RocksDB's copy-free point read.
 */
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"

typedef struct rk_db {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_block_based_table_options_t *topts;
	rocksdb_cache_t *cache;
	rocksdb_readoptions_t *ropts;
	rocksdb_writeoptions_t *wopts;
} rk_db;

static int fail(const char *what, char *err)
{
	bench_fail("rocksdb", what, err ? err : "?");
	rocksdb_free(err);
	return -1;
}

/* The C API has no version call (rocksdb/version.h is C++): the Makefile
 * passes the version pkg-config reports for the installed library. */
#ifndef BENCH_ROCKSDB_VERSION
#define BENCH_ROCKSDB_VERSION "unknown"
#endif

static const char *rk_version(void)
{
	return BENCH_ROCKSDB_VERSION;
}

static void rk_free_opts(rk_db *d)
{
	rocksdb_options_destroy(d->opts);
	rocksdb_block_based_options_destroy(d->topts);
	if (d->cache)
		rocksdb_cache_destroy(d->cache);
	rocksdb_readoptions_destroy(d->ropts);
	rocksdb_writeoptions_destroy(d->wopts);
}

static int rk_open(const char *dir, const bench_opts *o, void **out)
{
	rk_db *d = calloc(1, sizeof(*d));
	if (!d)
		return fail("open", NULL);
	d->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(d->opts, 1);
	d->topts = rocksdb_block_based_options_create();
	if (o->cache_bytes) {
		d->cache = rocksdb_cache_create_lru(o->cache_bytes);
		rocksdb_block_based_options_set_block_cache(d->topts, d->cache);
	}
	/* The table options take ownership of the policy. */
	rocksdb_block_based_options_set_filter_policy(d->topts,
	                                              rocksdb_filterpolicy_create_bloom_full(10));
	rocksdb_options_set_block_based_table_factory(d->opts, d->topts);
	d->ropts = rocksdb_readoptions_create();
	d->wopts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(d->wopts, o->sync ? 1 : 0);
	char *err = NULL;
	d->db = rocksdb_open(d->opts, dir, &err);
	if (err) {
		rk_free_opts(d);
		free(d);
		return fail("open", err);
	}
	*out = d;
	return 0;
}

static void rk_close(void *p)
{
	rk_db *d = p;
	rocksdb_close(d->db);
	rk_free_opts(d);
	free(d);
}

static int rk_attach(void *p, void **ctx)
{
	*ctx = p;
	return 0;
}

static void rk_detach(void *ctx)
{
	(void)ctx;
}

static int rk_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	rk_db *d = p;
	char *err = NULL;
	rocksdb_put(d->db, d->wopts, k, kl, v, vl, &err);
	return err ? fail("put", err) : 0;
}

static int rk_get(void *p, const void *k, size_t kl, void *buf, size_t cap, size_t *vlen)
{
	rk_db *d = p;
	char *err = NULL;
	rocksdb_pinnableslice_t *s = rocksdb_get_pinned(d->db, d->ropts, k, kl, &err);
	if (err)
		return fail("get", err);
	if (!s)
		return 1;
	size_t vl;
	const char *v = rocksdb_pinnableslice_value(s, &vl);
	bench_copy_out(buf, cap, v, vl, vlen);
	rocksdb_pinnableslice_destroy(s);
	return 0;
}

static int rk_del(void *p, const void *k, size_t kl)
{
	rk_db *d = p;
	char *err = NULL;
	rocksdb_delete(d->db, d->wopts, k, kl, &err);
	return err ? fail("delete", err) : 0;
}

static int rk_batch_put(void *p, const bench_kv *kv, size_t n)
{
	rk_db *d = p;
	rocksdb_writebatch_t *b = rocksdb_writebatch_create();
	for (size_t i = 0; i < n; i++)
		rocksdb_writebatch_put(b, kv[i].key, kv[i].klen, kv[i].val, kv[i].vlen);
	char *err = NULL;
	rocksdb_write(d->db, d->wopts, b, &err);
	rocksdb_writebatch_destroy(b);
	return err ? fail("write", err) : 0;
}

static long rk_scan(void *p, int reverse, const void *start, size_t slen, long n, uint64_t *bytes)
{
	rk_db *d = p;
	rocksdb_iterator_t *it = rocksdb_create_iterator(d->db, d->ropts);
	if (reverse)
		rocksdb_iter_seek_to_last(it);
	else if (start)
		rocksdb_iter_seek(it, start, slen);
	else
		rocksdb_iter_seek_to_first(it);
	long got = 0;
	while (got < n && rocksdb_iter_valid(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *v = rocksdb_iter_value(it, &vl);
		bench_touch(bytes, k, kl, v, vl);
		if (++got < n) {
			if (reverse)
				rocksdb_iter_prev(it);
			else
				rocksdb_iter_next(it);
		}
	}
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	return err ? fail("iterator", err) : got;
}

const bench_engine bench_rocksdb = {
        .name = "rocksdb",
        .notes = "LSM tree, defaults (64 MiB write buffer x2, Snappy compression, "
                 "2 background jobs) plus a 10-bit full bloom filter. nosync = "
                 "WriteOptions.sync=false (WAL written, no fsync); sync = sync=true "
                 "(fdatasync of the WAL per write group; concurrent writers share "
                 "it). Cache cap = LRU block cache of the budget; memtables are "
                 "outside it.",
        .caps = BENCH_ORDERED | BENCH_ATOMIC_BATCH,
        .version = rk_version,
        .open = rk_open,
        .close = rk_close,
        .attach = rk_attach,
        .detach = rk_detach,
        .put = rk_put,
        .get = rk_get,
        .del = rk_del,
        .batch_put = rk_batch_put,
        .scan = rk_scan,
};
