/* Request bodies: what each parser takes and what it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/api/requests.h"
#include "sluice/json.h"

static char err[200];
static json_t *kept;   /* the last accepted body: the parsed strings point into it */

static json_t *J(const char *text)
{
    json_t *v = json_parse(text, strlen(text), NULL, 0);
    if (v == NULL)
        fail_msg("bad test JSON: %s", text);
    return v;
}

#define ACCEPTS(fn, text, out)                                     \
    do {                                                           \
        json_decref(kept);                                         \
        kept = J(text);                                            \
        if (fn(kept, out, err, sizeof(err)) != 0)                  \
            fail_msg("%s refused %s: %s", #fn, text, err);         \
    } while (0)

#define REFUSES(fn, text, out, needle)                             \
    do {                                                           \
        json_t *b_ = J(text);                                      \
        err[0] = '\0';                                             \
        if (fn(b_, out, err, sizeof(err)) != -1)                   \
            fail_msg("%s accepted %s", #fn, text);                 \
        if (strstr(err, needle) == NULL)                           \
            fail_msg("%s: \"%s\" does not name %s", text, err, needle); \
        json_decref(b_);                                           \
    } while (0)

static void test_login(void **state)
{
    (void)state;
    struct login_req r;
    ACCEPTS(req_login, "{\"username\":\"a\",\"password\":\"b\"}", &r);
    REFUSES(req_login, "{\"username\":\"a\"}", &r, "password");
    REFUSES(req_login, "{\"username\":1,\"password\":\"b\"}", &r, "username");
    REFUSES(req_login, "{\"username\":\"a\",\"password\":\"b\",\"x\":1}", &r, "\"x\"");
    REFUSES(req_login, "{\"username\":\"\",\"password\":\"b\"}", &r, "username");
    REFUSES(req_login, "{\"username\":\"a\",\"password\":[\"b\"]}", &r, "password");
}

static void test_user(void **state)
{
    (void)state;
    struct user_req r;
    ACCEPTS(req_user, "{\"username\":\"bob@example.com\",\"password\":\"12345678\"}", &r);
    assert_int_equal(r.role, ROLE_PUBLISHER);
    ACCEPTS(req_user, "{\"username\":\"b\",\"password\":\"12345678\",\"role\":\"admin\"}", &r);
    assert_int_equal(r.role, ROLE_ADMIN);
    REFUSES(req_user, "{\"username\":\"b\",\"password\":\"1234567\"}", &r, "password");
    REFUSES(req_user, "{\"username\":\"b\",\"password\":\"12345678\",\"role\":\"root\"}", &r,
            "role");
    REFUSES(req_user, "{\"username\":\"b c\",\"password\":\"12345678\"}", &r, "username");
    REFUSES(req_user, "{\"username\":\"a'; DROP TABLE users; --\",\"password\":\"12345678\"}",
            &r, "username");
}

static void test_stream(void **state)
{
    (void)state;
    struct stream_req r;
    ACCEPTS(req_stream, "{\"name\":\"cam-1_A\"}", &r);
    assert_string_equal(r.title, "");
    assert_null(r.passphrase);
    assert_false(r.disabled);
    ACCEPTS(req_stream,
            "{\"name\":\"c\",\"title\":\"Caf\\u00e9 \\u2014 live\",\"category\":\"music\","
            "\"passphrase\":\"0123456789\",\"owner\":\"bob\",\"disabled\":true,\"record\":true}",
            &r);
    assert_true(r.disabled && r.record);
    REFUSES(req_stream, "{}", &r, "name");
    REFUSES(req_stream, "{\"name\":\"a/b\"}", &r, "name");
    REFUSES(req_stream, "{\"name\":\"a b\"}", &r, "name");
    REFUSES(req_stream, "{\"name\":\"x'); DELETE FROM streams; --\"}", &r, "name");
    REFUSES(req_stream, "{\"name\":\"0123456789012345678901234567890123456789012345678901234567890123x\"}",
            &r, "name");
    REFUSES(req_stream, "{\"name\":\"c\",\"title\":\"a\\nb\"}", &r, "title");
    REFUSES(req_stream, "{\"name\":\"c\",\"title\":5}", &r, "title");
    REFUSES(req_stream, "{\"name\":\"c\",\"passphrase\":\"123456789\"}", &r, "passphrase");
    REFUSES(req_stream,
            "{\"name\":\"c\",\"passphrase\":"
            "\"01234567890123456789012345678901234567890123456789012345678901234567890123456789\"}",
            &r, "passphrase");
    REFUSES(req_stream, "{\"name\":\"c\",\"passphrase\":\"0123456789\\u00e9\"}", &r,
            "passphrase");
    REFUSES(req_stream, "{\"name\":\"c\",\"disabled\":\"yes\"}", &r, "disabled");
    REFUSES(req_stream, "{\"name\":\"c\",\"key\":\"sk_x\"}", &r, "\"key\"");
}

static void test_passphrase_bounds(void **state)
{
    (void)state;
    char pp[100];
    for (int n = 8; n <= 81; n++) {
        memset(pp, 'p', (size_t)n);
        pp[n] = '\0';
        assert_int_equal(passphrase_valid(pp), n >= 10 && n <= 79);
    }
}

static void test_stream_patch(void **state)
{
    (void)state;
    struct stream_patch r;
    ACCEPTS(req_stream_patch, "{\"title\":\"t\"}", &r);
    assert_string_equal(r.title, "t");
    assert_null(r.category);
    assert_int_equal(r.pass_op, PASS_KEEP);
    assert_false(r.disabled.set);
    ACCEPTS(req_stream_patch, "{\"passphrase\":null,\"disabled\":false}", &r);
    assert_int_equal(r.pass_op, PASS_CLEAR);
    assert_true(r.disabled.set);
    assert_false(r.disabled.value);
    ACCEPTS(req_stream_patch, "{\"passphrase\":\"0123456789\"}", &r);
    assert_int_equal(r.pass_op, PASS_SET);
    REFUSES(req_stream_patch, "{}", &r, "nothing");
    REFUSES(req_stream_patch, "{\"name\":\"other\"}", &r, "\"name\"");
    REFUSES(req_stream_patch, "{\"passphrase\":5}", &r, "passphrase");
    REFUSES(req_stream_patch, "{\"passphrase\":\"short\"}", &r, "passphrase");
}

static void test_session(void **state)
{
    (void)state;
    struct session_req r;
    ACCEPTS(req_session, "{\"mode\":\"request\"}", &r);
    assert_int_equal(r.mode, MODE_REQUEST);
    REFUSES(req_session, "{}", &r, "mode");
    REFUSES(req_session, "{\"mode\":\"watch\"}", &r, "mode");
    REFUSES(req_session, "{\"mode\":\"publish\",\"ttl\":5}", &r, "ttl");
}

static void test_authorize(void **state)
{
    (void)state;
    struct authorize_req r;
    ACCEPTS(req_authorize, "{\"protocol\":\"srt\",\"action\":\"publish\",\"key\":\"sk_x\"}", &r);
    assert_null(r.stream);
    assert_string_equal(r.client, "");
    ACCEPTS(req_authorize,
            "{\"protocol\":\"rtmp\",\"action\":\"request\",\"stream\":\"s\",\"key\":\"k\","
            "\"client\":\"1.2.3.4:5\"}",
            &r);
    assert_int_equal(r.protocol, PROTO_RTMP);
    assert_int_equal(r.action, MODE_REQUEST);
    /* a malformed stream name is the client's doing: passed through, to deny */
    ACCEPTS(req_authorize, "{\"protocol\":\"srt\",\"action\":\"publish\",\"stream\":\"a b\","
                           "\"key\":\"k\"}", &r);
    REFUSES(req_authorize, "{\"protocol\":\"srt\",\"action\":\"publish\"}", &r, "key");
    REFUSES(req_authorize, "{\"protocol\":\"http\",\"action\":\"publish\",\"key\":\"k\"}", &r,
            "protocol");
    REFUSES(req_authorize, "{\"protocol\":\"srt\",\"action\":\"play\",\"key\":\"k\"}", &r,
            "action");
}

static void test_recording(void **state)
{
    (void)state;
    struct recording_req r;
    ACCEPTS(req_recording, "{\"stream\":\"cam1\",\"started_at\":\"2026-11-21T10:00:00.000Z\","
                           "\"holder_url\":\"http://10.0.0.6:8084\"}", &r);
    assert_null(r.ended_at);
    assert_int_equal(r.bytes, 0);
    assert_int_equal(r.segments, 0);
    ACCEPTS(req_recording, "{\"stream\":\"cam1\",\"started_at\":\"2026-11-21T10:00:00Z\","
                           "\"ended_at\":\"2026-11-21T11:00:00.5+01:00\",\"duration_ms\":3600000,"
                           "\"bytes\":9007199254740993,\"segments\":1800,"
                           "\"holder_url\":\"http://recorder-1.internal:8084\"}", &r);
    assert_string_equal(r.ended_at, "2026-11-21T11:00:00.5+01:00");
    assert_true(r.bytes == 9007199254740993LL);
    ACCEPTS(req_recording, "{\"stream\":\"c\",\"started_at\":\"2026-11-21T10:00:00Z\","
                           "\"ended_at\":null,\"holder_url\":\"http://[::1]:8084/\"}", &r);
    assert_null(r.ended_at);
    assert_string_equal(r.holder_url, "http://[::1]:8084");   /* as the edge reads it */
    static const char base[] = "\"started_at\":\"2026-11-21T10:00:00Z\","
                               "\"holder_url\":\"http://h:1\"";
    char text[400];
#define REC_REFUSES(extra, needle)                                        \
    do {                                                                  \
        snprintf(text, sizeof(text), "{\"stream\":\"cam1\",%s%s}", base, extra); \
        REFUSES(req_recording, text, &r, needle);                         \
    } while (0)
    REC_REFUSES(",\"bytes\":-1", "bytes");
    REC_REFUSES(",\"bytes\":1.5", "bytes");
    REC_REFUSES(",\"bytes\":\"1\"", "bytes");
    REC_REFUSES(",\"segments\":2147483648", "segments");
    REC_REFUSES(",\"duration_ms\":true", "duration_ms");
    REC_REFUSES(",\"ended_at\":\"now\"", "ended_at");
    REC_REFUSES(",\"id\":\"x\"", "\"id\"");
    REFUSES(req_recording, "{\"started_at\":\"2026-11-21T10:00:00Z\",\"holder_url\":\"http://h\"}",
            &r, "stream");
    REFUSES(req_recording, "{\"stream\":\"a b\",\"started_at\":\"2026-11-21T10:00:00Z\","
                           "\"holder_url\":\"http://h\"}", &r, "stream");
    REFUSES(req_recording, "{\"stream\":\"cam1\",\"holder_url\":\"http://h\"}", &r, "started_at");
    REFUSES(req_recording, "{\"stream\":\"cam1\",\"started_at\":\"2026-11-21T10:00:00Z\"}", &r,
            "holder_url");
    static const char *const bad_urls[] = {
        "https://h:1", "http://", "http://h:0", "http://h:65536", "http://h:1/path",
        "http://h?x", "http://user@h", "http://-h", "http://.h", "http://[::1",
        "http://[zz]:1", "ftp://h", "http://h:", "http://h :1", "http://h:1x",
    };
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        snprintf(text, sizeof(text), "{\"stream\":\"cam1\",\"started_at\":"
                 "\"2026-11-21T10:00:00Z\",\"holder_url\":\"%s\"}", bad_urls[i]);
        REFUSES(req_recording, text, &r, "holder_url");
    }
}

static void test_times(void **state)
{
    (void)state;
    static const char *const good[] = {
        "2026-11-21T10:00:00Z", "2026-11-21T10:00:00.123Z", "2024-02-29T23:59:59.123456789Z",
        "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-12:30", "2026-01-01T00:00:00+14:00",
        "2000-02-29T00:00:00Z",
    };
    static const char *const bad[] = {
        "", "now", "epoch", "infinity", "2026-11-21", "2026-11-21 10:00:00Z",
        "2026-11-21t10:00:00Z", "2026-11-21T10:00:00", "2026-11-21T10:00:00z",
        "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-21T24:00:00Z",
        "2026-11-21T10:60:00Z", "2026-11-21T10:00:60Z", "0000-01-01T00:00:00Z",
        "2026-11-21T10:00:00.Z", "2026-11-21T10:00:00.1234567890Z", "2026-11-21T10:00:00+1:00",
        "2026-11-21T10:00:00+01:00x", "2026-11-21T10:00:00Z ", "+2026-11-21T10:00:00Z",
        "2026-11-21T10:00:00+24:00", "2026-1-21T10:00:00Z", "2026-11-21T10:00:00+01",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!rfc3339_valid(good[i]))
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rfc3339_valid(bad[i]))
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_urls(void **state)
{
    (void)state;
    assert_true(holder_url_valid("http://10.0.0.6:8084"));
    assert_true(holder_url_valid("http://recorder"));
    assert_true(holder_url_valid("http://[fe80::1]:8084"));
    assert_true(base_url_valid("http://127.0.0.1:8081"));
    assert_true(base_url_valid("https://live.example.com"));
    assert_true(base_url_valid("https://cdn.example.com:8443/sluice/"));
    assert_false(base_url_valid("live.example.com"));
    assert_false(base_url_valid("https://"));
    assert_false(base_url_valid("https://x.com/a b"));
    assert_false(base_url_valid("https://x.com/?q=1"));
    assert_false(base_url_valid("https://x.com/#top"));
    assert_false(base_url_valid("javascript://x.com/%0aalert(1)\""));
    assert_true(recording_id_valid("cam1-20261121T100000Z"));
    assert_false(recording_id_valid("../etc"));
    assert_false(recording_id_valid(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_passphrase_bounds),
        cmocka_unit_test(test_stream_patch),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_authorize),
        cmocka_unit_test(test_recording),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_urls),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(kept);
    return rc;
}
