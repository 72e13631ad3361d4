/* Metrics: series with labels, histograms, escaping, and an exposition that
 * Prometheus's own checker (promtool check metrics) accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "sluice/metrics.h"

enum { M_STREAMS, M_BYTES, M_LATENCY, M_CONN_RTT, M_COUNT };
static const double latency_buckets[] = { 0.1, 0.5, 1 };
static const struct metric_def defs[] = {
    { "sluice_test_streams", METRIC_GAUGE, "Live streams" },
    { "sluice_test_bytes_total", METRIC_COUNTER, "Bytes received", { "stream", "proto" } },
    { "sluice_test_latency_seconds", METRIC_HISTOGRAM, "Latency", { "stream" },
      latency_buckets, 3 },
    { "sluice_test_connection_rtt_seconds", METRIC_GAUGE, "RTT", { "id" } },
    { NULL },
};

static char *render(struct metrics *m)
{
    struct evbuffer *out = evbuffer_new();
    metrics_render(m, out);
    size_t len = evbuffer_get_length(out);
    char *text = malloc(len + 1);
    evbuffer_remove(out, text, len);
    text[len] = '\0';
    evbuffer_free(out);
    return text;
}

static void on_collect(void *arg)
{
    metric_set(arg, 42);
}

static void test_exposition(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metric *f[M_COUNT];
    assert_int_equal(metrics_register(m, defs, f), 0);
    metrics_on_collect(m, on_collect, metric_at(f[M_STREAMS]));
    struct metric_series *a = metric_at(f[M_BYTES], "cam1", "srt");
    metric_add(a, 100);
    metric_add(metric_at(f[M_BYTES], "cam1", "srt"), 50);   /* same series */
    metric_add(metric_at(f[M_BYTES], "we\"ird\\\nname", "rtmp"), 1);
    metric_observe(metric_at(f[M_LATENCY], "cam1"), 0.05);
    metric_observe(metric_at(f[M_LATENCY], "cam1"), 0.7);
    metric_observe(metric_at(f[M_LATENCY], "cam1"), 3);
    metric_set(metric_at(f[M_CONN_RTT], "17"), 0.012);

    char *text = render(m);
    assert_non_null(strstr(text, "# TYPE sluice_test_streams gauge\nsluice_test_streams 42\n"));
    assert_non_null(strstr(text, "sluice_test_bytes_total{stream=\"cam1\",proto=\"srt\"} 150\n"));
    assert_non_null(strstr(text, "{stream=\"we\\\"ird\\\\\\nname\",proto=\"rtmp\"} 1\n"));
    assert_non_null(strstr(text, "sluice_test_latency_seconds_bucket{stream=\"cam1\",le=\"0.1\"} 1\n"));
    assert_non_null(strstr(text, "sluice_test_latency_seconds_bucket{stream=\"cam1\",le=\"1\"} 2\n"));
    assert_non_null(strstr(text, "sluice_test_latency_seconds_bucket{stream=\"cam1\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "sluice_test_latency_seconds_count{stream=\"cam1\"} 3\n"));
    assert_non_null(strstr(text, "sluice_test_latency_seconds_sum{stream=\"cam1\"} 3.75"));
    assert_non_null(strstr(text, "sluice_test_connection_rtt_seconds{id=\"17\"} 0.012"));

    /* a connection's series go away with it */
    metric_remove(metric_at(f[M_CONN_RTT], "17"));
    free(text);
    text = render(m);
    assert_null(strstr(text, "id=\"17\""));
    free(text);

    /* the same table again gives the same handles; another with a taken name fails */
    struct metric *again[M_COUNT];
    assert_int_equal(metrics_register(m, defs, again), 0);
    assert_ptr_equal(again[M_BYTES], f[M_BYTES]);
    const struct metric_def clash[] = { { "sluice_test_streams", METRIC_COUNTER, "x" }, { 0 } };
    assert_int_equal(metrics_register(m, clash, NULL), -1);
    metrics_free(m);
}

/* promtool is Prometheus's own parser: if it accepts our text, so will a scrape. */
static void test_promtool_accepts_it(void **state)
{
    (void)state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIPPED: promtool not installed (Debian package prometheus)\n");
        skip();
    }
    struct metrics *m = metrics_new();
    struct metric *f[M_COUNT];
    metrics_register(m, defs, f);
    metric_set(metric_at(f[M_STREAMS]), 3);
    metric_add(metric_at(f[M_BYTES], "cam1", "srt"), 1e12);
    metric_add(metric_at(f[M_BYTES], "odd \"name\"", "rtmp"), 0.5);
    metric_observe(metric_at(f[M_LATENCY], "cam1"), 0.2);
    metric_set(metric_at(f[M_CONN_RTT], "1"), 0.001);
    char *text = render(m);
    char path[] = "/tmp/sluice-metrics-XXXXXX";
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    free(text);
    metrics_free(m);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exposition),
        cmocka_unit_test(test_promtool_accepts_it),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
