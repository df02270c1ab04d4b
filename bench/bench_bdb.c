/*
 * bench_bdb.c - Berkeley DB 5.3 (libdb5.3, B-tree access method) behind
 * the benchmark's backend interface.
 *
 * A transactional environment (mpool, locking, logging, transactions),
 * because that is what gives Berkeley DB atomic batches and durable
 * writes; single writes auto-commit.  This file must resolve db_create and
 * db_env_create to libdb itself, never to Trove's compat layer: the driver
 * prints db_version() and refuses to run if it is not Berkeley DB's.
 */
#include <db.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

typedef struct bd_db {
	DB_ENV *env;
	DB *db;
} bd_db;

static int fail(const char *what, int rc)
{
	return bench_fail("bdb", what, db_strerror(rc));
}

static const char *bd_version(void)
{
	return db_version(NULL, NULL, NULL);
}

static int bd_open(const char *dir, const bench_opts *o, void **out)
{
	bd_db *d = calloc(1, sizeof(*d));
	if (!d)
		return fail("open", ENOMEM);
	int rc = db_env_create(&d->env, 0);
	if (rc) {
		free(d);
		return fail("db_env_create", rc);
	}
	DB_ENV *env = d->env;
	if (o->cache_bytes)
		rc = env->set_cachesize(env, (u_int32_t)(o->cache_bytes >> 30),
		                        (u_int32_t)(o->cache_bytes & ((1u << 30) - 1)), 1);
	/* 1000-key transactions lock up to ~1000 pages: the default tables
	 * (1000 locks) are too small for the batch workload. */
	if (!rc)
		rc = env->set_lk_max_locks(env, 200000);
	if (!rc)
		rc = env->set_lk_max_objects(env, 200000);
	if (!rc)
		rc = env->set_lk_max_lockers(env, 10000);
	if (!rc)
		rc = env->set_lk_detect(env, DB_LOCK_DEFAULT);
	if (!rc)
		rc = env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1);
	if (!rc && !o->sync)
		rc = env->set_flags(env, DB_TXN_WRITE_NOSYNC, 1);
	if (!rc)
		rc = env->open(env, dir,
		               DB_CREATE | DB_INIT_MPOOL | DB_INIT_LOCK | DB_INIT_LOG |
		                       DB_INIT_TXN | DB_THREAD | DB_PRIVATE,
		               0644);
	if (!rc)
		rc = db_create(&d->db, env, 0);
	if (!rc)
		rc = d->db->open(d->db, NULL, "data.db", NULL, DB_BTREE,
		                 DB_CREATE | DB_AUTO_COMMIT | DB_THREAD, 0644);
	if (rc) {
		if (d->db)
			d->db->close(d->db, 0);
		env->close(env, 0);
		free(d);
		return fail("open", rc);
	}
	*out = d;
	return 0;
}

/* A checkpoint lets DB_LOG_AUTO_REMOVE drop the log files it no longer
 * needs, so the size measured after close is the database's own. */
static void bd_close(void *p)
{
	bd_db *d = p;
	int rc = d->db->close(d->db, 0);
	if (rc)
		fail("close", rc);
	rc = d->env->txn_checkpoint(d->env, 0, 0, DB_FORCE);
	if (!rc)
		rc = d->env->txn_checkpoint(d->env, 0, 0, DB_FORCE);
	if (rc)
		fail("checkpoint", rc);
	rc = d->env->close(d->env, 0);
	if (rc)
		fail("env close", rc);
	free(d);
}

static int bd_attach(void *p, void **ctx)
{
	*ctx = p;
	return 0;
}

static void bd_detach(void *ctx)
{
	(void)ctx;
}

static void dbt_in(DBT *t, const void *p, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->data = (void *)p;
	t->size = (u_int32_t)n;
}

static void dbt_out(DBT *t, void *p, size_t cap)
{
	memset(t, 0, sizeof(*t));
	t->data = p;
	t->ulen = (u_int32_t)cap;
	t->flags = DB_DBT_USERMEM;
}

/* Writes n pairs in one transaction (or deletes them, val NULL), retrying
 * the whole transaction when the lock manager picks it as a deadlock
 * victim. */
static int bd_write(bd_db *d, const bench_kv *kv, size_t n, int del)
{
	for (int attempt = 0; attempt < 1000; attempt++) {
		DB_TXN *txn;
		int rc = d->env->txn_begin(d->env, NULL, &txn, 0);
		if (rc)
			return fail("txn_begin", rc);
		for (size_t i = 0; i < n && !rc; i++) {
			DBT k, v;
			dbt_in(&k, kv[i].key, kv[i].klen);
			if (del) {
				rc = d->db->del(d->db, txn, &k, 0);
				if (rc == DB_NOTFOUND)
					rc = 0;
			} else {
				dbt_in(&v, kv[i].val, kv[i].vlen);
				rc = d->db->put(d->db, txn, &k, &v, 0);
			}
		}
		if (rc) {
			txn->abort(txn);
			if (rc == DB_LOCK_DEADLOCK)
				continue;
			return fail(del ? "del" : "put", rc);
		}
		rc = txn->commit(txn, 0);
		return rc ? fail("commit", rc) : 0;
	}
	return fail("write", DB_LOCK_DEADLOCK);
}

static int bd_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	bench_kv kv = {k, kl, v, vl};
	return bd_write(p, &kv, 1, 0);
}

static int bd_del(void *p, const void *k, size_t kl)
{
	bench_kv kv = {k, kl, NULL, 0};
	return bd_write(p, &kv, 1, 1);
}

static int bd_batch_put(void *p, const bench_kv *kv, size_t n)
{
	return bd_write(p, kv, n, 0);
}

static int bd_get(void *p, const void *key, size_t kl, void *buf, size_t cap, size_t *vlen)
{
	bd_db *d = p;
	DBT k, v;
	dbt_in(&k, key, kl);
	dbt_out(&v, buf, cap);
	int rc;
	for (int attempt = 0; attempt < 1000; attempt++) {
		rc = d->db->get(d->db, NULL, &k, &v, 0);
		if (rc != DB_LOCK_DEADLOCK)
			break;
	}
	if (rc == DB_NOTFOUND)
		return 1;
	if (rc)
		return fail("get", rc);
	*vlen = v.size;
	return 0;
}

static long bd_scan(void *p, int reverse, const void *start, size_t slen, long n, uint64_t *bytes)
{
	bd_db *d = p;
	DBC *c;
	int rc = d->db->cursor(d->db, NULL, &c, 0);
	if (rc)
		return fail("cursor", rc);
	char kbuf[1024], vbuf[4096];
	DBT k, v;
	dbt_out(&k, kbuf, sizeof(kbuf));
	dbt_out(&v, vbuf, sizeof(vbuf));
	u_int32_t op = reverse ? DB_LAST : start ? DB_SET_RANGE : DB_FIRST;
	if (start) {
		memcpy(kbuf, start, slen < sizeof(kbuf) ? slen : sizeof(kbuf));
		k.size = (u_int32_t)slen;
	}
	long got = 0;
	for (rc = c->get(c, &k, &v, op); rc == 0 && got < n;) {
		bench_touch(bytes, k.data, k.size, v.data, v.size);
		if (++got < n)
			rc = c->get(c, &k, &v, reverse ? DB_PREV : DB_NEXT);
	}
	c->close(c);
	if (rc && rc != DB_NOTFOUND)
		return fail("cursor get", rc);
	return got;
}

const bench_engine bench_bdb = {
        .name = "bdb",
        .notes = "Berkeley DB 5.3 B-tree in a transactional environment (auto-commit "
                 "per write, one transaction per batch, deadlock detection, lock "
                 "tables raised to 200,000 for 1000-key batches). nosync = "
                 "DB_TXN_WRITE_NOSYNC (the log is written to the OS at commit, not "
                 "fsynced); sync = default (log fsynced at every commit; concurrent commits may "
                 "share a flush). Cache cap = "
                 "the mpool cache (set_cachesize). Log files are removed after a "
                 "checkpoint at close, before the disk size is measured. DB_PRIVATE: "
                 "the environment's regions live in process memory, not in files.",
        .caps = BENCH_ORDERED | BENCH_ATOMIC_BATCH,
        .version = bd_version,
        .open = bd_open,
        .close = bd_close,
        .attach = bd_attach,
        .detach = bd_detach,
        .put = bd_put,
        .get = bd_get,
        .del = bd_del,
        .batch_put = bd_batch_put,
        .scan = bd_scan,
};
