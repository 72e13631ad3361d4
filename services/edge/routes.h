/* Routes: where a stream's (or a recording's) objects come from, read from
 * Redis (sluice:origin:<name>, sluice:vod:<id>) and remembered.
 *
 * A route confirmed by Redis less than <ttl> ago is used as is. An older one
 * is looked up again (one lookup per route at a time, however many requests
 * wait); if Redis has not answered within <lookup_timeout>, or is down, the
 * remembered route is used while it is younger than <stale> (stale-if-error
 * for routes), so the edge keeps serving streams it knew through a Redis
 * outage. A stream Redis does not know is remembered as absent for
 * <negative_ttl>, so that requests for it answer 404 at once.
 *
 * Redis restarted without persistence forgets every key until discovery
 * writes them again: during <grace> after Redis comes (back) up, a missing key
 * does not override a route remembered from before.
 *
 * A live stream's key that vanishes while the last media playlist fetched
 * through its route had no EXT-X-ENDLIST (routes_playlist_seen()) did not end:
 * its origin died and the new owner's key is not written yet (discovery's TTL
 * shorter than the failover), or discovery stopped. The route is then held:
 * used as remembered for <vanish_grace> from the first miss (Redis asked again
 * at most once per <ttl>), so that requests get the cached playlist
 * (stale-if-error, the dead origin failing) rather than a 404, until the new
 * key appears or the grace ends. A stream that ended properly keeps its key
 * (hls lingers with EXT-X-ENDLIST), so a key gone after an ended playlist is
 * absent at once.
 *
 * Memory: at most <max_routes> routes; least recently used ones that no
 * request waits on are dropped to make room.
 */
#ifndef SLUICE_EDGE_ROUTES_H
#define SLUICE_EDGE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reqpath.h"

struct event_base;
struct redis;
struct edge_stats;
struct routes;

struct route_options {
    int64_t ttl_ms, stale_ms, lookup_timeout_ms, negative_ttl_ms, grace_ms;
    int64_t vanish_grace_ms;    /* 0: a vanished key is absent at once */
    size_t max_routes;
};

enum route_state {
    ROUTE_FOUND,         /* <url> is the origin */
    ROUTE_ABSENT,        /* Redis has no such stream or recording */
    ROUTE_UNAVAILABLE,   /* unknown: Redis unreachable and nothing remembered, or
                          * a malformed record (<why> says which) */
};

struct route_result {
    enum route_state state;
    const char *url;       /* FOUND: "http://host:port", valid during the callback */
    bool remembered;       /* FOUND from memory: Redis did not confirm it just now */
    bool bad_record;       /* UNAVAILABLE because the record is malformed */
    const char *why;       /* UNAVAILABLE: a printable reason */
};

/* Called exactly once per routes_resolve(), possibly before it returns. */
typedef void (*route_cb)(const struct route_result *res, void *arg);

/* A route table reading <redis>; NULL on allocation failure. <st> may be NULL. */
struct routes *routes_new(struct event_base *base, struct redis *redis,
                          const struct route_options *o, struct edge_stats *st);

/* Frees the table. Call it after redis_free(), whose cancelled replies still
 * reach the table; requests still waiting get ROUTE_UNAVAILABLE. */
void routes_free(struct routes *rt);

/* Resolves <name> in <ns>: calls <cb>(<arg>) once, now or later. Returns 0,
 * or -1 on allocation failure (then <cb> is not called). */
int routes_resolve(struct routes *rt, enum edge_ns ns, const char *name, route_cb cb,
                   void *arg);

/* Redis came up or went down (the redis state callback). */
void routes_redis_state(struct routes *rt, bool up);

/* The origin of <name> failed: the next resolve asks Redis again (keeping the
 * remembered route as the fallback). */
void routes_suspect(struct routes *rt, enum edge_ns ns, const char *name);

/* A media playlist of live stream <name> was fetched from its origin: whether
 * it had EXT-X-ENDLIST (<ended>). Unknown names are ignored. */
void routes_playlist_seen(struct routes *rt, const char *name, bool ended);

/* Drops absent routes past their negative TTL and found ones past <stale>. */
void routes_sweep(struct routes *rt);

size_t routes_count(const struct routes *rt);

#endif
