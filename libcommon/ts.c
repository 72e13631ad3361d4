/* The TS annotator: input and sync, packet dispatch, frame batching and
 * emission. See ts.h for what it promises, ts_int.h for its parts.
 *
 * The batch buffer (owned by the annotator, allocated once) keeps room before
 * the frame's data for the PAT and PMT copies a KEYFRAME frame starts with:
 *
 *   buf: [ PREFIX_ROOM ][ data: <len> bytes of whole packets          ]
 *                             ^ key_at: the packet that begins the keyframe PES
 *
 * A video PES start cuts the batch: what came before is emitted, except PAT
 * and PMT packets right before the cut, which move to the front of the new
 * batch (key_at then points past them). If the new PES turns out to be a
 * keyframe, the frame is emitted from key_at - (PAT + PMT) with the latest
 * copies written there: the moved packets are then left out, as the copies
 * replace them. Otherwise the frame is emitted from the start of data.
 */
#include "ts_int.h"

#include <stdlib.h>
#include <string.h>

#define PREFIX_ROOM (2 * TS_PSI_MAX_PACKETS * TS_PACKET)
#define DEFAULT_MAX_PACKETS 512
#define DEFAULT_MAX_DELAY_US 100000
#define DEFAULT_AUDIO_KEY_INTERVAL 90000

enum frame_kind {
    FRAME_PLAIN,
    FRAME_PROBING,     /* a video PES begins at key_at, not yet judged */
    FRAME_KEY,         /* ... and it is a keyframe */
};

struct ts_annotator {
    struct ts_annotator_options o;

    /* input: a partial packet while in sync, up to two packets while hunting */
    uint8_t acc[2 * TS_PACKET];
    size_t acc_len;
    bool synced;

    /* what the stream is */
    struct ts_program prog;
    struct psi_state psi;
    struct es_probe probe;
    uint64_t probe_frame;        /* stats.frames when the probed PES began */
    int video_cc;                /* last continuity counter on the video PID, or -1 */
    int64_t last_audio_key;      /* PTS of the last audio-only keyframe, or -1 */
    bool pending_discontinuity;

    /* the frame being batched */
    uint8_t *buf;                /* PREFIX_ROOM + cap bytes */
    size_t cap, len;
    size_t psi_tail;             /* bytes of PAT/PMT packets ending the batch */
    size_t key_at;
    enum frame_kind kind;
    int64_t pts, dts, pcr, wall_us;

    struct ts_stats stats;

    /* set for the duration of one feed or flush */
    ts_emit_fn emit;
    void *arg;
    int64_t now_us;
};

static uint8_t *data(struct ts_annotator *a)
{
    return a->buf + PREFIX_ROOM;
}

/* ------------------------------------------------------------------------ */
/* Packets                                                                  */

unsigned ts_packet_pid(const uint8_t *pkt)
{
    return (unsigned)(pkt[1] & 0x1f) << 8 | pkt[2];
}

bool ts_packet_pusi(const uint8_t *pkt)
{
    return pkt[1] & 0x40;
}

int64_t ts_packet_pcr(const uint8_t *p)
{
    if (!(p[3] & 0x20) || p[4] < 7 || p[4] > 183 || !(p[5] & 0x10))
        return -1;
    int64_t base = (int64_t)p[6] << 25 | (int64_t)p[7] << 17 | (int64_t)p[8] << 9 |
                   (int64_t)p[9] << 1 | p[10] >> 7;
    return base * 300 + ((p[10] & 1) << 8 | p[11]);
}

void ts_pkt_parse(struct ts_pkt *k, const uint8_t *p)
{
    unsigned afc = (p[3] >> 4) & 3;
    size_t off = 4;
    k->p = p;
    k->tei = p[1] & 0x80;
    k->pusi = p[1] & 0x40;
    k->pid = ts_packet_pid(p);
    k->cc = p[3] & 0x0f;
    k->has_payload = afc & 1;
    k->discontinuity = false;
    if (afc & 2) {
        size_t afl = p[4];
        if (afl > 183)
            k->has_payload = false;
        else if (afl > 0)
            k->discontinuity = p[5] & 0x80;
        off = 5 + afl;
    }
    if (!k->has_payload || off >= TS_PACKET) {
        k->payload = NULL;
        k->plen = 0;
        return;
    }
    k->payload = p + off;
    k->plen = TS_PACKET - off;
}

/* ------------------------------------------------------------------------ */
/* Frames                                                                   */

static void reset_frame(struct ts_annotator *a)
{
    a->kind = FRAME_PLAIN;
    a->pts = a->dts = SLP_PTS_NONE;
    a->pcr = -1;
}

/* Writes the PAT and PMT copies right before key_at; returns where the frame
 * starts, or NULL if there are no copies to write. */
static uint8_t *write_prefix(struct ts_annotator *a)
{
    const struct psi_copy *pat = &a->psi.pat, *pmt = &a->psi.pmt;
    if (pat->npkts == 0 || pmt->npkts == 0)
        return NULL;
    size_t pat_len = pat->npkts * TS_PACKET, pmt_len = pmt->npkts * TS_PACKET;
    uint8_t *start = data(a) + a->key_at - pat_len - pmt_len;   /* >= buf */
    memcpy(start, pat->pkts, pat_len);
    memcpy(start + pat_len, pmt->pkts, pmt_len);
    return start;
}

/* Emits the first <n> bytes of the batch as a frame and keeps the rest
 * (PAT/PMT packets held back for the next frame) at the front. */
static void emit_first(struct ts_annotator *a, size_t n)
{
    if (n > 0) {
        struct ts_frame f = { 0, a->pts, a->dts, a->pcr, a->wall_us, data(a), n };
        uint8_t *start = a->kind == FRAME_KEY ? write_prefix(a) : NULL;
        if (start != NULL) {
            f.len = (size_t)(data(a) + n - start);
            f.ts = start;
            f.flags = SLP_F_KEYFRAME;
            if (a->pending_discontinuity)
                f.flags |= SLP_F_DISCONTINUITY;
            a->pending_discontinuity = false;
            a->stats.keyframes++;
        }
        a->stats.frames++;
        a->emit(&f, a->arg);
    }
    size_t rest = a->len - n;
    memmove(data(a), data(a) + n, rest);
    a->len = a->psi_tail = a->key_at = rest;
    a->wall_us = a->now_us;
    reset_frame(a);
}

/* Gives up judging the probed PES: its frame goes out as a plain one. */
static void stop_probing(struct ts_annotator *a)
{
    es_probe_abort(&a->probe);
    if (a->kind == FRAME_PROBING)
        a->kind = FRAME_PLAIN;
}

/* Appends one packet to the batch, emitting the batch first if it is full. */
static void append(struct ts_annotator *a, const struct ts_pkt *k, bool psi)
{
    if (a->len + TS_PACKET > a->cap) {
        stop_probing(a);
        emit_first(a, a->len);
    }
    if (a->len == 0)
        a->wall_us = a->now_us;
    memcpy(data(a) + a->len, k->p, TS_PACKET);
    a->len += TS_PACKET;
    a->psi_tail = psi ? a->psi_tail + TS_PACKET : 0;
    if (a->pcr < 0 && (int)k->pid == a->prog.pcr_pid)
        a->pcr = ts_packet_pcr(k->p);
}

/* Cuts the batch before a primary PES start. PAT/PMT packets just before it
 * stay for the next frame, if they leave room for the PES start itself. */
static void cut(struct ts_annotator *a)
{
    size_t keep = a->psi_tail + TS_PACKET <= a->cap ? a->psi_tail : 0;
    emit_first(a, a->len - keep);
}

/* ------------------------------------------------------------------------ */
/* Video and audio                                                          */

/* Checks the continuity counter of a video packet. Returns false for a
 * duplicate (to be passed on, not read twice); on a gap, stops judging the
 * PES in progress, whose bytes are now incomplete. */
static bool video_cc_ok(struct ts_annotator *a, const struct ts_pkt *k)
{
    if (!k->has_payload)
        return true;
    bool dup = false;
    if (a->video_cc >= 0 && !k->discontinuity) {
        dup = (int)k->cc == a->video_cc;
        if (!dup && (int)k->cc != ((a->video_cc + 1) & 0x0f)) {
            a->stats.cc_errors++;
            stop_probing(a);
        }
    }
    a->video_cc = (int)k->cc;
    return !dup;
}

static void video_pes_start(struct ts_annotator *a)
{
    stop_probing(a);
    cut(a);
    es_probe_start(&a->probe, a->prog.video_codec);
    a->probe_frame = a->stats.frames;
    if (a->probe.verdict == KEY_UNDECIDED)
        a->kind = FRAME_PROBING;
}

/* Feeds video payload to the probe and applies what it found to the batch,
 * as long as the batch still holds the PES start. */
static void video_payload(struct ts_annotator *a, const struct ts_pkt *k)
{
    struct es_probe *e = &a->probe;
    if (e->state != PROBE_HEADER && e->state != PROBE_NAL)
        return;
    bool had_header = e->header_done;
    es_probe_feed(e, k->payload, k->plen);
    bool same_frame = a->stats.frames == a->probe_frame;
    if (!had_header && e->header_done && same_frame) {
        a->pts = e->pts;
        a->dts = e->dts;
    }
    if (a->kind == FRAME_PROBING && e->verdict != KEY_UNDECIDED)
        a->kind = e->verdict == KEY_YES ? FRAME_KEY : FRAME_PLAIN;
}

static bool audio_only(const struct ts_annotator *a)
{
    return a->prog.video_pid < 0 && a->prog.audio_pid >= 0;
}

/* Audio-only programs: an audio PES start becomes a keyframe once every
 * audio_key_interval (or when its PTS goes back). */
static void audio_pes_start(struct ts_annotator *a, const struct ts_pkt *k)
{
    int64_t pts, dts;
    if (!pes_read_pts(k->payload, k->plen, &pts, &dts))
        return;
    int64_t last = a->last_audio_key;
    if (last >= 0 && pts >= last && pts - last < a->o.audio_key_interval)
        return;
    if (a->psi.pat.npkts == 0 || a->psi.pmt.npkts == 0)
        return;
    cut(a);
    a->kind = FRAME_KEY;
    a->pts = pts;
    a->dts = dts;
    a->last_audio_key = pts;
}

/* The program's video or audio stream changed: start judging afresh. */
static void streams_changed(struct ts_annotator *a)
{
    stop_probing(a);
    a->video_cc = -1;
    a->last_audio_key = -1;
}

static void on_packet(struct ts_annotator *a, const uint8_t *p)
{
    struct ts_pkt k;
    ts_pkt_parse(&k, p);
    a->stats.packets++;
    if (k.pid == TS_PID_NULL)
        return;
    bool psi = !k.tei && (k.pid == 0 || (int)k.pid == a->prog.pmt_pid);
    if (psi && psi_feed(&a->psi, &a->prog, &a->stats, &k))
        streams_changed(a);
    bool video = !k.tei && (int)k.pid == a->prog.video_pid;
    bool fresh = video ? video_cc_ok(a, &k) : true;
    if (video && k.pusi && fresh && k.has_payload)
        video_pes_start(a);
    else if (!k.tei && k.pusi && audio_only(a) && (int)k.pid == a->prog.audio_pid)
        audio_pes_start(a, &k);
    append(a, &k, psi);
    if (video && fresh && k.has_payload)
        video_payload(a, &k);
}

/* ------------------------------------------------------------------------ */
/* Input and sync                                                           */

static void lose_sync(struct ts_annotator *a)
{
    a->synced = false;
    a->stats.sync_losses++;
    stop_probing(a);
    psi_reset_assembly(&a->psi);
    a->video_cc = -1;
}

static void drop_front(struct ts_annotator *a, size_t n)
{
    memmove(a->acc, a->acc + n, a->acc_len - n);
    a->acc_len -= n;
    a->stats.skipped_bytes += n;
}

/* Looks for two sync bytes a packet apart in the hunt buffer; on finding
 * them, processes the first packet and goes back in sync. */
static void hunt(struct ts_annotator *a)
{
    for (;;) {
        uint8_t *s = memchr(a->acc, 0x47, a->acc_len);
        drop_front(a, s ? (size_t)(s - a->acc) : a->acc_len);
        if (a->acc_len < TS_PACKET + 1)
            return;
        if (a->acc[TS_PACKET] == 0x47)
            break;
        drop_front(a, 1);
    }
    a->synced = true;
    on_packet(a, a->acc);
    memmove(a->acc, a->acc + TS_PACKET, a->acc_len - TS_PACKET);
    a->acc_len -= TS_PACKET;
    if (a->acc_len == TS_PACKET) {       /* a second whole packet, sync checked */
        on_packet(a, a->acc);
        a->acc_len = 0;
    }
}

static size_t take_hunting(struct ts_annotator *a, const uint8_t *buf, size_t len)
{
    size_t room = sizeof(a->acc) - a->acc_len;    /* >= TS_PACKET after hunt() */
    size_t take = len < room ? len : room;
    memcpy(a->acc + a->acc_len, buf, take);
    a->acc_len += take;
    hunt(a);
    return take;
}

static size_t take_synced(struct ts_annotator *a, const uint8_t *buf, size_t len)
{
    if (a->acc_len == 0) {
        if (buf[0] != 0x47) {
            lose_sync(a);
            return 0;                      /* hunting takes it from here */
        }
        if (len >= TS_PACKET) {            /* the common case: no copy */
            on_packet(a, buf);
            return TS_PACKET;
        }
    }
    size_t take = TS_PACKET - a->acc_len < len ? TS_PACKET - a->acc_len : len;
    memcpy(a->acc + a->acc_len, buf, take);
    a->acc_len += take;
    if (a->acc_len == TS_PACKET) {
        on_packet(a, a->acc);
        a->acc_len = 0;
    }
    return take;
}

/* ------------------------------------------------------------------------ */
/* API                                                                      */

struct ts_annotator *ts_annotator_new(const struct ts_annotator_options *opts)
{
    struct ts_annotator *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    if (opts != NULL)
        a->o = *opts;
    if (a->o.max_packets == 0)
        a->o.max_packets = DEFAULT_MAX_PACKETS;
    if (a->o.max_delay_us <= 0)
        a->o.max_delay_us = DEFAULT_MAX_DELAY_US;
    if (a->o.audio_key_interval <= 0)
        a->o.audio_key_interval = DEFAULT_AUDIO_KEY_INTERVAL;
    a->cap = (size_t)a->o.max_packets * TS_PACKET;
    if (a->o.max_packets < TS_FRAME_MIN_PACKETS || a->o.max_packets > TS_FRAME_MAX_PACKETS ||
        (a->buf = malloc(PREFIX_ROOM + a->cap)) == NULL) {
        free(a);
        return NULL;
    }
    program_reset(&a->prog);
    a->probe.state = PROBE_IDLE;
    a->video_cc = -1;
    a->last_audio_key = -1;
    reset_frame(a);
    return a;
}

void ts_annotator_free(struct ts_annotator *a)
{
    if (a == NULL)
        return;
    free(a->buf);
    free(a);
}

void ts_annotator_feed(struct ts_annotator *a, const uint8_t *buf, size_t len,
                       int64_t now_us, ts_emit_fn emit, void *arg)
{
    a->emit = emit;
    a->arg = arg;
    a->now_us = now_us;
    if (a->len > 0 && a->kind != FRAME_PROBING && now_us - a->wall_us >= a->o.max_delay_us)
        emit_first(a, a->len);
    while (len > 0) {
        size_t used = a->synced ? take_synced(a, buf, len) : take_hunting(a, buf, len);
        buf += used;
        len -= used;
    }
}

void ts_annotator_flush(struct ts_annotator *a, ts_emit_fn emit, void *arg)
{
    a->emit = emit;
    a->arg = arg;
    stop_probing(a);
    emit_first(a, a->len);
    a->acc_len = 0;
}

void ts_annotator_discontinuity(struct ts_annotator *a)
{
    a->pending_discontinuity = true;
    a->video_cc = -1;
    a->last_audio_key = -1;
}

const struct ts_program *ts_annotator_program(const struct ts_annotator *a)
{
    return &a->prog;
}

const struct ts_stats *ts_annotator_stats(const struct ts_annotator *a)
{
    return &a->stats;
}
