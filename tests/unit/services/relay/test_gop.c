/* The GOP cache: it starts at a keyframe, grows by reference, is dropped
 * whole when it outgrows its bound, and holds nothing until the next
 * keyframe after that. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../../../services/relay/chunk.h"
#include "../../../../services/relay/gop.h"
#include "sluice/slp-t.h"

static struct chunk *frame(size_t len, uint16_t flags)
{
    struct chunk *c = chunk_new(len);
    assert_non_null(c);
    c->type = SLP_MEDIA;
    c->flags = flags;
    return c;
}

static void test_starts_at_a_keyframe(void **state)
{
    (void)state;
    struct gop g;
    gop_init(&g, 1000);
    struct chunk *a = frame(100, 0), *k = frame(100, SLP_F_KEYFRAME), *b = frame(100, 0);
    assert_int_equal(gop_add(&g, a), 0);        /* before any keyframe: not cached */
    assert_false(gop_valid(&g));
    assert_int_equal(a->buf.refs, 1);
    assert_int_equal(gop_add(&g, k), 0);
    assert_int_equal(gop_add(&g, b), 0);
    assert_true(gop_valid(&g));
    assert_int_equal(g.n, 2);
    assert_ptr_equal(g.frame[0], k);
    assert_int_equal(g.bytes, 200);
    assert_int_equal(k->buf.refs, 2);
    /* the next keyframe starts afresh and lets go of the old GOP */
    struct chunk *k2 = frame(50, SLP_F_KEYFRAME | SLP_F_DISCONTINUITY);
    assert_int_equal(gop_add(&g, k2), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.bytes, 50);
    assert_int_equal(k->buf.refs, 1);
    assert_int_equal(b->buf.refs, 1);
    gop_clear(&g);
    assert_false(gop_valid(&g));
    assert_int_equal(k2->buf.refs, 1);
    assert_int_equal(gop_add(&g, b), 0);        /* cleared: waits for a keyframe again */
    assert_false(gop_valid(&g));
    gop_fini(&g);
    chunk_unref(a);
    chunk_unref(k);
    chunk_unref(b);
    chunk_unref(k2);
}

static void test_bounded(void **state)
{
    (void)state;
    struct gop g;
    gop_init(&g, 1000);
    struct chunk *k = frame(400, SLP_F_KEYFRAME), *p[200];
    assert_int_equal(gop_add(&g, k), 0);
    for (int i = 0; i < 200; i++)
        p[i] = frame(3, 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(gop_add(&g, p[i]), 0);   /* grows past its first array */
    assert_int_equal(g.n, 201);
    assert_int_equal(g.bytes, 1000);               /* exactly at the bound */
    struct chunk *more = frame(1, 0);
    assert_int_equal(gop_add(&g, more), 0);        /* over: the whole GOP goes */
    assert_false(gop_valid(&g));
    assert_int_equal(g.bytes, 0);
    assert_int_equal(g.overflows, 1);
    assert_int_equal(k->buf.refs, 1);
    assert_int_equal(gop_add(&g, more), 0);        /* and stays empty */
    assert_false(gop_valid(&g));
    struct chunk *huge = frame(1001, SLP_F_KEYFRAME);
    assert_int_equal(gop_add(&g, huge), 0);        /* a keyframe alone too large */
    assert_false(gop_valid(&g));
    assert_int_equal(gop_add(&g, k), 0);
    assert_true(gop_valid(&g));
    gop_fini(&g);
    for (int i = 0; i < 200; i++)
        chunk_unref(p[i]);
    chunk_unref(k);
    chunk_unref(more);
    chunk_unref(huge);
}

static void test_no_cache(void **state)
{
    (void)state;
    struct gop g;
    gop_init(&g, 0);                               /* gop-cache-max 0: never cached */
    struct chunk *k = frame(10, SLP_F_KEYFRAME);
    assert_int_equal(gop_add(&g, k), 0);
    assert_false(gop_valid(&g));
    assert_int_equal(k->buf.refs, 1);
    gop_fini(&g);
    chunk_unref(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_at_a_keyframe),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_no_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
