/* Streams: see stream.h. */
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "conn.h"
#include "known.h"
#include "registry.h"
#include "subscriber.h"
#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/slp.h"

#define BUCKETS_MIN 64

const char *stream_state_name(enum stream_state st)
{
    switch (st) {
    case STREAM_IDLE: return "waiting";
    case STREAM_LIVE: return "live";
    case STREAM_LOST: return "lost";
    }
    return "?";
}

/* ------------------------------------------------------------------------ */
/* The table                                                                */

static uint32_t hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;          /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static struct stream **slot(struct relay *r, const char *name, size_t len)
{
    struct stream **p = &r->bucket[hash(name, len) & (r->nbuckets - 1)];
    while (*p != NULL && !(strlen((*p)->name) == len && memcmp((*p)->name, name, len) == 0))
        p = &(*p)->hnext;
    return p;
}

struct stream *stream_find(struct relay *r, const char *name, size_t len)
{
    return r->nbuckets ? *slot(r, name, len) : NULL;
}

/* Doubles the table when it averages two streams a bucket. */
static void grow(struct relay *r)
{
    unsigned n = r->nbuckets ? r->nbuckets * 2 : BUCKETS_MIN;
    struct stream **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return;                        /* longer chains, still correct */
    for (unsigned i = 0; i < r->nbuckets; i++) {
        for (struct stream *s = r->bucket[i], *next; s != NULL; s = next) {
            next = s->hnext;
            struct stream **head = &b[hash(s->name, strlen(s->name)) & (n - 1)];
            s->hnext = *head;
            *head = s;
        }
    }
    free(r->bucket);
    r->bucket = b;
    r->nbuckets = n;
}

static void unlink_sub(struct stream *s, struct conn *c);

static void series_init(struct stream *s)
{
    struct metric **f = s->relay->fam;
    s->m.bytes_in = metric_at(f[M_BYTES_IN], s->name);
    s->m.frames_in = metric_at(f[M_FRAMES_IN], s->name);
    s->m.keyframes_in = metric_at(f[M_KEYFRAMES_IN], s->name);
    s->m.bytes_out = metric_at(f[M_BYTES_OUT], s->name);
    s->m.frames_out = metric_at(f[M_FRAMES_OUT], s->name);
    s->m.dropped_frames = metric_at(f[M_DROPPED_FRAMES], s->name);
    s->m.dropped_bytes = metric_at(f[M_DROPPED_BYTES], s->name);
    s->m.gaps = metric_at(f[M_GAPS], s->name);
    s->m.queued = metric_at(f[M_QUEUED], s->name);
    s->m.queued_max = metric_at(f[M_QUEUED_MAX], s->name);
    s->m.gop_bytes = metric_at(f[M_GOP_BYTES], s->name);
    s->m.subscribers = metric_at(f[M_STREAM_SUBSCRIBERS], s->name);
}

static void series_fini(struct stream *s)
{
    struct metric_series **p = &s->m.bytes_in;
    for (size_t i = 0; i < sizeof(s->m) / sizeof(*p); i++) {
        metric_remove(p[i]);
        p[i] = NULL;
    }
}

struct stream *stream_get(struct relay *r, const char *name, size_t len)
{
    if (len == 0 || len > STREAM_NAME_MAX)
        return NULL;
    if (r->nstreams >= 2 * r->nbuckets)
        grow(r);
    if (r->nbuckets == 0)
        return NULL;
    struct stream **p = slot(r, name, len);
    if (*p != NULL)
        return *p;
    struct stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->relay = r;
    memcpy(s->name, name, len);
    s->state = STREAM_IDLE;
    gop_init(&s->gop, (size_t)r->cfg->gop_cache_max);
    series_init(s);
    *p = s;
    r->nstreams++;
    return s;
}

static void stream_free(struct stream *s)
{
    struct relay *r = s->relay;
    struct stream **p = slot(r, s->name, strlen(s->name));
    if (*p == s) {
        *p = s->hnext;
        r->nstreams--;
    }
    gop_fini(&s->gop);
    chunk_unref(s->publish);
    free(s->record);
    series_fini(s);
    free(s);
}

static void maybe_free(struct stream *s)
{
    if (s->state == STREAM_IDLE && s->nsubs == 0 && s->publisher == NULL)
        stream_free(s);
}

void stream_foreach(struct relay *r, void (*fn)(struct stream *s, void *arg), void *arg)
{
    for (unsigned i = 0; i < r->nbuckets; i++) {
        for (struct stream *s = r->bucket[i], *next; s != NULL; s = next) {
            next = s->hnext;
            fn(s, arg);
        }
    }
}

void stream_free_all(struct relay *r)
{
    for (unsigned i = 0; i < r->nbuckets; i++) {
        while (r->bucket[i] != NULL) {
            struct stream *s = r->bucket[i];
            while (s->subs != NULL)
                unlink_sub(s, s->subs);
            if (s->publisher != NULL)
                s->publisher->stream = NULL;
            s->publisher = NULL;
            stream_free(s);
        }
    }
    free(r->bucket);
    r->bucket = NULL;
    r->nbuckets = 0;
}

/* ------------------------------------------------------------------------ */
/* Subscribers                                                              */

void stream_add_sub(struct stream *s, struct conn *c)
{
    c->stream = s;
    c->sub.prev = NULL;
    c->sub.next = s->subs;
    if (s->subs != NULL)
        s->subs->sub.prev = c;
    s->subs = c;
    s->nsubs++;
}

static void unlink_sub(struct stream *s, struct conn *c)
{
    if (c->sub.prev != NULL)
        c->sub.prev->sub.next = c->sub.next;
    else
        s->subs = c->sub.next;
    if (c->sub.next != NULL)
        c->sub.next->sub.prev = c->sub.prev;
    c->sub.prev = c->sub.next = NULL;
    c->stream = NULL;
    s->nsubs--;
}

void stream_remove_sub(struct stream *s, struct conn *c)
{
    unlink_sub(s, c);
    maybe_free(s);
}

void stream_flush(struct stream *s)
{
    for (struct conn *c = s->subs, *next; c != NULL; c = next) {
        next = c->sub.next;
        conn_flush(c);
    }
}

/* ------------------------------------------------------------------------ */
/* Publishers                                                               */

struct conn *stream_take_publisher(struct stream *s)
{
    struct conn *c = s->publisher;
    if (c != NULL)
        c->stream = NULL;
    s->publisher = NULL;
    return c;
}

void stream_set_publisher(struct stream *s, struct conn *c, enum publisher_change how)
{
    struct relay *r = s->relay;
    struct conn *old = stream_take_publisher(s);
    if (old != NULL) {
        if (how == CHANGE_RECONNECT)
            conn_error(old, SLP_E_REPLACED, "replaced by a new connection of %s", c->pub.id);
        else
            conn_error(old, SLP_E_REPLACED, "the lease of %s passed to %s", s->name, c->pub.id);
    }
    if (how != CHANGE_NEW) {
        s->changes++;
        metric_add(metric_at(r->fam[M_PUBLISHER_CHANGES], publisher_change_name(how)), 1);
    }
    s->state = STREAM_LIVE;
    s->publisher = c;
    c->stream = s;
    chunk_unref(s->publish);
    s->publish = chunk_ref(c->pub.publish);
    snprintf(s->publisher_id, sizeof(s->publisher_id), "%s", c->pub.id);
    s->keyed = false;
    s->announced = false;
    gop_clear(&s->gop);
    free(s->record);
    s->record = registry_record(r, s);
    log_info("stream %s: live, publisher %s from %s (%s), %u subscribers", s->name, c->pub.id,
             c->peer, publisher_change_name(how), s->nsubs);
    for (struct conn *sub = s->subs; sub != NULL; sub = sub->sub.next)
        subscriber_publisher_changed(sub, s);
    stream_flush(s);
    registry_stream_live(r->reg, s);
}

void stream_publisher_lost(struct stream *s, const char *why)
{
    struct conn *c = stream_take_publisher(s);
    if (s->state != STREAM_LIVE)
        return;
    s->state = STREAM_LOST;
    s->lost_ms = clock_mono_ms();
    if (known_seen(&s->relay->known, s->name, s->publisher_id, s->lost_ms) == -1)
        log_warn("stream %s: known publishers: out of memory", s->name);
    s->keyed = false;
    gop_clear(&s->gop);
    log_warn("stream %s: publisher %s%s%s lost (%s); waiting up to %lld ms for it",
             s->name, s->publisher_id, c ? " from " : "", c ? c->peer : "", why,
             (long long)s->relay->cfg->publisher_grace_ms);
    stream_flush(s);           /* what its last read brought */
}

void stream_lease_moved(struct relay *r, const char *name, const char *publisher,
                        const char *holder)
{
    struct stream *s = stream_find(r, name, strlen(name));
    if (s == NULL || s->state != STREAM_LIVE || strcmp(s->publisher_id, publisher) != 0)
        return;
    struct conn *c = s->publisher;
    char why[SLP_ID_MAX + 32];
    snprintf(why, sizeof(why), "the lease passed to %s", holder);
    stream_publisher_lost(s, why);
    known_overruled(&r->known, name, holder);
    if (c != NULL)
        conn_error(c, SLP_E_REPLACED, "the lease of %s passed to %s", s->name, holder);
}

void stream_tick(struct stream *s, int64_t now)
{
    if (s->state != STREAM_LOST || now - s->lost_ms < s->relay->cfg->publisher_grace_ms)
        return;
    char text[SLP_TEXT_MAX + 1];
    snprintf(text, sizeof(text), "publisher %s did not come back within %lld ms",
             s->publisher_id, (long long)s->relay->cfg->publisher_grace_ms);
    struct slp_frame eos = { .type = SLP_EOS, .eos = { SLP_EOS_PUBLISHER_LOST, slp_cstr(text) } };
    stream_end(s, &eos, "publisher_lost");
}

/* ------------------------------------------------------------------------ */
/* Media                                                                    */

void stream_media(struct stream *s, struct chunk *m, int64_t now)
{
    s->frames_in++;
    s->bytes_in += m->buf.len;
    metric_add(s->m.frames_in, 1);
    metric_add(s->m.bytes_in, (double)m->buf.len);
    if (m->flags & SLP_F_KEYFRAME) {
        s->keyframes_in++;
        metric_add(s->m.keyframes_in, 1);
        s->keyed = true;
    }
    if (!s->keyed)
        return;                  /* before the publisher's first keyframe: for nobody */
    if (gop_add(&s->gop, m) == -1)
        log_warn("stream %s: GOP cache: out of memory", s->name);
    for (struct conn *c = s->subs, *next; c != NULL; c = next) {
        next = c->sub.next;
        subscriber_deliver(c, m, now);
    }
}

void stream_end(struct stream *s, const struct slp_frame *eos, const char *reason)
{
    log_info("stream %s: ended (%s), %u subscribers told", s->name, reason, s->nsubs);
    if (s->state != STREAM_IDLE)
        registry_stream_ended(s->relay->reg, s, reason);
    struct conn *pub = stream_take_publisher(s);
    if (pub != NULL)
        conn_error(pub, SLP_E_GOING_AWAY, "stream %s ended: %s", s->name, reason);
    while (s->subs != NULL) {
        struct conn *c = s->subs;
        unlink_sub(s, c);
        conn_end(c, eos, EOS_DRAIN_MS);
    }
    s->state = STREAM_IDLE;
    stream_free(s);
}
