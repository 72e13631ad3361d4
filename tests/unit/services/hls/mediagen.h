/* Synthetic SLP MEDIA frames for the hls unit tests and fuzzer: a KEYFRAME
 * frame is PAT, PMT, then a video PES start; another frame is a video PES
 * start (an access unit) and some payload packets. Only what the segmenter
 * looks at is real: sync bytes, PIDs, PUSI, adaptation fields, PES start codes.
 */
#ifndef SLUICE_TEST_MEDIAGEN_H
#define SLUICE_TEST_MEDIAGEN_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../../../../services/hls/segmenter.h"
#include "sluice/slp-t.h"

#define MG_MAX_PACKETS 16

struct mg_frame {
    uint8_t ts[MG_MAX_PACKETS * 188];
    struct seg_frame f;
};

static inline void mg_packet(uint8_t *p, unsigned pid, bool pusi, bool adaptation, uint8_t tag)
{
    memset(p, 0xff, 188);
    p[0] = 0x47;
    p[1] = (uint8_t)((pusi ? 0x40 : 0) | ((pid >> 8) & 0x1f));
    p[2] = (uint8_t)pid;
    p[3] = adaptation ? 0x30 : 0x10;
    size_t off = 4;
    if (adaptation) {
        p[4] = 7;          /* adaptation field of 7 bytes */
        p[5] = 0x50;
        off = 12;
    }
    if (pusi && (pid == 0x100 || pid == 0x101)) {   /* a PES start */
        p[off] = 0;
        p[off + 1] = 0;
        p[off + 2] = 1;
        p[off + 3] = 0xe0;
    } else if (pusi) {                   /* a PSI section: pointer field, table id */
        p[off] = 0;
        p[off + 1] = pid == 0 ? 0x00 : 0x02;
    }
    p[187] = tag;                        /* to tell frames apart in the output */
}

/* A frame with <npackets> packets (at least 1; 3 more for a keyframe). */
static inline struct seg_frame *mg_make(struct mg_frame *m, bool key, int64_t pts,
                                        int64_t wall_us, unsigned npackets, uint8_t tag)
{
    unsigned n = 0;
    if (key) {
        mg_packet(m->ts + 188 * n++, 0, true, false, tag);
        mg_packet(m->ts + 188 * n++, 0x1000, true, false, tag);
    }
    mg_packet(m->ts + 188 * n++, 0x100, pts >= 0, key, tag);
    for (unsigned i = 1; i < npackets && n < MG_MAX_PACKETS; i++)
        mg_packet(m->ts + 188 * n++, i % 2 ? 0x100 : 0x101, false, false, tag);
    m->f = (struct seg_frame){ .flags = key ? SLP_F_KEYFRAME : 0, .pts = pts,
                               .wall_us = wall_us, .ts = m->ts, .len = 188 * n };
    return &m->f;
}

#endif
