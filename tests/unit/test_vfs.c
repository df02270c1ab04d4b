/*
 * test_vfs.c - tests of the VFS layer: the POSIX implementation and the
 * fault-injecting one.
 *
 * The POSIX tests pin down the contract of vfs.h on a real directory:
 * appends (through write(2) and through a mapping), positional reads,
 * names, listings, errno mapping and the
 * exclusive lock, both within this process and against a forked child.
 * The fault tests check that each armed fault fails exactly the call it
 * names, and that a simulated power loss leaves on disk what a real one
 * could: synced bytes and synced directory entries, nothing else.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/vfs.h"
#include "testutil.h"

/* ---- Helpers -------------------------------------------------------- */

/* Each test gets a fresh directory in *state, removed afterwards. */
static int dir_setup(void **state)
{
	char *dir = tu_tmpdir("vfs");
	if (!dir)
		return -1;
	*state = dir;
	return 0;
}

static int dir_teardown(void **state)
{
	tu_rmrf(*state);
	free(*state);
	return 0;
}

/* dir/name in a buffer that lives until the next call with the same slot. */
static const char *path_in(const char *dir, const char *name, int slot)
{
	static char bufs[4][512];
	assert_true(slot >= 0 && slot < 4);
	int n = snprintf(bufs[slot], sizeof bufs[slot], "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < sizeof bufs[slot]);
	return bufs[slot];
}

/* Creates (or replaces) path with data, synced if sync is set. */
static void put_file(trove_vfs *vfs, const char *path, const char *data, int sync)
{
	tv_file *f;
	assert_int_equal(vfs->open(vfs, path, TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &f), 0);
	assert_int_equal(vfs->append(f, data, strlen(data)), 0);
	if (sync)
		assert_int_equal(vfs->sync(f), 0);
	assert_int_equal(vfs->close(f), 0);
}

/* Reads all of path through vfs into buf (NUL-terminated); returns the
 * length, or a negative error code. */
static long get_file(trove_vfs *vfs, const char *path, char *buf, size_t cap)
{
	tv_file *f;
	int rc = vfs->open(vfs, path, TV_OPEN_READ, &f);
	if (rc != 0)
		return rc;
	size_t got = 0;
	rc = vfs->read(f, 0, buf, cap - 1, &got);
	assert_int_equal(vfs->close(f), 0);
	if (rc != 0)
		return rc;
	buf[got] = '\0';
	return (long)got;
}

/* Checks that path holds exactly want. */
static void assert_file(trove_vfs *vfs, const char *path, const char *want)
{
	char buf[4096];
	long n = get_file(vfs, path, buf, sizeof buf);
	assert_int_equal(n, (long)strlen(want));
	assert_string_equal(buf, want);
}

/* A tv_dir_fn collecting names into a comma-separated, unsorted list. */
typedef struct names {
	char list[1024];
	int count;
	int stop_after; /* 0: never stop */
} names;

static int collect(void *arg, const char *name)
{
	names *n = arg;
	strncat(n->list, name, sizeof n->list - strlen(n->list) - 2);
	strcat(n->list, ",");
	n->count++;
	return (n->stop_after && n->count == n->stop_after) ? 42 : 0;
}

/* n random bytes from seed, in a new buffer. */
static unsigned char *random_bytes(size_t n, uint64_t seed)
{
	unsigned char *data = malloc(n);
	assert_non_null(data);
	tu_rng r;
	tu_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)tu_rand(&r);
	return data;
}

/* ---- POSIX: files --------------------------------------------------- */

static void test_posix_append_read_size(void **state)
{
	trove_vfs *vfs = tv_vfs_posix();
	const char *p = path_in(*state, "a", 0);
	tv_file *f;
	uint64_t sz;

	assert_int_equal(vfs->open(vfs, p, TV_OPEN_APPEND | TV_OPEN_EXCL, &f), 0);
	assert_ptr_equal(f->vfs, vfs);
	assert_int_equal(vfs->append(f, "hello", 5), 0);
	assert_int_equal(vfs->append(f, " world", 6), 0);
	assert_int_equal(vfs->append(f, "", 0), 0);
	assert_int_equal(vfs->size(f, &sz), 0);
	assert_int_equal(sz, 11);
	assert_int_equal(vfs->sync(f), 0);
	assert_int_equal(vfs->close(f), 0);

	assert_int_equal(vfs->open(vfs, p, TV_OPEN_READ, &f), 0);
	char buf[64];
	size_t got = 99;
	assert_int_equal(vfs->read(f, 6, buf, 3, &got), 0);
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "wor", 3);
	assert_int_equal(vfs->read(f, 0, buf, sizeof buf, &got), 0);
	assert_int_equal(got, 11); /* short only because the file ends */
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(vfs->read(f, 100, buf, sizeof buf, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(vfs->close(f), 0);
	assert_int_equal(vfs->file_size(vfs, p, &sz), 0);
	assert_int_equal(sz, 11);

	/* Reopening appends; EXCL refuses; TRUNCATE empties. */
	assert_int_equal(vfs->open(vfs, p, TV_OPEN_APPEND | TV_OPEN_EXCL, &f), TROVE_EEXIST);
	assert_int_equal(vfs->open(vfs, p, TV_OPEN_APPEND, &f), 0);
	assert_int_equal(vfs->append(f, "!", 1), 0);
	assert_int_equal(vfs->close(f), 0);
	assert_file(vfs, p, "hello world!");
	assert_int_equal(vfs->open(vfs, p, TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &f), 0);
	assert_int_equal(vfs->size(f, &sz), 0);
	assert_int_equal(sz, 0);
	assert_int_equal(vfs->close(f), 0);
}

/* A large append arrives whole and reads back in pieces. */
static void test_posix_large_append(void **state)
{
	trove_vfs *vfs = tv_vfs_posix();
	const char *p = path_in(*state, "big", 0);
	size_t n = 3u << 20;
	unsigned char *data = random_bytes(n, 7), *back = malloc(n);
	assert_non_null(back);

	tv_file *f;
	assert_int_equal(vfs->open(vfs, p, TV_OPEN_APPEND, &f), 0);
	assert_int_equal(vfs->append(f, data, n), 0);
	assert_int_equal(vfs->close(f), 0);
	assert_int_equal(vfs->open(vfs, p, TV_OPEN_READ, &f), 0);
	size_t got;
	assert_int_equal(vfs->read(f, 12345, back, n, &got), 0);
	assert_int_equal(got, n - 12345);
	assert_memory_equal(back, data + 12345, got);
	assert_int_equal(vfs->close(f), 0);
	free(data);
	free(back);
}

/* A file opened `how` (TV_OPEN_MAPPED or TV_OPEN_ZEROED): appends of
 * every size (small ones across window or zero-run boundaries, one larger
 * than a window) read back through another handle while it is open, where
 * the file may run on in zeros, and exactly after close, which cuts the
 * zeros off.  Reopening such a file appends. */
static void check_positioned_append(void **state, int how)
{
	trove_vfs *vfs = tv_vfs_posix();
	const char *p = path_in(*state, "m", 0);
	size_t n = 5u << 20;
	unsigned char *data = random_bytes(n, 11), *back = malloc(n + 1);
	assert_non_null(back);
	tu_rng r;
	tu_rng_seed(&r, 12);

	tv_file *f, *rd;
	uint64_t sz, fsz;
	const int flags = TV_OPEN_APPEND | TV_OPEN_TRUNCATE | how;
	assert_int_equal(vfs->open(vfs, p, TV_OPEN_READ | how, &f), TROVE_EINVAL);
	assert_int_equal(vfs->open(vfs, p, TV_OPEN_APPEND | TV_OPEN_MAPPED | TV_OPEN_ZEROED, &f),
	                 TROVE_EINVAL);
	assert_int_equal(vfs->open(vfs, p, flags, &f), 0);
	size_t done = 0;
	while (done < n) {
		size_t len = tu_below(&r, 10) == 0 ? (size_t)tu_below(&r, 3u << 20)
		                                   : (size_t)tu_below(&r, 300);
		if (len > n - done)
			len = n - done;
		assert_int_equal(vfs->append(f, data + done, len), 0);
		done += len;
		assert_int_equal(vfs->size(f, &sz), 0);
		assert_int_equal(sz, done);
	}
	assert_int_equal(vfs->sync(f), 0);

	assert_int_equal(vfs->file_size(vfs, p, &fsz), 0);
	assert_true(fsz >= n);
	assert_int_equal(vfs->open(vfs, p, TV_OPEN_READ, &rd), 0);
	size_t got;
	assert_int_equal(vfs->read(rd, 0, back, n + 1, &got), 0);
	assert_int_equal(got, fsz > n ? n + 1 : n);
	assert_memory_equal(back, data, n);
	if (got > n)
		assert_int_equal(back[n], 0);
	assert_int_equal(vfs->close(rd), 0);

	assert_int_equal(vfs->close(f), 0);
	assert_int_equal(vfs->file_size(vfs, p, &fsz), 0);
	assert_int_equal(fsz, n);

	assert_int_equal(vfs->open(vfs, p, TV_OPEN_APPEND | how, &f), 0);
	assert_int_equal(vfs->append(f, "!", 1), 0);
	assert_int_equal(vfs->close(f), 0);
	assert_int_equal(vfs->open(vfs, p, TV_OPEN_READ, &rd), 0);
	assert_int_equal(vfs->read(rd, n - 3, back, 8, &got), 0);
	assert_int_equal(got, 4);
	assert_memory_equal(back, data + n - 3, 3);
	assert_int_equal(back[3], '!');
	assert_int_equal(vfs->close(rd), 0);
	free(data);
	free(back);
}

static void test_posix_mapped_append(void **state)
{
	check_positioned_append(state, TV_OPEN_MAPPED);
}

static void test_posix_zeroed_append(void **state)
{
	check_positioned_append(state, TV_OPEN_ZEROED);
}

/* ---- POSIX: names and directories ------------------------------------ */

static void test_posix_names(void **state)
{
	trove_vfs *vfs = tv_vfs_posix();
	const char *dir = *state;
	const char *a = path_in(dir, "a", 0), *b = path_in(dir, "b", 1);
	const char *sub = path_in(dir, "sub", 2);

	put_file(vfs, a, "A", 1);
	put_file(vfs, b, "B", 1);
	assert_int_equal(vfs->exists(vfs, a), 0);
	assert_int_equal(vfs->exists(vfs, path_in(dir, "zz", 3)), TROVE_ENOENT);

	/* rename replaces the target atomically. */
	assert_int_equal(vfs->rename(vfs, a, b), 0);
	assert_int_equal(vfs->exists(vfs, a), TROVE_ENOENT);
	assert_file(vfs, b, "A");
	assert_int_equal(vfs->rename(vfs, a, b), TROVE_ENOENT);

	assert_int_equal(vfs->mkdir(vfs, sub), 0);
	assert_int_equal(vfs->mkdir(vfs, sub), TROVE_EEXIST);
	assert_int_equal(vfs->sync_dir(vfs, dir), 0);
	assert_int_equal(vfs->sync_dir(vfs, path_in(dir, "nodir", 3)), TROVE_ENOENT);

	names n = {.count = 0};
	assert_int_equal(vfs->list_dir(vfs, dir, collect, &n), 0);
	assert_int_equal(n.count, 2);
	assert_non_null(strstr(n.list, "b,"));
	assert_non_null(strstr(n.list, "sub,"));
	assert_null(strstr(n.list, "."));
	names stop = {.stop_after = 1};
	assert_int_equal(vfs->list_dir(vfs, dir, collect, &stop), 42);
	assert_int_equal(stop.count, 1);
	assert_int_equal(vfs->list_dir(vfs, path_in(dir, "nodir", 3), collect, &n), TROVE_ENOENT);

	assert_int_equal(vfs->remove(vfs, b), 0);
	assert_int_equal(vfs->remove(vfs, b), TROVE_ENOENT);
	assert_int_equal(vfs->remove(vfs, sub), 0); /* empty directories too */
	assert_int_equal(vfs->exists(vfs, sub), TROVE_ENOENT);
}

static void test_posix_errors(void **state)
{
	trove_vfs *vfs = tv_vfs_posix();
	const char *dir = *state;
	tv_file *f = NULL;
	uint64_t sz = 77;

	assert_int_equal(vfs->open(vfs, path_in(dir, "missing", 0), TV_OPEN_READ, &f),
	                 TROVE_ENOENT);
	assert_null(f); /* out-parameters untouched on error */
	assert_int_equal(vfs->open(vfs, path_in(dir, "no/such", 0), TV_OPEN_APPEND, &f),
	                 TROVE_ENOENT);
	assert_int_equal(vfs->file_size(vfs, path_in(dir, "missing", 0), &sz), TROVE_ENOENT);
	assert_int_equal(sz, 77);
	assert_int_equal(vfs->open(vfs, path_in(dir, "x", 0), TV_OPEN_TRUNCATE, &f), TROVE_EINVAL);
	assert_int_equal(vfs->open(vfs, path_in(dir, "x", 0), 64 | TV_OPEN_APPEND, &f),
	                 TROVE_EINVAL);
	/* Reading a directory is an I/O error, not an errno leak. */
	assert_int_equal(vfs->open(vfs, dir, TV_OPEN_READ, &f), 0);
	char buf[8];
	size_t got = 5;
	assert_int_equal(vfs->read(f, 0, buf, sizeof buf, &got), TROVE_EIO);
	assert_int_equal(got, 5);
	assert_int_equal(vfs->close(f), 0);

	/* Permissions (root ignores them, so only checked for other users). */
	const char *ro = path_in(dir, "ro", 1);
	assert_int_equal(vfs->mkdir(vfs, ro), 0);
	assert_int_equal(chmod(ro, 0555), 0);
	if (geteuid() != 0)
		assert_int_equal(vfs->open(vfs, path_in(ro, "f", 2), TV_OPEN_APPEND, &f),
		                 TROVE_EACCES);
	assert_int_equal(chmod(ro, 0755), 0);
}

/* ---- POSIX: locks --------------------------------------------------- */

/* In a forked child: 1 if some process holds a write lock on path, as
 * the kernel sees it (F_GETLK on a fresh descriptor), 0 if not. */
static int child_sees_lock(const char *path)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_RDWR);
		struct flock fl;
		memset(&fl, 0, sizeof fl);
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0)
			_exit(2);
		_exit(fl.l_type == F_UNLCK ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 2);
	return WEXITSTATUS(status);
}

static void test_posix_lock_in_process(void **state)
{
	trove_vfs *vfs = tv_vfs_posix();
	const char *p = path_in(*state, "LOCK", 0);
	tv_file *l1, *l2 = NULL;

	assert_int_equal(vfs->lock(vfs, p, &l1), 0); /* creates the file */
	assert_int_equal(vfs->exists(vfs, p), 0);
	assert_int_equal(child_sees_lock(p), 1);
	assert_int_equal(vfs->lock(vfs, p, &l2), TROVE_ELOCKED);
	assert_null(l2);
	/* The refused second attempt must not have dropped the first lock. */
	assert_int_equal(child_sees_lock(p), 1);

	assert_int_equal(vfs->unlock(l1), 0);
	assert_int_equal(child_sees_lock(p), 0);
	assert_int_equal(vfs->lock(vfs, p, &l2), 0);
	assert_int_equal(vfs->unlock(l2), 0);
}

/* A lock held by another process refuses us until that process dies. */
static void test_posix_lock_other_process(void **state)
{
	trove_vfs *vfs = tv_vfs_posix();
	const char *p = path_in(*state, "LOCK", 0);
	int up[2], down[2];
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tv_file *l;
		char c = vfs->lock(vfs, p, &l) == 0 ? 'y' : 'n';
		if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(1);
		_exit(0); /* dies holding the lock */
	}
	char c = 0;
	assert_int_equal(read(up[0], &c, 1), 1);
	assert_int_equal(c, 'y');

	tv_file *l = NULL;
	assert_int_equal(vfs->lock(vfs, p, &l), TROVE_ELOCKED);
	assert_null(l);

	assert_int_equal(write(down[1], "x", 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(vfs->lock(vfs, p, &l), 0);
	assert_int_equal(vfs->unlock(l), 0);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

/* ---- Fault VFS: fixture and helpers ------------------------------ */

typedef struct fx {
	char *dir;
	tv_fault *fault;
	trove_vfs *v;     /* the fault VFS */
	trove_vfs *posix; /* to look at the disk behind its back */
} fx;

static int fault_setup(void **state)
{
	fx *x = calloc(1, sizeof *x);
	if (!x || !(x->dir = tu_tmpdir("vfsfault")) || !(x->fault = tv_fault_new(NULL)))
		return -1;
	x->v = tv_fault_vfs(x->fault);
	x->posix = tv_vfs_posix();
	*state = x;
	return 0;
}

static int fault_teardown(void **state)
{
	fx *x = *state;
	tv_fault_free(x->fault);
	tu_rmrf(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

static const char *fpath(fx *x, const char *name, int slot)
{
	return path_in(x->dir, name, slot);
}

/* Opens path for appending through vfs. */
static tv_file *open_app(trove_vfs *vfs, const char *path)
{
	tv_file *f = NULL;
	assert_int_equal(vfs->open(vfs, path, TV_OPEN_APPEND, &f), 0);
	return f;
}

static uint64_t disk_size(fx *x, const char *path)
{
	uint64_t sz;
	assert_int_equal(x->posix->file_size(x->posix, path, &sz), 0);
	return sz;
}

/* The names in dir as the real file system shows them (hidden ones too). */
static void disk_names(fx *x, const char *dir, names *n)
{
	memset(n, 0, sizeof *n);
	assert_int_equal(x->posix->list_dir(x->posix, dir, collect, n), 0);
}

/* Open descriptors of this process. */
static int count_fds(void)
{
	names n;
	memset(&n, 0, sizeof n);
	assert_int_equal(tv_vfs_posix()->list_dir(tv_vfs_posix(), "/proc/self/fd", collect, &n), 0);
	return n.count;
}

/* ---- Fault VFS: faults ---------------------------------------------- */

static void test_fault_passthrough_and_counts(void **state)
{
	fx *x = *state;
	const char *a = fpath(x, "a", 0), *b = fpath(x, "b", 1);
	tv_file *f = open_app(x->v, a);
	assert_ptr_equal(f->vfs, x->v);
	assert_int_equal(x->v->append(f, "abc", 3), 0);
	assert_int_equal(x->v->append(f, "de", 2), 0);
	assert_int_equal(x->v->sync(f), 0);
	assert_int_equal(x->v->close(f), 0);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), 0);
	assert_int_equal(x->v->rename(x->v, a, b), 0);
	assert_file(x->v, b, "abcde"); /* read-only open, one read */
	assert_int_equal(x->v->exists(x->v, a), TROVE_ENOENT);
	uint64_t sz;
	assert_int_equal(x->v->file_size(x->v, b, &sz), 0);
	assert_int_equal(sz, 5);

	assert_int_equal(tv_fault_count(x->fault, TV_FAULT_OPEN), 1);
	assert_int_equal(tv_fault_count(x->fault, TV_FAULT_WRITE), 2);
	assert_int_equal(tv_fault_count(x->fault, TV_FAULT_SYNC), 2);
	assert_int_equal(tv_fault_count(x->fault, TV_FAULT_RENAME), 1);
	assert_int_equal(tv_fault_count(x->fault, TV_FAULT_READ), 1);
	assert_false(tv_fault_crashed(x->fault));

	/* Errors of the base come through unchanged. */
	assert_int_equal(x->v->open(x->v, a, TV_OPEN_READ, &f), TROVE_ENOENT);
	assert_int_equal(x->v->open(x->v, b, TV_OPEN_APPEND | TV_OPEN_EXCL, &f), TROVE_EEXIST);
	assert_int_equal(x->v->remove(x->v, a), TROVE_ENOENT);
	assert_int_equal(x->v->mkdir(x->v, x->dir), TROVE_EEXIST);

	/* Locks pass through, the in-process rule included. */
	tv_file *l1, *l2;
	assert_int_equal(x->v->lock(x->v, fpath(x, "LOCK", 2), &l1), 0);
	assert_int_equal(x->v->lock(x->v, fpath(x, "LOCK", 2), &l2), TROVE_ELOCKED);
	assert_int_equal(x->v->unlock(l1), 0);
}

static void test_fault_nth_write_eio(void **state)
{
	fx *x = *state;
	tv_file *f = open_app(x->v, fpath(x, "a", 0));
	assert_int_equal(x->v->append(f, "1", 1), 0); /* counted before the arm */
	tv_fault_arm(x->fault, TV_FAULT_WRITE, 3, TV_FAULT_EIO, 0);
	assert_int_equal(x->v->append(f, "2", 1), 0);
	assert_int_equal(x->v->append(f, "3", 1), 0);
	assert_int_equal(x->v->append(f, "4", 1), TROVE_EIO); /* the 3rd since the arm */
	assert_int_equal(x->v->append(f, "5", 1), 0);         /* one-shot */
	assert_int_equal(x->v->close(f), 0);
	assert_file(x->v, fpath(x, "a", 0), "1235"); /* nothing of the failed call */
	assert_int_equal(tv_fault_count(x->fault, TV_FAULT_WRITE), 5);
	assert_false(tv_fault_crashed(x->fault));
}

static void test_fault_sticky_enospc_then_clear(void **state)
{
	fx *x = *state;
	tv_file *f = open_app(x->v, fpath(x, "a", 0));
	tv_fault_arm(x->fault, TV_FAULT_WRITE, 2, TV_FAULT_ENOSPC, 1);
	assert_int_equal(x->v->append(f, "a", 1), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(x->v->append(f, "b", 1), TROVE_ENOSPC);
	assert_int_equal(x->v->sync(f), 0); /* other kinds of call are unaffected */
	tv_fault_clear(x->fault);
	assert_int_equal(x->v->append(f, "c", 1), 0);
	assert_int_equal(x->v->close(f), 0);
	assert_file(x->v, fpath(x, "a", 0), "ac");
	assert_int_equal(tv_fault_count(x->fault, TV_FAULT_WRITE), 7); /* failures count */
}

static void test_fault_short_write(void **state)
{
	fx *x = *state;
	tv_file *f = open_app(x->v, fpath(x, "a", 0));
	tv_fault_arm(x->fault, TV_FAULT_WRITE, 1, TV_FAULT_SHORT, 0);
	assert_int_equal(x->v->append(f, "0123456789", 10), TROVE_ENOSPC);
	assert_int_equal(x->v->close(f), 0);
	assert_file(x->v, fpath(x, "a", 0), "01234");
}

static void test_fault_torn_write(void **state)
{
	fx *x = *state;
	const char *data = "ABCDEFGHIJKLMNOP"; /* 16 bytes */
	tv_file *f = open_app(x->v, fpath(x, "a", 0));
	tv_fault_arm(x->fault, TV_FAULT_WRITE, 1, TV_FAULT_TORN, 0);
	assert_int_equal(x->v->append(f, data, 16), TROVE_EIO);
	assert_int_equal(x->v->close(f), 0);
	char buf[64];
	assert_int_equal(get_file(x->v, fpath(x, "a", 0), buf, sizeof buf), 8);
	assert_memory_equal(buf, data, 4); /* the start landed */
	for (int i = 4; i < 8; i++)
		assert_int_not_equal(buf[i], data[i]); /* the rest is garbage */
}

/* A fault on each other kind of call fails it and changes nothing. */
static void test_fault_other_ops(void **state)
{
	fx *x = *state;
	const char *a = fpath(x, "a", 0), *b = fpath(x, "b", 1);
	tv_file *f;

	tv_fault_arm(x->fault, TV_FAULT_OPEN, 1, TV_FAULT_ENOSPC, 0);
	assert_int_equal(x->v->open(x->v, a, TV_OPEN_APPEND, &f), TROVE_ENOSPC);
	assert_int_equal(x->posix->exists(x->posix, a), TROVE_ENOENT); /* not created */

	f = open_app(x->v, a);
	assert_int_equal(x->v->append(f, "data", 4), 0);
	tv_fault_arm(x->fault, TV_FAULT_SYNC, 1, TV_FAULT_EIO, 0);
	assert_int_equal(x->v->sync(f), TROVE_EIO);
	assert_int_equal(x->v->close(f), 0);

	tv_fault_arm(x->fault, TV_FAULT_RENAME, 1, TV_FAULT_EIO, 0);
	assert_int_equal(x->v->rename(x->v, a, b), TROVE_EIO);
	assert_int_equal(x->posix->exists(x->posix, a), 0);
	assert_int_equal(x->posix->exists(x->posix, b), TROVE_ENOENT);

	tv_fault_arm(x->fault, TV_FAULT_READ, 1, TV_FAULT_EIO, 0);
	char buf[16];
	assert_int_equal(get_file(x->v, a, buf, sizeof buf), TROVE_EIO);
	assert_int_equal(get_file(x->v, a, buf, sizeof buf), 4);

	tv_fault_arm(x->fault, TV_FAULT_SYNC, 1, TV_FAULT_ENOSPC, 0);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), TROVE_ENOSPC);

	/* The failed syncs made nothing durable: a power loss takes it all. */
	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_int_equal(x->posix->exists(x->posix, a), TROVE_ENOENT);
}

static void test_fault_crash(void **state)
{
	fx *x = *state;
	const char *a = fpath(x, "a", 0), *b = fpath(x, "b", 1);
	put_file(x->posix, b, "B", 1);
	int fds = count_fds();
	tv_file *f = open_app(x->v, a);
	tv_file *r;
	assert_int_equal(x->v->open(x->v, b, TV_OPEN_READ, &r), 0);
	tv_file *l;
	assert_int_equal(x->v->lock(x->v, fpath(x, "LOCK", 2), &l), 0);

	tv_fault_arm(x->fault, TV_FAULT_WRITE, 2, TV_FAULT_CRASH, 0);
	assert_int_equal(x->v->append(f, "one", 3), 0);
	assert_int_equal(x->v->append(f, "two", 3), TROVE_EIO);
	assert_true(tv_fault_crashed(x->fault));

	/* Every later call of any kind fails, and touches nothing. */
	char buf[8];
	size_t got;
	uint64_t sz;
	tv_file *g;
	names n = {.count = 0};
	assert_int_equal(x->v->append(f, "three", 5), TROVE_EIO);
	assert_int_equal(x->v->sync(f), TROVE_EIO);
	assert_int_equal(x->v->size(f, &sz), TROVE_EIO);
	assert_int_equal(x->v->read(r, 0, buf, sizeof buf, &got), TROVE_EIO);
	assert_int_equal(x->v->open(x->v, b, TV_OPEN_READ, &g), TROVE_EIO);
	assert_int_equal(x->v->open(x->v, fpath(x, "c", 3), TV_OPEN_APPEND, &g), TROVE_EIO);
	assert_int_equal(x->v->rename(x->v, b, a), TROVE_EIO);
	assert_int_equal(x->v->remove(x->v, b), TROVE_EIO);
	assert_int_equal(x->v->mkdir(x->v, fpath(x, "d", 3)), TROVE_EIO);
	assert_int_equal(x->v->list_dir(x->v, x->dir, collect, &n), TROVE_EIO);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), TROVE_EIO);
	assert_int_equal(x->v->exists(x->v, b), TROVE_EIO);
	assert_int_equal(x->v->file_size(x->v, b, &sz), TROVE_EIO);
	assert_int_equal(x->v->lock(x->v, fpath(x, "LOCK2", 3), &g), TROVE_EIO);
	assert_int_equal(n.count, 0);

	/* close and unlock report the crash but really release everything. */
	assert_int_equal(x->v->close(f), TROVE_EIO);
	assert_int_equal(x->v->close(r), TROVE_EIO);
	assert_int_equal(x->v->unlock(l), TROVE_EIO);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(x->posix->lock(x->posix, fpath(x, "LOCK", 2), &l), 0);
	assert_int_equal(x->posix->unlock(l), 0);

	assert_file(x->posix, a, "one");
	assert_file(x->posix, b, "B");
	assert_int_equal(x->posix->exists(x->posix, fpath(x, "c", 3)), TROVE_ENOENT);
	assert_int_equal(x->posix->exists(x->posix, fpath(x, "d", 3)), TROVE_ENOENT);

	tv_fault_clear(x->fault);
	assert_false(tv_fault_crashed(x->fault));
	assert_int_equal(x->v->exists(x->v, b), 0);
	assert_int_equal(tv_fault_count(x->fault, TV_FAULT_WRITE), 3);
}

/* ---- Fault VFS: power loss ------------------------------------------ */

static void test_fault_power_loss_truncates(void **state)
{
	fx *x = *state;
	const char *old = fpath(x, "old", 0), *fresh = fpath(x, "new", 1);
	put_file(x->posix, old, "old", 0); /* there before the fault VFS */

	tv_file *f = open_app(x->v, old);
	assert_int_equal(x->v->append(f, "AAAA", 4), 0);
	assert_int_equal(x->v->sync(f), 0);
	assert_int_equal(x->v->append(f, "BBBB", 4), 0);
	assert_int_equal(x->v->close(f), 0);

	f = open_app(x->v, fresh);
	assert_int_equal(x->v->append(f, "synced", 6), 0);
	assert_int_equal(x->v->sync(f), 0);
	assert_int_equal(x->v->append(f, "-lost", 5), 0);
	assert_int_equal(x->v->close(f), 0);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), 0);

	/* A file only reopened, never synced, keeps what it had. */
	f = open_app(x->v, fresh);
	assert_int_equal(x->v->close(f), 0);

	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_file(x->posix, old, "oldAAAA");
	assert_file(x->posix, fresh, "synced");
}

static void test_fault_power_loss_removes_new_files(void **state)
{
	fx *x = *state;
	const char *kept = fpath(x, "kept", 0), *lost = fpath(x, "lost", 1);
	put_file(x->v, kept, "K", 1);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), 0);
	put_file(x->v, lost, "L", 1); /* synced data, but not its name */

	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_file(x->posix, kept, "K");
	assert_int_equal(x->posix->exists(x->posix, lost), TROVE_ENOENT);
}

/* Writes tmp, syncs it and renames it over CURRENT, as a manifest switch
 * does; syncs the directory (spelled with a trailing "/") if asked. */
static void switch_current(fx *x, int sync_dir)
{
	const char *tmp = fpath(x, "CURRENT.tmp", 0), *cur = fpath(x, "CURRENT", 1);
	put_file(x->v, tmp, "new", 1);
	assert_int_equal(x->v->rename(x->v, tmp, cur), 0);
	names n;
	memset(&n, 0, sizeof n);
	assert_int_equal(x->v->list_dir(x->v, x->dir, collect, &n), 0);
	assert_string_equal(n.list, "CURRENT,"); /* the kept old file is hidden */
	if (sync_dir)
		assert_int_equal(x->v->sync_dir(x->v, fpath(x, "", 2)), 0);
}

static void test_fault_current_unsynced_rename(void **state)
{
	fx *x = *state;
	put_file(x->posix, fpath(x, "CURRENT", 1), "old", 1);
	switch_current(x, 0);
	assert_file(x->posix, fpath(x, "CURRENT", 1), "new");

	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_file(x->posix, fpath(x, "CURRENT", 1), "old");
	names n;
	disk_names(x, x->dir, &n);
	assert_string_equal(n.list, "CURRENT,"); /* the tmp file vanished too */
}

static void test_fault_current_synced_rename(void **state)
{
	fx *x = *state;
	put_file(x->posix, fpath(x, "CURRENT", 1), "old", 1);
	switch_current(x, 1);

	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_file(x->posix, fpath(x, "CURRENT", 1), "new");
	names n;
	disk_names(x, x->dir, &n);
	assert_string_equal(n.list, "CURRENT,"); /* the old one is really gone */
}

static void test_fault_power_loss_restores_removed(void **state)
{
	fx *x = *state;
	const char *a = fpath(x, "a", 0), *b = fpath(x, "b", 1);
	put_file(x->posix, a, "AAA", 1);
	put_file(x->v, b, "BBB", 1);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), 0);

	assert_int_equal(x->v->remove(x->v, a), 0);
	assert_int_equal(x->v->remove(x->v, b), 0);
	assert_int_equal(x->v->exists(x->v, a), TROVE_ENOENT);
	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_file(x->posix, a, "AAA");
	assert_file(x->posix, b, "BBB");

	assert_int_equal(x->v->remove(x->v, a), 0);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), 0);
	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_int_equal(x->posix->exists(x->posix, a), TROVE_ENOENT);
	names n;
	disk_names(x, x->dir, &n);
	assert_string_equal(n.list, "b,");
}

/* A file's durable length follows it through a rename. */
static void test_fault_power_loss_follows_renames(void **state)
{
	fx *x = *state;
	const char *a = fpath(x, "a", 0), *b = fpath(x, "b", 1);
	tv_file *f = open_app(x->v, a);
	assert_int_equal(x->v->append(f, "durable", 7), 0);
	assert_int_equal(x->v->sync(f), 0);
	assert_int_equal(x->v->append(f, "+tail", 5), 0);
	assert_int_equal(x->v->rename(x->v, a, b), 0);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), 0);
	assert_int_equal(x->v->close(f), 0);

	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_file(x->posix, b, "durable");
	assert_int_equal(x->posix->exists(x->posix, a), TROVE_ENOENT);
}

/* A directory whose creation was not synced (in its parent) vanishes
 * with everything in it, even files synced inside it. */
static void test_fault_power_loss_undoes_mkdir(void **state)
{
	fx *x = *state;
	const char *kept = fpath(x, "kept", 0), *gone = fpath(x, "gone", 1);
	assert_int_equal(x->v->mkdir(x->v, kept), 0);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), 0);
	put_file(x->v, path_in(kept, "f", 2), "F", 1);
	assert_int_equal(x->v->sync_dir(x->v, kept), 0);
	assert_int_equal(x->v->mkdir(x->v, path_in(kept, "sub", 3)), 0);

	assert_int_equal(x->v->mkdir(x->v, gone), 0);
	put_file(x->v, path_in(gone, "f", 2), "F", 1);
	assert_int_equal(x->v->sync_dir(x->v, gone), 0);

	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_file(x->posix, path_in(kept, "f", 2), "F");
	assert_int_equal(x->posix->exists(x->posix, path_in(kept, "sub", 3)), TROVE_ENOENT);
	assert_int_equal(x->posix->exists(x->posix, gone), TROVE_ENOENT);
}

/* Fills p with bytes that are never all the same nor mostly zero. */
static void fill_pattern(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + 3);
}

/* Tear mode keeps the synced prefix intact and some of the tail, with a
 * few bytes of that tail garbled; the same seed tears the same way. */
static void test_fault_power_loss_tear(void **state)
{
	fx *x = *state;
	enum { SYNCED = 100, TAIL = 1000 };
	unsigned char data[SYNCED + TAIL];
	fill_pattern(data, sizeof data);
	const char *a = fpath(x, "a", 0);
	uint64_t seed = tu_seed("test_fault_power_loss_tear");
	int kept_some = 0, garbled_some = 0;
	uint64_t first_len = 0;
	unsigned char first[SYNCED + TAIL];

	for (int round = 0; round < 20; round++) {
		put_file(x->posix, a, "", 1);
		tv_file *f = open_app(x->v, a);
		assert_int_equal(x->v->append(f, data, SYNCED), 0);
		assert_int_equal(x->v->sync(f), 0);
		assert_int_equal(x->v->append(f, data + SYNCED, TAIL), 0);
		assert_int_equal(x->v->close(f), 0);
		/* Rounds 0 and 1 use one seed, to check repeatability. */
		assert_int_equal(
		        tv_fault_power_loss(x->fault, 1, seed + (round > 0 ? round - 1 : 0)), 0);

		unsigned char back[SYNCED + TAIL + 1];
		uint64_t len = disk_size(x, a);
		assert_in_range(len, SYNCED, SYNCED + TAIL);
		tv_file *r;
		size_t got;
		assert_int_equal(x->posix->open(x->posix, a, TV_OPEN_READ, &r), 0);
		assert_int_equal(x->posix->read(r, 0, back, sizeof back, &got), 0);
		assert_int_equal(x->posix->close(r), 0);
		assert_int_equal(got, len);
		assert_memory_equal(back, data, SYNCED);
		int diff = 0;
		for (size_t i = SYNCED; i < len; i++)
			diff += back[i] != data[i];
		assert_true(diff <= 4);
		if (len > SYNCED) {
			kept_some = 1;
			assert_true(diff >= 1);
		}
		garbled_some |= diff > 0;
		if (round == 0) {
			first_len = len;
			memcpy(first, back, len);
		} else if (round == 1) {
			assert_int_equal(len, first_len);
			assert_memory_equal(back, first, len);
		}
		names n;
		disk_names(x, x->dir, &n);
		assert_string_equal(n.list, "a,"); /* no scratch file left */
	}
	assert_true(kept_some);
	assert_true(garbled_some);
}


/* A file opened TV_OPEN_ZEROED: a power loss keeps its synced size, the
 * appends since the sync turned back into zeros; with tear, any of those
 * bytes may have reached the disk or not (a hole of zeros among them, a
 * few garbled), and the size lies between the synced one and the size
 * at close. */
static void test_fault_power_loss_zeroed(void **state)
{
	fx *x = *state;
	enum { SYNCED = 100, TAIL = 3000 };
	unsigned char data[SYNCED + TAIL];
	fill_pattern(data, sizeof data);
	const char *a = fpath(x, "z", 0);
	uint64_t seed = tu_seed("test_fault_power_loss_zeroed");
	int lost_some = 0, kept_some = 0;
	for (int round = 0; round < 40; round++) {
		put_file(x->posix, a, "", 1);
		tv_file *f;
		assert_int_equal(x->v->open(x->v, a, TV_OPEN_APPEND | TV_OPEN_ZEROED, &f), 0);
		assert_int_equal(x->v->append(f, data, SYNCED), 0);
		assert_int_equal(x->v->sync(f), 0);
		uint64_t zsize = disk_size(x, a);
		assert_true(zsize > SYNCED + TAIL);
		assert_int_equal(x->v->append(f, data + SYNCED, TAIL), 0);
		assert_int_equal(x->v->close(f), 0);
		assert_int_equal(disk_size(x, a), SYNCED + TAIL);
		int tear = round > 0;
		assert_int_equal(tv_fault_power_loss(x->fault, tear, seed + (uint64_t)round), 0);

		uint64_t len = disk_size(x, a);
		assert_in_range(len, tear ? SYNCED + TAIL : zsize, zsize);
		unsigned char *back = malloc((size_t)len + 1);
		assert_non_null(back);
		tv_file *r;
		size_t got;
		assert_int_equal(x->posix->open(x->posix, a, TV_OPEN_READ, &r), 0);
		assert_int_equal(x->posix->read(r, 0, back, (size_t)len + 1, &got), 0);
		assert_int_equal(x->posix->close(r), 0);
		assert_int_equal(got, len);
		assert_memory_equal(back, data, SYNCED);
		int garbled = 0;
		for (size_t i = SYNCED; i < SYNCED + TAIL; i++) {
			lost_some |= back[i] == 0 && data[i] != 0;
			kept_some |= back[i] == data[i] && data[i] != 0;
			garbled += back[i] != data[i] && back[i] != 0;
		}
		assert_true(garbled <= 4);
		if (!tear)
			assert_int_equal(garbled + kept_some, 0);
		for (uint64_t i = SYNCED + TAIL; i < len; i++)
			assert_int_equal(back[i], 0);
		free(back);
	}
	assert_true(lost_some && kept_some);
}
/* Handles from before a power loss are dead, but close still frees them. */
static void test_fault_power_loss_kills_handles(void **state)
{
	fx *x = *state;
	const char *a = fpath(x, "a", 0);
	put_file(x->v, a, "A", 1);
	assert_int_equal(x->v->sync_dir(x->v, x->dir), 0);
	tv_file *f = open_app(x->v, a);
	assert_int_equal(tv_fault_power_loss(x->fault, 0, 1), 0);
	assert_int_equal(x->v->append(f, "zombie", 6), TROVE_EIO);
	assert_int_equal(x->v->sync(f), TROVE_EIO);
	assert_int_equal(x->v->close(f), TROVE_EIO);
	assert_file(x->v, a, "A"); /* new handles work */
}

/* Freeing the fault VFS settles what is pending: no hidden file stays. */
static void test_fault_free_deletes_hidden(void **state)
{
	fx *x = *state;
	put_file(x->posix, fpath(x, "a", 0), "A", 1);
	put_file(x->posix, fpath(x, "b", 1), "B", 1);
	assert_int_equal(x->v->remove(x->v, fpath(x, "a", 0)), 0);
	put_file(x->v, fpath(x, "c", 2), "C", 1);
	assert_int_equal(x->v->rename(x->v, fpath(x, "c", 2), fpath(x, "b", 1)), 0);
	names n;
	disk_names(x, x->dir, &n);
	assert_int_equal(n.count, 3); /* b and the two hidden old files */
	tv_fault_free(x->fault);
	x->fault = NULL;
	disk_names(x, x->dir, &n);
	assert_string_equal(n.list, "b,");
	assert_file(x->posix, fpath(x, "b", 1), "C");
}

/* ---- Fault VFS: threads --------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 200, CRASH_AT = 321 };

typedef struct worker {
	trove_vfs *v;
	tv_file *f;
	int ok;
} worker;

static void *append_many(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < PER_THREAD; i++)
		w->ok += w->v->append(w->f, "x", 1) == 0;
	return NULL;
}

/* A crash armed while threads append lands at exactly one call: every
 * call before it succeeded and wrote, none after it did. */
static void test_fault_crash_across_threads(void **state)
{
	fx *x = *state;
	worker w[THREADS];
	pthread_t t[THREADS];
	char name[16];
	tv_fault_arm(x->fault, TV_FAULT_WRITE, CRASH_AT, TV_FAULT_CRASH, 0);
	for (int i = 0; i < THREADS; i++) {
		snprintf(name, sizeof name, "f%d", i);
		w[i] = (worker){.v = x->v, .f = open_app(x->v, fpath(x, name, 0)), .ok = 0};
	}
	for (int i = 0; i < THREADS; i++) /* started once every file is open */
		assert_int_equal(pthread_create(&t[i], NULL, append_many, &w[i]), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	uint64_t total_ok = 0, total_size = 0;
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(x->v->close(w[i].f), TROVE_EIO); /* the crash came */
		snprintf(name, sizeof name, "f%d", i);
		total_ok += (uint64_t)w[i].ok;
		total_size += disk_size(x, fpath(x, name, 0));
	}
	assert_int_equal(total_ok, CRASH_AT - 1);
	assert_int_equal(total_size, CRASH_AT - 1);
	assert_int_equal(tv_fault_count(x->fault, TV_FAULT_WRITE), THREADS * PER_THREAD);
}

#define POSIX_TEST(t) cmocka_unit_test_setup_teardown(t, dir_setup, dir_teardown)
#define FAULT_TEST(t) cmocka_unit_test_setup_teardown(t, fault_setup, fault_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        POSIX_TEST(test_posix_append_read_size),
	        POSIX_TEST(test_posix_large_append),
	        POSIX_TEST(test_posix_mapped_append),
	        POSIX_TEST(test_posix_zeroed_append),
	        POSIX_TEST(test_posix_names),
	        POSIX_TEST(test_posix_errors),
	        POSIX_TEST(test_posix_lock_in_process),
	        POSIX_TEST(test_posix_lock_other_process),
	        FAULT_TEST(test_fault_passthrough_and_counts),
	        FAULT_TEST(test_fault_nth_write_eio),
	        FAULT_TEST(test_fault_sticky_enospc_then_clear),
	        FAULT_TEST(test_fault_short_write),
	        FAULT_TEST(test_fault_torn_write),
	        FAULT_TEST(test_fault_other_ops),
	        FAULT_TEST(test_fault_crash),
	        FAULT_TEST(test_fault_power_loss_truncates),
	        FAULT_TEST(test_fault_power_loss_removes_new_files),
	        FAULT_TEST(test_fault_current_unsynced_rename),
	        FAULT_TEST(test_fault_current_synced_rename),
	        FAULT_TEST(test_fault_power_loss_restores_removed),
	        FAULT_TEST(test_fault_power_loss_follows_renames),
	        FAULT_TEST(test_fault_power_loss_undoes_mkdir),
	        FAULT_TEST(test_fault_power_loss_tear),
	        FAULT_TEST(test_fault_power_loss_zeroed),
	        FAULT_TEST(test_fault_power_loss_kills_handles),
	        FAULT_TEST(test_fault_free_deletes_hidden),
	        FAULT_TEST(test_fault_crash_across_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
