/* The gate (services/ingest/gate.c): decisions with the mode and the live
 * names, the live set's counting and deletion, the description that goes to
 * the log, table swaps while a reader holds the old one; and the relay
 * records of relays.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "../../../../services/ingest/gate.h"
#include "../../../../services/ingest/relays.h"

#define KEY "sk_3q2mX0bV9aJk7cQ1pR8sT4uW6yZ2eF5g"

static struct authtable *table(const char *name, const char *pass)
{
    unsigned char md[32];
    char hex[65];
    SHA256((const unsigned char *)KEY, strlen(KEY), md);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    json_t *doc = json_pack("{s:i, s:[{s:s, s:s, s:s?, s:b, s:i}]}", "version", 1, "streams",
                            "name", name, "key_sha256", hex, "passphrase", pass, "disabled", 0,
                            "version", 1);
    size_t skipped;
    char err[64];
    struct authtable *t = authtable_from_json(doc, &skipped, err, sizeof(err));
    json_decref(doc);
    assert_non_null(t);
    return t;
}

static int check(struct gate *g, const char *sid, struct gate_result *r)
{
    return gate_check(g, sid, strlen(sid), r);
}

static void test_decisions(void **state)
{
    (void)state;
    struct gate_options o = { .takeover = false, .playback = false };
    struct gate *g = gate_new(&o);
    struct gate_result r;
    const char *pub = "#!::r=cam1,s=" KEY ",m=publish";
    assert_int_equal(check(g, pub, &r), REJ_DOWN);               /* no table: fail closed */
    gate_set_table(g, table("cam1", "ten-to-79-chars"));
    assert_int_equal(check(g, pub, &r), 0);
    assert_string_equal(r.passphrase, "ten-to-79-chars");
    assert_int_equal(check(g, "#!::r=cam1,s=" KEY ",m=request", &r), REJ_UNIMPLEMENTED);
    assert_int_equal(check(g, "#!::r=cam1,m=publish", &r), REJ_BAD_REQUEST);
    /* live here, takeover off: 1409; once it stops, accepted again */
    assert_int_equal(gate_live_add(g, "cam1"), 0);
    assert_int_equal(check(g, pub, &r), REJ_CONFLICT);
    gate_live_remove(g, "cam1");
    assert_int_equal(check(g, pub, &r), 0);
    gate_free(g);
    o.takeover = true;
    g = gate_new(&o);
    gate_set_table(g, table("cam1", NULL));
    gate_live_add(g, "cam1");
    assert_int_equal(check(g, pub, &r), 0);                      /* takeover: allowed */
    assert_string_equal(r.passphrase, "");
    gate_free(g);
}

static void test_live_set(void **state)
{
    (void)state;
    struct gate_options o = { 0 };
    struct gate *g = gate_new(&o);
    char name[32];
    for (int i = 0; i < 500; i++) {                              /* grows past its start */
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(gate_live_add(g, name), 0);
    }
    gate_live_add(g, "s7");                                       /* two during a takeover */
    for (int i = 0; i < 500; i += 2) {
        snprintf(name, sizeof(name), "s%d", i);
        gate_live_remove(g, name);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(gate_is_live(g, name), i % 2 == 1);
    }
    gate_live_remove(g, "s7");
    assert_true(gate_is_live(g, "s7"));
    gate_live_remove(g, "s7");
    assert_false(gate_is_live(g, "s7"));
    gate_live_remove(g, "never");                                 /* harmless */
    assert_false(gate_is_live(g, "never"));
    gate_free(g);
}

static void test_describe_hides_secrets(void **state)
{
    (void)state;
    struct gate_options o = { 0 };
    struct gate *g = gate_new(&o);
    gate_set_table(g, table("cam1", NULL));
    struct gate_result r;
    char out[SRTSRV_DETAIL_MAX];
    const char *ok = "#!::r=cam1,s=" KEY ",m=publish,u=alice";
    check(g, ok, &r);
    gate_describe(ok, strlen(ok), &r, out, sizeof(out));
    assert_string_equal(out, "publish cam1 with a key as u=alice");
    const char *bad = "#!::r=cam1,s=" KEY ",m=play";
    check(g, bad, &r);
    gate_describe(bad, strlen(bad), &r, out, sizeof(out));
    assert_string_equal(out, "streamid \"#!::r=cam1,s=***,m=play\"");
    const char *loose = "key sk_3q2mX0bV9aJk7cQ1pR8sT4uW6yZ2eF5g,x";
    check(g, loose, &r);
    gate_describe(loose, strlen(loose), &r, out, sizeof(out));
    assert_null(strstr(out, "3q2mX0"));
    gate_free(g);
}

/* Readers on other threads while the loop swaps tables: every decision sees
 * one whole table or the other (run under ASan and TSan-like stress). */
struct reader {
    struct gate *g;
    int accepted, refused;
};

static void *read_many(void *arg)
{
    struct reader *rd = arg;
    struct gate_result r;
    for (int i = 0; i < 20000; i++) {
        int code = check(rd->g, "#!::r=cam1,s=" KEY ",m=publish", &r);
        if (code == 0)
            rd->accepted++;
        else if (code == REJ_NOT_FOUND)
            rd->refused++;
        else
            fail_msg("unexpected %d", code);
    }
    return NULL;
}

static void test_swaps_under_readers(void **state)
{
    (void)state;
    struct gate_options o = { .takeover = true };
    struct gate *g = gate_new(&o);
    gate_set_table(g, table("cam1", NULL));
    struct reader rd[2] = { { g, 0, 0 }, { g, 0, 0 } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, read_many, &rd[i]);
    for (int i = 0; i < 2000; i++)
        gate_set_table(g, table(i % 2 ? "cam1" : "cam2", NULL));
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(rd[0].accepted + rd[0].refused, 20000);
    gate_free(g);
}

static void test_relay_records(void **state)
{
    (void)state;
    struct relay_choice c;
    int64_t n;
    const char *good = "{\"id\":\"relay-1\",\"address\":\"10.0.0.5:7700\",\"streams\":3,"
                       "\"subscribers\":41,\"updated_at\":\"2026-11-21T10:00:02.000Z\"}";
    assert_int_equal(relay_record_parse(good, strlen(good), &c, &n), 0);
    assert_string_equal(c.id, "relay-1");
    assert_string_equal(c.addr, "10.0.0.5:7700");
    assert_int_equal(n, 3);
    static const char *const bad[] = {
        "{\"id\":\"r\",\"address\":\"10.0.0.5\",\"streams\":1}",          /* no port */
        "{\"id\":\"r\",\"address\":\"10.0.0.5:0\",\"streams\":1}",
        "{\"id\":\"r r\",\"address\":\"10.0.0.5:7700\",\"streams\":1}",
        "{\"id\":\"r\",\"address\":\"10.0.0.5:7700\",\"streams\":-1}",
        "{\"id\":\"r\",\"address\":\"10.0.0.5:7700\",\"streams\":\"1\"}",
        "{\"address\":\"10.0.0.5:7700\"}", "[]", "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(relay_record_parse(bad[i], strlen(bad[i]), &c, &n), -1);
    /* picking: the configured relay, always */
    struct relays *rs = relays_new(NULL, NULL, "127.0.0.1:7700", 1000);
    assert_int_equal(relays_pick(rs, NULL, &c), 0);
    assert_string_equal(c.addr, "127.0.0.1:7700");
    assert_int_equal(relays_count(rs), 1);
    relays_free(rs);
}

static void test_stream_locations(void **state)
{
    (void)state;
    struct relay_choice c;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "relay", "10.0.0.5:7700", "relay_id",
                          "relay-1", "ingest", "ingest-a", "protocol", "srt");
    assert_int_equal(stream_location_parse(o, &c), 0);
    assert_string_equal(c.id, "relay-1");
    assert_string_equal(c.addr, "10.0.0.5:7700");
    json_decref(o);
    static const char *const bad[] = {
        "{\"relay\":\"10.0.0.5:7700\"}",                                 /* no relay_id */
        "{\"relay_id\":\"relay-1\"}",
        "{\"relay\":\"10.0.0.5\",\"relay_id\":\"r\"}",                  /* no port */
        "{\"relay\":\"10.0.0.5:0\",\"relay_id\":\"r\"}",
        "{\"relay\":\"10.0.0.5:7700\",\"relay_id\":\"\"}",
        "{\"relay\":\"10.0.0.5:7700\",\"relay_id\":\"a b\"}",
        "{\"relay\":7700,\"relay_id\":\"r\"}",
        "[\"10.0.0.5:7700\"]", "null",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_error_t err;
        json_t *b = json_loads(bad[i], JSON_DECODE_ANY, &err);
        assert_non_null(b);
        assert_int_equal(stream_location_parse(b, &c), -1);
        json_decref(b);
    }
    assert_int_equal(stream_location_parse(NULL, &c), -1);
}

static void test_revokes(void **state)
{
    (void)state;
    struct auth_entry then = { .name = "cam1", .version = 1 }, now;
    memset(then.key_sha256, 0xab, sizeof(then.key_sha256));
    now = then;
    now.version = 2;                               /* a title changed: stay */
    assert_null(authtable_revokes(&then, &now));
    assert_string_equal(authtable_revokes(&then, NULL), "the stream was deleted");
    now.deleted = true;
    assert_string_equal(authtable_revokes(&then, &now), "the stream was deleted");
    now = then;
    now.disabled = true;
    assert_string_equal(authtable_revokes(&then, &now), "the stream was disabled");
    now = then;
    now.key_sha256[31] ^= 1;
    assert_string_equal(authtable_revokes(&then, &now), "the stream key changed");
    now = then;
    strcpy(now.passphrase, "ten-to-79-chars");
    assert_string_equal(authtable_revokes(&then, &now), "the stream's passphrase changed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_live_set),
        cmocka_unit_test(test_describe_hides_secrets),
        cmocka_unit_test(test_swaps_under_readers),
        cmocka_unit_test(test_relay_records),
        cmocka_unit_test(test_stream_locations),
        cmocka_unit_test(test_revokes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
