/* One stream: see stream.h and docs/hls.md; stream_int.h maps its files.
 * This one holds the stream's public face and its life: the table of
 * streams, the helpers every part uses, the grace and its end, what the
 * catalog tells it, the periodic tick, stop and free. */
#include "stream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "hls.h"
#include "link.h"
#include "packager.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/leasekeep.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/refbuf.h"

#define MAX_KNOWN 100000       /* streams known (live anywhere), about 600 bytes each */

static const char *const role_names[SR_COUNT] = { "candidate", "claiming", "live", "grace" };

const char *stream_role_name(enum stream_role r)
{
    return (unsigned)r < SR_COUNT ? role_names[r] : "?";
}

enum stream_role stream_role(const struct stream *s)
{
    return s->role;
}

const char *stream_name(const struct stream *s)
{
    return s->name;
}

bool stream_owned(const struct stream *s)
{
    return s->role != SR_CANDIDATE;
}

bool stream_live(const struct stream *s)
{
    return s->live;
}

uint64_t stream_scan_gen(const struct stream *s)
{
    return s->scan_gen;
}

/* ---- the table ------------------------------------------------------------ */

static unsigned hash(const char *name)
{
    uint32_t x = 2166136261u;
    for (; *name; name++)
        x = (x ^ (uint8_t)*name) * 16777619u;
    return x;
}

struct stream *hls_find(struct hls *h, const char *name)
{
    for (struct stream *s = h->bucket[hash(name) % h->nbuckets]; s != NULL; s = s->hnext) {
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

void hls_insert(struct hls *h, struct stream *s)
{
    unsigned b = hash(s->name) % h->nbuckets;
    s->hnext = h->bucket[b];
    h->bucket[b] = s;
    h->nstreams++;
}

void hls_remove(struct hls *h, struct stream *s)
{
    for (struct stream **p = &h->bucket[hash(s->name) % h->nbuckets]; *p; p = &(*p)->hnext) {
        if (*p == s) {
            *p = s->hnext;
            h->nstreams--;
            return;
        }
    }
}

void hls_each(struct hls *h, void (*fn)(struct stream *s, void *arg), void *arg)
{
    for (unsigned b = 0; b < h->nbuckets; b++) {
        for (struct stream *s = h->bucket[b], *next; s != NULL; s = next) {
            next = s->hnext;
            fn(s, arg);
        }
    }
}

/* ---- helpers -------------------------------------------------------------- */

struct sop *stream_sop_new(struct stream *s, struct sop **slot)
{
    struct sop *op = malloc(sizeof(*op));
    if (op != NULL) {
        op->s = s;
        *slot = op;
    }
    return op;
}

/* The stream an op belongs to (NULL if gone); frees the op and clears <slot>'s
 * pointer to it. */
struct stream *stream_sop_done(struct sop *op, struct sop **(*slot)(struct stream *))
{
    struct stream *s = op->s;
    free(op);
    if (s != NULL)
        *slot(s) = NULL;
    return s;
}

struct sop **stream_slot_pttl(struct stream *s) { return &s->op_pttl; }
struct sop **stream_slot_load(struct stream *s) { return &s->op_load; }
struct sop **stream_slot_write(struct stream *s) { return &s->op_write; }
struct sop **stream_slot_lookup(struct stream *s) { return &s->op_lookup; }

void stream_sop_detach(struct sop *op)
{
    if (op != NULL)
        op->s = NULL;
}

void stream_set_timer(struct stream *s, int64_t ms)
{
    struct timeval tv = clock_tv_ms(ms > 0 ? ms : 0);
    evtimer_add(s->timer, &tv);
}

void stream_set_role(struct stream *s, enum stream_role r)
{
    bool owned = s->role != SR_CANDIDATE, will = r != SR_CANDIDATE;
    if (owned != will)
        s->h->nowned += will ? 1 : (unsigned)-1;
    s->role = r;
}

/* ---- the grace, and its end ----------------------------------------------- */

void stream_enter_grace(struct stream *s, int64_t retry_ms)
{
    int64_t now = clock_mono_ms();
    if (s->role != SR_GRACE) {
        stream_set_role(s, SR_GRACE);
        s->grace_until_ms = now + s->h->cfg->end_grace_ms;
        log_info("stream %s: no publisher; EXT-X-ENDLIST in %lld ms unless it comes back",
                 s->name, (long long)s->h->cfg->end_grace_ms);
    }
    s->next_link_ms = now + retry_ms;
}

/* The grace ran out: EXT-X-ENDLIST, recorded, then the lease goes. */
static void end_stream(struct stream *s)
{
    log_info("stream %s: no publisher for %lld ms: ending the playlist", s->name,
             (long long)s->h->cfg->end_grace_ms);
    if (s->link != NULL) {
        link_close(s->link);
        s->link = NULL;
    }
    stream_flush(s, true);
    s->ending = true;
    s->live = false;
    if (s->pk != NULL && s->pk->pl.n > 0) {
        packager_end(s->pk);
        metric_add(s->h->stats.endlists, 1);
        stream_publish(s, NULL);
    }
    stream_set_role(s, SR_CANDIDATE);
    s->linger_until_ms = s->playlist || s->npending ? clock_mono_ms() + s->h->cfg->linger_ms : 0;
    stream_after_writes(s);
}

/* ---- the catalog's view --------------------------------------------------- */

struct stream *stream_get(struct hls *h, const char *name)
{
    struct stream *s = hls_find(h, name);
    if (s != NULL)
        return s;
    if (!stream_name_valid(name) || h->nstreams >= MAX_KNOWN)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->h = h;
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->key_lease, sizeof(s->key_lease), "sluice:lease:hls:%s", name);
    snprintf(s->key_state, sizeof(s->key_state), "sluice:hls:%s", name);
    snprintf(s->key_stream, sizeof(s->key_stream), "sluice:stream:%s", name);
    s->timer = evtimer_new(h->d->base, stream_on_timer, s);
    if (s->timer == NULL) {
        free(s);
        return NULL;
    }
    hls_insert(h, s);
    return s;
}

void stream_seen_live(struct stream *s, const char *relay)
{
    s->live = true;
    s->served_ended = false;    /* a newer playlist, here or elsewhere: stop advertising ours */
    s->scan_gen = s->h->scan_gen;
    if (s->role == SR_GRACE && relay != NULL && relay[0] != '\0' &&
        (s->link == NULL || strcmp(relay, s->relay) != 0)) {
        if (s->link != NULL)
            link_close(s->link);
        s->link = NULL;
        snprintf(s->relay, sizeof(s->relay), "%s", relay);
        log_info("stream %s: live again on relay %s", s->name, relay);
        stream_open_link(s);
        return;
    }
    if (s->role == SR_CANDIDATE && s->lease == NULL && s->op_pttl == NULL &&
        !evtimer_pending(s->timer, NULL))
        stream_set_timer(s, 0);
}

void stream_try_now(struct stream *s)
{
    if (s->live && s->role == SR_CANDIDATE && s->lease == NULL) {
        stream_sop_detach(s->op_pttl);
        s->op_pttl = NULL;
        stream_set_timer(s, 0);
    }
}

void stream_maybe_free(struct stream *s)
{
    if (s->role == SR_CANDIDATE && !s->live && s->lease == NULL && s->linger_until_ms == 0 &&
        s->playlist == NULL && s->npending == 0 && !s->releasing) {
        hls_remove(s->h, s);
        stream_free(s);
    }
}

void stream_gone(struct stream *s)
{
    s->live = false;
    if (s->role != SR_CANDIDATE)
        return;                 /* an owner hears it from the relay */
    evtimer_del(s->timer);
    stream_sop_detach(s->op_pttl);
    s->op_pttl = NULL;
    if (s->lease != NULL) {     /* an attempt under way */
        stream_release_lease(s);
        return;
    }
    stream_maybe_free(s);
}

void stream_redis_up(struct stream *s)
{
    if (s->lease != NULL)
        leasekeep_redis_state(s->lease, true);
}

/* An ended playlist served during <linger> is written again every target
 * duration, as a live one would be, so that discovery keeps its origin key
 * alive and the edge keeps routing late viewers here until it is dropped.
 * Never again once the stream has been live since (here or elsewhere), nor
 * for a stream another origin took: that origin's discovery owns the key. */
static void keep_advertised(struct stream *s, int64_t now)
{
    int64_t every = s->h->cfg->target_duration_ms > 1000 ? s->h->cfg->target_duration_ms : 1000;
    if (!s->served_ended || s->live || s->playlist == NULL || now - s->written_ms < every)
        return;
    s->written_ms = now;
    if (disk_write(&s->h->disk, s->name, "index.m3u8", s->playlist->data, s->playlist->len) == -1)
        metric_add(s->h->stats.disk_errors, 1);
}

void stream_tick(struct stream *s, int64_t now)
{
    struct hls *h = s->h;
    int64_t stall = h->cfg->target_duration_ms > 1000 ? h->cfg->target_duration_ms : 1000;
    switch (s->role) {
    case SR_LIVE:
        /* no media for a target duration: publish what we have */
        if (s->link != NULL && s->pk != NULL && segmenter_open(s->pk->seg) &&
            now - s->last_media_ms >= stall) {
            log_info("stream %s: no media for %lld ms: publishing the segment under way",
                     s->name, (long long)(now - s->last_media_ms));
            stream_flush(s, false);
        }
        return;
    case SR_GRACE:
        if (now >= s->grace_until_ms)
            end_stream(s);
        else if (s->link == NULL && s->op_lookup == NULL && now >= s->next_link_ms)
            stream_look_for_source(s);
        return;
    case SR_CANDIDATE:
        if (s->linger_until_ms != 0 && now >= s->linger_until_ms && s->npending == 0) {
            log_info("stream %s: no longer served here", s->name);
            stream_drop_served(s);
            stream_maybe_free(s);
        } else if (s->linger_until_ms != 0) {
            keep_advertised(s, now);
        }
        return;
    default:
        return;
    }
}

void stream_stop(struct stream *s)
{
    evtimer_del(s->timer);
    stream_sop_detach(s->op_pttl);
    s->op_pttl = NULL;
    s->stopping = true;
    if (s->role == SR_LIVE || s->role == SR_GRACE) {
        if (s->link != NULL) {
            link_close(s->link);
            s->link = NULL;
        }
        stream_flush(s, false); /* what we have, recorded, for the next owner */
        stream_after_writes(s);
        return;
    }
    stream_release_lease(s);    /* claiming, or an attempt under way */
}

void stream_free(struct stream *s)
{
    if (s == NULL)
        return;
    stream_stop_packaging(s);
    stream_sop_detach(s->op_pttl);
    leasekeep_free(s->lease);
    while (s->nslots > 0)
        stream_evict_first(s, false);
    free(s->slots);
    refbuf_unref(s->playlist);
    if (s->timer)
        event_free(s->timer);
    free(s);
}
