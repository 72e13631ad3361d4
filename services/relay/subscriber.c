/* Subscribers: see subscriber.h. */
#include "subscriber.h"

#include <stdio.h>

#include "chunk.h"
#include "conn.h"
#include "stream.h"
#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/slp.h"

static size_t media_limit(const struct conn *c)
{
    return (size_t)c->relay->cfg->max_queue - CONTROL_RESERVE;
}

/* Queues a whole chunk (a PUBLISH, a cached frame). Returns 0 or -1 (the
 * connection is then being closed). */
static int push(struct conn *c, struct chunk *k, int64_t now)
{
    if (outq_bytes(&c->out) == 0)
        c->sub.behind_since_ms = now;
    if (outq_push_chunk(&c->out, k) == -1) {
        conn_error(c, SLP_E_INTERNAL, "out of memory");
        return -1;
    }
    c->last_tx_ms = now;
    return 0;
}

static void count_out(struct conn *c, unsigned frames)
{
    c->sub.frames += frames;
    if (c->stream != NULL)
        metric_add(c->stream->m.frames_out, frames);
}

/* The stream is live: its PUBLISH, then the cached GOP if the subscriber
 * starts at the last keyframe and there is one; else the next keyframe. */
static void start(struct conn *c, struct stream *s, int64_t now)
{
    conn_set_state(c, CONN_SUBSCRIBED);
    c->deadline_ms = 0;
    c->sub.phase = SUB_START;
    if (s->publish == NULL || push(c, s->publish, now) == -1)
        return;
    if (c->sub.start != SLP_START_KEYFRAME || !gop_valid(&s->gop))
        return;
    for (unsigned i = 0; i < s->gop.n; i++) {
        if (push(c, s->gop.frame[i], now) == -1)
            return;
    }
    count_out(c, s->gop.n);
    c->sub.phase = SUB_LIVE;
}

void subscriber_request(struct conn *c, const struct slp_frame *f)
{
    struct relay *r = c->relay;
    const struct slp_subscribe *req = &f->subscribe;
    if (r->stopping) {
        conn_error(c, SLP_E_GOING_AWAY, "relay shutting down");
        return;
    }
    struct stream *s = stream_find(r, req->name.p, req->name.len);
    bool live = s != NULL && s->state != STREAM_IDLE;
    if (!live && req->wait_ms == 0) {
        conn_error(c, SLP_E_NOT_FOUND, "stream %.*s is not live", (int)req->name.len, req->name.p);
        return;
    }
    if (s == NULL && (s = stream_get(r, req->name.p, req->name.len)) == NULL) {
        conn_error(c, SLP_E_INTERNAL, "out of memory");
        return;
    }
    struct slp_frame accept = { .type = SLP_ACCEPT, .accept = { SLP_SUBSCRIBE } };
    if (conn_send(c, &accept) == -1) {
        conn_error(c, SLP_E_INTERNAL, "out of memory");
        return;
    }
    slp_session_accepted(&c->sess);
    c->sub.start = req->start;
    stream_add_sub(s, c);
    int64_t now = clock_mono_ms();
    if (live) {
        start(c, s, now);
    } else {
        int64_t wait = (int64_t)req->wait_ms < r->cfg->max_wait_ms ? (int64_t)req->wait_ms
                                                                   : r->cfg->max_wait_ms;
        conn_set_state(c, CONN_WAITING);
        c->deadline_ms = now + wait;
    }
    log_info("conn %llu: subscriber %s (%s) from %s: %s, start %s%s", (unsigned long long)c->id,
             c->node, c->agent, c->peer, s->name, slp_start_name(req->start),
             live ? "" : ", waiting for it to go live");
}

void subscriber_publisher_changed(struct conn *c, struct stream *s)
{
    int64_t now = clock_mono_ms();
    if (c->state == CONN_WAITING) {
        start(c, s, now);
        return;
    }
    if (c->state != CONN_SUBSCRIBED)
        return;
    admit_publisher_changed(&c->sub.phase);
    push(c, s->publish, now);
}

static void drop(struct conn *c, struct chunk *m, bool new_gap)
{
    struct stream *s = c->stream;
    c->sub.drops++;
    c->sub.dropped_bytes += m->buf.len;
    metric_add(s->m.dropped_frames, 1);
    metric_add(s->m.dropped_bytes, (double)m->buf.len);
    if (!new_gap)
        return;
    c->sub.gaps++;
    metric_add(s->m.gaps, 1);
    log_debug("conn %llu: subscriber %s of %s fell behind (%zu bytes queued): dropping to "
              "the next keyframe", (unsigned long long)c->id, c->peer, s->name,
              outq_bytes(&c->out));
}

void subscriber_deliver(struct conn *c, struct chunk *m, int64_t now)
{
    if (c->state != CONN_SUBSCRIBED)
        return;
    size_t queued = outq_bytes(&c->out);
    int rc;
    switch (admit_media(&c->sub.phase, m->flags, queued, m->buf.len, media_limit(c))) {
    case ADMIT_SKIP:
        return;
    case ADMIT_GAP:
        drop(c, m, true);
        return;
    case ADMIT_DROP:
        drop(c, m, false);
        return;
    case ADMIT_SEND:
        rc = outq_push_chunk(&c->out, m);
        break;
    case ADMIT_SEND_DISC:
        rc = outq_push_media_flags(&c->out, m, m->flags | SLP_F_DISCONTINUITY);
        break;
    default:
        return;
    }
    if (rc == -1) {
        conn_error(c, SLP_E_INTERNAL, "out of memory");
        return;
    }
    if (queued == 0)
        c->sub.behind_since_ms = now;
    c->last_tx_ms = now;
    count_out(c, 1);
}

int subscriber_tick(struct conn *c, int64_t now)
{
    const struct relay_config *cfg = c->relay->cfg;
    if (c->state == CONN_WAITING && now >= c->deadline_ms) {
        conn_error(c, SLP_E_NOT_FOUND, "stream %s did not go live in time",
                   c->stream ? c->stream->name : "?");
        return -1;
    }
    if (c->sub.behind_since_ms == 0 || now - c->sub.behind_since_ms < cfg->slow_timeout_ms)
        return 0;
    /* What is queued will not be read in time: drop it (the frame under
     * way excepted), so that the ERROR is next. */
    int64_t behind = now - c->sub.behind_since_ms;
    size_t cut = outq_cut(&c->out);
    metric_add(metric_at(c->relay->fam[M_CUTOFFS], "too_slow"), 1);
    conn_error(c, SLP_E_TOO_SLOW, "queue not emptied for %lld ms (%zu bytes dropped)",
               (long long)behind, cut);
    return -1;
}
