/* The edge's metric table: see stats.h. */
#include "stats.h"

#include <string.h>

#include "sluice/metrics.h"

static const double fetch_buckets[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static const struct metric_def edge_metric_defs[] = {
    [EM_CACHE_REQUESTS] = { "sluice_edge_cache_requests_total", METRIC_COUNTER,
        "Object requests by cache outcome (hit, miss, coalesced onto a fetch in flight, "
        "stale served after an origin error, negative)", { "result" } },
    [EM_FETCHES] = { "sluice_edge_origin_fetches_total", METRIC_COUNTER,
        "Origin fetches by result", { "result" } },
    [EM_FETCH_SECONDS] = { "sluice_edge_origin_fetch_seconds", METRIC_HISTOGRAM,
        "Time from starting an origin fetch to its answer", { NULL }, fetch_buckets,
        sizeof(fetch_buckets) / sizeof(fetch_buckets[0]) },
    [EM_FETCHES_IN_FLIGHT] = { "sluice_edge_origin_fetches_in_flight", METRIC_GAUGE,
        "Origin fetches under way" },
    [EM_BYTES_OUT] = { "sluice_edge_bytes_out_total", METRIC_COUNTER,
        "Body bytes sent to viewers", { "kind" } },
    [EM_CACHE_BYTES] = { "sluice_edge_cache_bytes", METRIC_GAUGE,
        "Bytes held by the cache (bodies and per-entry overhead)" },
    [EM_CACHE_CAPACITY] = { "sluice_edge_cache_capacity_bytes", METRIC_GAUGE,
        "The cache's bound in bytes" },
    [EM_CACHE_OBJECTS] = { "sluice_edge_cache_objects", METRIC_GAUGE, "Objects cached" },
    [EM_CACHE_EVICTIONS] = { "sluice_edge_cache_evictions_total", METRIC_COUNTER,
        "Objects evicted to make room" },
    [EM_BODY_BYTES] = { "sluice_edge_body_bytes", METRIC_GAUGE,
        "Bytes of all bodies alive, cached or still being sent after eviction" },
    [EM_ROUTES] = { "sluice_edge_routes", METRIC_GAUGE,
        "Routes remembered (streams and recordings, found or known absent)" },
    [EM_ROUTE_LOOKUPS] = { "sluice_edge_route_lookups_total", METRIC_COUNTER,
        "Route lookups in Redis by result (remembered: Redis did not answer in time "
        "and the last known route was used; held: the key of a live stream vanished "
        "and the last known route was used, within route-vanish-grace)", { "result" } },
    [EM_VIEWERS] = { "sluice_edge_viewers", METRIC_GAUGE,
        "Distinct clients that fetched from a stream in the viewer window", { "stream" } },
    [EM_VIEWERS_UNTRACKED] = { "sluice_edge_viewers_untracked_total", METRIC_COUNTER,
        "Requests whose client could not be counted (viewer bounds reached)" },
    [EM_HEADER_TIMEOUTS] = { "sluice_edge_header_timeouts_total", METRIC_COUNTER,
        "Viewer connections closed because a request head did not arrive within "
        "header-timeout (answered 408 when part of one had come)" },
    { NULL },
};

const char *const cache_outcome_names[CO_COUNT] = {
    "hit", "miss", "coalesced", "stale", "negative",
};
static const char *const fetch_names[FR_COUNT] = {
    "ok", "not_found", "bad_status", "timeout", "unreachable", "too_large", "overloaded",
    "origin_down",
};
static const char *const lookup_names[RL_COUNT] = { "found", "absent", "error", "remembered",
                                                     "held" };

int edge_stats_init(struct edge_stats *st, struct metrics *m)
{
    memset(st, 0, sizeof(*st));
    if (m == NULL)
        return 0;
    if (metrics_register(m, edge_metric_defs, st->m) == -1)
        return -1;
    for (int i = 0; i < CO_COUNT; i++)
        st->cache[i] = metric_at(st->m[EM_CACHE_REQUESTS], cache_outcome_names[i]);
    for (int i = 0; i < FR_COUNT; i++)
        st->fetch[i] = metric_at(st->m[EM_FETCHES], fetch_names[i]);
    for (int i = 0; i < RL_COUNT; i++)
        st->lookup[i] = metric_at(st->m[EM_ROUTE_LOOKUPS], lookup_names[i]);
    st->bytes_live = metric_at(st->m[EM_BYTES_OUT], "live");
    st->bytes_vod = metric_at(st->m[EM_BYTES_OUT], "vod");
    st->fetch_seconds = metric_at(st->m[EM_FETCH_SECONDS]);
    st->in_flight = metric_at(st->m[EM_FETCHES_IN_FLIGHT]);
    st->header_timeouts = metric_at(st->m[EM_HEADER_TIMEOUTS]);
    return 0;
}
