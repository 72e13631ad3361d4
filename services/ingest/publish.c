/* One stream into the suite: see publish.h. */
#include "publish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "ingest.h"
#include "relays.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/leasekeep.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/names.h"
#include "sluice/slp.h"
#include "sluice/slpclient.h"
#include "sluice/ts.h"

#define TICK_MS 50                 /* the annotator's delay bound is applied this often */
#define BACKOFF_MIN_MS 200
#define RELAY_IDLE_MS 20000        /* SLP.md 10 */
#define DRAIN_MS 3000              /* the last frames after EOS */

struct publish {
    struct ingest *ing;
    const struct publish_handler *h;
    void *arg;
    struct publish *prev, *next;
    char stream[STREAM_NAME_MAX + 1];
    char protocol[SLP_PROTOCOL_MAX + 1];
    char client[SLP_CLIENT_MAX + 1];
    char id[SLP_ID_MAX + 1];                  /* the publisher id */
    int64_t started_us;
    enum publish_state state;
    struct leasekeep *lease;
    struct slpclient *link;
    struct relay_choice relay;
    char avoid[RELAY_ID_MAX + 1];             /* the relay that just failed */
    struct ts_annotator *ann;
    struct evbuffer *preroll;                 /* MEDIA frames since the latest keyframe */
    bool preroll_key;                         /* the pre-roll starts on a keyframe */
    bool gap;                                 /* the next keyframe gets DISCONTINUITY */
    bool dropping;                            /* back-pressure: waiting for a keyframe */
    bool told_no_relay;
    bool was_live;                            /* a relay accepted us once */
    int64_t backoff_ms;
    struct event *retry;                      /* backoff */
    struct event *tick;                       /* the annotator's delay bound */
    int64_t last_feed_ms;
    struct metric_series *bytes, *dropped;
    bool lease_done, link_done;               /* stopping: what is left to finish */
};

static const char *const state_names[PS_COUNT] = {
    [PS_LEASING] = "leasing", [PS_CONNECTING] = "connecting", [PS_LIVE] = "live",
    [PS_BACKOFF] = "backoff", [PS_STOPPING] = "stopping",
};

const char *publish_state_name(enum publish_state s)
{
    return s < PS_COUNT ? state_names[s] : "?";
}

enum publish_state publish_state(const struct publish *p)
{
    return p->state;
}

struct publish *publish_next(const struct publish *p)
{
    return p->next;
}

/* ---- frames ------------------------------------------------------------- */

static void count_drop(struct publish *p, size_t len)
{
    metric_add(p->dropped, (double)len);
}

static void send_frame(struct publish *p, const struct ts_frame *f, uint16_t flags)
{
    uint8_t hdr[SLP_MEDIA_HEADER_LEN];
    if (slp_encode_media_header(hdr, flags, f->pts, f->wall_us, f->len) == 0 ||
        slpclient_send_media(p->link, hdr, f->ts, f->len) == -1)
        count_drop(p, f->len);
}

/* Not live: keep the frames since the latest keyframe, within relay-buffer. */
static void keep_frame(struct publish *p, const struct ts_frame *f, bool key)
{
    if (key) {
        evbuffer_drain(p->preroll, evbuffer_get_length(p->preroll));
        p->preroll_key = true;
    }
    if (!p->preroll_key)
        return;                               /* nothing decodable to start with */
    size_t have = evbuffer_get_length(p->preroll);
    uint8_t hdr[SLP_MEDIA_HEADER_LEN];
    if (have + sizeof(hdr) + f->len > (size_t)p->ing->cfg->relay_buffer) {
        count_drop(p, have + f->len);         /* a GOP too large to hold: wait for the next */
        evbuffer_drain(p->preroll, have);
        p->preroll_key = false;
        return;
    }
    if (slp_encode_media_header(hdr, f->flags, f->pts, f->wall_us, f->len) == 0 ||
        evbuffer_add(p->preroll, hdr, sizeof(hdr)) == -1 ||
        evbuffer_add(p->preroll, f->ts, f->len) == -1)
        count_drop(p, f->len);
}

static void on_frame(const struct ts_frame *f, void *arg)
{
    struct publish *p = arg;
    bool key = (f->flags & SLP_F_KEYFRAME) != 0;
    if (p->state != PS_LIVE) {
        keep_frame(p, f, key);
        return;
    }
    size_t pending = slpclient_pending(p->link);
    size_t limit = (size_t)p->ing->cfg->relay_buffer;
    if (p->dropping) {
        if (!key || pending > limit / 2) {
            count_drop(p, f->len);
            return;
        }
        p->dropping = false;
        p->gap = true;
        log_info("publish %s: going on from a keyframe, flagged DISCONTINUITY", p->stream);
    } else if (pending > limit) {
        p->dropping = true;
        count_drop(p, f->len);
        log_warn("publish %s: the relay is %zu bytes behind: dropping to the next keyframe",
                 p->stream, pending);
        return;
    }
    uint16_t flags = f->flags;
    if (key && p->gap) {
        flags |= SLP_F_DISCONTINUITY;
        p->gap = false;
    }
    send_frame(p, f, flags);
}

/* Live again: the pre-roll goes first, its keyframe marked if after a gap.
 * Without one (no keyframe came during the gap), nothing may go before the
 * next keyframe: what follows a gap does not continue what came before it. */
static void send_preroll(struct publish *p)
{
    size_t len = evbuffer_get_length(p->preroll);
    if (len == 0) {
        p->dropping = p->gap;
        return;
    }
    if (p->gap) {
        uint8_t *hdr = evbuffer_pullup(p->preroll, SLP_MEDIA_HEADER_LEN);
        if (hdr != NULL)
            hdr[7] |= SLP_F_DISCONTINUITY;    /* flags: u16 at offset 6, big-endian */
        p->gap = false;
    }
    if (slpclient_send_frames(p->link, p->preroll) == -1)
        count_drop(p, len);
    evbuffer_drain(p->preroll, evbuffer_get_length(p->preroll));
    p->preroll_key = false;
}

/* ---- the relay ---------------------------------------------------------- */

static void connect_relay(struct publish *p);
static void maybe_free(struct publish *p);

static void fail(struct publish *p, enum publish_failure f, const char *why)
{
    if (p->state == PS_STOPPING)
        return;
    p->state = PS_BACKOFF;                     /* nothing more until the owner stops us */
    evtimer_del(p->retry);
    p->h->failed(p->arg, f, why);
}

static void backoff(struct publish *p)
{
    p->state = PS_BACKOFF;
    p->gap = p->was_live;                     /* nothing sent yet: nothing to break */
    if (p->backoff_ms == 0)
        p->backoff_ms = BACKOFF_MIN_MS;
    struct timeval tv = clock_tv_ms(p->backoff_ms);
    evtimer_add(p->retry, &tv);
    p->backoff_ms *= 2;
    if (p->backoff_ms > p->ing->cfg->relay_backoff_max_ms)
        p->backoff_ms = p->ing->cfg->relay_backoff_max_ms;
}

static void on_accepted(void *arg)
{
    struct publish *p = arg;
    p->state = PS_LIVE;
    p->was_live = true;
    p->backoff_ms = 0;
    p->avoid[0] = '\0';
    p->told_no_relay = false;
    ingest_count(p->ing, IM_RELAY_CONNECTS, "accepted", 1);
    log_info("publish %s: live on relay %s%s%s as %s", p->stream, p->relay.addr,
             p->relay.id[0] ? " " : "", p->relay.id, p->id);
    send_preroll(p);
}

/* The relay refused with <code> (<text>, its words). A retry cannot mend
 * conflict (the lease is not ours) nor replaced (the relay gave the stream to
 * another publisher, on this ingest or another; without this, we would learn
 * it only at our next lease renewal or after a useless reconnect): the
 * publish fails at once. Returns true then, false for a refusal worth
 * retrying (a relay shutting down or restarting never says replaced). */
static bool refused_for_good(struct publish *p, unsigned code, const char *text)
{
    char why[400];
    if (code == SLP_E_REPLACED) {
        snprintf(why, sizeof(why), "relay %s: another publisher took the stream over: %.100s",
                 p->relay.addr, text);
        ingest_count(p->ing, IM_RELAY_CONNECTS, "replaced", 1);
        fail(p, PF_REPLACED, why);
        return true;
    }
    if (code == SLP_E_CONFLICT) {
        snprintf(why, sizeof(why), "relay %s: the publish lease is not ours: %.100s",
                 p->relay.addr, text);
        ingest_count(p->ing, IM_RELAY_CONNECTS, "conflict", 1);
        fail(p, PF_LEASE, why);
        return true;
    }
    return false;
}

static void on_link_closed(void *arg, enum slpclient_end end, unsigned code, const char *reason)
{
    struct publish *p = arg;
    char text[4 * SLP_TEXT_MAX + 8];
    snprintf(text, sizeof(text), "%s", reason);   /* <reason> lives in the link */
    slpclient_free(p->link);
    p->link = NULL;
    if (p->state == PS_STOPPING) {
        if (end != SLPCLIENT_FINISHED)
            log_info("publish %s: relay link ended: %s", p->stream, text);
        p->link_done = true;
        maybe_free(p);
        return;
    }
    if (end == SLPCLIENT_REFUSED && refused_for_good(p, code, text))
        return;
    bool was_live = p->state == PS_LIVE;
    const char *name = slp_error_name(code);
    ingest_count(p->ing, IM_RELAY_CONNECTS, was_live ? "lost" : "failed", 1);
    log_warn("publish %s: relay %s %s: %s%s%s; again in %lld ms", p->stream, p->relay.addr,
             was_live ? "link lost" : "refused or unreachable", end == SLPCLIENT_REFUSED && name ? name : "",
             end == SLPCLIENT_REFUSED ? ": " : "", text,
             (long long)(p->backoff_ms ? p->backoff_ms : BACKOFF_MIN_MS));
    snprintf(p->avoid, sizeof(p->avoid), "%s", p->relay.id);
    backoff(p);
}

static const struct slpclient_handler link_handler = { on_accepted, NULL, NULL, on_link_closed };

static void connect_relay(struct publish *p)
{
    if (relays_pick(p->ing->relays, p->avoid, &p->relay) == -1) {
        if (!p->told_no_relay)
            log_warn("publish %s: no relay known (none in sluice:relay:*): waiting",
                     p->stream);
        p->told_no_relay = true;
        backoff(p);
        return;
    }
    const struct ingest_config *cfg = p->ing->cfg;
    struct slp_frame req = { .type = SLP_PUBLISH, .publish = {
        slp_cstr(p->stream), slp_cstr(p->id), slp_cstr(p->ing->d->node_id),
        slp_cstr(p->protocol), slp_cstr(p->client), p->started_us } };
    struct slpclient_options o = {
        .node = p->ing->d->node_id,
        .agent = INGEST_AGENT,
        .connect_timeout_ms = (int)cfg->relay_connect_timeout_ms,
        .idle_timeout_ms = RELAY_IDLE_MS,
        .drain_ms = DRAIN_MS,
    };
    p->link = slpclient_start(p->ing->d->base, p->ing->d->dns, p->relay.addr, &req, &o,
                              &link_handler, p);
    if (p->link == NULL) {
        backoff(p);
        return;
    }
    p->state = PS_CONNECTING;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct publish *p = arg;
    if (p->state == PS_BACKOFF)
        connect_relay(p);
}

/* ---- the lease ---------------------------------------------------------- */

static void on_lease(enum leasekeep_event ev, const char *other, void *arg)
{
    struct publish *p = arg;
    char why[256];
    switch (ev) {
    case LK_HELD:
        if (other != NULL)
            log_info("publish %s: took the publish lease over from %s", p->stream, other);
        if (p->state == PS_LEASING)
            connect_relay(p);
        return;
    case LK_REFUSED:
        snprintf(why, sizeof(why), "%s is published by %s (takeover is off)", p->stream,
                 other ? other : "someone else");
        fail(p, PF_LEASE, why);
        return;
    case LK_LOST:
        snprintf(why, sizeof(why), "the publish lease of %s went to %s", p->stream,
                 other ? other : "someone else");
        fail(p, PF_LEASE, why);
        return;
    case LK_RELEASED:
        leasekeep_free(p->lease);
        p->lease = NULL;
        p->lease_done = true;
        maybe_free(p);
        return;
    }
}

void publish_redis_state(struct publish *p, bool up)
{
    if (p->lease != NULL && p->state != PS_STOPPING)
        leasekeep_redis_state(p->lease, up);
}

/* ---- life --------------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct publish *p = arg;
    if (clock_mono_ms() - p->last_feed_ms >= TICK_MS)
        ts_annotator_feed(p->ann, NULL, 0, clock_wall_us(), on_frame, p);
}

/* The per-stream series are shared by the publishes of one stream (a takeover
 * overlaps two): they go with the last. */
static bool stream_still_published(const struct publish *p)
{
    for (const struct publish *q = p->ing->pubs; q != NULL; q = q->next) {
        if (q != p && strcmp(q->stream, p->stream) == 0)
            return true;
    }
    return false;
}

static void free_now(struct publish *p)
{
    struct ingest *ing = p->ing;
    if (!stream_still_published(p)) {
        metric_remove(p->bytes);
        metric_remove(p->dropped);
    }
    if (p->prev)
        p->prev->next = p->next;
    else if (ing->pubs == p)
        ing->pubs = p->next;
    if (p->next)
        p->next->prev = p->prev;
    slpclient_free(p->link);
    leasekeep_free(p->lease);
    ts_annotator_free(p->ann);
    if (p->preroll)
        evbuffer_free(p->preroll);
    if (p->retry)
        event_free(p->retry);
    if (p->tick)
        event_free(p->tick);
    free(p);
}

static void maybe_free(struct publish *p)
{
    if (p->state == PS_STOPPING && p->lease_done && p->link_done) {
        log_debug("publish %s: done", p->stream);
        struct daemon *d = p->ing->d;
        free_now(p);
        daemon_release(d);
    }
}

struct publish *publish_start(struct ingest *ing, const struct publish_params *pp,
                              const struct publish_handler *h, void *arg)
{
    struct publish *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->ing = ing;
    p->h = h;
    p->arg = arg;
    p->state = PS_LEASING;
    snprintf(p->stream, sizeof(p->stream), "%s", pp->stream);
    snprintf(p->protocol, sizeof(p->protocol), "%s", pp->protocol);
    snprintf(p->client, sizeof(p->client), "%s", pp->client);
    snprintf(p->id, sizeof(p->id), "%s/%s", ing->d->node_id, pp->conn_id);
    p->started_us = pp->started_us;
    p->next = ing->pubs;
    if (ing->pubs)
        ing->pubs->prev = p;
    ing->pubs = p;
    p->ann = ts_annotator_new(NULL);
    p->preroll = evbuffer_new();
    p->retry = evtimer_new(ing->d->base, on_retry, p);
    p->tick = event_new(ing->d->base, -1, EV_PERSIST, on_tick, p);
    p->bytes = metric_at(ing->m[IM_STREAM_BYTES], p->stream);
    p->dropped = metric_at(ing->m[IM_STREAM_DROPPED], p->stream);
    char key[128];
    snprintf(key, sizeof(key), "sluice:lease:publish:%s", p->stream);
    struct leasekeep_options lo = { .key = key, .holder = p->id,
                                    .ttl_ms = ing->cfg->lease_ttl_ms,
                                    .takeover = ing->cfg->takeover };
    if (p->ann == NULL || p->preroll == NULL || p->retry == NULL || p->tick == NULL ||
        (p->lease = leasekeep_start(ing->d->base, ing->redis, &lo, on_lease, p)) == NULL) {
        log_error("publish %s: out of memory", p->stream);
        free_now(p);
        return NULL;
    }
    struct timeval tv = clock_tv_ms(TICK_MS);
    evtimer_add(p->tick, &tv);
    p->last_feed_ms = clock_mono_ms();
    log_info("publish %s: from %s over %s as %s", p->stream, p->client, p->protocol, p->id);
    return p;
}

void publish_feed(struct publish *p, const uint8_t *buf, size_t len, int64_t wall_us)
{
    if (p->state == PS_STOPPING)
        return;
    metric_add(p->bytes, (double)len);
    p->last_feed_ms = clock_mono_ms();
    ts_annotator_feed(p->ann, buf, len, wall_us, on_frame, p);
}

static const struct {
    uint8_t reason;
    const char *text;
} eos_of[] = {
    [PUB_ENDED] = { SLP_EOS_ENDED, "publisher stopped" },
    [PUB_SHUTDOWN] = { SLP_EOS_SHUTDOWN, "ingest is shutting down" },
    [PUB_REVOKED] = { SLP_EOS_REVOKED, "the stream key changed or the stream was deleted" },
    [PUB_LOST] = { 0, NULL },
    [PUB_REPLACED] = { 0, NULL },
};

void publish_stop(struct publish *p, enum publish_stop how)
{
    if (p->state == PS_STOPPING)
        return;
    bool live = p->state == PS_LIVE && p->link != NULL && slpclient_open(p->link);
    p->state = PS_STOPPING;
    daemon_hold(p->ing->d);
    evtimer_del(p->retry);
    evtimer_del(p->tick);
    if (live && how != PUB_REPLACED) {
        p->state = PS_LIVE;                   /* the last frames go out */
        if (!p->dropping)
            ts_annotator_flush(p->ann, on_frame, p);
        p->state = PS_STOPPING;
        struct slp_frame eos = { .type = SLP_EOS,
                                 .eos = { eos_of[how].reason, slp_cstr(eos_of[how].text) } };
        slpclient_end(p->link, eos_of[how].text ? &eos : NULL);
    } else {
        slpclient_free(p->link);
        p->link = NULL;
        p->link_done = true;
    }
    if (p->lease != NULL)
        leasekeep_release(p->lease);           /* LK_RELEASED follows */
    else
        p->lease_done = true;
    maybe_free(p);
}

int publish_relay(const struct ingest *ing, const char *stream, struct relay_choice *out)
{
    for (const struct publish *p = ing->pubs; p != NULL; p = p->next) {
        if (p->state == PS_LIVE && strcmp(p->stream, stream) == 0) {
            *out = p->relay;
            return 0;
        }
    }
    return -1;
}

void publish_free_all(struct ingest *ing)
{
    while (ing->pubs != NULL)
        free_now(ing->pubs);
}
