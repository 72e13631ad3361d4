/* sluice-discovery: wiring. See discovery.h and docs/discovery.md. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "discovery.h"
#include "sluice/admin.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"

#define OPT(name, type, field, def, min, max, help) \
    { name, type, offsetof(struct discovery_config, field), def, min, max, help }

static const struct config_opt discovery_opts[] = {
    OPT("admin-listen", CONF_STR, admin_listen, "0.0.0.0:9105", 1, 0,
        "admin HTTP listen address (/metrics, /healthz, /readyz)"),
    OPT("dir", CONF_STR, dir, "/var/lib/sluice/hls", 1, 0,
        "the origin directory hls writes (origin.json, live/<name>/index.m3u8)"),
    OPT("ttl", CONF_MS, ttl_ms, "20s", 1000, 3600000,
        "TTL of sluice:origin:<name>, renewed each time the playlist is replaced; keep it "
        "above hls's lease-ttl + 2 x target duration + a margin of one more target duration "
        "and a second, so that the key outlives an origin failover (20s for hls's defaults, "
        "10s + 2 x 2s + 3s)"),
    OPT("retry", CONF_MS, retry_ms, "2s", 100, 600000,
        "how often to retry while the directory or origin.json is unusable"),
    OPT("redis-timeout", CONF_MS, redis_timeout_ms, "1s", 50, 60000,
        "Redis connect and command timeout"),
    { NULL },
};

enum { M_STREAMS, M_ACTIVE, M_SEEN, M_REFRESHES, M_ERRORS, M_RESCANS, M_COUNT };
static const struct metric_def discovery_metric_defs[] = {
    { "sluice_discovery_streams", METRIC_GAUGE, "Stream directories watched" },
    { "sluice_discovery_streams_active", METRIC_GAUGE,
      "Streams whose origin key Redis took less than a TTL ago" },
    { "sluice_discovery_streams_seen_total", METRIC_COUNTER,
      "Stream directories that appeared (or were found by a scan)" },
    { "sluice_discovery_refreshes_total", METRIC_COUNTER,
      "Origin keys written to Redis" },
    { "sluice_discovery_errors_total", METRIC_COUNTER,
      "Errors: redis (a write failed), origin (origin.json unusable), watch "
      "(inotify), invalid_name (a directory outside the stream-name grammar)",
      { "reason" } },
    { "sluice_discovery_rescans_total", METRIC_COUNTER,
      "Full scans of the directory, by cause", { "reason" } },
    { NULL },
};

static int init_metrics(struct discovery *ds)
{
    static const char *const errors[DE_COUNT] = { "redis", "origin", "watch", "invalid_name" };
    static const char *const rescans[RS_COUNT] = { "start", "redis", "overflow", "origin",
                                                   "retry" };
    struct metric *m[M_COUNT];
    if (metrics_register(ds->d->metrics, discovery_metric_defs, m) == -1)
        return -1;
    ds->streams_gauge = metric_at(m[M_STREAMS]);
    ds->active_gauge = metric_at(m[M_ACTIVE]);
    ds->seen = metric_at(m[M_SEEN]);
    ds->refreshes = metric_at(m[M_REFRESHES]);
    for (int i = 0; i < DE_COUNT; i++)
        ds->errors[i] = metric_at(m[M_ERRORS], errors[i]);
    for (int i = 0; i < RS_COUNT; i++)
        ds->rescans[i] = metric_at(m[M_RESCANS], rescans[i]);
    return 0;
}

static void on_collect(void *arg)
{
    struct discovery *ds = arg;
    metric_set(ds->active_gauge, (double)watch_active(ds));
}

static bool ready(json_t *checks, void *arg)
{
    struct discovery *ds = arg;
    bool redis = redis_is_up(ds->redis);
    json_object_set_new(checks, "redis", json_string(redis ? "ok" : "unreachable"));
    json_object_set_new(checks, "directory", json_string(ds->dir_err[0] ? ds->dir_err : "ok"));
    json_object_set_new(checks, "origin.json",
                        json_string(ds->origin_ok ? "ok" : ds->origin_err));
    json_object_set_new(checks, "inotify", json_string(ds->watch_err[0] ? ds->watch_err : "ok"));
    return redis && !ds->dir_err[0] && ds->origin_ok && !ds->watch_err[0];
}

/* Redis lost every key if it restarted, and missed what was written while it
 * was away: write them all again. */
static void on_redis_state(bool up, void *arg)
{
    struct discovery *ds = arg;
    if (up && ds->iev != NULL)
        watch_rescan(ds, RS_REDIS);
}

/* Nothing to drain: the keys expire by themselves, and a write still in flight
 * is as good as lost. Stop watching; the loop then ends at once. */
static void discovery_stop(void *arg)
{
    struct discovery *ds = arg;
    if (ds->iev)
        event_del(ds->iev);
    if (ds->retry)
        evtimer_del(ds->retry);
    if (ds->flush)
        evtimer_del(ds->flush);
}

static int discovery_start(struct discovery *ds, struct daemon *d,
                           const struct discovery_config *cfg)
{
    ds->d = d;
    ds->cfg = cfg;
    if (init_metrics(ds) == -1)
        return -1;
    struct redis_options ro = { .url = d->common.redis_url,
                                .connect_timeout_ms = (int)cfg->redis_timeout_ms,
                                .command_timeout_ms = (int)cfg->redis_timeout_ms };
    ds->redis = redis_new(d->base, d->dns, &ro);
    if (ds->redis == NULL)
        return -1;
    snprintf(ds->origin_err, sizeof(ds->origin_err), "not read yet");
    if (publish_start(ds) == -1 || watch_start(ds) == -1)
        return -1;
    redis_set_state_cb(ds->redis, on_redis_state, ds);
    char *err = NULL;
    if (admin_start(d, cfg->admin_listen, ready, ds, &err) == NULL) {
        log_error("%s", err ? err : "cannot start the admin server");
        free(err);
        return -1;
    }
    metrics_on_collect(d->metrics, on_collect, ds);
    daemon_on_stop(d, discovery_stop, ds);
    log_info("watching %s, origin keys live %lld ms", cfg->dir, (long long)cfg->ttl_ms);
    return 0;
}

int main(int argc, char **argv)
{
    struct discovery_config cfg = { 0 };
    int rc;
    struct daemon *d = daemon_new("discovery", discovery_opts, &cfg, argc, argv, &rc);
    if (d == NULL)
        return rc;
    struct discovery ds = { .ifd = -1 };
    if (discovery_start(&ds, d, &cfg) == 0) {
        daemon_run(d);
        rc = 0;
    } else {
        rc = 1;
    }
    redis_free(ds.redis);   /* pending writes run their callbacks, which use ds */
    watch_stop(&ds);
    publish_stop(&ds);
    int frc = daemon_free(d, discovery_opts, &cfg);
    return rc ? rc : frc;
}
