/* The edge's HTTP routes: see handler.h. */
#include "handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "cache.h"
#include "cond.h"
#include "edge.h"
#include "flight.h"
#include "reqpath.h"
#include "server.h"
#include "sluice/clock.h"
#include "sluice/metrics.h"
#include "viewers.h"

#define CLIENT_ID_MAX 384   /* address and User-Agent, as one viewer's identity */

/* ---- viewers -------------------------------------------------------------- */

/* The client's address: the last X-Forwarded-For hop when the proxy in front
 * is trusted to set it, else the peer address without its port. */
static size_t client_address(const struct edge *e, const struct edge_req *req,
                             char *out, size_t outlen)
{
    const char *xff = e->cfg->trust_forwarded_for
        ? edge_req_header(req, "X-Forwarded-For") : NULL;
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

static void count_viewer(struct edge *e, const struct edge_req *req,
                         const struct objpath *obj)
{
    if (obj->ns != NS_LIVE || e->viewers == NULL)
        return;
    char id[CLIENT_ID_MAX];
    size_t n = client_address(e, req, id, 128);
    const char *ua = edge_req_header(req, "User-Agent");
    size_t ualen = ua ? strnlen(ua, sizeof(id) - n - 1) : 0;
    id[n] = '|';
    memcpy(id + n + 1, ua ? ua : "", ualen);
    viewers_seen(e->viewers, obj->name, id, n + 1 + ualen, clock_mono_ms());
}

/* ---- replies (Connection: close while stopping is the server's) ---------- */

static void reply_error(struct edge_req *req, int status, const char *error,
                        const char *message)
{
    edge_req_add_header(req, "Cache-Control", "no-store");
    edge_reply_error(req, status, error, message);
}

/* "public, max-age=<secs><tail>" into <out> (64 bytes at least), without
 * printf: this runs on every hit. */
static void max_age(char *out, int64_t secs, const char *tail)
{
    char digits[24], *d = digits + sizeof(digits);
    uint64_t v = secs > 0 ? (uint64_t)secs : 0;
    do {
        *--d = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t n = (size_t)(digits + sizeof(digits) - d);
    memcpy(out, "public, max-age=", 16);
    memcpy(out + 16, d, n);
    strcpy(out + 16 + n, tail);
}

static void cache_control(struct edge *e, const struct objpath *obj, int64_t fresh_until,
                          bool stale, char *out)
{
    if (obj->type == OBJ_SEGMENT) {
        max_age(out, e->cfg->segment_max_age_ms / 1000, ", immutable");
        return;
    }
    max_age(out, stale ? 0 : (fresh_until - clock_mono_ms()) / 1000, "");
}

static void object_headers(struct edge *e, struct edge_req *req,
                           const struct objpath *obj, const struct body *b,
                           int64_t fresh_until, const char *xcache)
{
    char cc[80];
    cache_control(e, obj, fresh_until, xcache[0] == 'S', cc);
    edge_req_add_header(req, "Cache-Control", cc);
    if (b->etag[0])
        edge_req_add_header(req, "ETag", b->etag);
    if (b->last_modified[0])
        edge_req_add_header(req, "Last-Modified", b->last_modified);
    edge_req_add_header(req, "Accept-Ranges", "bytes");
    edge_req_add_header(req, "X-Cache", xcache);
}

/* Which bytes of <b> the request's Range (if honoured) asks for, with its
 * Content-Range header. Returns 200, 206, or 416 after answering it. */
static int pick_range(struct edge_req *req, const struct body *b, uint64_t *off,
                      uint64_t *len)
{
    const char *range = edge_req_header(req, "Range");
    if (range && !if_range_allows(edge_req_header(req, "If-Range"), b->etag,
                                  b->last_modified))
        range = NULL;
    char cr[80];
    switch (range_parse(range, b->buf.len, off, len)) {
    case RANGE_OK:
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%zu", (unsigned long long)*off,
                 (unsigned long long)(*off + *len - 1), b->buf.len);
        edge_req_add_header(req, "Content-Range", cr);
        return 206;
    case RANGE_UNSATISFIABLE:
        snprintf(cr, sizeof(cr), "bytes */%zu", b->buf.len);
        edge_req_add_header(req, "Content-Range", cr);
        edge_reply_error(req, 416, "range_not_satisfiable", "the range is outside the object");
        return 416;
    case RANGE_NONE:
        break;
    }
    *off = 0;
    *len = b->buf.len;
    return 200;
}

/* Sends <b> (or the part the Range asks for) by reference. */
static void serve(struct edge *e, struct edge_req *req, const struct objpath *obj,
                  struct body *b, int64_t fresh_until, const char *xcache)
{
    if (b->status != 200) {
        reply_error(req, 404, "not_found", "no such object at the origin");
        return;
    }
    object_headers(e, req, obj, b, fresh_until, xcache);
    count_viewer(e, req, obj);
    if (etag_list_match(edge_req_header(req, "If-None-Match"), b->etag)) {
        edge_reply(req, 304, NULL, 0, NULL, 0);
        return;
    }
    uint64_t off, len;
    int status = pick_range(req, b, &off, &len);
    if (status == 416)
        return;
    if (req->method != HTTP1_HEAD)
        metric_add(obj->ns == NS_VOD ? e->stats.bytes_vod : e->stats.bytes_live, (double)len);
    edge_reply(req, status, obj->content_type, len, b, (size_t)off);
}

static void on_landed(const struct flight_result *res, void *arg)
{
    struct edge_req *req = arg;
    struct edge *e = req->arg;
    if (res->body != NULL)
        serve(e, req, res->obj, res->body, res->fresh_until,
              res->outcome == CO_STALE ? "STALE" : "MISS");
    else
        reply_error(req, res->status, res->error, res->message);
}

/* CORS preflight: what a browser asks before a cross-origin request with
 * headers of its own (hls.js sends Range for byte-range playlists). */
static void preflight(struct edge_req *req)
{
    const char *asked = edge_req_header(req, "Access-Control-Request-Headers");
    bool sane = asked != NULL && strlen(asked) <= 256 &&
        strspn(asked, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_, ")
            == strlen(asked);
    edge_req_add_header(req, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    edge_req_add_header(req, "Access-Control-Allow-Headers",
                        sane ? asked : "Range, If-None-Match, If-Range");
    edge_req_add_header(req, "Access-Control-Max-Age", "86400");
    edge_reply(req, 204, NULL, 0, NULL, 0);
}

void edge_handle(struct edge_req *req)
{
    struct edge *e = req->arg;
    struct objpath obj;
    const char *why;
    enum edge_ns ns = req->route == ER_VOD ? NS_VOD : NS_LIVE;
    if (objpath_parse(ns, req->param, strlen(req->param), &obj, &why) == -1) {
        reply_error(req, 400, "bad_path", why);
        return;
    }
    if (req->method == HTTP1_OPTIONS) {
        preflight(req);
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
        reply_error(req, 503, "overloaded", "out of memory");
    else
        metric_add(st->cache[rc == 1 ? CO_COALESCED : CO_MISS], 1);
}

int edge_handler_install(struct edge *e)
{
    const char *origin = e->cfg->cors_origin;
    if (origin == NULL || origin[0] == '\0')
        return 0;
    if (edge_server_add_header(e->server, "Access-Control-Allow-Origin", origin) == -1 ||
        edge_server_add_header(e->server, "Access-Control-Expose-Headers",
                               "Content-Length, Content-Range, ETag, X-Cache") == -1)
        return -1;
    return 0;
}
