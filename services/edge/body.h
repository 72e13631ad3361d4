/* Immutable, reference-counted response bodies: what the edge caches and what
 * every viewer's reply points at. A body is filled once, right after
 * body_new(), and never changes after that, so any number of replies can
 * send it by reference (evbuffer_add_reference) at the same time; the last
 * reference to go (the cache's or a finished reply's) frees it.
 *
 * Single-threaded: use from the event loop only.
 */
#ifndef SLUICE_EDGE_BODY_H
#define SLUICE_EDGE_BODY_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define BODY_TAG_MAX 128   /* ETag and Last-Modified, longer ones are dropped */

struct body {
    unsigned refs;
    int status;                    /* 200, or 404 for a negative entry */
    size_t len;
    char etag[BODY_TAG_MAX];       /* "" when the origin sent none */
    char last_modified[BODY_TAG_MAX];
    unsigned char data[];          /* <len> bytes */
};

/* A body of <len> bytes (uninitialised, for the caller to fill at once) with
 * one reference, or NULL. */
struct body *body_new(int status, size_t len);

/* A body holding a copy of what is in <src> (not drained), or NULL. */
struct body *body_from_evbuffer(int status, struct evbuffer *src);

/* Sets the ETag or Last-Modified to <value> when it is printable and fits. */
void body_set_etag(struct body *b, const char *value);
void body_set_last_modified(struct body *b, const char *value);

struct body *body_ref(struct body *b);
/* Drops one reference; frees at zero. NULL is fine. */
void body_unref(struct body *b);

/* Appends bytes [<off>, <off> + <len>) of <b> to <out> by reference: the
 * buffer holds a reference to <b> until it has sent (or dropped) them.
 * Returns 0 or -1. */
int body_add_to(struct body *b, struct evbuffer *out, size_t off, size_t len);

/* Bodies alive in the process and their bytes, cached or not (a body evicted
 * from the cache lives on until its last reader is done). */
uint64_t body_live_count(void);
uint64_t body_live_bytes(void);

/* Replies sending a body by reference that have not finished yet. */
uint64_t body_sends_in_flight(void);

#endif
