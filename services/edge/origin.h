/* Origins: one HTTP client (a small keep-alive pool, libcommon httpc) per
 * origin URL, made on first use and dropped when idle.
 *
 * Bounds: at most <max_fetches> fetches in flight over all origins (more are
 * refused at once, like Varnish's backend max_connections, rather than queued
 * without bound); each fetch ends within <timeout>, its body within
 * <max_body> bytes. An origin that could not be reached (connection refused,
 * reset, timeout) is not tried again for <retry> ms: requests meanwhile fail
 * fast, so the caller can serve what it has cached instead of making every
 * viewer wait for the same timeout.
 */
#ifndef SLUICE_EDGE_ORIGIN_H
#define SLUICE_EDGE_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct event_base;
struct evdns_base;
struct httpc_response;
struct origins;

struct origin_options {
    int64_t timeout_ms;
    unsigned connections;   /* per origin */
    size_t max_body;
    unsigned max_fetches;
    int64_t retry_ms;
};

/* Called exactly once per accepted fetch with the origin's answer and how it
 * was classified; <resp> is valid during the call only. */
typedef void (*origin_cb)(const struct httpc_response *resp, enum fetch_result result,
                          void *arg);

struct origins *origins_new(struct event_base *base, struct evdns_base *dns,
                            const struct origin_options *o, struct edge_stats *st);

/* Cancels every fetch in flight (their callbacks run with FR_UNREACHABLE and
 * error "cancelled") and frees. */
void origins_free(struct origins *o);

/* Starts GET <path> on <url>. Returns 0 (<cb> runs later), or -1 with *<why>
 * set to FR_OVERLOADED (at max_fetches), FR_ORIGIN_DOWN (it failed less than
 * <retry> ago) or FR_UNREACHABLE (no client could be made). */
int origins_fetch(struct origins *o, const char *url, const char *path, origin_cb cb,
                  void *arg, enum fetch_result *why);

/* Fetches in flight. */
unsigned origins_in_flight(const struct origins *o);

/* Drops clients idle for longer than <idle_ms>. */
void origins_sweep(struct origins *o, int64_t idle_ms);

#endif
