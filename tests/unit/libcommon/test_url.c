/* The origin URL grammar shared by discovery (which advertises) and edge
 * (which reads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "sluice/url.h"

static bool valid(const char *s)
{
    return origin_url_valid(s, strlen(s));
}

static void test_valid(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "http://10.0.0.5:8080", "http://hls-1:8080", "http://hls-1.internal", "http://[::1]:8080",
        "http://[fe80::1]", "http://a", "http://127.0.0.1:65535", "http://h:1", "http://h:8080/",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(valid(ok[i]));
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "http://", "http:///", "https://h:1", "ftp://h", "http://h:0", "http://h:65536",
        "http://h:", "http://h:8080/x", "http://u@h:80", "http://h h", "http://h:80?x",
        "http://[]:80", "http://[::1", "http://[zz]:1", "http://-h", "http://.h", "HTTP://h",
        "http://h:123456", "http://h:8080//", "http://h\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (valid(bad[i]))
            fail_msg("accepted \"%s\"", bad[i]);
    }
    char longer[ORIGIN_URL_MAX + 10] = "http://";
    memset(longer + 7, 'a', sizeof(longer) - 8);
    longer[sizeof(longer) - 1] = '\0';
    assert_false(valid(longer));
}

static void test_normalize(void **state)
{
    (void)state;
    char out[ORIGIN_URL_MAX + 1];
    assert_int_equal(origin_url_normalize("http://h:80/", 12, out, sizeof(out)), 0);
    assert_string_equal(out, "http://h:80");
    assert_int_equal(origin_url_normalize("http://h:80", 11, out, sizeof(out)), 0);
    assert_string_equal(out, "http://h:80");
    assert_int_equal(origin_url_normalize("http://h:80", 11, out, 5), -1);
    assert_int_equal(origin_url_normalize("nope", 4, out, sizeof(out)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_normalize),
    };
    return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
