/* The GOP cache: see gop.h. */
#include "gop.h"

#include <stdlib.h>

#include "chunk.h"
#include "sluice/slp-t.h"

#define GOP_MIN_CAP 64

void gop_init(struct gop *g, size_t max)
{
    g->frame = NULL;
    g->n = g->cap = 0;
    g->bytes = 0;
    g->max = max;
    g->overflows = 0;
}

void gop_clear(struct gop *g)
{
    for (unsigned i = 0; i < g->n; i++)
        chunk_unref(g->frame[i]);
    g->n = 0;
    g->bytes = 0;
}

void gop_fini(struct gop *g)
{
    gop_clear(g);
    free(g->frame);
    g->frame = NULL;
    g->cap = 0;
}

bool gop_valid(const struct gop *g)
{
    return g->n > 0;
}

static int reserve(struct gop *g)
{
    if (g->n < g->cap)
        return 0;
    unsigned cap = g->cap ? g->cap * 2 : GOP_MIN_CAP;
    struct chunk **frame = realloc(g->frame, cap * sizeof(*frame));
    if (frame == NULL)
        return -1;
    g->frame = frame;
    g->cap = cap;
    return 0;
}

int gop_add(struct gop *g, struct chunk *c)
{
    if (c->flags & SLP_F_KEYFRAME)
        gop_clear(g);
    else if (g->n == 0)
        return 0;                    /* no GOP under way: nothing to extend */
    if (g->bytes + c->buf.len > g->max) {
        g->overflows++;
        gop_clear(g);
        return 0;
    }
    if (reserve(g) == -1) {
        gop_clear(g);
        return -1;
    }
    g->frame[g->n++] = chunk_ref(c);
    g->bytes += c->buf.len;
    return 0;
}
