/* One stream's media path (see stream_int.h and docs/hls.md): the relay
 * link, the packager, the state write of each segment, and publishing it
 * (memory, disk, playlist); what is served, from memory. */
#include "stream_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hls.h"
#include "link.h"
#include "packager.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"
#include "sluice/refbuf.h"

#define IDLE_TIMEOUT_MS 20000  /* SLP: a relay silent this long is gone */

/* ---- what is served ------------------------------------------------------- */

struct refbuf *stream_playlist(const struct stream *s, unsigned *target, uint64_t *version)
{
    *target = s->target;
    *version = s->version;
    return s->playlist;
}

struct refbuf *stream_segment(const struct stream *s, uint64_t epoch, uint64_t seq)
{
    for (unsigned i = 0; i < s->nslots; i++) {
        const struct seg_slot *sl = &s->slots[(s->shead + i) % SLOTS];
        if (sl->seq == seq && sl->epoch == epoch)
            return sl->b;
    }
    return NULL;
}

void stream_evict_first(struct stream *s, bool from_disk)
{
    struct seg_slot *sl = &s->slots[s->shead];
    if (from_disk)
        disk_remove(&s->h->disk, s->name, sl->name);
    refbuf_unref(sl->b);
    sl->b = NULL;
    s->shead = (s->shead + 1) % SLOTS;
    s->nslots--;
}

/* Keeps the segments of the playlist and, for viewers still fetching them
 * (RFC 8216 section 6.2.2), <window> + 1 more that left it. */
static void evict_old(struct stream *s, uint64_t first_seq)
{
    uint64_t keep = (uint64_t)s->h->cfg->window + 1;
    while (s->nslots > 0) {
        const struct seg_slot *sl = &s->slots[s->shead];
        if (sl->seq + keep >= first_seq && sl->seq <= first_seq + SLOTS)
            break;
        stream_evict_first(s, true);
    }
}

static void add_slot(struct stream *s, const struct pending *p)
{
    if (s->slots == NULL && (s->slots = calloc(SLOTS, sizeof(*s->slots))) == NULL) {
        log_error("stream %s: out of memory: segment %" PRIu64 " not served", s->name, p->seq);
        return;
    }
    if (s->nslots == SLOTS)
        stream_evict_first(s, true);
    struct seg_slot *sl = &s->slots[(s->shead + s->nslots) % SLOTS];
    sl->epoch = p->epoch;
    sl->seq = p->seq;
    sl->b = refbuf_ref(p->seg);
    memcpy(sl->name, p->seg_name, sizeof(sl->name));
    s->nslots++;
}

/* Forgets everything served (memory and disk). */
void stream_drop_served(struct stream *s)
{
    while (s->nslots > 0)
        stream_evict_first(s, false);
    free(s->slots);
    s->slots = NULL;
    s->shead = 0;
    refbuf_unref(s->playlist);
    s->playlist = NULL;
    s->target = 0;
    s->served_ended = false;
    disk_remove_stream(&s->h->disk, s->name);
    s->linger_until_ms = 0;
}

/* ---- packaging: publishing ------------------------------------------------ */

static void write_next(struct stream *s);

static void pending_clear(struct pending *p)
{
    refbuf_unref(p->seg);
    refbuf_unref(p->playlist);
    p->seg = p->playlist = NULL;
}

/* The first pending change is recorded (or Redis could not be asked): serve
 * it, write it to disk, count it. */
static void apply(struct stream *s, struct pending *p)
{
    struct hls *h = s->h;
    struct hls_stats *st = &h->stats;
    if (p->seg != NULL) {
        add_slot(s, p);
        if (disk_write(&h->disk, s->name, p->seg_name, p->seg->data, p->seg->len) == -1)
            metric_add(st->disk_errors, 1);
        metric_add(st->segments[p->cut], 1);
        metric_observe(st->segment_seconds, (double)p->duration_ms / 1000.0);
        if (p->disc)
            metric_add(st->discontinuities, 1);
    }
    refbuf_unref(s->playlist);
    s->playlist = refbuf_ref(p->playlist);
    s->target = p->target;
    s->version = p->version;
    s->served_ended = p->st.ended;
    s->written_ms = clock_mono_ms();
    if (disk_write(&h->disk, s->name, "index.m3u8", p->playlist->data, p->playlist->len) == -1)
        metric_add(st->disk_errors, 1);
    evict_old(s, p->first_seq);
    if (p->seg != NULL && p->end_wall_us > 0)
        metric_observe(st->latency, (double)(clock_wall_us() - p->end_wall_us) / 1e6);
}

/* After the last pending change: release the lease if we are done with it. */
void stream_after_writes(struct stream *s)
{
    if (s->npending == 0 && s->op_write == NULL && (s->ending || s->stopping))
        stream_release_lease(s);
}

/* The state write for the first pending change came back with <res>. */
static void finish_first(struct stream *s, enum hls_state_result res, const char *other)
{
    metric_add(s->h->stats.state_writes[res], 1);
    if (res == WR_LOST) {
        stream_lost(s, other);
        return;
    }
    apply(s, &s->pending[0]);
    pending_clear(&s->pending[0]);
    memmove(&s->pending[0], &s->pending[1], (s->npending - 1) * sizeof(s->pending[0]));
    s->npending--;
    if (s->npending > 0)
        write_next(s);
    else
        stream_after_writes(s);
}

static void on_written(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = stream_sop_done(arg, stream_slot_write);
    if (s == NULL || s->npending == 0)
        return;
    if (err != NULL) {
        log_warn("stream %s: state not recorded (%s); publishing anyway", s->name, err);
        finish_first(s, WR_ERROR, NULL);
    } else if (redis_reply_type(reply) == REDIS_R_STRING) {
        char other[PSTATE_OWNER_MAX + 1];
        size_t len;
        const char *o = redis_reply_str(reply, &len);
        log_escape(other, sizeof(other), o, len);
        finish_first(s, WR_LOST, other);
    } else {
        finish_first(s, WR_OK, NULL);   /* 1, or 0: no lease right now (leasekeep takes it) */
    }
}

/* Sends the state write of the first pending change, or applies it at once
 * when Redis cannot be asked (an owner goes on without Redis). */
static void write_next(struct stream *s)
{
    while (s->npending > 0 && s->op_write == NULL) {
        if (stream_write_state(s, &s->pending[0].st, on_written) == 0)
            return;
        unsigned before = s->npending;
        finish_first(s, WR_ERROR, NULL);
        if (s->npending >= before)      /* given up meanwhile */
            return;
    }
}

/* Queues a playlist change (with the segment <out>, if not NULL) for its
 * state write. Takes out->seg.data. */
void stream_publish(struct stream *s, struct packaged *out)
{
    struct packager *pk = s->pk;
    if (s->pending == NULL && (s->pending = calloc(MAX_PENDING, sizeof(*s->pending))) == NULL) {
        log_error("stream %s: out of memory: segment not published", s->name);
        if (out != NULL)
            free(out->seg.data);
        return;
    }
    if (s->npending == MAX_PENDING) {   /* Redis is slow: do not wait for it */
        log_warn("stream %s: %u segments wait for Redis; publishing the oldest", s->name,
                 s->npending);
        stream_sop_detach(s->op_write);
        s->op_write = NULL;
        finish_first(s, WR_ERROR, NULL);
    }
    struct pending *p = &s->pending[s->npending];
    memset(p, 0, sizeof(*p));
    if (out != NULL) {
        p->seg = refbuf_wrap(out->seg.data, out->seg.len, out->seg.cap);
        out->seg.data = NULL;
        p->epoch = pk->epoch;
        p->seq = out->entry.seq;
        memcpy(p->seg_name, out->entry.uri, sizeof(p->seg_name));
        p->end_wall_us = out->seg.end_wall_us;
        p->duration_ms = out->entry.duration_ms;
        p->cut = out->seg.cut;
        p->disc = out->entry.disc;
        if (p->seg == NULL) {
            log_error("stream %s: out of memory: segment %" PRIu64 " lost", s->name, p->seq);
            return;
        }
    }
    char text[PLAYLIST_RENDER_MAX];
    size_t n = playlist_render(&pk->pl, text, sizeof(text));
    p->playlist = refbuf_copy(text, n < sizeof(text) ? n : sizeof(text) - 1);
    if (p->playlist == NULL) {
        pending_clear(p);
        log_error("stream %s: out of memory: playlist not published", s->name);
        return;
    }
    p->target = pk->pl.target;
    p->version = pk->pl.changes;
    p->first_seq = playlist_first_seq(&pk->pl);
    packager_state(pk, &p->st);
    snprintf(p->st.owner, sizeof(p->st.owner), "%s", s->h->holder);
    s->npending++;
    metric_add(s->h->stats.clamped, (double)pk->pl.clamped);
    pk->pl.clamped = 0;
    write_next(s);
}

/* Ends the open segment (the source went away, or stalled) and publishes it. */
void stream_flush(struct stream *s, bool discontinuity)
{
    struct packaged out;
    if (s->pk != NULL && packager_flush(s->pk, discontinuity, &out) == 1)
        stream_publish(s, &out);
}

/* ---- the source ----------------------------------------------------------- */

static void on_accepted(void *arg)
{
    struct stream *s = arg;
    log_debug("stream %s: subscribed at relay %s", s->name, s->relay);
}

static void on_publish(const struct slp_publish *p, void *arg)
{
    struct stream *s = arg;
    char pub[4 * SLP_ID_MAX + 8], node[4 * SLP_ID_MAX + 8];
    log_escape(pub, sizeof(pub), p->publisher.p, p->publisher.len);
    log_escape(node, sizeof(node), p->node.p, p->node.len);
    log_info("stream %s: live from publisher %s on %s, relay %s%s", s->name, pub, node,
             s->relay, s->role == SR_GRACE ? " (back within the grace)" : "");
    if (s->publisher[0] != '\0' && strcmp(s->publisher, pub) != 0)
        packager_discontinuity(s->pk);
    snprintf(s->publisher, sizeof(s->publisher), "%s", pub);
    s->last_media_ms = clock_mono_ms();
    stream_set_role(s, SR_LIVE);
}

static void on_media(const struct slp_frame *f, void *arg)
{
    struct stream *s = arg;
    struct hls_stats *st = &s->h->stats;
    s->last_media_ms = clock_mono_ms();
    if (s->role == SR_GRACE)
        stream_set_role(s, SR_LIVE);
    struct seg_frame fr = { .flags = f->flags, .pts = f->media.pts, .wall_us = f->media.wall_us,
                            .ts = f->media.ts, .len = f->media.ts_len };
    metric_add(st->media_bytes, (double)fr.len);
    uint64_t dropped = segmenter_dropped(s->pk->seg);
    struct packaged out;
    int rc = packager_feed(s->pk, &fr, &out);
    metric_add(st->frames_dropped, (double)(segmenter_dropped(s->pk->seg) - dropped));
    if (rc == 1)
        stream_publish(s, &out);
    else if (rc == -1)
        log_error("stream %s: out of memory: media dropped to the next keyframe", s->name);
}

static void on_ended(enum link_end why, const char *detail, void *arg)
{
    struct stream *s = arg;
    s->link = NULL;
    if (why == LINK_END_EOS)
        log_info("stream %s: end of stream from relay %s: %s", s->name, s->relay, detail);
    else
        log_warn("stream %s: relay link ended (%s): %s", s->name, link_end_name(why), detail);
    if (why != LINK_END_EOS && why != LINK_END_REFUSED)
        metric_add(s->h->stats.relay_failures, 1);
    stream_flush(s, true);
    if (s->role == SR_LIVE || s->role == SR_GRACE)
        stream_enter_grace(s, why == LINK_END_EOS ? 0 : RETRY_MS);
}

static const struct link_handler link_handler = { on_accepted, on_publish, on_media, on_ended };

void stream_open_link(struct stream *s)
{
    struct hls *h = s->h;
    int64_t wait = h->cfg->end_grace_ms;
    if (s->role == SR_GRACE)
        wait = s->grace_until_ms - clock_mono_ms();
    struct link_options o = {
        .relay = s->relay, .stream = s->name, .node = h->d->node_id,
        .wait_ms = (uint32_t)(wait > 1000 ? wait : 1000),
        .connect_timeout_ms = h->cfg->relay_timeout_ms, .idle_timeout_ms = IDLE_TIMEOUT_MS,
    };
    s->next_link_ms = clock_mono_ms() + RETRY_MS;
    if (s->relay[0] == '\0')
        return;
    metric_add(h->stats.relay_links, 1);
    s->link = link_open(h->d->base, h->d->dns, &o, &link_handler, s);
    if (s->link == NULL)
        stream_enter_grace(s, RETRY_MS);
}

/* ---- packaging: start and stop -------------------------------------------- */

void stream_start_packaging(struct stream *s)
{
    struct hls *h = s->h;
    const struct hls_config *c = h->cfg;
    struct packager_options o = {
        .target_us = c->target_duration_ms * 1000, .max_target_s = (unsigned)c->max_target_duration,
        .max_bytes = (size_t)c->max_segment_size, .window = (unsigned)c->window,
    };
    uint64_t epoch = s->prev_valid ? s->prev.epoch + 1 : 1;
    /* a playlist begun afresh starts its numbers at the wall clock in ms, so
     * that they stay above any an earlier owner used even if Redis forgot
     * its state (docs/hls.md, "Continuity") */
    uint64_t first = (uint64_t)(clock_wall_us() / 1000);
    packager_free(s->pk);
    s->pk = packager_new(&o, epoch, first, first);
    if (s->pk == NULL) {
        log_error("stream %s: out of memory", s->name);
        stream_lost(s, NULL);
        return;
    }
    if (s->prev_valid && s->prev.has_segment) {
        packager_resume(s->pk, &s->prev);
        metric_add(h->stats.takeovers, 1);
        log_info("stream %s: packaging as epoch %" PRIu64 ", continuing %s's playlist after "
                 "segment %" PRIu64 "%s", s->name, epoch, s->prev.owner[0] ? s->prev.owner : "?",
                 s->prev.media_sequence, s->prev.ended ? " (which had ended)" : "");
    } else {
        log_info("stream %s: packaging as epoch %" PRIu64 ", a new playlist from %" PRIu64,
                 s->name, epoch, first);
    }
    s->publisher[0] = '\0';
    s->ending = false;
    s->linger_until_ms = 0;
    stream_set_role(s, SR_LIVE);
    s->last_media_ms = clock_mono_ms();
    stream_open_link(s);
}

/* Drops the packaging (not what is served). */
void stream_stop_packaging(struct stream *s)
{
    if (s->link != NULL) {
        link_close(s->link);
        s->link = NULL;
    }
    stream_sop_detach(s->op_write);
    s->op_write = NULL;
    stream_sop_detach(s->op_load);
    s->op_load = NULL;
    stream_sop_detach(s->op_lookup);
    s->op_lookup = NULL;
    for (unsigned i = 0; i < s->npending; i++)
        pending_clear(&s->pending[i]);
    s->npending = 0;
    free(s->pending);
    s->pending = NULL;
    packager_free(s->pk);
    s->pk = NULL;
}
