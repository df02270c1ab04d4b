/*
 * bdb_int.h - the private side of the Berkeley-DB-style face: the
 * structures behind DB, DBC, DB_ENV and DB_TXN, and the helpers that
 * bdb.c (databases, DBTs, errors), bdb_cursor.c (cursors and the merged
 * view of a transaction) and bdb_env.c (environments and transactions)
 * share.  Only trove.h, compat.h and trove/db.h below.
 */
#ifndef TROVE_BDB_INT_H
#define TROVE_BDB_INT_H

#include <pthread.h>
#include <stdarg.h>

#include "compat.h"
#include "trove/db.h"

/* Where messages go (see "Errors" in trove/db.h). */
typedef struct bdb_errcfg {
	trove_bdb_errcall_fn call;
	FILE *file;
	int file_is_default; /* stderr until set_errfile or set_errcall */
	char *pfx;
} bdb_errcfg;

/* Memory a handle owns for the DBTs it returns by default. */
typedef struct bdb_buf {
	void *p;
	size_t cap;
} bdb_buf;

/* A sorted set of keys, each with a value or a tombstone (a transaction's
 * writes) or a version (the keys it read). */
typedef struct bdb_kv {
	void *key;
	size_t klen;
	void *val; /* NULL: a delete */
	size_t vlen;
	uint64_t version;
} bdb_kv;

typedef struct bdb_kvset {
	bdb_kv *v;
	size_t n, cap;
} bdb_kvset;

typedef struct bdb_env bdb_env;
typedef struct bdb_db bdb_db;
typedef struct bdb_txn bdb_txn;
typedef struct bdb_cursor bdb_cursor;

struct bdb_env {
	DB_ENV pub;
	bdb_errcfg err;
	compat_store st; /* st.db is NULL until open */
	int opened, txn_ok, nosync;
	size_t cache;
	uint32_t next_txn_id;
	pthread_mutex_t mu; /* guards the lists below */
	bdb_db *dbs;        /* open DB handles */
	bdb_txn *txns;      /* live transactions */
};

struct bdb_db {
	DB pub;
	bdb_env *env;     /* NULL: outside any environment */
	bdb_errcfg err;   /* outside an environment; else env->err is used */
	compat_store own; /* the store outside an environment */
	compat_store *st; /* &own or &env->st; st->db NULL until open */
	DBTYPE type;
	int opened, rdonly, thread;
	size_t cache;
	char *prefix; /* in an environment: "file\0"; else NULL */
	size_t plen;
	bdb_buf kbuf, vbuf;  /* DB->get's default memory */
	pthread_mutex_t mu;  /* guards cursors */
	bdb_cursor *cursors; /* open cursors */
	bdb_db *next;        /* in env->dbs */
};

struct bdb_txn {
	DB_TXN pub;
	bdb_env *env;
	uint32_t id;
	int sync; /* DB_TXN_SYNC asked at begin */
	bdb_kvset writes;
	bdb_kvset reads;
	bdb_cursor *cursors; /* open cursors of this transaction */
	bdb_txn *next;       /* in env->txns */
};

struct bdb_cursor {
	DBC pub;
	bdb_db *db;
	bdb_txn *txn; /* NULL: none */
	int dead;     /* its transaction ended: only close works */
	int positioned;
	compat_walk walk;
	bdb_buf cur; /* the stored key it is on */
	size_t curlen;
	bdb_buf kbuf, vbuf;
	bdb_cursor *next_in_db, *next_in_txn;
};

/* ---- bdb.c ---------------------------------------------------------------------------- */

/* Reports a message through cfg's channel; env is passed to errcall.
 * With with_error, ": db_strerror(error)" is appended. */
void bdb_vreport(const bdb_errcfg *cfg, const DB_ENV *env, int with_error, int error,
                 const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
void bdb_errcfg_init(bdb_errcfg *cfg);
void bdb_errcfg_free(bdb_errcfg *cfg);
/* The set_errcall, set_errfile and set_errpfx methods' bodies. */
void bdb_set_errcall(bdb_errcfg *cfg, trove_bdb_errcall_fn fn);
void bdb_set_errfile(bdb_errcfg *cfg, FILE *f);
void bdb_set_errpfx(bdb_errcfg *cfg, const char *pfx);
/* Reports through db's channel (its environment's inside one) and
 * returns error: `return bdb_fail(db, EINVAL, "...")`. */
int bdb_fail(bdb_db *db, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A Trove code as a Berkeley DB return value. */
int bdb_code(int trove_rc);

/* A stored key (prefix + user key), on the stack when it is small: no
 * shared buffer, so DB_THREAD handles need no lock for it. */
typedef struct bdb_skey {
	char small[256];
	char *p;
	size_t len;
} bdb_skey;
/* Builds db's stored key for k: 0, EINVAL if it would be empty or too
 * long (nothing to free then), or ENOMEM.  Free with bdb_skey_free. */
int bdb_skey_make(bdb_db *db, bdb_skey *sk, const DBT *k);
void bdb_skey_free(bdb_skey *sk);

/* Checks a value (and key) about to be written: 0, or EINVAL reported;
 * bdb_check_write builds the stored key in *sk (free it on 0). */
int bdb_check_value(bdb_db *db, const char *what, const DBT *data);
int bdb_check_write(bdb_db *db, const char *what, const DBT *key, const DBT *data, bdb_skey *sk);

/* Checks the flags of a DBT that will receive bytes: 0 or EINVAL (with a
 * message).  Then bdb_dbt_fits (0 or DB_BUFFER_SMALL, setting size) and
 * bdb_dbt_set (0 or ENOMEM) deliver them. */
int bdb_dbt_out_ok(bdb_db *db, const DBT *d);
int bdb_dbt_in_ok(bdb_db *db, const DBT *d);
int bdb_dbt_fits(DBT *d, size_t n);
int bdb_dbt_set(DBT *d, bdb_buf *own, const void *p, size_t n);

/* Writes through db, in txn if not NULL.  stored keys.  put: 0,
 * DB_KEYEXIST (nooverwrite), or an error; del: 0, DB_NOTFOUND, or an
 * error. */
int bdb_write_put(bdb_db *db, bdb_txn *txn, const void *sk, size_t sklen, const void *v,
                  size_t vlen, int nooverwrite);
int bdb_write_del(bdb_db *db, bdb_txn *txn, const void *sk, size_t sklen);

/* A value read through the view: p/n point into the transaction's writes
 * or into `owned` (free with trove_free via bdb_val_free). */
typedef struct bdb_val {
	const void *p;
	size_t n;
	void *owned;
} bdb_val;
/* Reads stored key sk as txn (NULL: none) sees it: 0, DB_NOTFOUND or an
 * error.  In a transaction the key's version is recorded for commit. */
int bdb_view_get(bdb_db *db, bdb_txn *txn, const void *sk, size_t sklen, bdb_val *out);
void bdb_val_free(bdb_val *v);

/* Checks that txn may be used with db: 0 or EINVAL (reported). */
int bdb_txn_check(bdb_db *db, DB_TXN *txn, bdb_txn **out);

/* ---- bdb_cursor.c -------------------------------------------------------------------------- */

int bdb_cursor_open(bdb_db *db, bdb_txn *txn, DBC **out);
/* Closes every cursor of db (DB->close). */
void bdb_cursor_close_all(bdb_db *db);
/* Makes the cursors of txn dead and forgets them (commit, abort). */
void bdb_cursor_detach_txn(bdb_txn *txn);

/* ---- bdb_env.c ---------------------------------------------------------------------------- */

/* Sorted sets. */
void bdb_kvset_free(bdb_kvset *s);
/* 1 and *idx if key is in s, else 0 and *idx where it would go. */
int bdb_kvset_find(const bdb_kvset *s, const void *key, size_t klen, size_t *idx);
/* Inserts or replaces key's entry (val NULL: a tombstone); copies. */
int bdb_kvset_put(bdb_kvset *s, const void *key, size_t klen, const void *val, size_t vlen,
                  uint64_t version);

/* Adds db to / removes it from its environment's list. */
void bdb_env_add_db(bdb_env *env, bdb_db *db);
void bdb_env_remove_db(bdb_env *env, bdb_db *db);

#endif
