/* Reference-counted immutable bytes: the references evbuffers take and drop,
 * ranges, the embedding struct, wrapped blocks, and the process-wide counters
 * (which every test leaves at zero, as a daemon at exit must). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sluice/refbuf.h"

static void assert_nothing_live(void)
{
    assert_int_equal(refbuf_live_count(), 0);
    assert_int_equal(refbuf_live_bytes(), 0);
    assert_int_equal(refbuf_sends(), 0);
}

static void test_new_and_unref(void **state)
{
    (void)state;
    struct refbuf *a = refbuf_new(10), *b = refbuf_copy("hello", 5), *e = refbuf_new(0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(e);
    assert_int_equal(a->refs, 1);
    assert_int_equal(a->len, 10);
    assert_memory_equal(b->data, "hello", 5);
    assert_int_equal(refbuf_live_count(), 3);
    assert_int_equal(refbuf_live_bytes(), 15);
    assert_ptr_equal(refbuf_ref(a), a);
    refbuf_unref(a);
    assert_int_equal(refbuf_live_count(), 3);    /* one reference left */
    refbuf_unref(a);
    refbuf_unref(b);
    refbuf_unref(e);
    refbuf_unref(NULL);
    assert_nothing_live();
}

/* The evbuffer's reference outlives the maker's: the bytes go when the
 * buffer has drained them, not before. */
static void test_drain_frees(void **state)
{
    (void)state;
    struct refbuf *rb = refbuf_copy("0123456789", 10);
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(refbuf_add_to(rb, out, 0, 10), 0);
    assert_int_equal(rb->refs, 2);
    assert_int_equal(refbuf_sends(), 1);
    assert_ptr_equal(evbuffer_pullup(out, 10), rb->data);   /* not copied */
    refbuf_unref(rb);                  /* the maker lets go first */
    assert_int_equal(refbuf_live_count(), 1);
    assert_int_equal(evbuffer_drain(out, 4), 0);
    assert_int_equal(refbuf_live_count(), 1);   /* six bytes still to send */
    assert_int_equal(evbuffer_drain(out, 6), 0);
    assert_nothing_live();
    evbuffer_free(out);
}

static void test_sub_range(void **state)
{
    (void)state;
    struct refbuf *rb = refbuf_copy("0123456789", 10);
    struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
    assert_int_equal(refbuf_add_to(rb, a, 2, 3), 0);
    assert_int_equal(refbuf_add_to(rb, b, 9, 1), 0);
    assert_int_equal(refbuf_add_to(rb, b, 8, 3), -1);   /* past the end */
    assert_int_equal(refbuf_add_to(rb, b, 11, 0), -1);
    assert_int_equal(refbuf_add_to(rb, b, 10, 0), 0);   /* empty: nothing added */
    assert_int_equal(rb->refs, 3);
    assert_int_equal(refbuf_sends(), 2);
    assert_int_equal(evbuffer_get_length(a), 3);
    assert_ptr_equal(evbuffer_pullup(a, 3), rb->data + 2);
    char got[2] = "";
    assert_int_equal(evbuffer_remove(b, got, sizeof(got)), 1);
    assert_int_equal(got[0], '9');
    assert_int_equal(refbuf_sends(), 1);          /* b let go of its range */
    refbuf_unref(rb);
    evbuffer_free(a);                  /* freed unsent: the reference goes too */
    evbuffer_free(b);
    assert_nothing_live();
}

/* A failed add takes no reference and adds nothing. */
static void test_add_fails(void **state)
{
    (void)state;
    struct refbuf *rb = refbuf_copy("abc", 3);
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(evbuffer_freeze(out, 0), 0);   /* appends are refused */
    assert_int_equal(refbuf_add_to(rb, out, 0, 3), -1);
    assert_int_equal(rb->refs, 1);
    assert_int_equal(refbuf_sends(), 0);
    assert_int_equal(evbuffer_get_length(out), 0);
    evbuffer_free(out);
    refbuf_unref(rb);
    assert_nothing_live();
}

struct framed {
    struct refbuf buf;      /* first, as refbuf_new_embedded() requires */
    int kind;
    int64_t pts;
};

static void test_embedded(void **state)
{
    (void)state;
    struct framed *f = (struct framed *)refbuf_new_embedded(sizeof(struct framed), 4);
    assert_non_null(f);
    f->kind = 7;
    f->pts = -1;
    memcpy(f->buf.data, "abcd", 4);
    /* one block: the bytes right after the caller's struct */
    assert_ptr_equal(f->buf.data, (uint8_t *)f + sizeof(*f));
    assert_int_equal(refbuf_live_bytes(), 4);     /* the bytes, not the struct */
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(refbuf_add_to(&f->buf, out, 1, 2), 0);
    refbuf_unref(&f->buf);
    assert_int_equal(refbuf_live_count(), 1);
    char got[3] = "";
    evbuffer_remove(out, got, 2);
    assert_string_equal(got, "bc");
    assert_nothing_live();
    evbuffer_free(out);
    /* sizes that cannot be allocated */
    assert_null(refbuf_new_embedded(sizeof(struct framed), SIZE_MAX));
    assert_null(refbuf_new_embedded(sizeof(struct refbuf) - 1, 1));
    assert_nothing_live();
}

static void test_wrap(void **state)
{
    (void)state;
    uint8_t *block = malloc(4096);
    assert_non_null(block);
    memcpy(block, "segment", 7);
    struct refbuf *rb = refbuf_wrap(block, 7, 4096);   /* mostly slack: trimmed */
    assert_non_null(rb);
    assert_int_equal(rb->len, 7);
    assert_memory_equal(rb->data, "segment", 7);
    assert_int_equal(refbuf_live_bytes(), 7);
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(refbuf_add_to(rb, out, 0, 7), 0);
    refbuf_unref(rb);
    evbuffer_free(out);                /* frees the block too (LeakSanitizer checks) */
    struct refbuf *empty = refbuf_wrap(malloc(16), 0, 16);
    assert_non_null(empty);
    refbuf_unref(empty);
    assert_nothing_live();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_unref),
        cmocka_unit_test(test_drain_frees),
        cmocka_unit_test(test_sub_range),
        cmocka_unit_test(test_add_fails),
        cmocka_unit_test(test_embedded),
        cmocka_unit_test(test_wrap),
    };
    return cmocka_run_group_tests_name("refbuf", tests, NULL, NULL);
}
