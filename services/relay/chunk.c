/* Reference-counted chunks: see chunk.h. */
#include "chunk.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

struct chunk *chunk_new(size_t len)
{
    struct chunk *c = malloc(sizeof(*c) + len);
    if (c == NULL)
        return NULL;
    c->refs = 1;
    c->type = 0;
    c->flags = 0;
    c->pts = -1;
    c->wall_us = 0;
    c->len = len;
    return c;
}

struct chunk *chunk_copy(const void *p, size_t len)
{
    struct chunk *c = chunk_new(len);
    if (c != NULL)
        memcpy(c->data, p, len);
    return c;
}

struct chunk *chunk_ref(struct chunk *c)
{
    c->refs++;
    return c;
}

void chunk_unref(struct chunk *c)
{
    if (c != NULL && --c->refs == 0)
        free(c);
}

/* libevent's cleanup of a reference chain: the bytes are no longer needed. */
static void unref_cb(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    chunk_unref(arg);
}

int chunk_add_to(struct evbuffer *out, struct chunk *c, size_t off, size_t len)
{
    c->refs++;
    if (evbuffer_add_reference(out, c->data + off, len, unref_cb, c) == -1) {
        c->refs--;
        return -1;
    }
    return 0;
}
