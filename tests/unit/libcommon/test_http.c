/* The HTTP server and client helpers, against each other on one loop, plus raw
 * sockets for the connection cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "sluice/http.h"
#include "sluice/httpc.h"
#include "sluice/json.h"
#include "sluice/metrics.h"
#include "testutil.h"

struct fixture {
    struct event_base *base;
    struct metrics *metrics;
    struct http_server *srv;
    struct httpc *client;
    struct http_request *parked;   /* a request the test answers later */
};

static void h_hello(struct http_request *req)
{
    http_reply_json(req, 200, json_pack("{s:s}", "hello", "world"));
}

static void h_echo_params(struct http_request *req)
{
    http_reply_json(req, 200, json_pack("{s:s, s:s?}", "a", req->params[0], "b",
                                        req->params[1]));
}

static void h_json(struct http_request *req)
{
    json_t *body = http_read_json(req);
    if (body == NULL)
        return;
    http_reply_json(req, 201, body);
}

static void h_park(struct http_request *req)
{
    struct fixture *f = req->route_arg;
    f->parked = req;
}

static void h_big(struct http_request *req)
{
    struct evbuffer *out = evbuffer_new();
    char block[1024];
    memset(block, 'b', sizeof(block));
    for (int i = 0; i < 10; i++)
        evbuffer_add(out, block, sizeof(block));
    http_reply(req, 200, "application/octet-stream", out);
    evbuffer_free(out);
}

/* Replies with the connection's max single write. */
static void h_maxwrite(struct http_request *req)
{
    struct bufferevent *bev =
        evhttp_connection_get_bufferevent(evhttp_request_get_connection(req->ev));
    http_reply_json(req, 200, json_pack("{s:I}", "max_write",
                                        (json_int_t)bufferevent_get_max_single_write(bev)));
}

static const struct http_route routes[] = {
    { HTTP_GET, "/maxwrite", h_maxwrite },
    { HTTP_GET, "/big", h_big },
    { HTTP_GET, "/hello", h_hello },
    { HTTP_GET, "/items/{}", h_echo_params, "item" },
    { HTTP_GET, "/items/{}/parts/{}", h_echo_params },
    { HTTP_GET, "/files/*", h_echo_params },
    { HTTP_POST | HTTP_PUT, "/json", h_json },
    { HTTP_GET, "/park", h_park },
    { 0 },
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->metrics = metrics_new();
    struct http_server_options o = { .name = "test", .max_body = 100,
                                     .max_connections = 3, .metrics = f->metrics,
                                     .max_write = 1 << 20 };
    f->srv = http_server_new(f->base, &o);
    assert_non_null(f->srv);
    http_server_routes(f->srv, routes, f);
    char *err = NULL;
    assert_int_equal(http_server_listen(f->srv, "127.0.0.1:0", &err), 0);
    char origin[64];
    snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", http_server_port(f->srv));
    struct httpc_options co = { .timeout_ms = 2000, .connections = 1 };
    f->client = httpc_new(f->base, NULL, origin, &co);
    assert_non_null(f->client);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    httpc_free(f->client);
    http_server_free(f->srv);
    metrics_free(f->metrics);
    event_base_free(f->base);
    free(f);
    return 0;
}

struct result {
    bool done;
    int status;
    char error[64];
    size_t body_len;
    char type[64];
    char body[512];
    char allow[64];
    char cors[64];
};

static void on_response(const struct httpc_response *resp, void *arg)
{
    struct result *r = arg;
    r->done = true;
    r->status = resp->status;
    if (resp->error)
        snprintf(r->error, sizeof(r->error), "%s", resp->error);
    r->body_len = resp->body ? evbuffer_get_length(resp->body) : 0;
    if (resp->content_type)
        snprintf(r->type, sizeof(r->type), "%s", resp->content_type);
    if (resp->body) {
        size_t n = evbuffer_copyout(resp->body, r->body, sizeof(r->body) - 1);
        r->body[n] = '\0';
    }
    const char *allow = resp->headers ? evhttp_find_header(resp->headers, "Allow") : NULL;
    if (allow)
        snprintf(r->allow, sizeof(r->allow), "%s", allow);
    const char *cors = resp->headers
        ? evhttp_find_header(resp->headers, "Access-Control-Allow-Origin") : NULL;
    if (cors)
        snprintf(r->cors, sizeof(r->cors), "%s", cors);
}

static struct result request(struct fixture *f, const char *method, const char *path,
                             const char *const *headers, const char *body)
{
    struct result r = { 0 };
    assert_int_equal(httpc_request(f->client, method, path, headers, body,
                                   body ? strlen(body) : 0, on_response, &r), 0);
    assert_true(test_loop_until(f->base, &r.done, 3000));
    return r;
}

/* The "error" code of a JSON error body. */
static void assert_error(const struct result *r, int status, const char *code)
{
    assert_int_equal(r->status, status);
    assert_string_equal(r->type, "application/json");
    json_t *v = json_parse(r->body, strlen(r->body), NULL, 0);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "error")), code);
    assert_true(json_is_string(json_object_get(v, "message")));
    json_decref(v);
}

static void test_route_ok(void **state)
{
    struct result r = request(*state, "GET", "/hello", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, "application/json");
    assert_non_null(strstr(r.body, "\"hello\":\"world\""));
}

static void test_unknown_path_is_json_404(void **state)
{
    struct result r = request(*state, "GET", "/nope", NULL, NULL);
    assert_error(&r, 404, "not_found");
    r = request(*state, "GET", "/hello/extra", NULL, NULL);
    assert_error(&r, 404, "not_found");
}

static void test_wrong_method_is_json_405(void **state)
{
    struct result r = request(*state, "DELETE", "/hello", NULL, NULL);
    assert_error(&r, 405, "method_not_allowed");
    assert_string_equal(r.allow, "GET, HEAD");
    r = request(*state, "GET", "/json", NULL, NULL);
    assert_error(&r, 405, "method_not_allowed");
    assert_string_equal(r.allow, "POST, PUT");
}

static void test_large_body_is_json_413(void **state)
{
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct result r = request(*state, "POST", "/json", NULL, big);
    assert_error(&r, 413, "payload_too_large");
}

static void test_params(void **state)
{
    struct result r = request(*state, "GET", "/items/a%20b", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"a\":\"a b\""));
    r = request(*state, "GET", "/items/x/parts/y", NULL, NULL);
    assert_non_null(strstr(r.body, "\"a\":\"x\",\"b\":\"y\""));
    r = request(*state, "GET", "/files/d1/d2/f.ts", NULL, NULL);
    assert_non_null(strstr(r.body, "\"a\":\"d1/d2/f.ts\""));
}

static void test_bad_paths_are_400(void **state)
{
    static const char *const bad[] = {
        "/items/a%2Fb", "/items/..", "/files/../etc/passwd", "/items/%00", "/./hello",
        "/items/%2e%2e",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct result r = request(*state, "GET", bad[i], NULL, NULL);
        assert_error(&r, 400, "bad_path");
    }
}

static void test_json_body(void **state)
{
    static const char *const json_ct[] = { "Content-Type", "application/json", NULL };
    static const char *const text_ct[] = { "Content-Type", "text/plain", NULL };
    struct result r = request(*state, "POST", "/json", json_ct, "{\"k\": 1}");
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(r.body, "\"k\":1"));
    r = request(*state, "POST", "/json", json_ct, "{\"k\": ");
    assert_error(&r, 400, "bad_json");
    r = request(*state, "POST", "/json", json_ct, "[1, 2]");
    assert_error(&r, 400, "bad_json");
    r = request(*state, "POST", "/json", json_ct, "{\"k\": 1, \"k\": 2}");
    assert_error(&r, 400, "bad_json");
    r = request(*state, "PUT", "/json", text_ct, "{}");
    assert_error(&r, 415, "unsupported_media_type");
}

static void test_deferred_reply(void **state)
{
    struct fixture *f = *state;
    struct result r = { 0 };
    assert_int_equal(httpc_request(f->client, "GET", "/park", NULL, NULL, 0,
                                   on_response, &r), 0);
    test_loop_for(f->base, 100);
    assert_non_null(f->parked);
    assert_false(r.done);
    assert_int_equal(http_server_pending(f->srv), 1);
    http_reply_json(f->parked, 202, json_pack("{s:b}", "later", 1));
    f->parked = NULL;
    assert_true(test_loop_until(f->base, &r.done, 2000));
    assert_int_equal(r.status, 202);
    assert_int_equal(http_server_pending(f->srv), 0);
}

/* The client goes away while the handler still holds the request: the late
 * reply must be dropped quietly (ASan would catch a use after free). */
static void test_reply_after_client_left(void **state)
{
    struct fixture *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)http_server_port(f->srv)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char *get = "GET /park HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, get, strlen(get)), (ssize_t)strlen(get));
    test_loop_for(f->base, 100);
    assert_non_null(f->parked);
    close(fd);
    test_loop_for(f->base, 100);
    http_reply_json(f->parked, 200, json_object());
    f->parked = NULL;
    test_loop_for(f->base, 50);
    assert_int_equal(http_server_pending(f->srv), 0);
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void test_connection_cap(void **state)
{
    struct fixture *f = *state;
    int port = http_server_port(f->srv);
    int fd[5];
    for (int i = 0; i < 5; i++)
        fd[i] = raw_connect(port);   /* the kernel accepts past the cap: backlog */
    test_loop_for(f->base, 200);
    assert_int_equal(http_server_connections(f->srv), 3);
    for (int i = 0; i < 3; i++)
        close(fd[i]);
    test_loop_for(f->base, 300);
    /* the listener resumed and took the two that waited */
    assert_int_equal(http_server_connections(f->srv), 2);
    for (int i = 3; i < 5; i++)
        close(fd[i]);
    test_loop_for(f->base, 200);
    assert_int_equal(http_server_connections(f->srv), 0);
    struct result r = request(f, "GET", "/hello", NULL, NULL);
    assert_int_equal(r.status, 200);
}

static void test_request_metrics(void **state)
{
    struct fixture *f = *state;
    request(f, "GET", "/items/a", NULL, NULL);
    request(f, "GET", "/nope", NULL, NULL);
    struct evbuffer *out = evbuffer_new();
    metrics_render(f->metrics, out);
    evbuffer_add(out, "", 1);
    const char *text = (const char *)evbuffer_pullup(out, -1);
    assert_non_null(strstr(text, "sluice_http_requests_total{server=\"test\",route=\"item\","
                                 "status=\"200\"} 1"));
    assert_non_null(strstr(text, "sluice_http_requests_total{server=\"test\",route=\"unmatched\","
                                 "status=\"404\"} 1"));
    assert_non_null(strstr(text, "sluice_http_request_duration_seconds_count{server=\"test\","
                                 "route=\"item\"} 1"));
    evbuffer_free(out);
}

static void test_client_timeout_and_refused(void **state)
{
    struct fixture *f = *state;
    /* a listener that never answers */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    bind(lfd, (struct sockaddr *)&a, sizeof(a));
    listen(lfd, 8);
    getsockname(lfd, (struct sockaddr *)&a, &len);
    char origin[64];
    snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", ntohs(a.sin_port));
    struct httpc_options o = { .timeout_ms = 300 };
    struct httpc *c = httpc_new(f->base, NULL, origin, &o);
    struct result r = { 0 };
    int64_t t0 = clock_mono_ms();
    assert_int_equal(httpc_request(c, "GET", "/", NULL, NULL, 0, on_response, &r), 0);
    assert_true(test_loop_until(f->base, &r.done, 3000));
    assert_int_equal(r.status, 0);
    assert_true(clock_mono_ms() - t0 < 2000);
    httpc_free(c);
    close(lfd);

    snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", test_free_port());
    c = httpc_new(f->base, NULL, origin, &o);
    r = (struct result){ 0 };
    assert_int_equal(httpc_request(c, "GET", "/", NULL, NULL, 0, on_response, &r), 0);
    assert_true(test_loop_until(f->base, &r.done, 3000));
    assert_int_equal(r.status, 0);
    /* a request still in flight when the client is freed is cancelled */
    r = (struct result){ 0 };
    assert_int_equal(httpc_request(c, "GET", "/", NULL, NULL, 0, on_response, &r), 0);
    httpc_free(c);
    assert_true(r.done);
}

/* A client bounded in what it accepts refuses a larger answer, and takes one
 * that fits. */
static void test_client_max_body(void **state)
{
    struct fixture *f = *state;
    char origin[64];
    snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", http_server_port(f->srv));
    struct httpc_options o = { .timeout_ms = 2000, .max_body = 4096, .max_headers = 8192 };
    struct httpc *c = httpc_new(f->base, NULL, origin, &o);
    struct result r = { 0 };
    assert_int_equal(httpc_request(c, "GET", "/big", NULL, NULL, 0, on_response, &r), 0);
    assert_true(test_loop_until(f->base, &r.done, 3000));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.error, "response too large");
    r = (struct result){ 0 };
    assert_int_equal(httpc_request(c, "GET", "/hello", NULL, NULL, 0, on_response, &r), 0);
    assert_true(test_loop_until(f->base, &r.done, 3000));
    assert_int_equal(r.status, 200);
    httpc_free(c);
    r = request(f, "GET", "/big", NULL, NULL);   /* the unbounded client takes it */
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 10240);
}

/* Server-wide headers go on every reply, the server's own errors included. */
static void test_server_headers(void **state)
{
    struct fixture *f = *state;
    struct result r = request(f, "GET", "/hello", NULL, NULL);
    assert_string_equal(r.cors, "");
    assert_int_equal(http_server_add_header(f->srv, "Access-Control-Allow-Origin", "*"), 0);
    r = request(f, "GET", "/hello", NULL, NULL);
    assert_string_equal(r.cors, "*");
    r = request(f, "GET", "/nope", NULL, NULL);
    assert_error(&r, 404, "not_found");
    assert_string_equal(r.cors, "*");
    r = request(f, "GET", "/items/..", NULL, NULL);
    assert_error(&r, 400, "bad_path");
    assert_string_equal(r.cors, "*");
    for (int i = 1; i < 8; i++)
        assert_int_equal(http_server_add_header(f->srv, "X-N", "v"), 0);
    assert_int_equal(http_server_add_header(f->srv, "X-N", "v"), -1);
}

/* max_write reaches every connection's bufferevent. */
static void test_max_write(void **state)
{
    struct result r = request(*state, "GET", "/maxwrite", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"max_write\":1048576"));
    r = request(*state, "GET", "/big", NULL, NULL);
    assert_int_equal(r.body_len, 10240);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_path_is_json_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_method_is_json_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_body_is_json_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_paths_are_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_after_client_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_timeout_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_max_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_write, setup, teardown),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
