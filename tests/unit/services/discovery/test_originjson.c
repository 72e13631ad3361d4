/* origin.json as hls writes it, and as it must not be. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "../../../../services/discovery/originjson.h"

static int parse(const char *text, struct origin_info *out, char *why)
{
    return origin_json_parse(text, strlen(text), out, why, 200);
}

static void test_valid(void **state)
{
    (void)state;
    struct origin_info o;
    char why[200];
    assert_int_equal(parse("{\"url\": \"http://10.0.0.5:8080\", \"node\": \"hls-1\", "
                           "\"updated_at\": \"2026-11-21T10:00:00.000Z\"}", &o, why), 0);
    assert_string_equal(o.url, "http://10.0.0.5:8080");
    assert_string_equal(o.node, "hls-1");
    assert_int_equal(parse("{\"url\": \"http://hls-1:8080/\", \"future\": [1, 2]}", &o, why), 0);
    assert_string_equal(o.url, "http://hls-1:8080");
    assert_string_equal(o.node, "");
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "{", "[]", "\"http://h:1\"", "{}", "{\"url\": null}", "{\"url\": 8080}",
        "{\"url\": \"10.0.0.5:8080\"}", "{\"url\": \"http://h:1/live\"}",
        "{\"url\": \"http://h:1\", \"url\": \"http://h:2\"}",
        "{\"url\": \"http://h:1\", \"node\": 7}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct origin_info o;
        char why[200] = "";
        if (parse(bad[i], &o, why) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_true(why[0] != '\0');
    }
    char big[ORIGIN_JSON_MAX + 2];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "{\"url\": \"http://h:1\"}", 21);
    struct origin_info o;
    char why[200];
    assert_int_equal(parse(big, &o, why), -1);
    assert_non_null(strstr(why, "larger"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests_name("origin.json", tests, NULL, NULL);
}
