/* Response bodies: what the edge caches and what every viewer's reply points
 * at. The bytes are a refbuf (sluice/refbuf.h), filled once, right after
 * body_new(), and never changed after that, so any number of replies send
 * them by reference at the same time (refbuf_add_to(&b->buf, ...)); the last
 * reference to go (the cache's or a finished reply's) frees the body. What the
 * edge knows besides the bytes (status, validators) lives in the same block.
 *
 * Single-threaded: use from the event loop only.
 */
#ifndef SLUICE_EDGE_BODY_H
#define SLUICE_EDGE_BODY_H

#include <stddef.h>

#include "sluice/refbuf.h"

struct evbuffer;

#define BODY_TAG_MAX 128   /* ETag and Last-Modified, longer ones are dropped */

struct body {
    struct refbuf buf;             /* first: its bytes follow the struct */
    int status;                    /* 200, or 404 for a negative entry */
    char etag[BODY_TAG_MAX];       /* "" when the origin sent none */
    char last_modified[BODY_TAG_MAX];
};

/* A body of <len> bytes (buf.data, uninitialised, for the caller to fill at
 * once) with one reference, in one allocation, or NULL. */
struct body *body_new(int status, size_t len);

/* A body holding a copy of what is in <src> (not drained), or NULL. */
struct body *body_from_evbuffer(int status, struct evbuffer *src);

/* Sets the ETag or Last-Modified to <value> when it is printable and fits. */
void body_set_etag(struct body *b, const char *value);
void body_set_last_modified(struct body *b, const char *value);

struct body *body_ref(struct body *b);
/* Drops one reference; frees at zero. NULL is fine. */
void body_unref(struct body *b);

#endif
