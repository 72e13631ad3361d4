/* Login throttling, driven by an explicit clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/api/throttle.h"

static struct throttle *make(size_t entries)
{
    struct throttle_options o = { .max_entries = entries, .max_failures = 5,
                                  .window_ms = 60000, .lockout_ms = 300000 };
    struct throttle *t = throttle_new(&o);
    assert_non_null(t);
    return t;
}

/* <n> failures of <key>; true if the last one locked it. */
static bool fail_n(struct throttle *t, const char *key, int n, int64_t now)
{
    bool locked = false;
    for (int i = 0; i < n; i++) {
        assert_int_equal(throttle_begin(t, key, now), 0);
        locked = throttle_end(t, key, now, THROTTLE_FAILURE);
    }
    return locked;
}

static void test_five_failures_lock(void **state)
{
    (void)state;
    struct throttle *t = make(100);
    assert_false(fail_n(t, "u:alice", 4, 1000));
    assert_int_equal(throttle_begin(t, "u:alice", 1000), 0);
    assert_true(throttle_end(t, "u:alice", 1000, THROTTLE_FAILURE));   /* locked now */
    assert_int_equal(throttle_begin(t, "u:alice", 2000), 299000);
    assert_int_equal(throttle_begin(t, "u:bob", 2000), 0);   /* others unaffected */
    throttle_end(t, "u:bob", 2000, THROTTLE_NEUTRAL);
    /* the lock ends, and the count starts afresh */
    assert_int_equal(throttle_begin(t, "u:alice", 301000), 0);
    throttle_end(t, "u:alice", 301000, THROTTLE_FAILURE);
    assert_int_equal(throttle_begin(t, "u:alice", 301000), 0);
    throttle_end(t, "u:alice", 301000, THROTTLE_NEUTRAL);
    throttle_free(t);
}

static void test_window_slides(void **state)
{
    (void)state;
    struct throttle *t = make(100);
    fail_n(t, "a:1.2.3.4", 4, 0);
    /* a minute later the four have aged out: four more do not lock */
    fail_n(t, "a:1.2.3.4", 4, 60000);
    assert_int_equal(throttle_begin(t, "a:1.2.3.4", 60001), 0);
    throttle_end(t, "a:1.2.3.4", 60001, THROTTLE_NEUTRAL);
    throttle_free(t);
}

static void test_success_forgets_neutral_does_not(void **state)
{
    (void)state;
    struct throttle *t = make(100);
    fail_n(t, "u:a", 4, 0);
    assert_int_equal(throttle_begin(t, "u:a", 0), 0);
    throttle_end(t, "u:a", 0, THROTTLE_SUCCESS);
    fail_n(t, "u:a", 4, 0);   /* would lock if the success had not wiped the four */
    assert_int_equal(throttle_begin(t, "u:a", 0), 0);
    throttle_end(t, "u:a", 0, THROTTLE_NEUTRAL);
    fail_n(t, "u:a", 1, 0);   /* the neutral end kept the count: now five */
    assert_true(throttle_begin(t, "u:a", 0) > 0);
    throttle_free(t);
}

static void test_attempts_in_flight_count(void **state)
{
    (void)state;
    struct throttle *t = make(100);
    fail_n(t, "u:a", 3, 0);
    assert_int_equal(throttle_begin(t, "u:a", 0), 0);
    assert_int_equal(throttle_begin(t, "u:a", 0), 0);
    /* three failures and two guesses in flight: a sixth must wait */
    assert_true(throttle_begin(t, "u:a", 0) > 0);
    throttle_end(t, "u:a", 0, THROTTLE_NEUTRAL);
    throttle_end(t, "u:a", 0, THROTTLE_NEUTRAL);
    assert_int_equal(throttle_begin(t, "u:a", 0), 0);
    throttle_end(t, "u:a", 0, THROTTLE_NEUTRAL);
    throttle_free(t);
}

static void test_bounded(void **state)
{
    (void)state;
    struct throttle *t = make(10);
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "a:%d", i);
        fail_n(t, key, 1, i);
        assert_true(throttle_size(t) <= 10);
    }
    /* locked keys are kept over merely failing ones */
    struct throttle *u = make(10);
    fail_n(u, "u:locked", 5, 0);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "a:%d", i);
        fail_n(u, key, 1, 1);
    }
    assert_true(throttle_begin(u, "u:locked", 2) > 0);
    /* stale entries go by themselves */
    assert_int_equal(throttle_begin(u, "u:new", 10000000), 0);
    throttle_end(u, "u:new", 10000000, THROTTLE_NEUTRAL);
    assert_true(throttle_size(u) <= 1);
    throttle_free(t);
    throttle_free(u);
}

static void test_full_of_locks_counts_nothing_new(void **state)
{
    (void)state;
    struct throttle *t = make(2);
    fail_n(t, "u:x", 5, 0);
    fail_n(t, "u:y", 5, 0);
    assert_int_equal(throttle_begin(t, "u:z", 0), 0);   /* uncounted, not refused */
    throttle_end(t, "u:z", 0, THROTTLE_FAILURE);
    assert_true(throttle_begin(t, "u:x", 0) > 0);
    throttle_free(t);
}

/* A lock learnt from Redis: held for as long as it was given, then a fresh
 * count, as after a lock of the table's own. */
static void test_lock_from_elsewhere(void **state)
{
    (void)state;
    struct throttle *t = make(100);
    fail_n(t, "u:a", 3, 0);
    assert_int_equal(throttle_lock(t, "u:a", 1000, 4000), 0);
    assert_int_equal(throttle_begin(t, "u:a", 1000), 3000);
    assert_int_equal(throttle_begin(t, "u:a", 3999), 1);
    /* a key this table never saw */
    assert_int_equal(throttle_lock(t, "a:192.0.2.7", 1000, 2000), 0);
    assert_int_equal(throttle_begin(t, "a:192.0.2.7", 1500), 500);
    /* over: the three failures before the lock are gone */
    fail_n(t, "u:a", 4, 4000);
    assert_int_equal(throttle_begin(t, "u:a", 4000), 0);
    throttle_end(t, "u:a", 4000, THROTTLE_NEUTRAL);
    assert_int_equal(throttle_begin(t, "a:192.0.2.7", 2000), 0);
    throttle_end(t, "a:192.0.2.7", 2000, THROTTLE_NEUTRAL);
    throttle_free(t);
}

static void test_lock_keeps_the_longer(void **state)
{
    (void)state;
    struct throttle *t = make(100);
    fail_n(t, "u:a", 5, 0);   /* locked here until 300000 */
    assert_int_equal(throttle_lock(t, "u:a", 1000, 2000), 0);
    assert_int_equal(throttle_begin(t, "u:a", 2000), 298000);
    assert_int_equal(throttle_lock(t, "u:a", 2000, 400000), 0);
    assert_int_equal(throttle_begin(t, "u:a", 2000), 398000);
    /* a lock already over is nothing, and makes no entry */
    assert_int_equal(throttle_lock(t, "u:b", 5000, 5000), 0);
    assert_int_equal(throttle_size(t), 1);
    throttle_free(t);
}

static void test_lock_with_attempts_in_flight(void **state)
{
    (void)state;
    struct throttle *t = make(100);
    assert_int_equal(throttle_begin(t, "u:a", 0), 0);
    assert_int_equal(throttle_lock(t, "u:a", 0, 3000), 0);
    assert_false(throttle_end(t, "u:a", 0, THROTTLE_NEUTRAL));
    assert_int_equal(throttle_begin(t, "u:a", 10), 2990);   /* still locked */
    throttle_free(t);
}

static void test_lock_in_a_full_table(void **state)
{
    (void)state;
    struct throttle *t = make(2);
    fail_n(t, "u:x", 5, 0);
    fail_n(t, "u:y", 5, 0);
    assert_int_equal(throttle_lock(t, "u:z", 0, 1000), -1);
    /* a merely failing key makes room */
    struct throttle *u = make(2);
    fail_n(u, "u:x", 5, 0);
    fail_n(u, "u:y", 1, 0);
    assert_int_equal(throttle_lock(u, "u:z", 0, 1000), 0);
    assert_int_equal(throttle_begin(u, "u:z", 0), 1000);
    throttle_free(t);
    throttle_free(u);
}

/* ---- subjects of client addresses --------------------------------------- */

static void assert_subject(const char *addr, const char *want, bool parsed)
{
    char s[THROTTLE_SUBJECT_MAX];
    assert_int_equal(throttle_addr_subject(addr, s, sizeof(s)), parsed);
    assert_string_equal(s, want);
}

static void test_subject_ipv4_is_the_address(void **state)
{
    (void)state;
    assert_subject("192.0.2.7", "192.0.2.7", true);
    assert_subject("203.0.113.255", "203.0.113.255", true);
    assert_subject("127.0.0.1", "127.0.0.1", true);
}

static void test_subject_ipv6_is_the_slash_64(void **state)
{
    (void)state;
    /* one /64, written every way */
    const char *same[] = {
        "2001:db8:1:2::1",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
        "2001:0db8:0001:0002:0000:0000:0000:0001",
        "2001:DB8:1:2:A:B:C:D",
        "2001:db8:1:2::",
        "2001:db8:1:2:0:0:192.0.2.1",
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        assert_subject(same[i], "2001:db8:1:2::/64", true);
    /* neighbouring /64s differ */
    assert_subject("2001:db8:1:3::1", "2001:db8:1:3::/64", true);
    assert_subject("2001:db8:1:1:ffff::1", "2001:db8:1:1::/64", true);
    assert_subject("2001:db8::7", "2001:db8::/64", true);
    assert_subject("::1", "::/64", true);
    assert_subject("fe80::1", "fe80::/64", true);
    assert_subject("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff::/64", true);
}

static void test_subject_mapped_ipv4_is_the_ipv4(void **state)
{
    (void)state;
    assert_subject("::ffff:192.0.2.7", "192.0.2.7", true);
    assert_subject("::FFFF:c000:0207", "192.0.2.7", true);
    assert_subject("::ffff:127.0.0.1", "127.0.0.1", true);
    /* not mapped: an IPv6 address like any other */
    assert_subject("::fffe:192.0.2.7", "::/64", true);
}

static void test_subject_of_anything_else_is_the_text(void **state)
{
    (void)state;
    assert_subject("", "", false);
    assert_subject("fe80::1%eth0", "fe80::1%eth0", false);
    assert_subject("192.0.2.7:80", "192.0.2.7:80", false);
    assert_subject("[2001:db8::1]", "[2001:db8::1]", false);
    assert_subject("01.2.3.4", "01.2.3.4", false);
    assert_subject("2001:db8::1/64", "2001:db8::1/64", false);
    assert_subject("proxy.example", "proxy.example", false);
    /* cut to fit, always terminated */
    char s[8];
    memset(s, 'x', sizeof(s));
    assert_false(throttle_addr_subject("not an address at all", s, sizeof(s)));
    assert_string_equal(s, "not an ");
    assert_false(throttle_addr_subject("x", s, 0));
    assert_string_equal(s, "not an ");   /* untouched */
}

static void test_subject_is_stable(void **state)
{
    (void)state;
    /* a subject's address, given again, names the same subject */
    char s[THROTTLE_SUBJECT_MAX], again[THROTTLE_SUBJECT_MAX];
    assert_true(throttle_addr_subject("2001:db8:aa:bb:1:2:3:4", s, sizeof(s)));
    *strchr(s, '/') = '\0';
    assert_true(throttle_addr_subject(s, again, sizeof(again)));
    assert_string_equal(again, "2001:db8:aa:bb::/64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_failures_lock),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_success_forgets_neutral_does_not),
        cmocka_unit_test(test_attempts_in_flight_count),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_full_of_locks_counts_nothing_new),
        cmocka_unit_test(test_lock_from_elsewhere),
        cmocka_unit_test(test_lock_keeps_the_longer),
        cmocka_unit_test(test_lock_with_attempts_in_flight),
        cmocka_unit_test(test_lock_in_a_full_table),
        cmocka_unit_test(test_subject_ipv4_is_the_address),
        cmocka_unit_test(test_subject_ipv6_is_the_slash_64),
        cmocka_unit_test(test_subject_mapped_ipv4_is_the_ipv4),
        cmocka_unit_test(test_subject_of_anything_else_is_the_text),
        cmocka_unit_test(test_subject_is_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
