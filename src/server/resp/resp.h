/*
 * resp.h - the RESP (Redis protocol) front-end's internal interface: the
 * per-connection client state, the reply writers, the command table and
 * the mapping of Redis keys (and SELECTed databases) onto Trove keys.
 *
 * The front-end is a srv_frontend (server.h): the core hands it input
 * bytes, it parses RESP2/RESP3 requests (proto.c), runs them (commands.c
 * dispatches to t_*.c) against the engine through trove.h, and appends
 * replies (reply.c).  It never touches sockets and never includes an
 * engine-internal header.
 */
#ifndef SRV_RESP_H
#define SRV_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

extern const srv_frontend srv_resp_frontend;

#define RESP_DBS 16                 /* SELECT 0..15 */
#define RESP_MAX_MULTIBULK (1 << 20) /* arguments in one request */
#define RESP_INLINE_MAX (64u << 10) /* an inline request, a count line */
#define RESP_UNAUTH_MULTIBULK 10    /* before AUTH, as Redis 7 limits */
#define RESP_UNAUTH_BULK 16384
#define RESP_MAX_RETRIES 1000       /* optimistic read-modify-write loops */

/* The per-connection state (srv_frontend.state_size bytes, zeroed). */
typedef struct resp_client {
	srv_conn *conn;
	srv_server *srv;
	trove_db *db;
	int proto;   /* 2 or 3 (HELLO) */
	int dbnum;   /* SELECT */
	char *name;  /* CLIENT SETNAME, or NULL */
	/* The request being parsed: offsets are from the request's first
	 * byte, which is the first byte of the core's input buffer. */
	int reqtype; /* 0 none yet, '*' multibulk, 'i' inline */
	long long mb_left;
	long long bulk_len; /* -1: next bulk's header not read yet */
	size_t pos;
	int argc, argcap;
	size_t *argoff, *arglen;
	char **argv; /* argv[i] -> arg i, NUL-terminated in place */
	int quit;
	const struct resp_cmd *last_cmd; /* commands.c: the last command looked up */
	struct resp_multi *multi;     /* multi.c: MULTI queue and WATCHed keys, or NULL */
	struct kv_txn *txn;           /* kv.c: set while EXEC runs the queued commands */
	struct resp_capture *capture; /* reply.c: set while EXEC runs; replies go here */
	unsigned long long errors;    /* error replies so far (reply.c counts them) */
	/* turn.c: where this connection's part of the pending turn batch
	 * begins (batch turn_gen): its output mark and error count then; and
	 * its keyspace hits and misses in the batch, counted into the
	 * server's stats when the batch commits (a replay counts them anew). */
	uint64_t turn_gen, turn_mark;
	unsigned long long turn_errors;
	unsigned long long turn_hits, turn_misses;
	/* Copies for CLIENT LIST, which runs on any worker (commands.c keeps
	 * them current after every command); c->name changes under
	 * srv_conn_lock. */
	atomic_int pub_db, pub_proto, pub_multi;
	_Atomic(const char *) pub_cmd; /* the last command: "get", "client|list" */
} resp_client;

/* ---- reply.c ------------------------------------------------------------- */

void add_raw(resp_client *c, const char *p, size_t n);
void add_ok(resp_client *c);
void add_simple(resp_client *c, const char *s); /* "+s" */
/* An error reply; msg starts with its code ("ERR ...", "WRONGPASS ...").
 * CR and LF in it become spaces. */
void add_error(resp_client *c, const char *msg);
void add_errorf(resp_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void add_int(resp_client *c, long long v);
void add_bulk(resp_client *c, const void *p, size_t n);
void add_bulk_cstr(resp_client *c, const char *s);
void add_bulk_ll(resp_client *c, long long v);
void add_null(resp_client *c);       /* RESP2 $-1, RESP3 _ */
void add_null_array(resp_client *c); /* RESP2 *-1, RESP3 _ */
void add_array(resp_client *c, long long n);
void add_map(resp_client *c, long long n); /* RESP2: an array of 2n */
void add_set(resp_client *c, long long n); /* RESP2: an array */
/* RESP3 verbatim string ("txt:..."), a bulk string in RESP2. */
void add_verbatim(resp_client *c, const char *p, size_t n, const char *fmt3);
/* An engine error as "ERR <words>". */
void add_engine_error(resp_client *c, int rc);
/* A key's version as an integer; inside EXEC, KV_VERSION_PENDING (kv.h)
 * becomes the commit's version once it is known. */
void add_version(resp_client *c, uint64_t v);

/* Replies captured while EXEC runs, released once the commit succeeded. */
typedef struct resp_capture resp_capture;
resp_capture *resp_capture_new(void);
void resp_capture_free(resp_capture *cap);
void resp_capture_reset(resp_capture *cap);
/* Sends the captured replies to the client, with version in place of
 * every pending version; an out-of-memory capture becomes an error. */
void resp_capture_release(resp_client *c, resp_capture *cap, uint64_t version);

/* Shared error texts, worded exactly as Redis words them. */
#define ERR_SYNTAX "ERR syntax error"
#define ERR_NOT_INT "ERR value is not an integer or out of range"
#define ERR_OVERFLOW "ERR increment or decrement would overflow"
#define ERR_NOAUTH "NOAUTH Authentication required."
#define ERR_WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."
#define ERR_TOO_BIG "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
#define ERR_CONTENTION "ERR too many concurrent updates of the key; try again"

/* ---- commands.c: the table and the dispatcher ------------------------------ */

enum {
	CMD_WRITE = 1 << 0,
	CMD_READONLY = 1 << 1,
	CMD_FAST = 1 << 2,
	CMD_NOAUTH = 1 << 3, /* may run before AUTH */
	CMD_LOADING = 1 << 4,
	CMD_STALE = 1 << 5,
	CMD_DENYOOM = 1 << 6,
	CMD_ADMIN = 1 << 7,     /* @admin @dangerous; COMMAND INFO's "admin" */
	CMD_CONTAINER = 1 << 8, /* has subcommands (resp_subcommands): CLIENT, CONFIG... */
	/* May join the loop turn's batch (turn.c): touches keys only through
	 * kv.h, changes no other state, answers no version, and may run
	 * again with the same reply if the batch must be replayed. */
	CMD_TURN = 1 << 9,
};

typedef void resp_proc(resp_client *c, int argc, char **argv, size_t *lens);

typedef struct resp_cmd {
	const char *name; /* lowercase */
	resp_proc *proc;
	int arity; /* n: exactly n words; -n: at least n */
	unsigned flags;
	int first_key, last_key, step;
	const char *acl; /* "@string @write", for COMMAND INFO */
	const char *group, *since, *summary;
} resp_cmd;

/* Runs one parsed request: lookup, arity, authentication, then the
 * command (or, inside MULTI, queues it).  argv[i] are NUL-terminated,
 * lens[i] their lengths. */
void resp_dispatch(resp_client *c, int argc, char **argv, size_t *lens);
/* Runs a command that passed the dispatcher's checks (EXEC runs its
 * queued commands through here). */
void resp_call(resp_client *c, const resp_cmd *cmd, int argc, char **argv, size_t *lens);
const resp_cmd *resp_lookup(const char *name, size_t len);
extern const resp_cmd resp_commands[];
extern const size_t resp_ncommands;

/* ---- cmdinfo.c: subcommands and argument docs ------------------------------------ */

/* A subcommand of a CMD_CONTAINER command (CLIENT KILL is "client|kill"):
 * the dispatcher checks its arity, ACL rules may name it, COMMAND INFO
 * and DOCS describe it.  The container's procedure runs it. */
typedef struct resp_subcmd {
	const char *name; /* "client|kill" */
	int arity;        /* counting the container's name: CLIENT KILL ... is -3 */
	unsigned flags;
	const char *acl;
	const char *since, *summary;
} resp_subcmd;
extern const resp_subcmd resp_subcommands[];
extern const size_t resp_nsubcommands;
/* The subcommand of cmd named sub, or NULL. */
const resp_subcmd *resp_lookup_sub(const resp_cmd *cmd, const char *sub, size_t len);
/* Where cmd's subcommands start in resp_subcommands and how many. */
size_t resp_subs_of(const resp_cmd *cmd, const resp_subcmd **first);
/* The arguments of a command or subcommand as Redis's docs spell them
 * ("key value [NX|XX] ..."), for COMMAND DOCS; NULL if unknown. */
const char *resp_cmd_syntax(const char *name);
/* Writes COMMAND DOCS's "arguments" array for syntax. */
void resp_add_doc_args(resp_client *c, const char *syntax);

/* ---- t_acl.c: permissions of every request --------------------------------------- */

/* The catalog entry (srv_acl_cmd index) of a command or subcommand. */
size_t resp_cmd_id(const resp_cmd *cmd, const resp_subcmd *sub);
/* The catalog the core's ACL rules name: resp_commands, then
 * resp_subcommands (srv_frontend.catalog). */
srv_acl_cmd *resp_catalog(size_t *n);
/* Checks that the connection's user may run the command (or subcommand)
 * and touch its keys (the table's key positions, with the access the
 * command needs: read for readonly commands, write for write commands,
 * both where a write command also returns what it read).  If not, replies
 * -NOPERM as Redis words it, logs it in ACL LOG and returns -1.  The
 * dispatcher calls it for every request; EXEC again for each queued
 * command (in_exec), since rules may have changed meanwhile. */
int resp_acl_check(resp_client *c, const resp_cmd *cmd, const resp_subcmd *sub, int argc,
                   char **argv, size_t *lens, int in_exec);
/* 1 if the connection's user may touch key (a Redis key) with the access
 * need (SRV_ACL_READ, SRV_ACL_WRITE, both, or 0 for any): for commands
 * whose keys are not at fixed positions (KEYS filters its answer, range
 * reads filter theirs). */
int resp_acl_key_ok(resp_client *c, const char *key, size_t klen, int need);
/* The connection's CLIENT LIST line (without the newline) into buf. */
void resp_client_line(resp_client *c, char *buf, size_t len);

/* Compares an argument with a lowercase option name, ignoring case. */
int arg_is(const char *arg, size_t len, const char *opt);
/* Parses an integer argument; on failure replies ERR_NOT_INT (or msg if
 * not NULL) and returns -1. */
int arg_ll(resp_client *c, const char *arg, size_t len, long long *v, const char *msg);

/* The command procedures (t_conn.c, t_string.c, t_keys.c). */
resp_proc cmd_ping, cmd_echo, cmd_quit, cmd_hello, cmd_auth, cmd_select, cmd_client, cmd_time,
        cmd_info, cmd_command;
resp_proc cmd_get, cmd_set, cmd_setnx, cmd_setex, cmd_psetex, cmd_getset, cmd_getdel, cmd_mget,
        cmd_mset, cmd_msetnx, cmd_append, cmd_strlen, cmd_incr, cmd_decr, cmd_incrby,
        cmd_decrby;
resp_proc cmd_del, cmd_exists, cmd_type, cmd_expire, cmd_pexpire, cmd_expireat, cmd_pexpireat,
        cmd_ttl, cmd_pttl, cmd_expiretime, cmd_pexpiretime, cmd_persist, cmd_dbsize, cmd_keys,
        cmd_flushdb, cmd_flushall;
/* multi.c, t_keyspace.c, t_trove.c and the later string commands. */
resp_proc cmd_multi, cmd_exec, cmd_discard, cmd_watch, cmd_unwatch;
resp_proc cmd_scan, cmd_randomkey, cmd_rename, cmd_renamenx, cmd_copy, cmd_move, cmd_swapdb;
resp_proc cmd_getex, cmd_getrange, cmd_setrange, cmd_incrbyfloat;
resp_proc cmd_trange, cmd_tgetv, cmd_tsetv, cmd_delifeq, cmd_delex;
/* t_acl.c and t_admin.c */
resp_proc cmd_acl, cmd_config, cmd_save, cmd_bgsave, cmd_lastsave, cmd_shutdown, cmd_debug,
        cmd_reset;
/* CLIENT's subcommands beyond ID, GETNAME, SETNAME (t_admin.c): LIST, KILL,
 * INFO, NO-EVICT, NO-TOUCH.  Return 0 if sub was theirs. */
int client_admin(resp_client *c, int argc, char **argv, size_t *lens);

/* ---- turn.c: a loop turn's writes as one batch ------------------------------------ */

typedef struct resp_turn resp_turn;
/* srv_frontend.worker_new, worker_free and turn_end. */
void *resp_turn_new(srv_server *s);
void resp_turn_free(void *turn);
void resp_turn_end(void *turn);
/* Called by resp_call before it runs a command outside EXEC.  A CMD_TURN
 * command joins the worker's batch: the call records it, sets c->txn to
 * the batch's overlay and returns 1 (resp_turn_leave follows the
 * command).  Any other command first has the pending batch committed, so
 * it sees and follows every earlier write: returns 0. */
int resp_turn_join(resp_client *c, const resp_cmd *cmd, int argc, char **argv, size_t *lens);
void resp_turn_leave(resp_client *c);
/* 1 if a command of c is in its worker's pending batch. */
int resp_turn_holds(resp_client *c);
/* Counts a keyspace hit or miss of c's running command in the pending
 * batch, if the command runs in it: returns 1; else 0 and the caller
 * counts it in the server's stats at once. */
int resp_turn_hit(resp_client *c, int found);

/* ---- multi.c: transactions ------------------------------------------------------ */

/* Called by the dispatcher after refusing a command (unknown, arity,
 * authentication, permissions): inside MULTI, EXEC will then answer
 * EXECABORT, as Redis does. */
void multi_reject(resp_client *c);
/* Inside MULTI, queues the command (answering +QUEUED) or refuses it;
 * returns 1 if it did either, 0 if the command is to run now. */
int multi_queue(resp_client *c, const resp_cmd *cmd, int argc, char **argv, size_t *lens);
/* 1 between MULTI and EXEC/DISCARD (CLIENT LIST's 'x' flag). */
int multi_active(const resp_client *c);
/* Leaves MULTI and forgets the WATCHed keys (DISCARD, RESET). */
void multi_reset(resp_client *c);
/* Frees the connection's transaction state (at disconnect). */
void multi_free(resp_client *c);

/* ---- keys.c: Redis keys in the one Trove keyspace ---------------------------- */

/* A Redis key k in database n is the Trove key  'r' n k : the byte 'r'
 * (0x72, the RESP face's prefix, so other faces' keys never collide), one
 * byte for the database (0..15), then k's bytes.  Order within a database
 * is k's bytewise order. */
#define RESP_KEY_TAG 'r'
#define RESP_KEY_PREFIX 2
#define RESP_MAX_KEY (TROVE_MAX_KEY - RESP_KEY_PREFIX)

typedef struct rkey {
	char *p;
	size_t n;
	char small[128];
} rkey;

/* Builds the Trove key for (c->dbnum, k).  Returns 0, or -1 after
 * replying with an error (key too long, out of memory). */
int rkey_make(resp_client *c, rkey *out, const char *k, size_t klen);
/* The same for database dbnum (COPY ... DB, MOVE). */
int rkey_make_db(resp_client *c, rkey *out, int dbnum, const char *k, size_t klen);
void rkey_free(rkey *k);

/* Calls fn for every live key of database dbnum whose Redis key starts
 * with prefix (plen may be 0), in order; fn returns nonzero to stop.
 * Returns 0 or an engine error. */
typedef int rkey_visit_fn(void *arg, const char *key, size_t klen, const trove_meta *meta);
int rkey_scan(resp_client *c, int dbnum, const char *prefix, size_t plen, int want_meta,
              rkey_visit_fn *fn, void *arg);
/* Counts the keys (and those with an expiry) of every database in one
 * pass: keys[i], expires[i] for i < RESP_DBS. */
int rkey_count_all(resp_client *c, uint64_t *keys, uint64_t *expires);

#endif
