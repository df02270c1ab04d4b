/*
 * fuzz_recovery.c - libFuzzer target: opening a database whose
 * write-ahead log holds hostile bytes.
 *
 * A real database is created on the in-memory file system, then the input
 * is written as its newest log (after a valid log header, so the fuzzer
 * reaches the record decoder of recovery) and the database is reopened.
 * The open must succeed or fail with an error code; if it succeeds, a
 * scan, a count and a verify must not crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/logfile.h"
#include "engine/vfs.h"
#include "trove.h"
#include "util/checksum.h"
#include "util/coding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	trove_vfs *vfs = tv_vfs_mem_new();
	if (!vfs)
		return 0;
	trove_options o;
	trove_options_init(&o);
	o.vfs = vfs;
	o.sync = TROVE_SYNC_NONE;
	trove_db *db;
	if (trove_open("/db", &o, &db) == 0) {
		trove_put(db, "a", 1, "1", 1);
		trove_close(db);
	}
	tv_file *f;
	if (vfs->open(vfs, "/db/999999.log", TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &f) == 0) {
		char hdr[TV_LOG_HEADER];
		memcpy(hdr, TV_MAGIC_WAL, 8);
		tv_put_fixed32(hdr + 8, TV_LOG_VERSION);
		tv_put_fixed32(hdr + 12, tv_checksum(hdr, 12));
		vfs->append(f, hdr, sizeof hdr);
		/* Frame the input as one record so that the decoder sees it. */
		char rh[8];
		tv_put_fixed32(rh + 4, (uint32_t)size);
		tv_put_fixed32(rh, tv_checksum2(rh + 4, 4, data, size));
		vfs->append(f, rh, sizeof rh);
		if (size)
			vfs->append(f, data, size);
		vfs->close(f);
	}
	o.sync = TROVE_SYNC_ALWAYS;
	if (trove_open("/db", &o, &db) == 0) {
		trove_cursor *c;
		if (trove_cursor_open(db, NULL, &c) == 0) {
			int n = 0;
			for (int rc = trove_cursor_first(c); rc == 0 && n < 1000; rc = trove_cursor_next(c))
				n++;
			trove_cursor_close(c);
		}
		uint64_t count;
		trove_count(db, &count);
		trove_verify(db, NULL, NULL);
		trove_close(db);
	}
	tv_vfs_mem_free(vfs);
	return 0;
}
