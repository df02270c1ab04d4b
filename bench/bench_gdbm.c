/*
 * bench_gdbm.c - GNU dbm (libgdbm) behind the benchmark's backend
 * interface.
 *
 * A hash engine: no order, so no scans, and no transactions, so a batch is
 * a loop of stores that a crash can cut in the middle.  A GDBM_FILE must
 * not be used by two threads at once; this backend serialises every call
 * with one mutex, which is what a threaded GDBM program has to do.
 */
#include <errno.h>
#include <gdbm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"

typedef struct gd_db {
	GDBM_FILE f;
	int sync; /* gdbm_sync after every write */
	pthread_mutex_t mu;
} gd_db;

static int fail(const char *what)
{
	return bench_fail("gdbm", what, gdbm_strerror(gdbm_errno));
}

static const char *gd_version(void)
{
	return gdbm_version;
}

static int gd_open(const char *dir, const bench_opts *o, void **out)
{
	gd_db *d = calloc(1, sizeof(*d));
	if (!d)
		return bench_fail("gdbm", "open", "out of memory");
	char path[4096];
	snprintf(path, sizeof(path), "%s/data.gdbm", dir);
	d->f = gdbm_open(path, 0, GDBM_WRCREAT, 0644, NULL);
	d->sync = o->sync;
	if (!d->f) {
		free(d);
		return fail("open");
	}
	/* The bucket cache holds whole buckets of one block each: cap it at
	 * the budget (its automatic size grows with the file). */
	int bs = 0;
	if (o->cache_bytes && gdbm_setopt(d->f, GDBM_GETBLOCKSIZE, &bs, sizeof(bs)) == 0 &&
	    bs > 0) {
		size_t n = o->cache_bytes / (size_t)bs;
		if (gdbm_setopt(d->f, GDBM_SETCACHESIZE, &n, sizeof(n)) != 0) {
			gdbm_close(d->f);
			free(d);
			return fail("setopt cachesize");
		}
	}
	pthread_mutex_init(&d->mu, NULL);
	*out = d;
	return 0;
}

static void gd_close(void *p)
{
	gd_db *d = p;
	if (gdbm_close(d->f))
		fail("close");
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static int gd_attach(void *p, void **ctx)
{
	*ctx = p;
	return 0;
}

static void gd_detach(void *ctx)
{
	(void)ctx;
}

static datum dat(const void *p, size_t n)
{
	datum x = {(char *)p, (int)n};
	return x;
}

/* In sync mode, makes the write just done durable.  GDBM_SYNC is not
 * used: with GDBM 1.23 it did not sync after every store (strace showed
 * 8 msyncs for 300 stores), while gdbm_sync does every time. */
static int gd_synced(gd_db *d, int rc)
{
	if (rc == 0 && d->sync && gdbm_sync(d->f) != 0)
		rc = -1;
	return rc;
}

static int gd_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	gd_db *d = p;
	pthread_mutex_lock(&d->mu);
	int rc = gd_synced(d, gdbm_store(d->f, dat(k, kl), dat(v, vl), GDBM_REPLACE));
	pthread_mutex_unlock(&d->mu);
	return rc ? fail("store") : 0;
}

static int gd_get(void *p, const void *k, size_t kl, void *buf, size_t cap, size_t *vlen)
{
	gd_db *d = p;
	pthread_mutex_lock(&d->mu);
	datum v = gdbm_fetch(d->f, dat(k, kl));
	int err = gdbm_errno;
	pthread_mutex_unlock(&d->mu);
	if (!v.dptr)
		return err == GDBM_ITEM_NOT_FOUND ? 1 : fail("fetch");
	bench_copy_out(buf, cap, v.dptr, (size_t)v.dsize, vlen);
	free(v.dptr);
	return 0;
}

static int gd_del(void *p, const void *k, size_t kl)
{
	gd_db *d = p;
	pthread_mutex_lock(&d->mu);
	int rc = gdbm_delete(d->f, dat(k, kl));
	if (rc && gdbm_errno == GDBM_ITEM_NOT_FOUND)
		rc = 0;
	rc = gd_synced(d, rc);
	pthread_mutex_unlock(&d->mu);
	return rc ? fail("delete") : 0;
}

static int gd_batch_put(void *p, const bench_kv *kv, size_t n)
{
	gd_db *d = p;
	int rc = 0;
	pthread_mutex_lock(&d->mu);
	for (size_t i = 0; i < n && !rc; i++)
		rc = gdbm_store(d->f, dat(kv[i].key, kv[i].klen), dat(kv[i].val, kv[i].vlen),
		                GDBM_REPLACE);
	rc = gd_synced(d, rc);
	pthread_mutex_unlock(&d->mu);
	return rc ? fail("store") : 0;
}

const bench_engine bench_gdbm = {
        .name = "gdbm",
        .notes = "Extensible hash in one file, memory-mapped (GDBM's default). No "
                 "order (scans n/a) and no transactions: a batch is 1000 stores "
                 "under one lock, not crash-atomic. One GDBM_FILE is not "
                 "thread-safe, so every call takes one mutex. nosync = default (no "
                 "fsync); sync = gdbm_sync() after every write or batch (it msyncs the "
                 "mapped file; the GDBM_SYNC flag alone did not sync every store). Cache cap = "
                 "bucket cache of budget/block-size buckets; the "
                 "mapped file is outside it.",
        .caps = BENCH_HASH,
        .version = gd_version,
        .open = gd_open,
        .close = gd_close,
        .attach = gd_attach,
        .detach = gd_detach,
        .put = gd_put,
        .get = gd_get,
        .del = gd_del,
        .batch_put = gd_batch_put,
        .scan = NULL,
};
