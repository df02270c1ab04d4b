/*
 * bdb.c - the Berkeley-DB-style face (include/trove/db.h): DB handles,
 * DBT memory, error reporting and return codes.
 *
 * A DB outside an environment owns a Trove database (the directory
 * file.trove, or one in memory); inside an environment it shares the
 * environment's and keeps its keys under the prefix "file\0".  Every read
 * and write goes through the view of a transaction (bdb_view_get,
 * bdb_write_put, bdb_write_del): with no transaction, straight to Trove;
 * with one, into its buffered writes (bdb_env.c).  Cursors live in
 * bdb_cursor.c.  This file must never include anything from src/engine/,
 * and never ignores a flag it does not implement: it refuses it, with a
 * message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bdb_int.h"

/* ---- Errors ---------------------------------------------------------------------- */

void bdb_errcfg_init(bdb_errcfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->file = stderr;
	cfg->file_is_default = 1;
}

void bdb_errcfg_free(bdb_errcfg *cfg)
{
	free(cfg->pfx);
	cfg->pfx = NULL;
}

void bdb_vreport(const bdb_errcfg *cfg, const DB_ENV *env, int with_error, int error,
                 const char *fmt, va_list ap)
{
	char msg[1024];
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (n < 0)
		msg[0] = '\0';
	if (with_error && n >= 0 && (size_t)n < sizeof msg)
		snprintf(msg + n, sizeof msg - (size_t)n, ": %s", trove_db_strerror(error));
	if (cfg->call)
		cfg->call(env, cfg->pfx, msg);
	if (cfg->file) {
		if (cfg->pfx)
			fprintf(cfg->file, "%s: %s\n", cfg->pfx, msg);
		else
			fprintf(cfg->file, "%s\n", msg);
		fflush(cfg->file);
	}
}

static bdb_errcfg *db_cfg(bdb_db *db)
{
	return db->env ? &db->env->err : &db->err;
}

static const DB_ENV *db_env(bdb_db *db)
{
	return db->env ? &db->env->pub : NULL;
}

int bdb_fail(bdb_db *db, int error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bdb_vreport(db_cfg(db), db_env(db), 0, 0, fmt, ap);
	va_end(ap);
	return error;
}

int bdb_code(int rc)
{
	switch (rc) {
	case TROVE_OK:
		return 0;
	case TROVE_ENOTFOUND:
		return DB_NOTFOUND;
	case TROVE_EEXIST:
		return DB_KEYEXIST;
	case TROVE_ECONDITION:
		return DB_LOCK_DEADLOCK;
	case TROVE_ECORRUPT:
	case TROVE_EBADDB:
		return DB_RUNRECOVERY;
	case TROVE_EVERSION:
		return DB_VERSION_MISMATCH;
	case TROVE_EREADONLY:
		return EACCES;
	case TROVE_ELOCKED:
		return EBUSY;
	default:
		return compat_errno(rc);
	}
}

char *trove_db_strerror(int error)
{
	if (error > 0)
		return strerror(error);
	switch (error) {
	case 0:
		return (char *)"Successful return: 0";
	case DB_BUFFER_SMALL:
		return (char *)"DB_BUFFER_SMALL: User memory too small for return value";
	case DB_KEYEMPTY:
		return (char *)"DB_KEYEMPTY: Non-existent key/data pair";
	case DB_KEYEXIST:
		return (char *)"DB_KEYEXIST: Key/data pair already exists";
	case DB_LOCK_DEADLOCK:
		return (char *)"DB_LOCK_DEADLOCK: Transaction conflict; retry the transaction";
	case DB_NOTFOUND:
		return (char *)"DB_NOTFOUND: No matching key/data pair found";
	case DB_RUNRECOVERY:
		return (char *)"DB_RUNRECOVERY: The database is damaged or failed; reopen it";
	case DB_VERSION_MISMATCH:
		return (char *)"DB_VERSION_MISMATCH: A file has a format version we cannot read";
	default:
		return (char *)"Unknown error";
	}
}

char *trove_db_version(int *major, int *minor, int *patch)
{
	if (major)
		*major = DB_VERSION_MAJOR;
	if (minor)
		*minor = DB_VERSION_MINOR;
	if (patch)
		*patch = DB_VERSION_PATCH;
	return (char *)DB_VERSION_STRING;
}

/* ---- DBTs ------------------------------------------------------------------------- */

#define DBT_OUT (DB_DBT_MALLOC | DB_DBT_REALLOC | DB_DBT_USERMEM)

int bdb_dbt_in_ok(bdb_db *db, const DBT *d)
{
	if (!d)
		return bdb_fail(db, EINVAL, "a DBT argument is NULL");
	if (d->flags & DB_DBT_PARTIAL)
		return bdb_fail(db, EINVAL, "DB_DBT_PARTIAL is not supported");
	if (d->flags & ~(uint32_t)(DBT_OUT | DB_DBT_APPMALLOC | DB_DBT_READONLY))
		return bdb_fail(db, EINVAL, "unsupported DBT flags 0x%x",
		                (unsigned)(d->flags & ~(uint32_t)(DBT_OUT | DB_DBT_APPMALLOC |
		                                                  DB_DBT_READONLY)));
	if (!d->data && d->size)
		return bdb_fail(db, EINVAL, "a DBT has %u bytes at a NULL data pointer",
		                (unsigned)d->size);
	return 0;
}

int bdb_dbt_out_ok(bdb_db *db, const DBT *d)
{
	if (!d)
		return bdb_fail(db, EINVAL, "a DBT argument is NULL");
	uint32_t f = d->flags;
	if (f & DB_DBT_PARTIAL)
		return bdb_fail(db, EINVAL, "DB_DBT_PARTIAL is not supported");
	if (f & ~(uint32_t)DBT_OUT)
		return bdb_fail(db, EINVAL, "unsupported flags 0x%x on a DBT that receives data",
		                (unsigned)(f & ~(uint32_t)DBT_OUT));
	uint32_t m = f & DBT_OUT;
	if (m & (m - 1))
		return bdb_fail(
		        db, EINVAL,
		        "DB_DBT_MALLOC, DB_DBT_REALLOC and DB_DBT_USERMEM exclude each other");
	if (!m && db->thread)
		return bdb_fail(db, EINVAL,
		                "a DB_THREAD handle returns data only in DB_DBT_MALLOC, "
		                "DB_DBT_REALLOC or DB_DBT_USERMEM memory");
	if ((f & DB_DBT_USERMEM) && !d->data && d->ulen)
		return bdb_fail(db, EINVAL, "DB_DBT_USERMEM with a NULL data pointer");
	return 0;
}

int bdb_dbt_fits(DBT *d, size_t n)
{
	if ((d->flags & DB_DBT_USERMEM) && n > d->ulen) {
		d->size = (uint32_t)n;
		return DB_BUFFER_SMALL;
	}
	return 0;
}

/* Makes own hold at least n bytes. */
static int buf_reserve(bdb_buf *own, size_t n)
{
	if (n <= own->cap)
		return 0;
	size_t cap = n > 2 * own->cap ? n : 2 * own->cap;
	void *p = realloc(own->p, cap);
	if (!p)
		return ENOMEM;
	own->p = p;
	own->cap = cap;
	return 0;
}

int bdb_dbt_set(DBT *d, bdb_buf *own, const void *p, size_t n)
{
	void *dst;
	switch (d->flags & DBT_OUT) {
	case DB_DBT_USERMEM:
		dst = d->data;
		break;
	case DB_DBT_MALLOC:
		dst = malloc(n ? n : 1);
		break;
	case DB_DBT_REALLOC:
		dst = realloc(d->data, n ? n : 1);
		break;
	default:
		/* One byte more for a NUL, handy for strings, not counted. */
		if (buf_reserve(own, n + 1))
			return ENOMEM;
		dst = own->p;
		((char *)dst)[n] = '\0';
		break;
	}
	if (!dst)
		return ENOMEM;
	if (n)
		memcpy(dst, p, n);
	d->data = dst;
	d->size = (uint32_t)n;
	return 0;
}

/* ---- Keys ---------------------------------------------------------------------------- */

int bdb_skey_make(bdb_db *db, bdb_skey *sk, const DBT *k)
{
	size_t n = db->plen + k->size;
	sk->p = sk->small;
	sk->len = n;
	if (n == 0 || n > TROVE_MAX_KEY)
		return EINVAL;
	if (n > sizeof sk->small) {
		sk->p = malloc(n);
		if (!sk->p) {
			sk->p = sk->small;
			return ENOMEM;
		}
	}
	if (db->plen)
		memcpy(sk->p, db->prefix, db->plen);
	if (k->size)
		memcpy(sk->p + db->plen, k->data, k->size);
	return 0;
}

void bdb_skey_free(bdb_skey *sk)
{
	if (sk->p != sk->small)
		free(sk->p);
	sk->p = sk->small;
}

/* ---- Reading and writing through a transaction's view ------------------------------------- */

void bdb_val_free(bdb_val *v)
{
	trove_free(v->owned);
	v->owned = NULL;
}

int bdb_view_get(bdb_db *db, bdb_txn *txn, const void *sk, size_t sklen, bdb_val *out)
{
	void *val = NULL;
	size_t vlen = 0, i;
	trove_meta meta = {0};
	memset(out, 0, sizeof *out);
	if (!txn) {
		int rc = trove_get(db->st->db, sk, sklen, &val, &vlen);
		if (rc)
			return bdb_code(rc);
		out->p = out->owned = val;
		out->n = vlen;
		return 0;
	}
	if (bdb_kvset_find(&txn->writes, sk, sklen, &i)) {
		const bdb_kv *kv = &txn->writes.v[i];
		if (!kv->val)
			return DB_NOTFOUND;
		out->p = kv->val;
		out->n = kv->vlen;
		return 0;
	}
	int rc = trove_get_ex(db->st->db, NULL, sk, sklen, &val, &vlen, &meta);
	if (rc && rc != TROVE_ENOTFOUND)
		return bdb_code(rc);
	/* Remember the first version seen; commit checks it still holds. */
	if (!bdb_kvset_find(&txn->reads, sk, sklen, &i) &&
	    bdb_kvset_put(&txn->reads, sk, sklen, NULL, 0, rc ? 0 : meta.version)) {
		trove_free(val);
		return ENOMEM;
	}
	if (rc)
		return DB_NOTFOUND;
	out->p = out->owned = val;
	out->n = vlen;
	return 0;
}

int bdb_write_put(bdb_db *db, bdb_txn *txn, const void *sk, size_t sklen, const void *v,
                  size_t vlen, int nooverwrite)
{
	int rc;
	if (!v)
		v = ""; /* an empty value */
	if (txn) {
		if (nooverwrite) {
			bdb_val old;
			rc = bdb_view_get(db, txn, sk, sklen, &old);
			bdb_val_free(&old);
			if (rc == 0)
				return DB_KEYEXIST;
			if (rc != DB_NOTFOUND)
				return rc;
		}
		return bdb_kvset_put(&txn->writes, sk, sklen, v, vlen, 0);
	}
	if (nooverwrite)
		rc = trove_put_if_absent(db->st->db, sk, sklen, v, vlen);
	else
		rc = trove_put(db->st->db, sk, sklen, v, vlen);
	if (!rc)
		compat_store_bump(db->st);
	return bdb_code(rc);
}

int bdb_write_del(bdb_db *db, bdb_txn *txn, const void *sk, size_t sklen)
{
	if (txn) {
		bdb_val old;
		int rc = bdb_view_get(db, txn, sk, sklen, &old);
		bdb_val_free(&old);
		if (rc)
			return rc;
		return bdb_kvset_put(&txn->writes, sk, sklen, NULL, 0, 0);
	}
	int rc = trove_del_if_exists(db->st->db, sk, sklen);
	if (!rc)
		compat_store_bump(db->st);
	return bdb_code(rc);
}

int bdb_txn_check(bdb_db *db, DB_TXN *t, bdb_txn **out)
{
	*out = NULL;
	if (!t)
		return 0;
	bdb_txn *txn = (bdb_txn *)t;
	if (!db->env)
		return bdb_fail(db, EINVAL,
		                "transactions need a database opened in an environment");
	if (txn->env != db->env)
		return bdb_fail(db, EINVAL, "the transaction belongs to another environment");
	*out = txn;
	return 0;
}

/* ---- DB methods ------------------------------------------------------------------------- */

#define DB_OPEN_FLAGS                                                                              \
	(DB_CREATE | DB_EXCL | DB_THREAD | DB_AUTO_COMMIT | DB_READ_UNCOMMITTED | DB_RDONLY |      \
	 DB_TRUNCATE)
#define READ_MODS (DB_RMW | DB_READ_COMMITTED | DB_READ_UNCOMMITTED)

static bdb_db *D(DB *d)
{
	return (bdb_db *)d;
}

/* Every method but open and the settings needs an open handle. */
static int need_open(bdb_db *db, const char *what)
{
	return db->opened ? 0 : bdb_fail(db, EINVAL, "%s: the database is not open", what);
}

static int need_writable(bdb_db *db, const char *what)
{
	int rc = need_open(db, what);
	if (!rc && db->rdonly)
		rc = bdb_fail(db, EACCES, "%s: the database was opened DB_RDONLY", what);
	return rc;
}

/* Opens the file inside the environment: its keys get the prefix
 * "file\0", and the key "file" says it exists. */
static int open_in_env(bdb_db *db, const char *file, uint32_t flags)
{
	bdb_env *env = db->env;
	size_t n = strlen(file);
	free(db->prefix);
	db->prefix = NULL;
	if (!env->opened)
		return bdb_fail(db, EINVAL, "DB->open: the environment is not open");
	if (n + 1 >= TROVE_MAX_KEY)
		return bdb_fail(db, EINVAL, "DB->open: file name too long");
	db->prefix = malloc(n + 1);
	if (!db->prefix)
		return ENOMEM;
	memcpy(db->prefix, file, n + 1); /* with its NUL */
	db->plen = n + 1;
	trove_db *t = env->st.db;
	int rc = n ? trove_exists(t, file, n) : TROVE_ENOTFOUND;
	if (rc == 0 && (flags & DB_CREATE) && (flags & DB_EXCL))
		return bdb_fail(db, EEXIST, "DB->open: %s exists", file);
	if (rc == TROVE_ENOTFOUND) {
		if (!(flags & DB_CREATE))
			return ENOENT;
		if (n == 0)
			return bdb_fail(db, EINVAL, "DB->open: empty file name");
		rc = trove_put(t, file, n, "", 0);
		if (!rc)
			compat_store_bump(&env->st);
	}
	if (!rc && (flags & DB_TRUNCATE))
		rc = compat_delete_prefix(&env->st, db->prefix, db->plen, NULL);
	if (rc)
		return bdb_code(rc);
	bdb_env_add_db(env, db);
	return 0;
}

/* Opens the file outside any environment: its own Trove database. */
static int open_alone(bdb_db *db, const char *file, uint32_t flags, int mode)
{
	trove_options o;
	trove_options_init(&o);
	o.sync = TROVE_SYNC_NONE; /* synced at DB->sync and DB->close */
	if (db->cache)
		o.memory_budget = db->cache;
	int rc;
	if (!file) {
		if (db->rdonly)
			return bdb_fail(db, EINVAL,
			                "DB->open: an in-memory database cannot be DB_RDONLY");
		o.in_memory = 1;
		rc = trove_open("", &o, &db->own.db);
	} else {
		char *dir = compat_dir_name(file);
		if (!dir)
			return ENOMEM;
		rc = compat_open(dir, !!(flags & DB_CREATE), !!(flags & DB_EXCL), db->rdonly,
		                 (mode_t)(mode ? mode : 0660), &o, &db->own.db);
		if (rc == TROVE_ELOCKED)
			bdb_fail(db, EBUSY, "DB->open: %s is open in another handle or process",
			         dir);
		free(dir);
	}
	if (!rc && (flags & DB_TRUNCATE)) {
		rc = compat_delete_prefix(&db->own, NULL, 0, NULL);
		if (rc) {
			trove_close(db->own.db);
			db->own.db = NULL;
		}
	}
	if (rc == TROVE_ENOTFOUND || rc == TROVE_ENOENT)
		return ENOENT;
	return rc == TROVE_EEXIST ? EEXIST : bdb_code(rc);
}

static int db_open(DB *d, DB_TXN *txn, const char *file, const char *database, DBTYPE type,
                   uint32_t flags, int mode)
{
	bdb_db *db = D(d);
	if (db->opened)
		return bdb_fail(db, EINVAL, "DB->open: the handle is already open");
	if (database)
		return bdb_fail(db, EINVAL,
		                "DB->open: several databases in one file are not supported "
		                "(database must be NULL)");
	if (type != DB_BTREE && type != DB_HASH && type != DB_UNKNOWN)
		return bdb_fail(db, EINVAL,
		                "DB->open: only DB_BTREE and DB_HASH are supported, not type %d",
		                (int)type);
	if (flags & ~(uint32_t)DB_OPEN_FLAGS)
		return bdb_fail(db, EINVAL, "DB->open: unsupported flags 0x%x",
		                (unsigned)(flags & ~(uint32_t)DB_OPEN_FLAGS));
	if ((flags & DB_RDONLY) && (flags & DB_TRUNCATE))
		return bdb_fail(db, EINVAL,
		                "DB->open: DB_RDONLY and DB_TRUNCATE exclude each other");
	bdb_txn *t;
	int rc = bdb_txn_check(db, txn, &t);
	if (rc)
		return rc;
	db->rdonly = !!(flags & DB_RDONLY);
	db->thread = !!(flags & DB_THREAD);
	db->type = type == DB_UNKNOWN ? DB_BTREE : type;
	if (db->env) {
		if (!file)
			return bdb_fail(db, EINVAL,
			                "DB->open: in-memory databases inside an environment are "
			                "not supported");
		rc = open_in_env(db, file, flags);
	} else {
		rc = open_alone(db, file, flags, mode);
	}
	if (!rc)
		db->opened = 1;
	return rc;
}

static int db_close(DB *d, uint32_t flags)
{
	bdb_db *db = D(d);
	int rc = flags & ~(uint32_t)DB_NOSYNC ? EINVAL : 0;
	bdb_cursor_close_all(db);
	if (db->env) {
		if (db->opened)
			bdb_env_remove_db(db->env, db);
	} else if (db->own.db) {
		int r = 0;
		if (!db->rdonly && !(flags & DB_NOSYNC))
			r = trove_sync(db->own.db);
		int r2 = trove_close(db->own.db);
		if (!rc)
			rc = bdb_code(r ? r : r2);
	}
	bdb_errcfg_free(&db->err);
	pthread_mutex_destroy(&db->mu);
	free(db->kbuf.p);
	free(db->vbuf.p);
	free(db->prefix);
	free(db);
	return rc;
}

static int db_get(DB *d, DB_TXN *txnp, DBT *key, DBT *data, uint32_t flags)
{
	bdb_db *db = D(d);
	bdb_txn *txn;
	uint32_t op = flags & ~(uint32_t)READ_MODS;
	int rc = need_open(db, "DB->get");
	if (!rc && op != 0 && op != DB_GET_BOTH)
		rc = bdb_fail(db, EINVAL, "DB->get: unsupported flags 0x%x", (unsigned)flags);
	if (!rc)
		rc = bdb_txn_check(db, txnp, &txn);
	if (!rc)
		rc = bdb_dbt_in_ok(db, key);
	if (!rc)
		rc = op == DB_GET_BOTH ? bdb_dbt_in_ok(db, data) : bdb_dbt_out_ok(db, data);
	if (rc)
		return rc;
	bdb_skey sk;
	if (bdb_skey_make(db, &sk, key))
		return DB_NOTFOUND; /* no such key can exist */
	bdb_val v;
	rc = bdb_view_get(db, txn, sk.p, sk.len, &v);
	bdb_skey_free(&sk);
	if (!rc && op == DB_GET_BOTH) {
		if (v.n != data->size || (v.n && memcmp(v.p, data->data, v.n)))
			rc = DB_NOTFOUND;
	} else if (!rc) {
		rc = bdb_dbt_fits(data, v.n);
		if (!rc)
			rc = bdb_dbt_set(data, &db->vbuf, v.p, v.n);
	}
	bdb_val_free(&v);
	return rc;
}

static int db_exists(DB *d, DB_TXN *txnp, DBT *key, uint32_t flags)
{
	bdb_db *db = D(d);
	bdb_txn *txn;
	int rc = need_open(db, "DB->exists");
	if (!rc && (flags & ~(uint32_t)READ_MODS))
		rc = bdb_fail(db, EINVAL, "DB->exists: unsupported flags 0x%x", (unsigned)flags);
	if (!rc)
		rc = bdb_txn_check(db, txnp, &txn);
	if (!rc)
		rc = bdb_dbt_in_ok(db, key);
	if (rc)
		return rc;
	bdb_skey sk;
	if (bdb_skey_make(db, &sk, key))
		return DB_NOTFOUND;
	bdb_val v;
	rc = bdb_view_get(db, txn, sk.p, sk.len, &v);
	bdb_val_free(&v);
	bdb_skey_free(&sk);
	return rc;
}

int bdb_check_value(bdb_db *db, const char *what, const DBT *data)
{
	int rc = bdb_dbt_in_ok(db, data);
	if (!rc && data->size > TROVE_MAX_VALUE)
		rc = bdb_fail(db, EINVAL, "%s: a value of %u bytes is over the limit of %u", what,
		              (unsigned)data->size, (unsigned)TROVE_MAX_VALUE);
	return rc;
}

int bdb_check_write(bdb_db *db, const char *what, const DBT *key, const DBT *data, bdb_skey *sk)
{
	sk->p = sk->small; /* freeable whatever happens */
	int rc = bdb_dbt_in_ok(db, key);
	if (!rc)
		rc = bdb_check_value(db, what, data);
	if (rc)
		return rc;
	rc = bdb_skey_make(db, sk, key);
	if (rc == EINVAL)
		return bdb_fail(db, EINVAL, "%s: keys must be %s%u bytes", what,
		                db->plen ? "up to " : "1 to ",
		                (unsigned)(TROVE_MAX_KEY - db->plen));
	return rc;
}

static int db_put(DB *d, DB_TXN *txnp, DBT *key, DBT *data, uint32_t flags)
{
	bdb_db *db = D(d);
	bdb_txn *txn;
	int rc = need_writable(db, "DB->put");
	if (rc)
		return rc;
	if (flags == DB_APPEND)
		return bdb_fail(db, EINVAL,
		                "DB->put: DB_APPEND needs DB_RECNO or DB_QUEUE, which "
		                "are not supported");
	if (flags == DB_NODUPDATA)
		return bdb_fail(db, EINVAL,
		                "DB->put: DB_NODUPDATA needs duplicates, which are "
		                "not supported");
	if (flags != 0 && flags != DB_NOOVERWRITE && flags != DB_OVERWRITE_DUP)
		return bdb_fail(db, EINVAL, "DB->put: unsupported flags 0x%x", (unsigned)flags);
	rc = bdb_txn_check(db, txnp, &txn);
	if (rc)
		return rc;
	bdb_skey sk;
	rc = bdb_check_write(db, "DB->put", key, data, &sk);
	if (!rc)
		rc = bdb_write_put(db, txn, sk.p, sk.len, data->data, data->size,
		                   flags == DB_NOOVERWRITE);
	bdb_skey_free(&sk);
	return rc;
}

static int db_del(DB *d, DB_TXN *txnp, DBT *key, uint32_t flags)
{
	bdb_db *db = D(d);
	bdb_txn *txn;
	int rc = need_writable(db, "DB->del");
	if (!rc && flags)
		rc = bdb_fail(db, EINVAL, "DB->del: unsupported flags 0x%x", (unsigned)flags);
	if (!rc)
		rc = bdb_txn_check(db, txnp, &txn);
	if (!rc)
		rc = bdb_dbt_in_ok(db, key);
	if (rc)
		return rc;
	bdb_skey sk;
	if (bdb_skey_make(db, &sk, key))
		return DB_NOTFOUND;
	rc = bdb_write_del(db, txn, sk.p, sk.len);
	bdb_skey_free(&sk);
	return rc;
}

static int db_cursor(DB *d, DB_TXN *txnp, DBC **out, uint32_t flags)
{
	bdb_db *db = D(d);
	bdb_txn *txn;
	int rc = need_open(db, "DB->cursor");
	if (!rc && (flags & ~(uint32_t)(DB_READ_COMMITTED | DB_READ_UNCOMMITTED)))
		rc = bdb_fail(db, EINVAL, "DB->cursor: unsupported flags 0x%x", (unsigned)flags);
	if (!rc && !out)
		rc = bdb_fail(db, EINVAL, "DB->cursor: NULL cursor pointer");
	if (!rc)
		rc = bdb_txn_check(db, txnp, &txn);
	return rc ? rc : bdb_cursor_open(db, txn, out);
}

static int db_sync(DB *d, uint32_t flags)
{
	bdb_db *db = D(d);
	int rc = need_open(db, "DB->sync");
	if (!rc && flags)
		rc = bdb_fail(db, EINVAL, "DB->sync: unsupported flags 0x%x", (unsigned)flags);
	return rc ? rc : bdb_code(trove_sync(db->st->db));
}

static int db_truncate(DB *d, DB_TXN *txn, uint32_t *countp, uint32_t flags)
{
	bdb_db *db = D(d);
	int rc = need_writable(db, "DB->truncate");
	if (!rc && flags)
		rc = bdb_fail(db, EINVAL, "DB->truncate: unsupported flags 0x%x", (unsigned)flags);
	if (!rc && txn)
		rc = bdb_fail(db, EINVAL, "DB->truncate: not supported inside a transaction");
	if (rc)
		return rc;
	uint64_t n = 0;
	rc = bdb_code(compat_delete_prefix(db->st, db->prefix, db->plen, &n));
	if (!rc && countp)
		*countp = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return rc;
}

static int db_get_type(DB *d, DBTYPE *type)
{
	bdb_db *db = D(d);
	int rc = need_open(db, "DB->get_type");
	if (!rc)
		*type = db->type;
	return rc;
}

static int before_open(bdb_db *db, const char *what)
{
	return db->opened ? bdb_fail(db, EINVAL, "%s: must be called before DB->open", what) : 0;
}

static int db_set_flags(DB *d, uint32_t flags)
{
	bdb_db *db = D(d);
	int rc = before_open(db, "DB->set_flags");
	if (!rc && (flags & (DB_DUP | DB_DUPSORT)))
		rc = bdb_fail(db, EINVAL,
		              "DB->set_flags: duplicate keys (DB_DUP, DB_DUPSORT) are "
		              "not supported");
	if (!rc && (flags & ~(uint32_t)DB_CHKSUM))
		rc = bdb_fail(db, EINVAL, "DB->set_flags: unsupported flags 0x%x", (unsigned)flags);
	return rc;
}

static int db_set_pagesize(DB *d, uint32_t size)
{
	bdb_db *db = D(d);
	int rc = before_open(db, "DB->set_pagesize");
	if (!rc && (size < 512 || size > 65536 || (size & (size - 1))))
		rc = bdb_fail(db, EINVAL,
		              "DB->set_pagesize: %u is not a power of two from 512 to "
		              "65536",
		              (unsigned)size);
	return rc; /* accepted and unused: Trove has no such pages */
}

static int db_set_cachesize(DB *d, uint32_t gbytes, uint32_t bytes, int ncache)
{
	bdb_db *db = D(d);
	int rc = before_open(db, "DB->set_cachesize");
	if (!rc && db->env)
		rc = bdb_fail(db, EINVAL, "DB->set_cachesize: set the environment's cache instead");
	if (rc)
		return rc;
	size_t n = ((size_t)gbytes << 30) + bytes;
	db->cache = n < (1u << 20) ? (1u << 20) : n;
	return 0;
}

static void db_err(DB *d, int error, const char *fmt, ...)
{
	bdb_db *db = D(d);
	va_list ap;
	va_start(ap, fmt);
	bdb_vreport(db_cfg(db), db_env(db), 1, error, fmt, ap);
	va_end(ap);
}

static void db_errx(DB *d, const char *fmt, ...)
{
	bdb_db *db = D(d);
	va_list ap;
	va_start(ap, fmt);
	bdb_vreport(db_cfg(db), db_env(db), 0, 0, fmt, ap);
	va_end(ap);
}

void bdb_set_errcall(bdb_errcfg *cfg, trove_bdb_errcall_fn fn)
{
	cfg->call = fn;
	if (cfg->file_is_default) {
		cfg->file = NULL;
		cfg->file_is_default = 0;
	}
}

void bdb_set_errfile(bdb_errcfg *cfg, FILE *f)
{
	cfg->file = f;
	cfg->file_is_default = 0;
}

void bdb_set_errpfx(bdb_errcfg *cfg, const char *pfx)
{
	free(cfg->pfx);
	cfg->pfx = pfx ? strdup(pfx) : NULL;
}

static void db_set_errcall(DB *d, trove_bdb_errcall_fn fn)
{
	bdb_set_errcall(db_cfg(D(d)), fn);
}

static void db_set_errfile(DB *d, FILE *f)
{
	bdb_set_errfile(db_cfg(D(d)), f);
}

static void db_set_errpfx(DB *d, const char *pfx)
{
	bdb_set_errpfx(db_cfg(D(d)), pfx);
}

int trove_db_create(DB **dbp, DB_ENV *env, uint32_t flags)
{
	if (!dbp || flags)
		return EINVAL;
	bdb_db *db = calloc(1, sizeof *db);
	if (!db)
		return ENOMEM;
	db->env = (bdb_env *)env;
	db->st = env ? &db->env->st : &db->own;
	atomic_init(&db->own.gen, 0);
	bdb_errcfg_init(&db->err);
	pthread_mutex_init(&db->mu, NULL);
	DB *p = &db->pub;
	p->dbenv = env;
	p->open = db_open;
	p->close = db_close;
	p->get = db_get;
	p->put = db_put;
	p->del = db_del;
	p->exists = db_exists;
	p->cursor = db_cursor;
	p->sync = db_sync;
	p->truncate = db_truncate;
	p->get_type = db_get_type;
	p->set_flags = db_set_flags;
	p->set_pagesize = db_set_pagesize;
	p->set_cachesize = db_set_cachesize;
	p->err = db_err;
	p->errx = db_errx;
	p->set_errcall = db_set_errcall;
	p->set_errfile = db_set_errfile;
	p->set_errpfx = db_set_errpfx;
	*dbp = p;
	return 0;
}
