/* The slow-viewer rule of services/ingest/viewer.c (viewer_admit): a viewer
 * that falls behind (by bytes unacknowledged, or by their age) loses frames
 * up to a keyframe that finds it caught up to half; never half a GOP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>

#include "../../../../services/ingest/viewer.h"

#define LIMIT 1000

static bool admit(bool *dropping, bool key, size_t bytes, int64_t ms, int64_t max_ms,
                  bool *gap_ended)
{
    struct viewer_lag lag = { .bytes = bytes, .ms = ms, .max_ms = max_ms };
    return viewer_admit(dropping, key, &lag, LIMIT, gap_ended);
}

static void test_in_time_passes(void **state)
{
    (void)state;
    bool dropping = false, gap;
    assert_true(admit(&dropping, false, 0, 0, 0, &gap));
    assert_true(admit(&dropping, false, LIMIT, 0, 0, &gap));    /* at the limit: still in */
    assert_true(admit(&dropping, true, 10, 100, 200, &gap));
    assert_false(dropping);
    assert_false(gap);
}

static void test_behind_by_bytes_drops_to_a_keyframe(void **state)
{
    (void)state;
    bool dropping = false, gap;
    assert_false(admit(&dropping, false, LIMIT + 1, 0, 0, &gap));
    assert_true(dropping);
    assert_false(gap);
    /* caught up, but not a keyframe: still dropping (no half GOP) */
    assert_false(admit(&dropping, false, 0, 0, 0, &gap));
    /* a keyframe while still over half: dropped too */
    assert_false(admit(&dropping, true, LIMIT / 2 + 1, 0, 0, &gap));
    assert_true(dropping);
    /* a keyframe at half: the gap ends there */
    assert_true(admit(&dropping, true, LIMIT / 2, 0, 0, &gap));
    assert_false(dropping);
    assert_true(gap);
    assert_true(admit(&dropping, false, LIMIT, 0, 0, &gap));
    assert_false(gap);
}

static void test_behind_by_time_drops_to_a_keyframe(void **state)
{
    (void)state;
    bool dropping = false, gap;
    assert_true(admit(&dropping, false, 0, 300, 300, &gap));     /* at the bound */
    assert_false(admit(&dropping, true, 0, 301, 300, &gap));     /* even a keyframe */
    assert_true(dropping);
    assert_false(admit(&dropping, true, 0, 151, 300, &gap));     /* not yet at half */
    assert_true(admit(&dropping, true, 0, 150, 300, &gap));
    assert_true(gap);
    /* no time bound (0): the age does not count */
    dropping = false;
    assert_true(admit(&dropping, false, 0, 100000, 0, &gap));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_time_passes),
        cmocka_unit_test(test_behind_by_bytes_drops_to_a_keyframe),
        cmocka_unit_test(test_behind_by_time_drops_to_a_keyframe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
