/* The live media playlist: see playlist.h. */
#include "playlist.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sluice/clock.h"

#define PDT_MAX_MS INT64_C(253402300799999)   /* 9999-12-31T23:59:59.999Z */

void playlist_init(struct playlist *pl, unsigned window, uint64_t first_seq,
                   uint64_t first_dseq)
{
    memset(pl, 0, sizeof(*pl));
    pl->window = window < 1 ? 1 : window > PL_MAX_ENTRIES / 2 ? PL_MAX_ENTRIES / 2 : window;
    pl->next_seq = first_seq;
    pl->next_dseq = first_dseq;
}

void playlist_resume(struct playlist *pl, uint64_t seq, uint64_t dseq, int64_t end_ms)
{
    pl->n = pl->head = 0;
    pl->total_ms = 0;
    pl->ended = false;
    pl->has_last = true;
    pl->last_seq = seq;
    pl->last_dseq = dseq;
    pl->last_end_ms = end_ms < 0 ? 0 : end_ms > PDT_MAX_MS ? PDT_MAX_MS : end_ms;
    pl->changes++;
}

int playlist_set_target(struct playlist *pl, unsigned seconds)
{
    if (seconds < 1 || seconds > PL_TARGET_MAX || (pl->target && pl->target != seconds))
        return -1;
    pl->target = seconds;
    return 0;
}

unsigned playlist_pick_target(unsigned want_s, int64_t duration_us, unsigned max_s)
{
    /* RFC 8216 compares durations rounded to the nearest integer */
    int64_t rounded = duration_us > 0 ? (duration_us + 500000) / 1000000 : 0;
    int64_t t = (int64_t)want_s > rounded ? (int64_t)want_s : rounded;
    if (max_s > PL_TARGET_MAX)
        max_s = PL_TARGET_MAX;
    if (t > (int64_t)max_s)
        t = max_s;
    return t < 1 ? 1 : (unsigned)t;
}

static struct pl_entry *entry(struct playlist *pl, unsigned i)
{
    return &pl->e[(pl->head + i) % PL_MAX_ENTRIES];
}

const struct pl_entry *playlist_at(const struct playlist *pl, unsigned i)
{
    return &pl->e[(pl->head + i) % PL_MAX_ENTRIES];
}

uint64_t playlist_first_seq(const struct playlist *pl)
{
    if (pl->n > 0)
        return playlist_at(pl, 0)->seq;
    return pl->has_last ? pl->last_seq + 1 : pl->next_seq;
}

static void drop_first(struct playlist *pl)
{
    pl->total_ms -= entry(pl, 0)->duration_ms;
    pl->head = (pl->head + 1) % PL_MAX_ENTRIES;
    pl->n--;
}

/* Drops whole segments from the start while more than <window> remain and
 * what remains still lasts three target durations; and always beyond the
 * ring's bound. */
static void slide(struct playlist *pl)
{
    int64_t min_ms = 3 * (int64_t)pl->target * 1000;
    while (pl->n > pl->window && pl->total_ms - entry(pl, 0)->duration_ms >= min_ms)
        drop_first(pl);
    while (pl->n > PL_MAX_ENTRIES - 1)
        drop_first(pl);
}

/* The written duration: whole milliseconds, at least 1, and rounding to no
 * more than the target duration (so below target + 0.5 s). */
static int64_t written_duration(struct playlist *pl, int64_t duration_us)
{
    int64_t ms = duration_us > 0 ? (duration_us + 500) / 1000 : 0;
    int64_t max_ms = (int64_t)pl->target * 1000 + 499;
    if (ms < 1)
        ms = 1;
    if (ms > max_ms) {
        ms = max_ms;
        pl->clamped++;
    }
    return ms;
}

static int64_t clamp_date(int64_t ms)
{
    return ms < 0 ? 0 : ms > PDT_MAX_MS ? PDT_MAX_MS : ms;
}

int playlist_add(struct playlist *pl, const struct pl_segment *seg, struct pl_entry *out)
{
    if (pl->target == 0 || pl->ended)
        return -1;
    struct pl_entry e = { 0 };
    int64_t wall_ms = clamp_date(seg->wall_us / 1000);
    if (pl->has_last) {
        e.seq = pl->last_seq + 1;
        e.disc = seg->disc;
        e.dseq = pl->last_dseq + (e.disc ? 1 : 0);
        e.pdt_ms = e.disc && wall_ms > pl->last_end_ms ? wall_ms : pl->last_end_ms;
    } else {
        e.seq = pl->next_seq;
        e.disc = false;                /* nothing before it to differ from */
        e.dseq = pl->next_dseq;
        e.pdt_ms = wall_ms;
    }
    e.duration_ms = written_duration(pl, seg->duration_us);
    if (playlist_segment_name(e.uri, sizeof(e.uri), seg->epoch, e.seq) == 0)
        return -1;
    *entry(pl, pl->n) = e;
    pl->n++;
    pl->total_ms += e.duration_ms;
    pl->has_last = true;
    pl->last_seq = e.seq;
    pl->last_dseq = e.dseq;
    pl->last_end_ms = clamp_date(e.pdt_ms + e.duration_ms);
    pl->changes++;
    slide(pl);
    if (out != NULL)
        *out = e;
    return 0;
}

void playlist_end(struct playlist *pl)
{
    if (!pl->ended) {
        pl->ended = true;
        pl->changes++;
    }
}

void playlist_restart(struct playlist *pl)
{
    if (pl->has_last)
        playlist_resume(pl, pl->last_seq, pl->last_dseq, pl->last_end_ms);
    pl->ended = false;
    pl->target = 0;
    pl->n = pl->head = 0;
    pl->total_ms = 0;
    pl->changes++;
}

/* Appends what fmt makes to buf at *len (tracking the length needed). */
__attribute__((format(printf, 4, 5)))
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*len < cap ? buf + *len : NULL, *len < cap ? cap - *len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
}

size_t playlist_render(const struct playlist *pl, char *buf, size_t cap)
{
    size_t len = 0;
    uint64_t first_dseq = pl->n ? playlist_at(pl, 0)->dseq - playlist_at(pl, 0)->disc
                                : (pl->has_last ? pl->last_dseq : pl->next_dseq);
    if (cap > 0)
        buf[0] = '\0';
    put(buf, cap, &len,
        "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%u\n#EXT-X-MEDIA-SEQUENCE:%" PRIu64
        "\n#EXT-X-DISCONTINUITY-SEQUENCE:%" PRIu64 "\n",
        PL_VERSION, pl->target, playlist_first_seq(pl), first_dseq);
    for (unsigned i = 0; i < pl->n; i++) {
        const struct pl_entry *e = playlist_at(pl, i);
        char date[40];
        clock_rfc3339(date, sizeof(date), e->pdt_ms * 1000);
        put(buf, cap, &len, "%s#EXT-X-PROGRAM-DATE-TIME:%s\n#EXTINF:%" PRId64 ".%03" PRId64
            ",\n%s\n", e->disc ? "#EXT-X-DISCONTINUITY\n" : "", date, e->duration_ms / 1000,
            e->duration_ms % 1000, e->uri);
    }
    if (pl->ended)
        put(buf, cap, &len, "#EXT-X-ENDLIST\n");
    return len;
}

size_t playlist_segment_name(char *buf, size_t cap, uint64_t epoch, uint64_t seq)
{
    int n = snprintf(buf, cap, "%" PRIu64 "-%" PRIu64 ".ts", epoch, seq);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Parses a decimal number without leading zeros from <p> up to <end>.
 * Returns the position after it, or NULL. */
static const char *number(const char *p, const char *end, uint64_t *out)
{
    const char *start = p;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - start >= 19)
            return NULL;                  /* keeps clear of 2^64 */
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p == start || (*start == '0' && p - start > 1))
        return NULL;
    *out = v;
    return p;
}

int playlist_parse_name(const char *name, size_t len, uint64_t *epoch, uint64_t *seq)
{
    if (len == 10 && memcmp(name, "index.m3u8", 10) == 0)
        return 1;
    const char *end = name + len, *p = number(name, end, epoch);
    if (p == NULL || p >= end || *p != '-')
        return 0;
    p = number(p + 1, end, seq);
    if (p == NULL || end - p != 3 || memcmp(p, ".ts", 3) != 0)
        return 0;
    return 2;
}
