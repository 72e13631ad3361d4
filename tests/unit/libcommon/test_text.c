/* The small text helpers every daemon leans on: the stream-name grammar, the
 * escaping of peer bytes for logs, JSON parsing of peer input, and address
 * splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/names.h"
#include "sluice/net.h"

static void test_stream_names(void **state)
{
    (void)state;
    static const char *const good[] = { "a", "demo", "Cam_01-b", "0", "-", "_" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(stream_name_valid(good[i]));
    char max[65];
    memset(max, 'x', 64);
    max[64] = '\0';
    assert_true(stream_name_valid(max));
    static const char *const bad[] = { "", "a b", "a/b", "..", "a.b", "é", "a\n",
                                       "a%2f", "a:b", "*", "a\\b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(stream_name_valid(bad[i]));
    char over[66];
    memset(over, 'x', 65);
    over[65] = '\0';
    assert_false(stream_name_valid(over));
    assert_false(stream_name_valid(NULL));
    assert_false(stream_name_validn("ab\0c", 4));   /* an embedded NUL */
}

static void test_log_escape(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(log_escape(out, sizeof(out), "plain", 5), "plain");
    assert_string_equal(log_escape(out, sizeof(out), "a\nb\x01\"\\", 6),
                        "a\\x0ab\\x01\\x22\\x5c");
    assert_string_equal(log_escape(out, sizeof(out), "\xff\x00", 2), "\\xff\\x00");
    char big[200];
    memset(big, 'z', sizeof(big));
    log_escape(out, 16, big, sizeof(big));
    assert_true(strlen(out) < 16);
    assert_non_null(strstr(out, "..."));
}

static void test_json_parse(void **state)
{
    (void)state;
    char err[128];
    const char *doc = "{\"a\": \"x\", \"n\": 3, \"b\": true}";
    json_t *v = json_parse(doc, strlen(doc), err, sizeof(err));
    assert_non_null(v);
    const char *s;
    int64_t n;
    bool b;
    assert_int_equal(json_get_str(v, "a", &s), 0);
    assert_string_equal(s, "x");
    assert_int_equal(json_get_int(v, "n", &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(json_get_bool(v, "b", &b), 0);
    assert_true(b);
    assert_int_equal(json_get_str(v, "n", &s), -1);     /* wrong type */
    assert_int_equal(json_get_str(v, "zz", &s), 1);     /* absent */
    static const char *const allowed[] = { "a", "n", NULL };
    const char *badkey = NULL;
    assert_false(json_keys_only(v, allowed, &badkey));
    assert_string_equal(badkey, "b");
    json_decref(v);

    assert_null(json_parse("{\"a\":1,\"a\":2}", 13, err, sizeof(err)));   /* duplicates */
    assert_null(json_parse("{\"a\":\"\\u0000\"}", 14, err, sizeof(err)));  /* NUL */
    assert_null(json_parse("{\"a\":", 5, err, sizeof(err)));
    assert_non_null(strstr(err, "line 1"));
    assert_null(json_parse("\x01\x02", 2, err, sizeof(err)));
    for (const char *p = err; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);   /* printable, safe to log and return */
}

static void test_hostport(void **state)
{
    (void)state;
    char host[64];
    int port;
    assert_int_equal(net_split_hostport("127.0.0.1:7700", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 7700);
    assert_int_equal(net_split_hostport("[::1]:80", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(net_split_hostport(":9101", host, sizeof(host), &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(net_split_hostport("relay:0", host, sizeof(host), &port), 0);
    static const char *const bad[] = { "nohost", "h:", "h:65536", "h:-1", "[::1]80",
                                       "h:1x" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(net_split_hostport(bad[i], host, sizeof(host), &port), -1);
}

/* JSON log lines are one object per line, with the message escaped. */
static void test_json_log_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-log-XXXXXX";
    close(mkstemp(path));
    assert_int_equal(log_init("relay", LOGL_INFO, LOG_JSON, path), 0);
    log_debug("not shown");
    log_info("stream \"%s\" started\tnow", "cam\n1");
    log_close();
    FILE *f = fopen(path, "r");
    char line[1024];
    assert_non_null(fgets(line, sizeof(line), f));
    assert_null(fgets(line + strlen(line), (int)(sizeof(line) - strlen(line)), f));
    fclose(f);
    unlink(path);
    json_t *v = json_parse(line, strlen(line), NULL, 0);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(v, "daemon")), "relay");
    assert_string_equal(json_string_value(json_object_get(v, "msg")),
                        "stream \"cam\n1\" started\tnow");
    assert_true(json_is_string(json_object_get(v, "ts")));
    json_decref(v);
    log_init("test", LOGL_INFO, LOG_TEXT, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_names),
        cmocka_unit_test(test_log_escape),
        cmocka_unit_test(test_json_parse),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_json_log_lines),
    };
    return cmocka_run_group_tests_name("text", tests, NULL, NULL);
}
