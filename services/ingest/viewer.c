/* One viewer of a stream: see viewer.h. */
#include "viewer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ingest.h"
#include "publish.h"
#include "relays.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/names.h"
#include "sluice/redis.h"
#include "sluice/slp.h"
#include "sluice/slpclient.h"

#define LOOKUP_EVERY_MS 500        /* not live: asked again this often (stream.start is sooner) */
#define RELINK_MIN_MS 100          /* after a failed subscription, doubling ... */
#define RELINK_MAX_MS 2000         /* ... up to this */
#define RELAY_IDLE_MS 20000        /* SLP.md 10 */
#define LINK_DRAIN_MS 1000

/* A Redis lookup in flight; orphaned (v = NULL) when the viewer goes first. */
struct lookup {
    struct viewer *v;
};

struct viewer {
    struct ingest *ing;
    struct viewer *prev, *next;
    const struct viewer_sink *sink;
    void *arg;
    char stream[STREAM_NAME_MAX + 1];
    char client[SLP_CLIENT_MAX + 1];
    char id[32];
    enum viewer_state state;
    struct slpclient *link;
    struct relay_choice relay;               /* where link goes */
    struct lookup *lookup;
    struct event *timer;                     /* the next lookup */
    struct event *end_ev;                    /* reports the end from the loop */
    enum viewer_end end;
    char why[256];
    int64_t away_since_ms;                   /* without a stream since (0: live) */
    int64_t relink_ms;                       /* backoff */
    uint8_t eos;                             /* the relay's EOS reason, 0 until one */
    bool started;                            /* media went out: a new link starts live */
    bool dropping;                           /* in a gap (viewer_admit) */
    uint64_t dropped_frames;
    struct metric_series *viewers, *bytes, *dropped, *gaps;
};

static const char *const state_names[VS_COUNT] = {
    [VS_LOCATING] = "locating", [VS_SUBSCRIBING] = "subscribing", [VS_LIVE] = "live",
    [VS_ENDING] = "ending",
};

const char *viewer_state_name(enum viewer_state s)
{
    return s < VS_COUNT ? state_names[s] : "?";
}

/* ---- the rule ----------------------------------------------------------- */

bool viewer_admit(bool *dropping, bool keyframe, const struct viewer_lag *lag, size_t limit,
                  bool *gap_ended)
{
    bool over_time = lag->max_ms > 0 && lag->ms > lag->max_ms;
    *gap_ended = false;
    if (*dropping) {
        bool caught_up = lag->bytes <= limit / 2 &&
                         (lag->max_ms <= 0 || lag->ms <= lag->max_ms / 2);
        if (!keyframe || !caught_up)
            return false;
        *dropping = false;
        *gap_ended = true;
        return true;
    }
    if (lag->bytes > limit || over_time) {
        *dropping = true;
        return false;
    }
    return true;
}

/* ---- ending ------------------------------------------------------------- */

static void on_end_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct viewer *v = arg;
    v->sink->end(v->arg, v->end, v->why);    /* the owner stops us */
}

/* The stream is over for <v>: the owner learns it from the loop. */
static void finish(struct viewer *v, enum viewer_end end, const char *why)
{
    if (v->state == VS_ENDING)
        return;
    v->state = VS_ENDING;
    v->end = end;
    snprintf(v->why, sizeof(v->why), "%s", why);
    evtimer_del(v->timer);
    slpclient_free(v->link);                  /* never called from its callbacks */
    v->link = NULL;
    event_active(v->end_ev, EV_TIMEOUT, 0);
}

/* ---- locating ----------------------------------------------------------- */

static void locate(struct viewer *v);
static void subscribe(struct viewer *v, const struct relay_choice *where);

/* Asks again in <ms>, unless the stream has been away for viewer-wait. */
static void look_again(struct viewer *v, int64_t ms)
{
    int64_t wait = v->ing->cfg->viewer_wait_ms;
    int64_t left = v->away_since_ms + wait - clock_mono_ms();
    if (left <= 0) {
        char why[128];
        snprintf(why, sizeof(why), "%s was not live within %lld ms", v->stream,
                 (long long)wait);
        finish(v, VE_NOT_LIVE, why);
        return;
    }
    struct timeval tv = clock_tv_ms(ms < left ? ms : left);
    evtimer_add(v->timer, &tv);
}

/* Without a stream from now on (if not already): locates it again after
 * <delay_ms>. */
static void relocate(struct viewer *v, int64_t delay_ms)
{
    v->state = VS_LOCATING;
    if (v->away_since_ms == 0)
        v->away_since_ms = clock_mono_ms();
    look_again(v, delay_ms);
}

static void on_lookup(const struct redis_reply *reply, const char *err, void *arg)
{
    struct lookup *lk = arg;
    struct viewer *v = lk->v;
    free(lk);
    if (v == NULL)
        return;
    v->lookup = NULL;
    if (v->state != VS_LOCATING)
        return;                               /* stream.start was faster */
    size_t len = 0;
    const char *s = reply && redis_reply_type(reply) == REDIS_R_STRING
                        ? redis_reply_str(reply, &len) : NULL;
    if (s == NULL) {
        if (err != NULL)
            log_debug("view %s: looking up %s: %s", v->id, v->stream, err);
        look_again(v, LOOKUP_EVERY_MS);       /* not live (nil), or Redis failed */
        return;
    }
    char jerr[64];
    struct relay_choice where;
    json_t *rec = json_parse(s, len, jerr, sizeof(jerr));
    int rc = stream_location_parse(rec, &where);
    json_decref(rec);
    if (rc == -1) {
        log_warn("view %s: sluice:stream:%s holds no relay address", v->id, v->stream);
        look_again(v, LOOKUP_EVERY_MS);
        return;
    }
    subscribe(v, &where);
}

/* Where is the stream? sluice:stream:<name> says; while Redis is down, a
 * stream published on this ingest is at the relay we publish it to. */
static void locate(struct viewer *v)
{
    struct relay_choice here;
    if (v->lookup != NULL)
        return;
    if ((v->lookup = calloc(1, sizeof(*v->lookup))) != NULL) {
        v->lookup->v = v;
        if (redis_command(v->ing->redis, on_lookup, v->lookup, "GET sluice:stream:%s",
                          v->stream) == 0)
            return;
        free(v->lookup);
        v->lookup = NULL;
    }
    if (publish_relay(v->ing, v->stream, &here) == 0)
        subscribe(v, &here);
    else
        look_again(v, LOOKUP_EVERY_MS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct viewer *v = arg;
    if (v->state == VS_LOCATING)
        locate(v);
}

/* ---- the subscription --------------------------------------------------- */

static void on_media(struct viewer *v, const struct slp_frame *f)
{
    bool key = (f->flags & SLP_F_KEYFRAME) != 0, gap_ended;
    struct viewer_lag lag = { 0 };
    if (!v->started && !key)
        return;                               /* the relay starts on a keyframe anyway */
    v->sink->lag(v->arg, &lag);
    bool was_dropping = v->dropping;
    if (!viewer_admit(&v->dropping, key, &lag, (size_t)v->ing->cfg->viewer_buffer,
                      &gap_ended)) {
        if (!was_dropping)
            log_warn("view %s (%s): %zu bytes, %lld ms behind: dropping to the next keyframe",
                     v->id, v->stream, lag.bytes, (long long)lag.ms);
        v->dropped_frames++;
        metric_add(v->dropped, (double)f->media.ts_len);
        return;
    }
    if (gap_ended) {
        metric_add(v->gaps, 1);
        log_info("view %s (%s): caught up, going on from a keyframe (%llu frames dropped)",
                 v->id, v->stream, (unsigned long long)v->dropped_frames);
        v->dropped_frames = 0;
    }
    if (v->sink->send(v->arg, f->media.ts, f->media.ts_len) == 0) {
        v->started = true;
        metric_add(v->bytes, (double)f->media.ts_len);
    }
}

static void on_link_frame(void *arg, const struct slp_frame *f)
{
    struct viewer *v = arg;
    char who[4 * SLP_ID_MAX + 8];
    switch (f->type) {
    case SLP_PUBLISH:
        if (v->state != VS_LIVE)
            log_info("view %s (%s): watching %s on relay %s (publisher %s)", v->id, v->client,
                     v->stream, v->relay.addr,
                     log_escape(who, sizeof(who), f->publish.publisher.p,
                                f->publish.publisher.len));
        v->state = VS_LIVE;
        v->away_since_ms = 0;
        v->relink_ms = 0;
        return;
    case SLP_MEDIA:
        on_media(v, f);
        return;
    case SLP_EOS:
        v->eos = f->eos.reason ? f->eos.reason : 0xff;
        slpclient_end(v->link, NULL);         /* closed() follows */
        return;
    default:
        return;
    }
}

static void on_link_accepted(void *arg)
{
    struct viewer *v = arg;
    ingest_count(v->ing, IM_VIEWER_SUBSCRIBES, "accepted", 1);
}

static void on_link_closed(void *arg, enum slpclient_end end, unsigned code, const char *reason)
{
    struct viewer *v = arg;
    char why[64], text[4 * SLP_TEXT_MAX + 8];
    snprintf(text, sizeof(text), "%s", reason);   /* <reason> lives in the link */
    slpclient_free(v->link);
    v->link = NULL;
    uint8_t eos = v->eos;
    v->eos = 0;
    if (eos == SLP_EOS_ENDED || eos == SLP_EOS_REVOKED) {
        snprintf(why, sizeof(why), "the stream %s", eos == SLP_EOS_ENDED ? "ended" : "was revoked");
        finish(v, eos == SLP_EOS_ENDED ? VE_ENDED : VE_REVOKED, why);
        return;
    }
    int64_t delay = LOOKUP_EVERY_MS;
    if (eos != 0) {
        const char *name = slp_eos_name(eos);
        log_info("view %s (%s): relay %s ended %s (%s): looking for it", v->id, v->stream,
                 v->relay.addr, v->stream, name ? name : "?");
        ingest_count(v->ing, IM_VIEWER_SUBSCRIBES, "ended", 1);
    } else if (end == SLPCLIENT_REFUSED && code == SLP_E_NOT_FOUND) {
        log_debug("view %s: %s is not on relay %s", v->id, v->stream, v->relay.addr);
        ingest_count(v->ing, IM_VIEWER_SUBSCRIBES, "not_found", 1);
    } else {
        const char *name = end == SLPCLIENT_REFUSED ? slp_error_name(code) : NULL;
        v->relink_ms = v->relink_ms ? 2 * v->relink_ms : RELINK_MIN_MS;
        if (v->relink_ms > RELINK_MAX_MS)
            v->relink_ms = RELINK_MAX_MS;
        delay = v->relink_ms;
        log_warn("view %s (%s): relay %s %s: %s%s%s; looking again in %lld ms", v->id,
                 v->stream, v->relay.addr, v->state == VS_LIVE ? "link lost" : "failed",
                 name ? name : "", name ? ": " : "", text, (long long)delay);
        ingest_count(v->ing, IM_VIEWER_SUBSCRIBES, v->state == VS_LIVE ? "lost" : "failed", 1);
    }
    relocate(v, delay);
}

static const struct slpclient_handler link_handler = {
    on_link_accepted, on_link_frame, NULL, on_link_closed,
};

/* Subscribes at <where>: from its GOP cache the first time, from the next
 * keyframe after that (the viewer has seen what the cache holds, or part of
 * it). */
static void subscribe(struct viewer *v, const struct relay_choice *where)
{
    evtimer_del(v->timer);
    slpclient_free(v->link);
    v->link = NULL;
    v->eos = 0;
    v->relay = *where;
    struct slp_frame req = { .type = SLP_SUBSCRIBE, .subscribe = {
        slp_cstr(v->stream), v->started ? SLP_START_LIVE : SLP_START_KEYFRAME, 0 } };
    struct slpclient_options o = {
        .node = v->ing->d->node_id,
        .agent = INGEST_AGENT,
        .connect_timeout_ms = (int)v->ing->cfg->relay_connect_timeout_ms,
        .idle_timeout_ms = RELAY_IDLE_MS,
        .drain_ms = LINK_DRAIN_MS,
    };
    v->link = slpclient_start(v->ing->d->base, v->ing->d->dns, where->addr, &req, &o,
                              &link_handler, v);
    if (v->link == NULL) {
        relocate(v, RELINK_MAX_MS);
        return;
    }
    v->state = VS_SUBSCRIBING;
}

static bool same_relay(const struct relay_choice *a, const char *addr, const char *id)
{
    if (a->id[0] != '\0' && id[0] != '\0')
        return strcmp(a->id, id) == 0;
    return strcmp(a->addr, addr) == 0;
}

void viewer_stream_started(struct ingest *ing, const char *stream, const char *relay_addr,
                           const char *relay_id)
{
    struct relay_choice where;
    snprintf(where.addr, sizeof(where.addr), "%s", relay_addr);
    snprintf(where.id, sizeof(where.id), "%s", relay_id);
    for (struct viewer *v = ing->viewers; v != NULL; v = v->next) {
        if (v->state == VS_ENDING || strcmp(v->stream, stream) != 0)
            continue;
        if (v->state != VS_LOCATING) {
            if (same_relay(&v->relay, relay_addr, relay_id))
                continue;                     /* a reconnect or takeover there */
            log_info("view %s (%s): %s moved to relay %s: following it", v->id, v->stream,
                     v->stream, relay_addr);
            ingest_count(ing, IM_VIEWER_SUBSCRIBES, "moved", 1);
        }
        subscribe(v, &where);
    }
}

/* ---- life --------------------------------------------------------------- */

/* The per-stream series are shared by the viewers of a stream: they go with
 * the last one. */
static void release_series(struct viewer *v)
{
    metric_add(v->viewers, -1);
    if (v->viewers != NULL && metric_value(v->viewers) <= 0) {
        metric_remove(v->viewers);
        metric_remove(v->bytes);
        metric_remove(v->dropped);
        metric_remove(v->gaps);
    }
}

static void free_now(struct viewer *v)
{
    struct ingest *ing = v->ing;
    if (v->prev)
        v->prev->next = v->next;
    else if (ing->viewers == v)
        ing->viewers = v->next;
    if (v->next)
        v->next->prev = v->prev;
    if (v->lookup != NULL)
        v->lookup->v = NULL;                  /* the reply, when it comes, finds nobody */
    slpclient_free(v->link);
    if (v->timer)
        event_free(v->timer);
    if (v->end_ev)
        event_free(v->end_ev);
    free(v);
}

struct viewer *viewer_start(struct ingest *ing, const struct viewer_params *p,
                            const struct viewer_sink *sink, void *arg)
{
    struct viewer *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    v->ing = ing;
    v->sink = sink;
    v->arg = arg;
    snprintf(v->stream, sizeof(v->stream), "%s", p->stream);
    snprintf(v->client, sizeof(v->client), "%s", p->client);
    snprintf(v->id, sizeof(v->id), "%s", p->conn_id);
    v->next = ing->viewers;
    if (ing->viewers)
        ing->viewers->prev = v;
    ing->viewers = v;
    v->timer = evtimer_new(ing->d->base, on_timer, v);
    v->end_ev = evtimer_new(ing->d->base, on_end_ev, v);
    if (v->timer == NULL || v->end_ev == NULL) {
        log_error("view %s: out of memory", v->id);
        free_now(v);
        return NULL;
    }
    v->viewers = metric_at(ing->m[IM_VIEWERS], v->stream);
    v->bytes = metric_at(ing->m[IM_VIEWER_BYTES], v->stream);
    v->dropped = metric_at(ing->m[IM_VIEWER_DROPPED], v->stream);
    v->gaps = metric_at(ing->m[IM_VIEWER_GAPS], v->stream);
    metric_add(v->viewers, 1);
    v->state = VS_LOCATING;
    v->away_since_ms = clock_mono_ms();
    locate(v);
    return v;
}

void viewer_stop(struct viewer *v)
{
    if (v == NULL)
        return;
    release_series(v);
    free_now(v);
}

void viewer_count_states(const struct ingest *ing, unsigned counts[VS_COUNT])
{
    for (int s = 0; s < VS_COUNT; s++)
        counts[s] = 0;
    for (const struct viewer *v = ing->viewers; v != NULL; v = v->next)
        counts[v->state]++;
}

void viewer_free_all(struct ingest *ing)
{
    while (ing->viewers != NULL)
        free_now(ing->viewers);
}
