/* Reference-counted immutable bytes: see sluice/refbuf.h. */
#include "sluice/refbuf.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

/* Process-wide rather than per owner, so that a buffer an evbuffer releases
 * after everything else is gone (a connection freed at exit) touches nothing
 * but these. */
static uint64_t live_count, live_bytes, sends;

/* The one reference of a new buffer over <data>, counted live. */
static struct refbuf *start(struct refbuf *rb, uint8_t *data, size_t len, void *block)
{
    rb->refs = 1;
    rb->len = len;
    rb->data = data;
    rb->block = block;
    live_count++;
    live_bytes += len;
    return rb;
}

struct refbuf *refbuf_new_embedded(size_t outer, size_t len)
{
    if (outer < sizeof(struct refbuf) || len > SIZE_MAX - outer)
        return NULL;
    struct refbuf *rb = malloc(outer + len);
    if (rb == NULL)
        return NULL;
    return start(rb, (uint8_t *)rb + outer, len, NULL);
}

struct refbuf *refbuf_new(size_t len)
{
    return refbuf_new_embedded(sizeof(struct refbuf), len);
}

struct refbuf *refbuf_copy(const void *src, size_t len)
{
    struct refbuf *rb = refbuf_new(len);
    if (rb != NULL && len > 0)
        memcpy(rb->data, src, len);
    return rb;
}

struct refbuf *refbuf_wrap(uint8_t *data, size_t len, size_t cap)
{
    struct refbuf *rb = malloc(sizeof(*rb));
    if (rb == NULL) {
        free(data);
        return NULL;
    }
    /* A block grown by doubling may be half empty, and a buffer can be held
     * for minutes (a segment in a playlist): give the slack back. */
    if (len > 0 && cap - len > len / 8) {
        uint8_t *p = realloc(data, len);
        if (p != NULL)
            data = p;
    }
    return start(rb, data, len, data);
}

struct refbuf *refbuf_ref(struct refbuf *rb)
{
    rb->refs++;
    return rb;
}

void refbuf_unref(struct refbuf *rb)
{
    if (rb == NULL || --rb->refs > 0)
        return;
    live_count--;
    live_bytes -= rb->len;
    free(rb->block);
    free(rb);            /* and the embedding struct and its bytes: one block */
}

/* libevent's cleanup of a reference chain: the bytes were sent, or the buffer
 * holding them was drained or freed. */
static void sent(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    sends--;
    refbuf_unref(arg);
}

int refbuf_add_to(struct refbuf *rb, struct evbuffer *out, size_t off, size_t len)
{
    if (off > rb->len || len > rb->len - off)
        return -1;
    if (len == 0)
        return 0;
    rb->refs++;
    sends++;
    if (evbuffer_add_reference(out, rb->data + off, len, sent, rb) == -1) {
        sends--;
        rb->refs--;      /* the caller still holds its own: nothing to free */
        return -1;
    }
    return 0;
}

uint64_t refbuf_live_count(void)
{
    return live_count;
}

uint64_t refbuf_live_bytes(void)
{
    return live_bytes;
}

uint64_t refbuf_sends(void)
{
    return sends;
}
