/* Flights against a real redis-server and an origin in the same loop (the
 * libcommon HTTP server, answering after a delay and counting requests):
 * coalescing (many misses, one origin request, one shared body), the 404 of
 * a stream that is not live (and its negative cache), playlist freshness
 * from the target duration, stale-if-error, the back-off from an origin that
 * cannot be reached, routes remembered through a Redis outage, and routes held
 * when a live stream's key vanishes (an origin failover). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "../../../../services/edge/body.h"
#include "../../../../services/edge/cache.h"
#include "../../../../services/edge/edge.h"
#include "../../../../services/edge/flight.h"
#include "../../../../services/edge/origin.h"
#include "../../../../services/edge/routes.h"
#include "sluice/http.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"
#include "testutil.h"

#define SEGMENT_BYTES 100000
#define MAX_PARKED 64

struct fixture {
    struct event_base *base;
    int redis_port;
    pid_t redis_pid;
    struct metrics *metrics;
    struct edge_config cfg;
    struct edge e;
    struct http_server *origin;
    int origin_port;
    int origin_requests;
    int origin_status;          /* what the origin answers */
    const char *playlist;       /* the body of any .m3u8 */
    struct http_request *parked[MAX_PARKED];
    int nparked;
    struct event *release;
};

/* ---- the origin ----------------------------------------------------------- */

static void answer(struct fixture *f, struct http_request *req)
{
    struct evbuffer *out = evbuffer_new();
    if (strstr(req->path, ".m3u8")) {
        evbuffer_add(out, f->playlist, strlen(f->playlist));
    } else {
        for (int i = 0; i < SEGMENT_BYTES; i++)
            evbuffer_add(out, &(char){ (char)('a' + i % 26) }, 1);
    }
    http_header(req, "ETag", "\"v1\"");
    http_reply(req, f->origin_status, "application/octet-stream",
               f->origin_status == 200 ? out : NULL);
    evbuffer_free(out);
}

static void on_release(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fixture *f = arg;
    for (int i = 0; i < f->nparked; i++)
        answer(f, f->parked[i]);
    f->nparked = 0;
}

/* Every request waits 150 ms, so that misses arriving meanwhile pile up. */
static void h_origin(struct http_request *req)
{
    struct fixture *f = req->route_arg;
    f->origin_requests++;
    assert_true(f->nparked < MAX_PARKED);
    f->parked[f->nparked++] = req;
    struct timeval tv = clock_tv_ms(150);
    evtimer_add(f->release, &tv);
}

static const struct http_route origin_routes[] = {
    { HTTP_GET, "/live/*", h_origin }, { HTTP_GET, "/vod/*", h_origin }, { 0 },
};

/* ---- the edge's parts ----------------------------------------------------- */

static void on_pong(const struct redis_reply *r, const char *err, void *arg)
{
    (void)r;
    (void)err;
    *(bool *)arg = true;
}

static void redis_barrier(struct fixture *f)
{
    bool done = false;
    assert_int_equal(redis_command(f->e.redis, on_pong, &done, "PING"), 0);
    assert_true(test_loop_until(f->base, &done, 2000));
}

static void set_route(struct fixture *f, const char *key, int port)
{
    char value[128], url[48];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    snprintf(value, sizeof(value), "{\"url\":\"%s\",\"manifest\":\"x\",\"updated_at\":\"y\"}", url);
    assert_int_equal(redis_command(f->e.redis, NULL, NULL, "SET %s %s", key, value), 0);
    redis_barrier(f);   /* replies come in order: the SET is applied */
}

static void del_route(struct fixture *f, const char *key)
{
    assert_int_equal(redis_command(f->e.redis, NULL, NULL, "DEL %s", key), 0);
    redis_barrier(f);
}

static void wait_redis(struct fixture *f, bool up)
{
    int64_t end = clock_mono_ms() + 5000;
    while (redis_is_up(f->e.redis) != up && clock_mono_ms() < end)
        test_loop_for(f->base, 10);
    assert_true(redis_is_up(f->e.redis) == up);
}

static void on_redis_state(bool up, void *arg)
{
    struct fixture *f = arg;
    routes_redis_state(f->e.routes, up);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->redis_port = test_free_port();
    f->redis_pid = test_redis_start(f->redis_port);
    f->metrics = metrics_new();
    f->origin_status = 200;
    f->playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\ns1.ts\n";
    f->release = evtimer_new(f->base, on_release, f);
    struct http_server_options ho = { .name = "origin" };
    f->origin = http_server_new(f->base, &ho);
    http_server_routes(f->origin, origin_routes, f);
    char *err = NULL;
    assert_int_equal(http_server_listen(f->origin, "127.0.0.1:0", &err), 0);
    f->origin_port = http_server_port(f->origin);

    struct edge_config *c = &f->cfg;
    c->playlist_ttl_percent = 25;
    c->playlist_ttl_min_ms = 100;
    c->playlist_ttl_default_ms = 1000;
    c->negative_ttl_ms = 1000;
    c->stale_if_error_ms = 10000;
    c->origin_timeout_ms = 1000;
    c->max_object_size = 1 << 20;
    struct edge *e = &f->e;
    e->cfg = c;
    e->base = f->base;
    assert_int_equal(edge_stats_init(&e->stats, f->metrics), 0);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", f->redis_port);
    struct redis_options ro = { .url = url, .connect_timeout_ms = 300,
                                .command_timeout_ms = 500, .backoff_min_ms = 50,
                                .backoff_max_ms = 200 };
    struct route_options rto = { .ttl_ms = 1000, .stale_ms = 60000, .lookup_timeout_ms = 200,
                                 .negative_ttl_ms = 1000, .grace_ms = 0,
                                 .vanish_grace_ms = 2500, .max_routes = 100 };
    struct origin_options oo = { .timeout_ms = 1000, .connections = 4, .max_body = 1 << 20,
                                 .max_fetches = 16, .retry_ms = 1000 };
    e->cache = cache_new(16 << 20);
    e->redis = redis_new(f->base, NULL, &ro);
    e->routes = routes_new(f->base, e->redis, &rto, &e->stats);
    e->origins = origins_new(f->base, NULL, &oo, &e->stats);
    e->flights = flights_new(e);
    redis_set_state_cb(e->redis, on_redis_state, f);
    wait_redis(f, true);
    set_route(f, "sluice:origin:demo", f->origin_port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct edge *e = &f->e;
    flights_close(e->flights);
    redis_free(e->redis);
    routes_free(e->routes);
    origins_free(e->origins);
    flights_free(e->flights);
    on_release(-1, 0, f);
    http_server_free(f->origin);
    cache_free(e->cache);
    event_free(f->release);
    metrics_free(f->metrics);
    if (f->redis_pid)
        test_redis_stop(f->redis_pid);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* ---- requests ------------------------------------------------------------- */

struct got {
    int n;
    int status[256];
    struct body *body[256];     /* referenced */
    enum cache_outcome outcome[256];
    char error[64];
    int64_t fresh_until;
};

static void on_landed(const struct flight_result *res, void *arg)
{
    struct got *g = arg;
    assert_true(g->n < 256);
    g->status[g->n] = res->status;
    g->body[g->n] = res->body ? body_ref(res->body) : NULL;
    g->outcome[g->n] = res->outcome;
    g->fresh_until = res->fresh_until;
    if (res->error)
        snprintf(g->error, sizeof(g->error), "%s", res->error);
    g->n++;
}

static void got_release(struct got *g)
{
    for (int i = 0; i < g->n; i++)
        body_unref(g->body[i]);
    memset(g, 0, sizeof(*g));
}

static struct objpath obj(const char *rest, enum edge_ns ns)
{
    struct objpath p;
    const char *why;
    assert_int_equal(objpath_parse(ns, rest, strlen(rest), &p, &why), 0);
    return p;
}

static void wait_for(struct fixture *f, struct got *g, int n, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    while (g->n < n && clock_mono_ms() < end)
        test_loop_for(f->base, 5);
    assert_int_equal(g->n, n);
}

static double counter(struct fixture *f, enum edge_metric m, const char *label)
{
    return metric_value(metric_at(f->e.stats.m[m], label));
}

/* ---- tests ---------------------------------------------------------------- */

static void test_coalescing(void **state)
{
    struct fixture *f = *state;
    struct objpath p = obj("demo/s1.ts", NS_LIVE);
    struct got g = { 0 };
    enum { N = 200 };
    int started = 0;
    for (int i = 0; i < N; i++) {
        int rc = flights_join(f->e.flights, &p, on_landed, &g);
        assert_true(rc == 0 || rc == 1);
        started += rc == 0;
        if (i == N / 2)
            test_loop_for(f->base, 20);   /* some join while the route is looked up */
    }
    assert_int_equal(started, 1);
    assert_int_equal(flights_count(f->e.flights), 1);
    wait_for(f, &g, N, 3000);
    assert_int_equal(f->origin_requests, 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(g.status[i], 200);
        assert_ptr_equal(g.body[i], g.body[0]);   /* one body, by reference */
    }
    assert_int_equal(g.body[0]->buf.len, SEGMENT_BYTES);
    assert_string_equal(g.body[0]->etag, "\"v1\"");
    assert_int_equal(g.fresh_until, CACHE_FOREVER);
    assert_int_equal(flights_count(f->e.flights), 0);
    struct cache_entry *ce = cache_get(f->e.cache, p.key, p.keylen, clock_mono_ms());
    assert_non_null(ce);
    assert_ptr_equal(ce->body, g.body[0]);
    assert_int_equal(counter(f, EM_ROUTE_LOOKUPS, "found"), 1);
    got_release(&g);
}

static void test_not_live_is_404_and_remembered(void **state)
{
    struct fixture *f = *state;
    struct objpath p = obj("nobody/index.m3u8", NS_LIVE);
    struct got g = { 0 };
    int64_t t0 = clock_mono_ms();
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 1, 1000);
    assert_int_equal(g.status[0], 404);
    assert_string_equal(g.error, "not_found");
    assert_true(clock_mono_ms() - t0 < 500);
    /* within the negative TTL: answered at once, without Redis */
    assert_int_equal(flights_join(f->e.flights, &p, on_landed, &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.status[1], 404);
    assert_int_equal(counter(f, EM_ROUTE_LOOKUPS, "absent"), 1);
    assert_int_equal(f->origin_requests, 0);
    /* a VOD id Redis does not know: the same */
    struct objpath v = obj("rec1/index.m3u8", NS_VOD);
    flights_join(f->e.flights, &v, on_landed, &g);
    wait_for(f, &g, 3, 1000);
    assert_int_equal(g.status[2], 404);
    got_release(&g);
}

static void test_playlist_ttl_and_refetch(void **state)
{
    struct fixture *f = *state;
    struct objpath p = obj("demo/index.m3u8", NS_LIVE);
    struct got g = { 0 };
    int64_t t0 = clock_mono_ms();
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 1, 2000);
    /* 25% of a 2 s target duration */
    int64_t ttl = g.fresh_until - clock_mono_ms();
    assert_true(ttl > 200 && ttl <= 500);
    struct cache_entry *ce = cache_get(f->e.cache, p.key, p.keylen, clock_mono_ms());
    assert_true(cache_fresh(ce, clock_mono_ms()));
    assert_false(cache_fresh(ce, t0 + 1000));
    assert_int_equal(edge_playlist_ttl(&f->cfg, 2000), 500);
    assert_int_equal(edge_playlist_ttl(&f->cfg, 200), 100);     /* the floor */
    assert_int_equal(edge_playlist_ttl(&f->cfg, -1), 1000);     /* no target: default */
    got_release(&g);
}

static void test_stale_if_error(void **state)
{
    struct fixture *f = *state;
    struct objpath p = obj("demo/index.m3u8", NS_LIVE);
    struct got g = { 0 };
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 1, 2000);
    struct body *first = g.body[0];
    test_loop_for(f->base, 600);      /* past its freshness */
    f->origin_status = 503;
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 2, 2000);
    assert_int_equal(f->origin_requests, 2);
    assert_int_equal(g.status[1], 200);
    assert_int_equal(g.outcome[1], CO_STALE);
    assert_ptr_equal(g.body[1], first);
    assert_int_equal(counter(f, EM_FETCHES, "bad_status"), 1);
    /* a segment nobody has cached: the error itself */
    struct objpath s = obj("demo/s9.ts", NS_LIVE);
    flights_join(f->e.flights, &s, on_landed, &g);
    wait_for(f, &g, 3, 2000);
    assert_int_equal(g.status[2], 502);
    assert_string_equal(g.error, "bad_gateway");
    got_release(&g);
}

static void test_origin_404_is_cached_briefly(void **state)
{
    struct fixture *f = *state;
    f->origin_status = 404;
    struct objpath p = obj("demo/gone.ts", NS_LIVE);
    struct got g = { 0 };
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 1, 2000);
    assert_int_equal(g.status[0], 404);
    assert_non_null(g.body[0]);
    assert_int_equal(g.body[0]->status, 404);
    struct cache_entry *ce = cache_get(f->e.cache, p.key, p.keylen, clock_mono_ms());
    assert_non_null(ce);
    assert_true(cache_fresh(ce, clock_mono_ms()));
    assert_false(cache_fresh(ce, clock_mono_ms() + 1100));
    got_release(&g);
}

static void test_unreachable_origin_backs_off(void **state)
{
    struct fixture *f = *state;
    set_route(f, "sluice:origin:dead", test_free_port());
    struct objpath p = obj("dead/s1.ts", NS_LIVE);
    struct got g = { 0 };
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 1, 2000);
    assert_int_equal(g.status[0], 502);
    assert_string_equal(g.error, "origin_unreachable");
    /* within origin-retry: refused without trying */
    struct objpath q = obj("dead/s2.ts", NS_LIVE);
    int64_t t0 = clock_mono_ms();
    flights_join(f->e.flights, &q, on_landed, &g);
    wait_for(f, &g, 2, 2000);
    assert_int_equal(g.status[1], 502);
    assert_true(clock_mono_ms() - t0 < 400);
    assert_int_equal(counter(f, EM_FETCHES, "origin_down"), 1);
    assert_int_equal(counter(f, EM_FETCHES, "unreachable"), 1);
    got_release(&g);
}

static void test_route_remembered_while_redis_down(void **state)
{
    struct fixture *f = *state;
    struct objpath p = obj("demo/index.m3u8", NS_LIVE);
    struct got g = { 0 };
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 1, 2000);
    test_redis_stop(f->redis_pid);
    f->redis_pid = 0;
    wait_redis(f, false);
    test_loop_for(f->base, 1100);     /* past route-ttl and the playlist's freshness */
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 2, 2000);
    assert_int_equal(g.status[1], 200);
    assert_int_equal(g.outcome[1], CO_MISS);   /* fetched anew, through the memory */
    assert_int_equal(f->origin_requests, 2);
    assert_true(counter(f, EM_ROUTE_LOOKUPS, "remembered") >= 1);
    /* a stream never seen cannot be resolved: 503 */
    struct objpath q = obj("unknown/index.m3u8", NS_LIVE);
    flights_join(f->e.flights, &q, on_landed, &g);
    wait_for(f, &g, 3, 2000);
    assert_int_equal(g.status[2], 503);
    assert_string_equal(g.error, "route_unavailable");
    got_release(&g);
}

/* The key of a stream whose last playlist had no EXT-X-ENDLIST vanishes (its
 * origin died, the new owner's key is not there yet): the cached playlist is
 * served (the dead origin failing) for route-vanish-grace, not a 404; Redis is
 * asked at most once per route-ttl meanwhile; the new key is followed as soon
 * as it appears; past the grace the stream is gone. */
static void test_vanished_live_route_is_held(void **state)
{
    struct fixture *f = *state;
    struct objpath p = obj("demo/index.m3u8", NS_LIVE);
    struct got g = { 0 };
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 1, 2000);
    struct body *first = g.body[0];
    del_route(f, "sluice:origin:demo");
    f->origin_status = 503;             /* the old owner is dead */
    test_loop_for(f->base, 1100);       /* past route-ttl and the playlist's freshness */
    int64_t t0 = clock_mono_ms();
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 2, 2000);
    assert_int_equal(g.status[1], 200);
    assert_int_equal(g.outcome[1], CO_STALE);
    assert_ptr_equal(g.body[1], first);
    assert_int_equal(counter(f, EM_ROUTE_LOOKUPS, "held"), 1);
    assert_int_equal(counter(f, EM_ROUTE_LOOKUPS, "absent"), 0);
    /* within route-ttl of that answer: held without asking Redis again */
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 3, 2000);
    assert_int_equal(g.status[2], 200);
    assert_int_equal(counter(f, EM_ROUTE_LOOKUPS, "held"), 2);
    /* the new owner's key: followed at once (the next lookup) */
    set_route(f, "sluice:origin:demo", f->origin_port);
    f->origin_status = 200;
    test_loop_for(f->base, 1000 - (clock_mono_ms() - t0) + 50);
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 4, 2000);
    assert_int_equal(g.status[3], 200);
    assert_int_equal(g.outcome[3], CO_MISS);
    assert_int_equal(counter(f, EM_ROUTE_LOOKUPS, "found"), 2);
    /* gone for good this time: held for route-vanish-grace (2.5 s), then 404 */
    del_route(f, "sluice:origin:demo");
    f->origin_status = 503;
    test_loop_for(f->base, 1100);
    t0 = clock_mono_ms();
    int n = g.n;
    while (clock_mono_ms() - t0 < 3500 && (n == g.n || g.status[g.n - 1] == 200)) {
        n = g.n;
        flights_join(f->e.flights, &p, on_landed, &g);
        wait_for(f, &g, n + 1, 2000);
        if (g.status[n] == 200)
            test_loop_for(f->base, 200);
    }
    assert_int_equal(g.status[g.n - 1], 404);
    assert_string_equal(g.error, "not_found");
    int64_t held_ms = clock_mono_ms() - t0;
    assert_true(held_ms >= 2300 && held_ms < 3500);
    got_release(&g);
}

/* A stream whose last playlist had EXT-X-ENDLIST ended: its key gone, it is
 * 404 at once (hls keeps an ended stream's key while it serves it). */
static void test_vanished_ended_route_is_absent(void **state)
{
    struct fixture *f = *state;
    f->playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\ns1.ts\n#EXT-X-ENDLIST\n";
    struct objpath p = obj("demo/index.m3u8", NS_LIVE);
    struct got g = { 0 };
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 1, 2000);
    del_route(f, "sluice:origin:demo");
    test_loop_for(f->base, 1100);
    flights_join(f->e.flights, &p, on_landed, &g);
    wait_for(f, &g, 2, 2000);
    assert_int_equal(g.status[1], 404);
    assert_int_equal(counter(f, EM_ROUTE_LOOKUPS, "held"), 0);
    got_release(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_coalescing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_live_is_404_and_remembered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_playlist_ttl_and_refetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_if_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_origin_404_is_cached_briefly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_origin_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vanished_live_route_is_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vanished_ended_route_is_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_remembered_while_redis_down, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("edge flights", tests, NULL, NULL);
}
