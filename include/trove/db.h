/*
 * trove/db.h - the part of the Berkeley DB C API that most programs use,
 * backed by Trove.
 *
 * A program written for Berkeley DB's <db.h> (4.x, 5.x) that keeps to
 * what is below builds against Trove by changing its include line to
 * #include <trove/db.h> and its link flag to -ltrove.  This header is the
 * manual of that face: what is there, what is refused, and where it
 * differs from Berkeley DB.
 *
 *   DB *db;
 *   DBT key, data;
 *   db_create(&db, NULL, 0);
 *   db->open(db, NULL, "fruit.db", NULL, DB_BTREE, DB_CREATE, 0664);
 *   memset(&key, 0, sizeof key);
 *   memset(&data, 0, sizeof data);
 *   key.data = "apple"; key.size = 5;
 *   data.data = "red"; data.size = 3;
 *   db->put(db, NULL, &key, &data, 0);
 *   memset(&data, 0, sizeof data);
 *   if (db->get(db, NULL, &key, &data, 0) == 0) ... data.data, data.size
 *   db->del(db, NULL, &key, 0);
 *   db->close(db, 0);
 *
 * ---- What is there -------------------------------------------------------
 *
 * db_create; DB->open, close, get, put, del, exists, cursor, sync,
 * truncate, get_type, set_flags, set_pagesize, set_cachesize, err, errx,
 * set_errcall, set_errfile, set_errpfx.  DBC->get, put, del, count, close
 * (and the old names c_get, c_put, c_del, c_count, c_close).
 * db_env_create; DB_ENV->open, close, txn_begin, txn_checkpoint,
 * set_flags, set_cachesize and the error methods.  DB_TXN->commit, abort,
 * id.  db_strerror, db_version.  The flag and error names keep Berkeley DB
 * 5.3's numeric values.
 *
 * DB_BTREE and DB_HASH are both Trove's ordered map: a DB_HASH database
 * iterates in key order too (Berkeley DB promises no order for hash), and
 * DB_SET_RANGE works on it as on a btree.  DB_RECNO, DB_QUEUE and DB_HEAP
 * are refused.  There are no duplicate keys (DB_DUP, DB_DUPSORT are
 * refused), so the *_DUP cursor moves find nothing and the *_NODUP moves
 * are the plain ones.
 *
 * ---- Refused, never ignored ------------------------------------------------
 *
 * A flag, type or argument outside this subset makes the call return
 * EINVAL and report a message naming it through the error channel (see
 * "Errors"); nothing is done.  Flags that ask for something Trove always
 * gives are accepted: DB_INIT_LOCK, DB_INIT_LOG, DB_INIT_MPOOL,
 * DB_RECOVER, DB_PRIVATE, DB_USE_ENVIRON, DB_AUTO_COMMIT, DB_CHKSUM, DB_RMW,
 * DB_READ_COMMITTED, DB_READ_UNCOMMITTED (a permission: reads return
 * committed data), DB_TXN_WAIT, DB_TXN_NOWAIT (there are no locks to wait
 * for).  Some names are defined only so that programs mentioning them
 * compile and get that EINVAL at run time: DB_DUP, DB_DUPSORT, DB_RECNO,
 * DB_QUEUE, DB_HEAP, DB_APPEND, DB_NODUPDATA, DB_DBT_PARTIAL,
 * DB_GET_BOTH_RANGE, DB_MULTIPLE, DB_INIT_CDB, DB_TXN_SNAPSHOT.
 *
 * ---- Files -----------------------------------------------------------------
 *
 * Outside an environment, DB->open(db, NULL, "fruit.db", ...) opens the
 * Trove database in the directory "fruit.db.trove" (the same rule as
 * <trove/ndbm.h>: the name never collides with an old Berkeley DB file,
 * which `trove import` can read beside it).  The keys are stored as they
 * are.  A NULL file name gives an in-memory database, gone at close.  One
 * handle may have a directory open at a time, in any process (EBUSY).
 * The `database` argument (several databases in one file) must be NULL.
 *
 * In an environment (DB_ENV->open(env, "home", ...)), every database file
 * lives in one Trove database, the directory "home/env.trove", each under
 * its own key prefix (the file name and a NUL byte; the file's existence
 * is the key made of the bare file name).  That is what lets one
 * transaction cover several database files, and several DB handles open
 * the same file.  Only one process may have an environment open at a time.
 *
 * DB_CREATE creates a missing file, DB_EXCL (with DB_CREATE) refuses an
 * existing one (EEXIST), DB_TRUNCATE empties it, DB_RDONLY refuses writes
 * on this handle (EACCES).  A missing file without DB_CREATE is ENOENT.
 * The mode argument is the directory's mode outside an environment (with
 * search permission wherever read permission is; 0 means 0660, as in
 * Berkeley DB), and unused inside one; the umask applies.
 *
 * ---- Keys and values ---------------------------------------------------------
 *
 * Keys are 1 to 65535 bytes outside an environment; inside one, up to
 * 65535 bytes less the prefix, and the empty key is allowed.  Values are up
 * to 64 MiB.  A put with a key or value beyond that is EINVAL; a read of a
 * key that cannot exist is DB_NOTFOUND.  DB->put returns DB_KEYEXIST when
 * DB_NOOVERWRITE finds the key; DB->get and DB->del return DB_NOTFOUND
 * for a missing key.
 *
 * ---- Memory of returned DBTs -------------------------------------------------
 *
 * A DBT that receives a key or value says where it goes by its flags:
 *
 *   0 (the default)  memory owned by the handle that returned it: the DB
 *                    for DB->get, the cursor for DBC->get.  Valid until
 *                    the next call on that handle that returns a DBT, or
 *                    its close.  Never free it.  Refused (EINVAL) on a
 *                    handle opened with DB_THREAD, as in Berkeley DB.
 *   DB_DBT_MALLOC    a fresh malloc'd buffer; the caller frees it.
 *   DB_DBT_REALLOC   data is realloc'd to fit; the caller frees it.
 *   DB_DBT_USERMEM   copied into data, which has ulen bytes; if that is
 *                    too small, size is set to the length needed, nothing
 *                    is copied, the cursor does not move and the call
 *                    returns DB_BUFFER_SMALL.  (When a cursor returns a key
 *                    and data and only the data is too small, Berkeley DB
 *                    has already delivered the key, malloc'd if asked;
 *                    Trove delivers neither, and sets the size of every
 *                    DBT that is too small.)
 *
 * DBTs passed in (keys to look up, keys and data to store) are only read;
 * their memory flags are ignored.  DB_DBT_PARTIAL is refused everywhere.
 *
 * ---- Cursors -------------------------------------------------------------------
 *
 * DBC->get moves by DB_FIRST, DB_LAST, DB_NEXT, DB_PREV (from an
 * unpositioned cursor: the first, the last), DB_SET (the key, data
 * returned, key left alone), DB_SET_RANGE (the smallest key >= the one
 * given; key and data returned), DB_GET_BOTH (key and data must both
 * match), DB_CURRENT (again; DB_KEYEMPTY if the key was deleted since).
 * A move that fails leaves the cursor where it was.  A cursor always sees
 * the latest writes, its own and others' (a cursor opened in a
 * transaction also sees the transaction's writes): after a write, it
 * continues from the key it is on, so deleting the current key and moving
 * on works.  DBC->put takes DB_CURRENT (DB_NOTFOUND if the current key
 * was deleted, as in Berkeley DB), DB_KEYFIRST or DB_KEYLAST (both put
 * the key and move the cursor to it); DBC->del deletes the current key
 * and leaves the cursor on its place.  DB->close closes the cursors still
 * open on it.
 *
 * ---- Transactions ----------------------------------------------------------------
 *
 * A transaction (DB_ENV->txn_begin on an environment opened with
 * DB_INIT_TXN) buffers its puts and deletes and applies them at commit as
 * one Trove batch: all of them or none, in every database of the
 * environment they touch.  Reads in the transaction (get, exists, cursors)
 * see its own writes.  Each key the transaction reads by point (DB->get,
 * DB->exists, DB_NOOVERWRITE, DB->del's existence check, DB_SET,
 * DB_CURRENT) is checked again at commit: if any of them was written by
 * someone else meanwhile, the commit writes nothing and returns
 * DB_LOCK_DEADLOCK, which Berkeley DB programs already answer by retrying
 * the transaction.  Where Berkeley DB would lock, Trove validates:
 *
 *   - no call blocks, and DB_LOCK_DEADLOCK comes at commit, not earlier;
 *   - keys reached only by cursor moves (FIRST, NEXT, SET_RANGE, ...) are
 *     not validated, so a transaction can miss a key inserted beside them
 *     (phantoms) — read what matters by DB->get;
 *   - two transactions writing the same key without reading it both
 *     commit, and the later commit wins;
 *   - writes made outside the transaction are visible to it at once
 *     (read committed), except for keys it has already written.
 *
 * Writes with a NULL transaction in an environment commit by themselves
 * (as DB_AUTO_COMMIT would).  Nested transactions (a parent) are refused.
 * Cursors of a transaction must be closed before commit or abort: a
 * commit that finds one open aborts instead and returns EINVAL, and the
 * cursor can then only be closed.  After commit or abort, whatever they
 * return, the DB_TXN handle is gone.  DB->open and DB->truncate are not
 * transactional (a file created inside an aborted transaction stays).
 *
 * ---- Durability ---------------------------------------------------------------------
 *
 * Outside an environment (and in one opened without DB_INIT_TXN), writes
 * are safe from a crash of the program but reach the disk only at
 * DB->sync, DB->close (unless DB_NOSYNC) or when the system decides, as in
 * Berkeley DB, where such a database is written back from its cache at
 * sync and close; unlike Berkeley DB, a power loss never damages the file
 * (Trove keeps a prefix of the writes, in order).  In an environment
 * opened with DB_INIT_TXN, every commit and every write with a NULL
 * transaction is durable before it returns (Trove's TROVE_SYNC_ALWAYS,
 * with group commit); DB_ENV->set_flags(DB_TXN_NOSYNC or
 * DB_TXN_WRITE_NOSYNC) before DB_ENV->open relaxes that to syncing at
 * close and DB_TXN_SYNC commits.  DB_TXN_NOSYNC on one commit is accepted
 * and the commit is durable anyway.
 *
 * ---- Differences from Berkeley DB, in one place ------------------------------------------
 *
 * - No duplicates, no DB_RECNO, DB_QUEUE or DB_HEAP, no several
 *   databases per file, no DB_DBT_PARTIAL, no nested transactions, no
 *   in-memory databases inside an environment: refused with EINVAL.
 * - DB_HASH iterates in key order and supports DB_SET_RANGE.
 * - Transactions validate at commit instead of locking (DB_LOCK_DEADLOCK
 *   at commit; phantoms and blind write-write conflicts go unnoticed; see
 *   "Transactions").  DB->open and DB->truncate are not transactional.
 * - One process at a time per file or environment (EBUSY).
 * - Outside an environment keys cannot be empty.
 * - DB_BUFFER_SMALL delivers nothing (see "Memory of returned DBTs").
 * - Files are Trove directories named file.trove, or env.trove in an
 *   environment's home; Berkeley DB's files are neither read nor written
 *   (`trove import` converts them).
 *
 * ---- Errors ----------------------------------------------------------------------------
 *
 * Calls return 0, an errno value (EINVAL, ENOENT, EEXIST, EACCES, EBUSY,
 * ENOMEM, ENOSPC, EIO) or one of the DB_* codes below; db_strerror turns
 * either into words.  Messages about refused flags and failures go, as in
 * Berkeley DB, to the error callback (set_errcall) and the error file
 * (set_errfile), prefixed by set_errpfx's prefix; with neither set they
 * go to stderr, and set_errfile(NULL) silences them.  Inside an
 * environment a DB's error settings are the environment's.  The errcall
 * callback receives the environment, or NULL for a DB outside one.
 *
 * ---- Threads ----------------------------------------------------------------------------
 *
 * Open with DB_THREAD to share DB and DB_ENV handles between threads
 * (then returned DBTs need DB_DBT_MALLOC, DB_DBT_REALLOC or
 * DB_DBT_USERMEM).  A cursor and a transaction belong to one thread at a
 * time.
 *
 * ---- Names ------------------------------------------------------------------------------
 *
 * db_create, db_env_create, db_strerror and db_version are macros for
 * trove_db_create and so on, so that a program (such as an importer) can
 * link libtrove and the real libdb without their symbols clashing.  The
 * methods are reached through the handles and need no names.
 */
#ifndef TROVE_DB_H
#define TROVE_DB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* FILE, for set_errfile */

/* Exported from libtrove (the library hides every other name). */
#ifndef TROVE_COMPAT_API
#if defined(__GNUC__)
#define TROVE_COMPAT_API __attribute__((visibility("default")))
#else
#define TROVE_COMPAT_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The API level this face imitates, for programs that test it. */
#define DB_VERSION_MAJOR 5
#define DB_VERSION_MINOR 3
#define DB_VERSION_PATCH 0
#define DB_VERSION_STRING "Trove 0.1.0: a Berkeley DB 5.3 style API"

typedef struct trove_bdb_dbt DBT;
typedef struct trove_bdb_db DB;
typedef struct trove_bdb_dbc DBC;
typedef struct trove_bdb_env DB_ENV;
typedef struct trove_bdb_txn DB_TXN;
typedef uint32_t db_recno_t;

typedef enum {
	DB_BTREE = 1,
	DB_HASH = 2,
	DB_RECNO = 3,   /* refused */
	DB_QUEUE = 4,   /* refused */
	DB_UNKNOWN = 5, /* DB->open: whatever the file is (here: a btree) */
	DB_HEAP = 6,    /* refused */
} DBTYPE;

/* ---- Return codes (Berkeley DB 5.3's values) ------------------------------- */

#define DB_BUFFER_SMALL (-30999)     /* DB_DBT_USERMEM buffer too small */
#define DB_KEYEMPTY (-30995)         /* the cursor's key was deleted */
#define DB_KEYEXIST (-30994)         /* DB_NOOVERWRITE found the key */
#define DB_LOCK_DEADLOCK (-30993)    /* a transaction conflicted; retry it */
#define DB_NOTFOUND (-30988)         /* no such key, or no more keys */
#define DB_RUNRECOVERY (-30973)      /* the database is damaged or failed */
#define DB_VERSION_MISMATCH (-30969) /* a file of a newer format */

/* ---- DBT ------------------------------------------------------------------------ */

struct trove_bdb_dbt {
	void *data;     /* the bytes */
	uint32_t size;  /* their number */
	uint32_t ulen;  /* DB_DBT_USERMEM: bytes available at data */
	uint32_t dlen;  /* DB_DBT_PARTIAL (refused) */
	uint32_t doff;  /* DB_DBT_PARTIAL (refused) */
	void *app_data; /* the application's; never touched */
	uint32_t flags; /* DB_DBT_* */
};

#define DB_DBT_APPMALLOC 0x001 /* accepted on input, ignored */
#define DB_DBT_MALLOC 0x010
#define DB_DBT_PARTIAL 0x040 /* refused */
#define DB_DBT_REALLOC 0x080
#define DB_DBT_READONLY 0x100 /* accepted on input: it is only read */
#define DB_DBT_USERMEM 0x800

/* ---- Flags ------------------------------------------------------------------------ */

/* DB->open, DB_ENV->open */
#define DB_CREATE 0x00000001
#define DB_EXCL 0x00000004
#define DB_THREAD 0x00000020
#define DB_AUTO_COMMIT 0x00000100
#define DB_READ_UNCOMMITTED 0x00000200
#define DB_RDONLY 0x00000400
#define DB_TRUNCATE 0x00020000
/* DB_ENV->open */
#define DB_RECOVER 0x00000002
#define DB_USE_ENVIRON 0x00000004
#define DB_INIT_CDB 0x00000080 /* refused */
#define DB_INIT_LOCK 0x00000100
#define DB_INIT_LOG 0x00000200
#define DB_INIT_MPOOL 0x00000400
#define DB_INIT_TXN 0x00002000
#define DB_PRIVATE 0x00010000
/* DB->set_flags */
#define DB_DUPSORT 0x00000002 /* refused */
#define DB_CHKSUM 0x00000008  /* accepted: Trove checksums every block */
#define DB_DUP 0x00000010     /* refused */
/* DB->close */
#define DB_NOSYNC 0x00000001
/* DB_ENV->set_flags, DB_ENV->txn_begin, DB_TXN->commit */
#define DB_TXN_NOSYNC 0x00000001
#define DB_TXN_NOWAIT 0x00000002
#define DB_TXN_SNAPSHOT 0x00000004 /* refused */
#define DB_TXN_SYNC 0x00000008
#define DB_TXN_WRITE_NOSYNC 0x00000020
#define DB_TXN_WAIT 0x00000080
#define DB_READ_COMMITTED 0x00000400
/* DB->get, DB->put, DBC->get, DBC->put: operations */
#define DB_APPEND 2 /* refused */
#define DB_CURRENT 6
#define DB_FIRST 7
#define DB_GET_BOTH 8
#define DB_GET_BOTH_RANGE 10 /* refused */
#define DB_KEYFIRST 13
#define DB_KEYLAST 14
#define DB_LAST 15
#define DB_NEXT 16
#define DB_NEXT_DUP 17
#define DB_NEXT_NODUP 18
#define DB_NODUPDATA 19 /* refused */
#define DB_NOOVERWRITE 20
#define DB_OVERWRITE_DUP 21 /* without duplicates: a plain put */
#define DB_PREV 23
#define DB_PREV_DUP 24
#define DB_PREV_NODUP 25
#define DB_SET 26
#define DB_SET_RANGE 27
/* modifiers or'ed into a get's flags */
#define DB_MULTIPLE 0x00000800 /* refused */
#define DB_RMW 0x00002000      /* accepted: commit validates instead */

/* ---- Handles -----------------------------------------------------------------------------
 *
 * Each method takes its own handle first: db->put(db, ...).  Methods that
 * can fail return 0 or an error (see "Errors").
 */

typedef void (*trove_bdb_errcall_fn)(const DB_ENV *env, const char *errpfx, const char *msg);

struct trove_bdb_db {
	void *app_private; /* the application's; never touched */
	DB_ENV *dbenv;     /* the environment given to db_create, or NULL */

	/* file: see "Files"; database must be NULL; type DB_BTREE, DB_HASH
	 * or DB_UNKNOWN; flags DB_CREATE, DB_EXCL, DB_RDONLY, DB_TRUNCATE,
	 * DB_THREAD, DB_AUTO_COMMIT, DB_READ_UNCOMMITTED; txn is accepted
	 * in an environment and not used.  On failure the handle must still
	 * be closed. */
	int (*open)(DB *db, DB_TXN *txn, const char *file, const char *database, DBTYPE type,
	            uint32_t flags, int mode);
	/* Closes the open cursors, syncs (unless DB_NOSYNC) and frees the
	 * handle, whatever it returns. */
	int (*close)(DB *db, uint32_t flags);
	/* flags: 0 or DB_GET_BOTH (data must match too), or'ed with DB_RMW,
	 * DB_READ_COMMITTED or DB_READ_UNCOMMITTED.  DB_NOTFOUND if absent. */
	int (*get)(DB *db, DB_TXN *txn, DBT *key, DBT *data, uint32_t flags);
	/* flags: 0, DB_NOOVERWRITE (DB_KEYEXIST if the key exists) or
	 * DB_OVERWRITE_DUP. */
	int (*put)(DB *db, DB_TXN *txn, DBT *key, DBT *data, uint32_t flags);
	/* flags: 0.  DB_NOTFOUND if absent. */
	int (*del)(DB *db, DB_TXN *txn, DBT *key, uint32_t flags);
	/* 0 if key exists, else DB_NOTFOUND.  flags as for get, less
	 * DB_GET_BOTH. */
	int (*exists)(DB *db, DB_TXN *txn, DBT *key, uint32_t flags);
	/* flags: 0, DB_READ_COMMITTED or DB_READ_UNCOMMITTED. */
	int (*cursor)(DB *db, DB_TXN *txn, DBC **cursorp, uint32_t flags);
	/* Makes every write so far durable.  flags: 0. */
	int (*sync)(DB *db, uint32_t flags);
	/* Deletes every key; *countp (may be NULL) receives how many.  Not
	 * atomic and not transactional: txn must be NULL.  flags: 0. */
	int (*truncate)(DB *db, DB_TXN *txn, uint32_t *countp, uint32_t flags);
	/* The type given to open (DB_BTREE for DB_UNKNOWN). */
	int (*get_type)(DB *db, DBTYPE *type);
	/* Before open.  0 or DB_CHKSUM; DB_DUP and DB_DUPSORT are refused. */
	int (*set_flags)(DB *db, uint32_t flags);
	/* Before open.  Accepted (a power of two from 512 to 65536) and
	 * unused: Trove has no pages of that kind. */
	int (*set_pagesize)(DB *db, uint32_t pagesize);
	/* Before open, outside an environment: Trove's memory budget
	 * (memtables and block cache), at least 1 MiB.  ncache is unused. */
	int (*set_cachesize)(DB *db, uint32_t gbytes, uint32_t bytes, int ncache);
	/* Report "prefix: message: db_strerror(error)" (err) or "prefix:
	 * message" (errx) through the error channel. */
	void (*err)(DB *db, int error, const char *fmt, ...);
	void (*errx)(DB *db, const char *fmt, ...);
	void (*set_errcall)(DB *db, trove_bdb_errcall_fn fn);
	void (*set_errfile)(DB *db, FILE *file);
	/* The prefix is copied. */
	void (*set_errpfx)(DB *db, const char *prefix);
};

struct trove_bdb_dbc {
	DB *dbp;     /* the database */
	DB_TXN *txn; /* the transaction, or NULL */

	/* See "Cursors".  flags: one of the moves, or'ed with DB_RMW,
	 * DB_READ_COMMITTED or DB_READ_UNCOMMITTED. */
	int (*get)(DBC *c, DBT *key, DBT *data, uint32_t flags);
	/* flags: DB_CURRENT (key unused), DB_KEYFIRST or DB_KEYLAST. */
	int (*put)(DBC *c, DBT *key, DBT *data, uint32_t flags);
	/* flags: 0.  DB_KEYEMPTY if the current key is already gone. */
	int (*del)(DBC *c, uint32_t flags);
	/* *countp = 1 on a present key (no duplicates here).  flags: 0. */
	int (*count)(DBC *c, db_recno_t *countp, uint32_t flags);
	/* Frees the cursor, whatever it returns. */
	int (*close)(DBC *c);
	/* The names of Berkeley DB before 4.6, the same functions. */
	int (*c_get)(DBC *c, DBT *key, DBT *data, uint32_t flags);
	int (*c_put)(DBC *c, DBT *key, DBT *data, uint32_t flags);
	int (*c_del)(DBC *c, uint32_t flags);
	int (*c_count)(DBC *c, db_recno_t *countp, uint32_t flags);
	int (*c_close)(DBC *c);
};

struct trove_bdb_env {
	void *app_private; /* the application's; never touched */

	/* home: an existing directory (NULL: $DB_HOME with DB_USE_ENVIRON,
	 * else the current one).  flags: DB_CREATE (create env.trove),
	 * DB_INIT_TXN (transactions, durable commits), DB_THREAD, and the
	 * accepted no-ops DB_INIT_LOCK, DB_INIT_LOG, DB_INIT_MPOOL,
	 * DB_RECOVER, DB_PRIVATE, DB_USE_ENVIRON.  mode is unused.  On
	 * failure the handle must still be closed. */
	int (*open)(DB_ENV *env, const char *home, uint32_t flags, int mode);
	/* Aborts the transactions and closes the databases still open, then
	 * frees the handle, whatever it returns.  flags: 0. */
	int (*close)(DB_ENV *env, uint32_t flags);
	/* parent must be NULL.  flags: 0, DB_TXN_NOSYNC, DB_TXN_SYNC,
	 * DB_TXN_WRITE_NOSYNC, DB_TXN_WAIT, DB_TXN_NOWAIT,
	 * DB_READ_COMMITTED. */
	int (*txn_begin)(DB_ENV *env, DB_TXN *parent, DB_TXN **txnp, uint32_t flags);
	/* Makes every commit so far durable (trove_sync); matters only
	 * under DB_TXN_NOSYNC.  flags: 0. */
	int (*txn_checkpoint)(DB_ENV *env, uint32_t kbyte, uint32_t min, uint32_t flags);
	/* Before open: DB_TXN_NOSYNC or DB_TXN_WRITE_NOSYNC (see
	 * "Durability"), DB_AUTO_COMMIT (a no-op). */
	int (*set_flags)(DB_ENV *env, uint32_t flags, int onoff);
	/* Before open: Trove's memory budget, at least 1 MiB. */
	int (*set_cachesize)(DB_ENV *env, uint32_t gbytes, uint32_t bytes, int ncache);
	void (*err)(const DB_ENV *env, int error, const char *fmt, ...);
	void (*errx)(const DB_ENV *env, const char *fmt, ...);
	void (*set_errcall)(DB_ENV *env, trove_bdb_errcall_fn fn);
	void (*set_errfile)(DB_ENV *env, FILE *file);
	void (*set_errpfx)(DB_ENV *env, const char *prefix);
};

struct trove_bdb_txn {
	/* Applies the transaction's writes atomically (see "Transactions");
	 * DB_LOCK_DEADLOCK if a key it read changed.  flags: 0,
	 * DB_TXN_NOSYNC, DB_TXN_SYNC, DB_TXN_WRITE_NOSYNC. */
	int (*commit)(DB_TXN *txn, uint32_t flags);
	/* Drops the transaction's writes. */
	int (*abort)(DB_TXN *txn);
	/* A number naming the transaction, unique in its environment. */
	uint32_t (*id)(DB_TXN *txn);
};

#define db_create trove_db_create
#define db_env_create trove_db_env_create
#define db_strerror trove_db_strerror
#define db_version trove_db_version

/* Makes a DB handle in *dbp, inside env (opened) or outside any (NULL).
 * flags: 0. */
TROVE_COMPAT_API int trove_db_create(DB **dbp, DB_ENV *env, uint32_t flags);
/* Makes a DB_ENV handle in *envp.  flags: 0. */
TROVE_COMPAT_API int trove_db_env_create(DB_ENV **envp, uint32_t flags);
/* Words for a return code (errno values included); never NULL.  The
 * string is static: do not free or change it. */
TROVE_COMPAT_API char *trove_db_strerror(int error);
/* DB_VERSION_STRING, and the numbers in the pointers that are not NULL. */
TROVE_COMPAT_API char *trove_db_version(int *major, int *minor, int *patch);

#ifdef __cplusplus
}
#endif

#endif
