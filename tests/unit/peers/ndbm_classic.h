/*
 * ndbm_classic.h - a classic ndbm program, written the way a 4.3BSD
 * program kept its word list in a dbm file.
 *
 * The file that includes this one first includes an ndbm header, and that
 * line is the only difference between the two builds of this program:
 * test_ndbm.c includes <trove/ndbm.h>, peers/ndbm_gdbm.c includes GDBM's
 * <ndbm.h>.  The program writes a transcript of what it saw to `out`; the
 * test checks that both transcripts are the same, line for line.  Keep it
 * in the old style (keys with their NUL, fetch inside the key loop, the
 * delete-from-the-first-key idiom), and keep its output independent of
 * the order in which keys come back, which differs between the two.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *classic_words[] = {
	"aardvark", "abacus", "abbey", "bagel", "banjo", "cactus", "candle", "dragon",
	"dune", "easel", "ember", "falcon", "fjord", "gazebo", "glacier", "harbor",
	"hazel", "igloo", "ivory", "jasmine", "kettle", "lantern", "meadow", "nectar",
	"oasis", "pebble", "quartz", "raven", "saffron", "tundra", "umbra", "velvet",
	"walrus", "xylem", "yonder", "zephyr", (char *)0
};

static int
classic(char *file, FILE *out)
{
	DBM *db;
	datum key, content;
	int i, n, sum, r;
	char buf[32];

	if ((db = dbm_open(file, O_RDWR | O_CREAT | O_TRUNC, 0644)) == (DBM *)0) {
		fprintf(out, "cannot open %s\n", file);
		return 1;
	}

	/* Each word, NUL and all, maps to its length in decimal. */
	for (i = 0; classic_words[i] != (char *)0; i++) {
		key.dptr = classic_words[i];
		key.dsize = strlen(classic_words[i]) + 1;
		sprintf(buf, "%d", (int)strlen(classic_words[i]));
		content.dptr = buf;
		content.dsize = strlen(buf) + 1;
		if (dbm_store(db, key, content, DBM_INSERT) != 0) {
			fprintf(out, "store %s failed\n", classic_words[i]);
			dbm_close(db);
			return 1;
		}
	}
	fprintf(out, "stored %d words\n", i);

	/* A second insert of a key must not replace it. */
	key.dptr = "abacus";
	key.dsize = 7;
	content.dptr = "99";
	content.dsize = 3;
	r = dbm_store(db, key, content, DBM_INSERT);
	fprintf(out, "insert abacus again: %d\n", r);
	dbm_clearerr(db); /* GDBM raises the error flag here; POSIX does not */
	content = dbm_fetch(db, key);
	fprintf(out, "abacus: %s\n", content.dptr ? (char *)content.dptr : "(none)");
	content.dptr = "six";
	content.dsize = 4;
	r = dbm_store(db, key, content, DBM_REPLACE);
	content = dbm_fetch(db, key);
	fprintf(out, "replace abacus: %d, now %s\n", r, (char *)content.dptr);

	/* Look every word up, and two that are not there. */
	n = 0;
	for (i = 0; classic_words[i] != (char *)0; i++) {
		key.dptr = classic_words[i];
		key.dsize = strlen(classic_words[i]) + 1;
		content = dbm_fetch(db, key);
		if (content.dptr != NULL)
			n++;
	}
	key.dptr = "unicorn";
	key.dsize = 8;
	content = dbm_fetch(db, key);
	fprintf(out, "found %d words, unicorn %s\n", n, content.dptr ? "found" : "missing");
	key.dptr = "abacus"; /* without its NUL: a different key */
	key.dsize = 6;
	content = dbm_fetch(db, key);
	fprintf(out, "abacus without NUL %s\n", content.dptr ? "found" : "missing");

	/* Delete every third word, then one that is not there. */
	n = 0;
	for (i = 0; classic_words[i] != (char *)0; i += 3) {
		key.dptr = classic_words[i];
		key.dsize = strlen(classic_words[i]) + 1;
		if (dbm_delete(db, key) == 0)
			n++;
	}
	key.dptr = "unicorn";
	key.dsize = 8;
	fprintf(out, "deleted %d, unicorn: %d\n", n, dbm_delete(db, key));
	key.dptr = "aardvark";
	key.dsize = 9;
	fprintf(out, "aardvark again: %d\n", dbm_delete(db, key));

	/* Walk the keys, fetching each one's value as we go. */
	n = 0;
	sum = 0;
	for (key = dbm_firstkey(db); key.dptr != NULL; key = dbm_nextkey(db)) {
		content = dbm_fetch(db, key);
		if (content.dptr == NULL || (size_t)key.dsize != strlen((char *)key.dptr) + 1) {
			fprintf(out, "bad key\n");
			break;
		}
		n++;
		sum += atoi((char *)content.dptr);
	}
	fprintf(out, "walked %d keys, lengths sum to %d, error %d\n", n, sum, dbm_error(db) != 0);
	dbm_close(db);

	/* Read-only: everything is still there, and stores are refused. */
	if ((db = dbm_open(file, O_RDONLY, 0)) == (DBM *)0) {
		fprintf(out, "cannot reopen %s\n", file);
		return 1;
	}
	n = 0;
	for (key = dbm_firstkey(db); key.dptr != NULL; key = dbm_nextkey(db))
		n++;
	key.dptr = "bagel";
	key.dsize = 6;
	content.dptr = "5";
	content.dsize = 2;
	r = dbm_store(db, key, content, DBM_REPLACE);
	fprintf(out, "reopened: %d keys, store %s, error %s\n", n, r < 0 ? "refused" : "accepted",
	        dbm_error(db) ? "set" : "clear");
	dbm_clearerr(db);
	fprintf(out, "after clearerr: %d\n", dbm_error(db) != 0);
	dbm_close(db);

	/* Empty it the portable way: always delete the first key. */
	if ((db = dbm_open(file, O_RDWR, 0)) == (DBM *)0)
		return 1;
	n = 0;
	for (key = dbm_firstkey(db); key.dptr != NULL; key = dbm_firstkey(db)) {
		if (dbm_delete(db, key) != 0)
			break;
		n++;
	}
	key = dbm_firstkey(db);
	fprintf(out, "emptied %d keys, first now %s\n", n, key.dptr ? "present" : "none");
	dbm_close(db);
	return 0;
}
