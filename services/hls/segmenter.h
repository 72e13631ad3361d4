/* The segmenter: SLP MEDIA frames in, HLS segments out. Pure: no I/O, no
 * clock, no globals; it allocates only the segment it is filling.
 *
 * It relies on the media contract (proto/SLP.md section 9) instead of parsing
 * TS: a KEYFRAME frame begins with PAT, PMT and the keyframe's PES, so a
 * segment that starts there is decodable from its first byte; a frame with a
 * PTS begins an access unit of the primary PID. Timing is PTS (90 kHz, modulo
 * 2^33); the ingest wall clock only dates segments.
 *
 * Where a segment ends (struct seg_out.cut):
 *   SEG_CUT_KEYFRAME  at a keyframe, once the segment holds <target> of media;
 *   SEG_CUT_EARLY     at a keyframe before <target>, when waiting for the next
 *                     one (one more GOP like the last) would pass <limit>;
 *   SEG_CUT_OVERRUN   at an access unit, when no keyframe came in time and
 *                     one more frame would pass <limit>: the next segment
 *                     starts with copies of the latest PAT/PMT and a frame
 *                     that is not a keyframe (decodable after the previous
 *                     segment, which is how live viewers play it);
 *   SEG_CUT_JUMP      at a keyframe flagged DISCONTINUITY, or whose PTS went
 *                     backwards or past <limit> (an input restart, a gap):
 *                     the next segment starts a new timeline;
 *   SEG_CUT_SIZE      the segment reached <max_bytes>: frames are dropped up
 *                     to the next keyframe, which starts a new timeline;
 *   SEG_CUT_FLUSH     segmenter_flush(): the end of the input or a stall.
 * So no segment is ever longer than <limit> as far as PTS can tell: the
 * playlist's target duration holds without changing it (docs/hls.md).
 */
#ifndef SLUICE_HLS_SEGMENTER_H
#define SLUICE_HLS_SEGMENTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEG_HZ 90000                       /* PTS ticks per second */
#define SEG_PTS_MOD (INT64_C(1) << 33)

enum seg_cut {
    SEG_CUT_KEYFRAME, SEG_CUT_EARLY, SEG_CUT_OVERRUN, SEG_CUT_JUMP, SEG_CUT_SIZE,
    SEG_CUT_FLUSH,
    SEG_CUT_COUNT
};

struct seg_options {
    int64_t target;        /* ticks: cut at the first keyframe at or after this */
    int64_t limit;         /* ticks: no segment longer than this (see segmenter_set_limit) */
    size_t max_bytes;      /* no segment larger than this */
};

/* One MEDIA frame, as SLP carries it. */
struct seg_frame {
    uint16_t flags;        /* SLP_F_KEYFRAME, SLP_F_DISCONTINUITY */
    int64_t pts;           /* 0..2^33-1, or -1 (SLP_PTS_NONE) */
    int64_t wall_us;       /* ingest wall clock of its first packet; 0 unknown */
    const uint8_t *ts;     /* whole 188-byte packets, <len> bytes */
    size_t len;
};

/* A finished segment. <data> (<len> bytes, malloc'd, with <cap> allocated)
 * now belongs to the caller. */
struct seg_out {
    uint8_t *data;
    size_t len, cap;
    int64_t start_pts;     /* ticks, where the segment's timeline starts */
    int64_t duration;      /* ticks, > 0 */
    int64_t start_wall_us; /* ingest wall clock of its first frame (0 unknown) */
    int64_t end_wall_us;   /* ... of the frame that ended it; flushed, just after its last
                            * frame's (one µs more: frames of one ingest read share one) */
    int64_t end_pts;       /* PTS of the frame that ended it (where the next starts), or -1 */
    bool discontinuity;    /* it does not continue the previous segment */
    bool keyframe;         /* it starts with a keyframe */
    enum seg_cut cut;
};

struct segmenter;

/* Constructor; NULL on allocation failure. */
struct segmenter *segmenter_new(const struct seg_options *o);
void segmenter_free(struct segmenter *s);

/* Feeds one frame. Returns 1 when a segment ended before this frame (then
 * in *<out>), 0 when not, -1 when out of memory (the frame is lost, and the
 * next segment starts at the next keyframe, as a discontinuity). Frames
 * before the first keyframe, or skipped (segmenter_skip_before), are dropped. */
int segmenter_feed(struct segmenter *s, const struct seg_frame *f, struct seg_out *out);

/* Ends the open segment (end of input, stall, the publisher went away). Returns
 * 1 with it in *<out> if it held media, else 0. The next segment starts at
 * the next keyframe; with <discontinuity>, as a new timeline. */
int segmenter_flush(struct segmenter *s, bool discontinuity, struct seg_out *out);

/* The next segment starts a new timeline (e.g. a new connection). */
void segmenter_discontinuity(struct segmenter *s);

/* Sets the longest allowed segment, in ticks (from the playlist's target
 * duration). */
void segmenter_set_limit(struct segmenter *s, int64_t limit);

/* Media already packaged (by a previous owner) is skipped: keyframes whose
 * ingest wall clock is before <wall_us> do not start a segment. 0 = none. */
void segmenter_skip_before(struct segmenter *s, int64_t wall_us);

/* True while a segment is open. */
bool segmenter_open(const struct segmenter *s);

/* Frames dropped (before a keyframe, skipped, past the size bound). */
uint64_t segmenter_dropped(const struct segmenter *s);

/* Signed distance from <from> to <to> on the 33-bit PTS circle, in ticks:
 * within (-2^32, 2^32]. */
int64_t seg_pts_delta(int64_t to, int64_t from);

/* The number of leading PAT/PMT packets of a KEYFRAME frame (<len> bytes):
 * packets on PID 0, then those on the PID that follows. At most <max>. */
size_t seg_psi_prefix(const uint8_t *ts, size_t len, size_t max);

const char *seg_cut_name(enum seg_cut c);

#endif
