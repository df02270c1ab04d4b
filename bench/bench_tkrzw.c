/*
 * bench_tkrzw.c - Tkrzw (libtkrzw, C API tkrzw_langc.h) behind the
 * benchmark's backend interface, twice: HashDBM (unordered) and TreeDBM
 * (a B+tree: ordered).
 *
 * Tkrzw is C++ with a C API; its DBM objects are thread-safe.  Reads go
 * through the record-processor calls (tkrzw_dbm_process and
 * tkrzw_dbm_iter_process), Tkrzw's copy-free way to look at a record.
 * Tkrzw has no transactions: a batch is tkrzw_dbm_set_multi, atomic
 * towards other threads but not across a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tkrzw_langc.h>

#include "backend.h"

typedef struct tk_db {
	TkrzwDBM *dbm;
	const char *name;
	int sync; /* synchronize (hard) after every write */
} tk_db;

static int fail(const tk_db *d, const char *what)
{
	return bench_fail(d->name, what, tkrzw_get_last_status_message());
}

static const char *tk_version(void)
{
	return TKRZW_PACKAGE_VERSION;
}

static int tk_open_file(const char *name, const char *dir, const char *file, const char *params,
                        const bench_opts *o, void **out)
{
	tk_db *d = calloc(1, sizeof(*d));
	if (!d)
		return bench_fail(name, "open", "out of memory");
	d->name = name;
	d->sync = o->sync;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	d->dbm = tkrzw_dbm_open(path, true, params);
	if (!d->dbm) {
		bench_fail(name, "open", tkrzw_get_last_status_message());
		free(d);
		return -1;
	}
	*out = d;
	return 0;
}

static int tkh_open(const char *dir, const bench_opts *o, void **out)
{
	char params[160];
	/* Tkrzw's guide: num_buckets about twice the records (default 1M). */
	unsigned long long nb = o->expected_keys * 2 > 1000 ? o->expected_keys * 2 : 1000;
	snprintf(params, sizeof(params), "dbm=HashDBM,num_buckets=%llu", nb);
	return tk_open_file("tkrzw-hash", dir, "data.tkh", params, o, out);
}

static int tkt_open(const char *dir, const bench_opts *o, void **out)
{
	char params[160] = "dbm=TreeDBM";
	/* The page cache counts pages (at most max_page_size, 8 KiB by
	 * default): cap it at the budget. */
	if (o->cache_bytes)
		snprintf(params, sizeof(params), "dbm=TreeDBM,max_cached_pages=%zu",
		         o->cache_bytes / 8192 ? o->cache_bytes / 8192 : 1);
	return tk_open_file("tkrzw-tree", dir, "data.tkt", params, o, out);
}

static void tk_close(void *p)
{
	tk_db *d = p;
	if (!tkrzw_dbm_close(d->dbm))
		bench_fail(d->name, "close", tkrzw_get_last_status_message());
	free(d);
}

static int tk_attach(void *p, void **ctx)
{
	*ctx = p;
	return 0;
}

static void tk_detach(void *ctx)
{
	(void)ctx;
}

/* After a write in sync mode: make it durable (hard: fsync). */
static int tk_synced(tk_db *d, int ok, const char *what)
{
	if (!ok)
		return fail(d, what);
	if (d->sync && !tkrzw_dbm_synchronize(d->dbm, true, NULL, NULL, ""))
		return fail(d, "synchronize");
	return 0;
}

static int tk_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	tk_db *d = p;
	return tk_synced(d, tkrzw_dbm_set(d->dbm, k, (int32_t)kl, v, (int32_t)vl, true), "set");
}

static int tk_del(void *p, const void *k, size_t kl)
{
	tk_db *d = p;
	int ok = tkrzw_dbm_remove(d->dbm, k, (int32_t)kl) ||
	         tkrzw_get_last_status_code() == TKRZW_STATUS_NOT_FOUND_ERROR;
	return tk_synced(d, ok, "remove");
}

static int tk_batch_put(void *p, const bench_kv *kv, size_t n)
{
	tk_db *d = p;
	TkrzwKeyValuePair *r = malloc(n * sizeof(*r));
	if (!r)
		return bench_fail(d->name, "set_multi", "out of memory");
	for (size_t i = 0; i < n; i++) {
		r[i].key_ptr = kv[i].key;
		r[i].key_size = (int32_t)kv[i].klen;
		r[i].value_ptr = kv[i].val;
		r[i].value_size = (int32_t)kv[i].vlen;
	}
	int ok = tkrzw_dbm_set_multi(d->dbm, r, (int32_t)n, true);
	free(r);
	return tk_synced(d, ok, "set_multi");
}

/* Where a read's callback leaves the value. */
typedef struct tk_out {
	void *buf;
	size_t cap;
	size_t *vlen;
	int found;
	uint64_t *bytes; /* for scans: touch instead of copying */
} tk_out;

static const char *tk_read(void *arg, const char *k, int32_t kl, const char *v, int32_t vl,
                           int32_t *sp)
{
	tk_out *o = arg;
	(void)sp;
	if (!v)
		return TKRZW_REC_PROC_NOOP;
	o->found = 1;
	if (o->bytes)
		bench_touch(o->bytes, k, (size_t)kl, v, (size_t)vl);
	else
		bench_copy_out(o->buf, o->cap, v, (size_t)vl, o->vlen);
	return TKRZW_REC_PROC_NOOP;
}

static int tk_get(void *p, const void *k, size_t kl, void *buf, size_t cap, size_t *vlen)
{
	tk_db *d = p;
	tk_out o = {.buf = buf, .cap = cap, .vlen = vlen};
	if (!tkrzw_dbm_process(d->dbm, k, (int32_t)kl, tk_read, &o, false))
		return fail(d, "process");
	return o.found ? 0 : 1;
}

static long tk_scan(void *p, int reverse, const void *start, size_t slen, long n, uint64_t *bytes)
{
	tk_db *d = p;
	TkrzwDBMIter *it = tkrzw_dbm_make_iterator(d->dbm);
	int ok = reverse ? tkrzw_dbm_iter_last(it)
	         : start ? tkrzw_dbm_iter_jump(it, start, (int32_t)slen)
	                 : tkrzw_dbm_iter_first(it);
	long got = 0;
	tk_out o = {.bytes = bytes};
	while (ok && got < n) {
		o.found = 0;
		if (!tkrzw_dbm_iter_process(it, tk_read, &o, false) || !o.found)
			break;
		if (++got < n)
			ok = reverse ? tkrzw_dbm_iter_previous(it) : tkrzw_dbm_iter_next(it);
	}
	tkrzw_dbm_iter_free(it);
	return got;
}

const bench_engine bench_tkrzw_hash = {
        .name = "tkrzw-hash",
        .notes = "Tkrzw HashDBM (memory-mapped file, in-place updates), defaults "
                 "except num_buckets = 2x the keys (Tkrzw's guide). Unordered: scans "
                 "n/a. No transactions: a batch is set_multi, not crash-atomic. "
                 "nosync = default (no fsync); sync = Synchronize(hard=true) after "
                 "every write (no group commit). No cache of its own (the OS page "
                 "cache holds the mapped file): the cache cap does not apply.",
        .caps = BENCH_HASH,
        .version = tk_version,
        .open = tkh_open,
        .close = tk_close,
        .attach = tk_attach,
        .detach = tk_detach,
        .put = tk_put,
        .get = tk_get,
        .del = tk_del,
        .batch_put = tk_batch_put,
        .scan = NULL,
};

const bench_engine bench_tkrzw_tree = {
        .name = "tkrzw-tree",
        .notes = "Tkrzw TreeDBM (B+tree on a HashDBM file), defaults except the page "
                 "cache. No transactions: a batch is set_multi, not crash-atomic. "
                 "nosync = default; sync = Synchronize(hard=true) after every write. "
                 "Known problem: with Tkrzw 1.0.25 a reverse scan of a TreeDBM that was "
                 "reopened stops at the first page boundary (Previous() and "
                 "jump_lower() lose the position; a fresh, never-closed tree scans "
                 "fine), so readreverse is reported as an error. Cache cap = max_cached_pages = "
                 "budget / 8 KiB.",
        .caps = BENCH_ORDERED,
        .version = tk_version,
        .open = tkt_open,
        .close = tk_close,
        .attach = tk_attach,
        .detach = tk_detach,
        .put = tk_put,
        .get = tk_get,
        .del = tk_del,
        .batch_put = tk_batch_put,
        .scan = tk_scan,
};
