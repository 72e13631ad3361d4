/* PostgreSQL on the event loop, with libpq's asynchronous API. This is the only
 * module that touches libpq.
 *
 * A pool of connections, each an explicit state machine:
 *
 *   DOWN ──> RESOLVING ──> CONNECTING ──> SETUP ──> IDLE <──> BUSY
 *    ^  (evdns, if the host is a name)   (PQconnectPoll)       │
 *    └──────────── backoff (doubling, bounded) <── any failure ┘
 *
 * - Names are resolved with evdns and libpq is given "hostaddr", because
 *   PQconnectStart would otherwise call getaddrinfo() and block the loop.
 * - The socket is re-registered after every PQconnectPoll step, since libpq
 *   may change it (another address, SSL fallback).
 * - SETUP runs a hook on every new connection (migrations) before the
 *   connection takes queries.
 * - Queries wait in one bounded FIFO for an idle connection. Each has a
 *   deadline covering the wait and the execution; a query that passes it while
 *   running drops its connection (a server that does not answer one query
 *   will not answer the next, and libpq's cancel would block).
 * - Only parameterised queries: SQL text is constant, values travel apart.
 *
 * The pool is "up" while at least one connection is IDLE or BUSY. While it is
 * down, db_query() refuses at once, so callers answer 503 without waiting.
 */
#ifndef SLUICE_API_DB_H
#define SLUICE_API_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct metrics;
struct db;
struct db_conn;
struct db_result;   /* a view of a result, valid during the callback only */

enum db_status {
    DB_OK,           /* the statement ran */
    DB_FAILED,       /* the server refused it: see db_sqlstate() */
    DB_UNAVAILABLE,  /* not run, or its fate unknown: down, timeout, shutdown */
};

/* Called exactly once per accepted query, always from the event loop. */
typedef void (*db_cb)(const struct db_result *res, void *arg);
typedef void (*db_state_cb)(bool up, void *arg);
/* Runs on each new connection; it sends queries with db_conn_query() and ends
 * with db_conn_ready(). */
typedef void (*db_setup_fn)(struct db_conn *c, void *arg);

struct db_options {
    const char *url;                 /* a libpq URI or key=value string */
    unsigned connections;            /* 0 = 4 */
    unsigned max_queue;              /* 0 = 256 */
    int query_timeout_ms;            /* 0 = 5000 */
    int connect_timeout_ms;          /* 0 = 5000 */
    int backoff_min_ms;              /* 0 = 100 */
    int backoff_max_ms;              /* 0 = 5000 */
    db_setup_fn setup;               /* may be NULL */
    void *setup_arg;
    struct metrics *metrics;         /* may be NULL */
};

/* Starts connecting at once. NULL with a malloc'd message in *<err> when the
 * URL cannot be used. */
struct db *db_new(struct event_base *base, struct evdns_base *dns,
                  const struct db_options *opts, char **err);

/* Pending callbacks run with DB_UNAVAILABLE. Not from a db callback. */
void db_free(struct db *db);

/* Called on every change between up and down. */
void db_set_state_cb(struct db *db, db_state_cb cb, void *arg);

bool db_is_up(const struct db *db);

/* Why the pool is down (for /readyz and logs, never for API clients), or "ok". */
const char *db_state_text(const struct db *db);

/* Queues <sql> with <nparams> text parameters (NULL elements are SQL NULLs;
 * the values are copied). <sql> must outlive the query (use literals).
 * Returns 0; or -1 when the pool is down or the queue full, and <cb> will not
 * be called. */
int db_query(struct db *db, const char *sql, int nparams, const char *const *params,
             db_cb cb, void *arg);

/* For setup hooks: runs a query on <c> itself, outside the queue. With
 * <params> NULL, <sql> may hold several statements (no parameters then); the
 * result is the first error, or the last statement's. Returns 0 or -1. */
int db_conn_query(struct db_conn *c, const char *sql, int nparams,
                  const char *const *params, db_cb cb, void *arg);

/* Ends setup: <ok> puts <c> in service, otherwise it is dropped and retried
 * after a backoff. A no-op if <c> was lost meanwhile (its query then reported
 * DB_UNAVAILABLE). */
void db_conn_ready(struct db_conn *c, bool ok);

/* Results. */
enum db_status db_status(const struct db_result *r);
/* The SQLSTATE of a DB_FAILED result ("23505"), else "". */
const char *db_sqlstate(const struct db_result *r);
/* The server's or the pool's message, for logs only. */
const char *db_message(const struct db_result *r);
int db_nrows(const struct db_result *r);
/* Text of a value, or NULL for SQL NULL or out of range. */
const char *db_value(const struct db_result *r, int row, int col);

#define DB_UNIQUE_VIOLATION "23505"
#define DB_FOREIGN_KEY_VIOLATION "23503"
#define DB_CHECK_VIOLATION "23514"

#endif
