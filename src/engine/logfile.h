/*
 * logfile.h - append-only record logs: the write-ahead log and the manifest.
 *
 * A log file is a 16-byte header (magic, format version, checksum) and then
 * a sequence of records, each carrying its own length and checksum (the
 * byte layout is in docs/FORMAT.md).  The writer appends whole records and
 * syncs on demand.  The reader returns records in order and classifies
 * what it cannot read:
 *   - a torn tail: a damaged or incomplete record with no intact record
 *     after it, which is what a crash during an append leaves; it is
 *     dropped and reported through tv_log_reader_torn();
 *   - corruption: a damaged record followed by an intact one, a bad
 *     header, or a wrong magic; an error naming the file and offset.
 */
#ifndef TV_LOGFILE_H
#define TV_LOGFILE_H

#include <stdint.h>

#include "../util/slice.h"
#include "errlog.h"
#include "vfs.h"

#define TV_LOG_HEADER 16
#define TV_LOG_RECORD_HEADER 8
/* A record larger than this is refused by the writer and taken as
 * corruption by the reader. */
#define TV_LOG_MAX_RECORD (UINT32_C(1) << 30)

#define TV_MAGIC_WAL "TROVEWAL"
#define TV_MAGIC_MANIFEST "TROVEMAN"
#define TV_LOG_VERSION 1
/* Write-ahead logs are at version 3: since version 2 their records may
 * hold unresolved entries, since 3 a record header may say how far the
 * log was durable when it was appended (docs/FORMAT.md); a build that
 * reads only an older version must refuse a newer log rather than take
 * what it does not know for damage.  Versions 1 and 2 are still read. */
#define TV_WAL_VERSION 3

typedef struct tv_log_writer tv_log_writer;
typedef struct tv_log_reader tv_log_reader;

/* Creates (or truncates) path and writes the header with `magic` (8
 * bytes).  The header is not synced until the first tv_log_sync.  `how`
 * is 0 or one of two ways of opening the file (vfs.h), after which, until
 * the writer is closed, the file may end in zeros that a reader takes as
 * a torn tail:
 *   - TV_OPEN_MAPPED: appends may be stores into a mapping of the file,
 *     cheaper than a write(2) each and as safe from a crash of the process;
 *   - TV_OPEN_ZEROED: appends overwrite zeros written ahead of them, so a
 *     sync after an append need not commit a new file size. */
int tv_log_create(trove_vfs *vfs, const char *path, const char *magic, int how,
                  tv_log_writer **out);
/* Appends one record.  On error the file may hold part of it; the writer
 * must then be abandoned (closed), never appended to again. */
int tv_log_append(tv_log_writer *w, tv_slice record);
/* tv_log_append for a record built in place: frame holds
 * TV_LOG_RECORD_HEADER bytes of room, which this fills in, followed by the
 * record; len counts both.  Saves copying a large record. */
int tv_log_append_framed(tv_log_writer *w, char *frame, size_t len);
/* Makes what was appended durable.  Allowed after a failed append: the
 * records before it are intact, and what part of the failed one reached
 * the file can only read as a torn tail. */
int tv_log_sync(tv_log_writer *w);
/* Bytes in the file so far, header included. */
uint64_t tv_log_size(const tv_log_writer *w);
/* Closes the file (without syncing) and frees the writer. */
int tv_log_close(tv_log_writer *w);

/* Opens path for reading and checks its header against `magic`.  A file
 * shorter than a header, or whose header is all zero bytes, reads as an
 * empty log with a torn tail (a crash right after creation). */
int tv_log_reader_open(trove_vfs *vfs, const char *path, const char *magic,
                       const tv_logger *lg, tv_log_reader **out);
/* 1 and *record (valid until the next call) when a record was read; 0 at
 * the end (after any torn tail); TROVE_ECORRUPT or TROVE_EIO on error, with
 * a message naming the file and offset sent to the logger. */
int tv_log_read(tv_log_reader *r, tv_slice *record);
/* True if a torn tail was found and dropped. */
int tv_log_reader_torn(const tv_log_reader *r);
/* Offset just past the last intact record returned. */
uint64_t tv_log_reader_good_end(const tv_log_reader *r);
/* After tv_log_read returned TROVE_ECORRUPT for a damaged record that an
 * intact record follows: moves to that record, so that tv_log_read goes on
 * from there (the caller decides whether the damage was an error).
 * Returns 0, or TROVE_ECORRUPT when the error was of another kind. */
int tv_log_reader_skip_damage(tv_log_reader *r);
void tv_log_reader_close(tv_log_reader *r);

#endif
