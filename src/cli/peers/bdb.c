/*
 * bdb.c - trove-peer-bdb: Berkeley DB btree and hash files through
 * libdb-5.3.
 *
 * Reading opens the file read-only as DB_UNKNOWN, so the file says what
 * it is; btree and hash hold byte-string keys and are walked with a
 * cursor (DB_NEXT), while recno, queue and heap (record numbers for keys)
 * and files of several named databases are refused by name.  Writing
 * creates a btree (the default) or a hash file, or opens an existing one
 * of that type, and stores with plain DB->put, which replaces.  No
 * environment is used: these are standalone database files.
 */
#include <db.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"

static void on_error(const DB_ENV *env, const char *pfx, const char *msg)
{
	(void)env;
	(void)pfx;
	peer_fail("bdb: %s", msg);
}

static DB *new_db(void)
{
	DB *db;
	int ret = db_create(&db, NULL, 0);
	if (ret) {
		peer_fail("bdb: %s", db_strerror(ret));
		return NULL;
	}
	db->set_errcall(db, on_error);
	return db;
}

static const char *type_name(DBTYPE t)
{
	switch (t) {
	case DB_RECNO:
		return "recno";
	case DB_QUEUE:
		return "queue";
	case DB_HEAP:
		return "heap";
	default:
		return "unknown";
	}
}

/* The number of keys, if Berkeley DB knows it without a walk; else 0. */
static uint64_t key_hint(DB *db, DBTYPE t)
{
	void *sp = NULL;
	uint64_t n = 0;
	if (db->stat(db, NULL, &sp, DB_FAST_STAT) == 0 && sp)
		n = t == DB_BTREE ? ((DB_BTREE_STAT *)sp)->bt_nkeys
		                  : ((DB_HASH_STAT *)sp)->hash_nkeys;
	free(sp);
	return n;
}

static int walk(DB *db, peer_out *o)
{
	DBC *c;
	int ret = db->cursor(db, NULL, &c, 0);
	if (ret)
		return peer_fail("bdb: cursor: %s", db_strerror(ret));
	DBT k, v;
	memset(&k, 0, sizeof k);
	memset(&v, 0, sizeof v);
	int rc = 0;
	while (rc == 0 && (ret = c->get(c, &k, &v, DB_NEXT)) == 0)
		rc = peer_emit(o, k.data, k.size, v.data, v.size);
	if (rc == 0 && ret != DB_NOTFOUND)
		rc = peer_fail("bdb: read: %s", db_strerror(ret));
	c->close(c);
	return rc;
}

static int bdb_read(const char *path, peer_out *o)
{
	DB *db = new_db();
	if (!db)
		return -1;
	int ret = db->open(db, NULL, path, NULL, DB_UNKNOWN, DB_RDONLY, 0);
	if (ret) {
		db->close(db, 0);
		return peer_fail("bdb: %s", db_strerror(ret));
	}
	DBTYPE t;
	int rc = 0;
	db->get_type(db, &t);
	if (t != DB_BTREE && t != DB_HASH)
		rc = peer_fail("a Berkeley DB %s database: its keys are record numbers; only btree "
		               "and hash files can be imported",
		               type_name(t));
	else if (db->get_multiple(db))
		rc = peer_fail("holds several named databases; only files of one database can "
		               "be imported");
	if (rc == 0) {
		peer_begin(o, key_hint(db, t));
		rc = walk(db, o);
	}
	db->close(db, 0);
	return rc;
}

static void *bdb_wopen(const char *path, const char *variant)
{
	DB *db = new_db();
	if (!db)
		return NULL;
	DBTYPE t = variant && !strcmp(variant, "hash") ? DB_HASH : DB_BTREE;
	int ret = db->open(db, NULL, path, NULL, t, DB_CREATE, 0644);
	if (ret) {
		peer_fail("bdb: %s", db_strerror(ret));
		db->close(db, 0);
		return NULL;
	}
	return db;
}

static int bdb_put(void *h, const void *k, size_t kn, const void *v, size_t vn)
{
	DB *db = h;
	DBT key, val;
	memset(&key, 0, sizeof key);
	memset(&val, 0, sizeof val);
	key.data = (void *)k;
	key.size = (u_int32_t)kn;
	val.data = (void *)v;
	val.size = (u_int32_t)vn;
	int ret = db->put(db, NULL, &key, &val, 0);
	return ret ? peer_fail("bdb: put: %s", db_strerror(ret)) : 0;
}

static int bdb_wclose(void *h, int ok)
{
	DB *db = h;
	(void)ok;
	int ret = db->close(db, 0); /* flushes the file */
	return ret ? peer_fail("bdb: close: %s", db_strerror(ret)) : 0;
}

const peer_ops peer_format = {"bdb", "Berkeley DB files", bdb_read, bdb_wopen, bdb_put, bdb_wclose};
