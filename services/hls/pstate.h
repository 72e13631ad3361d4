/* The packaging state of a stream, `sluice:hls:<name>` (docs/redis.md): what
 * the next owner of a stream needs to continue its playlist legally. Pure
 * parse and format; the parser takes whatever Redis holds (another version,
 * another origin, garbage) and either fills the struct with values in range
 * or refuses.
 */
#ifndef SLUICE_HLS_PSTATE_H
#define SLUICE_HLS_PSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSTATE_MAX_LEN 4096            /* a longer value is refused unread */
#define PSTATE_OWNER_MAX 128
#define PSTATE_SEQ_MAX ((UINT64_C(1) << 53) - 1)   /* exact in any JSON reader */
#define PSTATE_EPOCH_MAX PSTATE_SEQ_MAX

struct pstate {
    uint64_t epoch;                /* the last owner's epoch, >= 1 */
    bool has_segment;              /* the fields below describe its last segment */
    uint64_t media_sequence;       /* of the last segment packaged */
    uint64_t discontinuity_sequence;   /* of that segment */
    unsigned target_duration;      /* EXT-X-TARGETDURATION, seconds */
    int64_t last_pdt_us;           /* that segment's EXT-X-PROGRAM-DATE-TIME */
    int64_t last_duration_us;      /* and its EXTINF */
    int64_t end_pts;               /* PTS where the next segment starts; -1 unknown */
    int64_t end_wall_us;           /* ingest wall clock there; 0 unknown */
    bool ended;                    /* the playlist was ended with EXT-X-ENDLIST */
    char owner[PSTATE_OWNER_MAX + 1];  /* holder id of the last owner ("" unknown) */
};

/* Parses <len> bytes of JSON into *<out>. Returns 0, or -1 with a short,
 * printable reason in <why> (<whylen> bytes). Unknown keys are ignored. */
int pstate_parse(const char *buf, size_t len, struct pstate *out, char *why, size_t whylen);

/* The JSON of <st> (compact, malloc'd; the caller frees), stamped with
 * <now_us> as "updated_at", or NULL (out of memory, or values out of range). */
char *pstate_format(const struct pstate *st, int64_t now_us);

#endif
