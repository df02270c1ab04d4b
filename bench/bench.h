/*
 * bench.h - what the driver (main.c) and the report (report.c) share: the
 * run's configuration, the list of workloads in the order they are shown,
 * and the results collected from every engine's child processes.
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdint.h>

#include "backend.h"

/* The run's parameters (defaults in main.c; QUICK=1 shrinks them). */
typedef struct bench_cfg {
	uint64_t num;   /* keys loaded for the main workloads */
	uint64_t reads; /* point reads per read workload */
	uint64_t seeks; /* seeks of seekrandom */
	size_t value_size;
	uint64_t sync_ops; /* writes per durable workload */
	uint64_t big_num;  /* keys of the larger-than-cache run */
	uint64_t big_reads;
	size_t cache_bytes; /* every engine's cache in the main runs */
	size_t big_cache_bytes;
	double max_secs; /* a read or durable workload stops after this */
	int batch;       /* writes per batch */
	int big_random;  /* load the big run in random order */
	int stats;       /* print the engines' own counters at each close */
	int quick;
	const char *data_dir; /* scratch space for the databases */
	const char *out_dir;  /* CSV, Markdown and chart data */
} bench_cfg;

/* When and how a workload runs. */
typedef enum bench_part { PART_MAIN, PART_SYNC, PART_BIG, PART_N } bench_part;

typedef enum wl_id {
	W_FILLSEQ,
	W_FILLRANDOM,
	W_OVERWRITE,
	W_FILLBATCH,
	W_DELETERANDOM,
	W_READRANDOM,
	W_READMISSING,
	W_READSEQ,
	W_READREVERSE,
	W_SEEKRANDOM,
	W_READWHILEWRITING,
	W_READRANDOM_2T,
	W_READRANDOM_4T,
	W_READRANDOM_8T,
	W_FILLSYNC_1T,
	W_FILLSYNC_2T,
	W_FILLSYNC_4T,
	W_FILLSYNC_8T,
	W_OVERWRITE_SYNC,
	W_FILLBATCH_SYNC,
	W_DELETERANDOM_SYNC,
	W_BIG_FILL,
	W_BIG_READRANDOM,
	W_N
} wl_id;

typedef struct wl_info {
	const char *name;
	bench_part part;
	int threads;
	int ordered; /* needs BENCH_ORDERED */
	const char *what;
} wl_info;

extern const wl_info wl_table[W_N];

enum { ST_NONE = 0, ST_OK, ST_CAPPED, ST_NA, ST_ERR };

typedef struct wl_result {
	int status; /* ST_* */
	uint64_t ops;
	double secs;
	double extra; /* readwhilewriting: the writer's ops/s */
} wl_result;

/* Everything measured for one engine. */
typedef struct eng_result {
	const bench_engine *e;
	char version[96];
	wl_result wl[W_N];
	long rss_kb[PART_N];      /* peak RSS of each part's child process */
	long base_rss_kb[PART_N]; /* its RSS before opening the engine */
	uint64_t disk_fill;       /* bytes on disk after fillrandom, closed */
	uint64_t disk_big;        /* bytes on disk after the big fill, closed */
	char failure[160];        /* why a child died, if one did */
} eng_result;

/* Prints the tables, writes CSV, Markdown and chart data (report.c). */
void bench_report(const bench_cfg *cfg, eng_result *res, int n, const char *load_before,
                  const char *load_after, const char *stamp);

#endif
