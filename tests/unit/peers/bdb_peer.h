/*
 * bdb_peer.h - Berkeley DB 5.3 (libdb), the reference for test_bdb's
 * differential test, behind names and types of its own.
 *
 * The real <db.h> and <trove/db.h> define the same names (DB, DBT,
 * DB_NOTFOUND, ...), so no file can include both.  bdb_libdb.c includes
 * the real one alone and exports these wrappers; test_bdb.c includes
 * Trove's alone and calls them.  The symbols do not clash at link time
 * because Trove's header renames its functions (db_create is
 * trove_db_create); return codes and flags pass through unchanged, since
 * Trove's face keeps Berkeley DB 5.3's numeric values.
 */
#ifndef BDB_PEER_H
#define BDB_PEER_H

#include <stddef.h>
#include <stdint.h>

/* A database handle with at most one cursor, optionally in an
 * environment with at most one transaction. */
typedef struct peer_bdb peer_bdb;

/* The fields of a DBT that the tests use. */
typedef struct peer_dbt {
	void *data;
	uint32_t size;
	uint32_t ulen;
	uint32_t flags;
} peer_dbt;

/* Opens btree file (in environment home if not NULL, created with
 * transactions) with open flags (DB_CREATE, DB_TRUNCATE...).  Returns
 * the handle, or NULL with *rc set.  Error messages are silenced. */
peer_bdb *peer_bdb_open(const char *home, const char *file, uint32_t flags, int *rc);
int peer_bdb_close(peer_bdb *p);

/* The DB methods, in the transaction if one is open. */
int peer_bdb_put(peer_bdb *p, peer_dbt *k, peer_dbt *d, uint32_t flags);
int peer_bdb_get(peer_bdb *p, peer_dbt *k, peer_dbt *d, uint32_t flags);
int peer_bdb_del(peer_bdb *p, peer_dbt *k, uint32_t flags);
int peer_bdb_exists(peer_bdb *p, peer_dbt *k, uint32_t flags);

/* The cursor (opened in the transaction if one is open). */
int peer_bdb_cursor(peer_bdb *p);
int peer_bdb_cursor_close(peer_bdb *p);
int peer_bdb_c_get(peer_bdb *p, peer_dbt *k, peer_dbt *d, uint32_t flags);
int peer_bdb_c_put(peer_bdb *p, peer_dbt *k, peer_dbt *d, uint32_t flags);
int peer_bdb_c_del(peer_bdb *p, uint32_t flags);

/* The transaction. */
int peer_bdb_txn_begin(peer_bdb *p);
int peer_bdb_txn_commit(peer_bdb *p);
int peer_bdb_txn_abort(peer_bdb *p);

#endif
