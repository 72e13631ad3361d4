/* Chunks: immutable, reference-counted blocks of bytes, the unit of fan-out.
 *
 * A publisher's MEDIA frame is copied once, from the socket's input into a
 * chunk, and from then on shared: the GOP cache holds a reference, and every
 * subscriber's output queue holds one through evbuffer_add_reference(), whose
 * cleanup drops it when libevent has written (or discarded) the bytes. The
 * last reference frees the chunk. Nothing ever writes to a chunk after it was
 * filled.
 *
 * Single-threaded: every reference is taken and dropped on the event loop.
 */
#ifndef RELAY_CHUNK_H
#define RELAY_CHUNK_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

struct chunk {
    unsigned refs;
    uint8_t type;          /* the SLP frame type held in data[] */
    uint16_t flags;        /* MEDIA: the frame's flags */
    int64_t pts, wall_us;  /* MEDIA: as decoded */
    size_t len;            /* bytes in data[] */
    uint8_t data[];
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

/* Appends <len> bytes of <c> from offset <off> to <out> without copying
 * them: <out> takes a reference, dropped when the bytes leave it. Returns 0,
 * or -1 on allocation failure (no reference taken, <out> unchanged). */
int chunk_add_to(struct evbuffer *out, struct chunk *c, size_t off, size_t len);

#endif
