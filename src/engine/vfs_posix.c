/*
 * vfs_posix.c - the default VFS: plain POSIX files (see vfs.h).
 *
 * Each trove_vfs call maps onto one or a few system calls: open with
 * O_CLOEXEC, appends that loop over short writes and EINTR, positional
 * reads, fdatasync for files and fsync for directories, and an exclusive
 * fcntl write lock for the database's LOCK file.  errno is turned into a
 * TROVE_E* code at the edge of every function and never escapes.
 *
 * A file opened with TV_OPEN_MAPPED takes its appends as stores into a
 * shared mapping of a window of the file (64 KiB, doubling with each move
 * up to MAP_WINDOW, so a small log stays small; reserved with
 * posix_fallocate before it is mapped, since a store into a hole the disk
 * has no room for raises SIGBUS instead of returning ENOSPC).  A store
 * costs a memcpy where a write(2) costs a system call and the file
 * system's locking; like a write(2), it is in the page cache when it
 * returns.  Closing the file cuts the unused rest of the window off.
 *
 * A file opened with TV_OPEN_ZEROED takes its appends as pwrites over
 * zeros written ahead of them (as much as the file holds, 64 KiB to
 * ZERO_AHEAD_MAX at a time).  The sync that first covers a run of zeros
 * commits the new size and blocks with it; the syncs after appends into
 * it then write data blocks only.  On ext4, an fdatasync after an append
 * that grew the file also waits for a journal commit (docs/ENGINE.md, "The
 * write path", has the measurements).  The zeros must be written, not
 * reserved: a posix_fallocate'd block is "unwritten", and the
 * first write into it changes the extent map, which the sync must commit.
 * Closing the file cuts the zeros past the last append off.
 *
 * POSIX record locks belong to the process, not to the descriptor: a
 * second open of a locked file in the same process would "succeed", and
 * closing that second descriptor would silently drop the first lock.  So
 * locks also go through a process-wide registry of locked files (the one
 * piece of global state here, which only exists because the kernel's lock
 * table is process-wide too), checked before a descriptor is ever opened.
 * Where the kernel has open-file-description locks (Linux), those are used
 * instead of classic ones, which closes the remaining window.
 *
 * This module must never buffer data, retry a failed fsync (its error may
 * mean the data is gone) or let errno leak to a caller.
 */
#include "vfs.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open-file-description locks conflict between two opens in one process
 * and are not dropped by closing some other descriptor of the file. */
#ifdef F_OFD_SETLK
#define POSIX_SETLK F_OFD_SETLK
#else
#define POSIX_SETLK F_SETLK
#endif

typedef struct posix_file posix_file;
struct posix_file {
	struct tv_file base; /* must stay first */
	int fd;
	int is_lock; /* opened by lock(); closing it unlocks */
	dev_t dev;   /* identity of a lock file */
	ino_t ino;
	posix_file *next_lock; /* the registry of held locks */
	/* TV_OPEN_MAPPED: file bytes [map_off, map_off + map_len) are mapped
	 * at map (NULL before the first append), and `end` bytes have been
	 * appended. */
	int mapped;
	char *map;
	uint64_t map_off;
	size_t map_len;
	uint64_t end;
	/* TV_OPEN_ZEROED: appends go at `end` (as for a mapped file), and
	 * the file holds zeros written up to zend. */
	int zeroed;
	uint64_t zend;
};

/* A mapped file's first window, and its largest: about 7000 log records
 * of the benchmark's size between two moves, and at most this much of the
 * file resident in the process's address space (unless one append needs
 * more). */
#define MAP_WINDOW_FIRST (64u << 10)
#define MAP_WINDOW (1u << 20)
/* Appends of at least this many bytes are written, not mapped. */
#define MAP_LARGE (16u << 10)
/* A TV_OPEN_ZEROED file is kept ahead of its appends by as many zero
 * bytes as it holds, at least the first and at most the max. */
#define ZERO_AHEAD_FIRST (64u << 10)
#define ZERO_AHEAD_MAX (4u << 20)
#define ZERO_BUF (64u << 10)

static trove_vfs posix_vfs;

/* Held locks, one entry per lock file open in this process. */
static pthread_mutex_t lock_mu = PTHREAD_MUTEX_INITIALIZER;
static posix_file *lock_list;

/* Maps an errno value to a TROVE_E* code as vfs.h specifies. */
static int posix_err(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return TROVE_ENOSPC;
	case ENOENT:
		return TROVE_ENOENT;
	case EEXIST:
		return TROVE_EEXIST;
	case EACCES:
	case EPERM:
	case EROFS:
		return TROVE_EACCES;
	default:
		return TROVE_EIO;
	}
}

/* The posix_file behind f, which must have been opened by this VFS. */
static posix_file *pfile(tv_file *f)
{
	assert(f != NULL && f->vfs == &posix_vfs);
	return (posix_file *)f;
}

/* Wraps descriptor fd in a new posix_file; NULL on ENOMEM (fd untouched). */
static posix_file *pfile_new(int fd)
{
	posix_file *pf = calloc(1, sizeof *pf);
	if (!pf)
		return NULL;
	pf->base.vfs = &posix_vfs;
	pf->fd = fd;
	return pf;
}

/* ---- Files ---------------------------------------------------------- */

/* Opens path as flags (TV_OPEN_*) say.  TROVE_EINVAL for TRUNCATE or EXCL
 * without APPEND, or unknown bits. */
static int posix_open(trove_vfs *vfs, const char *path, int flags, tv_file **out)
{
	assert(vfs == &posix_vfs);
	const int known = TV_OPEN_APPEND | TV_OPEN_TRUNCATE | TV_OPEN_EXCL | TV_OPEN_MAPPED |
	                  TV_OPEN_ZEROED;
	const int positioned = TV_OPEN_MAPPED | TV_OPEN_ZEROED;
	if ((flags & ~known) ||
	    ((flags & (TV_OPEN_TRUNCATE | TV_OPEN_EXCL | positioned)) && !(flags & TV_OPEN_APPEND)) ||
	    (flags & positioned) == positioned)
		return TROVE_EINVAL;

	int oflags = O_RDONLY | O_CLOEXEC;
	if (flags & TV_OPEN_APPEND) {
		/* A shared writable mapping needs a descriptor open for reading;
		 * a zeroed file is written at offsets, which O_APPEND ignores. */
		oflags = (flags & TV_OPEN_MAPPED)   ? O_RDWR | O_CREAT | O_CLOEXEC
		         : (flags & TV_OPEN_ZEROED) ? O_WRONLY | O_CREAT | O_CLOEXEC
		                                    : O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
		if (flags & TV_OPEN_TRUNCATE)
			oflags |= O_TRUNC;
		if (flags & TV_OPEN_EXCL)
			oflags |= O_EXCL;
	}
	int fd = open(path, oflags, 0644);
	if (fd < 0)
		return posix_err(errno);
	struct stat st;
	if ((flags & positioned) && fstat(fd, &st) != 0) {
		int err = posix_err(errno);
		close(fd);
		return err;
	}
	posix_file *pf = pfile_new(fd);
	if (!pf) {
		close(fd);
		return TROVE_ENOMEM;
	}
	if (flags & positioned) {
		pf->mapped = (flags & TV_OPEN_MAPPED) != 0;
		pf->zeroed = (flags & TV_OPEN_ZEROED) != 0;
		pf->end = pf->zend = (uint64_t)st.st_size;
	}
	*out = &pf->base;
	return 0;
}

/* pread until n bytes or end of file; *got < n only at end of file. */
static int posix_read(tv_file *f, uint64_t off, void *buf, size_t n, size_t *got)
{
	posix_file *pf = pfile(f);
	assert(off <= (uint64_t)INT64_MAX - n);
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(pf->fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return posix_err(errno);
		}
		if (r == 0)
			break; /* end of file */
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

/* Writes all n bytes at offset `at` (at < 0: at the file position),
 * resuming after short writes and EINTR; on error some prefix of buf may
 * have been written. */
static int write_all(int fd, const void *buf, size_t n, int64_t at)
{
	size_t done = 0;
	while (done < n) {
		const char *p = (const char *)buf + done;
		ssize_t w = at < 0 ? write(fd, p, n - done) : pwrite(fd, p, n - done, (off_t)at + (off_t)done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return posix_err(errno);
		}
		if (w == 0)
			return TROVE_EIO; /* no progress and no reason: do not spin */
		done += (size_t)w;
	}
	return 0;
}

/* Unmaps the window, if any. */
static void unmap_window(posix_file *pf)
{
	if (pf->map)
		munmap(pf->map, pf->map_len);
	pf->map = NULL;
	pf->map_len = 0;
}

/* Maps a new window covering [end, end + n): from the page that holds
 * `end`, twice the last window's bytes (MAP_WINDOW_FIRST at first, at most
 * MAP_WINDOW) or as many whole pages as n needs.  The space is
 * allocated first, so stores into it cannot fail; ENOSPC is returned here
 * instead.  On error the file has no window (and may have grown by zeros,
 * which its readers take as its end). */
static int map_window(posix_file *pf, size_t n)
{
	uint64_t want = pf->map_len ? 2 * (uint64_t)pf->map_len : MAP_WINDOW_FIRST;
	if (want > MAP_WINDOW)
		want = MAP_WINDOW;
	unmap_window(pf);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = pf->end - pf->end % page;
	uint64_t need = pf->end - start + n;
	uint64_t len = need > want ? (need + page - 1) / page * page : want;
	int e = posix_fallocate(pf->fd, (off_t)start, (off_t)len);
	if (e != 0)
		return posix_err(e);
	void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, pf->fd, (off_t)start);
	if (p == MAP_FAILED)
		return posix_err(errno);
	pf->map = p;
	pf->map_off = start;
	pf->map_len = (size_t)len;
	return 0;
}

/* Appends by copying into the window, moving it first if buf does not
 * fit.  A record of MAP_LARGE bytes or more goes in with one pwrite, which
 * copies it into the same page cache for less than a fault per page. */
static int mapped_append(posix_file *pf, const void *buf, size_t n)
{
	if (n >= MAP_LARGE) {
		int rc = write_all(pf->fd, buf, n, (int64_t)pf->end);
		if (rc == 0)
			pf->end += n;
		return rc;
	}
	if (!pf->map || pf->end + n > pf->map_off + pf->map_len) {
		int rc = map_window(pf, n);
		if (rc)
			return rc;
	}
	memcpy(pf->map + (pf->end - pf->map_off), buf, n);
	pf->end += n;
	return 0;
}

/* Writes zeros from zend on, so that the file holds them up to past
 * end + n by as many bytes as end (ZERO_AHEAD_FIRST to ZERO_AHEAD_MAX).
 * On error the file may hold some of them. */
static int zero_ahead(posix_file *pf, size_t n)
{
	static const char zeros[ZERO_BUF];
	uint64_t ahead = pf->end < ZERO_AHEAD_FIRST ? ZERO_AHEAD_FIRST
	                 : pf->end > ZERO_AHEAD_MAX ? ZERO_AHEAD_MAX
	                                            : pf->end;
	uint64_t target = pf->end + n + ahead;
	target += ZERO_BUF - target % ZERO_BUF;
	while (pf->zend < target) {
		size_t len = target - pf->zend < ZERO_BUF ? (size_t)(target - pf->zend) : ZERO_BUF;
		int rc = write_all(pf->fd, zeros, len, (int64_t)pf->zend);
		if (rc)
			return rc;
		pf->zend += len;
	}
	return 0;
}

/* Writes buf over the zeros at end, writing more zeros first if it does
 * not fit in them. */
static int zeroed_append(posix_file *pf, const void *buf, size_t n)
{
	if (pf->end + n > pf->zend) {
		int rc = zero_ahead(pf, n);
		if (rc)
			return rc;
	}
	int rc = write_all(pf->fd, buf, n, (int64_t)pf->end);
	if (rc == 0)
		pf->end += n;
	return rc;
}

/* Writes all n bytes at the end of the file, resuming after short writes
 * and EINTR; on error some prefix of buf may have been written. */
static int posix_append(tv_file *f, const void *buf, size_t n)
{
	posix_file *pf = pfile(f);
	if (pf->mapped)
		return mapped_append(pf, buf, n);
	if (pf->zeroed)
		return zeroed_append(pf, buf, n);
	return write_all(pf->fd, buf, n, -1);
}

/* fdatasync.  A failure is reported, never retried: after a failed sync
 * the kernel may have dropped the dirty pages, so a retry could "succeed"
 * without the data.  For a mapped file it also writes the pages dirtied
 * through the mapping (on Linux, msync(MS_SYNC) is this same call). */
static int posix_sync(tv_file *f)
{
	posix_file *pf = pfile(f);
	return fdatasync(pf->fd) == 0 ? 0 : posix_err(errno);
}

static int posix_size(tv_file *f, uint64_t *out)
{
	posix_file *pf = pfile(f);
	if (pf->mapped || pf->zeroed) {
		*out = pf->end;
		return 0;
	}
	struct stat st;
	if (fstat(pf->fd, &st) != 0)
		return posix_err(errno);
	*out = (uint64_t)st.st_size;
	return 0;
}

/* Removes pf from the lock registry; lock_mu must be held. */
static void lock_list_remove(posix_file *pf)
{
	posix_file **pp = &lock_list;
	while (*pp != pf) {
		assert(*pp != NULL); /* a lock file is always registered */
		pp = &(*pp)->next_lock;
	}
	*pp = pf->next_lock;
}

/* Closes the descriptor and frees f whatever happens.  For a lock file
 * this also releases the lock (and its registry entry); a mapped or zeroed
 * file is first cut to the bytes appended (if that fails, the zeros stay). */
static int posix_close(tv_file *f)
{
	posix_file *pf = pfile(f);
	int rc, cut = 0;
	if (pf->mapped || pf->zeroed) {
		unmap_window(pf);
		cut = ftruncate(pf->fd, (off_t)pf->end) == 0 ? 0 : posix_err(errno);
	}
	if (pf->is_lock) {
		/* Under lock_mu, so no new locker can slip in between. */
		pthread_mutex_lock(&lock_mu);
		lock_list_remove(pf);
		rc = close(pf->fd);
		pthread_mutex_unlock(&lock_mu);
	} else {
		rc = close(pf->fd);
	}
	/* On Linux the descriptor is gone even on EINTR: never close twice. */
	int err = (rc != 0 && errno != EINTR) ? posix_err(errno) : 0;
	free(pf);
	return cut ? cut : err;
}

/* ---- Names and directories ------------------------------------------ */

/* Removes a file (or an empty directory). */
static int posix_remove(trove_vfs *vfs, const char *path)
{
	assert(vfs == &posix_vfs);
	return remove(path) == 0 ? 0 : posix_err(errno);
}

static int posix_rename(trove_vfs *vfs, const char *from, const char *to)
{
	assert(vfs == &posix_vfs);
	return rename(from, to) == 0 ? 0 : posix_err(errno);
}

static int posix_mkdir(trove_vfs *vfs, const char *path)
{
	assert(vfs == &posix_vfs);
	return mkdir(path, 0755) == 0 ? 0 : posix_err(errno);
}

static int posix_list_dir(trove_vfs *vfs, const char *path, tv_dir_fn fn, void *arg)
{
	assert(vfs == &posix_vfs);
	DIR *d = opendir(path);
	if (!d)
		return posix_err(errno);
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *e = readdir(d);
		if (!e) {
			if (errno != 0)
				rc = posix_err(errno);
			break;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		rc = fn(arg, e->d_name);
		if (rc != 0)
			break;
	}
	closedir(d);
	return rc;
}

/* fsync of the directory itself, which makes its entries durable. */
static int posix_sync_dir(trove_vfs *vfs, const char *path)
{
	assert(vfs == &posix_vfs);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return posix_err(errno);
	int rc = fsync(fd) == 0 ? 0 : posix_err(errno);
	close(fd);
	return rc;
}

static int posix_exists(trove_vfs *vfs, const char *path)
{
	assert(vfs == &posix_vfs);
	struct stat st;
	return stat(path, &st) == 0 ? 0 : posix_err(errno);
}

static int posix_file_size(trove_vfs *vfs, const char *path, uint64_t *out)
{
	assert(vfs == &posix_vfs);
	struct stat st;
	if (stat(path, &st) != 0)
		return posix_err(errno);
	*out = (uint64_t)st.st_size;
	return 0;
}

/* ---- Locks ---------------------------------------------------------- */

/* True if this process holds a lock on the file (dev, ino); lock_mu held. */
static int lock_held(dev_t dev, ino_t ino)
{
	for (posix_file *p = lock_list; p; p = p->next_lock)
		if (p->dev == dev && p->ino == ino)
			return 1;
	return 0;
}

/* The body of posix_lock, run under lock_mu. */
static int lock_locked(const char *path, tv_file **out)
{
	/* Checked before opening: with classic POSIX locks, even closing a
	 * probe descriptor would release the lock this process holds. */
	struct stat st;
	if (stat(path, &st) == 0 && lock_held(st.st_dev, st.st_ino))
		return TROVE_ELOCKED;

	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return posix_err(errno);
	int rc = 0;
	posix_file *pf = NULL;
	if (fstat(fd, &st) != 0) {
		rc = posix_err(errno);
	} else if (lock_held(st.st_dev, st.st_ino)) {
		rc = TROVE_ELOCKED; /* the path was renamed onto a locked file */
	} else if (!(pf = pfile_new(fd))) {
		rc = TROVE_ENOMEM;
	} else {
		struct flock fl;
		memset(&fl, 0, sizeof fl); /* l_pid must be 0 for OFD locks */
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file */
		if (fcntl(fd, POSIX_SETLK, &fl) != 0)
			rc = (errno == EAGAIN || errno == EACCES) ? TROVE_ELOCKED
			                                          : posix_err(errno);
	}
	if (rc != 0) {
		free(pf);
		close(fd);
		return rc;
	}
	pf->is_lock = 1;
	pf->dev = st.st_dev;
	pf->ino = st.st_ino;
	pf->next_lock = lock_list;
	lock_list = pf;
	*out = &pf->base;
	return 0;
}

/* Takes an exclusive lock on path (created if missing); TROVE_ELOCKED if
 * another process, or another handle in this one, holds it.  The lock
 * file is open read-write for appends, so it may also hold a note. */
static int posix_lock(trove_vfs *vfs, const char *path, tv_file **out)
{
	assert(vfs == &posix_vfs);
	pthread_mutex_lock(&lock_mu);
	int rc = lock_locked(path, out);
	pthread_mutex_unlock(&lock_mu);
	return rc;
}

/* Releases the lock and closes the file; lockfile is freed. */
static int posix_unlock(tv_file *lockfile)
{
	assert(pfile(lockfile)->is_lock);
	return posix_close(lockfile);
}

static trove_vfs posix_vfs = {
        .name = "posix",
        .ctx = NULL,
        .open = posix_open,
        .read = posix_read,
        .append = posix_append,
        .sync = posix_sync,
        .size = posix_size,
        .close = posix_close,
        .remove = posix_remove,
        .rename = posix_rename,
        .mkdir = posix_mkdir,
        .list_dir = posix_list_dir,
        .sync_dir = posix_sync_dir,
        .exists = posix_exists,
        .file_size = posix_file_size,
        .lock = posix_lock,
        .unlock = posix_unlock,
};

trove_vfs *tv_vfs_posix(void)
{
	return &posix_vfs;
}
