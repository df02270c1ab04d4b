/*
 * server.c - the troved core: listening sockets, worker threads, the life
 * of a connection (input buffer, output buffer, limits, idle timeout) and
 * graceful shutdown.
 *
 * Threads.  The main thread owns the listening sockets and the signal
 * handlers on its own libuv loop; it accepts every connection itself,
 * applies the accept-time checks (protected mode, maxclients) and hands
 * the socket to the next worker in turn through a locked queue and a
 * uv_async wake-up.  Each worker thread runs its own uv_loop over its
 * connections, reads requests, lets the front-end run them (the front-end
 * calls the engine directly, on the worker) and writes the replies.  A
 * connection never moves between workers, so its state needs no locks.
 * Under sync always one more thread, the syncer, runs trove_sync for
 * every worker and wakes the workers whose replies a sync covered; a
 * worker whose connections all wait for a sync runs it itself instead.
 *
 * Why one acceptor and not SO_REUSEPORT listeners per worker: the kernel
 * spreads REUSEPORT connections by a hash, not evenly, and queues them
 * behind a worker that may be busy in a long engine call; one acceptor
 * gives exact round-robin, one place for the accept-time checks, and a
 * clean stop (closing one socket stops all accepting).  Accepting is cheap
 * next to running commands, so one thread keeps up.
 *
 * This file never parses a protocol and never touches the database's
 * data: it moves bytes between sockets and the front-end.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

#define READ_CHUNK (16u << 10)  /* free input space offered to each read */
#define SHRINK_ABOVE (1u << 20) /* idle buffers larger than this are freed */
#define STOP_GRACE_MS 5000      /* how long shutdown waits for slow readers */
#define ACCEPT_BATCH 256        /* accepts per wake-up of the acceptor */
#define GATHER_MAX_NS 2000000u  /* the longest a sync waits for returning clients */
#define FOLLOW_BELOW 16         /* a turn of fewer commands may follow the sync */

struct srv_conn {
	uv_tcp_t tcp; /* tcp.data points back here */
	srv_worker *w;
	srv_conn *prev, *next;
	uint64_t id;
	char peer[64];
	char *in; /* unprocessed input: in[0, in_len) */
	size_t in_len, in_cap;
	char *out; /* replies not yet handed to the socket; only the first
	            * out_ready bytes may go (the rest waits for the sync) */
	size_t out_len, out_cap, out_ready;
	uint64_t out_total; /* bytes ever appended to out (srv_conn_output_mark) */
	char *wb; /* bytes of the write in flight: wb[wb_off, wb_len) */
	size_t wb_len, wb_off, wb_cap;
	uv_write_t wreq;
	unsigned writing : 1, paused : 1, closing : 1, close_after : 1, authed : 1;
	unsigned scheduled : 1, used_db : 1, local : 1;
	srv_conn *snext, *sprev; /* the worker's list of connections with news */
	/* sync always: replies waiting for a sync, oldest first - up to two
	 * marks of out_total, each released once sync generation gen is done
	 * (a third turn's replies join the second's, and wait for its sync
	 * or a later one). */
	struct {
		uint64_t gen, mark;
	} wait[2];
	int nwait;
	srv_conn *wnext, *wprev; /* the worker's list of connections waiting */
	int64_t created_ms;
	_Atomic int64_t last_ms; /* read by CLIENT LIST on other workers */
	int64_t req_start_ms;    /* when the partial request in `in` began; 0: none */
	int64_t obuf_soft_since; /* when the output went over the soft limit; 0: not */
	srv_user *user;          /* changed under w->mu (CLIENT LIST reads its name) */
	uint64_t user_ver;       /* the ACL version user was looked up at */
	char laddr[64];
	int fd;
	atomic_int kill;                 /* CLIENT KILL from any worker */
	atomic_size_t pub_qbuf, pub_qcap, pub_omem; /* for CLIENT LIST */
	void *fe_state;
};

/* One worker's per-command counters: written by the worker alone (plain
 * relaxed stores), read by INFO on any worker. */
typedef struct wstat {
	_Atomic uint64_t calls, usec, rejected, failed;
} wstat;

struct srv_worker {
	srv_server *srv;
	int index;
	uv_thread_t thread;
	uv_loop_t loop;
	uv_async_t async;
	uv_timer_t timer;
	uv_check_t check; /* the end of each loop turn: sync, then reply */
	uv_idle_t idle;   /* keeps the loop from blocking while some are scheduled */
	uv_mutex_t mu; /* guards fds, nfds, capfds, stop, and the links of conns
	                * and each connection's user (see srv_conn_lock) */
	int *fds;
	size_t nfds, capfds;
	int stop;
	int stopping, handles_closed;
	int64_t stop_deadline_ms;
	srv_conn *conns;
	int nconns;
	srv_conn *sched;         /* connections to release output for at the turn's end */
	int dirty;               /* a request used the database this turn */
	unsigned turn_cmds;      /* commands run this turn */
	uv_async_t sync_async;   /* the syncer finished a sync this worker awaits */
	int sync_waits;          /* some connection awaits a sync (under the syncer's mu) */
	int sync_wake;           /* the syncer's own copy of sync_waits, to wake it by */
	int following;           /* blocked until the sync in flight is done (sync_follow;
	                          * under the syncer's mu) */
	srv_conn *waiting;       /* connections with replies waiting for a sync */
	int nwaiting;            /* how many */
	atomic_int kill_pending; /* some connection here has its kill flag set */
	wstat *cmdstats;         /* one per catalog entry */
	void *fe_state;          /* srv_frontend.worker_new */
};

/* sync always: one thread runs trove_sync for every worker, one sync
 * after another while any worker waits for one.  Generation n is the
 * n-th sync begun; it covers every turn that ended before it began, on
 * any worker, so one fsync releases the replies of all of them. */
typedef struct srv_syncer {
	uv_thread_t thread;
	uv_mutex_t mu; /* guards everything below, and each worker's sync_waits */
	uv_cond_t cv;     /* the syncer's thread: a sync is wanted, or stop */
	uv_cond_t gather; /* the gathering sync: more connections wait */
	uv_cond_t synced; /* a sync is done (to the workers following it) */
	int followers;    /* workers waiting on synced */
	int running;      /* a sync is gathering or in flight (the syncer's
	                   * thread's or a leading worker's) */
	uint64_t started; /* syncs begun */
	uint64_t wanted;  /* the generation some worker waits for */
	uint64_t done;    /* the last generation finished */
	uint64_t failed;  /* the last generation that failed; 0: none */
	int failed_rc;
	int stop;
	size_t next_conns;        /* connections waiting for the next sync, started + 1 */
	size_t last_conns;        /* connections the last sync released */
	size_t target;            /* while the syncer gathers: next_conns it waits for */
	uint64_t last_ns;         /* how long the last sync took */
	uint64_t last_end;        /* when it ended (uv_hrtime: monotonic) */
	_Atomic uint64_t durable; /* every write of this version or older is synced */
	atomic_int waking;        /* set under mu: the syncer is waking workers, outside mu */
} srv_syncer;

struct srv_server {
	srv_config *cfg;
	trove_db *db;
	const srv_frontend *fe;
	uv_loop_t loop;
	int nlisten;
	int lfd[SRV_MAX_BIND];
	uv_poll_t lpoll[SRV_MAX_BIND];
	uv_signal_t sigterm, sigint;
	uv_timer_t accept_pause; /* accepting resumes after an EMFILE */
	srv_worker *workers;
	int nworkers;
	unsigned rr;
	atomic_uint_fast64_t next_id;
	atomic_int nclients;
	srv_stats stats;
	int64_t start_ms;
	int shutting_down;
	srv_acl *acl;
	srv_acl_cmd *catalog;
	size_t ncatalog;
	uv_mutex_t cfg_mu;          /* CONFIG SET */
	uv_mutex_t stat_mu;         /* stat_base */
	srv_cmdstat *stat_base;     /* the counters' values at the last RESETSTAT */
	uv_async_t shutdown_async;  /* SHUTDOWN from a worker */
	uv_mutex_t shut_mu;         /* guards shutdown_open */
	int shutdown_open;          /* shutdown_async may be sent to */
	srv_saver *saver;
	srv_syncer syncer;
	int syncer_running;
};

/* ---- Accessors for front-ends ---------------------------------------------- */

trove_db *srv_server_db(const srv_server *s) { return s->db; }
const srv_config *srv_server_config(const srv_server *s) { return s->cfg; }
srv_stats *srv_server_stats(srv_server *s) { return &s->stats; }
int srv_server_clients(const srv_server *s) { return atomic_load(&s->nclients); }
int srv_server_workers(const srv_server *s) { return s->nworkers; }
uint64_t srv_server_start_ms(const srv_server *s) { return (uint64_t)s->start_ms; }
int srv_server_auth_required(const srv_server *s) { return !srv_acl_default_open(s->acl); }
srv_acl *srv_server_acl(srv_server *s) { return s->acl; }
srv_config *srv_server_config_mut(srv_server *s) { return s->cfg; }
void srv_server_config_lock(srv_server *s) { uv_mutex_lock(&s->cfg_mu); }
void srv_server_config_unlock(srv_server *s) { uv_mutex_unlock(&s->cfg_mu); }

const srv_acl_cmd *srv_server_catalog(const srv_server *s, size_t *n)
{
	*n = s->ncatalog;
	return s->catalog;
}

srv_server *srv_conn_server(srv_conn *c) { return c->w->srv; }
uint64_t srv_conn_id(const srv_conn *c) { return c->id; }
const char *srv_conn_peer(const srv_conn *c) { return c->peer; }
int srv_conn_authenticated(const srv_conn *c) { return c->authed; }
void srv_conn_set_authenticated(srv_conn *c, int yes) { c->authed = yes ? 1 : 0; }
size_t srv_conn_output_pending(const srv_conn *c) { return c->out_len + (c->wb_len - c->wb_off); }
size_t srv_conn_input_buffered(const srv_conn *c) { return c->in_len; }
uint64_t srv_conn_age_ms(const srv_conn *c) { return (uint64_t)(srv_now_ms() - c->created_ms); }
uint64_t srv_conn_idle_ms(const srv_conn *c)
{
	return (uint64_t)(srv_now_ms() - atomic_load_explicit(&c->last_ms, memory_order_relaxed));
}
const char *srv_conn_local(const srv_conn *c) { return c->laddr; }
int srv_conn_is_local(const srv_conn *c) { return c->local; }
void srv_conn_lock(srv_conn *c) { uv_mutex_lock(&c->w->mu); }
void srv_conn_unlock(srv_conn *c) { uv_mutex_unlock(&c->w->mu); }

srv_user *srv_conn_user(srv_conn *c)
{
	srv_acl *acl = c->w->srv->acl;
	uint64_t v = srv_acl_version(acl);
	if (c->user && v != c->user_ver) {
		/* Some user changed: take the current version of ours. */
		const char *name = srv_user_name(c->user);
		srv_user *now = srv_acl_get(acl, name, strlen(name));
		uv_mutex_lock(&c->w->mu);
		srv_user *old = c->user;
		c->user = now;
		uv_mutex_unlock(&c->w->mu);
		srv_user_unref(old);
		c->user_ver = v;
	}
	return c->user;
}

void srv_conn_set_user(srv_conn *c, srv_user *u, int authenticated)
{
	uv_mutex_lock(&c->w->mu);
	srv_user *old = c->user;
	c->user = u;
	uv_mutex_unlock(&c->w->mu);
	srv_user_unref(old);
	c->user_ver = 0; /* u may predate v: look it up again at first use */
	c->authed = authenticated ? 1 : 0;
}

int srv_conn_busy(const srv_conn *c)
{
	return c->closing || c->close_after || srv_conn_output_pending(c) >= SRV_OUTPUT_PAUSE;
}

/* ---- Connections ------------------------------------------------------------ */

static void conn_close(srv_conn *c);
static void conn_flush(srv_conn *c);
static void conn_publish(srv_conn *c);
static void conn_process(srv_conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void worker_close_handles(srv_worker *w)
{
	if (w->handles_closed)
		return;
	w->handles_closed = 1;
	uv_mutex_lock(&w->srv->syncer.mu);
	w->sync_waits = 0; /* the syncer no longer wakes this worker, */
	uv_mutex_unlock(&w->srv->syncer.mu);
	while (atomic_load(&w->srv->syncer.waking))
		sched_yield(); /* once it is done with the wake-ups it began */
	uv_close((uv_handle_t *)&w->sync_async, NULL);
	uv_close((uv_handle_t *)&w->async, NULL);
	uv_close((uv_handle_t *)&w->timer, NULL);
	uv_close((uv_handle_t *)&w->check, NULL);
	uv_close((uv_handle_t *)&w->idle, NULL);
}

/* Takes c off its worker's list of connections waiting for a sync. */
static void wait_unlink(srv_conn *c)
{
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		c->w->waiting = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	c->wnext = c->wprev = NULL;
	c->nwait = 0;
	c->w->nwaiting--;
}

static void on_conn_closed(uv_handle_t *h)
{
	srv_conn *c = h->data;
	srv_worker *w = c->w;
	const srv_frontend *fe = w->srv->fe;
	if (fe->conn_free)
		fe->conn_free(c, c->fe_state);
	if (c->scheduled) {
		if (c->sprev)
			c->sprev->snext = c->snext;
		else
			w->sched = c->snext;
		if (c->snext)
			c->snext->sprev = c->sprev;
	}
	if (c->nwait)
		wait_unlink(c);
	uv_mutex_lock(&w->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	uv_mutex_unlock(&w->mu);
	srv_user_unref(c->user);
	atomic_fetch_sub(&w->srv->nclients, 1);
	srv_log(SRV_LL_VERBOSE, "client %llu (%s) closed", (unsigned long long)c->id, c->peer);
	free(c->in);
	free(c->out);
	free(c->wb);
	free(c);
	if (w->stopping && w->nconns == 0)
		worker_close_handles(w);
}

/* Closes at once: unsent output is dropped, a write in flight cancelled. */
static void conn_close(srv_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

void srv_conn_close_after_reply(srv_conn *c)
{
	if (c->close_after || c->closing)
		return;
	c->close_after = 1;
	uv_read_stop((uv_stream_t *)&c->tcp);
}

static int grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 4096;
	while (nc < need)
		nc *= 2;
	char *nb = realloc(*buf, nc);
	if (!nb)
		return -1;
	*buf = nb;
	*cap = nc;
	return 0;
}

static void on_idle(uv_idle_t *h)
{
	(void)h; /* only there so that the loop polls without blocking */
}

/* Asks for c's new output to be released at the end of this loop turn,
 * after the turn's writes are durable (on_worker_check). */
static void conn_schedule(srv_conn *c)
{
	srv_worker *w = c->w;
	if (c->scheduled || c->closing)
		return;
	if (!w->sched)
		uv_idle_start(&w->idle, on_idle);
	c->scheduled = 1;
	c->sprev = NULL;
	c->snext = w->sched;
	if (w->sched)
		w->sched->sprev = c;
	w->sched = c;
}

void srv_conn_used_db(srv_conn *c)
{
	c->used_db = 1;
	c->w->dirty = 1;
}

/* Makes the CLIENT LIST figures of c visible to other workers. */
static void conn_publish(srv_conn *c)
{
	atomic_store_explicit(&c->pub_qbuf, c->in_len, memory_order_relaxed);
	atomic_store_explicit(&c->pub_qcap, c->in_cap, memory_order_relaxed);
	atomic_store_explicit(&c->pub_omem, srv_conn_output_pending(c), memory_order_relaxed);
}

/* client-output-buffer-limit normal, as Redis applies it: a connection
 * whose unsent output is over the hard limit, or has stayed over the soft
 * limit for longer than its seconds, is closed at once (its output is
 * dropped).  Returns 1 if c was closed. */
static int conn_check_output_limit(srv_conn *c, int64_t now)
{
	const srv_config *cfg = c->w->srv->cfg;
	uint64_t hard = SRV_CFG(cfg->obuf_hard), soft = SRV_CFG(cfg->obuf_soft);
	size_t pending = srv_conn_output_pending(c);
	int over = 0;
	if (hard && pending > hard) {
		over = 1;
	} else if (soft && pending > soft) {
		if (!c->obuf_soft_since)
			c->obuf_soft_since = now ? now : srv_now_ms();
		else if ((now ? now : srv_now_ms()) - c->obuf_soft_since >
		         (int64_t)SRV_CFG(cfg->obuf_soft_seconds) * 1000)
			over = 1;
	} else {
		c->obuf_soft_since = 0;
	}
	if (!over)
		return 0;
	srv_log(SRV_LL_WARNING,
	        "Client id=%llu addr=%s closed for overcoming of output buffer limits: %zu bytes "
	        "of replies unread (client-output-buffer-limit normal %llu %llu %d)",
	        (unsigned long long)c->id, c->peer, pending, (unsigned long long)hard,
	        (unsigned long long)soft, SRV_CFG(cfg->obuf_soft_seconds));
	conn_close(c);
	return 1;
}

void srv_conn_write(srv_conn *c, const void *p, size_t n)
{
	if (c->closing || n == 0)
		return;
	if (grow(&c->out, &c->out_cap, c->out_len + n)) {
		srv_log(SRV_LL_WARNING, "client %llu: out of memory for a reply; closing",
		       (unsigned long long)c->id);
		conn_close(c);
		return;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	c->out_total += n;
	uint64_t hard = SRV_CFG(c->w->srv->cfg->obuf_hard);
	if (hard && srv_conn_output_pending(c) > hard)
		conn_check_output_limit(c, 0);
}

uint64_t srv_conn_output_mark(const srv_conn *c)
{
	return c->out_total;
}

void srv_conn_output_rewind(srv_conn *c, uint64_t mark)
{
	if (c->closing)
		return;
	uint64_t drop = c->out_total - mark;
	assert(mark <= c->out_total && drop <= c->out_len - c->out_ready);
	c->out_len -= (size_t)drop;
	c->out_total = mark;
}

void *srv_conn_worker_state(srv_conn *c)
{
	return c->w->fe_state;
}

/* Called whenever output may have drained: finishes a close-after-reply
 * and resumes a connection paused for a slow reader. */
static void conn_output_settled(srv_conn *c)
{
	if (c->closing)
		return;
	if (c->close_after) {
		if (!c->writing && c->out_len == 0)
			conn_close(c);
		return;
	}
	if (c->paused && srv_conn_output_pending(c) < SRV_OUTPUT_PAUSE / 2 && !c->w->stopping) {
		c->paused = 0;
		conn_process(c);
		conn_schedule(c);
		if (!c->paused && !c->closing && !c->close_after)
			uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	}
}

static void on_write_done(uv_write_t *req, int status)
{
	srv_conn *c = req->handle->data;
	c->writing = 0;
	if (c->closing)
		return;
	if (status < 0) {
		srv_log(SRV_LL_VERBOSE, "client %llu: write failed: %s", (unsigned long long)c->id,
		       uv_strerror(status));
		conn_close(c);
		return;
	}
	atomic_fetch_add_explicit(&c->w->srv->stats.net_output_bytes, c->wb_len - c->wb_off,
	                          memory_order_relaxed);
	c->wb_len = c->wb_off = 0;
	if (c->wb_cap > SHRINK_ABOVE) {
		free(c->wb);
		c->wb = NULL;
		c->wb_cap = 0;
	}
	conn_flush(c);
}

/* Drops the first n bytes of the output buffer. */
static void out_consume(srv_conn *c, size_t n)
{
	memmove(c->out, c->out + n, c->out_len - n);
	c->out_len -= n;
	c->out_ready -= n;
	if (c->out_len == 0 && c->out_cap > SHRINK_ABOVE) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
}

/* Sends the released output: directly if the socket takes it all, else
 * through one uv_write at a time (the released bytes move to the
 * in-flight buffer, so replies keep accumulating meanwhile). */
static void conn_flush(srv_conn *c)
{
	if (c->closing)
		return;
	if (!c->writing && c->out_ready > 0) {
		size_t ready = c->out_ready;
		uv_buf_t b = uv_buf_init(c->out, (unsigned)(ready > UINT32_MAX ? UINT32_MAX : ready));
		int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (n < 0 && n != UV_EAGAIN) {
			conn_close(c);
			return;
		}
		size_t done = n > 0 ? (size_t)n : 0;
		atomic_fetch_add_explicit(&c->w->srv->stats.net_output_bytes, done,
		                          memory_order_relaxed);
		if (done < ready && ready == c->out_len) {
			/* All of it is released: swap buffers rather than copy. */
			char *t = c->wb;
			size_t tc = c->wb_cap;
			c->wb = c->out;
			c->wb_cap = c->out_cap;
			c->wb_len = c->out_len;
			c->wb_off = done;
			c->out = t;
			c->out_cap = tc;
			c->out_len = c->out_ready = 0;
		} else if (done < ready) {
			if (grow(&c->wb, &c->wb_cap, ready - done)) {
				conn_close(c);
				return;
			}
			memcpy(c->wb, c->out + done, ready - done);
			c->wb_len = ready - done;
			c->wb_off = 0;
			out_consume(c, ready);
		} else {
			out_consume(c, done);
		}
		if (c->wb_len > c->wb_off) {
			size_t left = c->wb_len - c->wb_off;
			b = uv_buf_init(c->wb + c->wb_off,
			                (unsigned)(left > UINT32_MAX ? UINT32_MAX : left));
			if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write_done)) {
				conn_close(c);
				return;
			}
			c->writing = 1;
		}
	}
	if (!c->closing)
		conn_publish(c);
	if (!c->writing)
		conn_output_settled(c);
}

/* Lets the front-end run the complete requests in the input buffer. */
static void conn_process(srv_conn *c)
{
	const srv_frontend *fe = c->w->srv->fe;
	while (c->in_len > 0 && !srv_conn_busy(c)) {
		size_t used = fe->on_input(c, c->fe_state, c->in, c->in_len);
		assert(used <= c->in_len);
		if (used == 0)
			break;
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
		/* What is left began arriving no earlier than the last read. */
		c->req_start_ms = atomic_load_explicit(&c->last_ms, memory_order_relaxed);
	}
	if (c->in_len == 0)
		c->req_start_ms = 0;
	if (c->in_len == 0 && c->in_cap > SHRINK_ABOVE) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	if (!c->closing && !c->close_after && srv_conn_output_pending(c) >= SRV_OUTPUT_PAUSE &&
	    !c->paused) {
		c->paused = 1; /* resumed by conn_output_settled */
		uv_read_stop((uv_stream_t *)&c->tcp);
	}
	conn_publish(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	srv_conn *c = h->data;
	if (grow(&c->in, &c->in_cap, c->in_len + READ_CHUNK)) {
		*buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
		return;
	}
	size_t room = c->in_cap - c->in_len;
	*buf = uv_buf_init(c->in + c->in_len, (unsigned)(room > (1u << 30) ? (1u << 30) : room));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	srv_conn *c = s->data;
	if (c->closing)
		return;
	if (nread < 0) {
		if (nread == UV_EOF) {
			/* The client shut its side: answer what it sent, then close. */
			srv_conn_close_after_reply(c);
			conn_schedule(c);
		} else {
			srv_log(SRV_LL_VERBOSE, "client %llu: read failed: %s",
			       (unsigned long long)c->id, uv_strerror((int)nread));
			conn_close(c);
		}
		return;
	}
	if (nread == 0)
		return;
	if (atomic_load_explicit(&c->kill, memory_order_relaxed)) {
		conn_close(c); /* killed from another worker: run nothing more */
		return;
	}
	int64_t now = srv_now_ms();
	if (c->in_len == 0)
		c->req_start_ms = now;
	c->in_len += (size_t)nread;
	atomic_store_explicit(&c->last_ms, now, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->w->srv->stats.net_input_bytes, (uint64_t)nread,
	                          memory_order_relaxed);
	/* Checked before running anything, as Redis does, so that one request
	 * over the limit is refused however the bytes happen to arrive. */
	if (c->in_len > SRV_CFG(c->w->srv->cfg->client_query_buffer_limit)) {
		srv_log(SRV_LL_WARNING,
		        "closing client %llu (%s): its unprocessed input (%zu bytes) is over "
		        "client-query-buffer-limit",
		        (unsigned long long)c->id, c->peer, c->in_len);
		conn_close(c);
		return;
	}
	conn_process(c);
	conn_schedule(c);
}

static int sockaddr_is_loopback(const struct sockaddr_storage *ss);

/* Writes "ip:port" of an address (from getpeername or getsockname, which
 * returned ok) into out; "?:0" when it failed or is not IP. */
static void format_addr(const struct sockaddr_storage *ss, int ok, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ok && ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		uv_ip4_name(a, ip, sizeof ip);
		port = ntohs(a->sin_port);
	} else if (ok && ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		uv_ip6_name(a, ip, sizeof ip);
		port = ntohs(a->sin6_port);
	}
	snprintf(out, n, "%s:%d", ip, port);
}

/* Fills in c's peer and local addresses, and whether the peer is local. */
static void peer_name(srv_conn *c)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	int len = sizeof ss;
	int ok = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0;
	format_addr(&ss, ok, c->peer, sizeof c->peer);
	c->local = sockaddr_is_loopback(&ss);
	memset(&ss, 0, sizeof ss);
	len = sizeof ss;
	ok = uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0;
	format_addr(&ss, ok, c->laddr, sizeof c->laddr);
}

/* Takes over an accepted socket on worker w. */
static void conn_start(srv_worker *w, int fd)
{
	srv_server *s = w->srv;
	size_t base = (sizeof(srv_conn) + 15) & ~(size_t)15;
	srv_conn *c = calloc(1, base + s->fe->state_size);
	if (!c || uv_tcp_init(&w->loop, &c->tcp)) {
		free(c);
		close(fd);
		atomic_fetch_sub(&s->nclients, 1);
		return;
	}
	c->tcp.data = c;
	c->w = w;
	c->fe_state = (char *)c + base;
	c->id = atomic_fetch_add(&s->next_id, 1) + 1;
	c->created_ms = srv_now_ms();
	atomic_init(&c->last_ms, c->created_ms);
	c->fd = fd;
	int opened = uv_tcp_open(&c->tcp, fd) == 0;
	if (opened) {
		uv_tcp_nodelay(&c->tcp, 1);
		peer_name(c);
	}
	c->user = srv_acl_get(s->acl, "default", 7);
	c->authed = srv_acl_default_open(s->acl);
	uv_mutex_lock(&w->mu);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	uv_mutex_unlock(&w->mu);
	if (!opened) {
		close(fd);
		conn_close(c); /* fe->conn_init not run: conn_free must cope */
		return;
	}
	if (s->fe->conn_init)
		s->fe->conn_init(c, c->fe_state);
	srv_log(SRV_LL_VERBOSE, "client %llu connected from %s (worker %d)",
	       (unsigned long long)c->id, c->peer, w->index);
	if (w->stopping) {
		conn_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- Workers ------------------------------------------------------------------ */

static void worker_begin_stop(srv_worker *w)
{
	if (w->stopping)
		return;
	w->stopping = 1;
	w->stop_deadline_ms = srv_now_ms() + STOP_GRACE_MS;
	/* Commands run to completion inside a read callback, so none is half
	 * done here: send what was answered, read nothing more. */
	for (srv_conn *c = w->conns, *n; c; c = n) {
		n = c->next;
		srv_conn_close_after_reply(c);
		conn_schedule(c);
	}
	if (w->nconns == 0)
		worker_close_handles(w);
}

static void on_worker_async(uv_async_t *a)
{
	srv_worker *w = a->data;
	uv_mutex_lock(&w->mu);
	int *fds = w->fds;
	size_t n = w->nfds;
	int stop = w->stop;
	w->fds = NULL;
	w->nfds = w->capfds = 0;
	uv_mutex_unlock(&w->mu);
	for (size_t i = 0; i < n; i++)
		conn_start(w, fds[i]);
	free(fds);
	if (atomic_exchange(&w->kill_pending, 0)) {
		for (srv_conn *c = w->conns; c; c = c->next)
			if (atomic_load_explicit(&c->kill, memory_order_relaxed))
				conn_close(c);
	}
	if (stop)
		worker_begin_stop(w);
}

static void on_worker_timer(uv_timer_t *t)
{
	srv_worker *w = t->data;
	int64_t now = srv_now_ms();
	if (w->stopping) {
		if (now < w->stop_deadline_ms)
			return;
		for (srv_conn *c = w->conns; c; c = c->next) /* slow readers: give up */
			conn_close(c);
		return;
	}
	const srv_config *cfg = w->srv->cfg;
	int64_t idle_ms = (int64_t)SRV_CFG(cfg->timeout) * 1000;
	int64_t req_ms = (int64_t)SRV_CFG(cfg->request_timeout) * 1000;
	int soft = SRV_CFG(cfg->obuf_soft) != 0;
	for (srv_conn *c = w->conns; c; c = c->next) {
		if (c->closing)
			continue;
		int64_t last = atomic_load_explicit(&c->last_ms, memory_order_relaxed);
		if (idle_ms > 0 && now - last > idle_ms) {
			srv_log(SRV_LL_VERBOSE, "closing idle client %llu (%s)",
			       (unsigned long long)c->id, c->peer);
			conn_close(c);
		} else if (req_ms > 0 && c->req_start_ms && !c->paused && !c->close_after &&
		           now - c->req_start_ms > req_ms) {
			/* Slowloris: a request begun and never finished holds a
			 * connection (and its buffer) for as long as it likes. */
			srv_log(SRV_LL_WARNING,
			        "closing client %llu (%s): a request it began %lld ms ago is still "
			        "incomplete (%zu bytes so far; request-timeout %d s)",
			        (unsigned long long)c->id, c->peer, (long long)(now - c->req_start_ms),
			        c->in_len, SRV_CFG(cfg->request_timeout));
			conn_close(c);
		} else if (soft) {
			conn_check_output_limit(c, now);
		}
	}
}

/* Holds c's output so far until sync generation gen is done. */
static void conn_park(srv_conn *c, uint64_t gen)
{
	srv_worker *w = c->w;
	if (c->nwait == 2) {
		c->wait[1].gen = gen; /* >= the slot's: a later sync covers both */
		c->wait[1].mark = c->out_total;
		return;
	}
	if (c->nwait == 0) {
		c->wprev = NULL;
		c->wnext = w->waiting;
		if (w->waiting)
			w->waiting->wprev = c;
		w->waiting = c;
		w->nwaiting++;
	}
	c->wait[c->nwait].gen = gen;
	c->wait[c->nwait].mark = c->out_total;
	c->nwait++;
}

/* Sync generation gen is done (rc 0) or failed: sends the replies it
 * held, or closes their connections - their writes' fate is unknown, and
 * no client is told a write succeeded that might not have. */
static void release_waiting(srv_worker *w, uint64_t gen, int rc)
{
	for (srv_conn *c = w->waiting, *n; c; c = n) {
		n = c->wnext;
		if (c->wait[0].gen > gen)
			continue;
		if (rc) {
			wait_unlink(c);
			conn_close(c);
			continue;
		}
		uint64_t mark = 0;
		while (c->nwait && c->wait[0].gen <= gen) {
			mark = c->wait[0].mark;
			c->wait[0] = c->wait[1];
			c->nwait--;
		}
		if (!c->nwait)
			wait_unlink(c);
		c->out_ready = c->out_len - (size_t)(c->out_total - mark);
		conn_flush(c);
	}
}

/* Group commit: a sync's replies bring their clients' next requests a
 * network round trip later.  Begun at once, the next sync covers only
 * the turns that ended while the last one ran, the returning clients
 * wait for the one after it, and the clients settle into two cohorts,
 * each waiting for two fsyncs per request.  So the sync waits a little
 * for them: until as many connections wait as the last sync released on
 * top of those already waiting, or until half the last sync's duration
 * (waiting a whole sync would be no better than starting now), but at
 * most GATHER_MAX_NS (clients further away than that gain little, and a
 * slow disk must not make a client that does not come back cost much),
 * has passed since it ended, or until told to stop.  A lone client, or
 * the first request after a pause, waits for nothing. */
static void sync_gather(srv_syncer *sy)
{
	uint64_t wait = sy->last_ns / 2 < GATHER_MAX_NS ? sy->last_ns / 2 : GATHER_MAX_NS;
	uint64_t deadline = sy->last_end + wait;
	while (!sy->stop && sy->next_conns < sy->target) {
		uint64_t now = uv_hrtime();
		if (now >= deadline || uv_cond_timedwait(&sy->gather, &sy->mu, deadline - now))
			break;
	}
	sy->target = 0;
}

/* Runs the next sync, called with the syncer's mu held, no sync running
 * and one wanted: gathers, begins it, syncs, publishes it and wakes the
 * workers that wait, all but `self` (the worker leading this sync, which
 * releases its own replies; NULL on the syncer's thread).  Returns with
 * mu held again. */
static void sync_run(srv_server *s, srv_worker *self)
{
	srv_syncer *sy = &s->syncer;
	sy->running = 1;
	sync_gather(sy);
	uint64_t gen = ++sy->started;
	sy->last_conns = sy->next_conns;
	sy->next_conns = 0;
	uv_mutex_unlock(&sy->mu);
	uint64_t t0 = uv_hrtime();
	/* Lock-free; every write up to v is in the log. */
	uint64_t v = trove_last_version(s->db);
	int rc = trove_sync(s->db);
	uint64_t end = uv_hrtime();
	if (!rc && v > atomic_load(&sy->durable))
		atomic_store(&sy->durable, v);
	if (rc)
		srv_log(SRV_LL_WARNING,
		        "sync failed (%s): closing the connections whose writes it held",
		        trove_strerror(rc));
	uv_mutex_lock(&sy->mu);
	sy->done = gen;
	sy->last_ns = end - t0;
	sy->last_end = end;
	sy->target = sy->next_conns + sy->last_conns;
	sy->running = 0;
	if (rc) {
		sy->failed = gen;
		sy->failed_rc = rc;
	}
	/* The waiting workers are woken after the unlock: each one's
	 * on_sync_async takes mu at once. */
	for (int i = 0; i < s->nworkers; i++) {
		srv_worker *o = &s->workers[i];
		o->sync_wake = o->sync_waits && o != self && !o->following;
	}
	if (sy->followers)
		uv_cond_broadcast(&sy->synced);
	atomic_store(&sy->waking, 1);
	uv_mutex_unlock(&sy->mu);
	for (int i = 0; i < s->nworkers; i++)
		if (s->workers[i].sync_wake)
			uv_async_send(&s->workers[i].sync_async);
	atomic_store(&sy->waking, 0);
	uv_mutex_lock(&sy->mu);
}

/* The syncer's thread: while a worker waits for a generation not yet
 * begun and no worker leads one, runs it.  On stop it first finishes
 * every sync asked for. */
static void syncer_main(void *arg)
{
	srv_server *s = arg;
	srv_syncer *sy = &s->syncer;
	srv_log_thread_name("sync");
	uv_mutex_lock(&sy->mu);
	for (;;) {
		while (!sy->stop && (sy->wanted <= sy->started || sy->running))
			uv_cond_wait(&sy->cv, &sy->mu);
		if (sy->wanted <= sy->started)
			break;
		sync_run(s, NULL);
	}
	uv_mutex_unlock(&sy->mu);
}

/* Called by a worker at the end of a turn in which nconns connections
 * used the database: the generation of the first sync that begins after
 * now, which their replies wait for.  It marks that sync wanted but does
 * not wake the syncer's thread for it: sync_begin does, once the turn's
 * replies are parked. */
static uint64_t syncer_request(srv_worker *w, size_t nconns)
{
	srv_syncer *sy = &w->srv->syncer;
	uv_mutex_lock(&sy->mu);
	uint64_t gen = sy->started + 1;
	sy->next_conns += nconns;
	int gathered = sy->target && sy->next_conns >= sy->target;
	if (sy->wanted < gen)
		sy->wanted = gen;
	w->sync_waits = 1;
	uv_mutex_unlock(&sy->mu);
	/* Signalled after the unlock, so that the gathering sync does not
	 * wake only to sleep again on the mutex (a context switch each). */
	if (gathered)
		uv_cond_signal(&sy->gather);
	return gen;
}

static void sync_release(srv_worker *w);

/* Sees that sync generation gen, which w's replies wait for, gets run.
 * If it has begun, or another sync runs (whose runner goes on to it),
 * nothing is needed.  Else, if every connection of w waits for a sync -
 * w has nothing else to do until one is done - w leads it: runs it on
 * its own thread and releases its replies itself, which saves waking
 * the syncer's thread and being woken by it (a context switch or two
 * per sync).  Else the syncer's thread runs it. */
static void sync_begin(srv_worker *w, uint64_t gen)
{
	srv_server *s = w->srv;
	srv_syncer *sy = &s->syncer;
	int lead = w->nwaiting == w->nconns, wake = 0;
	uv_mutex_lock(&sy->mu);
	if (sy->started < gen && !sy->running) {
		if (lead) {
			sync_run(s, w);
			wake = sy->wanted > sy->started;
		} else {
			wake = 1;
		}
	}
	uv_mutex_unlock(&sy->mu);
	if (wake)
		uv_cond_signal(&sy->cv); /* the next one, another worker's */
	if (lead)
		sync_release(w);
}

/* Stops the syncer's thread once it has finished every sync asked for
 * (the workers are joined by then: nobody asks for more). */
static void syncer_stop(srv_server *s)
{
	if (!s->syncer_running)
		return;
	uv_mutex_lock(&s->syncer.mu);
	s->syncer.stop = 1;
	uv_cond_signal(&s->syncer.cv);
	uv_mutex_unlock(&s->syncer.mu);
	uv_thread_join(&s->syncer.thread);
	s->syncer_running = 0;
}

/* After a sync that w may wait for: releases the replies it covered, or
 * closes their connections if it failed. */
static void sync_release(srv_worker *w)
{
	srv_syncer *sy = &w->srv->syncer;
	uv_mutex_lock(&sy->mu);
	uint64_t done = sy->done, failed = sy->failed;
	int rc = sy->failed_rc;
	uv_mutex_unlock(&sy->mu);
	if (failed)
		release_waiting(w, failed, rc);
	release_waiting(w, done, 0);
	uv_mutex_lock(&sy->mu);
	w->sync_waits = w->waiting != NULL;
	uv_mutex_unlock(&sy->mu);
}

/* Called at the end of w's turn while some of its connections wait for
 * a sync: if a sync is in flight (past its gathering), blocks until it
 * is done and releases the replies it covered.  Every request that uses
 * the database and arrives meanwhile would wait for the next sync
 * anyway (the one in flight began before it), so w loses nothing by
 * running it only after this one; instead of waking for every few
 * requests that arrive during the fsync (a turn each, with its own
 * engine commit) it then runs them all in one turn, and it needs no
 * uv_async to learn that the sync is done.  Only after a small turn
 * (FOLLOW_BELOW): when turns are large (pipelines), a turn's cost is
 * spread over many requests already, and running them beside the fsync
 * rather than after it shortens the time between syncs. */
static void sync_follow(srv_worker *w)
{
	srv_syncer *sy = &w->srv->syncer;
	uv_mutex_lock(&sy->mu);
	uint64_t gen = sy->started;
	if (gen <= sy->done || sy->stop) {
		uv_mutex_unlock(&sy->mu);
		return;
	}
	w->following = 1;
	sy->followers++;
	while (sy->done < gen)
		uv_cond_wait(&sy->synced, &sy->mu);
	sy->followers--;
	w->following = 0;
	uv_mutex_unlock(&sy->mu);
	sync_release(w);
}

/* On the worker's loop, after another thread finished a sync. */
static void on_sync_async(uv_async_t *a)
{
	sync_release(a->data);
}

/* The end of a loop turn: every request read in this turn has run.  The
 * front-end first commits the writes it held back (the turn's batch:
 * srv_frontend.turn_end).  Under sync always, if any request of the turn
 * used the database, its connections' replies are held until a trove_sync
 * that begins after this point is done - so a read never shows a client
 * a write (even another worker's) that a crash could undo - and the
 * syncer's thread syncs for every worker (or the worker leads the sync
 * itself when it has nothing else to do: sync_begin), and every turn
 * that ends while a sync runs, on any worker, shares the next one.
 * (trove_sync costs no fsync when nothing is unsynced.)  While some of
 * its replies wait and a sync is in flight, the worker waits for it rather
 * than serving the requests that arrive meanwhile one turn at a time
 * (sync_follow).  A connection with replies still held keeps its later
 * replies behind them.  Under the other sync modes the replies go at
 * once. */
static void on_worker_check(uv_check_t *h)
{
	srv_worker *w = h->data;
	const srv_frontend *fe = w->srv->fe;
	if (fe->turn_end)
		fe->turn_end(w->fe_state); /* the turn's held-back writes, first */
	srv_conn *list = w->sched;
	if (!list)
		return;
	w->sched = NULL;
	uv_idle_stop(&w->idle);
	uint64_t gen = 0; /* the sync this turn's database users wait for */
	if (w->dirty) {
		w->dirty = 0;
		/* Nothing this turn read or wrote can be newer than the latest
		 * write: if that is synced already, no sync is needed. */
		if (w->srv->cfg->sync == TROVE_SYNC_ALWAYS &&
		    trove_last_version(w->srv->db) > atomic_load(&w->srv->syncer.durable)) {
			size_t n = 0;
			for (srv_conn *c = list; c; c = c->snext)
				n += c->used_db;
			gen = syncer_request(w, n);
		}
	}
	while (list) {
		srv_conn *c = list;
		list = c->snext;
		c->scheduled = 0;
		c->snext = c->sprev = NULL;
		if (gen && c->used_db) {
			conn_park(c, gen);
		} else if (c->nwait) {
			conn_park(c, c->wait[c->nwait - 1].gen);
		} else {
			c->out_ready = c->out_len;
			conn_flush(c); /* may schedule c again, for the next turn */
		}
		c->used_db = 0;
	}
	if (gen)
		sync_begin(w, gen);
	unsigned cmds = w->turn_cmds;
	w->turn_cmds = 0;
	if (w->nwaiting && !w->stopping && cmds < FOLLOW_BELOW)
		sync_follow(w);
}

static void worker_main(void *arg)
{
	srv_worker *w = arg;
	char name[8];
	snprintf(name, sizeof name, "w%d", w->index);
	srv_log_thread_name(name);
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

static int worker_init(srv_server *s, srv_worker *w, int index)
{
	w->srv = s;
	w->index = index;
	w->cmdstats = calloc(s->ncatalog ? s->ncatalog : 1, sizeof *w->cmdstats);
	if (!w->cmdstats)
		return -1;
	if (s->fe->worker_new && !(w->fe_state = s->fe->worker_new(s)))
		return -1;
	if (uv_loop_init(&w->loop))
		return -1;
	if (uv_mutex_init(&w->mu)) {
		uv_loop_close(&w->loop);
		return -1;
	}
	uv_async_init(&w->loop, &w->async, on_worker_async);
	w->async.data = w;
	uv_async_init(&w->loop, &w->sync_async, on_sync_async);
	w->sync_async.data = w;
	uv_timer_init(&w->loop, &w->timer);
	w->timer.data = w;
	uv_timer_start(&w->timer, on_worker_timer, 1000, 1000);
	uv_check_init(&w->loop, &w->check);
	w->check.data = w;
	uv_check_start(&w->check, on_worker_check);
	uv_idle_init(&w->loop, &w->idle);
	w->idle.data = w;
	return 0;
}

/* Hands fd to the next worker (round-robin).  Called on the main thread. */
static void dispatch_fd(srv_server *s, int fd)
{
	srv_worker *w = &s->workers[s->rr++ % (unsigned)s->nworkers];
	uv_mutex_lock(&w->mu);
	if (srv_grow(&w->fds, &w->capfds, w->nfds + 1, sizeof *w->fds, 16)) {
		uv_mutex_unlock(&w->mu);
		close(fd);
		atomic_fetch_sub(&s->nclients, 1);
		return;
	}
	w->fds[w->nfds++] = fd;
	uv_mutex_unlock(&w->mu);
	uv_async_send(&w->async);
}

/* ---- Introspection: statistics, CLIENT LIST and KILL, saves --------------------------- */

void srv_conn_count_command(srv_conn *c, size_t cmd, uint64_t usec, int failed, int rejected)
{
	if (cmd >= c->w->srv->ncatalog)
		return;
	wstat *st = &c->w->cmdstats[cmd];
	c->w->turn_cmds++;
	/* Only this worker writes these: plain loads and stores suffice. */
#define BUMP(f, by)                                                                       \
	atomic_store_explicit(&st->f, atomic_load_explicit(&st->f, memory_order_relaxed) + (by), \
	                      memory_order_relaxed)
	if (rejected) {
		BUMP(rejected, 1);
		return;
	}
	BUMP(calls, 1);
	BUMP(usec, usec);
	if (failed)
		BUMP(failed, 1);
#undef BUMP
}

static void cmdstats_sum(srv_server *s, srv_cmdstat *out)
{
	memset(out, 0, s->ncatalog * sizeof *out);
	for (int i = 0; s->workers && i < s->nworkers; i++) {
		wstat *ws = s->workers[i].cmdstats;
		for (size_t j = 0; ws && j < s->ncatalog; j++) {
			out[j].calls += atomic_load_explicit(&ws[j].calls, memory_order_relaxed);
			out[j].usec += atomic_load_explicit(&ws[j].usec, memory_order_relaxed);
			out[j].rejected += atomic_load_explicit(&ws[j].rejected, memory_order_relaxed);
			out[j].failed += atomic_load_explicit(&ws[j].failed, memory_order_relaxed);
		}
	}
}

void srv_server_cmdstats(srv_server *s, srv_cmdstat *out)
{
	uv_mutex_lock(&s->stat_mu);
	cmdstats_sum(s, out);
	for (size_t j = 0; j < s->ncatalog; j++) {
		out[j].calls -= s->stat_base[j].calls;
		out[j].usec -= s->stat_base[j].usec;
		out[j].rejected -= s->stat_base[j].rejected;
		out[j].failed -= s->stat_base[j].failed;
	}
	uv_mutex_unlock(&s->stat_mu);
}

void srv_server_reset_stats(srv_server *s)
{
	/* The workers' counters only grow; a reset remembers where they are. */
	uv_mutex_lock(&s->stat_mu);
	cmdstats_sum(s, s->stat_base);
	uv_mutex_unlock(&s->stat_mu);
	srv_stats *st = &s->stats;
	atomic_store(&st->connections_received, 0);
	atomic_store(&st->rejected_connections, 0);
	atomic_store(&st->commands_processed, 0);
	atomic_store(&st->net_input_bytes, 0);
	atomic_store(&st->net_output_bytes, 0);
	atomic_store(&st->keyspace_hits, 0);
	atomic_store(&st->keyspace_misses, 0);
	atomic_store(&st->expired_keys, 0);
	atomic_store(&st->turn_batches, 0);
	atomic_store(&st->turn_retries, 0);
	atomic_store(&st->turn_replays, 0);
}

static void conn_info(const srv_conn *c, const srv_conn *self, int64_t now, srv_conn_info *ci)
{
	size_t qbuf = atomic_load_explicit(&c->pub_qbuf, memory_order_relaxed);
	size_t qcap = atomic_load_explicit(&c->pub_qcap, memory_order_relaxed);
	if (c == self) { /* our own figures are current */
		qbuf = c->in_len;
		qcap = c->in_cap;
	}
	ci->id = c->id;
	ci->addr = c->peer;
	ci->laddr = c->laddr;
	ci->fd = c->fd;
	ci->age_s = (now - c->created_ms) / 1000;
	ci->idle_s = (now - atomic_load_explicit(&c->last_ms, memory_order_relaxed)) / 1000;
	ci->qbuf = qbuf;
	ci->qbuf_free = qcap > qbuf ? qcap - qbuf : 0;
	ci->omem = c == self ? srv_conn_output_pending(c)
	                     : atomic_load_explicit(&c->pub_omem, memory_order_relaxed);
	ci->user = c->user ? srv_user_name(c->user) : "";
	ci->self = c == self;
	ci->fe_state = c->fe_state;
}

void srv_conn_get_info(srv_conn *c, srv_conn_info *ci)
{
	conn_info(c, c, srv_now_ms(), ci);
}

void srv_server_foreach_conn(srv_server *s, srv_conn *self,
                             void (*fn)(void *arg, const srv_conn_info *ci), void *arg)
{
	int64_t now = srv_now_ms();
	for (int i = 0; i < s->nworkers; i++) {
		srv_worker *w = &s->workers[i];
		uv_mutex_lock(&w->mu);
		for (srv_conn *c = w->conns; c; c = c->next) {
			if (atomic_load_explicit(&c->kill, memory_order_relaxed))
				continue; /* (c->closing belongs to c's worker: not read here) */
			srv_conn_info ci;
			conn_info(c, self, now, &ci);
			fn(arg, &ci);
		}
		uv_mutex_unlock(&w->mu);
	}
}

size_t srv_server_kill(srv_server *s, srv_conn *self,
                       int (*match)(void *arg, const srv_conn_info *ci), void *arg,
                       const char *why)
{
	int64_t now = srv_now_ms();
	size_t n = 0;
	int kill_self = 0;
	for (int i = 0; i < s->nworkers; i++) {
		srv_worker *w = &s->workers[i];
		int here = 0;
		uv_mutex_lock(&w->mu);
		for (srv_conn *c = w->conns; c; c = c->next) {
			if (atomic_load_explicit(&c->kill, memory_order_relaxed))
				continue; /* (c->closing belongs to c's worker: not read here) */
			srv_conn_info ci;
			conn_info(c, self, now, &ci);
			if (!match(arg, &ci))
				continue;
			n++;
			srv_log(SRV_LL_NOTICE, "killing client %llu (%s): %s", (unsigned long long)c->id,
			        c->peer, why);
			if (c == self) {
				kill_self = 1;
				continue;
			}
			atomic_store_explicit(&c->kill, 1, memory_order_relaxed);
			here = 1;
		}
		if (here && !w->stop) { /* (a stopping worker closes everything anyway) */
			atomic_store(&w->kill_pending, 1);
			uv_async_send(&w->async);
		}
		uv_mutex_unlock(&w->mu);
	}
	if (kill_self)
		srv_conn_close_after_reply(self);
	return n;
}

int srv_server_save(srv_server *s, int background, int schedule, char *path_out, size_t plen,
                    char *err, size_t errlen)
{
	return srv_saver_run(s->saver, background, schedule, path_out, plen, err, errlen);
}

void srv_server_save_info(srv_server *s, srv_save_info *out)
{
	srv_saver_info(s->saver, out);
	if (!out->last_save_s)
		out->last_save_s = s->start_ms / 1000;
}

/* ---- Accepting --------------------------------------------------------------- */

static int sockaddr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127;
	}
	return ss->ss_family == AF_UNIX;
}

static void refuse(srv_server *s, int fd, const char *msg)
{
	char buf[512];
	size_t n = s->fe->refusal(buf, sizeof buf, msg);
	/* Best effort, never blocking: the socket is fresh, the buffer empty. */
	ssize_t w = send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	close(fd);
	atomic_fetch_add_explicit(&s->stats.rejected_connections, 1, memory_order_relaxed);
}

static void on_acceptable(uv_poll_t *p, int status, int events);

static void on_accept_resume(uv_timer_t *t)
{
	srv_server *s = t->data;
	if (s->shutting_down)
		return;
	for (int i = 0; i < s->nlisten; i++)
		uv_poll_start(&s->lpoll[i], UV_READABLE, on_acceptable);
}

static void on_acceptable(uv_poll_t *p, int status, int events)
{
	(void)events;
	srv_server *s = p->data;
	if (status < 0 || s->shutting_down)
		return;
	int lfd = s->lfd[p - s->lpoll];
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				/* Out of descriptors (or worse): the socket stays
				 * readable, so pause accepting for a moment rather
				 * than spin on the error. */
				srv_log(SRV_LL_WARNING, "accept: %s; pausing accepts for 100 ms",
				        strerror(errno));
				for (int j = 0; j < s->nlisten; j++)
					uv_poll_stop(&s->lpoll[j]);
				uv_timer_start(&s->accept_pause, on_accept_resume, 100, 0);
			}
			return;
		}
		if (s->cfg->protected_mode && srv_acl_default_open(s->acl) &&
		    !sockaddr_is_loopback(&ss)) {
			refuse(s, fd,
			       "DENIED Trove is running in protected mode because protected mode is "
			       "enabled and no password is set for the default user. In this mode "
			       "connections are only accepted from the loopback interface. To accept "
			       "other clients set a password with requirepass (and restart), or "
			       "connect from 127.0.0.1.");
			continue;
		}
		if (atomic_load(&s->nclients) >= SRV_CFG(s->cfg->maxclients)) {
			refuse(s, fd, "ERR max number of clients reached");
			continue;
		}
		atomic_fetch_add(&s->nclients, 1);
		atomic_fetch_add_explicit(&s->stats.connections_received, 1, memory_order_relaxed);
		dispatch_fd(s, fd);
	}
}

static int listen_one(srv_server *s, const char *addr)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	char port[16];
	snprintf(port, sizeof port, "%d", s->cfg->port);
	int rc = getaddrinfo(addr, port, &hints, &res);
	if (rc) {
		srv_log(SRV_LL_WARNING, "Could not resolve bind address '%s': %s", addr,
		       gai_strerror(rc));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 511))
		goto fail;
	freeaddrinfo(res);
	s->lfd[s->nlisten++] = fd;
	srv_log(SRV_LL_NOTICE, "Listening on %s port %d", addr, s->cfg->port);
	return 0;
fail:
	srv_log(SRV_LL_WARNING, "Could not listen on %s port %d: %s", addr, s->cfg->port,
	       strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

int srv_server_listen(srv_server *s)
{
	for (int i = 0; i < s->cfg->nbind; i++)
		if (listen_one(s, s->cfg->bind[i]))
			return -1;
	return 0;
}

/* ---- Start and stop -------------------------------------------------------------- */

static void begin_shutdown(srv_server *s, const char *why)
{
	if (s->shutting_down)
		return;
	s->shutting_down = 1;
	srv_log(SRV_LL_WARNING, "%s: shutting down (no new connections; finishing replies)", why);
	for (int i = 0; i < s->nlisten; i++)
		uv_close((uv_handle_t *)&s->lpoll[i], NULL);
	uv_mutex_lock(&s->shut_mu);
	if (s->shutdown_open)
		uv_close((uv_handle_t *)&s->shutdown_async, NULL);
	s->shutdown_open = 0;
	uv_mutex_unlock(&s->shut_mu);
	/* A second signal now takes the default action: a stuck shutdown
	 * can still be interrupted. */
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->accept_pause, NULL);
	for (int i = 0; i < s->nworkers; i++) {
		srv_worker *w = &s->workers[i];
		uv_mutex_lock(&w->mu);
		w->stop = 1;
		uv_mutex_unlock(&w->mu);
		uv_async_send(&w->async);
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	begin_shutdown(h->data, signum == SIGINT ? "Received SIGINT" : "Received SIGTERM");
}

static void on_shutdown_async(uv_async_t *a)
{
	begin_shutdown(a->data, "User requested shutdown");
}

void srv_server_shutdown(srv_server *s, const char *why)
{
	srv_log(SRV_LL_WARNING, "%s", why);
	uv_mutex_lock(&s->shut_mu);
	if (s->shutdown_open)
		uv_async_send(&s->shutdown_async);
	uv_mutex_unlock(&s->shut_mu);
}

static int server_setup(srv_server *s);

int srv_server_init(srv_server **out, srv_config *cfg, trove_db *db, const srv_frontend *fe)
{
	srv_server *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	s->cfg = cfg;
	s->db = db;
	s->fe = fe;
	s->start_ms = srv_now_ms();
	s->nworkers = cfg->workers > 0 ? cfg->workers : srv_ncpus();
	uv_mutex_init(&s->syncer.mu);
	uv_cond_init(&s->syncer.cv);
	uv_cond_init(&s->syncer.gather);
	uv_cond_init(&s->syncer.synced);
	uv_mutex_init(&s->cfg_mu);
	uv_mutex_init(&s->stat_mu);
	uv_mutex_init(&s->shut_mu);
	if (uv_loop_init(&s->loop)) {
		free(s);
		return -1;
	}
	if (server_setup(s)) {
		srv_server_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

/* The parts of srv_server_init that can fail after the loop exists. */
static int server_setup(srv_server *s)
{
	srv_config *cfg = s->cfg;
	const srv_frontend *fe = s->fe;
	if (fe->catalog && !(s->catalog = fe->catalog(&s->ncatalog))) {
		srv_log(SRV_LL_WARNING, "out of memory for the command catalog");
		return -1;
	}
	s->stat_base = calloc(s->ncatalog ? s->ncatalog : 1, sizeof *s->stat_base);
	s->acl = srv_acl_new(s->catalog, s->ncatalog, cfg->requirepass);
	s->saver = srv_saver_new(s->db, cfg->dir);
	if (!s->stat_base || !s->acl || !s->saver) {
		srv_log(SRV_LL_WARNING, "out of memory setting up the server");
		return -1;
	}
	if (cfg->aclfile) {
		char err[4096];
		if (srv_acl_load_file(s->acl, cfg->aclfile, cfg->requirepass, err, sizeof err)) {
			srv_log(SRV_LL_WARNING, "Aborting troved startup because of ACL errors: %s", err);
			return -1;
		}
		srv_log(SRV_LL_NOTICE, "ACL users loaded from %s", cfg->aclfile);
	}
	if (cfg->protected_mode && srv_acl_default_open(s->acl)) {
		for (int i = 0; i < cfg->nbind; i++) {
			const char *a = cfg->bind[i];
			if (!strncmp(a, "127.", 4) || !strcmp(a, "::1") || !strcasecmp(a, "localhost"))
				continue;
			srv_log(SRV_LL_WARNING,
			        "refusing to listen on '%s': protected mode allows non-loopback "
			        "addresses only when the default user has a password (or is off)",
			        a);
			return -1;
		}
	}
	return 0;
}

int srv_server_run(srv_server *s, void (*ready)(void *), void *arg)
{
	signal(SIGPIPE, SIG_IGN);
	s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
	if (!s->workers)
		return -1;
	for (int i = 0; i < s->nworkers; i++) {
		if (worker_init(s, &s->workers[i], i)) {
			srv_log(SRV_LL_WARNING, "cannot create worker %d", i);
			s->nworkers = i;
			return -1;
		}
	}
	if (s->cfg->sync == TROVE_SYNC_ALWAYS) {
		if (uv_thread_create(&s->syncer.thread, syncer_main, s)) {
			srv_log(SRV_LL_WARNING, "cannot start the sync thread");
			return -1;
		}
		s->syncer_running = 1;
	}
	for (int i = 0; i < s->nworkers; i++) {
		if (uv_thread_create(&s->workers[i].thread, worker_main, &s->workers[i])) {
			srv_log(SRV_LL_WARNING, "cannot start worker thread %d", i);
			abort(); /* workers before i are running and cannot be joined */
		}
	}
	for (int i = 0; i < s->nlisten; i++) {
		uv_poll_init(&s->loop, &s->lpoll[i], s->lfd[i]);
		s->lpoll[i].data = s;
		uv_poll_start(&s->lpoll[i], UV_READABLE, on_acceptable);
	}
	uv_timer_init(&s->loop, &s->accept_pause);
	s->accept_pause.data = s;
	uv_async_init(&s->loop, &s->shutdown_async, on_shutdown_async);
	s->shutdown_async.data = s;
	uv_mutex_lock(&s->shut_mu);
	s->shutdown_open = 1;
	uv_mutex_unlock(&s->shut_mu);
	uv_signal_init(&s->loop, &s->sigterm);
	uv_signal_init(&s->loop, &s->sigint);
	s->sigterm.data = s->sigint.data = s;
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	uv_signal_start(&s->sigint, on_signal, SIGINT);
	srv_log(SRV_LL_NOTICE, "Ready to accept connections (%d workers)", s->nworkers);
	if (ready)
		ready(arg);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < s->nlisten; i++)
		close(s->lfd[i]);
	s->nlisten = 0;
	for (int i = 0; i < s->nworkers; i++)
		uv_thread_join(&s->workers[i].thread);
	syncer_stop(s);
	srv_log(SRV_LL_NOTICE, "All connections closed");
	return 0;
}

void srv_server_free(srv_server *s)
{
	if (!s)
		return;
	syncer_stop(s);
	for (int i = 0; i < s->nlisten; i++)
		close(s->lfd[i]);
	for (int i = 0; s->workers && i < s->nworkers; i++) {
		srv_worker *w = &s->workers[i];
		for (size_t j = 0; j < w->nfds; j++)
			close(w->fds[j]);
		free(w->fds);
		free(w->cmdstats);
		if (w->fe_state)
			s->fe->worker_free(w->fe_state);
		uv_loop_close(&w->loop);
		uv_mutex_destroy(&w->mu);
	}
	free(s->workers);
	srv_saver_free(s->saver); /* waits for a background save */
	srv_acl_free(s->acl);
	free(s->catalog);
	free(s->stat_base);
	uv_mutex_destroy(&s->cfg_mu);
	uv_mutex_destroy(&s->stat_mu);
	uv_mutex_destroy(&s->shut_mu);
	uv_mutex_destroy(&s->syncer.mu);
	uv_cond_destroy(&s->syncer.cv);
	uv_cond_destroy(&s->syncer.gather);
	uv_cond_destroy(&s->syncer.synced);
	uv_loop_close(&s->loop);
	free(s);
}
