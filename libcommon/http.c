/* HTTP server helper on evhttp: see http.h. */
#include "sluice/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "sluice/clock.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/net.h"

#define MAX_ROUTE_TABLES 8
#define MAX_LISTENERS 4
#define MAX_PATH 2048
#define MAX_SEGMENTS 32
#define MAX_SERVER_HEADERS 8

static const struct metric_def http_metric_defs[] = {
    { "sluice_http_requests_total", METRIC_COUNTER, "HTTP requests answered",
      { "server", "route", "status" } },
    { "sluice_http_request_duration_seconds", METRIC_HISTOGRAM,
      "Time from a request's arrival to its reply", { "server", "route" } },
    { "sluice_http_connections", METRIC_GAUGE, "Open HTTP connections", { "server" } },
    { NULL },
};

struct route_table {
    const struct http_route *routes;
    void *arg;
};

struct http_server {
    struct event_base *base;
    struct evhttp *http;
    char name[32];
    size_t max_body;
    size_t max_write;
    unsigned max_conns;
    unsigned nconns;
    unsigned npending;
    bool paused, closing;
    struct route_table tables[MAX_ROUTE_TABLES];
    size_t ntables;
    struct evhttp_bound_socket *bound[MAX_LISTENERS];
    size_t nbound;
    struct http_request *pending;       /* requests awaiting a reply */
    struct bufferevent **fresh;         /* connections not yet given a closecb */
    size_t nfresh, capfresh;
    struct event *fixup_ev;
    struct metric *m[HTTP_M_COUNT];
    struct metric_series *conns_gauge;
    struct { char *name, *value; } headers[MAX_SERVER_HEADERS];
    size_t nheaders;
    void (*free_cb)(void *);
    void *free_arg;
};

static const unsigned all_methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH;

const struct metric_def *http_metric_table(void)
{
    return http_metric_defs;
}

/* ---- connection counting ------------------------------------------------ */

static void set_listeners(struct http_server *s, bool on)
{
    for (size_t i = 0; i < s->nbound; i++) {
        struct evconnlistener *l = evhttp_bound_socket_get_listener(s->bound[i]);
        if (on)
            evconnlistener_enable(l);
        else
            evconnlistener_disable(l);
    }
    s->paused = !on;
}

static void conn_gone(struct http_server *s)
{
    s->nconns--;
    metric_set(s->conns_gauge, s->nconns);
    if (s->paused && !s->closing && s->nconns < s->max_conns) {
        log_info("http %s: %u connections, accepting again", s->name, s->nconns);
        set_listeners(s, true);
    }
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn_gone(arg);
}

/* evhttp sets each connection's bufferevent callback argument to the
 * connection itself, and bufferevent_free() clears it: so once evhttp has
 * attached a fresh connection, its bufferevent names it, or says it is gone. */
static void attach_closecbs(struct http_server *s)
{
    for (size_t i = 0; i < s->nfresh; i++) {
        void *evcon = NULL;
        bufferevent_getcb(s->fresh[i], NULL, NULL, NULL, &evcon);
        if (evcon != NULL)
            evhttp_connection_set_closecb(evcon, conn_closed, s);
        else
            conn_gone(s);
        bufferevent_decref(s->fresh[i]);
    }
    s->nfresh = 0;
}

static void fixup_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attach_closecbs(arg);
}

static struct bufferevent *new_conn_bev(struct event_base *base, void *arg)
{
    struct http_server *s = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        return NULL;   /* evhttp then makes its own; it goes uncounted */
    if (s->max_write)
        bufferevent_set_max_single_write(bev, s->max_write);
    if (s->nfresh == s->capfresh) {
        size_t cap = s->capfresh ? s->capfresh * 2 : 16;
        struct bufferevent **grown = realloc(s->fresh, cap * sizeof(*grown));
        if (grown == NULL)
            return bev;
        s->fresh = grown;
        s->capfresh = cap;
    }
    bufferevent_incref(bev);   /* keeps it valid until attach_closecbs() */
    s->fresh[s->nfresh++] = bev;
    event_active(s->fixup_ev, EV_TIMEOUT, 0);
    s->nconns++;
    metric_set(s->conns_gauge, s->nconns);
    if (s->nconns >= s->max_conns && !s->paused) {
        log_warn("http %s: %u connections, the cap: pausing accept", s->name, s->nconns);
        set_listeners(s, false);
    }
    return bev;
}

/* ---- routing ------------------------------------------------------------ */

/* Splits the raw <path> into percent-decoded segments. Returns the count, or
 * -1 for a path we refuse: too long or deep, "." or "..", or a segment that
 * decodes to contain '/' or NUL. <store> receives the decoded strings. */
static int split_path(const char *path, char *store, size_t storelen,
                      const char **seg, size_t maxseg)
{
    size_t n = 0, used = 0;
    if (path[0] != '/' || strlen(path) > MAX_PATH)
        return -1;
    const char *p = path + 1;
    while (*p || (n == 0 && p == path + 1)) {
        const char *end = strchrnul(p, '/');
        size_t rawlen = (size_t)(end - p);
        if (n == maxseg || used + rawlen + 1 > storelen)
            return -1;
        size_t declen;
        char *raw = strndup(p, rawlen);
        char *dec = raw ? evhttp_uridecode(raw, 0, &declen) : NULL;
        free(raw);
        if (dec == NULL)
            return -1;
        bool bad = declen != strlen(dec) || strchr(dec, '/') != NULL ||
                   strcmp(dec, ".") == 0 || strcmp(dec, "..") == 0;
        memcpy(store + used, dec, declen + 1);
        free(dec);
        if (bad)
            return -1;
        seg[n++] = store + used;
        used += declen + 1;
        if (*end == '\0')
            break;
        p = end + 1;
        if (*p == '\0') {   /* trailing slash: an empty last segment */
            if (n == maxseg)
                return -1;
            seg[n++] = "";
        }
    }
    return (int)n;
}

/* A capture: segment <first>, and with <rest> every segment after it. */
struct capture {
    int first;
    bool rest;
};

/* Matches <pattern> against the segments; fills <cap>, one per "{}" or "*". */
static bool match(const char *pattern, const char **seg, int nseg,
                  struct capture *cap, int *ncap)
{
    char pat[256];
    snprintf(pat, sizeof(pat), "%s", pattern + 1);
    char *save = NULL, *tok = strtok_r(pat, "/", &save);
    int i = 0;
    *ncap = 0;
    for (; tok != NULL; tok = strtok_r(NULL, "/", &save), i++) {
        bool rest = strcmp(tok, "*") == 0;
        if (i >= nseg)
            return false;
        if (rest || strcmp(tok, "{}") == 0) {
            if (seg[i][0] == '\0' || *ncap == HTTP_MAX_PARAMS)
                return false;
            cap[(*ncap)++] = (struct capture){ i, rest };
            if (rest)
                return true;
        } else if (strcmp(tok, seg[i]) != 0) {
            return false;
        }
    }
    return i == nseg;
}

/* The text of a capture: one segment, or the rest joined by '/'. */
static char *capture_text(const char **seg, int nseg, struct capture c)
{
    if (!c.rest)
        return strdup(seg[c.first]);
    size_t len = 0;
    for (int k = c.first; k < nseg; k++)
        len += strlen(seg[k]) + 1;
    char *out = malloc(len), *o = out;
    if (out == NULL)
        return NULL;
    for (int k = c.first; k < nseg; k++)
        o += sprintf(o, "%s%s", k > c.first ? "/" : "", seg[k]);
    return out;
}

/* Finds the route for the path and fills the captures. Sets *<allow> to the
 * methods of every route whose pattern matches, for a 405. */
static const struct http_route *find_route(struct http_server *s, const char **seg,
                                           int nseg, unsigned method,
                                           struct capture *cap, int *ncap, void **arg,
                                           unsigned *allow)
{
    *allow = 0;
    for (size_t t = 0; t < s->ntables; t++) {
        for (const struct http_route *r = s->tables[t].routes; r->pattern; r++) {
            if (!match(r->pattern, seg, nseg, cap, ncap))
                continue;
            unsigned methods = r->methods | ((r->methods & HTTP_GET) ? HTTP_HEAD : 0);
            *allow |= methods;
            if (methods & method) {
                *arg = s->tables[t].arg;
                return r;
            }
        }
    }
    return NULL;
}

/* ---- requests and replies ----------------------------------------------- */

static const char *route_label(const struct http_request *req)
{
    if (req->route == NULL)
        return "unmatched";
    return req->route->name ? req->route->name : req->route->pattern;
}

static void request_free(struct http_request *req)
{
    struct http_server *s = req->server;
    if (req->prev_)
        req->prev_->next_ = req->next_;
    else
        s->pending = req->next_;
    if (req->next_)
        req->next_->prev_ = req->prev_;
    s->npending--;
    for (size_t i = 0; i < HTTP_MAX_PARAMS; i++)
        free(req->params[i]);
    free(req);
}

static void record(struct http_request *req, int status)
{
    struct http_server *s = req->server;
    if (s->m[0] == NULL)
        return;
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    metric_add(metric_at(s->m[HTTP_M_REQUESTS], s->name, route_label(req), code), 1);
    double secs = (double)(clock_mono_us() - req->started_us) / 1e6;
    metric_observe(metric_at(s->m[HTTP_M_DURATION], s->name, route_label(req)), secs);
}

void http_reply(struct http_request *req, int status, const char *content_type,
                struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req->ev);
    struct http_server *s = req->server;
    for (size_t i = 0; i < s->nheaders; i++)
        evhttp_add_header(h, s->headers[i].name, s->headers[i].value);
    if (content_type != NULL) {
        evhttp_remove_header(h, "Content-Type");
        evhttp_add_header(h, "Content-Type", content_type);
    }
    record(req, status);
    evhttp_send_reply(req->ev, status, NULL, body);
    request_free(req);
}

void http_reply_json(struct http_request *req, int status, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    if (out == NULL || json_to_evbuffer(body, out) == -1) {
        json_decref(body);
        if (out != NULL)   /* libevent 2.1's evbuffer_free(NULL) crashes */
            evbuffer_free(out);
        record(req, 500);
        evhttp_send_error(req->ev, 500, NULL);
        request_free(req);
        return;
    }
    json_decref(body);
    evbuffer_add(out, "\n", 1);
    http_reply(req, status, "application/json", out);
    evbuffer_free(out);
}

void http_error(struct http_request *req, int status, const char *code,
                const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    http_reply_json(req, status, json_pack("{s:s, s:s}", "error", code, "message", msg));
}

void http_header(struct http_request *req, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value);
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

char *http_query_param(const struct http_request *req, const char *key)
{
    if (req->query == NULL)
        return NULL;
    struct evkeyvalq q;
    if (evhttp_parse_query_str(req->query, &q) == -1)
        return NULL;
    const char *v = evhttp_find_header(&q, key);
    char *out = v ? strdup(v) : NULL;
    evhttp_clear_headers(&q);
    return out;
}

json_t *http_read_json(struct http_request *req)
{
    const char *ct = http_request_header(req, "Content-Type");
    if (ct != NULL && strncasecmp(ct, "application/json", 16) != 0) {
        http_error(req, 415, "unsupported_media_type",
                   "the body must be JSON (Content-Type: application/json)");
        return NULL;
    }
    char err[200];
    struct evbuffer *in = evhttp_request_get_input_buffer(req->ev);
    json_t *v = json_parse_evbuffer(in, err, sizeof(err));
    if (v == NULL) {
        http_error(req, 400, "bad_json", "malformed JSON body: %s", err);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_error(req, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return v;
}

/* Answers before any http_request exists (no route, bad path, too large). */
static void early_error(struct http_server *s, struct evhttp_request *ev, int status,
                        const char *code, const char *msg, unsigned allow)
{
    struct http_request tmp = { .ev = ev, .server = s, .started_us = clock_mono_us() };
    struct http_request *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        evhttp_send_error(ev, 503, NULL);
        return;
    }
    *req = tmp;
    req->next_ = s->pending;
    if (s->pending)
        s->pending->prev_ = req;
    s->pending = req;
    s->npending++;
    if (allow) {
        static const struct { unsigned bit; const char *name; } names[] = {
            { HTTP_GET, "GET" }, { HTTP_HEAD, "HEAD" }, { HTTP_POST, "POST" },
            { HTTP_PUT, "PUT" }, { HTTP_PATCH, "PATCH" }, { HTTP_DELETE, "DELETE" },
            { HTTP_OPTIONS, "OPTIONS" },
        };
        char list[80] = "";
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (allow & names[i].bit)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                         list[0] ? ", " : "", names[i].name);
        }
        http_header(req, "Allow", list);
    }
    http_error(req, status, code, "%s", msg);
}

static bool body_too_large(struct http_server *s, struct evhttp_request *ev)
{
    const char *cl = evhttp_find_header(evhttp_request_get_input_headers(ev),
                                        "Content-Length");
    if (cl != NULL) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end != '\0' || v > s->max_body)
            return true;
    }
    return evbuffer_get_length(evhttp_request_get_input_buffer(ev)) > s->max_body;
}

static struct http_request *request_new(struct http_server *s, struct evhttp_request *ev,
                                        const struct http_route *r, void *arg)
{
    struct http_request *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    req->ev = ev;
    req->server = s;
    req->route = r;
    req->route_arg = arg;
    req->method = (unsigned)evhttp_request_get_command(ev);
    req->started_us = clock_mono_us();
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    req->query = evhttp_uri_get_query(uri);
    req->path = evhttp_uri_get_path(uri);
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    char *host = NULL;
    ev_uint16_t port = 0;
    if (evcon)
        evhttp_connection_get_peer(evcon, &host, &port);
    snprintf(req->peer, sizeof(req->peer), strchr(host ? host : "", ':') ? "[%s]:%u" : "%s:%u",
             host ? host : "?", port);
    req->next_ = s->pending;
    if (s->pending)
        s->pending->prev_ = req;
    s->pending = req;
    s->npending++;
    return req;
}

static void dispatch(struct evhttp_request *ev, void *arg)
{
    struct http_server *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    char store[MAX_PATH + MAX_SEGMENTS + 2];
    const char *seg[MAX_SEGMENTS];
    int nseg = path ? split_path(path, store, sizeof(store), seg, MAX_SEGMENTS) : -1;
    if (nseg == -1) {
        early_error(s, ev, 400, "bad_path", "malformed or disallowed request path", 0);
        return;
    }
    unsigned method = (unsigned)evhttp_request_get_command(ev), allow;
    struct capture cap[HTTP_MAX_PARAMS];
    int ncap = 0;
    void *rarg = NULL;
    const struct http_route *r = find_route(s, seg, nseg, method, cap, &ncap, &rarg, &allow);
    if (r == NULL && allow == 0) {
        early_error(s, ev, 404, "not_found", "no such resource", 0);
        return;
    }
    if (r == NULL) {
        early_error(s, ev, 405, "method_not_allowed", "method not allowed here", allow);
        return;
    }
    if (body_too_large(s, ev)) {
        char msg[64];
        snprintf(msg, sizeof(msg), "the body is larger than %zu bytes", s->max_body);
        early_error(s, ev, 413, "payload_too_large", msg, 0);
        return;
    }
    struct http_request *req = request_new(s, ev, r, rarg);
    if (req == NULL) {
        evhttp_send_error(ev, 503, NULL);
        return;
    }
    for (int i = 0; i < ncap; i++) {
        if ((req->params[i] = capture_text(seg, nseg, cap[i])) == NULL) {
            http_error(req, 503, "overloaded", "out of memory");
            return;
        }
    }
    r->handler(req);
}

/* ---- the server --------------------------------------------------------- */

struct http_server *http_server_new(struct event_base *base,
                                    const struct http_server_options *opts)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->base = base;
    snprintf(s->name, sizeof(s->name), "%s", opts->name ? opts->name : "http");
    s->max_body = opts->max_body ? opts->max_body : 64 * 1024;
    s->max_conns = opts->max_connections ? opts->max_connections : 1024;
    s->max_write = opts->max_write;
    s->http = evhttp_new(base);
    s->fixup_ev = event_new(base, -1, 0, fixup_cb, s);
    if (s->http == NULL || s->fixup_ev == NULL) {
        http_server_free(s);
        return NULL;
    }
    evhttp_set_allowed_methods(s->http, (ev_uint16_t)all_methods);
    /* evhttp's own limit stays well above ours, so our JSON 413 answers first */
    evhttp_set_max_body_size(s->http, (ev_ssize_t)s->max_body * 4);
    evhttp_set_max_headers_size(s->http, 16 * 1024);
    evhttp_set_timeout(s->http, opts->timeout_s ? opts->timeout_s : 30);
    evhttp_set_default_content_type(s->http, "application/json");
    evhttp_set_bevcb(s->http, new_conn_bev, s);
    evhttp_set_gencb(s->http, dispatch, s);
    if (opts->metrics && metrics_register(opts->metrics, http_metric_defs, s->m) == 0)
        s->conns_gauge = metric_at(s->m[HTTP_M_CONNECTIONS], s->name);
    return s;
}

int http_server_routes(struct http_server *s, const struct http_route *routes, void *arg)
{
    if (s->ntables == MAX_ROUTE_TABLES)
        return -1;
    s->tables[s->ntables++] = (struct route_table){ routes, arg };
    return 0;
}

int http_server_add_header(struct http_server *s, const char *name, const char *value)
{
    if (s->nheaders == MAX_SERVER_HEADERS)
        return -1;
    char *n = strdup(name), *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return -1;
    }
    s->headers[s->nheaders].name = n;
    s->headers[s->nheaders].value = v;
    s->nheaders++;
    return 0;
}

void http_server_set_free_cb(struct http_server *s, void (*fn)(void *), void *arg)
{
    s->free_cb = fn;
    s->free_arg = arg;
}

int http_server_listen(struct http_server *s, const char *addr, char **err)
{
    char host[256];
    int port;
    if (net_split_hostport(addr, host, sizeof(host), &port) == -1) {
        if (asprintf(err, "bad listen address \"%s\" (want host:port)", addr) == -1)
            *err = NULL;
        return -1;
    }
    if (s->nbound == MAX_LISTENERS) {
        *err = strdup("too many listeners");
        return -1;
    }
    struct evhttp_bound_socket *b = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
    if (b == NULL) {
        if (asprintf(err, "cannot listen on %s: %s", addr, strerror(errno)) == -1)
            *err = NULL;
        return -1;
    }
    s->bound[s->nbound++] = b;
    return 0;
}

int http_server_port(const struct http_server *s)
{
    return s->nbound ? net_local_port(evhttp_bound_socket_get_fd(s->bound[0])) : 0;
}

void http_server_stop_accepting(struct http_server *s)
{
    s->closing = true;
    for (size_t i = 0; i < s->nbound; i++)
        evhttp_del_accept_socket(s->http, s->bound[i]);
    s->nbound = 0;
}

unsigned http_server_connections(const struct http_server *s)
{
    return s->nconns;
}

unsigned http_server_pending(const struct http_server *s)
{
    return s->npending;
}

void http_server_free(struct http_server *s)
{
    if (s == NULL)
        return;
    http_server_stop_accepting(s);
    if (s->fixup_ev) {
        attach_closecbs(s);
        event_free(s->fixup_ev);
    }
    while (s->pending)
        http_error(s->pending, 503, "shutting_down", "the server is shutting down");
    if (s->http)
        evhttp_free(s->http);
    if (s->free_cb)
        s->free_cb(s->free_arg);
    for (size_t i = 0; i < s->nheaders; i++) {
        free(s->headers[i].name);
        free(s->headers[i].value);
    }
    free(s->fresh);
    free(s);
}
