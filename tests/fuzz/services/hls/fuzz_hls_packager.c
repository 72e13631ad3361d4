/* libFuzzer: the packager (segmenter, playlist, target-duration policy) fed
 * any sequence of frames: flags, PTS (wrapping, jumping, missing), wall
 * clocks, sizes, flushes, discontinuities, resumes and ends, as a relay, a
 * broken encoder or an earlier owner's state could produce them. Every
 * playlist it renders must pass the checker (tests/unit/services/hls/
 * plcheck.h): the origin's playlists are legal whatever its input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/hls/packager.h"
#include "../../../unit/services/hls/mediagen.h"
#include "../../../unit/services/hls/plcheck.h"

struct input {
    const uint8_t *p;
    size_t n;
};

static uint64_t take(struct input *in, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        v = v << 8 | (in->n ? *in->p : 0);
        if (in->n) {
            in->p++;
            in->n--;
        }
    }
    return v;
}

static char text[PLAYLIST_RENDER_MAX];
static struct plcheck checker;

static void check(struct packager *pk)
{
    size_t n = playlist_render(&pk->pl, text, sizeof(text));
    if (n >= sizeof(text) || plcheck_feed(&checker, text, n) != 0)
        abort();
}

static void got(struct packager *pk, int rc, struct packaged *out)
{
    if (rc == 1) {
        free(out->seg.data);
        check(pk);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = { data, size };
    struct packager_options o = {
        .target_us = 500000 + (int64_t)(take(&in, 1) % 8) * 500000,
        .max_target_s = 1 + (unsigned)(take(&in, 1) % 12),
        .max_bytes = 1 << 20, .window = 1 + (unsigned)(take(&in, 1) % 10),
    };
    struct packager *pk = packager_new(&o, 1 + take(&in, 1), take(&in, 4), take(&in, 2));
    if (pk == NULL)
        return 0;
    memset(&checker, 0, sizeof(checker));
    if (take(&in, 1) % 4 == 0) {        /* continue an earlier owner's playlist */
        struct pstate st = { .epoch = 1, .has_segment = true, .media_sequence = take(&in, 3),
                             .discontinuity_sequence = take(&in, 1),
                             .target_duration = 1 + (unsigned)(take(&in, 1) % 10),
                             .last_pdt_us = (int64_t)take(&in, 6),
                             .last_duration_us = (int64_t)(take(&in, 2) * 1000),
                             .end_pts = -1, .end_wall_us = (int64_t)take(&in, 6),
                             .ended = take(&in, 1) % 2 };
        packager_resume(pk, &st);
    }
    int64_t pts = (int64_t)take(&in, 5) & (SEG_PTS_MOD - 1), wall = (int64_t)take(&in, 6);
    struct mg_frame m;
    struct packaged out;
    while (in.n > 0) {
        uint8_t op = (uint8_t)take(&in, 1);
        int64_t step = (int64_t)take(&in, 2);
        switch (op >> 5) {
        case 0:                              /* time passes as it should */
            pts = (pts + step) & (SEG_PTS_MOD - 1);
            wall += step * 11;
            break;
        case 1:                              /* a jump anywhere */
            pts = (int64_t)(take(&in, 5) & (SEG_PTS_MOD - 1));
            wall += (int64_t)take(&in, 3);
            break;
        case 2:                              /* back a little */
            pts = (pts - step) & (SEG_PTS_MOD - 1);
            break;
        case 3:
            got(pk, packager_flush(pk, op & 1, &out), &out);
            continue;
        case 4:
            packager_discontinuity(pk);
            continue;
        case 5:
            if (op & 1) {
                packager_end(pk);
                if (pk->pl.n > 0)
                    check(pk);
            } else {
                packager_restart(pk);
            }
            continue;
        default:
            break;
        }
        bool key = op & 1;
        struct seg_frame *f = mg_make(&m, key, (op & 2) ? -1 : pts, wall, 1 + (op >> 2) % 8, 0);
        if (op & 0x80 && op & 0x40 && key)
            f->flags |= SLP_F_DISCONTINUITY;
        got(pk, packager_feed(pk, f, &out), &out);
    }
    packager_free(pk);
    return 0;
}
