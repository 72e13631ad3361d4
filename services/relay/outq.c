/* Output queues: see outq.h. */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "chunk.h"
#include "sluice/slp.h"

#define RING_MIN 64          /* frame sizes the ring starts with */
#define RING_SHRINK 4096     /* an empty ring larger than this shrinks back */

int outq_init(struct outq *q)
{
    q->buf = evbuffer_new();
    q->size = malloc(RING_MIN * sizeof(*q->size));
    q->cap = RING_MIN;
    q->head = q->count = q->head_sent = 0;
    if (q->buf == NULL || q->size == NULL) {
        outq_fini(q);
        return -1;
    }
    return 0;
}

void outq_fini(struct outq *q)
{
    if (q->buf != NULL)
        evbuffer_free(q->buf);
    q->buf = NULL;
    free(q->size);
    q->size = NULL;
    q->cap = q->head = q->count = q->head_sent = 0;
}

size_t outq_bytes(const struct outq *q)
{
    return evbuffer_get_length(q->buf);
}

unsigned outq_frames(const struct outq *q)
{
    return q->count;
}

/* Makes room for one more frame size. Returns 0 or -1. */
static int ring_reserve(struct outq *q)
{
    if (q->count < q->cap)
        return 0;
    uint32_t cap = q->cap * 2;
    uint32_t *size = malloc(cap * sizeof(*size));
    if (size == NULL)
        return -1;
    for (uint32_t i = 0; i < q->count; i++)
        size[i] = q->size[(q->head + i) % q->cap];
    free(q->size);
    q->size = size;
    q->cap = cap;
    q->head = 0;
    return 0;
}

static void ring_push(struct outq *q, size_t size)
{
    q->size[(q->head + q->count) % q->cap] = (uint32_t)size;
    q->count++;
}

/* The queue went empty: a ring that grew for a deep backlog shrinks back. */
static void ring_maybe_shrink(struct outq *q)
{
    if (q->cap <= RING_SHRINK)
        return;
    uint32_t *size = malloc(RING_MIN * sizeof(*size));
    if (size == NULL)
        return;
    free(q->size);
    q->size = size;
    q->cap = RING_MIN;
    q->head = 0;
}

/* <n> more bytes have left: retire the frames they complete. */
static void ring_consume(struct outq *q, size_t n)
{
    while (n > 0 && q->count > 0) {
        size_t left = q->size[q->head] - q->head_sent;
        if (n < left) {
            q->head_sent += (uint32_t)n;
            return;
        }
        n -= left;
        q->head_sent = 0;
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    if (q->count == 0) {
        q->head = 0;
        ring_maybe_shrink(q);
    }
}

int outq_push_chunk(struct outq *q, struct chunk *c)
{
    size_t len = c->buf.len;
    if (len == 0 || ring_reserve(q) == -1 || refbuf_add_to(&c->buf, q->buf, 0, len) == -1)
        return -1;
    ring_push(q, len);
    return 0;
}

int outq_push_media_flags(struct outq *q, struct chunk *c, uint16_t flags)
{
    uint8_t hdr[SLP_MEDIA_HEADER_LEN];
    if (c->type != SLP_MEDIA || c->buf.len <= SLP_MEDIA_HEADER_LEN || ring_reserve(q) == -1)
        return -1;
    size_t ts_len = c->buf.len - SLP_MEDIA_HEADER_LEN;
    if (slp_encode_media_header(hdr, flags, c->pts, c->wall_us, ts_len) == 0)
        return -1;
    /* built aside and moved in whole (a move never fails), so that a failure
     * halfway leaves no header without its payload in the queue; this runs
     * once per gap, not per frame */
    struct evbuffer *frame = evbuffer_new();
    int rc = -1;
    if (frame != NULL && evbuffer_add(frame, hdr, sizeof(hdr)) == 0 &&
        refbuf_add_to(&c->buf, frame, SLP_MEDIA_HEADER_LEN, ts_len) == 0 &&
        evbuffer_add_buffer(q->buf, frame) == 0) {
        ring_push(q, c->buf.len);
        rc = 0;
    }
    if (frame != NULL)
        evbuffer_free(frame);
    return rc;
}

int outq_push_frame(struct outq *q, const struct slp_frame *f)
{
    size_t size = slp_encoded_size(f);
    if (size == 0 || ring_reserve(q) == -1 || slp_evbuffer_add(q->buf, f) == -1)
        return -1;
    ring_push(q, size);
    return 0;
}

ssize_t outq_write(struct outq *q, int fd)
{
    if (evbuffer_get_length(q->buf) == 0)
        return 0;
    int n = evbuffer_write_atmost(q->buf, fd, -1);
    if (n > 0)
        ring_consume(q, (size_t)n);
    else if (n == 0)
        errno = EAGAIN;       /* a zero-byte write on a stream socket: try later */
    return n > 0 ? n : -1;
}

size_t outq_cut(struct outq *q)
{
    size_t total = evbuffer_get_length(q->buf);
    size_t keep = q->count > 0 && q->head_sent > 0 ? q->size[q->head] - q->head_sent : 0;
    if (keep >= total)
        return 0;
    struct evbuffer *rest = evbuffer_new();
    if (rest == NULL)
        return 0;
    if (keep > 0 && evbuffer_remove_buffer(q->buf, rest, keep) != (int)keep) {
        evbuffer_free(rest);
        return 0;
    }
    evbuffer_free(q->buf);           /* drops the references of what was cut */
    q->buf = rest;
    q->count = keep > 0 ? 1 : 0;
    if (keep == 0) {
        q->head = 0;
        q->head_sent = 0;
    }
    return total - keep;
}
