/* The edge's memory: the hash table, reference-counted bodies (sent by
 * reference, freed by the last reader), the LRU cache bounded in bytes with
 * freshness and stale bounds, and the viewer counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "../../../../services/edge/body.h"
#include "../../../../services/edge/cache.h"
#include "../../../../services/edge/table.h"
#include "../../../../services/edge/viewers.h"
#include "sluice/metrics.h"
#include "sluice/refbuf.h"

/* ---- table ---------------------------------------------------------------- */

struct item {
    struct table_node node;
    char key[16];
};

static void test_table(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct table t;
    table_init(&t);
    assert_null(table_find(&t, "x", 1));
    struct item *items = calloc(N, sizeof(*items));
    for (int i = 0; i < N; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
        assert_int_equal(table_insert(&t, &items[i].node, items[i].key,
                                      strlen(items[i].key)), 0);
    }
    assert_int_equal(t.count, N);
    for (int i = 0; i < N; i += 7) {
        struct table_node *n = table_find(&t, items[i].key, strlen(items[i].key));
        assert_ptr_equal(n, &items[i].node);
        assert_ptr_equal(container_of(n, struct item, node), &items[i]);
    }
    assert_null(table_find(&t, "k", 1));
    assert_null(table_find(&t, "k50000", 6));
    /* iteration sees every node once, and tolerates removing the current one */
    struct table_iter it;
    table_iter_init(&t, &it);
    int seen = 0;
    for (struct table_node *n; (n = table_iter_next(&it)) != NULL; seen++) {
        struct item *x = container_of(n, struct item, node);
        if (atoi(x->key + 1) % 2 == 0)
            table_remove(&t, n);
    }
    assert_int_equal(seen, N);
    assert_int_equal(t.count, N / 2);
    assert_null(table_find(&t, "k2", 2));
    assert_non_null(table_find(&t, "k3", 2));
    table_release(&t);
    free(items);
    /* the hash is keyed but deterministic within a process */
    assert_true(table_hash("abc", 3) == table_hash("abc", 3));
    assert_true(table_hash("abc", 3) != table_hash("abd", 3));
}

/* ---- bodies --------------------------------------------------------------- */

static struct body *text_body(const char *s)
{
    struct body *b = body_new(200, strlen(s));
    memcpy(b->buf.data, s, strlen(s));
    return b;
}

/* A body is one block: the edge's fields, then the bytes every reply points
 * at (the references themselves are test_refbuf's). */
static void test_body_by_reference(void **state)
{
    (void)state;
    uint64_t count0 = refbuf_live_count(), bytes0 = refbuf_live_bytes();
    struct body *b = text_body("0123456789");
    assert_ptr_equal(b->buf.data, (uint8_t *)b + sizeof(*b));
    assert_int_equal(refbuf_live_count(), count0 + 1);
    assert_int_equal(refbuf_live_bytes(), bytes0 + 10);   /* the body's bytes only */
    struct evbuffer *a = evbuffer_new();
    assert_int_equal(refbuf_add_to(&b->buf, a, 2, 3), 0);
    assert_ptr_equal(evbuffer_pullup(a, 3), b->buf.data + 2);   /* no copy */
    body_unref(b);                   /* the cache lets go first... */
    assert_int_equal(b->status, 200);   /* ...the reader keeps the whole body */
    evbuffer_free(a);
    assert_int_equal(refbuf_sends(), 0);
    assert_int_equal(refbuf_live_count(), count0);
    assert_int_equal(refbuf_live_bytes(), bytes0);
}

static void test_body_tags(void **state)
{
    (void)state;
    struct evbuffer *src = evbuffer_new();
    evbuffer_add(src, "abc", 3);
    struct body *b = body_from_evbuffer(200, src);
    assert_int_equal(evbuffer_get_length(src), 3);   /* not drained */
    assert_int_equal(b->buf.len, 3);
    assert_memory_equal(b->buf.data, "abc", 3);
    body_set_etag(b, "\"v1\"");
    body_set_last_modified(b, "bad\nvalue");
    assert_string_equal(b->etag, "\"v1\"");
    assert_string_equal(b->last_modified, "");
    char longtag[BODY_TAG_MAX + 1];
    memset(longtag, 'x', BODY_TAG_MAX);
    longtag[BODY_TAG_MAX] = '\0';
    body_set_etag(b, longtag);
    assert_string_equal(b->etag, "\"v1\"");
    body_set_etag(b, NULL);
    assert_string_equal(b->etag, "\"v1\"");
    body_unref(b);
    evbuffer_free(src);
}

/* ---- cache ---------------------------------------------------------------- */

static struct body *sized(size_t len)
{
    struct body *b = body_new(200, len);
    memset(b->buf.data, 'x', len);
    return b;
}

static int put(struct cache *c, const char *key, size_t len, int64_t fresh, int64_t stale,
               int64_t now)
{
    struct body *b = sized(len);
    int rc = cache_put(c, key, strlen(key), b, fresh, stale, now);
    body_unref(b);
    return rc;
}

static bool has(struct cache *c, const char *key, int64_t now)
{
    return cache_get(c, key, strlen(key), now) != NULL;
}

static void test_cache_lru_by_bytes(void **state)
{
    (void)state;
    size_t unit = 1000 + CACHE_ENTRY_OVERHEAD + 6;   /* a 1000-byte body under "/x/s0N" */
    struct cache *c = cache_new(3 * unit);
    assert_int_equal(put(c, "/x/s01", 1000, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    assert_int_equal(put(c, "/x/s02", 1000, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    assert_int_equal(put(c, "/x/s03", 1000, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    struct cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.bytes, 3 * unit);
    assert_int_equal(st.entries, 3);
    assert_true(has(c, "/x/s01", 0));     /* s01 is now the most recent */
    assert_int_equal(put(c, "/x/s04", 1000, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    assert_false(has(c, "/x/s02", 0));    /* the least recent went */
    assert_true(has(c, "/x/s01", 0));
    assert_true(has(c, "/x/s03", 0));
    assert_true(has(c, "/x/s04", 0));
    /* one big object pushes out as many as it needs */
    assert_int_equal(put(c, "/x/s05", 2000, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    cache_get_stats(c, &st);
    assert_true(st.bytes <= st.capacity);
    assert_int_equal(st.entries, 2);
    assert_true(has(c, "/x/s05", 0));
    assert_true(has(c, "/x/s04", 0));
    assert_int_equal(st.evictions, 3);
    /* an object larger than the whole cache is refused, and leaves no entry */
    assert_int_equal(put(c, "/x/s04", 4 * unit, CACHE_FOREVER, CACHE_FOREVER, 0), -1);
    assert_false(has(c, "/x/s04", 0));
    /* replacing an entry does not count it twice */
    assert_int_equal(put(c, "/x/s05", 10, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    assert_int_equal(put(c, "/x/s05", 10, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    cache_get_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, 10 + 6 + CACHE_ENTRY_OVERHEAD);
    cache_remove(c, "/x/s05", 6);
    cache_get_stats(c, &st);
    assert_int_equal(st.bytes, 0);
    cache_free(c);
}

static void test_cache_freshness(void **state)
{
    (void)state;
    struct cache *c = cache_new(1 << 20);
    assert_int_equal(put(c, "/p", 10, 500, 2000, 0), 0);
    struct cache_entry *e = cache_get(c, "/p", 2, 100);
    assert_non_null(e);
    assert_true(cache_fresh(e, 100));
    e = cache_get(c, "/p", 2, 600);
    assert_non_null(e);                   /* stale, still there for stale-if-error */
    assert_false(cache_fresh(e, 600));
    assert_null(cache_get(c, "/p", 2, 2000));   /* past the stale bound: gone */
    /* sweep drops what is past its bound, keeps the rest */
    assert_int_equal(put(c, "/a", 10, 500, 500, 0), 0);
    assert_int_equal(put(c, "/b", 10, 500, 5000, 0), 0);
    assert_int_equal(put(c, "/s", 10, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    assert_int_equal(cache_sweep(c, 1000), 1);
    assert_false(has(c, "/a", 1000));
    assert_true(has(c, "/b", 1000));
    assert_true(has(c, "/s", INT64_MAX - 1));
    /* a stale bound before the freshness is raised to it */
    assert_int_equal(put(c, "/q", 10, 800, 100, 0), 0);
    assert_true(has(c, "/q", 700));
    struct cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.expirations, 2);
    cache_free(c);
}

/* A body evicted while a reader still sends it lives until the reader is done. */
static void test_cache_eviction_keeps_readers(void **state)
{
    (void)state;
    uint64_t count0 = refbuf_live_count();
    struct cache *c = cache_new(2000);
    struct body *b = sized(1000);
    assert_int_equal(cache_put(c, "/one", 4, b, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    body_unref(b);
    struct cache_entry *e = cache_get(c, "/one", 4, 0);
    struct evbuffer *reply = evbuffer_new();
    assert_int_equal(refbuf_add_to(&e->body->buf, reply, 0, e->body->buf.len), 0);
    assert_int_equal(put(c, "/two", 1500, CACHE_FOREVER, CACHE_FOREVER, 0), 0);
    assert_false(has(c, "/one", 0));
    assert_int_equal(refbuf_live_count(), count0 + 2);
    assert_int_equal(evbuffer_get_length(reply), 1000);
    evbuffer_free(reply);
    assert_int_equal(refbuf_live_count(), count0 + 1);
    cache_free(c);
    assert_int_equal(refbuf_live_count(), count0);
}

/* ---- viewers -------------------------------------------------------------- */

static void viewer(struct viewers *v, const char *stream, const char *client, int64_t now)
{
    viewers_seen(v, stream, client, strlen(client), now);
}

static void test_viewers(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    static const struct metric_def defs[] = {
        { "test_viewers", METRIC_GAUGE, "v", { "stream" } }, { NULL },
    };
    struct metric *fam[1];
    assert_int_equal(metrics_register(m, defs, fam), 0);
    struct viewers *v = viewers_new(30000, 100, 10, fam[0]);
    for (int round = 0; round < 3; round++) {   /* the same clients again: no change */
        viewer(v, "demo", "10.0.0.1|vlc", 1000 + round);
        viewer(v, "demo", "10.0.0.1|hls.js", 1000 + round);
        viewer(v, "demo", "10.0.0.2|vlc", 1000 + round);
        viewer(v, "other", "10.0.0.1|vlc", 1000 + round);
    }
    assert_int_equal(viewers_count(v, "demo", 2000), 3);
    assert_int_equal(viewers_count(v, "other", 2000), 1);
    assert_int_equal(viewers_count(v, "none", 2000), 0);
    viewer(v, "demo", "10.0.0.3|vlc", 20000);
    viewers_sweep(v, 25000);
    assert_true(metric_value(metric_at(fam[0], "demo")) == 4);
    /* 30 s after the first three, only the late one counts */
    assert_int_equal(viewers_count(v, "demo", 31002), 1);
    viewers_sweep(v, 31002);
    assert_int_equal(viewers_streams(v), 1);     /* "other" went with its viewer */
    assert_int_equal(viewers_clients(v), 1);
    assert_true(metric_value(metric_at(fam[0], "demo")) == 1);
    viewers_sweep(v, 60000);
    assert_int_equal(viewers_streams(v), 0);
    viewers_free(v);
    metrics_free(m);
}

static void test_viewers_bounded(void **state)
{
    (void)state;
    struct viewers *v = viewers_new(30000, 1000, 3, NULL);
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "10.0.%d.%d|x", i / 256, i % 256);
        viewer(v, "big", id, 1000);
    }
    assert_int_equal(viewers_count(v, "big", 1000), 1000);
    assert_int_equal(viewers_untracked(v), 4000);
    viewer(v, "s2", "a", 1000);
    viewer(v, "s3", "a", 1000);
    viewer(v, "s4", "a", 1000);                   /* a fourth stream: not tracked */
    assert_int_equal(viewers_streams(v), 3);
    assert_int_equal(viewers_count(v, "s4", 1000), 0);
    viewers_sweep(v, 40000);
    assert_int_equal(viewers_clients(v), 0);
    viewer(v, "s4", "a", 40000);                  /* room again */
    assert_int_equal(viewers_count(v, "s4", 40000), 1);
    viewers_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_body_by_reference),
        cmocka_unit_test(test_body_tags),
        cmocka_unit_test(test_cache_lru_by_bytes),
        cmocka_unit_test(test_cache_freshness),
        cmocka_unit_test(test_cache_eviction_keeps_readers),
        cmocka_unit_test(test_viewers),
        cmocka_unit_test(test_viewers_bounded),
    };
    return cmocka_run_group_tests_name("edge memory", tests, NULL, NULL);
}
