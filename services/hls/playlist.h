/* The live media playlist (RFC 8216), pure: no I/O, no clock, no globals.
 *
 * It owns the rules, so that whatever the segmenter and the clocks say, what
 * it renders is legal:
 *  - EXT-X-TARGETDURATION is set once (playlist_set_target) and never
 *    changes; a segment whose duration would round above it is written as
 *    the longest duration that does not (counted: it should not happen, see
 *    segmenter.h);
 *  - media sequence numbers go up by one per segment, from where the last
 *    owner stopped (playlist_resume) or from a caller-chosen start;
 *  - the discontinuity sequence number of each segment is that of the one
 *    before plus one if EXT-X-DISCONTINUITY precedes it;
 *    EXT-X-DISCONTINUITY-SEQUENCE is that of the first segment in the window,
 *    less one if a discontinuity tag precedes it (the tag is still shown);
 *  - EXT-X-PROGRAM-DATE-TIME runs on from the previous segment's date plus
 *    its duration; after a discontinuity it is the segment's own (ingest)
 *    date, but never earlier than where the previous segment ended;
 *  - the window slides by whole segments from the start and keeps at least
 *    <window> segments and at least three target durations (RFC 8216 section
 *    6.2.2), within a hard bound of PL_MAX_ENTRIES;
 *  - after EXT-X-ENDLIST nothing changes, until playlist_restart() begins a
 *    new presentation (sequence numbers still go on).
 * Durations and dates are kept in whole milliseconds, as they are written,
 * so that the dates add up exactly.
 */
#ifndef SLUICE_HLS_PLAYLIST_H
#define SLUICE_HLS_PLAYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_URI_MAX 48
#define PL_MAX_ENTRIES 64
#define PL_VERSION 3          /* decimal EXTINF durations */
#define PL_TARGET_MAX 60      /* seconds */

struct pl_entry {
    uint64_t seq;             /* media sequence number */
    uint64_t dseq;            /* discontinuity sequence number */
    bool disc;                /* EXT-X-DISCONTINUITY before it */
    int64_t duration_ms;      /* EXTINF */
    int64_t pdt_ms;           /* EXT-X-PROGRAM-DATE-TIME, ms since the epoch */
    char uri[PL_URI_MAX];
};

/* What the caller knows of a new segment. */
struct pl_segment {
    int64_t duration_us;      /* measured; > 0 */
    int64_t wall_us;          /* ingest wall clock of its first frame */
    bool disc;                /* it does not continue the previous one */
    uint64_t epoch;           /* for its name: "<epoch>-<seq>.ts" */
};

struct playlist {
    unsigned target;          /* seconds; 0 until set */
    unsigned window;
    bool ended;
    struct pl_entry e[PL_MAX_ENTRIES];   /* ring */
    unsigned head, n;
    int64_t total_ms;         /* of the window */
    /* the last segment, also after the window was cleared (resumed, restarted) */
    bool has_last;
    uint64_t last_seq, last_dseq;
    int64_t last_end_ms;      /* its date plus its duration */
    uint64_t next_seq, next_dseq;   /* when there is no last segment */
    uint64_t changes;         /* bumped by every change */
    uint64_t clamped;         /* durations written shorter than measured */
};

/* A new, empty playlist keeping <window> segments (at least 1). Its first
 * segment will be <first_seq> in discontinuity sequence <first_dseq>. */
void playlist_init(struct playlist *pl, unsigned window, uint64_t first_seq,
                   uint64_t first_dseq);

/* Continues after a segment packaged before (by another owner, or before a
 * restart): the next segment is <seq> + 1, preceded by a discontinuity, and
 * its date is not before <end_ms>. The window starts empty. */
void playlist_resume(struct playlist *pl, uint64_t seq, uint64_t dseq, int64_t end_ms);

/* Sets EXT-X-TARGETDURATION (1..PL_TARGET_MAX), once. Returns 0, or -1 if it
 * is already set to another value or out of range. */
int playlist_set_target(struct playlist *pl, unsigned seconds);

/* The target duration for a first segment of <duration_us> when the wanted
 * one is <want_s>: the larger of the two (rounded as RFC 8216 rounds
 * durations), within 1..<max_s>. */
unsigned playlist_pick_target(unsigned want_s, int64_t duration_us, unsigned max_s);

/* Appends a segment (the target must be set, the playlist not ended).
 * Returns 0 with the entry written in *<out> (may be NULL), or -1. */
int playlist_add(struct playlist *pl, const struct pl_segment *seg, struct pl_entry *out);

/* Adds EXT-X-ENDLIST. */
void playlist_end(struct playlist *pl);

/* After EXT-X-ENDLIST: a new presentation, empty, whose first segment
 * follows the last one (with a discontinuity); its target duration may be
 * set anew. */
void playlist_restart(struct playlist *pl);

/* Entries in the window, oldest first (<i> < pl->n). */
const struct pl_entry *playlist_at(const struct playlist *pl, unsigned i);

/* The sequence number the window starts at (the next one when empty). */
uint64_t playlist_first_seq(const struct playlist *pl);

/* Writes the playlist into <buf> (<cap> bytes), NUL-terminated. Returns its
 * length, or the length it needs (>= cap) if <cap> is too small, like
 * snprintf. PLAYLIST_RENDER_MAX bytes are always enough. */
size_t playlist_render(const struct playlist *pl, char *buf, size_t cap);
#define PLAYLIST_RENDER_MAX (256 + PL_MAX_ENTRIES * (48 + 64 + 40 + PL_URI_MAX))

/* "<epoch>-<seq>.ts" into <buf>. Returns its length, or 0 if it did not fit. */
size_t playlist_segment_name(char *buf, size_t cap, uint64_t epoch, uint64_t seq);

/* Parses a file name of a stream directory: "index.m3u8" (returns 1), or a
 * segment name "<epoch>-<seq>.ts" of decimal numbers without leading zeros
 * (returns 2, with *<epoch> and *<seq>). Anything else: 0. */
int playlist_parse_name(const char *name, size_t len, uint64_t *epoch, uint64_t *seq);

#endif
