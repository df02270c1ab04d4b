/*
 * compat.h - what the ndbm and Berkeley-DB-style faces share.
 *
 * Both faces map a file name onto a Trove database directory, turn Trove's
 * error codes into errno values, empty a database on request, and walk
 * keys with a cursor that follows the writes made through the face.  These
 * helpers sit on include/trove.h alone, like the faces themselves.
 */
#ifndef TROVE_COMPAT_H
#define TROVE_COMPAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "trove.h"

/* The suffix that turns a dbm or DB file name into a Trove directory. */
#define COMPAT_SUFFIX ".trove"

/* A Trove database as the faces use it: the handle, and a generation that
 * every write made through a face bumps.  The faces own the directory's
 * lock, so no write can reach the database without passing here; a walk
 * whose generation is current may therefore keep its cursor (and the
 * snapshot under it) instead of opening a new one. */
typedef struct compat_store {
	trove_db *db;
	atomic_uint_fast64_t gen;
} compat_store;

/* Notes that the database changed (call after every successful write). */
static inline void compat_store_bump(compat_store *st)
{
	atomic_fetch_add_explicit(&st->gen, 1, memory_order_release);
}

/* file + COMPAT_SUFFIX in a malloc'd string, or NULL (ENOMEM). */
char *compat_dir_name(const char *file);

/* Creates directory dir with the permission bits of a file mode: each
 * class that may read also gets search permission (0644 -> 0755), then
 * syncs the parent so that the new name survives a power loss.  Returns 0,
 * or an errno value (EEXIST if dir exists). */
int compat_mkdir(const char *dir, mode_t file_mode);

/* Opens the Trove database in directory dir for a face.  create: make it
 * if missing (the directory with compat_mkdir's mode rule); excl: with
 * create, TROVE_EEXIST if it exists; rdonly: a read-only handle (which
 * can still create an empty database first).  base gives the other
 * options (sync, memory budget).  Returns 0 or a Trove code; on failure a
 * directory it made is removed again. */
int compat_open(const char *dir, int create, int excl, int rdonly, mode_t file_mode,
                const trove_options *base, trove_db **out);

/* The errno value closest to a Trove error code (0 for 0). */
int compat_errno(int trove_rc);

/* Deletes every key starting with prefix (plen may be 0: every key) in
 * batches of bounded size.  *count (may be NULL) receives the number of
 * keys removed.  Not atomic as a whole: an error can leave part done. */
int compat_delete_prefix(compat_store *st, const void *prefix, size_t plen, uint64_t *count);

/* ---- Walks ------------------------------------------------------------------
 *
 * A walk answers "which key comes first/last, or just after/before this
 * one" over the keys under a prefix, always against the latest state the
 * faces wrote.  It keeps one trove cursor open while the store's
 * generation stays the same, so that a scan with no writes in between
 * moves the cursor instead of seeking; after a write it reopens the cursor
 * and seeks from the key it was given.
 */

typedef enum compat_pos {
	COMPAT_FIRST, /* the smallest key */
	COMPAT_LAST,  /* the largest key */
	COMPAT_GE,    /* the smallest key >= k */
	COMPAT_GT,    /* the smallest key > k */
	COMPAT_LE,    /* the largest key <= k */
	COMPAT_LT,    /* the largest key < k */
} compat_pos;

typedef struct compat_walk {
	compat_store *st;
	const void *prefix; /* borrowed; must outlive the walk */
	size_t plen;
	trove_cursor *cur;
	uint64_t gen;
} compat_walk;

void compat_walk_init(compat_walk *w, compat_store *st, const void *prefix, size_t plen);
/* Closes the cursor (the walk stays usable). */
void compat_walk_reset(compat_walk *w);

/* Positions the walk by pos relative to stored key k (ignored for FIRST
 * and LAST).  Returns 0 and sets *key, *klen, *val and *vlen (full stored
 * keys, prefix included; valid until the next call on the walk),
 * TROVE_ENOTFOUND when no key qualifies, or an error. */
int compat_walk_pos(compat_walk *w, compat_pos pos, const void *k, size_t klen, const void **key,
                    size_t *klen_out, const void **val, size_t *vlen);

/* Bytewise comparison, shorter first on ties (Trove's key order). */
int compat_keycmp(const void *a, size_t alen, const void *b, size_t blen);

#endif
