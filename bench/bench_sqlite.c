/*
 * bench_sqlite.c - SQLite 3 (libsqlite3) behind the benchmark's backend
 * interface.
 *
 * One table, kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID (so the table is
 * a B-tree on the key), in WAL mode.  Each thread gets its own connection
 * with its own prepared statements, which is how SQLite is meant to be
 * used from threads; WAL lets readers run beside the one writer.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

typedef struct sq_db {
	char path[4096];
	int sync;
	size_t cache_bytes;
	sqlite3 *main; /* kept open so the WAL and shared memory stay */
} sq_db;

enum { S_GET, S_PUT, S_DEL, S_FWD, S_REV, S_SEEK, S_BEGIN, S_COMMIT, S_N };

static const char *const sq_sql[S_N] = {
        [S_GET] = "SELECT v FROM kv WHERE k = ?1",
        [S_PUT] = "INSERT OR REPLACE INTO kv(k, v) VALUES (?1, ?2)",
        [S_DEL] = "DELETE FROM kv WHERE k = ?1",
        [S_FWD] = "SELECT k, v FROM kv ORDER BY k",
        [S_REV] = "SELECT k, v FROM kv ORDER BY k DESC",
        [S_SEEK] = "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2",
        [S_BEGIN] = "BEGIN IMMEDIATE",
        [S_COMMIT] = "COMMIT",
};

typedef struct sq_ctx {
	sqlite3 *c;
	sqlite3_stmt *st[S_N];
} sq_ctx;

static int fail(sqlite3 *c, const char *what)
{
	return bench_fail("sqlite", what, c ? sqlite3_errmsg(c) : "out of memory");
}

static const char *sq_version(void)
{
	return sqlite3_libversion();
}

/* Opens a connection with this benchmark's per-connection settings. */
static int sq_connect(sq_db *d, sqlite3 **out)
{
	sqlite3 *c = NULL;
	int rc = sqlite3_open_v2(d->path, &c,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                         NULL);
	if (rc != SQLITE_OK) {
		fail(c, "open");
		sqlite3_close(c);
		return -1;
	}
	sqlite3_busy_timeout(c, 60000);
	char sql[256];
	/* WAL: FULL fsyncs the WAL at every commit; OFF never fsyncs (a crash
	 * of the process still loses nothing, the OS has the writes). */
	snprintf(sql, sizeof(sql),
	         "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; "
	         "PRAGMA cache_size=-%zu;",
	         d->sync ? "FULL" : "OFF", d->cache_bytes ? d->cache_bytes / 1024 : (size_t)2000);
	if (sqlite3_exec(c, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fail(c, "pragma");
		sqlite3_close(c);
		return -1;
	}
	*out = c;
	return 0;
}

static int sq_open(const char *dir, const bench_opts *o, void **out)
{
	sq_db *d = calloc(1, sizeof(*d));
	if (!d)
		return fail(NULL, "open");
	snprintf(d->path, sizeof(d->path), "%s/data.sqlite", dir);
	d->sync = o->sync;
	d->cache_bytes = o->cache_bytes;
	if (sq_connect(d, &d->main)) {
		free(d);
		return -1;
	}
	if (sqlite3_exec(d->main,
	                 "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB) "
	                 "WITHOUT ROWID",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		fail(d->main, "create table");
		sqlite3_close(d->main);
		free(d);
		return -1;
	}
	*out = d;
	return 0;
}

static void sq_close(void *p)
{
	sq_db *d = p;
	if (sqlite3_close(d->main) != SQLITE_OK)
		fail(d->main, "close");
	free(d);
}

static void sq_detach(void *p)
{
	sq_ctx *x = p;
	for (int i = 0; i < S_N; i++)
		sqlite3_finalize(x->st[i]);
	sqlite3_close(x->c);
	free(x);
}

static int sq_attach(void *p, void **out)
{
	sq_ctx *x = calloc(1, sizeof(*x));
	if (!x)
		return fail(NULL, "attach");
	if (sq_connect(p, &x->c)) {
		free(x);
		return -1;
	}
	for (int i = 0; i < S_N; i++) {
		if (sqlite3_prepare_v3(x->c, sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &x->st[i],
		                       NULL) != SQLITE_OK) {
			fail(x->c, sq_sql[i]);
			sq_detach(x);
			return -1;
		}
	}
	*out = x;
	return 0;
}

/* Steps a statement that returns no rows, then resets it. */
static int sq_run(sq_ctx *x, int s, const char *what)
{
	int rc = sqlite3_step(x->st[s]);
	sqlite3_reset(x->st[s]);
	return rc == SQLITE_DONE ? 0 : fail(x->c, what);
}

static int sq_put1(sq_ctx *x, const void *k, size_t kl, const void *v, size_t vl)
{
	sqlite3_stmt *s = x->st[S_PUT];
	sqlite3_bind_blob(s, 1, k, (int)kl, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, v, (int)vl, SQLITE_STATIC);
	return sq_run(x, S_PUT, "insert");
}

static int sq_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	return sq_put1(p, k, kl, v, vl);
}

static int sq_del(void *p, const void *k, size_t kl)
{
	sq_ctx *x = p;
	sqlite3_bind_blob(x->st[S_DEL], 1, k, (int)kl, SQLITE_STATIC);
	return sq_run(x, S_DEL, "delete");
}

static int sq_batch_put(void *p, const bench_kv *kv, size_t n)
{
	sq_ctx *x = p;
	if (sq_run(x, S_BEGIN, "begin"))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (sq_put1(x, kv[i].key, kv[i].klen, kv[i].val, kv[i].vlen)) {
			sqlite3_exec(x->c, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	return sq_run(x, S_COMMIT, "commit");
}

static int sq_get(void *p, const void *k, size_t kl, void *buf, size_t cap, size_t *vlen)
{
	sq_ctx *x = p;
	sqlite3_stmt *s = x->st[S_GET];
	sqlite3_bind_blob(s, 1, k, (int)kl, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const void *v = sqlite3_column_blob(s, 0);
		bench_copy_out(buf, cap, v, (size_t)sqlite3_column_bytes(s, 0), vlen);
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 1;
	return rc == SQLITE_ROW ? 0 : fail(x->c, "select");
}

static long sq_scan(void *p, int reverse, const void *start, size_t slen, long n, uint64_t *bytes)
{
	sq_ctx *x = p;
	sqlite3_stmt *s = x->st[reverse ? S_REV : start ? S_SEEK : S_FWD];
	if (start && !reverse) {
		sqlite3_bind_blob(s, 1, start, (int)slen, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, n);
	}
	long got = 0;
	int rc = SQLITE_DONE;
	while (got < n && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const void *k = sqlite3_column_blob(s, 0);
		size_t kl = (size_t)sqlite3_column_bytes(s, 0);
		const void *v = sqlite3_column_blob(s, 1);
		size_t vl = (size_t)sqlite3_column_bytes(s, 1);
		bench_touch(bytes, k, kl, v, vl);
		got++;
	}
	if (got < n && rc != SQLITE_DONE) {
		sqlite3_reset(s);
		return fail(x->c, "scan");
	}
	sqlite3_reset(s);
	return got;
}

const bench_engine bench_sqlite = {
        .name = "sqlite",
        .notes = "Table kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID, WAL mode, "
                 "prepared statements, INSERT OR REPLACE, one connection per thread "
                 "(busy timeout 60 s). nosync = PRAGMA synchronous=OFF (no fsync); "
                 "sync = synchronous=FULL (WAL fsynced at every commit; no group "
                 "commit). Cache cap = PRAGMA cache_size per connection (so T threads "
                 "may hold T caches). Auto-checkpoint at 1000 pages (default).",
        .caps = BENCH_ORDERED | BENCH_ATOMIC_BATCH,
        .version = sq_version,
        .open = sq_open,
        .close = sq_close,
        .attach = sq_attach,
        .detach = sq_detach,
        .put = sq_put,
        .get = sq_get,
        .del = sq_del,
        .batch_put = sq_batch_put,
        .scan = sq_scan,
};
