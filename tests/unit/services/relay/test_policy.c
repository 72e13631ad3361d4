/* The relay's decisions, row by row: which frame a subscriber gets
 * (SLP.md section 9, rules 6 and 7), the PUBLISH verdict (section 6), and
 * what a new publisher is to its stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../../../services/relay/policy.h"
#include "sluice/slp-t.h"

#define K SLP_F_KEYFRAME
#define D SLP_F_DISCONTINUITY
#define LIMIT 1000

struct row {
    enum sub_phase phase;
    uint16_t flags;
    size_t queued, size;
    enum admit want;
    enum sub_phase then;
};

static void check_rows(const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum sub_phase p = rows[i].phase;
        enum admit a = admit_media(&p, rows[i].flags, rows[i].queued, rows[i].size, LIMIT);
        if (a != rows[i].want || p != rows[i].then)
            fail_msg("row %zu: admit %d phase %d, want %d and %d", i, a, p, rows[i].want,
                     rows[i].then);
    }
}

static void test_start(void **state)
{
    (void)state;
    static const struct row rows[] = {
        { SUB_START, 0, 0, 100, ADMIT_SKIP, SUB_START },        /* waits for a keyframe */
        { SUB_START, K, 0, 100, ADMIT_SEND, SUB_LIVE },
        { SUB_START, K | D, 0, 100, ADMIT_SEND, SUB_LIVE },     /* the publisher's flag stays */
        { SUB_START, K, 950, 100, ADMIT_SKIP, SUB_START },      /* no room: not a drop yet */
        { SUB_START, K, 0, 1000, ADMIT_SEND, SUB_LIVE },        /* exactly the limit fits */
        { SUB_START, K, 0, 1001, ADMIT_SKIP, SUB_START },
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_live_and_gaps(void **state)
{
    (void)state;
    static const struct row rows[] = {
        { SUB_LIVE, 0, 0, 100, ADMIT_SEND, SUB_LIVE },
        { SUB_LIVE, K, 500, 500, ADMIT_SEND, SUB_LIVE },
        { SUB_LIVE, 0, 901, 100, ADMIT_GAP, SUB_GAP },          /* overflow: a gap begins */
        { SUB_LIVE, K, 901, 100, ADMIT_GAP, SUB_GAP },          /* even a keyframe that does not fit */
        { SUB_LIVE, 0, 2000, 1, ADMIT_GAP, SUB_GAP },           /* queued beyond the limit */
        { SUB_GAP, 0, 0, 100, ADMIT_DROP, SUB_GAP },            /* room again, but not a keyframe */
        { SUB_GAP, K, 950, 100, ADMIT_DROP, SUB_GAP },          /* a keyframe without room */
        { SUB_GAP, K, 0, 100, ADMIT_SEND_DISC, SUB_LIVE },      /* the gap ends, marked */
        { SUB_GAP, K | D, 0, 100, ADMIT_SEND, SUB_LIVE },       /* already marked: as it is */
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_publisher_change(void **state)
{
    (void)state;
    enum sub_phase p = SUB_LIVE;
    admit_publisher_changed(&p);
    assert_int_equal(p, SUB_GAP);
    assert_int_equal(admit_media(&p, 0, 0, 10, LIMIT), ADMIT_DROP);   /* not its keyframe yet */
    assert_int_equal(admit_media(&p, K, 0, 10, LIMIT), ADMIT_SEND_DISC);
    p = SUB_START;                          /* nothing sent before: nothing to mark */
    admit_publisher_changed(&p);
    assert_int_equal(p, SUB_START);
    p = SUB_GAP;
    admit_publisher_changed(&p);
    assert_int_equal(p, SUB_GAP);
}

/* A long run: whatever the queue does, a subscriber never gets a non-keyframe
 * right after a gap, and every gap ends with a DISCONTINUITY keyframe. */
static void test_never_resumes_mid_gop(void **state)
{
    (void)state;
    enum sub_phase p = SUB_START;
    unsigned seed = 7;
    bool after_gap = false, started = false;
    for (int i = 0; i < 100000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint16_t flags = (seed >> 8) % 10 == 0 ? K : 0;
        size_t queued = (seed >> 12) % 1200;
        enum admit a = admit_media(&p, flags, queued, 100, LIMIT);
        if (a == ADMIT_SEND || a == ADMIT_SEND_DISC) {
            if (!started || after_gap)
                assert_true(flags & K);
            assert_true(!after_gap || a == ADMIT_SEND_DISC);
            assert_true(after_gap || a == ADMIT_SEND);
            started = true;
            after_gap = false;
        } else if (a == ADMIT_GAP) {
            assert_true(started && !after_gap);
            after_gap = true;
        } else if (a == ADMIT_DROP) {
            assert_true(after_gap);
        } else {
            assert_false(started);
        }
    }
}

static void test_publish_decide(void **state)
{
    (void)state;
    /* Redis answered: only the holder */
    assert_int_equal(publish_decide(LEASE_ANSWER_HOLDER, "a", "a", NULL), PUBLISH_ACCEPT);
    assert_int_equal(publish_decide(LEASE_ANSWER_HOLDER, "b", "a", NULL), PUBLISH_CONFLICT);
    assert_int_equal(publish_decide(LEASE_ANSWER_HOLDER, "b", "a", "a"), PUBLISH_CONFLICT);
    assert_int_equal(publish_decide(LEASE_ANSWER_HOLDER, "a", "a", "b"), PUBLISH_ACCEPT);
    assert_int_equal(publish_decide(LEASE_ANSWER_HOLDER, "ab", "a", NULL), PUBLISH_CONFLICT);
    assert_int_equal(publish_decide(LEASE_ANSWER_NONE, NULL, "a", "a"), PUBLISH_CONFLICT);
    /* Redis could not answer: only a publisher this relay has for the stream */
    assert_int_equal(publish_decide(LEASE_ANSWER_ERROR, NULL, "a", "a"), PUBLISH_ACCEPT);
    assert_int_equal(publish_decide(LEASE_ANSWER_ERROR, NULL, "a", "b"), PUBLISH_UNAVAILABLE);
    assert_int_equal(publish_decide(LEASE_ANSWER_ERROR, NULL, "a", NULL), PUBLISH_UNAVAILABLE);
}

static void test_publisher_change_kind(void **state)
{
    (void)state;
    assert_int_equal(publisher_change(NULL, "a"), CHANGE_NEW);
    assert_int_equal(publisher_change("a", "a"), CHANGE_RECONNECT);
    assert_int_equal(publisher_change("a", "b"), CHANGE_TAKEOVER);
    assert_string_equal(publisher_change_name(CHANGE_TAKEOVER), "takeover");
    assert_string_equal(sub_phase_name(SUB_GAP), "dropping");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start),
        cmocka_unit_test(test_live_and_gaps),
        cmocka_unit_test(test_publisher_change),
        cmocka_unit_test(test_never_resumes_mid_gop),
        cmocka_unit_test(test_publish_decide),
        cmocka_unit_test(test_publisher_change_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
