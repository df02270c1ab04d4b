/*
 * ndbm.c - the POSIX ndbm interface (include/trove/ndbm.h) on Trove.
 *
 * Each DBM handle owns one Trove database (the directory file.trove),
 * opened with TROVE_SYNC_NONE and synced at dbm_close; keys and values
 * are stored as they are.  The handle keeps the storage behind the datums
 * it returns (the last fetched value, the last key of a walk) and a walk
 * that follows the handle's own writes.  It must never include anything
 * from src/engine/: trove.h and compat.h are all it knows.
 */
#include "trove/ndbm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"

enum { WALK_NONE, WALK_ACTIVE, WALK_DONE };

struct trove_dbm {
	compat_store st;
	compat_walk walk;
	int rdonly;
	int err;   /* the flag dbm_error reports */
	int state; /* WALK_*: where dbm_nextkey stands */
	void *key; /* the last key returned by firstkey/nextkey */
	size_t klen, kcap;
	void *val; /* the last value returned by fetch (from trove_get) */
};

static const datum no_datum = {NULL, 0};

/* Records a failure: raises the handle's flag and sets errno. */
static void fail(DBM *db, int err)
{
	db->err = 1;
	errno = err;
}

/* A key Trove can hold: present, 1 to TROVE_MAX_KEY bytes. */
static int key_ok(datum k)
{
	return k.dptr && k.dsize > 0 && k.dsize <= TROVE_MAX_KEY;
}

/* ---- Opening and closing ---------------------------------------------------- */

/* The body of dbm_open once the directory name is known; returns 0 or an
 * errno value. */
static int open_dir(DBM *db, const char *dir, int flags, mode_t mode)
{
	int acc = flags & O_ACCMODE;
	db->rdonly = acc == O_RDONLY;
	if (acc != O_RDONLY && acc != O_WRONLY && acc != O_RDWR)
		return EINVAL;
	if ((flags & O_TRUNC) && db->rdonly)
		return EINVAL;
	trove_options o;
	trove_options_init(&o);
	o.sync = (flags & (O_SYNC | O_DSYNC)) ? TROVE_SYNC_ALWAYS : TROVE_SYNC_NONE;
	int rc = compat_open(dir, !!(flags & O_CREAT), !!(flags & O_EXCL), db->rdonly, mode, &o,
	                     &db->st.db);
	if (!rc && (flags & O_TRUNC)) {
		rc = compat_delete_prefix(&db->st, NULL, 0, NULL);
		if (rc) {
			trove_close(db->st.db);
			db->st.db = NULL;
		}
	}
	return compat_errno(rc);
}

DBM *trove_dbm_open(const char *file, int open_flags, mode_t file_mode)
{
	if (!file) {
		errno = EINVAL;
		return NULL;
	}
	DBM *db = calloc(1, sizeof *db);
	char *dir = compat_dir_name(file);
	if (db) {
		atomic_init(&db->st.gen, 0);
		compat_walk_init(&db->walk, &db->st, NULL, 0);
	}
	int e = db && dir ? open_dir(db, dir, open_flags, file_mode) : ENOMEM;
	free(dir);
	if (e) {
		free(db);
		errno = e;
		return NULL;
	}
	return db;
}

void trove_dbm_close(DBM *db)
{
	if (!db)
		return;
	int saved = errno;
	compat_walk_reset(&db->walk);
	if (!db->rdonly)
		(void)trove_sync(db->st.db); /* nowhere to report a failure */
	(void)trove_close(db->st.db);
	trove_free(db->val);
	free(db->key);
	free(db);
	errno = saved;
}

/* ---- Reading and writing ------------------------------------------------------ */

datum trove_dbm_fetch(DBM *db, datum key)
{
	if (!key_ok(key)) {
		fail(db, EINVAL);
		return no_datum;
	}
	void *val;
	size_t len;
	int rc = trove_get(db->st.db, key.dptr, key.dsize, &val, &len);
	if (rc) {
		if (rc != TROVE_ENOTFOUND)
			fail(db, compat_errno(rc));
		return no_datum;
	}
	/* Freed only now: key.dptr may point into the previous value. */
	trove_free(db->val);
	db->val = val;
	datum d = {val, len};
	return d;
}

int trove_dbm_store(DBM *db, datum key, datum content, int store_mode)
{
	int rc;
	if (db->rdonly) {
		fail(db, EPERM);
		return -1;
	}
	if (!key_ok(key) || !content.dptr || content.dsize > TROVE_MAX_VALUE ||
	    (store_mode != DBM_INSERT && store_mode != DBM_REPLACE)) {
		fail(db, EINVAL);
		return -1;
	}
	if (store_mode == DBM_INSERT)
		rc = trove_put_if_absent(db->st.db, key.dptr, key.dsize, content.dptr,
		                         content.dsize);
	else
		rc = trove_put(db->st.db, key.dptr, key.dsize, content.dptr, content.dsize);
	if (rc == TROVE_EEXIST)
		return 1;
	if (rc) {
		fail(db, compat_errno(rc));
		return -1;
	}
	compat_store_bump(&db->st);
	return 0;
}

int trove_dbm_delete(DBM *db, datum key)
{
	if (db->rdonly) {
		fail(db, EPERM);
		return -1;
	}
	if (!key_ok(key)) {
		fail(db, EINVAL);
		return -1;
	}
	int rc = trove_del_if_exists(db->st.db, key.dptr, key.dsize);
	if (rc == TROVE_ENOTFOUND)
		return -1; /* absent: a failure, but not an error */
	if (rc) {
		fail(db, compat_errno(rc));
		return -1;
	}
	compat_store_bump(&db->st);
	return 0;
}

/* ---- Walking the keys --------------------------------------------------------- */

/* Keeps a copy of k as the walk's position and returns it as a datum
 * owned by db. */
static datum keep_key(DBM *db, const void *k, size_t len)
{
	if (len + 1 > db->kcap) {
		size_t cap = len + 1 > 2 * db->kcap ? len + 1 : 2 * db->kcap;
		void *p = realloc(db->key, cap);
		if (!p) {
			db->state = WALK_DONE;
			fail(db, ENOMEM);
			return no_datum;
		}
		db->key = p;
		db->kcap = cap;
	}
	memcpy(db->key, k, len);
	((char *)db->key)[len] = '\0';
	db->klen = len;
	db->state = WALK_ACTIVE;
	datum d = {db->key, len};
	return d;
}

/* The generic step: the first key (pos COMPAT_FIRST) or the one after the
 * last returned (COMPAT_GT). */
static datum walk_step(DBM *db, compat_pos pos)
{
	const void *k, *v;
	size_t klen, vlen;
	int rc = compat_walk_pos(&db->walk, pos, db->key, db->klen, &k, &klen, &v, &vlen);
	if (rc == 0)
		return keep_key(db, k, klen);
	db->state = WALK_DONE;
	compat_walk_reset(&db->walk); /* let go of the snapshot */
	if (rc != TROVE_ENOTFOUND)
		fail(db, compat_errno(rc));
	return no_datum;
}

datum trove_dbm_firstkey(DBM *db)
{
	return walk_step(db, COMPAT_FIRST);
}

datum trove_dbm_nextkey(DBM *db)
{
	if (db->state != WALK_ACTIVE)
		return no_datum;
	return walk_step(db, COMPAT_GT);
}

/* ---- Error state ------------------------------------------------------------------ */

int trove_dbm_error(DBM *db)
{
	return db->err;
}

int trove_dbm_clearerr(DBM *db)
{
	db->err = 0;
	return 0;
}

int trove_dbm_rdonly(DBM *db)
{
	return db->rdonly;
}
