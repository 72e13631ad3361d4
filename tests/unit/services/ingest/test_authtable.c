/* The authorization table (services/ingest/authtable.c): loading, the
 * version rules of docs/redis.md for events and full loads, tombstones, and
 * the decision the listen callback makes from it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "../../../../services/ingest/authtable.h"

#define KEY1 "sk_3q2mX0bV9aJk7cQ1pR8sT4uW6yZ2eF5g"
#define KEY2 "sk_9z8y7x6w5v4u3t2s1r0qPONMLKJIHGFE"
#define SESS "ss_Yh2aJk7cQ1pR8sT4uW6yZ2eF5g3q2mX0"

static void sha_hex(const char *s, char out[65])
{
    unsigned char md[32];
    SHA256((const unsigned char *)s, strlen(s), md);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static json_t *entry(const char *name, const char *key, const char *pass, int disabled,
                     int version)
{
    char hex[65];
    sha_hex(key, hex);
    return json_pack("{s:s, s:s, s:s?, s:b, s:i}", "name", name, "key_sha256", hex,
                     "passphrase", pass, "disabled", disabled, "version", version);
}

static struct authtable *load(int version, json_t *streams)
{
    json_t *doc = json_pack("{s:i, s:o}", "version", version, "streams", streams);
    size_t skipped;
    char err[128];
    struct authtable *t = authtable_from_json(doc, &skipped, err, sizeof(err));
    json_decref(doc);
    assert_non_null(t);
    assert_int_equal(skipped, 0);
    return t;
}

static struct authtable *base_table(void)
{
    return load(10, json_pack("[o, o]", entry("cam1", KEY1, NULL, 0, 4),
                              entry("cam2", KEY2, "ten-to-79-chars", 0, 9)));
}

static int decide(const struct authtable *t, const char *stream, const char *cred,
                  struct auth_decision *d)
{
    struct streamid sid = { .mode = STREAMID_PUBLISH };
    snprintf(sid.stream, sizeof(sid.stream), "%s", stream);
    snprintf(sid.cred, sizeof(sid.cred), "%s", cred);
    return authtable_decide(t, &sid, d);
}

static void test_load_and_decide(void **state)
{
    (void)state;
    struct authtable *t = base_table();
    struct auth_decision d;
    assert_int_equal(authtable_size(t), 2);
    assert_int_equal(authtable_version(t), 10);
    assert_int_equal(decide(t, "cam1", KEY1, &d), REJ_NONE);
    assert_false(d.session);
    assert_null(d.passphrase);
    assert_int_equal(decide(t, "cam2", KEY2, &d), REJ_NONE);
    assert_string_equal(d.passphrase, "ten-to-79-chars");
    assert_int_equal(decide(t, "cam1", KEY2, &d), REJ_UNAUTHORIZED);     /* the other's key */
    assert_int_equal(decide(t, "cam1", "sk_short", &d), REJ_UNAUTHORIZED);
    assert_int_equal(decide(t, "cam1", "letmein", &d), REJ_UNAUTHORIZED);
    assert_int_equal(decide(t, "cam3", KEY1, &d), REJ_NOT_FOUND);
    assert_int_equal(decide(t, "cam1", SESS, &d), REJ_NONE);             /* for the api */
    assert_true(d.session);
    assert_int_equal(decide(NULL, "cam1", KEY1, &d), REJ_DOWN);           /* fail closed */
    authtable_unref(t);
}

static void test_disabled(void **state)
{
    (void)state;
    struct authtable *t = load(3, json_pack("[o]", entry("cam1", KEY1, NULL, 1, 3)));
    struct auth_decision d;
    assert_int_equal(decide(t, "cam1", KEY1, &d), REJ_FORBIDDEN);
    assert_int_equal(decide(t, "cam1", SESS, &d), REJ_FORBIDDEN);
    assert_int_equal(decide(t, "cam1", KEY2, &d), REJ_UNAUTHORIZED);     /* key first */
    authtable_unref(t);
}

static void test_load_skips_broken_entries(void **state)
{
    (void)state;
    json_t *streams = json_pack("[o, o, o, o, o, o, o]",
        entry("cam1", KEY1, NULL, 0, 1),
        entry("cam1", KEY2, NULL, 0, 2),                       /* a duplicate */
        entry("bad/name", KEY1, NULL, 0, 1),
        entry("cam3", KEY1, "short", 0, 1),                    /* passphrase < 10 */
        json_pack("{s:s, s:s, s:b, s:i}", "name", "cam4", "key_sha256", "ABCD",
                  "disabled", 0, "version", 1),
        json_pack("{s:s}", "name", "cam5"),
        json_pack("{s:s, s:s, s:n, s:b, s:i, s:s}", "name", "cam6", "key_sha256",
                  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                  "passphrase", "disabled", 0, "version", 1, "future", "ignored"));
    json_t *doc = json_pack("{s:i, s:o}", "version", 2, "streams", streams);
    size_t skipped;
    char err[128];
    struct authtable *t = authtable_from_json(doc, &skipped, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(skipped, 5);
    assert_int_equal(authtable_size(t), 2);
    assert_non_null(authtable_find(t, "cam6"));
    authtable_unref(t);
    json_decref(doc);
    /* not an authtable at all */
    static const char *const wrong[] = { "[]", "{}", "{\"version\":1}", "{\"version\":-1,"
                                         "\"streams\":[]}", "{\"version\":\"1\",\"streams\":[]}" };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        doc = json_loads(wrong[i], 0, NULL);
        assert_null(authtable_from_json(doc, &skipped, err, sizeof(err)));
        json_decref(doc);
    }
}

static json_t *event(const char *type, const char *stream, int version, json_t *auth)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:o}", "type", type, "stream", stream,
                     "version", version, "at", "2026-11-21T10:00:00.000Z",
                     "auth", auth ? auth : json_null());
}

/* Applies <msg> (stolen) to *<t>; on AE_APPLIED *<t> becomes the new table. */
static enum auth_event_result apply(struct authtable **t, json_t *msg, struct auth_event *ev)
{
    struct authtable *out = NULL;
    enum auth_event_result r = authtable_apply_event(*t, msg, &out, ev);
    json_decref(msg);
    if (r == AE_APPLIED) {
        authtable_unref(*t);
        *t = out;
    }
    return r;
}

static void test_events_and_versions(void **state)
{
    (void)state;
    struct authtable *t = base_table();            /* V = 10; cam1 at 4, cam2 at 9 */
    struct auth_event ev;
    struct auth_decision d;
    /* created: usable at once */
    assert_int_equal(apply(&t, event("stream.created", "new1", 11,
                                     entry("new1", KEY1, NULL, 0, 11)), &ev), AE_APPLIED);
    assert_int_equal(ev.kind, AEK_CREATED);
    assert_int_equal(decide(t, "new1", KEY1, &d), REJ_NONE);
    /* an event not newer than the table's version, for a stream not held: stale */
    assert_int_equal(apply(&t, event("stream.created", "old", 10,
                                     entry("old", KEY1, NULL, 0, 10)), &ev), AE_STALE);
    /* rotated: the old key stops working; key_changed says so */
    assert_int_equal(apply(&t, event("key.rotated", "cam1", 12,
                                     entry("cam1", KEY2, NULL, 0, 12)), &ev), AE_APPLIED);
    assert_true(ev.key_changed);
    assert_int_equal(decide(t, "cam1", KEY1, &d), REJ_UNAUTHORIZED);
    assert_int_equal(decide(t, "cam1", KEY2, &d), REJ_NONE);
    /* a late message of an earlier change: ignored */
    assert_int_equal(apply(&t, event("stream.updated", "cam1", 11,
                                     entry("cam1", KEY1, NULL, 1, 11)), &ev), AE_STALE);
    assert_int_equal(decide(t, "cam1", KEY2, &d), REJ_NONE);
    /* updated without a key change */
    assert_int_equal(apply(&t, event("stream.updated", "cam2", 13,
                                     entry("cam2", KEY2, NULL, 1, 13)), &ev), AE_APPLIED);
    assert_false(ev.key_changed);
    assert_int_equal(decide(t, "cam2", KEY2, &d), REJ_FORBIDDEN);
    /* deleted: a tombstone, which a late created cannot undo */
    assert_int_equal(apply(&t, event("stream.deleted", "cam1", 14, NULL), &ev), AE_APPLIED);
    assert_int_equal(ev.kind, AEK_DELETED);
    assert_true(ev.key_changed);
    assert_int_equal(decide(t, "cam1", KEY2, &d), REJ_NOT_FOUND);
    assert_int_equal(apply(&t, event("stream.created", "cam1", 12,
                                     entry("cam1", KEY2, NULL, 0, 12)), &ev), AE_STALE);
    assert_int_equal(authtable_size(t), 2);        /* new1, cam2 */
    assert_int_equal(authtable_max_version(t), 14);
    /* a re-creation after the deletion is newer: it counts */
    assert_int_equal(apply(&t, event("stream.created", "cam1", 15,
                                     entry("cam1", KEY1, NULL, 0, 15)), &ev), AE_APPLIED);
    assert_int_equal(decide(t, "cam1", KEY1, &d), REJ_NONE);
    /* others */
    assert_int_equal(apply(&t, json_pack("{s:s, s:s}", "type", "stream.start", "stream", "x"),
                           &ev), AE_IGNORED);
    assert_int_equal(apply(&t, json_pack("[]"), &ev), AE_BAD);
    assert_int_equal(apply(&t, event("stream.created", "cam9", 20,
                                     entry("cam8", KEY1, NULL, 0, 20)), &ev), AE_BAD);
    assert_int_equal(apply(&t, event("stream.created", "cam9", 20,
                                     entry("cam9", KEY1, NULL, 0, 19)), &ev), AE_BAD);
    assert_int_equal(apply(&t, event("stream.deleted", "cam9", 20,
                                     entry("cam9", KEY1, NULL, 0, 20)), &ev), AE_BAD);
    assert_int_equal(apply(&t, event("stream.created", "cam9", 20, NULL), &ev), AE_BAD);
    authtable_unref(t);
}

static void test_events_before_any_load(void **state)
{
    (void)state;
    struct authtable *t = NULL;
    struct auth_event ev;
    struct auth_decision d;
    assert_int_equal(apply(&t, event("stream.created", "cam1", 1,
                                     entry("cam1", KEY1, NULL, 0, 1)), &ev), AE_APPLIED);
    assert_int_equal(decide(t, "cam1", KEY1, &d), REJ_NONE);
    authtable_unref(t);
}

static void test_full_load_keeps_newer_changes(void **state)
{
    (void)state;
    struct authtable *t = base_table();            /* V = 10 */
    struct auth_event ev;
    struct auth_decision d;
    /* events 11 and 12 come in while a load is under way ... */
    assert_int_equal(apply(&t, event("stream.created", "cam3", 11,
                                     entry("cam3", KEY1, NULL, 0, 11)), &ev), AE_APPLIED);
    assert_int_equal(apply(&t, event("stream.deleted", "cam2", 12, NULL), &ev), AE_APPLIED);
    /* ... whose snapshot was taken at 11: it has cam3 but still cam2 */
    struct authtable *loaded = load(11, json_pack("[o, o, o]",
        entry("cam1", KEY1, NULL, 0, 4), entry("cam2", KEY2, NULL, 0, 9),
        entry("cam3", KEY1, NULL, 0, 11)));
    struct authtable *merged = authtable_merge(loaded, t);
    assert_int_equal(authtable_version(merged), 11);
    assert_int_equal(decide(merged, "cam2", KEY2, &d), REJ_NOT_FOUND);   /* the tombstone won */
    assert_int_equal(decide(merged, "cam3", KEY1, &d), REJ_NONE);
    assert_int_equal(authtable_size(merged), 2);
    /* a later load at 12 drops the tombstone: the load reflects it */
    struct authtable *later = load(12, json_pack("[o, o]", entry("cam1", KEY1, NULL, 0, 4),
                                                 entry("cam3", KEY1, NULL, 0, 11)));
    struct authtable *m2 = authtable_merge(later, merged);
    assert_ptr_equal(m2, later);
    assert_null(authtable_find(m2, "cam2"));
    authtable_unref(m2);
    authtable_unref(merged);
    authtable_unref(t);
}

static void test_many_entries(void **state)
{
    (void)state;
    json_t *streams = json_array();
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        json_array_append_new(streams, entry(name, KEY1, NULL, 0, i));
    }
    struct authtable *t = load(5000, streams);
    struct auth_decision d;
    assert_int_equal(authtable_size(t), 5000);
    for (int i = 0; i < 5000; i += 7) {
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(decide(t, name, KEY1, &d), REJ_NONE);
    }
    assert_int_equal(decide(t, "s5000", KEY1, &d), REJ_NOT_FOUND);
    assert_non_null(authtable_ref(t));
    authtable_unref(t);
    authtable_unref(t);
    assert_string_equal(reject_name(1404), "not_found");
    assert_null(reject_name(1999));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_decide),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_load_skips_broken_entries),
        cmocka_unit_test(test_events_and_versions),
        cmocka_unit_test(test_events_before_any_load),
        cmocka_unit_test(test_full_load_keeps_newer_changes),
        cmocka_unit_test(test_many_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
