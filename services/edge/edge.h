/* sluice-edge: what viewers hit. Resolves a stream's origin in Redis, proxies
 * and caches (segments immutable, playlists a fraction of their target
 * duration), makes one origin request per object however many viewers ask,
 * and keeps serving from what it knows when Redis or an origin falters.
 *
 *   server    the viewer port: connections, HTTP/1.1 (reply.c renders replies)
 *   handler   the HTTP routes: /live/<name>/<file>, /vod/<id>/<file>
 *   flight    one coalesced fetch per object: route, origin, cache
 *   routes    stream -> origin URL, from Redis, remembered
 *   origin    HTTP clients per origin, in-flight bound, failure back-off
 *   cache     path -> body, LRU bounded in bytes
 *   viewers   distinct clients per stream
 *   stats     the metric table
 */
#ifndef SLUICE_EDGE_EDGE_H
#define SLUICE_EDGE_EDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "stats.h"

struct daemon;
struct redis;
struct edge_server;
struct cache;
struct routes;
struct origins;
struct flights;
struct viewers;
struct event;

struct edge_config {
    char *listen;
    char *admin_listen;
    int64_t max_connections;
    int64_t client_timeout_ms;
    int64_t header_timeout_ms;
    int64_t cache_size;
    int64_t max_object_size;
    int64_t playlist_ttl_percent;
    int64_t playlist_ttl_min_ms;
    int64_t playlist_ttl_default_ms;
    int64_t negative_ttl_ms;
    int64_t stale_if_error_ms;
    int64_t segment_max_age_ms;
    int64_t route_ttl_ms;
    int64_t route_stale_ms;
    int64_t route_lookup_timeout_ms;
    int64_t route_grace_ms;
    int64_t route_vanish_grace_ms;
    int64_t max_routes;
    int64_t redis_timeout_ms;
    int64_t origin_timeout_ms;
    int64_t origin_connections;
    int64_t origin_retry_ms;
    int64_t max_fetches;
    int64_t viewers_window_ms;
    int64_t max_viewers;
    bool trust_forwarded_for;
    char *cors_origin;
};

struct edge {
    struct daemon *d;                 /* NULL in unit tests */
    const struct edge_config *cfg;
    struct event_base *base;
    struct redis *redis;
    struct edge_server *server;
    struct cache *cache;
    struct routes *routes;
    struct origins *origins;
    struct flights *flights;
    struct viewers *viewers;
    struct edge_stats stats;
    struct event *tick;
    struct event *drain;
};

/* How long a playlist with target duration <target_ms> (or -1 when it has
 * none) stays fresh under <cfg>. */
int64_t edge_playlist_ttl(const struct edge_config *cfg, int64_t target_ms);

#endif
