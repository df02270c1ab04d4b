/*
 * bench_leveldb.c - LevelDB (libleveldb, C API leveldb/c.h) behind the
 * benchmark's backend interface.
 *
 * Defaults everywhere except two documented choices: the block cache is
 * the run's memory budget (the default 8 MiB would not be the same budget
 * as the other engines), and a 10-bit bloom filter (LevelDB's own
 * recommendation; it has none by default, Trove always has one).
 */
#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"

typedef struct ld_db {
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_cache_t *cache;
	leveldb_filterpolicy_t *bloom;
	leveldb_readoptions_t *ropts;
	leveldb_writeoptions_t *wopts;
} ld_db;

static int fail(const char *what, char *err)
{
	bench_fail("leveldb", what, err ? err : "?");
	leveldb_free(err);
	return -1;
}

static const char *ld_version(void)
{
	static char v[32];
	snprintf(v, sizeof(v), "%d.%d", leveldb_major_version(), leveldb_minor_version());
	return v;
}

static void ld_free_opts(ld_db *d)
{
	leveldb_options_destroy(d->opts);
	if (d->cache)
		leveldb_cache_destroy(d->cache);
	leveldb_filterpolicy_destroy(d->bloom);
	leveldb_readoptions_destroy(d->ropts);
	leveldb_writeoptions_destroy(d->wopts);
}

static int ld_open(const char *dir, const bench_opts *o, void **out)
{
	ld_db *d = calloc(1, sizeof(*d));
	if (!d)
		return fail("open", NULL);
	d->opts = leveldb_options_create();
	leveldb_options_set_create_if_missing(d->opts, 1);
	if (o->cache_bytes) {
		d->cache = leveldb_cache_create_lru(o->cache_bytes);
		leveldb_options_set_cache(d->opts, d->cache);
	}
	d->bloom = leveldb_filterpolicy_create_bloom(10);
	leveldb_options_set_filter_policy(d->opts, d->bloom);
	d->ropts = leveldb_readoptions_create();
	d->wopts = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(d->wopts, o->sync ? 1 : 0);
	char *err = NULL;
	d->db = leveldb_open(d->opts, dir, &err);
	if (err) {
		ld_free_opts(d);
		free(d);
		return fail("open", err);
	}
	*out = d;
	return 0;
}

static void ld_close(void *p)
{
	ld_db *d = p;
	leveldb_close(d->db);
	ld_free_opts(d);
	free(d);
}

static int ld_attach(void *p, void **ctx)
{
	*ctx = p;
	return 0;
}

static void ld_detach(void *ctx)
{
	(void)ctx;
}

static int ld_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	ld_db *d = p;
	char *err = NULL;
	leveldb_put(d->db, d->wopts, k, kl, v, vl, &err);
	return err ? fail("put", err) : 0;
}

static int ld_get(void *p, const void *k, size_t kl, void *buf, size_t cap, size_t *vlen)
{
	ld_db *d = p;
	char *err = NULL;
	size_t vl;
	char *v = leveldb_get(d->db, d->ropts, k, kl, &vl, &err);
	if (err)
		return fail("get", err);
	if (!v)
		return 1;
	bench_copy_out(buf, cap, v, vl, vlen);
	leveldb_free(v);
	return 0;
}

static int ld_del(void *p, const void *k, size_t kl)
{
	ld_db *d = p;
	char *err = NULL;
	leveldb_delete(d->db, d->wopts, k, kl, &err);
	return err ? fail("delete", err) : 0;
}

static int ld_batch_put(void *p, const bench_kv *kv, size_t n)
{
	ld_db *d = p;
	leveldb_writebatch_t *b = leveldb_writebatch_create();
	for (size_t i = 0; i < n; i++)
		leveldb_writebatch_put(b, kv[i].key, kv[i].klen, kv[i].val, kv[i].vlen);
	char *err = NULL;
	leveldb_write(d->db, d->wopts, b, &err);
	leveldb_writebatch_destroy(b);
	return err ? fail("write", err) : 0;
}

static long ld_scan(void *p, int reverse, const void *start, size_t slen, long n, uint64_t *bytes)
{
	ld_db *d = p;
	leveldb_iterator_t *it = leveldb_create_iterator(d->db, d->ropts);
	if (reverse)
		leveldb_iter_seek_to_last(it);
	else if (start)
		leveldb_iter_seek(it, start, slen);
	else
		leveldb_iter_seek_to_first(it);
	long got = 0;
	while (got < n && leveldb_iter_valid(it)) {
		size_t kl, vl;
		const char *k = leveldb_iter_key(it, &kl);
		const char *v = leveldb_iter_value(it, &vl);
		bench_touch(bytes, k, kl, v, vl);
		if (++got < n) {
			if (reverse)
				leveldb_iter_prev(it);
			else
				leveldb_iter_next(it);
		}
	}
	char *err = NULL;
	leveldb_iter_get_error(it, &err);
	leveldb_iter_destroy(it);
	return err ? fail("iterator", err) : got;
}

const bench_engine bench_leveldb = {
        .name = "leveldb",
        .notes = "LSM tree, defaults (4 MiB write buffer, Snappy compression as "
                 "built by Debian) plus a 10-bit bloom filter. nosync = "
                 "WriteOptions.sync=false (write(2) to the log, no fsync); sync = "
                 "sync=true (fsync of the log per write; concurrent writers are "
                 "grouped). Cache cap = LRU block cache of the budget; memtables are "
                 "outside it.",
        .caps = BENCH_ORDERED | BENCH_ATOMIC_BATCH,
        .version = ld_version,
        .open = ld_open,
        .close = ld_close,
        .attach = ld_attach,
        .detach = ld_detach,
        .put = ld_put,
        .get = ld_get,
        .del = ld_del,
        .batch_put = ld_batch_put,
        .scan = ld_scan,
};
