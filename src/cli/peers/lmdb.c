/*
 * lmdb.c - trove-peer-lmdb: LMDB environments through liblmdb.
 *
 * An environment is either a directory holding data.mdb and lock.mdb or,
 * with MDB_NOSUBDIR, a single file FILE beside FILE-lock; a path that is
 * a directory is taken as the first, anything else as the second.
 * Reading opens read-only (without the lock file when it cannot be made,
 * say on a read-only medium) and walks the main database with one cursor
 * inside one read transaction, so it sees one consistent state.  Named
 * sub-databases are not walked: their names show in the main database as
 * keys.  Writing stores into the main database in transactions of
 * WRITE_BATCH pairs.  LMDB's keys are at most mdb_env_get_maxkeysize
 * bytes (511 by default): longer Trove keys are skipped with a warning.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "peer.h"

#define WRITE_BATCH 1000

static unsigned env_flags(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : MDB_NOSUBDIR;
}

static MDB_env *open_env(const char *path, unsigned flags, int *rc)
{
	MDB_env *env;
	*rc = mdb_env_create(&env);
	if (*rc)
		return NULL;
	if (!(flags & MDB_RDONLY)) {
		/* Room to grow: address space, not memory or disk. */
		size_t map = sizeof(size_t) >= 8 ? (size_t)1 << 36 : (size_t)1 << 30;
		mdb_env_set_mapsize(env, map);
	}
	*rc = mdb_env_open(env, path, flags, 0644);
	if (*rc) {
		mdb_env_close(env);
		return NULL;
	}
	return env;
}

static int walk(MDB_env *env, peer_out *o)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_stat ms;
	int ret = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (ret)
		return peer_fail("lmdb: %s", mdb_strerror(ret));
	ret = mdb_dbi_open(txn, NULL, 0, &dbi);
	if (!ret)
		ret = mdb_cursor_open(txn, dbi, &c);
	if (ret) {
		mdb_txn_abort(txn);
		return peer_fail("lmdb: %s", mdb_strerror(ret));
	}
	peer_begin(o, mdb_stat(txn, dbi, &ms) == 0 ? ms.ms_entries : 0);
	MDB_val k, v;
	int rc = 0;
	while (rc == 0 && (ret = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
		rc = peer_emit(o, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
	if (rc == 0 && ret != MDB_NOTFOUND)
		rc = peer_fail("lmdb: read: %s", mdb_strerror(ret));
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc;
}

static int lmdb_read(const char *path, peer_out *o)
{
	unsigned flags = env_flags(path) | MDB_RDONLY;
	int ret;
	MDB_env *env = open_env(path, flags, &ret);
	if (!env && (ret == EACCES || ret == EROFS || ret == ENOENT))
		env = open_env(path, flags | MDB_NOLOCK, &ret); /* no lock file to be had */
	if (!env)
		return peer_fail("lmdb: %s", mdb_strerror(ret));
	int rc = walk(env, o);
	mdb_env_close(env);
	return rc;
}

typedef struct writer {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned pending;
	size_t maxkey;
} writer;

static int begin(writer *w)
{
	int ret = mdb_txn_begin(w->env, NULL, 0, &w->txn);
	if (!ret)
		ret = mdb_dbi_open(w->txn, NULL, 0, &w->dbi);
	if (ret) {
		if (w->txn)
			mdb_txn_abort(w->txn);
		w->txn = NULL;
		return peer_fail("lmdb: %s", mdb_strerror(ret));
	}
	w->pending = 0;
	return 0;
}

static int commit(writer *w)
{
	int ret = mdb_txn_commit(w->txn);
	w->txn = NULL;
	return ret ? peer_fail("lmdb: commit: %s", mdb_strerror(ret)) : 0;
}

static void *lmdb_wopen(const char *path, const char *variant)
{
	(void)variant;
	writer *w = calloc(1, sizeof *w);
	int ret;
	if (!w) {
		peer_fail("out of memory");
		return NULL;
	}
	w->env = open_env(path, env_flags(path), &ret);
	if (!w->env) {
		peer_fail("lmdb: %s", mdb_strerror(ret));
		free(w);
		return NULL;
	}
	w->maxkey = (size_t)mdb_env_get_maxkeysize(w->env);
	if (begin(w)) {
		mdb_env_close(w->env);
		free(w);
		return NULL;
	}
	return w;
}

static int lmdb_put(void *h, const void *k, size_t kn, const void *v, size_t vn)
{
	writer *w = h;
	if (kn > w->maxkey)
		return peer_skip("skipped a key of %zu bytes (LMDB keys are at most %zu bytes)", kn,
		                 w->maxkey);
	MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
	int ret = mdb_put(w->txn, w->dbi, &key, &val, 0);
	if (ret)
		return peer_fail("lmdb: put: %s", mdb_strerror(ret));
	if (++w->pending < WRITE_BATCH)
		return 0;
	return commit(w) || begin(w) ? -1 : 0;
}

static int lmdb_wclose(void *h, int ok)
{
	writer *w = h;
	int rc = 0;
	if (w->txn)
		rc = commit(w); /* what arrived is kept, as with the other formats */
	(void)ok;
	mdb_env_close(w->env);
	free(w);
	return rc;
}

const peer_ops peer_format = {"lmdb",   "LMDB environments", lmdb_read, lmdb_wopen,
                              lmdb_put, lmdb_wclose};
