/* A checker of live media playlists as sluice-hls writes them, for the unit
 * tests and the fuzzer (tests/integration/hlscheck.py is the same for the
 * integration tests, in Python). Fed every playlist a client would see, in
 * order, it checks RFC 8216's rules on each and across them:
 *  - #EXTM3U first; EXT-X-VERSION, EXT-X-TARGETDURATION, EXT-X-MEDIA-SEQUENCE
 *    and EXT-X-DISCONTINUITY-SEQUENCE once each, before the first segment;
 *  - every EXTINF positive, rounding to at most the target duration;
 *  - every segment dated; dates run on by the durations, and after a
 *    discontinuity never go back;
 *  - segment names "<epoch>-<seq>.ts" carry their sequence number;
 *  - across playlists: the target duration never changes, the media sequence
 *    never decreases, the playlist never loses its end, a sequence number
 *    always has the same name, duration, date and discontinuity sequence
 *    number; after EXT-X-ENDLIST, only the same playlist or a new
 *    presentation (sequence numbers beyond the ended one);
 *  - (strict) a playlist that slid keeps three target durations, unless its
 *    window restarted at a discontinuity (a new owner: nothing in common
 *    with the playlist before).
 * Header-only, no allocation.
 */
#ifndef SLUICE_TEST_PLCHECK_H
#define SLUICE_TEST_PLCHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PLC_HISTORY 512

struct plc_seg {
    uint64_t seq, dseq;
    int64_t dur_ms, pdt_ms;
    bool disc;
    char uri[64];
};

struct plcheck {
    bool strict;                 /* also the three-target-durations rule */
    bool seen;
    unsigned target;
    uint64_t ms, last_seq;       /* of the previous playlist */
    unsigned n;
    bool ended;
    struct plc_seg hist[PLC_HISTORY];   /* by seq % PLC_HISTORY */
    bool hist_valid[PLC_HISTORY];
    char err[512];
    unsigned playlists;
};

static inline int plc_fail(struct plcheck *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int plc_fail(struct plcheck *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return -1;
}

static inline bool plc_prefix(const char *line, size_t len, const char *tag, const char **val)
{
    size_t n = strlen(tag);
    if (len < n || memcmp(line, tag, n) != 0)
        return false;
    *val = line + n;
    return true;
}

static inline bool plc_u64(const char *p, const char *end, uint64_t *out)
{
    if (p >= end)
        return false;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

/* "12.345," -> 12345 ms */
static inline bool plc_extinf(const char *p, const char *end, int64_t *ms)
{
    const char *dot = memchr(p, '.', (size_t)(end - p));
    const char *comma = memchr(p, ',', (size_t)(end - p));
    uint64_t s, f;
    if (!dot || !comma || comma != end - 1 || comma - dot != 4 || !plc_u64(p, dot, &s) ||
        !plc_u64(dot + 1, comma, &f))
        return false;
    *ms = (int64_t)(s * 1000 + f);
    return true;
}

/* "2026-11-21T10:00:00.123Z" -> ms since the epoch */
static inline bool plc_date(const char *p, const char *end, int64_t *ms)
{
    if (end - p != 24 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' ||
        p[16] != ':' || p[19] != '.' || p[23] != 'Z')
        return false;
    uint64_t y, mo, d, h, mi, s, f;
    if (!plc_u64(p, p + 4, &y) || !plc_u64(p + 5, p + 7, &mo) || !plc_u64(p + 8, p + 10, &d) ||
        !plc_u64(p + 11, p + 13, &h) || !plc_u64(p + 14, p + 16, &mi) ||
        !plc_u64(p + 17, p + 19, &s) || !plc_u64(p + 20, p + 23, &f))
        return false;
    struct tm tm = { .tm_year = (int)y - 1900, .tm_mon = (int)mo - 1, .tm_mday = (int)d,
                     .tm_hour = (int)h, .tm_min = (int)mi, .tm_sec = (int)s };
    *ms = (int64_t)timegm(&tm) * 1000 + (int64_t)f;
    return true;
}

/* Checks one playlist (<len> bytes). Returns 0, or -1 with c->err. */
static inline int plcheck_feed(struct plcheck *c, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    int version = -1, target = -1;
    bool has_ms = false, has_ds = false, endlist = false, pending_disc = false;
    bool have_pdt = false, in_segments = false;
    uint64_t ms = 0, ds = 0, dseq = 0;
    int64_t pdt = 0, dur = -1, prev_end = -1;
    unsigned n = 0, line_no = 0;
    int64_t total = 0;
    struct plc_seg segs[128];
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            return plc_fail(c, "last line without a newline");
        const char *v;
        size_t ll = (size_t)(eol - p);
        line_no++;
        if (endlist)
            return plc_fail(c, "line %u after EXT-X-ENDLIST", line_no);
        if (line_no == 1) {
            if (ll != 7 || memcmp(p, "#EXTM3U", 7) != 0)
                return plc_fail(c, "first line is not #EXTM3U");
        } else if (plc_prefix(p, ll, "#EXT-X-VERSION:", &v)) {
            uint64_t x;
            if (version != -1 || in_segments || !plc_u64(v, eol, &x) || x < 3)
                return plc_fail(c, "bad or repeated EXT-X-VERSION");
            version = (int)x;
        } else if (plc_prefix(p, ll, "#EXT-X-TARGETDURATION:", &v)) {
            uint64_t x;
            if (target != -1 || in_segments || !plc_u64(v, eol, &x) || x < 1 || x > 3600)
                return plc_fail(c, "bad or repeated EXT-X-TARGETDURATION");
            target = (int)x;
        } else if (plc_prefix(p, ll, "#EXT-X-MEDIA-SEQUENCE:", &v)) {
            if (has_ms || in_segments || !plc_u64(v, eol, &ms))
                return plc_fail(c, "bad, late or repeated EXT-X-MEDIA-SEQUENCE");
            has_ms = true;
        } else if (plc_prefix(p, ll, "#EXT-X-DISCONTINUITY-SEQUENCE:", &v)) {
            if (has_ds || in_segments || !plc_u64(v, eol, &ds))
                return plc_fail(c, "bad, late or repeated EXT-X-DISCONTINUITY-SEQUENCE");
            has_ds = true;
            dseq = ds;
        } else if (ll == 20 && memcmp(p, "#EXT-X-DISCONTINUITY", 20) == 0) {
            in_segments = true;
            pending_disc = true;
        } else if (plc_prefix(p, ll, "#EXT-X-PROGRAM-DATE-TIME:", &v)) {
            in_segments = true;
            if (!plc_date(v, eol, &pdt))
                return plc_fail(c, "bad EXT-X-PROGRAM-DATE-TIME at line %u", line_no);
            have_pdt = true;
        } else if (plc_prefix(p, ll, "#EXTINF:", &v)) {
            in_segments = true;
            if (!plc_extinf(v, eol, &dur) || dur <= 0)
                return plc_fail(c, "bad EXTINF at line %u", line_no);
        } else if (ll == 14 && memcmp(p, "#EXT-X-ENDLIST", 14) == 0) {
            endlist = true;
        } else if (ll > 0 && p[0] != '#') {
            if (dur < 0 || !have_pdt)
                return plc_fail(c, "segment at line %u without EXTINF or date", line_no);
            if (target < 1)
                return plc_fail(c, "segment before EXT-X-TARGETDURATION");
            if ((dur + 500) / 1000 > target)
                return plc_fail(c, "EXTINF %" PRId64 " ms rounds above target %d", dur, target);
            if (n >= 128)
                return plc_fail(c, "too many segments");
            uint64_t seq = ms + n;
            if (pending_disc)
                dseq++;
            if (prev_end >= 0 && ((!pending_disc && pdt != prev_end) || pdt < prev_end))
                return plc_fail(c, "date of segment %" PRIu64 " is %" PRId64 ", previous ended "
                                "at %" PRId64 "%s", seq, pdt, prev_end,
                                pending_disc ? " (after a discontinuity)" : "");
            char want[64];
            int wl = snprintf(want, sizeof(want), "-%" PRIu64 ".ts", seq);
            if (ll >= sizeof(segs[0].uri) || ll <= (size_t)wl ||
                memcmp(eol - wl, want, (size_t)wl) != 0)
                return plc_fail(c, "segment %" PRIu64 " is named %.*s", seq, (int)ll, p);
            struct plc_seg *s = &segs[n++];
            *s = (struct plc_seg){ seq, dseq, dur, pdt, pending_disc, "" };
            memcpy(s->uri, p, ll);
            s->uri[ll] = '\0';
            prev_end = pdt + dur;
            total += dur;
            pending_disc = have_pdt = false;
            dur = -1;
        } else if (ll > 0 && memcmp(p, "#EXT", 4) == 0) {
            return plc_fail(c, "unknown tag at line %u: %.*s", line_no, (int)ll, p);
        }
        p = eol + 1;
    }
    if (line_no == 0 || version < 0 || target < 0)
        return plc_fail(c, "missing EXTM3U, EXT-X-VERSION or EXT-X-TARGETDURATION");
    if (pending_disc || dur >= 0 || have_pdt)
        return plc_fail(c, "tags after the last segment");
    if (n == 0)
        return plc_fail(c, "no segment");
    uint64_t last = ms + n - 1;
    /* across playlists */
    bool new_presentation = c->seen && c->ended && ms > c->last_seq;
    if (c->seen && !new_presentation) {
        if ((unsigned)target != c->target)
            return plc_fail(c, "target duration changed from %u to %d", c->target, target);
        if (ms < c->ms)
            return plc_fail(c, "media sequence went back from %" PRIu64 " to %" PRIu64, c->ms, ms);
        if (last < c->last_seq)
            return plc_fail(c, "last segment went back from %" PRIu64 " to %" PRIu64,
                            c->last_seq, last);
        if (c->ended && (last != c->last_seq || ms != c->ms || !endlist))
            return plc_fail(c, "playlist changed after EXT-X-ENDLIST");
        bool restarted = ms > c->last_seq && segs[0].disc;
        if (c->strict && ms > c->ms && !restarted && total < 3 * (int64_t)target * 1000)
            return plc_fail(c, "slid to %" PRId64 " ms, less than three target durations", total);
    }
    for (unsigned i = 0; i < n; i++) {
        struct plc_seg *s = &segs[i];
        unsigned k = (unsigned)(s->seq % PLC_HISTORY);
        struct plc_seg *h = &c->hist[k];
        if (c->hist_valid[k] && h->seq == s->seq &&
            (strcmp(h->uri, s->uri) != 0 || h->dur_ms != s->dur_ms || h->pdt_ms != s->pdt_ms ||
             h->dseq != s->dseq))
            return plc_fail(c, "segment %" PRIu64 " changed: %s %" PRId64 " ms at %" PRId64
                            " dseq %" PRIu64 ", now %s %" PRId64 " ms at %" PRId64 " dseq %" PRIu64,
                            s->seq, h->uri, h->dur_ms, h->pdt_ms, h->dseq, s->uri, s->dur_ms,
                            s->pdt_ms, s->dseq);
        *h = *s;
        c->hist_valid[k] = true;
    }
    c->seen = true;
    c->target = (unsigned)target;
    c->ms = ms;
    c->last_seq = last;
    c->n = n;
    c->ended = endlist;
    c->playlists++;
    return 0;
}

#endif
