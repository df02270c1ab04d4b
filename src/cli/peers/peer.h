/*
 * peer.h - what a trove-peer-* helper program is made of.
 *
 * Each helper (see src/cli/peers.c for why they exist) is main.c, which
 * speaks the dump format on stdin or stdout, plus one file per peer
 * database that fills in peer_format with that peer's own library:
 *
 *   trove-peer-NAME read FILE            FILE's pairs, as a dump on stdout
 *   trove-peer-NAME write FILE [VARIANT] a dump from stdin, stored in FILE
 *
 * Exit status: 0 done; 1 done, but some records were skipped (each said on
 * stderr); 2 failed (said on stderr).  Helpers never link libtrove: the
 * peer libraries define names (dbm_open, db_create) that libtrove's own
 * compatibility layers define too.
 */
#ifndef TROVE_PEER_H
#define TROVE_PEER_H

#include <stddef.h>
#include <stdint.h>

typedef struct peer_out peer_out;

/* Called by a reader before its first pair, with the number of pairs if
 * the peer knows it cheaply (0 otherwise); only a hint for progress. */
void peer_begin(peer_out *o, uint64_t hint);
/* Sends one pair to the dump.  A pair Trove cannot hold (an empty or too
 * long key, a value over 64 MiB, a repeat of the previous key) is skipped
 * with a warning.  0, or -1 if the dump could not be written (stop). */
int peer_emit(peer_out *o, const void *k, size_t kn, const void *v, size_t vn);

/* Prints "trove: import|export: FILE: " and the message on stderr;
 * returns -1. */
int peer_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same as a warning about one record, counted as skipped; returns 1. */
int peer_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct peer_ops {
	const char *name; /* "gdbm" */
	const char *what; /* "GDBM files", for messages */
	/* Walks every pair of the database at path, calling peer_begin once
	 * and peer_emit for each; 0, or -1 after peer_fail. */
	int (*read)(const char *path, peer_out *o);
	/* Opens (creating if missing) the database at path for writing;
	 * variant is NULL or what the format's name asked for (bdb: "btree"
	 * or "hash").  A handle, or NULL after peer_fail. */
	void *(*wopen)(const char *path, const char *variant);
	/* Stores a pair, replacing the key's value: 0, 1 if skipped (after
	 * peer_skip), -1 after peer_fail. */
	int (*put)(void *h, const void *k, size_t kn, const void *v, size_t vn);
	/* Finishes: ok says whether every pair arrived.  Syncs and closes;
	 * 0, or -1 after peer_fail. */
	int (*wclose)(void *h, int ok);
} peer_ops;

extern const peer_ops peer_format;

#endif
