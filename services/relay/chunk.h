/* Chunks: one SLP frame as a refbuf (sluice/refbuf.h), the unit of fan-out.
 *
 * A publisher's MEDIA frame is copied once, from the socket's input into a
 * chunk, and from then on shared: the GOP cache holds a reference, and every
 * subscriber's output queue holds one through refbuf_add_to(&c->buf, ...),
 * which libevent drops when it has written (or discarded) the bytes. The last
 * reference frees the chunk. Nothing ever writes to a chunk after it was
 * filled. The frame's decoded fields sit in front of its bytes, in the same
 * block: one allocation per frame.
 *
 * Single-threaded: every reference is taken and dropped on the event loop.
 */
#ifndef RELAY_CHUNK_H
#define RELAY_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/refbuf.h"

struct chunk {
    struct refbuf buf;     /* first: the frame's bytes (buf.data) follow the struct */
    uint8_t type;          /* the SLP frame type held in buf.data */
    uint16_t flags;        /* MEDIA: the frame's flags */
    int64_t pts, wall_us;  /* MEDIA: as decoded */
};

/* A chunk of <len> bytes (contents to be filled by the caller, once), with
 * one reference, owned by the caller. NULL on allocation failure. */
struct chunk *chunk_new(size_t len);

/* A chunk holding a copy of the <len> bytes at <p>. */
struct chunk *chunk_copy(const void *p, size_t len);

/* Takes one more reference; returns <c>. */
struct chunk *chunk_ref(struct chunk *c);

/* Drops one reference, freeing <c> with the last. NULL is fine. */
void chunk_unref(struct chunk *c);

#endif
