/* PostgreSQL connection pool on libevent: see db.h. */
#include "db.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <libpq-fe.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/metrics.h"

#define MAX_CONNECTIONS 64
#define MAX_PARAMS 16

enum conn_state {
    C_WAITING,      /* backoff before the next attempt */
    C_RESOLVING,    /* evdns */
    C_CONNECTING,   /* PQconnectPoll steps */
    C_SETUP,        /* the setup hook runs its queries */
    C_IDLE,
    C_BUSY,
};

struct query {
    struct db *db;
    const char *sql;
    int nparams;
    char **params;          /* owned copies; NULL elements are SQL NULLs */
    bool multi;             /* several statements, no parameters (PQsendQuery) */
    db_cb cb;
    void *arg;
    struct event *timer;    /* the deadline */
    int64_t started_us;
    struct db_conn *conn;   /* while running */
    TAILQ_ENTRY(query) link;
};

struct db_conn {
    struct db *db;
    int index;
    enum conn_state state;
    PGconn *pg;
    struct event *io;       /* the socket; re-assigned at each connect step */
    int io_fd;              /* what <io> watches now: fd (-1: nothing), events */
    short io_what;
    struct event *timer;    /* connect timeout, then backoff */
    int backoff_ms;
    unsigned failures;      /* in a row; picks the next resolved address */
    struct evdns_getaddrinfo_request *dnsreq;
    struct query *q;        /* running */
    PGresult *keep;         /* the result to deliver when <q> completes */
    bool flushing;          /* PQflush has more to write */
    char last_error[200];   /* to log a repeated failure only once */
};

struct db_result {
    enum db_status status;
    const PGresult *res;
    const char *msg;
};

enum { M_UP, M_CONNS, M_QUEUE, M_QUERIES, M_DURATION, M_CONNECTS, M_COUNT };
static const struct metric_def db_metric_defs[] = {
    { "sluice_api_db_up", METRIC_GAUGE,
      "1 while at least one PostgreSQL connection is usable" },
    { "sluice_api_db_connections", METRIC_GAUGE, "PostgreSQL connections by state",
      { "state" } },
    { "sluice_api_db_queue_depth", METRIC_GAUGE, "Queries waiting for a connection" },
    { "sluice_api_db_queries_total", METRIC_COUNTER, "Queries by result", { "result" } },
    { "sluice_api_db_query_duration_seconds", METRIC_HISTOGRAM,
      "From a query's submission to its result" },
    { "sluice_api_db_connects_total", METRIC_COUNTER,
      "Connection attempts by result", { "result" } },
    { NULL },
};

struct db {
    struct event_base *base;
    struct evdns_base *dns;
    struct db_options o;
    char *url;
    char *resolve_host;     /* a name to resolve with evdns, or NULL */
    bool gssenc_given;      /* the URL sets gssencmode itself */
    char target[160];       /* "host:port/db", for logs */
    struct db_conn conns[MAX_CONNECTIONS];
    unsigned nconns;
    TAILQ_HEAD(, query) queue;
    unsigned queued;
    unsigned nready;
    bool up, freeing;
    char state_text[200];
    struct event *pump_ev;  /* sends queued queries from the loop */
    db_state_cb state_cb;
    void *state_arg;
    struct metric *m[M_COUNT];
};

static void conn_start(struct db_conn *c);
static void conn_fail(struct db_conn *c, const char *why);
static void pump(struct db *db);

/* ---- results ------------------------------------------------------------ */

enum db_status db_status(const struct db_result *r) { return r->status; }

const char *db_sqlstate(const struct db_result *r)
{
    const char *s = r->res ? PQresultErrorField(r->res, PG_DIAG_SQLSTATE) : NULL;
    return r->status == DB_FAILED && s ? s : "";
}

const char *db_message(const struct db_result *r) { return r->msg ? r->msg : ""; }

int db_nrows(const struct db_result *r)
{
    return r->status == DB_OK && r->res ? PQntuples(r->res) : 0;
}

const char *db_value(const struct db_result *r, int row, int col)
{
    if (r->status != DB_OK || r->res == NULL || row < 0 || row >= PQntuples(r->res) ||
        col < 0 || col >= PQnfields(r->res) || PQgetisnull(r->res, row, col))
        return NULL;
    return PQgetvalue(r->res, row, col);
}

/* ---- helpers ------------------------------------------------------------ */

/* libpq messages end with a newline and may span lines: make them one line. */
static void tidy(char *dst, size_t len, const char *msg)
{
    size_t o = 0;
    for (const char *p = msg ? msg : ""; *p && o + 1 < len; p++)
        dst[o++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

static void metric_count(struct db *db, int family, const char *label)
{
    if (db->m[0])
        metric_add(metric_at(db->m[family], label), 1);
}

static void set_up(struct db *db, bool up)
{
    if (db->up == up)
        return;
    db->up = up;
    if (db->freeing)
        return;
    log_info("postgres %s: %s", db->target, up ? "up" : "down");
    if (db->state_cb)
        db->state_cb(up, db->state_arg);
}

/* Watches the socket of <c> for <what> (EV_READ, EV_WRITE). */
static void watch(struct db_conn *c, short what);

/* ---- queries ------------------------------------------------------------ */

static void query_free(struct query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    if (q->timer)
        event_free(q->timer);
    free(q);
}

/* Calls the query's callback with <res> and frees it. */
static void deliver(struct query *q, const struct db_result *res)
{
    struct db *db = q->db;
    static const char *const label[] = { "ok", "failed", "unavailable" };
    metric_count(db, M_QUERIES, label[res->status]);
    if (db->m[0])
        metric_observe(metric_at(db->m[M_DURATION]),
                       (double)(clock_mono_us() - q->started_us) / 1e6);
    q->cb(res, q->arg);
    query_free(q);
}

static void fail_query(struct query *q, const char *why)
{
    struct db_result r = { .status = DB_UNAVAILABLE, .msg = why };
    deliver(q, &r);
}

static void on_query_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct query *q = arg;
    struct db *db = q->db;
    if (q->conn == NULL) {
        TAILQ_REMOVE(&db->queue, q, link);
        db->queued--;
        log_warn("postgres %s: a query waited too long for a connection", db->target);
    } else {
        struct db_conn *c = q->conn;
        c->q = NULL;          /* detach, so that dropping the connection spares it */
        q->conn = NULL;
        conn_fail(c, "query timeout");
    }
    fail_query(q, "timeout");
}

static struct query *query_new(struct db *db, const char *sql, int nparams,
                               const char *const *params, db_cb cb, void *arg)
{
    if (nparams < 0 || nparams > MAX_PARAMS)
        return NULL;
    struct query *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->db = db;
    q->sql = sql;
    q->multi = params == NULL;
    q->cb = cb;
    q->arg = arg;
    q->started_us = clock_mono_us();
    q->timer = evtimer_new(db->base, on_query_timeout, q);
    q->params = nparams ? calloc((size_t)nparams, sizeof(char *)) : NULL;
    if (q->timer == NULL || (nparams && q->params == NULL))
        goto out_free_query;
    for (; q->nparams < nparams; q->nparams++) {
        const char *p = params[q->nparams];
        if (p != NULL && (q->params[q->nparams] = strdup(p)) == NULL)
            goto out_free_query;
    }
    struct timeval tv = clock_tv_ms(db->o.query_timeout_ms);
    evtimer_add(q->timer, &tv);
    return q;
out_free_query:
    query_free(q);
    return NULL;
}

/* Sends <q> on <c>. Returns 0, or -1 if libpq refused (the connection is then
 * broken; <q> was not sent and is left to the caller). */
static int conn_send(struct db_conn *c, struct query *q)
{
    int ok = q->multi ? PQsendQuery(c->pg, q->sql)
                      : PQsendQueryParams(c->pg, q->sql, q->nparams, NULL,
                                          (const char *const *)q->params, NULL, NULL, 0);
    if (!ok)
        return -1;
    c->q = q;
    q->conn = c;
    if (c->state == C_IDLE)
        c->state = C_BUSY;
    /* On -1, keep "flushing": the broken socket wakes on_io at once, whose
     * PQflush fails again and drops the connection, from the loop rather than
     * from inside db_query()'s caller. */
    c->flushing = PQflush(c->pg) != 0;
    watch(c, (short)(EV_READ | (c->flushing ? EV_WRITE : 0)));
    return 0;
}

/* Fails every queued query (the pool went down, or is being freed). */
static void fail_queue(struct db *db, const char *why)
{
    struct query *q;
    while ((q = TAILQ_FIRST(&db->queue)) != NULL) {
        TAILQ_REMOVE(&db->queue, q, link);
        db->queued--;
        fail_query(q, why);
    }
}

static struct db_conn *idle_conn(struct db *db)
{
    for (unsigned i = 0; i < db->nconns; i++) {
        if (db->conns[i].state == C_IDLE)
            return &db->conns[i];
    }
    return NULL;
}

static void pump(struct db *db)
{
    struct db_conn *c;
    struct query *q;
    while ((q = TAILQ_FIRST(&db->queue)) != NULL && (c = idle_conn(db)) != NULL) {
        TAILQ_REMOVE(&db->queue, q, link);
        db->queued--;
        if (conn_send(c, q) == -1) {
            TAILQ_INSERT_HEAD(&db->queue, q, link);
            db->queued++;
            conn_fail(c, PQerrorMessage(c->pg));
        }
    }
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

int db_query(struct db *db, const char *sql, int nparams, const char *const *params,
             db_cb cb, void *arg)
{
    if (db->freeing || !db->up || db->queued >= db->o.max_queue || params == NULL)
        return -1;
    struct query *q = query_new(db, sql, nparams, params, cb, arg);
    if (q == NULL)
        return -1;
    TAILQ_INSERT_TAIL(&db->queue, q, link);
    db->queued++;
    /* sent from the loop, so that <cb> never runs inside this call */
    event_active(db->pump_ev, EV_TIMEOUT, 0);
    return 0;
}

int db_conn_query(struct db_conn *c, const char *sql, int nparams,
                  const char *const *params, db_cb cb, void *arg)
{
    if (c->db->freeing || c->state != C_SETUP || c->q != NULL)
        return -1;
    struct query *q = query_new(c->db, sql, nparams, params, cb, arg);
    if (q == NULL)
        return -1;
    if (conn_send(c, q) == -1) {
        query_free(q);
        return -1;
    }
    return 0;
}

/* ---- results arriving --------------------------------------------------- */

static bool result_failed(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY;
}

/* Keeps the first error, or else the last result. */
static void absorb(struct db_conn *c, PGresult *r)
{
    if (c->keep != NULL && result_failed(c->keep)) {
        PQclear(r);
        return;
    }
    PQclear(c->keep);
    c->keep = r;
}

static void complete(struct db_conn *c)
{
    struct query *q = c->q;
    PGresult *res = c->keep;
    char msg[200] = "";
    c->q = NULL;
    c->keep = NULL;
    q->conn = NULL;
    if (c->state == C_BUSY)
        c->state = C_IDLE;
    watch(c, EV_READ);
    struct db_result r = { .status = DB_OK, .res = res };
    if (res == NULL || result_failed(res)) {
        tidy(msg, sizeof(msg), res ? PQresultErrorMessage(res) : "no result");
        r.status = DB_FAILED;
        r.msg = msg;
    }
    deliver(q, &r);
    PQclear(res);
    pump(c->db);
}

/* Reads what arrived and completes the running query once libpq has it all. */
static void conn_read(struct db_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL)
        PQfreemem(n);
    if (c->q == NULL) {
        if (PQstatus(c->pg) == CONNECTION_BAD)
            conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            complete(c);
            return;
        }
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_COPY_IN || s == PGRES_COPY_OUT || s == PGRES_COPY_BOTH) {
            PQclear(r);   /* we never COPY: a protocol state we cannot leave */
            conn_fail(c, "unexpected COPY state");
            return;
        }
        absorb(c, r);
    }
}

static void conn_flush(struct db_conn *c)
{
    int rc = PQflush(c->pg);
    if (rc == -1) {
        conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    if (c->flushing != (rc == 1)) {
        c->flushing = rc == 1;
        watch(c, (short)(EV_READ | (c->flushing ? EV_WRITE : 0)));
    }
}

/* ---- connecting --------------------------------------------------------- */

static void on_notice(void *arg, const char *message)
{
    struct db_conn *c = arg;
    char msg[200];
    tidy(msg, sizeof(msg), message);
    log_debug("postgres %s [%d]: %s", c->db->target, c->index, msg);
}

static void connected(struct db_conn *c)
{
    struct db *db = c->db;
    evtimer_del(c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0) {
        conn_fail(c, "cannot make the connection non-blocking");
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, c);
    metric_count(db, M_CONNECTS, "ok");
    log_debug("postgres %s [%d]: connected", db->target, c->index);
    c->state = C_SETUP;
    watch(c, EV_READ);
    if (db->o.setup)
        db->o.setup(c, db->o.setup_arg);
    else
        db_conn_ready(c, true);
}

static void connect_step(struct db_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        watch(c, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        watch(c, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        connected(c);
        break;
    default:
        conn_fail(c, PQerrorMessage(c->pg));
        break;
    }
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct db_conn *c = arg;
    if (c->state == C_CONNECTING) {
        connect_step(c);
        return;
    }
    if ((what & EV_WRITE) && c->flushing) {
        conn_flush(c);
        if (c->pg == NULL)
            return;
    }
    if (what & EV_READ) {
        conn_read(c);
        if (c->pg != NULL && c->q != NULL && c->flushing)
            conn_flush(c);   /* libpq: after reading, flush again */
    }
}

/* While connecting, libpq may close its socket and open another (the next
 * address, SSL fallback), possibly under the same number, which epoll would
 * have forgotten: re-register at every step. Once connected the socket stays,
 * so a query that wants what is already watched (reading, nearly always)
 * costs no epoll_ctl. */
static void watch(struct db_conn *c, short what)
{
    int fd = c->pg ? PQsocket(c->pg) : -1;
    if (fd >= 0 && c->state != C_CONNECTING && fd == c->io_fd && what == c->io_what)
        return;
    event_del(c->io);
    c->io_fd = -1;
    if (fd < 0) {
        conn_fail(c, "no socket");
        return;
    }
    event_assign(c->io, c->db->base, fd, (short)(what | EV_PERSIST), on_io, c);
    event_add(c->io, NULL);
    c->io_fd = fd;
    c->io_what = what;
}

static void connect_to(struct db_conn *c, const char *hostaddr)
{
    struct db *db = c->db;
    const char *kw[8], *val[8];
    int n = 0;
    kw[n] = "dbname", val[n++] = db->url;   /* expanded: the whole URL */
    if (hostaddr)
        kw[n] = "hostaddr", val[n++] = hostaddr;
    kw[n] = "fallback_application_name", val[n++] = "sluice-api";
    kw[n] = "client_encoding", val[n++] = "UTF8";
    if (!db->gssenc_given)   /* probing Kerberos caches may block: opt-in only */
        kw[n] = "gssencmode", val[n++] = "disable";
    kw[n] = NULL, val[n] = NULL;
    c->pg = PQconnectStartParams(kw, val, 1);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        conn_fail(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    c->state = C_CONNECTING;
    struct timeval tv = clock_tv_ms(db->o.connect_timeout_ms);
    evtimer_add(c->timer, &tv);
    watch(c, EV_WRITE);   /* libpq: poll as if PGRES_POLLING_WRITING came first */
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct db_conn *c = arg;
    c->dnsreq = NULL;
    if (result == EVUTIL_EAI_CANCEL)
        return;
    if (result != 0 || res == NULL) {
        char why[160];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", c->db->resolve_host,
                 evutil_gai_strerror(result));
        conn_fail(c, why);
        return;
    }
    /* after each failed attempt, the next address (a name may have several,
     * "localhost" an IPv6 one the server does not listen on) */
    unsigned n = 0;
    for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
        n++;
    struct evutil_addrinfo *pick = res;
    for (unsigned i = c->failures % n; i > 0; i--)
        pick = pick->ai_next;
    char ip[INET6_ADDRSTRLEN];
    const void *a = pick->ai_family == AF_INET6
        ? (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr
        : (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr;
    evutil_inet_ntop(pick->ai_family, a, ip, sizeof(ip));
    evutil_freeaddrinfo(res);
    connect_to(c, ip);
}

static void conn_start(struct db_conn *c)
{
    struct db *db = c->db;
    if (db->resolve_host == NULL) {
        connect_to(c, NULL);
        return;
    }
    c->state = C_RESOLVING;
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct evdns_getaddrinfo_request *r =
        evdns_getaddrinfo(db->dns, db->resolve_host, NULL, &hints, on_resolved, c);
    if (c->state == C_RESOLVING && c->pg == NULL)   /* not answered synchronously */
        c->dnsreq = r;
}

/* The connect timeout, or the end of a backoff. */
static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct db_conn *c = arg;
    if (c->state == C_WAITING)
        conn_start(c);
    else
        conn_fail(c, "connect timeout");
}

/* Counts and logs a failure of <c> (a repeated one only once) and keeps it as
 * the pool's reason for /readyz. */
static void note_failure(struct db_conn *c, const char *msg, bool was_ready)
{
    struct db *db = c->db;
    if (c->state == C_CONNECTING || c->state == C_RESOLVING) {
        metric_count(db, M_CONNECTS, "failed");
        c->failures++;
    }
    if (db->freeing)
        log_debug("postgres %s [%d]: %s", db->target, c->index, msg);
    else if (strcmp(msg, c->last_error) != 0 || was_ready)
        log_warn("postgres %s [%d]: %s", db->target, c->index, msg);
    snprintf(c->last_error, sizeof(c->last_error), "%s", msg);
    if (db->nready == 0 || was_ready)
        snprintf(db->state_text, sizeof(db->state_text), "%s", msg);
}

/* Releases what <c> holds on the server side: lookup, socket, results. */
static void conn_close(struct db_conn *c)
{
    if (c->dnsreq) {
        evdns_getaddrinfo_cancel(c->dnsreq);
        c->dnsreq = NULL;
    }
    event_del(c->io);
    c->io_fd = -1;
    evtimer_del(c->timer);
    PQclear(c->keep);
    c->keep = NULL;
    c->flushing = false;
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
}

/* Drops the connection (failing its running query) and retries later. */
static void conn_fail(struct db_conn *c, const char *why)
{
    struct db *db = c->db;
    char msg[200];
    tidy(msg, sizeof(msg), why);   /* <why> may live in the PGconn we free */
    bool was_ready = c->state == C_IDLE || c->state == C_BUSY;
    note_failure(c, msg, was_ready);
    struct query *q = c->q;
    c->q = NULL;
    conn_close(c);
    c->state = C_WAITING;
    struct timeval tv = clock_tv_ms(c->backoff_ms);
    if (!db->freeing)
        evtimer_add(c->timer, &tv);
    c->backoff_ms = c->backoff_ms * 2 > db->o.backoff_max_ms ? db->o.backoff_max_ms
                                                             : c->backoff_ms * 2;
    if (q) {
        q->conn = NULL;
        fail_query(q, "connection lost");
    }
    if (was_ready && --db->nready == 0) {
        set_up(db, false);
        fail_queue(db, "database unavailable");
    }
}

void db_conn_ready(struct db_conn *c, bool ok)
{
    struct db *db = c->db;
    if (c->state != C_SETUP || c->q != NULL)
        return;
    if (!ok) {
        conn_fail(c, "connection setup failed");
        return;
    }
    c->state = C_IDLE;
    c->backoff_ms = db->o.backoff_min_ms;
    c->failures = 0;
    c->last_error[0] = '\0';
    db->nready++;
    set_up(db, true);
    pump(db);
}

/* ---- the pool ----------------------------------------------------------- */

static void on_collect(void *arg)
{
    struct db *db = arg;
    unsigned ready = 0, connecting = 0, down = 0;
    for (unsigned i = 0; i < db->nconns; i++) {
        switch (db->conns[i].state) {
        case C_IDLE: case C_BUSY: ready++; break;
        case C_WAITING: down++; break;
        default: connecting++; break;
        }
    }
    metric_set(metric_at(db->m[M_UP]), db->up);
    metric_set(metric_at(db->m[M_CONNS], "ready"), ready);
    metric_set(metric_at(db->m[M_CONNS], "connecting"), connecting);
    metric_set(metric_at(db->m[M_CONNS], "down"), down);
    metric_set(metric_at(db->m[M_QUEUE]), db->queued);
}

static bool is_ip(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Reads the URL: where to connect, and whether evdns must resolve it. */
static int parse_url(struct db *db, char **err)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(db->url, &perr);
    if (opts == NULL) {
        char msg[200];
        tidy(msg, sizeof(msg), perr ? perr : "out of memory");
        if (asprintf(err, "database-url: %s", msg) == -1)
            *err = NULL;
        PQfreemem(perr);
        return -1;
    }
    const char *host = "", *hostaddr = "", *port = "5432", *dbname = "";
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = o->val && o->val[0] ? o->val : NULL;
        if (v == NULL)
            continue;
        if (strcmp(o->keyword, "host") == 0) host = v;
        else if (strcmp(o->keyword, "hostaddr") == 0) hostaddr = v;
        else if (strcmp(o->keyword, "port") == 0) port = v;
        else if (strcmp(o->keyword, "dbname") == 0) dbname = v;
        else if (strcmp(o->keyword, "gssencmode") == 0) db->gssenc_given = true;
    }
    int rc = 0;
    snprintf(db->target, sizeof(db->target), "%s:%s/%s",
             host[0] ? host : (hostaddr[0] ? hostaddr : "(socket)"), port, dbname);
    if (!hostaddr[0] && strchr(host, ',') != NULL) {
        rc = -1;
        *err = strdup("database-url: several hosts need their addresses in hostaddr "
                      "(names would be resolved by a blocking call)");
    } else if (!hostaddr[0] && host[0] && host[0] != '/' && host[0] != '@' && !is_ip(host)) {
        db->resolve_host = strdup(host);
        rc = db->resolve_host ? 0 : -1;
    }
    PQconninfoFree(opts);
    return rc;
}

static void set_defaults(struct db_options *o)
{
    if (!o->connections) o->connections = 4;
    if (o->connections > MAX_CONNECTIONS) o->connections = MAX_CONNECTIONS;
    if (!o->max_queue) o->max_queue = 256;
    if (!o->query_timeout_ms) o->query_timeout_ms = 5000;
    if (!o->connect_timeout_ms) o->connect_timeout_ms = 5000;
    if (!o->backoff_min_ms) o->backoff_min_ms = 100;
    if (!o->backoff_max_ms) o->backoff_max_ms = 5000;
}

static int conn_init(struct db *db, struct db_conn *c)
{
    c->db = db;
    c->index = (int)(c - db->conns);
    c->state = C_WAITING;
    c->backoff_ms = db->o.backoff_min_ms;
    c->io = event_new(db->base, -1, 0, on_io, c);
    c->io_fd = -1;
    c->timer = evtimer_new(db->base, on_conn_timer, c);
    return c->io && c->timer ? 0 : -1;
}

struct db *db_new(struct event_base *base, struct evdns_base *dns,
                  const struct db_options *opts, char **err)
{
    struct db *db = calloc(1, sizeof(*db));
    *err = NULL;
    if (db == NULL || (db->url = strdup(opts->url ? opts->url : "")) == NULL)
        goto out_free_db;
    db->base = base;
    db->dns = dns;
    db->o = *opts;
    db->o.url = NULL;
    set_defaults(&db->o);
    TAILQ_INIT(&db->queue);
    snprintf(db->state_text, sizeof(db->state_text), "connecting");
    if (parse_url(db, err) == -1)
        goto out_free_db;
    if ((db->pump_ev = event_new(base, -1, 0, on_pump, db)) == NULL)
        goto out_free_db;
    if (db->o.metrics && metrics_register(db->o.metrics, db_metric_defs, db->m) == 0)
        metrics_on_collect(db->o.metrics, on_collect, db);
    while (db->nconns < db->o.connections) {
        if (conn_init(db, &db->conns[db->nconns++]) == -1)
            goto out_free_db;
    }
    log_info("postgres %s: %u connections", db->target, db->nconns);
    for (unsigned i = 0; i < db->nconns; i++)
        conn_start(&db->conns[i]);
    return db;
out_free_db:
    if (*err == NULL)
        *err = strdup("out of memory");
    db_free(db);
    return NULL;
}

void db_free(struct db *db)
{
    if (db == NULL)
        return;
    db->freeing = true;
    for (unsigned i = 0; i < db->nconns; i++) {
        struct db_conn *c = &db->conns[i];
        if (c->io && c->timer)
            conn_fail(c, "shutting down");
    }
    fail_queue(db, "shutting down");
    for (unsigned i = 0; i < db->nconns; i++) {
        if (db->conns[i].io)
            event_free(db->conns[i].io);
        if (db->conns[i].timer)
            event_free(db->conns[i].timer);
    }
    if (db->pump_ev)
        event_free(db->pump_ev);
    free(db->resolve_host);
    free(db->url);
    free(db);
}

void db_set_state_cb(struct db *db, db_state_cb cb, void *arg)
{
    db->state_cb = cb;
    db->state_arg = arg;
}

bool db_is_up(const struct db *db)
{
    return db->up;
}

const char *db_state_text(const struct db *db)
{
    return db->up ? "ok" : db->state_text;
}
