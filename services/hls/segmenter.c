/* The segmenter: see segmenter.h. */
#include "segmenter.h"

#include <stdlib.h>
#include <string.h>

#include "sluice/slp-t.h"

#define TS 188
#define PSI_MAX_PACKETS 12            /* PAT and PMT copies kept for overrun cuts */
#define MIN_DURATION 90               /* 1 ms: no segment is shorter */
#define GAP_TOLERANCE (SEG_HZ / 4)    /* a new segment this far from where the
                                         last ended starts a new timeline */

struct segmenter {
    struct seg_options o;
    uint64_t dropped;
    int64_t skip_before;              /* wall clock; 0 = nothing to skip */
    bool pending_disc;                /* the next segment starts a new timeline */
    int64_t expect_pts;               /* where the last segment ended; -1 unknown */
    int64_t last_kf_pts;              /* of this timeline; -1 unknown */
    int64_t gop;                      /* last keyframe interval, ticks; 0 unknown */
    size_t hint;                      /* size of the last segment */
    uint8_t psi[PSI_MAX_PACKETS * TS];
    size_t psi_len;
    /* the open segment */
    bool open;
    uint8_t *data;
    size_t len, cap;
    int64_t start_pts, start_wall, last_wall;
    bool disc, key;
    int64_t span;                     /* latest PTS offset of an access unit, >= 0 */
    unsigned naus;                    /* access units with a PTS, the first included */
};

static const char *const cut_names[SEG_CUT_COUNT] = {
    "keyframe", "early", "overrun", "jump", "size", "flush",
};

const char *seg_cut_name(enum seg_cut c)
{
    return (unsigned)c < SEG_CUT_COUNT ? cut_names[c] : "?";
}

int64_t seg_pts_delta(int64_t to, int64_t from)
{
    int64_t d = (to - from) & (SEG_PTS_MOD - 1);
    return d > SEG_PTS_MOD / 2 ? d - SEG_PTS_MOD : d;
}

static int64_t pts_add(int64_t pts, int64_t d)
{
    return (pts + d) & (SEG_PTS_MOD - 1);
}

/* Offset of the payload of packet <p>, or TS when it has none. */
static size_t payload_offset(const uint8_t *p)
{
    unsigned afc = (p[3] >> 4) & 3;
    if (!(afc & 1))
        return TS;
    size_t off = afc & 2 ? 5u + p[4] : 4u;
    return off < TS ? off : TS;
}

static bool pes_start(const uint8_t *p)
{
    size_t off = payload_offset(p);
    return (p[1] & 0x40) && off + 3 <= TS && p[off] == 0 && p[off + 1] == 0 && p[off + 2] == 1;
}

size_t seg_psi_prefix(const uint8_t *ts, size_t len, size_t max)
{
    size_t n = len / TS, i = 0;
    while (i < n && i < max && !pes_start(ts + i * TS))
        i++;
    return i;
}

struct segmenter *segmenter_new(const struct seg_options *o)
{
    struct segmenter *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->o = *o;
    s->expect_pts = -1;
    s->last_kf_pts = -1;
    return s;
}

static void discard(struct segmenter *s)
{
    free(s->data);
    s->data = NULL;
    s->len = s->cap = 0;
    s->open = false;
}

void segmenter_free(struct segmenter *s)
{
    if (s == NULL)
        return;
    free(s->data);
    free(s);
}

void segmenter_set_limit(struct segmenter *s, int64_t limit)
{
    s->o.limit = limit > MIN_DURATION ? limit : MIN_DURATION;
}

void segmenter_skip_before(struct segmenter *s, int64_t wall_us)
{
    s->skip_before = wall_us;
}

void segmenter_discontinuity(struct segmenter *s)
{
    s->pending_disc = true;
}

bool segmenter_open(const struct segmenter *s)
{
    return s->open;
}

uint64_t segmenter_dropped(const struct segmenter *s)
{
    return s->dropped;
}

/* Makes room for <more> bytes. Returns 0 or -1. */
static int reserve(struct segmenter *s, size_t more)
{
    if (s->cap - s->len >= more)
        return 0;
    size_t want = s->len + more;
    size_t cap = s->cap ? s->cap * 2 : (s->hint + s->hint / 4 > want ? s->hint + s->hint / 4
                                                                      : 256 * 1024);
    if (cap < want)
        cap = want;
    if (cap > s->o.max_bytes && want <= s->o.max_bytes)
        cap = s->o.max_bytes;
    uint8_t *p = realloc(s->data, cap);
    if (p == NULL)
        return -1;
    s->data = p;
    s->cap = cap;
    return 0;
}

static int append(struct segmenter *s, const uint8_t *p, size_t n)
{
    if (reserve(s, n) == -1)
        return -1;
    memcpy(s->data + s->len, p, n);
    s->len += n;
    return 0;
}

/* Notes an access unit at offset <d> from the segment's start. */
static void note_au(struct segmenter *s, int64_t d)
{
    if (d > s->span)
        s->span = d;
    s->naus++;
}

/* Where the open segment's media ends, in ticks from its start, as well as
 * its access units tell: the last one's offset plus an average frame. */
static int64_t estimated_duration(const struct segmenter *s)
{
    int64_t d = s->span + (s->naus >= 2 ? s->span / (s->naus - 1) : 0);
    if (d < MIN_DURATION && s->last_wall > s->start_wall && s->start_wall > 0)
        d = (s->last_wall - s->start_wall) * SEG_HZ / 1000000;
    if (d > s->o.limit)
        d = s->o.limit;
    return d < MIN_DURATION ? MIN_DURATION : d;
}

/* Hands the open segment over in *<out>, <duration> ticks long. */
static void finish(struct segmenter *s, int64_t duration, enum seg_cut cut, int64_t end_pts,
                   int64_t end_wall, struct seg_out *out)
{
    if (duration < MIN_DURATION)
        duration = MIN_DURATION;
    *out = (struct seg_out){
        .data = s->data, .len = s->len, .cap = s->cap,
        .start_pts = s->start_pts, .duration = duration,
        .start_wall_us = s->start_wall, .end_wall_us = end_wall > 0 ? end_wall : s->last_wall,
        .end_pts = end_pts, .discontinuity = s->disc, .keyframe = s->key, .cut = cut,
    };
    s->hint = s->len;
    s->data = NULL;
    s->len = s->cap = 0;
    s->open = false;
    s->expect_pts = pts_add(s->start_pts, duration);
}

/* Opens a segment at the frame <f> (a keyframe, or an access unit after an
 * overrun when <start_pts> continues the timeline). */
static int open_at(struct segmenter *s, const struct seg_frame *f, int64_t start_pts, bool key,
                   bool disc)
{
    s->open = true;
    s->start_pts = start_pts;
    s->start_wall = s->last_wall = f->wall_us;
    s->key = key;
    s->disc = disc;
    s->span = 0;
    s->naus = 0;
    s->skip_before = 0;
    if (!key && append(s, s->psi, s->psi_len) == -1)
        return -1;
    if (append(s, f->ts, f->len) == -1)
        return -1;
    note_au(s, seg_pts_delta(f->pts, start_pts) > 0 ? seg_pts_delta(f->pts, start_pts) : 0);
    return 0;
}

static void remember_psi(struct segmenter *s, const struct seg_frame *f)
{
    size_t n = seg_psi_prefix(f->ts, f->len, PSI_MAX_PACKETS);
    if (n > 0) {
        memcpy(s->psi, f->ts, n * TS);
        s->psi_len = n * TS;
    }
}

/* A keyframe with no segment open: starts one, unless it is to be skipped. */
static int start(struct segmenter *s, const struct seg_frame *f)
{
    if (s->skip_before > 0 && f->wall_us > 0 && f->wall_us < s->skip_before) {
        s->dropped++;
        return 0;
    }
    bool disc = s->pending_disc || (f->flags & SLP_F_DISCONTINUITY);
    if (!disc && s->expect_pts >= 0) {
        int64_t gap = seg_pts_delta(f->pts, s->expect_pts);
        disc = gap > GAP_TOLERANCE || gap < -GAP_TOLERANCE;
    }
    s->pending_disc = false;
    s->last_kf_pts = f->pts;
    if (open_at(s, f, f->pts, true, disc) == -1)
        return -1;
    return 0;
}

/* Out of memory: the open segment is lost, the next one starts afresh. */
static int fail(struct segmenter *s)
{
    discard(s);
    s->pending_disc = true;
    s->dropped++;
    return -1;
}

/* A keyframe while a segment is open. */
static int on_keyframe(struct segmenter *s, const struct seg_frame *f, struct seg_out *out)
{
    int64_t d = seg_pts_delta(f->pts, s->start_pts);
    bool jump = (f->flags & SLP_F_DISCONTINUITY) || d < 0 || d > s->o.limit;
    int64_t g = s->last_kf_pts >= 0 ? seg_pts_delta(f->pts, s->last_kf_pts) : 0;
    if (!jump && g > 0 && g <= 4 * s->o.limit)
        s->gop = g;
    enum seg_cut cut;
    if (jump)
        cut = SEG_CUT_JUMP;
    else if (d >= s->o.target)
        cut = SEG_CUT_KEYFRAME;
    else if (s->gop > 0 && d + s->gop > s->o.limit)
        cut = SEG_CUT_EARLY;
    else if (s->len + f->len > s->o.max_bytes)
        cut = SEG_CUT_SIZE;
    else {
        s->last_kf_pts = f->pts;
        s->last_wall = f->wall_us > 0 ? f->wall_us : s->last_wall;
        note_au(s, d);
        return append(s, f->ts, f->len) == -1 ? fail(s) : 0;
    }
    finish(s, jump ? estimated_duration(s) : d, cut, f->pts, f->wall_us, out);
    if (jump)
        s->pending_disc = true;
    if (start(s, f) == -1)
        fail(s);                  /* the segment that ended is still good */
    return 1;
}

/* An access unit (not a keyframe) while a segment is open: cut before it if
 * it would make the segment longer than the limit. Returns 1 if cut. */
static int maybe_overrun(struct segmenter *s, const struct seg_frame *f, struct seg_out *out)
{
    int64_t d = seg_pts_delta(f->pts, s->start_pts);
    if (d < -s->o.limit || d > 2 * s->o.limit)
        return 0;                 /* nonsense: not used for timing */
    int64_t span = d > s->span ? d : s->span;
    int64_t frame = span / s->naus;
    if (span + frame <= s->o.limit) {
        note_au(s, d > 0 ? d : 0);
        return 0;
    }
    int64_t duration = s->naus >= 2 ? s->span + s->span / (s->naus - 1) : (d > 0 ? d : 0);
    if (duration > s->o.limit)
        duration = s->o.limit;
    int64_t next = pts_add(s->start_pts, duration < MIN_DURATION ? MIN_DURATION : duration);
    finish(s, duration, SEG_CUT_OVERRUN, f->pts, f->wall_us, out);
    if (open_at(s, f, next, false, false) == -1)
        fail(s);
    return 1;
}

int segmenter_feed(struct segmenter *s, const struct seg_frame *f, struct seg_out *out)
{
    bool key = (f->flags & SLP_F_KEYFRAME) && f->pts >= 0;
    if (key)
        remember_psi(s, f);
    if (!s->open) {
        if (!key) {
            s->dropped++;
            return 0;
        }
        return start(s, f) == -1 ? fail(s) : 0;
    }
    if (key)
        return on_keyframe(s, f, out);
    if (f->flags & SLP_F_DISCONTINUITY) {     /* only keyframes should carry it */
        finish(s, estimated_duration(s), SEG_CUT_JUMP, -1, f->wall_us, out);
        s->pending_disc = true;
        s->dropped++;
        return 1;
    }
    if (s->len + f->len > s->o.max_bytes) {
        finish(s, estimated_duration(s), SEG_CUT_SIZE, -1, f->wall_us, out);
        s->pending_disc = true;
        s->dropped++;
        return 1;
    }
    int rc = f->pts >= 0 ? maybe_overrun(s, f, out) : 0;
    if (rc == 1)
        return 1;
    s->last_wall = f->wall_us > 0 ? f->wall_us : s->last_wall;
    return append(s, f->ts, f->len) == -1 ? fail(s) : 0;
}

int segmenter_flush(struct segmenter *s, bool discontinuity, struct seg_out *out)
{
    if (discontinuity)
        s->pending_disc = true;
    if (!s->open)
        return 0;
    /* No frame ended it: it ends after its last frame, whose wall clock the
     * frames ingest read with it share (a keyframe among them was packaged) */
    finish(s, estimated_duration(s), SEG_CUT_FLUSH, -1, s->last_wall > 0 ? s->last_wall + 1 : 0,
           out);
    return 1;
}
