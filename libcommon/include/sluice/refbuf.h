/* Immutable, reference-counted bytes, sent by reference: the unit of fan-out
 * (relay's SLP frames), of serving from memory (hls's segments and playlists)
 * and of caching (edge's responses).
 *
 * Whoever makes a buffer fills its bytes once, at once, and nobody writes them
 * after that, so any number of holders share them without a copy: a holder
 * takes a reference (refbuf_ref) and drops it (refbuf_unref); an evbuffer that
 * was given the bytes by refbuf_add_to() holds one until libevent has written
 * or discarded them. The last reference frees the buffer.
 *
 * A daemon that keeps its own fields with the bytes (relay's SLP type and PTS,
 * edge's status and ETag) embeds struct refbuf as the first member of its own
 * struct and makes both with refbuf_new_embedded(): one allocation, the bytes
 * right after the daemon's struct. Only free() runs when the last reference
 * goes, so those fields must own nothing.
 *
 * Single-threaded: every reference is taken and dropped on the event loop.
 */
#ifndef SLUICE_REFBUF_H
#define SLUICE_REFBUF_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

struct refbuf {
    unsigned refs;
    size_t len;             /* bytes at <data> */
    uint8_t *data;          /* written by the maker only, before sharing */
    void *block;            /* refbuf_wrap()'s block, freed with the buffer; else NULL */
};

/* A buffer of <len> bytes (uninitialised, for the caller to fill at once)
 * with one reference, owned by the caller. NULL on allocation failure. */
struct refbuf *refbuf_new(size_t len);

/* The same, allocated as the front of the caller's struct of <outer> bytes
 * (>= sizeof(struct refbuf)), whose first member is the struct refbuf
 * returned; the <len> bytes follow that struct. NULL on allocation failure
 * or when the sizes overflow. */
struct refbuf *refbuf_new_embedded(size_t outer, size_t len);

/* A buffer holding a copy of the <len> bytes at <src>, or NULL. */
struct refbuf *refbuf_copy(const void *src, size_t len);

/* A buffer of the first <len> bytes of <data>, a malloc'd block of <cap>
 * bytes that it takes (trimmed when much larger than <len>). NULL on
 * allocation failure, <data> freed. */
struct refbuf *refbuf_wrap(uint8_t *data, size_t len, size_t cap);

/* Takes one more reference; returns <rb>. */
struct refbuf *refbuf_ref(struct refbuf *rb);

/* Drops one reference, freeing <rb> with the last. NULL is fine. */
void refbuf_unref(struct refbuf *rb);

/* Appends bytes [<off>, <off> + <len>) of <rb> to <out> without copying them:
 * <out> holds a reference until it has sent (or dropped) them. Returns 0
 * (nothing added when <len> is 0), or -1 when the range is outside <rb> or on
 * allocation failure (no reference taken, <out> unchanged). */
int refbuf_add_to(struct refbuf *rb, struct evbuffer *out, size_t off, size_t len);

/* Buffers alive in the process and their bytes (those only evbuffers still
 * hold included), for metrics and tests. */
uint64_t refbuf_live_count(void);
uint64_t refbuf_live_bytes(void);

/* Ranges added by refbuf_add_to() that their evbuffer has not let go yet:
 * replies still sending. */
uint64_t refbuf_sends(void);

#endif
