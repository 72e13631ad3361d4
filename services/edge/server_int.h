/* The viewer port's private parts, shared by server.c (connections, reading,
 * writing) and reply.c (rendering replies, counting them). */
#ifndef SLUICE_EDGE_SERVER_INT_H
#define SLUICE_EDGE_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "server.h"
#include "sluice/http.h"

#define EDGE_SERVER_HEADERS 512   /* bytes of headers on every reply (CORS) */
#define STATUS_SLOTS 16           /* distinct statuses counted per route */

struct evconnlistener;
struct evbuffer;
struct metric;
struct metric_series;

struct edge_conn {
    struct edge_server *s;
    struct edge_conn *prev, *next;   /* the server's list */
    int fd;
    struct event *ev;                /* EV_READ|EV_WRITE|EV_PERSIST|EV_ET */
    struct evbuffer *out;            /* replies not yet written */
    char *in;                        /* bytes read: [inpos, inlen) not parsed yet */
    size_t inpos, inlen, incap;
    size_t consumed;                 /* head length of the request in <req> */
    bool readable;                   /* the socket may have more to read */
    bool waiting;                    /* <req> waits for its reply */
    bool close_after;                /* close once the replies are written */
    bool drain;                      /* bytes may follow the request: linger */
    bool lingering;                  /* ... and what the peer still sends is read
                                      * and dropped until it closes (so that our
                                      * answer is not lost to a reset) */
    size_t dropped;                  /* bytes dropped while lingering */
    bool closed;                     /* the socket is gone */
    bool in_run;                     /* inside conn_run(): free later */
    struct event *head_timer;        /* the head deadline (server.c), then the
                                      * bound on a goodbye */
    bool head_timer_on;
    int64_t head_since_us;           /* monotonic, when it was started */
    char peer[64];
    struct edge_req req;
};

struct status_series {
    int status;
    struct metric_series *series;
};

struct edge_server {
    struct event_base *base;
    struct evconnlistener *listener;
    const struct timeval *timeout;   /* a common timeout of the base */
    const struct timeval *head_timeout;   /* another */
    int64_t head_timeout_ms;
    struct metric_series *head_timeouts;  /* may be NULL */
    int64_t log_window_ms;                /* head timeouts logged this second */
    unsigned log_count, log_suppressed;
    edge_req_handler handler;
    void *arg;
    unsigned max_conns, nconns, npending;
    bool paused, stopping;
    struct edge_conn *conns;
    char headers[EDGE_SERVER_HEADERS];
    size_t headers_len;
    struct metric *m[3];                       /* libcommon's HTTP_M_* families */
    bool counting;                             /* metrics given */
    struct metric_series *conns_gauge;
    struct metric_series *duration[ER_COUNT];
    struct status_series counted[ER_COUNT][STATUS_SLOTS];
    long date_sec;
    char date[40];                             /* "Date: ...\r\n" of date_sec */
};

/* reply.c: renders the head of a reply to <c>'s current request into its
 * output, the body after it, counts it, and ends the request. */
void conn_reply(struct edge_conn *c, int status, const char *content_type,
                uint64_t length, const void *data, struct body *b, size_t off);

/* server.c: the request of <c> has its reply. */
void conn_answered(struct edge_conn *c);

#endif
