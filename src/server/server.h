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
} srv_config;

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
/* Parses "yes"/"no" and a level name; -1 if neither. */
int srv_parse_loglevel(const char *s);
const char *srv_sync_name(trove_sync_mode m);

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
} srv_frontend;

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
} srv_stats;

/* Above this many bytes of unsent output a connection stops reading and
 * running requests until the client has read some (slow readers and
 * pipelines that never read cannot grow the server's memory without end). */
#define SRV_OUTPUT_PAUSE (4u << 20)

/* Creates the server: opens no sockets yet.  fe is the front-end every
 * listener speaks.  0 or -1 (logged). */
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
/* 1 if a password is set (clients must authenticate). */
int srv_server_auth_required(const srv_server *s);
/* Checks user/password against the configured ones (user NULL or
 * "default" is the default user).  Constant time in the password.
 * Returns 0 if they match. */
int srv_server_auth(const srv_server *s, const char *user, size_t ulen, const char *pass,
                   size_t plen);

/* What front-ends may do with a connection. */
srv_server *srv_conn_server(srv_conn *c);
uint64_t srv_conn_id(const srv_conn *c);
const char *srv_conn_peer(const srv_conn *c); /* "ip:port" */
int srv_conn_authenticated(const srv_conn *c);
void srv_conn_set_authenticated(srv_conn *c, int yes);
/* Appends n bytes of reply.  On ENOMEM the connection is closed. */
void srv_conn_write(srv_conn *c, const void *p, size_t n);
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

#endif
