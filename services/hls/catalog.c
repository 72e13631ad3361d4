/* The catalog of live streams: see catalog.h. */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "hls.h"
#include "records.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "sluice/redis.h"
#include "stream.h"

#define STREAM_PREFIX "sluice:stream:"
#define SCAN_COUNT "500"
#define MAX_SCAN_STEPS 10000      /* a scan never runs away (10000 x 500 keys) */

bool hls_may_take(const struct hls *h, int64_t now_ms, int64_t *wait_ms)
{
    if (!redis_is_up(h->redis)) {
        *wait_ms = 1000;
        return false;
    }
    int64_t settled = h->redis_back_ms + h->cfg->settle_ms;
    if (h->redis_back_ms != 0 && now_ms < settled) {
        *wait_ms = settled - now_ms;
        return false;
    }
    *wait_ms = 0;
    return true;
}

/* ---- events --------------------------------------------------------------- */

static void on_event(const char *channel, const char *msg, size_t len, void *arg)
{
    (void)channel;
    struct hls *h = arg;
    struct event_msg ev;
    char why[160];
    if (h->stopping)
        return;
    if (records_event_parse(msg, len, &ev, why, sizeof(why)) == -1) {
        char safe[128];
        log_warn("sluice:events: ignoring a message (%s): %s", why,
                 log_escape(safe, sizeof(safe), msg, len));
        return;
    }
    struct stream *s;
    switch (ev.type) {
    case EV_STREAM_START:
        log_debug("event: %s started on relay %s", ev.stream, ev.relay);
        if ((s = stream_get(h, ev.stream)) != NULL)
            stream_seen_live(s, ev.relay);
        return;
    case EV_STREAM_STOP:
        log_debug("event: %s stopped", ev.stream);
        if ((s = hls_find(h, ev.stream)) != NULL)
            stream_gone(s);
        return;
    case EV_HLS_RELEASED:
        if ((s = hls_find(h, ev.stream)) != NULL)
            stream_try_now(s);
        return;
    case EV_OTHER:
        return;
    }
}

/* ---- scans ---------------------------------------------------------------- */

static void scan_step(struct hls *h, const char *cursor, unsigned step);

struct gone_arg {
    struct hls *h;
};

static void forget_unseen(struct stream *s, void *arg)
{
    struct gone_arg *g = arg;
    if (stream_live(s) && stream_scan_gen(s) != g->h->scan_gen) {
        log_debug("stream %s: no longer in Redis", stream_name(s));
        stream_gone(s);
    }
}

static void scan_done(struct hls *h, bool complete)
{
    h->scanning = false;
    if (complete) {
        struct gone_arg g = { h };
        hls_each(h, forget_unseen, &g);
    }
    struct timeval tv = clock_tv_ms(h->cfg->scan_interval_ms);
    evtimer_add(h->scan_timer, &tv);
}

static void seen_key(struct hls *h, const struct redis_reply *k)
{
    size_t len;
    const char *key = redis_reply_str(k, &len);
    size_t plen = sizeof(STREAM_PREFIX) - 1;
    if (key == NULL || len <= plen || len - plen > STREAM_NAME_MAX)
        return;
    char name[STREAM_NAME_MAX + 1];
    memcpy(name, key + plen, len - plen);
    name[len - plen] = '\0';
    struct stream *s = stream_get(h, name);
    if (s != NULL)
        stream_seen_live(s, NULL);
}

struct scan_ctx {
    struct hls *h;
    unsigned step;
};

static void on_scan(const struct redis_reply *reply, const char *err, void *arg)
{
    struct scan_ctx *c = arg;
    struct hls *h = c->h;
    unsigned step = c->step;
    free(c);
    if (h->stopping) {
        h->scanning = false;
        return;
    }
    const struct redis_reply *cur, *keys;
    if (err != NULL || redis_reply_type(reply) != REDIS_R_ARRAY || redis_reply_len(reply) != 2 ||
        redis_reply_type(cur = redis_reply_at(reply, 0)) != REDIS_R_STRING ||
        redis_reply_type(keys = redis_reply_at(reply, 1)) != REDIS_R_ARRAY) {
        log_debug("scan of %s*: %s", STREAM_PREFIX, err ? err : "unexpected reply");
        scan_done(h, false);
        return;
    }
    for (size_t i = 0; i < redis_reply_len(keys); i++) {
        const struct redis_reply *k = redis_reply_at(keys, i);
        if (redis_reply_type(k) == REDIS_R_STRING)
            seen_key(h, k);
    }
    size_t len;
    const char *next = redis_reply_str(cur, &len);
    char cursor[32];
    if (len == 0 || len >= sizeof(cursor) || step + 1 >= MAX_SCAN_STEPS) {
        scan_done(h, false);
        return;
    }
    memcpy(cursor, next, len);
    cursor[len] = '\0';
    if (strcmp(cursor, "0") == 0)
        scan_done(h, true);
    else
        scan_step(h, cursor, step + 1);
}

static void scan_step(struct hls *h, const char *cursor, unsigned step)
{
    struct scan_ctx *c = malloc(sizeof(*c));
    if (c != NULL) {
        c->h = h;
        c->step = step;
        if (redis_command(h->redis, on_scan, c, "SCAN %s MATCH " STREAM_PREFIX "* COUNT "
                          SCAN_COUNT, cursor) == 0)
            return;
        free(c);
    }
    scan_done(h, false);
}

static void scan_now(struct hls *h)
{
    if (h->scanning || h->stopping)
        return;
    evtimer_del(h->scan_timer);
    h->scanning = true;
    h->scan_gen++;
    scan_step(h, "0", 0);
}

static void on_scan_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    scan_now(arg);
}

/* Subscribed (again): whatever was published meanwhile is lost, so scan. */
static void on_subscribed(void *arg)
{
    struct hls *h = arg;
    log_info("listening to sluice:events");
    scan_now(h);
}

/* ---- lifecycle ------------------------------------------------------------ */

static void redis_up(struct stream *s, void *arg)
{
    (void)arg;
    stream_redis_up(s);
}

void catalog_redis_state(struct hls *h, bool up)
{
    if (!up) {
        log_warn("redis: unreachable; packaging goes on, leases will be taken again");
        return;
    }
    if (h->redis_was_up) {
        h->redis_back_ms = clock_mono_ms();
        log_info("redis: back; owners take their leases again first (%lld ms)",
                 (long long)h->cfg->settle_ms);
    }
    h->redis_was_up = true;
    hls_each(h, redis_up, NULL);
}

int catalog_start(struct hls *h)
{
    h->scan_timer = evtimer_new(h->d->base, on_scan_timer, h);
    if (h->scan_timer == NULL)
        return -1;
    if (redis_subscribe(h->redis, "sluice:events", on_event, on_subscribed, h) == -1)
        return -1;
    struct timeval tv = clock_tv_ms(h->cfg->scan_interval_ms);
    evtimer_add(h->scan_timer, &tv);
    return 0;
}

void catalog_stop(struct hls *h)
{
    if (h->scan_timer != NULL) {
        event_free(h->scan_timer);
        h->scan_timer = NULL;
    }
}
