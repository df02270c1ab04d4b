/*
 * compat.c - helpers shared by the ndbm and Berkeley-DB-style faces.
 *
 * File names to directories, Trove codes to errno values, emptying a
 * database, and walks: ordered positioning that follows the faces' own
 * writes (see compat.h).  Like the faces, this file knows include/trove.h
 * and nothing of the engine behind it; it must never include a header of
 * src/engine/ nor keep global state.
 */
#include "compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *compat_dir_name(const char *file)
{
	size_t n = strlen(file), s = sizeof COMPAT_SUFFIX;
	char *p = malloc(n + s);
	if (p) {
		memcpy(p, file, n);
		memcpy(p + n, COMPAT_SUFFIX, s);
	}
	return p;
}

/* fsync the directory holding path, so that a new entry in it is
 * durable. */
static void sync_parent(const char *path)
{
	size_t n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		n--;
	while (n > 0 && path[n - 1] != '/')
		n--;
	char *parent = n ? strndup(path, n) : strdup(".");
	if (!parent)
		return;
	int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd); /* best effort: the engine syncs its own files */
		close(fd);
	}
	free(parent);
}

int compat_mkdir(const char *dir, mode_t file_mode)
{
	mode_t m = file_mode & 0777;
	m |= (m & 0444) >> 2; /* r-- -> r-x for each class */
	if (mkdir(dir, m) != 0)
		return errno;
	sync_parent(dir);
	return 0;
}

/* A mkdir errno as a Trove code. */
static int trove_code(int e)
{
	switch (e) {
	case 0:
		return 0;
	case EEXIST:
		return TROVE_EEXIST;
	case ENOENT:
	case ENOTDIR:
		return TROVE_ENOENT;
	case EACCES:
	case EPERM:
	case EROFS:
		return TROVE_EACCES;
	case ENOSPC:
		return TROVE_ENOSPC;
	case ENOMEM:
		return TROVE_ENOMEM;
	default:
		return TROVE_EIO;
	}
}

/* Removes directory dir that this call made, with the files a failed
 * open may have left in it (Trove's directories are flat). */
static void remove_new_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				(void)unlinkat(dirfd(d), e->d_name, 0);
		}
		closedir(d);
	}
	(void)rmdir(dir);
}

int compat_open(const char *dir, int create, int excl, int rdonly, mode_t file_mode,
                const trove_options *base, trove_db **out)
{
	int made = 0, rc = 0;
	if (create) {
		int e = compat_mkdir(dir, file_mode);
		if (e == 0)
			made = 1;
		else if (e != EEXIST || excl)
			return trove_code(e);
	}
	trove_options o = *base;
	o.read_only = rdonly;
	o.create_if_missing = create;
	if (made && rdonly) {
		/* A read-only open cannot create: make the empty database
		 * with a writer first. */
		trove_db *tmp;
		o.read_only = 0;
		rc = trove_open(dir, &o, &tmp);
		if (!rc)
			rc = trove_close(tmp);
		o.read_only = 1;
	}
	if (!rc) {
		o.create_if_missing = create && !rdonly;
		rc = trove_open(dir, &o, out);
	}
	if (rc && made)
		remove_new_dir(dir);
	return rc;
}

int compat_errno(int rc)
{
	switch (rc) {
	case TROVE_OK:
		return 0;
	case TROVE_ENOTFOUND:
	case TROVE_ENOENT:
		return ENOENT;
	case TROVE_EINVAL:
	case TROVE_ETOOBIG:
		return EINVAL;
	case TROVE_ENOMEM:
		return ENOMEM;
	case TROVE_ENOSPC:
		return ENOSPC;
	case TROVE_ELOCKED:
		return EWOULDBLOCK;
	case TROVE_EEXIST:
		return EEXIST;
	case TROVE_EREADONLY:
		return EPERM;
	case TROVE_EACCES:
		return EACCES;
	case TROVE_EBUSY:
		return EBUSY;
	case TROVE_ECONDITION:
		return EAGAIN;
	default: /* EIO, ECORRUPT, EVERSION, EBADDB */
		return EIO;
	}
}

int compat_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* ---- Emptying ------------------------------------------------------------ */

#define DELETE_BATCH 1024 /* deletes per atomic batch: bounded memory */

int compat_delete_prefix(compat_store *st, const void *prefix, size_t plen, uint64_t *count)
{
	trove_batch *b = trove_batch_new();
	if (!b)
		return TROVE_ENOMEM;
	uint64_t n = 0;
	void *after = NULL; /* the last key of the previous page */
	size_t alen = 0;
	int rc, more = 1;
	while (more) {
		trove_key_list l;
		rc = trove_list_keys(st->db, NULL, plen ? prefix : NULL, plen, after, alen,
		                     DELETE_BATCH, &l);
		if (rc)
			break;
		trove_batch_clear(b);
		for (size_t i = 0; i < l.count && !rc; i++)
			rc = trove_batch_del(b, l.keys[i], l.lens[i]);
		trove_write_result res = {0};
		if (!rc && l.count)
			rc = trove_write(st->db, b, &res);
		if (!rc && l.count) {
			n += (uint64_t)res.removed;
			compat_store_bump(st);
			free(after);
			alen = l.lens[l.count - 1];
			after = malloc(alen);
			if (after)
				memcpy(after, l.keys[l.count - 1], alen);
			else
				rc = TROVE_ENOMEM;
		}
		more = l.more && !rc;
		trove_key_list_free(&l);
		if (rc)
			break;
	}
	free(after);
	trove_batch_free(b);
	if (!rc && count)
		*count = n;
	return rc;
}

/* ---- Walks ------------------------------------------------------------------ */

void compat_walk_init(compat_walk *w, compat_store *st, const void *prefix, size_t plen)
{
	memset(w, 0, sizeof *w);
	w->st = st;
	w->prefix = plen ? prefix : NULL;
	w->plen = plen;
}

void compat_walk_reset(compat_walk *w)
{
	trove_cursor_close(w->cur);
	w->cur = NULL;
}

/* A cursor that sees every write made so far. */
static int walk_fresh(compat_walk *w)
{
	uint64_t gen = atomic_load_explicit(&w->st->gen, memory_order_acquire);
	if (w->cur && gen == w->gen)
		return 0;
	compat_walk_reset(w);
	trove_cursor_opts o = {0};
	o.prefix = w->prefix;
	o.prefix_len = w->plen;
	w->gen = gen;
	return trove_cursor_open(w->st->db, &o, &w->cur);
}

/* 1 if the cursor sits on k. */
static int walk_on(const compat_walk *w, const void *k, size_t klen)
{
	size_t n;
	const void *cur = trove_cursor_key(w->cur, &n);
	return cur && compat_keycmp(cur, n, k, klen) == 0;
}

static int walk_move(compat_walk *w, compat_pos pos, const void *k, size_t klen)
{
	trove_cursor *c = w->cur;
	int rc;
	if (klen == 0 && pos != COMPAT_FIRST && pos != COMPAT_LAST) {
		/* Nothing sorts below the empty key. */
		if (pos == COMPAT_LE || pos == COMPAT_LT)
			return TROVE_ENOTFOUND;
		pos = COMPAT_FIRST;
	}
	switch (pos) {
	case COMPAT_FIRST:
		return trove_cursor_first(c);
	case COMPAT_LAST:
		return trove_cursor_last(c);
	case COMPAT_GE:
		return trove_cursor_seek(c, k, klen);
	case COMPAT_GT:
		if (walk_on(w, k, klen)) /* the common step of a scan */
			return trove_cursor_next(c);
		rc = trove_cursor_seek(c, k, klen);
		if (rc == 0 && walk_on(w, k, klen))
			rc = trove_cursor_next(c);
		return rc;
	case COMPAT_LE:
		return trove_cursor_seek_for_prev(c, k, klen);
	case COMPAT_LT:
		if (walk_on(w, k, klen))
			return trove_cursor_prev(c);
		rc = trove_cursor_seek_for_prev(c, k, klen);
		if (rc == 0 && walk_on(w, k, klen))
			rc = trove_cursor_prev(c);
		return rc;
	}
	return TROVE_EINVAL;
}

int compat_walk_pos(compat_walk *w, compat_pos pos, const void *k, size_t klen, const void **key,
                    size_t *klen_out, const void **val, size_t *vlen)
{
	int rc = walk_fresh(w);
	if (rc)
		return rc;
	rc = walk_move(w, pos, k, klen);
	if (rc)
		return rc;
	*key = trove_cursor_key(w->cur, klen_out);
	*val = trove_cursor_value(w->cur, vlen);
	return 0;
}
