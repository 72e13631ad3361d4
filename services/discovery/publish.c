/* Refreshing sluice:origin:<name> in Redis: see discovery.h. */
#include "discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"

/* What a SET in flight refers to: the stream by name, since its directory may
 * be gone when the reply comes. */
struct sent {
    struct discovery *ds;
    int64_t at_ms;
    char name[STREAM_NAME_MAX + 1];
};

static struct stream_dir *find(struct discovery *ds, const char *name)
{
    for (size_t i = 0; i < ds->nstreams; i++) {
        if (strcmp(ds->streams[i].name, name) == 0)
            return &ds->streams[i];
    }
    return NULL;
}

static void on_set(const struct redis_reply *reply, const char *err, void *arg)
{
    (void)reply;
    struct sent *s = arg;
    struct discovery *ds = s->ds;
    if (err != NULL) {
        metric_add(ds->errors[DE_REDIS], 1);
        log_debug("stream %s: refresh failed: %s", s->name, err);
    } else {
        metric_add(ds->refreshes, 1);
        struct stream_dir *sd = find(ds, s->name);
        if (sd != NULL)
            sd->last_ok_ms = s->at_ms;
    }
    free(s);
}

/* The record of docs/redis.md: {"url", "manifest", "updated_at"}. */
static char *record(const struct discovery *ds, const char *name, int64_t written_wall_us)
{
    char manifest[STREAM_NAME_MAX + 32], updated[32];
    snprintf(manifest, sizeof(manifest), "/live/%s/index.m3u8", name);
    clock_rfc3339(updated, sizeof(updated), written_wall_us);
    json_t *v = json_pack("{s:s, s:s, s:s}", "url", ds->origin.url, "manifest", manifest,
                          "updated_at", updated);
    char *out = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return out;
}

static int64_t min_interval(const struct discovery *ds)
{
    return ds->cfg->ttl_ms / 10;
}

static void send_refresh(struct discovery *ds, struct stream_dir *s, int64_t written_wall_us,
                         int64_t age_ms);

/* Sends what the rate bound held back, once its time is up. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct discovery *ds = arg;
    int64_t now = clock_mono_ms(), next = INT64_MAX;
    for (size_t i = 0; i < ds->nstreams; i++) {
        struct stream_dir *s = &ds->streams[i];
        if (s->deferred_wall_us == 0)
            continue;
        int64_t due = s->last_sent_ms + min_interval(ds);
        if (due <= now) {
            int64_t written = s->deferred_wall_us;
            s->deferred_wall_us = 0;
            int64_t age = (clock_wall_us() - written) / 1000;
            send_refresh(ds, s, written, age < 0 ? 0 : age);
        } else if (due < next) {
            next = due;
        }
    }
    if (next != INT64_MAX) {
        struct timeval tv = clock_tv_ms(next - now);
        evtimer_add(ds->flush, &tv);
    }
}

int publish_start(struct discovery *ds)
{
    ds->flush = evtimer_new(ds->d->base, on_flush, ds);
    return ds->flush ? 0 : -1;
}

void publish_stop(struct discovery *ds)
{
    if (ds->flush)
        event_free(ds->flush);
    ds->flush = NULL;
}

void publish_refresh(struct discovery *ds, struct stream_dir *s, int64_t written_wall_us,
                     int64_t age_ms)
{
    int64_t now = clock_mono_ms();
    if (s->last_sent_ms != 0 && now - s->last_sent_ms < min_interval(ds)) {
        /* the playlist is replaced very often: send the latest when time is up */
        s->deferred_wall_us = written_wall_us;
        if (!evtimer_pending(ds->flush, NULL)) {
            struct timeval tv = clock_tv_ms(s->last_sent_ms + min_interval(ds) - now);
            evtimer_add(ds->flush, &tv);
        }
        return;
    }
    s->deferred_wall_us = 0;
    send_refresh(ds, s, written_wall_us, age_ms);
}

static void send_refresh(struct discovery *ds, struct stream_dir *s, int64_t written_wall_us,
                         int64_t age_ms)
{
    int64_t now = clock_mono_ms(), ttl = ds->cfg->ttl_ms;
    if (!ds->origin_ok || !redis_is_up(ds->redis))
        return;   /* /readyz says why; a rescan follows the fix */
    if (age_ms >= ttl)
        return;   /* an old playlist: the stream is not packaged here any more */
    char *value = record(ds, s->name, written_wall_us);
    struct sent *sent = malloc(sizeof(*sent));
    if (value == NULL || sent == NULL) {
        free(value);
        free(sent);
        metric_add(ds->errors[DE_REDIS], 1);
        return;
    }
    sent->ds = ds;
    sent->at_ms = now - age_ms;
    snprintf(sent->name, sizeof(sent->name), "%s", s->name);
    char key[STREAM_NAME_MAX + 16], px[24];
    snprintf(key, sizeof(key), "sluice:origin:%s", s->name);
    snprintf(px, sizeof(px), "%lld", (long long)(ttl - age_ms));
    const char *argv[] = { "SET", key, value, "PX", px };
    size_t lens[] = { 3, strlen(key), strlen(value), 2, strlen(px) };
    if (redis_commandv(ds->redis, on_set, sent, 5, argv, lens) == -1) {
        metric_add(ds->errors[DE_REDIS], 1);   /* the pending cap: Redis is stuck */
        free(sent);
    } else {
        s->last_sent_ms = now;
    }
    free(value);
}
