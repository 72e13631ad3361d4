/* The TS annotator, on real ffmpeg output (scripts/fixtures.sh: fixed 1 s
 * GOPs, so keyframes can be counted) and on hand-built packets for the cases
 * an encoder rarely makes: start codes straddling packets, split PES headers,
 * open-GOP I frames, multi-packet PMTs, bad CRCs, garbage and lost sync.
 *
 * The checks of a KEYFRAME frame's content use their own small TS reader
 * below, not the annotator's code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/ts.h"

/* ------------------------------------------------------------------------ */
/* Collecting what the annotator emits                                      */

struct frames {
    size_t n, cap;
    struct ts_frame *f;          /* each f[i].ts is a malloc'd copy */
};

static void collect(const struct ts_frame *f, void *arg)
{
    struct frames *fs = arg;
    if (fs->n == fs->cap) {
        fs->cap = fs->cap ? 2 * fs->cap : 256;
        fs->f = realloc(fs->f, fs->cap * sizeof(*fs->f));
    }
    struct ts_frame *c = &fs->f[fs->n++];
    *c = *f;
    uint8_t *copy = malloc(f->len);
    memcpy(copy, f->ts, f->len);
    c->ts = copy;
}

static void frames_free(struct frames *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        free((void *)fs->f[i].ts);
    free(fs->f);
    memset(fs, 0, sizeof(*fs));
}

static void assert_same_frames(const struct frames *a, const struct frames *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->f[i].flags, b->f[i].flags);
        assert_int_equal(a->f[i].pts, b->f[i].pts);
        assert_int_equal(a->f[i].dts, b->f[i].dts);
        assert_int_equal(a->f[i].pcr, b->f[i].pcr);
        assert_int_equal(a->f[i].len, b->f[i].len);
        assert_memory_equal(a->f[i].ts, b->f[i].ts, a->f[i].len);
    }
}

static size_t count_keyframes(const struct frames *fs)
{
    size_t k = 0;
    for (size_t i = 0; i < fs->n; i++)
        k += (fs->f[i].flags & SLP_F_KEYFRAME) != 0;
    return k;
}

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                 */

struct media {
    uint8_t *p;
    size_t len;
};

static struct media load_fixture(const char *name)
{
    const char *dir = getenv("SLUICE_FIXTURES");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "build/fixtures", name);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        fail_msg("missing fixture %s: run scripts/fixtures.sh from the repository root", path);
    fseek(fp, 0, SEEK_END);
    struct media m = { NULL, (size_t)ftell(fp) };
    fseek(fp, 0, SEEK_SET);
    m.p = malloc(m.len);
    assert_int_equal(fread(m.p, 1, m.len, fp), m.len);
    fclose(fp);
    return m;
}

/* Runs a fresh annotator over <len> bytes fed in chunks: fixed <chunk>
 * bytes, or random sizes from 1 to -<chunk> when <chunk> is negative. */
static struct frames annotate(const uint8_t *p, size_t len, long chunk,
                              const struct ts_annotator_options *o)
{
    struct frames fs = { 0 };
    struct ts_annotator *a = ts_annotator_new(o);
    assert_non_null(a);
    uint32_t seed = 7;
    for (size_t off = 0; off < len;) {
        size_t n = (size_t)chunk;
        if (chunk < 0) {
            seed = seed * 1103515245 + 12345;
            n = 1 + (seed >> 8) % (size_t)-chunk;
        }
        if (n > len - off)
            n = len - off;
        ts_annotator_feed(a, p + off, n, 1000, collect, &fs);
        off += n;
    }
    ts_annotator_flush(a, collect, &fs);
    ts_annotator_free(a);
    return fs;
}

/* ------------------------------------------------------------------------ */
/* An independent reader for checking KEYFRAME frames                       */

static unsigned pid_of(const uint8_t *p) { return (unsigned)(p[1] & 0x1f) << 8 | p[2]; }
static bool pusi_of(const uint8_t *p) { return p[1] & 0x40; }

static const uint8_t *payload_of(const uint8_t *p, size_t *n)
{
    size_t off = 4;
    if (p[3] & 0x20)
        off = 5 + p[4];
    *n = (p[3] & 0x10) && off < 188 ? 188 - off : 0;
    return p + off;
}

/* The PMT PID named by the PAT packet <p>. */
static unsigned pat_pmt_pid(const uint8_t *p)
{
    size_t n;
    const uint8_t *s = payload_of(p, &n);
    s += 1 + s[0];
    return (unsigned)(s[10] & 0x1f) << 8 | s[11];
}

/* The type of the first slice NAL in the video bytes of a frame that begin
 * at packet <from>: the PES header is skipped, then start codes are found. */
static int first_slice_type(const struct ts_frame *f, size_t from, unsigned vpid, bool hevc)
{
    uint8_t es[65536];
    size_t n = 0;
    for (size_t o = from * 188; o < f->len && n < sizeof(es) - 188; o += 188) {
        if (pid_of(f->ts + o) != vpid)
            continue;
        size_t pl;
        const uint8_t *p = payload_of(f->ts + o, &pl);
        memcpy(es + n, p, pl);
        n += pl;
    }
    assert_true(n > 9 && es[0] == 0 && es[1] == 0 && es[2] == 1);
    for (size_t i = 9 + es[8]; i + 3 < n; i++) {
        if (es[i] != 0 || es[i + 1] != 0 || es[i + 2] != 1)
            continue;
        int t = hevc ? (es[i + 3] >> 1) & 0x3f : es[i + 3] & 0x1f;
        if ((hevc && t <= 31) || (!hevc && t >= 1 && t <= 5))
            return t;
    }
    return -1;
}

/* The media contract for every KEYFRAME frame of <fs>. */
static void check_keyframes(const struct frames *fs, unsigned vpid, bool hevc)
{
    for (size_t i = 0; i < fs->n; i++) {
        const struct ts_frame *f = &fs->f[i];
        assert_true(f->len > 0 && f->len % 188 == 0);
        for (size_t o = 0; o < f->len; o += 188)
            assert_int_equal(f->ts[o], 0x47);
        if (!(f->flags & SLP_F_KEYFRAME))
            continue;
        assert_true(f->len >= 3 * 188);
        assert_int_equal(pid_of(f->ts), 0);                       /* PAT */
        unsigned pmt = pat_pmt_pid(f->ts);
        assert_int_equal(pid_of(f->ts + 188), pmt);               /* PMT */
        assert_int_equal(pid_of(f->ts + 376), vpid);              /* the PES start */
        assert_true(pusi_of(f->ts + 376));
        int t = first_slice_type(f, 2, vpid, hevc);
        if (hevc)
            assert_true(t >= 16 && t <= 21);
        else
            assert_int_equal(t, 5);
        assert_true(f->pts >= 0);
    }
}

/* Keyframe PTS go up by one GOP (1 s) each; DTS never go back. */
static void check_timestamps(const struct frames *fs, int64_t gop)
{
    int64_t last_key = -1, last_dts = -1;
    for (size_t i = 0; i < fs->n; i++) {
        const struct ts_frame *f = &fs->f[i];
        if (f->dts != SLP_PTS_NONE) {
            assert_true(f->dts > last_dts);
            last_dts = f->dts;
        }
        if (f->flags & SLP_F_KEYFRAME) {
            if (last_key >= 0)
                assert_int_equal(f->pts - last_key, gop);
            last_key = f->pts;
        }
    }
}

/* Every input packet that is not PAT, PMT or null comes out exactly once, in
 * order (keyframe prefixes repeat PAT/PMT; nothing else is added or lost). */
static void check_passthrough(const struct media *m, const struct frames *fs, unsigned pmt)
{
    size_t in = 0;
    for (size_t i = 0; i < fs->n; i++) {
        for (size_t o = 0; o < fs->f[i].len; o += 188) {
            const uint8_t *p = fs->f[i].ts + o;
            if (pid_of(p) == 0 || pid_of(p) == pmt)
                continue;
            while (pid_of(m->p + in) == 0 || pid_of(m->p + in) == pmt ||
                   pid_of(m->p + in) == TS_PID_NULL)
                in += 188;
            assert_memory_equal(p, m->p + in, 188);
            in += 188;
        }
    }
    while (in < m->len && (pid_of(m->p + in) == 0 || pid_of(m->p + in) == pmt))
        in += 188;
    assert_int_equal(in, m->len);
}

/* ------------------------------------------------------------------------ */
/* Real files                                                               */

static void run_fixture(const char *name, size_t keyframes, bool hevc)
{
    struct media m = load_fixture(name);
    struct frames fs = annotate(m.p, m.len, 65536, NULL);
    assert_int_equal(count_keyframes(&fs), keyframes);
    assert_true(fs.n >= keyframes * 25);                 /* a frame per access unit */
    check_keyframes(&fs, 0x100, hevc);
    check_timestamps(&fs, 90000);
    check_passthrough(&m, &fs, 0x1000);

    /* chunking never changes the output */
    struct frames rnd = annotate(m.p, m.len, -5000, NULL);
    assert_same_frames(&fs, &rnd);
    frames_free(&rnd);
    struct frames odd = annotate(m.p, m.len, 187, NULL);
    assert_same_frames(&fs, &odd);
    frames_free(&odd);
    frames_free(&fs);
    free(m.p);
}

static void test_h264_fixture(void **state)
{
    (void)state;
    run_fixture("h264_aac_10s.ts", 10, false);
}

static void test_hevc_fixture(void **state)
{
    (void)state;
    run_fixture("hevc_aac_6s.ts", 6, true);
    /* and byte by byte */
    struct media m = load_fixture("hevc_aac_6s.ts");
    struct frames whole = annotate(m.p, m.len, 65536, NULL);
    struct frames bytes = annotate(m.p, m.len, 1, NULL);
    assert_same_frames(&whole, &bytes);
    frames_free(&whole);
    frames_free(&bytes);
    free(m.p);
}

static void test_program_info(void **state)
{
    (void)state;
    struct media m = load_fixture("h264_aac_10s.ts");
    struct ts_annotator *a = ts_annotator_new(NULL);
    struct frames fs = { 0 };
    ts_annotator_feed(a, m.p, 100 * 188, 0, collect, &fs);
    const struct ts_program *p = ts_annotator_program(a);
    assert_int_equal(p->pmt_pid, 0x1000);
    assert_int_equal(p->video_pid, 0x100);
    assert_int_equal(p->video_codec, TS_CODEC_H264);
    assert_int_equal(p->audio_pid, 0x101);
    assert_int_equal(p->audio_type, 0x0f);
    assert_int_equal(p->pcr_pid, 0x100);
    assert_int_equal(p->nes, 2);
    assert_int_equal(ts_annotator_stats(a)->packets, 100);
    ts_annotator_free(a);
    frames_free(&fs);
    free(m.p);
}

static void test_audio_only_fixture(void **state)
{
    (void)state;
    struct media m = load_fixture("aac_10s.ts");
    struct frames fs = annotate(m.p, m.len, 4096, NULL);
    assert_int_equal(count_keyframes(&fs), 10);           /* one a second */
    int64_t last = -1;
    for (size_t i = 0; i < fs.n; i++) {
        const struct ts_frame *f = &fs.f[i];
        if (!(f->flags & SLP_F_KEYFRAME))
            continue;
        assert_int_equal(pid_of(f->ts), 0);
        assert_int_equal(pid_of(f->ts + 188), 0x1000);
        assert_int_equal(pid_of(f->ts + 376), 0x100);     /* ffmpeg's audio PID here */
        assert_true(pusi_of(f->ts + 376));
        if (last >= 0)
            assert_true(f->pts - last >= 90000 && f->pts - last < 90000 + 3000);
        last = f->pts;
    }
    frames_free(&fs);
    free(m.p);
}

/* The smallest frames still find every keyframe: the first slice comes
 * within TS_FRAME_MIN_PACKETS of the PES start. */
static void run_small_frames(const char *name, size_t keyframes, bool hevc)
{
    struct media m = load_fixture(name);
    struct ts_annotator_options o = { .max_packets = TS_FRAME_MIN_PACKETS };
    struct frames fs = annotate(m.p, m.len, 9000, &o);
    for (size_t i = 0; i < fs.n; i++)
        assert_true(fs.f[i].len <= (TS_FRAME_MIN_PACKETS + 2) * 188);  /* + PAT, PMT */
    assert_int_equal(count_keyframes(&fs), keyframes);
    check_keyframes(&fs, 0x100, hevc);
    check_passthrough(&m, &fs, 0x1000);
    frames_free(&fs);
    free(m.p);
}

static void test_frame_size_bound(void **state)
{
    (void)state;
    run_small_frames("h264_aac_10s.ts", 10, false);
    run_small_frames("hevc_aac_6s.ts", 6, true);
    struct ts_annotator_options o;
    o.max_delay_us = o.audio_key_interval = 0;
    o.max_packets = TS_FRAME_MAX_PACKETS + 1;
    assert_null(ts_annotator_new(&o));
    o.max_packets = TS_FRAME_MIN_PACKETS - 1;
    assert_null(ts_annotator_new(&o));
}

static void test_discontinuity_mark(void **state)
{
    (void)state;
    struct media m = load_fixture("hevc_aac_6s.ts");
    struct ts_annotator *a = ts_annotator_new(NULL);
    struct frames fs = { 0 };
    ts_annotator_feed(a, m.p, m.len, 0, collect, &fs);
    size_t first_pass = fs.n;
    ts_annotator_discontinuity(a);                         /* as a looped file does */
    ts_annotator_feed(a, m.p, m.len, 0, collect, &fs);
    ts_annotator_flush(a, collect, &fs);
    size_t marked = 0;
    for (size_t i = 0; i < fs.n; i++) {
        if (fs.f[i].flags & SLP_F_DISCONTINUITY) {
            marked++;
            assert_true(fs.f[i].flags & SLP_F_KEYFRAME);
            assert_true(i >= first_pass - 1);
            assert_true(fs.f[i].pts < fs.f[i - 1].pts || fs.f[i - 1].pts < 0);
        }
    }
    assert_int_equal(marked, 1);
    assert_int_equal(count_keyframes(&fs), 12);
    assert_int_equal(ts_annotator_stats(a)->cc_errors, 0);
    ts_annotator_free(a);
    frames_free(&fs);
    free(m.p);
}

/* ------------------------------------------------------------------------ */
/* Lost sync and garbage                                                    */

/* Garbage without 0x47 bytes inserted between packets is skipped, counted,
 * and nothing else is lost. */
static void test_resync_between_packets(void **state)
{
    (void)state;
    struct media m = load_fixture("h264_aac_10s.ts");
    size_t npk = m.len / 188, inserts = 7, glen = 333;
    uint8_t *dirty = malloc(m.len + inserts * glen);
    size_t o = 0, every = npk / (inserts + 1);
    for (size_t i = 0; i < npk; i++) {
        if (i > 0 && i % every == 0 && i / every <= inserts) {
            for (size_t g = 0; g < glen; g++) {
                uint8_t b = (uint8_t)(g * 7 + 1);
                dirty[o++] = b == 0x47 ? 0x48 : b;
            }
        }
        memcpy(dirty + o, m.p + i * 188, 188);
        o += 188;
    }
    struct frames fs = annotate(dirty, o, -3000, NULL);
    struct ts_annotator *a = ts_annotator_new(NULL);
    struct frames again = { 0 };
    ts_annotator_feed(a, dirty, o, 0, collect, &again);
    ts_annotator_flush(a, collect, &again);
    const struct ts_stats *st = ts_annotator_stats(a);
    assert_int_equal(st->sync_losses, inserts);
    assert_int_equal(st->skipped_bytes, inserts * glen);
    assert_int_equal(st->packets, npk);
    assert_same_frames(&fs, &again);                       /* chunking still irrelevant */
    check_keyframes(&fs, 0x100, false);
    check_passthrough(&m, &fs, 0x1000);
    assert_true(count_keyframes(&fs) >= 10 - inserts);
    ts_annotator_free(a);
    frames_free(&fs);
    frames_free(&again);
    free(dirty);
    free(m.p);
}

/* A packet cut short (a lost chunk of bytes) costs that packet only. */
static void test_resync_after_truncated_packet(void **state)
{
    (void)state;
    struct media m = load_fixture("hevc_aac_6s.ts");
    size_t cut_at = 500 * 188 + 100;                       /* drop 60 bytes mid-packet */
    uint8_t *dirty = malloc(m.len);
    memcpy(dirty, m.p, cut_at);
    memcpy(dirty + cut_at, m.p + cut_at + 60, m.len - cut_at - 60);
    struct frames fs = annotate(dirty, m.len - 60, -777, NULL);
    struct frames ref = annotate(dirty, m.len - 60, 65536, NULL);
    assert_same_frames(&fs, &ref);
    check_keyframes(&fs, 0x100, true);
    size_t total = 0;
    for (size_t i = 0; i < fs.n; i++)
        total += fs.f[i].len;
    assert_true(count_keyframes(&fs) >= 5);
    assert_true(total > m.len / 2);
    frames_free(&fs);
    frames_free(&ref);
    free(dirty);
    free(m.p);
}

static void test_garbage_only(void **state)
{
    (void)state;
    size_t len = 1 << 20;
    uint8_t *g = malloc(len);
    uint32_t seed = 99;
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        g[i] = (uint8_t)(seed >> 16);
        if (i % 188 == 0 && (seed & 0x100))                /* plenty of false syncs */
            g[i] = 0x47;
    }
    struct ts_annotator_options o = { .max_packets = TS_FRAME_MIN_PACKETS };
    struct frames fs = annotate(g, len, -10000, &o);
    for (size_t i = 0; i < fs.n; i++) {
        assert_true(fs.f[i].len > 0 && fs.f[i].len <= (TS_FRAME_MIN_PACKETS + 12) * 188);
        for (size_t off = 0; off < fs.f[i].len; off += 188)
            assert_int_equal(fs.f[i].ts[off], 0x47);
    }
    frames_free(&fs);
    free(g);
}

/* ------------------------------------------------------------------------ */
/* Hand-built streams                                                       */

struct tsw {                    /* a TS writer into a fixed buffer */
    uint8_t buf[64 * 188];
    size_t len;
    unsigned cc[0x2000];
};

/* One packet of <pid> carrying <n> (<= 184) payload bytes, stuffed with an
 * adaptation field when shorter. */
static void put_packet(struct tsw *w, unsigned pid, bool pusi, const uint8_t *p, size_t n)
{
    uint8_t *o = w->buf + w->len;
    assert_true(n <= 184 && w->len + 188 <= sizeof(w->buf));
    o[0] = 0x47;
    o[1] = (uint8_t)((pusi ? 0x40 : 0) | pid >> 8);
    o[2] = (uint8_t)pid;
    o[3] = (uint8_t)(0x10 | (w->cc[pid]++ & 15));
    size_t off = 4;
    if (n < 184) {
        o[3] |= 0x20;
        o[4] = (uint8_t)(183 - n);
        if (183 - n > 0)
            o[5] = 0;
        memset(o + 6, 0xff, 183 - n > 1 ? 183 - n - 1 : 0);
        off = 188 - n;
    }
    memcpy(o + off, p, n);
    w->len += 188;
}

/* A PSI section (CRC added) in packets, pointer field first. */
static void put_section(struct tsw *w, unsigned pid, const uint8_t *sec, size_t n)
{
    uint8_t s[1100];
    s[0] = 0;
    memcpy(s + 1, sec, n);
    uint32_t crc = ts_crc32(sec, n);
    s[1 + n] = (uint8_t)(crc >> 24), s[2 + n] = (uint8_t)(crc >> 16);
    s[3 + n] = (uint8_t)(crc >> 8), s[4 + n] = (uint8_t)crc;
    size_t total = n + 5;
    for (size_t o = 0; o < total; o += 184) {
        size_t k = total - o < 184 ? total - o : 184;
        uint8_t pkt[184];
        memset(pkt, 0xff, sizeof(pkt));
        memcpy(pkt, s + o, k);
        put_packet(w, pid, o == 0, pkt, 184);
    }
}

static void put_pat(struct tsw *w)
{
    static const uint8_t pat[] = { 0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00,
                                   0x00, 0x01, 0xf0, 0x00 };
    put_section(w, 0, pat, sizeof(pat));
}

/* A PMT for one video stream of <type> on 0x100; <desc> bytes of program
 * descriptors make it as long as wanted. */
static void put_pmt(struct tsw *w, uint8_t type, size_t desc, bool break_crc)
{
    uint8_t s[1100];
    size_t n = 0;
    size_t section_length = 9 + desc + 5 + 4;
    s[n++] = 0x02, s[n++] = (uint8_t)(0xb0 | section_length >> 8), s[n++] = (uint8_t)section_length;
    s[n++] = 0x00, s[n++] = 0x01, s[n++] = 0xc1, s[n++] = 0x00, s[n++] = 0x00;
    s[n++] = 0xe1, s[n++] = 0x00;
    s[n++] = (uint8_t)(0xf0 | desc >> 8), s[n++] = (uint8_t)desc;
    for (size_t i = 0; i < desc; i += 2)    /* private descriptors of 0 bytes */
        s[n++] = 0x80, s[n++] = 0x00;
    s[n++] = type, s[n++] = 0xe1, s[n++] = 0x00, s[n++] = 0xf0, s[n++] = 0x00;
    uint8_t tmp[1100];
    memcpy(tmp, s, n);
    put_section(w, 0x1000, tmp, n);
    if (break_crc)
        w->buf[w->len - 188 + 5 + n] ^= 1;
}

/* A video PES (PTS <pts>) of <es> bytes, cut into packets whose payloads
 * are the sizes in <cuts> (0-terminated; the rest goes in full packets). */
static void put_pes(struct tsw *w, int64_t pts, const uint8_t *es, size_t n, const size_t *cuts)
{
    uint8_t pes[2048];
    size_t h = 0;
    pes[h++] = 0, pes[h++] = 0, pes[h++] = 1, pes[h++] = 0xe0, pes[h++] = 0, pes[h++] = 0;
    pes[h++] = 0x80, pes[h++] = 0x80, pes[h++] = 5;
    pes[h++] = (uint8_t)(0x21 | ((pts >> 29) & 0x0e)), pes[h++] = (uint8_t)(pts >> 22);
    pes[h++] = (uint8_t)(((pts >> 14) & 0xfe) | 1), pes[h++] = (uint8_t)(pts >> 7);
    pes[h++] = (uint8_t)(((pts << 1) & 0xfe) | 1);
    memcpy(pes + h, es, n);
    size_t total = h + n, o = 0;
    for (size_t i = 0; o < total; i++) {
        size_t k = cuts && cuts[i] ? cuts[i] : 184;
        if (k > total - o)
            k = total - o;
        put_packet(w, 0x100, o == 0, pes + o, k);
        o += k;
    }
}

static struct frames annotate_w(const struct tsw *w)
{
    struct frames a = annotate(w->buf, w->len, 65536, NULL);
    struct frames b = annotate(w->buf, w->len, 1, NULL);
    assert_same_frames(&a, &b);
    frames_free(&b);
    return a;
}

static const uint8_t idr[] = { 0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1,
                               0x68, 0xce, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0 };
static const uint8_t pslice[] = { 0, 0, 0, 1, 0x09, 0x30, 0, 0, 1, 0x41, 0x9a, 0x02, 0x11 };

/* A stream: PAT, PMT, then the access units given. */
static void start_stream(struct tsw *w, uint8_t type)
{
    memset(w, 0, sizeof(*w));
    put_pat(w);
    put_pmt(w, type, 0, false);
}

static void test_start_code_across_packets(void **state)
{
    (void)state;
    struct tsw w;
    /* cut the IDR's "00 00 01 65" after each of its bytes in turn */
    for (size_t split = 0; split < 4; split++) {
        start_stream(&w, 0x1b);
        size_t at = 14 + 18 + split;             /* PES header + bytes before "00 00 01 65" */
        size_t cuts[] = { at, 184, 0 };
        put_pes(&w, 90000, idr, sizeof(idr), cuts);
        put_pes(&w, 93600, pslice, sizeof(pslice), NULL);
        struct frames fs = annotate_w(&w);
        assert_int_equal(count_keyframes(&fs), 1);
        assert_true(fs.f[0].flags & SLP_F_KEYFRAME);
        assert_int_equal(fs.f[0].pts, 90000);
        assert_int_equal(fs.f[0].len, 4 * 188);   /* PAT, PMT, two PES packets */
        assert_int_equal(fs.f[1].flags, 0);
        assert_int_equal(fs.f[1].pts, 93600);
        frames_free(&fs);
    }
}

static void test_pes_header_across_packets(void **state)
{
    (void)state;
    struct tsw w;
    for (size_t first = 1; first < 14; first += 3) {      /* 1..13 header bytes first */
        start_stream(&w, 0x1b);
        size_t cuts[] = { first, 0 };
        put_pes(&w, 123456, idr, sizeof(idr), cuts);
        struct frames fs = annotate_w(&w);
        assert_int_equal(fs.n, 1);
        assert_true(fs.f[0].flags & SLP_F_KEYFRAME);
        assert_int_equal(fs.f[0].pts, 123456);
        assert_int_equal(fs.f[0].dts, 123456);
        frames_free(&fs);
    }
}

/* H.264 open GOP: an I slice after an SPS is a keyframe; a P slice after an
 * SPS, or an I slice without one, is not. */
static void test_h264_i_slice_rules(void **state)
{
    (void)state;
    static const uint8_t sps_i[] = { 0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce,
                                     0, 0, 1, 0x41, 0x88, 0x80, 0x10, 0x00 };  /* ue 0, ue 7 */
    static const uint8_t sps_p[] = { 0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x41, 0x98, 0x80,
                                     0x10, 0x00 };                             /* ue 0, ue 5 */
    static const uint8_t i_only[] = { 0, 0, 1, 0x41, 0x88, 0x80, 0x10, 0x00 };
    const struct { const uint8_t *es; size_t n; bool key; } cases[] = {
        { sps_i, sizeof(sps_i), true },
        { sps_p, sizeof(sps_p), false },
        { i_only, sizeof(i_only), false },
        { pslice, sizeof(pslice), false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tsw w;
        start_stream(&w, 0x1b);
        put_pes(&w, 9000, cases[i].es, cases[i].n, NULL);
        struct frames fs = annotate_w(&w);
        assert_int_equal(count_keyframes(&fs), cases[i].key ? 1 : 0);
        frames_free(&fs);
    }
}

static void test_hevc_nal_types(void **state)
{
    (void)state;
    for (unsigned t = 0; t < 40; t++) {
        /* VPS, SPS, PPS first (types 32-34), then a slice of type t */
        uint8_t es[] = { 0, 0, 0, 1, 0x40, 0x01, 0xaa, 0, 0, 1, 0x42, 0x01, 0xbb,
                         0, 0, 1, 0x44, 0x01, 0xcc, 0, 0, 1, (uint8_t)(t << 1), 0x01, 0xaf };
        struct tsw w;
        start_stream(&w, 0x24);
        put_pes(&w, 1, es, sizeof(es), NULL);
        struct frames fs = annotate_w(&w);
        assert_int_equal(count_keyframes(&fs), t >= 16 && t <= 21 ? 1 : 0);
        frames_free(&fs);
    }
}

/* A PMT spanning two packets is kept whole and repeated before keyframes;
 * PAT/PMT just before the keyframe are not repeated twice. */
static void test_two_packet_pmt(void **state)
{
    (void)state;
    struct tsw w;
    memset(&w, 0, sizeof(w));
    put_pat(&w);
    put_pmt(&w, 0x1b, 300, false);              /* two packets */
    put_pes(&w, 90000, idr, sizeof(idr), NULL);
    put_pes(&w, 93600, pslice, sizeof(pslice), NULL);
    put_pes(&w, 97200, idr, sizeof(idr), NULL);    /* no PAT/PMT before this one */
    struct frames fs = annotate_w(&w);
    assert_int_equal(fs.n, 3);
    for (size_t i = 0; i < 3; i += 2) {
        assert_true(fs.f[i].flags & SLP_F_KEYFRAME);
        assert_int_equal(fs.f[i].len, 4 * 188);  /* PAT, PMT, PMT, PES */
        assert_memory_equal(fs.f[i].ts, w.buf, 3 * 188);
        assert_int_equal(pid_of(fs.f[i].ts + 3 * 188), 0x100);
    }
    frames_free(&fs);
}

static void test_bad_pmt_crc_ignored(void **state)
{
    (void)state;
    struct tsw w;
    memset(&w, 0, sizeof(w));
    put_pat(&w);
    put_pmt(&w, 0x1b, 0, true);
    put_pes(&w, 90000, idr, sizeof(idr), NULL);
    struct ts_annotator *a = ts_annotator_new(NULL);
    struct frames fs = { 0 };
    ts_annotator_feed(a, w.buf, w.len, 0, collect, &fs);
    ts_annotator_flush(a, collect, &fs);
    assert_int_equal(ts_annotator_stats(a)->psi_errors, 1);
    assert_int_equal(ts_annotator_program(a)->video_pid, -1);
    assert_int_equal(count_keyframes(&fs), 0);
    assert_int_equal(fs.n, 1);                  /* passed through all the same */
    assert_int_equal(fs.f[0].len, w.len);
    ts_annotator_free(a);
    frames_free(&fs);
}

static void test_delay_bound_and_nulls(void **state)
{
    (void)state;
    struct tsw w;
    start_stream(&w, 0x1b);
    uint8_t null[184];
    memset(null, 0xff, sizeof(null));
    put_packet(&w, TS_PID_NULL, false, null, 184);
    struct ts_annotator *a = ts_annotator_new(NULL);
    struct frames fs = { 0 };
    ts_annotator_feed(a, w.buf, w.len, 1000000, collect, &fs);
    assert_int_equal(fs.n, 0);
    ts_annotator_feed(a, NULL, 0, 1050000, collect, &fs);   /* 50 ms: still waiting */
    assert_int_equal(fs.n, 0);
    ts_annotator_feed(a, NULL, 0, 1100000, collect, &fs);   /* 100 ms: out it goes */
    assert_int_equal(fs.n, 1);
    assert_int_equal(fs.f[0].len, 2 * 188);     /* PAT, PMT; the null packet dropped */
    assert_int_equal(fs.f[0].wall_us, 1000000);
    assert_int_equal(ts_annotator_stats(a)->packets, 3);
    ts_annotator_free(a);
    frames_free(&fs);
}

static void test_packet_helpers(void **state)
{
    (void)state;
    static const uint8_t pcr_pkt[188] = { 0x47, 0x41, 0x00, 0x30, 0x9c, 0x50,
                                          0x00, 0x06, 0x62, 0xc4, 0x7e, 0x00 };
    assert_int_equal(ts_packet_pcr(pcr_pkt), 837000LL * 300);
    assert_int_equal(ts_packet_pid(pcr_pkt), 0x100);
    assert_true(ts_packet_pusi(pcr_pkt));
    static const uint8_t no_af[188] = { 0x47, 0x01, 0x00, 0x10 };
    assert_int_equal(ts_packet_pcr(no_af), -1);
    static const uint8_t pat[] = { 0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00,
                                   0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2 };
    assert_int_equal(ts_crc32(pat, sizeof(pat) - 4), 0x2ab104b2);
    assert_int_equal(ts_crc32(pat, sizeof(pat)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_fixture),
        cmocka_unit_test(test_hevc_fixture),
        cmocka_unit_test(test_program_info),
        cmocka_unit_test(test_audio_only_fixture),
        cmocka_unit_test(test_frame_size_bound),
        cmocka_unit_test(test_discontinuity_mark),
        cmocka_unit_test(test_resync_between_packets),
        cmocka_unit_test(test_resync_after_truncated_packet),
        cmocka_unit_test(test_garbage_only),
        cmocka_unit_test(test_start_code_across_packets),
        cmocka_unit_test(test_pes_header_across_packets),
        cmocka_unit_test(test_h264_i_slice_rules),
        cmocka_unit_test(test_hevc_nal_types),
        cmocka_unit_test(test_two_packet_pmt),
        cmocka_unit_test(test_bad_pmt_crc_ignored),
        cmocka_unit_test(test_delay_bound_and_nulls),
        cmocka_unit_test(test_packet_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
