/* The video PES probe: reads a PES header (which may straddle packets) for
 * PTS and DTS, then scans the elementary stream for NAL start codes (which may
 * straddle packets too) until the first slice decides whether the access unit
 * is a keyframe. Reading stops there, so a probe costs the bytes before the
 * first slice (AUD, SPS, PPS, SEI), not the picture. See ts.h. */
#include "ts_int.h"

#include <string.h>

void es_probe_start(struct es_probe *e, enum ts_codec codec)
{
    memset(e, 0, sizeof(*e));
    e->state = PROBE_HEADER;
    e->codec = codec;
    e->pts = e->dts = SLP_PTS_NONE;
    e->verdict = (codec == TS_CODEC_H264 || codec == TS_CODEC_HEVC) ? KEY_UNDECIDED : KEY_NO;
}

void es_probe_abort(struct es_probe *e)
{
    if (e->verdict == KEY_UNDECIDED)
        e->verdict = KEY_NO;
    e->state = PROBE_DONE;
}

static void decide(struct es_probe *e, enum key_verdict v)
{
    e->verdict = v;
    e->state = PROBE_DONE;
}

/* A 33-bit timestamp in the PES header layout (marker bits not checked). */
static int64_t read_timestamp(const uint8_t *b)
{
    return (int64_t)((b[0] >> 1) & 7) << 30 | (int64_t)b[1] << 22 |
           (int64_t)(b[2] >> 1) << 15 | (int64_t)b[3] << 7 | b[4] >> 1;
}

/* Reads PTS and DTS from a whole PES header <h> of <n> bytes. */
static bool header_timestamps(const uint8_t *h, size_t n, int64_t *pts, int64_t *dts)
{
    unsigned flags = h[7] >> 6;
    if (!(flags & 2) || n < 14)
        return false;
    *pts = read_timestamp(h + 9);
    *dts = (flags == 3 && n >= 19) ? read_timestamp(h + 14) : *pts;
    return true;
}

/* The fixed part of a PES header: a start code and the '10' marker of the
 * optional header every audio and video stream id has. */
static bool header_valid(const uint8_t *h)
{
    return h[0] == 0 && h[1] == 0 && h[2] == 1 && (h[6] & 0xc0) == 0x80;
}

bool pes_read_pts(const uint8_t *p, size_t n, int64_t *pts, int64_t *dts)
{
    if (n < 9 || !header_valid(p) || 9 + (size_t)p[8] > n)
        return false;
    return header_timestamps(p, 9 + (size_t)p[8], pts, dts);
}

/* Takes header bytes from <p>; returns how many it used. */
static size_t header_feed(struct es_probe *e, const uint8_t *p, size_t n)
{
    size_t want = (e->hlen < 9 ? 9 : e->hneed) - e->hlen;
    size_t take = n < want ? n : want;
    memcpy(e->hdr + e->hlen, p, take);
    e->hlen += take;
    if (e->hlen == 9 && e->hneed == 0) {
        if (!header_valid(e->hdr)) {
            decide(e, KEY_NO);
            e->header_done = true;
            return take;
        }
        e->hneed = 9 + (size_t)e->hdr[8];
    }
    if (e->hneed != 0 && e->hlen == e->hneed) {
        header_timestamps(e->hdr, e->hlen, &e->pts, &e->dts);
        e->header_done = true;
        e->state = e->verdict == KEY_UNDECIDED ? PROBE_NAL : PROBE_DONE;
    }
    return take;
}

/* Reads an unsigned Exp-Golomb number from <b> (<nbits> bits) at *<pos>. */
static bool read_ue(const uint8_t *b, unsigned nbits, unsigned *pos, unsigned *out)
{
    unsigned zeros = 0;
    while (*pos < nbits && !(b[*pos / 8] & (0x80 >> (*pos % 8)))) {
        zeros++;
        (*pos)++;
    }
    if (*pos >= nbits || zeros > 16 || *pos + 1 + zeros > nbits)
        return false;
    (*pos)++;
    unsigned v = 0;
    for (unsigned i = 0; i < zeros; i++, (*pos)++)
        v = v << 1 | ((b[*pos / 8] >> (7 - *pos % 8)) & 1);
    *out = (1u << zeros) - 1 + v;
    return true;
}

/* H.264 slice header: first_mb_in_slice, slice_type; I (2, 7) and SI (4, 9)
 * slices start a keyframe when an SPS came before them. */
static void decide_slice(struct es_probe *e)
{
    unsigned pos = 0, first_mb, type;
    if (!read_ue(e->slice, 32, &pos, &first_mb) || !read_ue(e->slice, 32, &pos, &type)) {
        decide(e, KEY_NO);
        return;
    }
    decide(e, (type % 5 == 2 || type % 5 == 4) ? KEY_YES : KEY_NO);
}

static void h264_nal(struct es_probe *e, uint8_t b)
{
    if (b & 0x80)                      /* forbidden_zero_bit: not a NAL header */
        return;
    switch (b & 0x1f) {
    case 5: decide(e, KEY_YES); break;                      /* IDR slice */
    case 1:                                                 /* non-IDR slice */
        if (e->saw_sps)
            e->want_slice = true;
        else
            decide(e, KEY_NO);
        break;
    case 2: case 3: case 4: decide(e, KEY_NO); break;       /* partitions */
    case 7: e->saw_sps = true; break;                       /* SPS */
    default: break;                                         /* AUD, SEI, PPS... */
    }
}

static void hevc_nal(struct es_probe *e, uint8_t b)
{
    if (b & 0x80)
        return;
    unsigned type = (b >> 1) & 0x3f;
    if (type <= 31)                    /* a slice: IRAP is 16 (BLA) to 21 (CRA) */
        decide(e, (type >= 16 && type <= 21) ? KEY_YES : KEY_NO);
}

/* Scans elementary stream bytes. A start code is 00 00 01 (a longer run of
 * zeros before it is the 4-byte form); the byte after it is a NAL header. */
static void nal_feed(struct es_probe *e, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && e->state == PROBE_NAL; i++) {
        uint8_t b = p[i];
        if (e->want_slice) {
            e->slice[e->slice_len++] = b;
            if (e->slice_len == sizeof(e->slice))
                decide_slice(e);
            continue;
        }
        if (e->nal_next) {
            e->nal_next = false;
            if (e->codec == TS_CODEC_H264)
                h264_nal(e, b);
            else
                hevc_nal(e, b);
            e->zeros = b == 0;
            continue;
        }
        if (b == 0) {
            e->zeros += e->zeros < 2;
        } else {
            e->nal_next = b == 1 && e->zeros == 2;
            e->zeros = 0;
        }
    }
}

void es_probe_feed(struct es_probe *e, const uint8_t *p, size_t n)
{
    while (n > 0 && e->state == PROBE_HEADER) {
        size_t used = header_feed(e, p, n);
        p += used;
        n -= used;
    }
    if (n > 0 && e->state == PROBE_NAL)
        nal_feed(e, p, n);
}
