/*
 * bench_trove.c - Trove behind the benchmark's backend interface.
 *
 * Uses include/trove.h only, like any embedding program.  This file is
 * linked against libtrove alone (plus Trove's own compression libraries):
 * it must never pull a peer's library into Trove's calls or the other way.
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "trove.h"

static int fail(const char *what, int rc)
{
	return bench_fail("trove", what, trove_strerror(rc));
}

static const char *tv_version(void)
{
	return TROVE_VERSION_STRING;
}

static int tv_open(const char *dir, const bench_opts *o, void **out)
{
	trove_options opts;
	trove_options_init(&opts);
	opts.sync = o->sync ? TROVE_SYNC_ALWAYS : TROVE_SYNC_NONE;
	if (o->cache_bytes)
		opts.memory_budget = o->cache_bytes;
	trove_db *db;
	int rc = trove_open(dir, &opts, &db);
	if (rc)
		return fail("open", rc);
	*out = db;
	return 0;
}

static void tv_close(void *db)
{
	int rc = trove_close(db);
	if (rc)
		fail("close", rc);
}

/* The handle is thread-safe: the context is the handle itself. */
static int tv_attach(void *db, void **ctx)
{
	*ctx = db;
	return 0;
}

static void tv_detach(void *ctx)
{
	(void)ctx;
}

static int tv_put(void *db, const void *k, size_t kl, const void *v, size_t vl)
{
	int rc = trove_put(db, k, kl, v, vl);
	return rc ? fail("put", rc) : 0;
}

static int tv_get(void *db, const void *k, size_t kl, void *buf, size_t cap, size_t *vlen)
{
	int rc = trove_get_into(db, NULL, k, kl, buf, cap, vlen, NULL);
	if (rc == TROVE_ENOTFOUND)
		return 1;
	return rc ? fail("get", rc) : 0;
}

static int tv_del(void *db, const void *k, size_t kl)
{
	int rc = trove_del(db, k, kl);
	return rc ? fail("del", rc) : 0;
}

static int tv_batch_put(void *db, const bench_kv *kv, size_t n)
{
	trove_batch *b = trove_batch_new();
	if (!b)
		return fail("batch_new", TROVE_ENOMEM);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		rc = trove_batch_put(b, kv[i].key, kv[i].klen, kv[i].val, kv[i].vlen);
	if (!rc)
		rc = trove_write(db, b, NULL);
	trove_batch_free(b);
	return rc ? fail("write", rc) : 0;
}

static long tv_scan(void *db, int reverse, const void *start, size_t slen, long n, uint64_t *bytes)
{
	trove_cursor *c;
	int rc = trove_cursor_open(db, NULL, &c);
	if (rc)
		return fail("cursor_open", rc);
	if (reverse)
		rc = trove_cursor_last(c);
	else if (start)
		rc = trove_cursor_seek(c, start, slen);
	else
		rc = trove_cursor_first(c);
	long got = 0;
	while (rc == 0 && got < n) {
		size_t kl, vl;
		const void *k = trove_cursor_key(c, &kl);
		const void *v = trove_cursor_value(c, &vl);
		bench_touch(bytes, k, kl, v, vl);
		got++;
		if (got < n)
			rc = reverse ? trove_cursor_prev(c) : trove_cursor_next(c);
	}
	trove_cursor_close(c);
	if (rc && rc != TROVE_ENOTFOUND)
		return fail("cursor", rc);
	return got;
}

/* The engine's counters (trove_get_stats), for profiling runs. */
static void tv_stats(void *db, FILE *out)
{
	trove_stats st;
	if (trove_get_stats(db, &st))
		return;
	fprintf(out,
	        "  trove stats: reads %llu writes %llu groups %llu syncs %llu wal %.1f MiB "
	        "tables written %.1f MiB flushes %llu compactions %llu (read %.1f MiB) "
	        "cache hits %llu misses %llu stalls %llu (%.1f ms) memtables %.1f MiB "
	        "cache %.1f MiB files %llu per level",
	        (unsigned long long)st.reads, (unsigned long long)st.writes,
	        (unsigned long long)st.write_groups, (unsigned long long)st.syncs,
	        st.wal_bytes / 1048576.0, st.table_bytes / 1048576.0,
	        (unsigned long long)st.flushes, (unsigned long long)st.compactions,
	        st.compaction_bytes_read / 1048576.0, (unsigned long long)st.cache_hits,
	        (unsigned long long)st.cache_misses, (unsigned long long)st.stalls,
	        st.stall_us / 1000.0, st.memtable_bytes / 1048576.0, st.cache_bytes / 1048576.0,
	        (unsigned long long)st.table_files);
	for (int i = 0; i < 7; i++)
		fprintf(out, " %llu", (unsigned long long)st.level_files[i]);
	fprintf(out, "\n");
}

const bench_engine bench_trove = {
        .name = "trove",
        .notes = "Trove's defaults (LZ4 compression, bloom filters, group commit). "
                 "nosync = TROVE_SYNC_NONE (write(2) to the log, no fsync); "
                 "sync = TROVE_SYNC_ALWAYS (fdatasync before a write returns, shared "
                 "by concurrent writers). Cache cap = memory_budget, which covers "
                 "its memtables (1/8 each, two at most), the block cache and every "
                 "open table's index and filter blocks: stricter than the peers' "
                 "block-cache-only caps.",
        .caps = BENCH_ORDERED | BENCH_ATOMIC_BATCH,
        .version = tv_version,
        .open = tv_open,
        .close = tv_close,
        .attach = tv_attach,
        .detach = tv_detach,
        .put = tv_put,
        .get = tv_get,
        .del = tv_del,
        .batch_put = tv_batch_put,
        .scan = tv_scan,
        .stats = tv_stats,
};
