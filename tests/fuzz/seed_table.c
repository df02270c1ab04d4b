/*
 * seed_table.c - writes a seed corpus of real tables for fuzz_table.
 *
 * A fuzzer that starts from nothing spends most of its time failing the
 * footer check; started from well-formed tables it mutates real blocks,
 * indexes, filters and properties.  `make fuzz-smoke` runs this before
 * fuzz_table: usage `seed_table DIR` writes a handful of small tables
 * (each under the fuzzer's 64 KiB input limit) into DIR, one per mix of
 * compression and block size, holding values, tombstones and values with
 * an expiry, with shared key prefixes so restart points and prefix
 * compression are exercised.  Built by the table builder itself, so the
 * seeds follow the current format version.
 */
#include <stdio.h>
#include <string.h>

#include "engine/ikey.h"
#include "engine/table.h"
#include "engine/vfs.h"
#include "util/coding.h"

/* Writes one table of n entries to path; returns 0 or an error code. */
static int write_table(trove_vfs *vfs, const char *path, const tv_table_opts *opts, int n)
{
	tv_file *f;
	int rc = vfs->open(vfs, path, TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &f);
	if (rc)
		return rc;
	tv_table_builder *b;
	rc = tv_table_builder_new(f, opts, &b);
	for (int i = 0; !rc && i < n; i++) {
		char key[32 + TV_TRAILER], value[64];
		int klen = snprintf(key, 32, "user:%04d:%s", i / 3, i % 3 ? "name" : "mail");
		unsigned type = i % 7 == 0 ? TV_TYPE_DEL : i % 5 == 0 ? TV_TYPE_PUT_EXP : TV_TYPE_PUT;
		tv_put_fixed64(key + klen, tv_pack_trailer((uint64_t)(n - i), type));
		size_t vlen = 0;
		if (type == TV_TYPE_PUT_EXP) {
			tv_put_fixed64(value, 1700000000000u + (uint64_t)i);
			vlen = 8;
		}
		if (type != TV_TYPE_DEL)
			vlen += (size_t)snprintf(value + vlen, sizeof value - vlen,
			                         "value %d value %d value", i, i % 10);
		rc = tv_table_add(b, tv_slice_make(key, (size_t)klen + TV_TRAILER),
		                  tv_slice_make(value, vlen));
	}
	uint64_t size;
	if (!rc)
		rc = tv_table_finish(b, &size);
	tv_table_builder_free(b);
	int crc = vfs->close(f);
	return rc ? rc : crc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seed_table DIR\n");
		return 2;
	}
	static const int compressions[] = {TROVE_COMPRESS_NONE, TROVE_COMPRESS_LZ4,
	                                   TROVE_COMPRESS_ZSTD};
	static const size_t block_sizes[] = {256, 4096};
	trove_vfs *vfs = tv_vfs_posix();
	int seeds = 0;
	for (size_t c = 0; c < sizeof compressions / sizeof *compressions; c++) {
		for (size_t s = 0; s < sizeof block_sizes / sizeof *block_sizes; s++) {
			tv_table_opts opts = {.compression = compressions[c],
			                      .block_size = block_sizes[s],
			                      .bloom_bits_per_key = 10};
			char path[4096];
			snprintf(path, sizeof path, "%s/seed-%zu-%zu.sst", argv[1], c, s);
			int rc = write_table(vfs, path, &opts, 300);
			if (rc) {
				fprintf(stderr, "seed_table: %s: %s\n", path, trove_strerror(rc));
				return 1;
			}
			seeds++;
		}
	}
	printf("seed_table: %d tables in %s\n", seeds, argv[1]);
	return 0;
}
