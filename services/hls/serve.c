/* The origin's HTTP routes: see serve.h. */
#include "serve.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "hls.h"
#include "playlist.h"
#include "sluice/daemon.h"
#include "sluice/http.h"
#include "sluice/metrics.h"
#include "sluice/refbuf.h"
#include "stream.h"

#define SEGMENT_MAX_AGE "86400"

static void not_found(struct http_request *req, const char *what)
{
    http_header(req, "Cache-Control", "no-store");
    http_error(req, 404, "not_found", "%s", what);
}

/* True if If-None-Match names <etag> (or is "*"). */
static bool not_modified(struct http_request *req, const char *etag)
{
    const char *inm = http_request_header(req, "If-None-Match");
    return inm != NULL && (strstr(inm, etag) != NULL || strcmp(inm, "*") == 0);
}

static void send_bytes(struct hls *h, struct http_request *req, struct refbuf *b,
                      const char *content_type, const char *cache_control, const char *etag,
                      struct metric_series *bytes)
{
    if (h->stopping)
        http_header(req, "Connection", "close");
    http_header(req, "Cache-Control", cache_control);
    http_header(req, "ETag", etag);
    if (not_modified(req, etag)) {
        http_reply(req, 304, NULL, NULL);
        return;
    }
    if (req->method == HTTP_HEAD) {
        char len[32];
        snprintf(len, sizeof(len), "%zu", b->len);
        http_header(req, "Content-Length", len);
        http_reply(req, 200, content_type, NULL);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (out == NULL || refbuf_add_to(b, out, 0, b->len) == -1) {
        if (out != NULL)   /* libevent 2.1's evbuffer_free(NULL) crashes */
            evbuffer_free(out);
        http_error(req, 503, "overloaded", "out of memory");
        return;
    }
    metric_add(bytes, (double)b->len);
    http_reply(req, 200, content_type, out);
    evbuffer_free(out);
}

/* FNV-1a 64 over the playlist: its ETag. */
static uint64_t fnv64(const uint8_t *p, size_t n)
{
    uint64_t x = 1469598103934665603ULL;
    while (n--)
        x = (x ^ *p++) * 1099511628211ULL;
    return x;
}

static void serve_playlist(struct hls *h, struct http_request *req, const struct stream *s)
{
    unsigned target;
    uint64_t version;
    struct refbuf *b = s ? stream_playlist(s, &target, &version) : NULL;
    if (b == NULL) {
        not_found(req, "stream not packaged here");
        return;
    }
    char cc[48], etag[40];
    snprintf(cc, sizeof(cc), "public, max-age=%u", target / 2);
    snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", fnv64(b->data, b->len));
    send_bytes(h, req, b, "application/vnd.apple.mpegurl", cc, etag, h->stats.bytes_playlist);
}

static void serve_segment(struct hls *h, struct http_request *req, const struct stream *s,
                          const char *file, uint64_t epoch, uint64_t seq)
{
    struct refbuf *b = s ? stream_segment(s, epoch, seq) : NULL;
    if (b == NULL) {
        not_found(req, "no such segment here");
        return;
    }
    char etag[PL_URI_MAX + 4];
    snprintf(etag, sizeof(etag), "\"%s\"", file);
    send_bytes(h, req, b, "video/mp2t", "public, max-age=" SEGMENT_MAX_AGE ", immutable", etag,
              h->stats.bytes_segment);
}

static void h_live(struct http_request *req)
{
    struct hls *h = req->route_arg;
    const char *name = req->params[0], *file = req->params[1];
    uint64_t epoch = 0, seq = 0;
    if (!stream_name_valid(name)) {
        not_found(req, "no such stream");
        return;
    }
    const struct stream *s = hls_find(h, name);
    switch (playlist_parse_name(file, strlen(file), &epoch, &seq)) {
    case 1:
        serve_playlist(h, req, s);
        return;
    case 2:
        serve_segment(h, req, s, file, epoch, seq);
        return;
    default:
        not_found(req, "no such file");
        return;
    }
}

static const struct http_route hls_routes[] = {
    { HTTP_GET, "/live/{}/{}", h_live, "live" },
    { 0 },
};

int serve_install(struct hls *h)
{
    return http_server_routes(h->http, hls_routes, h);
}
