/* Known publishers (issue 4: "While Redis is unreachable, a publisher id the
 * relay already knows may reconnect"): the table remembers the last id per
 * name for its TTL, stays within its bound, and gives way to Redis and EOS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../../../services/relay/known.h"

#define TTL 60000

static void test_remembers_for_the_ttl(void **state)
{
    (void)state;
    struct known k;
    known_init(&k, 8, TTL);
    assert_null(known_get(&k, "cam1", 0));
    assert_int_equal(known_seen(&k, "cam1", "ingest-1/7", 1000), 0);
    assert_string_equal(known_get(&k, "cam1", 1000), "ingest-1/7");
    assert_string_equal(known_get(&k, "cam1", 1000 + TTL - 1), "ingest-1/7");
    assert_null(known_get(&k, "cam1", 1000 + TTL));            /* expired */
    assert_null(known_get(&k, "cam2", 1000));                  /* per name */
    assert_null(known_get(&k, "cam", 1000));
    /* seen again (lost later, say): the TTL runs from then */
    assert_int_equal(known_seen(&k, "cam1", "ingest-1/7", 50000), 0);
    assert_string_equal(known_get(&k, "cam1", 1000 + TTL), "ingest-1/7");
    assert_null(known_get(&k, "cam1", 50000 + TTL));
    /* a takeover: the new id replaces the old one */
    assert_int_equal(known_seen(&k, "cam1", "ingest-2/3", 60000), 0);
    assert_string_equal(known_get(&k, "cam1", 60000), "ingest-2/3");
    assert_int_equal(k.n, 1);
    known_fini(&k);
}

static void test_expire(void **state)
{
    (void)state;
    struct known k;
    known_init(&k, 8, TTL);
    known_seen(&k, "a", "p/1", 0);
    known_seen(&k, "b", "p/2", 10);
    known_seen(&k, "c", "p/3", 5000);
    known_seen(&k, "d", "p/4", 20);
    known_expire(&k, TTL + 10);                     /* a and b (and only they) go */
    assert_int_equal(k.n, 2);
    assert_null(known_get(&k, "a", 0));
    assert_null(known_get(&k, "b", 0));
    assert_string_equal(known_get(&k, "c", TTL + 10), "p/3");
    assert_string_equal(known_get(&k, "d", TTL + 10), "p/4");
    known_expire(&k, TTL + 5000);
    assert_int_equal(k.n, 0);
    known_fini(&k);
}

static void test_bounded(void **state)
{
    (void)state;
    struct known k;
    char name[16];
    known_init(&k, 100, TTL);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(known_seen(&k, name, "p/1", 1000 + i), 0);
        assert_true(k.n <= 100 && k.cap <= 100);
    }
    assert_int_equal(k.n, 100);
    /* the ones seen longest ago made room */
    assert_null(known_get(&k, "s0", 2000));
    assert_null(known_get(&k, "s899", 2000));
    assert_string_equal(known_get(&k, "s900", 2000), "p/1");
    assert_string_equal(known_get(&k, "s999", 2000), "p/1");
    /* seeing one again keeps it; the oldest other goes */
    known_seen(&k, "s900", "p/1", 5000);
    known_seen(&k, "new", "p/2", 5001);
    assert_string_equal(known_get(&k, "s900", 5001), "p/1");
    assert_null(known_get(&k, "s901", 5001));
    assert_string_equal(known_get(&k, "new", 5001), "p/2");
    known_fini(&k);
    assert_int_equal(k.n, 0);
}

static void test_longest_names(void **state)
{
    (void)state;
    struct known k;
    char name[STREAM_NAME_MAX + 1], id[SLP_ID_MAX + 1];
    memset(name, 'n', STREAM_NAME_MAX);
    name[STREAM_NAME_MAX] = '\0';
    memset(id, 'i', SLP_ID_MAX);
    id[SLP_ID_MAX] = '\0';
    known_init(&k, 4, TTL);
    assert_int_equal(known_seen(&k, name, id, 0), 0);
    assert_string_equal(known_get(&k, name, 0), id);
    known_fini(&k);
}

static void test_redis_and_eos_overrule(void **state)
{
    (void)state;
    struct known k;
    known_init(&k, 8, TTL);
    known_seen(&k, "cam1", "ingest-1/7", 0);
    known_seen(&k, "cam2", "ingest-1/8", 0);
    known_seen(&k, "cam3", "ingest-1/9", 0);
    known_overruled(&k, "cam1", "ingest-1/7");      /* Redis agrees: kept */
    assert_string_equal(known_get(&k, "cam1", 1), "ingest-1/7");
    known_overruled(&k, "cam1", "ingest-2/3");      /* the lease is someone else's */
    assert_null(known_get(&k, "cam1", 1));
    known_overruled(&k, "cam2", NULL);              /* nobody holds it */
    assert_null(known_get(&k, "cam2", 1));
    known_overruled(&k, "nothing", NULL);
    known_forget(&k, "cam3");                       /* its publisher sent EOS */
    assert_null(known_get(&k, "cam3", 1));
    known_forget(&k, "cam3");
    assert_int_equal(k.n, 0);
    known_fini(&k);
}

static void test_ttl_zero_remembers_nothing(void **state)
{
    (void)state;
    struct known k;
    known_init(&k, 8, 0);
    assert_int_equal(known_seen(&k, "cam1", "ingest-1/7", 0), 0);
    assert_null(known_get(&k, "cam1", 0));
    assert_int_equal(k.n, 0);
    known_fini(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remembers_for_the_ttl),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_longest_names),
        cmocka_unit_test(test_redis_and_eos_overrule),
        cmocka_unit_test(test_ttl_zero_remembers_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
