/*
 * vfs_mem.c - the in-memory VFS of in_memory mode (see vfs.h).
 *
 * An in-memory database runs the whole engine unchanged - tables,
 * manifest, compaction - on files that live only in RAM; this VFS is the
 * one difference.  So memory is reclaimed the way disk space is: compaction
 * writes new tables and removes the old ones, and a removed file's buffer
 * is freed as soon as no handle has it open.
 *
 * The namespace is a hash table from normalized absolute paths ("/a/b":
 * single slashes, none trailing) to entries, each a directory or a file;
 * "/" is an entry like any other directory.  A file's bytes live in a
 * mem_node, apart from its name, with a reference count: one for the name
 * and one per open handle.  The node is the in-memory inode: a file removed
 * (or replaced by rename) while open stays readable through its handles,
 * as POSIX allows and as the engine relies on when it drops a table that
 * a reader still uses.
 *
 * Locking: one mutex per VFS guards the namespace, every reference count
 * and every lock flag; a rwlock per node guards its bytes, so that reads
 * run in parallel while an append, which may move the buffer, runs alone.
 * The order is the VFS mutex, then a node's rwlock, never the reverse.
 *
 * This module must never call a list_dir callback with the mutex held (the
 * engine's callbacks call back in to remove files), let a pointer into a
 * file's buffer outlive the rwlock that protects it, or free a node that
 * still has a reference.
 */
#include "vfs.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Longest path accepted, NUL included: the engine builds its paths in
 * buffers of this size, so nothing longer can come from it. */
#define MEM_PATH_MAX 4096
/* Capacity of a file's first buffer; each growth at least doubles it. */
#define MEM_MIN_CAP 256
/* Buckets of a new namespace; doubled whenever entries outnumber them. */
#define MEM_MIN_BUCKETS 64

/* A file's contents: the in-memory inode. */
typedef struct mem_node mem_node;
struct mem_node {
	pthread_rwlock_t rw; /* guards data, len and cap */
	unsigned char *data;
	size_t len, cap;
	unsigned refs; /* its name (0 or 1) + open handles; VFS mutex */
	int locked;    /* a lock() handle holds it; VFS mutex */
};

/* A name in the namespace. */
typedef struct mem_entry mem_entry;
struct mem_entry {
	char *path;      /* normalized; owned */
	uint64_t hash;   /* of path */
	mem_node *node;  /* NULL for a directory */
	mem_entry *next; /* hash chain */
};

typedef struct mem_fs {
	trove_vfs vfs; /* what callers hold; vfs.ctx points back here */
	pthread_mutex_t mu;
	mem_entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t nentries;
	size_t nopen; /* handles not yet closed */
} mem_fs;

enum { MEM_CAN_READ = 1, MEM_CAN_APPEND = 2 };

typedef struct mem_file {
	struct tv_file base; /* must stay first */
	mem_node *node;      /* referenced for as long as the handle lives */
	int mode;            /* MEM_CAN_* */
	int is_lock;         /* opened by lock(); closing it unlocks */
	int appended;        /* trim the buffer's slack on close */
} mem_file;

static int mem_open(trove_vfs *vfs, const char *path, int flags, tv_file **out);

/* The mem_fs behind vfs, which must have been made by tv_vfs_mem_new. */
static mem_fs *mfs(trove_vfs *vfs)
{
	assert(vfs != NULL && vfs->open == mem_open);
	return vfs->ctx;
}

/* The mem_file behind f, which must have been opened by a memory VFS. */
static mem_file *mfile(tv_file *f)
{
	assert(f != NULL && f->vfs != NULL && f->vfs->open == mem_open);
	mem_file *mf = (mem_file *)f;
	assert(mf->node != NULL); /* (its refs are the mutex's, not read here) */
	return mf;
}

/* ---- Paths ---------------------------------------------------------- */

/* Writes path to buf (MEM_PATH_MAX bytes) in normal form: one slash
 * between components, none at the end except for "/" itself.  TROVE_EINVAL
 * for a NULL or relative path, a "." or ".." component, or one too long. */
static int path_norm(const char *path, char *buf)
{
	if (!path || path[0] != '/')
		return TROVE_EINVAL;
	size_t n = 0;
	const char *p = path;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, "/");
		if (p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.')))
			return TROVE_EINVAL;
		if (n + 1 + len >= MEM_PATH_MAX)
			return TROVE_EINVAL;
		buf[n++] = '/';
		memcpy(buf + n, p, len);
		n += len;
		p += len;
	}
	if (n == 0)
		buf[n++] = '/';
	buf[n] = '\0';
	return 0;
}

static int is_root(const char *path)
{
	return path[0] == '/' && path[1] == '\0';
}

/* The last component of path if path names a direct child of directory
 * dir (both normalized), else NULL. */
static const char *child_name(const char *dir, const char *path)
{
	size_t dn = is_root(dir) ? 0 : strlen(dir);
	if (strncmp(path, dir, dn) != 0 || path[dn] != '/' || path[dn + 1] == '\0')
		return NULL; /* elsewhere, or dir itself, or "/" */
	const char *name = path + dn + 1;
	return strchr(name, '/') ? NULL : name;
}

/* ---- The namespace (all under the VFS mutex) ------------------------- */

/* FNV-1a: short paths, and no adversary choosing them. */
static uint64_t path_hash(const char *path)
{
	uint64_t h = 14695981039346656037ull;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

static mem_entry *ns_find(mem_fs *fs, const char *path)
{
	uint64_t h = path_hash(path);
	for (mem_entry *e = fs->buckets[h & (fs->nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && !strcmp(e->path, path))
			return e;
	return NULL;
}

/* Doubles the bucket array.  On ENOMEM the old one stays: chains grow
 * longer but nothing fails, so an insertion never has to. */
static void ns_grow(mem_fs *fs)
{
	size_t nb = fs->nbuckets * 2;
	mem_entry **b = calloc(nb, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i < fs->nbuckets; i++) {
		mem_entry *e = fs->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(fs->buckets);
	fs->buckets = b;
	fs->nbuckets = nb;
}

/* Adds e, whose path must not be in the table yet; sets e->hash. */
static void ns_insert(mem_fs *fs, mem_entry *e)
{
	assert(ns_find(fs, e->path) == NULL);
	e->hash = path_hash(e->path);
	mem_entry **head = &fs->buckets[e->hash & (fs->nbuckets - 1)];
	e->next = *head;
	*head = e;
	if (++fs->nentries > fs->nbuckets)
		ns_grow(fs);
}

/* Takes e, which must be in the table, out of it (e is not freed). */
static void ns_unlink(mem_fs *fs, mem_entry *e)
{
	mem_entry **pp = &fs->buckets[e->hash & (fs->nbuckets - 1)];
	while (*pp != e) {
		assert(*pp != NULL);
		pp = &(*pp)->next;
	}
	*pp = e->next;
	assert(fs->nentries > 0);
	fs->nentries--;
}

/* 0 if path is a directory, TROVE_ENOENT if nothing is there, TROVE_EIO
 * if a file is (ENOTDIR). */
static int ns_dir(mem_fs *fs, const char *path)
{
	mem_entry *e = ns_find(fs, path);
	if (!e)
		return TROVE_ENOENT;
	return e->node ? TROVE_EIO : 0;
}

/* ns_dir of the directory that would hold path (normalized, not "/"). */
static int ns_parent(mem_fs *fs, char *path)
{
	assert(!is_root(path));
	char *slash = strrchr(path, '/');
	if (slash == path)
		return ns_dir(fs, "/");
	*slash = '\0'; /* path is the caller's scratch copy: cut, look, mend */
	int rc = ns_dir(fs, path);
	*slash = '/';
	return rc;
}

/* True if directory dir has any entry under it. */
static int ns_has_children(mem_fs *fs, const char *dir)
{
	for (size_t i = 0; i < fs->nbuckets; i++)
		for (mem_entry *e = fs->buckets[i]; e; e = e->next)
			if (child_name(dir, e->path))
				return 1;
	return 0;
}

/* ---- Nodes and entries ---------------------------------------------- */

/* A new empty node with no references; NULL on ENOMEM. */
static mem_node *node_new(void)
{
	mem_node *n = calloc(1, sizeof *n);
	if (n && pthread_rwlock_init(&n->rw, NULL) != 0) {
		free(n);
		return NULL;
	}
	return n;
}

/* Frees a node nothing refers to any more. */
static void node_free(mem_node *n)
{
	assert(n->refs == 0 && !n->locked);
	pthread_rwlock_destroy(&n->rw);
	free(n->data);
	free(n);
}

/* Drops one reference (VFS mutex held).  Returns n if that was the last,
 * for the caller to node_free once it has let go of the mutex, else NULL. */
static mem_node *node_unref(mem_node *n)
{
	assert(n->refs > 0);
	return --n->refs == 0 ? n : NULL;
}

/* Makes room for n more bytes (write lock held), at least doubling the
 * capacity so that a run of appends costs O(1) per byte amortized.
 * TROVE_ENOMEM leaves the node as it was. */
static int node_reserve(mem_node *node, size_t n)
{
	assert(node->len <= node->cap);
	if (n <= node->cap - node->len)
		return 0;
	if (n > SIZE_MAX - node->len)
		return TROVE_ENOMEM;
	size_t need = node->len + n;
	size_t cap = node->cap > MEM_MIN_CAP ? node->cap : MEM_MIN_CAP;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	unsigned char *d = realloc(node->data, cap);
	if (!d)
		return TROVE_ENOMEM;
	node->data = d;
	node->cap = cap;
	return 0;
}

/* Gives back the slack of geometric growth, so a finished table costs
 * its bytes and no more.  If the smaller realloc fails the buffer stays. */
static void node_trim(mem_node *node)
{
	pthread_rwlock_wrlock(&node->rw);
	if (node->len == 0) {
		free(node->data);
		node->data = NULL;
		node->cap = 0;
	} else if (node->cap > node->len) {
		unsigned char *d = realloc(node->data, node->len);
		if (d) {
			node->data = d;
			node->cap = node->len;
		}
	}
	pthread_rwlock_unlock(&node->rw);
}

/* Empties the file in place, as O_TRUNC does: open handles see it empty. */
static void node_truncate(mem_node *node)
{
	pthread_rwlock_wrlock(&node->rw);
	free(node->data);
	node->data = NULL;
	node->len = node->cap = 0;
	pthread_rwlock_unlock(&node->rw);
}

/* A new entry for path (copied) naming node (NULL: a directory); NULL on
 * ENOMEM.  Not yet in the table. */
static mem_entry *entry_new(const char *path, mem_node *node)
{
	mem_entry *e = malloc(sizeof *e);
	char *copy = strdup(path);
	if (!e || !copy) {
		free(e);
		free(copy);
		return NULL;
	}
	e->path = copy;
	e->hash = 0;
	e->node = node;
	e->next = NULL;
	return e;
}

static void entry_free(mem_entry *e)
{
	free(e->path);
	free(e);
}

/* The node of the file at path (normalized), created empty - with the
 * reference of its name - if it is missing and `create` is set; mu held.
 * TROVE_EEXIST if `excl` and it exists, TROVE_ENOENT if it or (when
 * creating) its directory is missing, TROVE_EIO if path or its parent is
 * of the wrong kind (EISDIR, ENOTDIR), TROVE_ENOMEM. */
static int node_at(mem_fs *fs, char *path, int create, int excl, mem_node **out)
{
	mem_entry *e = ns_find(fs, path);
	if (e) {
		if (!e->node)
			return TROVE_EIO;
		if (excl)
			return TROVE_EEXIST;
		*out = e->node;
		return 0;
	}
	if (!create)
		return TROVE_ENOENT;
	int rc = ns_parent(fs, path);
	if (rc)
		return rc;
	mem_node *n = node_new();
	e = n ? entry_new(path, n) : NULL;
	if (!e) {
		if (n)
			node_free(n);
		return TROVE_ENOMEM;
	}
	n->refs = 1; /* the name */
	ns_insert(fs, e);
	*out = n;
	return 0;
}

/* ---- Files ---------------------------------------------------------- */

/* Opens path as flags (TV_OPEN_*) say: reading needs an existing file,
 * appending creates one in an existing directory.  TROVE_EINVAL for bad
 * flags or a bad path; otherwise the errors of node_at. */
static int mem_open(trove_vfs *vfs, const char *path, int flags, tv_file **out)
{
	mem_fs *fs = mfs(vfs);
	const int known = TV_OPEN_APPEND | TV_OPEN_TRUNCATE | TV_OPEN_EXCL | TV_OPEN_MAPPED |
	                  TV_OPEN_ZEROED;
	if ((flags & ~known) ||
	    ((flags & (TV_OPEN_TRUNCATE | TV_OPEN_EXCL)) && !(flags & TV_OPEN_APPEND)))
		return TROVE_EINVAL;
	char p[MEM_PATH_MAX];
	int rc = path_norm(path, p);
	if (rc)
		return rc;
	mem_file *mf = calloc(1, sizeof *mf);
	if (!mf)
		return TROVE_ENOMEM;
	mf->base.vfs = vfs;
	mf->mode = (flags & TV_OPEN_APPEND) ? MEM_CAN_APPEND : MEM_CAN_READ;

	int create = (flags & TV_OPEN_APPEND) != 0, excl = (flags & TV_OPEN_EXCL) != 0;
	pthread_mutex_lock(&fs->mu);
	rc = node_at(fs, p, create, excl, &mf->node);
	if (!rc) {
		mf->node->refs++;
		fs->nopen++;
		if (flags & TV_OPEN_TRUNCATE)
			node_truncate(mf->node); /* under mu: atomic with the open */
	}
	pthread_mutex_unlock(&fs->mu);
	if (rc) {
		free(mf);
		return rc;
	}
	*out = &mf->base;
	return 0;
}

/* Copies up to n bytes at off; *got < n only at end of file.  TROVE_EIO on
 * a handle opened for appending (EBADF). */
static int mem_read(tv_file *f, uint64_t off, void *buf, size_t n, size_t *got)
{
	mem_file *mf = mfile(f);
	if (!(mf->mode & MEM_CAN_READ))
		return TROVE_EIO;
	mem_node *node = mf->node;
	size_t done = 0;
	pthread_rwlock_rdlock(&node->rw);
	if (off < node->len) {
		done = node->len - (size_t)off;
		if (done > n)
			done = n;
		memcpy(buf, node->data + off, done);
	}
	pthread_rwlock_unlock(&node->rw);
	*got = done;
	return 0;
}

/* Appends all n bytes, or nothing with TROVE_ENOMEM.  TROVE_EIO on a
 * handle opened for reading (EBADF). */
static int mem_append(tv_file *f, const void *buf, size_t n)
{
	mem_file *mf = mfile(f);
	if (!(mf->mode & MEM_CAN_APPEND))
		return TROVE_EIO;
	mem_node *node = mf->node;
	pthread_rwlock_wrlock(&node->rw);
	int rc = node_reserve(node, n);
	if (!rc && n > 0) {
		memcpy(node->data + node->len, buf, n);
		node->len += n;
	}
	pthread_rwlock_unlock(&node->rw);
	if (!rc)
		mf->appended = 1;
	return rc;
}

/* Nothing is more durable than RAM gets. */
static int mem_sync(tv_file *f)
{
	mfile(f);
	return 0;
}

static int mem_size(tv_file *f, uint64_t *out)
{
	mem_node *node = mfile(f)->node;
	pthread_rwlock_rdlock(&node->rw);
	*out = node->len;
	pthread_rwlock_unlock(&node->rw);
	return 0;
}

/* Drops the handle's reference, freeing the node if it was the last (the
 * file was removed or replaced), releases a lock, and frees f.  Always 0. */
static int mem_close(tv_file *f)
{
	mem_file *mf = mfile(f);
	mem_fs *fs = mfs(f->vfs);
	mem_node *node = mf->node;
	if (mf->appended)
		node_trim(node);
	pthread_mutex_lock(&fs->mu);
	if (mf->is_lock) {
		assert(node->locked);
		node->locked = 0;
	}
	assert(fs->nopen > 0);
	fs->nopen--;
	mem_node *last = node_unref(node);
	pthread_mutex_unlock(&fs->mu);
	if (last)
		node_free(last);
	free(mf);
	return 0;
}

/* ---- Names and directories ------------------------------------------ */

/* Removes a file (open handles keep reading it) or an empty directory.
 * TROVE_ENOENT if missing; TROVE_EIO for "/" or a directory with
 * entries (EBUSY, ENOTEMPTY). */
static int mem_remove(trove_vfs *vfs, const char *path)
{
	mem_fs *fs = mfs(vfs);
	char p[MEM_PATH_MAX];
	int rc = path_norm(path, p);
	if (rc)
		return rc;
	mem_node *last = NULL;
	pthread_mutex_lock(&fs->mu);
	mem_entry *e = ns_find(fs, p);
	if (!e) {
		rc = TROVE_ENOENT;
	} else if (!e->node && (is_root(p) || ns_has_children(fs, p))) {
		rc = TROVE_EIO;
	} else {
		ns_unlink(fs, e);
		if (e->node)
			last = node_unref(e->node);
		entry_free(e);
	}
	pthread_mutex_unlock(&fs->mu);
	if (last)
		node_free(last);
	return rc;
}

/* The body of mem_rename, mu held; a replaced node whose last reference
 * went goes to *last. */
static int rename_locked(mem_fs *fs, char *from, char *to, mem_node **last)
{
	mem_entry *src = ns_find(fs, from);
	if (!src)
		return TROVE_ENOENT;
	if (!src->node)
		return TROVE_EINVAL; /* directories are not renamed here */
	mem_entry *dst = ns_find(fs, to);
	if (dst == src)
		return 0;
	if (dst) {
		if (!dst->node)
			return TROVE_EIO; /* EISDIR */
		/* The target's entry takes the source's node: no allocation,
		 * so replacing cannot fail half-way. */
		*last = node_unref(dst->node);
		dst->node = src->node;
		ns_unlink(fs, src);
		entry_free(src);
		return 0;
	}
	int rc = ns_parent(fs, to);
	if (rc)
		return rc;
	char *copy = strdup(to);
	if (!copy)
		return TROVE_ENOMEM;
	ns_unlink(fs, src);
	free(src->path);
	src->path = copy;
	ns_insert(fs, src);
	return 0;
}

/* Atomically gives file `from` the name `to`, replacing a file there
 * (whose open handles keep the old contents).  TROVE_ENOENT if from or
 * to's directory is missing, TROVE_EIO if to is a directory, TROVE_EINVAL
 * if from is one, TROVE_ENOMEM. */
static int mem_rename(trove_vfs *vfs, const char *from, const char *to)
{
	mem_fs *fs = mfs(vfs);
	char f[MEM_PATH_MAX], t[MEM_PATH_MAX];
	int rc = path_norm(from, f);
	if (!rc)
		rc = path_norm(to, t);
	if (rc)
		return rc;
	mem_node *last = NULL;
	pthread_mutex_lock(&fs->mu);
	rc = rename_locked(fs, f, t, &last);
	pthread_mutex_unlock(&fs->mu);
	if (last)
		node_free(last);
	return rc;
}

/* Creates a directory in an existing one; TROVE_EEXIST if path exists. */
static int mem_mkdir(trove_vfs *vfs, const char *path)
{
	mem_fs *fs = mfs(vfs);
	char p[MEM_PATH_MAX];
	int rc = path_norm(path, p);
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->mu);
	if (ns_find(fs, p)) {
		rc = TROVE_EEXIST;
	} else if ((rc = ns_parent(fs, p)) == 0) {
		mem_entry *e = entry_new(p, NULL);
		if (e)
			ns_insert(fs, e);
		else
			rc = TROVE_ENOMEM;
	}
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

/* The names of dir's direct children, NUL-terminated one after another in
 * one malloc'd block (*names, *count); mu held. */
static int children_locked(mem_fs *fs, const char *dir, char **names, size_t *count)
{
	int rc = ns_dir(fs, dir);
	if (rc)
		return rc;
	size_t total = 0, n = 0;
	for (size_t i = 0; i < fs->nbuckets; i++)
		for (mem_entry *e = fs->buckets[i]; e; e = e->next) {
			const char *name = child_name(dir, e->path);
			if (name) {
				total += strlen(name) + 1;
				n++;
			}
		}
	char *block = malloc(total ? total : 1);
	if (!block)
		return TROVE_ENOMEM;
	size_t at = 0;
	for (size_t i = 0; i < fs->nbuckets; i++)
		for (mem_entry *e = fs->buckets[i]; e; e = e->next) {
			const char *name = child_name(dir, e->path);
			if (name) {
				size_t len = strlen(name) + 1;
				memcpy(block + at, name, len);
				at += len;
			}
		}
	assert(at == total);
	*names = block;
	*count = n;
	return 0;
}

/* Calls fn once per direct child of path, in no particular order, on a
 * snapshot taken under the mutex, so fn may call back into the VFS (and
 * remove the entries it is shown).  TROVE_ENOENT if path is missing,
 * TROVE_EIO if it is a file, TROVE_ENOMEM, or fn's non-zero return. */
static int mem_list_dir(trove_vfs *vfs, const char *path, tv_dir_fn fn, void *arg)
{
	mem_fs *fs = mfs(vfs);
	char p[MEM_PATH_MAX];
	int rc = path_norm(path, p);
	if (rc)
		return rc;
	char *names = NULL;
	size_t count = 0;
	pthread_mutex_lock(&fs->mu);
	rc = children_locked(fs, p, &names, &count);
	pthread_mutex_unlock(&fs->mu);
	if (rc)
		return rc;
	const char *name = names;
	for (size_t i = 0; i < count && rc == 0; i++) {
		rc = fn(arg, name);
		name += strlen(name) + 1;
	}
	free(names);
	return rc;
}

/* Nothing to make durable; only checks that path is a directory. */
static int mem_sync_dir(trove_vfs *vfs, const char *path)
{
	mem_fs *fs = mfs(vfs);
	char p[MEM_PATH_MAX];
	int rc = path_norm(path, p);
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->mu);
	rc = ns_dir(fs, p);
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

static int mem_exists(trove_vfs *vfs, const char *path)
{
	mem_fs *fs = mfs(vfs);
	char p[MEM_PATH_MAX];
	int rc = path_norm(path, p);
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->mu);
	rc = ns_find(fs, p) ? 0 : TROVE_ENOENT;
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

/* The length of the file at path; 0 for a directory. */
static int mem_file_size(trove_vfs *vfs, const char *path, uint64_t *out)
{
	mem_fs *fs = mfs(vfs);
	char p[MEM_PATH_MAX];
	int rc = path_norm(path, p);
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->mu);
	mem_entry *e = ns_find(fs, p);
	if (!e) {
		rc = TROVE_ENOENT;
	} else if (!e->node) {
		*out = 0;
	} else {
		pthread_rwlock_rdlock(&e->node->rw);
		*out = e->node->len;
		pthread_rwlock_unlock(&e->node->rw);
	}
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

/* ---- Locks ---------------------------------------------------------- */

/* Takes the lock of the file at path, created if missing; TROVE_ELOCKED if
 * a handle of this VFS holds it.  The lock belongs to the file, not the
 * name, as on disk.  The handle may both read and append. */
static int mem_lock(trove_vfs *vfs, const char *path, tv_file **out)
{
	mem_fs *fs = mfs(vfs);
	char p[MEM_PATH_MAX];
	int rc = path_norm(path, p);
	if (rc)
		return rc;
	mem_file *mf = calloc(1, sizeof *mf);
	if (!mf)
		return TROVE_ENOMEM;
	mf->base.vfs = vfs;
	mf->mode = MEM_CAN_READ | MEM_CAN_APPEND;
	mf->is_lock = 1;

	mem_node *node = NULL;
	pthread_mutex_lock(&fs->mu);
	rc = node_at(fs, p, 1, 0, &node);
	if (!rc && node->locked)
		rc = TROVE_ELOCKED;
	if (!rc) {
		node->locked = 1;
		node->refs++;
		fs->nopen++;
		mf->node = node;
	}
	pthread_mutex_unlock(&fs->mu);
	if (rc) {
		free(mf);
		return rc;
	}
	*out = &mf->base;
	return 0;
}

/* Releases the lock and closes the handle, which is freed. */
static int mem_unlock(tv_file *lockfile)
{
	assert(mfile(lockfile)->is_lock);
	return mem_close(lockfile);
}

/* ---- Creation ------------------------------------------------------- */

static const trove_vfs mem_vfs_template = {
        .name = "memory",
        .ctx = NULL,
        .open = mem_open,
        .read = mem_read,
        .append = mem_append,
        .sync = mem_sync,
        .size = mem_size,
        .close = mem_close,
        .remove = mem_remove,
        .rename = mem_rename,
        .mkdir = mem_mkdir,
        .list_dir = mem_list_dir,
        .sync_dir = mem_sync_dir,
        .exists = mem_exists,
        .file_size = mem_file_size,
        .lock = mem_lock,
        .unlock = mem_unlock,
};

trove_vfs *tv_vfs_mem_new(void)
{
	mem_fs *fs = calloc(1, sizeof *fs);
	if (!fs)
		return NULL;
	if (pthread_mutex_init(&fs->mu, NULL) != 0) {
		free(fs);
		return NULL;
	}
	fs->buckets = calloc(MEM_MIN_BUCKETS, sizeof *fs->buckets);
	mem_entry *root = entry_new("/", NULL);
	if (!fs->buckets || !root) {
		if (root)
			entry_free(root);
		free(fs->buckets);
		pthread_mutex_destroy(&fs->mu);
		free(fs);
		return NULL;
	}
	fs->nbuckets = MEM_MIN_BUCKETS;
	ns_insert(fs, root);
	fs->vfs = mem_vfs_template;
	fs->vfs.ctx = fs;
	return &fs->vfs;
}

void tv_vfs_mem_free(trove_vfs *vfs)
{
	if (!vfs)
		return;
	mem_fs *fs = mfs(vfs);
	assert(fs->nopen == 0);
	for (size_t i = 0; i < fs->nbuckets; i++) {
		mem_entry *e = fs->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			if (e->node) {
				mem_node *last = node_unref(e->node);
				assert(last != NULL); /* no handle left to hold it */
				if (last)
					node_free(last);
			}
			entry_free(e);
		}
	}
	free(fs->buckets);
	pthread_mutex_destroy(&fs->mu);
	free(fs);
}
