/* sluice-hls: options and wiring. See hls.h for the parts and docs/hls.md for
 * the behaviour. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/event.h>

#include "catalog.h"
#include "hls.h"
#include "link.h"
#include "serve.h"
#include "sluice/admin.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/net.h"
#include "sluice/redis.h"
#include "sluice/refbuf.h"
#include "sluice/slp-t.h"
#include "stats.h"
#include "stream.h"

#define TICK_MS 250
#define READ_MS 40           /* relay links are read this often (link_read_all) */
#define ORIGIN_CHECK_MS 5000
#define DRAIN_POLL_MS 50
#define NBUCKETS 4096

#define OPT(name, type, field, def, min, max, help) \
    { name, type, offsetof(struct hls_config, field), def, min, max, help }

static const struct config_opt hls_opts[] = {
    OPT("listen", CONF_STR, listen, "0.0.0.0:8080", 1, 0,
        "HTTP listen address for /live/<name>/index.m3u8 and segments"),
    OPT("admin-listen", CONF_STR, admin_listen, "0.0.0.0:9103", 1, 0,
        "admin HTTP listen address (/metrics, /healthz, /readyz)"),
    OPT("dir", CONF_STR, dir, "/var/lib/sluice/hls", 1, 0,
        "output directory: origin.json and live/<name>/ (discovery watches it)"),
    OPT("advertise-url", CONF_STR, advertise_url, "", 0, 0,
        "the URL other daemons reach this origin at, http://host[:port], written to "
        "origin.json (default: the listen address, a wildcard host replaced by the host name)"),
    OPT("target-duration", CONF_MS, target_duration_ms, "2s", 500, 30000,
        "segments are cut at the first keyframe once they hold this much media"),
    OPT("max-target-duration", CONF_INT, max_target_duration, "10", 1, 60,
        "bound on EXT-X-TARGETDURATION, in seconds, when a stream's GOP is longer than "
        "target-duration"),
    OPT("window", CONF_INT, window, "6", 1, 32,
        "segments in the live playlist (at least three target durations are kept)"),
    OPT("lease-ttl", CONF_MS, lease_ttl_ms, "10s", 1000, 300000,
        "TTL of sluice:lease:hls:<name>: another origin takes a stream over within this plus "
        "two target durations when its owner dies (discovery's ttl must exceed that plus "
        "one more target duration and a second: see docs/hls.md, Failover timing)"),
    OPT("end-grace", CONF_MS, end_grace_ms, "10s", 0, 3600000,
        "a stream without a publisher this long gets EXT-X-ENDLIST; one back sooner goes on "
        "with a discontinuity"),
    OPT("linger", CONF_MS, linger_ms, "30s", 0, 3600000,
        "how long an ended stream (or one another origin took) stays served from here"),
    OPT("scan-interval", CONF_MS, scan_interval_ms, "5s", 100, 600000,
        "how often sluice:stream:* is scanned for live streams (events come at once)"),
    OPT("max-streams", CONF_INT, max_streams, "1000", 1, 100000,
        "streams packaged here at most; beyond, other origins take them"),
    OPT("max-segment-size", CONF_BYTES, max_segment_size, "16M", 1048576, 268435456,
        "bound on one segment's size (memory per stream is about 2 x window of them)"),
    OPT("redis-timeout", CONF_MS, redis_timeout_ms, "1s", 50, 60000,
        "Redis connect and command timeout"),
    OPT("relay-timeout", CONF_MS, relay_timeout_ms, "5s", 100, 60000,
        "bound on connecting and subscribing to a relay"),
    OPT("settle", CONF_MS, settle_ms, "10s", 0, 600000,
        "after a Redis outage, how long this origin leaves others' streams alone, so that "
        "their owners take their leases back first (keep it at least lease-ttl)"),
    { NULL },
};

/* ---- housekeeping -------------------------------------------------------- */

static void tick_stream(struct stream *s, void *arg)
{
    stream_tick(s, *(int64_t *)arg);
}

static void write_origin(struct hls *h)
{
    if (disk_write_origin(&h->disk, h->advertise, h->d->node_id, clock_wall_us()) == 0)
        log_info("wrote %s/origin.json: %s", h->cfg->dir, h->advertise);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hls *h = arg;
    static int64_t origin_checked;
    int64_t now = clock_mono_ms();
    hls_each(h, tick_stream, &now);
    if (now - origin_checked >= ORIGIN_CHECK_MS) {
        origin_checked = now;
        if (!disk_has_origin(&h->disk))
            write_origin(h);
    }
}

static void on_read_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    link_read_all();
}

static bool ready(json_t *checks, void *arg)
{
    struct hls *h = arg;
    bool redis = redis_is_up(h->redis), dir = disk_ok(&h->disk), origin = disk_has_origin(&h->disk);
    json_object_set_new(checks, "redis", json_string(redis ? "ok" : "unreachable"));
    json_object_set_new(checks, "directory", json_string(dir ? "ok" : h->disk.err));
    json_object_set_new(checks, "origin.json", json_string(origin ? "ok" : "missing"));
    return redis && dir && origin;
}

static void on_redis_state(bool up, void *arg)
{
    catalog_redis_state(arg, up);
}

/* ---- stop ---------------------------------------------------------------- */

static void on_drain_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hls *h = arg;
    if (h->releasing == 0 && h->nowned == 0 && refbuf_sends() == 0) {
        daemon_release(h->d);
        return;
    }
    struct timeval tv = clock_tv_ms(DRAIN_POLL_MS);
    evtimer_add(h->drain, &tv);
}

static void stop_stream(struct stream *s, void *arg)
{
    (void)arg;
    stream_stop(s);
}

/* SIGTERM: stop accepting; owners publish what they have, record it and
 * release their leases (another origin goes on at once, told by an
 * hls.released event); replies under way finish. No EXT-X-ENDLIST: the
 * stream is not over. */
static void hls_stop(void *arg)
{
    struct hls *h = arg;
    h->stopping = true;
    http_server_stop_accepting(h->http);
    catalog_stop(h);
    log_info("stopping: releasing %u streams", h->nowned);
    hls_each(h, stop_stream, NULL);
    daemon_hold(h->d);
    on_drain_poll(-1, 0, h);
}

/* ---- start --------------------------------------------------------------- */

static int make_holder(struct hls *h)
{
    uint8_t r[6];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return -1;
    snprintf(h->holder, sizeof(h->holder), "%.115s/%02x%02x%02x%02x%02x%02x", h->d->node_id, r[0],
             r[1], r[2], r[3], r[4], r[5]);
    return 0;
}

/* advertise-url, or http://<listen host, or the host name>:<port>. */
static int make_advertise(struct hls *h)
{
    const char *url = h->cfg->advertise_url;
    char buf[ORIGIN_URL_MAX + 64];
    if (url[0] == '\0') {
        char host[256];
        int port;
        if (net_split_hostport(h->cfg->listen, host, sizeof(host), &port) == -1)
            return -1;
        if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
            if (gethostname(host, sizeof(host)) == -1)
                return -1;
            host[sizeof(host) - 1] = '\0';
        }
        snprintf(buf, sizeof(buf), strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host,
                 http_server_port(h->http));
        url = buf;
    }
    if (origin_url_normalize(url, strlen(url), h->advertise, sizeof(h->advertise)) == -1) {
        log_error("advertise-url %s is not http://host[:port]", url);
        return -1;
    }
    return 0;
}

static int make_parts(struct hls *h)
{
    const struct hls_config *c = h->cfg;
    /* reconnect within a second of Redis coming back: an owner must take its
     * leases back well within another origin's settle */
    struct redis_options ro = { .url = h->d->common.redis_url,
                                .connect_timeout_ms = (int)c->redis_timeout_ms,
                                .command_timeout_ms = (int)c->redis_timeout_ms,
                                .backoff_max_ms = 1000 };
    struct http_server_options ho = { .name = "hls", .max_body = 1024, .max_write = 4 << 20,
                                      .metrics = h->d->metrics };
    h->nbuckets = NBUCKETS;
    h->bucket = calloc(NBUCKETS, sizeof(*h->bucket));
    h->redis = redis_new(h->d->base, h->d->dns, &ro);
    h->http = http_server_new(h->d->base, &ho);
    h->tick = event_new(h->d->base, -1, EV_PERSIST, on_tick, h);
    h->drain = evtimer_new(h->d->base, on_drain_poll, h);
    h->reader = event_new(h->d->base, -1, EV_PERSIST, on_read_tick, h);
    if (!h->bucket || !h->redis || !h->http || !h->tick || !h->drain || !h->reader)
        return -1;
    return 0;
}

static int hls_start(struct hls *h, struct daemon *d, const struct hls_config *cfg)
{
    h->d = d;
    h->cfg = cfg;
    if (make_holder(h) == -1 || hls_stats_init(h) == -1 || make_parts(h) == -1)
        return -1;
    if (disk_open(&h->disk, cfg->dir) == -1) {
        log_error("output directory %s: %s", cfg->dir, h->disk.err);
        return -1;
    }
    char *err = NULL;
    if (serve_install(h) == -1 || http_server_listen(h->http, cfg->listen, &err) == -1 ||
        admin_start(d, cfg->admin_listen, ready, h, &err) == NULL) {
        log_error("%s", err ? err : "cannot start the HTTP servers");
        free(err);
        return -1;
    }
    if (make_advertise(h) == -1)
        return -1;
    write_origin(h);
    redis_set_state_cb(h->redis, on_redis_state, h);
    if (catalog_start(h) == -1)
        return -1;
    metrics_on_collect(d->metrics, hls_stats_collect, h);
    struct timeval tv = clock_tv_ms(TICK_MS), rtv = clock_tv_ms(READ_MS);
    evtimer_add(h->tick, &tv);
    evtimer_add(h->reader, &rtv);
    daemon_on_stop(d, hls_stop, h);
    log_info("origin %s (holder %s): serving on %s, packaging into %s, target %lld ms, window %lld",
             h->advertise, h->holder, cfg->listen, cfg->dir, (long long)cfg->target_duration_ms,
             (long long)cfg->window);
    return 0;
}

static void free_stream(struct stream *s, void *arg)
{
    hls_remove(arg, s);
    stream_free(s);
}

/* Frees in this order: the streams (their Redis commands and leases let go
 * of them), Redis (pending callbacks find nothing), the links still closing,
 * the HTTP server (replies under way drop their references). */
static void hls_free(struct hls *h)
{
    catalog_stop(h);
    if (h->bucket != NULL)
        hls_each(h, free_stream, h);
    redis_free(h->redis);
    link_free_all();
    http_server_free(h->http);
    disk_close(&h->disk);
    if (h->tick)
        event_free(h->tick);
    if (h->drain)
        event_free(h->drain);
    if (h->reader)
        event_free(h->reader);
    free(h->bucket);
}

int main(int argc, char **argv)
{
    struct hls_config cfg = { 0 };
    int rc;
    struct daemon *d = daemon_new("hls", hls_opts, &cfg, argc, argv, &rc);
    if (d == NULL)
        return rc;
    struct hls h = { 0 };
    if (hls_start(&h, d, &cfg) == 0) {
        daemon_run(d);
        rc = 0;
    } else {
        rc = 1;
    }
    hls_free(&h);
    int frc = daemon_free(d, hls_opts, &cfg);
    return rc ? rc : frc;
}
