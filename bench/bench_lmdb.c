/*
 * bench_lmdb.c - LMDB (liblmdb) behind the benchmark's backend interface.
 *
 * One environment, the unnamed database.  Every put is its own write
 * transaction; every get runs in the calling thread's read transaction,
 * reset and renewed around the call so it sees the latest commit (the
 * cheap way LMDB's documentation recommends for repeated reads).
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"

typedef struct lm_db {
	MDB_env *env;
	MDB_dbi dbi;
} lm_db;

typedef struct lm_ctx {
	lm_db *db;
	MDB_txn *rtxn; /* reset between calls */
} lm_ctx;

static int fail(const char *what, int rc)
{
	return bench_fail("lmdb", what, mdb_strerror(rc));
}

static const char *lm_version(void)
{
	return mdb_version(NULL, NULL, NULL);
}

static int lm_open(const char *dir, const bench_opts *o, void **out)
{
	lm_db *db = calloc(1, sizeof(*db));
	if (!db)
		return fail("open", ENOMEM);
	int rc = mdb_env_create(&db->env);
	/* The map is only address space; size it well above the data. */
	size_t map = (size_t)1 << 30;
	while (map < o->expected_keys * 600)
		map <<= 1;
	if (!rc)
		rc = mdb_env_set_mapsize(db->env, map);
	if (!rc)
		rc = mdb_env_set_maxreaders(db->env, 256);
	/* MDB_NOTLS: read transactions live in our per-thread contexts. */
	unsigned flags = MDB_NOTLS | (o->sync ? 0 : MDB_NOSYNC);
	if (!rc)
		rc = mdb_env_open(db->env, dir, flags, 0644);
	MDB_txn *txn = NULL;
	if (!rc)
		rc = mdb_txn_begin(db->env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, NULL, 0, &db->dbi);
	if (!rc)
		rc = mdb_txn_commit(txn);
	else if (txn)
		mdb_txn_abort(txn);
	if (rc) {
		if (db->env)
			mdb_env_close(db->env);
		free(db);
		return fail("open", rc);
	}
	*out = db;
	return 0;
}

static void lm_close(void *p)
{
	lm_db *db = p;
	mdb_env_close(db->env);
	free(db);
}

static int lm_attach(void *p, void **out)
{
	lm_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return fail("attach", ENOMEM);
	c->db = p;
	int rc = mdb_txn_begin(c->db->env, NULL, MDB_RDONLY, &c->rtxn);
	if (rc) {
		free(c);
		return fail("txn_begin", rc);
	}
	mdb_txn_reset(c->rtxn);
	*out = c;
	return 0;
}

static void lm_detach(void *p)
{
	lm_ctx *c = p;
	mdb_txn_abort(c->rtxn);
	free(c);
}

/* Runs one write transaction putting n pairs (or deleting, with val NULL). */
static int lm_write(lm_ctx *c, const bench_kv *kv, size_t n, int del)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(c->db->env, NULL, 0, &txn);
	if (rc)
		return fail("txn_begin", rc);
	for (size_t i = 0; i < n && !rc; i++) {
		MDB_val k = {kv[i].klen, (void *)kv[i].key};
		if (del) {
			rc = mdb_del(txn, c->db->dbi, &k, NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
		} else {
			MDB_val v = {kv[i].vlen, (void *)kv[i].val};
			rc = mdb_put(txn, c->db->dbi, &k, &v, 0);
		}
	}
	if (rc) {
		mdb_txn_abort(txn);
		return fail(del ? "del" : "put", rc);
	}
	rc = mdb_txn_commit(txn);
	return rc ? fail("commit", rc) : 0;
}

static int lm_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	bench_kv kv = {k, kl, v, vl};
	return lm_write(p, &kv, 1, 0);
}

static int lm_del(void *p, const void *k, size_t kl)
{
	bench_kv kv = {k, kl, NULL, 0};
	return lm_write(p, &kv, 1, 1);
}

static int lm_batch_put(void *p, const bench_kv *kv, size_t n)
{
	return lm_write(p, kv, n, 0);
}

static int lm_get(void *p, const void *key, size_t kl, void *buf, size_t cap, size_t *vlen)
{
	lm_ctx *c = p;
	int rc = mdb_txn_renew(c->rtxn);
	if (rc)
		return fail("txn_renew", rc);
	MDB_val k = {kl, (void *)key}, v;
	rc = mdb_get(c->rtxn, c->db->dbi, &k, &v);
	if (rc == 0)
		bench_copy_out(buf, cap, v.mv_data, v.mv_size, vlen);
	mdb_txn_reset(c->rtxn);
	if (rc == MDB_NOTFOUND)
		return 1;
	return rc ? fail("get", rc) : 0;
}

static long lm_scan(void *p, int reverse, const void *start, size_t slen, long n, uint64_t *bytes)
{
	lm_ctx *c = p;
	int rc = mdb_txn_renew(c->rtxn);
	if (rc)
		return fail("txn_renew", rc);
	MDB_cursor *cur;
	rc = mdb_cursor_open(c->rtxn, c->db->dbi, &cur);
	if (rc) {
		mdb_txn_reset(c->rtxn);
		return fail("cursor_open", rc);
	}
	MDB_val k = {slen, (void *)start}, v;
	MDB_cursor_op op = reverse ? MDB_LAST : start ? MDB_SET_RANGE : MDB_FIRST;
	MDB_cursor_op step = reverse ? MDB_PREV : MDB_NEXT;
	long got = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, op); rc == 0 && got < n;) {
		bench_touch(bytes, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
		if (++got < n)
			rc = mdb_cursor_get(cur, &k, &v, step);
	}
	mdb_cursor_close(cur);
	mdb_txn_reset(c->rtxn);
	if (rc && rc != MDB_NOTFOUND)
		return fail("cursor_get", rc);
	return got;
}

const bench_engine bench_lmdb = {
        .name = "lmdb",
        .notes = "Copy-on-write B+tree in one memory map. nosync = MDB_NOSYNC "
                 "(commits write(2) pages, no fsync); sync = default flags "
                 "(fdatasync per commit; writers are serialised, no group commit). "
                 "No cache of its own: reads go through the OS page cache, so the "
                 "cache cap does not apply and its RSS counts the mapped pages it "
                 "touched. Default page size; no MDB_WRITEMAP.",
        .caps = BENCH_ORDERED | BENCH_ATOMIC_BATCH,
        .version = lm_version,
        .open = lm_open,
        .close = lm_close,
        .attach = lm_attach,
        .detach = lm_detach,
        .put = lm_put,
        .get = lm_get,
        .del = lm_del,
        .batch_put = lm_batch_put,
        .scan = lm_scan,
};
