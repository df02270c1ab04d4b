/*
 * trove/ndbm.h - the POSIX ndbm interface, backed by Trove.
 *
 * A program written for <ndbm.h> builds against Trove by changing its
 * include line to #include <trove/ndbm.h> and its link flag to -ltrove;
 * nothing else.  This header is the manual of that face: what it keeps of
 * POSIX, what it adds, and where it differs.
 *
 * ---- Files ---------------------------------------------------------------
 *
 * dbm_open("phones", ...) opens the Trove database in the directory
 * "phones.trove" (ndbm used phones.dir + phones.pag, GDBM's compat layer
 * phones.pag + phones.dir, Berkeley DB's phones.db).  The new name never
 * collides with an old ndbm, GDBM or Berkeley DB file, so the old data can
 * sit beside the new until `trove import` has moved it over.  The
 * directory is an ordinary Trove database: the `trove` tool reads it, and
 * the keys are stored as they are, without any prefix.
 *
 * ---- Durability ----------------------------------------------------------
 *
 * ndbm never promised anything after a crash: its writes sat in the page
 * cache, and a crash in the middle of a page split could lose the file.
 * This face opens Trove with TROVE_SYNC_NONE and syncs at dbm_close: a
 * crash of the program loses nothing that dbm_store or dbm_delete
 * acknowledged, a power loss may lose the writes since the last
 * dbm_close, and no crash ever damages the database (Trove's log keeps a
 * prefix of the writes, in order).  Syncing every store, as Trove does by
 * default, would make a dbm program that writes in a loop a hundred times
 * slower than it was written to be.  Open with O_SYNC to get that anyway:
 * then each dbm_store and dbm_delete returns only once durable.
 *
 * ---- Memory --------------------------------------------------------------
 *
 * The datum returned by dbm_fetch, dbm_firstkey and dbm_nextkey points to
 * storage owned by the DBM handle.  POSIX lets it die at the next call on
 * the handle; here the key from dbm_firstkey/dbm_nextkey stays valid until
 * the next dbm_firstkey/dbm_nextkey (so it may be passed to dbm_fetch,
 * dbm_store and dbm_delete meanwhile), and the value from dbm_fetch until
 * the next dbm_fetch.  All of it dies at dbm_close.  Never free it.  Its
 * size is exact; the bytes are followed by a NUL that is not counted.
 *
 * ---- Iteration -----------------------------------------------------------
 *
 * dbm_firstkey and dbm_nextkey visit every key once, in Trove's order
 * (bytewise, shorter first).  Unlike ndbm, changing the database during a
 * walk is well defined: dbm_nextkey returns the first key after the last
 * one returned, in the database as it is now, so deleting each key as it
 * comes (the classic way to empty a dbm file) works, and keys stored
 * behind the walk are not visited.  dbm_nextkey before any dbm_firstkey,
 * and after the end, returns a datum with dptr NULL.
 *
 * ---- Errors --------------------------------------------------------------
 *
 * dbm_open returns NULL and sets errno: ENOENT (missing, and no O_CREAT),
 * EEXIST (O_CREAT|O_EXCL and it exists), EWOULDBLOCK (another handle or
 * process has it open: Trove allows one opener at a time), EACCES, EIO
 * (damaged or unreadable), ENOSPC, ENOMEM, EINVAL (bad flags).  The other
 * calls report failure as POSIX says (dbm_store and dbm_delete return a
 * negative value, dbm_fetch and the key calls a NULL dptr), set errno,
 * and raise the handle's error flag, which dbm_error reports until
 * dbm_clearerr.  A key that is simply absent is not an error: dbm_fetch
 * returns a NULL dptr and dbm_delete returns -1, with the flag untouched,
 * as in ndbm and GDBM.  errno values: EINVAL (bad flags, NULL dptr, an
 * empty key, a key over 65535 bytes or a value over 64 MiB), EPERM (a
 * write on a handle opened O_RDONLY), EIO, ENOSPC, ENOMEM.
 *
 * ---- Differences from ndbm and GDBM --------------------------------------
 *
 * - Keys must be 1 to 65535 bytes; ndbm allowed key + value up to about
 *   1 KiB, GDBM any size including an empty key.  Values may be up to
 *   64 MiB.
 * - datum.dsize is a size_t, as POSIX says (GDBM's ndbm.h has an int).
 * - When DBM_INSERT finds the key, dbm_store returns 1 and that is all;
 *   GDBM also raises the error flag then, POSIX does not ask for it.
 * - O_WRONLY is taken as O_RDWR, as ndbm did.  O_TRUNC empties the
 *   database.  The mode is given to the directory, with search permission
 *   added wherever read permission is (0644 makes rwxr-xr-x); the files
 *   inside take Trove's own modes, so the directory guards them.
 * - One handle per database at a time, in any process (EWOULDBLOCK).
 * - GDBM's dbm_dirfno and dbm_pagfno do not exist (there is no .dir or
 *   .pag file to lock); dbm_rdonly does.
 * - The names dbm_open ... dbm_clearerr are macros for trove_dbm_open ...
 *   trove_dbm_clearerr, so that a program (such as an importer) may link
 *   both libtrove and a real ndbm library without their symbols clashing.
 *
 * ---- Threads -------------------------------------------------------------
 *
 * A DBM handle belongs to one thread at a time (its returned datums are
 * shared state).  Different handles on different databases are
 * independent.
 */
#ifndef TROVE_NDBM_H
#define TROVE_NDBM_H

#include <fcntl.h> /* O_RDONLY, O_RDWR, O_CREAT, ...: every user needs them */
#include <stddef.h>
#include <sys/types.h> /* mode_t */

/* Exported from libtrove (the library hides every other name). */
#ifndef TROVE_COMPAT_API
#if defined(__GNUC__)
#define TROVE_COMPAT_API __attribute__((visibility("default")))
#else
#define TROVE_COMPAT_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A byte string: a key or a value. */
typedef struct {
	void *dptr;
	size_t dsize;
} datum;

/* An open database. */
typedef struct trove_dbm DBM;

/* dbm_store's flags. */
#define DBM_INSERT 0  /* fail (return 1) if the key exists */
#define DBM_REPLACE 1 /* replace the value if the key exists */

#define dbm_open trove_dbm_open
#define dbm_close trove_dbm_close
#define dbm_fetch trove_dbm_fetch
#define dbm_store trove_dbm_store
#define dbm_delete trove_dbm_delete
#define dbm_firstkey trove_dbm_firstkey
#define dbm_nextkey trove_dbm_nextkey
#define dbm_error trove_dbm_error
#define dbm_clearerr trove_dbm_clearerr
#define dbm_rdonly trove_dbm_rdonly

/* Opens the database file (the directory file + ".trove").  open_flags:
 * O_RDONLY, O_WRONLY or O_RDWR, plus any of O_CREAT (create it if
 * missing), O_EXCL (with O_CREAT: fail with EEXIST if it exists), O_TRUNC
 * (empty it), O_SYNC (every write durable before it returns); other flags
 * are ignored, as open(2) would ignore them for a database.  file_mode is
 * the new directory's mode (see "Differences").  Returns NULL with errno
 * set on failure. */
TROVE_COMPAT_API DBM *trove_dbm_open(const char *file, int open_flags, mode_t file_mode);

/* Syncs and closes the database; db must not be used afterwards.  A sync
 * that fails is reported nowhere (dbm_close returns nothing); what was
 * acknowledged is in Trove's log and survives a crash of the program.
 * NULL is ignored. */
TROVE_COMPAT_API void trove_dbm_close(DBM *db);

/* The value stored under key, or a datum with dptr NULL if there is none
 * or on error.  The value's memory belongs to db (see "Memory"). */
TROVE_COMPAT_API datum trove_dbm_fetch(DBM *db, datum key);

/* Stores content under key.  With DBM_INSERT an existing key is left
 * alone and 1 is returned; with DBM_REPLACE its value is replaced.
 * Returns 0 on success, 1 as said, -1 on error.  The write is atomic. */
TROVE_COMPAT_API int trove_dbm_store(DBM *db, datum key, datum content, int store_mode);

/* Removes key: 0 if it was there, -1 if it was not or on error. */
TROVE_COMPAT_API int trove_dbm_delete(DBM *db, datum key);

/* The first key of the database (dptr NULL if it is empty or on error),
 * and the key after the one returned last (dptr NULL at the end).  The
 * key's memory belongs to db (see "Memory" and "Iteration"). */
TROVE_COMPAT_API datum trove_dbm_firstkey(DBM *db);
TROVE_COMPAT_API datum trove_dbm_nextkey(DBM *db);

/* Non-zero if an error has occurred on db since it was opened or since the
 * last dbm_clearerr.  dbm_clearerr resets it and returns 0 (POSIX
 * declares it int with an unspecified value; GDBM declares it void). */
TROVE_COMPAT_API int trove_dbm_error(DBM *db);
TROVE_COMPAT_API int trove_dbm_clearerr(DBM *db);

/* Non-zero if db was opened O_RDONLY (a GDBM extension). */
TROVE_COMPAT_API int trove_dbm_rdonly(DBM *db);

#ifdef __cplusplus
}
#endif

#endif
