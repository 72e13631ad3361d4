/* Daemon lifecycle, in a forked child as a real daemon would run: the admin
 * port answers, SIGTERM drains then exits, a hook that never finishes is cut
 * off at the shutdown timeout, SIGHUP reopens a rotated log file, and a bad
 * configuration exits 1 with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>

#include "sluice/admin.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "testutil.h"

struct conf {
    char *admin_listen;
    int64_t drain_ms;    /* how long the stop hook holds; -1 = forever */
};

static const struct config_opt opts[] = {
    { "admin-listen", CONF_STR, offsetof(struct conf, admin_listen), "127.0.0.1:0", 1 },
    { "drain", CONF_INT, offsetof(struct conf, drain_ms), "0", -1, 60000 },
    { NULL },
};

struct app {
    struct daemon *d;
    struct conf *c;
    struct event *drain_timer;
};

static void drained(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *a = arg;
    log_info("test: drained");
    daemon_release(a->d);
}

static void on_stop(void *arg)
{
    struct app *a = arg;
    if (a->c->drain_ms == 0)
        return;
    daemon_hold(a->d);
    if (a->c->drain_ms > 0) {
        struct timeval tv = clock_tv_ms(a->c->drain_ms);
        evtimer_add(a->drain_timer, &tv);
    }
}

/* The child: a minimal daemon. */
static int child_main(int argc, char **argv)
{
    struct conf c = { 0 };
    int rc;
    struct daemon *d = daemon_new("test", opts, &c, argc, argv, &rc);
    if (d == NULL)
        return rc;
    struct app a = { .d = d, .c = &c };
    a.drain_timer = evtimer_new(d->base, drained, &a);
    char *err = NULL;
    if (admin_start(d, c.admin_listen, NULL, NULL, &err) == NULL) {
        fprintf(stderr, "admin: %s\n", err);
        return 1;
    }
    daemon_on_stop(d, on_stop, &a);
    daemon_run(d);
    if (a.drain_timer)
        event_free(a.drain_timer);
    return daemon_free(d, opts, &c);
}

static pid_t spawn(const char *const *args, const char *logfile)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[16] = { "sluice-test" };
        int argc = 1;
        for (; args && args[argc - 1]; argc++)
            argv[argc] = (char *)args[argc - 1];
        if (logfile)
            setenv("SLUICE_LOG_FILE", logfile, 1);
        _exit(child_main(argc, argv));
    }
    return pid;
}

/* Waits for <pid> up to <ms>; returns its exit status, or -1 on timeout. */
static int wait_exit(pid_t pid, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    int status;
    while (clock_mono_ms() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* GET <path> on 127.0.0.1:<port>; returns the status code, or 0. */
static int http_get(int port, const char *path, char *body, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
        close(fd);
        return 0;
    }
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return 0;
    }
    size_t got = 0;
    ssize_t n;
    while (got + 1 < len && (n = read(fd, body + got, len - got - 1)) > 0)
        got += (size_t)n;
    body[got] = '\0';
    close(fd);
    int status = 0;
    sscanf(body, "HTTP/1.%*d %d", &status);
    return status;
}

static int wait_healthy(int port)
{
    char body[4096];
    for (int i = 0; i < 300; i++) {
        if (http_get(port, "/healthz", body, sizeof(body)) == 200)
            return 0;
        usleep(10000);
    }
    return -1;
}

static void test_admin_and_graceful_stop(void **state)
{
    (void)state;
    int port = test_free_port();
    char listen[32];
    snprintf(listen, sizeof(listen), "--admin-listen=127.0.0.1:%d", port);
    const char *args[] = { listen, "--drain=300", NULL };
    pid_t pid = spawn(args, NULL);
    assert_int_equal(wait_healthy(port), 0);
    char body[8192];
    assert_int_equal(http_get(port, "/readyz", body, sizeof(body)), 200);
    assert_non_null(strstr(body, "\"ready\":true"));
    assert_int_equal(http_get(port, "/metrics", body, sizeof(body)), 200);
    assert_non_null(strstr(body, "text/plain; version=0.0.4"));
    assert_non_null(strstr(body, "sluice_http_requests_total{server=\"admin\""));
    assert_int_equal(http_get(port, "/nope", body, sizeof(body)), 404);

    int64_t t0 = clock_mono_ms();
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 5000), 0);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 250);    /* it waited for the drain ... */
    assert_true(took < 3000);    /* ... and no longer */
}

static void test_drain_deadline(void **state)
{
    (void)state;
    int port = test_free_port();
    char listen[32];
    snprintf(listen, sizeof(listen), "--admin-listen=127.0.0.1:%d", port);
    const char *args[] = { listen, "--drain=-1", "--shutdown-timeout=400ms", NULL };
    pid_t pid = spawn(args, NULL);
    assert_int_equal(wait_healthy(port), 0);
    int64_t t0 = clock_mono_ms();
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 5000), 0);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 350 && took < 3000);
}

static void test_second_signal_exits_at_once(void **state)
{
    (void)state;
    int port = test_free_port();
    char listen[32];
    snprintf(listen, sizeof(listen), "--admin-listen=127.0.0.1:%d", port);
    const char *args[] = { listen, "--drain=-1", "--shutdown-timeout=30s", NULL };
    pid_t pid = spawn(args, NULL);
    assert_int_equal(wait_healthy(port), 0);
    kill(pid, SIGTERM);
    usleep(100000);
    int64_t t0 = clock_mono_ms();
    kill(pid, SIGINT);
    assert_int_equal(wait_exit(pid, 5000), 0);
    assert_true(clock_mono_ms() - t0 < 2000);
}

static void test_sighup_reopens_log(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-log-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char log[64], rotated[64];
    snprintf(log, sizeof(log), "%s/test.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/test.log.1", dir);
    int port = test_free_port();
    char listen[32];
    snprintf(listen, sizeof(listen), "--admin-listen=127.0.0.1:%d", port);
    const char *args[] = { listen, NULL };
    pid_t pid = spawn(args, log);
    assert_int_equal(wait_healthy(port), 0);
    assert_int_equal(rename(log, rotated), 0);
    kill(pid, SIGHUP);
    usleep(200000);
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 5000), 0);
    char buf[4096] = "";
    FILE *f = fopen(log, "r");
    assert_non_null(f);   /* the new file exists ... */
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "shutdown: stopping"));   /* ... and got the later lines */
    unlink(log);
    unlink(rotated);
    rmdir(dir);
}

static void test_bad_config_exits_1(void **state)
{
    (void)state;
    const char *args[] = { "--drain=soon", NULL };
    int saved = dup(2);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    pid_t pid = spawn(args, NULL);
    int rc = wait_exit(pid, 5000);
    dup2(saved, 2);
    close(devnull);
    close(saved);
    assert_int_equal(rc, 1);
    const char *help[] = { "--help", NULL };
    int out = dup(1);
    devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    pid = spawn(help, NULL);
    rc = wait_exit(pid, 5000);
    dup2(out, 1);
    close(devnull);
    close(out);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admin_and_graceful_stop),
        cmocka_unit_test(test_drain_deadline),
        cmocka_unit_test(test_second_signal_exits_at_once),
        cmocka_unit_test(test_sighup_reopens_log),
        cmocka_unit_test(test_bad_config_exits_1),
    };
    return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
