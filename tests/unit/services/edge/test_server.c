/* The edge's viewer port (server.c, reply.c) against raw client sockets on one
 * loop: keep-alive, pipelining answered in order across a reply that comes
 * later, a client gone before its reply, HEAD, the server's own errors, the
 * limits, HTTP/1.0 and Connection: close, the graceful stop, and the head
 * deadline against clients that drip their bytes (slowloris). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#include <event2/event.h>

#include "../../../../services/edge/body.h"
#include "../../../../services/edge/server.h"
#include "sluice/metrics.h"
#include "testutil.h"

struct fixture {
    struct event_base *base;
    struct metrics *metrics;
    struct edge_server *srv;
    struct body *hello;
    struct edge_req *parked;
    struct metric_series *head_timeouts;
    int calls;
    char seen_ua[64];
};

/* /live/x/hello: 200 "hello" by reference; /live/x/park: answered by the test;
 * anything else under /live/ or /vod/: 204 with the path in a header. */
static void handler(struct edge_req *req)
{
    struct fixture *f = req->arg;
    f->calls++;
    const char *ua = edge_req_header(req, "user-agent");
    snprintf(f->seen_ua, sizeof(f->seen_ua), "%s", ua ? ua : "");
    if (strcmp(req->param, "x/hello") == 0) {
        edge_req_add_header(req, "X-Route", req->route == ER_LIVE ? "live" : "vod");
        edge_reply(req, 200, "text/plain", f->hello->buf.len, f->hello, 0);
    } else if (strcmp(req->param, "x/park") == 0) {
        f->parked = req;
    } else {
        edge_req_add_header(req, "X-Param", req->param);
        edge_reply(req, 204, NULL, 0, NULL, 0);
    }
}

static const struct metric_def test_defs[] = {
    { "test_head_timeouts_total", METRIC_COUNTER, "connections cut by the head deadline" },
    { NULL },
};

/* A server with an idle timeout of 2 s and a head deadline of <head_ms>. */
static int setup_with(void **state, int64_t head_ms)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->metrics = metrics_new();
    struct metric *family;
    assert_int_equal(metrics_register(f->metrics, test_defs, &family), 0);
    f->head_timeouts = metric_at(family);
    struct edge_server_options o = { .max_connections = 4, .timeout_ms = 2000,
                                     .head_timeout_ms = head_ms, .metrics = f->metrics,
                                     .head_timeouts = f->head_timeouts,
                                     .handler = handler, .arg = f };
    f->srv = edge_server_new(f->base, &o);
    assert_non_null(f->srv);
    assert_int_equal(edge_server_add_header(f->srv, "Access-Control-Allow-Origin", "*"), 0);
    char *err = NULL;
    assert_int_equal(edge_server_listen(f->srv, "127.0.0.1:0", &err), 0);
    f->hello = body_new(200, 5);
    memcpy(f->hello->buf.data, "hello", 5);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0);   /* the default, 10 s: out of the way */
}

static int setup_deadline(void **state)
{
    return setup_with(state, 300);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->parked)
        edge_reply_error(f->parked, 503, "shutting_down", "bye");
    edge_server_free(f->srv);
    body_unref(f->hello);
    metrics_free(f->metrics);
    event_base_free(f->base);
    free(f);
    return 0;
}

static int client(struct fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)edge_server_port(f->srv)) };
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void say(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), 0), (ssize_t)strlen(s));
}

/* Runs the loop and reads from <fd> until it has shown <want> reply heads and
 * then been quiet for 30 ms, or closed, or 2 s passed. Returns the bytes (a
 * static buffer); *<closed> says whether the server closed. */
static const char *hear(struct fixture *f, int fd, int want, bool *closed)
{
    static char buf[65536];
    size_t len = 0;
    *closed = false;
    buf[0] = '\0';
    int64_t end = clock_mono_ms() + 2000, quiet_since = clock_mono_ms();
    while (clock_mono_ms() < end) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
        if (n == 0 || (n == -1 && errno == ECONNRESET)) {
            *closed = true;
            break;
        }
        if (n > 0) {
            len += (size_t)n;
            buf[len] = '\0';
            quiet_since = clock_mono_ms();
        }
        int heads = 0;
        for (const char *p = buf; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
            heads++;
        if (want > 0 && heads >= want && clock_mono_ms() - quiet_since >= 30)
            break;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        poll(&pfd, 1, 5);
    }
    return buf;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static void test_keepalive_and_pipelining(void **state)
{
    struct fixture *f = *state;
    bool closed;
    int fd = client(f);
    say(fd, "GET /live/x/hello HTTP/1.1\r\nUser-Agent: vlc\r\n\r\n");
    const char *r = hear(f, fd, 1, &closed);
    assert_false(closed);
    assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(r, "Content-Length: 5\r\n"));
    assert_non_null(strstr(r, "Content-Type: text/plain\r\n"));
    assert_non_null(strstr(r, "Access-Control-Allow-Origin: *\r\n"));
    assert_non_null(strstr(r, "X-Route: live\r\n"));
    assert_non_null(strstr(r, "Date: "));
    assert_string_equal(r + strlen(r) - 5, "hello");
    assert_string_equal(f->seen_ua, "vlc");
    /* three at once, the middle one answered later: in order all the same */
    say(fd, "GET /vod/x/hello HTTP/1.1\r\n\r\nGET /live/x/park HTTP/1.1\r\n\r\n"
            "HEAD /live/x/hello HTTP/1.1\r\n\r\n");
    r = hear(f, fd, 1, &closed);
    assert_int_equal(count(r, "HTTP/1.1 "), 1);
    assert_non_null(strstr(r, "X-Route: vod"));
    assert_non_null(f->parked);
    assert_int_equal(edge_server_pending(f->srv), 1);
    edge_reply(f->parked, 200, "text/plain", 5, f->hello, 0);
    f->parked = NULL;
    r = hear(f, fd, 2, &closed);
    assert_int_equal(count(r, "HTTP/1.1 200"), 2);
    /* the HEAD reply: the length, no body */
    const char *head = strstr(strstr(r, "hello"), "HTTP/1.1 200");
    assert_non_null(strstr(head, "Content-Length: 5\r\n"));
    assert_string_equal(head + strlen(head) - 4, "\r\n\r\n");
    assert_int_equal(edge_server_pending(f->srv), 0);
    close(fd);
}

static void test_client_gone_before_reply(void **state)
{
    struct fixture *f = *state;
    int fd = client(f);
    say(fd, "GET /live/x/park HTTP/1.1\r\n\r\n");
    test_loop_for(f->base, 50);
    assert_non_null(f->parked);
    close(fd);
    test_loop_for(f->base, 50);
    edge_reply(f->parked, 200, "text/plain", 5, f->hello, 0);   /* dropped quietly */
    f->parked = NULL;
    test_loop_for(f->base, 50);
    assert_int_equal(edge_server_connections(f->srv), 0);
    assert_int_equal(edge_server_pending(f->srv), 0);
}

static void test_own_errors(void **state)
{
    struct fixture *f = *state;
    static const struct { const char *req; const char *status; bool closes; } cases[] = {
        { "GET /live/../x HTTP/1.1\r\n\r\n", "400", false },
        { "GET /live/a%2fb/c HTTP/1.1\r\n\r\n", "400", false },
        { "GET /other HTTP/1.1\r\n\r\n", "404", false },
        { "GET /lives/x/y HTTP/1.1\r\n\r\n", "404", false },
        { "OPTIONS /live HTTP/1.1\r\n\r\n", "404", false },
        { "DELETE /live/x/y HTTP/1.1\r\n\r\n", "405", false },
        { "POST /live/x/y HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", "405", true },
        { "GET /live/x/y HTTP/2.0\r\n\r\n", "505", true },
        { "GET /live/x/y HTTP/1.1\r\nBad Header: x\r\n\r\n", "400", true },
        { "\x16\x03\x01\x02", "400", true },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool closed;
        int fd = client(f);
        say(fd, cases[i].req);
        const char *r = hear(f, fd, 1, &closed);
        char want[32];
        snprintf(want, sizeof(want), "HTTP/1.1 %s ", cases[i].status);
        if (strncmp(r, want, strlen(want)) != 0)
            fail_msg("%s: got %.40s", cases[i].req, r);
        assert_non_null(strstr(r, "Content-Type: application/json\r\n"));
        assert_non_null(strstr(r, "Access-Control-Allow-Origin: *\r\n"));
        assert_non_null(strstr(r, "{\"error\": \""));
        if (strcmp(cases[i].status, "405") == 0)
            assert_non_null(strstr(r, "Allow: GET, HEAD, OPTIONS\r\n"));
        assert_int_equal(strstr(r, "Connection: close\r\n") != NULL, cases[i].closes);
        if (cases[i].closes) {
            hear(f, fd, 0, &closed);
            assert_true(closed);
        }
        close(fd);
    }
    assert_int_equal(f->calls, 0);
    test_loop_for(f->base, 20);
    assert_int_equal(edge_server_pending(f->srv), 0);
}

/* An error right after a HEAD on the same connection still has its body (the
 * method of the request before must not leak into the next one). */
/* Under /live/ or /vod/, an empty name is still a request for a stream, whose
 * path the handler refuses (400 bad_path, not 404): the handler sees it. */
static void test_empty_name_reaches_the_handler(void **state)
{
    struct fixture *f = *state;
    static const struct { const char *req; const char *param; } cases[] = {
        { "GET /live//index.m3u8 HTTP/1.1\r\n\r\n", "X-Param: /index.m3u8\r\n" },
        { "GET /vod//index.m3u8 HTTP/1.1\r\n\r\n", "X-Param: /index.m3u8\r\n" },
        { "GET /live/ HTTP/1.1\r\n\r\n", "X-Param: \r\n" },
        { "GET /vod/ HTTP/1.1\r\n\r\n", "X-Param: \r\n" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool closed;
        int fd = client(f);
        say(fd, cases[i].req);
        const char *r = hear(f, fd, 1, &closed);
        if (strncmp(r, "HTTP/1.1 204 ", 13) != 0 || strstr(r, cases[i].param) == NULL)
            fail_msg("%s: got %.80s", cases[i].req, r);
        close(fd);
    }
    assert_int_equal(f->calls, 4);
}

static void test_error_after_head(void **state)
{
    struct fixture *f = *state;
    bool closed;
    int fd = client(f);
    say(fd, "HEAD /live/x/hello HTTP/1.1\r\n\r\nGET /nowhere HTTP/1.1\r\n\r\n");
    const char *r = hear(f, fd, 2, &closed);
    assert_int_equal(count(r, "HTTP/1.1 "), 2);
    const char *second = strstr(r, "HTTP/1.1 404 ");
    assert_non_null(second);
    assert_non_null(strstr(second, "{\"error\": \"not_found\""));
    close(fd);
}

static void test_limits(void **state)
{
    struct fixture *f = *state;
    bool closed;
    size_t big = HTTP1_MAX_LINE + 10;
    char *req = malloc(big + 64);
    /* a 9 KB path: the line is fine, the path is not */
    strcpy(req, "GET /live/x/");
    memset(req + 12, 'a', 9000);
    strcpy(req + 9012, " HTTP/1.1\r\n\r\n");
    int fd = client(f);
    say(fd, req);
    const char *r = hear(f, fd, 1, &closed);
    assert_non_null(strstr(r, "HTTP/1.1 400 "));
    assert_non_null(strstr(r, "bad_path"));
    close(fd);
    /* a line over the limit */
    memset(req + 12, 'a', big);
    req[12 + big] = '\0';
    fd = client(f);
    say(fd, req);
    r = hear(f, fd, 1, &closed);
    assert_non_null(strstr(r, "HTTP/1.1 414 "));
    close(fd);
    free(req);
    assert_int_equal(f->calls, 0);
}

static void test_closing(void **state)
{
    struct fixture *f = *state;
    bool closed;
    int fd = client(f);
    say(fd, "GET /live/x/hello HTTP/1.0\r\n\r\n");
    const char *r = hear(f, fd, 1, &closed);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    hear(f, fd, 0, &closed);
    assert_true(closed);
    close(fd);
    fd = client(f);
    say(fd, "GET /live/x/hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = hear(f, fd, 1, &closed);
    assert_non_null(strstr(r, "Connection: keep-alive\r\n"));
    say(fd, "GET /live/x/hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    r = hear(f, fd, 1, &closed);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    hear(f, fd, 0, &closed);
    assert_true(closed);
    close(fd);
    /* stopping: the open connection's next reply closes it, new ones are refused */
    fd = client(f);
    say(fd, "GET /live/x/park HTTP/1.1\r\n\r\n");
    test_loop_for(f->base, 50);
    edge_server_stop_accepting(f->srv);
    edge_reply(f->parked, 200, "text/plain", 5, f->hello, 0);
    f->parked = NULL;
    r = hear(f, fd, 1, &closed);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    assert_non_null(strstr(r, "hello"));
    close(fd);
}

static void test_idle_timeout_and_cap(void **state)
{
    struct fixture *f = *state;
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = client(f);   /* the fifth waits in the backlog */
    test_loop_for(f->base, 100);
    assert_int_equal(edge_server_connections(f->srv), 4);
    close(fds[0]);
    test_loop_for(f->base, 100);
    assert_int_equal(edge_server_connections(f->srv), 4);   /* the fifth got in */
    test_loop_for(f->base, 2600);                           /* idle past 2 s */
    assert_int_equal(edge_server_connections(f->srv), 0);
    for (int i = 1; i < 5; i++)
        close(fds[i]);
}

/* Sends <s> a byte every 100 ms (each one enough to restart the idle timer)
 * while the loop runs, until it is all sent or a send fails (the server has
 * closed). Returns what came back (a static buffer); *<eof> says whether the
 * server shut its side (which it does before it lingers, not only to close). */
static const char *drip(struct fixture *f, int fd, const char *s, bool *eof)
{
    static char buf[4096];
    size_t len = 0;
    *eof = false;
    buf[0] = '\0';
    for (; *s != '\0' && send(fd, s, 1, MSG_NOSIGNAL) == 1; s++) {
        int64_t end = clock_mono_ms() + 100;
        while (clock_mono_ms() < end) {
            event_base_loop(f->base, EVLOOP_NONBLOCK);
            ssize_t n = *eof ? 0 : recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
            if (n == 0 || (n == -1 && errno == ECONNRESET))
                *eof = true;
            if (n > 0)
                buf[len += (size_t)n] = '\0';
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            poll(&pfd, 1, 5);
        }
    }
    return buf;
}

/* A head dripped slower than the deadline: 408 (JSON, Connection: close),
 * counted, closed; meanwhile another client is served as usual. */
static void test_head_deadline_dripped_head(void **state)
{
    struct fixture *f = *state;
    bool closed;
    int slow = client(f);
    say(slow, "GE");
    int fast = client(f);
    say(fast, "GET /live/x/hello HTTP/1.1\r\n\r\n");
    assert_non_null(strstr(hear(f, fast, 1, &closed), "HTTP/1.1 200 OK\r\n"));
    close(fast);
    const char *r = drip(f, slow, "T /live/x/hello HTTP/1.1\r\nHost: edge\r\n\r\n", &closed);
    assert_true(strncmp(r, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    assert_non_null(strstr(r, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(r, "{\"error\": \"request_timeout\""));
    assert_true(closed);
    /* gone within the drip's 4 s: one deadline for its head, one to leave */
    assert_int_equal(edge_server_connections(f->srv), 0);
    close(slow);
    assert_int_equal(f->calls, 1);
    assert_true(metric_value(f->head_timeouts) == 1);
}

/* A connection that sends nothing is closed at the deadline without a word:
 * a browser's preconnection would take a 408 for its later request's answer. */
static void test_head_deadline_silent_connection(void **state)
{
    struct fixture *f = *state;
    bool closed;
    int fd = client(f);
    const char *r = hear(f, fd, 0, &closed);
    assert_true(closed);
    assert_string_equal(r, "");
    close(fd);
    assert_true(metric_value(f->head_timeouts) == 1);
}

/* Between requests a keep-alive connection has the idle timeout only; the
 * next head's deadline starts with its first byte. */
static void test_head_deadline_not_between_requests(void **state)
{
    struct fixture *f = *state;
    bool closed;
    int fd = client(f);
    say(fd, "GET /live/x/hello HTTP/1.1\r\n\r\n");
    assert_non_null(strstr(hear(f, fd, 1, &closed), "HTTP/1.1 200 "));
    test_loop_for(f->base, 700);   /* past the deadline, within the idle timeout */
    say(fd, "GET /live/x/hel");
    test_loop_for(f->base, 150);   /* a head in two parts, within the deadline */
    say(fd, "lo HTTP/1.1\r\n\r\n");
    const char *r = hear(f, fd, 1, &closed);
    assert_false(closed);
    assert_non_null(strstr(r, "HTTP/1.1 200 "));
    test_loop_for(f->base, 700);   /* and the deadline stopped with that head */
    say(fd, "GET /live/x/hello HTTP/1.1\r\n\r\n");
    assert_non_null(strstr(hear(f, fd, 1, &closed), "HTTP/1.1 200 "));
    assert_false(closed);
    close(fd);
    assert_true(metric_value(f->head_timeouts) == 0);
}

/* After a refused head the server reads and drops what still comes so that
 * its answer is not lost to a reset; a peer dripping bytes then is still
 * closed within a deadline, not at the idle timeout it keeps alive. */
static void test_head_deadline_bounds_lingering(void **state)
{
    struct fixture *f = *state;
    bool closed;
    int fd = client(f);
    say(fd, "GET /live/x/y HTTP/2.0\r\n\r\n");
    const char *r = drip(f, fd, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", &closed);   /* 3 s */
    assert_true(strncmp(r, "HTTP/1.1 505 ", 13) == 0);
    assert_int_equal(edge_server_connections(f->srv), 0);
    close(fd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keepalive_and_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_before_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_name_reaches_the_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_after_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_deadline_dripped_head, setup_deadline,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_head_deadline_silent_connection, setup_deadline,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_head_deadline_not_between_requests,
                                        setup_deadline, teardown),
        cmocka_unit_test_setup_teardown(test_head_deadline_bounds_lingering, setup_deadline,
                                        teardown),
    };
    return cmocka_run_group_tests_name("edge server", tests, NULL, NULL);
}
