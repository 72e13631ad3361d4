/* A subscriber's (or any connection's) output queue: the bytes waiting for
 * its socket, and where the frames in them begin and end.
 *
 * The bytes live in an evbuffer: MEDIA frames by reference to their chunks
 * (never copied per subscriber), small control frames copied in. Beside it, a
 * ring of frame sizes tells where the oldest frame ends, so that a queue can
 * be cut back to a frame boundary (outq_cut) before a last ERROR, and so the
 * writer always knows how far into a frame the socket has got.
 *
 * outq_write() is one writev(2) of up to 128 pieces (libevent's
 * evbuffer_write_atmost), whatever the number of frames queued.
 */
#ifndef RELAY_OUTQ_H
#define RELAY_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct chunk;
struct evbuffer;
struct slp_frame;

struct outq {
    struct evbuffer *buf;
    uint32_t *size;          /* ring: the size of each frame queued, oldest first */
    uint32_t cap, head, count;
    uint32_t head_sent;      /* bytes of the oldest frame already written */
};

/* Sets up an empty queue. Returns 0, or -1 on allocation failure. */
int outq_init(struct outq *q);

/* Frees what the queue holds (dropping its chunk references). */
void outq_fini(struct outq *q);

/* Bytes queued (not yet written to the socket). */
size_t outq_bytes(const struct outq *q);

/* Frames queued, the partly written one included. */
unsigned outq_frames(const struct outq *q);

/* Queues the whole of <c> (one frame) by reference. Returns 0 or -1
 * (allocation failure; the queue is unchanged). */
int outq_push_chunk(struct outq *q, struct chunk *c);

/* Queues the MEDIA frame of <c> with its flags replaced by <flags>: a fresh
 * SLP_MEDIA_HEADER_LEN-byte header, then <c>'s TS payload by reference.
 * Returns 0 or -1 (allocation failure or a chunk that is not MEDIA). */
int outq_push_media_flags(struct outq *q, struct chunk *c, uint16_t flags);

/* Encodes the control frame <f> and queues a copy. Returns 0, or -1 if
 * <f> is invalid or on allocation failure. */
int outq_push_frame(struct outq *q, const struct slp_frame *f);

/* One writev(2) of what is queued to <fd>. Returns the bytes written (0 if
 * the queue is empty), or -1 with errno set (EAGAIN: the socket is full). */
ssize_t outq_write(struct outq *q, int fd);

/* Drops every queued frame that has not begun to go out; the one partly
 * written stays, so the stream's framing survives. Returns the bytes
 * dropped. */
size_t outq_cut(struct outq *q);

#endif
