/* Immutable, reference-counted bytes: a segment or a rendered playlist, held
 * by the stream and by every reply that sends it. A reply adds it to the
 * connection's buffer by reference (evbuffer_add_reference), which drops its
 * reference once the bytes are sent; so a segment that leaves the playlist
 * while viewers download it lives until the last of them is done, and no
 * reply copies it.
 *
 * Single-threaded: use from the event loop only.
 */
#ifndef SLUICE_HLS_BLOB_H
#define SLUICE_HLS_BLOB_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

struct blob {
    unsigned refs;
    size_t len;
    uint8_t *data;           /* <len> bytes, malloc'd */
};

/* Takes <data> (<len> bytes of a malloc'd block of <cap>; trimmed when much
 * larger), with one reference. NULL on allocation failure, <data> freed. */
struct blob *blob_wrap(uint8_t *data, size_t len, size_t cap);

/* A copy of <len> bytes of <src>, or NULL. */
struct blob *blob_copy(const void *src, size_t len);

struct blob *blob_ref(struct blob *b);

/* Drops a reference; frees at zero. NULL is fine. */
void blob_unref(struct blob *b);

/* Appends the whole of <b> to <out> by reference. Returns 0 or -1. */
int blob_add_to(struct blob *b, struct evbuffer *out);

/* Blobs alive in the process, and their bytes. */
uint64_t blob_live_count(void);
uint64_t blob_live_bytes(void);

/* Replies still sending a blob. */
uint64_t blob_sends(void);

#endif
