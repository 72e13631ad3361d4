/* A lease kept by its holder (libcommon/leasekeep.c) against a real
 * redis-server: taking, takeover, refusal, renewal past the TTL, loss to
 * another holder, re-taking after a Redis restart, release, and freeing with
 * a command in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/event.h>

#include "sluice/leasekeep.h"
#include "sluice/redis.h"
#include "testutil.h"

#define KEY "sluice:lease:publish:cam1"

struct fixture {
    struct event_base *base;
    int port;
    pid_t pid;
    struct redis *r;
    struct leasekeep *l;          /* forwarded Redis state goes here */
};

struct seen {
    int held, refused, lost, released;
    char other[128];
    bool any;
};

static void on_lease(enum leasekeep_event ev, const char *other, void *arg)
{
    struct seen *s = arg;
    s->any = true;
    snprintf(s->other, sizeof(s->other), "%s", other ? other : "");
    switch (ev) {
    case LK_HELD: s->held++; break;
    case LK_REFUSED: s->refused++; break;
    case LK_LOST: s->lost++; break;
    case LK_RELEASED: s->released++; break;
    }
}

static void on_state(bool up, void *arg)
{
    struct fixture *f = arg;
    if (f->l != NULL)
        leasekeep_redis_state(f->l, up);
}

static struct redis *connect_to(struct fixture *f)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", f->port);
    struct redis_options o = { .url = url, .command_timeout_ms = 1000,
                               .connect_timeout_ms = 300, .backoff_min_ms = 50,
                               .backoff_max_ms = 100 };
    struct redis *r = redis_new(f->base, NULL, &o);
    assert_non_null(r);
    redis_set_state_cb(r, on_state, f);
    return r;
}

static bool wait_up(struct fixture *f)
{
    int64_t end = clock_mono_ms() + 3000;
    while (!redis_is_up(f->r) && clock_mono_ms() < end)
        test_loop_for(f->base, 10);
    return redis_is_up(f->r);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->port = test_free_port();
    f->pid = test_redis_start(f->port);
    f->r = connect_to(f);
    assert_true(wait_up(f));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    leasekeep_free(f->l);
    redis_free(f->r);
    if (f->pid)
        test_redis_stop(f->pid);
    event_base_free(f->base);
    free(f);
    return 0;
}

struct reply {
    bool done;
    char str[128];
    long long num;
};

static void on_reply(const struct redis_reply *rep, const char *err, void *arg)
{
    struct reply *r = arg;
    r->done = true;
    size_t len;
    const char *s = err ? NULL : redis_reply_str(rep, &len);
    if (s)
        snprintf(r->str, sizeof(r->str), "%.*s", (int)len, s);
    if (!err)
        r->num = redis_reply_int(rep);
}

static struct reply command(struct fixture *f, const char *fmt, const char *a, const char *b)
{
    struct reply r = { 0 };
    assert_int_equal(redis_command(f->r, on_reply, &r, fmt, a, b), 0);
    assert_true(test_loop_until(f->base, &r.done, 3000));
    return r;
}

static struct leasekeep *start(struct fixture *f, const char *holder, bool takeover,
                               int64_t ttl, struct seen *s)
{
    struct leasekeep_options o = { .key = KEY, .holder = holder, .ttl_ms = ttl,
                                   .takeover = takeover, .retry_ms = 50 };
    f->l = leasekeep_start(f->base, f->r, &o, on_lease, s);
    assert_non_null(f->l);
    return f->l;
}

static void release(struct fixture *f, struct seen *s)
{
    leasekeep_release(f->l);
    assert_int_equal(s->released, 0);               /* never from inside the call */
    while (s->released == 0)
        test_loop_for(f->base, 5);
    leasekeep_free(f->l);
    f->l = NULL;
}

static void test_take_renew_release(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    start(f, "ingest-1/a", false, 600, &s);
    assert_true(test_loop_until(f->base, &s.any, 2000));
    assert_int_equal(s.held, 1);
    assert_true(leasekeep_held(f->l));
    test_loop_for(f->base, 1000);                   /* past the TTL: renewed meanwhile */
    assert_string_equal(command(f, "GET %s", KEY, NULL).str, "ingest-1/a");
    assert_true(command(f, "PTTL %s", KEY, NULL).num > 0);
    release(f, &s);
    assert_int_equal(command(f, "EXISTS %s", KEY, NULL).num, 0);
}

static void test_refused_then_taken_over(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    command(f, "SET %s %s PX 30000", KEY, "ingest-2/b");
    start(f, "ingest-1/a", false, 1000, &s);
    assert_true(test_loop_until(f->base, &s.any, 2000));
    assert_int_equal(s.refused, 1);
    assert_string_equal(s.other, "ingest-2/b");
    leasekeep_free(f->l);
    memset(&s, 0, sizeof(s));
    start(f, "ingest-1/c", true, 1000, &s);
    assert_true(test_loop_until(f->base, &s.any, 2000));
    assert_int_equal(s.held, 1);
    assert_string_equal(s.other, "ingest-2/b");     /* who was displaced */
    assert_string_equal(command(f, "GET %s", KEY, NULL).str, "ingest-1/c");
    release(f, &s);
}

static void test_lost_to_another(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    start(f, "ingest-1/a", true, 600, &s);
    assert_true(test_loop_until(f->base, &s.any, 2000));
    s.any = false;
    command(f, "SET %s %s PX 30000", KEY, "ingest-9/z");   /* a takeover elsewhere */
    assert_true(test_loop_until(f->base, &s.any, 1500));   /* within a renewal */
    assert_int_equal(s.lost, 1);
    assert_string_equal(s.other, "ingest-9/z");
    assert_false(leasekeep_held(f->l));
    release(f, &s);                                  /* not ours: left alone */
    assert_string_equal(command(f, "GET %s", KEY, NULL).str, "ingest-9/z");
}

static void test_taken_again_after_redis_restart(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    start(f, "ingest-1/a", false, 600, &s);
    assert_true(test_loop_until(f->base, &s.any, 2000));
    test_redis_stop(f->pid);                         /* the lease goes with it */
    test_loop_for(f->base, 800);                     /* the holder works on meanwhile */
    assert_int_equal(s.lost + s.refused, 0);
    f->pid = test_redis_start(f->port);
    assert_true(wait_up(f));
    int64_t end = clock_mono_ms() + 2000;
    struct reply r = { 0 };
    while (clock_mono_ms() < end && strcmp((r = command(f, "GET %s", KEY, NULL)).str,
                                           "ingest-1/a") != 0)
        test_loop_for(f->base, 20);
    assert_string_equal(r.str, "ingest-1/a");
    assert_int_equal(s.held, 1);
    assert_int_equal(s.lost, 0);
    release(f, &s);
}

static void test_wait_bound_and_free_in_flight(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    test_redis_stop(f->pid);
    f->pid = 0;
    assert_true(test_loop_until(f->base, &(bool){ false }, 200) == false);
    struct leasekeep_options o = { .key = KEY, .holder = "h", .ttl_ms = 1000,
                                   .wait_ms = 300, .retry_ms = 50 };
    f->l = leasekeep_start(f->base, f->r, &o, on_lease, &s);
    assert_true(test_loop_until(f->base, &s.any, 2000));
    assert_int_equal(s.refused, 1);
    assert_string_equal(s.other, "");                /* nobody: Redis did not answer */
    leasekeep_free(f->l);
    f->l = NULL;
    /* a lease freed while its command is in flight: the reply finds nobody */
    f->pid = test_redis_start(f->port);
    assert_true(wait_up(f));
    memset(&s, 0, sizeof(s));
    start(f, "h2", false, 1000, &s);
    leasekeep_free(f->l);
    f->l = NULL;
    test_loop_for(f->base, 200);
    assert_false(s.any);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_take_renew_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_taken_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_to_another, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_again_after_redis_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_bound_and_free_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
