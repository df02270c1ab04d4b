/*
 * main.c - the common half of every trove-peer-* helper: arguments, the
 * dump stream on stdout (read) or stdin (write), and the checks that keep
 * what reaches Trove within its limits.
 *
 * The trove tool is the only intended caller (peers.c); it reads the
 * stream back with the same hostile-input loader as `trove load`, so
 * nothing here has to be trusted.  This is a program, not a library, so
 * the few globals below (the operation and file, for messages) are fine.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/dumpfmt.h"
#include "peer.h"

#define MAX_WARNINGS 10 /* skipped records said one by one; then counted */

static const char *g_op = "import", *g_path = "";
static uint64_t g_skipped;

struct peer_out {
	dump_writer w;
	int begun, failed;
	char *prev; /* the previous key, to catch duplicates (sorted walks) */
	size_t prevlen;
	int has_prev;
};

static void vsay(const char *fmt, va_list ap)
{
	fprintf(stderr, "trove: %s: %s: ", g_op, g_path);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int peer_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	return -1;
}

int peer_skip(const char *fmt, ...)
{
	if (++g_skipped <= MAX_WARNINGS) {
		va_list ap;
		va_start(ap, fmt);
		vsay(fmt, ap);
		va_end(ap);
	}
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- read: peer file -> dump on stdout ------------------------------------------------ */

void peer_begin(peer_out *o, uint64_t hint)
{
	if (o->begun)
		return;
	o->begun = 1;
	if (dump_write_header(&o->w, stdout, now_ms(), hint))
		o->failed = 1;
}

int peer_emit(peer_out *o, const void *k, size_t kn, const void *v, size_t vn)
{
	peer_begin(o, 0);
	if (o->failed)
		return -1;
	if (kn == 0) {
		peer_skip("skipped a record with an empty key (Trove keys are 1 to %u bytes)",
		          DUMP_MAX_KEY);
		return 0;
	}
	if (kn > DUMP_MAX_KEY) {
		peer_skip("skipped a record with a key of %zu bytes (Trove keys are 1 to %u bytes)",
		          kn, DUMP_MAX_KEY);
		return 0;
	}
	if (vn > DUMP_MAX_VALUE) {
		peer_skip("skipped a record with a value of %zu bytes (Trove values are at most %u "
		          "bytes)",
		          vn, DUMP_MAX_VALUE);
		return 0;
	}
	if (o->has_prev && o->prevlen == kn && !memcmp(o->prev, k, kn)) {
		peer_skip("skipped a duplicate of the key before it (Trove keeps one value per "
		          "key: the first)");
		return 0;
	}
	memcpy(o->prev, k, kn);
	o->prevlen = kn;
	o->has_prev = 1;
	if (dump_write_pair(&o->w, k, kn, v, vn, 0)) {
		o->failed = 1;
		return -1;
	}
	return 0;
}

static int do_read(const char *path)
{
	peer_out o;
	memset(&o, 0, sizeof o);
	o.prev = malloc(DUMP_MAX_KEY);
	if (!o.prev) {
		peer_fail("out of memory");
		return 2;
	}
	static char buf[1 << 16];
	setvbuf(stdout, buf, _IOFBF, sizeof buf);
	int rc = peer_format.read(path, &o);
	peer_begin(&o, 0);
	if (!rc && !o.failed && dump_write_end(&o.w))
		o.failed = 1;
	free(o.prev);
	/* A write error means trove stopped reading; it says why. */
	if (rc || o.failed)
		return 2;
	if (g_skipped > MAX_WARNINGS)
		peer_fail("%llu records skipped in all", (unsigned long long)g_skipped);
	return g_skipped ? 1 : 0;
}

/* ---- write: dump on stdin -> peer file -------------------------------------------------- */

static int do_write(const char *path, const char *variant)
{
	dump_reader r;
	if (dump_read_header(&r, stdin)) {
		peer_fail("the stream from trove: %s", r.err);
		dump_reader_free(&r);
		return 2;
	}
	void *h = peer_format.wopen(path, variant);
	if (!h) {
		dump_reader_free(&r);
		return 2;
	}
	uint64_t with_expiry = 0;
	int got, rc = 0;
	while (rc >= 0 && (got = dump_read_next(&r)) == 1) {
		with_expiry += r.expire_at_ms != 0;
		rc = peer_format.put(h, r.key, r.klen, r.val, r.vlen);
	}
	if (rc >= 0 && got < 0)
		peer_fail("the stream from trove: %s; %s holds part of the data", r.err, path);
	int ok = rc >= 0 && got == 0;
	if (peer_format.wclose(h, ok))
		ok = 0;
	dump_reader_free(&r);
	if (ok && with_expiry)
		fprintf(stderr,
		        "trove: export: note: %llu key%s had an expiry, which %s cannot hold; "
		        "exported without it\n",
		        (unsigned long long)with_expiry, with_expiry == 1 ? "" : "s",
		        peer_format.what);
	if (!ok)
		return 2;
	if (g_skipped > MAX_WARNINGS)
		peer_fail("%llu records skipped in all", (unsigned long long)g_skipped);
	return g_skipped ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4 || (strcmp(argv[1], "read") && strcmp(argv[1], "write")) ||
	    (argc == 4 && strcmp(argv[1], "write"))) {
		fprintf(stderr,
		        "usage: trove-peer-%s read FILE | write FILE [VARIANT]\n"
		        "A helper of the trove tool (trove import / trove export): it moves\n"
		        "pairs between %s and a Trove dump stream on stdout or stdin.\n",
		        peer_format.name, peer_format.what);
		return 2;
	}
	/* A trove that stopped reading closes the pipe: fail with EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	g_path = argv[2];
	if (!strcmp(argv[1], "read"))
		return do_read(argv[2]);
	g_op = "export";
	return do_write(argv[2], argc == 4 ? argv[3] : NULL);
}
