/*
 * test_vfs_mem.c - tests of the in-memory VFS (vfs_mem.c).
 *
 * They pin down the contract of vfs.h as the memory VFS keeps it: appends
 * and positional reads, names and directories, rename replacing its
 * target, listings whose callbacks call back in, the lock, files that stay
 * readable after being removed while open, concurrent readers racing an
 * append that moves the buffer, and a large file built from small appends.
 * Memory errors (leaks, use after free) are left to the ASan build.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vfs.h"
#include "testutil.h"

/* ---- Helpers -------------------------------------------------------- */

/* Each test gets a fresh memory VFS in *state, freed afterwards. */
static int mem_setup(void **state)
{
	trove_vfs *vfs = tv_vfs_mem_new();
	if (!vfs)
		return -1;
	*state = vfs;
	return 0;
}

static int mem_teardown(void **state)
{
	tv_vfs_mem_free(*state);
	return 0;
}

/* Creates (or replaces) path holding data. */
static void put_file(trove_vfs *vfs, const char *path, const char *data)
{
	tv_file *f;
	assert_int_equal(vfs->open(vfs, path, TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &f), 0);
	assert_int_equal(vfs->append(f, data, strlen(data)), 0);
	assert_int_equal(vfs->close(f), 0);
}

/* Reads all of an open file into buf (NUL-terminated); returns its length. */
static size_t get_open(tv_file *f, char *buf, size_t cap)
{
	size_t got = 0;
	assert_int_equal(f->vfs->read(f, 0, buf, cap - 1, &got), 0);
	buf[got] = '\0';
	return got;
}

/* Checks that path holds exactly want. */
static void assert_file(trove_vfs *vfs, const char *path, const char *want)
{
	tv_file *f;
	char buf[4096];
	assert_int_equal(vfs->open(vfs, path, TV_OPEN_READ, &f), 0);
	assert_int_equal(get_open(f, buf, sizeof buf), strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(vfs->close(f), 0);
}

/* A tv_dir_fn collecting names into a comma-terminated, unsorted list. */
typedef struct names {
	char list[1024];
	int count;
	int stop_after; /* 0: never stop */
} names;

static int collect(void *arg, const char *name)
{
	names *n = arg;
	size_t used = strlen(n->list);
	assert_true(used + strlen(name) + 2 <= sizeof n->list);
	snprintf(n->list + used, sizeof n->list - used, "%s,", name);
	n->count++;
	return (n->stop_after && n->count == n->stop_after) ? 42 : 0;
}

/* True if the list holds name as a whole entry. */
static int listed(const names *n, const char *name)
{
	char want[128];
	snprintf(want, sizeof want, ",%s,", name);
	char all[1100];
	snprintf(all, sizeof all, ",%s", n->list);
	return strstr(all, want) != NULL;
}

/* The byte at offset i of the test pattern files are filled with. */
static unsigned char pattern(uint64_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static void fill_pattern(unsigned char *buf, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pattern(off + i);
}

/* 1 if buf holds the pattern from offset off. */
static int is_pattern(const unsigned char *buf, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != pattern(off + i))
			return 0;
	return 1;
}

/* ---- Files ---------------------------------------------------------- */

static void test_mem_append_read_size(void **state)
{
	trove_vfs *vfs = *state;
	tv_file *f;
	uint64_t sz;

	assert_string_equal(vfs->name, "memory");
	assert_int_equal(vfs->open(vfs, "/a", TV_OPEN_APPEND | TV_OPEN_EXCL, &f), 0);
	assert_ptr_equal(f->vfs, vfs);
	assert_int_equal(vfs->append(f, "hello", 5), 0);
	assert_int_equal(vfs->append(f, " world", 6), 0);
	assert_int_equal(vfs->append(f, "", 0), 0);
	assert_int_equal(vfs->size(f, &sz), 0);
	assert_int_equal(sz, 11);
	assert_int_equal(vfs->sync(f), 0);
	char buf[64];
	size_t got = 99;
	assert_int_equal(vfs->read(f, 0, buf, 5, &got), TROVE_EIO); /* write-only */
	assert_int_equal(got, 99);
	assert_int_equal(vfs->close(f), 0);

	assert_int_equal(vfs->open(vfs, "/a", TV_OPEN_READ, &f), 0);
	assert_int_equal(vfs->read(f, 6, buf, 3, &got), 0);
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "wor", 3);
	assert_int_equal(vfs->read(f, 0, buf, sizeof buf, &got), 0);
	assert_int_equal(got, 11); /* short only because the file ends */
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(vfs->read(f, 11, buf, sizeof buf, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(vfs->read(f, UINT64_MAX - 100, buf, sizeof buf, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(vfs->append(f, "x", 1), TROVE_EIO); /* read-only */
	assert_int_equal(vfs->size(f, &sz), 0);
	assert_int_equal(sz, 11);
	assert_int_equal(vfs->close(f), 0);
	assert_int_equal(vfs->file_size(vfs, "/a", &sz), 0);
	assert_int_equal(sz, 11);

	/* Reopening appends; EXCL refuses; TRUNCATE empties. */
	assert_int_equal(vfs->open(vfs, "/a", TV_OPEN_APPEND | TV_OPEN_EXCL, &f), TROVE_EEXIST);
	assert_int_equal(vfs->open(vfs, "/a", TV_OPEN_APPEND, &f), 0);
	assert_int_equal(vfs->append(f, "!", 1), 0);
	assert_int_equal(vfs->close(f), 0);
	assert_file(vfs, "/a", "hello world!");
	assert_int_equal(vfs->open(vfs, "/a", TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &f), 0);
	assert_int_equal(vfs->size(f, &sz), 0);
	assert_int_equal(sz, 0);
	assert_int_equal(vfs->close(f), 0);
	assert_file(vfs, "/a", "");
}

/* Two handles on one file see each other's appends at once; truncating
 * empties the file under an open reader, as O_TRUNC does. */
static void test_mem_shared_file(void **state)
{
	trove_vfs *vfs = *state;
	tv_file *w, *r;
	char buf[64];
	put_file(vfs, "/s", "abc");
	assert_int_equal(vfs->open(vfs, "/s", TV_OPEN_READ, &r), 0);
	assert_int_equal(vfs->open(vfs, "/s", TV_OPEN_APPEND, &w), 0);
	assert_int_equal(vfs->append(w, "def", 3), 0);
	assert_int_equal(get_open(r, buf, sizeof buf), 6);
	assert_string_equal(buf, "abcdef");
	assert_int_equal(vfs->close(w), 0);
	assert_int_equal(get_open(r, buf, sizeof buf), 6); /* closing trims, keeps */
	assert_string_equal(buf, "abcdef");

	assert_int_equal(vfs->open(vfs, "/s", TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &w), 0);
	assert_int_equal(get_open(r, buf, sizeof buf), 0);
	assert_int_equal(vfs->append(w, "g", 1), 0);
	assert_int_equal(get_open(r, buf, sizeof buf), 1);
	assert_string_equal(buf, "g");
	assert_int_equal(vfs->close(w), 0);
	assert_int_equal(vfs->close(r), 0);
}

/* An append whose size would overflow fails whole, leaving the file. */
static void test_mem_append_overflow(void **state)
{
	trove_vfs *vfs = *state;
	tv_file *f;
	put_file(vfs, "/o", "keep");
	assert_int_equal(vfs->open(vfs, "/o", TV_OPEN_APPEND, &f), 0);
	assert_int_equal(vfs->append(f, "x", SIZE_MAX), TROVE_ENOMEM);
	assert_int_equal(vfs->append(f, "x", SIZE_MAX - 2), TROVE_ENOMEM);
	assert_int_equal(vfs->close(f), 0);
	assert_file(vfs, "/o", "keep");
}

/* 50 MiB in 4 KiB appends arrives whole and in order. */
static void test_mem_big_append(void **state)
{
	trove_vfs *vfs = *state;
	const size_t piece = 4096, total = (size_t)50 << 20;
	unsigned char *buf = malloc(1 << 20);
	assert_non_null(buf);
	tv_file *f;
	assert_int_equal(vfs->open(vfs, "/big", TV_OPEN_APPEND | TV_OPEN_EXCL, &f), 0);
	for (size_t off = 0; off < total; off += piece) {
		fill_pattern(buf, off, piece);
		assert_int_equal(vfs->append(f, buf, piece), 0);
	}
	uint64_t sz;
	assert_int_equal(vfs->size(f, &sz), 0);
	assert_int_equal(sz, total);
	assert_int_equal(vfs->close(f), 0);
	assert_int_equal(vfs->file_size(vfs, "/big", &sz), 0);
	assert_int_equal(sz, total);

	assert_int_equal(vfs->open(vfs, "/big", TV_OPEN_READ, &f), 0);
	size_t got;
	for (size_t off = 0; off < total; off += got) {
		assert_int_equal(vfs->read(f, off, buf, 1 << 20, &got), 0);
		assert_int_equal(got, 1 << 20);
		assert_true(is_pattern(buf, off, got));
	}
	/* A read across the end, at an offset no append boundary matches. */
	assert_int_equal(vfs->read(f, total - 1000, buf, 5000, &got), 0);
	assert_int_equal(got, 1000);
	assert_true(is_pattern(buf, total - 1000, got));
	assert_int_equal(vfs->close(f), 0);
	assert_int_equal(vfs->remove(vfs, "/big"), 0);
	free(buf);
}

/* ---- Errors and paths ----------------------------------------------- */

static void test_mem_errors(void **state)
{
	trove_vfs *vfs = *state;
	tv_file *f = NULL;
	uint64_t sz = 77;

	assert_int_equal(vfs->open(vfs, "/missing", TV_OPEN_READ, &f), TROVE_ENOENT);
	assert_null(f); /* out-parameters untouched on error */
	assert_int_equal(vfs->open(vfs, "/no/such", TV_OPEN_APPEND, &f), TROVE_ENOENT);
	assert_int_equal(vfs->exists(vfs, "/no"), TROVE_ENOENT); /* nothing made */
	assert_int_equal(vfs->file_size(vfs, "/missing", &sz), TROVE_ENOENT);
	assert_int_equal(sz, 77);
	assert_int_equal(vfs->open(vfs, "/x", TV_OPEN_TRUNCATE, &f), TROVE_EINVAL);
	assert_int_equal(vfs->open(vfs, "/x", TV_OPEN_EXCL, &f), TROVE_EINVAL);
	assert_int_equal(vfs->open(vfs, "/x", 64 | TV_OPEN_APPEND, &f), TROVE_EINVAL);
	assert_int_equal(vfs->exists(vfs, "/x"), TROVE_ENOENT);

	/* Directories are not files, files are not directories. */
	assert_int_equal(vfs->mkdir(vfs, "/d"), 0);
	assert_int_equal(vfs->open(vfs, "/d", TV_OPEN_READ, &f), TROVE_EIO);
	assert_int_equal(vfs->open(vfs, "/d", TV_OPEN_APPEND, &f), TROVE_EIO);
	assert_int_equal(vfs->open(vfs, "/", TV_OPEN_READ, &f), TROVE_EIO);
	assert_null(f);
	put_file(vfs, "/file", "F");
	assert_int_equal(vfs->open(vfs, "/file/x", TV_OPEN_APPEND, &f), TROVE_EIO);
	assert_int_equal(vfs->mkdir(vfs, "/file/x"), TROVE_EIO);
	assert_int_equal(vfs->open(vfs, "/file/x", TV_OPEN_READ, &f), TROVE_ENOENT);
	assert_int_equal(vfs->exists(vfs, "/file/x"), TROVE_ENOENT);
	assert_int_equal(vfs->mkdir(vfs, "/file"), TROVE_EEXIST);
	assert_int_equal(vfs->sync_dir(vfs, "/file"), TROVE_EIO);
	assert_int_equal(vfs->list_dir(vfs, "/file", collect, &(names){.count = 0}), TROVE_EIO);
	assert_int_equal(vfs->file_size(vfs, "/d", &sz), 0);
	assert_int_equal(sz, 0);
}

/* Paths are absolute; extra slashes do not count; "." and ".." are refused. */
static void test_mem_paths(void **state)
{
	trove_vfs *vfs = *state;
	tv_file *f;
	assert_int_equal(vfs->mkdir(vfs, "//db///"), 0);
	put_file(vfs, "/db//CURRENT", "cur");
	assert_file(vfs, "/db/CURRENT", "cur");
	assert_file(vfs, "///db/CURRENT", "cur");
	assert_int_equal(vfs->exists(vfs, "/db/"), 0);
	assert_int_equal(vfs->exists(vfs, "/db/CURRENT/"), 0);
	assert_int_equal(vfs->exists(vfs, "/db/current"), TROVE_ENOENT); /* case counts */

	assert_int_equal(vfs->open(vfs, "db/CURRENT", TV_OPEN_READ, &f), TROVE_EINVAL);
	assert_int_equal(vfs->open(vfs, "", TV_OPEN_READ, &f), TROVE_EINVAL);
	assert_int_equal(vfs->open(vfs, NULL, TV_OPEN_READ, &f), TROVE_EINVAL);
	assert_int_equal(vfs->exists(vfs, "/db/./CURRENT"), TROVE_EINVAL);
	assert_int_equal(vfs->exists(vfs, "/db/../db/CURRENT"), TROVE_EINVAL);
	assert_int_equal(vfs->mkdir(vfs, "/db/.."), TROVE_EINVAL);
	put_file(vfs, "/db/.hidden..", "names with dots are fine");
	assert_int_equal(vfs->exists(vfs, "/db/.hidden.."), 0);

	/* The engine's buffers are 4096 bytes: longer paths are refused. */
	char long_path[5000];
	long_path[0] = '/';
	memset(long_path + 1, 'a', sizeof long_path - 2);
	long_path[sizeof long_path - 1] = '\0';
	assert_int_equal(vfs->exists(vfs, long_path), TROVE_EINVAL);
	long_path[4096] = '\0';
	assert_int_equal(vfs->exists(vfs, long_path), TROVE_EINVAL);
	long_path[4095] = '\0'; /* 4095 characters and a NUL: the longest */
	assert_int_equal(vfs->mkdir(vfs, long_path), 0);
	assert_int_equal(vfs->exists(vfs, long_path), 0);
}

/* ---- Names and directories ------------------------------------------ */

static void test_mem_names(void **state)
{
	trove_vfs *vfs = *state;
	assert_int_equal(vfs->exists(vfs, "/"), 0);
	assert_int_equal(vfs->mkdir(vfs, "/"), TROVE_EEXIST);
	assert_int_equal(vfs->mkdir(vfs, "/db"), 0);
	assert_int_equal(vfs->mkdir(vfs, "/db"), TROVE_EEXIST);
	assert_int_equal(vfs->mkdir(vfs, "/x/y"), TROVE_ENOENT); /* no parent */
	assert_int_equal(vfs->mkdir(vfs, "/db/sub"), 0);
	put_file(vfs, "/db/a", "A");
	assert_int_equal(vfs->exists(vfs, "/db/a"), 0);
	assert_int_equal(vfs->exists(vfs, "/db/sub"), 0);
	assert_int_equal(vfs->exists(vfs, "/db/zz"), TROVE_ENOENT);

	assert_int_equal(vfs->sync_dir(vfs, "/db"), 0);
	assert_int_equal(vfs->sync_dir(vfs, "/"), 0);
	assert_int_equal(vfs->sync_dir(vfs, "/nodir"), TROVE_ENOENT);

	/* remove: files, empty directories; not a directory with entries. */
	assert_int_equal(vfs->remove(vfs, "/db"), TROVE_EIO);
	assert_int_equal(vfs->remove(vfs, "/db/a"), 0);
	assert_int_equal(vfs->remove(vfs, "/db/a"), TROVE_ENOENT);
	assert_int_equal(vfs->exists(vfs, "/db/a"), TROVE_ENOENT);
	assert_int_equal(vfs->remove(vfs, "/db"), TROVE_EIO);
	assert_int_equal(vfs->remove(vfs, "/db/sub"), 0);
	assert_int_equal(vfs->remove(vfs, "/db"), 0);
	assert_int_equal(vfs->exists(vfs, "/db"), TROVE_ENOENT);
	assert_int_equal(vfs->remove(vfs, "/"), TROVE_EIO); /* even when empty */
	assert_int_equal(vfs->exists(vfs, "/"), 0);

	/* A directory's name is free again once it is gone. */
	put_file(vfs, "/db", "now a file");
	assert_file(vfs, "/db", "now a file");
}

/* A tv_dir_fn removing each entry it is shown, as the engine's garbage
 * collector does from inside its listing. */
typedef struct remover {
	trove_vfs *vfs;
	const char *dir;
	int count;
} remover;

static int remove_each(void *arg, const char *name)
{
	remover *r = arg;
	char path[256];
	snprintf(path, sizeof path, "%s/%s", r->dir, name);
	assert_int_equal(r->vfs->remove(r->vfs, path), 0);
	r->count++;
	return 0;
}

static void test_mem_list_dir(void **state)
{
	trove_vfs *vfs = *state;
	assert_int_equal(vfs->mkdir(vfs, "/db"), 0);
	assert_int_equal(vfs->mkdir(vfs, "/db/sub"), 0);
	assert_int_equal(vfs->mkdir(vfs, "/dbx"), 0); /* shares a prefix */
	put_file(vfs, "/db/000012.sst", "t");
	put_file(vfs, "/db/CURRENT", "c");
	put_file(vfs, "/db/sub/deep", "d"); /* not a direct child */
	put_file(vfs, "/dbx/other", "o");
	put_file(vfs, "/top", "x");

	names n = {.count = 0};
	assert_int_equal(vfs->list_dir(vfs, "/db", collect, &n), 0);
	assert_int_equal(n.count, 3);
	assert_true(listed(&n, "000012.sst"));
	assert_true(listed(&n, "CURRENT"));
	assert_true(listed(&n, "sub"));

	names root = {.count = 0};
	assert_int_equal(vfs->list_dir(vfs, "/", collect, &root), 0);
	assert_int_equal(root.count, 3);
	assert_true(listed(&root, "db"));
	assert_true(listed(&root, "dbx"));
	assert_true(listed(&root, "top"));

	names sub = {.count = 0};
	assert_int_equal(vfs->list_dir(vfs, "/db/sub/", collect, &sub), 0);
	assert_int_equal(sub.count, 1);
	assert_string_equal(sub.list, "deep,");

	assert_int_equal(vfs->mkdir(vfs, "/empty"), 0);
	names none = {.count = 0};
	assert_int_equal(vfs->list_dir(vfs, "/empty", collect, &none), 0);
	assert_int_equal(none.count, 0);

	names stop = {.stop_after = 2};
	assert_int_equal(vfs->list_dir(vfs, "/db", collect, &stop), 42);
	assert_int_equal(stop.count, 2);
	assert_int_equal(vfs->list_dir(vfs, "/nodir", collect, &n), TROVE_ENOENT);

	/* The callback may call back in: here it removes what it sees. */
	assert_int_equal(vfs->remove(vfs, "/db/sub/deep"), 0);
	remover r = {vfs, "/db", 0};
	assert_int_equal(vfs->list_dir(vfs, "/db", remove_each, &r), 0);
	assert_int_equal(r.count, 3);
	names after = {.count = 0};
	assert_int_equal(vfs->list_dir(vfs, "/db", collect, &after), 0);
	assert_int_equal(after.count, 0);
}

static int count_one(void *arg, const char *name)
{
	(*(int *)arg)++;
	return 0;
}

/* Many entries: the table grows and every name is still found. */
static void test_mem_many_files(void **state)
{
	trove_vfs *vfs = *state;
	char path[64];
	assert_int_equal(vfs->mkdir(vfs, "/db"), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(path, sizeof path, "/db/%06d.sst", i);
		put_file(vfs, path, path);
	}
	int count = 0;
	assert_int_equal(vfs->list_dir(vfs, "/db", count_one, &count), 0);
	assert_int_equal(count, 3000);
	for (int i = 0; i < 3000; i += 7) {
		snprintf(path, sizeof path, "/db/%06d.sst", i);
		assert_file(vfs, path, path);
		if (i % 2)
			assert_int_equal(vfs->remove(vfs, path), 0);
	}
	for (int i = 0; i < 3000; i++) {
		snprintf(path, sizeof path, "/db/%06d.sst", i);
		assert_int_equal(vfs->exists(vfs, path), (i % 7 == 0 && i % 2) ? TROVE_ENOENT : 0);
	}
	/* Left in place: tv_vfs_mem_free frees whatever remains. */
}

/* ---- Rename --------------------------------------------------------- */

static void test_mem_rename(void **state)
{
	trove_vfs *vfs = *state;
	assert_int_equal(vfs->mkdir(vfs, "/db"), 0);
	put_file(vfs, "/db/CURRENT", "old");
	put_file(vfs, "/db/CURRENT.tmp", "new");

	/* rename replaces the target; a reader of the old file keeps it. */
	tv_file *r;
	char buf[64];
	assert_int_equal(vfs->open(vfs, "/db/CURRENT", TV_OPEN_READ, &r), 0);
	assert_int_equal(vfs->rename(vfs, "/db/CURRENT.tmp", "/db/CURRENT"), 0);
	assert_int_equal(vfs->exists(vfs, "/db/CURRENT.tmp"), TROVE_ENOENT);
	assert_file(vfs, "/db/CURRENT", "new");
	assert_int_equal(get_open(r, buf, sizeof buf), 3);
	assert_string_equal(buf, "old");
	assert_int_equal(vfs->close(r), 0);
	assert_int_equal(vfs->rename(vfs, "/db/CURRENT.tmp", "/db/CURRENT"), TROVE_ENOENT);

	/* To a new name, in another directory; a handle follows its file. */
	assert_int_equal(vfs->mkdir(vfs, "/other"), 0);
	tv_file *w;
	assert_int_equal(vfs->open(vfs, "/db/CURRENT", TV_OPEN_APPEND, &w), 0);
	assert_int_equal(vfs->rename(vfs, "/db/CURRENT", "/other/moved"), 0);
	assert_int_equal(vfs->append(w, "er", 2), 0);
	assert_int_equal(vfs->close(w), 0);
	assert_file(vfs, "/other/moved", "newer");
	assert_int_equal(vfs->exists(vfs, "/db/CURRENT"), TROVE_ENOENT);

	/* Onto itself: nothing happens. */
	assert_int_equal(vfs->rename(vfs, "/other/moved", "//other/moved/"), 0);
	assert_file(vfs, "/other/moved", "newer");

	/* Refusals leave both names as they were. */
	assert_int_equal(vfs->rename(vfs, "/other/moved", "/nodir/x"), TROVE_ENOENT);
	assert_int_equal(vfs->rename(vfs, "/other/moved", "/db"), TROVE_EIO);
	assert_int_equal(vfs->rename(vfs, "/db", "/db2"), TROVE_EINVAL);
	assert_int_equal(vfs->rename(vfs, "/other/moved", "relative"), TROVE_EINVAL);
	assert_file(vfs, "/other/moved", "newer");
	assert_int_equal(vfs->exists(vfs, "/db"), 0);
	assert_int_equal(vfs->exists(vfs, "/db2"), TROVE_ENOENT);
}

/* ---- Removed while open --------------------------------------------- */

/* A file removed while open reads on through its handles, a new file of
 * the same name is a different file, and the old one is freed at the
 * last close (ASan reports it otherwise). */
static void test_mem_unlinked_open(void **state)
{
	trove_vfs *vfs = *state;
	tv_file *r1, *r2, *n;
	char buf[64];
	uint64_t sz;
	put_file(vfs, "/t.sst", "table");
	assert_int_equal(vfs->open(vfs, "/t.sst", TV_OPEN_READ, &r1), 0);
	assert_int_equal(vfs->open(vfs, "/t.sst", TV_OPEN_READ, &r2), 0);
	assert_int_equal(vfs->remove(vfs, "/t.sst"), 0);
	assert_int_equal(vfs->exists(vfs, "/t.sst"), TROVE_ENOENT);
	assert_int_equal(vfs->open(vfs, "/t.sst", TV_OPEN_READ, &n), TROVE_ENOENT);

	assert_int_equal(get_open(r1, buf, sizeof buf), 5);
	assert_string_equal(buf, "table");
	assert_int_equal(vfs->size(r1, &sz), 0);
	assert_int_equal(sz, 5);
	assert_int_equal(vfs->close(r1), 0);

	put_file(vfs, "/t.sst", "another");
	assert_int_equal(get_open(r2, buf, sizeof buf), 5); /* still the old one */
	assert_string_equal(buf, "table");
	assert_int_equal(vfs->close(r2), 0);
	assert_file(vfs, "/t.sst", "another");

	/* A writer's file, removed under it, takes its appends and vanishes. */
	tv_file *w;
	assert_int_equal(vfs->open(vfs, "/gone", TV_OPEN_APPEND, &w), 0);
	assert_int_equal(vfs->remove(vfs, "/gone"), 0);
	assert_int_equal(vfs->append(w, "lost", 4), 0);
	assert_int_equal(vfs->size(w, &sz), 0);
	assert_int_equal(sz, 4);
	assert_int_equal(vfs->close(w), 0);
	assert_int_equal(vfs->exists(vfs, "/gone"), TROVE_ENOENT);
}

/* ---- Locks ---------------------------------------------------------- */

static void test_mem_lock(void **state)
{
	trove_vfs *vfs = *state;
	tv_file *l1, *l2 = NULL;
	char buf[64];
	assert_int_equal(vfs->mkdir(vfs, "/db"), 0);
	assert_int_equal(vfs->lock(vfs, "/db/LOCK", &l1), 0); /* creates the file */
	assert_int_equal(vfs->exists(vfs, "/db/LOCK"), 0);
	assert_int_equal(vfs->lock(vfs, "/db/LOCK", &l2), TROVE_ELOCKED);
	assert_int_equal(vfs->lock(vfs, "//db/LOCK", &l2), TROVE_ELOCKED);
	assert_null(l2);

	/* The lock handle reads and appends; the lock is advisory. */
	assert_int_equal(vfs->append(l1, "pid 1", 5), 0);
	assert_int_equal(get_open(l1, buf, sizeof buf), 5);
	assert_file(vfs, "/db/LOCK", "pid 1");

	/* The lock belongs to the file: it follows a rename. */
	assert_int_equal(vfs->rename(vfs, "/db/LOCK", "/db/LOCK2"), 0);
	assert_int_equal(vfs->lock(vfs, "/db/LOCK2", &l2), TROVE_ELOCKED);
	assert_int_equal(vfs->rename(vfs, "/db/LOCK2", "/db/LOCK"), 0);

	assert_int_equal(vfs->unlock(l1), 0);
	assert_int_equal(vfs->lock(vfs, "/db/LOCK", &l2), 0);
	assert_file(vfs, "/db/LOCK", "pid 1"); /* locking does not truncate */
	assert_int_equal(vfs->unlock(l2), 0);

	/* Errors of the path come first. */
	assert_int_equal(vfs->lock(vfs, "/nodir/LOCK", &l2), TROVE_ENOENT);
	assert_int_equal(vfs->lock(vfs, "/db", &l2), TROVE_EIO);
	assert_int_equal(vfs->lock(vfs, "LOCK", &l2), TROVE_EINVAL);
}

/* Two memory VFSs share nothing, not even locks. */
static void test_mem_independent(void **state)
{
	trove_vfs *a = *state, *b = tv_vfs_mem_new();
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	put_file(a, "/f", "in a");
	assert_int_equal(b->exists(b, "/f"), TROVE_ENOENT);
	tv_file *la, *lb;
	assert_int_equal(a->lock(a, "/LOCK", &la), 0);
	assert_int_equal(b->lock(b, "/LOCK", &lb), 0);
	assert_int_equal(b->unlock(lb), 0);
	assert_int_equal(a->unlock(la), 0);
	tv_vfs_mem_free(b);
	tv_vfs_mem_free(NULL);
	assert_file(a, "/f", "in a");
}

/* ---- Threads -------------------------------------------------------- */

enum { PREFIX = 1 << 20, READERS = 6, READS = 3000, GROW = 16 << 20 };

typedef struct reader_arg {
	trove_vfs *vfs;
	tv_file *f; /* shared by every reader: reads may run concurrently */
	uint64_t seed;
	int bad;
} reader_arg;

/* Reads random ranges of the file's first PREFIX bytes, checking each. */
static void *reader_main(void *p)
{
	reader_arg *a = p;
	tu_rng r;
	tu_rng_seed(&r, a->seed);
	unsigned char *buf = malloc(65536);
	if (!buf) {
		a->bad = 1;
		return NULL;
	}
	for (int i = 0; i < READS && !a->bad; i++) {
		size_t n = 1 + (size_t)tu_below(&r, 65536);
		uint64_t off = tu_below(&r, PREFIX - n + 1);
		size_t got = 0;
		if (a->vfs->read(a->f, off, buf, n, &got) != 0 || got != n ||
		    !is_pattern(buf, off, n))
			a->bad = 1;
	}
	free(buf);
	return NULL;
}

typedef struct writer_arg {
	trove_vfs *vfs;
	tv_file *f;
	int bad;
} writer_arg;

/* Appends to the same file while the readers read it, so the buffer moves
 * under them many times; and churns the namespace beside them. */
static void *writer_main(void *p)
{
	writer_arg *a = p;
	unsigned char buf[4096];
	for (size_t off = PREFIX; off < PREFIX + GROW && !a->bad; off += sizeof buf) {
		fill_pattern(buf, off, sizeof buf);
		if (a->vfs->append(a->f, buf, sizeof buf) != 0)
			a->bad = 1;
		if (off % (256 * 1024) == 0) {
			char name[32];
			snprintf(name, sizeof name, "/churn%zu", off);
			tv_file *c;
			if (a->vfs->open(a->vfs, name, TV_OPEN_APPEND, &c) != 0 ||
			    a->vfs->append(c, name, strlen(name)) != 0 || a->vfs->close(c) != 0 ||
			    a->vfs->remove(a->vfs, name) != 0)
				a->bad = 1;
		}
	}
	return NULL;
}

static void test_mem_concurrent_readers(void **state)
{
	trove_vfs *vfs = *state;
	uint64_t seed = tu_seed("test_mem_concurrent_readers");
	unsigned char *buf = malloc(PREFIX);
	assert_non_null(buf);
	fill_pattern(buf, 0, PREFIX);
	tv_file *w, *r;
	assert_int_equal(vfs->open(vfs, "/shared", TV_OPEN_APPEND | TV_OPEN_EXCL, &w), 0);
	assert_int_equal(vfs->append(w, buf, PREFIX), 0);
	free(buf);
	assert_int_equal(vfs->open(vfs, "/shared", TV_OPEN_READ, &r), 0);

	pthread_t readers[READERS], writer;
	reader_arg ra[READERS];
	writer_arg wa = {vfs, w, 0};
	for (int i = 0; i < READERS; i++) {
		ra[i] = (reader_arg){vfs, r, seed + (uint64_t)i, 0};
		assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &ra[i]), 0);
	}
	assert_int_equal(pthread_create(&writer, NULL, writer_main, &wa), 0);
	for (int i = 0; i < READERS; i++) {
		assert_int_equal(pthread_join(readers[i], NULL), 0);
		assert_int_equal(ra[i].bad, 0);
	}
	assert_int_equal(pthread_join(writer, NULL), 0);
	assert_int_equal(wa.bad, 0);

	uint64_t sz;
	assert_int_equal(vfs->size(r, &sz), 0);
	assert_int_equal(sz, PREFIX + GROW);
	unsigned char tail[4096];
	size_t got;
	assert_int_equal(vfs->read(r, sz - sizeof tail, tail, sizeof tail, &got), 0);
	assert_int_equal(got, sizeof tail);
	assert_true(is_pattern(tail, sz - sizeof tail, got));
	assert_int_equal(vfs->close(w), 0);
	assert_int_equal(vfs->close(r), 0);
}

/* ---- The engine's use ----------------------------------------------- */

/* The calls the engine makes on a fresh in-memory database, in order:
 * its directory, a table, a manifest, CURRENT through a rename, a
 * listing that removes garbage, and a table dropped while still read. */
static void test_mem_engine_layout(void **state)
{
	trove_vfs *vfs = *state;
	const char *dir = "/trove-memory";
	assert_int_equal(vfs->exists(vfs, dir), TROVE_ENOENT);
	assert_int_equal(vfs->mkdir(vfs, dir), 0);
	assert_int_equal(vfs->exists(vfs, "/trove-memory/CURRENT"), TROVE_ENOENT);
	put_file(vfs, "/trove-memory/MANIFEST-000001", "m1");
	put_file(vfs, "/trove-memory/CURRENT.tmp", "1");
	assert_int_equal(vfs->rename(vfs, "/trove-memory/CURRENT.tmp", "/trove-memory/CURRENT"), 0);
	assert_int_equal(vfs->sync_dir(vfs, dir), 0);
	put_file(vfs, "/trove-memory/000012.sst", "old table");

	tv_file *t;
	assert_int_equal(vfs->open(vfs, "/trove-memory/000012.sst", TV_OPEN_READ, &t), 0);
	put_file(vfs, "/trove-memory/000013.sst", "compacted");
	put_file(vfs, "/trove-memory/CURRENT.tmp", "2"); /* left by a failure */
	remover gc = {vfs, dir, 0};
	names n = {.count = 0};
	assert_int_equal(vfs->list_dir(vfs, dir, collect, &n), 0);
	assert_int_equal(n.count, 5);
	assert_int_equal(vfs->remove(vfs, "/trove-memory/000012.sst"), 0);
	assert_int_equal(vfs->remove(vfs, "/trove-memory/CURRENT.tmp"), 0);

	char buf[64];
	assert_int_equal(get_open(t, buf, sizeof buf), 9);
	assert_string_equal(buf, "old table");
	assert_int_equal(vfs->close(t), 0);

	uint64_t sz;
	names left = {.count = 0};
	assert_int_equal(vfs->list_dir(vfs, dir, collect, &left), 0);
	assert_int_equal(left.count, 3);
	assert_true(listed(&left, "CURRENT") && listed(&left, "000013.sst") &&
	            listed(&left, "MANIFEST-000001"));
	assert_int_equal(vfs->file_size(vfs, "/trove-memory/000013.sst", &sz), 0);
	assert_int_equal(sz, 9);
	assert_int_equal(vfs->list_dir(vfs, dir, remove_each, &gc), 0);
	assert_int_equal(gc.count, 3);
	assert_int_equal(vfs->remove(vfs, dir), 0);
}

#define MEM_TEST(t) cmocka_unit_test_setup_teardown(t, mem_setup, mem_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        MEM_TEST(test_mem_append_read_size),
	        MEM_TEST(test_mem_shared_file),
	        MEM_TEST(test_mem_append_overflow),
	        MEM_TEST(test_mem_big_append),
	        MEM_TEST(test_mem_errors),
	        MEM_TEST(test_mem_paths),
	        MEM_TEST(test_mem_names),
	        MEM_TEST(test_mem_list_dir),
	        MEM_TEST(test_mem_many_files),
	        MEM_TEST(test_mem_rename),
	        MEM_TEST(test_mem_unlinked_open),
	        MEM_TEST(test_mem_lock),
	        MEM_TEST(test_mem_independent),
	        MEM_TEST(test_mem_concurrent_readers),
	        MEM_TEST(test_mem_engine_layout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
