/* The Redis glue against a real redis-server: commands, leases (and their
 * scripts after a SCRIPT FLUSH), pub/sub with resubscription, reconnection
 * after a restart, and the timeouts hiredis 0.14 lacks, against a server that
 * accepts but never answers and one whose backlog is full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>

#include "sluice/redis.h"
#include "testutil.h"

struct fixture {
    struct event_base *base;
    int port;
    pid_t pid;
    struct redis *r;
    int ups, downs;
};

static void on_state(bool up, void *arg)
{
    struct fixture *f = arg;
    if (up)
        f->ups++;
    else
        f->downs++;
}

static struct redis *connect_to(struct fixture *f, int port, int cmd_timeout_ms)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    struct redis_options o = { .url = url, .command_timeout_ms = cmd_timeout_ms,
                               .connect_timeout_ms = 300, .backoff_min_ms = 50,
                               .backoff_max_ms = 200, .max_pending = 2 };
    struct redis *r = redis_new(f->base, NULL, &o);
    assert_non_null(r);
    redis_set_state_cb(r, on_state, f);
    return r;
}

static bool wait_up(struct fixture *f, bool up, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    while (redis_is_up(f->r) != up && clock_mono_ms() < end)
        test_loop_for(f->base, 10);
    return redis_is_up(f->r) == up;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->port = test_free_port();
    f->pid = test_redis_start(f->port);
    f->r = connect_to(f, f->port, 1000);
    assert_true(wait_up(f, true, 2000));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    redis_free(f->r);
    if (f->pid)
        test_redis_stop(f->pid);
    event_base_free(f->base);
    free(f);
    return 0;
}

struct reply {
    bool done;
    char err[128];
    char str[128];
    long long num;
    int type;
};

static void on_reply(const struct redis_reply *rep, const char *err, void *arg)
{
    struct reply *r = arg;
    r->done = true;
    if (err) {
        snprintf(r->err, sizeof(r->err), "%s", err);
        return;
    }
    r->type = redis_reply_type(rep);
    size_t len;
    const char *s = redis_reply_str(rep, &len);
    if (s)
        snprintf(r->str, sizeof(r->str), "%.*s", (int)len, s);
    r->num = redis_reply_int(rep);
}

static struct reply command(struct fixture *f, const char *fmt, const char *a, const char *b)
{
    struct reply r = { 0 };
    assert_int_equal(redis_command(f->r, on_reply, &r, fmt, a, b), 0);
    assert_true(test_loop_until(f->base, &r.done, 3000));
    return r;
}

static void test_commands(void **state)
{
    struct fixture *f = *state;
    struct reply r = command(f, "SET %s %s", "k", "v");
    assert_string_equal(r.str, "OK");
    r = command(f, "GET %s", "k", NULL);
    assert_int_equal(r.type, REDIS_R_STRING);
    assert_string_equal(r.str, "v");
    r = command(f, "INCR %s", "k", NULL);
    assert_string_equal(r.err, "ERR value is not an integer or out of range");
    r = command(f, "GET %s", "missing", NULL);
    assert_int_equal(r.type, REDIS_R_NIL);
}

struct lease {
    bool done;
    enum lease_result res;
    char other[64];
};

static void on_lease(enum lease_result res, const char *other, void *arg)
{
    struct lease *l = arg;
    l->done = true;
    l->res = res;
    snprintf(l->other, sizeof(l->other), "%s", other ? other : "");
}

typedef int (*lease_fn)(struct redis *, const char *, const char *, int64_t,
                        redis_lease_cb, void *);

static struct lease lease(struct fixture *f, lease_fn fn, const char *holder, int64_t ttl)
{
    struct lease l = { 0 };
    assert_int_equal(fn(f->r, "sluice:lease:test", holder, ttl, on_lease, &l), 0);
    assert_true(test_loop_until(f->base, &l.done, 3000));
    return l;
}

static int release(struct redis *r, const char *key, const char *holder, int64_t ttl,
                   redis_lease_cb cb, void *arg)
{
    (void)ttl;
    return redis_lease_release(r, key, holder, cb, arg);
}

static void test_leases(void **state)
{
    struct fixture *f = *state;
    struct lease l = lease(f, redis_lease_acquire, "A", 10000);
    assert_int_equal(l.res, LEASE_HELD);
    l = lease(f, redis_lease_acquire, "A", 10000);          /* again: extends */
    assert_int_equal(l.res, LEASE_HELD);
    l = lease(f, redis_lease_acquire, "B", 10000);
    assert_int_equal(l.res, LEASE_OTHER);
    assert_string_equal(l.other, "A");
    l = lease(f, redis_lease_renew, "B", 10000);            /* only the holder renews */
    assert_int_equal(l.res, LEASE_OTHER);
    l = lease(f, release, "B", 0);                          /* ... or releases */
    assert_int_equal(l.res, LEASE_OTHER);
    l = lease(f, redis_lease_renew, "A", 10000);
    assert_int_equal(l.res, LEASE_HELD);
    l = lease(f, redis_lease_takeover, "B", 10000);         /* takeover displaces A */
    assert_int_equal(l.res, LEASE_HELD);
    assert_string_equal(l.other, "A");
    l = lease(f, redis_lease_renew, "A", 10000);            /* A learns it lost it */
    assert_int_equal(l.res, LEASE_OTHER);
    assert_string_equal(l.other, "B");
    l = lease(f, release, "B", 0);
    assert_int_equal(l.res, LEASE_HELD);
    struct reply r = command(f, "EXISTS %s", "sluice:lease:test", NULL);
    assert_int_equal(r.num, 0);
    l = lease(f, redis_lease_renew, "B", 10000);            /* gone: renew does not revive */
    assert_int_equal(l.res, LEASE_OTHER);
    assert_string_equal(l.other, "");
}

static void test_lease_expires(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(lease(f, redis_lease_acquire, "A", 100).res, LEASE_HELD);
    assert_int_equal(lease(f, redis_lease_acquire, "B", 100).res, LEASE_OTHER);
    test_loop_for(f->base, 250);
    assert_int_equal(lease(f, redis_lease_acquire, "B", 10000).res, LEASE_HELD);
}

/* After a Redis restart (or SCRIPT FLUSH) EVALSHA says NOSCRIPT: the helper
 * must reload the script and still answer right. */
static void test_lease_after_script_flush(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(lease(f, redis_lease_acquire, "A", 10000).res, LEASE_HELD);
    struct reply r = command(f, "SCRIPT FLUSH", NULL, NULL);
    assert_string_equal(r.str, "OK");
    struct lease l = lease(f, redis_lease_acquire, "B", 10000);
    assert_int_equal(l.res, LEASE_OTHER);
    assert_string_equal(l.other, "A");
}

struct sub {
    int subscribed;
    int messages;
    char last[64];
};

static void on_message(const char *channel, const char *msg, size_t len, void *arg)
{
    struct sub *s = arg;
    assert_string_equal(channel, "sluice:events");
    s->messages++;
    snprintf(s->last, sizeof(s->last), "%.*s", (int)len, msg);
}

static void on_subscribed(void *arg)
{
    ((struct sub *)arg)->subscribed++;
}

static void publish_until_seen(struct fixture *f, struct sub *s, const char *msg)
{
    int before = s->messages;
    for (int i = 0; i < 100 && s->messages == before; i++) {
        command(f, "PUBLISH %s %s", "sluice:events", msg);
        test_loop_for(f->base, 20);
    }
    assert_string_equal(s->last, msg);
}

static void test_pubsub_and_restart(void **state)
{
    struct fixture *f = *state;
    struct sub s = { 0 };
    assert_int_equal(redis_subscribe(f->r, "sluice:events", on_message, on_subscribed, &s), 0);
    int64_t end = clock_mono_ms() + 2000;
    while (s.subscribed == 0 && clock_mono_ms() < end)
        test_loop_for(f->base, 10);
    assert_int_equal(s.subscribed, 1);
    publish_until_seen(f, &s, "{\"type\":\"stream.start\"}");

    /* Redis goes away: commands fail at once, the state callback says down */
    test_redis_stop(f->pid);
    f->pid = 0;
    assert_true(wait_up(f, false, 3000));
    assert_int_equal(f->downs, 1);
    struct reply r = { 0 };
    assert_int_equal(redis_command(f->r, on_reply, &r, "PING"), -1);

    /* ... and comes back on the same port: reconnect, resubscribe, reload */
    f->pid = test_redis_start(f->port);
    assert_true(wait_up(f, true, 3000));
    assert_int_equal(f->ups, 2);   /* the first connection, and this one */
    end = clock_mono_ms() + 3000;
    while (s.subscribed < 2 && clock_mono_ms() < end)
        test_loop_for(f->base, 10);
    assert_int_equal(s.subscribed, 2);
    publish_until_seen(f, &s, "{\"type\":\"stream.stop\"}");
    assert_int_equal(lease(f, redis_lease_acquire, "A", 1000).res, LEASE_HELD);
}

/* A listener that completes the TCP handshake (the kernel does that) but never
 * reads or answers: hiredis alone would wait forever. */
static int black_hole(int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    return fd;
}

static int fd_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

static void test_command_timeout_and_pending_cap(void **state)
{
    struct fixture *f = *state;
    int hole = black_hole(16);
    redis_free(f->r);
    f->r = connect_to(f, fd_port(hole), 300);
    assert_true(wait_up(f, true, 2000));   /* connected: nothing to authenticate */
    struct reply a = { 0 }, b = { 0 }, c = { 0 };
    assert_int_equal(redis_command(f->r, on_reply, &a, "GET %s", "x"), 0);
    assert_int_equal(redis_command(f->r, on_reply, &b, "GET %s", "y"), 0);
    assert_int_equal(redis_command(f->r, on_reply, &c, "GET %s", "z"), -1);   /* cap: 2 */
    int64_t t0 = clock_mono_ms();
    assert_true(test_loop_until(f->base, &a.done, 3000));
    assert_true(clock_mono_ms() - t0 < 1500);
    assert_string_equal(a.err, "timeout");
    test_loop_for(f->base, 20);
    assert_true(b.done);                   /* the connection was dropped with it */
    assert_string_equal(b.err, "disconnected");
    assert_true(f->downs >= 1);
    assert_int_equal(redis_pending(f->r), 0);
    redis_free(f->r);
    f->r = NULL;
    close(hole);
}

static void test_connect_timeout(void **state)
{
    struct fixture *f = *state;
    /* fill a backlog of one so that further SYNs go unanswered */
    int hole = black_hole(0);
    int port = fd_port(hole);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(50000);
    redis_free(f->r);
    f->r = connect_to(f, port, 300);
    test_loop_for(f->base, 1200);          /* several 300 ms connect timeouts */
    assert_false(redis_is_up(f->r));
    struct reply r = { 0 };
    assert_int_equal(redis_command(f->r, on_reply, &r, "PING"), -1);
    /* while down, pending work is nil and freeing is clean */
    assert_int_equal(redis_pending(f->r), 0);
    redis_free(f->r);
    f->r = NULL;
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(hole);
}

static void test_cancel_on_free(void **state)
{
    struct fixture *f = *state;
    struct reply r = { 0 };
    assert_int_equal(redis_command(f->r, on_reply, &r, "BLPOP %s %s", "nothing", "5"), 0);
    redis_free(f->r);
    f->r = NULL;
    assert_true(r.done);
    assert_string_equal(r.err, "cancelled");
}

/* What redis_new(<url>) writes to stderr, into <out>; returns what it made. */
static struct redis *new_capturing_log(struct fixture *f, const char *url, char *out,
                                       size_t outlen)
{
    char path[] = "/tmp/test_redis_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    struct redis_options o = { .url = url };
    struct redis *r = redis_new(f->base, NULL, &o);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return r;
}

static void test_bad_urls(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = { "http://x", "redis://", "redis://:6379", "redis://h:99999",
                                       "redis://h:1/notadb", "redis://nocolon@h",
                                       "redis://:bad%zzpass@h", "redis://:nul%00@h",
                                       "redis://:hunter2@127.0.0.1:6379/notadb" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char log[1024];
        assert_null(new_capturing_log(f, bad[i], log, sizeof(log)));
        assert_non_null(strstr(log, "bad URL"));
        /* a URL refused for a typo does not put its password in the log */
        assert_null(strstr(log, "hunter2"));
        assert_null(strstr(log, "bad%zz"));
    }
}

/* user info is percent-decoded: a password holding '@', ':' and '/' */
static void test_encoded_password(void **state)
{
    struct fixture *f = *state;
    struct reply r = command(f, "CONFIG SET requirepass %s", "p@ss:w/rd", NULL);
    assert_string_equal(r.str, "OK");
    char url[96];
    snprintf(url, sizeof(url), "redis://:p%%40ss%%3Aw%%2Frd@127.0.0.1:%d", f->port);
    struct redis_options o = { .url = url, .connect_timeout_ms = 300 };
    struct redis *authed = redis_new(f->base, NULL, &o);
    assert_non_null(authed);
    struct redis *plain = f->r;
    f->r = authed;
    assert_true(wait_up(f, true, 3000));
    r = command(f, "SET %s %s", "authed", "yes");
    assert_string_equal(r.str, "OK");
    f->r = plain;
    redis_free(authed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_after_script_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pubsub_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_timeout_and_pending_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_on_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoded_password, setup, teardown),
    };
    return cmocka_run_group_tests_name("redis", tests, NULL, NULL);
}
