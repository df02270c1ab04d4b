/*
 * ndbm.c - trove-peer-ndbm: ndbm databases (NAME.dir + NAME.pag) through
 * GDBM's ndbm compatibility library, libgdbm_compat.
 *
 * The database is named without its suffixes, as dbm_open wants; a path
 * ending in .pag or .dir is taken as the name of the pair.  Reading walks
 * dbm_firstkey/dbm_nextkey with dbm_fetch (the datums are the library's,
 * valid until the next call, so they are sent at once); writing stores
 * with DBM_REPLACE.
 */
#include <errno.h>
#include <fcntl.h>
#include <gdbm-ndbm.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"

/* path without a .pag or .dir suffix, in buf. */
static const char *base_name(const char *path, char *buf, size_t cap)
{
	size_t n = strlen(path);
	if (n > 4 && (!strcmp(path + n - 4, ".pag") || !strcmp(path + n - 4, ".dir")))
		n -= 4;
	snprintf(buf, cap, "%.*s", (int)n, path);
	return buf;
}

static int ndbm_read(const char *path, peer_out *o)
{
	char base[PATH_MAX];
	errno = 0;
	DBM *db = dbm_open((char *)base_name(path, base, sizeof base), O_RDONLY, 0);
	if (!db)
		return peer_fail("ndbm: %s", errno ? strerror(errno) : "cannot open");
	peer_begin(o, 0);
	int rc = 0;
	for (datum k = dbm_firstkey(db); k.dptr && rc == 0; k = dbm_nextkey(db)) {
		datum v = dbm_fetch(db, k);
		if (!v.dptr)
			rc = peer_fail("ndbm: a key the walk returned cannot be fetched");
		else
			rc = peer_emit(o, k.dptr, (size_t)k.dsize, v.dptr, (size_t)v.dsize);
	}
	if (rc == 0 && dbm_error(db))
		rc = peer_fail("ndbm: read error");
	dbm_close(db);
	return rc;
}

static void *ndbm_wopen(const char *path, const char *variant)
{
	char base[PATH_MAX];
	(void)variant;
	errno = 0;
	DBM *db = dbm_open((char *)base_name(path, base, sizeof base), O_RDWR | O_CREAT, 0644);
	if (!db)
		peer_fail("ndbm: %s", errno ? strerror(errno) : "cannot open");
	return db;
}

static int ndbm_put(void *h, const void *k, size_t kn, const void *v, size_t vn)
{
	datum key = {(char *)k, (int)kn}, val = {(char *)v, (int)vn};
	if (dbm_store(h, key, val, DBM_REPLACE) != 0)
		return peer_fail("ndbm: store failed");
	return 0;
}

static int ndbm_wclose(void *h, int ok)
{
	(void)ok;
	int bad = dbm_error((DBM *)h);
	dbm_close(h); /* syncs the GDBM file underneath */
	return bad ? peer_fail("ndbm: write error") : 0;
}

const peer_ops peer_format = {"ndbm",     "ndbm databases", ndbm_read,
                              ndbm_wopen, ndbm_put,         ndbm_wclose};
