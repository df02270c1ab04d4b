/*
 * hello.c - the smallest useful Trove program: open, write, read, iterate.
 *
 * Build it against an installed Trove with
 *   cc hello.c $(pkg-config --cflags --libs trove) -o hello
 */
#include <stdio.h>
#include <string.h>
#include <trove.h>

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "./hello-data";
	trove_options o;
	trove_options_init(&o); /* durable: sync=always, lz4, 64 MiB budget */
	trove_db *db;
	int rc = trove_open(dir, &o, &db);
	if (rc) {
		fprintf(stderr, "open %s: %s\n", dir, trove_strerror(rc));
		return 1;
	}

	trove_put(db, "greeting", 8, "hello", 5);
	trove_put_ttl(db, "session", 7, "abc", 3, 60 * 1000); /* gone in a minute */
	if (trove_put_if_absent(db, "greeting", 8, "again", 5) == TROVE_EEXIST)
		printf("greeting was already there\n");

	void *val;
	size_t len;
	if (trove_get(db, "greeting", 8, &val, &len) == 0) {
		printf("greeting = %.*s\n", (int)len, (char *)val);
		trove_free(val);
	}

	trove_cursor *c;
	if (trove_cursor_open(db, NULL, &c) == 0) {
		for (rc = trove_cursor_first(c); rc == 0; rc = trove_cursor_next(c)) {
			size_t kl, vl;
			const char *k = trove_cursor_key(c, &kl);
			const char *v = trove_cursor_value(c, &vl);
			printf("%.*s -> %.*s\n", (int)kl, k, (int)vl, v);
		}
		trove_cursor_close(c);
	}

	uint64_t n;
	if (trove_count(db, &n) == 0)
		printf("%llu keys\n", (unsigned long long)n);
	return trove_close(db) ? 1 : 0;
}
