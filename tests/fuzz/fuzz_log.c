/*
 * fuzz_log.c - libFuzzer target: the record-log reader and the manifest
 * edit decoder on hostile bytes.
 *
 * The input becomes a log file (after a valid header, so that the fuzzer
 * spends its time on records, unless the input's first byte asks for a raw
 * file); every record read is also decoded as a version edit.  Nothing may
 * crash, hang or read out of bounds; errors are fine.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/logfile.h"
#include "engine/version.h"
#include "engine/vfs.h"
#include "util/checksum.h"
#include "util/coding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	trove_vfs *vfs = tv_vfs_mem_new();
	if (!vfs)
		return 0;
	vfs->mkdir(vfs, "/f");
	tv_file *f;
	if (vfs->open(vfs, "/f/x.log", TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &f) == 0) {
		int raw = size > 0 && (data[0] & 1);
		if (!raw) {
			char hdr[TV_LOG_HEADER];
			memcpy(hdr, TV_MAGIC_MANIFEST, 8);
			tv_put_fixed32(hdr + 8, TV_LOG_VERSION);
			tv_put_fixed32(hdr + 12, tv_checksum(hdr, 12));
			vfs->append(f, hdr, sizeof hdr);
		}
		if (size)
			vfs->append(f, data, size);
		vfs->close(f);
	}
	tv_log_reader *r;
	if (tv_log_reader_open(vfs, "/f/x.log", TV_MAGIC_MANIFEST, NULL, &r) == 0) {
		tv_slice rec;
		while (tv_log_read(r, &rec) == 1) {
			tv_edit e;
			if (tv_edit_decode(&e, rec) == 0)
				tv_edit_free(&e);
		}
		tv_log_reader_close(r);
	}
	tv_vfs_mem_free(vfs);
	return 0;
}
