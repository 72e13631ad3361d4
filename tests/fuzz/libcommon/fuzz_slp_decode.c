/* libFuzzer harness for the SLP decoder. The input is a byte stream from a
 * peer; it is decoded frame by frame as a connection would, and every result
 * is checked against the codec's promises (a violation aborts):
 *  - SLP_OK: the frame lies within the input, and re-encoding it gives back
 *    exactly its bytes (the encoding is canonical; only the ignored flags of a
 *    non-MEDIA frame may differ);
 *  - SLP_NEED_MORE: the frame really needs more bytes than there are;
 *  - SLP_INVALID: a code from the table and a reason;
 *  - the evbuffer path (bytes arriving in two pieces) agrees with the span
 *    path on every frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sluice/slp.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

/* Decodes the frames of <data> from a span; returns how many were OK and
 * the final status. */
static size_t decode_span(const uint8_t *data, size_t size, enum slp_status *last)
{
    size_t off = 0, frames = 0;
    for (;;) {
        struct slp_frame f;
        *last = slp_decode(data + off, size - off, &f);
        if (*last == SLP_NEED_MORE) {
            check(f.size > size - off);
            return frames;
        }
        if (*last == SLP_INVALID) {
            check(slp_error_name(f.error) != NULL && f.why != NULL);
            return frames;
        }
        check(f.size >= SLP_HEADER_LEN && f.size <= size - off);
        uint8_t *enc = malloc(f.size);
        check(slp_encode(enc, f.size, &f) == f.size);
        if (f.type == SLP_MEDIA) {
            check(memcmp(enc, data + off, f.size) == 0);
        } else {
            check(memcmp(enc, data + off, 6) == 0);
            check(memcmp(enc + 8, data + off + 8, f.size - 8) == 0);
        }
        free(enc);
        off += f.size;
        frames++;
    }
}

/* The same through an evbuffer, the input arriving in two pieces. */
static size_t decode_evbuffer(const uint8_t *data, size_t size, enum slp_status *last)
{
    static uint8_t buf[SLP_MAX_FRAME];   /* reused: a connection's read buffer */
    struct evbuffer *in = evbuffer_new();
    size_t half = size / 2, frames = 0;
    evbuffer_add(in, data, half);
    for (int piece = 0; piece < 2; piece++) {
        struct slp_frame f;
        while ((*last = slp_evbuffer_take(in, buf, sizeof(buf), &f)) == SLP_OK)
            frames++;
        if (*last == SLP_INVALID)
            break;
        if (piece == 0)
            evbuffer_add(in, data + half, size - half);
    }
    evbuffer_free(in);
    return frames;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum slp_status span_last, ev_last;
    size_t span = decode_span(data, size, &span_last);
    size_t ev = decode_evbuffer(data, size, &ev_last);
    check(span == ev && span_last == ev_last);
    return 0;
}
