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
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(kept);
    return rc;
}
