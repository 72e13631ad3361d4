/* The GOP cache: the MEDIA frames of a stream since its last KEYFRAME frame,
 * by reference, so that a new subscriber starts at that keyframe at once.
 *
 * Bounded in bytes: a group of pictures that outgrows the bound is dropped
 * whole (a GOP is only useful from its keyframe on), and the cache stays
 * empty until the next KEYFRAME frame. Pure: no I/O, no clock.
 */
#ifndef RELAY_GOP_H
#define RELAY_GOP_H

#include <stdbool.h>
#include <stddef.h>

struct chunk;

struct gop {
    struct chunk **frame;    /* frame[0] is a KEYFRAME frame when n > 0 */
    unsigned n, cap;
    size_t bytes;            /* sum of the frames' sizes */
    size_t max;              /* the bound on bytes */
    unsigned long long overflows;   /* GOPs dropped for outgrowing max */
};

void gop_init(struct gop *g, size_t max);

/* Drops every reference and the array. */
void gop_fini(struct gop *g);

/* Empties the cache (a new publisher, a lost one): nothing is cached until
 * the next KEYFRAME frame. */
void gop_clear(struct gop *g);

/* Offers the next MEDIA frame of the stream: a KEYFRAME frame starts a new
 * GOP; any other frame extends the current one, if there is one. Takes its
 * own reference. Returns 0, or -1 on allocation failure (the cache is then
 * cleared). */
int gop_add(struct gop *g, struct chunk *c);

/* True when the cache holds a GOP (from its keyframe on). */
bool gop_valid(const struct gop *g);

#endif
