/* The viewer port's connections: accepting, reading, parsing, writing. See
 * server.h; replies are rendered in reply.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "server_int.h"
#include "sluice/clock.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/net.h"

#define IN_FIRST 2048                    /* first size of a connection's input buffer */
#define IN_MAX (HTTP1_MAX_HEAD + 1)      /* enough to tell a head over the limit */
#define BATCH 64                         /* pipelined requests per turn of the loop */
#define OUT_HIGH (1 << 20)               /* write before parsing more past this */
#define IOV_MAX_WRITE 64                 /* buffers per writev */

/* ---- connections ---------------------------------------------------------- */

static void set_accepting(struct edge_server *s, bool on)
{
    if (s->listener == NULL)
        return;
    if (on)
        evconnlistener_enable(s->listener);
    else
        evconnlistener_disable(s->listener);
    s->paused = !on;
}

static void conn_free(struct edge_conn *c)
{
    evbuffer_free(c->out);
    free(c->in);
    free(c);
}

/* Closes the socket; the connection itself goes once no request waits on it
 * and conn_run() is not on the stack. */
static void conn_close(struct edge_conn *c)
{
    struct edge_server *s = c->s;
    if (c->closed)
        return;
    c->closed = true;
    event_free(c->ev);
    c->ev = NULL;
    event_free(c->head_timer);
    c->head_timer = NULL;
    c->head_timer_on = false;
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    metric_set(s->conns_gauge, s->nconns);
    if (s->paused && !s->stopping && s->nconns < s->max_conns) {
        log_info("http edge: %u connections, accepting again", s->nconns);
        set_accepting(s, true);
    }
    if (!c->waiting && !c->in_run)
        conn_free(c);
}

void conn_answered(struct edge_conn *c)
{
    c->waiting = false;
    c->inpos += c->consumed;
    c->consumed = 0;
    c->s->npending--;
    if (c->in_run)
        return;
    if (c->closed)
        conn_free(c);
    else
        event_active(c->ev, EV_WRITE, 0);   /* write it, then the next request */
}

/* ---- the head deadline ---------------------------------------------------- */

/* Starts the head deadline unless it runs already. Bytes that come later never
 * push it back: the idle timeout is pushed back by every byte, which is what a
 * client dripping its head a byte at a time counts on (see server.h). */
static void head_deadline_start(struct edge_conn *c)
{
    if (c->head_timer_on || evtimer_add(c->head_timer, c->s->head_timeout) == -1)
        return;
    c->head_timer_on = true;
    c->head_since_us = clock_mono_us();
}

static void head_deadline_stop(struct edge_conn *c)
{
    if (!c->head_timer_on)
        return;
    evtimer_del(c->head_timer);
    c->head_timer_on = false;
}

/* ---- reading and writing -------------------------------------------------- */

/* Reads what the socket has, once (edge-triggered: a short read means it is
 * drained). Returns 1 with new bytes, 0 with none for now, -1 at EOF or on an
 * error. */
static int conn_read(struct edge_conn *c)
{
    if (!c->readable)
        return 0;
    if (c->inpos == c->inlen) {
        c->inpos = c->inlen = 0;
    } else if (c->inpos > 0) {
        memmove(c->in, c->in + c->inpos, c->inlen - c->inpos);
        c->inlen -= c->inpos;
        c->inpos = 0;
    }
    if (c->inlen == c->incap) {
        size_t cap = c->incap * 2 < IN_MAX ? c->incap * 2 : IN_MAX;
        char *grown = cap > c->incap ? realloc(c->in, cap) : NULL;
        if (grown == NULL)
            return 0;   /* full: the parser answers 414 or 431 */
        c->in = grown;
        c->incap = cap;
    }
    size_t room = c->incap - c->inlen;
    ssize_t n;
    do {
        n = read(c->fd, c->in + c->inlen, room);
    } while (n == -1 && errno == EINTR);
    if (n > 0) {
        c->inlen += (size_t)n;
        c->readable = (size_t)n == room;
        return 1;
    }
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->readable = false;
        return 0;
    }
    return -1;
}

/* Writes what is queued, with writev. Returns 0 (written, or the socket is
 * full for now) or -1 on an error. */
static int conn_flush(struct edge_conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        struct evbuffer_iovec v[IOV_MAX_WRITE];   /* laid out as struct iovec */
        _Static_assert(sizeof(v[0]) == sizeof(struct iovec), "evbuffer_iovec");
        int nv = evbuffer_peek(c->out, -1, NULL, v, IOV_MAX_WRITE);
        nv = nv < IOV_MAX_WRITE ? nv : IOV_MAX_WRITE;
        size_t tried = 0;
        for (int i = 0; i < nv; i++)
            tried += v[i].iov_len;
        ssize_t n = writev(c->fd, (const struct iovec *)v, nv);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        evbuffer_drain(c->out, (size_t)n);
        if ((size_t)n < tried)
            return 0;   /* a short write: the socket is full, EPOLLOUT will say when not */
    }
    return 0;
}

#define LINGER_MAX (1 << 20)   /* bytes dropped before giving up on a peer */

/* After an answer that closes a connection with bytes still coming (a body,
 * a refused head): stops writing, then reads and drops until the peer closes,
 * for at most one head deadline. Returns 0 to wait for more, -1 to close now. */
static int conn_linger(struct edge_conn *c)
{
    if (!c->lingering) {
        c->lingering = true;
        head_deadline_start(c);   /* the bound: a peer dripping bytes keeps the idle
                                   * timer alive for ever */
        if (shutdown(c->fd, SHUT_WR) == -1)
            return -1;
    }
    for (;;) {
        ssize_t n = read(c->fd, c->in, c->incap);
        if (n > 0 && (c->dropped += (size_t)n) <= LINGER_MAX)
            continue;
        if (n == -1 && errno == EINTR)
            continue;
        return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
}

/* ---- requests ------------------------------------------------------------- */

static void request_start(struct edge_conn *c, size_t consumed)
{
    struct edge_req *req = &c->req;
    req->hdrs_len = 0;
    req->route = ER_UNMATCHED;
    req->param = NULL;
    req->started_us = clock_mono_us();
    head_deadline_stop(c);
    c->consumed = consumed;
    c->waiting = true;
    c->s->npending++;
}

/* An answer of the server's own. */
static void own_error(struct edge_req *req, int status, const char *code, const char *message)
{
    edge_req_add_header(req, "Cache-Control", "no-store");
    edge_reply_error(req, status, code, message);
}

/* Starts a request of the server's own, with no head of the client's to go
 * by: the connection closes after its answer, and gets one head deadline to
 * have it written and see the peer go. */
static struct edge_req *own_request(struct edge_conn *c)
{
    request_start(c, 0);
    c->req.head = (struct http1_request){ .minor = 1, .method = HTTP1_GET };
    c->req.method = HTTP1_GET;
    c->close_after = true;
    c->drain = true;
    head_deadline_start(c);
    return &c->req;
}

/* Answers a head the parser refused, and closes after. */
static void bad_head(struct edge_conn *c, int status)
{
    static const struct { int status; const char *code, *message; } why[] = {
        { 414, "uri_too_long", "the request line is too long" },
        { 431, "headers_too_large", "the request head is too large" },
        { 505, "version_not_supported", "only HTTP/1.0 and HTTP/1.1" },
    };
    struct edge_req *req = own_request(c);
    for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
        if (why[i].status == status) {
            own_error(req, status, why[i].code, why[i].message);
            return;
        }
    }
    own_error(req, 400, "bad_request", "malformed request");
}

#define TIMEOUT_LOGS_PER_SEC 10

/* Whether one more head timeout may be logged this second. Slowloris comes
 * with thousands of connections; a line each would flood the log. */
static bool timeout_log_allowed(struct edge_server *s)
{
    int64_t now = clock_mono_ms();
    if (now - s->log_window_ms >= 1000) {
        if (s->log_suppressed > 0)
            log_info("http edge: %u more head timeouts (not logged one by one)",
                     s->log_suppressed);
        s->log_window_ms = now;
        s->log_count = s->log_suppressed = 0;
    }
    if (++s->log_count <= TIMEOUT_LOGS_PER_SEC)
        return true;
    s->log_suppressed++;
    return false;
}

static void head_timeout_log(struct edge_conn *c)
{
    size_t n = c->inlen - c->inpos;
    long long ms = (long long)c->s->head_timeout_ms;
    char text[80];
    if (log_min_level > LOGL_INFO || !timeout_log_allowed(c->s))
        return;
    if (n == 0)
        log_info("http edge: %s sent no request within %lld ms of connecting: closed",
                 c->peer, ms);
    else
        log_info("http edge: %s sent %zu bytes of a request head in %lld ms (\"%s\"): %s",
                 c->peer, n, ms, log_escape(text, sizeof(text), c->in + c->inpos, n),
                 evbuffer_get_length(c->out) > 0 ? "closing after the replies before it"
                                                 : "408");
}

/* The head deadline passed with the head not whole (while a head is whole, or
 * a request waits for its reply, the deadline is off). */
static void head_timed_out(struct edge_conn *c)
{
    metric_add(c->s->head_timeouts, 1);
    head_timeout_log(c);
    if (c->inlen == c->inpos) {
        conn_close(c);   /* nothing to answer: a preconnection, or a slot held */
        return;
    }
    c->inpos = c->inlen;   /* what came of the head is dropped */
    if (evbuffer_get_length(c->out) > 0) {
        c->close_after = true;   /* no 408 amid replies a slow reader still owes us */
        c->drain = true;
        head_deadline_start(c);
        event_active(c->ev, EV_WRITE, 0);
        return;
    }
    int64_t since = c->head_since_us;
    struct edge_req *req = own_request(c);
    req->started_us = since;   /* its latency is the time the head had */
    own_error(req, 408, "request_timeout", "the request head did not arrive in time");
}

/* The head deadline of <c>, or its bound on a goodbye, passed. */
static void on_head_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct edge_conn *c = arg;
    c->head_timer_on = false;
    if (c->close_after)
        conn_close(c);   /* it had its answer and its time to go */
    else if (!c->waiting)
        head_timed_out(c);
}

/* The route of a decoded path: anything under "/live/" or "/vod/", even an
 * empty name ("/live//index.m3u8"), which the handler refuses as a bad path
 * (400): the request is for a stream, only its name is wrong. */
static enum edge_route route_of(const char *path, const char **param)
{
    if (strncmp(path, "/live/", 6) == 0) {
        *param = path + 6;
        return ER_LIVE;
    }
    if (strncmp(path, "/vod/", 5) == 0) {
        *param = path + 5;
        return ER_VOD;
    }
    return ER_UNMATCHED;
}

static void dispatch(struct edge_conn *c, size_t headlen)
{
    struct edge_req *req = &c->req;
    request_start(c, headlen);
    req->method = req->head.method;
    c->drain = req->head.has_body;
    for (size_t i = 0; i < req->head.nheaders; i++) {   /* values end in CR, LF or OWS */
        struct http1_header *h = &req->head.headers[i];
        ((char *)h->value)[h->value_len] = '\0';
    }
    if (http1_path_decode(req->head.target, req->head.target_len, req->path,
                          sizeof(req->path), EDGE_MAX_PATH, EDGE_MAX_SEGMENTS) == -1) {
        own_error(req, 400, "bad_path", "malformed or disallowed request path");
        return;
    }
    enum edge_route route = route_of(req->path, &req->param);
    if (route == ER_UNMATCHED) {
        own_error(req, 404, "not_found", "no such resource");
        return;
    }
    if (req->head.method == HTTP1_OTHER) {
        edge_req_add_header(req, "Allow", "GET, HEAD, OPTIONS");
        own_error(req, 405, "method_not_allowed", "method not allowed here");
        return;
    }
    req->route = route;
    c->s->handler(req);
}

/* Parses and answers what has arrived, reads more, writes: until the socket
 * has nothing more for now, a request waits for its reply, or the replies wait
 * for the socket to take them. */
static void conn_run(struct edge_conn *c)
{
    int served = 0;
    c->in_run = true;
    while (!c->closed && !c->waiting) {
        if (c->close_after) {
            if (conn_flush(c) == -1)
                conn_close(c);
            else if (evbuffer_get_length(c->out) == 0 &&
                     ((!c->drain && c->inlen == c->inpos) || conn_linger(c) == -1))
                conn_close(c);
            break;
        }
        int rc = 0;
        if (c->inlen > c->inpos && evbuffer_get_length(c->out) < OUT_HIGH) {
            rc = http1_parse(c->in + c->inpos, c->inlen - c->inpos, &c->req.head);
            if (rc == 0)
                head_deadline_start(c);   /* the first bytes of a head: the clock runs */
        }
        if (rc > 0 && ++served > BATCH) {
            event_active(c->ev, EV_WRITE, 0);   /* let other connections in */
            break;
        }
        if (rc > 0) {
            dispatch(c, (size_t)rc);
            continue;
        }
        if (rc < 0) {
            bad_head(c, -rc);
            continue;
        }
        if (conn_flush(c) == -1) {
            conn_close(c);
            break;
        }
        if (evbuffer_get_length(c->out) > 0)
            break;   /* wait until the socket takes more */
        int r = conn_read(c);
        if (r == -1)
            conn_close(c);
        if (r != 1)
            break;
    }
    if (c->waiting && !c->closed && conn_flush(c) == -1)
        conn_close(c);
    c->in_run = false;
    if (c->closed && !c->waiting)
        conn_free(c);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct edge_conn *c = arg;
    if (what & EV_TIMEOUT) {
        if (!c->waiting)
            conn_close(c);   /* idle, or the peer stopped reading */
        return;
    }
    if (what & EV_READ)
        c->readable = true;
    conn_run(c);
}

/* ---- accepting ------------------------------------------------------------ */

static void peer_name(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(out, outlen, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, outlen, "[%s]:%u", host, port);
    } else {
        snprintf(out, outlen, "?:0");
    }
}

static struct edge_conn *conn_new(struct edge_server *s, evutil_socket_t fd)
{
    struct edge_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->s = s;
    c->fd = fd;
    c->in = malloc(IN_FIRST);
    c->incap = IN_FIRST;
    c->out = evbuffer_new();
    c->ev = event_new(s->base, fd, EV_READ | EV_WRITE | EV_PERSIST | EV_ET, on_conn_event, c);
    c->head_timer = evtimer_new(s->base, on_head_timer, c);
    c->req.conn_ = c;
    c->req.peer = c->peer;
    c->req.arg = s->arg;
    if (c->in == NULL || c->out == NULL || c->ev == NULL || c->head_timer == NULL ||
        event_add(c->ev, s->timeout) == -1) {
        if (c->head_timer)
            event_free(c->head_timer);
        if (c->ev)
            event_free(c->ev);
        if (c->out)
            evbuffer_free(c->out);
        free(c->in);
        free(c);
        return NULL;
    }
    head_deadline_start(c);   /* the first request's runs from accept */
    return c;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct edge_server *s = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct edge_conn *c = conn_new(s, fd);
    if (c == NULL) {
        log_warn("http edge: out of memory for a connection");
        close(fd);
        return;
    }
    peer_name(sa, c->peer, sizeof(c->peer));
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    metric_set(s->conns_gauge, s->nconns);
    if (s->nconns >= s->max_conns && !s->paused) {
        log_warn("http edge: %u connections, the cap: pausing accept", s->nconns);
        set_accepting(s, false);
    }
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    log_warn("http edge: accept: %s", strerror(errno));
}

/* ---- the server ----------------------------------------------------------- */

struct edge_server *edge_server_new(struct event_base *base,
                                    const struct edge_server_options *opts)
{
    struct edge_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->base = base;
    s->handler = opts->handler;
    s->arg = opts->arg;
    s->max_conns = opts->max_connections ? opts->max_connections : 1024;
    struct timeval tv = clock_tv_ms(opts->timeout_ms ? opts->timeout_ms : 30000);
    s->timeout = event_base_init_common_timeout(base, &tv);
    s->head_timeout_ms = opts->head_timeout_ms ? opts->head_timeout_ms : 10000;
    tv = clock_tv_ms(s->head_timeout_ms);
    s->head_timeout = event_base_init_common_timeout(base, &tv);
    s->head_timeouts = opts->head_timeouts;
    _Static_assert(HTTP_M_COUNT == sizeof(s->m) / sizeof(s->m[0]), "HTTP_M_*");
    if (opts->metrics && metrics_register(opts->metrics, http_metric_table(), s->m) == 0) {
        s->counting = true;
        s->conns_gauge = metric_at(s->m[HTTP_M_CONNECTIONS], "edge");
        for (int r = 0; r < ER_COUNT; r++)
            s->duration[r] = metric_at(s->m[HTTP_M_DURATION], "edge",
                                       r == ER_LIVE ? "live" : r == ER_VOD ? "vod" : "unmatched");
    }
    if (s->timeout == NULL || s->head_timeout == NULL) {
        log_error("http edge: cannot make the connection timeouts");
        free(s);
        return NULL;
    }
    return s;
}

int edge_server_add_header(struct edge_server *s, const char *name, const char *value)
{
    int n = snprintf(s->headers + s->headers_len, sizeof(s->headers) - s->headers_len,
                     "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= sizeof(s->headers) - s->headers_len) {
        s->headers[s->headers_len] = '\0';
        return -1;
    }
    s->headers_len += (size_t)n;
    return 0;
}

int edge_server_listen(struct edge_server *s, const char *addr, char **err)
{
    char host[256], portstr[8];
    int port;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE }, *ai = NULL;
    if (net_split_hostport(addr, host, sizeof(host), &port) == -1) {
        if (asprintf(err, "bad listen address \"%s\" (want host:port)", addr) == -1)
            *err = NULL;
        return -1;
    }
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &ai);
    if (rc != 0) {
        if (asprintf(err, "cannot listen on %s: %s", addr, gai_strerror(rc)) == -1)
            *err = NULL;
        return -1;
    }
    s->listener = evconnlistener_new_bind(s->base, on_accept, s,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                          LEV_OPT_CLOSE_ON_EXEC, SOMAXCONN,
                                          ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (s->listener == NULL) {
        if (asprintf(err, "cannot listen on %s: %s", addr, strerror(errno)) == -1)
            *err = NULL;
        return -1;
    }
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    return 0;
}

int edge_server_port(const struct edge_server *s)
{
    return s->listener ? net_local_port(evconnlistener_get_fd(s->listener)) : 0;
}

void edge_server_stop_accepting(struct edge_server *s)
{
    s->stopping = true;
    if (s->listener)
        evconnlistener_free(s->listener);
    s->listener = NULL;
}

unsigned edge_server_connections(const struct edge_server *s)
{
    return s->nconns;
}

unsigned edge_server_pending(const struct edge_server *s)
{
    return s->npending;
}

void edge_server_free(struct edge_server *s)
{
    if (s == NULL)
        return;
    edge_server_stop_accepting(s);
    while (s->conns) {
        struct edge_conn *c = s->conns;
        if (c->waiting) {
            c->waiting = false;
            s->npending--;
        }
        conn_close(c);
    }
    free(s);
}
