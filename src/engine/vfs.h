/*
 * vfs.h - the only door between the engine and the file system.
 *
 * Every byte the engine reads or writes passes through a trove_vfs: a
 * table of functions in the spirit of SQLite's VFS and LevelDB's Env.
 * Three implementations exist: the POSIX one (vfs_posix.c), which is the
 * default, the in-memory one (vfs_mem.c) of in_memory mode, and a
 * fault-injecting one (vfs_fault.c) that tests use to fail chosen calls,
 * tear writes and simulate power loss.
 *
 * The engine only ever appends to files it writes and reads files with
 * positional reads, so the interface has no seek and no overwrite (an
 * append to a file opened TV_OPEN_ZEROED overwrites zeros the VFS itself
 * wrote ahead of it).
 * Every function returns 0 or a negative TROVE_E* code; errno never
 * escapes (EIO -> TROVE_EIO, ENOSPC/EDQUOT -> TROVE_ENOSPC, ENOENT ->
 * TROVE_ENOENT, EEXIST -> TROVE_EEXIST, EACCES/EPERM/EROFS -> TROVE_EACCES,
 * anything else -> TROVE_EIO).
 *
 * Thread-safety: a trove_vfs may be used from many threads at once.  One
 * tv_file is used by one thread at a time, except that `read` may be
 * called concurrently on a file opened for reading.
 */
#ifndef TV_VFS_H
#define TV_VFS_H

#include <stddef.h>
#include <stdint.h>

#include "trove.h"

typedef struct tv_file tv_file;

/* The part of an open file every implementation shares: each one embeds
 * it as the first member of its own file struct and sets vfs to itself,
 * so a file can be checked (and cast) by the VFS it is handed back to.
 * Callers treat tv_file as opaque apart from this. */
struct tv_file {
	trove_vfs *vfs; /* the VFS that opened the file */
};

/* Flags for open. */
enum {
	TV_OPEN_READ = 0,        /* read-only, positional reads */
	TV_OPEN_APPEND = 1,      /* write-only, appends; created if missing */
	TV_OPEN_TRUNCATE = 2,    /* with TV_OPEN_APPEND: start empty */
	TV_OPEN_EXCL = 4,        /* with TV_OPEN_APPEND: fail if it exists */
	/* With TV_OPEN_APPEND: appends may be stores into a shared mapping of
	 * the file instead of write(2) calls (a VFS without mappings ignores
	 * the flag).  A store is in the OS's cache once the append returns,
	 * as a write(2) would be, so a crash of the process loses nothing;
	 * but until the file is closed it may end in zero bytes the mapping
	 * reserved past the last append (a power loss or a kill leaves them
	 * there), and `size` reports the bytes appended. */
	TV_OPEN_MAPPED = 8,
	/* With TV_OPEN_APPEND (not with TV_OPEN_MAPPED): the file is kept
	 * ahead of the appends by zero bytes written in chunks (a VFS may
	 * ignore the flag), so appends overwrite blocks that are already
	 * allocated and written: once a sync has covered a chunk, a sync
	 * after later appends into it writes data blocks only, with no new
	 * file size or block map to commit.  As with TV_OPEN_MAPPED, until
	 * the file is closed it ends in zeros past the last append (a power
	 * loss or a kill leaves them; a power loss may also leave unsynced
	 * appends torn into those zeros), and `size` reports the bytes
	 * appended. */
	TV_OPEN_ZEROED = 16,
};

/* Called by list_dir once per entry (not "." or ".."); a non-zero return
 * stops the listing and is returned by list_dir. */
typedef int (*tv_dir_fn)(void *arg, const char *name);

struct trove_vfs {
	const char *name;
	void *ctx; /* the implementation's own state */

	int (*open)(trove_vfs *vfs, const char *path, int flags, tv_file **out);
	/* Reads up to n bytes at offset; *got < n only at end of file. */
	int (*read)(tv_file *f, uint64_t off, void *buf, size_t n, size_t *got);
	/* Appends all n bytes or returns an error (some may have been
	 * written: a short write is reported as an error). */
	int (*append)(tv_file *f, const void *buf, size_t n);
	/* Makes everything appended so far durable (fdatasync). */
	int (*sync)(tv_file *f);
	int (*size)(tv_file *f, uint64_t *out);
	/* Closes the file; unsynced data stays in the OS as with close(2). */
	int (*close)(tv_file *f);

	int (*remove)(trove_vfs *vfs, const char *path);
	/* Atomically replaces `to` with `from` (rename(2)). */
	int (*rename)(trove_vfs *vfs, const char *from, const char *to);
	int (*mkdir)(trove_vfs *vfs, const char *path); /* EEXIST if present */
	int (*list_dir)(trove_vfs *vfs, const char *path, tv_dir_fn fn, void *arg);
	/* Makes the directory's entries (creations, renames, removals) durable. */
	int (*sync_dir)(trove_vfs *vfs, const char *path);
	/* 0 if the path exists, TROVE_ENOENT if not, or another error. */
	int (*exists)(trove_vfs *vfs, const char *path);
	int (*file_size)(trove_vfs *vfs, const char *path, uint64_t *out);
	/* Takes an exclusive advisory lock on path (created if missing) for
	 * as long as *out stays open; TROVE_ELOCKED if another process (or
	 * another handle in this process) holds it. */
	int (*lock)(trove_vfs *vfs, const char *path, tv_file **out);
	int (*unlock)(tv_file *lockfile);
};

/* The default POSIX implementation; a static object, never freed. */
trove_vfs *tv_vfs_posix(void);

/* The file system of in_memory mode (vfs_mem.c): a private namespace whose
 * files live in RAM, so that the unchanged engine - tables, manifest,
 * compaction - runs on them, and removing a file gives its memory back.
 * Paths are absolute ("/db/CURRENT"; repeated and trailing slashes do not
 * count); a relative path, a "." or ".." component or a path of 4096 bytes
 * or more is TROVE_EINVAL.  "/" always exists; files and directories are
 * made in existing directories only, as on disk.  It behaves as POSIX
 * would, except that: sync and sync_dir do nothing; running out of memory
 * is TROVE_ENOMEM; directories cannot be renamed (TROVE_EINVAL); locks
 * exclude other handles of this VFS only; opening a directory is
 * TROVE_EIO; a path through a file is simply missing (TROVE_ENOENT),
 * except when creating one there (TROVE_EIO).  A file removed, or replaced
 * by rename, stays readable through the handles already open on it, and
 * its memory is freed at the last close.  Closing a handle that appended
 * gives back the slack of the buffer's geometric growth, so a finished
 * table costs its size.  Returns NULL on ENOMEM; each call makes a new,
 * empty, independent file system. */
trove_vfs *tv_vfs_mem_new(void);
/* Frees a memory VFS and every file in it (NULL: nothing).  Every tv_file
 * it opened must have been closed first. */
void tv_vfs_mem_free(trove_vfs *vfs);

/* ---- The fault-injecting VFS (tests only) -------------------------------
 *
 * It wraps another VFS (normally POSIX), passing calls through, and keeps
 * enough state to undo everything that was not made durable:
 *   - per file: the length known durable (synced), and for a file
 *     opened TV_OPEN_ZEROED the size it had then, zeros past that length;
 *   - per directory: the entry changes (create, rename, remove) made
 *     since its last sync_dir.
 * tv_fault_power_loss() then rewinds the real files on disk to what a
 * machine that lost power would show, and is used after the engine has
 * been stopped.  Counters let a test fail exactly the Nth operation.
 */
typedef struct tv_fault tv_fault;

typedef enum tv_fault_op {
	TV_FAULT_WRITE = 0, /* append */
	TV_FAULT_SYNC,      /* sync and sync_dir */
	TV_FAULT_OPEN,      /* open for writing (file creation) */
	TV_FAULT_RENAME,
	TV_FAULT_READ,
	TV_FAULT_NOPS
} tv_fault_op;

typedef enum tv_fault_kind {
	TV_FAULT_NONE = 0,
	TV_FAULT_EIO,       /* the call fails with TROVE_EIO, nothing written */
	TV_FAULT_ENOSPC,    /* the call fails with TROVE_ENOSPC, nothing written */
	TV_FAULT_SHORT,     /* append: write about half, then fail TROVE_ENOSPC */
	TV_FAULT_TORN,      /* append: write half, with garbage, then fail TROVE_EIO */
	TV_FAULT_CRASH,     /* the call and every later call fails TROVE_EIO:
	                       the process is dead as far as the disk knows */
} tv_fault_kind;

/* Creates a fault VFS over `base` (NULL = POSIX).  Returns NULL on ENOMEM. */
tv_fault *tv_fault_new(trove_vfs *base);
void tv_fault_free(tv_fault *f);
trove_vfs *tv_fault_vfs(tv_fault *f);

/* Arms a fault: the `nth` call (1-based, counted from now) of kind `op`
 * fails as `kind`.  With `sticky` set, every call after it fails too, in
 * the same way, until tv_fault_clear (a full disk stays full). */
void tv_fault_arm(tv_fault *f, tv_fault_op op, uint64_t nth, tv_fault_kind kind,
                  int sticky);
/* Removes armed faults and the crashed state; counters keep going. */
void tv_fault_clear(tv_fault *f);
/* Calls of kind op made since creation (successful or not). */
uint64_t tv_fault_count(tv_fault *f, tv_fault_op op);
/* True once a TV_FAULT_CRASH has fired. */
int tv_fault_crashed(tv_fault *f);

/* Rewinds the disk to its durable state: every file is cut to its synced
 * length (with `tear` set, a random part of the unsynced tail is kept and
 * some of it overwritten with garbage, as a real disk may); a file opened
 * TV_OPEN_ZEROED keeps its synced size, its unsynced appends turned back
 * into the zeros they overwrote (with `tear`, a random part of them is
 * kept, possibly with a hole of zeros and garbage in it, since overwrites
 * reach the disk in no particular order, and the size may be anywhere
 * between the synced one and the current one), files created
 * since their directory's last sync vanish, unsynced renames and removals
 * are undone.  Call it only when nothing has the files open (after the
 * database was closed or abandoned).  `seed` drives the randomness. */
int tv_fault_power_loss(tv_fault *f, int tear, uint64_t seed);

#endif
