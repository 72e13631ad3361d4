/* The authtable in memory: lookups by name and key, the ordering rules of
 * docs/redis.md (versions, tombstones), and snapshots merged with newer
 * changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../../../services/api/authcache.h"

/* A key hash made of one repeated hex digit. */
static const char *key(char c)
{
    static char k[4][65];
    static int n;
    char *out = k[n++ % 4];
    memset(out, c, 64);
    out[64] = '\0';
    return out;
}

static json_t *entry(const char *name, char k, long long version, bool disabled)
{
    return json_pack("{s:s, s:s, s:n, s:b, s:I}", "name", name, "key_sha256", key(k),
                     "passphrase", "disabled", disabled, "version", (json_int_t)version);
}

static int apply(struct authcache *t, const char *name, char k, long long version)
{
    json_t *e = entry(name, k, version, false);
    int rc = authcache_apply(t, name, version, e);
    json_decref(e);
    return rc;
}

static long long version_of(const json_t *e)
{
    return e ? (long long)json_integer_value(json_object_get(e, "version")) : -1;
}

static void test_lookups_follow_changes(void **state)
{
    (void)state;
    struct authcache *t = authcache_new();
    assert_int_equal(apply(t, "cam1", 'a', 1), 1);
    assert_non_null(authcache_by_name(t, "cam1"));
    assert_ptr_equal(authcache_by_key(t, key('a')), authcache_by_name(t, "cam1"));
    /* a rotation: the old key finds nothing at once */
    assert_int_equal(apply(t, "cam1", 'b', 2), 1);
    assert_null(authcache_by_key(t, key('a')));
    assert_int_equal(version_of(authcache_by_key(t, key('b'))), 2);
    /* a late, older event changes nothing */
    assert_int_equal(apply(t, "cam1", 'a', 1), 0);
    assert_null(authcache_by_key(t, key('a')));
    /* deletion: a tombstone, which a late creation cannot undo */
    assert_int_equal(authcache_apply(t, "cam1", 3, NULL), 1);
    assert_null(authcache_by_name(t, "cam1"));
    assert_null(authcache_by_key(t, key('b')));
    assert_int_equal(apply(t, "cam1", 'c', 2), 0);
    assert_null(authcache_by_name(t, "cam1"));
    assert_int_equal(authcache_size(t), 0);
    /* re-created later */
    assert_int_equal(apply(t, "cam1", 'd', 4), 1);
    assert_int_equal(authcache_size(t), 1);
    assert_true(authcache_consistent(t));
    authcache_free(t);
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    struct authcache *t = authcache_new();
    json_t *e = entry("cam1", 'a', 5, false);
    assert_int_equal(authcache_apply(t, "cam2", 5, e), -1);   /* another name */
    assert_int_equal(authcache_apply(t, "cam1", 6, e), -1);   /* another version */
    assert_int_equal(authcache_apply(t, "a b", 5, NULL), -1);
    json_object_set_new(e, "key_sha256", json_string("ABC"));
    assert_int_equal(authcache_apply(t, "cam1", 5, e), -1);
    json_decref(e);
    static const char *const bad[] = {
        "{}", "{\"name\":\"x\"}", "[]",
        "{\"name\":\"x\",\"key_sha256\":\"aa\",\"disabled\":false,\"version\":1}",
        "{\"name\":\"x y\",\"key_sha256\":\"" "0000000000000000000000000000000000000000000000000000000000000000"
        "\",\"disabled\":false,\"version\":1}",
        "{\"name\":\"x\",\"key_sha256\":\"" "0000000000000000000000000000000000000000000000000000000000000000"
        "\",\"disabled\":\"no\",\"version\":1}",
        "{\"name\":\"x\",\"key_sha256\":\"" "0000000000000000000000000000000000000000000000000000000000000000"
        "\",\"disabled\":false,\"version\":1,\"passphrase\":7}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        assert_non_null(b);
        assert_false(authcache_entry_valid(b));
        json_decref(b);
    }
    assert_int_equal(authcache_size(t), 0);
    authcache_free(t);
}

static void test_snapshot_keeps_what_is_newer(void **state)
{
    (void)state;
    struct authcache *t = authcache_new();
    /* changes that arrive while the snapshot (version 10) is being read */
    assert_int_equal(apply(t, "new", '1', 11), 1);          /* created after it */
    assert_int_equal(apply(t, "rot", '2', 12), 1);          /* rotated after it */
    assert_int_equal(authcache_apply(t, "gone", 13, NULL), 1);   /* deleted after it */
    assert_int_equal(apply(t, "old", '3', 9), 1);           /* already in it */
    json_t *snap = json_array();
    json_array_append_new(snap, entry("rot", '4', 7, false));
    json_array_append_new(snap, entry("gone", '5', 8, false));
    json_array_append_new(snap, entry("old", '3', 9, true));
    json_array_append_new(snap, entry("stay", '6', 3, false));
    assert_int_equal(authcache_load(t, 10, snap), 0);
    assert_int_equal(authcache_version(t), 10);
    assert_int_equal(version_of(authcache_by_name(t, "new")), 11);
    assert_int_equal(version_of(authcache_by_name(t, "rot")), 12);
    assert_null(authcache_by_key(t, key('4')));
    assert_non_null(authcache_by_key(t, key('2')));
    assert_null(authcache_by_name(t, "gone"));
    assert_null(authcache_by_key(t, key('5')));
    assert_true(json_is_true(json_object_get(authcache_by_name(t, "old"), "disabled")));
    assert_non_null(authcache_by_key(t, key('6')));
    assert_int_equal(authcache_size(t), 4);
    /* a stream the snapshot lacks is gone: an event at or below its version
     * cannot bring it back, a newer one can */
    assert_int_equal(apply(t, "other", '7', 10), 0);
    assert_null(authcache_by_name(t, "other"));
    assert_int_equal(apply(t, "other", '7', 14), 1);
    /* the next snapshot drops the tombstone it covers */
    json_t *snap2 = json_array();
    json_array_append_new(snap2, entry("other", '7', 14, false));
    assert_int_equal(authcache_load(t, 20, snap2), 0);
    assert_int_equal(authcache_size(t), 1);
    assert_int_equal(authcache_apply(t, "gone", 13, NULL), 0);
    /* a malformed snapshot leaves the table as it was */
    json_t *bad = json_array();
    json_array_append_new(bad, json_string("x"));
    assert_int_equal(authcache_load(t, 30, bad), -1);
    assert_int_equal(authcache_version(t), 20);
    json_t *future = json_array();   /* an entry newer than its snapshot */
    json_array_append_new(future, entry("f", 'f', 31, false));
    assert_int_equal(authcache_load(t, 30, future), -1);
    assert_non_null(authcache_by_name(t, "other"));
    assert_true(authcache_consistent(t));
    json_decref(snap);
    json_decref(snap2);
    json_decref(bad);
    json_decref(future);
    authcache_free(t);
}

/* Found by fuzz_authcache: a newer change giving one stream the key a
 * snapshot gave another. Keys are unique, so the older claim is stale: that
 * stream is refused, and the indexes agree. */
static void test_a_key_has_one_stream(void **state)
{
    (void)state;
    struct authcache *t = authcache_new();
    assert_int_equal(apply(t, "cam2", 'b', 6), 1);
    json_t *snap = json_array();
    json_array_append_new(snap, entry("cam4", 'b', 4, false));
    assert_int_equal(authcache_load(t, 5, snap), 0);
    assert_true(authcache_consistent(t));
    assert_null(authcache_by_name(t, "cam4"));
    assert_string_equal(json_string_value(json_object_get(authcache_by_key(t, key('b')),
                                                          "name")), "cam2");
    assert_int_equal(apply(t, "cam5", 'b', 7), 1);   /* and by an event */
    assert_true(authcache_consistent(t));
    assert_null(authcache_by_name(t, "cam2"));
    assert_int_equal(authcache_size(t), 1);
    json_decref(snap);
    authcache_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups_follow_changes),
        cmocka_unit_test(test_refuses_malformed),
        cmocka_unit_test(test_snapshot_keeps_what_is_newer),
        cmocka_unit_test(test_a_key_has_one_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
