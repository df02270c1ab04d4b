/*
 * ndbm_peer.h - GDBM's ndbm, the reference for test_ndbm's differential
 * test, behind names and types of its own.
 *
 * GDBM's <ndbm.h> and <trove/ndbm.h> both define datum, DBM and
 * DBM_INSERT, so no file can include both.  ndbm_gdbm.c includes GDBM's
 * header alone and exports these wrappers; test_ndbm.c includes Trove's
 * alone and calls them.  The symbols do not clash at link time because
 * Trove's header renames its functions (dbm_open is trove_dbm_open).
 */
#ifndef NDBM_PEER_H
#define NDBM_PEER_H

#include <stddef.h>
#include <stdio.h>

typedef struct peer_ndbm peer_ndbm;

/* dbm_open(file, flags, mode), or NULL with errno set. */
peer_ndbm *peer_ndbm_open(char *file, int flags, int mode);
void peer_ndbm_close(peer_ndbm *p);
/* 1 and the value (owned by GDBM until the next call) if key is there,
 * 0 if not. */
int peer_ndbm_fetch(peer_ndbm *p, const void *k, size_t klen, const void **v, size_t *vlen);
/* dbm_store with DBM_REPLACE if replace, else DBM_INSERT. */
int peer_ndbm_store(peer_ndbm *p, const void *k, size_t klen, const void *v, size_t vlen,
                    int replace);
int peer_ndbm_delete(peer_ndbm *p, const void *k, size_t klen);
/* 1 and the key (owned by GDBM) if there is one, 0 at the end. */
int peer_ndbm_firstkey(peer_ndbm *p, const void **k, size_t *klen);
int peer_ndbm_nextkey(peer_ndbm *p, const void **k, size_t *klen);
int peer_ndbm_error(peer_ndbm *p);
void peer_ndbm_clearerr(peer_ndbm *p);

/* ndbm_classic.h's program, compiled against GDBM's header. */
int peer_ndbm_classic(char *file, FILE *out);

#endif
