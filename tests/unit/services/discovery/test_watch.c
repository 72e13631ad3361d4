/* discovery's directory watching, driven directly: the scan at start, stream
 * directories coming and going, and the rescan an inotify queue overflow
 * triggers (which cannot be provoked from outside without lowering the
 * system-wide fs.inotify.max_queued_events). Includes watch.c to reach
 * on_event(). Redis is left unreachable: only the watching is under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>

#include "../../../../services/discovery/watch.c"
#include "sluice/redis.h"
#include "testutil.h"

struct fixture {
    char dir[64];
    struct daemon *d;
    struct discovery_config cfg;
    struct discovery ds;
};

static void put(const char *dir, const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mk(const char *dir, const char *rel)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-watch-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    put(f->dir, "origin.json", "{\"url\": \"http://127.0.0.1:8080\"}");
    mk(f->dir, "live");
    mk(f->dir, "live/a");
    mk(f->dir, "live/b");
    mk(f->dir, "live/not.valid");
    put(f->dir, "live/a/index.m3u8", "#EXTM3U\n");
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", test_free_port());
    setenv("SLUICE_REDIS_URL", url, 1);
    setenv("SLUICE_LOG_LEVEL", "warn", 1);
    char *argv[] = { "test_watch", NULL };
    int rc;
    f->d = daemon_new("discovery", NULL, NULL, 1, argv, &rc);
    assert_non_null(f->d);
    f->cfg = (struct discovery_config){ .dir = f->dir, .ttl_ms = 10000, .retry_ms = 100 };
    f->ds = (struct discovery){ .d = f->d, .cfg = &f->cfg, .ifd = -1 };
    struct redis_options ro = { .url = url, .connect_timeout_ms = 100 };
    f->ds.redis = redis_new(f->d->base, NULL, &ro);
    assert_int_equal(publish_start(&f->ds), 0);
    assert_int_equal(watch_start(&f->ds), 0);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    redis_free(f->ds.redis);
    watch_stop(&f->ds);
    publish_stop(&f->ds);
    daemon_free(f->d, NULL, NULL);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static bool watching(struct fixture *f, const char *name)
{
    return stream_by_name(&f->ds, name) != NULL;
}

static void test_scan_at_start(void **state)
{
    struct fixture *f = *state;
    assert_true(f->ds.origin_ok);
    assert_string_equal(f->ds.origin.url, "http://127.0.0.1:8080");
    assert_int_equal(f->ds.nstreams, 2);
    assert_true(watching(f, "a"));
    assert_true(watching(f, "b"));
    assert_int_equal(f->ds.ninvalid, 1);
    assert_string_equal(f->ds.dir_err, "");
}

static void test_directories_come_and_go(void **state)
{
    struct fixture *f = *state;
    mk(f->dir, "live/c");
    test_loop_for(f->d->base, 50);
    assert_true(watching(f, "c"));
    char path[256];
    snprintf(path, sizeof(path), "%s/live/c", f->dir);
    assert_int_equal(rmdir(path), 0);
    test_loop_for(f->d->base, 50);
    assert_false(watching(f, "c"));
    assert_int_equal(f->ds.nstreams, 2);
    /* live/ itself removed and made again */
    nftw(path, rm_one, 4, FTW_DEPTH | FTW_PHYS);
    snprintf(path, sizeof(path), "%s/live", f->dir);
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    test_loop_for(f->d->base, 50);
    assert_int_equal(f->ds.nstreams, 0);
    mk(f->dir, "live");
    mk(f->dir, "live/d");
    test_loop_for(f->d->base, 50);
    assert_true(watching(f, "d"));
}

static void test_overflow_rescans(void **state)
{
    struct fixture *f = *state;
    /* lose track of b, as if its events had been dropped */
    struct stream_dir *b = stream_by_name(&f->ds, "b");
    inotify_rm_watch(f->ds.ifd, b->wd);
    stream_forget(&f->ds, b);
    assert_false(watching(f, "b"));
    struct inotify_event ev = { .wd = -1, .mask = IN_Q_OVERFLOW };
    on_event(&f->ds, &ev);
    assert_true(watching(f, "b"));
    assert_int_equal(f->ds.nstreams, 2);
    test_loop_for(f->d->base, 50);     /* the stale IN_IGNORED changes nothing */
    assert_int_equal(f->ds.nstreams, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directories_come_and_go, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_rescans, setup, teardown),
    };
    return cmocka_run_group_tests_name("discovery watch", tests, NULL, NULL);
}
