/*
 * ndbm_gdbm.c - GDBM's ndbm (libgdbm_compat) behind ndbm_peer.h.
 *
 * The only file of the tests that includes GDBM's <ndbm.h>.  It converts
 * between GDBM's datum (char *, int) and plain pointers and lengths, and
 * compiles ndbm_classic.h's program a second time, against GDBM, so that
 * test_ndbm can check that the same source gives the same transcript on
 * both.  It must never include a Trove header.
 */
#include <ndbm.h>

#include "ndbm_peer.h"

#include "ndbm_classic.h"

static DBM *D(peer_ndbm *p)
{
	return (DBM *)p;
}

static datum mk(const void *p, size_t n)
{
	datum d;
	d.dptr = (char *)p;
	d.dsize = (int)n;
	return d;
}

peer_ndbm *peer_ndbm_open(char *file, int flags, int mode)
{
	return (peer_ndbm *)dbm_open(file, flags, mode);
}

void peer_ndbm_close(peer_ndbm *p)
{
	dbm_close(D(p));
}

int peer_ndbm_fetch(peer_ndbm *p, const void *k, size_t klen, const void **v, size_t *vlen)
{
	datum d = dbm_fetch(D(p), mk(k, klen));
	if (!d.dptr)
		return 0;
	*v = d.dptr;
	*vlen = (size_t)d.dsize;
	return 1;
}

int peer_ndbm_store(peer_ndbm *p, const void *k, size_t klen, const void *v, size_t vlen,
                    int replace)
{
	return dbm_store(D(p), mk(k, klen), mk(v, vlen), replace ? DBM_REPLACE : DBM_INSERT);
}

int peer_ndbm_delete(peer_ndbm *p, const void *k, size_t klen)
{
	return dbm_delete(D(p), mk(k, klen));
}

static int key_out(datum d, const void **k, size_t *klen)
{
	if (!d.dptr)
		return 0;
	*k = d.dptr;
	*klen = (size_t)d.dsize;
	return 1;
}

int peer_ndbm_firstkey(peer_ndbm *p, const void **k, size_t *klen)
{
	return key_out(dbm_firstkey(D(p)), k, klen);
}

int peer_ndbm_nextkey(peer_ndbm *p, const void **k, size_t *klen)
{
	return key_out(dbm_nextkey(D(p)), k, klen);
}

int peer_ndbm_error(peer_ndbm *p)
{
	return dbm_error(D(p));
}

void peer_ndbm_clearerr(peer_ndbm *p)
{
	dbm_clearerr(D(p));
}

int peer_ndbm_classic(char *file, FILE *out)
{
	return classic(file, out);
}
