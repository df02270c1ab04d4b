/*
 * report.c - turns the results of a trove-bench run into what people
 * read: tables on standard output (ops/s with Trove's ratio to the best
 * peer, us/op, memory and disk, the targets of issue 3), a CSV file
 * (timestamped and latest.csv), a Markdown copy of the tables
 * (latest.md, pasted into docs/PERFORMANCE.md) and the data file the
 * chart is drawn from (latest.dat, read by bench/chart.gp).  A QUICK run
 * writes latest-quick.* instead, so it never replaces a full run's files.
 *
 * It only formats: every number here was measured by main.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

static const char *const status_name[] = {"skipped", "ok", "capped", "n/a", "error"};

static int has_rate(const wl_result *r)
{
	return (r->status == ST_OK || r->status == ST_CAPPED) && r->secs > 0 && r->ops > 0;
}

static double rate(const wl_result *r)
{
	return has_rate(r) ? (double)r->ops / r->secs : NAN;
}

/* "12.3M", "456k", "789" */
static const char *fmt_rate(char *b, double v)
{
	if (isnan(v))
		snprintf(b, 16, "-");
	else if (v >= 1e7)
		snprintf(b, 16, "%.1fM", v / 1e6);
	else if (v >= 1e6)
		snprintf(b, 16, "%.2fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(b, 16, "%.0fk", v / 1e3);
	else if (v >= 1e3)
		snprintf(b, 16, "%.1fk", v / 1e3);
	else
		snprintf(b, 16, "%.0f", v);
	return b;
}

static const char *fmt_cell(char *b, const wl_result *r)
{
	if (r->status == ST_NA)
		return "n/a";
	if (r->status == ST_ERR)
		return "ERR";
	if (!has_rate(r))
		return "-";
	fmt_rate(b, rate(r));
	if (r->status == ST_CAPPED)
		strcat(b, "*");
	return b;
}

static const char *fmt_us(char *b, const wl_result *r)
{
	if (r->status == ST_NA)
		return "n/a";
	if (r->status == ST_ERR)
		return "ERR";
	if (!has_rate(r))
		return "-";
	double us = r->secs * 1e6 / (double)r->ops;
	snprintf(b, 16, us < 10 ? "%.3f" : us < 1000 ? "%.1f" : "%.0f", us);
	return b;
}

/* Which peers a comparison takes. */
typedef enum peer_set { P_ALL, P_ORDERED, P_HASH, P_LSM, P_ROCKSDB } peer_set;

static int in_set(const bench_engine *e, peer_set s)
{
	switch (s) {
	case P_ALL:
		return 1;
	case P_ORDERED:
		return (e->caps & BENCH_ORDERED) != 0;
	case P_HASH:
		return (e->caps & BENCH_HASH) != 0;
	case P_LSM:
		return !strcmp(e->name, "leveldb") || !strcmp(e->name, "rocksdb");
	case P_ROCKSDB:
		return !strcmp(e->name, "rocksdb");
	}
	return 0;
}

static int trove_index(const eng_result *res, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(res[i].e->name, "trove"))
			return i;
	return -1;
}

/* The best peer (not Trove) of set s on workload w; NAN if none ran. */
static double best_peer(const eng_result *res, int n, wl_id w, peer_set s, const char **who)
{
	double best = NAN;
	*who = "-";
	for (int i = 0; i < n; i++) {
		if (!strcmp(res[i].e->name, "trove") || !in_set(res[i].e, s))
			continue;
		double v = rate(&res[i].wl[w]);
		if (!isnan(v) && (isnan(best) || v > best)) {
			best = v;
			*who = res[i].e->name;
		}
	}
	return best;
}

static double trove_rate(const eng_result *res, int n, wl_id w)
{
	int t = trove_index(res, n);
	return t < 0 ? NAN : rate(&res[t].wl[w]);
}

/* ---- Output helpers: every table goes to stdout and to latest.md -------- */

static FILE *g_md;

static void both(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static void md(const char *fmt, ...)
{
	if (!g_md)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(g_md, fmt, ap);
	va_end(ap);
}

/* One table: workloads down, engines across, plus Trove's ratio to the
 * best peer when us is 0 (throughput). */
static void print_table(const eng_result *res, int n, int us)
{
	char b[32];
	both("\n%-18s", us ? "us/op" : "ops/s");
	md("\n| %s |", us ? "µs/op (lower is better)" : "ops/s (higher is better)");
	for (int i = 0; i < n; i++) {
		both(" %10s", res[i].e->name);
		md(" %s |", res[i].e->name);
	}
	if (!us) {
		both(" %8s %-10s", "trove/", "best peer");
		md(" Trove ÷ best peer | best peer |");
	}
	both("\n");
	md("\n|---|");
	for (int i = 0; i < n + (us ? 0 : 2); i++)
		md("---:|");
	md("\n");
	for (int w = 0; w < W_N; w++) {
		int any = 0;
		for (int i = 0; i < n; i++)
			any |= res[i].wl[w].status != ST_NONE;
		if (!any)
			continue;
		both("%-18s", wl_table[w].name);
		md("| %s |", wl_table[w].name);
		for (int i = 0; i < n; i++) {
			const char *cell =
			        us ? fmt_us(b, &res[i].wl[w]) : fmt_cell(b, &res[i].wl[w]);
			both(" %10s", cell);
			if (!strcmp(res[i].e->name, "trove"))
				md(" **%s** |", cell);
			else
				md(" %s |", cell);
		}
		if (!us) {
			const char *who;
			double best = best_peer(res, n, w, P_ALL, &who);
			double tv = trove_rate(res, n, w);
			if (isnan(best) || isnan(tv)) {
				both(" %8s %-10s", "-", who);
				md(" - | %s |", who);
			} else {
				both(" %7.2fx %-10s", tv / best, who);
				md(" %.2f× | %s |", tv / best, who);
			}
		}
		both("\n");
		md("\n");
	}
}

static double mib(double bytes)
{
	return bytes / (1024.0 * 1024.0);
}

static void print_resources(const bench_cfg *c, const eng_result *res, int n)
{
	both("\n%-11s %14s %14s %14s %12s %14s %14s\n", "engine", "RSS main MiB", "RSS sync MiB",
	     "RSS big MiB", "base MiB", "disk fill MiB", "disk big MiB");
	md("\n| engine | peak RSS, main (MiB) | peak RSS, sync | peak RSS, larger-than-cache "
	   "| RSS before open | disk after fillrandom (MiB) | disk after big fill (MiB) |\n"
	   "|---|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < n; i++) {
		const eng_result *r = &res[i];
		both("%-11s %14.1f %14.1f %14.1f %12.1f %14.1f %14.1f\n", r->e->name,
		     r->rss_kb[PART_MAIN] / 1024.0, r->rss_kb[PART_SYNC] / 1024.0,
		     r->rss_kb[PART_BIG] / 1024.0, r->base_rss_kb[PART_MAIN] / 1024.0,
		     mib((double)r->disk_fill), mib((double)r->disk_big));
		md("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", r->e->name,
		   r->rss_kb[PART_MAIN] / 1024.0, r->rss_kb[PART_SYNC] / 1024.0,
		   r->rss_kb[PART_BIG] / 1024.0, r->base_rss_kb[PART_MAIN] / 1024.0,
		   mib((double)r->disk_fill), mib((double)r->disk_big));
	}
	both("(cache budget: main and sync %zu MiB, larger-than-cache %zu MiB)\n",
	     c->cache_bytes >> 20, c->big_cache_bytes >> 20);
	md("\nCache budget: %zu MiB in the main and sync parts, %zu MiB in the "
	   "larger-than-cache part. RSS is the peak of each part's own process "
	   "(getrusage), including the driver (the \"before open\" column).\n",
	   c->cache_bytes >> 20, c->big_cache_bytes >> 20);
}

/* ---- The targets of issue 3 ------------------------------------------------ */

static void target_row(const char *what, double measured, double need, const char *detail,
                       int higher_is_better)
{
	int met = !isnan(measured) && (higher_is_better ? measured >= need : measured <= need);
	const char *verdict = isnan(measured) ? "not measured" : met ? "yes" : "NO";
	both("%-52s %8.2f %7s%.2f  %-12s %s\n", what, measured,
	     higher_is_better ? ">= " : "<= ", need, verdict, detail);
	md("| %s | %.2f | %s %.2f | %s | %s |\n", what, measured, higher_is_better ? "≥" : "≤",
	   need,
	   met               ? "yes"
	   : isnan(measured) ? "—"
	                     : "**no**",
	   detail);
}

/* Trove's ratio to the best of set s on w, against need. */
static void ratio_target(const eng_result *res, int n, wl_id w, peer_set s, double need,
                         const char *label)
{
	const char *who;
	double best = best_peer(res, n, w, s, &who);
	double tv = trove_rate(res, n, w);
	char what[96], detail[128], b1[16], b2[16];
	snprintf(what, sizeof(what), "%s: Trove ÷ %s", wl_table[w].name, label);
	snprintf(detail, sizeof(detail), "trove %s vs %s %s ops/s", fmt_rate(b1, tv), who,
	         fmt_rate(b2, best));
	target_row(what, tv / best, need, detail, 1);
}

static void print_targets(const bench_cfg *c, const eng_result *res, int n)
{
	int t = trove_index(res, n);
	if (t < 0)
		return;
	both("\nTargets of issue 3 (ratio = Trove / peer)\n");
	md("\n| target | measured | needed | met? | detail |\n|---|---:|---:|---|---|\n");
	static const wl_id reads[] = {W_READRANDOM, W_READMISSING};
	for (int i = 0; i < 2; i++) {
		ratio_target(res, n, reads[i], P_ORDERED, 1.0, "best ordered engine");
		ratio_target(res, n, reads[i], P_HASH, 0.8, "best hash engine");
	}
	static const wl_id writes[] = {W_FILLRANDOM, W_OVERWRITE, W_FILLBATCH};
	for (int i = 0; i < 3; i++) {
		ratio_target(res, n, writes[i], P_LSM, 2.0, "best of LevelDB/RocksDB");
		ratio_target(res, n, writes[i], P_ALL, 1.0, "best peer");
	}
	ratio_target(res, n, W_FILLSYNC_8T, P_ALL, 5.0, "best peer");
	ratio_target(res, n, W_READSEQ, P_ORDERED, 1.0, "best ordered engine");
	ratio_target(res, n, W_READREVERSE, P_ORDERED, 1.0, "best ordered engine");
	ratio_target(res, n, W_BIG_READRANDOM, P_ROCKSDB, 1.0, "RocksDB (same cache)");

	double rocks_disk = NAN;
	for (int i = 0; i < n; i++)
		if (!strcmp(res[i].e->name, "rocksdb") && res[i].disk_fill)
			rocks_disk = (double)res[i].disk_fill;
	char detail[128];
	snprintf(detail, sizeof(detail), "trove %.1f MiB vs rocksdb %.1f MiB",
	         mib((double)res[t].disk_fill), mib(rocks_disk));
	target_row("disk after fillrandom: Trove ÷ RocksDB",
	           res[t].disk_fill ? (double)res[t].disk_fill / rocks_disk : NAN, 1.0, detail, 0);
	static const bench_part parts[] = {PART_MAIN, PART_BIG};
	for (int i = 0; i < 2; i++) {
		bench_part p = parts[i];
		size_t budget = p == PART_BIG ? c->big_cache_bytes : c->cache_bytes;
		double used = (double)(res[t].rss_kb[p] - res[t].base_rss_kb[p]) * 1024;
		snprintf(detail, sizeof(detail),
		         "peak RSS %.1f MiB - %.1f MiB before open, budget %zu MiB",
		         res[t].rss_kb[p] / 1024.0, res[t].base_rss_kb[p] / 1024.0, budget >> 20);
		target_row(p == PART_BIG ? "peak RSS (larger-than-cache) ÷ budget"
		                         : "peak RSS (main part) ÷ budget",
		           res[t].rss_kb[p] ? used / (double)budget : NAN, 1.0, detail, 0);
	}
}

/* ---- Files ----------------------------------------------------------------- */

static void write_csv(const char *path, const bench_cfg *c, const eng_result *res, int n,
                      const char *stamp, const char *load_before, const char *load_after)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return;
	}
	fprintf(f, "run,engine,version,workload,part,threads,ops,seconds,ops_per_sec,"
	           "us_per_op,status,value,unit\n");
	static const char *const parts[] = {"main", "sync", "big"};
	for (int i = 0; i < n; i++) {
		const eng_result *r = &res[i];
		for (int w = 0; w < W_N; w++) {
			const wl_result *x = &r->wl[w];
			if (x->status == ST_NONE)
				continue;
			fprintf(f, "%s,%s,\"%s\",%s,%s,%d,%llu,%.6f,", stamp, r->e->name,
			        r->version, wl_table[w].name, parts[wl_table[w].part],
			        wl_table[w].threads, (unsigned long long)x->ops, x->secs);
			if (has_rate(x))
				fprintf(f, "%.1f,%.4f,", rate(x), x->secs * 1e6 / (double)x->ops);
			else
				fprintf(f, ",,");
			fprintf(f, "%s,", status_name[x->status]);
			if (w == W_READWHILEWRITING && has_rate(x))
				fprintf(f, "%.1f,writer_puts_per_sec\n", x->extra);
			else
				fprintf(f, ",\n");
		}
		for (int p = 0; p < PART_N; p++)
			if (r->rss_kb[p])
				fprintf(f, "%s,%s,\"%s\",peak-rss,%s,,,,,,ok,%ld,bytes\n", stamp,
				        r->e->name, r->version, parts[p], r->rss_kb[p] * 1024);
		for (int p = 0; p < PART_N; p++)
			if (r->base_rss_kb[p])
				fprintf(f, "%s,%s,\"%s\",rss-before-open,%s,,,,,,ok,%ld,bytes\n",
				        stamp, r->e->name, r->version, parts[p],
				        r->base_rss_kb[p] * 1024);
		if (r->disk_fill)
			fprintf(f, "%s,%s,\"%s\",disk-after-fillrandom,main,,,,,,ok,%llu,bytes\n",
			        stamp, r->e->name, r->version, (unsigned long long)r->disk_fill);
		if (r->disk_big)
			fprintf(f, "%s,%s,\"%s\",disk-after-big-fill,big,,,,,,ok,%llu,bytes\n",
			        stamp, r->e->name, r->version, (unsigned long long)r->disk_big);
	}
	fprintf(f, "%s,config,,num,,,%llu,,,,,,keys\n", stamp, (unsigned long long)c->num);
	const char *rev = getenv("BENCH_REV");
	if (rev && *rev)
		fprintf(f, "%s,config,,trove-commit,,,,,,,,\"%s\",git\n", stamp, rev);
	fprintf(f, "%s,config,,loadavg-before,,,,,,,,\"%s\",1/5/15 min\n", stamp, load_before);
	fprintf(f, "%s,config,,loadavg-after,,,,,,,,\"%s\",1/5/15 min\n", stamp, load_after);
	fclose(f);
}

/* Groups of the chart, one panel each. */
static const struct {
	const char *title;
	wl_id w[8];
	int n;
} chart_groups[] = {
        {"Writes, no fsync",
         {W_FILLSEQ, W_FILLRANDOM, W_OVERWRITE, W_FILLBATCH, W_DELETERANDOM},
         5},
        {"Point reads",
         {W_READRANDOM, W_READMISSING, W_READWHILEWRITING, W_READRANDOM_2T, W_READRANDOM_4T,
          W_READRANDOM_8T},
         6},
        {"Ordered reads", {W_READSEQ, W_READREVERSE, W_SEEKRANDOM}, 3},
        {"Durable writes (fsync per acknowledged write)",
         {W_FILLSYNC_1T, W_FILLSYNC_2T, W_FILLSYNC_4T, W_FILLSYNC_8T, W_OVERWRITE_SYNC,
          W_FILLBATCH_SYNC, W_DELETERANDOM_SYNC},
         7},
        {"Larger than the cache", {W_BIG_FILL, W_BIG_READRANDOM}, 2},
};

/* latest.dat: one gnuplot data block per chart panel (workloads down,
 * engines across, NaN where an engine did not run), then a block of
 * Trove's ratio to the best peer per workload. */
static void write_dat(const char *path, const eng_result *res, int n)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return;
	}
	for (size_t g = 0; g < sizeof(chart_groups) / sizeof(chart_groups[0]); g++) {
		fprintf(f, "# %s\nworkload", chart_groups[g].title);
		for (int i = 0; i < n; i++)
			fprintf(f, "\t%s", res[i].e->name);
		fprintf(f, "\n");
		for (int k = 0; k < chart_groups[g].n; k++) {
			wl_id w = chart_groups[g].w[k];
			fprintf(f, "%s", wl_table[w].name);
			for (int i = 0; i < n; i++)
				fprintf(f, "\t%.1f", rate(&res[i].wl[w]));
			fprintf(f, "\n");
		}
		fprintf(f, "\n\n");
	}
	fprintf(f, "# Trove / best peer\nworkload\tratio\tbest\n");
	for (int w = 0; w < W_N; w++) {
		const char *who;
		double best = best_peer(res, n, (wl_id)w, P_ALL, &who);
		double tv = trove_rate(res, n, (wl_id)w);
		if (!isnan(best) && !isnan(tv))
			fprintf(f, "%s\t%.3f\t%s\n", wl_table[w].name, tv / best, who);
	}
	fclose(f);
}

static void copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "r"), *b = fopen(to, "w");
	if (a && b) {
		char buf[8192];
		size_t k;
		while ((k = fread(buf, 1, sizeof(buf), a)) > 0)
			fwrite(buf, 1, k, b);
	}
	if (a)
		fclose(a);
	if (b)
		fclose(b);
}

void bench_report(const bench_cfg *c, eng_result *res, int n, const char *load_before,
                  const char *load_after, const char *stamp)
{
	char path[4096], latest[4096];
	mkdir(c->out_dir, 0755);
	const char *latest_name = c->quick ? "latest-quick" : "latest";
	snprintf(path, sizeof(path), "%s/%s.md", c->out_dir, latest_name);
	g_md = fopen(path, "w");

	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	both("\ntrove-bench %s%s: %llu keys of 16 bytes, %zu-byte values (half "
	     "compressible), %llu reads, %llu durable writes per sync workload, "
	     "%llu keys larger-than-cache\n",
	     stamp, c->quick ? " (QUICK)" : "", (unsigned long long)c->num, c->value_size,
	     (unsigned long long)c->reads, (unsigned long long)c->sync_ops,
	     (unsigned long long)c->big_num);
	both("machine: %ld cores; load average (1/5/15 min) %s before, %s after\n",
	     sysconf(_SC_NPROCESSORS_ONLN), load_before, load_after);
	const char *rev = getenv("BENCH_REV");
	if (rev && *rev) {
		both("trove built from commit %s\n", rev);
		md("Trove built from commit `%s` (a `+uncommitted` suffix would say "
		   "src/ or include/ had changes not yet committed). ",
		   rev);
	}
	md("Run %s%s on %ld cores; load average (1, 5, 15 min) **%s** before, **%s** "
	   "after. %llu keys of 16 bytes, %zu-byte half-compressible values, %llu "
	   "point reads per read workload, %llu seeks, %llu writes per durable "
	   "workload (fillbatch-sync: 10×), %llu keys in the larger-than-cache run "
	   "(loaded in %s order). "
	   "`*` = stopped by the %.0f s cap of a read or durable workload (the rate "
	   "is over the operations done).\n",
	   stamp, c->quick ? " (QUICK)" : "", sysconf(_SC_NPROCESSORS_ONLN), load_before,
	   load_after, (unsigned long long)c->num, c->value_size, (unsigned long long)c->reads,
	   (unsigned long long)c->seeks, (unsigned long long)c->sync_ops,
	   (unsigned long long)c->big_num, c->big_random ? "random" : "key", c->max_secs);

	print_table(res, n, 0);
	print_table(res, n, 1);
	both("(* = stopped by the %.0f s time cap; n/a = not supported by the engine)\n",
	     c->max_secs);
	print_resources(c, res, n);
	print_targets(c, res, n);

	both("\nEngines:\n");
	md("\n| engine | version | what its settings mean |\n|---|---|---|\n");
	for (int i = 0; i < n; i++) {
		both("  %-11s %s%s%s\n", res[i].e->name, res[i].version,
		     res[i].failure[0] ? "  FAILED: " : "", res[i].failure);
		md("| %s | %s | %s%s%s |\n", res[i].e->name, res[i].version, res[i].e->notes,
		   res[i].failure[0] ? " **Failed in this run:** " : "", res[i].failure);
	}
	if (g_md)
		fclose(g_md);
	g_md = NULL;

	snprintf(path, sizeof(path), "%s/%s%s.csv", c->out_dir, stamp, c->quick ? "-quick" : "");
	write_csv(path, c, res, n, stamp, load_before, load_after);
	snprintf(latest, sizeof(latest), "%s/%s.csv", c->out_dir, latest_name);
	copy_file(path, latest);
	snprintf(path, sizeof(path), "%s/%s.dat", c->out_dir, latest_name);
	write_dat(path, res, n);
	printf("\nbench: wrote %s/{%s%s.csv,%s.csv,%s.md,%s.dat}\n", c->out_dir, stamp,
	       c->quick ? "-quick" : "", latest_name, latest_name, latest_name);
}
