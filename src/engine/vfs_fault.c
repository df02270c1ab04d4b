/*
 * vfs_fault.c - a VFS for tests that fails chosen calls and can rewind
 * the disk to what a machine that lost power would show (see vfs.h).
 *
 * It wraps a base VFS and passes every call through, keeping two records
 * on the side.  For each file written through it, the length known to be
 * durable (its size when first opened, or when last synced), and for a
 * file opened TV_OPEN_ZEROED, whose appends overwrite zeros the base
 * wrote ahead of them, the size of the file then as well.  For each
 * directory, a journal of the entry changes (creations, renames, removals)
 * made since its last sync_dir.  A removal, or a rename over an existing
 * file, does not destroy the old file: it is moved aside to a hidden name
 * (".fault-N" in the same directory, left out of listings) and only
 * deleted once the directory is synced, so that tv_fault_power_loss can
 * put it back.
 *
 * Armed faults (tv_fault_arm) count calls per kind of operation and fail
 * the chosen one.  A CRASH makes every later call fail without touching
 * the disk, as if the process had died at that instant; close still frees
 * what it must.  A power loss also kills every file handle opened before
 * it: their calls fail with TROVE_EIO from then on.
 *
 * One mutex guards everything and is held across each call into the base
 * VFS, so a fault or a crash lands at one exact point of a total order of
 * calls.  It is never held while calling back into the user (list_dir).
 * This module must never lose or change a byte the engine synced, nor
 * leave a hidden file behind once tv_fault_free or a sync made it moot.
 * The base must store real files: the rewinding goes through it, by name.
 */
#include "vfs.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/grow.h"

#define HIDDEN_PREFIX ".fault-"
#define HIDDEN_CUT HIDDEN_PREFIX "cut" /* scratch file of power loss */

/* A file written through the fault VFS. */
typedef struct fnode {
	char *path;      /* its current name (normalized); NULL once deleted */
	uint64_t synced; /* bytes known durable */
	/* Opened TV_OPEN_ZEROED: the file's size when synced (`synced` is
	 * then the bytes appended), zeros from `synced` on. */
	int zeroed;
	uint64_t zeroed_size;
} fnode;

typedef enum change_kind {
	CH_CREATE, /* a new file: undone by removing it */
	CH_MKDIR,  /* a new directory: undone by removing its whole tree */
	CH_RENAME, /* undone by renaming back (and restoring any victim) */
	CH_REMOVE, /* undone by bringing the hidden file back */
} change_kind;

/* One directory change not yet made durable. */
typedef struct change {
	change_kind kind;
	char *path;    /* the name created, removed, or renamed to */
	char *from;    /* CH_RENAME: the old name */
	char *hidden;  /* CH_REMOVE, CH_RENAME over a file: the old file */
	char *dirs[2]; /* directories still to sync before it is durable */
} change;

typedef struct armed {
	uint64_t at; /* the call number (counts[op]) that fails */
	tv_fault_kind kind;
	int sticky;
} armed;

struct tv_fault {
	trove_vfs vfs; /* handed out by tv_fault_vfs; ctx points back here */
	trove_vfs *base;
	pthread_mutex_t mu;
	uint64_t counts[TV_FAULT_NOPS];
	armed armed[TV_FAULT_NOPS];
	int crashed;
	uint64_t epoch;      /* power losses so far */
	uint64_t rng;        /* xorshift state for garbage bytes */
	uint64_t hidden_seq; /* numbers hidden names */
	fnode **nodes;       /* written files, stable pointers */
	size_t nnodes, capnodes;
	change *journal; /* in the order made */
	size_t nchanges, capchanges;
};

typedef struct fault_file {
	struct tv_file base; /* must stay first */
	tv_fault *fault;
	tv_file *inner; /* the base VFS's file */
	fnode *node;    /* NULL unless opened for writing */
	int is_lock;
	uint64_t epoch; /* the power-loss epoch it was opened in */
} fault_file;

static int fault_open(trove_vfs *vfs, const char *path, int flags, tv_file **out);

static tv_fault *fault_of(trove_vfs *vfs)
{
	assert(vfs != NULL && vfs->open == fault_open);
	tv_fault *f = vfs->ctx;
	assert(&f->vfs == vfs);
	return f;
}

/* The fault_file behind file, which must have been opened by a fault VFS. */
static fault_file *ffile(tv_file *file)
{
	assert(file != NULL && file->vfs->open == fault_open);
	return (fault_file *)file;
}

/* ---- Small helpers -------------------------------------------------- */

static uint64_t rng_next(tv_fault *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545f4914f6cdd1dull;
}

/* Flips some bits of the byte at p: garbage guaranteed to differ. */
static void garble(tv_fault *f, unsigned char *p)
{
	*p ^= (unsigned char)(1 + rng_next(f) % 255);
}

/* A malloc'd copy of path with "//", "/./" and a trailing "/" folded away,
 * so two spellings of one name compare equal.  ".." is kept as is. */
static char *norm_path(const char *path)
{
	char *out = malloc(strlen(path) + 2);
	if (!out)
		return NULL;
	size_t o = 0;
	const char *p = path;
	if (*p == '/')
		out[o++] = '/';
	while (*p) {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - s);
		if (len == 0 || (len == 1 && s[0] == '.'))
			continue;
		if (o > 0 && out[o - 1] != '/')
			out[o++] = '/';
		memcpy(out + o, s, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return out;
}

/* The directory of normalized path np, malloc'd. */
static char *dir_of(const char *np)
{
	const char *slash = strrchr(np, '/');
	if (!slash)
		return strdup(".");
	if (slash == np)
		return strdup("/");
	return strndup(np, (size_t)(slash - np));
}

/* dir/name, malloc'd. */
static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* A fresh hidden name in np's directory, malloc'd; NULL on ENOMEM. */
static char *hidden_name(tv_fault *f, const char *np)
{
	char *dir = dir_of(np);
	char *h = NULL;
	while (dir) {
		char name[40];
		snprintf(name, sizeof name, HIDDEN_PREFIX "%llu",
		         (unsigned long long)++f->hidden_seq);
		h = join(dir, name);
		if (!h || f->base->exists(f->base, h) != 0)
			break; /* free, or unknowable: the rename will tell */
		free(h);       /* left by someone else: try the next number */
	}
	free(dir);
	return h;
}

/* A growable list of names, filled by list_dir. */
typedef struct name_list {
	char **v;
	size_t n, cap;
} name_list;

static int name_add(void *arg, const char *name)
{
	name_list *l = arg;
	if (tv_grow(&l->v, &l->cap, l->n + 1, sizeof *l->v, 16))
		return TROVE_ENOMEM;
	if (!(l->v[l->n] = strdup(name)))
		return TROVE_ENOMEM;
	l->n++;
	return 0;
}

static void names_free(name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* ---- Faults --------------------------------------------------------- */

/* Counts a call of op and says how it must fail (TV_FAULT_NONE: it runs).
 * Once crashed, every call fails as TV_FAULT_CRASH.  f->mu held. */
static tv_fault_kind fault_take(tv_fault *f, tv_fault_op op)
{
	assert(op < TV_FAULT_NOPS);
	uint64_t n = ++f->counts[op];
	if (f->crashed)
		return TV_FAULT_CRASH;
	armed *a = &f->armed[op];
	if (a->kind == TV_FAULT_NONE || n < a->at)
		return TV_FAULT_NONE;
	assert(n == a->at || a->sticky); /* one-shot faults disarm on firing */
	tv_fault_kind k = a->kind;
	if (!a->sticky)
		a->kind = TV_FAULT_NONE;
	if (k == TV_FAULT_CRASH)
		f->crashed = 1;
	return k;
}

/* fault_take for a call on an open file: a file from before the last
 * power loss fails as if crashed. */
static tv_fault_kind file_take(fault_file *ff, tv_fault_op op)
{
	tv_fault_kind k = fault_take(ff->fault, op);
	return ff->epoch != ff->fault->epoch ? TV_FAULT_CRASH : k;
}

/* The error a call failing as k returns (SHORT and TORN only write
 * something in append; elsewhere they are plain ENOSPC and EIO). */
static int kind_err(tv_fault_kind k)
{
	assert(k != TV_FAULT_NONE);
	return (k == TV_FAULT_ENOSPC || k == TV_FAULT_SHORT) ? TROVE_ENOSPC : TROVE_EIO;
}

/* For calls no fault is armed on: they fail only once crashed. */
static int crash_err(const tv_fault *f)
{
	return f->crashed ? TROVE_EIO : 0;
}

/* ---- The record of written files ------------------------------------- */

static fnode *node_find(tv_fault *f, const char *np)
{
	for (size_t i = 0; i < f->nnodes; i++)
		if (f->nodes[i]->path && !strcmp(f->nodes[i]->path, np))
			return f->nodes[i];
	return NULL;
}

/* A node for np ready to be added with node_add, which cannot fail. */
static fnode *node_prepare(tv_fault *f, const char *np)
{
	if (tv_grow(&f->nodes, &f->capnodes, f->nnodes + 1, sizeof *f->nodes, 16))
		return NULL;
	fnode *n = calloc(1, sizeof *n);
	if (n && !(n->path = strdup(np))) {
		free(n);
		n = NULL;
	}
	return n;
}

static void node_add(tv_fault *f, fnode *n)
{
	assert(f->nnodes < f->capnodes);
	f->nodes[f->nnodes++] = n;
}

static void node_free(fnode *n)
{
	if (n) {
		free(n->path);
		free(n);
	}
}

/* A node's rename, prepared before the base call so that nothing can
 * fail after it. */
typedef struct node_move {
	fnode *node; /* NULL: the name has no node, nothing to do */
	char *path;
} node_move;

static int move_prepare(tv_fault *f, node_move *m, const char *from, const char *to)
{
	m->node = node_find(f, from);
	m->path = m->node ? strdup(to) : NULL;
	return (m->node && !m->path) ? TROVE_ENOMEM : 0;
}

static void move_commit(node_move *m)
{
	if (m->node) {
		free(m->node->path);
		m->node->path = m->path;
	}
}

/* ---- The journal of directory changes -------------------------------- */

/* Frees c's strings and leaves it empty (freeing it again is harmless). */
static void change_free(change *c)
{
	free(c->path);
	free(c->from);
	free(c->hidden);
	free(c->dirs[0]);
	free(c->dirs[1]);
	memset(c, 0, sizeof *c);
}

/* Fills *c for a change of kind to normalized path np (and from nfrom,
 * for renames), with a slot reserved in the journal so that journal_push
 * cannot fail.  On error *c needs no freeing. */
static int change_prepare(tv_fault *f, change *c, change_kind kind, const char *np,
                          const char *nfrom)
{
	memset(c, 0, sizeof *c);
	if (tv_grow(&f->journal, &f->capchanges, f->nchanges + 1, sizeof *f->journal, 16))
		return TROVE_ENOMEM;
	c->kind = kind;
	c->path = strdup(np);
	c->dirs[0] = dir_of(np);
	int ok = c->path && c->dirs[0];
	if (ok && nfrom) {
		c->from = strdup(nfrom);
		c->dirs[1] = dir_of(nfrom);
		ok = c->from && c->dirs[1];
		if (ok && !strcmp(c->dirs[0], c->dirs[1])) {
			free(c->dirs[1]); /* one directory to sync, not two */
			c->dirs[1] = NULL;
		}
	}
	if (!ok) {
		change_free(c);
		return TROVE_ENOMEM;
	}
	return 0;
}

static void journal_push(tv_fault *f, const change *c)
{
	assert(f->nchanges < f->capchanges);
	f->journal[f->nchanges++] = *c;
}

/* Forgets the old file a durable change left hidden: deletes it and its
 * node.  A failure to delete only leaves a hidden file behind, which
 * listings skip, so it is not reported. */
static void drop_hidden(tv_fault *f, const char *hidden)
{
	f->base->remove(f->base, hidden);
	fnode *n = node_find(f, hidden);
	if (n) {
		free(n->path);
		n->path = NULL; /* open handles may still point at it */
	}
}

/* Marks normalized directory ndir synced: changes waiting only for it
 * become durable and leave the journal. */
static void journal_settle(tv_fault *f, const char *ndir)
{
	size_t kept = 0;
	for (size_t i = 0; i < f->nchanges; i++) {
		change *c = &f->journal[i];
		for (int j = 0; j < 2; j++) {
			if (c->dirs[j] && !strcmp(c->dirs[j], ndir)) {
				free(c->dirs[j]);
				c->dirs[j] = NULL;
			}
		}
		if (c->dirs[0] || c->dirs[1]) {
			f->journal[kept++] = *c;
			continue;
		}
		if (c->hidden)
			drop_hidden(f, c->hidden);
		change_free(c);
	}
	f->nchanges = kept;
}

/* ---- Files ---------------------------------------------------------- */

/* Wraps inner (opened by the base) in ff, which the caller allocated. */
static tv_file *wrap(tv_fault *f, fault_file *ff, tv_file *inner, fnode *node)
{
	ff->base.vfs = &f->vfs;
	ff->fault = f;
	ff->inner = inner;
	ff->node = node;
	ff->epoch = f->epoch;
	return &ff->base;
}

/* Opens path for appending and records what it means for durability:
 * a file that did not exist is a directory change; one seen for the
 * first time is durable at its size; a truncation counts as durable at
 * once (the old bytes are not kept).  f->mu held. */
static int open_for_write(tv_fault *f, const char *path, int flags, tv_file **out)
{
	char *np = norm_path(path);
	fault_file *ff = calloc(1, sizeof *ff);
	change c = {.path = NULL};
	fnode *fresh = NULL;
	int rc = (np && ff) ? f->base->exists(f->base, path) : TROVE_ENOMEM;
	int created = rc == TROVE_ENOENT;
	if (created)
		rc = change_prepare(f, &c, CH_CREATE, np, NULL);
	fnode *node = rc == 0 ? node_find(f, np) : NULL;
	if (rc == 0 && !node && !(node = fresh = node_prepare(f, np)))
		rc = TROVE_ENOMEM;

	/* Appends go to the base file as write(2)s: what a simulated crash
	 * keeps is modelled on them, not on a mapping's zero tail.  Appends
	 * over zeros written ahead are modelled as such (see cut_zeroed). */
	tv_file *inner = NULL;
	if (rc == 0)
		rc = f->base->open(f->base, path, flags & ~TV_OPEN_MAPPED, &inner);
	uint64_t size = 0;
	if (rc == 0 && fresh && !created && !(flags & TV_OPEN_TRUNCATE)) {
		rc = f->base->size(inner, &size);
		if (rc != 0)
			f->base->close(inner);
	}
	if (rc != 0) {
		change_free(&c);
		node_free(fresh);
		free(ff);
		free(np);
		return rc;
	}
	if (created)
		journal_push(f, &c);
	if (fresh)
		node_add(f, fresh);
	if (created || fresh || (flags & TV_OPEN_TRUNCATE))
		node->synced = node->zeroed_size = size;
	node->zeroed = (flags & TV_OPEN_ZEROED) != 0;
	free(np);
	*out = wrap(f, ff, inner, node);
	return 0;
}

/* Opens path for reading: passed through, nothing to record. */
static int open_for_read(tv_fault *f, const char *path, int flags, tv_file **out)
{
	fault_file *ff = calloc(1, sizeof *ff);
	if (!ff)
		return TROVE_ENOMEM;
	tv_file *inner;
	int rc = f->base->open(f->base, path, flags, &inner);
	if (rc != 0) {
		free(ff);
		return rc;
	}
	*out = wrap(f, ff, inner, NULL);
	return 0;
}

/* Only opens for writing count as TV_FAULT_OPEN. */
static int fault_open(trove_vfs *vfs, const char *path, int flags, tv_file **out)
{
	tv_fault *f = fault_of(vfs);
	pthread_mutex_lock(&f->mu);
	int rc;
	if (!(flags & TV_OPEN_APPEND)) {
		rc = crash_err(f);
		if (rc == 0)
			rc = open_for_read(f, path, flags, out);
	} else {
		tv_fault_kind k = fault_take(f, TV_FAULT_OPEN);
		rc = k ? kind_err(k) : open_for_write(f, path, flags, out);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fault_read(tv_file *file, uint64_t off, void *buf, size_t n, size_t *got)
{
	fault_file *ff = ffile(file);
	tv_fault *f = ff->fault;
	pthread_mutex_lock(&f->mu);
	tv_fault_kind k = file_take(ff, TV_FAULT_READ);
	int rc = k ? kind_err(k) : f->base->read(ff->inner, off, buf, n, got);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Appends the first half of buf with the second half of that garbled, as
 * a write torn by a crash may leave it; always fails with TROVE_EIO. */
static int torn_append(tv_fault *f, fault_file *ff, const void *buf, size_t n)
{
	size_t half = n / 2;
	unsigned char *copy = malloc(half ? half : 1);
	if (!copy)
		return TROVE_EIO;
	memcpy(copy, buf, half);
	for (size_t i = half / 2; i < half; i++)
		garble(f, &copy[i]);
	f->base->append(ff->inner, copy, half);
	free(copy);
	return TROVE_EIO;
}

static int fault_append(tv_file *file, const void *buf, size_t n)
{
	fault_file *ff = ffile(file);
	tv_fault *f = ff->fault;
	pthread_mutex_lock(&f->mu);
	int rc;
	tv_fault_kind k = file_take(ff, TV_FAULT_WRITE);
	if (k == TV_FAULT_NONE) {
		rc = f->base->append(ff->inner, buf, n);
	} else if (k == TV_FAULT_SHORT) {
		rc = f->base->append(ff->inner, buf, n / 2);
		rc = rc ? rc : TROVE_ENOSPC;
	} else if (k == TV_FAULT_TORN) {
		rc = torn_append(f, ff, buf, n);
	} else {
		rc = kind_err(k); /* nothing written */
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* After a successful sync the file's whole current size is durable (for
 * a zeroed file: what was appended, and the zeros after it). */
static int fault_sync(tv_file *file)
{
	fault_file *ff = ffile(file);
	tv_fault *f = ff->fault;
	pthread_mutex_lock(&f->mu);
	tv_fault_kind k = file_take(ff, TV_FAULT_SYNC);
	int rc = k ? kind_err(k) : f->base->sync(ff->inner);
	fnode *node = ff->node;
	if (rc == 0 && node && node->path) {
		uint64_t size, zsize = 0;
		rc = f->base->size(ff->inner, &size);
		if (rc == 0 && node->zeroed)
			rc = f->base->file_size(f->base, node->path, &zsize);
		if (rc == 0) {
			node->synced = size;
			node->zeroed_size = zsize;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fault_size(tv_file *file, uint64_t *out)
{
	fault_file *ff = ffile(file);
	tv_fault *f = ff->fault;
	pthread_mutex_lock(&f->mu);
	int rc = (f->crashed || ff->epoch != f->epoch) ? TROVE_EIO : f->base->size(ff->inner, out);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Really closes (or unlocks) the base file and frees file in every case;
 * a dead file (crashed, or from before a power loss) reports TROVE_EIO. */
static int fault_close(tv_file *file)
{
	fault_file *ff = ffile(file);
	tv_fault *f = ff->fault;
	pthread_mutex_lock(&f->mu);
	int rc = ff->is_lock ? f->base->unlock(ff->inner) : f->base->close(ff->inner);
	if (f->crashed || ff->epoch != f->epoch)
		rc = TROVE_EIO;
	pthread_mutex_unlock(&f->mu);
	free(ff);
	return rc;
}

/* ---- Names and directories ------------------------------------------ */

/* 1 if path is a directory (list_dir works on it), else 0. */
static int is_dir(tv_fault *f, const char *path)
{
	name_list l = {NULL, 0, 0};
	int rc = f->base->list_dir(f->base, path, name_add, &l);
	names_free(&l);
	return rc == 0;
}

/* Moves path aside to a hidden name instead of deleting it, so a power
 * loss can bring it back.  Directories are passed through (and not
 * undone).  f->mu held. */
static int remove_tracked(tv_fault *f, const char *path)
{
	if (is_dir(f, path))
		return f->base->remove(f->base, path);
	char *np = norm_path(path);
	change c = {.path = NULL};
	node_move mv = {NULL, NULL};
	int rc = np ? change_prepare(f, &c, CH_REMOVE, np, NULL) : TROVE_ENOMEM;
	if (rc == 0 && !(c.hidden = hidden_name(f, np)))
		rc = TROVE_ENOMEM;
	if (rc == 0)
		rc = move_prepare(f, &mv, np, c.hidden);
	if (rc == 0)
		rc = f->base->rename(f->base, path, c.hidden);
	if (rc == 0) {
		move_commit(&mv);
		journal_push(f, &c);
	} else {
		free(mv.path);
		change_free(&c);
	}
	free(np);
	return rc;
}

static int fault_remove(trove_vfs *vfs, const char *path)
{
	tv_fault *f = fault_of(vfs);
	pthread_mutex_lock(&f->mu);
	int rc = crash_err(f);
	if (rc == 0)
		rc = remove_tracked(f, path);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Renames from to to (normalized nf, nt, which differ); an existing `to`
 * (the victim) is first moved to a hidden name so that a power loss can
 * restore it.  Both steps happen under f->mu, so no caller of this VFS
 * sees `to` missing in between. */
static int rename_over(tv_fault *f, const char *from, const char *to, const char *nf,
                       const char *nt)
{
	change c;
	node_move mv_victim = {NULL, NULL}, mv_file = {NULL, NULL};
	int rc = change_prepare(f, &c, CH_RENAME, nt, nf);
	if (rc != 0)
		return rc;
	rc = f->base->exists(f->base, to);
	int victim = rc == 0;
	if (rc == TROVE_ENOENT)
		rc = 0;
	if (rc == 0 && victim && !(c.hidden = hidden_name(f, nt)))
		rc = TROVE_ENOMEM;
	if (rc == 0 && victim)
		rc = move_prepare(f, &mv_victim, nt, c.hidden);
	if (rc == 0)
		rc = move_prepare(f, &mv_file, nf, nt);
	if (rc == 0 && victim)
		rc = f->base->rename(f->base, to, c.hidden);
	if (rc == 0) {
		rc = f->base->rename(f->base, from, to);
		if (rc != 0 && victim)
			f->base->rename(f->base, c.hidden, to); /* put it back */
	}
	if (rc != 0) {
		free(mv_victim.path);
		free(mv_file.path);
		change_free(&c);
		return rc;
	}
	move_commit(&mv_victim);
	move_commit(&mv_file);
	journal_push(f, &c);
	return 0;
}

/* Renames from to to, recording the change; renaming a name onto itself
 * changes nothing and is passed straight through.  f->mu held. */
static int rename_tracked(tv_fault *f, const char *from, const char *to)
{
	char *nf = norm_path(from), *nt = norm_path(to);
	int rc;
	if (!nf || !nt)
		rc = TROVE_ENOMEM;
	else if (!strcmp(nf, nt))
		rc = f->base->rename(f->base, from, to);
	else
		rc = rename_over(f, from, to, nf, nt);
	free(nf);
	free(nt);
	return rc;
}

static int fault_rename(trove_vfs *vfs, const char *from, const char *to)
{
	tv_fault *f = fault_of(vfs);
	pthread_mutex_lock(&f->mu);
	tv_fault_kind k = fault_take(f, TV_FAULT_RENAME);
	int rc = k ? kind_err(k) : rename_tracked(f, from, to);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fault_mkdir(trove_vfs *vfs, const char *path)
{
	tv_fault *f = fault_of(vfs);
	pthread_mutex_lock(&f->mu);
	char *np = NULL;
	change c = {.path = NULL};
	int rc = crash_err(f);
	if (rc == 0)
		rc = (np = norm_path(path)) ? change_prepare(f, &c, CH_MKDIR, np, NULL)
		                            : TROVE_ENOMEM;
	if (rc == 0) {
		rc = f->base->mkdir(f->base, path);
		if (rc == 0)
			journal_push(f, &c);
		else
			change_free(&c);
	}
	free(np);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Lists under the mutex (so no half-done rename shows), then calls fn
 * without it (fn may call back into this VFS).  Hidden names are left
 * out: the engine must not see the old files kept for power loss. */
static int fault_list_dir(trove_vfs *vfs, const char *path, tv_dir_fn fn, void *arg)
{
	tv_fault *f = fault_of(vfs);
	name_list l = {NULL, 0, 0};
	pthread_mutex_lock(&f->mu);
	int rc = crash_err(f);
	if (rc == 0)
		rc = f->base->list_dir(f->base, path, name_add, &l);
	pthread_mutex_unlock(&f->mu);
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		if (strncmp(l.v[i], HIDDEN_PREFIX, strlen(HIDDEN_PREFIX)) != 0)
			rc = fn(arg, l.v[i]);
	names_free(&l);
	return rc;
}

static int fault_sync_dir(trove_vfs *vfs, const char *path)
{
	tv_fault *f = fault_of(vfs);
	pthread_mutex_lock(&f->mu);
	char *np = NULL;
	tv_fault_kind k = fault_take(f, TV_FAULT_SYNC);
	int rc = k ? kind_err(k) : 0;
	if (rc == 0 && !(np = norm_path(path)))
		rc = TROVE_ENOMEM;
	if (rc == 0)
		rc = f->base->sync_dir(f->base, path);
	if (rc == 0)
		journal_settle(f, np);
	free(np);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fault_exists(trove_vfs *vfs, const char *path)
{
	tv_fault *f = fault_of(vfs);
	pthread_mutex_lock(&f->mu);
	int rc = crash_err(f);
	if (rc == 0)
		rc = f->base->exists(f->base, path);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fault_file_size(trove_vfs *vfs, const char *path, uint64_t *out)
{
	tv_fault *f = fault_of(vfs);
	pthread_mutex_lock(&f->mu);
	int rc = crash_err(f);
	if (rc == 0)
		rc = f->base->file_size(f->base, path, out);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Passed through; the lock file is not tracked (losing it is harmless). */
static int fault_lock(trove_vfs *vfs, const char *path, tv_file **out)
{
	tv_fault *f = fault_of(vfs);
	fault_file *ff = calloc(1, sizeof *ff);
	if (!ff)
		return TROVE_ENOMEM;
	pthread_mutex_lock(&f->mu);
	tv_file *inner;
	int rc = crash_err(f);
	if (rc == 0)
		rc = f->base->lock(f->base, path, &inner);
	if (rc == 0) {
		ff->is_lock = 1;
		*out = wrap(f, ff, inner, NULL);
	}
	pthread_mutex_unlock(&f->mu);
	if (rc != 0)
		free(ff);
	return rc;
}

static int fault_unlock(tv_file *lockfile)
{
	assert(ffile(lockfile)->is_lock);
	return fault_close(lockfile);
}

static const trove_vfs fault_vfs_template = {
        .name = "fault",
        .open = fault_open,
        .read = fault_read,
        .append = fault_append,
        .sync = fault_sync,
        .size = fault_size,
        .close = fault_close,
        .remove = fault_remove,
        .rename = fault_rename,
        .mkdir = fault_mkdir,
        .list_dir = fault_list_dir,
        .sync_dir = fault_sync_dir,
        .exists = fault_exists,
        .file_size = fault_file_size,
        .lock = fault_lock,
        .unlock = fault_unlock,
};

/* ---- Power loss ----------------------------------------------------- */

/* What a power loss leaves of a file: its first `len` bytes, those in
 * [zero_from, len) turned into zeros (and those past its current size
 * zeros too), with zeros over [hole, hole_end) as well, and a few bytes
 * of [from, zero_from) garbled when tear is set. */
typedef struct cut {
	uint64_t len, from, zero_from, hole, hole_end;
	int tear;
} cut;

/* Replaces path by what c says.  The copy is written next to it and
 * renamed over it, through the base VFS only. */
static int rewrite_cut(tv_fault *f, const char *path, const cut *c)
{
	assert(c->from <= c->zero_from && c->zero_from <= c->len);
	unsigned char *buf = calloc(1, c->len ? (size_t)c->len : 1);
	char *dir = dir_of(path);
	char *tmp = dir ? join(dir, HIDDEN_CUT) : NULL;
	int rc = (buf && tmp) ? 0 : TROVE_ENOMEM;
	tv_file *in, *out;
	if (rc == 0 && (rc = f->base->open(f->base, path, TV_OPEN_READ, &in)) == 0) {
		size_t got = 0;
		rc = f->base->read(in, 0, buf, (size_t)c->zero_from, &got);
		if (rc == 0 && got != c->zero_from)
			rc = TROVE_EIO; /* the file shrank under us */
		f->base->close(in);
	}
	if (rc == 0 && c->hole < c->hole_end)
		memset(buf + c->hole, 0, (size_t)(c->hole_end - c->hole));
	if (rc == 0 && c->tear && c->zero_from > c->from) {
		/* A burst of 1 to 4 bad bytes, as a half-written sector leaves. */
		uint64_t at = c->from + rng_next(f) % (c->zero_from - c->from);
		uint64_t end = at + 1 + rng_next(f) % 4;
		for (; at < end && at < c->zero_from; at++)
			garble(f, &buf[at]);
	}
	if (rc == 0)
		rc = f->base->open(f->base, tmp, TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &out);
	if (rc == 0) {
		rc = f->base->append(out, buf, (size_t)c->len);
		if (rc == 0)
			rc = f->base->sync(out);
		int crc = f->base->close(out);
		rc = rc ? rc : crc;
		if (rc == 0)
			rc = f->base->rename(f->base, tmp, path);
	}
	free(buf);
	free(dir);
	free(tmp);
	return rc;
}

/* A random offset in [lo, hi]. */
static uint64_t rng_between(tv_fault *f, uint64_t lo, uint64_t hi)
{
	return lo + rng_next(f) % (hi - lo + 1);
}

/* What a power loss leaves of a zeroed file now `size` bytes long (see
 * tv_fault_power_loss): appends since the last sync overwrote zeros, and
 * overwrites reach the disk in no order, so with tear a random part of
 * them stays, possibly with a hole of zeros in it, and the size is
 * anywhere between the synced one and the current one (which may be
 * smaller, if the file was closed and cut since). */
static cut cut_zeroed(tv_fault *f, const fnode *node, uint64_t size, int tear)
{
	uint64_t zsize = node->zeroed_size > node->synced ? node->zeroed_size : node->synced;
	cut c = {.len = zsize, .from = node->synced, .zero_from = node->synced, .tear = tear};
	if (tear) {
		c.len = size < zsize ? rng_between(f, size, zsize) : rng_between(f, zsize, size);
		uint64_t written = size < c.len ? size : c.len;
		if (written > c.from) {
			c.zero_from = rng_between(f, c.from, written);
			if (rng_next(f) % 2 && c.zero_from > c.from) {
				c.hole = rng_between(f, c.from, c.zero_from);
				c.hole_end = rng_between(f, c.hole, c.zero_from);
			}
		}
	}
	return c;
}

/* Cuts node's file to its durable length; with tear, keeps a random part
 * of the unsynced tail, with garbage in it.  A zeroed file keeps its
 * zeros (cut_zeroed). */
static int cut_file(tv_fault *f, const fnode *node, int tear)
{
	uint64_t size;
	int rc = f->base->file_size(f->base, node->path, &size);
	if (rc != 0)
		return rc == TROVE_ENOENT ? 0 : rc;
	cut c;
	if (node->zeroed) {
		c = cut_zeroed(f, node, size, tear);
	} else {
		if (size <= node->synced)
			return 0;
		c = (cut){.len = node->synced, .from = node->synced, .tear = tear};
		if (tear)
			c.len = rng_between(f, node->synced, size);
		c.zero_from = c.len;
	}
	return rewrite_cut(f, node->path, &c);
}

/* Removes path and, if it is a directory, everything below it. */
static int remove_tree(tv_fault *f, const char *path)
{
	name_list l = {NULL, 0, 0};
	int rc = 0;
	if (f->base->list_dir(f->base, path, name_add, &l) == 0) {
		for (size_t i = 0; rc == 0 && i < l.n; i++) {
			char *child = join(path, l.v[i]);
			rc = child ? remove_tree(f, child) : TROVE_ENOMEM;
			free(child);
		}
	}
	names_free(&l);
	if (rc == 0)
		rc = f->base->remove(f->base, path);
	return rc == TROVE_ENOENT ? 0 : rc;
}

/* Undoes one journal entry.  A name already gone is not an error: an
 * earlier undo, or a settled change in another directory, moved it. */
static int undo(tv_fault *f, const change *c)
{
	int rc = 0;
	switch (c->kind) {
	case CH_CREATE:
		rc = f->base->remove(f->base, c->path);
		break;
	case CH_MKDIR:
		rc = remove_tree(f, c->path);
		break;
	case CH_RENAME:
		rc = f->base->rename(f->base, c->path, c->from);
		if ((rc == 0 || rc == TROVE_ENOENT) && c->hidden)
			rc = f->base->rename(f->base, c->hidden, c->path);
		break;
	case CH_REMOVE:
		rc = f->base->rename(f->base, c->hidden, c->path);
		break;
	}
	return rc == TROVE_ENOENT ? 0 : rc;
}

/* Forgets every record: the disk as it is now is all durable. */
static void forget_all(tv_fault *f)
{
	for (size_t i = 0; i < f->nchanges; i++)
		change_free(&f->journal[i]);
	f->nchanges = 0;
	for (size_t i = 0; i < f->nnodes; i++)
		node_free(f->nodes[i]);
	f->nnodes = 0;
}

int tv_fault_power_loss(tv_fault *f, int tear, uint64_t seed)
{
	pthread_mutex_lock(&f->mu);
	f->rng = seed ^ 0x9e3779b97f4a7c15ull;
	if (f->rng == 0)
		f->rng = 1; /* xorshift never leaves zero */
	int rc = 0;
	/* Data first, at the current names; then names, newest first. */
	for (size_t i = 0; i < f->nnodes; i++) {
		if (f->nodes[i]->path) {
			int r = cut_file(f, f->nodes[i], tear);
			rc = rc ? rc : r;
		}
	}
	for (size_t i = f->nchanges; i-- > 0;) {
		int r = undo(f, &f->journal[i]);
		rc = rc ? rc : r;
	}
	forget_all(f);
	f->epoch++;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* ---- Creation and control ------------------------------------------- */

tv_fault *tv_fault_new(trove_vfs *base)
{
	tv_fault *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	if (pthread_mutex_init(&f->mu, NULL) != 0) {
		free(f);
		return NULL;
	}
	f->vfs = fault_vfs_template;
	f->vfs.ctx = f;
	f->base = base ? base : tv_vfs_posix();
	f->rng = 0x2545f4914f6cdd1dull;
	return f;
}

/* Every file it opened must be closed first.  The pending changes are
 * left as they are, as if every directory were synced now: old files
 * kept aside for a power loss are deleted. */
void tv_fault_free(tv_fault *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nchanges; i++)
		if (f->journal[i].hidden)
			f->base->remove(f->base, f->journal[i].hidden);
	forget_all(f);
	free(f->journal);
	free(f->nodes);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

trove_vfs *tv_fault_vfs(tv_fault *f)
{
	return &f->vfs;
}

void tv_fault_arm(tv_fault *f, tv_fault_op op, uint64_t nth, tv_fault_kind kind, int sticky)
{
	assert(op < TV_FAULT_NOPS && nth >= 1);
	pthread_mutex_lock(&f->mu);
	f->armed[op] = (armed){.at = f->counts[op] + nth, .kind = kind, .sticky = sticky};
	pthread_mutex_unlock(&f->mu);
}

void tv_fault_clear(tv_fault *f)
{
	pthread_mutex_lock(&f->mu);
	memset(f->armed, 0, sizeof f->armed);
	f->crashed = 0;
	pthread_mutex_unlock(&f->mu);
}

uint64_t tv_fault_count(tv_fault *f, tv_fault_op op)
{
	assert(op < TV_FAULT_NOPS);
	pthread_mutex_lock(&f->mu);
	uint64_t n = f->counts[op];
	pthread_mutex_unlock(&f->mu);
	return n;
}

int tv_fault_crashed(tv_fault *f)
{
	pthread_mutex_lock(&f->mu);
	int c = f->crashed;
	pthread_mutex_unlock(&f->mu);
	return c;
}
