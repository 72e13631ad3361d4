/* The HTTP/1.x request-head parser of the edge's viewer port: what it takes,
 * what it refuses with which status, when it asks for more, and the path
 * decoding the edge relies on to refuse traversal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/http1.h"

static int parse(const char *s, struct http1_request *r)
{
    return http1_parse(s, strlen(s), r);
}

static void test_simple_get(void **state)
{
    (void)state;
    struct http1_request r;
    const char *req = "GET /live/demo/index.m3u8?x=1 HTTP/1.1\r\nHost: edge\r\n"
                      "User-Agent:  vlc/3 \r\n\r\nGET /next";
    int n = parse(req, &r);
    assert_int_equal(n, (int)(strstr(req, "GET /next") - req));
    assert_int_equal(r.method, HTTP1_GET);
    assert_int_equal(r.target_len, strlen("/live/demo/index.m3u8?x=1"));
    assert_memory_equal(r.target, "/live/demo/index.m3u8?x=1", r.target_len);
    assert_int_equal(r.minor, 1);
    assert_true(r.keep_alive);
    assert_false(r.has_body);
    assert_int_equal(r.nheaders, 2);
    size_t len;
    const char *ua = http1_header(&r, "user-agent", &len);
    assert_non_null(ua);
    assert_int_equal(len, 5);
    assert_memory_equal(ua, "vlc/3", 5);
    assert_null(http1_header(&r, "Range", &len));
}

static void test_methods_and_versions(void **state)
{
    (void)state;
    struct http1_request r;
    assert_true(parse("HEAD / HTTP/1.1\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP1_HEAD);
    assert_true(parse("OPTIONS / HTTP/1.1\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP1_OPTIONS);
    assert_true(parse("POST / HTTP/1.1\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP1_OTHER);
    assert_true(parse("get / HTTP/1.1\r\n\r\n", &r) > 0);   /* methods are case-sensitive */
    assert_int_equal(r.method, HTTP1_OTHER);
    /* HTTP/1.0: closes unless asked to keep alive */
    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r) > 0);
    assert_true(r.keep_alive);
    assert_true(parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &r) > 0);
    assert_false(r.keep_alive);
    assert_int_equal(parse("GET / HTTP/9.9\r\n\r\n", &r), -505);
    assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n", &r), -505);
    assert_int_equal(parse("GET / HTTP/1.1x\r\n\r\n", &r), -400);
    assert_int_equal(parse("GET / HTTPS/1.1\r\n\r\n", &r), -400);
}

static void test_lenient_where_allowed(void **state)
{
    (void)state;
    struct http1_request r;
    /* empty lines before the request line; bare LF line ends */
    const char *req = "\r\n\nGET /a HTTP/1.1\nHost: x\n\n";
    assert_int_equal(parse(req, &r), (int)strlen(req));
    assert_int_equal(r.nheaders, 1);
}

static void test_malformed(void **state)
{
    (void)state;
    struct http1_request r;
    static const char *const bad[] = {
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",          /* blank before the colon */
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", /* obsolete folding */
        "GET / HTTP/1.1\r\n: x\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], &r), -400);
    /* a NUL in the request line */
    assert_int_equal(http1_parse("GET /a\0b HTTP/1.1\r\n\r\n", 22, &r), -400);
    /* another protocol: refused before any line end */
    assert_int_equal(http1_parse("\x16\x03\x01\x02\x00\x01", 6, &r), -400);
    assert_int_equal(http1_parse("GET", 3, &r), 0);
    assert_int_equal(http1_parse("GE\x01", 3, &r), -400);
}

static void test_needs_more(void **state)
{
    (void)state;
    struct http1_request r;
    const char *req = "GET /live/demo/s1.ts HTTP/1.1\r\nHost: e\r\nRange: bytes=0-1\r\n\r\n";
    for (size_t n = 0; n < strlen(req); n++)
        assert_int_equal(http1_parse(req, n, &r), 0);
    assert_int_equal(parse(req, &r), (int)strlen(req));
}

static void test_bodies(void **state)
{
    (void)state;
    struct http1_request r;
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", &r) > 0);
    assert_true(r.has_body);
    assert_true(parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r) > 0);
    assert_false(r.has_body);
    assert_true(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r) > 0);
    assert_true(r.has_body);
}

static void test_limits(void **state)
{
    (void)state;
    struct http1_request r;
    size_t big = HTTP1_MAX_HEAD + 100;
    char *buf = malloc(big + 64);
    assert_non_null(buf);
    /* a request line over the limit, complete or not */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', big);
    assert_int_equal(http1_parse(buf, big, &r), -414);
    memcpy(buf + big, " HTTP/1.1\r\n\r\n", 13);
    assert_int_equal(http1_parse(buf, big + 13, &r), -414);
    /* a 9 KB request line is fine */
    const char *tail = " HTTP/1.1\r\n\r\n";
    memcpy(buf + 9000, tail, strlen(tail));
    assert_int_equal(http1_parse(buf, 9000 + strlen(tail), &r), (int)(9000 + strlen(tail)));
    /* headers over the limit, and too many of them */
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    while (n < big) {
        n += (size_t)sprintf(buf + n, "X-A: %s\r\n", "0123456789012345678901234567890123456789");
    }
    assert_int_equal(http1_parse(buf, n, &r), -431);
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP1_MAX_HEADERS; i++)
        n += (size_t)sprintf(buf + n, "X: %d\r\n", i);
    n += (size_t)sprintf(buf + n, "\r\n");
    assert_int_equal(http1_parse(buf, n, &r), -431);
    free(buf);
}

static int decode(const char *target, char *out)
{
    return http1_path_decode(target, strlen(target), out, 256, 200, 8);
}

static void test_path_decode(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(decode("/live/demo/index.m3u8?a=/b", out), 21);
    assert_string_equal(out, "/live/demo/index.m3u8");
    assert_true(decode("/live/%41b/x%2ets#frag", out) > 0);
    assert_string_equal(out, "/live/Ab/x.ts");
    assert_true(decode("/a/%zz/%4", out) > 0);   /* not escapes: kept as they are */
    assert_string_equal(out, "/a/%zz/%4");
    assert_true(decode("/", out) > 0);
    assert_string_equal(out, "/");
    assert_true(decode("/a//b/", out) > 0);
    assert_string_equal(out, "/a//b/");
    /* absolute-form, as proxies may send it */
    assert_true(decode("http://edge:8081/live/a/b.ts?x", out) > 0);
    assert_string_equal(out, "/live/a/b.ts");
    assert_true(decode("HTTPS://edge", out) > 0);
    assert_string_equal(out, "/");
    assert_true(decode("http://edge?x=/y", out) > 0);
    assert_string_equal(out, "/");
    static const char *const bad[] = {
        "", "live/x", "?x", "/live/../x", "/live/./x", "/live/%2e%2E/x", "/live/.%2e",
        "/live/a%2fb", "/live/a%2Fb", "/live/a%00b", "/1/2/3/4/5/6/7/8/9",
        "ftp://h/live/x", "http:/x", "http://h/live/../x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(decode(bad[i], out), -1);
    char longp[300];
    memset(longp, 'a', sizeof(longp));
    longp[0] = '/';
    assert_int_equal(http1_path_decode(longp, 201, out, sizeof(out), 200, 8), -1);
    assert_int_equal(http1_path_decode(longp, 200, out, sizeof(out), 200, 8), 200);
    assert_int_equal(http1_path_decode(longp, 200, out, 200, 200, 8), -1);   /* no room */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_methods_and_versions),
        cmocka_unit_test(test_lenient_where_allowed),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_needs_more),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_path_decode),
    };
    return cmocka_run_group_tests_name("http1", tests, NULL, NULL);
}
