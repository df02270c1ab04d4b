/*
 * bdb_env.c - DB_ENV and DB_TXN of the Berkeley-DB-style face, over one
 * Trove database per environment.
 *
 * An environment opens home/env.trove; its databases keep their keys
 * under prefixes there (bdb.c).  A transaction is two sorted sets: the
 * writes it buffers (read back by its own reads and cursors) and the
 * versions of the keys it read.  Commit turns both into one trove_batch,
 * writes as puts and deletes, reads as TROVE_IF_VERSION conditions, so
 * that the transaction applies atomically and only if nothing it read has
 * changed.  The file must never include an engine header, and a commit
 * must never apply part of a transaction.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bdb_int.h"

/* ---- Sorted key sets ------------------------------------------------------------ */

void bdb_kvset_free(bdb_kvset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].val);
	}
	free(s->v);
	memset(s, 0, sizeof *s);
}

int bdb_kvset_find(const bdb_kvset *s, const void *key, size_t klen, size_t *idx)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = compat_keycmp(s->v[mid].key, s->v[mid].klen, key, klen);
		if (c == 0) {
			*idx = mid;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*idx = lo;
	return 0;
}

/* A copy of n bytes (at least one byte allocated, so never NULL). */
static void *dup_bytes(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);
	if (q && n)
		memcpy(q, p, n);
	return q;
}

int bdb_kvset_put(bdb_kvset *s, const void *key, size_t klen, const void *val, size_t vlen,
                  uint64_t version)
{
	size_t i;
	void *v = NULL;
	if (val && !(v = dup_bytes(val, vlen)))
		return ENOMEM;
	if (bdb_kvset_find(s, key, klen, &i)) {
		free(s->v[i].val);
		s->v[i].val = v;
		s->v[i].vlen = vlen;
		s->v[i].version = version;
		return 0;
	}
	void *k = dup_bytes(key, klen);
	if (k && s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		bdb_kv *nv = realloc(s->v, cap * sizeof *nv);
		if (nv) {
			s->v = nv;
			s->cap = cap;
		}
	}
	if (!k || s->n == s->cap) {
		free(k);
		free(v);
		return ENOMEM;
	}
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
	s->v[i] = (bdb_kv){k, klen, v, vlen, version};
	s->n++;
	return 0;
}

/* ---- Environments ---------------------------------------------------------------- */

#define ENV_OPEN_FLAGS                                                                             \
	(DB_CREATE | DB_RECOVER | DB_USE_ENVIRON | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL |    \
	 DB_INIT_TXN | DB_THREAD | DB_PRIVATE)
#define ENV_DIR "env.trove"

static bdb_env *E(const DB_ENV *e)
{
	return (bdb_env *)e;
}

static int env_fail(bdb_env *env, int error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int env_fail(bdb_env *env, int error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bdb_vreport(&env->err, &env->pub, 0, 0, fmt, ap);
	va_end(ap);
	return error;
}

void bdb_env_add_db(bdb_env *env, bdb_db *db)
{
	pthread_mutex_lock(&env->mu);
	db->next = env->dbs;
	env->dbs = db;
	pthread_mutex_unlock(&env->mu);
}

void bdb_env_remove_db(bdb_env *env, bdb_db *db)
{
	pthread_mutex_lock(&env->mu);
	for (bdb_db **p = &env->dbs; *p; p = &(*p)->next) {
		if (*p == db) {
			*p = db->next;
			break;
		}
	}
	pthread_mutex_unlock(&env->mu);
}

static int env_open(DB_ENV *e, const char *home, uint32_t flags, int mode)
{
	bdb_env *env = E(e);
	if (env->opened)
		return env_fail(env, EINVAL, "DB_ENV->open: the environment is already open");
	if (flags & DB_INIT_CDB)
		return env_fail(env, EINVAL, "DB_ENV->open: DB_INIT_CDB is not supported");
	if (flags & ~(uint32_t)ENV_OPEN_FLAGS)
		return env_fail(env, EINVAL, "DB_ENV->open: unsupported flags 0x%x",
		                (unsigned)(flags & ~(uint32_t)ENV_OPEN_FLAGS));
	if (!home && (flags & DB_USE_ENVIRON))
		home = getenv("DB_HOME");
	if (!home)
		home = ".";
	size_t n = strlen(home);
	char *dir = malloc(n + sizeof "/" ENV_DIR);
	if (!dir)
		return ENOMEM;
	memcpy(dir, home, n);
	memcpy(dir + n, "/" ENV_DIR, sizeof "/" ENV_DIR);
	env->txn_ok = !!(flags & DB_INIT_TXN);
	trove_options o;
	trove_options_init(&o);
	o.sync = env->txn_ok && !env->nosync ? TROVE_SYNC_ALWAYS : TROVE_SYNC_NONE;
	if (env->cache)
		o.memory_budget = env->cache;
	int rc = compat_open(dir, !!(flags & DB_CREATE), 0, 0, (mode_t)(mode ? mode : 0660), &o,
	                     &env->st.db);
	if (rc == TROVE_ELOCKED)
		env_fail(env, EBUSY, "DB_ENV->open: %s is in use by another handle or process",
		         dir);
	free(dir);
	if (rc == TROVE_ENOTFOUND || rc == TROVE_ENOENT)
		return ENOENT;
	if (rc)
		return bdb_code(rc);
	env->opened = 1;
	return 0;
}

static void txn_free(bdb_txn *txn);

static int env_close(DB_ENV *e, uint32_t flags)
{
	bdb_env *env = E(e);
	int rc = flags ? env_fail(env, EINVAL, "DB_ENV->close: unsupported flags 0x%x",
	                          (unsigned)flags)
	               : 0;
	/* What the program left open goes first: transactions, then
	 * databases (whose close needs the lock, so the lists are taken). */
	pthread_mutex_lock(&env->mu);
	bdb_txn *txns = env->txns;
	bdb_db *dbs = env->dbs;
	env->txns = NULL;
	env->dbs = NULL;
	pthread_mutex_unlock(&env->mu);
	while (txns) {
		bdb_txn *next = txns->next;
		bdb_cursor_detach_txn(txns);
		txn_free(txns);
		txns = next;
	}
	while (dbs) {
		bdb_db *next = dbs->next;
		dbs->opened = 0; /* already off the list */
		dbs->pub.close(&dbs->pub, 0);
		dbs = next;
	}
	if (env->st.db) {
		int r = trove_sync(env->st.db);
		int r2 = trove_close(env->st.db);
		if (!rc)
			rc = bdb_code(r ? r : r2);
	}
	bdb_errcfg_free(&env->err);
	pthread_mutex_destroy(&env->mu);
	free(env);
	return rc;
}

static int env_set_flags(DB_ENV *e, uint32_t flags, int onoff)
{
	bdb_env *env = E(e);
	if (env->opened)
		return env_fail(env, EINVAL, "DB_ENV->set_flags: must be called before open");
	if (flags & ~(uint32_t)(DB_TXN_NOSYNC | DB_TXN_WRITE_NOSYNC | DB_AUTO_COMMIT))
		return env_fail(env, EINVAL, "DB_ENV->set_flags: unsupported flags 0x%x",
		                (unsigned)flags);
	if (flags & (DB_TXN_NOSYNC | DB_TXN_WRITE_NOSYNC))
		env->nosync = !!onoff;
	return 0;
}

static int env_set_cachesize(DB_ENV *e, uint32_t gbytes, uint32_t bytes, int ncache)
{
	bdb_env *env = E(e);
	if (env->opened)
		return env_fail(env, EINVAL, "DB_ENV->set_cachesize: must be called before open");
	size_t n = ((size_t)gbytes << 30) + bytes;
	env->cache = n < (1u << 20) ? (1u << 20) : n;
	return 0;
}

static int env_txn_checkpoint(DB_ENV *e, uint32_t kbyte, uint32_t min, uint32_t flags)
{
	bdb_env *env = E(e);
	if (!env->opened)
		return env_fail(env, EINVAL, "DB_ENV->txn_checkpoint: the environment is not open");
	if (flags)
		return env_fail(env, EINVAL, "DB_ENV->txn_checkpoint: unsupported flags 0x%x",
		                (unsigned)flags);
	return bdb_code(trove_sync(env->st.db));
}

static void env_err(const DB_ENV *e, int error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bdb_vreport(&E(e)->err, e, 1, error, fmt, ap);
	va_end(ap);
}

static void env_errx(const DB_ENV *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bdb_vreport(&E(e)->err, e, 0, 0, fmt, ap);
	va_end(ap);
}

static void env_set_errcall(DB_ENV *e, trove_bdb_errcall_fn fn)
{
	bdb_set_errcall(&E(e)->err, fn);
}

static void env_set_errfile(DB_ENV *e, FILE *f)
{
	bdb_set_errfile(&E(e)->err, f);
}

static void env_set_errpfx(DB_ENV *e, const char *pfx)
{
	bdb_set_errpfx(&E(e)->err, pfx);
}

/* ---- Transactions ------------------------------------------------------------------- */

#define TXN_BEGIN_FLAGS                                                                            \
	(DB_TXN_NOSYNC | DB_TXN_SYNC | DB_TXN_WRITE_NOSYNC | DB_TXN_WAIT | DB_TXN_NOWAIT |         \
	 DB_READ_COMMITTED)
#define TXN_COMMIT_FLAGS (DB_TXN_NOSYNC | DB_TXN_SYNC | DB_TXN_WRITE_NOSYNC)

static bdb_txn *T(DB_TXN *t)
{
	return (bdb_txn *)t;
}

static void txn_free(bdb_txn *txn)
{
	bdb_kvset_free(&txn->writes);
	bdb_kvset_free(&txn->reads);
	free(txn);
}

/* Takes txn off its environment's list, forgets its cursors, frees it. */
static void txn_end(bdb_txn *txn)
{
	bdb_env *env = txn->env;
	pthread_mutex_lock(&env->mu);
	for (bdb_txn **p = &env->txns; *p; p = &(*p)->next) {
		if (*p == txn) {
			*p = txn->next;
			break;
		}
	}
	pthread_mutex_unlock(&env->mu);
	bdb_cursor_detach_txn(txn);
	txn_free(txn);
}

/* The transaction as one batch: its writes, and a condition per key it
 * read that the key's version is still the one it saw (0: absent). */
static int txn_batch(const bdb_txn *txn, trove_batch *b)
{
	int rc = 0;
	for (size_t i = 0; i < txn->writes.n && !rc; i++) {
		const bdb_kv *w = &txn->writes.v[i];
		rc = w->val ? trove_batch_put(b, w->key, w->klen, w->val, w->vlen)
		            : trove_batch_del(b, w->key, w->klen);
	}
	for (size_t i = 0; i < txn->reads.n && !rc; i++) {
		const bdb_kv *r = &txn->reads.v[i];
		trove_cond c = {0};
		c.kind = TROVE_IF_VERSION;
		c.version = r->version;
		rc = trove_batch_require(b, r->key, r->klen, &c);
	}
	return rc;
}

static int txn_commit(DB_TXN *t, uint32_t flags)
{
	bdb_txn *txn = T(t);
	bdb_env *env = txn->env;
	int rc = 0;
	if (flags & ~(uint32_t)TXN_COMMIT_FLAGS)
		rc = env_fail(env, EINVAL, "DB_TXN->commit: unsupported flags 0x%x; aborted",
		              (unsigned)flags);
	else if (txn->cursors)
		rc = env_fail(env, EINVAL,
		              "DB_TXN->commit: the transaction has open cursors; aborted");
	if (rc) {
		txn_end(txn);
		return rc;
	}
	trove_batch *b = trove_batch_new();
	int trc = b ? txn_batch(txn, b) : TROVE_ENOMEM;
	if (!trc)
		trc = trove_write(env->st.db, b, NULL);
	trove_batch_free(b);
	if (!trc && txn->writes.n)
		compat_store_bump(&env->st);
	/* Under DB_TXN_NOSYNC the batch was not synced; sync if asked. */
	if (!trc && env->nosync && ((flags & DB_TXN_SYNC) || txn->sync))
		trc = trove_sync(env->st.db);
	txn_end(txn);
	return bdb_code(trc);
}

static int txn_abort(DB_TXN *t)
{
	txn_end(T(t));
	return 0;
}

static uint32_t txn_id(DB_TXN *t)
{
	return T(t)->id;
}

static int env_txn_begin(DB_ENV *e, DB_TXN *parent, DB_TXN **out, uint32_t flags)
{
	bdb_env *env = E(e);
	if (!env->opened)
		return env_fail(env, EINVAL, "DB_ENV->txn_begin: the environment is not open");
	if (!env->txn_ok)
		return env_fail(
		        env, EINVAL,
		        "DB_ENV->txn_begin: the environment was opened without DB_INIT_TXN");
	if (parent)
		return env_fail(env, EINVAL,
		                "DB_ENV->txn_begin: nested transactions are not "
		                "supported");
	if (flags & ~(uint32_t)TXN_BEGIN_FLAGS)
		return env_fail(env, EINVAL, "DB_ENV->txn_begin: unsupported flags 0x%x",
		                (unsigned)(flags & ~(uint32_t)TXN_BEGIN_FLAGS));
	if (!out)
		return env_fail(env, EINVAL, "DB_ENV->txn_begin: NULL transaction pointer");
	bdb_txn *txn = calloc(1, sizeof *txn);
	if (!txn)
		return ENOMEM;
	txn->env = env;
	txn->sync = !!(flags & DB_TXN_SYNC);
	txn->pub.commit = txn_commit;
	txn->pub.abort = txn_abort;
	txn->pub.id = txn_id;
	pthread_mutex_lock(&env->mu);
	txn->id = ++env->next_txn_id;
	txn->next = env->txns;
	env->txns = txn;
	pthread_mutex_unlock(&env->mu);
	*out = &txn->pub;
	return 0;
}

int trove_db_env_create(DB_ENV **envp, uint32_t flags)
{
	if (!envp || flags)
		return EINVAL;
	bdb_env *env = calloc(1, sizeof *env);
	if (!env)
		return ENOMEM;
	bdb_errcfg_init(&env->err);
	atomic_init(&env->st.gen, 0);
	pthread_mutex_init(&env->mu, NULL);
	DB_ENV *p = &env->pub;
	p->open = env_open;
	p->close = env_close;
	p->txn_begin = env_txn_begin;
	p->txn_checkpoint = env_txn_checkpoint;
	p->set_flags = env_set_flags;
	p->set_cachesize = env_set_cachesize;
	p->err = env_err;
	p->errx = env_errx;
	p->set_errcall = env_set_errcall;
	p->set_errfile = env_set_errfile;
	p->set_errpfx = env_set_errpfx;
	*envp = p;
	return 0;
}
