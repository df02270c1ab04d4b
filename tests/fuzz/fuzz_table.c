/*
 * fuzz_table.c - libFuzzer target: opening, reading and verifying a
 * sorted table made of hostile bytes.
 *
 * The input is taken as a whole .sst file.  Open must fail cleanly or
 * succeed; if it succeeds, iterating both ways, point lookups and verify
 * must not crash or read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/ikey.h"
#include "engine/table.h"
#include "engine/vfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int found(void *arg, tv_slice ikey, tv_slice value)
{
	(void)arg;
	(void)ikey;
	(void)value;
	return 1;
}

static void ignore(void *arg, uint64_t off, const char *msg)
{
	(void)arg;
	(void)off;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	trove_vfs *vfs = tv_vfs_mem_new();
	if (!vfs)
		return 0;
	vfs->mkdir(vfs, "/f");
	tv_file *f;
	if (vfs->open(vfs, "/f/1.sst", TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &f) == 0) {
		if (size)
			vfs->append(f, data, size);
		vfs->close(f);
	}
	tv_cache *cache = tv_cache_new(1 << 20);
	tv_table *t;
	if (cache && tv_table_open(vfs, "/f/1.sst", 1, cache, NULL, &t) == 0) {
		tv_iter *it = tv_table_iter(t, true);
		if (it) {
			int n = 0;
			for (tv_iter_seek_first(it); tv_iter_valid(it) && n < 10000; tv_iter_next(it))
				n++;
			for (tv_iter_seek_last(it); tv_iter_valid(it) && n < 20000; tv_iter_prev(it))
				n++;
			char key[16 + TV_TRAILER];
			memset(key, 'k', 16);
			tv_put_fixed64(key + 16, tv_pack_trailer(TV_MAX_SEQ, TV_SEEK_TYPE));
			tv_iter_seek(it, tv_slice_make(key, sizeof key));
			tv_table_get(t, tv_slice_make(key, sizeof key), found, NULL);
			tv_iter_destroy(it);
		}
		tv_table_verify(t, ignore, NULL);
		tv_table_close(t);
	}
	if (cache)
		tv_cache_free(cache);
	tv_vfs_mem_free(vfs);
	return 0;
}
