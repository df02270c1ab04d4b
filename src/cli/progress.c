/*
 * progress.c - the progress line of long commands (dump, load, import,
 * export, check, compact, backup), on stderr.
 *
 * Shown when stderr is a terminal, or always with --progress; never with
 * --quiet.  One line, redrawn in place with a carriage return at most ten
 * times a second:
 *
 *   load     [#########...........]  45%  4500/10000 records  9.0k/s  ETA 0:01
 *   backup   [####................]  20%  20.0/100.0 MiB  10.0 MiB/s  ETA 0:08
 *   import   [      <=>           ]  4500 records  9.0k/s  0:01
 *
 * and ended by a final line (100% on success) and a newline.  Commands
 * that loop call cli_progress_set; commands that block inside one library
 * call (check, compact, backup) hand a probe to cli_progress_watch, which
 * polls it from a thread.  The line is padded with spaces rather than
 * cleared with terminal escapes, so a forced line in a log file stays
 * plain text.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define BAR 20

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A count in at most 6 characters: 999, 12.3k, 4.5M, 1.2G. */
static void fmt_count(char *buf, size_t cap, double v)
{
	if (v < 1000)
		snprintf(buf, cap, "%.0f", v);
	else if (v < 1e6)
		snprintf(buf, cap, "%.1fk", v / 1e3);
	else if (v < 1e9)
		snprintf(buf, cap, "%.1fM", v / 1e6);
	else
		snprintf(buf, cap, "%.1fG", v / 1e9);
}

static void fmt_time(char *buf, size_t cap, double s)
{
	unsigned long t = s < 0 ? 0 : (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, cap, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, cap, "%lu:%02lu", t / 60, t % 60);
}

static void fmt_mib(char *buf, size_t cap, double v)
{
	snprintf(buf, cap, "%.1f", v / (1024.0 * 1024.0));
}

/* Draws the line for done units at time t; final: the last line. */
static void draw(cli_progress *p, uint64_t done, double t, int final)
{
	char bar[BAR + 1], amount[96], rate[48], tail[64], pct[8] = "";
	uint64_t total = p->total;
	if (final && p->ok && total && done < total)
		done = total; /* the estimate was short; the work is done */
	if (total && done > total)
		total = done;
	double el = t - p->start, r = el > 0 ? (double)done / el : 0;
	if (total) {
		size_t fill = (size_t)((double)BAR * (double)done / (double)total);
		memset(bar, '#', fill);
		memset(bar + fill, '.', BAR - fill);
		snprintf(pct, sizeof pct, "%3d%%", (int)(100.0 * (double)done / (double)total));
	} else if (final) {
		memset(bar, p->ok ? '#' : '.', BAR);
	} else {
		int pos = (int)(el * 8) % (2 * (BAR - 3)),
		    at = pos < BAR - 3 ? pos : 2 * (BAR - 3) - pos;
		memset(bar, ' ', BAR);
		memcpy(bar + at, "<=>", 3);
	}
	bar[BAR] = 0;
	if (p->bytes) {
		char d[32], tt[32], rr[32];
		fmt_mib(d, sizeof d, (double)done);
		fmt_mib(tt, sizeof tt, (double)total);
		fmt_mib(rr, sizeof rr, r);
		if (total)
			snprintf(amount, sizeof amount, "%s/%s MiB", d, tt);
		else
			snprintf(amount, sizeof amount, "%s MiB", d);
		snprintf(rate, sizeof rate, "%s MiB/s", rr);
	} else {
		char rr[32];
		fmt_count(rr, sizeof rr, r);
		if (total)
			snprintf(amount, sizeof amount, "%" PRIu64 "/%" PRIu64 " %s", done, total,
			         p->unit);
		else
			snprintf(amount, sizeof amount, "%" PRIu64 " %s", done, p->unit);
		snprintf(rate, sizeof rate, "%s/s", rr);
	}
	char tm[48];
	if (final) {
		fmt_time(tm, sizeof tm, el);
		snprintf(tail, sizeof tail, "in %s", tm);
	} else if (total && done > 0 && r > 0) {
		fmt_time(tm, sizeof tm, (double)(total - done) / r);
		snprintf(tail, sizeof tail, "ETA %s", tm);
	} else {
		fmt_time(tm, sizeof tm, el);
		snprintf(tail, sizeof tail, "%s", total ? "ETA -:--" : tm);
	}
	char line[256];
	int n = snprintf(line, sizeof line, "%-8s [%s] %s%s%s  %s  %s", p->label, bar, pct,
	                 *pct ? "  " : "", amount, rate, tail);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	int pad = p->width > n ? p->width - n : 0;
	fprintf(stderr, "\r%s%*s%s", line, pad, "", final ? "\n" : "");
	fflush(stderr);
	p->width = n;
}

void cli_progress_begin(cli_progress *p, const cli_args *a, const char *label, const char *unit,
                        uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->on = !(a->seen & O_QUIET) && ((a->seen & O_PROGRESS) || isatty(STDERR_FILENO));
	p->label = label;
	p->unit = unit ? unit : "";
	p->bytes = unit == NULL;
	p->total = total;
	p->start = p->last = now_s();
	pthread_mutex_init(&p->mu, NULL);
	if (p->on)
		draw(p, 0, p->start, 0);
}

void cli_progress_set(cli_progress *p, uint64_t done)
{
	p->done = done;
	if (!p->on)
		return;
	double t = now_s();
	if (t - p->last < 0.1)
		return;
	p->last = t;
	pthread_mutex_lock(&p->mu);
	draw(p, done, t, 0);
	pthread_mutex_unlock(&p->mu);
}

static void *watch_main(void *arg)
{
	cli_progress *p = arg;
	struct timespec ts = {0, 100 * 1000 * 1000};
	for (;;) {
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&p->mu);
		int stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			return NULL;
		cli_progress_set(p, p->probe(p->probe_arg));
	}
}

void cli_progress_watch(cli_progress *p, uint64_t (*probe)(void *), void *arg)
{
	if (!p->on)
		return;
	p->probe = probe;
	p->probe_arg = arg;
	p->watching = pthread_create(&p->thread, NULL, watch_main, p) == 0;
}

void cli_progress_end(cli_progress *p, int ok)
{
	if (p->watching) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
		p->watching = 0;
	}
	if (p->on) {
		p->ok = ok;
		draw(p, p->done, now_s(), 1);
	}
	pthread_mutex_destroy(&p->mu);
	p->on = 0;
}
