/*
 * main.c - trove-bench: runs Trove and its peers through the same
 * workloads, with the same keys, values, order and seeds, in one run.
 *
 * Each engine runs in forked child processes, one per part (main nosync
 * workloads, durable workloads, larger-than-cache run), so that peak RSS
 * is measured per engine and per part and a crash of one engine costs
 * only its own results.  A child sends its results up a pipe as text
 * lines; the parent collects them and hands them to report.c.
 *
 * This file never calls an engine directly: only through bench_engine.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* ---- The workloads, in the order the report shows them ------------------ */

const wl_info wl_table[W_N] = {
        [W_FILLSEQ] = {"fillseq", PART_MAIN, 1, 0, "N puts in key order, fresh db"},
        [W_FILLRANDOM] = {"fillrandom", PART_MAIN, 1, 0,
                          "N puts in random order (each key once), fresh db"},
        [W_OVERWRITE] = {"overwrite", PART_MAIN, 1, 0, "N puts of random existing keys"},
        [W_FILLBATCH] = {"fillbatch", PART_MAIN, 1, 0,
                         "N puts in key order, 1000 per batch, fresh db"},
        [W_DELETERANDOM] = {"deleterandom", PART_MAIN, 1, 0,
                            "N deletes, each key once, random order"},
        [W_READRANDOM] = {"readrandom", PART_MAIN, 1, 0, "random gets of present keys"},
        [W_READMISSING] = {"readmissing", PART_MAIN, 1, 0,
                           "random gets of absent keys (between present ones)"},
        [W_READSEQ] = {"readseq", PART_MAIN, 1, 1, "cursor over all keys, forward"},
        [W_READREVERSE] = {"readreverse", PART_MAIN, 1, 1, "cursor over all keys, backward"},
        [W_SEEKRANDOM] = {"seekrandom", PART_MAIN, 1, 1, "seek to a random key, read 10 in order"},
        [W_READWHILEWRITING] = {"readwhilewriting", PART_MAIN, 1, 0,
                                "random gets on one thread while another overwrites"},
        [W_READRANDOM_2T] = {"readrandom-2t", PART_MAIN, 2, 0, "random gets, 2 threads"},
        [W_READRANDOM_4T] = {"readrandom-4t", PART_MAIN, 4, 0, "random gets, 4 threads"},
        [W_READRANDOM_8T] = {"readrandom-8t", PART_MAIN, 8, 0, "random gets, 8 threads"},
        [W_FILLSYNC_1T] = {"fillsync-1t", PART_SYNC, 1, 0, "durable puts of new keys, 1 thread"},
        [W_FILLSYNC_2T] = {"fillsync-2t", PART_SYNC, 2, 0, "durable puts of new keys, 2 threads"},
        [W_FILLSYNC_4T] = {"fillsync-4t", PART_SYNC, 4, 0, "durable puts of new keys, 4 threads"},
        [W_FILLSYNC_8T] = {"fillsync-8t", PART_SYNC, 8, 0, "durable puts of new keys, 8 threads"},
        [W_OVERWRITE_SYNC] = {"overwrite-sync", PART_SYNC, 1, 0,
                              "durable puts of random written keys"},
        [W_FILLBATCH_SYNC] = {"fillbatch-sync", PART_SYNC, 1, 0,
                              "durable batches of 1000 new keys"},
        [W_DELETERANDOM_SYNC] = {"deleterandom-sync", PART_SYNC, 1, 0,
                                 "durable deletes of written keys"},
        [W_BIG_FILL] =
                {"big-fill", PART_BIG, 1, 0,
                 "larger-than-cache load, 1000 per batch (key order unless --big-order random)"},
        [W_BIG_READRANDOM] = {"big-readrandom", PART_BIG, 1, 0,
                              "random gets, data many times the cache"},
};

/* ---- Keys, values, random numbers --------------------------------------- */

#define KEY_SIZE 16
#define POOL_SIZE (1u << 20)

static unsigned char *g_pool; /* half-compressible value bytes */
static size_t g_chunks;       /* whole values in the pool */
static bench_cfg g_cfg;

/* Key i: 15 decimal digits of i and a '0'.  The absent key i ends in '1'
 * instead, so it sorts between present keys i and i + 1 and no engine can
 * rule it out by the key range of a file or page alone. */
static void make_key(char *k, uint64_t i, int missing)
{
	for (int p = KEY_SIZE - 2; p >= 0; p--) {
		k[p] = (char)('0' + i % 10);
		i /= 10;
	}
	k[KEY_SIZE - 1] = missing ? '1' : '0';
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The value written for key i by write generation gen: one of the pool's
 * whole values, each half random bytes and half a copy of them. */
static const void *make_value(uint64_t i, uint64_t gen)
{
	return g_pool + (mix64(i * 31 + gen) % g_chunks) * g_cfg.value_size;
}

static void make_pool(size_t vsize)
{
	g_chunks = POOL_SIZE / vsize;
	g_pool = malloc(g_chunks * vsize);
	if (!g_pool) {
		perror("bench: pool");
		exit(2);
	}
	uint64_t s = 301;
	for (size_t c = 0; c < g_chunks; c++) {
		unsigned char *v = g_pool + c * vsize;
		size_t half = (vsize + 1) / 2;
		for (size_t j = 0; j < half; j++)
			v[j] = (unsigned char)(' ' + mix64(s++) % 95);
		for (size_t j = half; j < vsize; j++)
			v[j] = v[j - half];
	}
}

typedef struct rng {
	uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return mix64(r->s);
}

/* Uniform in [0, n). */
static uint64_t rng_below(rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* A permutation of [0, n) without a table (so it costs no memory that
 * would show in an engine's RSS): a 4-round Feistel network on the
 * smallest even number of bits covering n, walking cycles until the
 * result falls below n. */
typedef struct perm {
	uint64_t n;
	int half;
	uint64_t mask;
	uint64_t key[4];
} perm;

static void perm_init(perm *p, uint64_t n, uint64_t seed)
{
	int bits = 2;
	while (bits < 64 && ((uint64_t)1 << bits) < n)
		bits += 2;
	p->n = n;
	p->half = bits / 2;
	p->mask = ((uint64_t)1 << p->half) - 1;
	for (int r = 0; r < 4; r++)
		p->key[r] = mix64(seed * 4 + (uint64_t)r + 1);
}

static uint64_t perm_at(const perm *p, uint64_t i)
{
	uint64_t x = i;
	do {
		uint64_t l = x >> p->half, r = x & p->mask;
		for (int k = 0; k < 4; k++) {
			uint64_t t = r;
			r = l ^ (mix64(r ^ p->key[k]) & p->mask);
			l = t;
		}
		x = (l << p->half) | r;
	} while (x >= p->n);
	return x;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- Jobs: one thread's share of a workload ------------------------------ */

typedef enum job_kind {
	J_PUT_SEQ,  /* keys first..first+count-1 in order */
	J_PUT_PERM, /* keys perm(first..first+count-1) */
	J_PUT_RAND, /* count random keys of [0, range) */
	J_DEL_PERM,
	J_GET, /* count random present keys */
	J_GET_MISSING,
	J_SEEK,
	J_BATCH_SEQ, /* count keys from first, in batches */
	J_BATCH_PERM,
	J_WRITER, /* random puts until *stop */
} job_kind;

typedef struct job {
	const bench_engine *e;
	void *db;
	job_kind kind;
	uint64_t first, count, range;
	uint64_t gen; /* value generation */
	const perm *p;
	uint64_t seed;
	double deadline; /* 0: none; else stop when now() passes it */
	volatile int *stop;
	pthread_barrier_t *start;
	/* Out: */
	uint64_t done, found, bytes;
	double t0, t1;
	int err;
} job;

/* Runs the job's loop on an attached context.  Deadlines are checked
 * every 64 operations so the clock costs nothing measurable. */
static void job_loop(job *j, void *ctx)
{
	const bench_engine *e = j->e;
	rng r = {j->seed};
	char key[KEY_SIZE];
	char buf[65536];
	size_t vl;
	size_t vs = g_cfg.value_size;
	bench_kv *kv = NULL;
	if (j->kind == J_BATCH_SEQ || j->kind == J_BATCH_PERM) {
		kv = malloc((size_t)g_cfg.batch * (sizeof(*kv) + KEY_SIZE));
		if (!kv) {
			j->err = 1;
			return;
		}
	}
	uint64_t i = 0;
	while (i < j->count || j->kind == J_WRITER) {
		if ((i & 63) == 0 &&
		    ((j->deadline > 0 && now() > j->deadline) || (j->stop && *j->stop)))
			break;
		uint64_t k;
		int rc = 0;
		switch (j->kind) {
		case J_PUT_SEQ:
			k = j->first + i;
			make_key(key, k, 0);
			rc = e->put(ctx, key, KEY_SIZE, make_value(k, j->gen), vs);
			break;
		case J_PUT_PERM:
			k = perm_at(j->p, j->first + i);
			make_key(key, k, 0);
			rc = e->put(ctx, key, KEY_SIZE, make_value(k, j->gen), vs);
			break;
		case J_PUT_RAND:
		case J_WRITER:
			k = rng_below(&r, j->range);
			if (j->p)
				k = perm_at(j->p, k);
			make_key(key, k, 0);
			rc = e->put(ctx, key, KEY_SIZE, make_value(k, j->gen), vs);
			break;
		case J_DEL_PERM:
			make_key(key, perm_at(j->p, j->first + i), 0);
			rc = e->del(ctx, key, KEY_SIZE);
			break;
		case J_GET:
		case J_GET_MISSING:
			make_key(key, rng_below(&r, j->range), j->kind == J_GET_MISSING);
			rc = e->get(ctx, key, KEY_SIZE, buf, sizeof(buf), &vl);
			if (rc == 0) {
				j->found++;
				j->bytes += vl + (unsigned char)buf[0];
			}
			if (rc == 1)
				rc = 0;
			break;
		case J_SEEK: {
			make_key(key, rng_below(&r, j->range), 0);
			long got = e->scan(ctx, 0, key, KEY_SIZE, 10, &j->bytes);
			if (got < 0)
				rc = -1;
			else
				j->found += (uint64_t)got;
			break;
		}
		case J_BATCH_SEQ:
		case J_BATCH_PERM: {
			uint64_t n = j->count - i < (uint64_t)g_cfg.batch ? j->count - i
			                                                  : (uint64_t)g_cfg.batch;
			char *keys = (char *)(kv + g_cfg.batch);
			for (uint64_t b = 0; b < n; b++) {
				k = j->first + i + b;
				if (j->kind == J_BATCH_PERM)
					k = perm_at(j->p, k);
				make_key(keys + b * KEY_SIZE, k, 0);
				kv[b] = (bench_kv){keys + b * KEY_SIZE, KEY_SIZE,
				                   make_value(k, j->gen), vs};
			}
			rc = e->batch_put(ctx, kv, n);
			i += n - 1;
			break;
		}
		}
		if (rc) {
			j->err = 1;
			break;
		}
		i++;
	}
	j->done = i;
	free(kv);
}

static void *job_thread(void *arg)
{
	job *j = arg;
	void *ctx;
	if (j->e->attach(j->db, &ctx)) {
		j->err = 1;
		if (j->start)
			pthread_barrier_wait(j->start);
		return NULL;
	}
	if (j->start)
		pthread_barrier_wait(j->start);
	j->t0 = now();
	job_loop(j, ctx);
	j->t1 = now();
	j->e->detach(ctx);
	return NULL;
}

/* ---- Reporting results up the pipe --------------------------------------- */

static FILE *g_out; /* the child's end of the pipe */

static void send_line(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(g_out, fmt, ap);
	va_end(ap);
	fflush(g_out);
}

static void send_result(wl_id w, uint64_t ops, double secs, int status, double extra)
{
	send_line("R %d %llu %.9f %d %.3f\n", (int)w, (unsigned long long)ops, secs, status, extra);
	fprintf(stderr, "  %-10s %-18s %10.0f ops/s %9.3f us/op%s%s\n", "", wl_table[w].name,
	        secs > 0 ? (double)ops / secs : 0, ops ? secs * 1e6 / (double)ops : 0,
	        status == ST_CAPPED ? "  (time cap)" : "", status == ST_ERR ? "  ERROR" : "");
}

/* Runs nthreads jobs made from the template, splitting count between them,
 * and reports one result for workload w.  Returns -1 on an engine error. */
static int run_jobs(wl_id w, const job *tmpl, int nthreads, int capped, job *out_first)
{
	job jobs[16];
	pthread_t th[16];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
	uint64_t per = tmpl->count / (uint64_t)nthreads;
	for (int t = 0; t < nthreads; t++) {
		jobs[t] = *tmpl;
		jobs[t].first = tmpl->first + per * (uint64_t)t;
		jobs[t].count = t == nthreads - 1 ? tmpl->count - per * (uint64_t)t : per;
		jobs[t].seed = tmpl->seed * 1000003u + (uint64_t)t;
		jobs[t].start = &bar;
		if (capped)
			jobs[t].deadline = now() + g_cfg.max_secs;
		pthread_create(&th[t], NULL, job_thread, &jobs[t]);
	}
	uint64_t done = 0, found = 0;
	double t0 = 0, t1 = 0;
	int err = 0;
	for (int t = 0; t < nthreads; t++) {
		pthread_join(th[t], NULL);
		done += jobs[t].done;
		found += jobs[t].found;
		err |= jobs[t].err;
		if (t == 0 || jobs[t].t0 < t0)
			t0 = jobs[t].t0;
		if (jobs[t].t1 > t1)
			t1 = jobs[t].t1;
	}
	pthread_barrier_destroy(&bar);
	int status = err ? ST_ERR : done < tmpl->count ? ST_CAPPED : ST_OK;
	send_result(w, done, t1 - t0, status, 0);
	if (out_first) {
		*out_first = jobs[0];
		out_first->done = done;
		out_first->found = found;
	}
	return err ? -1 : 0;
}

/* ---- Database directories ------------------------------------------------ */

static uint64_t g_du;

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)path, (void)f;
	if (flag == FTW_F)
		g_du += (uint64_t)st->st_blocks * 512;
	return 0;
}

/* Bytes allocated on disk under dir (what du(1) reports). */
static uint64_t disk_usage(const char *dir)
{
	g_du = 0;
	nftw(dir, du_one, 16, FTW_PHYS);
	return g_du;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	remove(path);
	return 0;
}

static void wipe(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	mkdir(dir, 0755);
}

static long rss_now_kb(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- The parts ------------------------------------------------------------ */

typedef struct part_ctx {
	const bench_engine *e;
	char dir[4096];
	bench_opts o;
	void *db;
	void *ctx; /* the main thread's context */
} part_ctx;

static int part_open(part_ctx *pc)
{
	if (pc->e->open(pc->dir, &pc->o, &pc->db))
		return -1;
	if (pc->e->attach(pc->db, &pc->ctx)) {
		pc->e->close(pc->db);
		return -1;
	}
	return 0;
}

static void part_close(part_ctx *pc)
{
	if (g_cfg.stats && pc->e->stats)
		pc->e->stats(pc->db, stderr);
	pc->e->detach(pc->ctx);
	pc->e->close(pc->db);
	pc->db = pc->ctx = NULL;
}

static void na(wl_id w)
{
	send_line("R %d 0 0 %d 0\n", (int)w, ST_NA);
}

/* A workload on the main thread's context (no thread start-up in the
 * measurement). */
static int run_single(part_ctx *pc, wl_id w, job *j, int capped)
{
	j->e = pc->e;
	j->db = pc->db;
	if (capped)
		j->deadline = now() + g_cfg.max_secs;
	j->t0 = now();
	job_loop(j, pc->ctx);
	j->t1 = now();
	int status = j->err ? ST_ERR : j->done < j->count ? ST_CAPPED : ST_OK;
	send_result(w, j->done, j->t1 - j->t0, status, 0);
	return j->err ? -1 : 0;
}

static void check_found(const char *what, uint64_t found, uint64_t want)
{
	if (found != want)
		fprintf(stderr, "bench: WARNING: %s found %llu of %llu\n", what,
		        (unsigned long long)found, (unsigned long long)want);
}

#define TRY(x)                                                                                     \
	do {                                                                                       \
		if ((x) != 0)                                                                      \
			return -1;                                                                 \
	} while (0)

/* CPU seconds used so far by every thread of this process. */
static double cpu_secs(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Waits until the engine's background work (flushes, compactions) left
 * behind by the writes has finished, so that a read phase measures reads
 * and not the state a compaction happened to be in: the process is idle
 * once it used under 2% of a core over 200 ms.  Gives up after 60 s. */
static void settle(const char *before)
{
	double t0 = now(), c0 = cpu_secs();
	while (now() - t0 < 60) {
		usleep(200000);
		double c1 = cpu_secs();
		if (c1 - c0 < 0.004)
			break;
		c0 = c1;
	}
	fprintf(stderr, "  %-10s settled in %.1f s before %s\n", "", now() - t0, before);
}

/* The nosync workloads on num keys. */
static int part_main(part_ctx *pc)
{
	const bench_cfg *c = &g_cfg;
	const bench_engine *e = pc->e;
	int ordered = (e->caps & BENCH_ORDERED) != 0;
	perm fill, del;
	perm_init(&fill, c->num, 11);
	perm_init(&del, c->num, 12);

	TRY(part_open(pc));
	job j = {.kind = J_PUT_SEQ, .count = c->num};
	TRY(run_single(pc, W_FILLSEQ, &j, 0));
	part_close(pc);
	wipe(pc->dir);

	TRY(part_open(pc));
	j = (job){.kind = J_PUT_PERM, .count = c->num, .p = &fill};
	TRY(run_single(pc, W_FILLRANDOM, &j, 0));
	part_close(pc);
	send_line("D fill %llu\n", (unsigned long long)disk_usage(pc->dir));
	TRY(part_open(pc));

	j = (job){.kind = J_PUT_RAND, .count = c->num, .range = c->num, .gen = 1, .seed = 21};
	TRY(run_single(pc, W_OVERWRITE, &j, 0));
	settle("readrandom");

	j = (job){.kind = J_GET, .count = c->reads, .range = c->num, .seed = 31};
	TRY(run_single(pc, W_READRANDOM, &j, 1));
	check_found("readrandom", j.found, j.done);
	j = (job){.kind = J_GET_MISSING, .count = c->reads, .range = c->num, .seed = 32};
	TRY(run_single(pc, W_READMISSING, &j, 1));
	check_found("readmissing", j.found, 0);

	if (ordered) {
		uint64_t bytes = 0;
		for (int rev = 0; rev < 2; rev++) {
			wl_id w = rev ? W_READREVERSE : W_READSEQ;
			double t0 = now();
			long got = e->scan(pc->ctx, rev, NULL, 0, (long)c->num, &bytes);
			double t1 = now();
			/* A scan that ends early is a failure, not a fast scan. */
			int bad = got < 0 || (uint64_t)got != c->num;
			check_found(wl_table[w].name, got < 0 ? 0 : (uint64_t)got, c->num);
			send_result(w, got > 0 ? (uint64_t)got : 0, t1 - t0, bad ? ST_ERR : ST_OK,
			            0);
			TRY(got < 0);
		}
		j = (job){.kind = J_SEEK, .count = c->seeks, .range = c->num, .seed = 41};
		TRY(run_single(pc, W_SEEKRANDOM, &j, 1));
	} else {
		na(W_READSEQ);
		na(W_READREVERSE);
		na(W_SEEKRANDOM);
	}

	/* Threaded reads: the total is split between the threads. */
	static const wl_id mt[] = {W_READRANDOM_2T, W_READRANDOM_4T, W_READRANDOM_8T};
	for (int t = 0; t < 3; t++) {
		job tm = {.e = e,
		          .db = pc->db,
		          .kind = J_GET,
		          .count = c->reads,
		          .range = c->num,
		          .seed = 51 + (uint64_t)t};
		job first;
		TRY(run_jobs(mt[t], &tm, wl_table[mt[t]].threads, 1, &first));
		check_found(wl_table[mt[t]].name, first.found, first.done);
	}

	/* One reader measured while one writer overwrites without pause. */
	volatile int stop = 0;
	job wr = {.e = e,
	          .db = pc->db,
	          .kind = J_WRITER,
	          .range = c->num,
	          .gen = 2,
	          .seed = 61,
	          .stop = &stop};
	pthread_t wt;
	pthread_create(&wt, NULL, job_thread, &wr);
	j = (job){.kind = J_GET, .count = c->reads, .range = c->num, .seed = 62};
	usleep(1000);
	int rc = 0;
	j.e = e;
	j.db = pc->db;
	j.deadline = now() + c->max_secs;
	j.t0 = now();
	job_loop(&j, pc->ctx);
	j.t1 = now();
	stop = 1;
	pthread_join(wt, NULL);
	rc = j.err || wr.err;
	double wrate = wr.t1 > wr.t0 ? (double)wr.done / (wr.t1 - wr.t0) : 0;
	send_line("R %d %llu %.9f %d %.3f\n", (int)W_READWHILEWRITING, (unsigned long long)j.done,
	          j.t1 - j.t0,
	          rc                 ? ST_ERR
	          : j.done < j.count ? ST_CAPPED
	                             : ST_OK,
	          wrate);
	fprintf(stderr, "  %-10s %-18s %10.0f ops/s (writer %.0f puts/s)\n", "", "readwhilewriting",
	        (double)j.done / (j.t1 - j.t0), wrate);
	TRY(rc);

	j = (job){.kind = J_DEL_PERM, .count = c->num, .p = &del};
	TRY(run_single(pc, W_DELETERANDOM, &j, 0));
	part_close(pc);
	wipe(pc->dir);

	TRY(part_open(pc));
	j = (job){.kind = J_BATCH_SEQ, .count = c->num};
	TRY(run_single(pc, W_FILLBATCH, &j, 0));
	part_close(pc);
	return 0;
}

/* The durable workloads: sync_ops writes each, on num-key space. */
static int part_sync(part_ctx *pc)
{
	const bench_cfg *c = &g_cfg;
	const bench_engine *e = pc->e;
	uint64_t s = c->sync_ops;
	perm p;
	perm_init(&p, c->num, 71);
	TRY(part_open(pc));
	static const wl_id fs[] = {W_FILLSYNC_1T, W_FILLSYNC_2T, W_FILLSYNC_4T, W_FILLSYNC_8T};
	uint64_t next = 0; /* the next unwritten index of the permutation */
	for (int t = 0; t < 4; t++) {
		job tm = {.e = e,
		          .db = pc->db,
		          .kind = J_PUT_PERM,
		          .first = next,
		          .count = s,
		          .p = &p};
		job first;
		TRY(run_jobs(fs[t], &tm, wl_table[fs[t]].threads, 1, &first));
		next += s;
	}
	job j = {.kind = J_PUT_RAND, .count = s, .range = s, .p = &p, .gen = 1, .seed = 81};
	TRY(run_single(pc, W_OVERWRITE_SYNC, &j, 1));
	j = (job){.kind = J_BATCH_PERM, .first = next, .count = s * 10, .p = &p};
	TRY(run_single(pc, W_FILLBATCH_SYNC, &j, 1));
	j = (job){.kind = J_DEL_PERM, .count = s, .p = &p};
	TRY(run_single(pc, W_DELETERANDOM_SYNC, &j, 1));
	part_close(pc);
	return 0;
}

/* The larger-than-cache run: big_num keys, the small cache. */
static int part_big(part_ctx *pc)
{
	const bench_cfg *c = &g_cfg;
	perm p;
	perm_init(&p, c->big_num, 91);
	TRY(part_open(pc));
	job j = {.kind = c->big_random ? J_BATCH_PERM : J_BATCH_SEQ, .count = c->big_num, .p = &p};
	TRY(run_single(pc, W_BIG_FILL, &j, 0));
	part_close(pc);
	send_line("D big %llu\n", (unsigned long long)disk_usage(pc->dir));
	TRY(part_open(pc));
	settle("big-readrandom");
	j = (job){.kind = J_GET, .count = c->big_reads, .range = c->big_num, .seed = 92};
	TRY(run_single(pc, W_BIG_READRANDOM, &j, 1));
	check_found("big-readrandom", j.found, j.done);
	part_close(pc);
	return 0;
}

/* ---- Children and the parent --------------------------------------------- */

/* The body of one child process: runs one part of one engine and writes
 * its results to fd. */
static int child_main(const bench_engine *e, bench_part part, int fd)
{
	g_out = fdopen(fd, "w");
	if (!g_out)
		return 2;
	send_line("B %ld\n", rss_now_kb());
	part_ctx pc = {.e = e};
	snprintf(pc.dir, sizeof(pc.dir), "%s/%s", g_cfg.data_dir, e->name);
	wipe(pc.dir);
	pc.o.sync = part == PART_SYNC;
	pc.o.cache_bytes = part == PART_BIG ? g_cfg.big_cache_bytes : g_cfg.cache_bytes;
	pc.o.expected_keys = part == PART_BIG ? g_cfg.big_num : g_cfg.num;
	int rc = part == PART_MAIN   ? part_main(&pc)
	         : part == PART_SYNC ? part_sync(&pc)
	                             : part_big(&pc);
	wipe(pc.dir);
	rmdir(pc.dir);
	fclose(g_out);
	return rc ? 1 : 0;
}

/* Reads a child's lines into r. */
static void collect(FILE *in, eng_result *r, bench_part part)
{
	char line[256];
	while (fgets(line, sizeof(line), in)) {
		int w, st;
		unsigned long long ops, bytes;
		double secs, extra;
		long kb;
		if (sscanf(line, "R %d %llu %lf %d %lf", &w, &ops, &secs, &st, &extra) == 5 &&
		    w >= 0 && w < W_N) {
			r->wl[w] = (wl_result){st, ops, secs, extra};
		} else if (sscanf(line, "D fill %llu", &bytes) == 1) {
			r->disk_fill = bytes;
		} else if (sscanf(line, "D big %llu", &bytes) == 1) {
			r->disk_big = bytes;
		} else if (sscanf(line, "B %ld", &kb) == 1) {
			r->base_rss_kb[part] = kb;
		}
	}
}

static void run_part(eng_result *r, bench_part part)
{
	static const char *const names[] = {"main (nosync)", "sync", "larger-than-cache"};
	fprintf(stderr, "bench: %s: %s\n", r->e->name, names[part]);
	double t0 = now();
	int fds[2];
	if (pipe(fds)) {
		perror("bench: pipe");
		exit(2);
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench: fork");
		exit(2);
	}
	if (pid == 0) {
		close(fds[0]);
		_exit(child_main(r->e, part, fds[1]));
	}
	close(fds[1]);
	FILE *in = fdopen(fds[0], "r");
	collect(in, r, part);
	fclose(in);
	int status;
	struct rusage ru;
	wait4(pid, &status, 0, &ru);
	r->rss_kb[part] = ru.ru_maxrss;
	fprintf(stderr, "bench: %s: %s took %.1f s, peak RSS %.1f MiB\n", r->e->name, names[part],
	        now() - t0, ru.ru_maxrss / 1024.0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char why[64];
		if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(status));
		else
			snprintf(why, sizeof(why), "an engine call failed");
		snprintf(r->failure + strlen(r->failure), sizeof(r->failure) - strlen(r->failure),
		         "%s%s: %s", r->failure[0] ? "; " : "", names[part], why);
		fprintf(stderr, "bench: %s: %s: %s\n", r->e->name, names[part], why);
		/* Whatever the child did not report failed with it. */
		for (int w = 0; w < W_N; w++)
			if (wl_table[w].part == part && r->wl[w].status == ST_NONE)
				r->wl[w].status = ST_ERR;
	}
}

static const bench_engine *const all_engines[] = {
        &bench_trove,      &bench_lmdb,       &bench_leveldb,    &bench_rocksdb,
        &bench_bdb,        &bench_gdbm,       &bench_kyoto_tree, &bench_kyoto_hash,
        &bench_tkrzw_hash, &bench_tkrzw_tree, &bench_sqlite,
};
#define N_ENGINES (int)(sizeof(all_engines) / sizeof(all_engines[0]))

int bench_fail(const char *engine, const char *what, const char *detail)
{
	fprintf(stderr, "bench: %s: %s: %s\n", engine, what, detail);
	return -1;
}

static int in_list(const char *list, const char *name)
{
	if (!list)
		return 1;
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len + (end != NULL);
	}
	return 0;
}

/* The 1, 5 and 15 minute load averages, "1.00 0.50 0.25". */
static void loadavg(char *buf, size_t n)
{
	buf[0] = 0;
	FILE *f = fopen("/proc/loadavg", "r");
	if (!f)
		return;
	if (!fgets(buf, (int)n, f))
		buf[0] = 0;
	fclose(f);
	int sp = 0;
	for (char *p = buf; *p; p++)
		if (*p == '\n' || (*p == ' ' && ++sp == 3)) {
			*p = 0;
			break;
		}
}

static void usage(void)
{
	fprintf(stderr, "usage: trove-bench [--quick] [--num N] [--reads N] [--sync-ops N]\n"
	                "                   [--big-num N] [--big-reads N] [--cache-mb M]\n"
	                "                   [--big-cache-mb M] [--value-size B] [--max-secs S]\n"
	                "                   [--engines a,b,..] [--parts main,sync,big]\n"
	                "                   [--big-order seq|random] [--stats] [--data-dir D] "
	                "[--out-dir D]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bench_cfg *c = &g_cfg;
	const char *engines = NULL, *parts = NULL;
	int quick = 0;
	/* First pass: --quick sets the defaults the other options override. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
	const char *q = getenv("QUICK");
	if (q && *q && strcmp(q, "0") != 0)
		quick = 1;
	*c = (bench_cfg){
	        .num = quick ? 100000 : 1000000,
	        .reads = quick ? 50000 : 1000000,
	        .value_size = 100,
	        .sync_ops = quick ? 1000 : 10000,
	        .big_num = quick ? 300000 : 10000000,
	        .big_reads = quick ? 50000 : 1000000,
	        .cache_bytes = (size_t)256 << 20,
	        .big_cache_bytes = (size_t)(quick ? 4 : 64) << 20,
	        .max_secs = quick ? 2 : 30,
	        .batch = 1000,
	        .quick = quick,
	        .data_dir = "build/bench/data",
	        .out_dir = "bench/results",
	};
	c->seeks = 0;
	static const struct option lo[] = {
	        {"quick", no_argument, NULL, 'Q'},
	        {"num", required_argument, NULL, 'n'},
	        {"reads", required_argument, NULL, 'r'},
	        {"seeks", required_argument, NULL, 'k'},
	        {"sync-ops", required_argument, NULL, 's'},
	        {"big-num", required_argument, NULL, 'N'},
	        {"big-reads", required_argument, NULL, 'R'},
	        {"cache-mb", required_argument, NULL, 'c'},
	        {"big-cache-mb", required_argument, NULL, 'C'},
	        {"value-size", required_argument, NULL, 'v'},
	        {"max-secs", required_argument, NULL, 'm'},
	        {"engines", required_argument, NULL, 'e'},
	        {"parts", required_argument, NULL, 'p'},
	        {"data-dir", required_argument, NULL, 'd'},
	        {"out-dir", required_argument, NULL, 'o'},
	        {"big-order", required_argument, NULL, 'O'},
	        {"stats", no_argument, NULL, 'S'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'Q':
			break;
		case 'n':
			c->num = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			c->reads = strtoull(optarg, NULL, 10);
			break;
		case 'k':
			c->seeks = strtoull(optarg, NULL, 10);
			break;
		case 's':
			c->sync_ops = strtoull(optarg, NULL, 10);
			break;
		case 'N':
			c->big_num = strtoull(optarg, NULL, 10);
			break;
		case 'R':
			c->big_reads = strtoull(optarg, NULL, 10);
			break;
		case 'c':
			c->cache_bytes = (size_t)strtoull(optarg, NULL, 10) << 20;
			break;
		case 'C':
			c->big_cache_bytes = (size_t)strtoull(optarg, NULL, 10) << 20;
			break;
		case 'v':
			c->value_size = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'm':
			c->max_secs = strtod(optarg, NULL);
			break;
		case 'e':
			engines = optarg;
			break;
		case 'p':
			parts = optarg;
			break;
		case 'd':
			c->data_dir = optarg;
			break;
		case 'o':
			c->out_dir = optarg;
			break;
		case 'S':
			c->stats = 1;
			break;
		case 'O':
			c->big_random = !strcmp(optarg, "random");
			break;
		default:
			usage();
		}
	}
	if (!c->seeks)
		c->seeks = c->reads / 10 ? c->reads / 10 : 1;
	if (c->num < 100 || c->value_size < 2 || c->value_size > 60000 || !c->big_num ||
	    !c->cache_bytes || !c->big_cache_bytes) {
		fprintf(stderr, "trove-bench: need --num >= 100, 2 <= --value-size <= 60000 and "
		                "non-zero --big-num and caches\n");
		usage();
	}
	/* The durable part writes 14 x sync-ops distinct keys of the num-key space. */
	if (c->sync_ops * 14 > c->num) {
		fprintf(stderr, "trove-bench: --sync-ops x 14 must not exceed --num\n");
		usage();
	}
	make_pool(c->value_size);

	/* The scratch directory, made with its parents. */
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", c->data_dir);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0755);
			*p = '/';
		}
	mkdir(tmp, 0755);

	eng_result res[N_ENGINES];
	int n = 0;
	memset(res, 0, sizeof(res));
	for (int i = 0; i < N_ENGINES; i++) {
		if (!in_list(engines, all_engines[i]->name))
			continue;
		res[n].e = all_engines[i];
		snprintf(res[n].version, sizeof(res[n].version), "%s", all_engines[i]->version());
		/* The Berkeley DB backend must be running libdb, not Trove's
		 * Berkeley-DB-style compat layer. */
		if (all_engines[i] == &bench_bdb && !strstr(res[n].version, "Berkeley DB")) {
			fprintf(stderr, "bench: bdb reports \"%s\": not libdb, refusing\n",
			        res[n].version);
			return 2;
		}
		fprintf(stderr, "bench: %-11s %s\n", all_engines[i]->name, res[n].version);
		n++;
	}
	if (!n)
		usage();

	char load0[64], load1[64], stamp[32];
	loadavg(load0, sizeof(load0));
	time_t t = time(NULL);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", localtime(&t));
	fprintf(stderr,
	        "bench: %llu keys, %llu reads, %zu-byte values, %llu sync ops, %llu "
	        "big keys; cache %zu MiB (big %zu MiB); load %s\n",
	        (unsigned long long)c->num, (unsigned long long)c->reads, c->value_size,
	        (unsigned long long)c->sync_ops, (unsigned long long)c->big_num,
	        c->cache_bytes >> 20, c->big_cache_bytes >> 20, load0);
	signal(SIGPIPE, SIG_IGN);
	static const char *const part_names[] = {"main", "sync", "big"};
	for (int i = 0; i < n; i++)
		for (int p = 0; p < PART_N; p++) {
			if (in_list(parts, part_names[p]))
				run_part(&res[i], (bench_part)p);
			else
				for (int w = 0; w < W_N; w++)
					if (wl_table[w].part == (bench_part)p)
						res[i].wl[w].status = ST_NONE;
		}
	loadavg(load1, sizeof(load1));
	bench_report(c, res, n, load0, load1, stamp);
	return 0;
}
