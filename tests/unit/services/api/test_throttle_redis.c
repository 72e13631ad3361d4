/* The pure parts of the throttle shared in Redis: key names and waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/api/throttle_redis.h"

static void test_plain_names_stay_readable(void **state)
{
    (void)state;
    char k[THROTTLE_REDIS_KEY_MAX];
    assert_int_equal(throttle_redis_key(k, sizeof(k), THROTTLE_REDIS_USER, "al.b@x-y_1"), 0);
    assert_string_equal(k, "sluice:throttle:login:user:al.b@x-y_1");
    assert_int_equal(throttle_redis_key(k, sizeof(k), THROTTLE_REDIS_ADDR, "192.0.2.7"), 0);
    assert_string_equal(k, "sluice:throttle:login:addr:192.0.2.7");
    assert_int_equal(throttle_redis_key(k, sizeof(k), THROTTLE_REDIS_ADDR, "2001:db8::1"),
                     0);
    assert_string_equal(k, "sluice:throttle:login:addr:2001:db8::1");
}

static void test_other_bytes_are_escaped(void **state)
{
    (void)state;
    char k[THROTTLE_REDIS_KEY_MAX];
    /* a login may name anyone: spaces, '%', '*', control bytes, UTF-8 */
    assert_int_equal(throttle_redis_key(k, sizeof(k), THROTTLE_REDIS_USER,
                                        "a b%*\r\n\xc3\xa9"), 0);
    assert_string_equal(k, "sluice:throttle:login:user:a%20b%25%2A%0D%0A%C3%A9");
    /* escaping is one to one: "%20" as given is not " " */
    char k2[THROTTLE_REDIS_KEY_MAX];
    assert_int_equal(throttle_redis_key(k2, sizeof(k2), THROTTLE_REDIS_USER, "a%20b"), 0);
    assert_string_equal(k2, "sluice:throttle:login:user:a%2520b");
}

static void test_longest_name_fits(void **state)
{
    (void)state;
    char name[65], k[THROTTLE_REDIS_KEY_MAX];
    memset(name, '\xff', 64);   /* the longest user name, all escaped */
    name[64] = '\0';
    assert_int_equal(throttle_redis_key(k, sizeof(k), THROTTLE_REDIS_USER, name), 0);
    assert_int_equal(strlen(k), strlen(THROTTLE_REDIS_USER) + 64 * 3);
    /* too small a buffer is refused, never cut short */
    char small[32];
    assert_int_equal(throttle_redis_key(small, sizeof(small), THROTTLE_REDIS_USER, "a"), 0);
    assert_int_equal(throttle_redis_key(small, sizeof(small), THROTTLE_REDIS_USER,
                                        "abcde"), -1);
    assert_int_equal(throttle_redis_key(small, 28, THROTTLE_REDIS_USER, ""), 0);
    assert_int_equal(throttle_redis_key(small, 28, THROTTLE_REDIS_USER, "a"), -1);
    assert_int_equal(throttle_redis_key(small, 30, THROTTLE_REDIS_USER, "\x01"), -1);
    assert_int_equal(throttle_redis_key(small, 31, THROTTLE_REDIS_USER, "\x01"), 0);
}

static void test_retry_after_rounds_up(void **state)
{
    (void)state;
    assert_int_equal(throttle_retry_after_s(1), 1);
    assert_int_equal(throttle_retry_after_s(999), 1);
    assert_int_equal(throttle_retry_after_s(1000), 1);
    assert_int_equal(throttle_retry_after_s(1001), 2);
    assert_int_equal(throttle_retry_after_s(299999), 300);
    assert_int_equal(throttle_retry_after_s(300000), 300);
    assert_int_equal(throttle_retry_after_s(0), 1);   /* never "retry after 0" */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_names_stay_readable),
        cmocka_unit_test(test_other_bytes_are_escaped),
        cmocka_unit_test(test_longest_name_fits),
        cmocka_unit_test(test_retry_after_rounds_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
