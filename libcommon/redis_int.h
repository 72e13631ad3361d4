/* Private to redis.c and redis_lease.c: the client's state. */
#ifndef SLUICE_REDIS_INT_H
#define SLUICE_REDIS_INT_H

#include <stdbool.h>

#include "sluice/config.h"
#include "sluice/redis.h"

struct redisAsyncContext;
struct evdns_getaddrinfo_request;
struct subscription;

enum conn_state {
    CONN_DOWN,        /* nothing under way */
    CONN_WAITING,     /* backing off before the next attempt */
    CONN_RESOLVING,
    CONN_CONNECTING,
    CONN_SETUP,       /* AUTH and SELECT in flight */
    CONN_UP,
};

/* One hiredis connection: the command one or the subscriber. */
struct conn {
    struct redis *r;
    struct redisAsyncContext *ac;     /* NULL unless connecting or up */
    enum conn_state state;
    struct event *timer;              /* connect timeout, or backoff */
    struct evdns_getaddrinfo_request *dnsreq;
    int backoff_ms;
    int setup_left;
};

struct redis {
    struct event_base *base;
    struct evdns_base *dns;
    struct redis_options opts;
    char host[256];
    int port;
    char *user, *password;
    int db;
    struct conn cmd, sub;
    struct event *ping_timer;
    unsigned npending;
    bool up, freeing;
    redis_state_cb state_cb;
    void *state_arg;
    struct subscription *subs;
};

#endif
