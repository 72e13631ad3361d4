/* The edge's metrics, defined once in stats.c. Requests by route and status
 * and their latency are counted by the viewer port (reply.c) in libcommon's
 * HTTP families (sluice_http_requests_total{server="edge",route="live"|"vod"|
 * "unmatched",status}); the rest is here. Hot paths use the series pointers resolved at start. */
#ifndef SLUICE_EDGE_STATS_H
#define SLUICE_EDGE_STATS_H

struct metrics;
struct metric;
struct metric_series;

enum edge_metric {
    EM_CACHE_REQUESTS,     /* {result}: hit, miss, coalesced, stale, negative */
    EM_FETCHES,            /* {result}: see enum fetch_result */
    EM_FETCH_SECONDS,      /* histogram */
    EM_FETCHES_IN_FLIGHT,
    EM_BYTES_OUT,          /* {kind}: live, vod */
    EM_CACHE_BYTES,
    EM_CACHE_CAPACITY,
    EM_CACHE_OBJECTS,
    EM_CACHE_EVICTIONS,
    EM_BODY_BYTES,
    EM_ROUTES,
    EM_ROUTE_LOOKUPS,      /* {result}: found, absent, error, remembered, held */
    EM_VIEWERS,            /* {stream} */
    EM_VIEWERS_UNTRACKED,
    EM_HEADER_TIMEOUTS,    /* counted by the viewer port (server.c) */
    EM_COUNT
};

enum cache_outcome { CO_HIT, CO_MISS, CO_COALESCED, CO_STALE, CO_NEGATIVE, CO_COUNT };

enum fetch_result {
    FR_OK, FR_NOT_FOUND, FR_BAD_STATUS, FR_TIMEOUT, FR_UNREACHABLE, FR_TOO_LARGE,
    FR_OVERLOADED, FR_ORIGIN_DOWN, FR_COUNT
};

enum route_lookup { RL_FOUND, RL_ABSENT, RL_ERROR, RL_REMEMBERED, RL_HELD, RL_COUNT };

struct edge_stats {
    struct metric *m[EM_COUNT];
    struct metric_series *cache[CO_COUNT];
    struct metric_series *fetch[FR_COUNT];
    struct metric_series *lookup[RL_COUNT];
    struct metric_series *bytes_live, *bytes_vod;
    struct metric_series *fetch_seconds, *in_flight;
    struct metric_series *header_timeouts;
};

extern const char *const cache_outcome_names[CO_COUNT];   /* "hit", ... */

/* Registers the table in <m> and resolves the fixed series. <m> may be NULL
 * (unit tests): every series is then NULL, which the update functions
 * accept. Returns 0 or -1. */
int edge_stats_init(struct edge_stats *st, struct metrics *m);

#endif
