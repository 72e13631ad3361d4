/* The packager: see packager.h. */
#include "packager.h"

#include <stdlib.h>
#include <string.h>

int64_t packager_limit(unsigned target_s)
{
    return (int64_t)target_s * SEG_HZ + SEG_HZ / 2 - SEG_HZ / 1000;
}

static unsigned want_target(const struct packager *p)
{
    int64_t s = (p->o.target_us + 999999) / 1000000;
    return s < 1 ? 1 : s > (int64_t)p->o.max_target_s ? p->o.max_target_s : (unsigned)s;
}

struct packager *packager_new(const struct packager_options *o, uint64_t epoch,
                              uint64_t first_seq, uint64_t first_dseq)
{
    struct packager *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->o = *o;
    if (p->o.max_target_s < 1 || p->o.max_target_s > PL_TARGET_MAX)
        p->o.max_target_s = PL_TARGET_MAX;
    struct seg_options so = {
        .target = o->target_us * SEG_HZ / 1000000,
        .limit = packager_limit(p->o.max_target_s),
        .max_bytes = o->max_bytes,
    };
    p->seg = segmenter_new(&so);
    if (p->seg == NULL) {
        free(p);
        return NULL;
    }
    p->epoch = epoch;
    p->end_pts = -1;
    playlist_init(&p->pl, o->window, first_seq, first_dseq);
    return p;
}

void packager_free(struct packager *p)
{
    if (p == NULL)
        return;
    segmenter_free(p->seg);
    free(p);
}

static void learn_target(struct packager *p, unsigned target)
{
    playlist_set_target(&p->pl, target);
    segmenter_set_limit(p->seg, packager_limit(target));
}

void packager_resume(struct packager *p, const struct pstate *st)
{
    if (!st->has_segment)
        return;
    playlist_resume(&p->pl, st->media_sequence, st->discontinuity_sequence,
                    (st->last_pdt_us + st->last_duration_us) / 1000);
    p->prev_target = st->target_duration;
    if (!st->ended)
        learn_target(p, st->target_duration);
    segmenter_skip_before(p->seg, st->end_wall_us);
    segmenter_discontinuity(p->seg);
    p->end_pts = st->end_pts;
    p->end_wall_us = st->end_wall_us;
}

/* A segment came out of the segmenter: into the playlist. */
static int add(struct packager *p, struct packaged *out)
{
    if (p->pl.target == 0)
        learn_target(p, playlist_pick_target(want_target(p), out->seg.duration * 1000000 / SEG_HZ,
                                             p->o.max_target_s));
    struct pl_segment s = {
        .duration_us = out->seg.duration * 1000000 / SEG_HZ,
        .wall_us = out->seg.start_wall_us,
        .disc = out->seg.discontinuity,
        .epoch = p->epoch,
    };
    if (playlist_add(&p->pl, &s, &out->entry) == -1) {
        free(out->seg.data);
        out->seg.data = NULL;
        return 0;
    }
    p->end_pts = out->seg.end_pts;
    p->end_wall_us = out->seg.end_wall_us;
    return 1;
}

int packager_feed(struct packager *p, const struct seg_frame *f, struct packaged *out)
{
    if (p->pl.ended)
        return 0;
    int rc = segmenter_feed(p->seg, f, &out->seg);
    if (rc == 1)
        return add(p, out);
    return rc;
}

int packager_flush(struct packager *p, bool discontinuity, struct packaged *out)
{
    if (segmenter_flush(p->seg, discontinuity, &out->seg) == 0)
        return 0;
    if (p->pl.ended) {
        free(out->seg.data);
        out->seg.data = NULL;
        return 0;
    }
    return add(p, out);
}

void packager_discontinuity(struct packager *p)
{
    segmenter_discontinuity(p->seg);
}

void packager_end(struct packager *p)
{
    struct packaged dropped;
    if (segmenter_flush(p->seg, true, &dropped.seg) == 1)
        free(dropped.seg.data);
    if (p->pl.has_last)
        playlist_end(&p->pl);
}

void packager_restart(struct packager *p)
{
    if (!p->pl.ended)
        return;
    p->prev_target = p->pl.target;
    playlist_restart(&p->pl);
    segmenter_set_limit(p->seg, packager_limit(p->o.max_target_s));
    segmenter_discontinuity(p->seg);
}

bool packager_ready(const struct packager *p)
{
    return p->pl.n > 0;
}

void packager_state(const struct packager *p, struct pstate *out)
{
    memset(out, 0, sizeof(*out));
    out->epoch = p->epoch;
    out->end_pts = -1;
    out->ended = p->pl.ended;
    unsigned target = p->pl.target ? p->pl.target : p->prev_target;
    if (!p->pl.has_last || target == 0)
        return;
    out->has_segment = true;
    out->media_sequence = p->pl.last_seq;
    out->discontinuity_sequence = p->pl.last_dseq;
    out->target_duration = target;
    int64_t dur_ms = 0;
    if (p->pl.n > 0)
        dur_ms = playlist_at(&p->pl, p->pl.n - 1)->duration_ms;
    out->last_duration_us = dur_ms * 1000;
    out->last_pdt_us = (p->pl.last_end_ms - dur_ms) * 1000;
    out->end_pts = p->end_pts;
    out->end_wall_us = p->end_wall_us;
}
