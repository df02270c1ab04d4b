/*
 * server.h - the troved core's internal interface: configuration, the log,
 * the server with its worker threads and connections, and the small helpers
 * the core and its front-ends share.
 *
 * The core owns sockets, buffers, limits, timeouts and authentication; a
 * front-end (src/server/resp/ today, HTTP later) is a srv_frontend that
 * parses requests out of a connection's input buffer, runs them against the
 * engine through include/trove.h and appends replies to the connection's
 * output buffer.  Nothing here knows a protocol's grammar, and nothing here
 * or in a front-end includes an engine-internal header (src/engine/ *).
 */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "trove.h"

#define SRV_SERVER_VERSION TROVE_VERSION_STRING

/* ---- log.c: levels, timestamps, to stderr or a log file ------------------- */

enum { SRV_LL_DEBUG = 0, SRV_LL_VERBOSE, SRV_LL_NOTICE, SRV_LL_WARNING };

/* Sends the log to file (appended; NULL or "" means stderr) from now on,
 * keeping only messages at level or above.  Returns 0, or -1 with errno set
 * if the file cannot be opened (the log stays where it was). */
int srv_log_open(const char *file, int level);
void srv_log_close(void);
/* Logs one line: "pid:thread dd Mon yyyy hh:mm:ss.mmm <mark> message".
 * Safe from any thread; one write(2) per line. */
void srv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A trove_log_fn that forwards the engine's messages to srv_log. */
void srv_log_engine(void *arg, int level, const char *msg);
/* Names the calling thread in log lines ("main", "w0", ...); <= 7 chars. */
void srv_log_thread_name(const char *name);
/* Changes the level at run time (CONFIG SET loglevel); any thread. */
void srv_log_set_level(int level);

/* ---- config.c: options from a file and the command line ------------------- */

#define SRV_MAX_BIND 16

typedef struct srv_config {
	char *config_file;          /* the file read, or NULL */
	int port;                   /* 6379 */
	char *bind[SRV_MAX_BIND];    /* "127.0.0.1" */
	int nbind;
	char *dir;                  /* "./data" */
	char *requirepass;          /* NULL: no password (protected mode) */
	int protected_mode;         /* 1 */
	int maxclients;             /* 10000 */
	int loglevel;               /* SRV_LL_NOTICE */
	char *logfile;              /* "" = stderr */
	int daemonize;              /* 0 */
	char *pidfile;              /* NULL: none */
	trove_sync_mode sync;       /* always */
	uint32_t sync_period_ms;    /* 1000 */
	int workers;                /* 0 = number of cores */
	int timeout;                /* idle seconds before closing; 0 = never */
	uint64_t proto_max_bulk_len;        /* 64 MiB: one argument */
	uint64_t client_query_buffer_limit; /* 128 MiB: one connection's input */
	uint64_t memory_budget;     /* engine memtables + cache: 64 MiB */
	char *aclfile;              /* NULL: users live only in memory */
	/* client-output-buffer-limit normal <hard> <soft> <soft-seconds>:
	 * 0 means no limit, as in Redis. */
	uint64_t obuf_hard, obuf_soft;
	int obuf_soft_seconds;
	int request_timeout;        /* seconds to finish a started request; 0 never */
	int enable_debug;           /* SRV_DEBUG_NO, _YES or _LOCAL */
} srv_config;

enum { SRV_DEBUG_NO = 0, SRV_DEBUG_YES = 1, SRV_DEBUG_LOCAL = 2 };

/* Fills c with the defaults above (all strings malloc'd). */
void srv_config_init(srv_config *c);
void srv_config_free(srv_config *c);
/* Sets option name (as spelled in the file, without "--") from its argc
 * words.  Returns 0, or -1 with a message in err. */
int srv_config_set(srv_config *c, const char *name, int argc, char **argv, char *err,
                  size_t errlen);
/* Reads a config file: one "name value..." per line, '#' comments, values
 * quoted as in redis.conf.  Returns 0, or -1 with "FILE:LINE: why" in err. */
int srv_config_load(srv_config *c, const char *path, char *err, size_t errlen);
/* Checks the options together (protected mode, limits).  0 or -1 + err. */
int srv_config_check(const srv_config *c, char *err, size_t errlen);
/* Writes every option with its default and meaning (for --help). */
void srv_config_usage(FILE *f);

/* CONFIG GET: calls fn(name, value) for every option whose name matches
 * the glob pattern (case-insensitive), values formatted as redis.conf
 * would hold them (sizes in bytes, yes/no).  Only for options that exist;
 * a few read-only ones Redis tools ask for ("databases", "save",
 * "appendonly") report Trove's fixed answer.  Returns how many matched. */
int srv_config_get(const srv_config *c, const char *pattern, size_t plen,
                   void (*fn)(void *arg, const char *name, const char *value), void *arg);
/* CONFIG SET of one option at run time.  Only the options marked
 * changeable may change; others fail.  Checks without changing anything
 * when dry_run.  Returns 0, or -1 with Redis's words in err ("can't set
 * immutable config", "argument couldn't be parsed into an integer"...);
 * -2 if no such option exists. */
int srv_config_set_runtime(srv_config *c, const char *name, const char *value, int dry_run,
                           char *err, size_t errlen);
/* The canonical (table) spelling of an option name, or NULL. */
const char *srv_config_canonical(const char *name);
/* Parses "yes"/"no" and a level name; -1 if neither. */
int srv_parse_loglevel(const char *s);
const char *srv_sync_name(trove_sync_mode m);

/* ---- acl.c: users, hashed passwords, command and key permissions ---------- */

/* Access a command needs to a key (SRV_ACL_READ | SRV_ACL_WRITE; 0: any
 * pattern matching the key will do, for commands that only look at
 * whether a key exists). */
enum { SRV_ACL_READ = 1, SRV_ACL_WRITE = 2 };

/* The command categories of Redis 7, in its order; a category is a bit
 * (1u << index) in srv_acl_cmd.categories. */
#define SRV_ACL_NCATEGORIES 21
extern const char *const srv_acl_category_names[SRV_ACL_NCATEGORIES];
/* The index of a category name (without '@'), or -1. */
int srv_acl_category(const char *name, size_t len);

/* One entry of a front-end's command catalog, which the command rules
 * (+get, -@write, +client|kill) refer to.  A front-end gives the core its
 * catalog once, at start; a request then names its entry by index. */
typedef struct srv_acl_cmd {
	const char *name;    /* lowercase: "get", or "client|kill" for a subcommand */
	int parent;          /* index of the container command, or -1 */
	uint32_t categories; /* bits of srv_acl_category_names */
} srv_acl_cmd;

typedef struct srv_acl srv_acl;
/* A user: immutable once published, shared by reference.  Changing a user
 * publishes a new object under the same name; holders of the old one see
 * the change by looking the name up again (srv_conn_user does). */
typedef struct srv_user srv_user;

/* Creates the users with the default user alone ("on nopass ~* &* +@all",
 * or with requirepass as its password).  The catalog must outlive it. */
srv_acl *srv_acl_new(const srv_acl_cmd *cmds, size_t ncmds, const char *requirepass);
void srv_acl_free(srv_acl *a);
/* Grows with every change of any user, so that holders of a user can tell
 * cheaply whether to look it up again. */
uint64_t srv_acl_version(const srv_acl *a);
/* 1 if the default user is on and needs no password: clients start
 * authenticated, and protected mode applies. */
int srv_acl_default_open(const srv_acl *a);

/* Applies rules (as ACL SETUSER spells them) to user name, creating it if
 * needed; all or nothing.  Returns 0, or -1 with Redis's words in err
 * ("Error in ACL SETUSER modifier '<rule>': Syntax error"). */
int srv_acl_setuser(srv_acl *a, const char *name, size_t nlen, int argc, char **argv,
                    size_t *lens, char *err, size_t errlen);
/* Deletes a user: 1 if it existed, 0 if not, -1 for "default". */
int srv_acl_deluser(srv_acl *a, const char *name, size_t nlen);
/* A new reference to the current user of that name, or NULL. */
srv_user *srv_acl_get(srv_acl *a, const char *name, size_t nlen);
srv_user *srv_user_ref(srv_user *u);
void srv_user_unref(srv_user *u); /* NULL is ignored */
/* Checks a password: 0 and a new reference in *out if user exists, is on,
 * and the password is one of its own (or it has nopass); -1 otherwise.
 * Compares hashes in constant time. */
int srv_acl_check_password(srv_acl *a, const char *name, size_t nlen, const char *pass,
                           size_t plen, srv_user **out);
/* Sorted names of every user; free with srv_acl_free_names. */
char **srv_acl_names(srv_acl *a, size_t *n);
void srv_acl_free_names(char **names, size_t n);

const char *srv_user_name(const srv_user *u);
int srv_user_enabled(const srv_user *u);
int srv_user_nopass(const srv_user *u);
/* 1 if u may run catalog entry cmd. */
int srv_user_can_run(const srv_user *u, size_t cmd);
/* 1 if u may touch key with the access `need` (SRV_ACL_READ|WRITE, or 0). */
int srv_user_can_key(const srv_user *u, const char *key, size_t klen, int need);
/* 1 if u may touch every key (allkeys). */
int srv_user_all_keys(const srv_user *u);
/* The user as an ACL file line: "user alice on #<sha256> ~k* -@all +get"
 * (malloc'd; NULL on ENOMEM). */
char *srv_user_describe(const srv_user *u);
/* ACL GETUSER's pieces (malloc'd strings): the flags ("on nopass"), the
 * passwords' hashes in hex separated by spaces, the command rules, the
 * key patterns and the channel patterns. */
typedef struct srv_user_info {
	char *flags, *passwords, *commands, *keys, *channels;
} srv_user_info;
int srv_user_info_get(const srv_user *u, srv_user_info *out);
void srv_user_info_free(srv_user_info *i);

/* Replaces every user with those of an ACL file ("user <name> <rules>"
 * lines, as srv_user_describe writes them); all or nothing.  A file
 * without a default user gets the built-in one (with requirepass, if not
 * NULL).  Returns 0, or -1 with the file's errors in err. */
int srv_acl_load_file(srv_acl *a, const char *path, const char *requirepass, char *err,
                      size_t errlen);
/* Writes every user to path atomically (a temporary file, fsync,
 * rename).  0, or -1 with err. */
int srv_acl_save_file(srv_acl *a, const char *path, char *err, size_t errlen);

/* The ACL log (ACL LOG): denied commands and keys, failed AUTHs.  Equal
 * entries within 60 s are counted in one.  reason: "command", "key" or
 * "auth"; context: "toplevel" or "multi"; object: the command or key;
 * client_info: the CLIENT LIST line of the client. */
#define SRV_ACL_LOG_MAX 128
void srv_acl_log_add(srv_acl *a, const char *reason, const char *context, const char *object,
                     size_t olen, const char *username, const char *client_info);
typedef struct srv_acl_log_entry {
	uint64_t count;
	char *reason, *context, *object, *username, *client_info;
	int64_t created_ms, updated_ms;
} srv_acl_log_entry;
/* Copies up to max entries, newest first, into *out (free with
 * srv_acl_log_free); returns how many. */
size_t srv_acl_log_get(srv_acl *a, size_t max, srv_acl_log_entry **out);
void srv_acl_log_free(srv_acl_log_entry *e, size_t n);
void srv_acl_log_reset(srv_acl *a);

/* SHA-256 of p in lowercase hex (65 bytes with the NUL). */
void srv_sha256_hex(const void *p, size_t n, char out[65]);
/* n random bytes from OpenSSL's generator; 0 or -1. */
int srv_random_bytes(void *p, size_t n);

/* ---- server.c: listeners, workers, connections ---------------------------- */

typedef struct srv_server srv_server;
typedef struct srv_worker srv_worker;
typedef struct srv_conn srv_conn;

/* A front-end: a protocol spoken over the core's connections. */
typedef struct srv_frontend {
	const char *name;
	size_t state_size; /* bytes of per-connection state (zeroed) */
	void (*conn_init)(srv_conn *c, void *state);
	void (*conn_free)(srv_conn *c, void *state);
	/* Parses and runs the requests in buf[0, len), appending replies with
	 * srv_conn_write; stops early when srv_conn_busy(c).  Returns how many
	 * bytes it consumed; a partial request is left for the next call (the
	 * front-end may remember how far it got: the next buf starts at the
	 * same byte).  It must not keep pointers into buf across calls. */
	size_t (*on_input)(srv_conn *c, void *state, char *buf, size_t len);
	/* Formats an error for a client refused at accept ("ERR max number of
	 * clients reached") into out; returns its length. */
	size_t (*refusal)(char *out, size_t cap, const char *msg);
	/* The front-end's commands for ACL rules and per-command statistics
	 * (malloc'd array of *n entries; the server frees it). */
	srv_acl_cmd *(*catalog)(size_t *n);
	/* Optional per-worker state (srv_conn_worker_state): made when the
	 * worker is (NULL: the server does not start), freed at the end. */
	void *(*worker_new)(srv_server *s);
	void (*worker_free)(void *wstate);
	/* Called at the end of every loop turn, before the turn's sync and
	 * before any reply of the turn is sent: the front-end commits what it
	 * held back.  Whatever it writes to connections here goes out with
	 * the turn.  (A connection closed during the turn is freed only after
	 * this call.) */
	void (*turn_end)(void *wstate);
} srv_frontend;

/* Reads an option that CONFIG SET may change while workers run. */
#define SRV_CFG(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Server-wide counters, updated by every worker (relaxed atomics). */
typedef struct srv_stats {
	atomic_uint_fast64_t connections_received;
	atomic_uint_fast64_t rejected_connections;
	atomic_uint_fast64_t commands_processed;
	atomic_uint_fast64_t net_input_bytes;
	atomic_uint_fast64_t net_output_bytes;
	atomic_uint_fast64_t keyspace_hits;
	atomic_uint_fast64_t keyspace_misses;
	atomic_uint_fast64_t expired_keys;
	/* The front-end's turn batches: committed, run again as a batch after
	 * a conflict, run again one command at a time. */
	atomic_uint_fast64_t turn_batches, turn_retries, turn_replays;
} srv_stats;

/* Above this many bytes of unsent output a connection stops reading and
 * running requests until the client has read some (slow readers and
 * pipelines that never read cannot grow the server's memory without end). */
#define SRV_OUTPUT_PAUSE (4u << 20)

/* Creates the server: opens no sockets yet.  fe is the front-end every
 * listener speaks; its catalog of commands is what ACL rules name.  Sets
 * up the users: the default user (with requirepass), then the aclfile if
 * configured.  0 or -1 (logged). */
int srv_server_init(srv_server **out, srv_config *cfg, trove_db *db, const srv_frontend *fe);
/* Binds and listens on every configured address.  0 or -1 (logged). */
int srv_server_listen(srv_server *s);
/* Starts the workers and runs until SIGTERM/SIGINT or srv_server_stop, then
 * stops accepting, lets the workers finish in-flight replies and joins
 * them.  ready (may be NULL) is called once everything is listening.
 * Returns 0 on a clean shutdown. */
int srv_server_run(srv_server *s, void (*ready)(void *), void *arg);
void srv_server_free(srv_server *s);

/* What front-ends may read about the server. */
trove_db *srv_server_db(const srv_server *s);
const srv_config *srv_server_config(const srv_server *s);
srv_stats *srv_server_stats(srv_server *s);
int srv_server_clients(const srv_server *s);
int srv_server_workers(const srv_server *s);
uint64_t srv_server_start_ms(const srv_server *s);
/* 1 if new clients must authenticate: the default user is off or has a
 * password. */
int srv_server_auth_required(const srv_server *s);
srv_acl *srv_server_acl(srv_server *s);
/* The options for CONFIG SET, which holds srv_server_config_lock while it
 * checks and changes them (so two CONFIG SETs never interleave). */
srv_config *srv_server_config_mut(srv_server *s);
void srv_server_config_lock(srv_server *s);
void srv_server_config_unlock(srv_server *s);
/* The catalog the front-end gave (srv_frontend.catalog). */
const srv_acl_cmd *srv_server_catalog(const srv_server *s, size_t *n);

/* Per-command statistics (INFO commandstats), summed over the workers. */
typedef struct srv_cmdstat {
	uint64_t calls, usec, rejected, failed;
} srv_cmdstat;
/* Counts one request of catalog entry cmd on c's worker: it ran for usec
 * microseconds (calls, usec), answered with an error (failed), or was
 * refused before running (rejected: arity, authentication, ACL). */
void srv_conn_count_command(srv_conn *c, size_t cmd, uint64_t usec, int failed, int rejected);
/* Fills out[0, n) (n = the catalog's size). */
void srv_server_cmdstats(srv_server *s, srv_cmdstat *out);
/* CONFIG RESETSTAT: zeroes the counters of srv_stats and the command
 * statistics. */
void srv_server_reset_stats(srv_server *s);

/* Asks the server to shut down as SIGTERM does (any thread). */
void srv_server_shutdown(srv_server *s, const char *why);

/* What CLIENT LIST and CLIENT KILL see of a connection. */
typedef struct srv_conn_info {
	uint64_t id;
	const char *addr, *laddr; /* "ip:port" */
	int fd;
	int64_t age_s, idle_s;
	size_t qbuf, qbuf_free, omem;
	const char *user; /* the name of its user */
	int self;         /* it is the connection that asked */
	const void *fe_state;
} srv_conn_info;
/* The same for c itself (on c's own worker). */
void srv_conn_get_info(srv_conn *c, srv_conn_info *ci);
/* Calls fn for every connection of every worker, with that worker's lock
 * held (see srv_conn_lock): fn must be quick and must not call back into
 * the core. */
void srv_server_foreach_conn(srv_server *s, srv_conn *self,
                             void (*fn)(void *arg, const srv_conn_info *ci), void *arg);
/* Closes every connection for which match returns 1: at once for others
 * (their next request is never run), after this reply for self.  why is
 * logged.  Returns how many. */
size_t srv_server_kill(srv_server *s, srv_conn *self,
                       int (*match)(void *arg, const srv_conn_info *ci), void *arg,
                       const char *why);
/* Guards the front-end state that srv_server_foreach_conn's callback
 * reads (such as the client's name): take it to change such state. */
void srv_conn_lock(srv_conn *c);
void srv_conn_unlock(srv_conn *c);

/* ---- backup.c: SAVE and BGSAVE, online checkpoints -------------------------- */

typedef struct srv_save_info {
	int in_progress;          /* a save runs now */
	int64_t last_save_s;      /* Unix time of the last good save (start: server start) */
	int last_ok;              /* the last save succeeded (or none failed yet) */
	int64_t last_duration_ms; /* of the last save, -1 if none */
	int64_t current_start_ms; /* of the running one, 0 if none */
	uint64_t saves;           /* successful saves */
	uint64_t writes_at_last_save; /* trove_stats.writes when it started */
	char last_dir[1024];      /* where the last good save went */
} srv_save_info;

/* Writes a checkpoint of the database (trove_backup) into a new directory
 * dir/backup-YYYYmmdd-HHMMSS[-N]: at once on this thread, or
 * in the background (a thread of its own).  The path goes to path_out.
 * Returns 0, -2 if a save is already running (with schedule: one more is
 * queued to run after it, and 0 is returned), or -1 with err. */
int srv_server_save(srv_server *s, int background, int schedule, char *path_out, size_t plen,
                    char *err, size_t errlen);
void srv_server_save_info(srv_server *s, srv_save_info *out);

typedef struct srv_saver srv_saver;
srv_saver *srv_saver_new(trove_db *db, const char *dir);
/* Waits for a running background save. */
void srv_saver_free(srv_saver *sv);
int srv_saver_run(srv_saver *sv, int background, int schedule, char *path_out, size_t plen,
                  char *err, size_t errlen);
void srv_saver_info(srv_saver *sv, srv_save_info *out);

/* What front-ends may do with a connection. */
srv_server *srv_conn_server(srv_conn *c);
uint64_t srv_conn_id(const srv_conn *c);
const char *srv_conn_peer(const srv_conn *c); /* "ip:port" */
int srv_conn_authenticated(const srv_conn *c);
void srv_conn_set_authenticated(srv_conn *c, int yes);
/* The connection's user, as it is now: after an ACL change the user is
 * looked up again by name.  NULL if it was deleted (the connection is
 * being closed).  Borrowed: valid until the next call on c. */
srv_user *srv_conn_user(srv_conn *c);
/* Makes u (a reference the connection takes over) c's user, and c
 * authenticated or not. */
void srv_conn_set_user(srv_conn *c, srv_user *u, int authenticated);
/* "ip:port" of the server's end. */
const char *srv_conn_local(const srv_conn *c);
/* 1 if the peer is on a loopback address (or a Unix socket). */
int srv_conn_is_local(const srv_conn *c);
/* Appends n bytes of reply.  On ENOMEM the connection is closed. */
void srv_conn_write(srv_conn *c, const void *p, size_t n);
/* The count of reply bytes c has been given so far, and a way to take
 * back those given after such a mark: only replies of the current loop
 * turn, which are never sent before its end, may be taken back. */
uint64_t srv_conn_output_mark(const srv_conn *c);
void srv_conn_output_rewind(srv_conn *c, uint64_t mark);
/* The front-end's state of c's worker (srv_frontend.worker_new). */
void *srv_conn_worker_state(srv_conn *c);
/* Says that a request of c wrote or read the database.  Replies are
 * released at the end of each loop turn; under sync always the worker
 * first makes every write so far durable with one trove_sync (shared by
 * every connection and every pipelined command of the turn), so no client
 * hears of a write - its own or, through a read, another's - that a crash
 * could still undo. */
void srv_conn_used_db(srv_conn *c);
/* Sends what is pending, then closes; no further input is read or run. */
void srv_conn_close_after_reply(srv_conn *c);
/* 1 if the front-end should stop running requests for now: the output is
 * over SRV_OUTPUT_PAUSE or the connection is closing. */
int srv_conn_busy(const srv_conn *c);
size_t srv_conn_output_pending(const srv_conn *c);
size_t srv_conn_input_buffered(const srv_conn *c);
uint64_t srv_conn_age_ms(const srv_conn *c);
uint64_t srv_conn_idle_ms(const srv_conn *c);

/* ---- util.c: helpers shared by the core and the front-ends ---------------- */

/* Milliseconds / microseconds since the Unix epoch. */
int64_t srv_now_ms(void);
int64_t srv_now_us(void);
/* Parses all of s[0, n) as a signed 64-bit decimal integer (no spaces, no
 * '+', no leading zeros except "0").  0 ok, -1 otherwise. */
int srv_str2ll(const char *s, size_t n, long long *v);
/* Formats v; returns the length (buf holds >= 21 bytes). */
size_t srv_ll2str(char *buf, long long v);
/* Parses a size like "100", "64mb", "1gb", "512k" (k=1000, kb=1024, ...).
 * 0 ok, -1 otherwise. */
int srv_memtoull(const char *s, uint64_t *v);
/* Glob-style match of string against pattern (* ? [abc] [^a-z] \x), as
 * Redis's KEYS spells patterns.  nocase: ASCII case-insensitive. */
int srv_glob_match(const char *pat, size_t plen, const char *str, size_t slen, int nocase);
/* Splits a line into words the way redis.conf and inline commands do:
 * blanks separate, "double quotes" take \n \r \t \b \a \\ \" \xHH escapes,
 * 'single quotes' take \'.  On success returns a malloc'd array of
 * malloc'd words (lens[i] bytes each, NUL-terminated) and *argc;
 * NULL with *argc = -1 on unbalanced quotes, or -2 on ENOMEM. */
char **srv_splitargs(const char *line, size_t len, int *argc, size_t **lens);
void srv_freeargs(char **argv, size_t *lens, int argc);
/* Number of online CPUs (>= 1). */
int srv_ncpus(void);
/* Makes room for `need` elements of `elem` bytes in the array *arrp (a T **)
 * of *cap elements, doubling from `first`; 0, or -1 on ENOMEM (the array
 * is left as it was). */
int srv_grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first);

#endif
