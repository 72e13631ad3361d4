/* sluice-edge: wiring. See edge.h for the parts and docs/edge.md for the
 * behaviour. */
#include <stddef.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "cache.h"
#include "edge.h"
#include "flight.h"
#include "handler.h"
#include "origin.h"
#include "routes.h"
#include "server.h"
#include "sluice/admin.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"
#include "sluice/refbuf.h"
#include "viewers.h"

#define TICK_MS 1000
#define DRAIN_POLL_MS 50
#define ORIGIN_IDLE_MS 60000
#define FD_RESERVE 64   /* descriptors kept for Redis, origins, logs */

#define OPT(name, type, field, def, min, max, help) \
    { name, type, offsetof(struct edge_config, field), def, min, max, help }

static const struct config_opt edge_opts[] = {
    OPT("listen", CONF_STR, listen, "0.0.0.0:8081", 1, 0, "viewer HTTP listen address"),
    OPT("admin-listen", CONF_STR, admin_listen, "0.0.0.0:9106", 1, 0,
        "admin HTTP listen address (/metrics, /healthz, /readyz)"),
    OPT("max-connections", CONF_INT, max_connections, "4096", 1, 1000000,
        "viewer connections at once (more wait in the kernel's backlog)"),
    OPT("client-timeout", CONF_MS, client_timeout_ms, "30s", 1000, 3600000,
        "idle and read/write timeout of a viewer connection (whole seconds)"),
    OPT("header-timeout", CONF_MS, header_timeout_ms, "10s", 100, 3600000,
        "time to send a whole request head, from connecting or from a later "
        "request's first byte (then 408 and a close; not between requests)"),
    OPT("cache-size", CONF_BYTES, cache_size, "256M", 1048576, INT64_MAX / 2,
        "memory for cached objects, in bytes"),
    OPT("max-object-size", CONF_BYTES, max_object_size, "16M", 1024, INT64_MAX / 2,
        "largest object fetched from an origin"),
    OPT("playlist-ttl-percent", CONF_INT, playlist_ttl_percent, "25", 1, 100,
        "a playlist stays fresh for this percentage of its target duration"),
    OPT("playlist-ttl-min", CONF_MS, playlist_ttl_min_ms, "200ms", 10, 60000,
        "... but at least this long"),
    OPT("playlist-ttl-default", CONF_MS, playlist_ttl_default_ms, "1s", 10, 60000,
        "freshness of a playlist without a target duration (a master playlist)"),
    OPT("negative-ttl", CONF_MS, negative_ttl_ms, "1s", 10, 60000,
        "how long a stream that is not live, or an object the origin does not "
        "have, answers 404 without asking again"),
    OPT("stale-if-error", CONF_MS, stale_if_error_ms, "20s", 0, 3600000,
        "how long past its freshness a playlist may still be served when the "
        "origin fails"),
    OPT("segment-max-age", CONF_MS, segment_max_age_ms, "24h", 1000, 31536000000LL,
        "Cache-Control max-age of segments (they are immutable)"),
    OPT("route-ttl", CONF_MS, route_ttl_ms, "1s", 10, 600000,
        "how long a route from Redis is used before it is looked up again"),
    OPT("route-stale", CONF_MS, route_stale_ms, "2m", 0, 86400000,
        "how long a remembered route is still used when Redis cannot be asked"),
    OPT("route-lookup-timeout", CONF_MS, route_lookup_timeout_ms, "300ms", 10, 60000,
        "how long a request waits for Redis before the remembered route is used"),
    OPT("route-grace", CONF_MS, route_grace_ms, "10s", 0, 600000,
        "after Redis comes (back) up, how long a missing key does not override a "
        "remembered route (discovery needs a moment to write its keys again)"),
    OPT("route-vanish-grace", CONF_MS, route_vanish_grace_ms, "15s", 0, 600000,
        "when a live stream's key vanishes (its last playlist had no EXT-X-ENDLIST: an "
        "origin failover), how long its last route and cached playlist are still used "
        "rather than answering 404 (0: never)"),
    OPT("max-routes", CONF_INT, max_routes, "10000", 16, 10000000,
        "streams and recordings remembered"),
    OPT("redis-timeout", CONF_MS, redis_timeout_ms, "1s", 50, 60000,
        "Redis connect and command timeout"),
    OPT("origin-timeout", CONF_MS, origin_timeout_ms, "5s", 50, 600000,
        "bound on one origin fetch, connect included"),
    OPT("origin-connections", CONF_INT, origin_connections, "8", 1, 256,
        "keep-alive connections per origin"),
    OPT("origin-retry", CONF_MS, origin_retry_ms, "1s", 0, 600000,
        "after an origin could not be reached, how long it is not asked again"),
    OPT("max-fetches", CONF_INT, max_fetches, "256", 1, 100000,
        "origin fetches in flight at once, over all origins"),
    OPT("viewers-window", CONF_MS, viewers_window_ms, "30s", 1000, 3600000,
        "a viewer counts for a stream while seen within this window"),
    OPT("max-viewers", CONF_INT, max_viewers, "1000000", 0, 100000000,
        "viewers tracked at once, over all streams (about 16 bytes each)"),
    OPT("trust-forwarded-for", CONF_BOOL, trust_forwarded_for, "false", 0, 0,
        "identify viewers by the last X-Forwarded-For hop (behind Traefik)"),
    OPT("cors-origin", CONF_STR, cors_origin, "*", 0, 0,
        "Access-Control-Allow-Origin of every reply (\"\" for none)"),
    { NULL },
};

/* ---- housekeeping -------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct edge *e = arg;
    int64_t now = clock_mono_ms();
    cache_sweep(e->cache, now);
    routes_sweep(e->routes);
    origins_sweep(e->origins, ORIGIN_IDLE_MS);
    viewers_sweep(e->viewers, now);
}

static void on_collect(void *arg)
{
    struct edge *e = arg;
    struct edge_stats *st = &e->stats;
    struct cache_stats cs;
    cache_get_stats(e->cache, &cs);
    metric_set(metric_at(st->m[EM_CACHE_BYTES]), (double)cs.bytes);
    metric_set(metric_at(st->m[EM_CACHE_CAPACITY]), (double)cs.capacity);
    metric_set(metric_at(st->m[EM_CACHE_OBJECTS]), (double)cs.entries);
    metric_set(metric_at(st->m[EM_CACHE_EVICTIONS]), (double)cs.evictions);
    metric_set(metric_at(st->m[EM_BODY_BYTES]), (double)refbuf_live_bytes());
    metric_set(metric_at(st->m[EM_ROUTES]), (double)routes_count(e->routes));
    metric_set(metric_at(st->m[EM_VIEWERS_UNTRACKED]), (double)viewers_untracked(e->viewers));
    metric_set(st->in_flight, origins_in_flight(e->origins));
    viewers_sweep(e->viewers, clock_mono_ms());
}

static bool ready(json_t *checks, void *arg)
{
    struct edge *e = arg;
    bool up = redis_is_up(e->redis);
    json_object_set_new(checks, "redis", json_string(up ? "ok" : "unreachable"));
    return up;
}

static void on_redis_state(bool up, void *arg)
{
    struct edge *e = arg;
    routes_redis_state(e->routes, up);
}

/* ---- stop ---------------------------------------------------------------- */

/* Drained when no request waits for a flight and every reply by reference has
 * been sent. */
static void on_drain_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct edge *e = arg;
    if (edge_server_pending(e->server) == 0 && flights_count(e->flights) == 0 &&
        refbuf_sends() == 0) {
        daemon_release(e->d);
        return;
    }
    struct timeval tv = clock_tv_ms(DRAIN_POLL_MS);
    evtimer_add(e->drain, &tv);
}

static void edge_stop(void *arg)
{
    struct edge *e = arg;
    edge_server_stop_accepting(e->server);
    evtimer_del(e->tick);
    daemon_hold(e->d);
    on_drain_poll(-1, 0, e);
}

/* ---- start --------------------------------------------------------------- */

/* Raises the descriptor limit to its hard maximum and keeps the connection cap
 * under it, so that accept() never fails with EMFILE. */
static unsigned connection_cap(int64_t wanted)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return (unsigned)wanted;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)wanted + FD_RESERVE > rl.rlim_cur) {
        unsigned cap = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE) : 64;
        log_warn("max-connections %lld is above the descriptor limit %llu: using %u",
                 (long long)wanted, (unsigned long long)rl.rlim_cur, cap);
        return cap;
    }
    return (unsigned)wanted;
}

/* Makes the parts, unconnected. Returns 0 or -1. */
static int edge_parts(struct edge *e, struct daemon *d, const struct edge_config *cfg)
{
    struct redis_options ro = { .url = d->common.redis_url,
                                .connect_timeout_ms = (int)cfg->redis_timeout_ms,
                                .command_timeout_ms = (int)cfg->redis_timeout_ms };
    struct route_options rto = {
        .ttl_ms = cfg->route_ttl_ms, .stale_ms = cfg->route_stale_ms,
        .lookup_timeout_ms = cfg->route_lookup_timeout_ms,
        .negative_ttl_ms = cfg->negative_ttl_ms, .grace_ms = cfg->route_grace_ms,
        .vanish_grace_ms = cfg->route_vanish_grace_ms, .max_routes = (size_t)cfg->max_routes,
    };
    struct origin_options oo = {
        .timeout_ms = cfg->origin_timeout_ms, .connections = (unsigned)cfg->origin_connections,
        .max_body = (size_t)cfg->max_object_size, .max_fetches = (unsigned)cfg->max_fetches,
        .retry_ms = cfg->origin_retry_ms,
    };
    struct edge_server_options so = {
        .max_connections = connection_cap(cfg->max_connections),
        .timeout_ms = cfg->client_timeout_ms, .head_timeout_ms = cfg->header_timeout_ms,
        .metrics = d->metrics, .head_timeouts = e->stats.header_timeouts,
        .handler = edge_handle, .arg = e,
    };
    e->cache = cache_new((size_t)cfg->cache_size);
    e->redis = redis_new(d->base, d->dns, &ro);
    e->routes = e->redis ? routes_new(d->base, e->redis, &rto, &e->stats) : NULL;
    e->origins = origins_new(d->base, d->dns, &oo, &e->stats);
    e->flights = flights_new(e);
    e->viewers = viewers_new(cfg->viewers_window_ms, (size_t)cfg->max_viewers,
                             (size_t)cfg->max_routes, e->stats.m[EM_VIEWERS]);
    e->server = edge_server_new(d->base, &so);
    e->tick = event_new(d->base, -1, EV_PERSIST, on_tick, e);
    e->drain = evtimer_new(d->base, on_drain_poll, e);
    if (!e->cache || !e->redis || !e->routes || !e->origins || !e->flights || !e->viewers ||
        !e->server || !e->tick || !e->drain)
        return -1;
    return 0;
}

static int edge_start(struct edge *e, struct daemon *d, const struct edge_config *cfg)
{
    e->d = d;
    e->cfg = cfg;
    e->base = d->base;
    if (edge_stats_init(&e->stats, d->metrics) == -1 || edge_parts(e, d, cfg) == -1 ||
        edge_handler_install(e) == -1)
        return -1;
    redis_set_state_cb(e->redis, on_redis_state, e);
    char *err = NULL;
    if (edge_server_listen(e->server, cfg->listen, &err) == -1 ||
        admin_start(d, cfg->admin_listen, ready, e, &err) == NULL) {
        log_error("%s", err ? err : "cannot start the HTTP servers");
        free(err);
        return -1;
    }
    metrics_on_collect(d->metrics, on_collect, e);
    struct timeval tv = clock_tv_ms(TICK_MS);
    evtimer_add(e->tick, &tv);
    daemon_on_stop(d, edge_stop, e);
    log_info("serving viewers on %s (cache %lld bytes)", cfg->listen,
             (long long)cfg->cache_size);
    return 0;
}

/* Frees in the order flight.h asks: waiters answered, then what flights wait
 * on, then the flights, then the server and what it served. */
static void edge_free(struct edge *e)
{
    if (e->flights)
        flights_close(e->flights);
    redis_free(e->redis);
    routes_free(e->routes);
    origins_free(e->origins);
    flights_free(e->flights);
    edge_server_free(e->server);
    viewers_free(e->viewers);
    cache_free(e->cache);
    if (e->tick)
        event_free(e->tick);
    if (e->drain)
        event_free(e->drain);
}

int main(int argc, char **argv)
{
    struct edge_config cfg = { 0 };
    int rc;
    struct daemon *d = daemon_new("edge", edge_opts, &cfg, argc, argv, &rc);
    if (d == NULL)
        return rc;
    struct edge e = { 0 };
    if (edge_start(&e, d, &cfg) == 0) {
        daemon_run(d);
        rc = 0;
    } else {
        rc = 1;
    }
    edge_free(&e);
    int frc = daemon_free(d, edge_opts, &cfg);
    return rc ? rc : frc;
}
