/* HTTP server helper on evhttp, used by every daemon for its admin port and its
 * public API.
 *
 * Routes are tables; a path pattern is matched segment by segment, where "{}"
 * captures one segment (percent-decoded; a decoded '/' or NUL is refused) and a
 * trailing "*" captures the rest. Every answer this module makes itself is
 * JSON {"error": code, "message": text}:
 *   404 not_found            no route has this path
 *   405 method_not_allowed   a route has the path but not the method (with Allow)
 *   413 payload_too_large    Content-Length (or the body) exceeds the limit
 *   503 overloaded           never sent; connections past the cap wait in the
 *                            kernel's backlog while the listener is paused
 * libevent itself still answers, in HTML and before any callback runs, request
 * lines it cannot parse (non-standard method names: 400/501), headers larger
 * than its limit (400), and bodies past its own limit, which is set to 4 times
 * ours so that the JSON 413 covers every realistic case.
 *
 * Each request gets a struct http_request that lives until exactly one reply
 * function is called; a handler may reply later, from another callback (the
 * client may have gone meanwhile: the reply is then dropped quietly). At
 * shutdown, free whatever handlers wait on (database, Redis, clients) before
 * the server, so that their callbacks still have a server to reply through;
 * http_server_free() answers what is still pending with 503.
 *
 * Connections are counted without evhttp's help (libevent 2.1 has no
 * evhttp_set_max_connections, and a filter bufferevent from evhttp_set_bevcb
 * cannot be used: 2.1.12's filter refuses BEV_CTRL_SET_FD, so the accepted
 * socket never reaches it). The bevcb counts the new connection and, once
 * evhttp has attached it, a deferred callback sets the connection's close
 * callback, which uncounts it. At the cap the listeners pause.
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct evhttp_request;
struct metrics;
struct http_server;

#define HTTP_MAX_PARAMS 4

/* Methods, as evhttp's EVHTTP_REQ_* bits. */
enum {
    HTTP_GET = 1 << 0, HTTP_POST = 1 << 1, HTTP_HEAD = 1 << 2, HTTP_PUT = 1 << 3,
    HTTP_DELETE = 1 << 4, HTTP_OPTIONS = 1 << 5, HTTP_PATCH = 1 << 8,
};

struct http_request {
    struct evhttp_request *ev;      /* the libevent request */
    struct http_server *server;
    const struct http_route *route;
    unsigned method;                /* one HTTP_* bit */
    const char *path;               /* decoded path, without the query */
    const char *query;              /* raw query string, or NULL */
    char *params[HTTP_MAX_PARAMS];  /* "{}" and "*" captures, in order */
    char peer[64];                  /* client address, "ip:port" */
    int64_t started_us;             /* monotonic */
    void *route_arg;                /* the arg given with the route table */
    void *user;                     /* free for the handler's own use */
    struct http_request *prev_, *next_;  /* private: the server's pending list */
};

typedef void (*http_handler)(struct http_request *req);

struct http_route {
    unsigned methods;      /* HTTP_* bits; HEAD is implied by GET */
    const char *pattern;   /* "/v1/streams/{}" */
    http_handler handler;
    const char *name;      /* route label in metrics; defaults to the pattern */
};

struct http_server_options {
    const char *name;          /* "api", "admin": the server label in metrics */
    size_t max_body;           /* bytes; 0 = 64 KiB */
    unsigned max_connections;  /* 0 = 1024 */
    int timeout_s;             /* idle and read/write timeout; 0 = 30 */
    size_t max_write;          /* bytes written to a connection per loop turn;
                                * 0 = libevent's 16 KiB. Servers of large
                                * bodies raise it: a 1 MB body otherwise takes
                                * 64 turns of the loop */
    struct metrics *metrics;   /* requests and latency by route; may be NULL */
};

/* The metric table behind sluice_http_requests_total,
 * sluice_http_request_duration_seconds and sluice_http_connections (labels
 * server, route, status), indexed by HTTP_M_*: for a server not built on this
 * helper (the edge's viewer port) that counts the same way. */
enum { HTTP_M_REQUESTS, HTTP_M_DURATION, HTTP_M_CONNECTIONS, HTTP_M_COUNT };
struct metric_def;
const struct metric_def *http_metric_table(void);

/* Constructor; NULL (logged) on failure. */
struct http_server *http_server_new(struct event_base *base,
                                    const struct http_server_options *opts);

/* Adds routes (ended by a NULL pattern), all called with <arg> in
 * req->route_arg. Earlier tables win when patterns overlap. The table must
 * outlive the server. Returns 0 or -1 (too many tables). */
int http_server_routes(struct http_server *s, const struct http_route *routes,
                       void *arg);

/* Adds a header to every reply the server makes from now on, its own errors
 * included (CORS headers on a public port). Up to 8; <name> and <value> are
 * copied. Returns 0 or -1. */
int http_server_add_header(struct http_server *s, const char *name, const char *value);

/* Calls <fn>(<arg>) when the server is freed (to free what its routes use). */
void http_server_set_free_cb(struct http_server *s, void (*fn)(void *), void *arg);

/* Listens on "host:port" (port 0 picks one; see http_server_port). Returns 0,
 * or -1 with a malloc'd message in *<err>. */
int http_server_listen(struct http_server *s, const char *addr, char **err);

/* The port of the first listener, or 0. */
int http_server_port(const struct http_server *s);

/* Stops accepting new connections (graceful stop); open ones finish. */
void http_server_stop_accepting(struct http_server *s);

/* Open connections, and requests waiting for a reply. */
unsigned http_server_connections(const struct http_server *s);
unsigned http_server_pending(const struct http_server *s);

/* Frees the server, closing every connection. Requests still pending are
 * answered 503 and freed. */
void http_server_free(struct http_server *s);

/* Replies. Each frees <req>. <body> is drained into the reply (NULL = empty). */
void http_reply(struct http_request *req, int status, const char *content_type,
                struct evbuffer *body);
/* Steals the reference to <body>. */
void http_reply_json(struct http_request *req, int status, json_t *body);
void http_error(struct http_request *req, int status, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Adds a response header (before the reply). */
void http_header(struct http_request *req, const char *name, const char *value);
/* A request header, or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);
/* The value of <key> in the query string (malloc'd, decoded), or NULL. */
char *http_query_param(const struct http_request *req, const char *key);

/* The body, parsed as a JSON object. On failure replies 415 (Content-Type
 * given and not JSON) or 400 (malformed, not an object) itself, frees <req>,
 * and returns NULL; the handler must then return at once. */
json_t *http_read_json(struct http_request *req);

#endif
