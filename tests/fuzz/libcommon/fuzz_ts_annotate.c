/* libFuzzer harness for the TS annotator. The input is TS (or anything) from
 * a publisher. It is annotated twice: fed whole, and fed in chunks of sizes
 * drawn from the input's first byte; both outputs must be identical, and every
 * frame must keep the annotator's promises (a violation aborts):
 *  - whole 188-byte packets with sync bytes, within the frame size bound;
 *  - a KEYFRAME frame starts with a PAT packet; DISCONTINUITY only on one;
 *  - pts and dts are SLP_PTS_NONE or 33-bit values.
 * The frame bound is drawn from the input too, so small bounds (and the
 * "batch full" path) are exercised. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/ts.h"

struct out {
    uint8_t *buf;            /* every frame: flags, pts, dts, len, bytes */
    size_t len, cap;
    unsigned max_packets;
};

static void check(int cond)
{
    if (!cond)
        abort();
}

static void put(struct out *o, const void *p, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->buf = realloc(o->buf, o->cap);
        check(o->buf != NULL);
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void on_frame(const struct ts_frame *f, void *arg)
{
    struct out *o = arg;
    check(f->len > 0 && f->len % TS_PACKET == 0);
    check(f->len <= (o->max_packets + 2 * TS_PSI_MAX_PACKETS) * TS_PACKET);
    for (size_t i = 0; i < f->len; i += TS_PACKET)
        check(f->ts[i] == 0x47);
    if (f->flags & SLP_F_KEYFRAME)
        check(ts_packet_pid(f->ts) == 0 && ts_packet_pusi(f->ts));
    if (f->flags & SLP_F_DISCONTINUITY)
        check(f->flags & SLP_F_KEYFRAME);
    check(f->pts >= SLP_PTS_NONE && f->pts <= SLP_PTS_MAX);
    check(f->dts >= SLP_PTS_NONE && f->dts <= SLP_PTS_MAX);
    put(o, &f->flags, sizeof(f->flags));
    put(o, &f->pts, sizeof(f->pts));
    put(o, &f->dts, sizeof(f->dts));
    put(o, &f->len, sizeof(f->len));
    put(o, f->ts, f->len);
}

/* Annotates <data>: whole when <seed> is 0, else in pseudo-random chunks. */
static void annotate(const uint8_t *data, size_t size, uint32_t seed, struct out *o)
{
    struct ts_annotator_options opts = { .max_packets = o->max_packets };
    struct ts_annotator *a = ts_annotator_new(&opts);
    check(a != NULL);
    for (size_t off = 0; off < size;) {
        size_t n = size - off;
        if (seed != 0) {
            seed = seed * 1103515245 + 12345;
            size_t r = 1 + (seed >> 16) % 400;
            n = r < n ? r : n;
        }
        ts_annotator_feed(a, data + off, n, 0, on_frame, o);
        off += n;
    }
    ts_annotator_flush(a, on_frame, o);
    ts_annotator_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned max_packets = data[0] < 128 ? 512 : TS_FRAME_MIN_PACKETS + data[0] % 32;
    struct out whole = { .max_packets = max_packets };
    struct out chunked = { .max_packets = max_packets };
    annotate(data + 1, size - 1, 0, &whole);
    annotate(data + 1, size - 1, 1 + data[0], &chunked);
    check(whole.len == chunked.len);
    check(whole.len == 0 || memcmp(whole.buf, chunked.buf, whole.len) == 0);
    free(whole.buf);
    free(chunked.buf);
    return 0;
}
