/* The edge's HTTP routes: see handler.h. */
#include "handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "body.h"
#include "cache.h"
#include "cond.h"
#include "edge.h"
#include "flight.h"
#include "reqpath.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/http.h"
#include "sluice/metrics.h"
#include "viewers.h"

#define CLIENT_ID_MAX 384   /* address and User-Agent, as one viewer's identity */

/* ---- viewers -------------------------------------------------------------- */

/* The client's address: the last X-Forwarded-For hop when the proxy in front
 * is trusted to set it, else the peer address without its port. */
static size_t client_address(const struct edge *e, const struct http_request *req,
                             char *out, size_t outlen)
{
    const char *xff = e->cfg->trust_forwarded_for
        ? http_request_header(req, "X-Forwarded-For") : NULL;
    if (xff != NULL && xff[0] != '\0') {
        const char *last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ' || *last == '\t')
            last++;
        size_t n = strcspn(last, " \t");
        if (n > 0 && n < outlen) {
            memcpy(out, last, n);
            out[n] = '\0';
            return n;
        }
    }
    const char *colon = strrchr(req->peer, ':');
    size_t n = colon ? (size_t)(colon - req->peer) : strlen(req->peer);
    n = n < outlen - 1 ? n : outlen - 1;
    memcpy(out, req->peer, n);
    out[n] = '\0';
    return n;
}

static void count_viewer(struct edge *e, const struct http_request *req,
                         const struct objpath *obj)
{
    if (obj->ns != NS_LIVE || e->viewers == NULL)
        return;
    char id[CLIENT_ID_MAX];
    size_t n = client_address(e, req, id, 128);
    const char *ua = http_request_header(req, "User-Agent");
    int m = snprintf(id + n, sizeof(id) - n, "|%s", ua ? ua : "");
    size_t len = n + (m < 0 ? 0 : (size_t)m);
    viewers_seen(e->viewers, obj->name, id, len < sizeof(id) ? len : sizeof(id) - 1,
                 clock_mono_ms());
}

/* ---- replies -------------------------------------------------------------- */

static void common_headers(struct edge *e, struct http_request *req)
{
    if (e->d != NULL && daemon_stopping(e->d))
        http_header(req, "Connection", "close");
}

static void reply_error(struct edge *e, struct http_request *req, int status,
                        const char *error, const char *message)
{
    common_headers(e, req);
    http_header(req, "Cache-Control", "no-store");
    http_error(req, status, error, "%s", message);
}

static void cache_control(struct edge *e, const struct objpath *obj, int64_t fresh_until,
                          bool stale, char *out, size_t outlen)
{
    if (obj->type == OBJ_SEGMENT) {
        snprintf(out, outlen, "public, max-age=%lld, immutable",
                 (long long)(e->cfg->segment_max_age_ms / 1000));
        return;
    }
    int64_t left = stale ? 0 : (fresh_until - clock_mono_ms()) / 1000;
    snprintf(out, outlen, "public, max-age=%lld", (long long)(left > 0 ? left : 0));
}

static void object_headers(struct edge *e, struct http_request *req,
                           const struct objpath *obj, const struct body *b,
                           int64_t fresh_until, const char *xcache)
{
    char cc[80];
    cache_control(e, obj, fresh_until, xcache[0] == 'S', cc, sizeof(cc));
    common_headers(e, req);
    http_header(req, "Cache-Control", cc);
    if (b->etag[0])
        http_header(req, "ETag", b->etag);
    if (b->last_modified[0])
        http_header(req, "Last-Modified", b->last_modified);
    http_header(req, "Accept-Ranges", "bytes");
    http_header(req, "X-Cache", xcache);
}

/* Which bytes of <b> the request's Range (if honoured) asks for, with its
 * Content-Range header. Returns 200, 206, or 416 after answering it. */
static int pick_range(struct http_request *req, const struct body *b, uint64_t *off,
                      uint64_t *len)
{
    const char *range = http_request_header(req, "Range");
    if (range && !if_range_allows(http_request_header(req, "If-Range"), b->etag,
                                  b->last_modified))
        range = NULL;
    char cr[80];
    switch (range_parse(range, b->len, off, len)) {
    case RANGE_OK:
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%zu", (unsigned long long)*off,
                 (unsigned long long)(*off + *len - 1), b->len);
        http_header(req, "Content-Range", cr);
        return 206;
    case RANGE_UNSATISFIABLE:
        snprintf(cr, sizeof(cr), "bytes */%zu", b->len);
        http_header(req, "Content-Range", cr);
        http_error(req, 416, "range_not_satisfiable", "the range is outside the object");
        return 416;
    case RANGE_NONE:
        break;
    }
    *off = 0;
    *len = b->len;
    return 200;
}

/* Sends <b> (or the part the Range asks for) by reference. */
static void serve(struct edge *e, struct http_request *req, const struct objpath *obj,
                  struct body *b, int64_t fresh_until, const char *xcache)
{
    if (b->status != 200) {
        reply_error(e, req, 404, "not_found", "no such object at the origin");
        return;
    }
    object_headers(e, req, obj, b, fresh_until, xcache);
    count_viewer(e, req, obj);
    if (etag_list_match(http_request_header(req, "If-None-Match"), b->etag)) {
        http_reply(req, 304, NULL, NULL);
        return;
    }
    uint64_t off, len;
    int status = pick_range(req, b, &off, &len);
    if (status == 416)
        return;
    if (req->method == HTTP_HEAD) {
        char size[32];
        snprintf(size, sizeof(size), "%llu", (unsigned long long)len);
        http_header(req, "Content-Length", size);
        http_reply(req, status, obj->content_type, NULL);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (out == NULL || body_add_to(b, out, (size_t)off, (size_t)len) == -1) {
        evbuffer_free(out);
        http_error(req, 503, "overloaded", "out of memory");
        return;
    }
    metric_add(obj->ns == NS_VOD ? e->stats.bytes_vod : e->stats.bytes_live, (double)len);
    http_reply(req, status, obj->content_type, out);
    evbuffer_free(out);
}

static void on_landed(const struct flight_result *res, void *arg)
{
    struct http_request *req = arg;
    struct edge *e = req->route_arg;
    if (res->body != NULL)
        serve(e, req, res->obj, res->body, res->fresh_until,
              res->outcome == CO_STALE ? "STALE" : "MISS");
    else
        reply_error(e, req, res->status, res->error, res->message);
}

/* CORS preflight: what a browser asks before a cross-origin request with
 * headers of its own (hls.js sends Range for byte-range playlists). */
static void preflight(struct edge *e, struct http_request *req)
{
    const char *asked = http_request_header(req, "Access-Control-Request-Headers");
    bool sane = asked != NULL && strlen(asked) <= 256 &&
        strspn(asked, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_, ")
            == strlen(asked);
    common_headers(e, req);
    http_header(req, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    http_header(req, "Access-Control-Allow-Headers",
                sane ? asked : "Range, If-None-Match, If-Range");
    http_header(req, "Access-Control-Max-Age", "86400");
    http_reply(req, 204, NULL, NULL);
}

static void handle(struct http_request *req, enum edge_ns ns)
{
    struct edge *e = req->route_arg;
    struct objpath obj;
    const char *why;
    if (objpath_parse(ns, req->params[0], strlen(req->params[0]), &obj, &why) == -1) {
        reply_error(e, req, 400, "bad_path", why);
        return;
    }
    if (req->method == HTTP_OPTIONS) {
        preflight(e, req);
        return;
    }
    int64_t now = clock_mono_ms();
    struct cache_entry *ce = cache_get(e->cache, obj.key, obj.keylen, now);
    if (ce != NULL && cache_fresh(ce, now)) {
        metric_add(e->stats.cache[ce->body->status == 200 ? CO_HIT : CO_NEGATIVE], 1);
        serve(e, req, &obj, ce->body, ce->fresh_until, "HIT");
        return;
    }
    struct edge_stats *st = &e->stats;
    int rc = flights_join(e->flights, &obj, on_landed, req);   /* may answer at once */
    if (rc == -1)
        reply_error(e, req, 503, "overloaded", "out of memory");
    else
        metric_add(st->cache[rc == 1 ? CO_COALESCED : CO_MISS], 1);
}

static void h_live(struct http_request *req)
{
    handle(req, NS_LIVE);
}

static void h_vod(struct http_request *req)
{
    handle(req, NS_VOD);
}

static const struct http_route edge_routes[] = {
    { HTTP_GET | HTTP_OPTIONS, "/live/*", h_live, "live" },
    { HTTP_GET | HTTP_OPTIONS, "/vod/*", h_vod, "vod" },
    { 0 },
};

int edge_handler_install(struct edge *e)
{
    if (http_server_routes(e->http, edge_routes, e) == -1)
        return -1;
    const char *origin = e->cfg->cors_origin;
    if (origin == NULL || origin[0] == '\0')
        return 0;
    if (http_server_add_header(e->http, "Access-Control-Allow-Origin", origin) == -1 ||
        http_server_add_header(e->http, "Access-Control-Expose-Headers",
                               "Content-Length, Content-Range, ETag, X-Cache") == -1)
        return -1;
    return 0;
}
