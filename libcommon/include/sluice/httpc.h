/* HTTP client helper on evhttp: requests to one origin ("http://host:port")
 * over a small pool of keep-alive connections, with a bound on every request's
 * total time. Names are resolved with evdns, never blocking the loop.
 */
#ifndef SLUICE_HTTPC_H
#define SLUICE_HTTPC_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct evbuffer;
struct httpc;
struct evkeyvalq;

struct httpc_response {
    int status;               /* HTTP status, or 0 when there was no answer */
    const char *error;        /* why there was no answer ("timeout", ...), or NULL */
    struct evbuffer *body;    /* the body (may be drained by the callback) or NULL */
    const char *content_type; /* or NULL */
    const struct evkeyvalq *headers; /* response headers, or NULL */
};

/* Called exactly once per request, including when the client is freed
 * (error "cancelled"). <resp> is valid only during the call. */
typedef void (*httpc_cb)(const struct httpc_response *resp, void *arg);

struct httpc_options {
    int timeout_ms;          /* whole request, connect included; 0 = 5000 */
    unsigned connections;    /* pool size; 0 = 4 */
    size_t max_body;         /* larger response bodies fail with "response too
                              * large"; 0 = no bound */
    size_t max_headers;      /* the same for the response headers; 0 = no bound */
};

/* A client for <origin> ("http://host:port", no path). NULL (logged) when the
 * origin is malformed. <dns> may be NULL when <origin> uses an address. */
struct httpc *httpc_new(struct event_base *base, struct evdns_base *dns,
                        const char *origin, const struct httpc_options *opts);

/* Sends <method> ("GET", "POST", ...) for <path_query>, with extra headers as
 * NULL-terminated name, value pairs, and <body> of <len> bytes (copied).
 * Returns 0, or -1 (the callback is then not called). */
int httpc_request(struct httpc *c, const char *method, const char *path_query,
                  const char *const *headers, const void *body, size_t len,
                  httpc_cb cb, void *arg);

/* Requests in flight. */
unsigned httpc_pending(const struct httpc *c);

/* Cancels what is in flight (each callback runs with "cancelled") and frees. */
void httpc_free(struct httpc *c);

#endif
