/*
 * main.c - troved's entry point: reads the options (a config file, then
 * command-line overrides spelled as redis-server spells them), daemonizes
 * if asked, opens the database, writes the pid file, and runs the server
 * until SIGTERM/SIGINT, then closes the database and exits 0.
 *
 * This is the one place that wires the pieces together: the core
 * (server.c), the RESP front-end (resp/) and the engine (trove.h).  It
 * must not grow logic of its own beyond startup and shutdown; anything a
 * front-end needs lives in the core.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"
#include "resp/resp.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: troved [FILE] [--config FILE] [--OPTION VALUE...]\n"
	        "       troved --help | --version\n"
	        "\n"
	        "Trove's database server: speaks the Redis protocol (use redis-cli, redis-py...)\n"
	        "over a durable, ordered Trove database.  Options are read from the config file\n"
	        "(FILE or --config FILE; \"name value\" per line), then from the command line,\n"
	        "which wins.  Example: troved --port 6380 --dir /var/lib/trove --sync always\n"
	        "\n");
	srv_config_usage(f);
	fprintf(f, "\nSee docs/SERVER.md for the details.\n");
}

/* Fills cfg from argv.  Returns 0 to run, 1 when done (help/version, exit
 * 0), -1 on error (reported, exit 1). */
static int parse_args(int argc, char **argv, srv_config *cfg)
{
	const char *file = NULL;
	int first = 1;
	if (argc > 1 && argv[1][0] != '-') {
		file = argv[1]; /* redis-server's positional config file */
		first = 2;
	}
	for (int i = first; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 1;
		}
		if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-v")) {
			printf("troved %s (Trove server, Redis protocol 7.0-compatible)\n",
			       SRV_SERVER_VERSION);
			return 1;
		}
		if (!strcmp(argv[i], "--config")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "troved: --config needs a file name\n");
				return -1;
			}
			file = argv[++i];
		}
	}
	char err[512];
	if (file) {
		if (srv_config_load(cfg, file, err, sizeof err)) {
			fprintf(stderr, "troved: %s\n", err);
			return -1;
		}
		cfg->config_file = realpath(file, NULL);
	}
	for (int i = first; i < argc;) {
		const char *a = argv[i];
		if (!strcmp(a, "--config")) {
			i += 2;
			continue;
		}
		if (strncmp(a, "--", 2) || !a[2]) {
			fprintf(stderr, "troved: unexpected argument '%s' (options look like --port 6380)\n"
			                "Try 'troved --help'.\n", a);
			return -1;
		}
		int j = i + 1;
		while (j < argc && strncmp(argv[j], "--", 2))
			j++;
		if (srv_config_set(cfg, a + 2, j - i - 1, argv + i + 1, err, sizeof err)) {
			fprintf(stderr, "troved: %s\nTry 'troved --help'.\n", err);
			return -1;
		}
		i = j;
	}
	if (srv_config_check(cfg, err, sizeof err)) {
		fprintf(stderr, "troved: %s\n", err);
		return -1;
	}
	return 0;
}

/* Forks into the background.  The parent waits until the child says it is
 * listening (a byte on the pipe) or failed (the pipe closes), and exits
 * with 0 or 1 accordingly, so `troved --daemonize yes` reports startup
 * errors through its exit status.  Returns the write end in the child. */
static int daemonize(void)
{
	int p[2];
	if (pipe(p)) {
		perror("troved: pipe");
		exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("troved: fork");
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		char b;
		ssize_t n;
		do
			n = read(p[0], &b, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return p[1];
}

static int ready_fd = -1;

static void on_ready(void *arg)
{
	(void)arg;
	if (ready_fd >= 0) {
		ssize_t n = write(ready_fd, "1", 1);
		(void)n;
		close(ready_fd);
		ready_fd = -1;
	}
}

static void write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		srv_log(SRV_LL_WARNING, "Failed to write PID file %s: %s", path, strerror(errno));
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

/* Raises the open-file limit to what maxclients needs (the engine and the
 * listeners take some 64 more), or lowers maxclients to what the limit
 * allows, as redis-server does, so that accept() does not fail with
 * EMFILE below maxclients. */
static void fit_maxclients(srv_config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->maxclients + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	rlim_t got = want < rl.rlim_max ? want : rl.rlim_max;
	rl.rlim_cur = got;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && got >= want)
		return;
	getrlimit(RLIMIT_NOFILE, &rl);
	int fit = rl.rlim_cur > 64 + 1 ? (int)(rl.rlim_cur - 64) : 1;
	srv_log(SRV_LL_WARNING,
	        "maxclients %d needs %llu open files but the limit is %llu: maxclients "
	        "lowered to %d",
	        cfg->maxclients, (unsigned long long)want, (unsigned long long)rl.rlim_cur, fit);
	cfg->maxclients = fit;
}

static trove_db *open_db(const srv_config *cfg)
{
	trove_options o;
	trove_options_init(&o);
	/* Under sync always the engine does not sync each write: the workers
	 * call trove_sync once per loop turn before releasing that turn's
	 * replies (server.c, on_worker_check), so one fsync covers every
	 * write of the turn; with frequent_syncs those syncs need not commit
	 * new log blocks or a new size.  See docs/SERVER.md, "Durability". */
	o.sync = cfg->sync == TROVE_SYNC_ALWAYS ? TROVE_SYNC_NONE : cfg->sync;
	o.frequent_syncs = cfg->sync == TROVE_SYNC_ALWAYS;
	o.sync_period_ms = cfg->sync_period_ms;
	o.memory_budget = (size_t)cfg->memory_budget;
	o.log = srv_log_engine;
	trove_db *db;
	int rc = trove_open(cfg->dir, &o, &db);
	if (rc == 0)
		return db;
	if (rc == TROVE_ELOCKED)
		srv_log(SRV_LL_WARNING,
		       "Cannot open the database in %s: another process (a troved or the trove "
		       "tool) has it open",
		       cfg->dir);
	else
		srv_log(SRV_LL_WARNING, "Cannot open the database in %s: %s", cfg->dir,
		       trove_strerror(rc));
	return NULL;
}

int main(int argc, char **argv)
{
	srv_config cfg;
	srv_config_init(&cfg);
	int rc = parse_args(argc, argv, &cfg);
	if (rc) {
		srv_config_free(&cfg);
		return rc > 0 ? 0 : 1;
	}
	if (srv_log_open(cfg.logfile, cfg.loglevel)) {
		fprintf(stderr, "troved: cannot open log file '%s': %s\n", cfg.logfile,
		        strerror(errno));
		return 1;
	}
	if (cfg.daemonize)
		ready_fd = daemonize();
	srv_log(SRV_LL_NOTICE, "Trove server %s starting: pid %d, dir %s, sync %s%s%s",
	       SRV_SERVER_VERSION, (int)getpid(), cfg.dir, srv_sync_name(cfg.sync),
	       cfg.config_file ? ", config " : "", cfg.config_file ? cfg.config_file : "");
	if (!cfg.requirepass)
		srv_log(SRV_LL_NOTICE, "No password set: protected mode accepts loopback clients only");
	fit_maxclients(&cfg);
	trove_db *db = open_db(&cfg);
	if (!db)
		return 1;
	srv_server *srv;
	if (srv_server_init(&srv, &cfg, db, &srv_resp_frontend)) {
		trove_close(db);
		return 1;
	}
	if (srv_server_listen(srv)) {
		srv_server_free(srv);
		trove_close(db);
		return 1;
	}
	if (cfg.pidfile)
		write_pidfile(cfg.pidfile);
	rc = srv_server_run(srv, on_ready, NULL);
	srv_server_free(srv);
	int crc = trove_close(db);
	if (crc)
		srv_log(SRV_LL_WARNING, "Closing the database: %s", trove_strerror(crc));
	if (cfg.pidfile)
		unlink(cfg.pidfile);
	srv_log(SRV_LL_NOTICE, "Trove server is now ready to exit, bye bye...");
	srv_log_close();
	srv_config_free(&cfg);
	return rc || crc ? 1 : 0;
}
