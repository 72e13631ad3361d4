/* The playlist writer and the packager: the exact text, the window, the
 * sequence numbers across resumes and restarts, and adversarial timestamp
 * sequences through the whole packager, every rendered playlist checked by
 * plcheck.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>

#include "../../../../services/hls/packager.h"
#include "../../../../services/hls/playlist.h"
#include "mediagen.h"
#include "plcheck.h"

#define HZ SEG_HZ
#define FRAME (HZ / 25)
#define WALL0 INT64_C(1795252800000000)      /* 2026-11-21T09:20:00Z */

static char text[PLAYLIST_RENDER_MAX];

static const char *render(const struct playlist *pl)
{
    size_t n = playlist_render(pl, text, sizeof(text));
    assert_true(n < sizeof(text));
    assert_int_equal(n, strlen(text));
    return text;
}

static void add(struct playlist *pl, int64_t dur_us, int64_t wall_us, bool disc)
{
    struct pl_segment s = { .duration_us = dur_us, .wall_us = wall_us, .disc = disc, .epoch = 7 };
    assert_int_equal(playlist_add(pl, &s, NULL), 0);
}

static void check(struct plcheck *c, const struct playlist *pl)
{
    const char *t = render(pl);
    if (plcheck_feed(c, t, strlen(t)) != 0)
        fail_msg("%s\n---\n%s", c->err, t);
}

static void test_text(void **state)
{
    (void)state;
    struct playlist pl;
    playlist_init(&pl, 3, 100, 5);
    assert_int_equal(playlist_set_target(&pl, 2), 0);
    add(&pl, 2000000, WALL0, false);
    add(&pl, 1999600, WALL0 + 7000000, false);     /* the date runs on from the first */
    add(&pl, 2002000, WALL0 + 9000000, true);      /* after a discontinuity: its own date */
    playlist_end(&pl);
    assert_string_equal(render(&pl),
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-TARGETDURATION:2\n"
        "#EXT-X-MEDIA-SEQUENCE:100\n"
        "#EXT-X-DISCONTINUITY-SEQUENCE:5\n"
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-21T09:20:00.000Z\n"
        "#EXTINF:2.000,\n"
        "7-100.ts\n"
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-21T09:20:02.000Z\n"
        "#EXTINF:2.000,\n"
        "7-101.ts\n"
        "#EXT-X-DISCONTINUITY\n"
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-21T09:20:09.000Z\n"
        "#EXTINF:2.002,\n"
        "7-102.ts\n"
        "#EXT-X-ENDLIST\n");
    assert_int_equal(playlist_set_target(&pl, 3), -1);
    struct pl_segment s = { .duration_us = 1, .epoch = 7 };
    assert_int_equal(playlist_add(&pl, &s, NULL), -1);      /* ended */
}

static void test_window_and_dseq(void **state)
{
    (void)state;
    struct playlist pl;
    struct plcheck c = { .strict = true };
    playlist_init(&pl, 3, 0, 0);
    playlist_set_target(&pl, 2);
    for (int i = 0; i < 20; i++) {
        add(&pl, 2000000, WALL0 + i * 2000000, i % 4 == 3);
        check(&c, &pl);
        assert_true(pl.n <= 3 || pl.total_ms - playlist_at(&pl, 0)->duration_ms < 6000);
    }
    assert_int_equal(pl.n, 3);
    assert_int_equal(playlist_first_seq(&pl), 17);
    /* 19 is a discontinuity: 0 + (3, 7, 11, 15, 19) */
    assert_int_equal(playlist_at(&pl, 2)->dseq, 5);
    assert_true(strstr(render(&pl), "#EXT-X-DISCONTINUITY-SEQUENCE:4\n") != NULL);
    /* short segments: the window keeps three target durations */
    for (int i = 0; i < 10; i++) {
        add(&pl, 500000, WALL0 + 40000000 + i * 500000, false);
        check(&c, &pl);
    }
    assert_true(pl.total_ms >= 6000);
    assert_int_equal(pl.n, 11);               /* 10 x 0.5 s + one 2 s */
}

static void test_resume_restart(void **state)
{
    (void)state;
    struct playlist pl;
    struct plcheck c = { .strict = true };
    playlist_init(&pl, 6, 0, 0);
    playlist_set_target(&pl, 2);
    for (int i = 0; i < 4; i++)
        add(&pl, 2000000, WALL0 + i * 2000000, false);
    check(&c, &pl);
    /* another owner carries on from the state this one recorded */
    struct playlist next;
    playlist_init(&next, 6, 0, 0);
    playlist_resume(&next, pl.last_seq, pl.last_dseq, pl.last_end_ms);
    playlist_set_target(&next, 2);
    add(&next, 2000000, WALL0 + 5000000, true);   /* ingest says earlier than the end */
    const struct pl_entry *e = playlist_at(&next, 0);
    assert_int_equal(e->seq, 4);
    assert_int_equal(e->dseq, 1);
    assert_true(e->disc);
    assert_int_equal(e->pdt_ms, WALL0 / 1000 + 8000);   /* not before the last end */
    assert_true(strstr(render(&next), "#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-DISCONTINUITY\n")
                != NULL);
    check(&c, &next);
    /* ends, then the stream comes back: a new presentation, numbers go on */
    playlist_end(&next);
    check(&c, &next);
    playlist_restart(&next);
    assert_int_equal(next.target, 0);
    assert_int_equal(playlist_set_target(&next, 4), 0);
    add(&next, 3000000, WALL0 + 60000000, true);
    assert_int_equal(playlist_first_seq(&next), 5);
    check(&c, &next);
}

static void test_clamps(void **state)
{
    (void)state;
    struct playlist pl;
    playlist_init(&pl, 6, 0, 0);
    playlist_set_target(&pl, 2);
    add(&pl, 2600000, WALL0, false);        /* would round to 3 */
    add(&pl, 0, WALL0, false);              /* nothing */
    add(&pl, -5, -5, false);
    assert_int_equal(playlist_at(&pl, 0)->duration_ms, 2499);
    assert_int_equal(playlist_at(&pl, 1)->duration_ms, 1);
    assert_int_equal(pl.clamped, 1);
    struct plcheck c = { 0 };
    check(&c, &pl);
    assert_int_equal(playlist_pick_target(2, 2002000, 10), 2);
    assert_int_equal(playlist_pick_target(2, 2500000, 10), 3);
    assert_int_equal(playlist_pick_target(2, 45000000, 10), 10);
    assert_int_equal(playlist_pick_target(0, 0, 10), 1);
}

static void test_names(void **state)
{
    (void)state;
    uint64_t e, s;
    char buf[PL_URI_MAX];
    assert_int_equal(playlist_segment_name(buf, sizeof(buf), 3, 1207), 9);
    assert_string_equal(buf, "3-1207.ts");
    assert_int_equal(playlist_parse_name("3-1207.ts", 9, &e, &s), 2);
    assert_int_equal(e, 3);
    assert_int_equal(s, 1207);
    assert_int_equal(playlist_parse_name("index.m3u8", 10, &e, &s), 1);
    static const char *const bad[] = { "", "3-1207.t", "03-1207.ts", "3-01.ts", "-1.ts", "3-.ts",
                                       "3_1.ts", "3-1.ts.tmp", "index.m3u", "1-12345678901234567890.ts",
                                       ".3-1.ts", "3-1.TS" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(playlist_parse_name(bad[i], strlen(bad[i]), &e, &s), 0);
    assert_int_equal(playlist_parse_name("0-0.ts", 6, &e, &s), 2);
}

/* ---- the packager ---------------------------------------------------------- */

struct pk {
    struct packager *p;
    struct plcheck c;
    unsigned segments;
    uint64_t last_seq;
};

static void pk_init(struct pk *k, unsigned window, bool strict)
{
    struct packager_options o = { .target_us = 2000000, .max_target_s = 10,
                                  .max_bytes = 8 << 20, .window = window };
    memset(k, 0, sizeof(*k));
    k->p = packager_new(&o, 1, 1000, 1000);
    assert_non_null(k->p);
    k->c.strict = strict;
}

static void pk_got(struct pk *k, struct packaged *out)
{
    free(out->seg.data);
    k->segments++;
    k->last_seq = out->entry.seq;
    check(&k->c, &k->p->pl);
}

static void pk_feed(struct pk *k, const struct seg_frame *f)
{
    struct packaged out;
    int rc = packager_feed(k->p, f, &out);
    assert_int_not_equal(rc, -1);
    if (rc == 1)
        pk_got(k, &out);
}

static void pk_flush(struct pk *k, bool disc)
{
    struct packaged out;
    if (packager_flush(k->p, disc, &out) == 1)
        pk_got(k, &out);
}

static void test_packager_steady(void **state)
{
    (void)state;
    struct pk k;
    pk_init(&k, 6, true);
    struct mg_frame m;
    for (int i = 0; i < 25 * 60; i++)      /* a minute, 1 s GOP */
        pk_feed(&k, mg_make(&m, i % 25 == 0, 1000 + i * FRAME, WALL0 + i * 40000, 3, 0));
    assert_int_equal(k.segments, 29);
    assert_int_equal(k.p->pl.target, 2);
    assert_int_equal(k.p->pl.n, 6);
    for (unsigned i = 0; i < k.p->pl.n; i++)
        assert_int_equal(playlist_at(&k.p->pl, i)->duration_ms, 2000);
    struct pstate st;
    packager_state(k.p, &st);
    assert_true(st.has_segment);
    assert_int_equal(st.media_sequence, 1028);
    assert_int_equal(st.target_duration, 2);
    assert_int_equal(st.end_pts, 1000 + 58 * HZ);
    assert_int_equal(st.end_wall_us, WALL0 + 58000000);
    assert_int_equal(st.last_duration_us, 2000000);
    /* a second owner takes over from that state, two seconds later in the GOP cache */
    struct pk k2;
    pk_init(&k2, 6, true);
    k2.c = k.c;                       /* the same viewer, through the edge */
    packager_resume(k2.p, &st);
    for (int i = 25 * 57; i < 25 * 70; i++)
        pk_feed(&k2, mg_make(&m, i % 25 == 0, 1000 + i * FRAME, WALL0 + i * 40000, 3, 0));
    const struct pl_entry *e = playlist_at(&k2.p->pl, 0);
    assert_int_equal(e->seq, 1029);
    assert_true(e->disc);
    assert_int_equal(e->pdt_ms, WALL0 / 1000 + 58000);   /* skipped what was packaged */
    packager_free(k.p);
    packager_free(k2.p);
}

static void test_packager_long_gop(void **state)
{
    (void)state;
    struct pk k;
    pk_init(&k, 6, true);
    struct mg_frame m;
    /* first GOP 3 s: target 3; then GOPs of 7 s: overrun cuts keep 3 */
    int i = 0;
    for (; i < 75 * 2; i++)
        pk_feed(&k, mg_make(&m, i % 75 == 0, i * FRAME, WALL0 + i * 40000, 3, 0));
    for (; i < 75 * 2 + 175 * 6; i++)
        pk_feed(&k, mg_make(&m, (i - 150) % 175 == 0, i * FRAME, WALL0 + i * 40000, 3, 0));
    assert_int_equal(k.p->pl.target, 3);
    assert_true(k.segments > 10);
    assert_int_equal(k.p->pl.clamped, 0);
    packager_free(k.p);
}

static void test_packager_end_restart(void **state)
{
    (void)state;
    struct pk k;
    pk_init(&k, 6, true);
    struct mg_frame m;
    for (int i = 0; i < 25 * 10; i++)
        pk_feed(&k, mg_make(&m, i % 25 == 0, i * FRAME, WALL0 + i * 40000, 3, 0));
    pk_flush(&k, true);            /* EOS */
    packager_end(k.p);
    check(&k.c, &k.p->pl);
    assert_true(strstr(render(&k.p->pl), "#EXT-X-ENDLIST\n") != NULL);
    struct pstate st;
    packager_state(k.p, &st);
    assert_true(st.ended);
    packager_restart(k.p);
    for (int i = 0; i < 25 * 10; i++)     /* the encoder restarts from 0, GOP 4 s now */
        pk_feed(&k, mg_make(&m, i % 100 == 0, i * FRAME, WALL0 + 60000000 + i * 40000, 3, 0));
    assert_int_equal(k.p->pl.target, 4);
    assert_true(playlist_at(&k.p->pl, 0)->disc);
    packager_free(k.p);
}

/* xorshift, so that runs repeat */
static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random abuse: keyframes anywhere, PTS that wrap, jump, go back, repeat or
 * go missing, wall clocks that stall or leap, discontinuity flags, stalls
 * and flushes. Every playlist rendered stays legal. */
static void test_packager_adversarial(void **state)
{
    (void)state;
    for (int run = 0; run < 40; run++) {
        struct pk k;
        pk_init(&k, 1 + (unsigned)(rnd() % 8), false);
        struct mg_frame m;
        int64_t pts = (int64_t)(rnd() % SEG_PTS_MOD), wall = WALL0;
        for (int i = 0; i < 3000; i++) {
            uint64_t r = rnd() % 1000;
            if (r < 5)
                pts = (int64_t)(rnd() % SEG_PTS_MOD);           /* a jump anywhere */
            else if (r < 10)
                pts = (pts + SEG_PTS_MOD - (int64_t)(rnd() % (5 * HZ))) % SEG_PTS_MOD;
            else if (r < 15)
                wall += (int64_t)(rnd() % 100000000);
            else if (r < 18)
                pk_flush(&k, rnd() % 2);
            else if (r < 20)
                packager_discontinuity(k.p);
            bool key = rnd() % (r < 500 ? 30 : 60) == 0;
            int64_t p = rnd() % 50 == 0 ? -1 : pts;
            struct seg_frame *f = mg_make(&m, key, p, wall, 1 + (unsigned)(rnd() % 4), 0);
            if (rnd() % 200 == 0)
                f->flags |= SLP_F_DISCONTINUITY;
            pk_feed(&k, f);
            pts = (pts + (int64_t)(rnd() % (2 * FRAME))) % SEG_PTS_MOD;
            wall += (int64_t)(rnd() % 80000);
        }
        pk_flush(&k, true);
        packager_end(k.p);
        if (k.segments > 0)
            check(&k.c, &k.p->pl);
        assert_true(k.segments > 0);
        packager_free(k.p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_window_and_dseq),
        cmocka_unit_test(test_resume_restart),
        cmocka_unit_test(test_clamps),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_packager_steady),
        cmocka_unit_test(test_packager_long_gop),
        cmocka_unit_test(test_packager_end_restart),
        cmocka_unit_test(test_packager_adversarial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
