/*
 * gdbm.c - trove-peer-gdbm: GDBM files through libgdbm.
 *
 * Reading walks gdbm_firstkey/gdbm_nextkey and fetches each value (GDBM
 * hands back malloc'd copies); the file is opened as a reader, so GDBM's
 * own lock keeps a writer out meanwhile.  Writing opens with GDBM_WRCREAT
 * and stores with GDBM_REPLACE, so an existing file is merged into.
 */
#include <gdbm.h>
#include <stdlib.h>

#include "peer.h"

static int gdbm_read(const char *path, peer_out *o)
{
	GDBM_FILE db = gdbm_open(path, 0, GDBM_READER, 0, NULL);
	if (!db)
		return peer_fail("gdbm: %s", gdbm_strerror(gdbm_errno));
	gdbm_count_t n;
	peer_begin(o, gdbm_count(db, &n) == 0 ? (uint64_t)n : 0);
	int rc = 0;
	datum k = gdbm_firstkey(db);
	while (k.dptr && rc == 0) {
		datum v = gdbm_fetch(db, k);
		if (!v.dptr) {
			rc = peer_fail("gdbm: fetch: %s", gdbm_db_strerror(db));
		} else {
			rc = peer_emit(o, k.dptr, (size_t)k.dsize, v.dptr, (size_t)v.dsize);
			free(v.dptr);
		}
		datum next = rc ? (datum){NULL, 0} : gdbm_nextkey(db, k);
		free(k.dptr);
		k = next;
	}
	if (rc == 0 && gdbm_last_errno(db) != GDBM_NO_ERROR &&
	    gdbm_last_errno(db) != GDBM_ITEM_NOT_FOUND)
		rc = peer_fail("gdbm: %s", gdbm_db_strerror(db));
	free(k.dptr);
	gdbm_close(db);
	return rc;
}

static void *gdbm_wopen(const char *path, const char *variant)
{
	(void)variant;
	GDBM_FILE db = gdbm_open(path, 0, GDBM_WRCREAT, 0644, NULL);
	if (!db)
		peer_fail("gdbm: %s", gdbm_strerror(gdbm_errno));
	return db;
}

static int gdbm_put(void *h, const void *k, size_t kn, const void *v, size_t vn)
{
	datum key = {(char *)k, (int)kn}, val = {(char *)v, (int)vn};
	if (gdbm_store(h, key, val, GDBM_REPLACE) != 0)
		return peer_fail("gdbm: store: %s", gdbm_db_strerror(h));
	return 0;
}

static int gdbm_wclose(void *h, int ok)
{
	int rc = 0;
	if (gdbm_sync(h) != 0)
		rc = peer_fail("gdbm: sync: %s", gdbm_db_strerror(h));
	if (gdbm_close(h) != 0 && rc == 0)
		rc = peer_fail("gdbm: close: %s", gdbm_strerror(gdbm_errno));
	(void)ok;
	return rc;
}

const peer_ops peer_format = {"gdbm", "GDBM files", gdbm_read, gdbm_wopen, gdbm_put, gdbm_wclose};
