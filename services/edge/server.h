/* The viewer port: a small HTTP/1.1 server of the edge's own, on libevent's
 * loop but not on evhttp (which costs a third of the CPU of a small request:
 * see docs/edge.md). It answers GET, HEAD and OPTIONS on /live/ and /vod/,
 * with keep-alive and pipelining (answered in order, one at a time); the
 * request head is parsed by libcommon's http1.c.
 *
 * Each connection is one edge-triggered event registered once (no epoll_ctl
 * per request), reads into a buffer of its own (at most the 16 KiB head
 * limit), and writes every reply ready at once with one writev: the head
 * rendered into a small buffer, the body by reference.
 *
 * The server answers itself, as JSON {"error", "message"} with no-store: 400 bad_request
 * (malformed head) or bad_path (see http1_path_decode), 404 not_found (not
 * under /live/ or /vod/), 405 method_not_allowed, 408 request_timeout (below),
 * 414, 431, 505; a parse error closes the connection after its answer, as do
 * a 408 and a request with a body.
 *
 * Two clocks bound a client. The idle timeout restarts with every byte, so
 * alone it lets a client that drips a byte every few seconds hold a connection
 * for ever (slowloris); so a request head must also be whole within the head
 * deadline, counted from accept for the first request and from the first byte
 * seen of each later one, never pushed back (nginx's client_header_timeout, Go's
 * ReadHeaderTimeout). A keep-alive connection that waits between requests has
 * only the idle timeout. Past the deadline, a connection that has sent nothing
 * is closed silently (a browser's unused preconnection must not find a 408 there
 * when it sends its request later); one with part of a head is answered 408
 * request_timeout, or, if replies before it are still being written, closed
 * after them. Either way it is counted in <head_timeouts>, logged (at most a few
 * lines a second), and gets one more deadline to go before it is closed: so
 * does the lingering after any answer that closes.
 *
 * A request lives in its connection until exactly one reply function is
 * called, maybe later from another callback; if the client has gone by then
 * the reply is dropped quietly. Requests are counted in
 * sluice_http_requests_total{server="edge",route,status} and
 * sluice_http_request_duration_seconds, as libcommon's HTTP helper does.
 */
#ifndef SLUICE_EDGE_SERVER_H
#define SLUICE_EDGE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/http1.h"

#define EDGE_MAX_PATH 2048       /* raw path bytes, else 400 bad_path */
#define EDGE_MAX_SEGMENTS 32
#define EDGE_REPLY_HEADERS 1024  /* bytes of headers a handler may add */

struct event_base;
struct metrics;
struct body;
struct edge_server;
struct edge_conn;

enum edge_route { ER_LIVE, ER_VOD, ER_UNMATCHED, ER_COUNT };

struct edge_req {
    struct edge_conn *conn_;         /* private */
    enum http1_method method;        /* GET, HEAD or OPTIONS */
    enum edge_route route;
    const char *param;               /* the decoded path after /live/ or /vod/ */
    const char *peer;                /* "ip:port" or "[ip6]:port" */
    void *arg;                       /* the server's handler argument */
    int64_t started_us;              /* monotonic */
    struct http1_request head;       /* header values NUL-terminated */
    char path[EDGE_MAX_PATH + 1];
    char hdrs[EDGE_REPLY_HEADERS];   /* added reply headers, "Name: value\r\n"... */
    size_t hdrs_len;
};

typedef void (*edge_req_handler)(struct edge_req *req);

struct edge_server_options {
    unsigned max_connections;   /* at the cap, accepting pauses */
    int64_t timeout_ms;         /* idle and read/write timeout; 0 = 30 s */
    int64_t head_timeout_ms;    /* the head deadline (above); 0 = 10 s */
    struct metrics *metrics;    /* may be NULL */
    struct metric_series *head_timeouts;   /* counts what it cuts; may be NULL */
    edge_req_handler handler;   /* called for GET, HEAD, OPTIONS on /live/, /vod/ */
    void *arg;
};

/* Constructor; NULL (logged) on failure. */
struct edge_server *edge_server_new(struct event_base *base,
                                    const struct edge_server_options *opts);

/* Adds "<name>: <value>" to every reply, the server's own errors included.
 * Returns 0 or -1 (no room). */
int edge_server_add_header(struct edge_server *s, const char *name, const char *value);

/* Listens on "host:port" (port 0 picks one). Returns 0, or -1 with a malloc'd
 * message in *<err>. */
int edge_server_listen(struct edge_server *s, const char *addr, char **err);

/* The listening port, or 0. */
int edge_server_port(const struct edge_server *s);

/* Graceful stop: closes the listener; replies from now on close their
 * connection (Connection: close). */
void edge_server_stop_accepting(struct edge_server *s);

/* Open connections; requests waiting for a reply. */
unsigned edge_server_connections(const struct edge_server *s);
unsigned edge_server_pending(const struct edge_server *s);

/* Closes every connection and frees the server. Answer (or drop) the waiting
 * requests first: a request still waiting is freed without a reply. */
void edge_server_free(struct edge_server *s);

/* A request header (NUL-terminated), or NULL. */
const char *edge_req_header(const struct edge_req *req, const char *name);

/* Adds a reply header; dropped (logged) past EDGE_REPLY_HEADERS bytes. */
void edge_req_add_header(struct edge_req *req, const char *name, const char *value);

/* Replies <status> with Content-Length <length> and, unless the request is
 * HEAD or <b> is NULL, bytes [<off>, <off> + <length>) of <b> by reference.
 * 204 and 304 get no Content-Length. <content_type> may be NULL. */
void edge_reply(struct edge_req *req, int status, const char *content_type,
                uint64_t length, struct body *b, size_t off);

/* Replies a JSON error {"error": <code>, "message": <message>}. */
void edge_reply_error(struct edge_req *req, int status, const char *code,
                      const char *message);

#endif
