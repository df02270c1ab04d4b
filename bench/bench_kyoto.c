/*
 * bench_kyoto.c - Kyoto Cabinet (libkyotocabinet, C API kclangc.h) behind
 * the benchmark's backend interface, twice: its file tree database (.kct,
 * a B+tree: ordered) and its file hash database (.kch: unordered).
 *
 * Kyoto Cabinet is C++ with a C API; both databases are thread-safe.  A
 * batch is a Kyoto transaction (crash-atomic, and exclusive of other
 * writers while it runs).
 */
#include <kclangc.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"

typedef struct kc_db {
	KCDB *db;
	const char *name; /* "kyoto-tree" or "kyoto-hash" */
	int sync;         /* opened for durable writes */
} kc_db;

static int fail(const kc_db *d, const char *what)
{
	return bench_fail(d->name, what, kcdbemsg(d->db));
}

static const char *kc_version(void)
{
	return KCVERSION;
}

/* Opens dir/data.<suffix> with tuning parameters params ("#k=v" pairs). */
static int kc_open_file(const char *name, const char *dir, const char *suffix, const char *params,
                        const bench_opts *o, void **out)
{
	kc_db *d = calloc(1, sizeof(*d));
	if (!d || !(d->db = kcdbnew())) {
		free(d);
		return bench_fail(name, "open", "out of memory");
	}
	d->name = name;
	d->sync = o->sync;
	char path[4096];
	snprintf(path, sizeof(path), "%s/data.%s%s", dir, suffix, params);
	if (!kcdbopen(d->db, path, KCOWRITER | KCOCREATE)) {
		fail(d, "open");
		kcdbdel(d->db);
		free(d);
		return -1;
	}
	*out = d;
	return 0;
}

static int kct_open(const char *dir, const bench_opts *o, void **out)
{
	char params[128] = "";
	if (o->cache_bytes)
		snprintf(params, sizeof(params), "#pccap=%zu", o->cache_bytes);
	return kc_open_file("kyoto-tree", dir, "kct", params, o, out);
}

static int kch_open(const char *dir, const bench_opts *o, void **out)
{
	char params[128];
	/* Kyoto's guide: bnum about twice the records; msiz the mapped part. */
	unsigned long long bnum = o->expected_keys * 2 > 1000 ? o->expected_keys * 2 : 1000;
	snprintf(params, sizeof(params), "#bnum=%llu#msiz=%zu", bnum,
	         o->cache_bytes ? o->cache_bytes : (size_t)64 << 20);
	return kc_open_file("kyoto-hash", dir, "kch", params, o, out);
}

static void kc_close(void *p)
{
	kc_db *d = p;
	if (!kcdbclose(d->db))
		fail(d, "close");
	kcdbdel(d->db);
	free(d);
}

static int kc_attach(void *p, void **ctx)
{
	*ctx = p;
	return 0;
}

static void kc_detach(void *ctx)
{
	(void)ctx;
}

/* In sync mode a single write is a hard transaction of its own: Kyoto's
 * way to make an update both durable and atomic across a crash
 * (KCOAUTOTRAN|KCOAUTOSYNC does the same per call, but would also sync
 * every update inside a batch's transaction). */
static int kc_begin(kc_db *d)
{
	return !d->sync || kcdbbegintran(d->db, 1) ? 0 : fail(d, "begintran");
}

static int kc_end(kc_db *d, int ok)
{
	if (!d->sync)
		return ok ? 0 : -1;
	return kcdbendtran(d->db, ok) && ok ? 0 : ok ? fail(d, "endtran") : -1;
}

static int kc_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	kc_db *d = p;
	if (kc_begin(d))
		return -1;
	int ok = kcdbset(d->db, k, kl, v, vl);
	if (!ok)
		fail(d, "set");
	return kc_end(d, ok);
}

static int kc_get(void *p, const void *k, size_t kl, void *buf, size_t cap, size_t *vlen)
{
	kc_db *d = p;
	int32_t n = kcdbgetbuf(d->db, k, kl, buf, cap);
	if (n < 0)
		return kcdbecode(d->db) == KCENOREC ? 1 : fail(d, "get");
	*vlen = (size_t)n;
	return 0;
}

static int kc_del(void *p, const void *k, size_t kl)
{
	kc_db *d = p;
	if (kc_begin(d))
		return -1;
	int ok = kcdbremove(d->db, k, kl) || kcdbecode(d->db) == KCENOREC;
	if (!ok)
		fail(d, "remove");
	return kc_end(d, ok);
}

/* One transaction, committed physically (hard) in sync mode. */
static int kc_batch_put(void *p, const bench_kv *kv, size_t n)
{
	kc_db *d = p;
	if (!kcdbbegintran(d->db, d->sync))
		return fail(d, "begintran");
	for (size_t i = 0; i < n; i++) {
		if (!kcdbset(d->db, kv[i].key, kv[i].klen, kv[i].val, kv[i].vlen)) {
			fail(d, "set");
			kcdbendtran(d->db, 0);
			return -1;
		}
	}
	return kcdbendtran(d->db, 1) ? 0 : fail(d, "endtran");
}

static long kc_scan(void *p, int reverse, const void *start, size_t slen, long n, uint64_t *bytes)
{
	kc_db *d = p;
	KCCUR *c = kcdbcursor(d->db);
	int ok = reverse ? kccurjumpback(c) : start ? kccurjumpkey(c, start, slen) : kccurjump(c);
	long got = 0;
	while (ok && got < n) {
		size_t kl, vl;
		const char *v;
		char *k = kccurget(c, &kl, &v, &vl, 0);
		if (!k)
			break;
		bench_touch(bytes, k, kl, v, vl);
		kcfree(k);
		if (++got < n)
			ok = reverse ? kccurstepback(c) : kccurstep(c);
	}
	int32_t ec = kccurecode(c);
	kccurdel(c);
	if (ec != KCESUCCESS && ec != KCENOREC)
		return bench_fail(d->name, "cursor", kcecodename(ec));
	return got;
}

const bench_engine bench_kyoto_tree = {
        .name = "kyoto-tree",
        .notes = "Kyoto Cabinet file tree database (.kct, B+tree), defaults (no "
                 "compression, 8 KiB pages). nosync = default mode (no fsync, no "
                 "transactions around single writes); sync = every write in its own "
                 "hard transaction (Kyoto's write-ahead log and the file synced to the "
                 "device at commit; transactions are exclusive, no group commit). "
                 "Batches are transactions (hard in sync mode). Cache cap = page cache "
                 "pccap.",
        .caps = BENCH_ORDERED | BENCH_ATOMIC_BATCH,
        .version = kc_version,
        .open = kct_open,
        .close = kc_close,
        .attach = kc_attach,
        .detach = kc_detach,
        .put = kc_put,
        .get = kc_get,
        .del = kc_del,
        .batch_put = kc_batch_put,
        .scan = kc_scan,
};

const bench_engine bench_kyoto_hash = {
        .name = "kyoto-hash",
        .notes = "Kyoto Cabinet file hash database (.kch), defaults except bnum = "
                 "2x the keys (Kyoto's tuning guide). Unordered: scans n/a. nosync = "
                 "default mode; sync = every write in its own hard transaction. "
                 "Batches are transactions. Cache cap = msiz, the memory-mapped part of the file.",
        .caps = BENCH_HASH | BENCH_ATOMIC_BATCH,
        .version = kc_version,
        .open = kch_open,
        .close = kc_close,
        .attach = kc_attach,
        .detach = kc_detach,
        .put = kc_put,
        .get = kc_get,
        .del = kc_del,
        .batch_put = kc_batch_put,
        .scan = NULL,
};
