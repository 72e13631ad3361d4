/* The relay's live stream records as the api reads them (liverec.h): what is
 * a record, and which of its fields the API shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "../../../../services/api/liverec.h"

static json_t *parse(const char *name, const char *text)
{
    char err[80];
    return liverec_parse(name, text, strlen(text), err, sizeof(err));
}

static void test_records(void **state)
{
    (void)state;
    json_t *rec = parse("demo", "{\"name\":\"demo\",\"relay\":\"10.0.0.5:7700\","
                                "\"started_at\":\"2026-11-21T10:00:00.123Z\"}");
    assert_non_null(rec);
    assert_string_equal(liverec_started_at(rec), "2026-11-21T10:00:00.123Z");
    json_decref(rec);
    static const char *const bad[] = {
        "", "not json", "null", "[\"demo\"]", "{}", "{\"name\":\"other\"}",
        "{\"name\":5}", "{\"name\":\"demo\",\"name\":\"demo\"}", "\"demo\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[80] = "";
        assert_null(liverec_parse("demo", bad[i], strlen(bad[i]), err, sizeof(err)));
        assert_true(err[0] != '\0');
    }
    /* no room for the reason is fine */
    assert_null(liverec_parse("demo", "{}", 2, NULL, 0));
}

static void test_fields(void **state)
{
    (void)state;
    json_t *rec = parse("demo", "{\"name\":\"demo\",\"started_at\":\"yesterday\","
                                "\"protocol\":5,\"client\":\"a\\u0001b\",\"ingest\":\"ingest-1\"}");
    assert_non_null(rec);
    assert_null(liverec_started_at(rec));
    json_t *out = json_object();
    assert_int_equal(liverec_set_ops(out, rec), 0);
    assert_int_equal(json_object_size(out), 6);
    assert_true(json_is_null(json_object_get(out, "protocol")));
    assert_true(json_is_null(json_object_get(out, "client")));
    assert_true(json_is_null(json_object_get(out, "relay")));
    assert_string_equal(json_string_value(json_object_get(out, "ingest")), "ingest-1");
    json_decref(out);
    json_decref(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
