/* Reference-counted chunks: see chunk.h. */
#include "chunk.h"

#include <string.h>

struct chunk *chunk_new(size_t len)
{
    /* buf is the first member: the refbuf is the chunk */
    struct chunk *c = (struct chunk *)refbuf_new_embedded(sizeof(struct chunk), len);
    if (c == NULL)
        return NULL;
    c->type = 0;
    c->flags = 0;
    c->pts = -1;
    c->wall_us = 0;
    return c;
}

struct chunk *chunk_copy(const void *p, size_t len)
{
    struct chunk *c = chunk_new(len);
    if (c != NULL)
        memcpy(c->buf.data, p, len);
    return c;
}

struct chunk *chunk_ref(struct chunk *c)
{
    refbuf_ref(&c->buf);
    return c;
}

void chunk_unref(struct chunk *c)
{
    if (c != NULL)
        refbuf_unref(&c->buf);
}
