/* The packager: one stream's segmenter and playlist, and the policy between
 * them. Pure (no I/O, no clock): the daemon's stream_media.c drives it with
 * frames from the relay and publishes what comes out; the unit tests and the
 * fuzzer drive it with adversarial input and check every rendered playlist.
 *
 * Target duration (EXT-X-TARGETDURATION), decided once per presentation:
 *  - continuing a playlist (packager_resume with a state that did not end):
 *    the state's, since a live playlist's target duration never changes;
 *  - otherwise from the first segment: the wanted target (option
 *    target-duration, rounded up) or that segment's rounded duration if
 *    longer (a GOP longer than the target), at most max_target. The first
 *    segment may be up to max_target + 0.5 s long; it is the only segment
 *    published before the target is known, and nothing is published before it.
 * Then the segmenter's limit is set just under target + 0.5 s, so that every
 * later segment rounds to at most the target (see segmenter.h for how).
 */
#ifndef SLUICE_HLS_PACKAGER_H
#define SLUICE_HLS_PACKAGER_H

#include <stdbool.h>
#include <stdint.h>

#include "playlist.h"
#include "pstate.h"
#include "segmenter.h"

struct packager_options {
    int64_t target_us;         /* cut once a segment holds this much */
    unsigned max_target_s;     /* bound on the target duration (and the first segment) */
    size_t max_bytes;          /* bound on a segment's size */
    unsigned window;           /* segments in the playlist */
};

/* A segment added to the playlist: its bytes (now the caller's) and entry. */
struct packaged {
    struct seg_out seg;
    struct pl_entry entry;
};

struct packager {
    struct packager_options o;
    struct segmenter *seg;
    struct playlist pl;
    uint64_t epoch;
    unsigned prev_target;           /* of the presentation before (resumed, restarted) */
    int64_t end_pts, end_wall_us;   /* of the last segment, for the state */
};

/* Constructor for a playlist whose segments are named with <epoch>, starting
 * fresh at <first_seq>, <first_dseq> unless resumed. NULL when out of memory. */
struct packager *packager_new(const struct packager_options *o, uint64_t epoch,
                              uint64_t first_seq, uint64_t first_dseq);
void packager_free(struct packager *p);

/* Continues the playlist described by <st> (has_segment): sequence numbers
 * go on, the first segment is a discontinuity, media ingest had by
 * st->end_wall_us is skipped, and the target duration stays (unless the
 * playlist had ended). */
void packager_resume(struct packager *p, const struct pstate *st);

/* Feeds a frame. Returns 1 with a segment added to the playlist in *<out>,
 * 0 if none, -1 on allocation failure (media lost; see segmenter_feed). */
int packager_feed(struct packager *p, const struct seg_frame *f, struct packaged *out);

/* Ends the open segment (see segmenter_flush): 1 with it in *<out>, or 0. */
int packager_flush(struct packager *p, bool discontinuity, struct packaged *out);

/* The next segment starts a new timeline. */
void packager_discontinuity(struct packager *p);

/* EXT-X-ENDLIST (flush first: a segment still open is dropped);
 * packager_restart() begins a new presentation after it. */
void packager_end(struct packager *p);
void packager_restart(struct packager *p);

/* Something has been published (the playlist has a segment). */
bool packager_ready(const struct packager *p);

/* The state to record for the next owner after the last segment: everything
 * but the owner. has_segment is false until a segment was added. */
void packager_state(const struct packager *p, struct pstate *out);

/* The segmenter limit for a target duration of <target_s>: the longest
 * duration that rounds to <target_s>, less a millisecond, in ticks. */
int64_t packager_limit(unsigned target_s);

#endif
