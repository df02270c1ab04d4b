/*
 * backup.c - SAVE and BGSAVE: online checkpoints of the database.
 *
 * Trove has no snapshot file to write as Redis writes dump.rdb: every
 * acknowledged write is already durable in the engine.  What SAVE gives is
 * a consistent copy to take away: trove_backup writes the database as of
 * one moment into a new directory, dir/backup-YYYYmmdd-HHMMSS, while
 * reads and writes go on.  The copy opens as a database of its own
 * (trove count DIR, or troved --dir DIR).  BGSAVE runs the same copy on a
 * thread of its own, so no worker waits for it; at most one save runs at
 * a time, and the server waits for a running one before it closes the
 * engine.
 *
 * This file only calls trove_backup and trove_get_stats; it never touches
 * the database's own files and never deletes a backup (keeping or pruning
 * them is the operator's choice).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "server.h"

struct srv_saver {
	trove_db *db;
	char *dir;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t done;
	int running;        /* a save (foreground or background) is under way */
	int scheduled;      /* BGSAVE SCHEDULE: run once more when it ends */
	int have_thread;    /* thread must be joined */
	pthread_t thread;
	srv_save_info info;
};

srv_saver *srv_saver_new(trove_db *db, const char *dir)
{
	srv_saver *sv = calloc(1, sizeof *sv);
	if (!sv)
		return NULL;
	sv->db = db;
	sv->dir = strdup(dir);
	if (!sv->dir) {
		free(sv);
		return NULL;
	}
	pthread_mutex_init(&sv->mu, NULL);
	pthread_cond_init(&sv->done, NULL);
	sv->info.last_ok = 1;
	sv->info.last_duration_ms = -1;
	return sv;
}

void srv_saver_free(srv_saver *sv)
{
	if (!sv)
		return;
	pthread_mutex_lock(&sv->mu);
	sv->scheduled = 0;
	while (sv->running)
		pthread_cond_wait(&sv->done, &sv->mu);
	int join = sv->have_thread;
	sv->have_thread = 0;
	pthread_mutex_unlock(&sv->mu);
	if (join)
		pthread_join(sv->thread, NULL);
	pthread_cond_destroy(&sv->done);
	pthread_mutex_destroy(&sv->mu);
	free(sv->dir);
	free(sv);
}

/* Picks a directory name that does not exist yet (mu held, so two saves
 * never pick the same). */
static int pick_dir(srv_saver *sv, char *out, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	char stamp[32];
	strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
	for (int i = 1; i < 1000; i++) {
		int n = i == 1 ? snprintf(out, len, "%s/backup-%s", sv->dir, stamp)
		               : snprintf(out, len, "%s/backup-%s-%d", sv->dir, stamp, i);
		if (n < 0 || (size_t)n >= len)
			return -1;
		struct stat st;
		if (stat(out, &st) && errno == ENOENT)
			return 0;
	}
	return -1;
}

/* Runs one save into path (mu not held); records the outcome. */
static int save_once(srv_saver *sv, const char *path, char *err, size_t errlen)
{
	trove_stats st;
	memset(&st, 0, sizeof st);
	trove_get_stats(sv->db, &st);
	int64_t start = srv_now_ms();
	srv_log(SRV_LL_NOTICE, "Saving a checkpoint of the database into %s", path);
	int rc = trove_backup(sv->db, path);
	int64_t took = srv_now_ms() - start;
	pthread_mutex_lock(&sv->mu);
	sv->info.last_duration_ms = took;
	sv->info.last_ok = rc == 0;
	if (rc == 0) {
		sv->info.last_save_s = start / 1000;
		sv->info.saves++;
		sv->info.writes_at_last_save = st.writes;
		snprintf(sv->info.last_dir, sizeof sv->info.last_dir, "%s", path);
	}
	pthread_mutex_unlock(&sv->mu);
	if (rc) {
		srv_log(SRV_LL_WARNING, "Saving a checkpoint into %s failed: %s", path,
		        trove_strerror(rc));
		if (err)
			snprintf(err, errlen, "%s", trove_strerror(rc));
		return -1;
	}
	srv_log(SRV_LL_NOTICE, "Checkpoint saved into %s in %lld ms", path, (long long)took);
	return 0;
}

/* Marks the end of a save and wakes whoever waits (mu held). */
static void finish(srv_saver *sv)
{
	sv->running = 0;
	sv->info.in_progress = 0;
	sv->info.current_start_ms = 0;
	pthread_cond_broadcast(&sv->done);
}

static void *bg_main(void *arg)
{
	srv_saver *sv = arg;
	srv_log_thread_name("bgsave");
	pthread_mutex_lock(&sv->mu);
	for (;;) {
		char path[1024];
		int ok = pick_dir(sv, path, sizeof path) == 0;
		pthread_mutex_unlock(&sv->mu);
		if (ok)
			save_once(sv, path, NULL, 0);
		else
			srv_log(SRV_LL_WARNING, "BGSAVE: no free directory name under %s", sv->dir);
		pthread_mutex_lock(&sv->mu);
		if (!ok)
			sv->info.last_ok = 0;
		if (!sv->scheduled)
			break;
		sv->scheduled = 0;
		sv->info.current_start_ms = srv_now_ms();
	}
	finish(sv);
	pthread_mutex_unlock(&sv->mu);
	return NULL;
}

int srv_saver_run(srv_saver *sv, int background, int schedule, char *path_out, size_t plen,
                  char *err, size_t errlen)
{
	pthread_mutex_lock(&sv->mu);
	if (sv->running) {
		if (schedule)
			sv->scheduled = 1;
		pthread_mutex_unlock(&sv->mu);
		return schedule ? 0 : -2;
	}
	if (sv->have_thread) { /* the last background save ended: reap it */
		sv->have_thread = 0;
		pthread_join(sv->thread, NULL);
	}
	sv->running = 1;
	sv->info.in_progress = 1;
	sv->info.current_start_ms = srv_now_ms();
	if (background) {
		if (pthread_create(&sv->thread, NULL, bg_main, sv)) {
			finish(sv);
			pthread_mutex_unlock(&sv->mu);
			snprintf(err, errlen, "cannot start a thread: %s", strerror(errno));
			return -1;
		}
		sv->have_thread = 1;
		if (path_out && plen)
			snprintf(path_out, plen, "%s/backup-*", sv->dir);
		pthread_mutex_unlock(&sv->mu);
		return 0;
	}
	char path[1024];
	int rc = pick_dir(sv, path, sizeof path);
	pthread_mutex_unlock(&sv->mu);
	if (rc)
		snprintf(err, errlen, "no free directory name under %s", sv->dir);
	else
		rc = save_once(sv, path, err, errlen);
	pthread_mutex_lock(&sv->mu);
	finish(sv);
	pthread_mutex_unlock(&sv->mu);
	if (!rc && path_out && plen)
		snprintf(path_out, plen, "%s", path);
	return rc;
}

void srv_saver_info(srv_saver *sv, srv_save_info *out)
{
	pthread_mutex_lock(&sv->mu);
	*out = sv->info;
	pthread_mutex_unlock(&sv->mu);
}
