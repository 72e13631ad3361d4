/* What hls reads from the relay's side of Redis: stream records and events,
 * as docs/redis.md shows them, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "../../../../services/hls/records.h"

static void test_stream_record(void **state)
{
    (void)state;
    struct stream_record r;
    char why[160];
    const char *doc = "{\"name\": \"demo\", \"relay\": \"10.0.0.5:7700\", \"relay_id\": \"relay-1\","
                      " \"ingest\": \"ingest-1\", \"protocol\": \"srt\", \"client\": "
                      "\"203.0.113.7:50123\", \"publisher\": \"ingest-1/42\", "
                      "\"started_at\": \"2026-11-21T10:00:00.123Z\"}";
    assert_int_equal(records_stream_parse(doc, strlen(doc), &r, why, sizeof(why)), 0);
    assert_string_equal(r.name, "demo");
    assert_string_equal(r.relay, "10.0.0.5:7700");
    const char *v6 = "{\"name\": \"x\", \"relay\": \"[::1]:7700\"}";
    assert_int_equal(records_stream_parse(v6, strlen(v6), &r, why, sizeof(why)), 0);
    static const char *const bad[] = {
        "{\"name\": \"demo\"}", "{\"relay\": \"h:1\"}", "{\"name\": \"de mo\", \"relay\": \"h:1\"}",
        "{\"name\": \"demo\", \"relay\": \"h\"}", "{\"name\": \"demo\", \"relay\": \"h:0\"}",
        "{\"name\": \"demo\", \"relay\": \"h:1 x\"}", "{\"name\": \"demo\", \"relay\": 7}",
        "{\"name\": \"demo\", \"relay\": \":1\"}", "[]", "", "{\"name\": \"demo\", \"relay\": \"h\\u0000:1\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (records_stream_parse(bad[i], strlen(bad[i]), &r, why, sizeof(why)) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_string_equal(r.relay, "");
    }
}

static void test_events(void **state)
{
    (void)state;
    struct event_msg ev;
    char why[160];
    const char *start = "{\"type\": \"stream.start\", \"at\": \"2026-11-21T10:00:00.000Z\", "
                        "\"stream\": \"demo\", \"relay\": \"10.0.0.5:7700\", \"ingest\": "
                        "\"ingest-1\", \"protocol\": \"srt\", \"publisher\": \"ingest-1/42\"}";
    assert_int_equal(records_event_parse(start, strlen(start), &ev, why, sizeof(why)), 0);
    assert_int_equal(ev.type, EV_STREAM_START);
    assert_string_equal(ev.stream, "demo");
    assert_string_equal(ev.relay, "10.0.0.5:7700");
    const char *stop = "{\"type\": \"stream.stop\", \"stream\": \"demo\", \"reason\": \"ended\"}";
    assert_int_equal(records_event_parse(stop, strlen(stop), &ev, why, sizeof(why)), 0);
    assert_int_equal(ev.type, EV_STREAM_STOP);
    const char *rel = "{\"type\": \"hls.released\", \"stream\": \"demo\", \"owner\": \"h/1\"}";
    assert_int_equal(records_event_parse(rel, strlen(rel), &ev, why, sizeof(why)), 0);
    assert_int_equal(ev.type, EV_HLS_RELEASED);
    const char *other = "{\"type\": \"key.rotated\", \"stream\": \"demo\", \"auth\": null}";
    assert_int_equal(records_event_parse(other, strlen(other), &ev, why, sizeof(why)), 0);
    assert_int_equal(ev.type, EV_OTHER);
    static const char *const bad[] = {
        "{\"stream\": \"demo\"}", "{\"type\": \"stream.start\"}",
        "{\"type\": \"stream.start\", \"stream\": \"demo\", \"relay\": \"nope\"}",
        "{\"type\": \"stream.stop\", \"stream\": \"../x\"}", "\"stream.stop\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (records_event_parse(bad[i], strlen(bad[i]), &ev, why, sizeof(why)) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(ev.type, EV_OTHER);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_record),
        cmocka_unit_test(test_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
