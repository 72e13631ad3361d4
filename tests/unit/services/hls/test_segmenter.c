/* The segmenter: cuts on keyframes at the target, early cuts, overrun cuts,
 * PTS wrap and jumps, skipping, the size bound, flushes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>

#include "../../../../services/hls/segmenter.h"
#include "mediagen.h"

#define HZ SEG_HZ
#define FRAME (HZ / 25)             /* 25 fps */
#define WALL0 INT64_C(1795252800000000)

struct run {
    struct segmenter *s;
    struct seg_out out[64];
    unsigned n;
};

static void run_init(struct run *r, int64_t target, int64_t limit, size_t max_bytes)
{
    struct seg_options o = { .target = target, .limit = limit, .max_bytes = max_bytes };
    r->s = segmenter_new(&o);
    assert_non_null(r->s);
    r->n = 0;
}

static void run_free(struct run *r)
{
    for (unsigned i = 0; i < r->n; i++)
        free(r->out[i].data);
    segmenter_free(r->s);
}

static int feed(struct run *r, bool key, int64_t pts, int64_t wall, uint8_t tag)
{
    struct mg_frame m;
    int rc = segmenter_feed(r->s, mg_make(&m, key, pts, wall, 4, tag), &r->out[r->n]);
    assert_int_not_equal(rc, -1);
    if (rc == 1) {
        assert_true(r->n < 63);
        r->n++;
    }
    return rc;
}

/* <secs> seconds of 25 fps video with a keyframe every <gop> frames, from
 * <pts0>, stepping the wall clock with the PTS. */
static void feed_video(struct run *r, int64_t pts0, int frames, int gop)
{
    for (int i = 0; i < frames; i++)
        feed(r, i % gop == 0, (pts0 + (int64_t)i * FRAME) % SEG_PTS_MOD,
             WALL0 + (int64_t)i * 40000, (uint8_t)i);
}

static void test_cut_at_target(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, 2 * HZ, 10 * HZ, 64 << 20);
    feed_video(&r, 900000, 250, 25);     /* 10 s, 1 s GOP */
    assert_int_equal(r.n, 4);            /* the 5th is still open */
    for (unsigned i = 0; i < r.n; i++) {
        assert_int_equal(r.out[i].duration, 2 * HZ);
        assert_int_equal(r.out[i].cut, SEG_CUT_KEYFRAME);
        assert_true(r.out[i].keyframe);
        assert_false(r.out[i].discontinuity);
        assert_int_equal(r.out[i].start_pts, 900000 + (int64_t)i * 2 * HZ);
        assert_int_equal(r.out[i].end_pts, 900000 + (int64_t)(i + 1) * 2 * HZ);
        assert_int_equal(r.out[i].start_wall_us, WALL0 + (int64_t)i * 2000000);
        assert_int_equal(r.out[i].end_wall_us, WALL0 + (int64_t)(i + 1) * 2000000);
        /* starts with PAT, PMT, keyframe PES; 50 frames of 4 packets, +2 per keyframe */
        assert_int_equal(r.out[i].len, (50 * 4 + 2 * 2) * 188);
        assert_int_equal(r.out[i].data[1] & 0x1f, 0);
        assert_int_equal(seg_psi_prefix(r.out[i].data, r.out[i].len, 12), 2);
    }
    struct seg_out last;
    assert_int_equal(segmenter_flush(r.s, false, &last), 1);
    assert_int_equal(last.cut, SEG_CUT_FLUSH);
    assert_int_equal(last.duration, 2 * HZ);     /* 50 frames: 49 intervals + 1 */
    free(last.data);
    assert_int_equal(segmenter_flush(r.s, false, &last), 0);
    run_free(&r);
}

static void test_drops_before_keyframe(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, 2 * HZ, 10 * HZ, 64 << 20);
    for (int i = 0; i < 10; i++)
        feed(&r, false, i * FRAME, WALL0, 1);
    assert_false(segmenter_open(r.s));
    assert_int_equal(segmenter_dropped(r.s), 10);
    feed(&r, true, 10 * FRAME, WALL0, 1);
    assert_true(segmenter_open(r.s));
    run_free(&r);
}

static void test_long_gop_sets_first_segment(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, 2 * HZ, 10 * HZ + HZ / 2 - 90, 64 << 20);
    feed_video(&r, 0, 76, 75);                  /* 3 s GOP */
    assert_int_equal(r.n, 1);
    assert_int_equal(r.out[0].duration, 3 * HZ);
    segmenter_set_limit(r.s, 3 * HZ + HZ / 2 - 90);
    feed_video(&r, 76 * FRAME, 300, 75);        /* (starting off-GOP: a keyframe at +74) */
    for (unsigned i = 1; i < r.n; i++)
        assert_true(r.out[i].duration <= 3 * HZ + HZ / 2 - 90);
    run_free(&r);
}

static void test_early_cut(void **state)
{
    (void)state;
    struct run r;
    /* target 2 s, limit 2.5 s, GOP 1.5 s: waiting for the keyframe after 1.5 s
     * would make 3 s, so cut at 1.5 s */
    run_init(&r, 2 * HZ, 2 * HZ + HZ / 2 - 90, 64 << 20);
    feed_video(&r, 0, 200, 38);
    assert_true(r.n >= 4);
    for (unsigned i = 1; i < r.n; i++) {
        assert_int_equal(r.out[i].cut, SEG_CUT_EARLY);
        assert_int_equal(r.out[i].duration, 38 * FRAME);
        assert_true(r.out[i].keyframe);
    }
    run_free(&r);
}

static void test_overrun_cut(void **state)
{
    (void)state;
    struct run r;
    int64_t limit = 2 * HZ + HZ / 2 - 90;
    run_init(&r, 2 * HZ, limit, 64 << 20);
    feed_video(&r, 0, 500, 250);                /* 10 s GOP */
    assert_true(r.n >= 3);
    int64_t next = 0;
    for (unsigned i = 0; i < r.n; i++) {
        assert_true(r.out[i].duration <= limit);
        assert_true(r.out[i].duration > 2 * HZ);
        assert_int_equal(r.out[i].start_pts, next);
        next = r.out[i].start_pts + r.out[i].duration;
        if (r.out[i].cut == SEG_CUT_OVERRUN) {
            /* the next one starts with copies of PAT and PMT, then an access unit */
            assert_int_equal(r.out[i].duration, 62 * FRAME);
        }
        assert_false(r.out[i].discontinuity);
    }
    assert_true(r.out[0].keyframe);
    assert_false(r.out[1].keyframe);
    assert_int_equal(seg_psi_prefix(r.out[1].data, r.out[1].len, 12), 2);
    assert_int_equal(r.out[1].data[1] & 0x1f, 0);     /* PAT first */
    run_free(&r);
}

static void test_pts_wrap(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, 2 * HZ, 10 * HZ, 64 << 20);
    int64_t pts0 = SEG_PTS_MOD - 3 * HZ;      /* wraps 3 s in */
    feed_video(&r, pts0, 251, 25);
    assert_int_equal(r.n, 5);
    for (unsigned i = 0; i < r.n; i++) {
        assert_int_equal(r.out[i].duration, 2 * HZ);
        assert_false(r.out[i].discontinuity);
        assert_int_equal(r.out[i].cut, SEG_CUT_KEYFRAME);
    }
    assert_int_equal(r.out[1].start_pts, SEG_PTS_MOD - HZ);
    assert_int_equal(r.out[2].start_pts, HZ);
    assert_int_equal(seg_pts_delta(5, SEG_PTS_MOD - 5), 10);
    assert_int_equal(seg_pts_delta(SEG_PTS_MOD - 5, 5), -10);
    run_free(&r);
}

static void test_jumps(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, 2 * HZ, 2 * HZ + HZ / 2 - 90, 64 << 20);
    feed_video(&r, 1000000, 60, 25);            /* 2 segments' worth, one cut */
    assert_int_equal(r.n, 1);
    /* backwards: an input restart */
    feed(&r, true, 5000, WALL0 + 3000000, 9);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.out[1].cut, SEG_CUT_JUMP);
    assert_true(r.out[1].duration > 0 && r.out[1].duration <= HZ);
    feed_video(&r, 5000 + FRAME, 60, 25);
    assert_true(r.out[2].discontinuity);
    /* forward past the limit */
    unsigned before = r.n;
    feed(&r, true, 100 * HZ, WALL0 + 9000000, 9);
    assert_int_equal(r.n, before + 1);
    assert_int_equal(r.out[before].cut, SEG_CUT_JUMP);
    /* flagged */
    feed_video(&r, 100 * HZ + FRAME, 10, 100);
    struct mg_frame m;
    struct seg_frame *f = mg_make(&m, true, 100 * HZ + 11 * FRAME, WALL0, 4, 1);
    f->flags |= SLP_F_DISCONTINUITY;
    assert_int_equal(segmenter_feed(r.s, f, &r.out[r.n]), 1);
    assert_int_equal(r.out[r.n].cut, SEG_CUT_JUMP);
    assert_true(r.out[r.n].discontinuity);       /* it began after the jump before */
    unsigned flagged = ++r.n;
    feed_video(&r, 100 * HZ + 12 * FRAME, 80, 25);
    assert_true(r.n > flagged);
    assert_true(r.out[flagged].discontinuity);   /* the one the flagged keyframe began */
    assert_int_equal(r.out[flagged].start_pts, 100 * HZ + 11 * FRAME);
    run_free(&r);
}

static void test_skip_before(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, 2 * HZ, 10 * HZ, 64 << 20);
    segmenter_skip_before(r.s, WALL0 + 2000000);
    segmenter_discontinuity(r.s);
    feed_video(&r, 0, 150, 25);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.out[0].start_wall_us, WALL0 + 2000000);
    assert_int_equal(r.out[0].start_pts, 2 * HZ);
    assert_true(r.out[0].discontinuity);
    assert_int_equal(segmenter_dropped(r.s), 50);
    run_free(&r);
}

/* Regression: ingest stamps every frame of one SRT read with one wall clock,
 * so a keyframe shares it with the frames read after it. A segment flushed
 * after such frames (an owner stopping) recorded that wall clock as its end,
 * and the next owner, skipping keyframes *before* it, packaged the keyframe
 * (from the relay's GOP cache) a second time (tests/integration/
 * test_hls_failover.py, the handover, under load). */
static void test_flush_ends_after_frames_sharing_a_wall_clock(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, 2 * HZ, 10 * HZ, 64 << 20);
    feed(&r, true, 0, WALL0, 0);               /* one read: a keyframe and two frames */
    feed(&r, false, FRAME, WALL0, 1);
    feed(&r, false, 2 * FRAME, WALL0, 2);
    struct seg_out o;
    assert_int_equal(segmenter_flush(r.s, false, &o), 1);
    assert_int_equal(o.end_wall_us, WALL0 + 1);
    assert_int_equal(o.end_pts, -1);
    free(o.data);
    run_free(&r);
    /* the next owner gets the same frames from the GOP cache, then the next GOP */
    run_init(&r, 2 * HZ, 10 * HZ, 64 << 20);
    segmenter_skip_before(r.s, WALL0 + 1);
    feed(&r, true, 0, WALL0, 0);
    feed(&r, false, FRAME, WALL0, 1);
    feed(&r, false, 2 * FRAME, WALL0, 2);
    feed(&r, true, 25 * FRAME, WALL0 + 1000000, 3);
    assert_int_equal(segmenter_flush(r.s, false, &o), 1);
    assert_int_equal(o.start_pts, 25 * FRAME);
    assert_int_equal(segmenter_dropped(r.s), 3);
    free(o.data);
    run_free(&r);
}

static void test_size_bound(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, 2 * HZ, 10 * HZ, 60 * 4 * 188);   /* 60 frames */
    feed_video(&r, 0, 200, 100);
    assert_true(r.n >= 1);
    assert_int_equal(r.out[0].cut, SEG_CUT_SIZE);
    assert_true(r.out[0].len <= 60 * 4 * 188);
    /* the rest of that GOP is dropped; the next keyframe starts a new timeline */
    assert_int_equal(r.n, 2);
    assert_true(r.out[1].discontinuity);
    assert_int_equal(r.out[1].start_pts, 100 * FRAME);
    run_free(&r);
}

static void test_flush_and_gap(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, 2 * HZ, 10 * HZ, 64 << 20);
    feed_video(&r, 0, 30, 25);
    struct seg_out o;
    assert_int_equal(segmenter_flush(r.s, false, &o), 1);    /* a stall */
    assert_int_equal(o.duration, 30 * FRAME);
    free(o.data);
    /* the publisher comes back, timestamps continuing: no discontinuity */
    feed_video(&r, 30 * FRAME, 25, 25);
    assert_int_equal(segmenter_flush(r.s, false, &o), 1);
    assert_false(o.discontinuity);
    free(o.data);
    /* ... 10 s later: a gap, so a discontinuity */
    feed_video(&r, 305 * FRAME, 25, 25);
    assert_int_equal(segmenter_flush(r.s, false, &o), 1);
    assert_true(o.discontinuity);
    free(o.data);
    run_free(&r);
}

static void test_psi_prefix(void **state)
{
    (void)state;
    struct mg_frame m;
    struct seg_frame *f = mg_make(&m, true, 0, 0, 5, 0);
    assert_int_equal(seg_psi_prefix(f->ts, f->len, 12), 2);
    assert_int_equal(seg_psi_prefix(f->ts, f->len, 1), 1);
    f = mg_make(&m, false, 0, 0, 5, 0);
    assert_int_equal(seg_psi_prefix(f->ts, f->len, 12), 0);
    assert_string_equal(seg_cut_name(SEG_CUT_OVERRUN), "overrun");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_at_target),
        cmocka_unit_test(test_drops_before_keyframe),
        cmocka_unit_test(test_long_gop_sets_first_segment),
        cmocka_unit_test(test_early_cut),
        cmocka_unit_test(test_overrun_cut),
        cmocka_unit_test(test_pts_wrap),
        cmocka_unit_test(test_jumps),
        cmocka_unit_test(test_skip_before),
        cmocka_unit_test(test_flush_ends_after_frames_sharing_a_wall_clock),
        cmocka_unit_test(test_size_bound),
        cmocka_unit_test(test_flush_and_gap),
        cmocka_unit_test(test_psi_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
