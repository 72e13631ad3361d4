/* Coalesced fetches: see flight.h. */
#include "flight.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "body.h"
#include "cache.h"
#include "edge.h"
#include "origin.h"
#include "playlist.h"
#include "routes.h"
#include "sluice/clock.h"
#include "sluice/httpc.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "table.h"

struct fwaiter {
    flight_cb cb;
    void *arg;
    struct fwaiter *next;
};

struct flight {
    struct table_node node;
    struct flights *fl;
    struct objpath obj;
    struct fwaiter *head, **tail;
    bool landed;                 /* answered; only callbacks of ours still refer to it */
    char message[160];
};

struct flights {
    struct edge *e;
    struct table index;
    bool closing;
};

int64_t edge_playlist_ttl(const struct edge_config *cfg, int64_t target_ms)
{
    if (target_ms < 0)
        return cfg->playlist_ttl_default_ms;
    int64_t ttl = target_ms * cfg->playlist_ttl_percent / 100;
    return ttl < cfg->playlist_ttl_min_ms ? cfg->playlist_ttl_min_ms : ttl;
}

struct flights *flights_new(struct edge *e)
{
    struct flights *fl = calloc(1, sizeof(*fl));
    if (fl == NULL)
        return NULL;
    fl->e = e;
    table_init(&fl->index);
    return fl;
}

static void flight_free(struct flight *f)
{
    if (!f->landed)
        table_remove(&f->fl->index, &f->node);
    free(f);
}

/* Answers every waiter with <res> and takes the flight out of the index, so
 * that a request arriving from now on finds the cache (or a new flight). */
static void land(struct flight *f, struct flight_result *res)
{
    table_remove(&f->fl->index, &f->node);
    f->landed = true;
    res->obj = &f->obj;
    struct edge_stats *st = &f->fl->e->stats;
    for (struct fwaiter *w = f->head, *next; w; w = next) {
        next = w->next;
        if (res->outcome == CO_STALE)
            metric_add(st->cache[CO_STALE], 1);
        w->cb(res, w->arg);
        free(w);
    }
    f->head = NULL;
    f->tail = &f->head;
}

/* Lands with an error or, when <stale_ok> and the cache still has a copy
 * within its stale bound, with that copy (stale-if-error). */
static void land_error(struct flight *f, int status, const char *error,
                       const char *message, bool stale_ok)
{
    struct edge *e = f->fl->e;
    int64_t now = clock_mono_ms();
    struct cache_entry *ce =
        stale_ok ? cache_get(e->cache, f->obj.key, f->obj.keylen, now) : NULL;
    struct flight_result res;
    if (ce != NULL && ce->body->status == 200) {
        log_debug("%s: %s, serving the stale copy", f->obj.key, message);
        res = (struct flight_result){ .status = 200, .body = ce->body,
                                      .outcome = CO_STALE, .fresh_until = ce->fresh_until };
        struct body *keep = body_ref(ce->body);   /* a waiter may evict it */
        land(f, &res);
        body_unref(keep);
    } else {
        res = (struct flight_result){ .status = status, .error = error, .message = message };
        land(f, &res);
    }
    flight_free(f);
}

static void land_body(struct flight *f, struct body *b, int64_t fresh_until)
{
    struct flight_result res = { .status = b->status, .body = b, .outcome = CO_MISS,
                                 .fresh_until = fresh_until };
    if (b->status == 404) {
        res.error = "not_found";
        res.message = "no such object at the origin";
    }
    land(f, &res);
    flight_free(f);
}

/* Stores what the origin sent and lands with it. */
static void store(struct flight *f, const struct httpc_response *resp, int status)
{
    struct edge *e = f->fl->e;
    const struct edge_config *cfg = e->cfg;
    struct body *b = body_from_evbuffer(status, status == 200 ? resp->body : NULL);
    if (b == NULL) {
        land_error(f, 503, "overloaded", "out of memory", true);
        return;
    }
    if (status == 200 && resp->headers != NULL) {
        body_set_etag(b, evhttp_find_header(resp->headers, "ETag"));
        body_set_last_modified(b, evhttp_find_header(resp->headers, "Last-Modified"));
    }
    int64_t now = clock_mono_ms(), fresh, stale;
    if (status != 200) {
        fresh = stale = now + cfg->negative_ttl_ms;
    } else if (f->obj.type == OBJ_PLAYLIST) {
        int64_t target;
        if (playlist_target_duration((const char *)b->buf.data, b->buf.len, &target) == -1)
            target = -1;
        fresh = now + edge_playlist_ttl(cfg, target);
        stale = fresh + cfg->stale_if_error_ms;
        if (f->obj.ns == NS_LIVE && target != -1)   /* a media playlist: live or ended? */
            routes_playlist_seen(e->routes, f->obj.name,
                                 playlist_ended((const char *)b->buf.data, b->buf.len));
    } else {
        fresh = stale = CACHE_FOREVER;
    }
    if (cache_put(e->cache, f->obj.key, f->obj.keylen, b, fresh, stale, now) == -1)
        log_debug("%s: not cached (%zu bytes)", f->obj.key, b->buf.len);
    land_body(f, b, fresh);
    body_unref(b);
}

static void fail_fetch(struct flight *f, enum fetch_result why, int status_seen)
{
    struct edge *e = f->fl->e;
    switch (why) {
    case FR_TIMEOUT:
        snprintf(f->message, sizeof(f->message), "the origin did not answer within %lld ms",
                 (long long)e->cfg->origin_timeout_ms);
        routes_suspect(e->routes, f->obj.ns, f->obj.name);
        land_error(f, 504, "origin_timeout", f->message, true);
        break;
    case FR_BAD_STATUS:
        snprintf(f->message, sizeof(f->message), "the origin answered %d", status_seen);
        land_error(f, 502, "bad_gateway", f->message, true);
        break;
    case FR_TOO_LARGE:
        snprintf(f->message, sizeof(f->message), "the object is larger than %lld bytes",
                 (long long)e->cfg->max_object_size);
        land_error(f, 502, "object_too_large", f->message, false);
        break;
    case FR_OVERLOADED:
        land_error(f, 503, "overloaded", "too many origin fetches in flight", true);
        break;
    default:   /* FR_UNREACHABLE, FR_ORIGIN_DOWN */
        routes_suspect(e->routes, f->obj.ns, f->obj.name);
        land_error(f, 502, "origin_unreachable", "the origin cannot be reached", true);
        break;
    }
}

static void on_fetch(const struct httpc_response *resp, enum fetch_result res, void *arg)
{
    struct flight *f = arg;
    if (f->landed) {   /* closed while in the air */
        free(f);
        return;
    }
    if (res == FR_OK)
        store(f, resp, 200);
    else if (res == FR_NOT_FOUND)
        store(f, resp, 404);
    else
        fail_fetch(f, res, resp->status);
}

static void on_route(const struct route_result *rr, void *arg)
{
    struct flight *f = arg;
    if (f->landed) {
        free(f);
        return;
    }
    struct edge *e = f->fl->e;
    enum fetch_result why;
    switch (rr->state) {
    case ROUTE_FOUND:
        if (origins_fetch(e->origins, rr->url, f->obj.key, on_fetch, f, &why) == -1)
            fail_fetch(f, why, 0);
        break;
    case ROUTE_ABSENT:
        snprintf(f->message, sizeof(f->message), f->obj.ns == NS_VOD
                 ? "no recording %s" : "stream %s is not live", f->obj.name);
        /* not live any more: what is cached of it is no excuse to go on */
        land_error(f, 404, "not_found", f->message, false);
        break;
    case ROUTE_UNAVAILABLE:
        snprintf(f->message, sizeof(f->message), "cannot find the origin: %s", rr->why);
        if (rr->bad_record)
            land_error(f, 502, "bad_route", f->message, true);
        else
            land_error(f, 503, "route_unavailable", f->message, true);
        break;
    }
}

int flights_join(struct flights *fl, const struct objpath *obj, flight_cb cb, void *arg)
{
    struct fwaiter *w = malloc(sizeof(*w));
    if (w == NULL)
        return -1;
    *w = (struct fwaiter){ cb, arg, NULL };
    struct table_node *n = table_find(&fl->index, obj->key, obj->keylen);
    if (n != NULL) {
        struct flight *f = container_of(n, struct flight, node);
        *f->tail = w;
        f->tail = &w->next;
        return 1;
    }
    struct flight *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        free(w);
        return -1;
    }
    f->fl = fl;
    f->obj = *obj;
    f->head = w;
    f->tail = &w->next;
    if (table_insert(&fl->index, &f->node, f->obj.key, f->obj.keylen) == -1) {
        free(w);
        free(f);
        return -1;
    }
    if (routes_resolve(fl->e->routes, obj->ns, obj->name, on_route, f) == -1)
        land_error(f, 503, "overloaded", "out of memory", true);
    return 0;
}

unsigned flights_count(const struct flights *fl)
{
    return (unsigned)fl->index.count;
}

void flights_close(struct flights *fl)
{
    fl->closing = true;
    struct table_iter it;
    table_iter_init(&fl->index, &it);
    for (struct table_node *n; (n = table_iter_next(&it)) != NULL;) {
        struct flight *f = container_of(n, struct flight, node);
        struct flight_result res = { .status = 503, .error = "shutting_down",
                                     .message = "the edge is shutting down" };
        land(f, &res);   /* stays allocated until its callback comes back */
    }
}

void flights_free(struct flights *fl)
{
    if (fl == NULL)
        return;
    if (fl->index.count != 0)
        log_error("flights: %zu still in the air at exit", fl->index.count);
    table_release(&fl->index);
    free(fl);
}
