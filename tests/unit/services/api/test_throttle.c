/* Login throttling, driven by an explicit clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_failures_lock),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_success_forgets_neutral_does_not),
        cmocka_unit_test(test_attempts_in_flight_count),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_full_of_locks_counts_nothing_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
