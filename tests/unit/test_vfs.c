/*
 * test_vfs.c - tests of the VFS layer: the POSIX implementation and the
 * fault-injecting one.
 *
 * The POSIX tests pin down the contract of vfs.h on a real directory:
 * appends, positional reads, names, listings, errno mapping and the
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
	unsigned char *data = malloc(n), *back = malloc(n);
	assert_non_null(data);
	assert_non_null(back);
	tu_rng r;
	tu_rng_seed(&r, 7);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)tu_rand(&r);

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
	assert_int_equal(vfs->list_dir(vfs, path_in(dir, "nodir", 3), collect, &n),
	                 TROVE_ENOENT);

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
	assert_int_equal(vfs->open(vfs, path_in(dir, "x", 0), TV_OPEN_TRUNCATE, &f),
	                 TROVE_EINVAL);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_posix_append_read_size, dir_setup,
		                                dir_teardown),
		cmocka_unit_test_setup_teardown(test_posix_large_append, dir_setup,
		                                dir_teardown),
		cmocka_unit_test_setup_teardown(test_posix_names, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_posix_errors, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_posix_lock_in_process, dir_setup,
		                                dir_teardown),
		cmocka_unit_test_setup_teardown(test_posix_lock_other_process, dir_setup,
		                                dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
