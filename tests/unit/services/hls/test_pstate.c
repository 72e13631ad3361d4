/* The packaging state in Redis: format, parse back, refuse what is out of
 * range or malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../../../services/hls/pstate.h"

static int parse(const char *json, struct pstate *st)
{
    char why[160] = "";
    int rc = pstate_parse(json, strlen(json), st, why, sizeof(why));
    if (rc == -1)
        assert_true(why[0] != '\0');
    return rc;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct pstate st = {
        .epoch = 3, .has_segment = true, .media_sequence = 1207, .discontinuity_sequence = 2,
        .target_duration = 2, .last_pdt_us = 1795252800123000, .last_duration_us = 2000000,
        .end_pts = 90000, .end_wall_us = 1795252802123456, .ended = false,
    };
    strcpy(st.owner, "hls-1/7\"q");
    char *json = pstate_format(&st, 1795252802200000);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"updated_at\":\"2026-11-21T09:20:02.200Z\""));
    struct pstate back;
    assert_int_equal(parse(json, &back), 0);
    assert_memory_equal(&st, &back, sizeof(st));
    free(json);
    /* a claim without a segment yet */
    struct pstate claim = { .epoch = 9, .end_pts = -1 };
    json = pstate_format(&claim, 0);
    assert_non_null(json);
    assert_null(strstr(json, "media_sequence"));
    assert_int_equal(parse(json, &back), 0);
    assert_false(back.has_segment);
    assert_int_equal(back.epoch, 9);
    assert_int_equal(back.end_pts, -1);
    free(json);
}

static void test_documented_example(void **state)
{
    (void)state;
    struct pstate st;
    /* docs/redis.md, with a field from a later version */
    assert_int_equal(parse("{\"epoch\": 3, \"media_sequence\": 1207, \"discontinuity_sequence\": 2,"
                           " \"target_duration\": 2, \"last_pdt_us\": 1795252800123000,"
                           " \"last_duration_us\": 2000000, \"end_pts\": 90000,"
                           " \"end_wall_us\": 1795252802123000, \"ended\": false,"
                           " \"owner\": \"hls-1/7\", \"updated_at\": \"2026-11-21T10:00:02.123Z\","
                           " \"future\": [1]}", &st), 0);
    assert_int_equal(st.media_sequence, 1207);
    assert_string_equal(st.owner, "hls-1/7");
}

static void test_refused(void **state)
{
    (void)state;
    struct pstate st;
    static const char *const bad[] = {
        "", "null", "[]", "{}", "{\"epoch\": 0}", "{\"epoch\": -1}", "{\"epoch\": 1.5}",
        "{\"epoch\": \"1\"}", "{\"epoch\": 9007199254740992}", "{\"epoch\": 1, \"epoch\": 2}",
        "{\"epoch\": 1, \"media_sequence\": 5}",
        "{\"epoch\": 1, \"media_sequence\": 5, \"discontinuity_sequence\": 0, "
        "\"target_duration\": 0, \"last_pdt_us\": 0, \"last_duration_us\": 0}",
        "{\"epoch\": 1, \"media_sequence\": 5, \"discontinuity_sequence\": 0, "
        "\"target_duration\": 2, \"last_pdt_us\": -1, \"last_duration_us\": 0}",
        "{\"epoch\": 1, \"media_sequence\": 5, \"discontinuity_sequence\": 0, "
        "\"target_duration\": 2, \"last_pdt_us\": 0, \"last_duration_us\": 0, \"end_pts\": 8589934592}",
        "{\"epoch\": 1, \"ended\": 1}", "{\"epoch\": 1, \"owner\": 7}", "{\"epoch\": 1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st.epoch = 77;
        if (parse(bad[i], &st) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(st.epoch, 0);
    }
    char big[PSTATE_MAX_LEN + 2], why[64];
    memset(big, ' ', sizeof(big));
    assert_int_equal(pstate_parse(big, sizeof(big), &st, why, sizeof(why)), -1);
    struct pstate out = { .epoch = 0 };
    assert_null(pstate_format(&out, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_documented_example),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
